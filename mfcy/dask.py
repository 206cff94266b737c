"""Training on a Dask cluster: the blocked, stratified SGD of the local fit, distributed.

Use it as::

    from distributed import Client
    import dask.dataframe as dd
    import mfcy.dask
    from mfcy import MatrixFactorization

    client = Client("tcp://scheduler:8786")
    ratings = dd.read_parquet("s3://bucket/ratings/")      # user, item, rating columns
    model = MatrixFactorization(n_factors=64, n_blocks=32, random_state=0)
    mfcy.dask.fit(client, ratings, model)                  # a normal, local model afterwards
    model.recommend([42])

How it works (the same plan as the local fit, see ``mfcy._blocking``):

1. **Partitioning**, a one-off Dask job (:func:`partition`): every partition is
   validated; the distinct user and item ids are gathered in sorted order (the
   index of an id is its position, as in the local fit); the ratings are moved
   to the worker that will own their user's *row block*, where duplicate
   (user, item) ratings are averaged and the row block is laid out exactly as
   the local fit lays it out: users and items cut into ``n_blocks`` contiguous
   ranges holding equal shares of the ratings, each row block's triples
   bucketed by column block, in canonical (user, item) order within a block.
2. **Training**: row block ``a`` lives on one worker for the whole fit, with
   its user factors ``P_a`` and user biases (pinned: never moved). In
   sub-epoch ``s`` of an epoch, the worker runs the *same compiled kernel* on
   block ``(a, (a + strata[s]) % n_blocks)`` with that column block's item
   factors ``Q_b`` and biases, and hands the updated ``Q_b`` on to the worker
   that needs it next. Only item-factor blocks (and a few numbers) travel. The
   driver draws each epoch's strata, chunk orders and stride from the same
   seeded generator as the local fit, so the factors come out **bit-identical**
   to ``model.fit`` on one machine (any ``n_threads``) for the same
   ``random_state`` and ``n_blocks``.
3. There is no barrier between sub-epochs: a block's task waits only for its
   own row block's previous task and for the item block it needs, so a worker
   starts as soon as its ``Q_b`` arrives. The driver waits once per epoch, to
   record the loss and check for divergence.

Fault handling: if a worker holding row blocks leaves the cluster (killed,
out of memory, network), the fit notices within a second, discards the
half-done epoch and restarts from the last checkpoint (``checkpoint_every``
epochs; the start of training is always one, re-drawn from the seed) on the
workers still there, with a warning. Restarted fits are still bit-identical:
the checkpoint holds the generator's state too. Beyond ``max_restarts`` it
raises :class:`WorkerLostError`; it never returns a model trained on a lost
state.

Importing this module imports Dask; ``import mfcy`` does not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import itertools
import math
import operator
import threading
import time
import uuid
import warnings
import weakref
from fractions import Fraction

import numpy as np

try:
    import dask.dataframe as dd
    import distributed
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("mfcy.dask needs Dask's distributed scheduler and dataframes: "
                      "pip install 'mfcy[dask]'") from exc

from . import _sgd
from ._blocking import CHUNK_SIZE, EpochPlan, _ranges_from_counts
from ._exact import exact_sum
from .data import DEFAULT_COLUMNS, _canonical, _index_dtype, as_ids, as_ratings
from ._state import FittedState, install, uninstall
from ._training import diverged as _diverged, interrupt_after_epoch as _interrupt_after_epoch

__all__ = ["fit", "partition", "BlockedRatings", "WorkerLostError", "DEFAULT_COLUMNS"]

_INT32_MAX = np.iinfo(np.int32).max

#: How often (seconds) the driver checks that the workers holding row blocks
#: are still there while it waits for an epoch.
_POLL_SECONDS = 0.5


class WorkerLostError(RuntimeError):
    """A worker holding training state left the cluster and no restart was left."""


class _StateLost(RuntimeError):
    """Raised on a worker asked to run a block whose state it does not hold."""


class _WorkerLost(Exception):
    def __init__(self, missing):
        super().__init__(f"worker {', '.join(sorted(missing))} holding training state left "
                         "the cluster" if missing else
                         "training state or data was lost with a worker")
        self.missing = missing


# -- input ------------------------------------------------------------------------


def _column_numpy(column, role):
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if role == "rating" and is_numeric_dtype(column.dtype) and not is_bool_dtype(column.dtype):
        # Nullable extension dtypes (Float64, Int64) give object arrays otherwise.
        return column.to_numpy(dtype=np.float64)
    return column.to_numpy()


def _clean_partition(frame, number, columns):
    """Validate one partition; return its raw ids (as the local fit reads them) and ratings."""
    where = f"partition {number}"
    out = []
    for role, name in zip(("user", "item", "rating"), columns):
        column = frame[name]
        missing = column.isna().to_numpy()
        if missing.any():
            raise ValueError(f"the {role} column {name!r} has missing values in {where} "
                             f"(first at row {int(np.flatnonzero(missing)[0])})")
        values = _column_numpy(column, role)
        if role == "rating":
            out.append(as_ratings(values, f"ratings (column {name!r}, {where})"))
        else:
            out.append(as_ids(values, f"{role} ids (column {name!r}, {where})"))
    return tuple(out)


def _id_counts(cleaned):
    users, items, _ = cleaned
    return np.unique(users, return_counts=True), np.unique(items, return_counts=True)


def _join_ids(left, right, what):
    """Concatenate id arrays of two partitions, which must be of one kind."""
    kinds = {left.dtype.kind, right.dtype.kind}
    if len(left) == 0:
        return right
    if len(right) == 0:
        return left
    if "U" in kinds and kinds != {"U"}:
        raise ValueError(f"{what} are strings in some partitions and numbers in others; "
                         "use one kind per column")
    if kinds == {"i", "u"}:
        # as_ids keeps uint64 only for ids beyond int64's range: the column is
        # unsigned, and the int64 parts of it are its smaller values.
        signed = left if left.dtype.kind == "i" else right
        if signed.min() < 0:
            raise ValueError(f"{what} mix negative integers and integers beyond the "
                             "64-bit signed range")
        left, right = left.astype(np.uint64), right.astype(np.uint64)
    return np.concatenate([left, right])


def _merge_id_counts(left, right):
    merged = []
    for (ids_l, counts_l), (ids_r, counts_r), what in zip(left, right, ("user ids", "item ids")):
        ids = _join_ids(ids_l, ids_r, what)
        uniques, inverse = np.unique(ids, return_inverse=True)
        # float64 sums of counts are exact far beyond any number of ratings.
        counts = np.bincount(inverse.reshape(-1), np.concatenate([counts_l, counts_r]),
                             minlength=len(uniques))
        merged.append((uniques, counts.astype(np.int64)))
    return tuple(merged)


def _encode_split(cleaned, user_ids, item_ids, user_bounds):
    """Dense indices of a partition's ids, split by contiguous user range (one piece per group)."""
    users, items, ratings = cleaned
    dtype = _index_dtype(len(user_ids), len(item_ids))
    # Same kind as the id map (an int64 part of a uint64 column), so that
    # searchsorted never compares through float64.
    users = np.searchsorted(user_ids, users.astype(user_ids.dtype, copy=False)).astype(dtype)
    items = np.searchsorted(item_ids, items.astype(item_ids.dtype, copy=False)).astype(dtype)
    group = np.searchsorted(user_bounds, users, side="right") - 1
    order = np.argsort(group, kind="stable")
    cuts = np.searchsorted(group[order], np.arange(len(user_bounds)))
    users, items, ratings = users[order], items[order], ratings[order]
    return tuple((users[lo:hi], items[lo:hi], ratings[lo:hi])
                 for lo, hi in zip(cuts[:-1], cuts[1:]))


