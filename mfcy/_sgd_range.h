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
 * One rating of the "adagrad" schedule (LIBMF's per-row AdaGrad, Chin et al.,
 * PAKDD 2015): the row of user u steps with lr / sqrt(G_u), where G_u (one
 * scalar per row, 1 before the first update) accumulates the mean over the k
 * components of the squared gradient of that row; item rows alike. The rates
 * use G before this rating, which is then added to G. The biases step with
 * their row's rate and do not enter G. Returns the squared error.
 *
 * The gradients are g_p = err q - reg p and g_q = alpha p + beta q (alpha = err,
 * beta = -reg for the simultaneous rule; with the sequential one q sees the new
 * p = (1 - lr_u reg) p + lr_u err q). Their sums of squares come from the dot
 * products p.p, q.q and p.q of the rows before the step: the same vector code
 * as the prediction's dot, so every copy of the loops (portable included)
 * sums in the same order, and the step loop stays a plain elementwise loop.
 */
MFCY_ATTR MFCY_INLINE double MFCY_RANGE_NAME(mfcy_adagrad_update)(
    MFCY_T *MFCY_RESTRICT p, MFCY_T *MFCY_RESTRICT q, MFCY_T *bu, MFCY_T *bi, MFCY_T *gu,
    MFCY_T *gi, MFCY_T rating, MFCY_T mu, MFCY_T lr, MFCY_T reg, MFCY_T reg_bias,
    int sequential, const ptrdiff_t k) {
    const MFCY_T pq = DOT(p, q, k);
    const MFCY_T err = bu ? rating - (mu + *bu + *bi + pq) : rating - pq;
    const MFCY_T lr_u = lr / (MFCY_T)sqrt((double)*gu);
    const MFCY_T lr_i = lr / (MFCY_T)sqrt((double)*gi);
    if (bu) {
        const MFCY_T b_u = *bu, b_i = *bi;
        *bu = b_u + lr_u * (err - reg_bias * b_u);
        *bi = b_i + lr_i * (err - reg_bias * b_i);
    }
    const MFCY_T pp = DOT(p, p, k), qq = DOT(q, q, k);
    MFCY_T alpha = err, beta = -reg;
    if (sequential) {
        alpha = err * ((MFCY_T)1 - lr_u * reg);
        beta = err * (lr_u * err) - reg;
    }
    const MFCY_T sum_gp = err * err * qq - (MFCY_T)2 * err * reg * pq + reg * reg * pp;
    const MFCY_T sum_gq = alpha * alpha * pp + (MFCY_T)2 * alpha * beta * pq + beta * beta * qq;
    if (sequential) {
        MFCY_SIMD
        for (ptrdiff_t f = 0; f < k; ++f) {
            const MFCY_T pf = p[f] + lr_u * (err * q[f] - reg * p[f]);
            p[f] = pf;
            q[f] = q[f] + lr_i * (err * pf - reg * q[f]);
        }
    } else {
        MFCY_SIMD
        for (ptrdiff_t f = 0; f < k; ++f) {
            const MFCY_T pf = p[f], qf = q[f];
            p[f] = pf + lr_u * (err * qf - reg * pf);
            q[f] = qf + lr_i * (err * pf - reg * qf);
        }
    }
    /* A sum of squares rounded below 0 adds nothing. */
    *gu += (sum_gp > 0 ? sum_gp : (MFCY_T)0) / (MFCY_T)k;
    *gi += (sum_gq > 0 ? sum_gq : (MFCY_T)0) / (MFCY_T)k;
    return (double)err * (double)err;
}

/*
 * SGD over the positions start + t, t = (j * step) % n for j = 0 .. n - 1 (step
 * coprime to n: a permutation of the chunk without a gather; consecutive
 * updates hit different users while the chunk stays in L1). Returns the summed
 * squared error of the ratings as they were met. The order of every sum and
 * update is the one of the Python oracle in the tests.
 */
