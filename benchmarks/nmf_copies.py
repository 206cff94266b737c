"""NMF's epoch on its two compiled copies (baseline and AVX2+FMA), by k, on ML-1M-star.

    python benchmarks/nmf_copies.py [--repeats 3] [--ks 8,15,16,32] [--data PATH] [--before PYTHON]

Each (copy, k) is a fresh process (``MFCY_ISA=baseline`` for the baseline copy,
unset for the best this CPU runs) fitting ``mfcy.NMF(n_factors=k, n_epochs=20,
track_loss=False)`` on one thread to the reference split's training ratings;
it prints the median of ``history_["epoch_seconds"]``. ``--before PYTHON``
adds a column: the same fit by another interpreter's mfcy (e.g. one built from
an earlier commit), at its default copy. The columns alternate round by round;
the table holds the medians over the rounds and the ratios.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from _common import ML1M, cpu_description, median

CHILD = """
import json, sys
sys.path.insert(0, {here!r})
import numpy as np
import mfcy, mfcy._models
from _common import load_triples, reference_split
users, items, ratings = load_triples({data!r})
train, _ = reference_split(len(ratings))
X = np.column_stack([users, items])[train]
model = mfcy.NMF(n_factors={k}, n_epochs=20, track_loss=False, n_threads=1, random_state=0)
model.fit(X, ratings[train])
print(json.dumps({{"copy": getattr(mfcy._models, "nmf_vector_isa", lambda: "before")(),
                  "epoch": float(np.median(model.history_["epoch_seconds"]))}}))
"""


def run(copy, k, data, python=sys.executable):
    env = dict(os.environ)
    env.pop("MFCY_ISA", None)
    if copy == "baseline":
        env["MFCY_ISA"] = "baseline"
    here = os.path.dirname(os.path.abspath(__file__))
    code = CHILD.format(here=here, data=str(data), k=k)
    out = subprocess.run([python, "-c", code], env=env, capture_output=True,
                         text=True, check=True, cwd="/")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ks", default="8,15,16,32")
    parser.add_argument("--data", default=str(ML1M), help="ML-1M-star's ratings.tsv.gz")
    parser.add_argument("--before", default=None, metavar="PYTHON",
                        help="an interpreter with another build of mfcy, for a third column")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    epochs = {}
    names = {}
    for _ in range(args.repeats):
        for k in ks:
            for copy in ("baseline", "auto"):
                result = run(copy, k, args.data)
                names[copy] = result["copy"]
                epochs.setdefault((copy, k), []).append(result["epoch"])
            if args.before:
                result = run("before", k, args.data, args.before)
                epochs.setdefault(("before", k), []).append(result["epoch"])
    print(f"{cpu_description()}; {time.strftime('%Y-%m-%d %H:%M')}; ML-1M-star reference "
          f"split, NMF 20 epochs, 1 thread; epoch ms, medians of {args.repeats} rounds")
    before = " before / best" if args.before else ""
    print(f"{'k':>4s} {names['baseline']:>10s} {names['auto']:>10s}"
          + (f" {'before':>10s}" if args.before else "") + f"  baseline / best{before}")
    for k in ks:
        base, best = median(epochs[("baseline", k)]), median(epochs[("auto", k)])
        line = f"{k:4d} {1e3 * base:10.2f} {1e3 * best:10.2f}"
        if args.before:
            line += f" {1e3 * median(epochs[('before', k)]):10.2f}"
        line += f"  {base / best:.2f}x"
        if args.before:
            line += f"  {median(epochs[('before', k)]) / best:.2f}x"
        print(line)


if __name__ == "__main__":
    main()
