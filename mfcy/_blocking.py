"""How an epoch visits the ratings: the block layout and its per-epoch order.

The kernel (:func:`mfcy._sgd.sgd_epoch`) walks *chunks* of contiguous positions,
grouped into the blocks of an ``n_blocks × n_blocks`` grid of user blocks ×
item blocks, stratum by stratum (see the module docstring of ``_sgd.pyx``).

Why this shape:

* A gather per rating over the whole data (``r[order[t]]``) is much slower than
  walking memory in order, and physically permuting all triples every epoch
  costs a large part of an epoch (benchmarks/README.md, "Measurements behind
  the code"). So the layout is made once per fit, and each epoch
  only re-draws a few hundred numbers: the order of the strata, the order of
  the chunks inside every block, and a *stride* with which the kernel walks
  each chunk (``(j * stride) % n``; a prime larger than every chunk is coprime
  to every chunk length, so each walk is a permutation of its chunk; the
  primes are picked so that a full chunk's step spreads the visits, see
  :func:`_good_strides`).
* The layout is the canonical (user, item) order bucketed by block, made by
  counting sorts: no random permutation and no random gathers at set-up. A
  fit builds it straight from its input in two passes
  (:meth:`EpochPlan.from_encoded`); from canonical triples (duplicates
  averaged first) it is one stable pass (:func:`mfcy._layout.bucket_by_block`).
  Walking a user-sorted chunk in order would chain updates of one user row
  (each waiting for the last); the stride interleaves the chunk's users
  instead, while the chunk (12 KB) stays in L1.
* Blocks are contiguous ranges of user and item indices with equal shares of
  the ratings (balanced work, and no two threads writing one cache line).
  Blocks of one stratum share no user and no item, so threads can run them at
  once, and since each block's own visiting order is drawn from the seed before
  the threads start, the factors come out bit-identical for any thread count.
* ``shuffle=False``: one block, the canonical (user, item) order, chunks in
  storage order, stride 1 (the order the teaching notebook's loop visits).
"""

from __future__ import annotations

import functools

import numpy as np

from ._extensions import _layout

#: Ratings per chunk. Small enough that hundreds of chunks per block give a
#: fresh order each epoch; large enough that the per-chunk jump (and the loss of
#: prefetching at a chunk's start) costs nothing measurable.
CHUNK_SIZE = 1024


def _chunk_bounds(block_sizes, chunk_size):
    """Chunk boundaries that never straddle two blocks.

    Returns ``bounds`` (n_chunks + 1) and ``block_chunks`` (n_blocks + 1): the
    chunks of block ``b`` are ``block_chunks[b]:block_chunks[b + 1]``.
    """
    n_chunks_per_block = -(-block_sizes // chunk_size)  # ceil division
    block_chunks = np.zeros(len(block_sizes) + 1, dtype=np.int64)
    np.cumsum(n_chunks_per_block, out=block_chunks[1:])
    block_start = np.zeros(len(block_sizes), dtype=np.int64)
    np.cumsum(block_sizes[:-1], out=block_start[1:])
    # Start of chunk j of block b = block_start[b] + j * chunk_size.
    chunk_block = np.repeat(np.arange(len(block_sizes)), n_chunks_per_block)
    within = np.arange(block_chunks[-1]) - block_chunks[chunk_block]
    bounds = np.empty(block_chunks[-1] + 1, dtype=np.int64)
    bounds[:-1] = block_start[chunk_block] + within * chunk_size
    bounds[-1] = block_sizes.sum()
    return bounds, block_chunks, chunk_block


def _balanced_ranges(index, n, n_blocks):
    """Block of each of ``n`` ids: contiguous index ranges holding equal shares of ratings.

    Contiguous, not scattered: threads working on different blocks then write
    different cache lines (a bias is 4 bytes, so scattered ids would make two
    threads share every line of the bias arrays and of short factor rows).
    Equal shares of ratings, not of ids, so that the blocks of a stratum take
    about the same time whatever the degree distribution.
    """
    return _ranges_from_counts(_layout.count_keys(index, n), n_blocks)


def _ranges_from_counts(counts, n_blocks):
    """:func:`_balanced_ranges` from the number of ratings of each id.

    Split out so that a distributed fit (:mod:`mfcy.dask`), which only ever
    sees the counts, cuts exactly the same blocks as the local fit.
    """
    counts = np.asarray(counts).astype(np.float64)
    # Position of each id's middle rating in the cumulative count.
    middle = np.cumsum(counts) - 0.5 * counts
    return np.minimum((middle * n_blocks / max(counts.sum(), 1.0)).astype(np.int64),
                      n_blocks - 1)


def _is_prime(n):
    return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))


def _spread(step, n, lookahead=8):
    """How close, in positions, any of the next ``lookahead`` visits comes to this one."""
    return min(min(m * step % n, n - m * step % n) for m in range(1, lookahead + 1))


