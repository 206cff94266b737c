/*
 * The C loops of the SGD kernel, included by _sgd.pyx (and by the C test
 * driver tests/c/kernel_driver.c, which runs them without Python).
 *
 * Why C and not Cython for the innermost loops:
 *
 * - gcc will not vectorize a floating-point dot product on its own (it may not
 *   reassociate the sum), and we refuse -ffast-math (it breaks isfinite) and
 *   -march=native (it breaks portability). `#pragma omp simd` (honoured by
 *   -fopenmp-simd, which needs no OpenMP runtime) and GCC/clang vector
 *   extensions give the vector code without either.
 * - Small factor counts are the common case and a loop whose trip count is a
 *   compile-time constant keeps both rows in registers: the loops over one
 *   chunk of ratings are always-inline functions taking k last, called with
 *   k = 8, 16, 32, 64 and 100 (the default) as constants next to the
 *   general-k call (benchmarks/README.md has the measurements).
 *
 * Layout (the style of numpy's .c.src templates, with real line numbers):
 *
 *   _sgd_kernel.h   configuration, the hyperparameter struct, the vector
 *                   types, the instantiations and the run-time ISA choice;
 *   _sgd_real.h     per (real type, ISA): dot product and update steps;
 *   _sgd_range.h    per (real type, index type, ISA): the loops over a chunk
 *                   (SGD, error pass, predictions) and their k-dispatch.
 *
 * Each template file is #included once per instantiation with macros naming
 * only the types, the ISA and its function attribute. Copies of the loops:
 *
 *   base    the compiler's baseline vectors: SSE2 on x86-64, NEON on aarch64
 *           (16-byte GCC/clang vector extensions). No aarch64-specific copy:
 *           NEON is the aarch64 baseline and its FMA is too, so gcc and clang
 *           already compile this copy to ldr q / fmla v.4s (ci/c_kernel.sh
 *           checks the NEON instructions are there); a copy with intrinsics
 *           would issue the same instructions. Wider SVE vectors differ between
 *           CPUs and no aarch64 machine was available to time one;
 *   avx2    x86 only: 32-byte vectors compiled with target("avx2,fma"),
 *           chosen once at import by asking the CPU. The choice is per chunk
 *           of ratings, never per rating, so the dispatch costs nothing. FMA
 *           rounds once where the baseline rounds twice: factors agree between
 *           the two copies to rounding, and are bit-identical for any thread
 *           count on one machine. MFCY_ISA=baseline (read by _sgd.pyx) forces
 *           the baseline, MFCY_ISA=avx2 this copy;
 *   avx512  x86 only: 64-byte vectors compiled with target("avx512f,avx2,fma"),
 *           chosen at import (MFCY_ISA=avx512 forces it) on CPUs with AVX-512F,
 *           and then run for k >= mfcy_avx512_min_k only (below it the avx2
 *           copy runs: benchmarks/README.md, the kernel table). Its sums run in
 *           16/8 lanes: factors agree with the avx2 copy's to rounding;
 *   portable        (MFCY_PORTABLE=1, or a compiler without GNU extensions such
 *           as MSVC): the same arithmetic as `base` on plain arrays, so on
 *           x86-64 its results are bit-identical to the SSE2 baseline.
 *
 * Adding a copy: one instantiation block below, its vector type, and one
 * line in mfcy_select_isa / MFCY_CHOOSE (as the avx512 copy was added).
 *
 * Every function trusts its arguments; _sgd.pyx and the Python layer check them.
 */
#ifndef MFCY_SGD_KERNEL_H
#define MFCY_SGD_KERNEL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
#ifndef MFCY_PORTABLE
#define MFCY_PORTABLE 0
#endif

/* Rows of P and Q are fetched this many ratings ahead when they do not sit in
 * the caches anyway (the SGD loop then waits on memory, not on arithmetic). */
#define MFCY_PREFETCH_DISTANCE 8
#define MFCY_CACHE_LINE 64

/* The constant schedule's loop for a compile-time k does two ratings at a time
 * (mfcy_constant_loop) where that measured faster: each copy's MFCY_PAIRS_PAY
 * below (benchmarks/README.md, the kernel table). Both ways give the same
 * factors bit for bit. -1: that choice; 0 / 1: never / always (benchmarks set
 * it through mfcy_set_pairs_mode; not while a fit runs). */
static int mfcy_pairs_mode = -1;

