"""The kernel table: one SGD epoch per copy of the loops (SSE2, AVX2+FMA, AVX-512F) and k.

    python benchmarks/kernel_isa.py [--repeats 5] [--factors 8,16,32,64,100]
        [--before /path/to/other/venv/bin/python]

ML-1M-star, the 90 % training part of the reference split, biased MF, float32
(``--dtype``), one thread, lr 0.005, reg 0.02. Each cell is the median over
``--repeats`` rounds of the median SGD epoch (``history_["epoch_seconds"]``,
epochs 2-6 of a 6-epoch fit, the set-up excluded) and of the loss pass
(``history_["loss_seconds"]``, the same fits with ``track_loss=True``). In one
round every (copy, k) runs once, in turn, in one process per interpreter, so
the copies are compared on the same load. The AVX-512F copy is timed at every
k (``_set_vector_isa("avx512", avx512_min_k=0)``), whatever k the import's
choice starts it at.

``--pairs``: each cell also timed with the constant schedule's pair updates
off and on (``_sgd._set_pair_updates``; the factors are the same bit for bit),
the table that sets each copy's ``MFCY_PAIRS_PAY`` in ``_sgd_kernel.h``.

``--before PYTHON``: the same measurement in another interpreter (an earlier
build of mfcy, e.g. main's), alternating with this one round by round, to show
that the SSE2 and AVX2 copies did not get slower. An interpreter whose mfcy has
no AVX-512F copy reports it as missing.
"""

import argparse
import json
import subprocess
import sys

import numpy as np

from _common import ML1M, cpu_description, load_triples, median, reference_split

ISAS = ("baseline", "avx2", "avx512")


def worker(args):
    from mfcy import MatrixFactorization
    from mfcy import _sgd

    users, items, ratings = load_triples(args.data)
    train, _ = reference_split(len(ratings))
    X = np.column_stack([users[train], items[train]])
    y = ratings[train]
    out = {}
    for isa in ISAS:
        try:
            if isa == "avx512":
                _sgd._set_vector_isa(isa, avx512_min_k=0)
            else:
                _sgd._set_vector_isa(isa)
        except (ValueError, TypeError):
            continue
        for k in args.factors:
            cell = {}
            modes = [("sgd", False, "auto"), ("loss", True, "auto")]
            if args.pairs and hasattr(_sgd, "_set_pair_updates"):
                modes += [("one_by_one", False, "off"), ("pairs", False, "on")]
            for part, track, pairs in modes:
                if hasattr(_sgd, "_set_pair_updates"):
                    _sgd._set_pair_updates(pairs)
                model = MatrixFactorization(n_factors=k, n_epochs=6, learning_rate=0.005,
                                            regularization=0.02, track_loss=track,
                                            n_threads=1, random_state=0, dtype=args.dtype)
                model.fit(X, y)
                seconds = model.history_["loss_seconds" if track else "epoch_seconds"]
                cell[part] = float(np.median(seconds[1:]))
            out[f"{isa} {k}"] = cell
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ML1M))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--factors", type=lambda t: [int(x) for x in t.split(",")],
                   default=[8, 16, 32, 64, 100])
    p.add_argument("--dtype", default="float32")
    p.add_argument("--pairs", action="store_true",
                   help="also time the pair updates off and on")
    p.add_argument("--before", default=None, help="another interpreter to compare against")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    pythons = {"this": sys.executable}
    if args.before:
        pythons["before"] = args.before
    runs = {name: [] for name in pythons}
    for _ in range(args.repeats):
        for name, python in pythons.items():
            cmd = [python, __file__, "--worker", "--data", args.data, "--dtype", args.dtype,
                   "--factors", ",".join(map(str, args.factors))] + (["--pairs"] * args.pairs)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{name} worker failed:\n{proc.stderr}")
            runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))

    print(f"{cpu_description()}; ML-1M-star 90 % train, {args.dtype}, 1 thread; "
          f"median of {args.repeats} rounds of (median epoch 2-6), ms")
    head = f"{'build':7} {'copy':9}" + "".join(f"  k={k:<3} sgd  loss" for k in args.factors)
    print(head)
    print("-" * len(head))
    for name in pythons:
        for isa in ISAS:
            cells = []
            for k in args.factors:
                key = f"{isa} {k}"
                got = [r[key] for r in runs[name] if key in r]
                if not got:
                    cells.append(f"{'missing':>15}")
                    continue
                sgd = median([g["sgd"] for g in got]) * 1e3
                loss = median([g["loss"] for g in got]) * 1e3
                cells.append(f"  {sgd:7.2f} {loss:5.2f}")
            print(f"{name:7} {isa:9}" + "".join(cells))
    this = runs["this"]
    for k in args.factors:
        def med(isa, part):
            got = [r[f"{isa} {k}"][part] for r in this if f"{isa} {k}" in r]
            return median(got) if got else float("nan")
        print(f"k={k}: sgd epoch avx2/avx512 = {med('avx2', 'sgd') / med('avx512', 'sgd'):.2f}x, "
              f"baseline/avx2 = {med('baseline', 'sgd') / med('avx2', 'sgd'):.2f}x; "
              f"loss pass avx2/avx512 = {med('avx2', 'loss') / med('avx512', 'loss'):.2f}x")
    if args.pairs:
        for isa in ISAS:
            cells = []
            for k in args.factors:
                got = [r[f"{isa} {k}"] for r in this if "pairs" in r.get(f"{isa} {k}", {})]
                if got:
                    single = median([g["one_by_one"] for g in got])
                    pairs = median([g["pairs"] for g in got])
                    cells.append(f"k={k} {single * 1e3:.2f} -> {pairs * 1e3:.2f} ms "
                                 f"({single / pairs:.2f}x)")
            if cells:
                print(f"{isa} sgd epoch, one by one -> pairs: " + ", ".join(cells))
    if "before" in runs:
        for isa in ("baseline", "avx2"):
            ratios = []
            for k in args.factors:
                key = f"{isa} {k}"
                a = [r[key]["sgd"] for r in runs["before"] if key in r]
                b = [r[key]["sgd"] for r in this if key in r]
                if a and b:
                    ratios.append(f"k={k} {median(a) / median(b):.2f}x")
            print(f"{isa} sgd epoch, before / this: " + ", ".join(ratios))


if __name__ == "__main__":
    main()
