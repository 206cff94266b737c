/*
 * The loops of the SGD kernel, in C, included by _sgd.pyx.
 *
 * Why C and not Cython for the innermost loops:
 *
 * - gcc will not vectorize a floating-point dot product on its own (it may not
 *   reassociate the sum), and we refuse -ffast-math (it breaks isfinite) and
 *   -march=native (it breaks portability). `#pragma omp simd` (honoured by
 *   -fopenmp-simd, which needs no OpenMP runtime) and GCC vector extensions
 *   give the vector code without either.
 * - Small factor counts are the common case and a loop whose trip count is a
 *   compile-time constant keeps both rows in registers: the loop over one chunk
 *   of ratings is written once, as an always-inline "template", and
 *   instantiated for k = 8, 16, 32, 64 and 100 (the default) next to the
 *   general-k version (measured on ML-1M, k = 8: 6.2 -> 5.3 ms per epoch).
 * - The same template is compiled twice: for the x86-64 baseline (SSE2, what
 *   the wheel targets) and for AVX2 with FMA, chosen once at import by asking
 *   the CPU (ML-1M, k = 8: 5.3 -> 4.3 ms; k = 32: 14 -> 10 ms). The choice is
 *   per chunk of ratings, never per rating, so the dispatch costs nothing.
 *   FMA rounds once where the baseline rounds twice: factors agree between the
 *   two paths to rounding, and are bit-identical for any thread count on one
 *   machine. MFCY_ISA=baseline (read by _sgd.pyx) forces the baseline.
 *
 * Every function trusts its arguments; _sgd.pyx and the Python layer check them.
 */
#ifndef MFCY_SGD_KERNEL_H
#define MFCY_SGD_KERNEL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

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

/* Rows of P and Q are fetched this many ratings ahead when they do not sit in
 * the caches anyway (the SGD loop then waits on memory, not on arithmetic). */
#define MFCY_PREFETCH_DISTANCE 8
#define MFCY_CACHE_LINE 64

#if defined(__GNUC__) || defined(__clang__)
#define MFCY_RESTRICT __restrict__
#define MFCY_INLINE static inline __attribute__((always_inline))
/* rw=1: we are about to write the row; locality 3: keep it in every cache. */
#define mfcy_prefetch(addr) __builtin_prefetch((const void *)(addr), 1, 3)
/* rw=0: a row the loss pass only reads. */
#define mfcy_prefetch_read(addr) __builtin_prefetch((const void *)(addr), 0, 3)
#define MFCY_PRAGMA(x) _Pragma(#x)
#define MFCY_SIMD MFCY_PRAGMA(omp simd)
#else
#define MFCY_RESTRICT
#define MFCY_INLINE static inline
#define mfcy_prefetch(addr) ((void)0)
#define mfcy_prefetch_read(addr) ((void)0)
#define MFCY_SIMD
#endif

/* A second, AVX2+FMA, copy of the loops where the compiler can make one. */
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define MFCY_HAVE_AVX2_PATH 1
#define MFCY_AVX2 __attribute__((target("avx2,fma")))
#else
#define MFCY_HAVE_AVX2_PATH 0
#endif

/* ------------------------------------------------------------------------ */
/* The k-loops.                                                             */
/* ------------------------------------------------------------------------ */

#define MFCY_DEFINE_STEPS(T, S)                                                        \
    /* Funk/Surprise rule: both rows move from their old values. */                     \
    MFCY_INLINE void mfcy_step_simultaneous_##S(T *MFCY_RESTRICT p, T *MFCY_RESTRICT q,  \
                                                T err, T lr, T reg, Py_ssize_t k) {     \
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
    MFCY_INLINE void mfcy_step_sequential_##S(T *MFCY_RESTRICT p, T *MFCY_RESTRICT q,    \
                                              T err, T lr, T reg, Py_ssize_t k) {       \
        MFCY_SIMD                                                                       \
        for (Py_ssize_t f = 0; f < k; ++f) {                                            \
            const T pf = p[f] + lr * (err * q[f] - reg * p[f]);                         \
            p[f] = pf;                                                                  \
            q[f] = q[f] + lr * (err * pf - reg * q[f]);                                 \
        }                                                                               \
    }                                                                                   \
    MFCY_INLINE void mfcy_step_##S(T *MFCY_RESTRICT p, T *MFCY_RESTRICT q, T err, T lr,   \
                                   T reg, Py_ssize_t k, int sequential) {               \
        if (sequential)                                                                 \
            mfcy_step_sequential_##S(p, q, err, lr, reg, k);                            \
        else                                                                            \
            mfcy_step_simultaneous_##S(p, q, err, lr, reg, k);                          \
    }

