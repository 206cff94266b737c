# cython: language_level=3
"""The compiled parts of a fit's set-up, all O(n) passes over the ratings.

* Integer ids to dense indices by a lookup table (:func:`encode_dense_ids`).
* The block layout the SGD epochs walk (:mod:`mfcy._blocking`), straight from
  the input (:func:`block_layout`, two counting-sort passes), or from the
  canonical (user, item) order (:func:`sort_by_user_item`, then
  :func:`bucket_by_block`), which the serial path (``shuffle=False``) and input with
  duplicate pairs (averaged first) need. Sort keys are small dense integers,
  so a counting sort is one histogram and one scatter per key, where numpy's
  argsort of an int64 key is O(n log n) and then needs a gather per array
  (ML-1M, 900 k ratings: the canonical order took 43 ms with numpy, ~17 ms
  here; the whole set-up of a fit went from 87 to 43 ms).
* The exact sum of whole/half-star ratings (:func:`half_units_sum`).
* A text file's bytes checked as they are read (:func:`scan_text`): ids
  written ``007``, ``+7`` or ``-0``, and lines too long to be ratings.

Like the kernel, these functions trust their inputs: every user index is in
[0, n_users) and every item index in [0, n_items), which :mod:`mfcy._input`
guarantees by construction. A debug build (``MFCY_DEBUG=1``) checks every
index anyway.
"""

from libc.math cimport fabs
from libc.stdint cimport int32_t, int64_t

import numpy as np

ctypedef fused index_t:
    int32_t
    int64_t

ctypedef fused real_t:
    float
    double


cdef int _histogram_starts(const index_t[::1] keys, int64_t[::1] starts) except -1 nogil:
    """Fill zeroed ``starts`` (one slot per key value, plus one) so that ``starts[k]``
    is how many keys are smaller than ``k``: where key ``k``'s run begins."""
    cdef Py_ssize_t t, k
    cdef int64_t total = 0
    for t in range(keys.shape[0]):
        starts[keys[t] + 1] += 1
    for k in range(starts.shape[0]):
        total += starts[k]
        starts[k] = total
    return 0


cdef struct KeyRating:
    # One rating on its way between the two passes: 16 bytes, one store.
    int64_t key
    double rating


def sort_by_user_item(const index_t[::1] users, const index_t[::1] items,
                      const double[::1] ratings, Py_ssize_t n_users, Py_ssize_t n_items):
    """The triples in (user, item) order, and how many pairs repeat their predecessor.

    A stable least-significant-digit counting sort: by item, then by user.
    Input that is already in strictly increasing (user, item) order (a dense
    matrix's ``np.nonzero``, a CSR matrix) is returned as it is.

    Each pass reads in order and writes to one running position per key, so
    the open cache lines are a few per distinct key (thousands: they stay in
    cache) where a gather by a permutation would miss on every rating. The
    key a pass sorts by is implied by the bucket, so it is not stored: the
    first pass keeps (user, rating) pairs, the second writes items and
    ratings, and the users come out as runs.

    Returns
    -------
    users, items, ratings : ndarray
        Sorted copies (or the inputs themselves when already sorted).
    n_repeated : int
        Positions whose (user, item) equals the previous position's.
    """
    cdef Py_ssize_t n = users.shape[0]
    cdef Py_ssize_t t, j, u
    cdef int64_t dst, n_repeated = 0
    cdef bint ordered = True
    cdef KeyRating *by_item
    with nogil:
        for t in range(1, n):
            if users[t] < users[t - 1] or (users[t] == users[t - 1] and items[t] <= items[t - 1]):
                ordered = False
                break
    if ordered:
        return np.asarray(users), np.asarray(items), np.asarray(ratings), 0

    index_dtype = np.int32 if index_t is int32_t else np.int64
    item_starts_arr = np.zeros(n_items + 1, dtype=np.int64)
    user_starts_arr = np.zeros(n_users + 1, dtype=np.int64)
    out = [np.empty(n, dtype=index_dtype), np.empty(n, dtype=index_dtype),
           np.empty(n, dtype=np.float64)]
    cdef int64_t[::1] item_starts = item_starts_arr
    cdef int64_t[::1] user_starts = user_starts_arr
    cdef index_t[::1] out_users = out[0]
    cdef index_t[::1] out_items = out[1]
    cdef double[::1] out_ratings = out[2]
    # The histograms index through bounds-checked memoryviews in a debug
    # build: a key out of range is an IndexError before any scatter.
    _histogram_starts(items, item_starts)
    _histogram_starts(users, user_starts)
    # numpy's allocator, not malloc: it asks Linux for huge pages for large
    # arrays, and first-touch page faults are a visible part of a fresh process.
    by_item_buffer = np.empty(max(n, 1) * sizeof(KeyRating), dtype=np.uint8)
    cdef unsigned char[::1] by_item_bytes = by_item_buffer
    by_item = <KeyRating *>&by_item_bytes[0]
    with nogil:
        # Pass 1, by item: item_starts[i] ends as the end of item i's run.
        for t in range(n):
            dst = item_starts[items[t]]
            item_starts[items[t]] = dst + 1
            by_item[dst].key = users[t]
            by_item[dst].rating = ratings[t]
        # Pass 2, by user, visiting the item runs in item order (stable).
        j = 0
        for t in range(n_items):
            while j < item_starts[t]:
                dst = user_starts[by_item[j].key]
                user_starts[by_item[j].key] = dst + 1
                out_items[dst] = <index_t>t
                out_ratings[dst] = by_item[j].rating
                j += 1
    del by_item_bytes, by_item_buffer
    with nogil:
        # user_starts[u] is now the end of user u's run.
        j = 0
        for u in range(n_users):
            while j < user_starts[u]:
                out_users[j] = <index_t>u
                j += 1
        for t in range(1, n):
            if out_users[t] == out_users[t - 1] and out_items[t] == out_items[t - 1]:
                n_repeated += 1
    return out[0], out[1], out[2], int(n_repeated)


