"""Plots of training curves and rating matrices (matplotlib is imported lazily)."""

from __future__ import annotations

__all__ = ["plot_loss", "plot_matrix", "plot_validation_curve"]


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


def _plain(value):
    """A numpy scalar as the Python number it holds (repr np.float64(0.1) -> 0.1)."""
    return value.item() if hasattr(value, "item") else value


def plot_validation_curve(param_range, validation_scores, train_scores=None, *,
                          param_name="parameter", score_name="RMSE", ax=None, xscale=None):
    """Validation (and training) score against the values of a hyperparameter.

    The lowest validation score is marked. Numeric values are drawn on a
    numeric axis (logarithmic when they are positive and span a factor of 10
    or more, unless ``xscale`` says otherwise); other values (``False`` /
    ``True`` of ``biased``, names) as labelled categories.

    Parameters
    ----------
    param_range : sequence
        The hyperparameter values.
    validation_scores : array-like of shape (len(param_range),)
    train_scores : array-like of shape (len(param_range),), optional
    param_name : str, default="parameter"
        Label of the x axis.
    score_name : str, default="RMSE"
        Label of the y axis.
    ax : matplotlib Axes, optional
    xscale : {"linear", "log"}, optional
        Scale of a numeric x axis; chosen from the values if omitted.

    Returns
    -------
    matplotlib.axes.Axes

    See Also
    --------
    mfcy.model_selection.validation_curve : computes the scores.
    """
    import numpy as np

    values = list(param_range)
    val = np.asarray(validation_scores, dtype=float)
    if val.ndim != 1 or len(val) != len(values) or not len(values):
        raise ValueError(f"validation_scores must have one score per value "
                         f"({len(values)}), got shape {val.shape}")
    train = None if train_scores is None else np.asarray(train_scores, dtype=float)
    if train is not None and train.shape != val.shape:
        raise ValueError(f"train_scores must have shape {val.shape}, got {train.shape}")
    numeric = all(isinstance(v, (int, float, np.integer, np.floating))
                  and not isinstance(v, (bool, np.bool_)) for v in values)
    ax = _axes(ax)
    x = np.asarray(values, dtype=float) if numeric else np.arange(len(values))
    style = "o-" if numeric else "o"
    if train is not None:
        ax.plot(x, train, style, label=f"training {score_name}")
    ax.plot(x, val, style, label=f"validation {score_name}")
    best = int(np.argmin(val))
    ax.plot([x[best]], [val[best]], "*", markersize=14, color="black",
            label=f"best: {param_name}={_plain(values[best])!r}")
    if numeric:
        if xscale is None:
            positive = (x > 0).all()
            xscale = "log" if positive and x.max() >= 10 * x.min() else "linear"
        ax.set_xscale(xscale)
    else:
        ax.set_xticks(x, [str(v) for v in values])
        ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set_xlabel(param_name)
    ax.set_ylabel(score_name)
    ax.set_title(f"Validation curve: {param_name}")
    ax.legend()
    return ax
