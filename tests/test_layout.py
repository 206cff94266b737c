"""The compiled counting sorts of the set-up (mfcy._layout) against numpy."""

import numpy as np
import pytest

from mfcy._layout import bucket_by_block, count_keys, sort_by_user_item


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("n,n_users,n_items", [(1, 1, 1), (500, 7, 300), (5000, 300, 40),
                                               (3000, 2000, 2000)])
def test_sort_by_user_item_is_a_stable_lexicographic_sort(rng, index_dtype, n, n_users, n_items):
    users = rng.integers(0, n_users, n).astype(index_dtype)
    items = rng.integers(0, n_items, n).astype(index_dtype)
    ratings = rng.standard_normal(n)
    su, si, sr, n_repeated = sort_by_user_item(users, items, ratings, n_users, n_items)
    order = np.lexsort((items, users))  # stable: ties keep their input order
    np.testing.assert_array_equal(su, users[order])
    np.testing.assert_array_equal(si, items[order])
    np.testing.assert_array_equal(sr, ratings[order])  # ties in input order, exactly
    assert su.dtype == si.dtype == index_dtype
    pairs = users.astype(np.int64) * n_items + items
    assert n_repeated == n - len(np.unique(pairs))


def test_sorted_input_comes_back_as_it_is(rng):
    users = np.repeat(np.arange(5, dtype=np.int32), 3)
    items = np.tile(np.arange(3, dtype=np.int32), 5)
    ratings = rng.standard_normal(15)
    su, si, sr, n_repeated = sort_by_user_item(users, items, ratings, 5, 3)
    assert n_repeated == 0
    assert np.shares_memory(su, users) and np.shares_memory(sr, ratings)


def test_a_repeated_pair_is_not_sorted_input(rng):
    # (0, 1) twice: not *strictly* increasing, so it is sorted and counted.
    users = np.array([0, 0, 0, 1], dtype=np.int32)
    items = np.array([0, 1, 1, 0], dtype=np.int32)
    _, _, _, n_repeated = sort_by_user_item(users, items, np.arange(4.0), 2, 2)
    assert n_repeated == 1


def test_empty_input():
    empty = np.zeros(0, dtype=np.int32)
    su, si, sr, n_repeated = sort_by_user_item(empty, empty, np.zeros(0), 0, 0)
    assert len(su) == len(si) == len(sr) == n_repeated == 0


@pytest.mark.parametrize("real_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("n_blocks", [1, 3])
def test_bucket_by_block_is_a_stable_sort_by_block(rng, real_dtype, index_dtype, n_blocks):
    n_users, n_items, n = 50, 40, 2000
    users = rng.integers(0, n_users, n).astype(index_dtype)
    items = rng.integers(0, n_items, n).astype(index_dtype)
    ratings = rng.standard_normal(n).astype(real_dtype)
    user_block = np.sort(rng.integers(0, n_blocks, n_users)).astype(np.int64)
    item_block = np.sort(rng.integers(0, n_blocks, n_items)).astype(np.int64)
    bu, bi, br, sizes = bucket_by_block(users, items, ratings, user_block, item_block, n_blocks)
    block = user_block[users] * n_blocks + item_block[items]
    order = np.argsort(block, kind="stable")
    np.testing.assert_array_equal(bu, users[order])
    np.testing.assert_array_equal(bi, items[order])
    np.testing.assert_array_equal(br, ratings[order])
    assert br.dtype == real_dtype and bu.dtype == index_dtype
    np.testing.assert_array_equal(sizes, np.bincount(block, minlength=n_blocks**2))


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_count_keys_is_bincount(rng, index_dtype):
    keys = rng.integers(0, 17, 1000).astype(index_dtype)
    counts = count_keys(keys, 20)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, np.bincount(keys, minlength=20))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_encode_dense_ids_is_np_unique_on_a_strided_column(rng, dtype):
    from mfcy._layout import encode_dense_ids

    pairs = rng.integers(-50, 400, (3000, 2)).astype(dtype)
    column = pairs[:, 1]  # strided: read in place
    uniques, index = encode_dense_ids(column, 10_000)
    expected_uniques, expected_index = np.unique(column, return_inverse=True)
    np.testing.assert_array_equal(uniques, expected_uniques)
    np.testing.assert_array_equal(index, expected_index)
    assert uniques.dtype == np.int64 and index.dtype == np.int32


def test_encode_dense_ids_declines_sparse_ranges_and_empty_input():
    from mfcy._layout import encode_dense_ids

    assert encode_dense_ids(np.array([0, 10**12], dtype=np.int64), 1000) is None
    extremes = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max])  # no overflow
    assert encode_dense_ids(extremes, 1000) is None
    assert encode_dense_ids(np.zeros(0, dtype=np.int32), 1000) is None
