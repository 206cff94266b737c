# cython: language_level=3
"""The compiled SGD kernel of mfcy.

Everything here trusts its inputs: shapes, dtypes, contiguity and index ranges
are checked once, vectorized, by :mod:`mfcy._input` and :mod:`mfcy.model` before
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
block_chunks[b + 1]]``, each chunk of ``n`` positions walked as ``(j * stride) % n``.
Re-drawing the strata, the chunk order and the stride each epoch shuffles the
visit without gathering per rating.

The serial lesson path is the special case of one block, one stratum, the
chunks in storage order and a stride of 1.

This module dispatches; the loops over a chunk are C: ``_sgd_kernel.h``
instantiates the templates ``_sgd_real.h`` and ``_sgd_range.h`` per (ISA, real
type, index type), k-specialised, compiled for the baseline (SSE2, NEON, or
plain C with ``MFCY_PORTABLE=1``) and, on x86-64, for AVX2+FMA and for
AVX-512F (the latter used for k >= ``mfcy_avx512_min_k`` only). The
hyperparameters reach them as one ``mfcy_sgd_params`` struct.
"""

from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc
from cython.parallel cimport prange

ctypedef fused real_t:
    float
    double

ctypedef fused index_t:
    int32_t
    int64_t

cdef extern from "_sgd_kernel.h" nogil:
    ctypedef struct mfcy_sgd_params:
        double global_mean
        double learning_rate
        double regularization
        double bias_regularization
        int biased
        int sequential
        int prefetch
        int adagrad
    # One entry point per (real, index) type pair; each runs the copy of the
    # loops mfcy_select_isa() chose.
    double mfcy_sgd_range_fi32(float *P, float *Q, float *user_bias, float *item_bias,
                               float *user_g, float *item_g,
                               const int32_t *users, const int32_t *items,
                               const float *ratings, Py_ssize_t k, Py_ssize_t start,
                               Py_ssize_t n, Py_ssize_t step, const mfcy_sgd_params *hp)
    double mfcy_sgd_range_fi64(float *P, float *Q, float *user_bias, float *item_bias,
                               float *user_g, float *item_g,
                               const int64_t *users, const int64_t *items,
                               const float *ratings, Py_ssize_t k, Py_ssize_t start,
                               Py_ssize_t n, Py_ssize_t step, const mfcy_sgd_params *hp)
    double mfcy_sgd_range_di32(double *P, double *Q, double *user_bias, double *item_bias,
                               double *user_g, double *item_g,
                               const int32_t *users, const int32_t *items,
                               const double *ratings, Py_ssize_t k, Py_ssize_t start,
                               Py_ssize_t n, Py_ssize_t step, const mfcy_sgd_params *hp)
    double mfcy_sgd_range_di64(double *P, double *Q, double *user_bias, double *item_bias,
                               double *user_g, double *item_g,
                               const int64_t *users, const int64_t *items,
                               const double *ratings, Py_ssize_t k, Py_ssize_t start,
                               Py_ssize_t n, Py_ssize_t step, const mfcy_sgd_params *hp)
    void mfcy_error_range_fi32(const float *P, const float *Q, const float *user_bias,
                               const float *item_bias, const int32_t *users,
                               const int32_t *items, const float *ratings, Py_ssize_t k,
                               Py_ssize_t start, Py_ssize_t stop, const mfcy_sgd_params *hp,
                               double *out)
    void mfcy_error_range_fi64(const float *P, const float *Q, const float *user_bias,
                               const float *item_bias, const int64_t *users,
                               const int64_t *items, const float *ratings, Py_ssize_t k,
                               Py_ssize_t start, Py_ssize_t stop, const mfcy_sgd_params *hp,
                               double *out)
    void mfcy_error_range_di32(const double *P, const double *Q, const double *user_bias,
                               const double *item_bias, const int32_t *users,
                               const int32_t *items, const double *ratings, Py_ssize_t k,
                               Py_ssize_t start, Py_ssize_t stop, const mfcy_sgd_params *hp,
                               double *out)
    void mfcy_error_range_di64(const double *P, const double *Q, const double *user_bias,
                               const double *item_bias, const int64_t *users,
                               const int64_t *items, const double *ratings, Py_ssize_t k,
                               Py_ssize_t start, Py_ssize_t stop, const mfcy_sgd_params *hp,
                               double *out)
    void mfcy_predict_range_fi32(const float *P, const float *Q, const float *user_bias,
                                 const float *item_bias, const int32_t *users,
                                 const int32_t *items, Py_ssize_t k, Py_ssize_t n,
                                 double global_mean, int biased, float *out)
    void mfcy_predict_range_fi64(const float *P, const float *Q, const float *user_bias,
                                 const float *item_bias, const int64_t *users,
                                 const int64_t *items, Py_ssize_t k, Py_ssize_t n,
                                 double global_mean, int biased, float *out)
    void mfcy_predict_range_di32(const double *P, const double *Q, const double *user_bias,
                                 const double *item_bias, const int32_t *users,
                                 const int32_t *items, Py_ssize_t k, Py_ssize_t n,
                                 double global_mean, int biased, double *out)
    void mfcy_predict_range_di64(const double *P, const double *Q, const double *user_bias,
                                 const double *item_bias, const int64_t *users,
                                 const int64_t *items, Py_ssize_t k, Py_ssize_t n,
                                 double global_mean, int biased, double *out)
    const char *mfcy_base_path()
    const char *mfcy_compiler()
    int MFCY_PORTABLE
    int mfcy_select_isa(int want)
    int mfcy_cpu_has_avx2()
    int mfcy_cpu_has_avx512()
    int mfcy_isa_in_use()
    long mfcy_set_avx512_min_k(long min_k)
    int mfcy_set_pairs_mode(int mode)
    int MFCY_HAVE_OPENMP
    int MFCY_DEBUG_BUILD
    const char *MFCY_SANITIZE

