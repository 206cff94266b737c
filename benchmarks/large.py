"""Netflix-size data end to end: ``mfcy fit`` on a Parquet directory and on a CSV,
its phase times and peak RSS, against the targets of issue 17; LIBMF's seconds
per epoch on the same ratings.

    python benchmarks/make_large.py /tmp/large                     # 100,480,507 ratings
    python benchmarks/make_large.py /tmp/large-str --string-ids --no-csv
    flock /work/bench.lock python benchmarks/large.py /tmp/large \\
        [--string-dir /tmp/large-str] [--inputs parquet,csv] [--libmf] [--epoch-rounds 3]

Run from outside the source tree (``cd /tmp``) so that the installed mfcy is
imported. Each fit is a fresh ``python -m mfcy fit DIR/ratings.parquet`` (or
``DIR/ratings.csv.gz``) ``--factors 100 --epochs 20 --threads 2 --model ...``
process; its wall time is the end-to-end time, its peak RSS is the kernel's
``ru_maxrss`` of that process (``os.wait4``: the high-water mark of the whole
process, the interpreter and imports included), and the phase times are the
``phases:`` line that ``mfcy fit`` prints.

Targets (issue 17), checked and printed:

* end to end <= 5 minutes (Parquet, integer ids);
* peak RSS <= 3 x (triples bytes + factors bytes), the triples being
  (int32, int32, float32) = 12 bytes a rating and the factors
  (n_users + n_items) x k float32 (plus the biases);
* with string ids (``--string-dir``), peak RSS <= 1.5 x the integer-id run.

``--libmf``: python-libmf (``--peers-python``, the peers' venv) on the same
ratings, same k and threads: the ratings are written once as an (n, 3) float32
``.npy`` of dense indices (not timed), loaded by LIBMF's process, and
``MF.fit`` is timed with ``nr_iters`` 1 and ``1 + --libmf-epochs``: the
difference over ``--libmf-epochs`` is LIBMF's seconds per epoch, its set-up (the
copy into its own triples, the grid) cancelled out. mfcy's seconds per epoch are
the Parquet fit's ``epochs`` phase (printed by ``mfcy fit``) over its number of
epochs. ``--epoch-rounds N`` measures both in alternation instead: N rounds of an
``mfcy fit`` of ``--libmf-epochs`` epochs and LIBMF's two fits, medians over the
rounds. Target: mfcy >= 1.5x faster per epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

FIVE_MINUTES = 300.0


def run_fit(path, args, extra=()):
    """(wall seconds, peak RSS bytes, stdout, stderr) of one ``mfcy fit`` process."""
    model = os.path.join(tempfile.gettempdir(), f"large-model-{os.getpid()}.npz")
    command = [sys.executable, "-m", "mfcy", "fit", path, "--factors", str(args.factors),
               "--epochs", str(args.epochs), "--threads", str(args.threads),
               "--model", model, *extra]
    out_path = os.path.join(tempfile.gettempdir(), f"large-out-{os.getpid()}.txt")
    err_path = out_path + ".err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd="/tmp")
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path) as out, open(err_path) as err:
        stdout, stderr = out.read(), err.read()
    for name in (out_path, err_path, model):
        if os.path.exists(name):
            os.remove(name)
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{stderr}")
    return seconds, usage.ru_maxrss * 1024, stdout, stderr


def counts(stdout):
    """(ratings, users, items) from the first line of ``mfcy fit``."""
    m = re.search(r"([\d,]+) ratings of ([\d,]+) users and ([\d,]+) items", stdout)
    return tuple(int(g.replace(",", "")) for g in m.groups())


def phases(stdout):
    m = re.search(r"^phases: (.*)$", stdout, re.M)
    return m.group(1) if m else "(no phases line)"


def epoch_seconds(stdout):
    m = re.search(r"epochs ([\d.]+) s", phases(stdout))
    return float(m.group(1)) if m else float("nan")


def bound(n, n_users, n_items, k):
    """3 x (triples (int32, int32, float32) + factors and biases (float32)) in bytes."""
    return 3 * (12 * n + (n_users + n_items) * (k + 1) * 4)


def report(label, seconds, peak, stdout, k):
    n, n_users, n_items = counts(stdout)
    limit = bound(n, n_users, n_items, k)
    print(f"{label}: {n:,} ratings ({n_users:,} users x {n_items:,} items), end to end "
          f"{seconds:.1f} s; peak RSS {peak / 1e9:.2f} GB = {peak / limit * 3:.2f}x "
          f"(triples + factors) (bound 3x = {limit / 1e9:.2f} GB: "
          f"{'met' if peak <= limit else 'NOT met'})", flush=True)
    print(f"  phases: {phases(stdout)}", flush=True)
    return n


LIBMF_CHILD = r"""
import json, os, sys, time
os.dup2(2, 1)  # libmf prints from C++; keep stdout for the JSON line
import numpy as np
from libmf import mf
path, k, threads, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
X = np.load(path)
engine = mf.MF(k=k, nr_iters=iters, nr_threads=threads, eta=0.1, lambda_p1=0.0,
               lambda_q1=0.0, lambda_p2=0.02, lambda_q2=0.02, quiet=True)
