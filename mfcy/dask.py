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
import math
import operator
import threading
import uuid
import warnings
import weakref
from fractions import Fraction

import numpy as np

try:
    import dask
    import dask.dataframe as dd
    import distributed
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("mfcy.dask needs Dask's distributed scheduler and dataframes: "
                      "pip install 'mfcy[dask]'") from exc

from . import _sgd
from ._blocking import CHUNK_SIZE, EpochPlan, _ranges_from_counts
from ._exact import exact_sum
from ._layout import bucket_by_block, items_by_user
from ._limits import check_block_grid
from ._params import Integer
from ._state import FittedState, uninstall
from ._training import Monitor, ValidationSet, run_epochs
from .data import DEFAULT_COLUMNS, _canonical, _index_dtype, as_ids, as_ratings

__all__ = ["fit", "partition", "BlockedRatings", "WorkerLostError", "DEFAULT_COLUMNS"]

_INT32_MAX = np.iinfo(np.int32).max

#: A grid of this many blocks or more (tasks per epoch) whose blocks hold
#: fewer than CHUNK_SIZE ratings on average gets a warning: each task costs the
#: scheduler about a millisecond, far more than the SGD of such a block.
MANY_TASKS = 1024

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
    item_block = np.repeat(np.arange(n_blocks, dtype=np.int64), np.diff(item_bounds))
    # The local fit's stable counting sort (one row block of the grid): the
    # canonical (user, item) order inside each block, as EpochPlan.
    users, items, ratings, sizes = bucket_by_block(
        (users - lo).astype(np.int64), items.astype(np.int64), ratings,
        np.zeros(hi - lo, dtype=np.int64), item_block, n_blocks)
    offsets = np.zeros(n_blocks + 1, dtype=np.int64)
    np.cumsum(sizes[:n_blocks], out=offsets[1:])
    widths = max(hi - lo, int(np.diff(item_bounds).max(initial=0)))
    dtype = np.int32 if widths <= _INT32_MAX else np.int64
    return {
        "users": users.astype(dtype),
        "items": (items - np.repeat(item_bounds[:-1], sizes[:n_blocks])).astype(dtype),
        "ratings": ratings,
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
    (user_ids, user_raw), (item_ids, item_raw) = stats.result()
    del stats
    n_users, n_items = len(user_ids), len(item_ids)
    if n_users == 0:
        raise ValueError("no observed ratings: the input has no known entry to learn from")
    check_block_grid(n_blocks, int(user_raw.sum()))  # as the local fit, before the grid

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


def _end_epoch(run, a, step, first_step, after):
    """The row block's SGD errors of the epoch and its parameters' sum (divergence check)."""
    state = _state(run, a, step)
    log = [state["log"].pop(s) for s in range(first_step, step)]
    with np.errstate(over="ignore", invalid="ignore"):
        p_sum = float(state["P"].sum(dtype=np.float64)
                      + state["user_bias"].sum(dtype=np.float64))
    return [entry[0] for entry in log], p_sum + log[-1][1]


def _row_loss(run, a, step, after, hyper, *item_blocks):
    """The summed squared error of the row block's ratings, given every item block."""
    state = _state(run, a, step)
    global_mean, biased = hyper
    layout = state["layout"]
    offsets = layout["offsets"]
    loss = 0.0
    for b, (Q, item_bias) in enumerate(item_blocks):
        lo, hi = offsets[b], offsets[b + 1]
        loss += _sgd.error_sums(state["P"], _aligned(Q), state["user_bias"], _aligned(item_bias),
                                layout["users"][lo:hi], layout["items"][lo:hi],
                                state["ratings"][lo:hi], global_mean, biased, 1)[0]
    return loss


def _snapshot(run, a, step, after):
    state = _state(run, a, step)
    return state["P"].copy(), state["user_bias"].copy()


def _seen_items(layout):
    """The row block's part of the seen-items CSR: (counts per user, item indices)."""
    offsets, bounds = layout["offsets"], layout["item_bounds"]
    items = layout["items"].astype(np.int64)
    for b in range(len(offsets) - 1):
        items[offsets[b]:offsets[b + 1]] += bounds[b]
    # The local fit's compiled pass over the same block layout: canonical order.
    indptr, items = items_by_user(layout["users"].astype(np.int64), items,
                                  layout["hi"] - layout["lo"])
    return np.diff(indptr), items


# -- the driver ---------------------------------------------------------------------


def _params_supported(model):
    """Reject hyperparameters the cluster fit does not implement (at non-default values)."""
    unsupported = {"warm_start"}
    defaults = type(model)().get_params()
    for name, value in model.get_params().items():
        default = defaults.get(name)
        if name in unsupported and value is not default and value != default:
            raise ValueError(f"mfcy.dask.fit does not support {name}={value!r}; "
                             "fit locally or leave it at its default")


def _missing(client, owners):
    return set(owners) - set(_workers(client))


def _wait(client, futures, owners):
    """Wait for futures; raise _WorkerLost when a worker holding state has left."""
    while True:
        try:
            with client.as_current():
                distributed.wait(futures, timeout=_POLL_SECONDS)
            break
        except (TimeoutError, asyncio.TimeoutError):
            missing = _missing(client, owners)
            if missing:
                raise _WorkerLost(missing) from None
        except (asyncio.CancelledError, concurrent.futures.CancelledError) as exc:
            # The scheduler gives up on tasks pinned to a worker that left, and
            # on tasks whose inputs were lost with one.
            raise _WorkerLost(_missing(client, owners)) from exc
    for future in futures:
        if future.status == "error":
            exc = future.exception()
            missing = _missing(client, owners)
            if missing or isinstance(exc, (distributed.KilledWorker, _StateLost)):
                raise _WorkerLost(missing) from exc
            raise exc


def _fetch(client, futures, owners):
    """The results of futures, noticing a lost worker within a poll, as :func:`_wait` does.

    A result can be lost *after* its task finished (its worker dies before the
    transfer): the future then goes back to waiting for a worker that will
    never come, and a plain ``client.gather`` would wait forever. So each
    result is fetched with a timeout, checking the workers between tries.
    """
    _wait(client, futures, owners)
    results = []
    for future in futures:
        while True:
            try:
                results.append(future.result(timeout=_POLL_SECONDS))
                break
            except (TimeoutError, asyncio.TimeoutError):
                missing = _missing(client, owners)
                if missing:
                    raise _WorkerLost(missing) from None
            except (asyncio.CancelledError, concurrent.futures.CancelledError,
                    distributed.KilledWorker, _StateLost) as exc:
                raise _WorkerLost(_missing(client, owners)) from exc
    return results


class _Run:
    """One attempt at training, from a checkpoint to the end or to a lost worker."""

    def __init__(self, client, owners, name):
        self.client = client
        self.owners = owners
        self.name = name
        # Weak: holding every future would keep every past version of the
        # item blocks in the cluster's memory. Only unfinished ones matter.
        self.futures = weakref.WeakSet()

    def submit(self, func, *args, key, a):
        future = self.client.submit(func, self.name, a, *args, key=f"mfcy-{key}-{self.name}",
                                    workers=[self.owners[a]], allow_other_workers=False,
                                    pure=False)
        self.futures.add(future)
        return future

    def fetch(self, futures):
        return _fetch(self.client, futures, self.owners)

    def close(self):
        self.client.cancel(list(self.futures))
        self.futures = weakref.WeakSet()
        self.client.run(_drop_states, self.name, on_error="ignore")


def _warn_if_blocks_too_small(blocked, stacklevel):
    """Warn when the grid's tasks cost far more than the SGD they run."""
    n_blocks, n = blocked.n_blocks, blocked.n_ratings
    if n_blocks**2 < MANY_TASKS or n >= n_blocks**2 * CHUNK_SIZE:
        return
    better = max(1, math.isqrt(n // CHUNK_SIZE))
    warnings.warn(
        f"n_blocks={n_blocks} cuts {n} ratings into {n_blocks**2} blocks of ~"
        f"{n / n_blocks**2:.3g} ratings: an epoch runs {n_blocks**2 + n_blocks} Dask tasks, "
        "whose scheduling costs far more than their SGD; use n_blocks <= "
        f"{better} (blocks of {CHUNK_SIZE}+ ratings), a multiple of the number of workers",
        UserWarning, stacklevel=stacklevel)


def fit(client, ratings, model, *, columns=None, user_factors=None, item_factors=None,
        validation=None, callback=None, checkpoint_every=10, max_restarts=2):
    """Fit a :class:`~mfcy.MatrixFactorization` on a Dask cluster.

    The result is the model :meth:`MatrixFactorization.fit
    <mfcy.MatrixFactorization.fit>` gives on one machine with the same
    ``random_state`` and ``n_blocks``, to the last bit of every factor and
    bias (and of ``history_["sgd_mse"]`` and the validation scores;
    ``"train_mse"`` is summed in another order and agrees to ~1e-15): the
    two fits run the same epoch loop (divergence check, history, validation,
    early stopping, callbacks, Ctrl-C). Afterwards the model is an ordinary
    local one: ``predict``, ``recommend``, saving and plotting work as usual.

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
        Its hyperparameters are used (``n_threads`` only for the validation
        pass on the client: each block runs on one thread of its worker, and
        the result does not depend on it; ``warm_start`` is not supported);
        fitted in place and returned.
    columns : sequence of 3 str, optional
        The (user, item, rating) column names; by default
        ``("user", "item", "rating")``.
    user_factors, item_factors : array-like, optional
        Initial factors, as for the local ``fit``.
    validation : tuple (X_val, y_val), or another form ``fit`` takes, optional
        Held-out ratings scored after every epoch, as for the local ``fit``
        (needed by ``early_stopping``). Scoring reads every factor, so each
        epoch then gathers the factors to the client (which also serves as a
        checkpoint).
    callback : callable, optional
        ``callback(model, epoch, history)`` after every epoch, as for the
        local ``fit``; ``model`` holds that epoch's factors (gathered to the
        client for it, every epoch).
    checkpoint_every : int or None, default=10
        Every this many epochs, copy the factors to the client, so that a fit
        that loses a worker resumes from there. Each checkpoint moves all the
        factors to the client once; None keeps only the start (re-drawn from
        the seed) and the factors gathered for a validation set or a callback.
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
    if checkpoint_every is not None:
        checkpoint_every = Integer(1).check("checkpoint_every", checkpoint_every, {})
    max_restarts = Integer(0).check("max_restarts", max_restarts, {})
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable, got {callback!r}")
    n_blocks = params.n_blocks if params.shuffle else 1
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
    _warn_if_blocks_too_small(blocked, stacklevel=2)

    rng = np.random.default_rng(params.random_state)
    k = params.n_factors
    # Validated, copied and drawn exactly as the local fit does (P, then Q).
    P = model._initial_factors(user_factors, (blocked.n_users, k), "user_factors", rng, params)
    Q = model._initial_factors(item_factors, (blocked.n_items, k), "item_factors", rng, params)
    index_dtype = _index_dtype(blocked.n_users, blocked.n_items)
    held_out = (None if validation is None else
                ValidationSet(validation, blocked.user_ids, blocked.item_ids, index_dtype,
                              params.dtype, columns))
    monitor = Monitor(params, held_out, callback)
    runner = _ClusterRunner(client, blocked, params, P, Q, rng, checkpoint_every,
                            max_restarts)
    try:
        run_epochs(model, runner, params, monitor)
    except WorkerLostError:
        uninstall(model)  # never a model trained on a lost state
        raise
    finally:
        runner.close()
    return model


class _ClusterRunner:
    """The cluster's runner of :func:`mfcy._training.run_epochs`.

    Row block ``a`` (its ratings, user factors and biases) stays on one
    worker; in sub-epoch ``s`` that worker runs the compiled kernel on block
    ``(a, (a + strata[s]) % n_blocks)`` and hands the updated item block on.
    Every wait on the cluster goes through :func:`_fetch`: when a worker
    holding state is lost, the runner starts a new run from the checkpoint
    and replays the epochs since (the checkpoint holds the generator's state,
    so the replay gives the same bits), and the loop never sees it.
    """

    #: The factors live on the workers: a state means gathering them.
    cheap_state = False

    def __init__(self, client, blocked, params, P, Q, rng, checkpoint_every, max_restarts):
        self.client, self.blocked, self.params, self.rng = client, blocked, params, rng
        self.B = blocked.n_blocks
        self.plan = EpochPlan.from_block_sizes(blocked.block_sizes.ravel(), self.B,
                                               params.shuffle)
        self.n_ratings = blocked.n_ratings
        self.rating_magnitude = max(abs(v) for v in blocked.rating_range)
        self.checkpoint_every, self.max_restarts = checkpoint_every, max_restarts
        self.hyper = (blocked.global_mean, params.learning_rate, params.regularization,
                      params.bias_regularization, params.biased, params.update == "sequential")
        n_bias = (blocked.n_users, blocked.n_items) if params.biased else (0, 0)
        arrays = (P, np.zeros(n_bias[0], params.dtype), Q, np.zeros(n_bias[1], params.dtype))
        self.epochs_done = 0
        # (epochs, arrays): the factors gathered to the client after that many
        # epochs, and the latest checkpoint (which also holds the generator).
        self.snapshot = (0, arrays)
        self.checkpoint = (0, copy.deepcopy(rng.bit_generator.state), arrays)
        self.best = None
        self.parameter_sum = 0.0
        self.run = None
        self.restarts = 0
        self.where = "epoch 1"
        self.token = uuid.uuid4().hex[:12]
        self.generation = 0
        self.fields = self._fields()

    def _fields(self):
        blocked = self.blocked
        layouts = blocked._layouts
        # Read once, before training: pinned to nothing, a lost layout is recomputed.
        seen = _fetch(self.client, [self.client.submit(_seen_items, layouts[a], pure=False)
                                    for a in range(self.B)], [])
        seen_indptr = np.zeros(blocked.n_users + 1, dtype=np.int64)
        np.cumsum(np.concatenate([s[0] for s in seen]), out=seen_indptr[1:])
        index_dtype = _index_dtype(blocked.n_users, blocked.n_items)
        return dict(global_mean=blocked.global_mean, rating_range=blocked.rating_range,
                    users=blocked.user_ids, items=blocked.item_ids, seen_indptr=seen_indptr,
                    seen_items=np.concatenate([s[1] for s in seen]).astype(index_dtype))

    # -- fault handling ------------------------------------------------------------

    def _on_cluster(self, operation):
        """Run ``operation`` on the current run, restarting from the checkpoint if need be."""
        while True:
            try:
                if self.run is None:
                    self._resume()
                return operation()
            except _WorkerLost as lost:
                self._close_run()
                self.restarts += 1
                if self.restarts > self.max_restarts:
                    raise WorkerLostError(
                        f"{lost} in {self.where}; gave up after {self.restarts - 1} "
                        f"restart(s) (max_restarts={self.max_restarts}); the model is not "
                        "fitted") from lost
                warnings.warn(
                    f"{lost} in {self.where}; restarting from the checkpoint after epoch "
                    f"{self.checkpoint[0]} (restart {self.restarts} of at most "
                    f"{self.max_restarts})", RuntimeWarning, stacklevel=5)

    def _resume(self):
        """A new run from the checkpoint, replaying the epochs done since."""
        client, B = self.client, self.B
        if self.generation:
            _ensure_layouts(client, self.blocked)
        workers = _workers(client)
        if not workers:
            client.wait_for_workers(1, timeout=60)
            workers = _workers(client)
        self.run = run = _Run(client, [workers[a % len(workers)] for a in range(B)],
                              f"{self.token}g{self.generation}")
        self.generation += 1
        epochs, rng_state, (P, ub, Q, ib) = self.checkpoint
        self.rng.bit_generator.state = copy.deepcopy(rng_state)
        ubounds, ibounds = self.blocked.user_bounds, self.blocked.item_bounds
        biased = self.params.biased
        self.step, self.last, self.items = 0, [], []
        for a in range(B):
            lo, hi = int(ubounds[a]), int(ubounds[a + 1])
            P_a, ub_a = client.scatter([P[lo:hi], ub[lo:hi] if biased else ub],
                                       workers=[run.owners[a]], hash=False)
            self.last.append(run.submit(_init_state, self.blocked._layouts[a], P_a, ub_a,
                                        self.params.dtype, key=f"init-a{a}", a=a))
        # Item block b starts next to row block b (its first user is a guess).
        for b in range(B):
            lo, hi = int(ibounds[b]), int(ibounds[b + 1])
            self.items.append(client.scatter([(Q[lo:hi], ib[lo:hi] if biased else ib)],
                                             workers=[run.owners[b]], hash=False)[0])
        target, self.epochs_done = self.epochs_done, epochs
        while self.epochs_done < target:
            self._epoch()

    def _close_run(self):
        if self.run is not None:
            self.run.close()
            self.run = None

    def close(self):
        """Let go of the training state on the workers."""
        self._close_run()

    # -- the runner interface --------------------------------------------------------

    def _epoch(self):
        run, B, epoch = self.run, self.B, self.epochs_done
        visit_order, strata, stride = self.plan.draw(self.rng)
        block_chunks = self.plan.block_chunks
        first_step = self.step
        for s in range(B):
            moved = [None] * B
            for a in range(B):
                b = (a + int(strata[s])) % B
                begin, end = block_chunks[a * B + b], block_chunks[a * B + b + 1]
                moved[b] = self.last[a] = run.submit(
                    _sgd_block, self.step, b, self.items[b], self.last[a],
                    visit_order[begin:end] - begin, stride, self.hyper,
                    key=f"sgd-e{epoch}-s{s}-a{a}", a=a)
            self.items = moved
            self.step += 1
        ends = run.fetch([run.submit(_end_epoch, self.step, first_step, self.last[a],
                                     key=f"end-e{epoch}-a{a}", a=a) for a in range(B)])
        self.epochs_done += 1
        if (self.checkpoint_every and self.epochs_done % self.checkpoint_every == 0
                and self.epochs_done < self.params.n_epochs):
            self._gather()
        sse = 0.0
        for s in range(B):  # the kernel's order: strata, then row blocks
            for a in range(B):
                sse += ends[a][0][s]
        with np.errstate(over="ignore", invalid="ignore"):
            self.parameter_sum = sum(end[1] for end in ends)
        return sse

    def _gather(self):
        """Every factor and bias on the client (cached per epoch; each is a checkpoint)."""
        if self.snapshot[0] == self.epochs_done:
            return self.snapshot[1]
        run = self.run
        snaps = run.fetch([run.submit(_snapshot, self.step, self.last[a],
                                      key=f"snapshot-s{self.step}-a{a}", a=a)
                           for a in range(self.B)])
        items = run.fetch(self.items)
        arrays = (np.concatenate([s[0] for s in snaps]), np.concatenate([s[1] for s in snaps]),
                  np.concatenate([q[0] for q in items]), np.concatenate([q[1] for q in items]))
        self.snapshot = (self.epochs_done, arrays)
        self.checkpoint = (self.epochs_done, copy.deepcopy(self.rng.bit_generator.state),
                           arrays)
        return arrays

    def sgd_epoch(self, epoch):
        self.where = f"epoch {epoch + 1}"
        return self._on_cluster(self._epoch)

    def train_loss(self):
        def loss():
            run = self.run
            hyper = (self.blocked.global_mean, self.params.biased)
            return sum(run.fetch([run.submit(_row_loss, self.step, self.last[a], hyper,
                                             *self.items, key=f"loss-s{self.step}-a{a}", a=a)
                                  for a in range(self.B)]))
        return self._on_cluster(loss)

    def parameters_finite(self):
        return math.isfinite(self.parameter_sum)

    def state(self, history, n_epochs, best_epoch):
        if self.epochs_done == self.params.n_epochs:
            self.where = "the final gathering"
        P, ub, Q, ib = self._on_cluster(self._gather)
        return FittedState.build(P, Q, ub, ib, self.params.biased, history=history,
                                 n_epochs=n_epochs, best_epoch=best_epoch, **self.fields)

    def save_best(self):
        self.best = self._on_cluster(self._gather)

    def restore_best(self):
        # Training is over: the best epoch's factors become the ones a state shows.
        self.snapshot = (self.epochs_done, self.best)
