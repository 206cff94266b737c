# cython: language_level=3
"""The compiled kernels of SVD++, non-negative MF and the baseline.

Like :mod:`mfcy._sgd`, everything here trusts its inputs (shapes, dtypes,
contiguity, index ranges, sortedness are the Python layer's job), runs one
epoch per call in place and returns the summed squared error in double
precision. A debug build (``MFCY_DEBUG=1``) touches every index through a
bounds-checked access first, so an index that slipped past validation raises
``IndexError`` instead of writing outside an array.

Two views of the training ratings are used:

* the **blocked layout** of :class:`mfcy._blocking.EpochPlan` (``users``,
  ``items``, ``ratings``, ``chunk_bounds``, ``block_chunks`` and each epoch's
  ``visit_order``, ``strata``, ``stride``), walked exactly as
  :func:`mfcy._sgd.sgd_epoch` walks it, for the baseline's SGD epochs;
* **CSR by user** (``user_ptr``, ``user_items``, ``user_ratings``: user ``u``'s
  ratings are ``user_ptr[u]:user_ptr[u + 1]``, items increasing) and **CSR by
  item** (``item_ptr``, ``item_users``, ``item_ratings``, users increasing),
  for SVD++ and the per-user and per-item passes.

Every pass is deterministic for any ``n_threads``: the SGD strata hold blocks
that share no user and no item, the per-user and per-item passes write only
their own row (partial error sums are added in a fixed order), and the SVD++
lanes' item rows are averaged in lane order.

SVD++ (Koren 2008), the order of one epoch
-----------------------------------------
r̂ = μ + b_u + b_i + q_iᵀ (p_u + s_u), s_u = |N(u)|^-½ Σ_{j∈N(u)} y_j, N(u) =
the items of user ``u`` in ``user_items``. Users are visited in the epoch's
``user_order``, each user's ratings together:

1. s_u is summed afresh from the current ``Y``;
2. for each of the user's ratings, in storage order, with z = p_u + s_u and
   e = r - r̂: b_u += lr (e - reg_bias b_u), b_i += lr (e - reg_bias b_i),
   g_u += e q_i, p_u += lr (e q_i - reg p_u), q_i += lr (e z - reg q_i), all
   right-hand sides taken before the update (g_u starts at 0; s_u stays fixed
   during the user: the y steps come after);
3. for each j in N(u): y_j = (1 - lr_y reg_y)^|N(u)| y_j + lr_y |N(u)|^-½ g_u.

Step 3 is Surprise's per-rating y rule summed over the user's ratings: the
gradients add up to |N(u)|^-½ g_u, and the penalty, which Koren's objective
charges for every y_j of N(u) at every rating of u, shrinks y_j |N(u)| times
(a plain "- reg_y y_j" once per user would regularize y far less than the
model's objective does; ML-100K test RMSE 0.913 with it, 0.90 with this).

So s_u is summed once per user and epoch and y_j moves once per (user, item)
pair instead of once per rating of the user (Surprise's rule, which costs
O(ratings × |N(u)| × k)): the epoch costs O(ratings × k). The next user sees
the new y_j at once; deferring the y steps further (to the end of a stratum or
of the epoch) turns them into a large batch step that oscillates
(docs/user_guide/models.rst).

Threads come from *lanes* (``n_lanes > 1``, see :func:`svdpp_epoch`): runs of
users that go in rounds, each lane on its own copy of the item rows (the shared
rows as they were at the start of the round); after the round each item row
becomes its start plus the mean of the changes of the lanes that used it,
summed in lane order, so the result depends on ``n_lanes`` and
``lane_ratings`` but never on ``n_threads``.

NMF (Luo et al. 2014, as in Surprise)
-------------------------------------
With r̂ = p_uᵀ q_i (+ μ + b_u + b_i when biased, the biases held fixed), for
every factor f: p_uf ← p_uf · Σ_i q_if r_ui / (Σ_i q_if r̂_ui + |I_u| reg_u p_uf)
and the same for q_if over the users of item i, both from the factors met on
entry (a simultaneous update).

Baseline
--------
r̂ = μ + b_u + b_i by SGD (:func:`baseline_sgd_epoch`, the blocked order) or by
alternating least squares (:func:`baseline_als_epoch`: items, then users, as
Surprise's ``baseline_als``).
"""

import os

from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy
from libc.math cimport pow, sqrt
from cython.parallel cimport parallel, prange

ctypedef fused real_t:
    float
    double

ctypedef fused index_t:
    int32_t
    int64_t

cdef extern from "_models_kernel.h" nogil:
    float mfcym_svdpp_step_f(float *p, float *q, const float *s, float *g, float *bu,
                             float *bi, float r, float mu, float lr, float reg,
                             float reg_bias, int biased, Py_ssize_t k)
    double mfcym_svdpp_step_d(double *p, double *q, const double *s, double *g, double *bu,
                              double *bi, double r, double mu, double lr, double reg,
                              double reg_bias, int biased, Py_ssize_t k)
    void mfcym_add_f(float *s, const float *y, Py_ssize_t k)
    void mfcym_add_d(double *s, const double *y, Py_ssize_t k)
    void mfcym_scale_f(float *s, float a, Py_ssize_t k)
    void mfcym_scale_d(double *s, double a, Py_ssize_t k)
    void mfcym_y_step_f(float *y, const float *g, float decay, float step, Py_ssize_t k)
    void mfcym_y_step_d(double *y, const double *g, double decay, double step, Py_ssize_t k)
    void mfcym_nmf_apply_f(float *x, const float *num, const float *den, float reg_n,
                           Py_ssize_t k)
    void mfcym_nmf_apply_d(double *x, const double *num, const double *den, double reg_n,
                           Py_ssize_t k)
    int mfcym_set_nmf_level(int want)
    int mfcym_nmf_level_in_use()
    void mfcym_nmf_fused_fi32(const float *P, const float *Q, const int64_t *user_ptr,
                            const int32_t *user_items, const float *user_ratings,
                            const float *user_bias, const float *item_bias, Py_ssize_t n_users,
                            Py_ssize_t n_items, float mu, int biased, float *sums,
                            double *user_sse, Py_ssize_t k)
    double mfcym_nmf_row_fi32(const float *X, const float *x, const int64_t *ptr,
                            const int32_t *other, const float *ratings, const float *own_bias,
                            const float *other_bias, Py_ssize_t row, float mu, int biased,
                            float *num, float *den, Py_ssize_t k)
    void mfcym_nmf_fused_fi64(const float *P, const float *Q, const int64_t *user_ptr,
                            const int64_t *user_items, const float *user_ratings,
                            const float *user_bias, const float *item_bias, Py_ssize_t n_users,
                            Py_ssize_t n_items, float mu, int biased, float *sums,
                            double *user_sse, Py_ssize_t k)
    double mfcym_nmf_row_fi64(const float *X, const float *x, const int64_t *ptr,
                            const int64_t *other, const float *ratings, const float *own_bias,
                            const float *other_bias, Py_ssize_t row, float mu, int biased,
                            float *num, float *den, Py_ssize_t k)
    void mfcym_nmf_fused_di32(const double *P, const double *Q, const int64_t *user_ptr,
                            const int32_t *user_items, const double *user_ratings,
                            const double *user_bias, const double *item_bias, Py_ssize_t n_users,
                            Py_ssize_t n_items, double mu, int biased, double *sums,
                            double *user_sse, Py_ssize_t k)
    double mfcym_nmf_row_di32(const double *X, const double *x, const int64_t *ptr,
                            const int32_t *other, const double *ratings, const double *own_bias,
                            const double *other_bias, Py_ssize_t row, double mu, int biased,
                            double *num, double *den, Py_ssize_t k)
    void mfcym_nmf_fused_di64(const double *P, const double *Q, const int64_t *user_ptr,
                            const int64_t *user_items, const double *user_ratings,
                            const double *user_bias, const double *item_bias, Py_ssize_t n_users,
                            Py_ssize_t n_items, double mu, int biased, double *sums,
                            double *user_sse, Py_ssize_t k)
    double mfcym_nmf_row_di64(const double *X, const double *x, const int64_t *ptr,
                            const int64_t *other, const double *ratings, const double *own_bias,
                            const double *other_bias, Py_ssize_t row, double mu, int biased,
                            double *num, double *den, Py_ssize_t k)
    int MFCY_DEBUG_BUILD


