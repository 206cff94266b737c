"""mfcy.dask.fit straight from ``dd.read_parquet(directory)`` (issue 17): a Parquet
directory written here, read by the workers, fitted on a local Dask cluster, and
compared bit for bit with the local fit of the same ratings.

The per-partition work (validation, id encoding, counting, layout) runs on the
workers; the client gets the id maps, counts and factors (its peak memory on 20 M
ratings is measured by benchmarks/dask_parquet.py, not here).
"""

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import mfcy.dask  # noqa: E402
from mfcy import MatrixFactorization  # noqa: E402
from mfcy._cluster_tasks import _clean_partition, _encode_split, _id_counts  # noqa: E402


def write_parquet_directory(path, rng, ids, n=12000, n_users=400, n_items=250, n_files=4):
    """A directory of Parquet files (one with several row groups), duplicates included."""
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    if ids == "str":
        user_col = pa.array([f"user:{u:06d}" for u in users], pa.string())
        item_col = pa.array([f"item:{i:05d}" for i in items], pa.string())
    else:
        user_col = pa.array(users * 13 + 10**11, pa.int64())  # labels, not positions
        item_col = pa.array(items.astype(np.int32) * 3, pa.int32())
    # Arbitrary floats: only an exact mean makes the two fits agree.
    table = pa.table({"user": user_col, "item": item_col,
                      "rating": pa.array(rng.normal(3.5, 1.0, n))})
    # Some (user, item) pairs again, in another file, with other ratings.
    again = table.slice(0, n // 10)
    again = again.set_column(2, "rating", pa.array(rng.normal(3.5, 1.0, len(again))))
    table = pa.concat_tables([table, again])
    path.mkdir()
    cuts = np.linspace(0, len(table), n_files + 1).astype(int)
    for f, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:])):
        pq.write_table(table.slice(lo, hi - lo), path / f"part-{f:05d}.parquet",
                       row_group_size=(hi - lo) // 3 if f == 1 else None)
    return table


def local_fit(table, **params):
    frame = table.to_pandas()
    X = frame[["user", "item"]].to_numpy()
    return MatrixFactorization(n_threads=1, **params).fit(X, frame["rating"].to_numpy())


def assert_same_model(cluster_model, local_model):
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "users_",
                 "items_", "_seen_indptr", "_seen_items"):
        np.testing.assert_array_equal(getattr(cluster_model, name), getattr(local_model, name),
                                      err_msg=name)
    assert cluster_model.users_.dtype == local_model.users_.dtype
    assert cluster_model.global_mean_ == local_model.global_mean_
    assert cluster_model.rating_range_ == local_model.rating_range_
    assert cluster_model.history_["sgd_mse"] == local_model.history_["sgd_mse"]
    assert sorted(vars(cluster_model)) == sorted(vars(local_model))


@pytest.mark.parametrize("ids", ["int", "str"])
def test_fit_from_read_parquet_is_bit_identical_to_the_local_fit(client, tmp_path, rng, ids):
    table = write_parquet_directory(tmp_path / "ratings.parquet", rng, ids)
    ratings = dd.read_parquet(str(tmp_path / "ratings.parquet"))
    assert ratings.npartitions >= 4  # several partitions, one of them several row groups
    params = dict(n_factors=5, n_epochs=3, n_blocks=4, learning_rate=0.02, random_state=11)
    model = mfcy.dask.fit(client, ratings, MatrixFactorization(**params))
    local = local_fit(table, **params)
    assert_same_model(model, local)
    if ids == "str":
        assert model.users_.dtype.kind == "U" and model.users_[0] == "user:000000"
    # Partition once, then fit: the same model again.
    blocked = mfcy.dask.partition(client, ratings, 4)
    assert blocked.n_ratings == len(table.to_pandas().drop_duplicates(["user", "item"]))
    assert_same_model(mfcy.dask.fit(client, blocked, MatrixFactorization(**params)), local)


def test_named_columns_of_a_parquet_directory(client, tmp_path, rng):
    table = write_parquet_directory(tmp_path / "ratings.parquet", rng, "int", n=3000)
    renamed = table.rename_columns(["uid", "movie", "stars"])
    (tmp_path / "renamed").mkdir()
    pq.write_table(renamed, tmp_path / "renamed" / "part-0.parquet")
    params = dict(n_factors=3, n_epochs=2, n_blocks=2, random_state=0)
    model = mfcy.dask.fit(client, dd.read_parquet(str(tmp_path / "renamed")),
                          MatrixFactorization(**params), columns=("uid", "movie", "stars"))
    assert_same_model(model, local_fit(table, **params))


@pytest.mark.parametrize("dtype", ["string[pyarrow]", "string[python]", object])
def test_a_partition_travels_as_distinct_ids_and_small_codes(dtype):
    # What a worker makes of one partition: each id column becomes its distinct
    # ids and an int32 code per row, whatever kind of string column it is.
    users = [f"u{i % 7}" for i in range(50)]
    frame = pd.DataFrame({"user": pd.Series(users, dtype=dtype),
                          "item": np.arange(50) % 5 * 10**12,
                          "rating": np.linspace(1, 5, 50)})
    (user_ids, user_codes), (item_ids, item_codes), ratings = _clean_partition(
        frame, 0, ("user", "item", "rating"))
    assert user_ids.dtype.kind == "U" and len(user_ids) == 7
    assert user_codes.dtype == item_codes.dtype == np.int32
    assert list(user_ids[user_codes]) == users
    assert list(item_ids[item_codes]) == list(frame["item"])
    counts = _id_counts(((user_ids, user_codes), (item_ids, item_codes), ratings))
    assert list(counts[0][0]) == sorted(set(users))  # sorted, as the id maps are
    assert counts[0][1].sum() == counts[1][1].sum() == 50
    # Encoded against the id maps (here: a superset), split by user range.
    id_map = np.array(sorted(set(users) | {"a", "zz"}))
    pieces = _encode_split(((user_ids, user_codes), (item_ids, item_codes), ratings), id_map,
                           np.sort(item_ids), np.array([0, 4, len(id_map)]))
    got_users = np.concatenate([p[0] for p in pieces])
    assert sorted(id_map[got_users]) == sorted(users)
    assert all((p[0] < 4).all() for p in pieces[:1]) and all((p[0] >= 4).all() for p in pieces[1:])
