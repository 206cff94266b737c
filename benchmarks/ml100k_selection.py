"""Model selection on MovieLens 100K: validation RMSE over k × regularization, test RMSE.

    python benchmarks/ml100k_selection.py [--data PATH] [--epochs 200] [--threads 1]
        [--factors 5 10 20 50 100] [--regularization 0.005 0.02 0.05 0.1]

The lesson's exercises on real data. The 100,000 ratings are split (seeded)
into 80 % training, 10 % validation and 10 % test, every user and item
keeping ratings in training. For each n_factors k in {5, 10, 20, 50, 100} and
regularization in {0.005, 0.02, 0.05, 0.1}, a biased model is fitted on the
training part with early stopping on the validation RMSE (learning rate
0.005, at most ``--epochs`` epochs, patience 5); the table shows the best
validation RMSE and the epoch it was reached. The (k, regularization) with the
lowest validation RMSE is then scored once on the test part, as fitted and
refitted on training + validation for its best number of epochs.

Baselines run in the same invocation, scored on the same test part: the
global mean, the biases alone (a model whose factors start and stay at 0),
and the library defaults without selection (k=100, reg=0.02, 20 epochs).
"""

import argparse
import copy
import time

import numpy as np

from _common import ML100K, cpu_description, load_triples

from mfcy import MatrixFactorization
from mfcy.metrics import ndcg_at_k, precision_at_k, rmse
from mfcy.model_selection import train_test_split, validation_curve

FACTORS = (5, 10, 20, 50, 100)
REGULARIZATION = (0.005, 0.02, 0.05, 0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ML100K))
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--factors", type=int, nargs="+", default=FACTORS)
    parser.add_argument("--regularization", type=float, nargs="+", default=REGULARIZATION)
    args = parser.parse_args()

    users, items, ratings = load_triples(args.data)
    X = np.column_stack([users, items])
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, ratings, test_size=0.1, keep_in_train="both", random_state=args.seed)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=len(y_test), keep_in_train="both", random_state=args.seed)
    print(f"{cpu_description()}; {args.threads} thread(s)")
    print(f"ML-100K: {len(y_train):,} training, {len(y_val):,} validation, "
          f"{len(y_test):,} test ratings")

    base = MatrixFactorization(n_epochs=args.epochs, learning_rate=0.005, early_stopping=True,
                               n_iter_no_change=5, random_state=args.seed,
                               n_threads=args.threads)
    start = time.perf_counter()
    table = {}
    for k in args.factors:
        curve = validation_curve(base.set_params(n_factors=k), X_train, y_train,
                                 validation=(X_val, y_val), param_name="regularization",
                                 param_range=args.regularization)
        for reg, val_rmse, best in zip(args.regularization, curve.validation_rmse,
                                       curve.best_epochs):
            table[k, reg] = (val_rmse, best)
    search_seconds = time.perf_counter() - start

    print(f"\nvalidation RMSE (best epoch) of {len(table)} fits, {search_seconds:.1f} s in all")
    print("k \\ reg  " + "".join(f"{reg:>16}" for reg in args.regularization))
    for k in args.factors:
        print(f"{k:>7}  " + "".join(f"{table[k, reg][0]:>10.4f} ({table[k, reg][1]:>3})"
                                    for reg in args.regularization))
    (k_best, reg_best), (val_best, epochs_best) = min(table.items(), key=lambda kv: kv[1][0])
    print(f"\nchosen: n_factors={k_best}, regularization={reg_best} "
          f"(validation RMSE {val_best:.4f} after {epochs_best} epochs)")

    chosen = base.set_params(n_factors=k_best, regularization=reg_best).fit(
        X_train, y_train, validation=(X_val, y_val))
    refit = MatrixFactorization(n_factors=k_best, regularization=reg_best, learning_rate=0.005,
                                n_epochs=epochs_best, random_state=args.seed,
                                n_threads=args.threads).fit(X_rest, y_rest)
    defaults = MatrixFactorization(random_state=args.seed, n_threads=args.threads).fit(
        X_rest, y_rest)
    biases_only = MatrixFactorization(n_factors=1, init_std=0.0, n_epochs=args.epochs,
                                      learning_rate=0.005, early_stopping=True,
                                      n_iter_no_change=5, random_state=args.seed,
                                      n_threads=args.threads).fit(
        X_train, y_train, validation=(X_val, y_val))
    mean_rmse = rmse(y_test, np.full(len(y_test), y_rest.mean()))

    rows = [("global mean (of training + validation)", mean_rmse, None),
            ("biases only, early-stopped", rmse(y_test, biases_only.predict(X_test)),
             biases_only),
            ("defaults, no selection (k=100, reg=0.02, 20 epochs)",
             rmse(y_test, defaults.predict(X_test)), defaults),
            ("chosen, fitted on training (best epoch kept)",
             rmse(y_test, chosen.predict(X_test)), chosen),
            (f"chosen, refitted on training + validation ({epochs_best} epochs)",
             rmse(y_test, refit.predict(X_test)), refit)]
    print(f"\n{'test set':<58}{'RMSE':>8}{'vs mean':>9}{'P@10':>8}{'nDCG@10':>9}")
    for label, value, model in rows:
        ranking = ""
        if model is not None:
            # Relevant: held-out ratings of 4 or 5 stars; the users' training items excluded.
            precision = precision_at_k(model, X_test, y_test, k=10, threshold=4)
            ndcg = ndcg_at_k(model, X_test, y_test, k=10, threshold=4)
            ranking = f"{precision:>8.4f}{ndcg:>9.4f}"
        print(f"{label:<58}{value:>8.4f}{value / mean_rmse:>9.3f}{ranking}")

    fold_in_comparison(X, ratings, k_best, reg_best, epochs_best, args)