# ---------------------------------------------------------------------------
# Type dispatch of the C row functions
# ---------------------------------------------------------------------------

cdef inline void _add(real_t *s, const real_t *y, Py_ssize_t k) noexcept nogil:
    if real_t is float:
        mfcym_add_f(s, y, k)
    else:
        mfcym_add_d(s, y, k)


cdef inline void _scale(real_t *s, real_t a, Py_ssize_t k) noexcept nogil:
    if real_t is float:
        mfcym_scale_f(s, a, k)
    else:
        mfcym_scale_d(s, a, k)


cdef inline void _nmf_apply(real_t *x, const real_t *num, const real_t *den, real_t reg_n,
                            Py_ssize_t k) noexcept nogil:
    if real_t is float:
        mfcym_nmf_apply_f(x, num, den, reg_n, k)
    else:
        mfcym_nmf_apply_d(x, num, den, reg_n, k)


cdef inline double _nothing(double x) noexcept nogil:
    return x


# ---------------------------------------------------------------------------
# Debug builds: touch every index through a bounds-checked access
# ---------------------------------------------------------------------------

cdef int _touch_rows(const real_t[:, ::1] A, const index_t[::1] index) except -1 nogil:
    """Debug builds only: ``IndexError`` for an index outside ``A``'s rows."""
    cdef Py_ssize_t t
    cdef double touched = 0.0
    if A.shape[1] == 0:
        return 0
    for t in range(index.shape[0]):
        touched += A[index[t], 0]
    _nothing(touched)
    return 0


cdef int _touch_bias(const real_t[::1] b, const index_t[::1] index) except -1 nogil:
    """Debug builds only: ``IndexError`` for an index outside ``b``."""
    cdef Py_ssize_t t
    cdef double touched = 0.0
    for t in range(index.shape[0]):
        touched += b[index[t]]
    _nothing(touched)
    return 0


cdef int _touch_ptr(const int64_t[::1] ptr, Py_ssize_t length) except -1 nogil:
    """Debug builds only: ``IndexError`` for an offset past ``length`` entries."""
    cdef Py_ssize_t t
    for t in range(ptr.shape[0]):
        if ptr[t] < 0 or ptr[t] > length or (t and ptr[t] < ptr[t - 1]):
            with gil:
                raise IndexError(f"offset {ptr[t]} at {t} is not a valid CSR offset "
                                 f"into {length} entries")
    return 0


# ---------------------------------------------------------------------------
# SVD++
# ---------------------------------------------------------------------------

cdef void _implicit_user(const real_t *Y, const int64_t *user_ptr, const index_t *user_items,
                         real_t *S, Py_ssize_t u, Py_ssize_t k) noexcept nogil:
    """s_u = |N(u)|^-½ Σ_{j∈N(u)} y_j, summed in the order of ``user_items``."""
    cdef real_t *s = S + u * k
    cdef Py_ssize_t t, f
    cdef Py_ssize_t n = user_ptr[u + 1] - user_ptr[u]
    for f in range(k):
        s[f] = 0
    for t in range(user_ptr[u], user_ptr[u + 1]):
        _add(s, Y + <Py_ssize_t>user_items[t] * k, k)
    if n > 0:
        _scale(s, <real_t>1 / sqrt(<real_t>n), k)


cdef void _implicit_all(const real_t *Y, const int64_t *user_ptr, const index_t *user_items,
                        real_t *S, Py_ssize_t n_users, Py_ssize_t k,
                        int n_threads) noexcept nogil:
    cdef Py_ssize_t u
    if n_threads <= 1:
        for u in range(n_users):
            _implicit_user(Y, user_ptr, user_items, S, u, k)
    else:
        for u in prange(n_users, schedule="static", num_threads=n_threads):
            _implicit_user(Y, user_ptr, user_items, S, u, k)


def svdpp_implicit_sums(const real_t[:, ::1] Y, const int64_t[::1] user_ptr,
                        const index_t[::1] user_items, real_t[:, ::1] S, int n_threads=1):
    """Fill ``S`` with the implicit sums s_u = |N(u)|^-½ Σ_{j∈N(u)} y_j.

    Parameters
    ----------
    Y : (n_items, k) float32 or float64, C-contiguous
        The implicit item factors.
    user_ptr : int64, (n_users + 1,)
        User ``u``'s items are ``user_items[user_ptr[u]:user_ptr[u + 1]]``.
    user_items : 1-D int32 or int64
    S : (n_users, k), same dtype as ``Y``
        Written in place; a user without items gets 0.
    n_threads : int
        Does not change the result.
    """
    cdef Py_ssize_t k = Y.shape[1]
    cdef Py_ssize_t n_users = S.shape[0]
    if MFCY_DEBUG_BUILD:
        _touch_ptr(user_ptr, user_items.shape[0])
        _touch_rows(Y, user_items)
        if user_ptr.shape[0] != n_users + 1:
            raise IndexError("user_ptr must have n_users + 1 entries")
    if n_users == 0 or k == 0:
        return
    with nogil:
        _implicit_all(&Y[0, 0] if Y.shape[0] else NULL, &user_ptr[0],
                      &user_items[0] if user_items.shape[0] else NULL, &S[0, 0], n_users, k,
                      n_threads)


