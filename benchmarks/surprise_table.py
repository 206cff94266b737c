"""Surprise's benchmark table, reproduced: 5-fold CV, each algorithm at its defaults.

    python benchmarks/surprise_table.py --peer-python /work/peers-venv/bin/python
    python benchmarks/surprise_table.py --peer-python ... --skip-slow-peers   # reruns

The protocol of Surprise's README ("Benchmarks"): ``KFold(5, shuffle=True,
random_state=0)`` (scikit-learn's) over the rating rows, the default parameters
of each algorithm, predictions clipped to the rating scale [1, 5], RMSE and MAE
of each test fold; here on ML-100K and ML-1M-star (ML-1M's stand-in). The folds
are computed once, in this process, and handed to every fitting process as a
file of fold numbers (one per rating row), so every system sees the same folds.

Each (system, algorithm, data set, fold) is a fresh process with one thread:
Surprise 1.1.5 in the peers' venv (``--peer-python``; this file is run there
too, in ``--worker`` mode, and imports neither mfcy nor scikit-learn there),
mfcy in this interpreter. Folds run in turn, Surprise and mfcy alternating on
each fold, so the speed ratio (Surprise's fit seconds / mfcy's, median over the
five folds) compares fits made minutes apart on the same folds.

Surprise's fits are timed around ``algo.fit(trainset)`` (its trainset, a
pure-Python id mapping, is built outside the timer, as in ``peers.py``);
mfcy's around ``fit(X, y)`` on raw ids (id mapping included).

Every Surprise result (metrics and timings only, never ratings) is written to
``benchmarks/results/surprise_table/<data>-<algorithm>.json``. Surprise's SVD++
on ML-1M-star takes minutes per fold: ``--skip-slow-peers`` reuses its recorded
result instead of running it (the table marks such rows ``recorded``).

mfcy's rows: ``SVD`` is ``MatrixFactorization`` with Surprise's SVD defaults
(k = 100, 20 epochs, lr 0.005, reg 0.02, init N(0, 0.1)). The other algorithms
run ``mfcy.SVDpp``, ``mfcy.NMF`` and ``mfcy.BaselineOnly`` at their own
defaults (Surprise's, except SVD++'s implicit_regularization 0.005 and NMF's
regularization 0.08, which measured better: see their docstrings) once the installed mfcy has them; until then their rows say so. Add or change one in ``MFCY_MODELS``.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

from _common import ML1M, ML100K, cpu_description, load_triples, median

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results" / "surprise_table"
RATING_MIN, RATING_MAX = 1.0, 5.0
N_FOLDS = 5

DATASETS = {"ml-100k": ML100K, "ml-1m-star": ML1M}
ALGORITHMS = ("SVD", "SVDpp", "NMF", "BaselineOnly")

#: (data set, algorithm) pairs whose Surprise run ``--skip-slow-peers`` reuses.
SLOW_PEERS = {("ml-1m-star", "SVDpp")}

#: mfcy's estimator per algorithm: (attribute of mfcy, constructor arguments).
#: One thread and seed 0 are added to each.
MFCY_MODELS = {
    "SVD": ("MatrixFactorization", dict(n_factors=100, n_epochs=20, learning_rate=0.005,
                                        regularization=0.02, init_std=0.1)),
    "SVDpp": ("SVDpp", {}),
    "NMF": ("NMF", {}),
    "BaselineOnly": ("BaselineOnly", {}),
}

#: Surprise's README, "Benchmarks" (5-fold CV, a laptop with an Intel i5 11th
#: gen; the ML-1M column is MovieLens 1M itself): RMSE, MAE, time of the five
#: folds as printed there. Copied from ../shared/data/README.md.
PUBLISHED = {
    ("ml-100k", "SVD"): (0.934, 0.737, "0:00:06"),
    ("ml-100k", "SVDpp"): (0.919, 0.721, "0:01:22-0:01:39"),
    ("ml-100k", "NMF"): (0.963, 0.758, "0:00:06"),
    ("ml-100k", "BaselineOnly"): (0.944, 0.748, "0:00:02"),
    ("ml-1m-star", "SVD"): (0.873, 0.686, "0:01:07"),
    ("ml-1m-star", "SVDpp"): (0.862, 0.672, "0:34:55-0:41:06"),
    ("ml-1m-star", "NMF"): (0.916, 0.723, "0:01:39"),
    ("ml-1m-star", "BaselineOnly"): (0.909, 0.719, "0:00:19"),
}


# ------------------------------------------------------------------ the worker side


def surprise_algorithm(name):
    """Surprise's algorithm at its defaults (seeded where it draws anything)."""
    import surprise

    if name == "SVD":
        return surprise.SVD(random_state=0)
    if name == "SVDpp":
        # cache_ratings (1.1.3+) keeps each user's ratings as arrays between
        # epochs: same results, faster.
        return surprise.SVDpp(random_state=0, cache_ratings=True)
    if name == "NMF":
        return surprise.NMF(random_state=0)
    if name == "BaselineOnly":
        return surprise.BaselineOnly(verbose=False)  # ALS, Surprise's default
    raise ValueError(f"unknown algorithm {name!r}")


