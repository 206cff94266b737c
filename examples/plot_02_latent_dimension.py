"""
Choosing the latent dimension
=============================

The notebook's first exercise: *try different latent dimensions and compare
the loss.* The lesson's matrix has rank 3 by construction; here the number of
latent factors :math:`k` runs from 1 to 8 and two errors are compared — the
training MSE on the 171 observed entries, and the MSE on the 129 entries that
were never observed, against the true matrix the notebook generated.
"""

# %%
# A learning rate that every k survives
# -------------------------------------
# At the lesson's learning rate of 0.05 a single factor does not converge:
# to approximate a rank-3 matrix with rank 1 the vectors must grow long, and
# a step of 0.05 then overshoots. mfcy notices at the end of the epoch in
# which the loss stops being finite and raises
# :class:`~mfcy.DivergenceError`.

import matplotlib.pyplot as plt
import numpy as np

from mfcy import DivergenceError, MatrixFactorization
from mfcy.datasets import lesson_problem

R, _, _ = lesson_problem()
observed = ~np.isnan(R)
rs = np.random.RandomState(42)  # the notebook's generator, replayed for the truth
R_true = rs.randn(20, 3) @ rs.randn(15, 3).T

lesson = dict(n_epochs=200, learning_rate=0.05, regularization=0.01, biased=False,
              shuffle=False, update="sequential", dtype="float64")
try:
    MatrixFactorization(n_factors=1, random_state=0, **lesson).fit(R)
except DivergenceError as error:
    print(f"k=1 with the lesson's settings: {error}")
else:
    print("k=1 with the lesson's settings converged on this build")

# %%
# So the sweep uses a learning rate of 0.02 and 500 epochs, otherwise the
# lesson's settings (no biases, regularization 0.01, the notebook's visiting
# order and update rule, float64). Each k is fitted from five random
# initialisations: the curves show the first, the summary the median and the
# range of all five.

ks = np.arange(1, 9)
seeds = range(5)
settings = dict(n_epochs=500, learning_rate=0.02, regularization=0.01, biased=False,
                shuffle=False, update="sequential", dtype="float64")
train_mse = np.empty((len(ks), len(seeds)))
hidden_mse = np.empty((len(ks), len(seeds)))
curves = {}
for a, k in enumerate(ks):
    for b, seed in enumerate(seeds):
        model = MatrixFactorization(n_factors=int(k), random_state=seed, **settings).fit(R)
        train_mse[a, b] = model.history_["train_mse"][-1]
        hidden_mse[a, b] = np.mean((model.reconstruct() - R_true)[~observed] ** 2)
        if b == 0:
            curves[k] = model.history_["train_mse"]

print(" k   training MSE   hidden-entry MSE (median of 5 fits)")
for k, tr, hi in zip(ks, np.median(train_mse, axis=1), np.median(hidden_mse, axis=1)):
    print(f"{k:2d}   {tr:12.5f}   {hi:12.5f}")

# %%
# The training loss
# -----------------
# More factors never hurt the fit to the observed entries: from :math:`k = 3`
# on, every curve reaches the same floor, set by the regularization.

fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
colors = plt.cm.viridis(np.linspace(0, 0.9, len(ks)))
for color, k in zip(colors, ks):
    ax.plot(np.arange(1, len(curves[k]) + 1), curves[k], color=color, label=f"k = {k}")
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("training MSE (squared rating units)")
ax.set_title("Training loss for each latent dimension k")
ax.legend(ncols=2)

# %%
# The error where nothing was observed
# ------------------------------------
# The entries the model never saw tell another story. Fewer than 3 factors
# cannot express the matrix; exactly 3 recover it; beyond 3, the extra
# factors are free to fit the observed entries in ways the truth does not
# share, and the hidden entries get worse — by more than an order of
# magnitude at :math:`k = 6`, while the training loss does not move. With
# 171 observations and :math:`(20 + 15)\,k` parameters, :math:`k = 5`
# already has more parameters than data.

fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
for values, label, marker in ((train_mse, "observed entries (training)", "o"),
                              (hidden_mse, "hidden entries (vs the true matrix)", "s")):
    median = np.median(values, axis=1)
    ax.errorbar(ks, median, yerr=[median - values.min(axis=1), values.max(axis=1) - median],
                marker=marker, capsize=3, label=label)
ax.axvline(3, color="grey", linestyle="--", label="true rank (3)")
ax.set_yscale("log")
ax.set_xlabel("latent dimension k (number of factors)")
ax.set_ylabel("MSE after 500 epochs (squared rating units)")
ax.set_title("Training error vs error on unseen entries")
ax.legend()

# %%
# Without the true matrix: a validation set
# -----------------------------------------
# In real data there is no true matrix to compare with: the unseen entries are
# replaced by observed ratings held out of training.
# :func:`~mfcy.model_selection.train_test_split` holds out a fifth of the 171
# ratings — 35 — keeping at least one rating of every user and item in
# training, and :func:`~mfcy.model_selection.validation_curve` fits one model
# per k on the rest and scores it on the held-out ratings. With so few
# held-out ratings the answer depends on which ones were drawn, so the split
# is repeated with five seeds; the figure shows each split's validation curve
# and the medians.

from mfcy.model_selection import train_test_split, validation_curve
from mfcy.plotting import plot_validation_curve

model = MatrixFactorization(random_state=0, n_threads=1, **settings)
splits = []
for seed in range(5):
    R_train, R_val = train_test_split(R, test_size=0.2, keep_in_train="both", random_state=seed)
    splits.append(validation_curve(model, R_train, validation=R_val, param_name="n_factors",
                                   param_range=ks.tolist()))
validation = np.array([curve.validation_rmse for curve in splits])
training = np.array([curve.train_rmse for curve in splits])
print("best k of each split:", [curve.best_value for curve in splits])

fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
for n, values in enumerate(validation):
    ax.plot(ks, values, color="grey", alpha=0.4, linewidth=1,
            label="validation RMSE, each split" if n == 0 else None)
plot_validation_curve(ks.tolist(), np.median(validation, axis=0), np.median(training, axis=0),
                      param_name="k", score_name="RMSE, median of 5 splits", ax=ax)
ax.set_xlabel("latent dimension k (number of factors)")
ax.set_ylabel("RMSE (rating units)")
ax.set_yscale("log")
ax.set_title("Choosing k on held-out ratings of the lesson's matrix")
ax.legend(fontsize="small")

# %%
# The held-out ratings point to the true rank as the hidden entries did: the
# validation error is lowest around :math:`k = 3` and grows beyond it, while
# the training error keeps falling. The :doc:`next example
# <plot_03_regularization>` uses the same tools to tune the regularization.