def fold_in_comparison(X, ratings, k, reg, n_epochs, args):
    """New users: fold_in against a full refit, on the same held-out ratings."""
    rng = np.random.default_rng(args.seed)
    newcomers = rng.choice(np.unique(X[:, 0]), size=len(np.unique(X[:, 0])) // 10,
                           replace=False)
    is_new = np.isin(X[:, 0], newcomers)
    # Half of each newcomer's ratings are its profile, the other half are held out.
    profile = is_new & (rng.random(len(ratings)) < 0.5)
    held_out = is_new & ~profile
    params = dict(n_factors=k, regularization=reg, learning_rate=0.005, n_epochs=n_epochs,
                  random_state=args.seed, n_threads=args.threads)
    start = time.perf_counter()
    refit = MatrixFactorization(**params).fit(X[~held_out], ratings[~held_out])
    refit_seconds = time.perf_counter() - start
    model = MatrixFactorization(**params).fit(X[~is_new], ratings[~is_new])
    timings = []
    for _ in range(5):
        folded = copy.deepcopy(model)  # fold into a fresh copy each time
        start = time.perf_counter()
        folded.fold_in(X[profile], ratings[profile])
        timings.append(time.perf_counter() - start)
    fold_seconds = float(np.median(timings))
    n_users = len(newcomers)
    print(f"\nfold-in of {n_users} new users ({profile.sum():,} profile ratings, "
          f"{held_out.sum():,} held out), k={k}, reg={reg}:")
    print(f"  held-out RMSE: fold_in {rmse(ratings[held_out], folded.predict(X[held_out])):.4f}"
          f", full refit {rmse(ratings[held_out], refit.predict(X[held_out])):.4f}")
    print(f"  time: fold_in {fold_seconds * 1e3:.1f} ms (median of 5; "
          f"{fold_seconds / n_users * 1e6:.0f} us per user), full refit {refit_seconds:.2f} s "
          f"({refit_seconds / fold_seconds:.0f}x)")


if __name__ == "__main__":
    main()