def fit_surprise(algorithm, train, test):
    import pandas as pd
    import surprise

    tu, ti, tr = train
    reader = surprise.Reader(rating_scale=(RATING_MIN, RATING_MAX))
    frame = pd.DataFrame({"user": tu, "item": ti, "rating": tr.astype(np.float64)})
    trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
    algo = surprise_algorithm(algorithm)
    start, cpu_start = time.perf_counter(), time.process_time()
    algo.fit(trainset)
    fit_seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    eu, ei, er = test
    # Surprise's predict clips to the reader's scale itself; clipped again below.
    predictions = algo.test(list(zip(eu.tolist(), ei.tolist(), er.tolist())))
    return surprise.__version__, fit_seconds, cpu_seconds, np.array([p.est for p in predictions])


def fit_mfcy(algorithm, train, test):
    import mfcy

    name, params = MFCY_MODELS[algorithm]
    if not hasattr(mfcy, name):
        raise LookupError(f"the installed mfcy {mfcy.__version__} has no mfcy.{name}")
    model = getattr(mfcy, name)(**params, n_threads=1, random_state=0)
    tu, ti, tr = train
    X = np.column_stack([tu, ti])
    start, cpu_start = time.perf_counter(), time.process_time()
    model.fit(X, tr)
    fit_seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    eu, ei, _ = test
    return mfcy.__version__, fit_seconds, cpu_seconds, model.predict(np.column_stack([eu, ei]))


def worker(args):
    """Fit one algorithm on one fold; print one JSON line (metrics only)."""
    from peers import _claim_stdout  # keeps the peers' C-level chatter off stdout

    out = _claim_stdout()
    users, items, ratings = load_triples(args.data)
    fold_of = np.load(args.folds)
    if len(fold_of) != len(ratings):
        raise SystemExit(f"{args.folds} has {len(fold_of)} rows, {args.data} {len(ratings)}")
    in_test = fold_of == args.fold
    train = (users[~in_test], items[~in_test], ratings[~in_test])
    test = (users[in_test], items[in_test], ratings[in_test])
    record = {"system": args.worker, "algorithm": args.algorithm, "fold": args.fold,
              "n_train": int((~in_test).sum()), "n_test": int(in_test.sum())}
    try:
        fit = fit_surprise if args.worker == "surprise" else fit_mfcy
        version, fit_seconds, cpu_seconds, pred = fit(args.algorithm, train, test)
    except (ImportError, LookupError) as exc:
        record["error"] = str(exc)
        out.write(json.dumps(record) + "\n")
        return 3
    err = np.clip(pred, RATING_MIN, RATING_MAX) - test[2]
    record.update(version=version, fit_seconds=round(fit_seconds, 4),
                  cpu_seconds=round(cpu_seconds, 4),
                  rmse=round(float(np.sqrt(np.mean(err ** 2))), 5),
                  mae=round(float(np.mean(np.abs(err))), 5))
    out.write(json.dumps(record) + "\n")
    return 0


