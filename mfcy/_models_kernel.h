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
 * _models.pyx; each function here updates or reads one row of k values, and
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

#endif
