"""Updates per second of one mfcy fit on ML-1M-star, against the lesson's Python loop.

    python benchmarks/fit_speed.py [--data PATH] [--repeats 5] [--threads 1]

Fits biased MF (k=100, 20 epochs, lr 0.005, reg 0.02, float32) on the 90 %
training part of the reference split, with ``track_loss=False`` and with
``track_loss=True``, alternating, and prints the median updates/s
(training ratings × epochs ÷ fit seconds) and its ratio to the seed notebook's
pure-Python loop, timed in the same invocation on a 20,000-rating sample.
"""

import argparse
import time

import numpy as np

from _common import ML1M, cpu_description, load_triples, median, reference_split

from mfcy import MatrixFactorization


def python_loop_rate(users, items, ratings, k, n=20_000, seed=0):
    """The seed notebook's update loop (per rating, numpy rows) on a sample."""
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(ratings), size=min(n, len(ratings)), replace=False)
    U = 0.1 * rng.standard_normal((users.max() + 1, k))
    V = 0.1 * rng.standard_normal((items.max() + 1, k))
    lr, reg = 0.005, 0.02
    start = time.perf_counter()
    for t in sample:
        i, j = users[t], items[t]
        err = ratings[t] - U[i] @ V[j]
        U[i] += lr * (err * V[j] - reg * U[i])
        V[j] += lr * (err * U[i] - reg * V[j])
    return len(sample) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ML1M))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--factors", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--n-blocks", type=int, default=None)
    args = parser.parse_args()

    users, items, ratings = load_triples(args.data)
    train, _ = reference_split(len(ratings))
    X = np.column_stack([users[train], items[train]])
    y = ratings[train]
    print(f"{cpu_description()}; {len(y):,} training ratings, k={args.factors}, "
          f"{args.epochs} epochs, {args.threads} thread(s)")
    extra = {} if args.n_blocks is None else {"n_blocks": args.n_blocks}
    rates = {False: [], True: []}
    for _ in range(args.repeats):
        for track in (False, True):
            model = MatrixFactorization(n_factors=args.factors, n_epochs=args.epochs,
                                        learning_rate=0.005, regularization=0.02,
                                        track_loss=track, n_threads=args.threads,
                                        random_state=0, **extra)
            start = time.perf_counter()
            model.fit(X, y)
            rates[track].append(len(y) * args.epochs / (time.perf_counter() - start))
    python = python_loop_rate(users, items, ratings, args.factors)
    print(f"pure-Python lesson loop: {python / 1e6:.3f} M updates/s")
    for track in (False, True):
        r = median(rates[track])
        print(f"mfcy track_loss={track!s:5}: median {r / 1e6:6.2f} M updates/s "
              f"(runs: {', '.join(f'{x / 1e6:.2f}' for x in rates[track])}) "
              f"= {r / python:,.0f}x the Python loop")
    ratio = median(rates[True]) / median(rates[False])
    print(f"loss tracking keeps {ratio:.2f} of the untracked speed")


if __name__ == "__main__":
    main()
