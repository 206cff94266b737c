/*
 * The k-loops of the SVD++, NMF and baseline kernels, in C, included by _models.pyx.
 *
 * Why C for these few lines: gcc and clang do not vectorize a floating-point
 * dot product on their own (they may not reassociate the sum), and mfcy refuses
 * -ffast-math (it breaks isfinite) and -march=native (it breaks portable
 * wheels). `#pragma omp simd`, honoured by -fopenmp-simd (no OpenMP runtime
 * needed) and by -fopenmp, gives the vector code without either. A compiler
 * without it builds the same loops unvectorized.
 *
 * The loops over ratings (the visiting order, the strata, the threads) are in
 * _models.pyx, except NMF's passes (at the end of this file, compiled twice);
 * each other function here updates or reads one row of k values, and
 * its arithmetic is written in the order of the Python oracle in
 * tests/test_models_kernel.py (only the dot products are reassociated by the
 * vector reduction, which the float64 tests allow to 1e-12).
 *
 * Every function trusts its arguments; _models.pyx and the Python layer check
 * them. Self-contained on purpose: nothing here depends on _sgd_kernel.h.
 */
#ifndef MFCY_MODELS_KERNEL_H
#define MFCY_MODELS_KERNEL_H

#include <stddef.h>

/* Set by setup.py; the defaults describe a plain release build. */
#ifndef MFCY_DEBUG_BUILD
#define MFCY_DEBUG_BUILD 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MFCYM_RESTRICT __restrict__
#define MFCYM_INLINE static inline __attribute__((always_inline))
#define MFCYM_PRAGMA(x) _Pragma(#x)
#else
#define MFCYM_RESTRICT
#define MFCYM_INLINE static inline
#define MFCYM_PRAGMA(x)
#endif