# Chunk length of the read-only error pass; the per-chunk partial sums are added
# in chunk order, so the total is the same for any number of threads.
cdef enum:
    ERROR_CHUNK = 8192

# Factor matrices (P and Q together) larger than this are prefetched row by row
# in the SGD loop. Below it they sit in L2 anyway and the prefetch instructions
# only cost time (ML-1M, k = 8: 8 % slower with them); above it the loop waits
# on memory and prefetching gains 5-20 %.
cdef enum:
    PREFETCH_MIN_BYTES = 2 * 1024 * 1024


# mfcy_select_isa's levels, by the names MFCY_ISA and _set_vector_isa take (the
# names vector_isa() and mfcy.build_info() report too), and those names.
_ISA_LEVELS = {"baseline": 0, "avx2": 1, "avx512": 2, "auto": 2, "avx2+fma": 1, "avx512f": 2}
_ISA_NAMES = ("baseline", "avx2+fma", "avx512f")


def _set_vector_isa(name, avx512_min_k=None):
    """Choose the SGD loops' instruction set; return the one now in use.

    ``"auto"``: the best copy the CPU has (AVX-512F, else AVX2+FMA, else the
    baseline), ``"baseline"``: the portable SSE2 loops, ``"avx2"``: AVX2+FMA
    or ``ValueError``, ``"avx512"``: AVX-512F or ``ValueError``. For tests
    and benchmarks; users set the environment variable ``MFCY_ISA`` before
    the import. ``avx512_min_k``: the smallest k the AVX-512F copy runs for
    (below it the AVX2+FMA copy does); ``None`` keeps it. Not thread-safe:
    do not call it while a fit runs.
    """
    want = str(name).strip().lower()
    if want not in _ISA_LEVELS:
        raise ValueError(f"the instruction set must be auto, baseline, avx2 (or avx2+fma) or "
                         f"avx512 (or avx512f), not {name!r}")
    want = {"avx2+fma": "avx2", "avx512f": "avx512"}.get(want, want)
    if want == "avx2" and not mfcy_cpu_has_avx2():
        raise ValueError("AVX2+FMA was asked for, but this CPU (or build) does not have it")
    if want == "avx512" and not mfcy_cpu_has_avx512():
        raise ValueError("AVX-512F was asked for, but this CPU (or build) does not have it")
    if avx512_min_k is not None:
        if int(avx512_min_k) < 0:
            raise ValueError(f"avx512_min_k must be >= 0, not {avx512_min_k!r}")
        mfcy_set_avx512_min_k(int(avx512_min_k))
    mfcy_select_isa(_ISA_LEVELS[want])
    return vector_isa()


