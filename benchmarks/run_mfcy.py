"""Fit mfcy on the reference split and print one JSON line (the peers.py format).

Run in a fresh process per measurement so that ``peak_rss_mb`` is the whole
process's peak: load + fit + evaluate, as a user's script would do it::

    python benchmarks/run_mfcy.py --data ../shared/data/ml-1m-star/ratings.tsv.gz \\
        --factors 100 --epochs 20 --threads 1 --dtype float32

``fit_seconds`` times ``MatrixFactorization.fit`` as a user calls it on
``(X, y)`` with raw ids: id mapping, sorting, the one-off shuffle and every
epoch are inside (the peers' own data-structure building is *not* inside
theirs, see peers.py). Predictions are clipped to [1, 5] for RMSE/MAE.
"""

import argparse
import json
import sys
import time

import numpy as np

from _common import ML1M, load_triples, peak_rss_mb, reference_split


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ML1M))
    p.add_argument("--factors", type=int, default=100)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--reg", type=float, default=0.02)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--n-blocks", type=int, default=None)
    p.add_argument("--track-loss", action="store_true")
    p.add_argument("--input", choices=["pairs", "csr"], default="pairs",
                   help="pairs: fit(X, y) on raw ids (id mapping timed); csr: fit a "
                        "scipy.sparse CSR matrix of indices built beforehand (untimed), "
                        "as cornac's timed fit receives a prebuilt Dataset")
    args = p.parse_args()

    import mfcy

    users, items, ratings = load_triples(args.data)
    train, test = reference_split(len(ratings))
    extra = {} if args.n_blocks is None else {"n_blocks": args.n_blocks}
    model = mfcy.MatrixFactorization(
        n_factors=args.factors, n_epochs=args.epochs, learning_rate=args.lr,
        regularization=args.reg, init_std=0.1, dtype=args.dtype, n_threads=args.threads,
        track_loss=args.track_loss, random_state=args.seed, **extra)
    if args.input == "csr":
        import scipy.sparse as sp

        user_ids, user_index = np.unique(users, return_inverse=True)
        item_ids, item_index = np.unique(items, return_inverse=True)
        matrix = sp.csr_array((ratings[train], (user_index[train], item_index[train])),
                              shape=(len(user_ids), len(item_ids)))
        start = time.perf_counter()
        model.fit(matrix)
        fit_seconds = time.perf_counter() - start
        test_pairs = np.column_stack([user_index[test], item_index[test]])
    else:
        X_train, y_train = np.column_stack([users[train], items[train]]), ratings[train]
        start = time.perf_counter()
        model.fit(X_train, y_train)
        fit_seconds = time.perf_counter() - start
        del X_train, y_train
        test_pairs = np.column_stack([users[test], items[test]])
    pred = np.clip(model.predict(test_pairs), 1.0, 5.0)
    err = pred - ratings[test]
    seconds = model.history_["epoch_seconds"]
    # The loss pass's cost relative to the SGD pass it follows (medians).
    loss_fraction = (round(float(np.median(model.history_["loss_seconds"]) / np.median(seconds)), 4)
                     if args.track_loss else None)
    print(json.dumps({
        "system": "mfcy", "version": mfcy.__version__, "threads": args.threads,
        "factors": args.factors, "epochs": args.epochs, "dtype": args.dtype,
        "n_blocks": model.n_blocks, "track_loss": args.track_loss, "input": args.input,
        "n_train": int(len(train)), "fit_seconds": round(fit_seconds, 4),
        "updates_per_s": round(len(train) * args.epochs / fit_seconds),
        "epoch_seconds_median": round(float(np.median(seconds)), 5),
        "setup_seconds": round(fit_seconds - float(np.sum(seconds))
                               - float(np.sum(model.history_.get("loss_seconds", 0.0))), 4),
        "loss_fraction": loss_fraction,
        "test_rmse": round(float(np.sqrt(np.mean(err ** 2))), 5),
        "test_mae": round(float(np.mean(np.abs(err))), 5),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "openmp": mfcy._sgd.openmp_enabled(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