def _build_group(n_users, n_items, *pieces):
    """The canonical triples of one range of users: sorted, duplicates averaged."""
    users = np.concatenate([p[0] for p in pieces])
    items = np.concatenate([p[1] for p in pieces])
    ratings = np.concatenate([p[2] for p in pieces])
    # The local fit's own function: the same sort and the same averaging.
    triples = _canonical(users, items, ratings, range(n_users), range(n_items))
    return triples.users, triples.items, triples.ratings, triples.n_duplicates


def _group_stats(group, lo, hi, n_items):
    users, items, ratings, n_duplicates = group
    extremes = (float(ratings.min()), float(ratings.max())) if len(ratings) else (np.inf, -np.inf)
    return (np.bincount(users - lo, minlength=hi - lo), np.bincount(items, minlength=n_items),
            exact_sum(ratings), len(ratings), n_duplicates, *extremes)


def _slice_groups(lo, hi, *groups):
    """The triples of users [lo, hi) out of groups of neighbouring user ranges."""
    parts = []
    for users, items, ratings, _ in groups:
        start, stop = np.searchsorted(users, [lo, hi])
        parts.append((users[start:stop], items[start:stop], ratings[start:stop]))
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]), 0)


def _layout_row_block(source, lo, hi, item_bounds):
    """Row block [lo, hi): triples bucketed by column block, block-local indices."""
    users, items, ratings, _ = source
    n_blocks = len(item_bounds) - 1
    column = np.searchsorted(item_bounds, items, side="right") - 1
    column = column.astype(np.int16 if n_blocks <= np.iinfo(np.int16).max else np.int64)
    # Stable: canonical (user, item) order inside each block, as EpochPlan.
    order = np.argsort(column, kind="stable")
    column = column[order]
    offsets = np.searchsorted(column, np.arange(n_blocks + 1)).astype(np.int64)
    widths = max(hi - lo, int(np.diff(item_bounds).max(initial=0)))
    dtype = np.int32 if widths <= _INT32_MAX else np.int64
    return {
        "users": (users[order] - lo).astype(dtype),
        "items": (items[order] - item_bounds[column]).astype(dtype),
        "ratings": ratings[order],
        "offsets": offsets,
        "lo": lo,
        "hi": hi,
        "item_bounds": np.asarray(item_bounds, dtype=np.int64),
    }


