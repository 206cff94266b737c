"""How good are the predictions: rating errors and top-N ranking quality.

Rating errors compare predicted with true ratings: :func:`rmse`, :func:`mae`.

Ranking metrics judge the top-``k`` recommendations of each user against the
user's held-out ratings: :func:`precision_at_k`, :func:`recall_at_k`,
:func:`ndcg_at_k`, :func:`map_at_k`. They share these definitions:

* **Relevant items.** A held-out (user, item, rating) is *relevant* when
  ``rating >= threshold``; with ``threshold=None`` every held-out item is
  relevant (the user chose to rate it). On a 1–5 star scale ``threshold=4``
  is the usual choice ("liked").
* **Evaluated users.** The users with at least one relevant held-out item
  (for the others recall and nDCG are undefined); the score is the mean over
  them, each user weighing the same.
* **Recommendations.** Either a fitted model, whose
  :meth:`~mfcy.MatrixFactorization.recommend` is asked for the evaluated
  users' top ``k`` (leaving out their training items by default, so that
  held-out items compete only with items the user has not rated), or a
  mapping ``{user id: item ids, best first}`` (a user missing from it has no
  recommendations, and scores 0).

With ``hit_j = 1`` when the item at rank ``j`` (1-based) is relevant and
``R`` the number of relevant items of the user:

* ``precision@k = Σ_j hit_j / k`` (``k`` even when fewer items were
  recommended);
* ``recall@k = Σ_j hit_j / R``;
* ``nDCG@k = DCG / IDCG`` with binary gains, ``DCG = Σ_j hit_j / log2(j + 1)``
  and ``IDCG`` the DCG of a list that puts ``min(R, k)`` relevant items first;
* ``AP@k = Σ_j hit_j · precision@j / min(R, k)``, and ``MAP@k`` its mean.

Examples
--------
>>> from mfcy.metrics import precision_at_k, recall_at_k
>>> held_out = [["ann", "a"], ["ann", "c"], ["bob", "b"]]
>>> ratings = [5, 2, 4]
>>> recommended = {"ann": ["a", "b"], "bob": ["a", "c"]}
>>> precision_at_k(recommended, held_out, ratings, k=2, threshold=4)
0.25
>>> recall_at_k(recommended, held_out, ratings, k=2, threshold=4)
0.5
"""

from __future__ import annotations

import numbers

import numpy as np

from ._input import as_ids, as_ratings, rating_rows

__all__ = ["rmse", "mae", "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k"]


def _errors(y_true, y_pred):
    true = as_ratings(y_true, "y_true")
    pred = as_ratings(y_pred, "y_pred")
    if len(true) != len(pred):
        raise ValueError(f"y_true has {len(true)} values but y_pred has {len(pred)}")
    if len(true) == 0:
        raise ValueError("y_true and y_pred are empty")
    return true - pred


def rmse(y_true, y_pred):
    """Root mean squared error.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted ratings.

    Returns
    -------
    float
    """
    err = _errors(y_true, y_pred)
    return float(np.sqrt(np.mean(err * err)))


def mae(y_true, y_pred):
    """Mean absolute error.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted ratings.

    Returns
    -------
    float
    """
    return float(np.mean(np.abs(_errors(y_true, y_pred))))


def _check_k(k):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def _relevant(X_test, y_test, threshold):
    """Distinct relevant (user id, item id) pairs of the held-out data."""
    users, items, ratings = rating_rows(X_test, y_test)
    if threshold is None:
        keep = np.ones(len(ratings), dtype=bool)
    else:
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
            raise ValueError(f"threshold must be a number or None, got {threshold!r}")
        keep = ratings >= threshold
    if not keep.any():
        raise ValueError(f"no held-out rating is relevant (>= threshold={threshold!r}): "
                         "nothing to rank against")
    return users[keep], items[keep]


def _same_kind(a, b, what):
    if (a.dtype.kind in "US") != (b.dtype.kind in "US"):
        raise ValueError(f"{what}: recommended and held-out ids differ in type "
                         "(strings against integers)")


def _recommended(recommendations, users, k, exclude_seen):
    """Top-``k`` item ids per user as an (n_users, k) array and a mask of real slots."""
    if hasattr(recommendations, "recommend"):
        items, scores = recommendations.recommend(users, n=k, exclude_seen=exclude_seen)
        valid = np.isfinite(scores)  # -inf marks slots beyond the user's unrated items
        if items.shape[1] < k:  # fewer items in the model than k
            pad = k - items.shape[1]
            items = np.concatenate([items, np.repeat(items[:, :1], pad, axis=1)], axis=1)
            valid = np.concatenate([valid, np.zeros((len(users), pad), dtype=bool)], axis=1)
        return items, valid
    if not hasattr(recommendations, "get"):
        raise ValueError("recommendations must be a fitted model (with .recommend) or a "
                         "mapping {user id: item ids, best first}, got "
                         f"{type(recommendations).__name__}")
    lists = []
    for user in users:  # numpy scalars hash and compare like Python ints and strs
        top = list(recommendations.get(user, ()))[:k]
        if len(set(top)) != len(top):
            raise ValueError(f"the recommendations of user {user!r} repeat an item")
        lists.append(top)
    flat = [item for top in lists for item in top]
    flat = as_ids(np.asarray(flat) if flat else np.zeros(0, dtype=np.int64),
                  "recommended item ids")
    valid = np.arange(k) < np.array([len(top) for top in lists])[:, None]
    items = np.zeros((len(users), k), dtype=flat.dtype)  # unused slots stay masked
    items[valid] = flat
    return items, valid