# ---------------------------------------------------------------- the table side


def make_folds(n, directory, name):
    """Fold number of every row under scikit-learn's KFold(5, shuffle=True, random_state=0)."""
    from sklearn.model_selection import KFold

    fold_of = np.empty(n, dtype=np.int8)
    for fold, (_, test) in enumerate(KFold(N_FOLDS, shuffle=True, random_state=0).split(
            np.empty((n, 1)))):
        fold_of[test] = fold
    path = pathlib.Path(directory) / f"{name}-folds.npy"
    np.save(path, fold_of)
    return path


def missing_estimator(algorithm):
    """Why this interpreter's mfcy cannot run ``algorithm`` (None if it can)."""
    import mfcy

    name = MFCY_MODELS[algorithm][0]
    return None if hasattr(mfcy, name) else f"the installed mfcy {mfcy.__version__} has no mfcy.{name}"


def run_worker(python, system, algorithm, data, folds, fold):
    cmd = [python, str(HERE / "surprise_table.py"), "--worker", system,
           "--algorithm", algorithm, "--data", str(data), "--folds", str(folds),
           "--fold", str(fold)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE)
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}, no output"])[-1]
        return {"system": system, "algorithm": algorithm, "fold": fold, "error": tail}


def recorded_path(dataset, algorithm):
    return RESULTS / f"{dataset}-{algorithm}.json"


def load_recorded(dataset, algorithm):
    """The recorded folds of Surprise's run (possibly not all five yet), or None."""
    path = recorded_path(dataset, algorithm)
    if not path.exists():
        return None
    return json.loads(path.read_text())["folds"] or None