def _block_sizes(layout):
    return np.diff(layout["offsets"])


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


def _is_int(value, minimum):
    return (not isinstance(value, bool) and isinstance(value, (int, np.integer))
            and value >= minimum)


def _bounds(block_of_id, n_blocks):
    """Start of each block's index range (+ the end), from a non-decreasing block per id."""
    return np.searchsorted(block_of_id, np.arange(n_blocks + 1)).astype(np.int64)


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
    if not _is_int(n_blocks, 1):
        raise ValueError(f"n_blocks must be an integer >= 1, got {n_blocks!r}")
    n_blocks = int(n_blocks)
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
    (user_ids, user_raw), (item_ids, item_raw) = stats.result()
    del stats
    n_users, n_items = len(user_ids), len(item_ids)
    if n_users == 0:
        raise ValueError("no observed ratings: the input has no known entry to learn from")

    # Group the ratings by contiguous user ranges, balanced on the raw counts;
    # duplicates are averaged inside a group (a pair's ratings share its user).
    group_bounds = _bounds(_ranges_from_counts(user_raw, n_blocks), n_blocks)
    user_ids_f, item_ids_f = client.scatter([user_ids, item_ids], broadcast=True, hash=False)
    split = client.map(_encode_split, cleaned, user_ids=user_ids_f, item_ids=item_ids_f,
                       user_bounds=group_bounds)
    del cleaned
    groups = []
    for g in range(n_blocks):
        pieces = client.map(operator.getitem, split, [g] * len(split))
        groups.append(client.submit(_build_group, n_users, n_items, *pieces,
                                    workers=[owners[g]], allow_other_workers=True))
    del split, pieces
    group_stats = client.gather([
        client.submit(_group_stats, groups[g], group_bounds[g], group_bounds[g + 1], n_items)
        for g in range(n_blocks)])
    user_counts = np.concatenate([s[0] for s in group_stats])
    item_counts = np.sum([s[1] for s in group_stats], axis=0)
    rating_sum = sum((s[2] for s in group_stats), Fraction(0))
    n_duplicates = sum(int(s[4]) for s in group_stats)
    rating_range = (min(s[5] for s in group_stats), max(s[6] for s in group_stats))
    del group_stats

    # The local fit's blocks: balanced on the counts after averaging duplicates.
    user_bounds = _bounds(_ranges_from_counts(user_counts, n_blocks), n_blocks)
    item_bounds = _bounds(_ranges_from_counts(item_counts, n_blocks), n_blocks)
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


# -- training state on the workers -------------------------------------------------

#: (run, row block) -> state of that row block, in the memory of the worker
#: that owns it. Tasks of one run are told which step they are, so that a task
#: run twice or out of order fails instead of applying an update twice.
_STATES = {}
_STATES_LOCK = threading.Lock()