def bucket_by_block(const index_t[::1] users, const index_t[::1] items,
                    const real_t[::1] ratings, const int64_t[::1] user_block,
                    const int64_t[::1] item_block, Py_ssize_t n_blocks):
    """The triples regrouped block by block, each block keeping the input's order.

    Block ``user_block[u] * n_blocks + item_block[i]`` of a user-block ×
    item-block grid; a stable counting sort (one histogram, one scatter).

    Returns
    -------
    users, items, ratings : ndarray
        New arrays, blocks in row-major order.
    block_sizes : ndarray of int64, shape (n_blocks ** 2,)
    """
    cdef Py_ssize_t n = users.shape[0]
    cdef Py_ssize_t t, b, dst
    cdef int64_t total = 0, count
    index_dtype = np.int32 if index_t is int32_t else np.int64
    real_dtype = np.float32 if real_t is float else np.float64
    sizes_arr = np.zeros(n_blocks * n_blocks, dtype=np.int64)
    starts_arr = np.empty(n_blocks * n_blocks, dtype=np.int64)
    out_users_arr = np.empty(n, dtype=index_dtype)
    out_items_arr = np.empty(n, dtype=index_dtype)
    out_ratings_arr = np.empty(n, dtype=real_dtype)
    cdef int64_t[::1] sizes = sizes_arr
    cdef int64_t[::1] starts = starts_arr
    cdef index_t[::1] out_users = out_users_arr
    cdef index_t[::1] out_items = out_items_arr
    cdef real_t[::1] out_ratings = out_ratings_arr
    with nogil:
        for t in range(n):
            sizes[user_block[users[t]] * n_blocks + item_block[items[t]]] += 1
        for b in range(n_blocks * n_blocks):
            starts[b] = total
            total += sizes[b]
        for t in range(n):
            b = user_block[users[t]] * n_blocks + item_block[items[t]]
            dst = starts[b]
            starts[b] += 1
            out_users[dst] = users[t]
            out_items[dst] = items[t]
            out_ratings[dst] = ratings[t]
    return out_users_arr, out_items_arr, out_ratings_arr, sizes_arr


def count_keys(const index_t[::1] keys, Py_ssize_t n):
    """How many times each of ``0 .. n - 1`` occurs in ``keys`` (int64).

    ``np.bincount`` of int32 keys first converts them to int64: this is
    several times faster on a million ratings.
    """
    counts_arr = np.zeros(n, dtype=np.int64)
    cdef int64_t[::1] counts = counts_arr
    cdef Py_ssize_t t
    with nogil:
        for t in range(keys.shape[0]):
            counts[keys[t]] += 1
    return counts_arr


