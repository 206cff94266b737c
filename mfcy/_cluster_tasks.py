"""What the workers of a Dask fit run (:mod:`mfcy.dask` is the driver that submits it).

Plain numpy and the compiled kernel, no Dask: the partitioning job's steps
(validate a partition, count ids, encode, average duplicates, lay out a row
block as the local fit's counting sort does) and the training tasks, which
keep each row block's state in the worker's memory between tasks.
"""

from __future__ import annotations

import threading
from fractions import Fraction

import numpy as np

from ._blocking import CHUNK_SIZE, _ranges_from_counts
from ._exact import exact_sum
from ._extensions import _layout, _sgd
from ._input import _canonical, _encode, _index_dtype, as_ids, as_ratings

_INT32_MAX = np.iinfo(np.int32).max


class _StateLost(RuntimeError):
    """Raised on a worker asked to run a block whose state it does not hold."""


# -- input ------------------------------------------------------------------------


def _column_numpy(column, role):
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if role == "rating" and is_numeric_dtype(column.dtype) and not is_bool_dtype(column.dtype):
        # Nullable extension dtypes (Float64, Int64) give object arrays otherwise.
        return column.to_numpy(dtype=np.float64)
    return column.to_numpy()


def _is_arrow_text(dtype):
    """A column of strings held by Arrow (``dd.read_parquet`` gives ``string[pyarrow]``)."""
    import pandas as pd

    if isinstance(dtype, pd.StringDtype):
        return True
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        return pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(
            dtype.pyarrow_dtype)
    return False


def _partition_ids(column, what):
    """One partition's id column as (its distinct ids, each row's index among them).

    The rows then travel as small integer codes, and only the distinct ids
    are compared with the other partitions'. Integer ids go through the local
    fit's compiled encoder; strings through a hash table (Arrow's dictionary
    encoding for Arrow strings), never a Python ``str`` per row of an Arrow
    column. The distinct ids are in no particular order.
    """
    import pandas as pd
    from pandas.api.types import infer_dtype

    if _is_arrow_text(column.dtype):
        codes, uniques = pd.factorize(column.array)
        uniques = np.asarray(uniques.to_numpy(dtype=object)).astype(str)
    else:
        values = _column_numpy(column, "id")
        if values.dtype.kind == "O" and len(values) and infer_dtype(values, skipna=False) == "string":
            codes, uniques = pd.factorize(values)
            uniques = np.asarray(uniques, dtype=object).astype(str)
        else:
            values = as_ids(values, what, widen=False)
            if len(values) == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
            if values.dtype.kind in "US":
                codes, uniques = pd.factorize(values.astype(object))
                uniques = np.asarray(uniques, dtype=object).astype(str)
            else:
                uniques, codes = _encode(values)
    return uniques, codes.astype(_index_dtype(len(uniques), 0), copy=False)


def _clean_partition(frame, number, columns):
    """Validate one partition; return its encoded ids (see :func:`_partition_ids`) and ratings."""
    where = f"partition {number}"
    out = []
    for role, name in zip(("user", "item", "rating"), columns):
        column = frame[name]
        missing = column.isna().to_numpy()
        if missing.any():
            raise ValueError(f"the {role} column {name!r} has missing values in {where} "
                             f"(first at row {int(np.flatnonzero(missing)[0])})")
        if role == "rating":
            out.append(as_ratings(_column_numpy(column, role),
                                  f"ratings (column {name!r}, {where})"))
        else:
            out.append(_partition_ids(column, f"{role} ids (column {name!r}, {where})"))
    return tuple(out)


def _id_counts(cleaned):
    """Each column's distinct ids, sorted (as the id map is), and their numbers of rows."""
    counted = []
    for uniques, codes in cleaned[:2]:
        order = np.argsort(uniques, kind="stable")
        counted.append((uniques[order], np.bincount(codes, minlength=len(uniques))[order]))
    return tuple(counted)


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
    (user_uniques, user_codes), (item_uniques, item_codes), ratings = cleaned
    dtype = _index_dtype(len(user_ids), len(item_ids))
    # Only the distinct ids are looked up in the id maps. Same kind as the map
    # (an int64 part of a uint64 column), so that searchsorted never compares
    # through float64.
    users = np.searchsorted(user_ids, user_uniques.astype(user_ids.dtype, copy=False))
    items = np.searchsorted(item_ids, item_uniques.astype(item_ids.dtype, copy=False))
    users, items = users.astype(dtype)[user_codes], items.astype(dtype)[item_codes]
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


def _bounds(block_of_id, n_blocks):
    """Start of each block's index range (+ the end), from a non-decreasing block per id."""
    return np.searchsorted(block_of_id, np.arange(n_blocks + 1)).astype(np.int64)


def _group_plan(stats, n_blocks):
    """The id maps, the number of input rows and the bounds of the user groups.

    Groups are contiguous user ranges balanced on the raw counts (before
    duplicates are averaged), one per row block.
    """
    (user_ids, user_raw), (item_ids, _) = stats
    if len(user_ids) == 0:
        return user_ids, item_ids, 0, None
    return (user_ids, item_ids, int(user_raw.sum()),
            _bounds(_ranges_from_counts(user_raw, n_blocks), n_blocks))


def _block_plan(n_blocks, *group_stats):
    """The local fit's row and column block bounds (balanced on the counts after
    averaging duplicates) and the sums of the groups' :func:`_group_stats`."""
    user_counts = np.concatenate([s[0] for s in group_stats])
    item_counts = np.sum([s[1] for s in group_stats], axis=0)
    rating_sum = sum((s[2] for s in group_stats), Fraction(0))
    n_duplicates = sum(int(s[4]) for s in group_stats)
    rating_range = (min(s[5] for s in group_stats), max(s[6] for s in group_stats))
    return (_bounds(_ranges_from_counts(user_counts, n_blocks), n_blocks),
            _bounds(_ranges_from_counts(item_counts, n_blocks), n_blocks),
            rating_sum, n_duplicates, rating_range)


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
    users, items, ratings, sizes = _layout.bucket_by_block(
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


def _seen_items(layout, dtype):
    """The row block's part of the seen-items CSR: (counts per user, item indices of ``dtype``)."""
    offsets, bounds = layout["offsets"], layout["item_bounds"]
    items = layout["items"].astype(np.int64)
    for b in range(len(offsets) - 1):
        items[offsets[b]:offsets[b + 1]] += bounds[b]
    # The local fit's compiled pass over the same block layout: canonical order.
    indptr, items = _layout.items_by_user(layout["users"].astype(np.int64), items,
                                  layout["hi"] - layout["lo"])
    return np.diff(indptr), items.astype(dtype, copy=False)
