"""How an epoch visits the ratings: the block layout and its per-epoch order.

The kernel (:func:`mfcy._sgd.sgd_epoch`) walks *chunks* of contiguous positions,
grouped into the blocks of an ``n_blocks × n_blocks`` grid of user blocks ×
item blocks, stratum by stratum (see the module docstring of ``_sgd.pyx``).

Why this shape:

* A gather per rating over the whole data (``r[order[t]]``) costs 2.6× against
  walking memory in order, and physically permuting all triples every epoch
  costs a third of an epoch. So the layout is made once per fit, and each epoch
  only re-draws a few hundred numbers: the order of the strata, the order of
  the chunks inside every block, and a *stride* with which the kernel walks
  each chunk (``(j * stride) % n``; a prime larger than every chunk is coprime
  to every chunk length, so each walk is a permutation of its chunk).
* The layout is the canonical (user, item) order bucketed by block with a
  stable radix sort: no random permutation and no random gathers at set-up.
  Walking a user-sorted chunk in order would chain updates of one user row
  (each waiting for the last); the stride interleaves the chunk's users
  instead, while the chunk (12 KB) stays in L1.
* Blocks are contiguous ranges of user and item indices with equal shares of
  the ratings (balanced work, and no two threads writing one cache line).
  Blocks of one stratum share no user and no item, so threads can run them at
  once, and since each block's own visiting order is drawn from the seed before
  the threads start, the factors come out bit-identical for any thread count.
* ``shuffle=False`` is the lesson's path: one block, the canonical (user, item)
  order, chunks in storage order, stride 1.
"""

from __future__ import annotations

import numpy as np

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
    return _ranges_from_counts(np.bincount(index, minlength=n), n_blocks)


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


def _primes_above(low, count):
    """The first ``count`` primes larger than ``low`` (trial division: tiny n)."""
    primes, candidate = [], low + 1
    while len(primes) < count:
        if candidate > 1 and all(candidate % d for d in range(2, int(candidate**0.5) + 1)):
            primes.append(candidate)
        candidate += 1
    return np.array(primes, dtype=np.int64)


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
            small = n_blocks * n_blocks <= np.iinfo(np.int16).max
            block_dtype = np.int16 if small else np.int64
            user_block = _balanced_ranges(users, n_users, n_blocks).astype(block_dtype)
            item_block = _balanced_ranges(items, n_items, n_blocks).astype(block_dtype)
            block = user_block[users] * block_dtype(n_blocks) + item_block[items]
            # Stable, so each block keeps the canonical order; numpy's stable
            # argsort of int16 is a radix sort (O(n), 20x faster than int64).
            order = np.argsort(block, kind="stable")
            block_sizes = np.bincount(block, minlength=n_blocks * n_blocks).astype(np.int64)
            del block
            self.users, self.items, self.ratings = users[order], items[order], ratings[order]
            del order
        self._init_schedule(block_sizes, chunk_size)

    def _init_schedule(self, block_sizes, chunk_size):
        self.chunk_bounds, self.block_chunks, self._chunk_block = _chunk_bounds(
            block_sizes, chunk_size)
        self._strides = _primes_above(chunk_size, 64)
        self._identity = (np.arange(len(self._chunk_block), dtype=np.int64),
                          np.zeros(1, dtype=np.int64), 1)

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