def half_units_sum(const double[::1] values):
    """The exact sum of whole and half numbers, or ``None`` for any other input.

    Ratings are mostly whole or half stars: twice each is then an integer and
    their sum is an exact integer sum (int64), in one pass without temporary
    arrays. Returns ``2 * sum(values)`` as a Python int, or ``None`` when a
    value is not a multiple of 1/2, when twice its magnitude reaches 2**53, or
    when the total could leave int64: :func:`mfcy._exact.exact_sum` then
    takes its general path.
    """
    cdef Py_ssize_t t
    cdef double doubled, magnitude = 0.0
    cdef int64_t total = 0, whole
    cdef bint ok = True
    with nogil:
        for t in range(values.shape[0]):
            doubled = values[t] * 2.0  # exact: a power of two
            if not (fabs(doubled) < 9007199254740992.0):  # NaN and infinity fail too
                ok = False
                break
            # Below 2**53 the conversion is exact and defined; trunc() would be
            # a libm call per value on the x86-64 baseline (no SSE4.1 round).
            whole = <int64_t>doubled
            if <double>whole != doubled:
                ok = False
                break
            magnitude += fabs(doubled)
            total += whole
    # magnitude is rounded, but far from the limit below it bounds every
    # partial sum of total, which then never overflowed.
    if not ok or magnitude >= 4611686018427387904.0:  # 2**62
        return None
    return int(total)


def block_layout(const index_t[::1] users, const index_t[::1] items, const double[::1] ratings,
                 const int64_t[::1] user_block, const int64_t[::1] item_block,
                 Py_ssize_t n_blocks, real_t[::1] out_ratings):
    """Triples in any order -> the block layout, in two counting-sort passes.

    The result is what :func:`sort_by_user_item` followed by
    :func:`bucket_by_block` gives (blocks row-major, the canonical (user, item)
    order inside each), without the canonical copy in between: pass 1 groups
    the ratings by item, pass 2 scatters them, item by item, to one running
    position per (user, item block), the positions ordered by (user block,
    item block, user). ``user_block`` must be non-decreasing (contiguous
    blocks of users). The ratings are converted to ``out_ratings``' type on
    the way (``out_ratings`` has the length of ``ratings``).

    Returns
    -------
    (users, items, block_sizes), or None
        None as soon as a (user, item) pair turns out to repeat: duplicates
        must be averaged, which the canonical path does.
    """
    cdef Py_ssize_t n = users.shape[0]
    cdef Py_ssize_t n_users = user_block.shape[0], n_items = item_block.shape[0]
    cdef Py_ssize_t B = n_blocks
    cdef Py_ssize_t t, j, u, i, a, b, first, last
    cdef int64_t dst, running = 0, slot
    index_dtype = np.int32 if index_t is int32_t else np.int64
    real_dtype = np.float32 if real_t is float else np.float64
    item_starts_arr = np.zeros(n_items + 1, dtype=np.int64)
    # One slot per (user, item block): its ratings' count, then where they go.
    slots_arr = np.zeros(n_users * B, dtype=np.int64)
    begins_arr = np.empty(n_users * B, dtype=np.int64)
    sizes_arr = np.zeros(B * B, dtype=np.int64)
    first_user_arr = np.zeros(B + 1, dtype=np.int64)
    mid_users_arr = np.empty(n, dtype=index_dtype)
    mid_ratings_arr = np.empty(n, dtype=real_dtype)
    out_users_arr = np.empty(n, dtype=index_dtype)
    out_items_arr = np.empty(n, dtype=index_dtype)
    cdef int64_t[::1] item_starts = item_starts_arr
    cdef int64_t[::1] slots = slots_arr
    cdef int64_t[::1] begins = begins_arr
    cdef int64_t[::1] sizes = sizes_arr
    cdef int64_t[::1] first_user = first_user_arr
    cdef index_t[::1] mid_users = mid_users_arr
    cdef real_t[::1] mid_ratings = mid_ratings_arr
    cdef index_t[::1] out_users = out_users_arr
    cdef index_t[::1] out_items = out_items_arr
    cdef bint repeated = False
    _histogram_starts(items, item_starts)
    with nogil:
        for t in range(n):
            slots[users[t] * B + item_block[items[t]]] += 1
        # Users of block a are first_user[a] .. first_user[a + 1] - 1.
        for u in range(n_users):
            first_user[user_block[u] + 1] = u + 1
        for a in range(1, B + 1):
            if first_user[a] < first_user[a - 1]:
                first_user[a] = first_user[a - 1]
        # Slot starts in (user block, item block, user) order.
        for a in range(B):
            for b in range(B):
                for u in range(first_user[a], first_user[a + 1]):
                    slot = u * B + b
                    dst = slots[slot]
                    slots[slot] = running
                    begins[slot] = running
                    running += dst
                    sizes[a * B + b] += dst
        # Pass 1, by item (ratings converted to the kernel's type here).
        for t in range(n):
            dst = item_starts[items[t]]
            item_starts[items[t]] = dst + 1
            mid_users[dst] = users[t]
            mid_ratings[dst] = <real_t>ratings[t]
        # Pass 2, item by item (so each slot receives its items in order).
        j = 0
        for i in range(n_items):
            b = item_block[i]
            while j < item_starts[i]:
                slot = mid_users[j] * B + b
                dst = slots[slot]
                if dst > begins[slot] and out_items[dst - 1] == i:
                    repeated = True
                    break
                slots[slot] = dst + 1
                out_users[dst] = mid_users[j]
                out_items[dst] = <index_t>i
                out_ratings[dst] = mid_ratings[j]
                j += 1
            if repeated:
                break
    if repeated:
        return None
    return out_users_arr, out_items_arr, sizes_arr


