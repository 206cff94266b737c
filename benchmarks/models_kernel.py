"""The SVD++, NMF and baseline kernels (mfcy._models) on ML-1M-star and ML-100K.

    python benchmarks/models_kernel.py [--datasets ml1m,ml100k] [--repeats 3] [--cv | --sweep]

Straight on the kernels (the estimators come later): ids encoded with numpy,
the blocked layout of :class:`mfcy._blocking.EpochPlan` (8 × 8 blocks, as
MatrixFactorization), float32, one kernel call per epoch. For each data set, on
the reference split (test = the first 10 % of default_rng(0).permutation(n)),
prints test RMSE (predictions clipped to [1, 5]; unseen ids fall back to the
mean and the known bias) and fit seconds (set-up included) of

* SVD++ at Surprise's defaults (k=20, 20 epochs, lr 0.007, reg 0.02,
  N(0, 0.1) init, zero biases): the plain per-user rule (one lane, one
  thread), also with the y regularization 0.005, and 2 lanes on 1 and 2 threads alternating, medians of
  ``--repeats`` runs, and whether both thread counts gave the same bits;
* NMF at Surprise's defaults (k=15, 50 epochs, reg_pu = reg_qi = 0.06,
  U(0, 1) init, unbiased);
* BaselineOnly at Surprise's defaults: ALS (reg_i=10, reg_u=15, 10 epochs) and
  SGD (lr 0.005, reg 0.02, 20 epochs);
* one-thread updates/s of SVD++ at k=20 and k=100 against mfcy's SVD
  (MatrixFactorization, same k, epochs, lr and reg, one thread), as a ratio.

``--cv`` adds Surprise's table protocol (5-fold CV, ``KFold(5, shuffle=True,
random_state=0)`` over the rating rows): the mean test RMSE of each model.
``--sweep`` runs only that protocol for a few non-default settings (SVD++'s y
regularization; NMF's epochs and regularization).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import ML1M, ML100K, cpu_description, load_triples, median, reference_split

import mfcy._models as _models
from mfcy import MatrixFactorization
from mfcy._blocking import EpochPlan

DTYPE = np.float32
N_BLOCKS = 8
#: SVD++ lanes for the thread comparison (a model parameter, not the thread count),
#: and the ratings per lane and round: mfcy.SVDpp's defaults.
LANES = 2
LANE_RATINGS = 262144
#: The y regularization that measures better than Surprise's 0.02 (the other
#: parameters at Surprise's defaults).
PROPOSED_REG_Y = 0.005


class Split:
    """Encoded training triples (canonical order), their CSR views, and the test pairs."""

    def __init__(self, users, items, ratings, train, test):
        uid, u = np.unique(users[train], return_inverse=True)
        iid, i = np.unique(items[train], return_inverse=True)
        order = np.lexsort((i, u))
        self.users, self.items = u[order].astype(np.int32), i[order].astype(np.int32)
        self.ratings = ratings[train][order].astype(DTYPE)
        self.n_users, self.n_items = len(uid), len(iid)
        self.mu = float(self.ratings.astype(np.float64).mean())
        self.test_users = self._encode(uid, users[test])
        self.test_items = self._encode(iid, items[test])
        self.test_ratings = ratings[test].astype(np.float64)

    @staticmethod
    def _encode(ids, values):
        pos = np.minimum(np.searchsorted(ids, values), len(ids) - 1)
        return np.where(ids[pos] == values, pos, -1).astype(np.int32)

    def csr(self):
        """(user_ptr, user_items, user_ratings, item_ptr, item_users, item_ratings)."""
        user_ptr = np.zeros(self.n_users + 1, np.int64)
        np.cumsum(np.bincount(self.users, minlength=self.n_users), out=user_ptr[1:])
        by_item = np.argsort(self.items, kind="stable")  # users stay increasing
        item_ptr = np.zeros(self.n_items + 1, np.int64)
        np.cumsum(np.bincount(self.items, minlength=self.n_items), out=item_ptr[1:])
        return (user_ptr, self.items, self.ratings, item_ptr,
                np.ascontiguousarray(self.users[by_item]),
                np.ascontiguousarray(self.ratings[by_item]))

    def plan(self, rng):
        return EpochPlan(self.users, self.items, self.ratings, self.n_users, self.n_items,
                         N_BLOCKS, True, rng)

    def rmse(self, predictions):
        err = np.clip(predictions, 1.0, 5.0) - self.test_ratings
        return float(np.sqrt(np.mean(err**2)))


def fit_svdpp(data, k=20, n_epochs=20, lr=0.007, reg=0.02, init_std=0.1, n_threads=1,
              seed=0, lr_y=None, reg_y=None, n_lanes=1, lane_ratings=LANE_RATINGS):
    """SVD++ at Surprise's defaults; returns (test RMSE, seconds, state)."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    user_ptr, user_items, user_ratings = data.csr()[:3]
    P = (init_std * rng.standard_normal((data.n_users, k))).astype(DTYPE)
    Q = (init_std * rng.standard_normal((data.n_items, k))).astype(DTYPE)
    Y = (init_std * rng.standard_normal((data.n_items, k))).astype(DTYPE)
    bu, bi = np.zeros(data.n_users, DTYPE), np.zeros(data.n_items, DTYPE)
    for _ in range(n_epochs):
        order = rng.permutation(data.n_users).astype(np.int64)
        _models.svdpp_epoch(P, Q, Y, bu, bi, user_ptr, user_items, user_ratings, order,
                            data.mu, lr, reg, reg, lr if lr_y is None else lr_y,
                            reg if reg_y is None else reg_y, True, n_lanes, lane_ratings,
                            n_threads)
    S = np.empty_like(P)
    _models.svdpp_implicit_sums(Y, user_ptr, user_items, S, n_threads)
    seconds = time.perf_counter() - start
    out = np.empty(len(data.test_users), DTYPE)
    _models.svdpp_predict(P, Q, S, bu, bi, data.test_users, data.test_items, data.mu, True,
                          out)
    return data.rmse(out), seconds, (P, Q, Y, S, bu, bi)


