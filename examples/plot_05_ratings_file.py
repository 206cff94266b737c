"""
From a ratings file to top-N recommendations
============================================

Ratings usually arrive as a file of (user, item, rating) rows with ids that
are names, not matrix positions. This example writes such a file — a small
record shop's customers rating albums of four genres, on a 1 to 5 star scale —
reads it back with :func:`mfcy.datasets.load_ratings`, fits a model on the
string ids as they are, recommends albums, and saves the model to a file.
"""

# %%
# A ratings file
# --------------
# Each customer has a taste for each genre; an album's rating is 3 stars,
# plus the customer's taste for its genre, plus the album's own quality, plus
# noise, rounded to whole stars between 1 and 5. Each customer rated about a
# third of the albums. The file is written to a temporary directory, with the
# column names and the timestamp column a MovieLens ``ratings.csv`` has.

import pathlib
import tempfile
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mfcy import MatrixFactorization, UnknownIdWarning
from mfcy.datasets import load_ratings

rng = np.random.default_rng(7)
genres = ["jazz", "rock", "folk", "electronic"]
albums = [f"{genre} album {n:02d}" for genre in genres for n in range(1, 16)]
album_genre = np.repeat(np.arange(len(genres)), 15)
customers = [f"customer-{n:04d}" for n in range(1, 301)]
taste = rng.normal(0, 1.2, (len(customers), len(genres)))
quality = rng.normal(0, 0.4, len(albums))

rows = []
for c, customer in enumerate(customers):
    for a in np.flatnonzero(rng.random(len(albums)) < 1 / 3):
        stars = 3 + taste[c, album_genre[a]] + quality[a] + rng.normal(0, 0.5)
        rows.append((customer, albums[a], int(np.clip(np.rint(stars), 1, 5)),
                     1_700_000_000 + len(rows)))

tmp = tempfile.TemporaryDirectory()
path = pathlib.Path(tmp.name) / "ratings.csv"
pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(path,
                                                                             index=False)
print("\n".join(path.read_text().splitlines()[:4]))

# %%
# Reading and fitting
# -------------------
# :func:`~mfcy.datasets.load_ratings` finds the separator, the header and the
# user, item and rating columns by itself (``userId``, ``movieId`` and
# ``rating`` here; the timestamp is left out), and returns a DataFrame with
# the columns ``user``, ``item`` and ``rating`` — what
# :meth:`~mfcy.MatrixFactorization.fit` takes. A malformed line would be a
# ``ValueError`` naming its line number. The string ids are used as they are:
# mfcy maps them to rows of its factor matrices in sorted order, and
# ``users_`` and ``items_`` map back.

ratings = load_ratings(path)
print(ratings.head(3))
print(f"{len(ratings)} ratings of {ratings['item'].nunique()} albums "
      f"by {ratings['user'].nunique()} customers")

model = MatrixFactorization(n_factors=8, n_epochs=100, learning_rate=0.01,
                            regularization=0.05, random_state=0)
model.fit(ratings)
print(f"training RMSE {model.history_['train_rmse'][-1]:.3f} stars; "
      f"first ids: {model.users_[:2]}, {model.items_[:2]}")

# %%
# Top-N recommendations
# ---------------------
# :meth:`~mfcy.MatrixFactorization.recommend` ranks, for each customer, the
# albums they have not rated yet, best first: ranked by the raw score, shown
# as the predicted rating clipped to the 1–5 scale (``clip=False`` shows the
# raw scores). For three customers, next to the
# genre they like most (known here because the data was generated):

asked = ["customer-0001", "customer-0002", "customer-0003"]
top_items, top_scores = model.recommend(asked, n=5)
favourite = {c: genres[np.argmax(taste[customers.index(c)])] for c in asked}
table = pd.DataFrame({
    "customer": np.repeat(asked, 5),
    "favourite genre": [favourite[c] for c in np.repeat(asked, 5)],
    "rank": np.tile(np.arange(1, 6), len(asked)),
    "album": top_items.ravel(),
    "predicted stars": top_scores.ravel().round(2),
})
table

# %%
# A customer the model has never seen gets the albums that are rated best
# overall (global mean plus item bias), with an
# :class:`~mfcy.UnknownIdWarning` saying so, and a prediction for any pair is
# one call to :meth:`~mfcy.MatrixFactorization.predict`:

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", UnknownIdWarning)
    print(model.recommend("a new customer", n=3)[0])
print(caught[0].message)
print(model.predict([["customer-0001", "jazz album 01"], ["customer-0001", "rock album 01"]]))

# %%
# A customer's recommendations, and similar albums
# ------------------------------------------------
# Left: the ten best unrated albums for the first customer, coloured by
# genre. Right: :meth:`~mfcy.MatrixFactorization.similar_items` finds the
# albums whose factor vectors point the same way as a given album's; without
# ever being told the genres, the model groups them.

customer = asked[0]
items10, scores10 = model.recommend(customer, n=10)
similar, cosines = model.similar_items("jazz album 01", n=10)
genre_of = dict(zip(albums, (genres[g] for g in album_genre)))
colors = {genre: f"C{n}" for n, genre in enumerate(genres)}

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
left.barh(items10[::-1], scores10[::-1], color=[colors[genre_of[i]] for i in items10[::-1]])
left.set_xlim(1, max(5, scores10.max() + 0.2))
left.set_xlabel("predicted rating (stars)")
left.set_title(f"Top 10 unrated albums for {customer}\n(favourite genre: {favourite[customer]})")
right.barh(similar[::-1], cosines[::-1], color=[colors[genre_of[i]] for i in similar[::-1]])
right.set_xlim(-1, 1)
right.set_xlabel("cosine similarity of the factor vectors (1 = same direction)")
right.set_title("Albums most similar to 'jazz album 01'")
handles = [plt.Rectangle((0, 0), 1, 1, color=colors[g]) for g in genres]
fig.legend(handles, genres, loc="outside lower center", ncols=len(genres), title="genre")

# %%
# Saving the model
# ----------------
# :meth:`~mfcy.MatrixFactorization.save` writes the fitted model to one
# ``.npz`` file — factors, biases, the string ids, which albums each customer
# rated, the hyperparameters and ``history_`` — and
# :meth:`~mfcy.MatrixFactorization.load` reads it back without unpickling
# anything, checking a checksum first. The loaded model predicts the same
# ratings, bit for bit, and still leaves out what each customer rated. The
# ``mfcy`` command reads the same files: ``mfcy recommend albums.npz --user
# customer-0001``.

model_path = pathlib.Path(tmp.name) / "albums.npz"
model.save(model_path)
loaded = MatrixFactorization.load(model_path)
print(f"{model_path.name}: {model_path.stat().st_size / 1000:.0f} kB")
print("same predictions:", np.array_equal(loaded.predict(ratings), model.predict(ratings)))
print("same top 5:", np.array_equal(loaded.recommend(asked, n=5)[0], top_items))
tmp.cleanup()
