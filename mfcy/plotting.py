"""Plots of training curves and rating matrices (matplotlib is imported lazily)."""

from __future__ import annotations

__all__ = ["plot_loss", "plot_matrix"]


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(6, 4)).add_subplot()


def plot_loss(history, ax=None, *, key="train_mse"):
    """Plot a per-epoch curve of a model's ``history_``.

    Parameters
    ----------
    history : dict of lists
        A fitted model's ``history_``.
    ax : matplotlib Axes, optional
    key : str, default="train_mse"
        Which curve; ``"val_*"`` curves are drawn too when present.

    Returns
    -------
    matplotlib.axes.Axes
    """
    values = history.get(key)
    if not values:
        raise ValueError(f"history has no {key!r} values (fit with track_loss=True)")
    ax = _axes(ax)
    epochs = range(1, len(values) + 1)
    ax.plot(epochs, values, label=key.replace("_", " "))
    metric = key.split("_", 1)[-1]
    val = history.get(f"val_{metric}")
    if val:
        ax.plot(range(1, len(val) + 1), val, label=f"val {metric}")
        ax.legend()
    ax.set_title("Matrix factorization loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.upper() + " (squared rating units)" if metric == "mse" else metric.upper())
    return ax


def plot_matrix(M, ax=None, *, title="Ratings", colorbar=True):
    """Heat map of a users × items matrix (NaN cells left blank).

    Parameters
    ----------
    M : array-like of shape (n_users, n_items)
    ax : matplotlib Axes, optional
    title : str
    colorbar : bool, default=True

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    image = ax.imshow(M, aspect="auto", cmap="viridis")
    ax.set_title(title)
    ax.set_xlabel("item")
    ax.set_ylabel("user")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="rating")
    return ax