cdef double _svdpp_user(real_t *P, real_t *Q, real_t *Y, real_t *user_bias,
                        real_t *item_bias, const int64_t *user_ptr, const index_t *user_items,
                        const real_t *user_ratings, Py_ssize_t u, real_t *s, real_t *g,
                        Py_ssize_t k, real_t mu, real_t lr, real_t reg, real_t reg_bias,
                        real_t lr_y, real_t reg_y, bint biased,
                        char *touched) noexcept nogil:
    """All of user ``u``'s SVD++ steps: s_u afresh, its ratings, then its y steps.

    ``touched`` (a lane's item flags, or NULL) gets a 1 for each of the user's items.
    """
    cdef Py_ssize_t t, f, i
    cdef Py_ssize_t n = user_ptr[u + 1] - user_ptr[u]
    cdef real_t norm, err, decay
    cdef real_t *bu = NULL
    cdef real_t *bi = NULL
    cdef double sse = 0.0
    if n == 0:
        return 0.0
    norm = <real_t>1 / sqrt(<real_t>n)
    decay = <real_t>pow(<double>(1 - lr_y * reg_y), <double>n)
    for f in range(k):
        s[f] = 0
        g[f] = 0
    if touched == NULL:
        for t in range(user_ptr[u], user_ptr[u + 1]):
            _add(s, Y + <Py_ssize_t>user_items[t] * k, k)
    else:
        for t in range(user_ptr[u], user_ptr[u + 1]):
            i = user_items[t]
            touched[i] = 1
            _add(s, Y + i * k, k)
    _scale(s, norm, k)
    if biased:
        bu = user_bias + u
    for t in range(user_ptr[u], user_ptr[u + 1]):
        i = user_items[t]
        if biased:
            bi = item_bias + i
        if real_t is float:
            err = mfcym_svdpp_step_f(P + u * k, Q + i * k, s, g, bu, bi, user_ratings[t], mu,
                                     lr, reg, reg_bias, biased, k)
        else:
            err = mfcym_svdpp_step_d(P + u * k, Q + i * k, s, g, bu, bi, user_ratings[t], mu,
                                     lr, reg, reg_bias, biased, k)
        sse += <double>err * <double>err
    for t in range(user_ptr[u], user_ptr[u + 1]):
        if real_t is float:
            mfcym_y_step_f(Y + <Py_ssize_t>user_items[t] * k, g, decay, lr_y * norm, k)
        else:
            mfcym_y_step_d(Y + <Py_ssize_t>user_items[t] * k, g, decay, lr_y * norm, k)
    return sse


cdef struct Lanes:
    # Lane b's own copies of the item rows are LQ/LY + b * row_stride and
    # Lb + b * bias_stride; its (s, g) work rows are work + b * work_stride;
    # touched[b * flag_stride + i] says whether lane b used item i this round.
    # Every stride is whole 64-byte lines plus one spare line, from 64-byte
    # aligned bases, so two lanes' rows never share a cache line: a lane
    # writes its s and g at every rating, and a line shared with another
    # thread's lane would bounce between their cores on each write.
    char *touched
    Py_ssize_t *pos
    Py_ssize_t *end
    double *sse
    Py_ssize_t row_stride
    Py_ssize_t bias_stride
    Py_ssize_t work_stride
    Py_ssize_t flag_stride


cdef inline Py_ssize_t _lane_stride(Py_ssize_t n, Py_ssize_t size) noexcept nogil:
    """Elements of ``size`` bytes between two lanes' arrays of ``n``: whole 64-byte
    lines, plus one spare line."""
    cdef Py_ssize_t per_line = 64 // size
    return (n + per_line - 1) // per_line * per_line + per_line


cdef inline void *_align64(void *p) noexcept nogil:
    return <void *>((<size_t>p + 63) & ~(<size_t>63))


cdef void _svdpp_lane_round(Lanes *lanes, Py_ssize_t b, real_t *P, real_t *LQ, real_t *LY,
                            real_t *user_bias, real_t *Lb, const int64_t *user_ptr,
                            const index_t *user_items, const real_t *user_ratings,
                            const int64_t *user_order, real_t *work,
                            Py_ssize_t lane_ratings, Py_ssize_t k, real_t mu, real_t lr,
                            real_t reg, real_t reg_bias, real_t lr_y, real_t reg_y,
                            bint biased) noexcept nogil:
    """Lane ``b``'s users of one round (at least ``lane_ratings`` ratings, whole users).

    The plain rule of :func:`_svdpp_user`, on the lane's own copies of the item
    rows (which held the shared rows at the start of the round) and on its own
    users' rows, so lanes can run in any order or at once.
    """
    cdef Py_ssize_t done = 0, u
    # Locals, written back once: lanes' counters share cache lines.
    cdef Py_ssize_t pos = lanes.pos[b], end = lanes.end[b]
    cdef char *touched = lanes.touched + b * lanes.flag_stride
    cdef real_t *bi0 = Lb + b * lanes.bias_stride if biased else NULL
    cdef real_t *s = work + b * lanes.work_stride
    cdef double sse = 0.0
    while pos < end and done < lane_ratings:
        u = user_order[pos]
        pos += 1
        sse += _svdpp_user(P, LQ + b * lanes.row_stride, LY + b * lanes.row_stride, user_bias,
                           bi0, user_ptr, user_items, user_ratings, u, s, s + k, k, mu, lr,
                           reg, reg_bias, lr_y, reg_y, biased, touched)
        done += user_ptr[u + 1] - user_ptr[u]
    lanes.pos[b] = pos
    lanes.sse[b] += sse


cdef inline void _average_row(real_t *shared, real_t *lane_rows, const char *touched,
                              Py_ssize_t n_lanes, Py_ssize_t stride, Py_ssize_t flag_stride,
                              real_t count, Py_ssize_t k) noexcept nogil:
    """One item row: shared += (sum, in lane order, of (lane's row - shared) over the
    lanes that touched it) / count; then every lane's copy := shared.

    ``lane_rows`` is lane 0's copy of the row (lane b's is ``b * stride`` further)
    and ``touched`` lane 0's flag for the item (lane b's is ``b * flag_stride`` further).
    """
    cdef Py_ssize_t b, f
    cdef real_t delta
    for f in range(k):
        delta = 0
        for b in range(n_lanes):
            if touched[b * flag_stride]:
                delta = delta + (lane_rows[b * stride + f] - shared[f])
        shared[f] = shared[f] + delta / count
    for b in range(n_lanes):
        memcpy(lane_rows + b * stride, shared, k * sizeof(real_t))