def record_surprise(dataset, algorithm, result):
    """Merge one fold of Surprise's into its record (metrics and timings only).

    Folds may be recorded by several invocations at once (``--folds-to-run``),
    hence the lock; a fold measured again replaces the old one.
    """
    import fcntl

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = recorded_path(dataset, algorithm)
    keys = ("fold", "n_train", "n_test", "fit_seconds", "cpu_seconds", "rmse", "mae")
    with open(RESULTS.parent / ".surprise_table.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        folds = json.loads(path.read_text())["folds"] if path.exists() else []
        folds = sorted([f for f in folds if f["fold"] != result["fold"]]
                       + [{k: result[k] for k in keys if k in result}
                          | {"date": time.strftime("%Y-%m-%d %H:%M")}],
                       key=lambda f: f["fold"])
        path.write_text(json.dumps({
            "what": f"Surprise {result['version']} {algorithm} at its defaults, one thread, "
                    f"on {dataset}, scikit-learn KFold(5, shuffle=True, random_state=0) over "
                    "the rows, predictions clipped to [1, 5] (benchmarks/surprise_table.py); "
                    "fit_seconds wall clock, cpu_seconds the process's CPU time of the fit",
            "cpu": cpu_description(), "version": result["version"], "folds": folds},
            indent=1) + "\n")


def summarize(rows):
    """(mean RMSE, mean MAE, median fit s, median CPU s, total fit s) over the folds."""
    cpu = [r["cpu_seconds"] for r in rows if "cpu_seconds" in r]
    return (float(np.mean([r["rmse"] for r in rows])), float(np.mean([r["mae"] for r in rows])),
            median([r["fit_seconds"] for r in rows]), median(cpu) if cpu else float("nan"),
            sum(r["fit_seconds"] for r in rows))


def speedups(theirs, ours):
    """Median over the folds of Surprise's seconds / mfcy's, wall clock and CPU ("" if n/a)."""
    theirs = {r["fold"]: r for r in theirs if "error" not in r}
    if len(ours) != N_FOLDS or len(theirs) != N_FOLDS:
        return "", ""
    out = []
    for key in ("fit_seconds", "cpu_seconds"):
        ratios = [theirs[r["fold"]][key] / r[key] for r in ours
                  if key in r and key in theirs[r["fold"]]]
        out.append(f"{median(ratios):.1f}x" if len(ratios) == N_FOLDS else "")
    return tuple(out)


def print_table(results, datasets, algorithms, recorded):
    print(f"\n{cpu_description()}; {time.strftime('%Y-%m-%d')}; 5-fold CV "
          "(sklearn KFold(5, shuffle=True, random_state=0)), defaults, 1 thread, "
          "predictions clipped to [1, 5]; a shared machine: compare ratios")
    header = (f"{'data':10} {'algorithm':12} {'system':14} {'RMSE':>7} {'MAE':>7} "
              f"{'fit s/fold':>10} {'CPU s/fold':>10} {'5 folds s':>9} "
              f"{'published RMSE/MAE/time':>30} {'mfcy speed-up wall':>18} {'CPU':>7}")
    print(header)
    print("-" * len(header))
    for dataset in datasets:
        for algorithm in algorithms:
            published = PUBLISHED[(dataset, algorithm)]
            pub = f"{published[0]:.3f} / {published[1]:.3f} / {published[2]}"
            by_system = {s: results.get((dataset, algorithm, s), []) for s in ("surprise",
                                                                               "mfcy")}
            for system, rows in by_system.items():
                errors = [r["error"] for r in rows if "error" in r]
                good = [r for r in rows if "error" not in r]
                rec = system == "surprise" and (dataset, algorithm) in recorded
                label = system + (" (recorded)" if rec else "")
                if good and len(good) < N_FOLDS:
                    label = f"{system} ({len(good)}/{N_FOLDS} folds)"
                if errors or not good:
                    why = errors[0] if errors else "not run"
                    print(f"{dataset:10} {algorithm:12} {label:14} {why}")
                    continue
                rmse, mae, per_fold, cpu_per_fold, total = summarize(good)
                wall, cpu = ("", "")
                if system == "mfcy":
                    wall, cpu = speedups(by_system["surprise"], good)
                    star = "*" if (dataset, algorithm) in recorded and wall else ""
                    wall, cpu = wall + star, cpu + star
                shown_pub = pub if system == "surprise" else ""
                print(f"{dataset:10} {algorithm:12} {label:14} {rmse:7.4f} {mae:7.4f} "
                      f"{per_fold:10.3f} {cpu_per_fold:10.3f} {total:9.2f} {shown_pub:>30} "
                      f"{wall:>18} {cpu:>7}")
    print("\nRMSE, MAE: means over the folds; fit s/fold, CPU s/fold: medians over the folds "
          "(wall clock; CPU time of the fitting process); 5 folds s: the sum of the wall "
          "clock; mfcy speed-up: median over the folds of Surprise's seconds / mfcy's on the "
          "same fold (wall clock, CPU time); published: Surprise's README (ML-1M there)")
    if recorded:
        print("recorded: Surprise's result recorded by an earlier run (--skip-slow-peers), "
              "read from benchmarks/results/surprise_table/; * its speed-up compares "
              "runs of different invocations; k/5 folds: only k folds recorded so far "
              "(complete them with --folds-to-run; folds merge into the record)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-python", default=None,
                   help="python of the peers' venv (Surprise); without it Surprise is not run")
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--algorithms", default=",".join(ALGORITHMS))
    p.add_argument("--systems", default="surprise,mfcy")
    p.add_argument("--folds-to-run", default=",".join(map(str, range(N_FOLDS))),
                   help="subset of the folds (for trying the script; the table wants all 5)")
    p.add_argument("--ml100k", default=str(ML100K), help="path of ML-100K's u.data")
    p.add_argument("--ml1m", default=str(ML1M), help="path of ML-1M-star's ratings.tsv.gz")
    p.add_argument("--skip-slow-peers", action="store_true",
                   help="reuse the recorded Surprise results of " +
                        ", ".join(f"{a} on {d}" for d, a in sorted(SLOW_PEERS)))
    p.add_argument("--json", default=str(HERE / "results" / "surprise_table_run.json"),
                   help="where this run's results (metrics only) go")
    p.add_argument("--from-json", nargs="+", default=None, metavar="JSON",
                   help="print the table of earlier runs (--json) instead of running; the "
                        "folds of several files (e.g. one run per fold) are put together")
    # --worker mode: one fit, run by the table side (possibly in the peers' venv).
    p.add_argument("--worker", choices=["surprise", "mfcy"], help=argparse.SUPPRESS)
    p.add_argument("--algorithm", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--folds", help=argparse.SUPPRESS)
    p.add_argument("--fold", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    datasets = args.datasets.split(",")
    algorithms = args.algorithms.split(",")
    systems = args.systems.split(",")
    folds_to_run = [int(f) for f in args.folds_to_run.split(",")]
    for name, known in (("datasets", DATASETS), ("algorithms", ALGORITHMS),
                        ("systems", ("surprise", "mfcy"))):
        unknown = set(locals()[name]) - set(known)
        if unknown:
            p.error(f"--{name}: unknown {sorted(unknown)}; choose from {list(known)}")
    paths = {"ml-100k": pathlib.Path(args.ml100k), "ml-1m-star": pathlib.Path(args.ml1m)}

    if args.from_json:
        # Print the table of an earlier run again, Surprise's slow records re-read.
        results, recorded, datasets, algorithms = {}, set(), [], []
        for path in args.from_json:
            saved = json.loads(pathlib.Path(path).read_text())
            for key, rows in saved["results"].items():
                results.setdefault(tuple(key.split("|")), []).extend(rows)
            recorded |= {tuple(pair) for pair in saved["recorded"]}
            datasets += [d for d in saved["datasets"] if d not in datasets]
            algorithms += [a for a in saved["algorithms"] if a not in algorithms]
            print(f"(read from {path}, the run of {saved['date']})")
        for rows in results.values():  # one row per fold; an error row once
            rows[:] = list({r.get("fold", r.get("error")): r for r in rows}.values())
    else:
        results, recorded = run_folds(args, datasets, algorithms, systems, folds_to_run, paths)
        pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.json).write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d %H:%M"), "datasets": datasets,
            "algorithms": algorithms, "recorded": sorted(recorded),
            "results": {"|".join(key): rows for key, rows in results.items()}}) + "\n")
    for dataset, algorithm in recorded:
        # Read last: a run recording it in the background may have finished meanwhile.
        results[(dataset, algorithm, "surprise")] = load_recorded(dataset, algorithm) or [{
            "error": f"no record in {recorded_path(dataset, algorithm)}: "
                     "run once without --skip-slow-peers"}]
    print_table(results, datasets, algorithms, recorded)
    return 0


