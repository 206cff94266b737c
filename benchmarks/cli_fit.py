"""Wall time and peak RSS of the whole ``mfcy fit`` process on ML-1M-star.

    python benchmarks/cli_fit.py [--data PATH] [--repeats 3] [--threads 1] [--test-fraction 0.1]

Runs ``mfcy fit DATA --model TMP.npz --quiet`` (default hyperparameters: k=100,
20 epochs, float32) as a child process, several times, and reads each child's
own peak resident set size from ``os.wait4`` (its ``ru_maxrss``: the whole
process, interpreter and imports included). The baseline run in the same
invocation is a child that only starts Python and imports what ``mfcy fit``
imports (numpy, pandas, mfcy.cli), so the difference is the cost of the data
and the training.

Target (issue #4): peak RSS of the whole process ≤ 200 MB.
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from _common import ML1M, cpu_description

SCRIPT = pathlib.Path(sys.executable).with_name("mfcy")
MFCY = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "mfcy"]


def measure(argv):
    """(wall seconds, peak RSS in MB, stdout) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would give the
    # largest of all children so far).
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stdout, stderr = process.stdout.read(), process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} exited {code}:\n{stdout}\n{stderr}")
    return seconds, usage.ru_maxrss / 1024, stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ML1M))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--test-fraction", type=float, default=None)
    parser.add_argument("--plot", action="store_true", help="also draw --plot loss.png")
    args = parser.parse_args()
    if not pathlib.Path(args.data).exists():
        raise SystemExit(f"data file not found: {args.data} (pass --data)")

    baseline_argv = [sys.executable, "-c", "import numpy, pandas, mfcy.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        fit_argv = MFCY + ["fit", args.data, "--model", os.path.join(tmp, "m.npz"), "--quiet"]
        if args.threads:
            fit_argv += ["--threads", str(args.threads)]
        if args.test_fraction:
            fit_argv += ["--test-fraction", str(args.test_fraction)]
        if args.plot:
            fit_argv += ["--plot", os.path.join(tmp, "loss.png")]
        runs = {"baseline": [], "fit": []}
        summary = ""
        for _ in range(args.repeats):
            runs["baseline"].append(measure(baseline_argv)[:2])
            seconds, rss, summary = measure(fit_argv)
            runs["fit"].append((seconds, rss))
    print(f"{cpu_description()}")
    print(f"$ mfcy {' '.join(fit_argv[len(MFCY):]).replace(tmp, 'TMP')}")
    print("  " + summary.strip().replace(tmp, "TMP").replace("\n", "\n  "))
    medians = {}
    for key, label in (("baseline", "python + imports only"), ("fit", "mfcy fit, whole process")):
        seconds = statistics.median(r[0] for r in runs[key])
        rss = statistics.median(r[1] for r in runs[key])
        medians[key] = (seconds, rss)
        print(f"{label:25s}: wall median {seconds:.2f} s (runs "
              f"{', '.join(f'{r[0]:.2f}' for r in runs[key])}), peak RSS median {rss:.0f} MB "
              f"(runs {', '.join(f'{r[1]:.0f}' for r in runs[key])})")
    seconds, rss = medians["fit"]
    print(f"data + training over the baseline: +{seconds - medians['baseline'][0]:.2f} s, "
          f"+{rss - medians['baseline'][1]:.0f} MB; peak RSS {rss:.0f} MB <= 200 MB: "
          f"{'met' if rss <= 200 else 'MISSED'}")


if __name__ == "__main__":
    main()
