"""ML-1M-star on a 2-worker Dask LocalCluster against the local 2-thread fit.

    python benchmarks/dask_fit.py [--data PATH] [--factors 100] [--epochs 10]
                                  [--blocks 8] [--repeats 3]

Both fit the same model (biased, float32, lr 0.005, reg 0.02, ``track_loss=False``,
one seed) on all of ML-1M-star, and the factors are checked to be bit-identical.
Printed: the medians of ``--repeats`` fits (wall time of the fit, and of one epoch),
the partitioning job, the bytes that moved between workers per epoch (Dask's own
counters: ``transfer_outgoing_bytes_total`` of the workers, the difference
between a fit of ``--epochs`` epochs and one of 1 epoch), and, from Dask's task
stream, the compute time of one block and the time and size of one item-block
transfer. From those it extrapolates the time per epoch of 1 billion ratings on
16 workers (``--target-*``), assuming the kernel's speed per rating stays what
it is here (an optimistic assumption: at that size the factors outgrow the
caches; ``--slowdown`` scales it) and a network of ``--network-gbps``.
"""

import argparse
import time
import warnings

import numpy as np

from _common import ML1M, cpu_description, load_triples, median

from mfcy import MatrixFactorization


def model(args, n_epochs=None):
    return MatrixFactorization(n_factors=args.factors, n_epochs=n_epochs or args.epochs,
                               n_blocks=args.blocks, track_loss=False, random_state=0,
                               n_threads=2)


def bytes_sent(client):
    """Bytes the workers have sent so far (to other workers and to the client)."""
    def read(dask_worker):
        return dask_worker.transfer_outgoing_bytes_total

    return sum(client.run(read).values())