cdef enum:
    # Items per piece of a round's merge; a multiple of 8 (the flags are read 8 at a time).
    MERGE_PIECE = 1024


cdef void _merge_lanes(Lanes *lanes, Py_ssize_t n_lanes, real_t *Q, real_t *Y,
                       real_t *item_bias, real_t *LQ, real_t *LY, real_t *Lb,
                       Py_ssize_t first, Py_ssize_t last, bint biased,
                       Py_ssize_t k) noexcept nogil:
    """Average the lanes' versions of the items in [first, last) used this round.

    An item used by ``c`` lanes becomes its start plus the mean of those lanes'
    changes (their sum in lane order, divided by ``c``): one lane's item takes
    that lane's steps whole, and an item every lane moved does not take ``c``
    steps that never saw each other. Every lane's copy then restarts from it,
    and its flags are cleared. Items are independent, so pieces of the range
    can be merged by different threads with the same result.
    """
    cdef Py_ssize_t b, i, c_int
    cdef uint64_t flags, word_flags
    cdef real_t c, delta
    cdef char *touched = lanes.touched
    cdef Py_ssize_t fs = lanes.flag_stride, bs = lanes.bias_stride
    i = first
    while i < last:
        if i + 8 <= last:
            # Skip 8 items no lane used with one 8-byte load per lane.
            flags = 0
            for b in range(n_lanes):
                memcpy(&word_flags, touched + b * fs + i, 8)
                flags |= word_flags
            if flags == 0:
                i += 8
                continue
        c_int = 0
        for b in range(n_lanes):
            c_int += touched[b * fs + i]
        if c_int:
            c = <real_t>c_int
            _average_row(Q + i * k, LQ + i * k, touched + i, n_lanes, lanes.row_stride,
                         fs, c, k)
            _average_row(Y + i * k, LY + i * k, touched + i, n_lanes, lanes.row_stride,
                         fs, c, k)
            if biased:
                delta = 0
                for b in range(n_lanes):
                    if touched[b * fs + i]:
                        delta = delta + (Lb[b * bs + i] - item_bias[i])
                item_bias[i] = item_bias[i] + delta / c
                for b in range(n_lanes):
                    Lb[b * bs + i] = item_bias[i]
            for b in range(n_lanes):
                touched[b * fs + i] = 0
        i += 1


cdef double _svdpp_epoch_lanes(real_t[:, ::1] P, real_t[:, ::1] Q, real_t[:, ::1] Y,
                               real_t[::1] user_bias, real_t[::1] item_bias,
                               const int64_t[::1] user_ptr, const index_t[::1] user_items,
                               const real_t[::1] user_ratings, const int64_t[::1] user_order,
                               real_t mu, real_t lr, real_t reg, real_t reg_bias, real_t lr_y,
                               real_t reg_y, bint biased, Py_ssize_t n_lanes,
                               Py_ssize_t lane_ratings, int n_threads) except? -1.0:
    """The lanes of :func:`svdpp_epoch` (``n_lanes > 1``)."""
    cdef Py_ssize_t n_items = Q.shape[0], k = P.shape[1]
    cdef Py_ssize_t n_order = user_order.shape[0]
    cdef Py_ssize_t n_pieces = (n_items + MERGE_PIECE - 1) // MERGE_PIECE
    cdef Py_ssize_t b, piece, busy
    cdef double total = 0.0
    cdef Lanes lanes
    cdef real_t *ub0 = &user_bias[0] if user_bias.shape[0] else NULL
    cdef real_t *ib0 = &item_bias[0] if item_bias.shape[0] else NULL
    lanes.row_stride = _lane_stride(n_items * k, sizeof(real_t))
    lanes.bias_stride = _lane_stride(n_items, sizeof(real_t))
    lanes.work_stride = _lane_stride(2 * k, sizeof(real_t))
    lanes.flag_stride = _lane_stride(n_items, sizeof(char))
    # The raw blocks (freed below) and their 64-byte aligned starts.
    cdef void *flags_block = calloc(n_lanes * lanes.flag_stride + 64, sizeof(char))
    # Each lane's copies of Q, Y and the item biases, and its s and g.
    cdef void *rows_block = malloc((n_lanes * (2 * lanes.row_stride + lanes.bias_stride
                                               + lanes.work_stride)) * sizeof(real_t) + 64)
    lanes.touched = <char *>_align64(flags_block)
    lanes.pos = <Py_ssize_t *>malloc(n_lanes * sizeof(Py_ssize_t))
    lanes.end = <Py_ssize_t *>malloc(n_lanes * sizeof(Py_ssize_t))
    lanes.sse = <double *>calloc(n_lanes, sizeof(double))
    cdef real_t *LQ = <real_t *>_align64(rows_block)
    cdef real_t *LY = LQ + n_lanes * lanes.row_stride
    cdef real_t *Lb = LY + n_lanes * lanes.row_stride
    cdef real_t *work = Lb + n_lanes * lanes.bias_stride
    try:
        if (flags_block == NULL or rows_block == NULL or lanes.pos == NULL
                or lanes.end == NULL or lanes.sse == NULL):
            raise MemoryError()
        with nogil:
            for b in range(n_lanes):
                memcpy(LQ + b * lanes.row_stride, &Q[0, 0], n_items * k * sizeof(real_t))
                memcpy(LY + b * lanes.row_stride, &Y[0, 0], n_items * k * sizeof(real_t))
                if biased:
                    memcpy(Lb + b * lanes.bias_stride, ib0, n_items * sizeof(real_t))
                lanes.pos[b] = b * n_order // n_lanes
                lanes.end[b] = (b + 1) * n_order // n_lanes
            while True:
                busy = 0
                for b in range(n_lanes):
                    if lanes.pos[b] < lanes.end[b]:
                        busy += 1
                if busy == 0:
                    break
                if n_threads <= 1:
                    for b in range(n_lanes):
                        _svdpp_lane_round(&lanes, b, &P[0, 0], LQ, LY, ub0, Lb, &user_ptr[0],
                                          &user_items[0], &user_ratings[0], &user_order[0],
                                          work, lane_ratings, k, mu, lr, reg, reg_bias, lr_y,
                                          reg_y, biased)
                    _merge_lanes(&lanes, n_lanes, &Q[0, 0], &Y[0, 0], ib0, LQ, LY, Lb, 0,
                                 n_items, biased, k)
                else:
                    # One team per round: the lanes, then (after the loop's
                    # barrier) the merge in pieces of items.
                    with parallel(num_threads=n_threads):
                        for b in prange(n_lanes, schedule="dynamic", chunksize=1):
                            _svdpp_lane_round(&lanes, b, &P[0, 0], LQ, LY, ub0, Lb,
                                              &user_ptr[0], &user_items[0], &user_ratings[0],
                                              &user_order[0], work, lane_ratings, k, mu, lr,
                                              reg, reg_bias, lr_y, reg_y, biased)
                        for piece in prange(n_pieces, schedule="static"):
                            _merge_lanes(&lanes, n_lanes, &Q[0, 0], &Y[0, 0], ib0, LQ, LY, Lb,
                                         piece * MERGE_PIECE,
                                         min((piece + 1) * MERGE_PIECE, n_items), biased, k)
            for b in range(n_lanes):
                total += lanes.sse[b]
    finally:
        free(flags_block)
        free(lanes.pos)
        free(lanes.end)
        free(lanes.sse)
        free(rows_block)
    return total


