/*
 * Template of _sgd_kernel.h: the loops over one chunk of ratings for one
 * (ISA, real type, index type). Included by _sgd_real.h, which defines the
 * ISA and the real type; expects MFCY_I / MFCY_SI (index type and its suffix)
 * and undefines them at the end.
 *
 * The *_tpl functions take k last: called with a constant k they unroll.
 */

#define DOT MFCY_REAL_NAME(mfcy_dot)

/*
 * SGD over the positions start + t, t = (j * step) % n for j = 0 .. n - 1 (step
 * coprime to n: a permutation of the chunk without a gather; consecutive
 * updates hit different users while the chunk stays in L1). Returns the summed
 * squared error of the ratings as they were met. The order of every sum and
 * update is the one of the Python oracle in the tests.
 */
MFCY_ATTR MFCY_INLINE double MFCY_RANGE_NAME(mfcy_sgd_tpl)(
    MFCY_T *MFCY_RESTRICT P, MFCY_T *MFCY_RESTRICT Q, MFCY_T *user_bias, MFCY_T *item_bias,
    const MFCY_I *users, const MFCY_I *items, const MFCY_T *ratings, ptrdiff_t start,
    ptrdiff_t n, ptrdiff_t step, const mfcy_sgd_params *hp, const ptrdiff_t k) {
    if (n <= 0) return 0.0;
    const MFCY_T mu = (MFCY_T)hp->global_mean, lr = (MFCY_T)hp->learning_rate;
    const MFCY_T reg = (MFCY_T)hp->regularization, reg_bias = (MFCY_T)hp->bias_regularization;
    const int biased = hp->biased, sequential = hp->sequential, prefetch = hp->prefetch;
    step %= n;
    double sse = 0.0;
    ptrdiff_t t = 0, ahead = (MFCY_PREFETCH_DISTANCE * step) % n;
    users += start;
    items += start;
    ratings += start;
    for (ptrdiff_t j = 0; j < n; ++j) {
        if (prefetch && j + MFCY_PREFETCH_DISTANCE < n) {
            mfcy_prefetch(P + (ptrdiff_t)users[ahead] * k);
            mfcy_prefetch(Q + (ptrdiff_t)items[ahead] * k);
        }
        const MFCY_I u = users[t], i = items[t];
        MFCY_T *p = P + (ptrdiff_t)u * k;
        MFCY_T *q = Q + (ptrdiff_t)i * k;
        MFCY_T err;
        if (biased) {
            const MFCY_T bu = user_bias[u], bi = item_bias[i];
            err = ratings[t] - (mu + bu + bi + DOT(p, q, k));
            user_bias[u] = bu + lr * (err - reg_bias * bu);
            item_bias[i] = bi + lr * (err - reg_bias * bi);
        } else {
            err = ratings[t] - DOT(p, q, k);
        }
        if (sequential)
            MFCY_REAL_NAME(mfcy_step_sequential)(p, q, err, lr, reg, k);
        else
            MFCY_REAL_NAME(mfcy_step_simultaneous)(p, q, err, lr, reg, k);
        sse += (double)err * (double)err;
        t += step;
        if (t >= n) t -= n;
        ahead += step;
        if (ahead >= n) ahead -= n;
    }
    return sse;
}

/* Read-only pass: summed squared and absolute errors of positions [start, stop)
 * into out[0], out[1]. Ratings come sorted by user (the canonical order), so
 * the loop runs user by user: a user's factor row is loop-invariant over its
 * ratings, and with k a compile-time constant the compiler keeps it in
 * registers instead of loading it again for every rating (the pass is bound by
 * loads). The sums are added in the same order as a flat loop. */
MFCY_ATTR MFCY_INLINE void MFCY_RANGE_NAME(mfcy_err_tpl)(
    const MFCY_T *P, const MFCY_T *Q, const MFCY_T *user_bias, const MFCY_T *item_bias,
    const MFCY_I *users, const MFCY_I *items, const MFCY_T *ratings, ptrdiff_t start,
    ptrdiff_t stop, const mfcy_sgd_params *hp, double *out, const ptrdiff_t k) {
    const MFCY_T mu = (MFCY_T)hp->global_mean;
    const int biased = hp->biased;
    double sse = 0.0, sae = 0.0;
    ptrdiff_t t = start;
    while (t < stop) {
        const MFCY_I u = users[t];
        const MFCY_T *p = P + (ptrdiff_t)u * k;
        const MFCY_T base = biased ? mu + user_bias[u] : (MFCY_T)0;
        do {
            /* Items come in random order: fetch a coming item's whole row
             * (100 floats span 7 cache lines); the user's row is reused. */
            if (t + MFCY_PREFETCH_DISTANCE < stop) {
                const char *next =
                    (const char *)(Q + (ptrdiff_t)items[t + MFCY_PREFETCH_DISTANCE] * k);
                for (ptrdiff_t b = 0; b < k * (ptrdiff_t)sizeof(MFCY_T); b += MFCY_CACHE_LINE)
                    mfcy_prefetch_read(next + b);
            }
            const MFCY_I i = items[t];
            const MFCY_T *q = Q + (ptrdiff_t)i * k;
            MFCY_T err;
            if (biased)
                err = ratings[t] - (base + item_bias[i] + DOT(p, q, k));
            else
                err = ratings[t] - DOT(p, q, k);
            sse += (double)err * (double)err;
            sae += fabs((double)err);
            ++t;
        } while (t < stop && users[t] == u);
    }
    out[0] = sse;
    out[1] = sae;
}

