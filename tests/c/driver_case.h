/* Template of kernel_driver.c: one case for the real type DRIVER_T. */
#define DCAT_(a, b) a##b
#define DCAT(a, b) DCAT_(a, b)
#define ENTRY(fn, bits) DCAT(DCAT(DCAT(fn, DRIVER_S), i), bits)

static void DCAT(print_, DRIVER_S)(const char *label, const DRIVER_T *x, ptrdiff_t n) {
    printf("%s", label);
    for (ptrdiff_t j = 0; j < n; ++j) printf(" %.17g", (double)x[j]);
    printf("\n");
}

static void DCAT(run_case_, DRIVER_S)(const case_header *h) {
    const ptrdiff_t n = h->n, k = h->k;
    int64_t *users64 = checked_malloc(sizeof(int64_t) * n), *items64 = checked_malloc(sizeof(int64_t) * n);
    int32_t *users32 = checked_malloc(sizeof(int32_t) * n), *items32 = checked_malloc(sizeof(int32_t) * n);
    DRIVER_T *ratings = checked_malloc(sizeof(DRIVER_T) * n);
    DRIVER_T *P = checked_malloc(sizeof(DRIVER_T) * h->n_users * k);
    DRIVER_T *Q = checked_malloc(sizeof(DRIVER_T) * h->n_items * k);
    DRIVER_T *bu = checked_malloc(sizeof(DRIVER_T) * h->n_users);
    DRIVER_T *bi = checked_malloc(sizeof(DRIVER_T) * h->n_items);
    DRIVER_T *g = checked_malloc(sizeof(DRIVER_T) * (h->n_users + h->n_items));
    for (ptrdiff_t t = 0; t < h->n_users + h->n_items; ++t) g[t] = 1;
    DRIVER_T *gu = h->hp.adagrad ? g : NULL, *gi = h->hp.adagrad ? g + h->n_users : NULL;
    for (ptrdiff_t t = 0; t < n; ++t) users32[t] = (int32_t)(users64[t] = read_int());
    for (ptrdiff_t t = 0; t < n; ++t) items32[t] = (int32_t)(items64[t] = read_int());
    for (ptrdiff_t t = 0; t < n; ++t) ratings[t] = (DRIVER_T)read_double();
    for (ptrdiff_t t = 0; t < h->n_users * k; ++t) P[t] = (DRIVER_T)read_double();
    for (ptrdiff_t t = 0; t < h->n_items * k; ++t) Q[t] = (DRIVER_T)read_double();
    for (ptrdiff_t t = 0; t < h->n_users; ++t) bu[t] = (DRIVER_T)read_double();
    for (ptrdiff_t t = 0; t < h->n_items; ++t) bi[t] = (DRIVER_T)read_double();
    const ptrdiff_t n_pairs = (ptrdiff_t)read_int();
    int64_t *pu64 = checked_malloc(sizeof(int64_t) * n_pairs), *pi64 = checked_malloc(sizeof(int64_t) * n_pairs);
    int32_t *pu32 = checked_malloc(sizeof(int32_t) * n_pairs), *pi32 = checked_malloc(sizeof(int32_t) * n_pairs);
    DRIVER_T *pred = checked_malloc(sizeof(DRIVER_T) * n_pairs);
    for (ptrdiff_t t = 0; t < n_pairs; ++t) pu32[t] = (int32_t)(pu64[t] = read_int());
    for (ptrdiff_t t = 0; t < n_pairs; ++t) pi32[t] = (int32_t)(pi64[t] = read_int());

    printf("sse");
    for (ptrdiff_t e = 0; e < h->epochs; ++e) {
        /* The whole problem is one chunk, walked as (j * step) % n. */
        const double sse = h->index_bits == 32
            ? ENTRY(mfcy_sgd_range_, 32)(P, Q, bu, bi, gu, gi, users32, items32, ratings, k, 0, n, h->step, &h->hp)
            : ENTRY(mfcy_sgd_range_, 64)(P, Q, bu, bi, gu, gi, users64, items64, ratings, k, 0, n, h->step, &h->hp);
        printf(" %.17g", sse);
    }
    printf("\n");
    DCAT(print_, DRIVER_S)("P", P, h->n_users * k);
    DCAT(print_, DRIVER_S)("Q", Q, h->n_items * k);
    DCAT(print_, DRIVER_S)("bu", bu, h->n_users);
    DCAT(print_, DRIVER_S)("bi", bi, h->n_items);
    DCAT(print_, DRIVER_S)("g", g, h->n_users + h->n_items);
    double sums[2];
    if (h->index_bits == 32) {
        ENTRY(mfcy_error_range_, 32)(P, Q, bu, bi, users32, items32, ratings, k, 0, n, &h->hp, sums);
        ENTRY(mfcy_predict_range_, 32)(P, Q, bu, bi, pu32, pi32, k, n_pairs, h->hp.global_mean, h->hp.biased, pred);
    } else {
        ENTRY(mfcy_error_range_, 64)(P, Q, bu, bi, users64, items64, ratings, k, 0, n, &h->hp, sums);
        ENTRY(mfcy_predict_range_, 64)(P, Q, bu, bi, pu64, pi64, k, n_pairs, h->hp.global_mean, h->hp.biased, pred);
    }
    printf("err %.17g %.17g\n", sums[0], sums[1]);
    DCAT(print_, DRIVER_S)("pred", pred, n_pairs);
    free(users64); free(items64); free(users32); free(items32); free(ratings);
    free(P); free(Q); free(bu); free(bi); free(g); free(pu64); free(pi64); free(pu32); free(pi32); free(pred);
}

#undef ENTRY
#undef DCAT
#undef DCAT_
#undef DRIVER_T
#undef DRIVER_S
