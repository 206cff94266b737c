/*
 * Template of _sgd_kernel.h: the dot product and the update steps for one
 * (ISA, real type), then the chunk loops once per index type (_sgd_range.h).
 *
 * Expects: MFCY_ISA (name), MFCY_ATTR (function attribute, may be empty),
 * MFCY_T / MFCY_S (real type and its letter), MFCY_VEC / MFCY_LANES (vector
 * type and its width), MFCY_HSUM (its horizontal sum), MFCY_VMUL / MFCY_VADD;
 * optionally MFCY_TAIL_VEC and MFCY_HSUM_TAIL (see mfcy_dot).
 * Undefines them all at the end, so the next instantiation starts clean.
 */

/* Unaligned load of one vector. */
MFCY_ATTR MFCY_INLINE MFCY_VEC MFCY_REAL_NAME(mfcy_load)(const MFCY_T *x) {
    MFCY_VEC v;
    memcpy(&v, x, sizeof v);
    return v;
}

/*
 * The dot product p . q, in vectors of MFCY_LANES lanes with a tree of
 * accumulators: one accumulator would be a chain of dependent adds (k/W of
 * them, 4 cycles each), which at k = 100 set the pace, and a reduction left to
 * the compiler ends in W scalar adds in a row, which at k = 8 did. So: up to
 * four independent vector accumulators, added pairwise, then a horizontal sum.
 * With k a compile-time constant (the specialised copies) all of it unrolls
 * and the accumulators a short row does not need are never created.
 * A copy that defines MFCY_TAIL_VEC (4 lanes, and MFCY_HSUM_TAIL) adds the
 * products of 4 leftover values inside its horizontal sum, where that is 4
 * lanes wide, instead of 4 scalar adds in a row after it (k = 100 in 16- and
 * 8-lane vectors leaves 4). Only the AVX-512F copy does: it rounds its own
 * way already, while the other copies keep the rounding of their pinned
 * digests (tests/test_bit_identity.py).
 */
MFCY_ATTR MFCY_INLINE MFCY_T MFCY_REAL_NAME(mfcy_dot)(const MFCY_T *MFCY_RESTRICT p,
                                                      const MFCY_T *MFCY_RESTRICT q,
                                                      ptrdiff_t k) {
#define W ((ptrdiff_t)MFCY_LANES)
#define LOAD MFCY_REAL_NAME(mfcy_load)
#define MULADD(acc, off) acc = MFCY_VADD(acc, MFCY_VMUL(LOAD(p + (off)), LOAD(q + (off))))
    if (k < W) {
        MFCY_T acc = 0;
        for (ptrdiff_t f = 0; f < k; ++f) acc += p[f] * q[f];
        return acc;
    }
    MFCY_VEC a0 = MFCY_VMUL(LOAD(p), LOAD(q));
    ptrdiff_t f = W;
    if (k >= 2 * W) {
        MFCY_VEC a1 = MFCY_VMUL(LOAD(p + W), LOAD(q + W));
        f = 2 * W;
        if (k >= 4 * W) {
            MFCY_VEC a2 = MFCY_VMUL(LOAD(p + 2 * W), LOAD(q + 2 * W));
            MFCY_VEC a3 = MFCY_VMUL(LOAD(p + 3 * W), LOAD(q + 3 * W));
            for (f = 4 * W; f + 4 * W <= k; f += 4 * W) {
                MULADD(a0, f);
                MULADD(a1, f + W);
                MULADD(a2, f + 2 * W);
                MULADD(a3, f + 3 * W);
            }
            a0 = MFCY_VADD(a0, a2);
            a1 = MFCY_VADD(a1, a3);
        }
        for (; f + 2 * W <= k; f += 2 * W) {
            MULADD(a0, f);
            MULADD(a1, f + W);
        }
        a0 = MFCY_VADD(a0, a1);
    }
    if (f + W <= k) {
        MULADD(a0, f);
        f += W;
    }
#ifdef MFCY_TAIL_VEC
    if (k - f >= 4) { /* 4: the lanes of MFCY_TAIL_VEC */
        MFCY_TAIL_VEC tp, tq;
        memcpy(&tp, p + f, sizeof tp);
        memcpy(&tq, q + f, sizeof tq);
        MFCY_T acc = MFCY_HSUM_TAIL(a0, tp * tq);
        for (f += 4; f < k; ++f) acc += p[f] * q[f];
        return acc;
    }
#endif
    MFCY_T acc = MFCY_HSUM(a0);
    for (; f < k; ++f) acc += p[f] * q[f];
    return acc;
#undef MULADD
#undef LOAD
#undef W
}

/* Funk/Surprise rule: both rows move from their old values. */
MFCY_ATTR MFCY_INLINE void MFCY_REAL_NAME(mfcy_step_simultaneous)(
    MFCY_T *MFCY_RESTRICT p, MFCY_T *MFCY_RESTRICT q, MFCY_T err, MFCY_T lr, MFCY_T reg,
    ptrdiff_t k) {
    MFCY_SIMD
    for (ptrdiff_t f = 0; f < k; ++f) {
        const MFCY_T pf = p[f], qf = q[f];
        p[f] = pf + lr * (err * qf - reg * pf);
        q[f] = qf + lr * (err * pf - reg * qf);
    }
}

/* The sequential rule: p moves first, q then moves using the *new* p. Element f
 * of q only needs element f of p, so one fused loop is exactly the notebook's
 * two vector statements. */
MFCY_ATTR MFCY_INLINE void MFCY_REAL_NAME(mfcy_step_sequential)(
    MFCY_T *MFCY_RESTRICT p, MFCY_T *MFCY_RESTRICT q, MFCY_T err, MFCY_T lr, MFCY_T reg,
    ptrdiff_t k) {
    MFCY_SIMD
    for (ptrdiff_t f = 0; f < k; ++f) {
        const MFCY_T pf = p[f] + lr * (err * q[f] - reg * p[f]);
        p[f] = pf;
        q[f] = q[f] + lr * (err * pf - reg * q[f]);
    }
}

#define MFCY_I int32_t
#define MFCY_SI i32
#include "_sgd_range.h"

#define MFCY_I int64_t
#define MFCY_SI i64
#include "_sgd_range.h"

#if !MFCY_GNU_VECTORS
#undef MFCY_VMUL
#undef MFCY_VADD
#endif
#undef MFCY_ISA
#undef MFCY_ATTR
#undef MFCY_T
#undef MFCY_S
#undef MFCY_VEC
#undef MFCY_LANES
#undef MFCY_HSUM
#undef MFCY_PAIRS_PAY
#undef MFCY_TAIL_VEC
#undef MFCY_HSUM_TAIL