/* GNU C (gcc, clang): vector extensions, always_inline, prefetch, target(). */
#if (defined(__GNUC__) || defined(__clang__)) && !MFCY_PORTABLE
#define MFCY_GNU_VECTORS 1
#else
#define MFCY_GNU_VECTORS 0
#endif

#if MFCY_GNU_VECTORS
#define MFCY_RESTRICT __restrict__
#define MFCY_INLINE static inline __attribute__((always_inline))
/* rw=1: we are about to write the row; locality 3: keep it in every cache. */
#define mfcy_prefetch(addr) __builtin_prefetch((const void *)(addr), 1, 3)
/* rw=0: a row the loss pass only reads. */
#define mfcy_prefetch_read(addr) __builtin_prefetch((const void *)(addr), 0, 3)
#define MFCY_PRAGMA(x) _Pragma(#x)
#define MFCY_SIMD MFCY_PRAGMA(omp simd)
#else
#if defined(_MSC_VER)
#define MFCY_RESTRICT __restrict
#elif defined(__GNUC__) || defined(__clang__)
#define MFCY_RESTRICT __restrict__
#else
#define MFCY_RESTRICT
#endif
#define MFCY_INLINE static inline
#define mfcy_prefetch(addr) ((void)(addr))
#define mfcy_prefetch_read(addr) ((void)(addr))
#define MFCY_SIMD
#endif

/* A second, AVX2+FMA, and a third, AVX-512F, copy of the loops where the
 * compiler can make them (x86 only: the names of both copies, and their flags,
 * exist nowhere else; ci/c_kernel.sh checks the aarch64 binaries). */
#if MFCY_GNU_VECTORS && (defined(__x86_64__) || defined(__i386__))
#define MFCY_HAVE_AVX2_PATH 1
#define MFCY_AVX2 __attribute__((target("avx2,fma")))
#define MFCY_HAVE_AVX512_PATH 1
#define MFCY_AVX512 __attribute__((target("avx512f,avx2,fma")))
#else
#define MFCY_HAVE_AVX2_PATH 0
#define MFCY_HAVE_AVX512_PATH 0
#endif

/* The name of the copy compiled as `base` (what build_info() reports). */
#if !MFCY_GNU_VECTORS
#define MFCY_BASE_PATH "portable"
#elif defined(__x86_64__) || defined(__i386__)
#define MFCY_BASE_PATH "sse2"
#elif defined(__aarch64__) || defined(__ARM_NEON)
#define MFCY_BASE_PATH "neon"
#else
#define MFCY_BASE_PATH "vector16"
#endif

/* The hyperparameters of one call. Held in double whatever the real type:
 * each loop converts them to its type once, exactly as the caller used to. */
typedef struct mfcy_sgd_params {
    double global_mean;         /* 0 for an unbiased model */
    double learning_rate;
    double regularization;
    double bias_regularization;
    int biased;                 /* predict with mean and biases, update the biases */
    int sequential;             /* q moves with the new p (the sequential rule) */
    int prefetch;               /* prefetch the rows of coming ratings */
    int adagrad;                /* LIBMF's per-row AdaGrad (user_g, item_g) instead of lr */
} mfcy_sgd_params;

/* ------------------------------------------------------------------------ */
/* 16-byte (and, on x86, 32-byte) vectors.                                  */
/* ------------------------------------------------------------------------ */

#if MFCY_GNU_VECTORS
typedef float mfcy_v4f __attribute__((vector_size(16)));
typedef double mfcy_v2d __attribute__((vector_size(16)));

#define MFCY_VMUL(a, b) ((a) * (b))
#define MFCY_VADD(a, b) ((a) + (b))

/* Horizontal sums: pairwise, with shuffles (what a hand-written SSE sum does):
 * (v0 + v2) + (v1 + v3). */
MFCY_INLINE float mfcy_hsum_v4f(mfcy_v4f v) {
#if defined(__clang__)
    v += __builtin_shufflevector(v, v, 2, 3, 0, 1);
    v += __builtin_shufflevector(v, v, 1, 0, 3, 2);
#else
    typedef int mfcy_v4i __attribute__((vector_size(16)));
    v += __builtin_shuffle(v, (mfcy_v4i){2, 3, 0, 1});
    v += __builtin_shuffle(v, (mfcy_v4i){1, 0, 3, 2});
#endif
    return v[0];
}
MFCY_INLINE double mfcy_hsum_v2d(mfcy_v2d v) { return v[0] + v[1]; }

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
#endif

#if MFCY_HAVE_AVX512_PATH
typedef float mfcy_v16f __attribute__((vector_size(64)));
typedef double mfcy_v8d __attribute__((vector_size(64)));

