"""A fit's starting factors: drawn, given by the caller, or continued from a fitted state."""

from __future__ import annotations

import numpy as np

from ._memory import empty_aligned
from ._input import encode_query_ids

__all__ = ["initial_factors", "continue_from"]

#: Values drawn per block of rows (8 MB of float64).
DRAW_BLOCK_VALUES = 1 << 20


def initial_factors(given, shape, name, rng, params):
    """Factors of ``shape`` in the fit's dtype: drawn from N(0, init_std²), or a checked copy of ``given``."""
    if given is None:
        # Drawn in float64 then cast, so float32 and float64 models start
        # from the same numbers; by blocks of rows, so the float64 draw never
        # takes more than a block's memory (the generator fills in C order, so
        # the numbers are the same as one draw of the whole shape).
        out = empty_aligned(shape, params["dtype"])
        n_rows = shape[0]
        rows = max(1, DRAW_BLOCK_VALUES // max(1, int(np.prod(shape[1:], dtype=np.int64))))
        for start in range(0, n_rows, rows):
            block = rng.standard_normal((min(rows, n_rows - start),) + tuple(shape[1:]))
            block *= params["init_std"]
            out[start:start + len(block)] = block
        return out
    arr = np.asarray(given)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (n, n_factors), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity")
    out = empty_aligned(shape, params["dtype"])
    out[...] = arr
    return out


def continue_from(state, training, P, Q, user_bias, item_bias, accumulators, *, keep_users,
                  keep_items):
    """Copy the fitted factors and biases of the ids that ``training`` shares with ``state``.

    ``P``, ``Q`` and the biases already hold a fresh start for every id;
    rows of ids the model knows are overwritten in place. So are the adagrad
    ``accumulators`` (user, item) when given and the state has them (a
    constant-schedule fit or a loaded model has none: they stay at 1; so do
    the users ``fold_in`` appended, which have none).
    """
    k_old, k = state.user_factors.shape[1], P.shape[1]
    if k_old != k:
        raise ValueError(f"warm_start=True continues from the fitted factors, which have "
                         f"{k_old} columns, but n_factors={k!r}: set "
                         "warm_start=False to start over with a new n_factors")
    user_acc, item_acc = accumulators or (None, None)
    if keep_users:
        old = state.user_codes(training.user_ids)
        known = old >= 0
        P[known] = state.user_factors[old[known]]
        if len(user_bias):
            user_bias[known] = state.user_bias[old[known]]
        _copy_accumulators(state.user_accumulator, user_acc, old)
    if keep_items:
        old = encode_query_ids(training.item_ids, state.items, "item ids")
        known = old >= 0
        Q[known] = state.item_factors[old[known]]
        if len(item_bias):
            item_bias[known] = state.item_bias[old[known]]
        _copy_accumulators(state.item_accumulator, item_acc, old)


def _copy_accumulators(fitted, fresh, old):
    if fitted is None or fresh is None:
        return
    known = (old >= 0) & (old < len(fitted))
    fresh[known] = fitted[old[known]]
