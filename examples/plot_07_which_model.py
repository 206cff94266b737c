"""
Which model?
============

mfcy fits four models of explicit ratings (:ref:`models`):
:class:`~mfcy.BaselineOnly` (:math:`\\mu + b_u + b_i`, no factors),
:class:`~mfcy.MatrixFactorization` (the biased SVD of Funk and Surprise),
:class:`~mfcy.SVDpp` (the SVD plus what *which* items a user rated says about
them) and :class:`~mfcy.NMF` (non-negative factors, multiplicative updates).
All four take the same input and the same ``validation=``, so comparing them
is a loop. This example fits each to two generated data sets that differ in
one thing only — whether the choice of what to rate carries information — and
draws the validation RMSE after every epoch (``history_["val_rmse"]``).
"""

# %%
# Two data sets
# -------------
# 800 users and 500 items; a rating is a global mean of 3.5, a user and an
# item offset, a rank-3 taste term :math:`u^\top v` and noise, rounded to whole
# stars and clipped to 1–5. The two sets share all of that and differ in which
# entries are observed:
#
# - **random**: every entry with the same probability (about 9 %);
# - **selective**: users mostly rate what they like — the probability of
#   observing an entry grows with its taste term, as it does when people
#   choose what to watch.
#
# One rating in five is held out for validation. As a reference, the RMSE of
# the best prediction possible: the expected star rating given the
# generator's own offsets and tastes (what is left is the noise and the
# rounding).

import time

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm

from mfcy import NMF, BaselineOnly, MatrixFactorization, SVDpp

rng = np.random.default_rng(0)
n_users, n_items, rank, noise = 800, 500, 3, 0.4
user_offset = rng.normal(0, 0.4, n_users)
item_offset = rng.normal(0, 0.6, n_items)
taste = rng.normal(0, 0.7, (n_users, rank)) @ rng.normal(0, 0.7, (n_items, rank)).T
truth = 3.5 + user_offset[:, None] + item_offset[None, :] + taste
# A star is 1 plus the number of the thresholds 1.5, 2.5, 3.5, 4.5 that
# truth + noise passes, so its expectation is a sum of normal tail probabilities.
expected_stars = 1 + sum(norm.sf((c - truth) / noise) for c in (1.5, 2.5, 3.5, 4.5))


def ratings(selective):
    """Train and validation (user, item) pairs and star ratings."""
    logit = -2.3 + (1.2 * taste if selective else 0.0)
    users, items = np.nonzero(rng.random((n_users, n_items)) < 1 / (1 + np.exp(-logit)))
    stars = np.clip(np.round(truth[users, items] + rng.normal(0, noise, len(users))), 1, 5)
    X = np.column_stack([users, items])
    held_out = rng.random(len(stars)) < 0.2
    return X[~held_out], stars[~held_out], X[held_out], stars[held_out]


data = {"random": ratings(selective=False), "selective": ratings(selective=True)}
best_possible = {}
for name, (X_train, y_train, X_val, y_val) in data.items():
    expected = expected_stars[X_val[:, 0], X_val[:, 1]]
    best_possible[name] = floor = np.sqrt(np.mean((expected - y_val) ** 2))
    print(f"{name:9s}: {len(y_train) + len(y_val):,} ratings, mean {y_train.mean():.2f}; "
          f"best possible validation RMSE {floor:.3f}")

# %%
# The four models
# ---------------
# The SVD and SVD++ get the same 20 factors, learning rate and
# regularization, so that the only difference between them is SVD++'s implicit
# term. The epoch counts are given explicitly, enough for each to level off:
# the baseline's ALS settles in a few sweeps, NMF's multiplicative updates
# need many more epochs than SGD.

def models():
    sgd = dict(n_factors=20, n_epochs=60, learning_rate=0.01, regularization=0.05,
               random_state=0)
    return {
        "BaselineOnly (ALS)": BaselineOnly(n_epochs=10),
        "MatrixFactorization": MatrixFactorization(**sgd),
        "SVDpp": SVDpp(**sgd),
        "NMF": NMF(n_factors=15, n_epochs=200, random_state=0),
    }


fitted = {}
for name, (X_train, y_train, X_val, y_val) in data.items():
    for label, model in models().items():
        started = time.perf_counter()
        model.fit(X_train, y_train, validation=(X_val, y_val))
        fitted[name, label] = model, time.perf_counter() - started

print(f"{'':20s} {'random':>22s} {'selective':>22s}")
print(f"{'':20s} {'best RMSE (epoch)  fit s':>22s} {'best RMSE (epoch)  fit s':>22s}")
for label in models():
    cells = []
    for name in data:
        model, seconds = fitted[name, label]
        val = model.history_["val_rmse"]
        cells.append(f"{min(val):.3f} ({model.best_epoch_:3d}) {seconds:6.2f}")
    print(f"{label:20s} {cells[0]:>22s} {cells[1]:>22s}")

# %%
# Validation RMSE per epoch
# -------------------------

fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=True, layout="constrained")
for ax, name in zip(axes, data):
    for label in models():
        model, _ = fitted[name, label]
        val = model.history_["val_rmse"]
        ax.plot(np.arange(1, len(val) + 1), val, label=label)
    ax.axhline(best_possible[name], color="grey", linestyle="--", label="best possible")
    ax.set_title(f"{name}: " + ("every entry equally likely observed" if name == "random"
                                else "users rate what they like"), fontsize="medium")
    ax.set_xlabel("epoch")
    ax.set_xscale("log")
axes[0].set_ylabel("validation RMSE (stars)")
axes[0].set_ylim(top=1.0)
axes[1].legend()

# %%
# When to pick which
# ------------------
# - **BaselineOnly** is the floor: it fits in a fraction of the others' time
#   and needs no tuning. Every factor model should beat it; if one does not,
#   its settings are wrong (or the data has no taste to learn).
# - **MatrixFactorization** is the default choice: fast (the block-parallel
#   SGD uses every core), ``fold_in`` for new users, similar items. On the
#   *random* set it is as good as anything here.
# - **SVDpp** pays off when *what* users rate is informative, as on the
#   *selective* set, where it is clearly best and gets there in fewer
#   epochs; on the random set its implicit term has nothing to read and it
#   gains nothing. Real ratings are usually of the selective kind: on
#   ML-1M, Surprise's 5-fold protocol measured RMSE 0.858 for SVD++ against
#   0.873 for the SVD (``benchmarks/README.md``), at about twice the SVD's
#   time per epoch, and SVD++ has no ``fold_in``. Watch its validation
#   curve: it turns up after its best epoch, so early stopping
#   (``early_stopping=True``) suits it.
# - **NMF** gives non-negative factors — a user as a sum of tastes, not a
#   difference — which are easier to read. Its multiplicative updates move
#   every factor at once, overshoot at first and need many epochs (note the
#   log axis), and without biases it needs ratings
#   that are not negative (a 1–5 scale, not centred ratings). Pick it for the
#   factors it gives, not for speed.
#
# Whatever the pick, compare against the baseline on held-out ratings of
# your own data: ``validation=`` and ``history_["val_rmse"]`` cost one
# prediction pass per epoch.
