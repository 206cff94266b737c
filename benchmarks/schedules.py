"""Learning-rate schedules and initial scales: test RMSE on three data sets, one table.

    python benchmarks/schedules.py [--epochs 40] [--threads 2] [--quick]

For each data set (ML-1M-star and ML-100K on the reference split, the first
10 % of ``default_rng(0).permutation(n)`` held out; and a generated low-rank
problem, ``mfcy.datasets.make_low_rank``, split the same way) and each grid
point (schedule, learning rate, ``init_std``), one fit with k = 100 and
regularization 0.02, the held-out RMSE scored after every epoch
(``fit(validation=...)``). The table shows the best test RMSE over the epochs,
the epoch it was reached in, and the RMSE after the last epoch; and, per data
set, each configuration's gap to the best configuration of that data set.
A default learning rate "works without tuning" where its gap is small on every
data set. The machine these figures were taken on was shared with other
sessions: the RMSEs do not depend on that (a fixed seed), only the seconds do,
and none are shown.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from _common import ML1M, ML100K, load_triples, reference_split

from mfcy import MatrixFactorization
from mfcy.datasets import make_low_rank

#: (schedule, learning_rate, init_std); init_std 0.01 is about cornac's scale
#: (uniform factors of standard deviation ~0.01 at k = 100).
GRID = [
    ("constant", 0.005, 0.1), ("constant", 0.01, 0.1), ("constant", 0.02, 0.1),
    ("constant", 0.005, 0.01), ("constant", 0.01, 0.01), ("constant", 0.02, 0.01),
    ("adagrad", 0.02, 0.1), ("adagrad", 0.05, 0.1), ("adagrad", 0.1, 0.1),
    ("adagrad", 0.2, 0.1),
    ("adagrad", 0.01, 0.01), ("adagrad", 0.02, 0.01), ("adagrad", 0.05, 0.01),
    ("adagrad", 0.1, 0.01),
]


def datasets(quick):
    out = {}
    for name, path in (("ML-100K", ML100K), ("ML-1M-star", ML1M)):
        if quick and name == "ML-1M-star":
            continue
        users, items, ratings = load_triples(path)
        out[name] = (np.column_stack([users, items]), ratings.astype(np.float64))
    frame = make_low_rank(3000, 1500, 5, 0.03, noise=0.5, random_state=0, as_frame=True)
    out["low-rank 3000x1500"] = (frame[["user", "item"]].to_numpy(),
                                 frame["rating"].to_numpy())
    return out


def run(X, y, schedule, lr, init_std, epochs, threads):
    train, test = reference_split(len(y))
    model = MatrixFactorization(n_factors=100, n_epochs=epochs, regularization=0.02,
                                learning_rate=lr, init_std=init_std, random_state=0,
                                learning_rate_schedule=schedule, n_threads=threads,
                                track_loss=False)
    try:
        model.fit(X[train], y[train], validation=(X[test], y[test]))
    except Exception as exc:  # a diverged grid point is a result, not a crash
        return math.nan, 0, math.nan, type(exc).__name__
    val = model.history_["val_rmse"]
    best = int(np.argmin(val))
    return val[best], best + 1, val[-1], ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="skip ML-1M-star")
    args = parser.parse_args()
    results = {}
    for name, (X, y) in datasets(args.quick).items():
        print(f"{name}: {len(y):,} ratings (rating std {np.std(y):.3f})", file=sys.stderr,
              flush=True)
        for config in GRID:
            results[name, config] = run(X, y, *config, args.epochs, args.threads)
            print(f"  {config}: {results[name, config]}", file=sys.stderr, flush=True)
    names = list(dict.fromkeys(n for n, _ in results))
    best = {n: min(r[0] for (m, _), r in results.items() if m == n) for n in names}
    print(f"k = 100, regularization 0.02, {args.epochs} epochs, seed 0; test RMSE: best over "
          f"the epochs (epoch) / after the last; (+gap to the data set's best)")
    head = f"{'schedule':9} {'lr':>6} {'init':>5} |"
    print(head + " |".join(f" {n:^31}" for n in names))
    for config in GRID:
        cells = []
        for n in names:
            rmse, epoch, last, error = results[n, config]
            cells.append(f" {'diverged (' + error + ')':^31}" if error else
                         f" {rmse:.4f} ({epoch:2d}) / {last:.4f} (+{rmse - best[n]:.4f})")
        schedule, lr, init = config
        print(f"{schedule:9} {lr:>6} {init:>5} |" + " |".join(cells))


if __name__ == "__main__":
    main()
