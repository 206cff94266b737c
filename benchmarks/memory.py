"""Peak memory of a large fit and of recommend(), each measured in a fresh process.

    python benchmarks/memory.py [--ratings 10000000] [--skip-recommend]

fit: a synthetic problem of N ratings as ``(X, y)`` (100 k users, 20 k items,
random pairs, so a few duplicates) and as a scipy COO matrix. The baseline is
the process's resident memory once the input exists (interpreter, numpy,
scipy, mfcy and the caller's own arrays); the peak resident memory is reset
(``/proc/self/clear_refs``) and read back after ``fit``. The bound the fit must
stay under, above the baseline, is

    3 × the canonical triples' bytes (int32 user + int32 item + float64 rating)
    + the factors and biases

i.e. the fit makes at most a constant number of copies of the ratings. Before
this bound was enforced a 10 M-rating fit peaked at 4.7× the triples' bytes.

recommend: a model of 100 k users × 50 k items (k = 32). Its peak above the
baseline (the fitted model) must be set by the batch size, not the number of
users: recommending for all 100 k users costs about what 10 k users cost, the
difference being the output arrays, and doubling ``batch_size`` adds about one
batch's worth of scores.

Linux only (reads /proc). Exit status 1 if a bound is exceeded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

MB = 2**20


def _status_mb():
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                values[key] = int(value.split()[0]) / 1024
    return values


def _reset_peak():
    # Writing 5 resets VmHWM (the peak RSS) to the current RSS (Linux >= 4.0).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _measure(call):
    import gc

    gc.collect()
    _reset_peak()
    base = _status_mb()["VmRSS"]
    result = call()
    return _status_mb()["VmHWM"] - base, result


def child_fit(n_ratings, form, n_factors):
    import numpy as np
    import scipy.sparse as sp

    from mfcy import MatrixFactorization

    rng = np.random.default_rng(0)
    n_users, n_items = 100_000, 20_000
    X = np.empty((n_ratings, 2), dtype=np.int64)
    X[:, 0] = rng.integers(0, n_users, n_ratings)
    X[:, 1] = rng.integers(0, n_items, n_ratings)
    y = rng.integers(1, 11, n_ratings) / 2.0
    args = (X, y)
    if form == "coo":
        args = (sp.coo_array((y, (X[:, 0].astype(np.int32), X[:, 1].astype(np.int32))),
                             shape=(n_users, n_items)),)
        del X, y
    model = MatrixFactorization(n_factors=n_factors, n_epochs=2, random_state=0)
    peak, _ = _measure(lambda: model.fit(*args))
    n_pairs = len(model._seen_items)
    return {"peak_mb": peak, "n_pairs": n_pairs,
            "triples_mb": n_pairs * (4 + 4 + 8) / MB,
            "factors_mb": sum(getattr(model, a).nbytes for a in (
                "user_factors_", "item_factors_", "user_bias_", "item_bias_")) / MB}


def child_recommend(n_users_asked, batch_size, n_factors):
    import numpy as np

    from mfcy import MatrixFactorization

    rng = np.random.default_rng(1)
    n_users, n_items, n = 100_000, 50_000, 2_000_000
    X = np.column_stack([np.arange(n) % n_users, rng.integers(0, n_items, n)])
    X[:n_items, 1] = np.arange(n_items)  # every item rated at least once
    model = MatrixFactorization(n_factors=n_factors, n_epochs=1, random_state=0)
    model.fit(X, rng.normal(3.0, 1.0, n))
    assert model.user_factors_.shape[0] == n_users and model.item_factors_.shape[0] == n_items
    del X
    users = model.users_[:n_users_asked]
    peak, (items, scores) = _measure(lambda: model.recommend(users, n=10,
                                                             batch_size=batch_size))
    return {"peak_mb": peak, "output_mb": (items.nbytes + scores.nbytes) / MB,
            "batch_mb": batch_size * n_items * model.item_factors_.itemsize / MB}


def run_child(*args):
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, args)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=10_000_000)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--skip-recommend", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = (child_fit(int(rest[0]), rest[1], int(rest[2])) if kind == "fit"
                  else child_recommend(int(rest[0]), int(rest[1]), int(rest[2])))
        print(json.dumps(result))
        return 0

    ok = True
    print(f"fit: {args.ratings:,} ratings, k={args.factors}, each run in a fresh process; "
          "MB above the baseline (interpreter + the caller's input)")
    for form in ("pairs", "coo"):
        r = run_child("fit", args.ratings, form, args.factors)
        bound = 3 * r["triples_mb"] + r["factors_mb"]
        ratio = r["peak_mb"] / r["triples_mb"]
        verdict = "ok" if r["peak_mb"] <= bound else "OVER THE BOUND"
        ok &= r["peak_mb"] <= bound
        print(f"  {form:5}  peak {r['peak_mb']:7.1f} MB = {ratio:.2f} x the triples "
              f"({r['triples_mb']:.1f} MB, {r['n_pairs']:,} pairs); bound 3 x triples + "
              f"factors = {bound:.1f} MB: {verdict}")

    if not args.skip_recommend:
        print("recommend(n=10): 100,000 users x 50,000 items, k=32; MB above the fitted model")
        default_batch = max(1, 2**24 // 50_000)
        runs = {}
        for users, batch in ((10_000, default_batch), (100_000, default_batch),
                             (100_000, 2 * default_batch)):
            r = run_child("recommend", users, batch, args.factors)
            runs[users, batch] = r
            print(f"  {users:7,} users, batch_size {batch:4}: peak {r['peak_mb']:7.1f} MB "
                  f"(one batch of float32 scores {r['batch_mb']:.1f} MB, output "
                  f"{r['output_mb']:.1f} MB) = {r['peak_mb'] / r['batch_mb']:.2f} batches")
        small, full = runs[10_000, default_batch], runs[100_000, default_batch]
        double = runs[100_000, 2 * default_batch]
        # Bounded by the batch size: 10x the users adds no more than the outputs
        # (and allocator slack of a quarter batch); twice the batch at most
        # doubles the batch-dependent part.
        growth_users = full["peak_mb"] - small["peak_mb"] - full["output_mb"]
        per_batch = (double["peak_mb"] - full["peak_mb"]) / full["batch_mb"]
        print(f"  10x the users adds {growth_users:+.1f} MB beyond the outputs; doubling "
              f"batch_size adds {per_batch:.2f} batches of scores")
        bounded = growth_users <= 0.25 * full["batch_mb"] and (
            full["peak_mb"] <= 8 * full["batch_mb"] + full["output_mb"])
        print(f"  recommend memory bounded by the batch size: {'ok' if bounded else 'NO'}")
        ok &= bounded
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
