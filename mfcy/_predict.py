"""Predicted ratings of (user, item) id pairs, shared by every model of ``μ + b_u + b_i + p_uᵀ q_i``.

What ``MatrixFactorization.predict`` promises, in one place:

* clipped to the rating scale by default (as Surprise does), raw with
  ``clip=False``;
* float64 out; the pairs whose user and item are both known are computed by
  the kernel in double precision and rounded to the model's dtype (a float32
  model's prediction is a float32 value), while a *fallback* prediction (the
  user or the item unseen in training) is the baseline ``μ + b`` computed in
  float64, not rounded to float32;
* unknown ids are reported: with ``return_fallback=True`` as a mask,
  otherwise by an :class:`~mfcy.exceptions.UnknownIdWarning`;
* one (user, item) pair given as two scalars gives a scalar.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._input import encode_query_ids, split_pairs
from .exceptions import UnknownIdWarning

__all__ = ["predict", "clip_scale", "warn_unknown"]


def clip_scale(rating_scale, state):
    """The (low, high) that predictions are clipped to: the parameter, else the training range."""
    return state.rating_range if rating_scale is None else rating_scale


def warn_unknown(what, n_unknown, n_total, example, remedy, stacklevel=4):
    """One :class:`UnknownIdWarning` saying how many asked ids the model does not know."""
    warnings.warn(f"{n_unknown} of {n_total} {what} not seen in training (e.g. {example!r}): "
                  f"{remedy}", UnknownIdWarning, stacklevel=stacklevel)


def predict(state, X, items, *, clip, rating_scale, return_fallback):
    """``MatrixFactorization.predict`` over the fitted ``state`` (see its docstring)."""
    scalar = (items is not None and np.asarray(items).ndim == 0
              and np.asarray(X).ndim == 0)
    if scalar:
        X, items = [X], [items]
    users, items = split_pairs(X) if items is None else (X, items)
    user_idx = state.user_codes(users)
    item_idx = encode_query_ids(items, state.items, "item ids")
    if len(user_idx) != len(item_idx):
        raise ValueError(f"got {len(user_idx)} users but {len(item_idx)} items")
    out = state.predict_indices(user_idx, item_idx).astype(np.float64)
    fallback = (user_idx < 0) | (item_idx < 0)
    if fallback.any():
        rows = np.flatnonzero(fallback)
        base = np.full(len(rows), state.global_mean, dtype=np.float64)
        if state.biased:
            u, i = user_idx[rows], item_idx[rows]
            base[u >= 0] += state.user_bias[u[u >= 0]].astype(np.float64)
            base[i >= 0] += state.item_bias[i[i >= 0]].astype(np.float64)
        out[rows] = base
        if not return_fallback:
            first = rows[0]
            example = (np.asarray(users)[first] if user_idx[first] < 0
                       else np.asarray(items)[first])
            warn_unknown("(user, item) pairs have a user or an item", len(rows), len(out),
                         _plain(example), "they get the baseline prediction (global mean plus "
                         "the known side's bias); pass return_fallback=True to get which")
    if clip:
        np.clip(out, *clip_scale(rating_scale, state), out=out)
    if scalar:
        return (float(out[0]), bool(fallback[0])) if return_fallback else float(out[0])
    return (out, fallback) if return_fallback else out


def _plain(value):
    return value.item() if hasattr(value, "item") else value
