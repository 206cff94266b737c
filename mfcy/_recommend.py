"""Reading a fitted factorization: top-n recommendations, similar items, the dense matrix.

Functions of a :class:`~mfcy._state.FittedState` (the caller takes the one
reference), shared by every model whose scores are ``μ + b_u + b_i + p_uᵀ q_i``.
"""

from __future__ import annotations

import numpy as np

from ._params import Integer
from .data import encode_query_ids

__all__ = ["recommend", "similar_items", "reconstruct"]


def recommend(state, users, n=10, *, exclude_seen=True, batch_size=None):
    """Top-``n`` items of each user and their scores (see ``MatrixFactorization.recommend``)."""
    single = np.ndim(users) == 0
    user_idx = state.user_codes(np.atleast_1d(np.asarray(users)))
    n_items = len(state.items)
    n = min(Integer(1).check("n", n, None), n_items)
    if batch_size is None:
        batch_size = max(1, 2**24 // max(n_items, 1))
    batch_size = Integer(1).check("batch_size", batch_size, None)
    Q = state.item_factors
    item_base = state.item_bias.astype(Q.dtype) + (Q.dtype.type(state.global_mean)
                                                    if state.biased else 0)
    top = np.empty((len(user_idx), n), dtype=np.int64)
    scores = np.empty((len(user_idx), n), dtype=np.float64)
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
        part = np.argpartition(-S, n - 1, axis=1)[:, :n] if n < n_items else (
            np.broadcast_to(np.arange(n_items), S.shape).copy())
        part_scores = np.take_along_axis(S, part, axis=1)
        # Best first; equal scores in item order, so results are deterministic.
        order = np.lexsort((part, -part_scores), axis=1) if part.size else part
        top[start:start + len(batch)] = np.take_along_axis(part, order, axis=1)
        scores[start:start + len(batch)] = np.take_along_axis(part_scores, order, axis=1)
    items = state.items[top]
    return (items[0], scores[0]) if single else (items, scores)


def similar_items(state, item, n=10):
    """The ``n`` items of highest cosine with ``item`` (see ``MatrixFactorization.similar_items``)."""
    idx = encode_query_ids(np.atleast_1d(np.asarray(item)), state.items, "item ids")
    if idx.size != 1 or idx[0] < 0:
        raise ValueError(f"similar_items needs one item id seen in training, got {item!r}")
    Q = state.item_factors.astype(np.float64)
    norms = np.linalg.norm(Q, axis=1)
    norms[norms == 0] = 1.0  # a zero vector is similar to nothing (cosine 0)
    sims = (Q @ Q[idx[0]]) / (norms * norms[idx[0]])
    sims[idx[0]] = -np.inf
    n = min(Integer(1).check("n", n, None), len(sims) - 1)
    best = np.lexsort((np.arange(len(sims)), -sims))[:n]
    return state.items[best], sims[best]


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
