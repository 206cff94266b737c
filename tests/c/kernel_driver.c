/*
 * A C test driver of the kernel's entry points (mfcy/_sgd_kernel.h), without
 * Python: built natively or cross-compiled (ci/aarch64.sh runs it under
 * qemu-aarch64), fed problems on stdin by tests/c/check_driver.py, which
 * compares what it prints with the Python oracle of tests/test_kernel.py.
 *
 * Input, whitespace-separated, any number of cases:
 *   case REAL(f|d) INDEX(32|64) n_users n_items k n epochs step
 *        mu lr reg reg_bias biased sequential adagrad(0|1)
 *        isa(0 base|1 AVX2+FMA|2 AVX-512F, for every k; the best the CPU has up to it)
 *   users[n] items[n] ratings[n] P[n_users*k] Q[n_items*k] bu[n_users] bi[n_items]
 *   n_pairs pair_users[n_pairs] pair_items[n_pairs]
 * Output per case: "sse" and one sum per epoch, then P, Q, bu, bi after the
 * epochs, "g" and the adagrad accumulators (users', then items'; they start at
 * 1 and stay 1 with adagrad 0), "err" sse sae of the error pass, "pred" and the predictions, each
 * value printed with 17 significant digits.
 */
#include <stdio.h>
#include <stdlib.h>

#include "_sgd_kernel.h"

static void fail(const char *what) {
    fprintf(stderr, "kernel_driver: %s\n", what);
    exit(2);
}

static double read_double(void) {
    double x;
    if (scanf("%lf", &x) != 1) fail("bad or missing number");
    return x;
}

static long long read_int(void) {
    long long x;
    if (scanf("%lld", &x) != 1) fail("bad or missing integer");
    return x;
}

static void *checked_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) fail("out of memory");
    return p;
}

typedef struct {
    int real_bits, index_bits;
    ptrdiff_t n_users, n_items, k, n, epochs, step;
    mfcy_sgd_params hp;
    int best_isa;
} case_header;

/* One instantiation per real type: run_case_f, run_case_d. */
#define DRIVER_T float
#define DRIVER_S f
#include "driver_case.h"
#define DRIVER_T double
#define DRIVER_S d
#include "driver_case.h"

int main(void) {
    char word[16];
    int cases = 0, used[4] = {0, 0, 0, 0};
    while (scanf("%15s", word) == 1) {
        case_header h;
        char real;
        if (word[0] != 'c') fail("expected 'case'");
        if (scanf(" %c", &real) != 1) fail("expected f or d");
        h.real_bits = real == 'f' ? 32 : 64;
        h.index_bits = (int)read_int();
        h.n_users = (ptrdiff_t)read_int();
        h.n_items = (ptrdiff_t)read_int();
        h.k = (ptrdiff_t)read_int();
        h.n = (ptrdiff_t)read_int();
        h.epochs = (ptrdiff_t)read_int();
        h.step = (ptrdiff_t)read_int();
        h.hp.global_mean = read_double();
        h.hp.learning_rate = read_double();
        h.hp.regularization = read_double();
        h.hp.bias_regularization = read_double();
        h.hp.biased = (int)read_int();
        h.hp.sequential = (int)read_int();
        h.hp.adagrad = (int)read_int();
        h.hp.prefetch = 1;
        h.best_isa = (int)read_int();
        if (h.hp.biased == 0) h.hp.global_mean = 0.0;  /* as _sgd.pyx does */
        /* The AVX-512 copy for every k here, not only where fits use it. */
        mfcy_set_avx512_min_k(0);
        used[mfcy_select_isa(h.best_isa) & 3] = 1;
        if (h.real_bits == 32)
            run_case_f(&h);
        else
            run_case_d(&h);
        ++cases;
    }
    fprintf(stderr, "kernel_driver: %d cases, loops %s%s%s\n", cases,
            used[0] ? mfcy_base_path() : "", used[1] ? " avx2" : "", used[2] ? " avx512" : "");
    return cases > 0 ? 0 : 1;
}