/* The two halves added, then the AVX2 copy's sum of the 8 lanes. */
MFCY_AVX512 MFCY_INLINE float mfcy_hsum_v16f(mfcy_v16f v) {
    const mfcy_v8f lo = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
    const mfcy_v8f hi = {v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]};
    return mfcy_hsum_v8f(lo + hi);
}
MFCY_AVX512 MFCY_INLINE double mfcy_hsum_v8d(mfcy_v8d v) {
    const mfcy_v4d lo = {v[0], v[1], v[2], v[3]}, hi = {v[4], v[5], v[6], v[7]};
    return mfcy_hsum_v4d(lo + hi);
}

/* The same sums with the products t of a 4-value tail (k = 100 leaves 4 after
 * the whole vectors) added where the sum is 4 lanes wide (mfcy_dot's
 * MFCY_TAIL_VEC): no scalar adds in a row after the horizontal sum. */
MFCY_AVX512 MFCY_INLINE float mfcy_hsum_tail_v16f(mfcy_v16f v, mfcy_v4f t) {
    const mfcy_v8f lo = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
    const mfcy_v8f hi = {v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]};
    const mfcy_v8f s = lo + hi;
    const mfcy_v4f s_lo = {s[0], s[1], s[2], s[3]}, s_hi = {s[4], s[5], s[6], s[7]};
    return mfcy_hsum_v4f((s_lo + s_hi) + t);
}
MFCY_AVX512 MFCY_INLINE double mfcy_hsum_tail_v8d(mfcy_v8d v, mfcy_v4d t) {
    const mfcy_v4d lo = {v[0], v[1], v[2], v[3]}, hi = {v[4], v[5], v[6], v[7]};
    return mfcy_hsum_v4d((lo + hi) + t);
}
#endif

#else /* portable: the same lanes on plain arrays (any C99 compiler, MSVC) */
typedef struct { float v[4]; } mfcy_v4f;
typedef struct { double v[2]; } mfcy_v2d;

MFCY_INLINE mfcy_v4f mfcy_mul_v4f(mfcy_v4f a, mfcy_v4f b) {
    for (int l = 0; l < 4; ++l) a.v[l] *= b.v[l];
    return a;
}
MFCY_INLINE mfcy_v4f mfcy_add_v4f(mfcy_v4f a, mfcy_v4f b) {
    for (int l = 0; l < 4; ++l) a.v[l] += b.v[l];
    return a;
}
MFCY_INLINE mfcy_v2d mfcy_mul_v2d(mfcy_v2d a, mfcy_v2d b) {
    for (int l = 0; l < 2; ++l) a.v[l] *= b.v[l];
    return a;
}
MFCY_INLINE mfcy_v2d mfcy_add_v2d(mfcy_v2d a, mfcy_v2d b) {
    for (int l = 0; l < 2; ++l) a.v[l] += b.v[l];
    return a;
}
/* The same order as the vector sums above. */
MFCY_INLINE float mfcy_hsum_v4f(mfcy_v4f a) { return (a.v[0] + a.v[2]) + (a.v[1] + a.v[3]); }
MFCY_INLINE double mfcy_hsum_v2d(mfcy_v2d a) { return a.v[0] + a.v[1]; }
#endif

/* ------------------------------------------------------------------------ */
/* Instantiations: one block per (ISA, real type); _sgd_real.h includes    */
/* _sgd_range.h once per index type.                                        */
/* ------------------------------------------------------------------------ */

#define MFCY_CAT_(a, b) a##b
#define MFCY_CAT(a, b) MFCY_CAT_(a, b)
/* mfcy_dot_base_f, mfcy_sgd_avx2_di64, ... */
#define MFCY_REAL_NAME(x) MFCY_CAT(MFCY_CAT(MFCY_CAT(x, _), MFCY_ISA), MFCY_CAT(_, MFCY_S))
#define MFCY_RANGE_NAME(x) MFCY_CAT(MFCY_REAL_NAME(x), MFCY_SI)

/* base copy */
#define MFCY_ISA base
#define MFCY_ATTR
#define MFCY_T float
#define MFCY_PAIRS_PAY(k) 1
#define MFCY_S f
#define MFCY_VEC mfcy_v4f
#define MFCY_LANES 4
#define MFCY_HSUM mfcy_hsum_v4f
#if !MFCY_GNU_VECTORS
#define MFCY_VMUL(a, b) mfcy_mul_v4f(a, b)
#define MFCY_VADD(a, b) mfcy_add_v4f(a, b)
#endif
#include "_sgd_real.h"

