"""
Tuning the regularization on a validation set
=============================================

The notebook's second exercise: *hold out a validation set to tune
regularization.* Real ratings come with no true matrix to compare with, so a
share of the observed ratings is held out of training, and the
regularization :math:`\\lambda` is chosen where the error on those held-out
ratings is lowest. :func:`mfcy.model_selection.train_test_split` makes the
split, :func:`mfcy.model_selection.validation_curve` fits one model per value
and scores it, and :func:`mfcy.plotting.plot_validation_curve` draws the
result.
"""

# %%
# Data and a split
# ----------------
# A 400 × 300 matrix of rank 5 with 8 % of its entries observed, each with
# Gaussian noise of standard deviation 0.5 — the error that even the true
# factors would make. One rating in five is held out at random;
# ``keep_in_train="both"`` keeps at least one rating of every user and every
# item in the training part, so that every held-out rating tests the
# factors. A matrix is split into two matrices of the same shape, with NaN
# where an entry belongs to the other part.

import matplotlib.pyplot as plt
import numpy as np

from mfcy import MatrixFactorization
from mfcy.datasets import make_low_rank
from mfcy.model_selection import train_test_split, validation_curve
from mfcy.plotting import plot_validation_curve

noise = 0.5
R = make_low_rank(400, 300, n_factors=5, density=0.08, noise=noise, random_state=0)
R_train, R_val = train_test_split(R, test_size=0.2, keep_in_train="both", random_state=0)
print(f"{np.sum(~np.isnan(R))} ratings: {np.sum(~np.isnan(R_train))} for training, "
      f"{np.sum(~np.isnan(R_val))} held out")

# %%
# One fit per value
# -----------------
# The model gets 10 factors, twice what the data needs — the usual situation,
# since the true rank of real data is unknown. Without a penalty the extra
# factors fit the noise. :func:`~mfcy.model_selection.validation_curve` fits a
# fresh copy of the model for each value of :math:`\lambda` on the training
# ratings and scores it on the held-out ones; the same sweep with 5 factors
# shows what a well-chosen size needs. The data is small, so one thread does
# the work (``n_threads=1``; the result would be the same on more).

regularizations = np.logspace(-3, 0.5, 15).round(4).tolist()
base = MatrixFactorization(n_epochs=100, learning_rate=0.02, biased=False, random_state=0,
                           n_threads=1)
curves = {
    n_factors: validation_curve(base.set_params(n_factors=n_factors), R_train,
                                validation=R_val, param_name="regularization",
                                param_range=regularizations)
    for n_factors in (10, 5)
}
for n_factors, curve in curves.items():
    print(f"k={n_factors:2d}: best regularization {curve.best_value:.3g}, validation RMSE "
          f"{curve.validation_rmse.min():.3f} (at {regularizations[0]:.3g}: "
          f"{curve.validation_rmse[0]:.3f})")

# %%
# The validation curve
# --------------------
# Too little regularization and the training error falls far below the noise
# level — the model has learned the noise by heart — while the validation
# error stays high. Too much and both errors climb to the spread of the
# ratings themselves, as the factors shrink towards zero. The best value lies
# between, where the validation curve has its minimum (the star).

fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
curve = curves[10]
plot_validation_curve(curve.param_range, curve.validation_rmse, curve.train_rmse,
                      param_name="regularization λ", score_name="RMSE", ax=ax)
ax.set_ylabel("RMSE (rating units)")
ax.plot(regularizations, curves[5].validation_rmse, "s--", color="C2", alpha=0.7,
        label="validation RMSE, k = 5")
ax.axhline(noise, color="grey", linestyle="--", label="noise level (best possible)")
ax.set_title("Validation curve of the regularization, k = 10")
ax.legend(fontsize="small")

# %%
# Watching the validation error epoch by epoch
# --------------------------------------------
# ``validation_curve`` passes the held-out ratings to
# ``fit(validation=...)``, so every fit recorded its training and validation
# RMSE after each epoch (``history_``), and the epoch at which the validation
# RMSE was lowest (``best_epoch_``). With almost no penalty the training
# error dives below the noise level within a few dozen epochs while the
# validation error levels off far above it: every further step fits noise.
# With the chosen penalty the two curves stay closer together, and the
# validation error ends lower. (``early_stopping=True`` would stop each fit
# once its validation error stops improving, and keep the best epoch.)

best = curve.best_index
fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
for index, color in ((0, "C3"), (best, "C0")):
    history = curve.histories[index]
    epochs = np.arange(1, len(history["val_rmse"]) + 1)
    label = f"λ = {regularizations[index]:.2g}"
    ax.plot(epochs, history["train_rmse"], color=color, linestyle=":",
            label=f"training, {label}")
    ax.plot(epochs, history["val_rmse"], color=color, label=f"validation, {label}")
ax.axhline(noise, color="grey", linestyle="--", label="noise level (best possible)")
ax.set_xlabel("epoch")
ax.set_ylabel("RMSE (rating units)")
ax.set_title("Training and validation RMSE per epoch, k = 10")
ax.legend(fontsize="small")
for index in (0, best):
    history = curve.histories[index]
    print(f"λ = {regularizations[index]:.2g}: final training RMSE "
          f"{history['train_rmse'][-1]:.3f}, lowest validation RMSE "
          f"{min(history['val_rmse']):.3f} after epoch {curve.best_epochs[index]} "
          f"of {curve.n_epochs[index]}")

# %%
# With the value chosen, the last step is a fit on *all* the observed ratings,
# the held-out ones included, with the same hyperparameters.

final = base.set_params(n_factors=10, regularization=curve.best_value).fit(R)
print(f"final model: {final.n_epochs_} epochs on {np.sum(~np.isnan(R))} ratings, "
      f"training RMSE {final.history_['train_rmse'][-1]:.3f}")
