"""Two models fitted in two Python threads at once, against the same two fits in a row.

    python benchmarks/threads.py [--repeats 5] [--ratings 1000000]

Each fit uses one kernel thread (``n_threads=1``), so any speed-up comes from
the two Python threads running their kernels at the same time, which they can
only do because the kernel releases the GIL. Prints the median wall time of
both ways and the overlap: (sequential time) / (threaded time), 1.0 for none,
up to 2.0 on two free cores. The results of both ways are checked to be
bit-identical. Also prints the fraction of the threaded wall time during which
both fits were inside their epochs (from each fit's start and its history's
epoch durations).
"""

import argparse
import threading
import time

import numpy as np

from _common import cpu_description, median

from mfcy import MatrixFactorization


def make_problem(seed, n):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.integers(0, 50_000, n), rng.integers(0, 10_000, n)])
    return X, rng.normal(3.0, 1.0, n)


def fit(problem, seed):
    return MatrixFactorization(n_factors=32, n_epochs=20, n_threads=1, random_state=seed,
                               track_loss=False).fit(*problem)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ratings", type=int, default=1_000_000)
    args = parser.parse_args()
    problems = [make_problem(0, args.ratings), make_problem(1, args.ratings)]
    print(f"{cpu_description()}; two fits of {args.ratings:,} ratings, k=32, 20 epochs, "
          "n_threads=1 each")
    sequential, threaded = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        reference = [fit(p, j) for j, p in enumerate(problems)]
        sequential.append(time.perf_counter() - start)

        models = [None, None]
        spans = [None, None]

        def work(j):
            t0 = time.perf_counter()
            models[j] = fit(problems[j], j)
            spans[j] = (t0, time.perf_counter())

        threads = [threading.Thread(target=work, args=(j,)) for j in range(2)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        threaded.append(time.perf_counter() - start)
        for got, ref in zip(models, reference):
            assert np.array_equal(got.user_factors_, ref.user_factors_)
            assert np.array_equal(got.item_factors_, ref.item_factors_)
        overlap = max(0.0, min(spans[0][1], spans[1][1]) - max(spans[0][0], spans[1][0]))
        busy = [sum(m.history_["epoch_seconds"]) for m in models]
    s, t = median(sequential), median(threaded)
    print(f"sequential: median {s:.2f} s (runs {', '.join(f'{x:.2f}' for x in sequential)})")
    print(f"two threads: median {t:.2f} s (runs {', '.join(f'{x:.2f}' for x in threaded)})")
    print(f"overlap: sequential / threaded = {s / t:.2f} (1.0 = none, 2.0 = perfect on 2 cores)")
    print(f"last run: the fits overlapped for {overlap:.2f} s of {threaded[-1]:.2f} s; epochs "
          f"took {busy[0]:.2f} s and {busy[1]:.2f} s inside them; results bit-identical")


if __name__ == "__main__":
    main()