def svdpp_epoch(real_t[:, ::1] P, real_t[:, ::1] Q, real_t[:, ::1] Y,
                real_t[::1] user_bias, real_t[::1] item_bias,
                const int64_t[::1] user_ptr, const index_t[::1] user_items,
                const real_t[::1] user_ratings, const int64_t[::1] user_order,
                double global_mean, double learning_rate, double regularization,
                double bias_regularization, double implicit_learning_rate,
                double implicit_regularization, bint biased, Py_ssize_t n_lanes=1,
                Py_ssize_t lane_ratings=1024, int n_threads=1):
    """Run one SVD++ epoch in place, user by user; return the summed squared error.

    The order is the one of the module docstring: for each user of
    ``user_order``, s_u from the current ``Y``, then the user's ratings in
    storage order (biases, p, q, the gradient sum g_u), then one y step for
    each of the user's items.

    Parameters
    ----------
    P, Q, Y : (n_users, k), (n_items, k), (n_items, k) C-contiguous float32 or float64
        User factors, item factors and implicit item factors, updated in place.
    user_bias, item_bias : 1-D, same dtype
        Updated in place when ``biased`` (may be length 0 otherwise).
    user_ptr, user_items, user_ratings
        The ratings as CSR by user; N(u) is the user's items.
    user_order : int64, (n_users,)
        The order of the users this epoch (a permutation, drawn from the seed).
    global_mean, learning_rate, regularization, bias_regularization : float
    implicit_learning_rate, implicit_regularization : float
        Step size and regularization of the y steps.
    biased : bool
    n_lanes : int
        1: every step lands at once (one thread). More: ``user_order`` is cut
        into ``n_lanes`` equal runs of users, and the epoch goes in rounds in
        which every lane takes its next whole users (``lane_ratings`` ratings
        or a few more) on its own copy of the item rows, made from the shared
        rows at the start of the round; each item row any lane used then
        becomes its start plus the mean of those lanes' changes (summed in
        lane order). Lanes run in parallel; the result depends on ``n_lanes``
        and ``lane_ratings``, never on ``n_threads``. Memory: ``n_lanes``
        copies of ``Q``, ``Y`` and the item biases.
    lane_ratings : int
    n_threads : int
        Threads running the lanes of a round; does not change the result.

    Returns
    -------
    float
        Sum over the ratings of the squared error met before each update.
    """
    cdef Py_ssize_t n_users = P.shape[0]
    cdef Py_ssize_t k = P.shape[1]
    cdef Py_ssize_t m
    cdef double total = 0.0
    cdef real_t mu = <real_t>(global_mean if biased else 0.0)
    cdef real_t lr = <real_t>learning_rate
    cdef real_t reg = <real_t>regularization
    cdef real_t reg_bias = <real_t>bias_regularization
    cdef real_t lr_y = <real_t>implicit_learning_rate
    cdef real_t reg_y = <real_t>implicit_regularization
    cdef real_t *ub0 = &user_bias[0] if user_bias.shape[0] else NULL
    cdef real_t *ib0 = &item_bias[0] if item_bias.shape[0] else NULL
    cdef real_t *work
    if k == 0:
        raise ValueError("SVD++ needs at least one factor")
    if MFCY_DEBUG_BUILD:
        _touch_ptr(user_ptr, user_items.shape[0])
        _touch_rows(Q, user_items)
        _touch_rows(Y, user_items)
        _touch_rows(P, user_order)
        if biased:
            _touch_bias(item_bias, user_items)
            _touch_bias(user_bias, user_order)
        if user_ptr.shape[0] != n_users + 1 or user_ratings.shape[0] != user_items.shape[0]:
            raise IndexError("user_ptr must have n_users + 1 entries, user_ratings one per item")
    if user_items.shape[0] == 0:
        return 0.0
    if n_lanes > 1:
        return _svdpp_epoch_lanes(P, Q, Y, user_bias, item_bias, user_ptr, user_items,
                                  user_ratings, user_order, mu, lr, reg, reg_bias, lr_y,
                                  reg_y, biased, n_lanes, max(lane_ratings, 1), n_threads)
    work = <real_t *>malloc(2 * k * sizeof(real_t))
    if work == NULL:
        raise MemoryError()
    try:
        with nogil:
            for m in range(user_order.shape[0]):
                total += _svdpp_user(&P[0, 0], &Q[0, 0], &Y[0, 0], ub0, ib0, &user_ptr[0],
                                     &user_items[0], &user_ratings[0], user_order[m], work,
                                     work + k, k, mu, lr, reg, reg_bias, lr_y, reg_y, biased,
                                     NULL)
    finally:
        free(work)
    return total


def svdpp_predict(const real_t[:, ::1] P, const real_t[:, ::1] Q, const real_t[:, ::1] S,
                  const real_t[::1] user_bias, const real_t[::1] item_bias,
                  const index_t[::1] users, const index_t[::1] items,
                  double global_mean, bint biased, real_t[::1] out):
    """Fill ``out`` with μ + b_u + b_i + q_iᵀ (p_u + s_u) for (user, item) index pairs.

    ``S`` holds the implicit sums (:func:`svdpp_implicit_sums`). An index of
    ``-1`` marks an id unseen in training: it contributes neither factors nor a
    bias (as in :func:`mfcy._sgd.predict_pairs`), so the prediction falls back
    to the global mean plus the known side's bias; for an unbiased model the
    factor term of a known pair replaces ``global_mean``.
    """
    cdef Py_ssize_t n = users.shape[0]
    cdef Py_ssize_t k = P.shape[1]
    cdef Py_ssize_t t, f
    cdef index_t u, i
    cdef double value, acc
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
                acc = 0.0
                for f in range(k):
                    acc += Q[i, f] * (P[u, f] + S[u, f])
                value += acc
            out[t] = <real_t>value


# ---------------------------------------------------------------------------
# NMF
# ---------------------------------------------------------------------------

