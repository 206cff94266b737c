"""Reading ratings: Parquet -> encoded triples against pandas' read_csv of the same
data as CSV; the CSV path with pyarrow against the one with pandas.

    python benchmarks/make_large.py /tmp/large --ratings 10000000
    python benchmarks/read_speed.py /tmp/large [--repeats 3]

Run from outside the source tree (``cd /tmp``) so that the installed mfcy is
imported. DIR holds ``ratings.parquet/`` and ``ratings.csv.gz`` as
``make_large.py`` writes them; a plain ``ratings.csv`` is decompressed from the
gzip once (not timed), so that both CSV forms are measured.

Each measurement is a fresh Python process (imports done before the clock
starts; peak memory is the high-water mark after the imports, by resetting
``VmHWM``). Methods, alternated repeat by repeat so that machine noise hits all
alike:

* ``read_csv``: bare ``pandas.read_csv`` of the CSV (the baseline: three
  columns, no validation, no encoding);
* ``parquet->encoded``: ``load_ratings(ratings.parquet)`` then
  ``mfcy._input.to_encoded`` (ids mapped to dense indices: what ``fit`` trains on);
* ``csv pyarrow`` / ``csv pandas``: ``load_ratings(csv, engine=...)``, each then
  encoded too.

Targets (issue 17): Parquet -> encoded >= 5x faster than read_csv of the CSV;
the CSV path with pyarrow >= 2x pandas'.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

import numpy, pandas, pyarrow, pyarrow.csv, pyarrow.dataset, mfcy, mfcy.datasets, mfcy._input
path, how = sys.argv[1], sys.argv[2]
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS")
start = time.perf_counter()
if how == "read_csv":
    frame = pandas.read_csv(path)
    n = len(frame)
else:
    engine = {"csv pyarrow": "pyarrow", "csv pandas": "pandas"}.get(how)
    frame = mfcy.datasets.load_ratings(path, engine=engine)
    encoded = mfcy._input.to_encoded(frame)
    n = len(encoded)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak": status("VmHWM") - base, "rows": n}))
"""


def run(path, how):
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), how], check=True,
                         capture_output=True, text=True, cwd="/tmp").stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="a directory written by make_large.py")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    parquet = os.path.join(args.dir, "ratings.parquet")
    gz = os.path.join(args.dir, "ratings.csv.gz")
    plain = os.path.join(args.dir, "ratings.csv")
    if not os.path.exists(plain):
        with gzip.open(gz, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 24)

    cases = [("read_csv", plain), ("read_csv", gz), ("parquet->encoded", parquet),
             ("csv pyarrow", plain), ("csv pandas", plain),
             ("csv pyarrow", gz), ("csv pandas", gz)]
    runs = {case: [] for case in cases}
    for _ in range(args.repeats):
        for how, path in cases:
            runs[(how, path)].append(run(path, how))
    rows = runs[cases[0]][0]["rows"]
    print(f"{rows:,} ratings; {args.repeats} fresh processes each; {os.cpu_count()} cores; "
          f"Parquet {du(parquet) / 1e6:.0f} MB, CSV {os.path.getsize(plain) / 1e6:.0f} MB, "
          f"gzip CSV {os.path.getsize(gz) / 1e6:.0f} MB")
    medians = {}
    for (how, path), results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        peak = statistics.median(r["peak"] for r in results)
        medians[(how, path)] = seconds
        label = f"{how} ({os.path.basename(path)})"
        times = ", ".join(f"{r['seconds']:.2f}" for r in results)
        print(f"{label:38s} median {seconds:7.2f} s  (runs {times}); peak +{peak / 1e6:,.0f} MB")
    for path in (plain, gz):
        name = os.path.basename(path)
        print(f"parquet->encoded vs read_csv({name}): "
              f"{medians[('read_csv', path)] / medians[('parquet->encoded', parquet)]:.1f}x "
              "faster (target >= 5x)")
        print(f"csv pyarrow vs csv pandas ({name}): "
              f"{medians[('csv pandas', path)] / medians[('csv pyarrow', path)]:.2f}x faster "
              "(target >= 2x)")


def du(path):
    return sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path))


if __name__ == "__main__":
    main()
