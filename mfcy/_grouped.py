"""Training ratings grouped by user and by item: the input of the SVD++, NMF and
baseline kernels (:mod:`mfcy._models`), built once per fit from any input form."""

from __future__ import annotations

import numpy as np

from ._exact import exact_mean
from ._extensions import _layout
from ._input import _canonical, encode_query_ids, to_encoded

__all__ = ["GroupedRatings", "copy_known_rows"]


class GroupedRatings:
    """The distinct (user, item) ratings of a fit, as CSR by user and (on demand) by item.

    ``users``, ``items``, ``ratings`` are the canonical triples (sorted by user,
    then item; duplicates averaged), so ``user_ptr`` with ``items`` and
    ``ratings`` is the CSR by user with each user's items ascending, which is
    also the model's seen-items CSR.
    """

    def __init__(self, X, y, columns, dtype):
        data = to_encoded(X, y, columns=columns)
        self.n_input_rows = len(data)
        triples = _canonical(data.users, data.items, data.ratings, data.user_ids,
                             data.item_ids)
        del data
        self.user_ids, self.item_ids = triples.user_ids, triples.item_ids
        self.n_users, self.n_items = len(self.user_ids), len(self.item_ids)
        ratings64 = triples.ratings
        with np.errstate(over="ignore"):  # reported below, as a ValueError
            self.ratings = ratings64.astype(dtype, copy=False)
        if not np.isfinite(self.ratings).all():
            raise ValueError(f"ratings overflow {np.dtype(dtype).name} (largest magnitude "
                             f"{np.abs(ratings64).max():.3g})")
        # Exact, as MatrixFactorization's (the same mean to the last bit).
        self.global_mean = exact_mean(ratings64)
        self.rating_range = (float(ratings64.min()), float(ratings64.max()))
        self.users, self.items = triples.users, triples.items
        self.user_ptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(_layout.count_keys(self.users, self.n_users), out=self.user_ptr[1:])

    def __len__(self):
        return len(self.ratings)

    @property
    def by_user(self):
        """``(user_ptr, user_items, user_ratings)``."""
        return self.user_ptr, self.items, self.ratings

    def item_ptr(self):
        """The ``item_ptr`` of :meth:`by_item` alone (item ``j`` has
        ``item_ptr[j + 1] - item_ptr[j]`` ratings), without sorting."""
        item_ptr = np.zeros(self.n_items + 1, dtype=np.int64)
        np.cumsum(_layout.count_keys(self.items, self.n_items), out=item_ptr[1:])
        return item_ptr

    def by_item(self):
        """``(item_ptr, item_users, item_ratings)``, each item's users ascending."""
        order = np.lexsort((self.users, self.items))
        return (self.item_ptr(), np.ascontiguousarray(self.users[order]),
                np.ascontiguousarray(self.ratings[order]))

    def state_fields(self):
        """The :class:`~mfcy._state.FittedState` fields that come from the data."""
        return dict(global_mean=self.global_mean, rating_range=self.rating_range,
                    users=self.user_ids, items=self.item_ids, seen_indptr=self.user_ptr,
                    seen_items=self.items,
                    # input rows averaged into another (user, item) pair
                    n_duplicates=self.n_input_rows - len(self.items))


def copy_known_rows(state, grouped, pairs):
    """warm_start: overwrite rows of the ids ``grouped`` shares with the fitted ``state``.

    ``pairs`` is a sequence of ``(side, new array, fitted array)`` with side
    ``"user"`` or ``"item"``; the new arrays already hold a fresh start.
    """
    old_users = state.user_codes(grouped.user_ids)
    old_items = encode_query_ids(grouped.item_ids, state.items, "item ids")
    for side, new, fitted in pairs:
        old = old_users if side == "user" else old_items
        known = old >= 0
        new[known] = fitted[old[known]]
