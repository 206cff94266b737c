"""Netflix-shaped ratings, seeded, written in chunks as a Parquet directory and gzip CSV.

    python benchmarks/make_large.py OUT_DIR [--ratings N] [--string-ids] [--seed S]

Writes ``OUT_DIR/ratings.parquet/part-NNNNN.parquet`` (a directory of files, as
Spark and Dask write them) and ``OUT_DIR/ratings.csv.gz`` (header
``user,item,rating``), the same rows in the same order.

The shape of the Netflix Prize data by default: 480,189 users x 17,770 items,
100,480,507 ratings (``--ratings`` for fewer; the id ranges stay). User
activity and item popularity follow power laws (Pareto weights: a few users
rate thousands of items, most a few dozen); no (user, item) pair repeats (a
bitset of every cell, 1 GB at Netflix's id ranges). Stars 1-5 are a low-rank model plus
noise, rounded and clipped: a global mean, user and item biases, rank-8
factors and Gaussian noise. Ids are integers (0-based) or, with
``--string-ids``, text (``user:000123``, ``item:01234``).

Nothing is ever held for all ratings at once but the bitset: each chunk
(``--chunk`` ratings) is drawn, deduplicated, written to both files and
dropped. The same seed gives the same files.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

NETFLIX = dict(users=480_189, items=17_770, ratings=100_480_507)
RANK = 8


def power_law_cdf(rng, n, shape):
    """Cumulative sampling weights of ``n`` ids: Pareto(shape) draws, shuffled."""
    weights = rng.pareto(shape, n) + 1.0
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def string_ids(ids, prefix, width):
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_lpad(pa.array(ids).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), text, "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="output directory")
    parser.add_argument("--ratings", type=int, default=NETFLIX["ratings"])
    parser.add_argument("--users", type=int, default=NETFLIX["users"])
    parser.add_argument("--items", type=int, default=NETFLIX["items"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=5_000_000,
                        help="ratings drawn, deduplicated and written at a time")
    parser.add_argument("--string-ids", action="store_true",
                        help="ids as text: user:000123, item:01234")
    parser.add_argument("--no-csv", action="store_true", help="only the Parquet directory")
    args = parser.parse_args()
    if args.ratings > args.users * args.items // 2:
        raise SystemExit("--ratings must be at most half of users x items")

    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(args.seed)
    # Shapes that give Netflix's spread: the busiest user ~100x the mean
    # activity, the most rated item ~40x the mean popularity.
    user_cdf = power_law_cdf(rng, args.users, 2.7)
    item_cdf = power_law_cdf(rng, args.items, 2.3)
    user_factors = rng.normal(0, 0.35, (args.users, RANK)).astype(np.float32)
    item_factors = rng.normal(0, 0.35, (args.items, RANK)).astype(np.float32)
    user_bias = rng.normal(0, 0.45, args.users).astype(np.float32)
    item_bias = rng.normal(0, 0.5, args.items).astype(np.float32)
    seen = np.zeros((args.users * args.items + 7) // 8, dtype=np.uint8)  # one bit a cell

    os.makedirs(args.out, exist_ok=True)
    parquet_dir = os.path.join(args.out, "ratings.parquet")
    os.makedirs(parquet_dir, exist_ok=True)
    for name in os.listdir(parquet_dir):  # a previous run's parts
        if name.endswith(".parquet"):
            os.remove(os.path.join(parquet_dir, name))
    csv_path = os.path.join(args.out, "ratings.csv.gz")
    id_type = pa.string() if args.string_ids else pa.int32()
    schema = pa.schema([("user", id_type), ("item", id_type), ("rating", pa.int8())])
    csv_out = None
    if not args.no_csv:
        csv_out = pacsv.CSVWriter(pa.CompressedOutputStream(csv_path, "gzip"), schema)

    start = time.perf_counter()
    written, part = 0, 0
    while written < args.ratings:
        want = min(args.chunk, args.ratings - written)
        # Draw a little more than wanted: some draws are pairs already seen.
        draw = int(want * 1.05) + 1000
        users = np.searchsorted(user_cdf, rng.random(draw)).astype(np.int32)
        items = np.searchsorted(item_cdf, rng.random(draw)).astype(np.int32)
        cells = users.astype(np.int64) * args.items + items
        _, first = np.unique(cells, return_index=True)  # no repeat inside the chunk
        first.sort()
        cells, users, items = cells[first], users[first], items[first]
        byte, bit = cells >> 3, (cells & 7).astype(np.uint8)
        new = (seen[byte] >> bit) & 1 == 0  # nor with an earlier chunk
        users, items, byte, bit = users[new][:want], items[new][:want], byte[new][:want], \
            bit[new][:want]
        np.bitwise_or.at(seen, byte, np.left_shift(1, bit).astype(np.uint8))
        score = (3.6 + user_bias[users] + item_bias[items]
                 + np.einsum("ij,ij->i", user_factors[users], item_factors[items])
                 + rng.normal(0, 0.8, len(users)).astype(np.float32))
        stars = np.clip(np.rint(score), 1, 5).astype(np.int8)
        if args.string_ids:
            columns = [string_ids(users, "user:", 6), string_ids(items, "item:", 5)]
        else:
            columns = [pa.array(users), pa.array(items)]
        table = pa.Table.from_arrays(columns + [pa.array(stars)], schema=schema)
        pq.write_table(table, os.path.join(parquet_dir, f"part-{part:05d}.parquet"))
        if csv_out is not None:
            csv_out.write_table(table)
        written += len(users)
        part += 1
        print(f"{written:,} / {args.ratings:,} ratings ({time.perf_counter() - start:.0f} s)",
              flush=True)
    if csv_out is not None:
        csv_out.close()
    print(f"wrote {parquet_dir} ({part} files)" + ("" if args.no_csv else f" and {csv_path}"))


if __name__ == "__main__":
    main()