def fit_nmf(data, k=15, n_epochs=50, reg_pu=0.06, reg_qi=0.06, low=0.0, high=1.0,
            n_threads=1, seed=0):
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    csr = data.csr()
    P = rng.uniform(low, high, (data.n_users, k)).astype(DTYPE)
    Q = rng.uniform(low, high, (data.n_items, k)).astype(DTYPE)
    empty = np.zeros(0, DTYPE)
    for _ in range(n_epochs):
        _models.nmf_epoch(P, Q, empty, empty, *csr, data.mu, reg_pu, reg_qi, False, n_threads)
    seconds = time.perf_counter() - start
    assert (P >= 0).all() and (Q >= 0).all()
    out = np.empty(len(data.test_users), DTYPE)
    # An unseen id: Surprise's NMF cannot predict and falls back to the mean.
    _models.nmf_predict(P, Q, empty, empty, data.test_users, data.test_items, data.mu, False,
                        out)
    return data.rmse(out), seconds


def fit_baseline(data, method="als", n_epochs=None, reg_u=15.0, reg_i=10.0, lr=0.005,
                 reg=0.02, n_threads=1, seed=0):
    start = time.perf_counter()
    bu, bi = np.zeros(data.n_users, DTYPE), np.zeros(data.n_items, DTYPE)
    if method == "als":
        csr = data.csr()
        for _ in range(n_epochs or 10):
            _models.baseline_als_epoch(bu, bi, *csr, data.mu, reg_u, reg_i, n_threads)
    else:
        rng = np.random.default_rng(seed)
        plan = data.plan(rng)
        for _ in range(n_epochs or 20):
            _models.baseline_sgd_epoch(bu, bi, plan.users, plan.items, plan.ratings,
                                       plan.chunk_bounds, plan.block_chunks, *plan.draw(rng),
                                       data.mu, lr, reg, n_threads)
    seconds = time.perf_counter() - start
    out = np.empty(len(data.test_users), DTYPE)
    _models.baseline_predict(bu, bi, data.test_users, data.test_items, data.mu, out)
    return data.rmse(out), seconds


def svd_seconds(data, k, n_epochs=20, lr=0.007, reg=0.02):
    """mfcy's own SVD (MatrixFactorization), one thread, same k / epochs / lr / reg."""
    X = np.column_stack([data.users, data.items])
    model = MatrixFactorization(n_factors=k, n_epochs=n_epochs, learning_rate=lr,
                                regularization=reg, n_threads=1, random_state=0,
                                track_loss=False)
    start = time.perf_counter()
    model.fit(X, data.ratings.astype(np.float64))
    return time.perf_counter() - start


