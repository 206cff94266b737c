# cython: language_level=3
"""The compiled SGD kernel of mfcy.

Everything here trusts its inputs: shapes, dtypes, contiguity and index ranges
are checked once, vectorized, by :mod:`mfcy.data` and :mod:`mfcy.model` before
a call reaches this module. A debug build (``MFCY_DEBUG=1``) turns Cython's
bounds checks back on (negative indices are errors too: wraparound stays off),
so an index that slipped past that validation raises ``IndexError`` instead of
writing outside an array.

Layout of the training triples
------------------------------
``users``, ``items`` and ``ratings`` hold one observation per position. They are
cut into *chunks* (``chunk_bounds[c]:chunk_bounds[c + 1]``), chunks are grouped
into ``n_blocks × n_blocks`` *blocks* of a user-block × item-block grid, and one
epoch visits the blocks stratum by stratum: stratum ``s`` is the blocks
``(a, (a + strata[s]) % n_blocks)`` for every row block ``a``. Those blocks share
no user and no item, so they run in parallel (``prange``) and the result does
not depend on how many threads ran them or in which order they finished. Inside
block ``b`` the chunks are visited in the order ``visit_order[block_chunks[b]:
block_chunks[b + 1]]``, each chunk front to back. Re-drawing the strata and the
chunk order each epoch shuffles the visit without gathering per rating.

The serial lesson path is the special case of one block, one stratum and the
chunks in storage order.
"""

from libc.math cimport fabs
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc
from cython.parallel cimport prange

ctypedef fused real_t:
    float
    double

ctypedef fused index_t:
    int32_t
    int64_t

cdef extern from "_sgd_simd.h" nogil:
    float mfcy_dot_f(const float *p, const float *q, Py_ssize_t k)
    double mfcy_dot_d(const double *p, const double *q, Py_ssize_t k)
    void mfcy_step_simultaneous_f(float *p, float *q, float err, float lr, float reg, Py_ssize_t k)
    void mfcy_step_simultaneous_d(double *p, double *q, double err, double lr, double reg, Py_ssize_t k)
    void mfcy_step_sequential_f(float *p, float *q, float err, float lr, float reg, Py_ssize_t k)
    void mfcy_step_sequential_d(double *p, double *q, double err, double lr, double reg, Py_ssize_t k)
    void mfcy_prefetch(const void *addr)
    int MFCY_HAVE_OPENMP
    int MFCY_DEBUG_BUILD
    const char *MFCY_SANITIZE

# Rows of P and Q are fetched this many ratings ahead: the SGD loop waits on
# memory (random rows), not on arithmetic.
cdef enum:
    PREFETCH_DISTANCE = 8

# Chunk length of the read-only error pass; the per-chunk partial sums are added
# in chunk order, so the total is the same for any number of threads.
cdef enum:
    ERROR_CHUNK = 8192


def openmp_enabled():
    """Whether this build of the kernel was compiled with OpenMP threads."""
    return bool(MFCY_HAVE_OPENMP)


def debug_build():
    """Whether this build checks every index (``MFCY_DEBUG=1`` at build time).

    A debug build raises ``IndexError`` for an index outside an array, negative
    ones included, where a release build would read or write out of bounds.
    """
    return bool(MFCY_DEBUG_BUILD)


def sanitizers():
    """The ``-fsanitize=`` list this build was compiled with (``""`` for none)."""
    return MFCY_SANITIZE.decode("ascii")


cdef inline real_t _dot(const real_t *p, const real_t *q, Py_ssize_t k) noexcept nogil:
    if real_t is float:
        return mfcy_dot_f(p, q, k)
    else:
        return mfcy_dot_d(p, q, k)


cdef inline void _step(real_t *p, real_t *q, real_t err, real_t lr, real_t reg,
                       Py_ssize_t k, bint sequential) noexcept nogil:
    if real_t is float:
        if sequential:
            mfcy_step_sequential_f(p, q, err, lr, reg, k)
        else:
            mfcy_step_simultaneous_f(p, q, err, lr, reg, k)
    else:
        if sequential:
            mfcy_step_sequential_d(p, q, err, lr, reg, k)
        else:
            mfcy_step_simultaneous_d(p, q, err, lr, reg, k)