def items_by_user(const index_t[::1] users, const index_t[::1] items, Py_ssize_t n_users):
    """Each user's items, user by user, keeping their order: (indptr, items).

    From the block layout this is the canonical order (a user's items come
    block by block, item blocks in increasing order, sorted inside each).
    """
    cdef Py_ssize_t n = users.shape[0]
    cdef Py_ssize_t t
    cdef int64_t dst
    index_dtype = np.int32 if index_t is int32_t else np.int64
    starts_arr = np.zeros(n_users + 1, dtype=np.int64)
    out_arr = np.empty(n, dtype=index_dtype)
    cdef int64_t[::1] starts = starts_arr
    cdef index_t[::1] out = out_arr
    _histogram_starts(users, starts)
    indptr = starts_arr.copy()
    with nogil:
        for t in range(n):
            dst = starts[users[t]]
            starts[users[t]] = dst + 1
            out[dst] = items[t]
    return indptr, out_arr


ctypedef fused id_t:
    int32_t
    int64_t

ctypedef fused table_t:
    int32_t
    int64_t

ctypedef fused code_t:
    int32_t
    int64_t


cdef void _id_range(const id_t *ids, Py_ssize_t n, Py_ssize_t step, int64_t *low,
                    int64_t *high) noexcept nogil:
    # Separate running min and max (no else): the contiguous loop vectorizes.
    cdef Py_ssize_t t
    cdef id_t lo = ids[0], hi = ids[0], value
    if step == 1:
        for t in range(1, n):
            value = ids[t]
            lo = value if value < lo else lo
            hi = value if value > hi else hi
    else:
        for t in range(1, n):
            value = ids[t * step]
            lo = value if value < lo else lo
            hi = value if value > hi else hi
    low[0] = lo
    high[0] = hi


cdef int64_t _fill_table(const id_t *ids, Py_ssize_t n, Py_ssize_t step, int64_t low,
                         table_t *table, Py_ssize_t span) noexcept nogil:
    """Mark the ids present, then number them in increasing order (-1: absent);
    returns how many there are."""
    cdef Py_ssize_t t
    cdef int64_t n_distinct = 0
    if step == 1:
        for t in range(n):
            table[ids[t] - low] = 1
    else:
        for t in range(n):
            table[ids[t * step] - low] = 1
    for t in range(span):  # running count: the index of each present id
        if table[t]:
            table[t] = <table_t>n_distinct
            n_distinct += 1
        else:
            table[t] = -1
    return n_distinct


cdef void _look_up(const id_t *ids, Py_ssize_t n, Py_ssize_t step, int64_t low,
                   const table_t *table, code_t *out) noexcept nogil:
    cdef Py_ssize_t t
    if step == 1:
        for t in range(n):
            out[t] = <code_t>table[ids[t] - low]
    else:
        for t in range(n):
            out[t] = <code_t>table[ids[t * step] - low]


