"""
User and item biases
====================

The notebook's third exercise: *add user and item bias terms.* Real ratings
carry offsets that have nothing to do with taste — a generous user rates
everything high, a good film is rated high by everyone. A bias model writes
them down explicitly,

.. math:: \\hat r_{ui} = \\mu + b_u + b_i + p_u^\\top q_i ,

where the lesson's model has only :math:`p_u^\\top q_i` and must spend latent
factors on the offsets. ``biased=True`` (the default) is the former,
``biased=False`` the latter.
"""

# %%
# Ratings with offsets
# --------------------
# 600 users and 400 items on a star-like scale: a global mean of 3.6, user
# offsets of spread 0.5, item offsets of spread 0.8, a rank-3 taste term and
# noise of spread 0.3. One entry in ten is observed. The ratings are given as
# (user id, item id) pairs and values — the form a ratings file has — and one
# in five is held out for validation.

import matplotlib.pyplot as plt
import numpy as np

from mfcy import MatrixFactorization

rng = np.random.default_rng(0)
n_users, n_items, true_rank, noise = 600, 400, 3, 0.3
mean_rating = 3.6
user_offset = rng.normal(0, 0.5, n_users)
item_offset = rng.normal(0, 0.8, n_items)
user_taste = rng.normal(0, 0.7, (n_users, true_rank))
item_taste = rng.normal(0, 0.7, (n_items, true_rank))

users, items = np.nonzero(rng.random((n_users, n_items)) < 0.1)
ratings = (mean_rating + user_offset[users] + item_offset[items]
           + np.sum(user_taste[users] * item_taste[items], axis=1)
           + rng.normal(0, noise, len(users)))
X = np.column_stack([users, items])
held_out = rng.random(len(ratings)) < 0.2
X_train, y_train = X[~held_out], ratings[~held_out]
X_val, y_val = X[held_out], ratings[held_out]
print(f"{len(ratings)} ratings, mean {ratings.mean():.2f}, spread {ratings.std():.2f}")

baseline = np.sqrt(np.mean((y_train.mean() - y_val) ** 2))
print(f"predicting the training mean for everything: validation RMSE {baseline:.3f}")

# %%
# With and without biases, for each number of factors
# ---------------------------------------------------
# Everything else is the same: 200 epochs, learning rate 0.01,
# regularization 0.05, the same seed.

ks = np.arange(1, 8)
rmse = {}
models = {}
for biased in (True, False):
    scores = []
    for k in ks:
        model = MatrixFactorization(n_factors=int(k), n_epochs=200, learning_rate=0.01,
                                    regularization=0.05, biased=biased, random_state=0)
        model.fit(X_train, y_train)
        scores.append(np.sqrt(np.mean((model.predict(X_val) - y_val) ** 2)))
        models[biased, k] = model
    rmse[biased] = np.array(scores)

print(" k   validation RMSE with biases   without")
for k, with_b, without_b in zip(ks, rmse[True], rmse[False]):
    print(f"{k:2d}   {with_b:27.3f}   {without_b:7.3f}")

# %%
# The bias model reaches its best error at the true rank, 3 factors. The
# model without biases has to build the offsets out of its factors — a
# constant plus a user term plus an item term is itself a rank-2 matrix — so
# it lags behind until it has more factors than the taste term needs, and its
# best stays above the bias model's.

fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
ax.plot(ks, rmse[True], "o-", label=r"biased=True: $\mu + b_u + b_i + p_u \cdot q_i$")
ax.plot(ks, rmse[False], "s-", label=r"biased=False: $p_u \cdot q_i$ (the lesson's model)")
ax.axhline(baseline, color="C3", linestyle=":", label="training mean for everything")
ax.axhline(noise, color="grey", linestyle="--", label="noise level (best possible)")
ax.axvline(true_rank, color="grey", linestyle="-.", alpha=0.5, label="true rank of the taste term")
ax.set_xlabel("latent dimension k (number of factors)")
ax.set_ylabel("validation RMSE (rating units)")
ax.set_title("Validation error with and without bias terms")
ax.legend(fontsize="small")

# %%
# What the biases learned
# -----------------------
# The fitted ``item_bias_`` of the 3-factor bias model against the offsets the
# data was made with. ``items_`` maps each row back to its item id. The
# biases are pulled slightly towards zero by their regularization, and they
# are measured from the training mean rather than from 3.6, so the cloud sits
# on a line parallel to the diagonal.

model = models[True, 3]
fig, ax = plt.subplots(figsize=(5.5, 5), layout="constrained")
ax.scatter(item_offset[model.items_], model.item_bias_, s=10, alpha=0.6)
lims = [item_offset.min() - 0.2, item_offset.max() + 0.2]
ax.plot(lims, lims, color="grey", linestyle="--", label="learned = true")
ax.set_xlim(lims)
ax.set_ylim(lims)
ax.set_xlabel("true item offset (rating units)")
ax.set_ylabel(r"learned item bias $b_i$ (rating units)")
ax.set_title("Item biases of the 3-factor bias model")
ax.legend()
print(f"global mean μ = {model.global_mean_:.3f}; correlation of learned and true item "
      f"offsets: {np.corrcoef(item_offset[model.items_], model.item_bias_)[0, 1]:.3f}")