cdef double _sgd_range(real_t[:, ::1] P, real_t[:, ::1] Q,
                       real_t[::1] user_bias, real_t[::1] item_bias,
                       const index_t[::1] users, const index_t[::1] items,
                       const real_t[::1] ratings, Py_ssize_t start, Py_ssize_t stop,
                       Py_ssize_t stride, real_t mu, real_t lr, real_t reg, real_t reg_bias,
                       bint biased, bint sequential) except? -1.0 nogil:
    """SGD over the positions [start, stop), visited as start + (j * stride) % n.

    With ``stride`` coprime to ``n = stop - start`` that is a permutation of the
    chunk: consecutive updates hit different users (no dependency chain on one
    row) while every access stays inside the chunk, which sits in L1. Returns
    the summed squared error of the ratings as they were met.
    """
    cdef Py_ssize_t k = P.shape[1]
    cdef Py_ssize_t n = stop - start
    cdef Py_ssize_t step, j, t, ahead
    cdef index_t u, i
    cdef real_t err
    cdef real_t *p
    cdef real_t *q
    cdef double sse = 0.0
    if n <= 0:
        return 0.0
    step = stride % n
    # Running offsets (never a division per rating): t for now, ahead for the
    # rating PREFETCH_DISTANCE visits later.
    t = 0
    ahead = (PREFETCH_DISTANCE * step) % n
    for j in range(n):
        if j + PREFETCH_DISTANCE < n:
            mfcy_prefetch(&P[users[start + ahead], 0])
            mfcy_prefetch(&Q[items[start + ahead], 0])
        u = users[start + t]
        i = items[start + t]
        p = &P[u, 0]
        q = &Q[i, 0]
        if biased:
            err = ratings[start + t] - (mu + user_bias[u] + item_bias[i] + _dot(p, q, k))
            user_bias[u] += lr * (err - reg_bias * user_bias[u])
            item_bias[i] += lr * (err - reg_bias * item_bias[i])
        else:
            err = ratings[start + t] - _dot(p, q, k)
        _step(p, q, err, lr, reg, k, sequential)
        sse += <double>err * <double>err
        t += step
        if t >= n:
            t -= n
        ahead += step
        if ahead >= n:
            ahead -= n
    return sse


cdef double _sgd_block(real_t[:, ::1] P, real_t[:, ::1] Q,
                       real_t[::1] user_bias, real_t[::1] item_bias,
                       const index_t[::1] users, const index_t[::1] items,
                       const real_t[::1] ratings, const int64_t[::1] chunk_bounds,
                       const int64_t[::1] block_chunks, const int64_t[::1] visit_order,
                       Py_ssize_t block, Py_ssize_t stride, real_t mu, real_t lr, real_t reg,
                       real_t reg_bias, bint biased, bint sequential) except? -1.0 nogil:
    cdef Py_ssize_t j, c
    cdef double sse = 0.0
    for j in range(block_chunks[block], block_chunks[block + 1]):
        c = visit_order[j]
        sse += _sgd_range(P, Q, user_bias, item_bias, users, items, ratings,
                          chunk_bounds[c], chunk_bounds[c + 1], stride,
                          mu, lr, reg, reg_bias, biased, sequential)
    return sse


def sgd_epoch(real_t[:, ::1] P, real_t[:, ::1] Q,
              real_t[::1] user_bias, real_t[::1] item_bias,
              const index_t[::1] users, const index_t[::1] items,
              const real_t[::1] ratings, const int64_t[::1] chunk_bounds,
              const int64_t[::1] block_chunks, const int64_t[::1] visit_order,
              const int64_t[::1] strata, Py_ssize_t stride, double global_mean,
              double learning_rate,
              double regularization, double bias_regularization,
              bint biased, bint sequential, int n_threads):
    """Run one SGD epoch in place; return the summed squared error (double).

    Parameters
    ----------
    P, Q : (n_users, k), (n_items, k) C-contiguous float32 or float64
        User and item factors, updated in place.
    user_bias, item_bias : 1-D, same dtype
        Biases, updated in place when ``biased`` (may be length 0 otherwise).
    users, items : 1-D int32 or int64
        Row and column index of each stored rating.
    ratings : 1-D, same dtype as ``P``
    chunk_bounds : int64, (n_chunks + 1,)
        Chunk ``c`` covers positions ``chunk_bounds[c]:chunk_bounds[c + 1]``.
    block_chunks : int64, (n_blocks**2 + 1,)
        Block ``b = row_block * n_blocks + col_block`` owns the entries
        ``block_chunks[b]:block_chunks[b + 1]`` of ``visit_order``.
    visit_order : int64, (n_chunks,)
        Chunk ids, grouped by block, in visiting order.
    strata : int64, (n_blocks,)
        Stratum ``s`` runs the blocks ``(a, (a + strata[s]) % n_blocks)``.
    stride : int
        Inside a chunk of ``n`` positions, visit ``(j * stride) % n`` for
        ``j = 0 .. n - 1``: 1 is storage order; a prime larger than every
        chunk is a permutation of any chunk.
    global_mean, learning_rate, regularization, bias_regularization : float
    biased : bool
        Use the global mean and biases in the prediction and update the biases.
    sequential : bool
        The lesson's rule (``q`` moves with the new ``p``) instead of the
        simultaneous one.
    n_threads : int
        Threads running the blocks of one stratum; does not change the result.

    Returns
    -------
    float
        Sum over the visited ratings of the squared error met before each update.
    """
    cdef Py_ssize_t n_blocks = strata.shape[0]
    cdef Py_ssize_t s, a, block
    cdef double total = 0.0
    cdef real_t mu = <real_t>(global_mean if biased else 0.0)
    cdef real_t lr = <real_t>learning_rate
    cdef real_t reg = <real_t>regularization
    cdef real_t reg_bias = <real_t>bias_regularization
    cdef double *block_sse = <double *>malloc(max(n_blocks, 1) * sizeof(double))
    if block_sse == NULL:
        raise MemoryError()
    try:
        with nogil:
            for s in range(n_blocks):
                if n_blocks == 1 or n_threads == 1:
                    for a in range(n_blocks):
                        block = a * n_blocks + (a + strata[s]) % n_blocks
                        block_sse[a] = _sgd_block(P, Q, user_bias, item_bias, users, items,
                                                  ratings, chunk_bounds, block_chunks,
                                                  visit_order, block, stride, mu, lr, reg, reg_bias,
                                                  biased, sequential)
                else:
                    # Blocks differ in size: hand them out one at a time.
                    for a in prange(n_blocks, schedule="dynamic", chunksize=1,
                                    num_threads=n_threads):
                        block = a * n_blocks + (a + strata[s]) % n_blocks
                        block_sse[a] = _sgd_block(P, Q, user_bias, item_bias, users, items,
                                                  ratings, chunk_bounds, block_chunks,
                                                  visit_order, block, stride, mu, lr, reg, reg_bias,
                                                  biased, sequential)
                # Fixed summation order: the same total for any thread count.
                for a in range(n_blocks):
                    total += block_sse[a]
    finally:
        free(block_sse)
    return total


