"""Time and peak memory of ``mfcy.datasets.load_ratings`` on ML-1M-star.

    python benchmarks/load_ratings.py [--data PATH] [--repeats 5]

Each run is a fresh Python process that first imports mfcy and pandas (the
baseline), then loads the file once. Peak memory is the process's peak
resident set size during the load alone: the kernel's high-water mark
(``VmHWM``) is reset after the imports by writing 5 to
``/proc/self/clear_refs`` and read after the load, so the figure is the
extra memory the load needed at its worst moment, not the interpreter's. It
is compared with the bytes of the arrays the load returns.

The baseline run in the same invocation is a bare ``pandas.read_csv`` of the
same file into three columns (no validation, no checks): its time and peak
are the floor that pandas itself sets.

Targets (issue #4): ≤ 1.5 s, peak ≤ 3× the final arrays.
"""

import argparse
import json
import statistics
import subprocess
import sys

from _common import ML1M, cpu_description

CHILD = r"""
import json, sys, time

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)

import numpy, pandas, mfcy, mfcy.datasets
path, how = sys.argv[1], sys.argv[2]
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    method = "VmHWM reset after imports"
except OSError:
    method = "VmHWM (not resettable: includes the imports)"
baseline = status("VmRSS")
start = time.perf_counter()
if how == "mfcy":
    frame = mfcy.datasets.load_ratings(path)
else:
    frame = pandas.read_csv(path, sep="\t", header=None, usecols=[0, 1, 2],
                            names=["user", "item", "rating"])
seconds = time.perf_counter() - start
peak = status("VmHWM")
final = sum(frame[c].to_numpy().nbytes for c in frame.columns)
print(json.dumps({"seconds": seconds, "extra_peak": peak - baseline, "final": final,
                  "rows": len(frame), "method": method,
                  "dtypes": [str(frame[c].dtype) for c in frame.columns]}))
"""


def run(path, how):
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), how], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ML1M))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    runs = {"mfcy": [], "pandas": []}
    for _ in range(args.repeats):
        for how in runs:  # alternated, so that machine noise hits both alike
            runs[how].append(run(args.data, how))
    first = runs["mfcy"][0]
    print(f"{cpu_description()}; {args.data}: {first['rows']:,} rows, "
          f"{args.repeats} fresh processes each; peak memory by {first['method']}")
    medians = {}
    for how, label in (("pandas", "bare pandas.read_csv"), ("mfcy", "mfcy load_ratings")):
        seconds = statistics.median(r["seconds"] for r in runs[how])
        peak = statistics.median(r["extra_peak"] for r in runs[how])
        final = runs[how][0]["final"]
        medians[how] = (seconds, peak)
        times = ", ".join(f"{r['seconds']:.2f}" for r in runs[how])
        print(f"{label:22s}: median {seconds:.3f} s (runs {times}); "
              f"peak +{peak / 2**20:.1f} MB = {peak / final:.2f}x its arrays "
              f"({final / 2**20:.1f} MB, {'/'.join(runs[how][0]['dtypes'])})")
    seconds, peak = medians["mfcy"]
    print(f"load_ratings / bare read_csv: time {seconds / medians['pandas'][0]:.2f}x, "
          f"peak {peak / medians['pandas'][1]:.2f}x")
    final = runs["mfcy"][0]["final"]
    print(f"targets: time {seconds:.2f} s <= 1.5 s: {'met' if seconds <= 1.5 else 'MISSED'}; "
          f"peak {peak / final:.2f}x <= 3x the arrays: "
          f"{'met' if peak <= 3 * final else 'MISSED'}")


if __name__ == "__main__":
    main()