#define MFCY_ISA base
#define MFCY_ATTR
#define MFCY_T double
#define MFCY_PAIRS_PAY(k) 1
#define MFCY_S d
#define MFCY_VEC mfcy_v2d
#define MFCY_LANES 2
#define MFCY_HSUM mfcy_hsum_v2d
#if !MFCY_GNU_VECTORS
#define MFCY_VMUL(a, b) mfcy_mul_v2d(a, b)
#define MFCY_VADD(a, b) mfcy_add_v2d(a, b)
#endif
#include "_sgd_real.h"

#if MFCY_HAVE_AVX2_PATH
#define MFCY_ISA avx2
#define MFCY_ATTR MFCY_AVX2
#define MFCY_T float
#define MFCY_PAIRS_PAY(k) ((k) != 64)
#define MFCY_S f
#define MFCY_VEC mfcy_v8f
#define MFCY_LANES 8
#define MFCY_HSUM mfcy_hsum_v8f
#include "_sgd_real.h"

#define MFCY_ISA avx2
#define MFCY_ATTR MFCY_AVX2
#define MFCY_T double
#define MFCY_PAIRS_PAY(k) 1
#define MFCY_S d
#define MFCY_VEC mfcy_v4d
#define MFCY_LANES 4
#define MFCY_HSUM mfcy_hsum_v4d
#include "_sgd_real.h"
#endif

#if MFCY_HAVE_AVX512_PATH
#define MFCY_ISA avx512
#define MFCY_ATTR MFCY_AVX512
#define MFCY_T float
#define MFCY_PAIRS_PAY(k) 1
#define MFCY_S f
#define MFCY_VEC mfcy_v16f
#define MFCY_LANES 16
#define MFCY_HSUM mfcy_hsum_v16f
#define MFCY_TAIL_VEC mfcy_v4f
#define MFCY_HSUM_TAIL mfcy_hsum_tail_v16f
#include "_sgd_real.h"

#define MFCY_ISA avx512
#define MFCY_ATTR MFCY_AVX512
#define MFCY_T double
#define MFCY_PAIRS_PAY(k) 1
#define MFCY_S d
#define MFCY_VEC mfcy_v8d
#define MFCY_LANES 8
#define MFCY_HSUM mfcy_hsum_v8d
#define MFCY_TAIL_VEC mfcy_v4d
#define MFCY_HSUM_TAIL mfcy_hsum_tail_v8d
#include "_sgd_real.h"
#endif

/* ------------------------------------------------------------------------ */
/* The entry points _sgd.pyx calls (per chunk of ratings), and the ISA.     */
/* ------------------------------------------------------------------------ */

/* The copy in use: MFCY_ISA_BASE, _AVX2 or _AVX512; set once by mfcy_select_isa(). */
#define MFCY_ISA_BASE 0
#define MFCY_ISA_AVX2 1
#define MFCY_ISA_AVX512 2
/* Where the AVX-512 copy starts to pay (benchmarks/README.md, the kernel table). */
#ifndef MFCY_AVX512_MIN_K
#define MFCY_AVX512_MIN_K 32
#endif
#if MFCY_HAVE_AVX2_PATH
/* Off x86 neither this level nor the x86 copies exist. */
static int mfcy_isa_level = MFCY_ISA_BASE;
#endif

#if MFCY_HAVE_AVX512_PATH
/* The AVX-512 copy runs for k >= this only; below, the AVX2 copy does (see
 * mfcy_set_avx512_min_k). The choice is per call (a chunk of ratings), by k. */
static ptrdiff_t mfcy_avx512_min_k = MFCY_AVX512_MIN_K;
#endif