/* Predictions for n (user, item) index pairs. An index of -1 marks an id
 * unseen in training: it contributes neither factors nor a bias. The sum is
 * formed in double, then rounded to the real type once. */
MFCY_ATTR MFCY_INLINE void MFCY_RANGE_NAME(mfcy_predict_tpl)(
    const MFCY_T *P, const MFCY_T *Q, const MFCY_T *user_bias, const MFCY_T *item_bias,
    const MFCY_I *users, const MFCY_I *items, ptrdiff_t n, double global_mean, int biased,
    MFCY_T *out, const ptrdiff_t k) {
    for (ptrdiff_t t = 0; t < n; ++t) {
        const MFCY_I u = users[t], i = items[t];
        double value = global_mean;
        if (biased) {
            if (u >= 0) value += user_bias[u];
            if (i >= 0) value += item_bias[i];
        }
        if (u >= 0 && i >= 0) {
            if (!biased) value = 0.0;
            value += DOT(P + (ptrdiff_t)u * k, Q + (ptrdiff_t)i * k, k);
        }
        out[t] = (MFCY_T)value;
    }
}

/* Call TPL(..., K) with K a constant for the factor counts worth a copy of
 * their own, with the run-time k otherwise. */
#define MFCY_SWITCH_K(RET, TPL, k, ...)       \
    switch (k) {                              \
    case 8: RET TPL(__VA_ARGS__, 8); break;   \
    case 16: RET TPL(__VA_ARGS__, 16); break; \
    case 32: RET TPL(__VA_ARGS__, 32); break; \
    case 64: RET TPL(__VA_ARGS__, 64); break; \
    case 100: RET TPL(__VA_ARGS__, 100); break; \
    default: RET TPL(__VA_ARGS__, k); break;  \
    }

MFCY_ATTR static double MFCY_RANGE_NAME(mfcy_sgd)(
    MFCY_T *P, MFCY_T *Q, MFCY_T *user_bias, MFCY_T *item_bias, const MFCY_I *users,
    const MFCY_I *items, const MFCY_T *ratings, ptrdiff_t k, ptrdiff_t start, ptrdiff_t n,
    ptrdiff_t step, const mfcy_sgd_params *hp) {
    MFCY_SWITCH_K(return, MFCY_RANGE_NAME(mfcy_sgd_tpl), k, P, Q, user_bias, item_bias, users,
                  items, ratings, start, n, step, hp)
    return 0.0;
}

MFCY_ATTR static void MFCY_RANGE_NAME(mfcy_err)(
    const MFCY_T *P, const MFCY_T *Q, const MFCY_T *user_bias, const MFCY_T *item_bias,
    const MFCY_I *users, const MFCY_I *items, const MFCY_T *ratings, ptrdiff_t k,
    ptrdiff_t start, ptrdiff_t stop, const mfcy_sgd_params *hp, double *out) {
    MFCY_SWITCH_K(, MFCY_RANGE_NAME(mfcy_err_tpl), k, P, Q, user_bias, item_bias, users, items,
                  ratings, start, stop, hp, out)
}

MFCY_ATTR static void MFCY_RANGE_NAME(mfcy_predict)(
    const MFCY_T *P, const MFCY_T *Q, const MFCY_T *user_bias, const MFCY_T *item_bias,
    const MFCY_I *users, const MFCY_I *items, ptrdiff_t k, ptrdiff_t n, double global_mean,
    int biased, MFCY_T *out) {
    MFCY_SWITCH_K(, MFCY_RANGE_NAME(mfcy_predict_tpl), k, P, Q, user_bias, item_bias, users,
                  items, n, global_mean, biased, out)
}

#undef MFCY_SWITCH_K
#undef DOT
#undef MFCY_I
#undef MFCY_SI