cdef int _error_range(const real_t[:, ::1] P, const real_t[:, ::1] Q,
                       const real_t[::1] user_bias, const real_t[::1] item_bias,
                       const index_t[::1] users, const index_t[::1] items,
                       const real_t[::1] ratings, Py_ssize_t start, Py_ssize_t stop,
                       real_t mu, bint biased, double *out) except -1 nogil:
    cdef Py_ssize_t k = P.shape[1]
    cdef Py_ssize_t t
    cdef index_t u, i
    cdef real_t err
    cdef double sse = 0.0, sae = 0.0
    for t in range(start, stop):
        if t + PREFETCH_DISTANCE < stop:
            # Items come in random order (users in sorted order: no need).
            mfcy_prefetch(&Q[items[t + PREFETCH_DISTANCE], 0])
        u = users[t]
        i = items[t]
        if biased:
            err = ratings[t] - (mu + user_bias[u] + item_bias[i] + _dot(&P[u, 0], &Q[i, 0], k))
        else:
            err = ratings[t] - _dot(&P[u, 0], &Q[i, 0], k)
        sse += <double>err * <double>err
        sae += fabs(<double>err)
    out[0] = sse
    out[1] = sae
    return 0


def error_sums(const real_t[:, ::1] P, const real_t[:, ::1] Q,
               const real_t[::1] user_bias, const real_t[::1] item_bias,
               const index_t[::1] users, const index_t[::1] items,
               const real_t[::1] ratings, double global_mean, bint biased, int n_threads):
    """Summed squared and absolute errors of the given triples (read-only pass).

    Returns
    -------
    (float, float)
        ``sum((r - r_hat) ** 2)`` and ``sum(abs(r - r_hat))`` in double precision.
    """
    cdef Py_ssize_t n = ratings.shape[0]
    cdef Py_ssize_t n_chunks = (n + ERROR_CHUNK - 1) // ERROR_CHUNK
    cdef Py_ssize_t c, start, stop
    cdef real_t mu = <real_t>(global_mean if biased else 0.0)
    cdef double sse = 0.0, sae = 0.0
    cdef double *sums = <double *>malloc(2 * max(n_chunks, 1) * sizeof(double))
    if sums == NULL:
        raise MemoryError()
    try:
        with nogil:
            for c in prange(n_chunks, schedule="static", num_threads=max(n_threads, 1)):
                start = c * ERROR_CHUNK
                stop = min(start + ERROR_CHUNK, n)
                _error_range(P, Q, user_bias, item_bias, users, items, ratings,
                             start, stop, mu, biased, &sums[2 * c])
            for c in range(n_chunks):
                sse += sums[2 * c]
                sae += sums[2 * c + 1]
    finally:
        free(sums)
    return sse, sae


def predict_pairs(const real_t[:, ::1] P, const real_t[:, ::1] Q,
                  const real_t[::1] user_bias, const real_t[::1] item_bias,
                  const index_t[::1] users, const index_t[::1] items,
                  double global_mean, bint biased, real_t[::1] out):
    """Fill ``out`` with predictions for (user, item) index pairs.

    An index of ``-1`` marks an id unseen in training: it contributes neither
    factors nor a bias, so the prediction falls back to the global mean plus
    the other side's bias (or to 0 + bias for an unbiased model's factors).
    """
    cdef Py_ssize_t n = users.shape[0]
    cdef Py_ssize_t k = P.shape[1]
    cdef Py_ssize_t t
    cdef index_t u, i
    cdef double value
    with nogil:
        for t in range(n):
            u = users[t]
            i = items[t]
            value = global_mean
            if biased:
                if u >= 0:
                    value += user_bias[u]
                if i >= 0:
                    value += item_bias[i]
            if u >= 0 and i >= 0:
                if not biased:
                    value = 0.0
                value += _dot(&P[u, 0], &Q[i, 0], k)
            out[t] = <real_t>value