cdef inline double _nmf_sums_row(const real_t *X, const real_t *x, const int64_t *ptr,
                                 const index_t *other, const real_t *ratings,
                                 const real_t *own_bias, const real_t *other_bias,
                                 Py_ssize_t row, real_t mu, bint biased, real_t *num,
                                 real_t *den, Py_ssize_t k) noexcept nogil:
    """NMF sums of one row (a user over its items, or an item over its users): the
    C pass of ``_models_kernel.h``. ``x`` is the row's own factor vector, ``X`` the
    other side's factors. Returns the row's summed squared error."""
    if real_t is float:
        if index_t is int32_t:
            return mfcym_nmf_row_fi32(X, x, ptr, other, ratings, own_bias, other_bias, row,
                                      mu, biased, num, den, k)
        else:
            return mfcym_nmf_row_fi64(X, x, ptr, other, ratings, own_bias, other_bias, row,
                                      mu, biased, num, den, k)
    else:
        if index_t is int32_t:
            return mfcym_nmf_row_di32(X, x, ptr, other, ratings, own_bias, other_bias, row,
                                      mu, biased, num, den, k)
        else:
            return mfcym_nmf_row_di64(X, x, ptr, other, ratings, own_bias, other_bias, row,
                                      mu, biased, num, den, k)


cdef inline void _nmf_sums_fused(const real_t *P, const real_t *Q, const int64_t *user_ptr,
                                 const index_t *user_items, const real_t *user_ratings,
                                 const real_t *user_bias, const real_t *item_bias,
                                 Py_ssize_t n_users, Py_ssize_t n_items, real_t mu,
                                 bint biased, real_t *sums, double *user_sse,
                                 Py_ssize_t k) noexcept nogil:
    """Every user's and item's sums of :func:`_nmf_sums_row` in one pass (one thread),
    the same bits: the C pass of ``_models_kernel.h``."""
    if real_t is float:
        if index_t is int32_t:
            mfcym_nmf_fused_fi32(P, Q, user_ptr, user_items, user_ratings, user_bias,
                                 item_bias, n_users, n_items, mu, biased, sums, user_sse, k)
        else:
            mfcym_nmf_fused_fi64(P, Q, user_ptr, user_items, user_ratings, user_bias,
                                 item_bias, n_users, n_items, mu, biased, sums, user_sse, k)
    else:
        if index_t is int32_t:
            mfcym_nmf_fused_di32(P, Q, user_ptr, user_items, user_ratings, user_bias,
                                 item_bias, n_users, n_items, mu, biased, sums, user_sse, k)
        else:
            mfcym_nmf_fused_di64(P, Q, user_ptr, user_items, user_ratings, user_bias,
                                 item_bias, n_users, n_items, mu, biased, sums, user_sse, k)


def _set_nmf_vector_isa(name):
    """Use the ``"baseline"`` or the ``"avx2"`` (AVX2+FMA) copy of NMF's passes, or
    ``"auto"`` (the best this CPU runs); return the name of the copy now in use."""
    if name not in ("auto", "baseline", "avx2"):
        raise ValueError(f"unknown NMF vector ISA {name!r}: auto, baseline or avx2")
    mfcym_set_nmf_level(0 if name == "baseline" else 1)
    return nmf_vector_isa()


def nmf_vector_isa():
    """The copy of NMF's passes over the ratings in use: ``"avx2+fma"`` or ``"baseline"``."""
    return "avx2+fma" if mfcym_nmf_level_in_use() == 1 else "baseline"


# MFCY_ISA (read by mfcy._sgd, which checks its value) also picks NMF's copy:
# "baseline" the baseline, anything else the best this CPU runs (NMF has no
# AVX-512 copy).
_set_nmf_vector_isa("baseline" if os.environ.get("MFCY_ISA", "auto").strip().lower()
                    == "baseline" else "auto")


