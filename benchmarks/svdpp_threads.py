"""SVD++ (mfcy.SVDpp) on ML-1M-star: two threads against one, and its cost against the SVD.

    python benchmarks/svdpp_threads.py [--repeats 5] [--data PATH]

On the reference split (test = the first 10 % of default_rng(0).permutation(n)),
estimators at their defaults except ``track_loss`` and ``n_threads``; fit
seconds are wall clock around ``fit(X, y)`` on raw ids (set-up included) and
the epoch medians come from ``history_["epoch_seconds"]``. Every fit runs in
this process; the configurations alternate round by round, so a change in the
machine's load hits all of them alike. Prints

1. threads: the default 2 lanes on 1 and on 2 threads (and 1 lane, the plain
   rule, on 1 thread; 4 lanes on 2 threads), medians of ``--repeats`` rounds,
   the two-thread speed-up, test RMSE, and whether 1 and 2 threads gave the
   same bits;
2. the implicit term's cost: one-thread updates/s (ratings x epochs / fit
   seconds) of SVD++ (1 lane) and of mfcy's SVD (``MatrixFactorization``, same
   k, epochs, learning rate and regularization) at k = 20 and k = 100, and
   their ratio.
"""

import argparse
import time

import numpy as np

from _common import ML1M, cpu_description, load_triples, median, reference_split

from mfcy import MatrixFactorization, SVDpp


def fit(make, X, y, X_test, y_test):
    model = make()
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    rmse = float(np.sqrt(np.mean((model.predict(X_test, clip=(1, 5)) - y_test) ** 2)))
    return seconds, float(median(model.history_["epoch_seconds"])), rmse, model


def threads(X, y, X_test, y_test, repeats):
    configs = {
        "1 lane, 1 thread": dict(n_lanes=1, n_threads=1),
        "2 lanes (default), 1 thread": dict(n_threads=1),
        "2 lanes (default), 2 threads": dict(n_threads=2),
        "4 lanes, 2 threads": dict(n_lanes=4, n_threads=2),
    }
    runs = {name: [] for name in configs}
    bits = {}
    for _ in range(repeats):
        for name, kw in configs.items():
            seconds, epoch, rmse, model = fit(
                lambda: SVDpp(track_loss=False, random_state=0, **kw), X, y, X_test, y_test)
            runs[name].append((seconds, epoch, rmse))
            bits[name] = model.user_factors_.tobytes() + model.implicit_factors_.tobytes()
    print(f"{'SVDpp (k=20, 20 epochs)':32s} {'fit s':>7s} {'epoch ms':>9s} {'test RMSE':>10s}"
          "   fit seconds of each round")
    for name, values in runs.items():
        print(f"{name:32s} {median([v[0] for v in values]):7.3f} "
              f"{1e3 * median([v[1] for v in values]):9.2f} {values[0][2]:10.4f}   "
              + ", ".join(f"{v[0]:.3f}" for v in values))
    one = runs["2 lanes (default), 1 thread"]
    two = runs["2 lanes (default), 2 threads"]
    plain = runs["1 lane, 1 thread"]
    fit_ratio = median([v[0] for v in one]) / median([v[0] for v in two])
    epoch_ratio = median([v[1] for v in one]) / median([v[1] for v in two])
    print(f"2 lanes: 2 threads / 1 thread = {fit_ratio:.2f}x per fit, {epoch_ratio:.2f}x "
          f"per epoch; bit-identical: "
          f"{bits['2 lanes (default), 1 thread'] == bits['2 lanes (default), 2 threads']}")
    print(f"2 lanes on 2 threads against 1 lane on 1 thread: "
          f"{median([v[0] for v in plain]) / median([v[0] for v in two]):.2f}x per fit")


def implicit_cost(X, y, repeats):
    n_updates = 20 * len(y)
    for k in (20, 100):
        pp, svd = [], []
        for _ in range(repeats):
            model = SVDpp(n_factors=k, n_lanes=1, n_threads=1, track_loss=False, random_state=0)
            start = time.perf_counter()
            model.fit(X, y)
            pp.append(time.perf_counter() - start)
            model = MatrixFactorization(n_factors=k, n_epochs=20, learning_rate=0.007,
                                        regularization=0.02, n_threads=1, track_loss=False,
                                        random_state=0)
            start = time.perf_counter()
            model.fit(X, y)
            svd.append(time.perf_counter() - start)
        rate_pp, rate_svd = n_updates / median(pp), n_updates / median(svd)
        print(f"k={k:3d}: SVD++ {rate_pp / 1e6:6.2f} M updates/s ({median(pp):.3f} s), "
              f"SVD {rate_svd / 1e6:6.2f} M updates/s ({median(svd):.3f} s): "
              f"SVD++ / SVD = {rate_pp / rate_svd:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", default=str(ML1M), help="ML-1M-star's ratings.tsv.gz")
    args = parser.parse_args()
    users, items, ratings = load_triples(args.data)
    train, test = reference_split(len(ratings))
    X = np.column_stack([users, items])
    y = ratings.astype(np.float64)
    print(f"{cpu_description()}; {time.strftime('%Y-%m-%d %H:%M')}; ML-1M-star reference "
          f"split, {len(train)} training ratings; medians of {args.repeats} alternating rounds")
    threads(X[train], y[train], X[test], y[test], args.repeats)
    print()
    implicit_cost(X[train], y[train], args.repeats)


if __name__ == "__main__":
    main()