MFCY_DEFINE_STEPS(float, f)
MFCY_DEFINE_STEPS(double, d)

/*
 * The dot product p . q, in vectors of W lanes with a tree of accumulators:
 * one accumulator would be a chain of dependent adds (k/W of them, 4 cycles
 * each), which at k = 100 set the pace, and a reduction left to the compiler
 * ends in W scalar adds in a row, which at k = 8 did. So: up to four
 * independent vector accumulators (GCC/clang vector extensions: SSE2 or AVX2,
 * no -march needed), added pairwise, then a horizontal sum by shuffles. With
 * k a compile-time constant (the specialised copies below) all of it unrolls
 * and the accumulators a short row does not need are never created.
 */
#define MFCY_DEFINE_DOT(NAME, T, V, W, HSUM, ATTR)                                    \
    ATTR MFCY_INLINE V NAME##_load(const T *x) {                                      \
        V v;                                                                          \
        __builtin_memcpy(&v, x, sizeof v); /* unaligned load */                       \
        return v;                                                                     \
    }                                                                                 \
    ATTR MFCY_INLINE T NAME(const T *MFCY_RESTRICT p, const T *MFCY_RESTRICT q,        \
                            Py_ssize_t k) {                                            \
        if (k < (W)) {                                                                 \
            T acc = 0;                                                                 \
            for (Py_ssize_t f = 0; f < k; ++f) acc += p[f] * q[f];                     \
            return acc;                                                                \
        }                                                                              \
        V a0 = NAME##_load(p) * NAME##_load(q);                                        \
        Py_ssize_t f = (W);                                                            \
        if (k >= 2 * (W)) {                                                            \
            V a1 = NAME##_load(p + (W)) * NAME##_load(q + (W));                        \
            f = 2 * (W);                                                               \
            if (k >= 4 * (W)) {                                                        \
                V a2 = NAME##_load(p + 2 * (W)) * NAME##_load(q + 2 * (W));            \
                V a3 = NAME##_load(p + 3 * (W)) * NAME##_load(q + 3 * (W));            \
                for (f = 4 * (W); f + 4 * (W) <= k; f += 4 * (W)) {                    \
                    a0 += NAME##_load(p + f) * NAME##_load(q + f);                     \
                    a1 += NAME##_load(p + f + (W)) * NAME##_load(q + f + (W));         \
                    a2 += NAME##_load(p + f + 2 * (W)) * NAME##_load(q + f + 2 * (W)); \
                    a3 += NAME##_load(p + f + 3 * (W)) * NAME##_load(q + f + 3 * (W)); \
                }                                                                      \
                a0 += a2;                                                              \
                a1 += a3;                                                              \
            }                                                                          \
            for (; f + 2 * (W) <= k; f += 2 * (W)) {                                   \
                a0 += NAME##_load(p + f) * NAME##_load(q + f);                         \
                a1 += NAME##_load(p + f + (W)) * NAME##_load(q + f + (W));             \
            }                                                                          \
            a0 += a1;                                                                  \
        }                                                                              \
        if (f + (W) <= k) {                                                            \
            a0 += NAME##_load(p + f) * NAME##_load(q + f);                             \
            f += (W);                                                                  \
        }                                                                              \
        T acc = HSUM(a0);                                                              \
        for (; f < k; ++f) acc += p[f] * q[f];                                         \
        return acc;                                                                    \
    }

#if defined(__GNUC__) || defined(__clang__)
typedef float mfcy_v4f __attribute__((vector_size(16)));
typedef double mfcy_v2d __attribute__((vector_size(16)));
typedef int mfcy_v4i __attribute__((vector_size(16)));

/* Horizontal sums: pairwise, with shuffles (what a hand-written SSE sum does). */
MFCY_INLINE float mfcy_hsum_v4f(mfcy_v4f v) {
    v += __builtin_shuffle(v, (mfcy_v4i){2, 3, 0, 1});
    v += __builtin_shuffle(v, (mfcy_v4i){1, 0, 3, 2});
    return v[0];
}
MFCY_INLINE double mfcy_hsum_v2d(mfcy_v2d v) { return v[0] + v[1]; }