#define MFCYM_DEFINE(T, S)                                                             \
    /* sum_f a[f] * b[f] */                                                            \
    MFCYM_INLINE T mfcym_dot_##S(const T *MFCYM_RESTRICT a, const T *MFCYM_RESTRICT b, \
                                 ptrdiff_t k) {                                        \
        T acc = 0;                                                                     \
        MFCYM_PRAGMA(omp simd reduction(+ : acc))                                      \
        for (ptrdiff_t f = 0; f < k; ++f) acc += a[f] * b[f];                          \
        return acc;                                                                    \
    }                                                                                  \
                                                                                       \
    /* One SVD++ rating (see _models.pyx): z = p + s, err = r - (mu + bu + bi + q.z),  \
     * biases, then g += err q, p += lr (err q - reg p), q += lr (err z - reg q),     \
     * all with the values met on entry. Returns err. */                              \
    MFCYM_INLINE T mfcym_svdpp_step_##S(T *MFCYM_RESTRICT p, T *MFCYM_RESTRICT q,      \
                                        const T *MFCYM_RESTRICT s, T *MFCYM_RESTRICT g,\
                                        T *bu, T *bi, T r, T mu, T lr, T reg,          \
                                        T reg_bias, int biased, ptrdiff_t k) {         \
        T acc = 0;                                                                     \
        MFCYM_PRAGMA(omp simd reduction(+ : acc))                                      \
        for (ptrdiff_t f = 0; f < k; ++f) acc += q[f] * (p[f] + s[f]);                 \
        T err;                                                                         \
        if (biased) {                                                                  \
            const T b_u = *bu, b_i = *bi;                                              \
            err = r - (mu + b_u + b_i + acc);                                          \
            *bu = b_u + lr * (err - reg_bias * b_u);                                   \
            *bi = b_i + lr * (err - reg_bias * b_i);                                   \
        } else {                                                                       \
            err = r - acc;                                                             \
        }                                                                              \
        MFCYM_PRAGMA(omp simd)                                                         \
        for (ptrdiff_t f = 0; f < k; ++f) {                                            \
            const T pf = p[f], qf = q[f];                                              \
            g[f] += err * qf;                                                          \
            p[f] = pf + lr * (err * qf - reg * pf);                                    \
            q[f] = qf + lr * (err * (pf + s[f]) - reg * qf);                           \
        }                                                                              \
        return err;                                                                    \
    }                                                                                  \
                                                                                       \
    /* s += y */                                                                       \
    MFCYM_INLINE void mfcym_add_##S(T *MFCYM_RESTRICT s, const T *MFCYM_RESTRICT y,    \
                                    ptrdiff_t k) {                                     \
        MFCYM_PRAGMA(omp simd)                                                         \
        for (ptrdiff_t f = 0; f < k; ++f) s[f] += y[f];                                \
    }                                                                                  \
                                                                                       \
    /* s *= a */                                                                       \
    MFCYM_INLINE void mfcym_scale_##S(T *MFCYM_RESTRICT s, T a, ptrdiff_t k) {          \
        MFCYM_PRAGMA(omp simd)                                                         \
        for (ptrdiff_t f = 0; f < k; ++f) s[f] *= a;                                   \
    }                                                                                  \
                                                                                       \
    /* The SVD++ y step of one (user, item) pair: y = decay y + step g, where      \
     * decay = (1 - lr_y reg_y)^|N(u)| and step = lr_y |N(u)|^-1/2 (see _models.pyx). */ \
    MFCYM_INLINE void mfcym_y_step_##S(T *MFCYM_RESTRICT y, const T *MFCYM_RESTRICT g, \
                                       T decay, T step, ptrdiff_t k) {                 \
        MFCYM_PRAGMA(omp simd)                                                         \
        for (ptrdiff_t f = 0; f < k; ++f) y[f] = decay * y[f] + step * g[f];           \
    }                                                                                  \
                                                                                       \
    /* NMF sums of one rating: num += r x, den += est x. */                           \
    MFCYM_INLINE void mfcym_nmf_sums_##S(T *MFCYM_RESTRICT num, T *MFCYM_RESTRICT den, \
                                         const T *MFCYM_RESTRICT x, T r, T est,        \
                                         ptrdiff_t k) {                                \
        MFCYM_PRAGMA(omp simd)                                                         \
        for (ptrdiff_t f = 0; f < k; ++f) {                                            \
            num[f] += r * x[f];                                                        \
            den[f] += est * x[f];                                                      \
        }                                                                              \
    }                                                                                  \
                                                                                       \
    /* Both sides' NMF sums of one rating (u, i) in one loop, the fused pass:     \
     * num_u += r q_i, den_u += est q_i, num_i += r p_u, den_i += est_i p_u.        \
     * Element by element the arithmetic of two mfcym_nmf_sums calls. */           \
    MFCYM_INLINE void mfcym_nmf_sums2_##S(T *MFCYM_RESTRICT num_u, T *MFCYM_RESTRICT den_u, \
                                          T *MFCYM_RESTRICT num_i, T *MFCYM_RESTRICT den_i, \
                                          const T *MFCYM_RESTRICT p,                 \
                                          const T *MFCYM_RESTRICT q, T r, T est,     \
                                          T est_i, ptrdiff_t k) {                    \
        MFCYM_PRAGMA(omp simd)                                                         \
        for (ptrdiff_t f = 0; f < k; ++f) {                                            \
            const T pf = p[f], qf = q[f];                                              \
            num_u[f] += r * qf;                                                        \
            den_u[f] += est * qf;                                                      \
            num_i[f] += r * pf;                                                        \
            den_i[f] += est_i * pf;                                                    \
        }                                                                              \
    }                                                                                  \
                                                                                       \
    /* The multiplicative step x *= num / (den + reg_n x), where that denominator     \
     * is positive; a negative result (possible only with biases or negative          \
     * ratings) becomes 0, so a factor is never negative. */                          \
    MFCYM_INLINE void mfcym_nmf_apply_##S(T *MFCYM_RESTRICT x, const T *MFCYM_RESTRICT num, \
                                          const T *MFCYM_RESTRICT den, T reg_n,        \
                                          ptrdiff_t k) {                               \
        for (ptrdiff_t f = 0; f < k; ++f) {                                            \
            const T d = den[f] + reg_n * x[f];                                         \
            if (d > 0) {                                                               \
                const T v = x[f] * (num[f] / d);                                       \
                x[f] = v > 0 ? v : (T)0;                                               \
            }                                                                          \
        }                                                                              \
    }

