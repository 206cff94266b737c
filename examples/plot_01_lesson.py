"""
The lesson, reproduced
======================

mfcy grew out of a teaching notebook on collaborative filtering: a 20 × 15
matrix of rank 3, 60 % of its entries observed, factored by SGD with
:math:`k = 3`, learning rate 0.05, regularization 0.01 and 200 epochs of a
pure-Python loop. This example fits the same matrix from the same starting
factors with :class:`mfcy.MatrixFactorization`, checks the result against the
notebook's own loop, and draws the notebook's two figures — with the true
matrix beside the reconstruction, which the notebook could not show.
"""

# %%
# The data
# --------
# :func:`mfcy.datasets.lesson_problem` replays the notebook's random draws
# (NumPy's legacy seed 42): the observed matrix with NaN for unknown entries,
# and the initial factors ``0.1 * randn``.

import numpy as np

from mfcy import MatrixFactorization
from mfcy.datasets import lesson_problem
from mfcy.plotting import plot_matrices

R, U0, V0 = lesson_problem()
observed = ~np.isnan(R)
n_users, n_items = R.shape
print(f"{n_users} users x {n_items} items, {observed.sum()} of {R.size} ratings observed")

# %%
# The notebook's model is :math:`R \approx U V^\top` with no biases, its loop
# visits the observed entries row by row, in float64, and moves ``V[j]`` with
# the *already updated* ``U[i]``: ``biased=False``, ``shuffle=False``,
# ``dtype="float64"`` and ``update="sequential"`` say exactly that.

model = MatrixFactorization(n_factors=3, n_epochs=200, learning_rate=0.05,
                            regularization=0.01, biased=False, shuffle=False,
                            update="sequential", dtype="float64")
model.fit(R, user_factors=U0, item_factors=V0)
print(f"final training MSE: {model.history_['train_mse'][-1]:.9f}")

# %%
# The notebook's own loop
# -----------------------
# Copied from the notebook, unchanged, and run from the same initial factors.
# The two agree to every printed digit; they differ only by rounding in the
# last bits, because the kernel adds up a dot product's terms in its own
# order.


def sgd(R, U, V, lr=0.05, reg=0.01, epochs=200):
    errors = []
    rows, cols = np.where(~np.isnan(R))
    for _ in range(epochs):
        for i, j in zip(rows, cols):
            err = R[i, j] - U[i] @ V[j]
            U[i] += lr * (err * V[j] - reg * U[i])
            V[j] += lr * (err * U[i] - reg * V[j])
        pred = U @ V.T
        errors.append(np.nanmean((pred - R) ** 2))
    return errors


U, V = U0.copy(), V0.copy()
losses = sgd(R, U, V)
print(f"notebook's final MSE: {losses[-1]:.9f}")
loss_gap = np.max(np.abs(np.array(losses) - model.history_["train_mse"]))
factor_gap = max(np.abs(U - model.user_factors_).max(), np.abs(V - model.item_factors_).max())
print(f"largest difference over the 200 epochs' losses: {loss_gap:.1e}")
print(f"largest difference in the factors: {factor_gap:.1e}")

# %%
# The loss curve
# --------------
# :meth:`~mfcy.MatrixFactorization.plot_loss` draws the notebook's first
# figure. On a logarithmic axis the two phases show: a fast fall while the
# factors find the rank-3 structure, then a slow approach to the floor that
# the regularization sets.

ax = model.plot_loss()  # logarithmic: the loss spans decades
ax.set_title("The lesson: training MSE per epoch")
ax.figure.tight_layout()

# %%
# The reconstruction next to the truth
# ------------------------------------
# The notebook draws :math:`U V^\top` alone. Its generator also made the full
# matrix, the 129 entries nobody observed included; replaying that generator
# puts the truth beside the reconstruction. One colour scale serves all
# three panels.

rs = np.random.RandomState(42)  # the notebook's np.random.seed(42)
true_U, true_V = rs.randn(20, 3), rs.randn(15, 3)
R_true = true_U @ true_V.T
assert np.allclose(R_true[observed], R[observed])  # the same matrix

R_hat = model.reconstruct()
axes = plot_matrices([R, R_true, R_hat],
                     ["Observed (blank = unknown)", "True", "Reconstructed, U Vᵀ"],
                     label="rating (arbitrary units)")
fig = axes[0].figure
fig.suptitle("The lesson's 20 × 15 ratings matrix (user and item indices)")

squared_error = (R_hat - R_true) ** 2
print(f"MSE on the {observed.sum()} observed entries: {squared_error[observed].mean():.6f}")
print(f"MSE on the {(~observed).sum()} hidden entries:   {squared_error[~observed].mean():.6f}")

# %%
# The model fills in the unknown 40 % too, but less precisely than it fits
# the observed entries: a user or an item with few observations pins down
# its factors only loosely. The :doc:`next example <plot_02_latent_dimension>`
# asks how that changes with the number of latent factors.
