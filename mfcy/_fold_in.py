"""Folding new users into a fitted model: per-user ridge solutions against fixed item factors.

Shared by every factorization model whose prediction is ``μ + b_u + b_i + p_uᵀ q_i``
(or ``p_uᵀ q_i``): the result is a new :class:`~mfcy._state.FittedState`,
the old one is never modified (a reader holding it keeps a consistent model).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from ._input import encode_query_ids, to_triples

__all__ = ["fold_in_users"]


def fold_in_users(state, users_raw, items_raw, ratings, regularization, bias_regularization):
    """The state after solving the given users' factors and biases (see ``fold_in``)."""
    item_idx = encode_query_ids(items_raw, state.items, "item ids")
    user_idx = state.user_codes(users_raw)
    new_ids = np.unique(users_raw[user_idx < 0])
    appended = len(new_ids) > 0
    if appended:
        state = _with_users(state, new_ids)
        user_idx = state.user_codes(users_raw)
    usable = item_idx >= 0
    if not usable.all():
        unknown = np.unique(items_raw[~usable])
        # stacklevel: the caller of the model's fold_in().
        warnings.warn(f"fold_in: {int((~usable).sum())} ratings of {len(unknown)} item(s) "
                      f"unknown to the model (e.g. {unknown[0].item()!r}) were left out",
                      UserWarning, stacklevel=3)
    if not usable.any():
        return state
    # Averages duplicate pairs and sorts by user, as fit does.
    triples = to_triples(np.column_stack([user_idx[usable], item_idx[usable]]),
                         ratings[usable])
    users = triples.user_ids[triples.users]
    items = triples.item_ids[triples.items]
    with _one_blas_thread():
        solved_users, factors, biases = _ridge_fold_in(
            state.item_factors, state.item_bias, state.global_mean, state.biased, users,
            items, triples.ratings, regularization, bias_regularization)
    # New arrays (a fresh copy unless _with_users just made one): the old state
    # may still be in use by another thread.
    P = state.user_factors if appended else state.user_factors.copy()
    user_bias = state.user_bias if appended else state.user_bias.copy()
    P[solved_users] = factors
    if state.biased:
        user_bias[solved_users] = biases
    indptr, seen = _add_seen(state, users, items)
    return state.replace(user_factors=P, user_bias=user_bias, seen_indptr=indptr,
                         seen_items=seen)


def _with_users(state, new_ids):
    """The state with rows appended for user ids it has not seen (zero factors and bias)."""
    ids = state.users
    if new_ids.dtype != ids.dtype and ids.dtype.kind not in "US":
        # int64 next to uint64 ids would become float64: keep the model's dtype.
        cast = new_ids.astype(ids.dtype)
        # Compared as Python ints: a round trip through the other 64-bit type
        # restores -9 from 2**64 - 9 (and 2**63 from -2**63).
        if not np.array_equal(cast.astype(object), new_ids.astype(object)):
            raise ValueError(f"user ids {new_ids[:3].tolist()} do not fit the model's "
                             f"id type {ids.dtype}")
        new_ids = cast
    n_new, k = len(new_ids), state.user_factors.shape[1]
    P = state.user_factors
    return state.replace(
        users=np.concatenate([ids, new_ids]),
        user_factors=np.concatenate([P, np.zeros((n_new, k), dtype=P.dtype)]),
        user_bias=np.concatenate([state.user_bias,
                                  np.zeros(n_new, dtype=state.user_bias.dtype)]),
        seen_indptr=np.concatenate([state.seen_indptr,
                                    np.full(n_new, state.seen_indptr[-1], dtype=np.int64)]))


def _add_seen(state, users, items):
    """The training interactions with (user index, item index) pairs added, as a new CSR."""
    n_users, n_items = len(state.users), len(state.items)
    counts = np.diff(state.seen_indptr)
    old_users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    keys = np.unique(np.concatenate([old_users * n_items + state.seen_items,
                                     users.astype(np.int64) * n_items + items]))
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // n_items, minlength=n_users), out=indptr[1:])
    return indptr, (keys % n_items).astype(state.seen_items.dtype)


def _one_blas_thread():
    """Limit BLAS to one thread while solving many small systems, if threadpoolctl is there.

    A fold-in is thousands of k × k products and solves: BLAS threads only
    add synchronisation to each (benchmarks/README.md). threadpoolctl comes with
    scikit-learn; without it the BLAS default stays.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - an optional dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _ridge_fold_in(Q, item_bias, global_mean, biased, users, items, ratings, regularization,
                   bias_regularization, budget=2**22):
    """Closed-form per-user ridge solutions against fixed item factors.

    ``users`` are sorted indices. Each user's Gram matrix is one matrix
    product of its item rows (a batched sum of outer products would write
    ``n_u × d²`` numbers instead of reading ``n_u × d``, far slower at large k);
    the systems of a batch of users, at most ``budget`` numbers of
    Gram matrices, are then solved at once.

    Returns
    -------
    solved : ndarray of int64
        The distinct user indices.
    factors : ndarray of shape (len(solved), k)
    biases : ndarray of shape (len(solved),), zeros for an unbiased model
    """
    k = Q.shape[1]
    d = k + 1 if biased else k
    design = np.empty((len(items), d))
    design[:, :k] = Q[items]
    target = ratings.astype(np.float64)
    if biased:
        design[:, k] = 1.0
        target = target - global_mean - item_bias[items]
    solved, starts, counts = np.unique(users, return_index=True, return_counts=True)
    rhs = np.add.reduceat(design * target[:, None], starts, axis=0)
    penalty = np.full(d, float(regularization))
    if biased:
        penalty[k] = float(bias_regularization)
    singular = not (penalty > 0).all()
    solutions = np.empty((len(solved), d))
    diagonal = np.arange(d)
    batch = max(1, budget // (d * d))
    for first in range(0, len(solved), batch):
        last = min(first + batch, len(solved))
        gram = np.empty((last - first, d, d))
        for j, (start, count) in enumerate(zip(starts[first:last], counts[first:last])):
            rows = design[start:start + count]
            np.matmul(rows.T, rows, out=gram[j])
        gram[:, diagonal, diagonal] += counts[first:last, None] * penalty
        if singular:
            # No penalty: the minimum-norm least-squares solution (the limit
            # of a vanishing one), defined even with fewer ratings than factors.
            solutions[first:last] = (np.linalg.pinv(gram, hermitian=True)
                                     @ rhs[first:last, :, None])[:, :, 0]
        else:
            solutions[first:last] = np.linalg.solve(gram, rhs[first:last, :, None])[:, :, 0]
    biases = solutions[:, k] if biased else np.zeros(len(solved))
    return solved, solutions[:, :k], biases