MFCY_ATTR MFCY_INLINE double MFCY_RANGE_NAME(mfcy_sgd_tpl)(
    MFCY_T *MFCY_RESTRICT P, MFCY_T *MFCY_RESTRICT Q, MFCY_T *user_bias, MFCY_T *item_bias,
    MFCY_T *user_g, MFCY_T *item_g, const MFCY_I *users, const MFCY_I *items,
    const MFCY_T *ratings, ptrdiff_t start, ptrdiff_t n, ptrdiff_t step,
    const mfcy_sgd_params *hp, const ptrdiff_t k) {
    if (n <= 0) return 0.0;
    const MFCY_T mu = (MFCY_T)hp->global_mean, lr = (MFCY_T)hp->learning_rate;
    const MFCY_T reg = (MFCY_T)hp->regularization, reg_bias = (MFCY_T)hp->bias_regularization;
    const int biased = hp->biased, sequential = hp->sequential, prefetch = hp->prefetch;
    const int adagrad = hp->adagrad;
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
        if (adagrad) {
            sse += MFCY_RANGE_NAME(mfcy_adagrad_update)(p, q, biased ? user_bias + u : NULL,
                                                        biased ? item_bias + i : NULL,
                                                        user_g + u, item_g + i, ratings[t], mu,
                                                        lr, reg, reg_bias, sequential, k);
        } else {
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
        }
        t += step;
        if (t >= n) t -= n;
        ahead += step;
        if (ahead >= n) ahead -= n;
    }
    return sse;
}

/*
 * The constant schedule. With `pairs`, two consecutive ratings of the walk
 * whose users differ and whose items differ are done together: both
 * predictions are read before either rating writes, so the two dot products
 * (the latency chain of an update) overlap. They touch disjoint rows and
 * biases, so every value is the one the one-by-one order gives, bit for bit;
 * a pair sharing a user or an item goes one by one. Whether pairs pay depends
 * on the copy and k (MFCY_PAIRS_PAY, mfcy_pairs_mode in _sgd_kernel.h).
 */