MFCY_DEFINE_DOT(mfcy_dot_f, float, mfcy_v4f, 4, mfcy_hsum_v4f, )
MFCY_DEFINE_DOT(mfcy_dot_d, double, mfcy_v2d, 2, mfcy_hsum_v2d, )

#if MFCY_HAVE_AVX2_PATH
typedef float mfcy_v8f __attribute__((vector_size(32)));
typedef double mfcy_v4d __attribute__((vector_size(32)));

MFCY_AVX2 MFCY_INLINE float mfcy_hsum_v8f(mfcy_v8f v) {
    const mfcy_v4f lo = {v[0], v[1], v[2], v[3]}, hi = {v[4], v[5], v[6], v[7]};
    return mfcy_hsum_v4f(lo + hi);
}
MFCY_AVX2 MFCY_INLINE double mfcy_hsum_v4d(mfcy_v4d v) {
    return (v[0] + v[2]) + (v[1] + v[3]);
}
MFCY_DEFINE_DOT(mfcy_dot_avx2_f, float, mfcy_v8f, 8, mfcy_hsum_v8f, MFCY_AVX2)
MFCY_DEFINE_DOT(mfcy_dot_avx2_d, double, mfcy_v4d, 4, mfcy_hsum_v4d, MFCY_AVX2)
#endif

#else /* not GCC/clang: plain loops */
#define MFCY_DEFINE_PLAIN_DOT(NAME, T)                                                \
    MFCY_INLINE T NAME(const T *MFCY_RESTRICT p, const T *MFCY_RESTRICT q, Py_ssize_t k) { \
        T acc = 0;                                                                     \
        for (Py_ssize_t f = 0; f < k; ++f) acc += p[f] * q[f];                         \
        return acc;                                                                    \
    }
MFCY_DEFINE_PLAIN_DOT(mfcy_dot_f, float)
MFCY_DEFINE_PLAIN_DOT(mfcy_dot_d, double)
#endif

/* ------------------------------------------------------------------------ */
/* The loops over one chunk of ratings, as always-inline templates.         */
/* ------------------------------------------------------------------------ */

/*
 * SGD over the positions start + t, t = (j * step) % n for j = 0 .. n - 1 (step
 * coprime to n: a permutation of the chunk without a gather; consecutive
 * updates hit different users while the chunk stays in L1). Returns the summed
 * squared error of the ratings as they were met. The order of every sum and
 * update is the one of the Python oracle in the tests.
 */
#define MFCY_DEFINE_SGD_RANGE(NAME, T, S, I, DOT, ATTR)                                      \
    ATTR MFCY_INLINE double NAME(T *MFCY_RESTRICT P, T *MFCY_RESTRICT Q, T *user_bias,       \
                            T *item_bias, const I *users, const I *items,               \
                            const T *ratings, Py_ssize_t start, Py_ssize_t n,           \
                            Py_ssize_t step, T mu, T lr, T reg, T reg_bias, int biased, \
                            int sequential, int prefetch, const Py_ssize_t k) {         \
        if (n <= 0) return 0.0;                                                        \
        step %= n;                                                                     \
        double sse = 0.0;                                                              \
        Py_ssize_t t = 0, ahead = (MFCY_PREFETCH_DISTANCE * step) % n;                 \
        users += start;                                                                \
        items += start;                                                                \
        ratings += start;                                                              \
        for (Py_ssize_t j = 0; j < n; ++j) {                                           \
            if (prefetch && j + MFCY_PREFETCH_DISTANCE < n) {                          \
                mfcy_prefetch(P + (Py_ssize_t)users[ahead] * k);                       \
                mfcy_prefetch(Q + (Py_ssize_t)items[ahead] * k);                       \
            }                                                                          \
            const I u = users[t], i = items[t];                                        \
            T *p = P + (Py_ssize_t)u * k;                                              \
            T *q = Q + (Py_ssize_t)i * k;                                              \
            T err;                                                                     \
            if (biased) {                                                              \
                const T bu = user_bias[u], bi = item_bias[i];                          \
                err = ratings[t] - (mu + bu + bi + DOT(p, q, k));                      \
                user_bias[u] = bu + lr * (err - reg_bias * bu);                        \
                item_bias[i] = bi + lr * (err - reg_bias * bi);                        \
            } else {                                                                   \
                err = ratings[t] - DOT(p, q, k);                                       \
            }                                                                          \
            mfcy_step_##S(p, q, err, lr, reg, k, sequential);                          \
            sse += (double)err * (double)err;                                          \
            t += step;                                                                 \
            if (t >= n) t -= n;                                                        \
            ahead += step;                                                             \
            if (ahead >= n) ahead -= n;                                                \
        }                                                                              \
        return sse;                                                                    \
    }

