/*
 * Inner k-loops of the SGD kernel, kept in C so that `#pragma omp simd` can ask
 * for vector code. gcc will not vectorize a floating-point dot product on its
 * own (it may not reassociate the sum) and we refuse -ffast-math (it breaks
 * isfinite) and -march=native (it breaks portability). The pragma is honoured
 * by -fopenmp-simd, which needs no OpenMP runtime; without it the loops are
 * plain scalar C with the same results up to summation order.
 *
 * Everything is `static inline` so that gcc inlines it into the Cython loops.
 */
#ifndef MFCY_SGD_SIMD_H
#define MFCY_SGD_SIMD_H

#include <stddef.h>

/* Set by setup.py; the defaults describe a plain release build. */
#ifndef MFCY_HAVE_OPENMP
#define MFCY_HAVE_OPENMP 0
#endif
#ifndef MFCY_DEBUG_BUILD
#define MFCY_DEBUG_BUILD 0
#endif
#ifndef MFCY_SANITIZE
#define MFCY_SANITIZE ""
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MFCY_RESTRICT __restrict__
/* rw=1: we are about to write the row; locality 3: keep it in every cache. */
#define mfcy_prefetch(addr) __builtin_prefetch((const void *)(addr), 1, 3)
#else
#define MFCY_RESTRICT
#define mfcy_prefetch(addr) ((void)0)
#endif

#if defined(_OPENMP) || defined(__GNUC__) || defined(__clang__)
#define MFCY_PRAGMA(x) _Pragma(#x)
#define MFCY_SIMD MFCY_PRAGMA(omp simd)
#define MFCY_SIMD_SUM(v) MFCY_PRAGMA(omp simd reduction(+:v))
#else
#define MFCY_SIMD
#define MFCY_SIMD_SUM(v)
#endif

#define MFCY_DEFINE_KERNELS(T, S)                                                      \
    /* p . q over k factors. */                                                         \
    static inline T mfcy_dot_##S(const T *MFCY_RESTRICT p, const T *MFCY_RESTRICT q,    \
                                 Py_ssize_t k) {                                        \
        T acc = 0;                                                                      \
        MFCY_SIMD_SUM(acc)                                                              \
        for (Py_ssize_t f = 0; f < k; ++f) acc += p[f] * q[f];                          \
        return acc;                                                                     \
    }                                                                                   \
    /* Funk/Surprise rule: both rows move from their old values. */                     \
    static inline void mfcy_step_simultaneous_##S(T *MFCY_RESTRICT p, T *MFCY_RESTRICT q, \
                                                  T err, T lr, T reg, Py_ssize_t k) {   \
        MFCY_SIMD                                                                       \
        for (Py_ssize_t f = 0; f < k; ++f) {                                            \
            const T pf = p[f], qf = q[f];                                               \
            p[f] = pf + lr * (err * qf - reg * pf);                                     \
            q[f] = qf + lr * (err * pf - reg * qf);                                     \
        }                                                                               \
    }                                                                                   \
    /* The lesson's rule: p moves first, q then moves using the *new* p. Element f */   \
    /* of q only needs element f of p, so one fused loop is exactly the notebook's */   \
    /* two vector statements.                                                      */   \
    static inline void mfcy_step_sequential_##S(T *MFCY_RESTRICT p, T *MFCY_RESTRICT q,   \
                                                T err, T lr, T reg, Py_ssize_t k) {     \
        MFCY_SIMD                                                                       \
        for (Py_ssize_t f = 0; f < k; ++f) {                                            \
            const T pf = p[f] + lr * (err * q[f] - reg * p[f]);                         \
            p[f] = pf;                                                                  \
            q[f] = q[f] + lr * (err * pf - reg * q[f]);                                 \
        }                                                                               \
    }

MFCY_DEFINE_KERNELS(float, f)
MFCY_DEFINE_KERNELS(double, d)

#endif