def run(name, path, repeats, cv):
    users, items, ratings = load_triples(path)
    train, test = reference_split(len(ratings))
    data = Split(users, items, ratings, train, test)
    n = len(data.ratings)
    print(f"\n== {name}: {n} training ratings, {len(test)} test, "
          f"{data.n_users} users x {data.n_items} items")

    # SVD++: the plain per-user rule (one lane, one thread), then 2 lanes on 1
    # and 2 threads, alternating.
    for reg_y in (0.02, PROPOSED_REG_Y):
        plain = [fit_svdpp(data, reg_y=reg_y)[:2] for _ in range(repeats)]
        print(f"SVD++ k=20 20 ep, 1 lane, y regularization {reg_y}: test RMSE "
              f"{plain[0][0]:.4f}; fit {median([t for _, t in plain]):.2f} s on 1 thread "
              f"[{', '.join(f'{t:.2f}' for _, t in plain)}]")
    times = {1: [], 2: []}
    rmses, states = {}, {}
    for _ in range(repeats):
        for n_threads in (1, 2):
            rmse, seconds, state = fit_svdpp(data, n_threads=n_threads, n_lanes=LANES)
            times[n_threads].append(seconds)
            rmses[n_threads] = rmse
            states[n_threads] = state
    same = all(a.tobytes() == b.tobytes() for a, b in zip(states[1], states[2]))
    t1, t2 = median(times[1]), median(times[2])
    print(f"SVD++ k=20 20 ep, {LANES} lanes: test RMSE {rmses[1]:.4f}; fit {t1:.2f} s on "
          f"1 thread, {t2:.2f} s on 2 (x{t1 / t2:.2f}); 1 and 2 threads bit-identical: "
          f"{same}  [1 thread: {', '.join(f'{t:.2f}' for t in times[1])}; "
          f"2: {', '.join(f'{t:.2f}' for t in times[2])}]")

    rmse, seconds = fit_nmf(data)
    print(f"NMF k=15 50 ep (unbiased): test RMSE {rmse:.4f}; fit {seconds:.2f} s, 1 thread")
    rmse, seconds = fit_baseline(data, "als")
    print(f"BaselineOnly ALS 10 ep: test RMSE {rmse:.4f}; fit {seconds:.3f} s, 1 thread")
    rmse, seconds = fit_baseline(data, "sgd")
    print(f"BaselineOnly SGD 20 ep: test RMSE {rmse:.4f}; fit {seconds:.3f} s, 1 thread")

    for k in (20, 100):
        pp, svd = [], []
        for _ in range(repeats):
            pp.append(fit_svdpp(data, k=k)[1])
            svd.append(svd_seconds(data, k))
        rate_pp, rate_svd = 20 * n / median(pp), 20 * n / median(svd)
        print(f"k={k}: SVD++ {rate_pp / 1e6:.1f} M updates/s, mfcy SVD "
              f"{rate_svd / 1e6:.1f} M/s, SVD++ / SVD = {rate_pp / rate_svd:.2f} "
              f"(fit seconds, set-up included, medians of {repeats})")

    if cv:
        from sklearn.model_selection import KFold

        scores = {"SVD++": [], f"SVD++ (y regularization {PROPOSED_REG_Y})": [], "NMF": [],
                  "BaselineOnly (ALS)": []}
        for fold_train, fold_test in KFold(5, shuffle=True, random_state=0).split(ratings):
            fold = Split(users, items, ratings, fold_train, fold_test)
            scores["SVD++"].append(fit_svdpp(fold)[0])
            scores[f"SVD++ (y regularization {PROPOSED_REG_Y})"].append(
                fit_svdpp(fold, reg_y=PROPOSED_REG_Y)[0])
            scores["NMF"].append(fit_nmf(fold)[0])
            scores["BaselineOnly (ALS)"].append(fit_baseline(fold, "als")[0])
        for model, values in scores.items():
            print(f"5-fold CV {model}: mean RMSE {np.mean(values):.4f} "
                  f"(folds {', '.join(f'{v:.4f}' for v in values)})")


def sweep(name, path):
    """5-fold CV of the non-default settings reported in benchmarks/README.md."""
    from sklearn.model_selection import KFold

    users, items, ratings = load_triples(path)
    folds = [Split(users, items, ratings, a, b)
             for a, b in KFold(5, shuffle=True, random_state=0).split(ratings)]
    print(f"\n== {name}: 5-fold CV sweep")
    for reg_y in (0.02, 0.01, 0.005):
        scores = [fit_svdpp(fold, reg_y=reg_y)[0] for fold in folds]
        print(f"SVD++ y regularization {reg_y}: mean RMSE {np.mean(scores):.4f}")
    for n_epochs, reg in ((50, 0.06), (50, 0.08), (100, 0.08), (100, 0.1)):
        scores = [fit_nmf(fold, n_epochs=n_epochs, reg_pu=reg, reg_qi=reg)[0] for fold in folds]
        print(f"NMF k=15 {n_epochs} epochs reg {reg}: mean RMSE {np.mean(scores):.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml1m,ml100k")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cv", action="store_true", help="also 5-fold CV (Surprise's table)")
    parser.add_argument("--sweep", action="store_true",
                        help="only the 5-fold CV sweep of SVD++'s y regularization and NMF's "
                             "epochs and regularization")
    args = parser.parse_args()
    print(f"mfcy._models on {cpu_description()}, float32, {N_BLOCKS}x{N_BLOCKS} blocks")
    paths = {"ml1m": ("ML-1M-star", ML1M), "ml100k": ("ML-100K", ML100K)}
    for key in args.datasets.split(","):
        if args.sweep:
            sweep(*paths[key])
        else:
            run(*paths[key], args.repeats, args.cv)


if __name__ == "__main__":
    main()