_PAIR_MODES = {"auto": -1, "off": 0, "on": 1}


def _set_pair_updates(mode):
    """Whether the constant schedule's loops do two ratings at a time; return the old mode.

    ``"auto"`` (the default): where each copy of the loops measured faster
    (``MFCY_PAIRS_PAY`` in ``_sgd_kernel.h``); ``"on"`` / ``"off"``: at every
    compile-time k (8, 16, 32, 64, 100) / never. The factors are the same bit
    for bit either way; only the speed differs. For benchmarks; not
    thread-safe: do not call it while a fit runs.
    """
    if mode not in _PAIR_MODES:
        raise ValueError(f"the pair-updates mode must be 'auto', 'on' or 'off', not {mode!r}")
    before = mfcy_set_pairs_mode(-2)
    mfcy_set_pairs_mode(_PAIR_MODES[mode])
    return {v: k for k, v in _PAIR_MODES.items()}[before]


def avx512_min_k():
    """The smallest number of factors the AVX-512F copy runs for when it is in use."""
    return int(mfcy_set_avx512_min_k(-1))


def vector_isa(n_factors=None):
    """The copy of the SGD loops in use: ``"avx512f"``, ``"avx2+fma"`` or ``"baseline"``.

    The loops are compiled three times on x86-64, for the baseline (SSE2),
    for AVX2 with FMA and for AVX-512F, and the import picks the best copy
    the CPU has: nothing is compiled for the build machine alone. The
    AVX-512F copy runs for ``n_factors >= avx512_min_k()`` only; with fewer
    factors the AVX2+FMA copy runs (it measured faster there). Without
    ``n_factors`` the name is that of the copy selected; with it, of the
    copy a fit of that many factors runs. The environment variable
    ``MFCY_ISA`` (``baseline``, ``avx2``, ``avx512`` or ``auto``; set before
    importing mfcy) forces a copy; ``baseline`` gives factors bit-for-bit the
    same on every x86-64 machine. Between copies factors agree to rounding
    (FMA rounds once where the baseline rounds twice, and wider vectors sum
    in another order). On any copy the result does not depend on
    ``n_threads``.
    """
    level = mfcy_isa_in_use()
    if level == 2 and n_factors is not None and int(n_factors) < avx512_min_k():
        level = 1
    return _ISA_NAMES[level]


def _isa_from_environment():
    import os
    value = os.environ.get("MFCY_ISA", "").strip() or "auto"
    try:
        _set_vector_isa(value)
    except ValueError as e:
        raise ImportError(f"MFCY_ISA={value!r}: {e}") from None


_isa_from_environment()


def kernel_path():
    """The build's baseline copy of the loops: ``"sse2"`` (x86-64), ``"neon"``
    (aarch64), ``"vector16"`` (another CPU, 16-byte GNU C vectors) or
    ``"portable"`` (plain C: a compiler without GNU C vector extensions, such as
    MSVC, or ``MFCY_PORTABLE=1`` at build time)."""
    return mfcy_base_path().decode("ascii")


def compiler():
    """The C compiler (and its version) that built the kernel."""
    return mfcy_compiler().decode("ascii", "replace").strip()


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


cdef inline double _nothing(double x) noexcept nogil:
    return x


