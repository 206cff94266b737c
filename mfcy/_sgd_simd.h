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

/*
 * The dot product p . q. A vectorized sum with one accumulator is a chain of
 * dependent adds (k/4 of them, 4 cycles each): at k = 100 that chain, not
 * memory, set the pace. Four independent vector accumulators (GCC/clang vector
 * extensions: SSE2 on x86-64, NEON on arm64, no -march needed) break it.
 */
#if defined(__GNUC__) || defined(__clang__)
typedef float mfcy_v4f __attribute__((vector_size(16)));
typedef double mfcy_v2d __attribute__((vector_size(16)));

#define MFCY_DEFINE_DOT(T, S, V, W)                                                   \
    static inline V mfcy_load_##S(const T *x) {                                       \
        V v;                                                                          \
        __builtin_memcpy(&v, x, sizeof v); /* unaligned load */                       \
        return v;                                                                     \
    }                                                                                 \
    static inline T mfcy_dot_##S(const T *MFCY_RESTRICT p, const T *MFCY_RESTRICT q,   \
                                 Py_ssize_t k) {                                       \
        if (k < 16 * (W)) { /* short rows: the chain is short, keep the plain loop */  \
            T acc = 0;                                                                 \
            MFCY_SIMD_SUM(acc)                                                         \
            for (Py_ssize_t f = 0; f < k; ++f) acc += p[f] * q[f];                     \
            return acc;                                                                \
        }                                                                              \
        V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                      \
        Py_ssize_t f = 0;                                                              \
        for (; f + 4 * (W) <= k; f += 4 * (W)) {                                       \
            a0 += mfcy_load_##S(p + f) * mfcy_load_##S(q + f);                          \
            a1 += mfcy_load_##S(p + f + (W)) * mfcy_load_##S(q + f + (W));              \
            a2 += mfcy_load_##S(p + f + 2 * (W)) * mfcy_load_##S(q + f + 2 * (W));      \
            a3 += mfcy_load_##S(p + f + 3 * (W)) * mfcy_load_##S(q + f + 3 * (W));      \
        }                                                                              \
        for (; f + 2 * (W) <= k; f += 2 * (W)) {                                       \
            a0 += mfcy_load_##S(p + f) * mfcy_load_##S(q + f);                          \
            a1 += mfcy_load_##S(p + f + (W)) * mfcy_load_##S(q + f + (W));              \
        }                                                                              \
        if (f + (W) <= k) {                                                            \
            a2 += mfcy_load_##S(p + f) * mfcy_load_##S(q + f);                          \
            f += (W);                                                                  \
        }                                                                              \
        T acc = mfcy_hsum_##S((a0 + a1) + (a2 + a3));                                   \
        for (; f < k; ++f) acc += p[f] * q[f];                                         \
        return acc;                                                                    \
    }

/* Horizontal sums: pairwise, with shuffles (what a hand-written SSE sum does). */
static inline float mfcy_hsum_f(mfcy_v4f v) {
    typedef int mfcy_v4i __attribute__((vector_size(16)));
    v += __builtin_shuffle(v, (mfcy_v4i){2, 3, 0, 1});
    v += __builtin_shuffle(v, (mfcy_v4i){1, 0, 3, 2});
    return v[0];
}
static inline double mfcy_hsum_d(mfcy_v2d v) { return v[0] + v[1]; }

MFCY_DEFINE_DOT(float, f, mfcy_v4f, 4)
MFCY_DEFINE_DOT(double, d, mfcy_v2d, 2)
#else
#define MFCY_DEFINE_DOT(T, S)                                                         \
    static inline T mfcy_dot_##S(const T *MFCY_RESTRICT p, const T *MFCY_RESTRICT q,   \
                                 Py_ssize_t k) {                                       \
        T acc = 0;                                                                     \
        MFCY_SIMD_SUM(acc)                                                             \
        for (Py_ssize_t f = 0; f < k; ++f) acc += p[f] * q[f];                         \
        return acc;                                                                    \
    }
MFCY_DEFINE_DOT(float, f)
MFCY_DEFINE_DOT(double, d)
#endif

#endif