def _state(run, a, step):
    with _STATES_LOCK:
        state = _STATES.get((run, a))
    if state is None:
        raise _StateLost(f"row block {a} of run {run} is not held by this worker")
    if state["step"] != step:
        raise _StateLost(f"row block {a} of run {run} is at step {state['step']}, "
                         f"not {step}")
    return state


def _aligned(array, dtype=None):
    """``array`` as the kernel may read it: C-contiguous and aligned.

    Arrays that travelled between processes can sit at any byte offset of a
    network buffer; x86 would read them anyway, but a misaligned load is
    undefined behaviour in C (UBSan stops on it), so those are copied.
    """
    return np.require(array, dtype=dtype, requirements=["C_CONTIGUOUS", "ALIGNED"])


def _init_state(run, a, layout, user_factors, user_bias, dtype):
    layout = dict(layout)
    for name in ("users", "items", "ratings"):
        layout[name] = _aligned(layout[name])
    with np.errstate(over="ignore"):  # reported below, as a ValueError
        ratings = layout["ratings"].astype(dtype, copy=False)
    if not np.isfinite(ratings).all():
        raise ValueError(f"ratings overflow {np.dtype(dtype).name} (largest magnitude "
                         f"{np.abs(layout['ratings']).max():.3g})")
    state = {"layout": layout, "ratings": ratings, "step": 0, "log": {},
             "P": np.array(user_factors, dtype=dtype, order="C", copy=True),
             "user_bias": np.array(user_bias, dtype=dtype, copy=True)}
    with _STATES_LOCK:
        _STATES[(run, a)] = state
    return a


def _drop_states(run):
    with _STATES_LOCK:
        for key in [k for k in _STATES if k[0] == run]:
            del _STATES[key]


def _sgd_block(run, a, step, b, item_block, after, visit, stride, hyper):
    """One sub-epoch of row block ``a``: SGD on block (a, b); return the new item block.

    ``after`` (the row block's previous task) is only a dependency: it orders
    the tasks of one row block, which share the state held here.
    """
    state = _state(run, a, step)
    Q, item_bias = item_block
    # A new array: the input may be the very object another task still holds.
    Q = np.array(Q, order="C", copy=True)
    item_bias = np.array(item_bias, copy=True)
    layout = state["layout"]
    lo, hi = layout["offsets"][b], layout["offsets"][b + 1]
    chunk_bounds = np.append(np.arange(0, hi - lo, CHUNK_SIZE, dtype=np.int64), hi - lo)
    if hi == lo:
        chunk_bounds = np.zeros(1, dtype=np.int64)
    global_mean, lr, reg, reg_bias, biased, sequential = hyper
    sse = _sgd.sgd_epoch(state["P"], Q, state["user_bias"], item_bias,
                         layout["users"][lo:hi], layout["items"][lo:hi],
                         state["ratings"][lo:hi], chunk_bounds,
                         np.array([0, len(chunk_bounds) - 1], dtype=np.int64),
                         _aligned(visit, np.int64),
                         np.zeros(1, dtype=np.int64), stride, global_mean, lr, reg, reg_bias,
                         biased, sequential, 1)
    # The parameters' sum, for the divergence check (any inf/NaN poisons it):
    # the item block's factors and biases as they leave this task.
    with np.errstate(over="ignore", invalid="ignore"):
        state["log"][step] = (sse, float(Q.sum(dtype=np.float64)
                                         + item_bias.sum(dtype=np.float64)))
    state["step"] = step + 1
    return Q, item_bias


def _end_epoch(run, a, step, first_step, after, hyper, *item_blocks):
    """The row block's SGD errors of the epoch, its factor sum and (if given Q) its loss."""
    state = _state(run, a, step)
    log = [state["log"].pop(s) for s in range(first_step, step)]
    with np.errstate(over="ignore", invalid="ignore"):
        p_sum = float(state["P"].sum(dtype=np.float64)
                      + state["user_bias"].sum(dtype=np.float64))
    out = {"sse": [entry[0] for entry in log], "q_sum": log[-1][1], "p_sum": p_sum}
    if item_blocks:
        start = time.perf_counter()
        global_mean, biased = hyper
        layout = state["layout"]
        offsets = layout["offsets"]
        loss = 0.0
        for b, (Q, item_bias) in enumerate(item_blocks):
            lo, hi = offsets[b], offsets[b + 1]
            loss += _sgd.error_sums(state["P"], _aligned(Q), state["user_bias"],
                                    _aligned(item_bias),
                                    layout["users"][lo:hi], layout["items"][lo:hi],
                                    state["ratings"][lo:hi], global_mean, biased, 1)[0]
        out["loss"] = loss
        out["loss_seconds"] = time.perf_counter() - start
    return out