#if MFCY_HAVE_AVX512_PATH
#define MFCY_CHOOSE(FN, SUFFIX, k)                                                  \
    (mfcy_isa_level == MFCY_ISA_AVX512 && (k) >= mfcy_avx512_min_k                  \
         ? mfcy_##FN##_avx512_##SUFFIX                                              \
         : mfcy_isa_level >= MFCY_ISA_AVX2 ? mfcy_##FN##_avx2_##SUFFIX              \
                                          : mfcy_##FN##_base_##SUFFIX)
#else
#define MFCY_CHOOSE(FN, SUFFIX, k) (mfcy_##FN##_base_##SUFFIX)
#endif

#define MFCY_DEFINE_ENTRY_POINTS(T, I, SUFFIX)                                                   \
    static inline double mfcy_sgd_range_##SUFFIX(T *P, T *Q, T *user_bias, T *item_bias,         \
                                          T *user_g, T *item_g, const I *users, const I *items,  \
                                          const T *ratings, ptrdiff_t k, ptrdiff_t start,        \
                                          ptrdiff_t n, ptrdiff_t step,                           \
                                          const mfcy_sgd_params *hp) {                           \
        return MFCY_CHOOSE(sgd, SUFFIX, k)(P, Q, user_bias, item_bias, user_g, item_g, users,      \
                                        items, ratings, k, start, n, step, hp);                  \
    }                                                                                            \
    static inline void mfcy_error_range_##SUFFIX(const T *P, const T *Q, const T *user_bias,            \
                                          const T *item_bias, const I *users, const I *items,    \
                                          const T *ratings, ptrdiff_t k, ptrdiff_t start,        \
                                          ptrdiff_t stop, const mfcy_sgd_params *hp,             \
                                          double *out) {                                         \
        MFCY_CHOOSE(err, SUFFIX, k)(P, Q, user_bias, item_bias, users, items, ratings, k, start,    \
                                 stop, hp, out);                                                 \
    }                                                                                            \
    static inline void mfcy_predict_range_##SUFFIX(const T *P, const T *Q, const T *user_bias,          \
                                            const T *item_bias, const I *users, const I *items,  \
                                            ptrdiff_t k, ptrdiff_t n, double global_mean,        \
                                            int biased, T *out) {                                \
        MFCY_CHOOSE(predict, SUFFIX, k)(P, Q, user_bias, item_bias, users, items, k, n,             \
                                     global_mean, biased, out);                                  \
    }

MFCY_DEFINE_ENTRY_POINTS(float, int32_t, fi32)
MFCY_DEFINE_ENTRY_POINTS(float, int64_t, fi64)
MFCY_DEFINE_ENTRY_POINTS(double, int32_t, di32)
MFCY_DEFINE_ENTRY_POINTS(double, int64_t, di64)

/* Whether this CPU (and OS) can run the AVX2+FMA copy. */
static inline int mfcy_cpu_has_avx2(void) {
#if MFCY_HAVE_AVX2_PATH
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* Whether it can run the AVX-512F copy (which also uses AVX2 and FMA). */
static inline int mfcy_cpu_has_avx512(void) {
#if MFCY_HAVE_AVX512_PATH
    __builtin_cpu_init();
    return mfcy_cpu_has_avx2() && __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

/* Use the best copy up to level `want` (MFCY_ISA_*) the CPU has; returns the
 * level now in use. */
static inline int mfcy_select_isa(int want) {
#if MFCY_HAVE_AVX2_PATH
    int level = MFCY_ISA_BASE;
    if (want >= MFCY_ISA_AVX2 && mfcy_cpu_has_avx2()) level = MFCY_ISA_AVX2;
    if (want >= MFCY_ISA_AVX512 && mfcy_cpu_has_avx512()) level = MFCY_ISA_AVX512;
    mfcy_isa_level = level;
    return level;
#else
    (void)want;
    return MFCY_ISA_BASE;
#endif
}

static inline int mfcy_isa_in_use(void) {
#if MFCY_HAVE_AVX2_PATH
    return mfcy_isa_level;
#else
    return MFCY_ISA_BASE;
#endif
}

/* The smallest k the AVX-512 copy runs for when selected; min_k >= 0 sets it
 * first (benchmarks time the copy at every k with 0). */
static inline long mfcy_set_avx512_min_k(long min_k) {
#if MFCY_HAVE_AVX512_PATH
    if (min_k >= 0) mfcy_avx512_min_k = (ptrdiff_t)min_k;
    return (long)mfcy_avx512_min_k;
#else
    (void)min_k;
    return MFCY_AVX512_MIN_K;
#endif
}

/* Sets mfcy_pairs_mode when mode >= -1; returns it. */
static inline int mfcy_set_pairs_mode(int mode) {
    if (mode >= -1) mfcy_pairs_mode = mode;
    return mfcy_pairs_mode;
}

static inline const char *mfcy_base_path(void) { return MFCY_BASE_PATH; }

/* The compiler that built this file, for build_info(). */
static inline const char *mfcy_compiler(void) {
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#elif defined(_MSC_VER)
#define MFCY_STR_(x) #x
#define MFCY_STR(x) MFCY_STR_(x)
    return "msvc " MFCY_STR(_MSC_VER);
#else
    return "unknown";
#endif
}

#endif