MFCYM_DEFINE(float, f)
MFCYM_DEFINE(double, d)

/* ------------------------------------------------------------------------ */
/* NMF's passes over the ratings, whole, so that they can be compiled twice:  */
/* for the baseline ISA and, on x86 with gcc or clang, for AVX2+FMA, chosen   */
/* once at import (mfcym_set_nmf_level). The rows are padded to whole 8-value */
/* vectors by _models.nmf_epoch, and the common k are instantiated as         */
/* constants so the k-loops are straight vector code.                         */
/* Both passes use the same row functions (dot, sums), so the fused pass of   */
/* one thread and the per-row passes of several give the same bits on each   */
/* copy; the two copies agree to rounding (FMA rounds once).                  */
/* ------------------------------------------------------------------------ */

#include <stdint.h>
#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define MFCYM_HAVE_AVX2 1
#define MFCYM_AVX2_ATTR __attribute__((target("avx2,fma")))
#else
#define MFCYM_HAVE_AVX2 0
#endif

/* 0: the baseline copy; 1: the AVX2+FMA copy. */
static int mfcym_nmf_level = 0;

/* Ask for a level (0 or 1); returns the one this CPU and build can run. */
static int mfcym_set_nmf_level(int want) {
    mfcym_nmf_level = 0;
#if MFCYM_HAVE_AVX2
    if (want >= 1) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) mfcym_nmf_level = 1;
    }
#else
    (void)want;
#endif
    return mfcym_nmf_level;
}

static int mfcym_nmf_level_in_use(void) { return mfcym_nmf_level; }

#define MFCYM_NMF_BODIES(T, S, I, IS)                                                   \
    /* One row's sums (a user over its items, or an item over its users): num =      \
     * sum r y, den = sum est y over the row's ratings, y the other side's row.      \
     * Returns the row's summed squared error. */                                     \
    MFCYM_INLINE double mfcym_nmf_row_body_##S##IS(                                     \
        const T *X, const T *x, const int64_t *ptr, const I *other, const T *ratings,    \
        const T *own_bias, const T *other_bias, ptrdiff_t row, T mu, int biased, T *num, \
        T *den, ptrdiff_t k) {                                                          \
        double sse = 0.0;                                                               \
        for (ptrdiff_t f = 0; f < k; ++f) {                                             \
            num[f] = 0;                                                                 \
            den[f] = 0;                                                                 \
        }                                                                               \
        for (int64_t t = ptr[row]; t < ptr[row + 1]; ++t) {                             \
            const I o = other[t];                                                       \
            const T *y = X + (ptrdiff_t)o * k;                                          \
            T est = mfcym_dot_##S(x, y, k);                                             \
            if (biased) est = mu + own_bias[row] + other_bias[o] + est;                 \
            const T err = ratings[t] - est;                                             \
            sse += (double)err * (double)err;                                           \
            mfcym_nmf_sums_##S(num, den, y, ratings[t], est, k);                        \
        }                                                                               \
        return sse;                                                                     \
    }                                                                                   \
                                                                                        \
    /* Every user's and every item's sums in one pass over the users (one thread):  \
     * each rating's dot once, feeding both sides. Users go in increasing order, so  \
     * each item receives its users in increasing order, the order of the item CSR   \
     * the per-row pass walks: the same additions in the same order, the same bits   \
     * (the products of the dot commute exactly; the item's biased estimate keeps   \
     * that pass's order of additions). */                                            \
    MFCYM_INLINE void mfcym_nmf_fused_body_##S##IS(                                     \
        const T *P, const T *Q, const int64_t *user_ptr, const I *user_items,            \
        const T *user_ratings, const T *user_bias, const T *item_bias, ptrdiff_t n_users, \
        ptrdiff_t n_items, T mu, int biased, T *sums, double *user_sse, ptrdiff_t k) {   \
        T *item_sums = sums + 2 * n_users * k;                                          \
        memset(sums, 0, (size_t)(2 * (n_users + n_items) * k) * sizeof(T));             \
        for (ptrdiff_t u = 0; u < n_users; ++u) {                                       \
            const T *x = P + u * k;                                                     \
            T *num = sums + 2 * u * k;                                                  \
            double sse = 0.0;                                                           \
            for (int64_t t = user_ptr[u]; t < user_ptr[u + 1]; ++t) {                   \
                const I j = user_items[t];                                              \
                const T *y = Q + (ptrdiff_t)j * k;                                      \
                const T r = user_ratings[t];                                            \
                const T dot = mfcym_dot_##S(x, y, k);                                   \
                T est, est_item;                                                        \
                if (biased) {                                                           \
                    est = mu + user_bias[u] + item_bias[j] + dot;                       \
                    est_item = mu + item_bias[j] + user_bias[u] + dot;                  \
                } else {                                                                \
                    est = dot;                                                          \
                    est_item = dot;                                                     \
                }                                                                       \
                const T err = r - est;                                                  \
                sse += (double)err * (double)err;                                       \
                T *inum = item_sums + 2 * (ptrdiff_t)j * k;                             \
                mfcym_nmf_sums2_##S(num, num + k, inum, inum + k, x, y, r, est, est_item, k); \
            }                                                                           \
            user_sse[u] = sse;                                                          \
        }                                                                               \
    }