/* Read-only pass: summed squared and absolute errors of positions [start, stop).
 * Ratings come sorted by user (the canonical order), so the loop runs user by
 * user: a user's factor row is loop-invariant over its ratings, and with k a
 * compile-time constant the compiler keeps it in registers instead of loading
 * it again for every rating (the pass is bound by loads). The sums are added
 * in the same order as a flat loop. */
#define MFCY_DEFINE_ERROR_RANGE(NAME, T, I, DOT, ATTR)                                       \
    ATTR MFCY_INLINE int NAME(const T *P, const T *Q, const T *user_bias,                    \
                         const T *item_bias, const I *users, const I *items,            \
                         const T *ratings, Py_ssize_t start, Py_ssize_t stop, T mu,     \
                         int biased, double *out, const Py_ssize_t k) {                 \
        double sse = 0.0, sae = 0.0;                                                   \
        Py_ssize_t t = start;                                                          \
        while (t < stop) {                                                             \
            const I u = users[t];                                                      \
            const T *p = P + (Py_ssize_t)u * k;                                        \
            const T base = biased ? mu + user_bias[u] : (T)0;                          \
            do {                                                                       \
                /* Items come in random order: fetch a coming item's whole row */      \
                /* (100 floats span 7 cache lines); the user's row is reused.  */      \
                if (t + MFCY_PREFETCH_DISTANCE < stop) {                               \
                    const char *ahead = (const char *)(Q + (Py_ssize_t)items[t + MFCY_PREFETCH_DISTANCE] * k); \
                    for (Py_ssize_t b = 0; b < k * (Py_ssize_t)sizeof(T); b += MFCY_CACHE_LINE) \
                        mfcy_prefetch_read(ahead + b);                                 \
                }                                                                      \
                const I i = items[t];                                                  \
                const T *q = Q + (Py_ssize_t)i * k;                                    \
                T err;                                                                 \
                if (biased)                                                            \
                    err = ratings[t] - (base + item_bias[i] + DOT(p, q, k));           \
                else                                                                   \
                    err = ratings[t] - DOT(p, q, k);                                   \
                sse += (double)err * (double)err;                                      \
                sae += fabs((double)err);                                              \
                ++t;                                                                   \
            } while (t < stop && users[t] == u);                                       \
        }                                                                              \
        out[0] = sse;                                                                  \
        out[1] = sae;                                                                  \
        return 0;                                                                      \
    }

/* ------------------------------------------------------------------------ */
/* Instances: k specialised, one copy per instruction set, and the dispatch. */
/* ------------------------------------------------------------------------ */

/* Call TPL(..., K) with K a constant for the factor counts worth a copy of
 * their own, with the run-time k otherwise. */
#define MFCY_SWITCH_K(TPL, k, ...)                                                    \
    switch (k) {                                                                       \
    case 8: return TPL(__VA_ARGS__, 8);                                                \
    case 16: return TPL(__VA_ARGS__, 16);                                              \
    case 32: return TPL(__VA_ARGS__, 32);                                              \
    case 64: return TPL(__VA_ARGS__, 64);                                              \
    case 100: return TPL(__VA_ARGS__, 100);                                            \
    default: return TPL(__VA_ARGS__, k);                                               \
    }

#define MFCY_SGD_PARAMS(T, I)                                                          \
    T *P, T *Q, T *user_bias, T *item_bias, const I *users, const I *items,            \
        const T *ratings, Py_ssize_t start, Py_ssize_t n, Py_ssize_t step, T mu, T lr, \
        T reg, T reg_bias, int biased, int sequential, int prefetch, Py_ssize_t k
