"""The partitioning job of a Dask fit, driven from the client (:mod:`mfcy.dask` uses it).

:func:`partition` validates and encodes every partition of the ratings on its
worker (``mfcy._cluster_tasks`` holds what the workers run), gathers only the
distinct ids and their counts to the client, moves each rating to the worker
of its user's row block and lays that row block out as the local fit lays it
out. The ratings themselves never come to the client.

Importing this module imports Dask: only :mod:`mfcy.dask` imports it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import operator
import warnings

import numpy as np

try:
    import dask
    import dask.dataframe as dd
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("mfcy.dask needs Dask's distributed scheduler and dataframes: "
                      "pip install 'mfcy[dask]'") from exc

from ._cluster_tasks import (
    _block_plan, _block_sizes, _build_group, _clean_partition, _encode_split, _group_plan,
    _group_stats, _id_counts, _layout_row_block, _merge_id_counts, _slice_groups)
from ._limits import check_block_grid
from ._params import Integer
from ._input import DEFAULT_COLUMNS

class BlockedRatings:
    """Ratings partitioned for a cluster fit, held in the workers' memory.

    Made by :func:`partition` (or inside :func:`fit`); pass it to :func:`fit`
    again to train several models on the same data without partitioning it
    again (e.g. a hyperparameter search), as long as ``n_blocks`` is the same.

    Parameters
    ----------
    client : distributed.Client
        The cluster holding the layouts.
    layouts : list of distributed.Future
        Row block ``a``'s triples, bucketed by column block, on its worker.
    owners : list of str
        Address of the worker that holds each row block.
    user_ids, item_ids, user_bounds, item_bounds, block_sizes, n_duplicates
        As the attributes below.
    rating_sum : fractions.Fraction
        The exact sum of the (averaged) ratings, for ``global_mean``.

    Attributes
    ----------
    n_blocks : int
        Side of the block grid.
    user_ids, item_ids : ndarray
        Sorted distinct ids: index ``j`` stands for ``user_ids[j]`` (the
        fitted model's ``users_`` and ``items_``).
    user_bounds, item_bounds : ndarray of int64, shape (n_blocks + 1,)
        Row block ``a`` holds the users with indices
        ``user_bounds[a]:user_bounds[a + 1]``; the same for items.
    block_sizes : ndarray of int64, shape (n_blocks, n_blocks)
        Ratings in each block (row block, column block).
    n_ratings : int
        Distinct (user, item) pairs, after averaging duplicates.
    n_duplicates : int
        Input rows merged into another row of the same pair.
    global_mean : float
        Mean rating (exact, as the local fit computes it).
    rating_range : tuple of float
        Smallest and largest (averaged) rating, the model's ``rating_range_``.
    """

    def __init__(self, client, layouts, owners, user_ids, item_ids, user_bounds, item_bounds,
                 block_sizes, n_duplicates, rating_sum):
        self._client = client
        self._layouts = layouts
        self._owners = owners
        self.n_blocks = len(layouts)
        self.user_ids = user_ids
        self.item_ids = item_ids
        self.user_bounds = user_bounds
        self.item_bounds = item_bounds
        self.block_sizes = block_sizes
        self.n_ratings = int(block_sizes.sum())
        self.n_duplicates = int(n_duplicates)
        self.global_mean = float(rating_sum / self.n_ratings)

    @property
    def n_users(self):
        return len(self.user_ids)

    @property
    def n_items(self):
        return len(self.item_ids)

    def __repr__(self):
        return (f"BlockedRatings(n_ratings={self.n_ratings}, n_users={self.n_users}, "
                f"n_items={self.n_items}, n_blocks={self.n_blocks})")


def _workers(client):
    """Addresses of the workers connected now (asks the scheduler)."""
    return sorted(client.nthreads())


def _as_dask_frame(client, ratings):
    import pandas as pd

    if isinstance(ratings, dd.DataFrame):
        return ratings
    if isinstance(ratings, pd.DataFrame):
        # Dask would turn object columns into strings ('0', '1', ...) even when
        # they hold integers; the local fit reads those as int64 ids.
        with dask.config.set({"dataframe.convert-string": False}):
            return dd.from_pandas(ratings, npartitions=max(1, len(_workers(client))))
    raise ValueError("ratings must be a Dask DataFrame, a pandas DataFrame or the "
                     f"BlockedRatings of mfcy.dask.partition, got {type(ratings).__name__}")


def _check_columns(frame, columns):
    if columns is None:
        columns = DEFAULT_COLUMNS
    if isinstance(columns, str) or len(columns) != 3:
        raise ValueError(f"columns must name 3 columns: (user, item, rating), got {columns!r}")
    columns = tuple(columns)
    have = list(frame.columns)
    missing = [name for name in columns if name not in have]
    if missing:
        shown = ", ".join(map(repr, have[:10])) + (", ..." if len(have) > 10 else "")
        raise ValueError(f"the ratings have no column {', '.join(map(repr, missing))} "
                         f"(their columns: {shown}); name the (user, item, rating) "
                         "columns with columns=(...)")
    if len(set(columns)) != 3:
        raise ValueError(f"columns must name 3 different columns, got {columns!r}")
    return columns


def _tree_reduce(client, futures, func):
    while len(futures) > 1:
        futures = [client.submit(func, futures[j], futures[j + 1]) if j + 1 < len(futures)
                   else futures[j] for j in range(0, len(futures), 2)]
    return futures[0]


def partition(client, ratings, n_blocks, *, columns=None):
    """Partition ratings over the cluster for :func:`fit` (a one-off Dask job).

    Parameters
    ----------
    client : distributed.Client
    ratings : dask.dataframe.DataFrame or pandas.DataFrame
        One row per rating, with a user id, an item id and a rating column.
        Ids are labels (integers or strings), mapped to indices in sorted
        order exactly as the local fit maps them; duplicate (user, item)
        ratings are averaged.
    n_blocks : int
        Side of the block grid; must equal the model's ``n_blocks``.
    columns : sequence of 3 str, optional
        The (user, item, rating) column names; by default
        ``("user", "item", "rating")``.

    Returns
    -------
    BlockedRatings

    Raises
    ------
    ValueError
        On a missing column, missing values, ids of mixed kinds, or ratings
        that are not finite numbers (naming the partition).
    """
    n_blocks = Integer(1).check("n_blocks", n_blocks, {})
    frame = _as_dask_frame(client, ratings)
    columns = _check_columns(frame, columns)
    workers = _workers(client)
    if not workers:
        raise ValueError("the Dask cluster has no workers")
    owners = [workers[a % len(workers)] for a in range(n_blocks)]
    if n_blocks < len(workers):
        warnings.warn(f"n_blocks={n_blocks} row blocks for {len(workers)} workers: "
                      f"{len(workers) - n_blocks} of them will stay idle; use n_blocks a "
                      "multiple of the number of workers", UserWarning, stacklevel=2)

    parts = client.compute(frame[list(columns)].to_delayed())
    cleaned = client.map(_clean_partition, parts, range(len(parts)), columns=columns)
    del parts
    stats = _tree_reduce(client, client.map(_id_counts, cleaned), _merge_id_counts)
    # Counted and planned on a worker: the client gets the id maps, not the counts.
    plan = client.submit(_group_plan, stats, n_blocks)
    user_ids_f, item_ids_f, n_raw, group_bounds = (
        client.submit(operator.getitem, plan, j) for j in range(4))
    user_ids, item_ids, n_raw, group_bounds = client.gather(
        [user_ids_f, item_ids_f, n_raw, group_bounds])
    del stats, plan
    n_users, n_items = len(user_ids), len(item_ids)
    if n_users == 0:
        raise ValueError("no observed ratings: the input has no known entry to learn from")
    check_block_grid(n_blocks, n_raw)  # as the local fit, before the grid

    # Group the ratings by contiguous user ranges, balanced on the raw counts
    # (group_bounds); duplicates are averaged inside a group (a pair's ratings
    # share its user). The workers take the id maps from the worker holding them.
    split = client.map(_encode_split, cleaned, user_ids=user_ids_f, item_ids=item_ids_f,
                       user_bounds=group_bounds)
    del cleaned, user_ids_f, item_ids_f
    groups = []
    for g in range(n_blocks):
        pieces = client.map(operator.getitem, split, [g] * len(split))
        groups.append(client.submit(_build_group, n_users, n_items, *pieces,
                                    workers=[owners[g]], allow_other_workers=True))
    del split, pieces
    # The local fit's blocks: balanced on the counts after averaging duplicates
    # (counted on a worker as well).
    user_bounds, item_bounds, rating_sum, n_duplicates, rating_range = client.submit(
        _block_plan, n_blocks, *[
            client.submit(_group_stats, groups[g], group_bounds[g], group_bounds[g + 1],
                          n_items) for g in range(n_blocks)]).result()
    layouts = []
    for a in range(n_blocks):
        lo, hi = int(user_bounds[a]), int(user_bounds[a + 1])
        if lo == group_bounds[a] and hi == group_bounds[a + 1]:
            source = groups[a]
        else:
            # Averaging duplicates moved a boundary: take the users from the
            # neighbouring groups too (a small transfer, only then).
            overlapping = [groups[g] for g in range(n_blocks)
                           if group_bounds[g] < hi and group_bounds[g + 1] > lo]
            source = client.submit(_slice_groups, lo, hi, *overlapping,
                                   workers=[owners[a]], allow_other_workers=True)
        layouts.append(client.submit(_layout_row_block, source, lo, hi, item_bounds,
                                     workers=[owners[a]], allow_other_workers=True))
    block_sizes = np.array(client.gather(client.map(_block_sizes, layouts)), dtype=np.int64)
    del groups, source
    blocked = BlockedRatings(client, layouts, owners, user_ids, item_ids, user_bounds,
                             item_bounds, block_sizes.reshape(n_blocks, n_blocks),
                             n_duplicates, rating_sum)
    blocked.rating_range = rating_range
    # To partition again if a worker is lost with the only copy of a layout.
    blocked._source = (frame, columns)
    return blocked


def _ensure_layouts(client, blocked):
    """Partition again if a row block's layout was lost with a worker.

    Dask could recompute a lost layout from its lineage, but not always: the
    id maps were scattered (data without lineage), and tasks no longer wanted
    may be forgotten. Partitioning the input again is slower but never fails
    for that reason, and gives the same layout (it is deterministic).
    """
    layouts = blocked._layouts
    try:
        held = client.who_has(layouts)
    except (asyncio.CancelledError, concurrent.futures.CancelledError):
        held = {}  # forgotten by the scheduler
    if all(f.status == "finished" and held.get(f.key) for f in layouts):
        return
    frame, columns = blocked._source
    fresh = partition(client, frame, blocked.n_blocks, columns=columns)
    if not (np.array_equal(fresh.user_ids, blocked.user_ids)
            and np.array_equal(fresh.item_ids, blocked.item_ids)
            and np.array_equal(fresh.block_sizes, blocked.block_sizes)):
        raise RuntimeError("the ratings changed while partitioning them again after a lost "
                           "worker; the model is not fitted")
    blocked._layouts = fresh._layouts