def run_folds(args, datasets, algorithms, systems, folds_to_run, paths):
    """Every (data set, fold, algorithm, system) in turn: results per (data, algorithm, system)."""
    results, recorded = {}, set()
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in datasets:
            data = paths[dataset]
            fold_file = make_folds(len(load_triples(data)[2]), tmp, dataset)
            if args.skip_slow_peers and "surprise" in systems:
                recorded |= {(dataset, a) for a in algorithms if (dataset, a) in SLOW_PEERS}
            for fold in folds_to_run:
                for algorithm in algorithms:
                    for system in systems:
                        if system == "surprise" and (dataset, algorithm) in recorded:
                            continue
                        if system == "surprise" and args.peer_python is None:
                            result = {"error": "not run (no --peer-python)"}
                        elif system == "mfcy" and missing_estimator(algorithm):
                            result = {"error": missing_estimator(algorithm)}
                        else:
                            python = sys.executable if system == "mfcy" else args.peer_python
                            result = run_worker(python, system, algorithm, data, fold_file,
                                                fold)
                        results.setdefault((dataset, algorithm, system), []).append(result)
                        if system == "surprise" and "error" not in result:
                            record_surprise(dataset, algorithm, result)
                        shown = (result["error"] if "error" in result else
                                 f"RMSE {result['rmse']:.4f}  fit {result['fit_seconds']:.2f} s")
                        print(f"  {dataset} fold {fold} {algorithm} {system}: {shown}",
                              file=sys.stderr, flush=True)
    return results, recorded


if __name__ == "__main__":
    sys.exit(main())
