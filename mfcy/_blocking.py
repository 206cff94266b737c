"""How an epoch visits the ratings: the block layout and its per-epoch order.

The kernel (:func:`mfcy._sgd.sgd_epoch`) walks *chunks* of contiguous positions,
grouped into the blocks of an ``n_blocks × n_blocks`` grid of user blocks ×
item blocks, stratum by stratum (see the module docstring of ``_sgd.pyx``).

Why this shape:

* A gather per rating (``r[order[t]]``) costs 2.6× against walking memory in
  order, and physically permuting all triples every epoch costs a third of an
  epoch. So the triples are shuffled *once* per fit, into their blocks, and each
  epoch only re-draws the order of the chunks inside every block and the order
  of the strata: a few hundred numbers, not a million.
* Blocks of one stratum share no user and no item, so threads can run them at
  once, and since each block's own visiting order is drawn from the seed before
  the threads start, the factors come out bit-identical for any thread count.
* ``shuffle=False`` is the lesson's path: one block, the canonical (user, item)
  order, chunks in storage order.
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
        Draws the id permutation and the one-off shuffle here, and the
        per-epoch orders in :meth:`draw`.
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
            # A seeded permutation of the ids spreads popular users and items
            # evenly over the blocks, whatever order the ids came in.
            user_block = (rng.permutation(n_users) * n_blocks) // max(n_users, 1)
            item_block = (rng.permutation(n_items) * n_blocks) // max(n_items, 1)
            # Arrays of the ratings' length are built in place and dropped as soon
            # as possible: with 10 M ratings each int64 one is 80 MB.
            block_dtype = np.int32 if n_blocks * n_blocks <= np.iinfo(np.int32).max else np.int64
            block = user_block.astype(block_dtype)[users]
            block *= n_blocks
            block += item_block.astype(block_dtype)[items]
            block_sizes = np.bincount(block, minlength=n_blocks * n_blocks).astype(np.int64)
            order = rng.permutation(n)
            keys = block[order]
            del block
            order = order[np.argsort(keys, kind="stable")]
            del keys
            self.users, self.items, self.ratings = users[order], items[order], ratings[order]
            del order
        self.chunk_bounds, self.block_chunks, self._chunk_block = _chunk_bounds(
            block_sizes, chunk_size)
        self._identity = (np.arange(len(self._chunk_block), dtype=np.int64),
                          np.zeros(1, dtype=np.int64))

    @property
    def n_chunks(self):
        return len(self._chunk_block)

    def draw(self, rng):
        """The visiting order of one epoch: ``(visit_order, strata)``."""
        if not self.shuffle:
            return self._identity
        # Random keys in [0, 1) added to the block number: sorting them keeps
        # each block's chunks together and shuffles them within the block.
        keys = self._chunk_block + rng.random(self.n_chunks)
        visit_order = np.argsort(keys, kind="stable").astype(np.int64)
        strata = rng.permutation(self.n_blocks).astype(np.int64)
        return visit_order, strata