def encode_dense_ids(const id_t[:] ids, Py_ssize_t max_span):
    """Sorted distinct ids and each id's index among them, by a lookup table.

    For integer ids that fill their range densely (MovieLens: 1..6040): a
    pass for their range, one to mark the ids present in a table the size of
    the range, a running count over the table (which numbers the distinct
    ids in increasing order: the order of ``np.unique``) and one pass of
    lookups, O(n + span) where sorting would be O(n log n). ``ids`` may be a
    strided view (one column of an (n, 2) array), which is read in place.
    The passes run without the GIL.

    Returns
    -------
    (uniques, index) or None
        ``uniques`` int64, ``index`` int32 (int64 past 2**31 - 1 distinct
        ids); None when ``ids`` is empty or its range exceeds ``max_span``.
    """
    cdef Py_ssize_t n = ids.shape[0]
    cdef Py_ssize_t step
    cdef int64_t low = 0, high = 0, n_distinct = 0, span
    cdef const id_t *first
    if n == 0:
        return None
    first = &ids[0]
    step = ids.strides[0] // <Py_ssize_t>sizeof(id_t)
    if ids.strides[0] != step * <Py_ssize_t>sizeof(id_t) or step <= 0:
        # Not a whole number of elements apart, or backwards: read a copy.
        return encode_dense_ids(np.ascontiguousarray(ids), max_span)
    with nogil:
        _id_range(first, n, step, &low, &high)
    # high - low of int64 ids can overflow int64: compare in Python ints.
    if int(high) - int(low) >= max_span:
        return None
    span = high - low + 1
    # An int32 table when its numbers fit: half the memory the marking and
    # lookup passes hit at random.
    table_arr = np.zeros(span, dtype=np.int32 if span <= 2147483647 else np.int64)
    cdef int32_t[::1] table32
    cdef int64_t[::1] table64
    if table_arr.dtype == np.int32:
        table32 = table_arr
        with nogil:
            n_distinct = _fill_table(first, n, step, low, &table32[0], span)
    else:
        table64 = table_arr
        with nogil:
            n_distinct = _fill_table(first, n, step, low, &table64[0], span)
    uniques = np.flatnonzero(table_arr >= 0).astype(np.int64) + low
    index_arr = np.empty(n, dtype=np.int32 if n_distinct <= 2147483647 else np.int64)
    cdef int32_t[::1] index32
    cdef int64_t[::1] index64
    if index_arr.dtype == np.int32:
        index32 = index_arr
        if table_arr.dtype == np.int32:
            with nogil:
                _look_up(first, n, step, low, &table32[0], &index32[0])
        else:
            with nogil:
                _look_up(first, n, step, low, &table64[0], &index32[0])
    else:
        index64 = index_arr
        with nogil:
            _look_up(first, n, step, low, &table64[0], &index64[0])
    return uniques, index_arr


cdef extern from "string.h" nogil:
    void *memchr(const void *s, int c, size_t n)
    void *memcpy(void *dest, const void *src, size_t n)


cdef inline unsigned char _is(unsigned char x, unsigned char k) noexcept nogil:
    # 1 if x == k else 0, by arithmetic: written as comparisons, an or of
    # them becomes a 64-bit bit test that stops the loop below from
    # vectorizing (gcc 12), 1.6 ns a byte instead of ~0.1.
    cdef unsigned char y = x ^ k
    return <unsigned char>((<unsigned char>(y | <unsigned char>(0 - y)) >> 7) ^ 1)


cdef unsigned char _maybe_odd(const unsigned char *p, Py_ssize_t lo,
                              Py_ssize_t hi) noexcept nogil:
    # A superset of _odd_fields' hits, in fewer operations a byte (the loop
    # vectorizes): any byte that is not a digit counts as a field start.
    cdef Py_ssize_t t
    cdef unsigned char acc = 0, b, c, d, odd
    for t in range(lo, hi):
        b = p[t - 1]
        c = p[t]
        d = p[t + 1]
        odd = (_is(c, 43) | _is(c, 45)
               | (_is(c, 48) & <unsigned char>(<unsigned char>(d - 48) < 10)))
        acc |= odd & <unsigned char>(<unsigned char>(b - 48) > 9)
    return acc


# Bytes after which a field begins: separators, spaces, quotes, line ends, the
# last byte of a byte-order mark.
cdef bint _FIELD_START[256]
_FIELD_START[:] = [False] * 256
for _byte in bytearray(b",\t;|: \"'\r\n\xbf"):
    _FIELD_START[_byte] = True


cdef bint _odd_fields(const unsigned char *p, Py_ssize_t lo, Py_ssize_t hi,
                     const bint *starts) noexcept nogil:
    # Exactly: a field start followed by "0<digit>", "+" or "-0" (not "-0.").
    cdef Py_ssize_t t
    cdef unsigned char c, d
    for t in range(lo, hi):
        c = p[t]
        if (c == 48 or c == 43 or c == 45) and starts[p[t - 1]]:
            d = p[t + 1]
            if c == 43 or (c == 48 and 48 <= d <= 57) or (
                    c == 45 and d == 48 and p[t + 2] != 46):
                return True
    return False


