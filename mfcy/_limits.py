"""Sizes a fit refuses (or warns about) before they exhaust memory or give garbage.

Each check is a clear ``ValueError`` raised before the allocation it guards,
or, for a fit that runs but diverges slowly, a warning at its end. The limits
are generous: they refuse inputs whose *declared* size is out of all
proportion to the data, never a large fit whose size comes from its data.
"""

from __future__ import annotations

import math
import warnings

#: Rows plus columns a sparse matrix may declare beyond 16 per stored entry
#: (their ids alone cost 8 bytes each, their factors ``n_factors`` floats).
SPARSE_SHAPE_SLACK = 1 << 26
#: A block grid of up to this many blocks is always allowed (its bookkeeping,
#: a few int64 per block, is then a few tens of MB at most).
SMALL_GRID = 1 << 20
#: A loss this many times its first epoch's is diverging, not fitting.
LOSS_GROWTH = 10.0


def check_sparse_shape(shape, n_stored):
    """Refuse a sparse matrix whose shape is mostly empty rows and columns, before its ids.

    Every row and column of a sparse matrix is a user or item of the model,
    with its own id and factors: a 10**9 x 10**9 matrix with 3 entries would
    allocate for 2 * 10**9 of them.
    """
    n_rows, n_cols = (int(n) for n in shape)
    if n_rows + n_cols > SPARSE_SHAPE_SLACK + 16 * n_stored:
        raise ValueError(
            f"the sparse matrix declares shape {(n_rows, n_cols)} but stores {n_stored} "
            "entries: every row and column would become a user or item with its own factors "
            f"({n_rows + n_cols:.3g} of them). Pass the stored entries as (row, column) "
            "pairs instead, e.g. fit(np.column_stack([X.row, X.col]), X.data) for a COO "
            "matrix X, to model only the rows and columns that hold ratings")


def check_block_grid(n_blocks, n_ratings):
    """Refuse an ``n_blocks x n_blocks`` grid far larger than the ratings, before building it."""
    n_cells = n_blocks * n_blocks
    if n_cells > max(SMALL_GRID, n_ratings):
        largest = max(math.isqrt(SMALL_GRID), math.isqrt(n_ratings))
        raise ValueError(
            f"n_blocks={n_blocks} cuts the ratings into {n_cells:.3g} blocks for {n_ratings} "
            f"ratings (the grid's bookkeeping alone would take ~{n_cells * 40 / 1e9:.3g} GB); "
            f"use n_blocks <= {largest} (blocks of many ratings each)")


def warn_if_loss_grew(history, track_loss, learning_rate, stacklevel=3):
    """Warn when a fit ended with a (finite) loss far above its first epoch's.

    The first epoch's SGD error (``sgd_mse[0]``) is the error of the starting
    point, updated as the epoch goes; a final training error ten times larger
    means the updates overshoot (a learning rate too large for the number of
    factors), which stays finite for a few epochs before it overflows.
    """
    start = history["sgd_mse"][0] if history.get("sgd_mse") else None
    end = (history.get("train_mse") if track_loss else history.get("sgd_mse")) or [None]
    end = end[-1]
    if start is None or end is None or not end > LOSS_GROWTH * start:
        return
    warnings.warn(
        f"the training loss grew from {start:.3g} (first epoch) to {end:.3g} during the fit: "
        f"SGD is diverging and the factors are meaningless; lower learning_rate (now "
        f"{learning_rate!r}: an update moves a prediction by about learning_rate x "
        "n_factors x init_std**2 times its error, so many factors need a smaller rate), "
        "or center and rescale the ratings",
        UserWarning, stacklevel=stacklevel)