@functools.lru_cache(maxsize=8)
def _good_strides(chunk_size, count=32):
    """Primes above ``chunk_size`` that walk a full chunk with well-spread steps.

    A prime larger than every chunk is coprime to every chunk length, so
    ``(j * stride) % n`` is a permutation of any chunk. Among those primes,
    keep the ones whose step ``stride % chunk_size`` puts each of the next 8
    visits at least ``chunk_size / 16`` positions away: a chunk is sorted by
    user, and visits close together in it would chain updates of one user row
    (each waiting for the last); small steps, and steps near 1/2 or 1/3 of the
    chunk, were measurably slower (benchmarks/README.md).
    """
    strides, candidate = [], chunk_size + 1
    while len(strides) < count:
        if _is_prime(candidate) and (chunk_size < 16 or _spread(
                candidate % chunk_size, chunk_size) >= chunk_size // 16):
            strides.append(candidate)
        candidate += 1
    strides = np.array(strides, dtype=np.int64)
    strides.flags.writeable = False  # shared by every plan (cached)
    return strides


class EpochPlan:
    """Training triples laid out for the kernel, and the draw of each epoch's order.

    Parameters
    ----------
    users, items, ratings : ndarray
        Canonical triples (sorted by user, item), already in the kernel's dtypes.
    n_users, n_items : int
    n_blocks : int
        Side of the block grid (ignored when ``shuffle`` is False).
    shuffle : bool
    rng : numpy.random.Generator
        Draws the per-epoch orders in :meth:`draw` (the layout itself is
        deterministic).
    chunk_size : int
    """

    def __init__(self, users, items, ratings, n_users, n_items, n_blocks, shuffle, rng,
                 chunk_size=CHUNK_SIZE):
        n = len(ratings)
        self.shuffle = bool(shuffle)
        if not self.shuffle:
            self.n_blocks = 1
            self.users, self.items, self.ratings = users, items, ratings
            block_sizes = np.array([n], dtype=np.int64)
        else:
            self.n_blocks = n_blocks
            user_block = _balanced_ranges(users, n_users, n_blocks)
            item_block = _balanced_ranges(items, n_items, n_blocks)
            # A stable counting sort by block (compiled, O(n)), so each block
            # keeps the canonical order.
            self.users, self.items, self.ratings, block_sizes = _layout.bucket_by_block(
                users, items, ratings, user_block, item_block, n_blocks)
        self._init_schedule(block_sizes, chunk_size)

    def _init_schedule(self, block_sizes, chunk_size):
        self.chunk_bounds, self.block_chunks, self._chunk_block = _chunk_bounds(
            block_sizes, chunk_size)
        self._strides = _good_strides(chunk_size)
        self._identity = (np.arange(len(self._chunk_block), dtype=np.int64),
                          np.zeros(1, dtype=np.int64), 1)

    @classmethod
    def from_encoded(cls, users, items, ratings, n_users, n_items, n_blocks, dtype,
                     chunk_size=CHUNK_SIZE):
        """The shuffled plan straight from triples in any order, or None if a pair repeats.

        The same layout as ``EpochPlan(*canonical triples, shuffle=True)``, in
        two compiled passes instead of a canonical sort and a regrouping (a
        third of the set-up of a fit on a million ratings). Also fills
        ``seen_indptr`` and ``seen_items``: each user's items in increasing
        order, as a CSR. Duplicates of a (user, item) pair have to be
        averaged first, so for them this returns None and the caller takes
        the canonical path.

        Parameters
        ----------
        users, items : ndarray of int32 or int64
            Dense indices, any order.
        ratings : ndarray of float64
        n_users, n_items, n_blocks : int
        dtype : numpy dtype
            The kernel's real type; ``plan.ratings`` is converted to it (check
            it for overflow).
        """
        user_block = _balanced_ranges(users, n_users, n_blocks)
        item_block = _balanced_ranges(items, n_items, n_blocks)
        plan_ratings = np.empty(len(ratings), dtype=dtype)
        with np.errstate(over="ignore"):  # the caller checks for overflow
            laid_out = _layout.block_layout(users, items, ratings, user_block, item_block, n_blocks,
                                    plan_ratings)
        if laid_out is None:
            return None
        plan = cls.__new__(cls)
        plan.shuffle = True
        plan.n_blocks = n_blocks
        plan.users, plan.items, block_sizes = laid_out
        plan.ratings = plan_ratings
        plan._init_schedule(block_sizes, chunk_size)
        plan.seen_indptr, plan.seen_items = _layout.items_by_user(plan.users, plan.items, n_users)
        return plan

    @classmethod
    def from_block_sizes(cls, block_sizes, n_blocks, shuffle, chunk_size=CHUNK_SIZE):
        """The schedule alone, without the triples: :meth:`draw` gives the same orders.

        For a distributed fit, where each worker holds its own blocks and the
        driver only needs the number of ratings in each block
        (``block_sizes``, row-major over the ``n_blocks × n_blocks`` grid; one
        block when ``shuffle`` is False).
        """
        plan = cls.__new__(cls)
        plan.shuffle = bool(shuffle)
        plan.n_blocks = n_blocks if plan.shuffle else 1
        plan.users = plan.items = plan.ratings = None
        block_sizes = np.asarray(block_sizes, dtype=np.int64)
        if len(block_sizes) != plan.n_blocks**2:
            raise ValueError(f"expected {plan.n_blocks**2} block sizes, got {len(block_sizes)}")
        plan._init_schedule(block_sizes, chunk_size)
        return plan

    @property
    def n_chunks(self):
        return len(self._chunk_block)

    def draw(self, rng):
        """The visiting order of one epoch: ``(visit_order, strata, stride)``."""
        if not self.shuffle:
            return self._identity
        # Random keys in [0, 1) added to the block number: sorting them keeps
        # each block's chunks together and shuffles them within the block.
        keys = self._chunk_block + rng.random(self.n_chunks)
        visit_order = np.argsort(keys, kind="stable").astype(np.int64)
        strata = rng.permutation(self.n_blocks).astype(np.int64)
        stride = int(rng.choice(self._strides))
        return visit_order, strata, stride