cdef Py_ssize_t _count_newlines(const unsigned char *p, Py_ssize_t lo,
                                Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t t, total = 0
    cdef unsigned char count
    cdef Py_ssize_t stop
    while lo < hi:  # blocks of 255: a byte counter that cannot wrap (vectorizes)
        stop = lo + 255 if hi - lo > 255 else hi
        count = 0
        for t in range(lo, stop):
            count += (p[t] == 10)
        total += count
        lo = stop
    return total


def scan_text(const unsigned char[::1] buf, Py_ssize_t begin, Py_ssize_t end,
              Py_ssize_t run, Py_ssize_t max_line, bint zeros, bint last,
              bytes extra_starts=b""):
    """One pass over a piece of a text file for :mod:`mfcy._ratings_file`'s two checks.

    ``buf[begin:end]`` is the piece; the three bytes before ``begin`` are the
    previous piece's last three (newlines before the first piece) and ``buf``
    has two readable bytes after ``end`` (the next piece's first, or newlines
    at the end of the file), so that a field is seen whole across pieces.

    * Hidden zeros (``zeros``): whether a field begins like ``007``, ``+7``
      or ``-0`` (not ``-0.``): a byte ``0``, ``+`` or ``-`` right after a
      separator, space, quote, line end or the last byte of a byte-order
      mark (or a byte of ``extra_starts``: the file's own separator),
      judged with the two bytes that follow it. Each byte is judged
      once, with its real lookahead: the piece's last two bytes with the
      next piece (as its ``begin - 2`` and ``begin - 1``), or here when
      ``last`` (the end of the file: the two bytes after ``end`` are then
      newlines). An empty last piece judges the previous piece's last two.
    * Line lengths (``max_line >= 0``): ``run`` bytes of the current line
      were seen before this piece; a line longer than ``max_line`` bytes
      (``\\n`` excluded) ends the scan.

    Returns
    -------
    (hidden, newlines, run)
        ``hidden``: a hidden zero was seen. ``newlines``: the line ends passed
        (before the long line, if one was found). ``run``: the bytes of the
        current line so far, above ``max_line`` when a line was too long.
    """
    cdef Py_ssize_t t, newlines = 0, stop, line_start
    cdef bint hidden = False
    cdef Py_ssize_t first = begin - 2
    cdef const unsigned char *p
    cdef const unsigned char *hit
    cdef Py_ssize_t judged = end if last else end - 2
    cdef bint starts[256]
    # Bytes as unsigned: a separator byte above 127 indexes the table, not before it.
    cdef const unsigned char *extra = <const unsigned char *><const char *>extra_starts
    cdef Py_ssize_t e
    if begin < 3 or end < begin or end + 2 > buf.shape[0]:
        raise ValueError("scan_text needs three bytes before the piece and two after it")
    memcpy(starts, _FIELD_START, sizeof(starts))
    for e in range(len(extra_starts)):
        starts[extra[e]] = True
    p = &buf[0]
    with nogil:
        if zeros:
            t = first
            while t < judged and not hidden:
                # 256 bytes at a time: the cheap superset, then exactly if it hits.
                stop = t + 256 if judged - t > 256 else judged
                if _maybe_odd(p, t, stop):
                    hidden = _odd_fields(p, t, stop, starts)
                t = stop
        if max_line >= 0 and end > begin:
            hit = <const unsigned char *>memchr(p + begin, 10, end - begin)
            if hit == NULL:
                run += end - begin
            elif run + (hit - (p + begin)) > max_line:
                run += hit - (p + begin)
            elif end - begin > max_line + 1:
                # Longer pieces than a line may be: every line measured.
                for t in range(begin, end):
                    if p[t] == 10:
                        newlines += 1
                        run = 0
                    else:
                        run += 1
                        if run > max_line:
                            break
            else:
                # Lines that start and end inside the piece are shorter than
                # it, so only the first (run on from before) and the last
                # (left open) can be long: count the line ends, find the last.
                newlines = _count_newlines(p, begin, end)
                line_start = end - 1
                while p[line_start] != 10:
                    line_start -= 1
                run = end - 1 - line_start
    return hidden, newlines, run
