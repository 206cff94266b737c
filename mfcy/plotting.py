"""Plots of training curves and rating matrices (matplotlib is imported lazily)."""

from __future__ import annotations

__all__ = ["plot_loss", "plot_matrix", "plot_matrices", "plot_validation_curve"]


def _integer_ticks(axis):
    """Ticks at whole numbers only (epochs, user and item indices)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(6, 4)).add_subplot()


def plot_loss(history, ax=None, *, key="train_mse", yscale=None):
    """Plot a per-epoch curve of a model's ``history_``.

    Parameters
    ----------
    history : dict of lists
        A fitted model's ``history_``.
    ax : matplotlib Axes, optional
    key : str, default="train_mse"
        Which curve; ``"val_*"`` curves are drawn too when present.
    yscale : {"linear", "log"}, optional
        By default logarithmic when the values are positive and span a
        factor of 10 or more (a loss curve usually does), else linear.

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
    if yscale is None:
        import numpy as np

        drawn = np.asarray(list(values) + list(val or []), dtype=float)
        yscale = ("log" if (drawn > 0).all() and drawn.max() >= 10 * drawn.min()
                  else "linear")
    ax.set_yscale(yscale)
    _integer_ticks(ax.xaxis)
    ax.set_title("Matrix factorization loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.upper() + " (squared rating units)" if metric == "mse" else metric.upper())
    return ax


def plot_matrix(M, ax=None, *, title="Ratings", colorbar=True, vmin=None, vmax=None):
    """Heat map of a users × items matrix (NaN cells left blank), integer ticks.

    Parameters
    ----------
    M : array-like of shape (n_users, n_items)
    ax : matplotlib Axes, optional
    title : str
    colorbar : bool, default=True
    vmin, vmax : float, optional
        The colour scale; the matrix's own range if omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    image = ax.imshow(M, aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
    ax.set_title(title)
    ax.set_xlabel("item")
    ax.set_ylabel("user")
    _integer_ticks(ax.xaxis)
    _integer_ticks(ax.yaxis)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="rating")
    return ax


def plot_matrices(matrices, titles=None, *, axes=None, label="rating"):
    """Heat maps side by side on one colour scale, with one colour bar.

    Parameters
    ----------
    matrices : sequence of array-like of shape (n_users, n_items)
        E.g. the observed ratings (NaN blank) and ``model.reconstruct()``.
    titles : sequence of str, optional
    axes : sequence of matplotlib Axes, optional
        One per matrix; a new figure of one row if omitted.
    label : str, default="rating"
        Label of the colour bar.

    Returns
    -------
    list of matplotlib.axes.Axes
    """
    import numpy as np

    matrices = [np.asarray(M, dtype=float) for M in matrices]
    if not matrices:
        raise ValueError("plot_matrices needs at least one matrix")
    titles = list(titles) if titles is not None else [""] * len(matrices)
    if len(titles) != len(matrices):
        raise ValueError(f"got {len(titles)} titles for {len(matrices)} matrices")
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(matrices), figsize=(4 * len(matrices) + 1, 4),
                                 sharey=True, layout="constrained", squeeze=False)
        axes = list(axes[0])
    axes = list(axes)
    vmin = min(np.nanmin(M) for M in matrices)
    vmax = max(np.nanmax(M) for M in matrices)
    for ax, M, title in zip(axes, matrices, titles):
        plot_matrix(M, ax=ax, title=title, colorbar=False, vmin=vmin, vmax=vmax)
    for ax in axes[1:]:
        ax.set_ylabel("")
    axes[0].figure.colorbar(axes[0].images[0], ax=axes, label=label)
    return axes


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
