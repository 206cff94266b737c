"""Reading a fitted factorization: top-n recommendations, similar items, the dense matrix.

Functions of a :class:`~mfcy._state.FittedState` (the caller takes the one
reference), shared by every model whose scores are ``μ + b_u + b_i + p_uᵀ q_i``.
"""

from __future__ import annotations

import numpy as np

from ._params import Integer
from ._predict import clip_scale, warn_unknown
from ._input import encode_query_ids

__all__ = ["recommend", "similar", "reconstruct"]


def _fill_value(ids):
    """What a padded slot of ``recommend``'s masked id array holds (the mask is what counts)."""
    if ids.dtype.kind in "US":
        return ""
    return 0 if ids.dtype.kind == "u" else -1


def recommend(state, users, n=10, *, exclude_seen=True, batch_size=None, clip=True,
              scale=None):
    """Top-``n`` items of each user and their scores (see ``MatrixFactorization.recommend``)."""
    single = np.ndim(users) == 0
    asked = np.atleast_1d(np.asarray(users))
    user_idx = state.user_codes(asked)
    unknown = np.flatnonzero(user_idx < 0)
    if len(unknown):
        example = asked[unknown[0]]
        warn_unknown("users are", len(unknown), len(user_idx),
                     example.item() if hasattr(example, "item") else example,
                     "they get the baseline ranking (global mean plus item bias)")
    n_items = len(state.items)
    n = min(Integer(1).check("n", n, None), n_items)
    if batch_size is None:
        batch_size = max(1, 2**24 // max(n_items, 1))
    batch_size = Integer(1).check("batch_size", batch_size, None)
    # How many items each user has left to recommend.
    available = np.full(len(user_idx), n_items, dtype=np.int64)
    if exclude_seen:
        known = user_idx >= 0
        available[known] -= np.diff(state.seen_indptr)[user_idx[known]]
    width = min(n, int(available.max())) if len(available) else n
    Q = state.item_factors
    item_base = state.item_bias.astype(Q.dtype) + (Q.dtype.type(state.global_mean)
                                                    if state.biased else 0)
    top = np.empty((len(user_idx), width), dtype=np.int64)
    scores = np.empty((len(user_idx), width), dtype=np.float64)
    for start in range(0, len(user_idx), batch_size):
        batch = user_idx[start:start + batch_size]
        known = batch >= 0
        S = np.empty((len(batch), n_items), dtype=Q.dtype)
        S[known] = state.scoring_user_factors[batch[known]] @ Q.T
        if state.biased:
            S[known] += state.user_bias[batch[known], None]
            S[known] += item_base
        # An unknown user: no factors, no user bias -> the baseline ranking.
        S[~known] = item_base if state.biased else state.global_mean
        if exclude_seen:
            rows, cols = state.seen_pairs(batch)
            S[rows, cols] = -np.inf
        part = np.argpartition(-S, width - 1, axis=1)[:, :width] if 0 < width < n_items else (
            np.broadcast_to(np.arange(n_items), S.shape).copy()[:, :width])
        part_scores = np.take_along_axis(S, part, axis=1)
        # Best first; equal scores in item order, so results are deterministic.
        order = np.lexsort((part, -part_scores), axis=1) if part.size else part
        top[start:start + len(batch)] = np.take_along_axis(part, order, axis=1)
        scores[start:start + len(batch)] = np.take_along_axis(part_scores, order, axis=1)
    # Ranked by the raw score, shown on the rating scale.
    if clip:
        np.clip(scores, *clip_scale(scale, state), out=scores)
    padded = np.arange(width)[None, :] >= available[:, None]
    items = state.items[top]
    if single:
        keep = ~padded[0]
        return items[0][keep], scores[0][keep]
    items[padded] = _fill_value(state.items)
    scores[padded] = np.nan
    return np.ma.MaskedArray(items, padded), np.ma.MaskedArray(scores, padded)


def _similar(factors, ids, asked, n, what):
    """The ``n`` rows of ``factors`` of highest cosine with each asked id's row."""
    single = np.ndim(asked) == 0
    idx = encode_query_ids(np.atleast_1d(np.asarray(asked)), ids, f"{what} ids")
    if idx.size == 0 or (idx < 0).any():
        missing = np.atleast_1d(np.asarray(asked))[idx < 0] if idx.size else []
        raise ValueError(f"similar_{what}s needs {what} ids seen in training, got "
                         f"{asked!r}" + (f" (unknown: {missing[:5].tolist()!r})"
                                         if len(missing) else ""))
    V = factors.astype(np.float64)
    norms = np.linalg.norm(V, axis=1)
    norms[norms == 0] = 1.0  # a zero vector is similar to nothing (cosine 0)
    sims = (V[idx] @ V.T) / (norms[idx, None] * norms[None, :])
    sims[np.arange(len(idx)), idx] = -np.inf
    n = min(Integer(1).check("n", n, None), V.shape[0] - 1)
    best = np.empty((len(idx), n), dtype=np.int64)
    columns = np.arange(V.shape[0])
    for row in range(len(idx)):
        best[row] = np.lexsort((columns, -sims[row]))[:n]
    out_ids, out_sims = ids[best], np.take_along_axis(sims, best, axis=1)
    return (out_ids[0], out_sims[0]) if single else (out_ids, out_sims)


def similar(state, asked, n=10, *, what="item"):
    """Most similar items (``what="item"``) or users by cosine of their factor vectors."""
    if what == "item":
        return _similar(state.item_factors, state.items, asked, n, "item")
    # Users: ``users`` is not sorted after fold_in, so map through the state's lookup.
    codes = state.user_codes(np.atleast_1d(np.asarray(asked)))
    if (codes < 0).any():
        missing = np.atleast_1d(np.asarray(asked))[codes < 0]
        raise ValueError(f"similar_users needs user ids seen in training, got {asked!r} "
                         f"(unknown: {missing[:5].tolist()!r})")
    positions = np.arange(len(state.users))
    one = codes if np.ndim(asked) else codes[0]
    found, sims = _similar(state.user_factors, positions, one, n, "user")
    return state.users[found], sims


def reconstruct(state, *, allow_large=False, max_cells=10**8):
    """The dense predicted matrix (see ``MatrixFactorization.reconstruct``)."""
    n_users, n_items = len(state.user_factors), len(state.item_factors)
    if n_users * n_items > max_cells and not allow_large:
        raise ValueError(f"reconstruct() would build a {n_users} x {n_items} matrix "
                         f"({n_users * n_items:.3g} cells); pass allow_large=True if "
                         "you really want it, or use predict() on the pairs you need")
    M = state.scoring_user_factors.astype(np.float64) @ state.item_factors.T.astype(np.float64)
    if state.biased:
        M += state.global_mean + state.user_bias[:, None] + state.item_bias[None, :]
    return M