def nmf_epoch(real_t[:, ::1] P, real_t[:, ::1] Q,
              const real_t[::1] user_bias, const real_t[::1] item_bias,
              const int64_t[::1] user_ptr, const index_t[::1] user_items,
              const real_t[::1] user_ratings, const int64_t[::1] item_ptr,
              const index_t[::1] item_users, const real_t[::1] item_ratings,
              double global_mean, double user_regularization, double item_regularization,
              bint biased, int n_threads):
    """One epoch of NMF's multiplicative updates in place; return the summed squared error.

    Both factor matrices move at once from the values met on entry:
    ``p_uf *= Σ_i q_if r_ui / (Σ_i q_if r̂_ui + |I_u| reg_u p_uf)`` and the same
    for ``q_if`` over the item's users, where that denominator is positive
    (otherwise the factor keeps its value); a negative result (possible only
    with biases or negative ratings) is set to 0, so non-negative factors stay
    non-negative.

    Parameters
    ----------
    P, Q : (n_users, k), (n_items, k) C-contiguous float32 or float64
        Non-negative factors, updated in place.
    user_bias, item_bias : 1-D, same dtype
        Used, not updated, when ``biased`` (may be length 0 otherwise).
    user_ptr, user_items, user_ratings
        The ratings as CSR by user.
    item_ptr, item_users, item_ratings
        The same ratings as CSR by item. One thread reads only ``item_ptr``
        (the item counts), and ``item_users`` and ``item_ratings`` may then
        be empty.
    global_mean : float
        Used when ``biased``.
    user_regularization, item_regularization : float
    biased : bool
    n_threads : int
        Does not change the result.

    Returns
    -------
    float
        Summed squared error of the factors met on entry.
    """
    cdef Py_ssize_t n_users = P.shape[0], n_items = Q.shape[0]
    cdef Py_ssize_t k = P.shape[1]
    # The rows are worked on padded with zeros to whole 8-value vectors: the
    # k-loops then have no scalar tails (Surprise's k = 15 works as 16). A zero
    # column stays zero (its sums are 0, and a factor with no positive
    # denominator keeps its value).
    cdef Py_ssize_t kp = (k + 7) // 8 * 8
    cdef Py_ssize_t u, j, f
    cdef real_t mu = <real_t>global_mean
    cdef real_t reg_u = <real_t>user_regularization
    cdef real_t reg_i = <real_t>item_regularization
    cdef real_t *p0
    cdef real_t *q0
    cdef const real_t *ub0 = &user_bias[0] if user_bias.shape[0] else NULL
    cdef const real_t *ib0 = &item_bias[0] if item_bias.shape[0] else NULL
    cdef const index_t *ui0 = &user_items[0] if user_items.shape[0] else NULL
    cdef const real_t *ur0 = &user_ratings[0] if user_ratings.shape[0] else NULL
    cdef const index_t *iu0 = &item_users[0] if item_users.shape[0] else NULL
    cdef const real_t *ir0 = &item_ratings[0] if item_ratings.shape[0] else NULL
    cdef real_t *sums
    cdef real_t *rows
    cdef double *user_sse
    cdef double total = 0.0
    if k == 0:
        raise ValueError("NMF needs at least one factor")
    if n_threads > 1 and item_users.shape[0] != user_items.shape[0]:
        raise ValueError("nmf_epoch on more than one thread needs the item CSR")
    if MFCY_DEBUG_BUILD:
        _touch_ptr(user_ptr, user_items.shape[0])
        _touch_ptr(item_ptr, user_items.shape[0])
        _touch_rows(Q, user_items)
        if n_threads > 1:
            _touch_rows(P, item_users)
        if biased:
            _touch_bias(item_bias, user_items)
            if n_threads > 1:
                _touch_bias(user_bias, item_users)
        if user_ptr.shape[0] != n_users + 1 or item_ptr.shape[0] != n_items + 1:
            raise IndexError("user_ptr / item_ptr must have n_users + 1 / n_items + 1 entries")
    if user_ratings.shape[0] == 0:
        return 0.0
    # Numerators and denominators of every row of both sides (the item step must
    # wait for the user step to have read the old Q, and the other way round),
    # and the padded rows, on a 64-byte boundary.
    sums = <real_t *>malloc(max(2 * (n_users + n_items) * kp, 1) * sizeof(real_t))
    user_sse = <double *>malloc(max(n_users, 1) * sizeof(double))
    rows = <real_t *>malloc(((n_users + n_items) * kp + 16) * sizeof(real_t))
    if sums == NULL or user_sse == NULL or rows == NULL:
        free(sums)
        free(user_sse)
        free(rows)
        raise MemoryError()
    p0 = <real_t *>((<size_t>rows + 63) & ~(<size_t>63))
    q0 = p0 + n_users * kp
    try:
        with nogil:
            for u in range(n_users):
                for f in range(k):
                    p0[u * kp + f] = P[u, f]
                for f in range(k, kp):
                    p0[u * kp + f] = 0
            for j in range(n_items):
                for f in range(k):
                    q0[j * kp + f] = Q[j, f]
                for f in range(k, kp):
                    q0[j * kp + f] = 0
            if n_threads <= 1:
                _nmf_sums_fused(p0, q0, &user_ptr[0], ui0, ur0, ub0, ib0, n_users, n_items,
                                mu, biased, sums, user_sse, kp)
            else:
                for u in prange(n_users, schedule="static", num_threads=n_threads):
                    user_sse[u] = _nmf_sums_row(q0, p0 + u * kp, &user_ptr[0], ui0, ur0, ub0,
                                                ib0, u, mu, biased, sums + 2 * u * kp,
                                                sums + (2 * u + 1) * kp, kp)
                for j in prange(n_items, schedule="static", num_threads=n_threads):
                    _nmf_sums_row(p0, q0 + j * kp, &item_ptr[0], iu0, ir0, ib0, ub0, j, mu,
                                  biased, sums + 2 * (n_users + j) * kp,
                                  sums + (2 * (n_users + j) + 1) * kp, kp)
            for u in prange(n_users, schedule="static", num_threads=max(n_threads, 1)):
                _nmf_apply(p0 + u * kp, sums + 2 * u * kp, sums + (2 * u + 1) * kp,
                           reg_u * <real_t>(user_ptr[u + 1] - user_ptr[u]), kp)
            for j in prange(n_items, schedule="static", num_threads=max(n_threads, 1)):
                _nmf_apply(q0 + j * kp, sums + 2 * (n_users + j) * kp,
                           sums + (2 * (n_users + j) + 1) * kp,
                           reg_i * <real_t>(item_ptr[j + 1] - item_ptr[j]), kp)
            for u in range(n_users):
                total += user_sse[u]
                for f in range(k):
                    P[u, f] = p0[u * kp + f]
            for j in range(n_items):
                for f in range(k):
                    Q[j, f] = q0[j * kp + f]
    finally:
        free(sums)
        free(user_sse)
        free(rows)
    return total


def nmf_predict(const real_t[:, ::1] P, const real_t[:, ::1] Q,
                const real_t[::1] user_bias, const real_t[::1] item_bias,
                const index_t[::1] users, const index_t[::1] items,
                double global_mean, bint biased, real_t[::1] out):
    """Fill ``out`` with p_uᵀ q_i (+ μ + b_u + b_i when biased) for index pairs.

    An index of ``-1`` (an id unseen in training) contributes neither factors
    nor a bias: the prediction is then ``global_mean`` (plus the known side's
    bias when biased) -- pass the global mean to fall back to it, as Surprise
    does.
    """
    cdef Py_ssize_t n = users.shape[0]
    cdef Py_ssize_t k = P.shape[1]
    cdef Py_ssize_t t, f
    cdef index_t u, i
    cdef double value, acc
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
                acc = 0.0
                for f in range(k):
                    acc += P[u, f] * Q[i, f]
                value += acc
            out[t] = <real_t>value


# ---------------------------------------------------------------------------
# Baseline
# ---------------------------------------------------------------------------

cdef double _baseline_block(real_t *user_bias, real_t *item_bias, const index_t *users,
                            const index_t *items, const real_t *ratings,
                            const int64_t *chunk_bounds, const int64_t *block_chunks,
                            const int64_t *visit_order, Py_ssize_t block, Py_ssize_t stride,
                            real_t mu, real_t lr, real_t reg) noexcept nogil:
    cdef Py_ssize_t j, c, start, n, m, t, step, pos
    cdef index_t u, i
    cdef real_t err, bu, bi
    cdef double sse = 0.0
    for j in range(block_chunks[block], block_chunks[block + 1]):
        c = visit_order[j]
        start = chunk_bounds[c]
        n = chunk_bounds[c + 1] - start
        if n <= 0:
            continue
        step = stride % n
        t = 0
        for m in range(n):
            pos = start + t
            u = users[pos]
            i = items[pos]
            bu = user_bias[u]
            bi = item_bias[i]
            err = ratings[pos] - (mu + bu + bi)
            user_bias[u] = bu + lr * (err - reg * bu)
            item_bias[i] = bi + lr * (err - reg * bi)
            sse += <double>err * <double>err
            t += step
            if t >= n:
                t -= n
    return sse