def _snapshot(run, a, step, after):
    state = _state(run, a, step)
    return state["P"].copy(), state["user_bias"].copy()


def _seen_items(layout):
    """Item indices of the row block's ratings in canonical order, and counts per user."""
    offsets, bounds = layout["offsets"], layout["item_bounds"]
    items = layout["items"].astype(np.int64)
    for b in range(len(offsets) - 1):
        items[offsets[b]:offsets[b + 1]] += bounds[b]
    # Blocks hold increasing item ranges: a stable sort by user restores the
    # canonical (user, item) order.
    order = np.argsort(layout["users"], kind="stable")
    return items[order], np.bincount(layout["users"], minlength=layout["hi"] - layout["lo"])


# -- the driver ---------------------------------------------------------------------


def _params_supported(model):
    """Reject hyperparameters the cluster fit does not implement (at non-default values)."""
    supported = {"n_factors", "n_epochs", "learning_rate", "regularization",
                 "bias_regularization", "biased", "init_std", "shuffle", "update", "dtype",
                 "track_loss", "n_blocks", "n_threads", "random_state", "verbose"}
    defaults = type(model)().get_params()
    for name, value in model.get_params().items():
        default = defaults.get(name)
        if name not in supported and value is not default and value != default:
            raise ValueError(f"mfcy.dask.fit does not support {name}={value!r}; "
                             "fit locally or leave it at its default")


def _check_wait(client, futures, owners):
    """Wait for futures; raise _WorkerLost when a worker holding state has left."""
    needed = set(owners)
    while True:
        try:
            with client.as_current():
                distributed.wait(futures, timeout=_POLL_SECONDS)
            break
        except (TimeoutError, asyncio.TimeoutError):
            missing = needed - set(_workers(client))
            if missing:
                raise _WorkerLost(missing) from None
        except (asyncio.CancelledError, concurrent.futures.CancelledError) as exc:
            # The scheduler gives up on tasks pinned to a worker that left, and
            # on tasks whose inputs were lost with one.
            raise _WorkerLost(needed - set(_workers(client))) from exc
    for future in futures:
        if future.status == "error":
            exc = future.exception()
            missing = needed - set(_workers(client))
            if missing or isinstance(exc, (distributed.KilledWorker, _StateLost)):
                raise _WorkerLost(missing) from exc
            raise exc


class _Run:
    """One attempt at training, from a checkpoint to the end or to a lost worker."""

    def __init__(self, client, owners, token, generation):
        self.client = client
        self.owners = owners
        self.name = f"{token}g{generation}"
        # Weak: holding every future would keep every past version of the
        # item blocks in the cluster's memory. Only unfinished ones matter.
        self.futures = weakref.WeakSet()

    def submit(self, func, *args, key, a):
        future = self.client.submit(func, self.name, a, *args, key=f"mfcy-{key}-{self.name}",
                                    workers=[self.owners[a]], allow_other_workers=False,
                                    pure=False)
        self.futures.add(future)
        return future

    def wait(self, futures):
        _check_wait(self.client, futures, self.owners)

    def close(self):
        self.client.cancel(list(self.futures))
        self.futures = weakref.WeakSet()
        self.client.run(_drop_states, self.name, on_error="ignore")