start = time.perf_counter()
engine.fit(X)
seconds = time.perf_counter() - start
sys.stderr.write("JSON" + json.dumps({"seconds": seconds}) + "\n")
"""


def libmf_seconds(npy, args, iters):
    err = subprocess.run([args.peers_python, "-c", LIBMF_CHILD, npy, str(args.factors),
                          str(args.threads), str(iters)], capture_output=True, text=True,
                         cwd="/tmp")
    if err.returncode:
        raise SystemExit(f"libmf failed: {err.stderr[-2000:]}")
    line = [x for x in err.stderr.splitlines() if x.startswith("JSON")][-1]
    return json.loads(line[4:])["seconds"]


def write_libmf_input(parquet, npy):
    """The ratings as an (n, 3) float32 array of dense 0-based indices (not timed)."""
    import numpy as np

    from mfcy._input import to_encoded
    from mfcy.datasets import load_ratings

    encoded = to_encoded(load_ratings(parquet))
    X = np.empty((len(encoded), 3), dtype=np.float32)
    X[:, 0] = encoded.users
    X[:, 1] = encoded.items
    X[:, 2] = encoded.ratings
    del encoded
    np.save(npy, X)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="a directory written by make_large.py (integer ids)")
    parser.add_argument("--string-dir", help="the same ratings written with --string-ids")
    parser.add_argument("--inputs", default="parquet,csv",
                        help="which files of DIR to fit: parquet, csv (comma-separated)")
    parser.add_argument("--factors", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--libmf", action="store_true", help="also time LIBMF per epoch")
    parser.add_argument("--libmf-only", action="store_true",
                        help="only LIBMF (mfcy's epoch time given by --mfcy-epoch)")
    parser.add_argument("--mfcy-epoch", type=float, help="mfcy's seconds per epoch")
    parser.add_argument("--libmf-epochs", type=int, default=2)
    parser.add_argument("--epoch-rounds", type=int, default=0, metavar="N",
                        help="N alternating rounds of an mfcy fit of --libmf-epochs epochs "
                             "and LIBMF's two fits: seconds per epoch, medians")
    parser.add_argument("--peers-python", default="/work/peers-venv/bin/python")
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"{os.cpu_count()} cores, load average {load}; k={args.factors}, "
          f"{args.epochs} epochs, {args.threads} threads", flush=True)
    parquet = os.path.join(args.dir, "ratings.parquet")
    int_peak, mfcy_epoch = None, args.mfcy_epoch
    inputs = [] if args.libmf_only else [kind for kind in args.inputs.split(",") if kind]
    for kind in inputs:
        path = parquet if kind == "parquet" else os.path.join(args.dir, "ratings.csv.gz")
        seconds, peak, stdout, _ = run_fit(path, args)
        report(f"mfcy fit {path}", seconds, peak, stdout, args.factors)
        if kind == "parquet":
            int_peak = peak
            mfcy_epoch = epoch_seconds(stdout) / args.epochs
            print(f"  end to end {seconds:.1f} s (target <= {FIVE_MINUTES:.0f} s: "
                  f"{'met' if seconds <= FIVE_MINUTES else 'NOT met'})", flush=True)
    if args.string_dir and not args.libmf_only:
        path = os.path.join(args.string_dir, "ratings.parquet")
        seconds, peak, stdout, _ = run_fit(path, args)
        report(f"mfcy fit {path} (string ids)", seconds, peak, stdout, args.factors)
        if int_peak:
            print(f"  string-id peak / integer-id peak: {peak / int_peak:.2f}x (target <= "
                  f"1.5x: {'met' if peak <= 1.5 * int_peak else 'NOT met'})", flush=True)
    if args.libmf or args.libmf_only:
        npy = os.path.join(tempfile.gettempdir(), f"large-libmf-{os.getpid()}.npy")
        try:
            write_libmf_input(parquet, npy)
            one = libmf_seconds(npy, args, 1)
            more = libmf_seconds(npy, args, 1 + args.libmf_epochs)
        finally:
            if os.path.exists(npy):
                os.remove(npy)
        per_epoch = (more - one) / args.libmf_epochs
        print(f"LIBMF MF.fit: {one:.1f} s with 1 iteration, {more:.1f} s with "
              f"{1 + args.libmf_epochs}: {per_epoch:.2f} s per epoch", flush=True)
        if mfcy_epoch:
            print(f"mfcy {mfcy_epoch:.2f} s per epoch: {per_epoch / mfcy_epoch:.2f}x faster "
                  f"than LIBMF (target >= 1.5x)", flush=True)
    if args.epoch_rounds:
        alternate_epochs(parquet, args)


def alternate_epochs(parquet, args):
    """Seconds per epoch of mfcy and LIBMF, measured in alternation, round by round."""
    npy = os.path.join(tempfile.gettempdir(), f"large-libmf-{os.getpid()}.npy")
    short = argparse.Namespace(**{**vars(args), "epochs": args.libmf_epochs})
    mfcy_runs, libmf_runs = [], []
    try:
        write_libmf_input(parquet, npy)
        for r in range(args.epoch_rounds):
            _, _, stdout, _ = run_fit(parquet, short)
            mfcy_runs.append(epoch_seconds(stdout) / args.libmf_epochs)
            one = libmf_seconds(npy, args, 1)
            more = libmf_seconds(npy, args, 1 + args.libmf_epochs)
            libmf_runs.append((more - one) / args.libmf_epochs)
            print(f"  round {r + 1}: mfcy {mfcy_runs[-1]:.2f} s per epoch ({args.libmf_epochs} "
                  f"epochs), LIBMF {libmf_runs[-1]:.2f} s: "
                  f"{libmf_runs[-1] / mfcy_runs[-1]:.2f}x", flush=True)
    finally:
        if os.path.exists(npy):
            os.remove(npy)
    mfcy_median, libmf_median = statistics.median(mfcy_runs), statistics.median(libmf_runs)
    print(f"alternating, medians of {args.epoch_rounds} rounds: mfcy {mfcy_median:.2f} s per "
          f"epoch, LIBMF {libmf_median:.2f} s: {libmf_median / mfcy_median:.2f}x faster than "
          f"LIBMF (target >= 1.5x)", flush=True)


if __name__ == "__main__":
    main()
