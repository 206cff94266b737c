"""mfcy.dask.fit from dd.read_parquet(directory) on a 2-worker LocalCluster: peak memory.

    python benchmarks/make_large.py /tmp/mfcy-large-20m --ratings 20000000 --no-csv
    python benchmarks/dask_parquet.py --data /tmp/mfcy-large-20m/ratings.parquet
        [--factors 32] [--epochs 3] [--blocks 4] [--compare-local]

The client opens the Parquet directory lazily (``dd.read_parquet``) and calls
:func:`mfcy.dask.partition` and then :func:`mfcy.dask.fit`: the workers read the
files, encode the ids, count, average duplicates and lay out their row blocks;
the client gets the id maps, the counts, and at the end the fitted model
(factors, biases, id maps and the seen-items CSR, 4 bytes a rating).

Printed, for each phase (partitioning, fit): wall time, the client's peak RSS
above its RSS before the phase (``/proc/self/clear_refs`` resets the peak), and
each worker's peak RSS; the ratios to the ratings' bytes, taken as the
(int32, int32, float32) triples (12 bytes a rating, the unit of issue 17), and
the client's peak minus the bytes of the fitted model it has to hold. With
``--compare-local``, the same ratings fitted locally (read with pyarrow) and
compared bit for bit (needs memory for a local fit as well).

Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import numpy as np

from _common import cpu_description

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
    return _status_mb()["VmRSS"]


def _worker_reset(dask_worker=None):
    return _reset_peak()


def _worker_peak(dask_worker=None):
    return _status_mb()["VmHWM"]


def measure(client, call):
    """(result, seconds, client peak above its start in MB, {worker: peak RSS in MB})."""
    gc.collect()
    client.run(_worker_reset)
    base = _reset_peak()
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    return result, seconds, _status_mb()["VmHWM"] - base, client.run(_worker_peak)


def model_bytes(model):
    arrays = (model.user_factors_, model.item_factors_, model.user_bias_, model.item_bias_,
              model.users_, model.items_, model._seen_indptr, model._seen_items)
    return sum(a.nbytes for a in arrays), model._seen_items.nbytes + model._seen_indptr.nbytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/mfcy-large-20m/ratings.parquet",
                        help="a Parquet directory (benchmarks/make_large.py writes one)")
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--compare-local", action="store_true")
    args = parser.parse_args()
    if not os.path.isdir(args.data):
        raise SystemExit(f"no Parquet directory {args.data}: run benchmarks/make_large.py "
                         "OUT --ratings 20000000 --no-csv first")

    import dask.dataframe as dd
    import distributed
    import pyarrow.parquet as pq

    import mfcy.dask
    from mfcy import MatrixFactorization

    meta = pq.ParquetDataset(args.data)
    n_rows = sum(f.metadata.num_rows for f in meta.fragments)
    schema = meta.schema
    triples_bytes = 12 * n_rows
    print(f"{cpu_description()}; load {os.getloadavg()[0]:.1f}")
    print(f"{args.data}: {n_rows:,} ratings in {len(meta.files)} files, columns "
          + ", ".join(f"{f.name}:{f.type}" for f in schema)
          + f"; ratings' bytes as (int32, int32, float32) triples: {triples_bytes / MB:.0f} MB")
    del meta

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    client.wait_for_workers(2)
    params = dict(n_factors=args.factors, n_epochs=args.epochs, n_blocks=args.blocks,
                  track_loss=False, random_state=0)
    print(f"2-worker LocalCluster (1 thread each); k={args.factors}, n_blocks={args.blocks}, "
          f"{args.epochs} epochs, float32, track_loss=False")
    print(f"client RSS before: {_status_mb()['VmRSS']:.0f} MB")

    ratings = dd.read_parquet(args.data)
    blocked, t_part, c_part, w_part = measure(
        client, lambda: mfcy.dask.partition(client, ratings, args.blocks))
    model, t_fit, c_fit, w_fit = measure(
        client, lambda: mfcy.dask.fit(client, blocked, MatrixFactorization(**params)))
    total, seen = model_bytes(model)
    print(f"{blocked.n_ratings:,} distinct pairs, {blocked.n_users:,} users x "
          f"{blocked.n_items:,} items")
    print(f"\n{'phase':14} {'wall s':>7} {'client peak +MB':>16} {'/ ratings':>10} "
          f"{'worker peaks MB':>18}")
    for name, seconds, peak, workers in (("partition", t_part, c_part, w_part),
                                         ("fit", t_fit, c_fit, w_fit)):
        shown = " ".join(f"{v:.0f}" for _, v in sorted(workers.items()))
        print(f"{name:14} {seconds:7.1f} {peak:16.1f} {peak * MB / triples_bytes:9.1%} "
              f"{shown:>18}")
    print(f"\nfitted model on the client: {total / MB:.1f} MB (of which the seen-items CSR "
          f"{seen / MB:.1f} MB = {seen / triples_bytes:.1%} of the ratings' bytes)")
    print(f"client peak during the fit beyond the fitted model: {c_fit - total / MB:.1f} MB "
          f"= {(c_fit - total / MB) * MB / triples_bytes:.1%} of the ratings' bytes")
    print(f"client peak during partitioning: {c_part:.1f} MB = "
          f"{c_part * MB / triples_bytes:.1%} of the ratings' bytes "
          f"({'below' if c_part * MB < 0.1 * triples_bytes else 'NOT below'} 10 %)")

    if args.compare_local:
        client.close()
        cluster.close()
        del blocked
        gc.collect()
        frame = pq.read_table(args.data).to_pandas()
        X = frame[["user", "item"]].to_numpy()
        y = frame["rating"].to_numpy()
        del frame
        start = time.perf_counter()
        local = MatrixFactorization(n_threads=2, **params).fit(X, y)
        print(f"\nlocal fit, 2 threads: {time.perf_counter() - start:.1f} s")
        same = all(np.array_equal(getattr(model, name), getattr(local, name))
                   for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_",
                                "users_", "items_", "_seen_indptr", "_seen_items"))
        print(f"bit-identical to the local fit: {same}")
    else:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
