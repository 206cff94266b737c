"""Updates/s against the number of ratings and k, on generated data that outgrows the caches.

    python benchmarks/scaling.py [--max-ratings 10000000] [--epochs 3] [--threads 1]

Ratings are drawn for 200,000 users × 50,000 items with power-law popularity
(a few users and items hold most ratings, as in real data), from a rank-10
model plus noise. At k=100 in float32 the factors take 100 MB, far beyond
L2/L3, so this is where memory, prefetching and blocking show. Each row is the
median of ``--repeats`` fits; the ratio column compares with the smallest
data set at the same k (a cache-resident baseline run in the same invocation).
"""

import argparse

import numpy as np
import scipy.sparse as sp

from _common import cpu_description, median, peak_rss_mb

from mfcy import MatrixFactorization


def generate(n_ratings, n_users=200_000, n_items=50_000, seed=0):
    rng = np.random.default_rng(seed)
    # Zipf-like popularity over shuffled ids.
    user_weight = rng.permutation(1.0 / np.arange(1, n_users + 1) ** 0.8)
    item_weight = rng.permutation(1.0 / np.arange(1, n_items + 1) ** 0.9)
    users = rng.choice(n_users, size=n_ratings, p=user_weight / user_weight.sum())
    items = rng.choice(n_items, size=n_ratings, p=item_weight / item_weight.sum())
    U = rng.standard_normal((n_users, 10)).astype(np.float32) * 0.4
    V = rng.standard_normal((n_items, 10)).astype(np.float32) * 0.4
    # One rating per (user, item): csr_array would *sum* repeated pairs.
    _, first = np.unique(users.astype(np.int64) * n_items + items, return_index=True)
    users, items = users[first], items[first]
    ratings = 3.5 + np.einsum("ij,ij->i", U[users], V[items]) + 0.5 * rng.standard_normal(len(first))
    return sp.csr_array((ratings, (users, items)), shape=(n_users, n_items))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-ratings", type=int, default=10_000_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--factors", default="8,32,100")
    args = parser.parse_args()
    sizes = [n for n in (100_000, 1_000_000, 3_000_000, 10_000_000) if n <= args.max_ratings]
    print(f"{cpu_description()}; {args.epochs} epochs, {args.threads} thread(s); "
          "200k users x 50k items, power-law popularity")
    print(f"{'ratings':>10} {'k':>4} {'M upd/s':>8} {'vs smallest':>11} {'factors MB':>10}")
    for k in [int(x) for x in args.factors.split(",")]:
        base = None
        for n in sizes:
            R = generate(n)
            rates = []
            for _ in range(args.repeats):
                model = MatrixFactorization(n_factors=k, n_epochs=args.epochs, track_loss=False,
                                            n_threads=args.threads, random_state=0)
                model.fit(R)
                rates.append(R.nnz / np.median(model.history_["epoch_seconds"]))
            rate = median(rates)
            base = base or rate
            factor_mb = (R.shape[0] + R.shape[1]) * k * 4 / 1e6
            print(f"{R.nnz:>10,} {k:>4} {rate / 1e6:8.2f} {rate / base:10.2f}x {factor_mb:10.0f}",
                  flush=True)
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