cdef int _check_indices(const real_t[:, ::1] P, const real_t[:, ::1] Q,
                        const real_t[::1] user_bias, const real_t[::1] item_bias,
                        const index_t[::1] users, const index_t[::1] items,
                        const real_t[::1] ratings, Py_ssize_t start, Py_ssize_t stop,
                        bint biased) except -1 nogil:
    """Debug builds only: touch every index of [start, stop) through a checked access.

    The C loops index raw pointers; in a build with ``MFCY_DEBUG=1`` this pass
    (bounds-checked by Cython) turns an index outside an array into an
    ``IndexError`` before they run.
    """
    cdef Py_ssize_t t
    cdef double touched = 0.0
    for t in range(start, stop):
        touched += ratings[t]
        if P.shape[1]:  # no factor columns (a biases-only model): no row is read
            touched += P[users[t], 0] + Q[items[t], 0]
        if biased:
            touched += user_bias[users[t]] + item_bias[items[t]]
    _nothing(touched)
    return 0


cdef double _sgd_range(real_t *P, real_t *Q, real_t *user_bias, real_t *item_bias,
                       real_t *user_g, real_t *item_g, const index_t *users, const index_t *items, const real_t *ratings,
                       Py_ssize_t k, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t stride,
                       const mfcy_sgd_params *hp) noexcept nogil:
    """SGD over the positions [start, stop) (the C loop of _sgd_range.h)."""
    if real_t is float:
        if index_t is int32_t:
            return mfcy_sgd_range_fi32(P, Q, user_bias, item_bias, user_g, item_g, users, items,
                                       ratings, k, start, stop - start, stride, hp)
        else:
            return mfcy_sgd_range_fi64(P, Q, user_bias, item_bias, user_g, item_g, users, items,
                                       ratings, k, start, stop - start, stride, hp)
    else:
        if index_t is int32_t:
            return mfcy_sgd_range_di32(P, Q, user_bias, item_bias, user_g, item_g, users, items,
                                       ratings, k, start, stop - start, stride, hp)
        else:
            return mfcy_sgd_range_di64(P, Q, user_bias, item_bias, user_g, item_g, users, items,
                                       ratings, k, start, stop - start, stride, hp)


cdef double _sgd_block(real_t[:, ::1] P, real_t[:, ::1] Q,
                       real_t[::1] user_bias, real_t[::1] item_bias,
                       real_t[::1] user_g, real_t[::1] item_g,
                       const index_t[::1] users, const index_t[::1] items,
                       const real_t[::1] ratings, const int64_t[::1] chunk_bounds,
                       const int64_t[::1] block_chunks, const int64_t[::1] visit_order,
                       Py_ssize_t block, Py_ssize_t stride,
                       const mfcy_sgd_params *hp) except? -1.0 nogil:
    cdef Py_ssize_t j, c, start, stop
    cdef Py_ssize_t k = P.shape[1]
    cdef double sse = 0.0
    # Raw pointers for the C loop (an array may be empty: biases of an
    # unbiased model; the loop then never reads it).
    cdef real_t *p0 = &P[0, 0] if P.shape[0] and (P.shape[1] or not MFCY_DEBUG_BUILD) else NULL
    cdef real_t *q0 = &Q[0, 0] if Q.shape[0] and (Q.shape[1] or not MFCY_DEBUG_BUILD) else NULL
    cdef real_t *ub0 = &user_bias[0] if user_bias.shape[0] else NULL
    cdef real_t *ib0 = &item_bias[0] if item_bias.shape[0] else NULL
    cdef real_t *ug0 = &user_g[0] if user_g.shape[0] else NULL
    cdef real_t *ig0 = &item_g[0] if item_g.shape[0] else NULL
    cdef const index_t *u0 = &users[0] if users.shape[0] else NULL
    cdef const index_t *i0 = &items[0] if items.shape[0] else NULL
    cdef const real_t *r0 = &ratings[0] if ratings.shape[0] else NULL
    for j in range(block_chunks[block], block_chunks[block + 1]):
        c = visit_order[j]
        start = chunk_bounds[c]
        stop = chunk_bounds[c + 1]
        if MFCY_DEBUG_BUILD:
            _check_indices(P, Q, user_bias, item_bias, users, items, ratings, start, stop,
                           hp.biased)
        sse += _sgd_range(p0, q0, ub0, ib0, ug0, ig0, u0, i0, r0, k, start, stop, stride,
                          hp)
    return sse