MFCY_ATTR MFCY_INLINE double MFCY_RANGE_NAME(mfcy_constant_loop)(
    MFCY_T *MFCY_RESTRICT P, MFCY_T *MFCY_RESTRICT Q, MFCY_T *user_bias, MFCY_T *item_bias,
    const MFCY_I *users, const MFCY_I *items, const MFCY_T *ratings, ptrdiff_t n,
    ptrdiff_t step, const mfcy_sgd_params *hp, const int biased, const int sequential,
    const int prefetch, const int pairs, const ptrdiff_t k) {
    const MFCY_T mu = (MFCY_T)hp->global_mean, lr = (MFCY_T)hp->learning_rate;
    const MFCY_T reg = (MFCY_T)hp->regularization, reg_bias = (MFCY_T)hp->bias_regularization;
    double sse = 0.0;
    ptrdiff_t t = 0, ahead = (MFCY_PREFETCH_DISTANCE * step) % n;
/* The prediction error of the rating at position T (biases read into BU, BI). */
#define MFCY_ERROR(T, P_, Q_, U, I, BU, BI)                                       \
    (biased ? ratings[T] - (mu + (BU = user_bias[U]) + (BI = item_bias[I]) + DOT(P_, Q_, k)) \
            : ratings[T] - DOT(P_, Q_, k))
#define MFCY_APPLY(P_, Q_, U, I, BU, BI, ERR)                                     \
    do {                                                                          \
        if (biased) {                                                             \
            user_bias[U] = BU + lr * (ERR - reg_bias * BU);                       \
            item_bias[I] = BI + lr * (ERR - reg_bias * BI);                       \
        }                                                                         \
        if (sequential)                                                           \
            MFCY_REAL_NAME(mfcy_step_sequential)(P_, Q_, ERR, lr, reg, k);        \
        else                                                                      \
            MFCY_REAL_NAME(mfcy_step_simultaneous)(P_, Q_, ERR, lr, reg, k);      \
        sse += (double)ERR * (double)ERR;                                         \
    } while (0)
#define MFCY_NEXT(X)   \
    do {               \
        X += step;     \
        if (X >= n) X -= n; \
    } while (0)
    ptrdiff_t j = 0;
    while (j < n) {
        if (prefetch && j + MFCY_PREFETCH_DISTANCE < n) {
            mfcy_prefetch(P + (ptrdiff_t)users[ahead] * k);
            mfcy_prefetch(Q + (ptrdiff_t)items[ahead] * k);
        }
        const MFCY_I u = users[t], i = items[t];
        MFCY_T *p = P + (ptrdiff_t)u * k, *q = Q + (ptrdiff_t)i * k;
        MFCY_T bu = 0, bi = 0;
        ptrdiff_t t1 = t;
        MFCY_NEXT(t1);
        if (pairs && j + 1 < n && users[t1] != u && items[t1] != i) {
            if (prefetch) {
                MFCY_NEXT(ahead);
                if (j + 1 + MFCY_PREFETCH_DISTANCE < n) {
                    mfcy_prefetch(P + (ptrdiff_t)users[ahead] * k);
                    mfcy_prefetch(Q + (ptrdiff_t)items[ahead] * k);
                }
            }
            const MFCY_I u1 = users[t1], i1 = items[t1];
            MFCY_T *p1 = P + (ptrdiff_t)u1 * k, *q1 = Q + (ptrdiff_t)i1 * k;
            MFCY_T bu1 = 0, bi1 = 0;
            const MFCY_T err = MFCY_ERROR(t, p, q, u, i, bu, bi);
            const MFCY_T err1 = MFCY_ERROR(t1, p1, q1, u1, i1, bu1, bi1);
            MFCY_APPLY(p, q, u, i, bu, bi, err);
            MFCY_APPLY(p1, q1, u1, i1, bu1, bi1, err1);
            t = t1;
            ++j;
        } else {
            const MFCY_T err = MFCY_ERROR(t, p, q, u, i, bu, bi);
            MFCY_APPLY(p, q, u, i, bu, bi, err);
        }
        MFCY_NEXT(t);
        if (prefetch) MFCY_NEXT(ahead);
        ++j;
    }
#undef MFCY_ERROR
#undef MFCY_APPLY
#undef MFCY_NEXT
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
    MFCY_T *P, MFCY_T *Q, MFCY_T *user_bias, MFCY_T *item_bias, MFCY_T *user_g,
    MFCY_T *item_g, const MFCY_I *users, const MFCY_I *items, const MFCY_T *ratings,
    ptrdiff_t k, ptrdiff_t start, ptrdiff_t n, ptrdiff_t step, const mfcy_sgd_params *hp) {
    if (!hp->adagrad && n > 0) {
        /* k known at compile time: the constant schedule's own loop, its rule's
         * flags as constants (the general loop tests them per rating). */
        const int biased = hp->biased, sequential = hp->sequential, prefetch = hp->prefetch;
        const int pairs = mfcy_pairs_mode >= 0 ? mfcy_pairs_mode : MFCY_PAIRS_PAY(k);
        step %= n;
#define MFCY_FIXED(K)                                                                         \
    (biased ? (sequential ? MFCY_CONSTANT_LOOP(1, 1, K) : MFCY_CONSTANT_LOOP(1, 0, K))      \
            : (sequential ? MFCY_CONSTANT_LOOP(0, 1, K) : MFCY_CONSTANT_LOOP(0, 0, K)))
#define MFCY_CONSTANT_LOOP(B, S, K)                                                           \
    MFCY_RANGE_NAME(mfcy_constant_loop)(P, Q, user_bias, item_bias, users + start,            \
                                        items + start, ratings + start, n, step, hp, B, S,    \
                                        prefetch, pairs, K)
        switch (k) {
        case 8: return MFCY_FIXED(8);
        case 16: return MFCY_FIXED(16);
        case 32: return MFCY_FIXED(32);
        case 64: return MFCY_FIXED(64);
        case 100: return MFCY_FIXED(100);
        default: break;
        }
#undef MFCY_CONSTANT_LOOP
#undef MFCY_FIXED
    }
    MFCY_SWITCH_K(return, MFCY_RANGE_NAME(mfcy_sgd_tpl), k, P, Q, user_bias, item_bias, user_g,
                  item_g, users, items, ratings, start, n, step, hp)
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
