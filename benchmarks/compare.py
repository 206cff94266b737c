"""mfcy against its peers on ML-1M-star: one command, one table.

    python benchmarks/compare.py --peer-python /work/peers-venv/bin/python [--repeats 5]

Every measurement is a fresh subprocess (``run_mfcy.py`` for mfcy, ``peers.py``
in the peers' own venv for cornac, Surprise and libmf), so each reports the
peak RSS of a whole process that loads the data, fits and evaluates. The
configurations run in turn, ``--repeats`` rounds, alternating, and the table
shows medians; ratios are against cornac with one thread, measured in the same
invocation. The pure-Python lesson loop runs in-process on a 20,000-rating
sample (updates/s only).

Build the peers' venv first (outside the repository)::

    python3 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install -r benchmarks/requirements-peers.txt

A peer that cannot run is reported as missing, never silently skipped.
Results also go, one JSON object per line, to ``--jsonl``.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np

from _common import ML1M, cpu_description, load_triples

HERE = pathlib.Path(__file__).resolve().parent

# The baseline of the ratio column: cornac, one thread (at the row's k).
REFERENCE = ("cornac", 1, 100)


def configurations(factors_list, quick):
    configs = []
    for k in factors_list:
        configs += [
            (f"cornac k={k} 1t", "cornac", {"factors": k, "threads": 1}),
            (f"mfcy k={k} 1t", "mfcy", {"factors": k, "threads": 1}),
            (f"mfcy k={k} 1t csr", "mfcy", {"factors": k, "threads": 1, "input": "csr"}),
            (f"cornac k={k} 2t", "cornac", {"factors": k, "threads": 2}),
            (f"mfcy k={k} 2t", "mfcy", {"factors": k, "threads": 2}),
        ]
    configs += [
        ("mfcy k=100 1t float64", "mfcy", {"factors": 100, "threads": 1, "dtype": "float64"}),
        ("mfcy k=100 1t track_loss", "mfcy", {"factors": 100, "threads": 1, "track_loss": True}),
        ("libmf k=100 1t", "libmf", {"factors": 100, "threads": 1}),
        ("libmf k=100 2t", "libmf", {"factors": 100, "threads": 2}),
    ]
    if not quick:
        configs.append(("surprise k=100 1t", "surprise", {"factors": 100, "threads": 1}))
    return configs


def command(runner, options, args):
    common = ["--data", str(args.data), "--factors", str(options["factors"]),
              "--threads", str(options["threads"]), "--epochs", str(args.epochs)]
    if runner == "mfcy":
        cmd = [sys.executable, str(HERE / "run_mfcy.py"), *common,
               "--dtype", options.get("dtype", "float32"), "--input", options.get("input", "pairs")]
        if options.get("track_loss"):
            cmd.append("--track-loss")
        return cmd
    if args.peer_python is None:
        return None
    return [args.peer_python, str(HERE / "peers.py"), "--system", runner, *common]


def run(cmd):
    env = dict(os.environ)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE)
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        result = json.loads(line)
    except json.JSONDecodeError:
        result = {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    if proc.returncode != 0 and "error" not in result:
        result["error"] = f"exit {proc.returncode}"
    return result


def python_loop_rate(data, k=100, n=20_000):
    """The seed notebook's per-rating loop (numpy rows), in this process."""
    users, items, ratings = load_triples(data)
    rng = np.random.default_rng(0)
    sample = rng.choice(len(ratings), size=n, replace=False)
    U = 0.1 * rng.standard_normal((users.max() + 1, k))
    V = 0.1 * rng.standard_normal((items.max() + 1, k))
    start = time.perf_counter()
    for t in sample:
        i, j = users[t], items[t]
        err = ratings[t] - U[i] @ V[j]
        U[i] += 0.005 * (err * V[j] - 0.02 * U[i])
        V[j] += 0.005 * (err * U[i] - 0.02 * V[j])
    return n / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ML1M))
    parser.add_argument("--peer-python", default=None,
                        help="python of the peers' venv (cornac, Surprise, libmf)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--factors", default="100,32,8", help="comma-separated k values")
    parser.add_argument("--quick", action="store_true", help="leave Surprise out (slow)")
    parser.add_argument("--jsonl", default=str(HERE / "results" / "compare.jsonl"))
    args = parser.parse_args()
    if not pathlib.Path(args.data).exists():
        sys.exit(f"data file not found: {args.data} (pass --data)")

    configs = configurations([int(k) for k in args.factors.split(",")], args.quick)
    results = {label: [] for label, _, _ in configs}
    missing = {}
    pathlib.Path(args.jsonl).parent.mkdir(parents=True, exist_ok=True)
    with open(args.jsonl, "a") as out:
        for round_ in range(args.repeats):
            for label, runner, options in configs:
                if label in missing:
                    continue
                cmd = command(runner, options, args)
                if cmd is None:
                    missing[label] = "no --peer-python given"
                    continue
                result = run(cmd)
                if "error" in result:
                    missing[label] = result["error"]
                    print(f"  {label}: MISSING ({result['error']})", file=sys.stderr)
                    continue
                result.update(label=label, round=round_, date=time.strftime("%Y-%m-%d"))
                out.write(json.dumps(result) + "\n")
                results[label].append(result)
                print(f"  round {round_ + 1}/{args.repeats} {label}: "
                      f"{result['updates_per_s'] / 1e6:.1f} M/s", file=sys.stderr)
    python_rate = python_loop_rate(args.data)

    def med(label, key):
        values = [r[key] for r in results[label] if r.get(key) is not None]
        return statistics.median(values) if values else None

    # k=100 rows without a cornac k=100 run of their own (float64, track_loss)
    # fall back to the first k measured.
    ref = med(f"cornac k={REFERENCE[2]} 1t", "updates_per_s") or med(
        f"cornac k={args.factors.split(',')[0]} 1t", "updates_per_s")

    def reference_for(k):  # cornac, one thread, same k
        return med(f"cornac k={k} 1t", "updates_per_s") or ref
    print(f"\n{cpu_description()}; {time.strftime('%Y-%m-%d')}; medians of {args.repeats} "
          "alternating runs; ML-1M-star 90/10 reference split, 20 epochs, lr 0.005, reg 0.02")
    header = (f"{'system':30} {'thr':>3} {'k':>4} {'fit s':>7} {'M upd/s':>8} {'RMSE':>7} "
              f"{'MAE':>7} {'RSS MB':>7} {'vs cornac 1t, same k':>20}")
    print(header)
    print("-" * len(header))
    for label, runner, options in configs:
        if label in missing:
            print(f"{label:30} MISSING: {missing[label]}")
            continue
        rate = med(label, "updates_per_s")
        same_k = reference_for(options["factors"])
        ratio = f"{rate / same_k:.2f}x" if same_k else "n/a"
        rmse, mae = med(label, "test_rmse"), med(label, "test_mae")
        print(f"{label:30} {options['threads']:>3} {options['factors']:>4} "
              f"{med(label, 'fit_seconds'):7.3f} {rate / 1e6:8.2f} "
              f"{rmse if rmse is not None else float('nan'):7.4f} "
              f"{mae if mae is not None else float('nan'):7.4f} "
              f"{med(label, 'peak_rss_mb'):7.0f} {ratio:>20}")
    print(f"{'python lesson loop (sample)':30} {1:>3} {100:>4} {'':>7} {python_rate / 1e6:8.3f} "
          f"{'':>7} {'':>7} {'':>7} {python_rate / ref if ref else float('nan'):>19.3f}x")
    loss = med("mfcy k=100 1t track_loss", "loss_fraction")
    if loss is not None:
        print(f"\nmfcy loss pass: {100 * loss:.0f} % of an SGD epoch (k=100, 1 thread, median)")
    for k in [int(k) for k in args.factors.split(",")]:
        one, two = med(f"mfcy k={k} 1t", "updates_per_s"), med(f"mfcy k={k} 2t", "updates_per_s")
        if one and two:
            print(f"mfcy k={k}: 2 threads / 1 thread = {two / one:.2f}x")
    f64 = med("mfcy k=100 1t float64", "updates_per_s")
    f32 = med("mfcy k=100 1t", "updates_per_s")
    if f64 and f32:
        print(f"mfcy k=100: float64 / float32 = {f64 / f32:.2f}x")


if __name__ == "__main__":
    main()