/* One compiled copy (ATTR: its target attribute) of both passes, with the
 * padded k of the usual factor counts as constants. */
#define MFCYM_NMF_COPY(T, S, I, IS, ATTR, ISA)                                          \
    ATTR static void mfcym_nmf_fused_##ISA##_##S##IS(                                   \
        const T *P, const T *Q, const int64_t *user_ptr, const I *user_items,            \
        const T *user_ratings, const T *user_bias, const T *item_bias, ptrdiff_t n_users, \
        ptrdiff_t n_items, T mu, int biased, T *sums, double *user_sse, ptrdiff_t k) {   \
        switch (k) {                                                                    \
        case 8:                                                                         \
            mfcym_nmf_fused_body_##S##IS(P, Q, user_ptr, user_items, user_ratings,       \
                                         user_bias, item_bias, n_users, n_items, mu,     \
                                         biased, sums, user_sse, 8);                     \
            break;                                                                      \
        case 16:                                                                        \
            mfcym_nmf_fused_body_##S##IS(P, Q, user_ptr, user_items, user_ratings,       \
                                         user_bias, item_bias, n_users, n_items, mu,     \
                                         biased, sums, user_sse, 16);                    \
            break;                                                                      \
        case 24:                                                                        \
            mfcym_nmf_fused_body_##S##IS(P, Q, user_ptr, user_items, user_ratings,       \
                                         user_bias, item_bias, n_users, n_items, mu,     \
                                         biased, sums, user_sse, 24);                    \
            break;                                                                      \
        case 32:                                                                        \
            mfcym_nmf_fused_body_##S##IS(P, Q, user_ptr, user_items, user_ratings,       \
                                         user_bias, item_bias, n_users, n_items, mu,     \
                                         biased, sums, user_sse, 32);                    \
            break;                                                                      \
        default:                                                                        \
            mfcym_nmf_fused_body_##S##IS(P, Q, user_ptr, user_items, user_ratings,       \
                                         user_bias, item_bias, n_users, n_items, mu,     \
                                         biased, sums, user_sse, k);                     \
        }                                                                               \
    }                                                                                   \
    ATTR static double mfcym_nmf_row_##ISA##_##S##IS(                                   \
        const T *X, const T *x, const int64_t *ptr, const I *other, const T *ratings,    \
        const T *own_bias, const T *other_bias, ptrdiff_t row, T mu, int biased, T *num, \
        T *den, ptrdiff_t k) {                                                          \
        switch (k) {                                                                    \
        case 8:                                                                         \
            return mfcym_nmf_row_body_##S##IS(X, x, ptr, other, ratings, own_bias,       \
                                              other_bias, row, mu, biased, num, den, 8); \
        case 16:                                                                        \
            return mfcym_nmf_row_body_##S##IS(X, x, ptr, other, ratings, own_bias,       \
                                              other_bias, row, mu, biased, num, den, 16);\
        case 24:                                                                        \
            return mfcym_nmf_row_body_##S##IS(X, x, ptr, other, ratings, own_bias,       \
                                              other_bias, row, mu, biased, num, den, 24);\
        case 32:                                                                        \
            return mfcym_nmf_row_body_##S##IS(X, x, ptr, other, ratings, own_bias,       \
                                              other_bias, row, mu, biased, num, den, 32);\
        default:                                                                        \
            return mfcym_nmf_row_body_##S##IS(X, x, ptr, other, ratings, own_bias,       \
                                              other_bias, row, mu, biased, num, den, k); \
        }                                                                               \
    }