def _hits(recommendations, X_test, y_test, k, threshold, exclude_seen):
    """(n_users, k) booleans: is the item at each rank relevant; and R per user."""
    k = _check_k(k)
    rel_users, rel_items = _relevant(X_test, y_test, threshold)
    users, user_row = np.unique(rel_users, return_inverse=True)
    user_row = user_row.reshape(-1)
    items, valid = _recommended(recommendations, users, k, exclude_seen)
    if not valid.any():  # nothing recommended: any placeholder id will do
        items = np.full(valid.shape, rel_items[0])
    items = as_ids(items.reshape(-1), "recommended item ids").reshape(items.shape)
    _same_kind(items, rel_items, "ranking metrics")
    # One code per distinct item id, then (user row, item code) keys.
    codes, inverse = np.unique(np.concatenate([rel_items, items.reshape(-1)]),
                               return_inverse=True)
    inverse = inverse.reshape(-1)
    rel_keys = np.unique(user_row.astype(np.int64) * len(codes) + inverse[:len(rel_items)])
    rec_keys = (np.arange(len(users), dtype=np.int64)[:, None] * len(codes)
                + inverse[len(rel_items):].reshape(items.shape))
    hits = np.isin(rec_keys, rel_keys) & valid
    n_relevant = np.bincount(rel_keys // len(codes), minlength=len(users))
    return hits, n_relevant


def _per_user(name, recommendations, X_test, y_test, k, threshold, exclude_seen):
    hits, n_relevant = _hits(recommendations, X_test, y_test, k, threshold, exclude_seen)
    k = hits.shape[1]
    if name == "precision":
        return hits.sum(axis=1) / k
    if name == "recall":
        return hits.sum(axis=1) / n_relevant
    ranks = np.arange(1, k + 1)
    if name == "ndcg":
        discount = 1.0 / np.log2(ranks + 1)
        ideal = np.cumsum(discount)[np.minimum(n_relevant, k) - 1]
        return (hits @ discount) / ideal
    precision_at = np.cumsum(hits, axis=1) / ranks
    return (precision_at * hits).sum(axis=1) / np.minimum(n_relevant, k)


_RANKING_DOC = """{summary}

    See :mod:`mfcy.metrics` for the definitions.

    Parameters
    ----------
    recommendations : fitted model or mapping
        A model with ``recommend`` (e.g. :class:`~mfcy.MatrixFactorization`),
        or ``{{user id: item ids, best first}}``.
    X_test : array-like of shape (n, 2), or any form ``fit`` takes
        Held-out (user id, item id) pairs with ``y_test``, or held-out
        ratings on their own (a matrix with NaN for unknown entries, ...).
    y_test : array-like of shape (n,), optional
        Held-out ratings of the pairs in ``X_test``.
    k : int, default=10
        Length of each user's list.
    threshold : float, optional
        Held-out items rated at least this are relevant; None: all are.
    exclude_seen : bool, default=True
        For a model: leave each user's training items out of the list.

    Returns
    -------
    float
        The mean over the users with at least one relevant held-out item.
    """


def _ranking_metric(kind, name, summary):
    """One public ranking metric: :func:`_per_user` of ``kind``, averaged over users."""
    def metric(recommendations, X_test, y_test=None, *, k=10, threshold=None,
               exclude_seen=True):
        return float(np.mean(_per_user(kind, recommendations, X_test, y_test, k, threshold,
                                        exclude_seen)))

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = _RANKING_DOC.format(summary=summary)
    return metric


precision_at_k = _ranking_metric(
    "precision", "precision_at_k",
    "Precision at ``k``: the share of each top-``k`` list that is relevant.")
recall_at_k = _ranking_metric(
    "recall", "recall_at_k",
    "Recall at ``k``: the share of each user's relevant items in its top ``k``.")
ndcg_at_k = _ranking_metric(
    "ndcg", "ndcg_at_k",
    "Normalised discounted cumulative gain at ``k``, with binary relevance.")
map_at_k = _ranking_metric("map", "map_at_k", "Mean average precision at ``k``.")