def task_costs(records, B):
    """Median compute seconds of one block, and (seconds, bytes) of one item-block transfer."""
    compute, transfers = [], []
    for record in records:
        if "mfcy-sgd-" not in str(record["key"]):
            continue
        for ss in record["startstops"]:
            if ss["action"] == "compute":
                compute.append(ss["stop"] - ss["start"])
            elif ss["action"] == "transfer":
                transfers.append(ss["stop"] - ss["start"])
    return median(compute), (median(transfers) if transfers else float("nan")), len(transfers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ML1M))
    parser.add_argument("--factors", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target-ratings", type=float, default=1e9)
    parser.add_argument("--target-users", type=float, default=10e6)
    parser.add_argument("--target-items", type=float, default=1e6)
    parser.add_argument("--target-workers", type=int, default=16)
    parser.add_argument("--network-gbps", type=float, default=10.0)
    parser.add_argument("--slowdown", type=float, default=1.0,
                        help="kernel time per rating at the target size / here")
    args = parser.parse_args()

    import dask.dataframe as dd
    import distributed
    import pandas as pd

    import mfcy.dask

    users, items, ratings = load_triples(args.data)
    frame = pd.DataFrame({"user": users, "item": items, "rating": ratings})
    n = len(frame)
    B, k = args.blocks, args.factors
    print(f"{cpu_description()}; {n:,} ratings, k={k}, n_blocks={B}, {args.epochs} epochs, "
          f"float32, track_loss=False; medians of {args.repeats}")

    local_wall, local_epoch = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        local = model(args).fit(frame[["user", "item"]].to_numpy(), ratings)
        local_wall.append(time.perf_counter() - start)
        local_epoch.append(median(local.history_["epoch_seconds"]))

    start = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    cluster_start = time.perf_counter() - start
    with warnings.catch_warnings():
        # "Sending large graph": the in-memory frame travels in the graph once.
        warnings.simplefilter("ignore", UserWarning)
        ddf = dd.from_pandas(frame, npartitions=8).persist()
    partition_wall = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        blocked = mfcy.dask.partition(client, ddf, B)
        partition_wall.append(time.perf_counter() - start)

    dask_wall, dask_epoch, sent = [], [], {}
    identical = True
    for _ in range(args.repeats):
        for n_epochs in (1, args.epochs):
            before = bytes_sent(client)
            with distributed.get_task_stream(client) as stream:
                start = time.perf_counter()
                fitted = mfcy.dask.fit(client, blocked, model(args, n_epochs))
                wall = time.perf_counter() - start
            sent.setdefault(n_epochs, []).append(bytes_sent(client) - before)
        dask_wall.append(wall)
        dask_epoch.append(median(fitted.history_["epoch_seconds"]))
        identical &= (np.array_equal(fitted.user_factors_, local.user_factors_)
                      and np.array_equal(fitted.item_factors_, local.item_factors_)
                      and np.array_equal(fitted.item_bias_, local.item_bias_))
    block_seconds, transfer_seconds, n_transfers = task_costs(stream.data, B)
    client.close()
    cluster.close()

    # The difference cancels what every fit moves once (the final gathering).
    per_epoch = (median(sent[args.epochs]) - median(sent[1])) / (args.epochs - 1)
    q_bytes = local.item_factors_.nbytes + local.item_bias_.nbytes
    q_block = q_bytes / B
    print(f"\n{'':28} {'fit s':>7} {'epoch s':>8} {'vs local':>9}")
    print(f"{'local, 2 threads':28} {median(local_wall):7.2f} {median(local_epoch):8.3f} "
          f"{1:8.2f}x")
    print(f"{'Dask, 2 workers x 1 thread':28} {median(dask_wall):7.2f} {median(dask_epoch):8.3f} "
          f"{median(dask_epoch) / median(local_epoch):8.2f}x")
    print(f"bit-identical factors: {identical}")
    print(f"cluster start {cluster_start:.2f} s; partitioning job {median(partition_wall):.2f} s "
          f"(median)")
    print(f"sent by the workers per epoch: {per_epoch / 1e6:.2f} MB (item factors + biases: "
          f"{q_bytes / 1e6:.2f} MB, {q_block / 1e6:.3f} MB per block; a fit of "
          f"{args.epochs} epochs sent {median(sent[args.epochs]) / 1e6:.1f} MB in all)")
    ratings_per_block = n / B**2
    print(f"one block: {ratings_per_block:,.0f} ratings in {block_seconds * 1e3:.2f} ms "
          f"({ratings_per_block / block_seconds / 1e6:.1f} M updates/s per worker thread); "
          f"one item-block transfer {transfer_seconds * 1e3:.2f} ms (median of {n_transfers})")
    # Per sub-epoch, each worker runs B/W blocks back to back; what the epoch
    # took beyond that is the transfers and the scheduling.
    overhead = (median(dask_epoch) - B * (B / 2) * block_seconds) / B
    print(f"per sub-epoch beyond compute (transfer, scheduling): {overhead * 1e3:.2f} ms")

    # The estimate: one row block per worker, B = W.
    W = args.target_workers
    seconds_per_rating = block_seconds / ratings_per_block * args.slowdown
    target_block = args.target_ratings / W**2 * seconds_per_rating
    target_q_block = args.target_items / W * (k * 4 + 4)
    target_transfer = target_q_block / (args.network_gbps * 1e9 / 8)
    target_epoch = W * (target_block + target_transfer + overhead)
    print(f"\nestimate, {args.target_ratings:.3g} ratings ({args.target_users:.3g} users x "
          f"{args.target_items:.3g} items) on {W} workers, n_blocks={W}, "
          f"{args.network_gbps:g} Gb/s, kernel slowdown {args.slowdown:g}x:")
    print(f"  per sub-epoch: block compute {target_block:.2f} s + item block "
          f"{target_q_block / 1e6:.1f} MB in {target_transfer:.3f} s + overhead "
          f"{overhead:.3f} s")
    print(f"  per epoch: {target_epoch:.1f} s "
          f"({args.target_ratings / target_epoch / 1e6:.0f} M updates/s); "
          f"item factors through each worker per epoch: {W * target_q_block / 1e9:.2f} GB; "
          f"user factors held per worker: {args.target_users / W * k * 4 / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