#if MFCYM_HAVE_AVX2
#define MFCYM_NMF_PICK(FN, S, IS) \
    (mfcym_nmf_level ? mfcym_nmf_##FN##_avx2_##S##IS : mfcym_nmf_##FN##_base_##S##IS)
#else
#define MFCYM_NMF_PICK(FN, S, IS) (mfcym_nmf_##FN##_base_##S##IS)
#endif

/* The entry points _models.pyx calls: the copy of the level in use. */
#define MFCYM_NMF_ENTRY_POINTS(T, S, I, IS)                                             \
    static inline void mfcym_nmf_fused_##S##IS(                                         \
        const T *P, const T *Q, const int64_t *user_ptr, const I *user_items,            \
        const T *user_ratings, const T *user_bias, const T *item_bias, ptrdiff_t n_users, \
        ptrdiff_t n_items, T mu, int biased, T *sums, double *user_sse, ptrdiff_t k) {   \
        MFCYM_NMF_PICK(fused, S, IS)(P, Q, user_ptr, user_items, user_ratings, user_bias, \
                                     item_bias, n_users, n_items, mu, biased, sums,      \
                                     user_sse, k);                                       \
    }                                                                                   \
    static inline double mfcym_nmf_row_##S##IS(                                         \
        const T *X, const T *x, const int64_t *ptr, const I *other, const T *ratings,    \
        const T *own_bias, const T *other_bias, ptrdiff_t row, T mu, int biased, T *num, \
        T *den, ptrdiff_t k) {                                                          \
        return MFCYM_NMF_PICK(row, S, IS)(X, x, ptr, other, ratings, own_bias,           \
                                          other_bias, row, mu, biased, num, den, k);     \
    }

#define MFCYM_NMF_ALL(T, S, I, IS)                                                      \
    MFCYM_NMF_BODIES(T, S, I, IS)                                                       \
    MFCYM_NMF_COPY(T, S, I, IS, , base)                                                 \
    MFCYM_NMF_AVX2_COPY(T, S, I, IS)                                                    \
    MFCYM_NMF_ENTRY_POINTS(T, S, I, IS)

#if MFCYM_HAVE_AVX2
#define MFCYM_NMF_AVX2_COPY(T, S, I, IS) MFCYM_NMF_COPY(T, S, I, IS, MFCYM_AVX2_ATTR, avx2)
#else
#define MFCYM_NMF_AVX2_COPY(T, S, I, IS)
#endif

MFCYM_NMF_ALL(float, f, int32_t, i32)
MFCYM_NMF_ALL(float, f, int64_t, i64)
MFCYM_NMF_ALL(double, d, int32_t, i32)
MFCYM_NMF_ALL(double, d, int64_t, i64)

#endif