def baseline_sgd_epoch(real_t[::1] user_bias, real_t[::1] item_bias,
                       const index_t[::1] users, const index_t[::1] items,
                       const real_t[::1] ratings, const int64_t[::1] chunk_bounds,
                       const int64_t[::1] block_chunks, const int64_t[::1] visit_order,
                       const int64_t[::1] strata, Py_ssize_t stride, double global_mean,
                       double learning_rate, double regularization, int n_threads):
    """One SGD epoch of r̂ = μ + b_u + b_i in place; return the summed squared error.

    For every rating in the blocked order (as :func:`mfcy._sgd.sgd_epoch`),
    e = r - r̂, b_u += lr (e - reg b_u), b_i += lr (e - reg b_i), both from the
    values met on entry. The error sum is the one met before each update.
    ``n_threads`` does not change the result.
    """
    cdef Py_ssize_t n_blocks = strata.shape[0]
    cdef Py_ssize_t s, a, block
    cdef double total = 0.0
    cdef real_t mu = <real_t>global_mean
    cdef real_t lr = <real_t>learning_rate
    cdef real_t reg = <real_t>regularization
    cdef double *block_sse
    if MFCY_DEBUG_BUILD:
        _touch_bias(user_bias, users)
        _touch_bias(item_bias, items)
        _touch_ptr(chunk_bounds, ratings.shape[0])
    if ratings.shape[0] == 0:
        return 0.0
    block_sse = <double *>malloc(max(n_blocks, 1) * sizeof(double))
    if block_sse == NULL:
        raise MemoryError()
    try:
        with nogil:
            for s in range(n_blocks):
                if n_blocks == 1 or n_threads <= 1:
                    for a in range(n_blocks):
                        block = a * n_blocks + (a + strata[s]) % n_blocks
                        block_sse[a] = _baseline_block(&user_bias[0], &item_bias[0],
                                                       &users[0], &items[0], &ratings[0],
                                                       &chunk_bounds[0], &block_chunks[0],
                                                       &visit_order[0], block, stride, mu,
                                                       lr, reg)
                else:
                    for a in prange(n_blocks, schedule="dynamic", chunksize=1,
                                    num_threads=n_threads):
                        block = a * n_blocks + (a + strata[s]) % n_blocks
                        block_sse[a] = _baseline_block(&user_bias[0], &item_bias[0],
                                                       &users[0], &items[0], &ratings[0],
                                                       &chunk_bounds[0], &block_chunks[0],
                                                       &visit_order[0], block, stride, mu,
                                                       lr, reg)
                for a in range(n_blocks):
                    total += block_sse[a]
    finally:
        free(block_sse)
    return total


cdef double _als_row(real_t *bias, const real_t *other_bias, const int64_t *ptr,
                     const index_t *other, const real_t *ratings, Py_ssize_t row, double mu,
                     double reg, bint want_error) noexcept nogil:
    """b_row = Σ (r - μ - b_other) / (reg + n); the row's squared error after, if asked."""
    cdef Py_ssize_t t
    cdef double dev = 0.0, sse = 0.0, b, err
    for t in range(ptr[row], ptr[row + 1]):
        dev += (<double>ratings[t] - mu) - <double>other_bias[other[t]]
    bias[row] = <real_t>(dev / (reg + <double>(ptr[row + 1] - ptr[row])))
    if want_error:
        b = <double>bias[row]
        for t in range(ptr[row], ptr[row + 1]):
            err = <double>ratings[t] - (mu + b + <double>other_bias[other[t]])
            sse += err * err
    return sse


def baseline_als_epoch(real_t[::1] user_bias, real_t[::1] item_bias,
                       const int64_t[::1] user_ptr, const index_t[::1] user_items,
                       const real_t[::1] user_ratings, const int64_t[::1] item_ptr,
                       const index_t[::1] item_users, const real_t[::1] item_ratings,
                       double global_mean, double user_regularization,
                       double item_regularization, int n_threads):
    """One alternating-least-squares sweep of the baseline in place (Surprise's order).

    First every item, ``b_i = Σ_u (r_ui - μ - b_u) / (reg_i + |U_i|)``, then
    every user, ``b_u = Σ_i (r_ui - μ - b_i) / (reg_u + |I_u|)``; the sums run
    in double precision. Returns the summed squared error of the biases *after*
    the sweep (an exact step has no "error met before the update").
    ``n_threads`` does not change the result.
    """
    cdef Py_ssize_t n_users = user_bias.shape[0], n_items = item_bias.shape[0]
    cdef Py_ssize_t u, j
    cdef double *user_sse
    cdef double total = 0.0
    cdef real_t *ub0 = &user_bias[0] if n_users else NULL
    cdef real_t *ib0 = &item_bias[0] if n_items else NULL
    cdef const index_t *ui0 = &user_items[0] if user_items.shape[0] else NULL
    cdef const real_t *ur0 = &user_ratings[0] if user_ratings.shape[0] else NULL
    cdef const index_t *iu0 = &item_users[0] if item_users.shape[0] else NULL
    cdef const real_t *ir0 = &item_ratings[0] if item_ratings.shape[0] else NULL
    if MFCY_DEBUG_BUILD:
        _touch_ptr(user_ptr, user_items.shape[0])
        _touch_ptr(item_ptr, item_users.shape[0])
        _touch_bias(item_bias, user_items)
        _touch_bias(user_bias, item_users)
        if user_ptr.shape[0] != n_users + 1 or item_ptr.shape[0] != n_items + 1:
            raise IndexError("user_ptr / item_ptr must have n_users + 1 / n_items + 1 entries")
    if user_ratings.shape[0] == 0:
        return 0.0
    user_sse = <double *>malloc(max(n_users, 1) * sizeof(double))
    if user_sse == NULL:
        raise MemoryError()
    try:
        with nogil:
            for j in prange(n_items, schedule="static", num_threads=max(n_threads, 1)):
                _als_row(ib0, ub0, &item_ptr[0], iu0, ir0, j, global_mean,
                         item_regularization, False)
            for u in prange(n_users, schedule="static", num_threads=max(n_threads, 1)):
                user_sse[u] = _als_row(ub0, ib0, &user_ptr[0], ui0, ur0, u, global_mean,
                                       user_regularization, True)
            for u in range(n_users):
                total += user_sse[u]
    finally:
        free(user_sse)
    return total


def baseline_predict(const real_t[::1] user_bias, const real_t[::1] item_bias,
                     const index_t[::1] users, const index_t[::1] items,
                     double global_mean, real_t[::1] out):
    """Fill ``out`` with μ + b_u + b_i for index pairs (``-1``: unseen, no bias)."""
    cdef Py_ssize_t n = users.shape[0]
    cdef Py_ssize_t t
    cdef index_t u, i
    cdef double value
    with nogil:
        for t in range(n):
            u = users[t]
            i = items[t]
            value = global_mean
            if u >= 0:
                value += user_bias[u]
            if i >= 0:
                value += item_bias[i]
            out[t] = <real_t>value
