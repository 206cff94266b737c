"""
Tuning the regularization on a validation set
=============================================

The notebook's second exercise: *hold out a validation set to tune
regularization.* Real ratings come with no true matrix to compare with, so a
share of the observed ratings is held out of training, and the
regularization :math:`\\lambda` is chosen where the error on those held-out
ratings is lowest.
"""

# %%
# Data and a split
# ----------------
# A 400 × 300 matrix of rank 5 with 8 % of its entries observed, each with
# Gaussian noise of standard deviation 0.5 — the error that even the true
# factors would make. One rating in five is held out, at random: its entry
# becomes NaN in the training matrix. (With a dense matrix the ids are row
# and column positions, so the held-out ratings keep their places.)

import matplotlib.pyplot as plt
import numpy as np

from mfcy import MatrixFactorization
from mfcy.datasets import make_low_rank

noise = 0.5
R = make_low_rank(400, 300, n_factors=5, density=0.08, noise=noise, random_state=0)
users, items = np.nonzero(~np.isnan(R))
ratings = R[users, items]
held_out = np.random.default_rng(0).random(len(ratings)) < 0.2
R_train = R.copy()
R_train[users[held_out], items[held_out]] = np.nan
print(f"{len(ratings)} ratings: {(~held_out).sum()} for training, {held_out.sum()} held out")


def validation_rmse(model):
    """RMSE of the model's predictions for the held-out ratings."""
    predicted = model.predict(users[held_out], items[held_out])
    return np.sqrt(np.mean((predicted - ratings[held_out]) ** 2))


# %%
# One fit per value
# -----------------
# The model gets 10 factors, twice what the data needs — the usual situation,
# since the true rank of real data is unknown. Without a penalty the extra
# factors fit the noise. Each value of :math:`\lambda` is fitted on the
# training ratings and scored on the held-out ones; the same sweep with 5
# factors shows what a well-chosen size needs.

regularizations = np.logspace(-3, 0.5, 15)
settings = dict(n_epochs=100, learning_rate=0.02, biased=False, random_state=0)
results = {}
for n_factors in (10, 5):
    train, validation = [], []
    for reg in regularizations:
        model = MatrixFactorization(n_factors=n_factors, regularization=reg, **settings)
        model.fit(R_train)
        train.append(model.history_["train_rmse"][-1])
        validation.append(validation_rmse(model))
    results[n_factors] = np.array(train), np.array(validation)

train, validation = results[10]
best = regularizations[np.argmin(validation)]
print(f"k=10: best regularization {best:.3g}, validation RMSE {validation.min():.3f} "
      f"(without penalty: {validation[0]:.3f})")
train5, validation5 = results[5]
print(f"k=5:  best regularization {regularizations[np.argmin(validation5)]:.3g}, "
      f"validation RMSE {validation5.min():.3f}")

# %%
# The validation curve
# --------------------
# Too little regularization and the training error falls far below the noise
# level — the model has learned the noise by heart — while the validation
# error stays high. Too much and both errors climb to the spread of the
# ratings themselves, as the factors shrink towards zero. The best value lies
# between, where the validation curve has its minimum.

fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
ax.plot(regularizations, train, "o-", label="training, k = 10")
ax.plot(regularizations, validation, "s-", label="validation, k = 10")
ax.plot(regularizations, validation5, "s--", color="C2", alpha=0.7, label="validation, k = 5")
ax.axvline(best, color="C1", linestyle=":", label=f"best for k = 10 (λ = {best:.2g})")
ax.axhline(noise, color="grey", linestyle="--", label="noise level (best possible)")
ax.set_xscale("log")
ax.set_xlabel("regularization λ")
ax.set_ylabel("RMSE (rating units)")
ax.set_title("Validation curve of the regularization")
ax.legend()

# %%
# With the value chosen, the last step is a fit on *all* the observed ratings,
# the held-out ones included, with the same hyperparameters.

final = MatrixFactorization(n_factors=10, regularization=best, **settings).fit(R)
print(f"final model: {final.n_epochs_} epochs on {len(ratings)} ratings, "
      f"training RMSE {final.history_['train_rmse'][-1]:.3f}")