def fit(client, ratings, model, *, columns=None, user_factors=None, item_factors=None,
        checkpoint_every=10, max_restarts=2):
    """Fit a :class:`~mfcy.MatrixFactorization` on a Dask cluster.

    The result is the model :meth:`MatrixFactorization.fit
    <mfcy.MatrixFactorization.fit>` gives on one machine with the same
    ``random_state`` and ``n_blocks``, to the last bit of every factor and
    bias (and of ``history_["sgd_mse"]``; ``"train_mse"`` is summed in another
    order and agrees to ~1e-15). Afterwards the model is an ordinary local
    one: ``predict``, ``recommend``, saving and plotting work as usual.

    Parameters
    ----------
    client : distributed.Client
        The cluster. Row block ``a`` lives on worker ``a % n_workers`` (in
        sorted address order): use ``n_blocks`` a multiple of the number of
        workers, so that each does the same share.
    ratings : dask.dataframe.DataFrame, pandas.DataFrame or BlockedRatings
        One row per rating (see :func:`partition`), or ratings partitioned
        already by :func:`partition` with the model's ``n_blocks``.
    model : MatrixFactorization
        Its hyperparameters are used (``n_threads`` is not: each block runs on
        one thread of its worker, and the result does not depend on it);
        fitted in place and returned.
    columns : sequence of 3 str, optional
        The (user, item, rating) column names; by default
        ``("user", "item", "rating")``.
    user_factors, item_factors : array-like, optional
        Initial factors, as for the local ``fit``.
    checkpoint_every : int or None, default=10
        Every this many epochs, copy the factors to the client, so that a fit
        that loses a worker resumes from there. Each checkpoint moves all the
        factors to the client once; None keeps only the start (re-drawn from
        the seed) as a checkpoint.
    max_restarts : int, default=2
        Restarts after a lost worker before giving up with
        :class:`WorkerLostError`.

    Returns
    -------
    MatrixFactorization
        ``model``, fitted.

    Raises
    ------
    ValueError
        On invalid hyperparameters or input (naming the column or partition).
    DivergenceError
        When the loss stops being finite.
    WorkerLostError
        When workers holding state were lost more than ``max_restarts`` times.
    """
    params = model._validated_params()
    _params_supported(model)
    if checkpoint_every is not None and not _is_int(checkpoint_every, 1):
        raise ValueError(f"checkpoint_every must be an integer >= 1 or None, "
                         f"got {checkpoint_every!r}")
    if not _is_int(max_restarts, 0):
        raise ValueError(f"max_restarts must be an integer >= 0, got {max_restarts!r}")
    n_blocks = params["n_blocks"] if model.shuffle else 1
    if isinstance(ratings, BlockedRatings):
        if columns is not None:
            raise ValueError("columns= names the columns of a DataFrame; the ratings are "
                             "partitioned already")
        if ratings.n_blocks != n_blocks:
            raise ValueError(f"the ratings are partitioned into {ratings.n_blocks} blocks "
                             f"but the model uses n_blocks={n_blocks}")
        blocked = ratings
    else:
        blocked = partition(client, ratings, n_blocks, columns=columns)

    trainer = _Trainer(client, blocked, model, params, user_factors, item_factors)
    restarts = 0
    checkpoint = trainer.start_checkpoint()
    token = uuid.uuid4().hex[:12]
    with _interrupt_after_epoch() as interrupt:
        for generation in itertools.count():
            if generation:
                _ensure_layouts(client, blocked)
            workers = _workers(client)
            if not workers:
                client.wait_for_workers(1, timeout=60)
                workers = _workers(client)
            run = _Run(client, [workers[a % len(workers)] for a in range(n_blocks)],
                       token, generation)
            try:
                return trainer.train(run, checkpoint, checkpoint_every, interrupt)
            except _WorkerLost as lost:
                restarts += 1
                where = (f"epoch {trainer.epoch + 1}" if trainer.epoch < params["n_epochs"]
                         else "the final gathering")
                if restarts > max_restarts:
                    uninstall(model)
                    raise WorkerLostError(
                        f"{lost} in {where}; "
                        f"gave up after {restarts - 1} restart(s) (max_restarts="
                        f"{max_restarts}); the model is not fitted") from lost
                checkpoint = trainer.checkpoint
                warnings.warn(
                    f"{lost} in {where}; "
                    f"restarting from the checkpoint after epoch {checkpoint['epoch']} "
                    f"(restart {restarts} of at most {max_restarts})", RuntimeWarning,
                    stacklevel=2)
            finally:
                run.close()