#define MFCY_SGD_ARGS                                                                  \
    P, Q, user_bias, item_bias, users, items, ratings, start, n, step, mu, lr, reg,    \
        reg_bias, biased, sequential, prefetch
#define MFCY_ERR_PARAMS(T, I)                                                          \
    const T *P, const T *Q, const T *user_bias, const T *item_bias, const I *users,    \
        const I *items, const T *ratings, Py_ssize_t start, Py_ssize_t stop, T mu,     \
        int biased, double *out, Py_ssize_t k
#define MFCY_ERR_ARGS P, Q, user_bias, item_bias, users, items, ratings, start, stop, mu, biased, out

/* One instruction set's copy of both loops for one (real, index) type pair. */
#define MFCY_DEFINE_COPY(ISA, ATTR, T, S, I, SI, DOT)                                  \
    MFCY_DEFINE_SGD_RANGE(mfcy_sgd_tpl_##ISA##_##S##SI, T, S, I, DOT, ATTR)                  \
    MFCY_DEFINE_ERROR_RANGE(mfcy_err_tpl_##ISA##_##S##SI, T, I, DOT, ATTR)                   \
    ATTR static double mfcy_sgd_##ISA##_##S##SI(MFCY_SGD_PARAMS(T, I)) {               \
        MFCY_SWITCH_K(mfcy_sgd_tpl_##ISA##_##S##SI, k, MFCY_SGD_ARGS)                  \
    }                                                                                  \
    ATTR static int mfcy_err_##ISA##_##S##SI(MFCY_ERR_PARAMS(T, I)) {                  \
        MFCY_SWITCH_K(mfcy_err_tpl_##ISA##_##S##SI, k, MFCY_ERR_ARGS)                  \
    }

/* 1 when the AVX2+FMA copy runs; set once by mfcy_select_isa(). */
static int mfcy_use_avx2 = 0;

#if MFCY_HAVE_AVX2_PATH
#define MFCY_CHOOSE(S, SI, CALL_ARGS)                                                  \
    (mfcy_use_avx2 ? mfcy_##S##_avx2_##SI CALL_ARGS : mfcy_##S##_base_##SI CALL_ARGS)
#else
#define MFCY_CHOOSE(S, SI, CALL_ARGS) (mfcy_##S##_base_##SI CALL_ARGS)
#endif

/* The entry points _sgd.pyx calls (per chunk of ratings). */
#define MFCY_DEFINE_TYPE_PAIR(T, S, I, SI)                                             \
    MFCY_DEFINE_COPY(base, , T, S, I, SI, mfcy_dot_##S)                                \
    MFCY_DEFINE_AVX2_COPY(T, S, I, SI)                                                 \
    static double mfcy_sgd_range_##S##SI(MFCY_SGD_PARAMS(T, I)) {                      \
        return MFCY_CHOOSE(sgd, S##SI, (MFCY_SGD_ARGS, k));                            \
    }                                                                                  \
    static int mfcy_error_range_##S##SI(MFCY_ERR_PARAMS(T, I)) {                       \
        return MFCY_CHOOSE(err, S##SI, (MFCY_ERR_ARGS, k));                            \
    }

#if MFCY_HAVE_AVX2_PATH
#define MFCY_DEFINE_AVX2_COPY(T, S, I, SI) \
    MFCY_DEFINE_COPY(avx2, MFCY_AVX2, T, S, I, SI, mfcy_dot_avx2_##S)
#else
#define MFCY_DEFINE_AVX2_COPY(T, S, I, SI)
#endif

MFCY_DEFINE_TYPE_PAIR(float, f, int32_t, i32)
MFCY_DEFINE_TYPE_PAIR(float, f, int64_t, i64)
MFCY_DEFINE_TYPE_PAIR(double, d, int32_t, i32)
MFCY_DEFINE_TYPE_PAIR(double, d, int64_t, i64)

/* Whether this CPU (and OS) can run the AVX2+FMA copy. */
static int mfcy_cpu_has_avx2(void) {
#if MFCY_HAVE_AVX2_PATH
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* Use the AVX2+FMA copy if `want` and the CPU has it; returns what is in use. */
static int mfcy_select_isa(int want) {
    mfcy_use_avx2 = want && mfcy_cpu_has_avx2();
    return mfcy_use_avx2;
}

static int mfcy_isa_in_use(void) { return mfcy_use_avx2; }

#endif
