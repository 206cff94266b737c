"""Shared by the benchmark scripts: data loading, the reference split, timing."""

from __future__ import annotations

import gzip
import os
import pathlib
import resource
import statistics

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
#: ../shared/data beside the project root (never copied into the project).
SHARED_DATA = HERE.parent.parent / "shared" / "data"
ML1M = SHARED_DATA / "ml-1m-star" / "ratings.tsv.gz"
ML100K = SHARED_DATA / "ml-100k" / "u.data"


def load_triples(path):
    """(users, items, ratings) of a tab-separated ratings file (gzip ok)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise SystemExit(f"data file not found: {path} (pass --data)")
    try:
        import pandas as pd

        # Narrow dtypes: the harness should not weigh more than the fit it measures.
        frame = pd.read_csv(path, sep="\t", header=None, usecols=[0, 1, 2],
                            names=["user", "item", "rating"],
                            dtype={"user": np.int32, "item": np.int32, "rating": np.float32})
        return (frame["user"].to_numpy(), frame["item"].to_numpy(),
                frame["rating"].to_numpy())
    except ImportError:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as f:
            data = np.loadtxt(f, delimiter="\t", usecols=(0, 1, 2))
        return data[:, 0].astype(np.int64), data[:, 1].astype(np.int64), data[:, 2]


def reference_split(n, test_fraction=0.1, seed=0):
    """The published split: the first 10 % of default_rng(0).permutation(n) is test."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(n * test_fraction)
    return perm[n_test:], perm[:n_test]


def peak_rss_mb():
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median(values):
    return statistics.median(values)


def cpu_description():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"