def sgd_epoch(real_t[:, ::1] P, real_t[:, ::1] Q,
              real_t[::1] user_bias, real_t[::1] item_bias,
              const index_t[::1] users, const index_t[::1] items,
              const real_t[::1] ratings, const int64_t[::1] chunk_bounds,
              const int64_t[::1] block_chunks, const int64_t[::1] visit_order,
              const int64_t[::1] strata, Py_ssize_t stride, double global_mean,
              double learning_rate,
              double regularization, double bias_regularization,
              bint biased, bint sequential, int n_threads,
              user_accumulator=None, item_accumulator=None):
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
        The sequential rule (``p`` moves first, ``q`` then with the new ``p``;
        the teaching notebook's) instead of the simultaneous one.
    n_threads : int
        Threads running the blocks of one stratum; does not change the result.
    user_accumulator, item_accumulator : 1-D, same dtype, (n_users,), (n_items,), optional
        Given together: the ``"adagrad"`` schedule (LIBMF's per-row AdaGrad),
        one accumulated squared gradient per row, updated in place; each row
        then steps with ``learning_rate / sqrt(accumulator)``. Omitted: the
        constant ``learning_rate``.

    Returns
    -------
    float
        Sum over the visited ratings of the squared error met before each update.
    """
    cdef Py_ssize_t n_blocks = strata.shape[0]
    cdef Py_ssize_t s, a, block
    cdef double total = 0.0
    # The loops convert each value to real_t once, as they reach it.
    cdef mfcy_sgd_params hp
    hp.global_mean = global_mean if biased else 0.0
    hp.learning_rate = learning_rate
    hp.regularization = regularization
    hp.bias_regularization = bias_regularization
    hp.biased = biased
    hp.sequential = sequential
    hp.prefetch = ((P.shape[0] + Q.shape[0]) * P.shape[1] * sizeof(real_t)
                   > PREFETCH_MIN_BYTES)
    hp.adagrad = user_accumulator is not None
    if hp.adagrad != (item_accumulator is not None):
        raise ValueError("give both accumulators (adagrad) or neither")
    if hp.adagrad and (len(user_accumulator) != P.shape[0]
                       or len(item_accumulator) != Q.shape[0]):
        raise ValueError("an accumulator's length differs from its factor matrix's rows")
    # The constant schedule passes empty views (the loop never reads them).
    cdef real_t[::1] user_g = user_accumulator if hp.adagrad else user_bias[:0]
    cdef real_t[::1] item_g = item_accumulator if hp.adagrad else user_bias[:0]
    cdef double *block_sse = <double *>malloc(max(n_blocks, 1) * sizeof(double))
    if block_sse == NULL:
        raise MemoryError()
    try:
        with nogil:
            for s in range(n_blocks):
                if n_blocks == 1 or n_threads == 1:
                    for a in range(n_blocks):
                        block = a * n_blocks + (a + strata[s]) % n_blocks
                        block_sse[a] = _sgd_block(P, Q, user_bias, item_bias, user_g, item_g,
                                                  users, items,
                                                  ratings, chunk_bounds, block_chunks,
                                                  visit_order, block, stride, &hp)
                else:
                    # Blocks differ in size: hand them out one at a time.
                    for a in prange(n_blocks, schedule="dynamic", chunksize=1,
                                    num_threads=n_threads):
                        block = a * n_blocks + (a + strata[s]) % n_blocks
                        block_sse[a] = _sgd_block(P, Q, user_bias, item_bias, user_g, item_g,
                                                  users, items,
                                                  ratings, chunk_bounds, block_chunks,
                                                  visit_order, block, stride, &hp)
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
                       const mfcy_sgd_params *hp, double *out) except -1 nogil:
    """Summed squared and absolute errors of [start, stop) into out[0], out[1]."""
    cdef Py_ssize_t k = P.shape[1]
    # A biases-only model has no factor columns and the loops read no row; the
    # debug build's checked &P[0, 0] would refuse such an array, so it gets NULL.
    cdef const real_t *p0 = &P[0, 0] if P.shape[0] and (k or not MFCY_DEBUG_BUILD) else NULL
    cdef const real_t *q0 = &Q[0, 0] if Q.shape[0] and (k or not MFCY_DEBUG_BUILD) else NULL
    cdef const real_t *ub0 = &user_bias[0] if user_bias.shape[0] else NULL
    cdef const real_t *ib0 = &item_bias[0] if item_bias.shape[0] else NULL
    if stop <= start:
        out[0] = 0.0
        out[1] = 0.0
        return 0
    if MFCY_DEBUG_BUILD:
        _check_indices(P, Q, user_bias, item_bias, users, items, ratings, start, stop,
                       hp.biased)
    if real_t is float:
        if index_t is int32_t:
            mfcy_error_range_fi32(p0, q0, ub0, ib0, &users[0], &items[0],
                                  &ratings[0], k, start, stop, hp, out)
        else:
            mfcy_error_range_fi64(p0, q0, ub0, ib0, &users[0], &items[0],
                                  &ratings[0], k, start, stop, hp, out)
    else:
        if index_t is int32_t:
            mfcy_error_range_di32(p0, q0, ub0, ib0, &users[0], &items[0],
                                  &ratings[0], k, start, stop, hp, out)
        else:
            mfcy_error_range_di64(p0, q0, ub0, ib0, &users[0], &items[0],
                                  &ratings[0], k, start, stop, hp, out)
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
    cdef mfcy_sgd_params hp
    hp.global_mean = global_mean if biased else 0.0
    hp.learning_rate = hp.regularization = hp.bias_regularization = 0.0
    hp.biased = biased
    hp.sequential = hp.prefetch = hp.adagrad = 0
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
                             start, stop, &hp, &sums[2 * c])
            for c in range(n_chunks):
                sse += sums[2 * c]
                sae += sums[2 * c + 1]
    finally:
        free(sums)
    return sse, sae


cdef int _check_pairs(const real_t[:, ::1] P, const real_t[:, ::1] Q,
                      const real_t[::1] user_bias, const real_t[::1] item_bias,
                      const index_t[::1] users, const index_t[::1] items, bint biased,
                      real_t[::1] out) except -1 nogil:
    """Debug builds only: predict_pairs' indices (>= 0, or -1 for unknown) through checked
    accesses, and ``out`` long enough."""
    cdef Py_ssize_t t
    cdef double touched = out[users.shape[0] - 1] + items[users.shape[0] - 1]
    for t in range(users.shape[0]):
        if users[t] >= 0:
            if P.shape[1]:
                touched += P[users[t], 0]
            if biased:
                touched += user_bias[users[t]]
        if items[t] >= 0:
            if Q.shape[1]:
                touched += Q[items[t], 0]
            if biased:
                touched += item_bias[items[t]]
    _nothing(touched)
    return 0


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
    if n == 0:
        return
    if MFCY_DEBUG_BUILD:
        _check_pairs(P, Q, user_bias, item_bias, users, items, biased, out)
    cdef const real_t *p0 = &P[0, 0] if P.shape[0] and (P.shape[1] or not MFCY_DEBUG_BUILD) else NULL
    cdef const real_t *q0 = &Q[0, 0] if Q.shape[0] and (Q.shape[1] or not MFCY_DEBUG_BUILD) else NULL
    cdef const real_t *ub0 = &user_bias[0] if user_bias.shape[0] else NULL
    cdef const real_t *ib0 = &item_bias[0] if item_bias.shape[0] else NULL
    with nogil:
        if real_t is float:
            if index_t is int32_t:
                mfcy_predict_range_fi32(p0, q0, ub0, ib0, &users[0], &items[0], k, n,
                                        global_mean, biased, &out[0])
            else:
                mfcy_predict_range_fi64(p0, q0, ub0, ib0, &users[0], &items[0], k, n,
                                        global_mean, biased, &out[0])
        else:
            if index_t is int32_t:
                mfcy_predict_range_di32(p0, q0, ub0, ib0, &users[0], &items[0], k, n,
                                        global_mean, biased, &out[0])
            else:
                mfcy_predict_range_di64(p0, q0, ub0, ib0, &users[0], &items[0], k, n,
                                        global_mean, biased, &out[0])