class _Trainer:
    """The driver's side of a fit: draws, bookkeeping, checkpoints, final model."""

    def __init__(self, client, blocked, model, params, user_factors, item_factors):
        self.client = client
        self.blocked = blocked
        self.model = model
        self.params = params
        self.n_blocks = blocked.n_blocks
        self.dtype = params["dtype"]
        self.biased = bool(model.biased)
        k = params["n_factors"]
        # Given factors are validated (and copied) exactly as the local fit does.
        self.given = [
            None if given is None else model._initial_factors(
                given, (n, k), name, None, params)
            for given, n, name in ((user_factors, blocked.n_users, "user_factors"),
                                   (item_factors, blocked.n_items, "item_factors"))]
        self.rng = np.random.default_rng(model.random_state)
        self.plan = EpochPlan.from_block_sizes(blocked.block_sizes.ravel(), self.n_blocks,
                                               model.shuffle)
        self.epoch = 0
        self.checkpoint = None

    # Checkpoints: {"epoch", "rng", "history", "blocks" (None: draw afresh)}.

    def start_checkpoint(self):
        self.checkpoint = {"epoch": 0, "rng": copy.deepcopy(self.rng.bit_generator.state),
                           "history": self._empty_history(), "blocks": None}
        return self.checkpoint

    def _empty_history(self):
        history = {"sgd_mse": [], "epoch_seconds": []}
        if self.model.track_loss:
            history["train_mse"] = []
            history["train_rmse"] = []
            history["loss_seconds"] = []
        return history

    def _initial_blocks(self):
        """Initial factor and bias blocks, drawn in the local fit's order (P, then Q)."""
        bounds = (self.blocked.user_bounds, self.blocked.item_bounds)
        k, std, dtype = self.params["n_factors"], self.params["init_std"], self.dtype
        factors = []
        for given, bound in zip(self.given, bounds):
            blocks = []
            for j in range(self.n_blocks):
                lo, hi = int(bound[j]), int(bound[j + 1])
                if given is not None:
                    blocks.append(given[lo:hi])
                else:
                    # Drawn block by block: the same numbers as one draw of the whole.
                    blocks.append((self.rng.standard_normal((hi - lo, k)) * std).astype(dtype))
            factors.append(blocks)
        biases = [[np.zeros((int(b[j + 1] - b[j])) if self.biased else 0, dtype=dtype)
                   for j in range(self.n_blocks)] for b in bounds]
        return factors[0], biases[0], factors[1], biases[1]

    def train(self, run, checkpoint, checkpoint_every, interrupt):
        client, B, params, model = self.client, self.n_blocks, self.params, self.model
        self.rng.bit_generator.state = copy.deepcopy(checkpoint["rng"])
        if checkpoint["blocks"] is None:
            P_blocks, ub_blocks, Q_blocks, ib_blocks = self._initial_blocks()
        else:
            P_blocks, ub_blocks, Q_blocks, ib_blocks = checkpoint["blocks"]
        history = copy.deepcopy(checkpoint["history"])
        self.epoch = checkpoint["epoch"]

        layouts = self.blocked._layouts
        last = []  # each row block's latest task: the next one runs after it
        for a in range(B):
            P_a, ub_a = client.scatter([P_blocks[a], ub_blocks[a]], workers=[run.owners[a]],
                                       hash=False)
            last.append(run.submit(_init_state, layouts[a], P_a, ub_a, self.dtype,
                                   key=f"init-a{a}", a=a))
        # Item block b starts next to row block b (its first user is a guess).
        items = [client.scatter([(Q_blocks[b], ib_blocks[b])], workers=[run.owners[b]],
                                hash=False)[0] for b in range(B)]
        del P_blocks, ub_blocks, Q_blocks, ib_blocks
        step = 0
        n = self.blocked.n_ratings
        hyper = (self.blocked.global_mean, params["learning_rate"], params["regularization"],
                 params["bias_regularization"], self.biased, model.update == "sequential")
        while self.epoch < params["n_epochs"]:
            epoch = self.epoch
            start = time.perf_counter()
            visit_order, strata, stride = self.plan.draw(self.rng)
            block_chunks = self.plan.block_chunks
            first_step = step
            for s in range(B):
                moved = [None] * B
                for a in range(B):
                    b = (a + int(strata[s])) % B
                    block = a * B + b
                    begin, end = block_chunks[block], block_chunks[block + 1]
                    visit = visit_order[begin:end] - begin
                    moved[b] = last[a] = run.submit(
                        _sgd_block, step, b, items[b], last[a], visit, stride, hyper,
                        key=f"sgd-e{epoch}-s{s}-a{a}", a=a)
                items = moved
                step += 1
            run.wait(last)
            sgd_done = time.perf_counter()
            track = (self.blocked.global_mean, self.biased) if model.track_loss else None
            ends = [run.submit(_end_epoch, step, first_step, last[a], track,
                               *(items if track else ()), key=f"end-e{epoch}-a{a}", a=a)
                    for a in range(B)]
            run.wait(ends)
            ends = client.gather(ends)
            sse = 0.0
            for s in range(B):  # the kernel's order: strata, then row blocks
                for a in range(B):
                    sse += ends[a]["sse"][s]
            finite = math.isfinite(sse)
            if model.track_loss:
                loss = sum(end["loss"] for end in ends)
                finite = finite and math.isfinite(loss)
            else:
                # As the local fit: every factor and bias, users' and items'.
                with np.errstate(over="ignore", invalid="ignore"):
                    finite = finite and math.isfinite(sum(e["p_sum"] + e["q_sum"] for e in ends))
            if not finite:
                uninstall(model)
                raise _diverged(epoch + 1, model.learning_rate,
                                max(abs(v) for v in self.blocked.rating_range))
            history["sgd_mse"].append(sse / n)
            history["epoch_seconds"].append(sgd_done - start)
            if model.track_loss:
                history["train_mse"].append(loss / n)
                history["train_rmse"].append(math.sqrt(loss / n))
                history["loss_seconds"].append(time.perf_counter() - sgd_done)
            self.epoch = epoch + 1
            if model.verbose:
                shown = history["train_rmse" if model.track_loss else "sgd_mse"][-1]
                label = "train RMSE" if model.track_loss else "SGD MSE"
                print(f"epoch {epoch + 1:4d}/{params['n_epochs']}  {label} {shown:.6f}",
                      flush=True)
            stop = interrupt["interrupted"]
            if (not stop and checkpoint_every and self.epoch % checkpoint_every == 0
                    and self.epoch < params["n_epochs"]):
                self.checkpoint = {"epoch": self.epoch,
                                   "rng": copy.deepcopy(self.rng.bit_generator.state),
                                   "history": copy.deepcopy(history),
                                   "blocks": self._gather(run, step, last, items)}
            if stop:
                break
        P_blocks, ub_blocks, Q_blocks, ib_blocks = self._gather(run, step, last, items)
        seen = client.gather([client.submit(_seen_items, layouts[a], pure=False)
                              for a in range(B)])
        self._install(P_blocks, ub_blocks, Q_blocks, ib_blocks, seen, history)
        if interrupt["interrupted"]:
            raise KeyboardInterrupt
        return model

    def _gather(self, run, step, last, items):
        snaps = [run.submit(_snapshot, step, last[a], key=f"snapshot-s{step}-a{a}", a=a)
                 for a in range(self.n_blocks)]
        run.wait(snaps + items)
        snaps, items = self.client.gather([snaps, items])
        return ([s[0] for s in snaps], [s[1] for s in snaps],
                [np.array(q[0], copy=True) for q in items],
                [np.array(q[1], copy=True) for q in items])

    def _install(self, P_blocks, ub_blocks, Q_blocks, ib_blocks, seen, history):
        """Set the fitted state as the local fit does."""
        model, blocked = self.model, self.blocked
        P = np.concatenate(P_blocks)
        Q = np.concatenate(Q_blocks)
        user_bias = np.concatenate(ub_blocks)
        item_bias = np.concatenate(ib_blocks)
        index_dtype = _index_dtype(blocked.n_users, blocked.n_items)
        seen_indptr = np.zeros(blocked.n_users + 1, dtype=np.int64)
        np.cumsum(np.concatenate([s[1] for s in seen]), out=seen_indptr[1:])
        install(model, FittedState.build(
            P, Q, user_bias, item_bias, self.biased, global_mean=blocked.global_mean,
            rating_range=blocked.rating_range, users=blocked.user_ids, items=blocked.item_ids,
            seen_indptr=seen_indptr,
            seen_items=np.concatenate([s[0] for s in seen]).astype(index_dtype),
            history=history, n_epochs=len(history["sgd_mse"]),
            n_duplicates=blocked.n_duplicates))
