"""The debug build of the kernel (``MFCY_DEBUG=1 pip install .``) checks every index.

The kernel trusts its inputs; the wrapper validates them. These tests prove
that a debug build turns an index that slipped past the validation into an
``IndexError`` instead of a write outside an array. A release build would
scribble memory here, so they are skipped there, unless the environment
variable ``MFCY_EXPECT_DEBUG_BUILD=1`` says the run is the debug one (CI sets
it): then a release build is a failure, never a silent skip.
"""

import os

import numpy as np
import pytest

import mfcy._sgd as _sgd
from mfcy._blocking import EpochPlan

EXPECT_DEBUG = os.environ.get("MFCY_EXPECT_DEBUG_BUILD", "") == "1"


def require_debug_build():
    if _sgd.debug_build():
        return
    if EXPECT_DEBUG:
        pytest.fail("MFCY_EXPECT_DEBUG_BUILD=1 but mfcy._sgd is a release build "
                    "(reinstall with MFCY_DEBUG=1)")
    pytest.skip("needs the debug build of the kernel (MFCY_DEBUG=1 pip install .): "
                "a release build would write out of bounds")


def test_build_flags_are_reported():
    assert isinstance(_sgd.debug_build(), bool)
    assert isinstance(_sgd.sanitizers(), str)
    if EXPECT_DEBUG:
        assert _sgd.debug_build(), "the debug run is not testing a debug build"


def problem(n_users=6, n_items=5, k=3, n=20, dtype=np.float64, index_dtype=np.int32):
    rng = np.random.default_rng(0)
    users = rng.integers(0, n_users, n).astype(index_dtype)
    items = rng.integers(0, n_items, n).astype(index_dtype)
    ratings = rng.standard_normal(n).astype(dtype)
    P = rng.standard_normal((n_users, k)).astype(dtype)
    Q = rng.standard_normal((n_items, k)).astype(dtype)
    bu, bi = np.zeros(n_users, dtype), np.zeros(n_items, dtype)
    return users, items, ratings, P, Q, bu, bi


# A bad index past the end and a negative one, as a user index and as an item index.
BAD_INDICES = [("users", 6), ("users", -1), ("items", 5), ("items", -3)]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("which,bad", BAD_INDICES)
def test_sgd_epoch_index_out_of_range_is_an_index_error(which, bad, index_dtype, n_threads):
    require_debug_build()
    users, items, ratings, P, Q, bu, bi = problem(index_dtype=index_dtype)
    rng = np.random.default_rng(1)
    # Two blocks so that n_threads=2 goes through the parallel (prange) path.
    plan = EpochPlan(users, items, ratings, 6, 5, 2, True, rng, chunk_size=4)
    getattr(plan, which)[len(ratings) // 2] = bad
    visit_order, strata, stride = plan.draw(rng)
    P_before = P.copy()
    with pytest.raises(IndexError):
        _sgd.sgd_epoch(P, Q, bu, bi, plan.users, plan.items, plan.ratings,
                       plan.chunk_bounds, plan.block_chunks, visit_order, strata, stride,
                       3.0, 0.01, 0.02, 0.02, True, False, n_threads)
    assert P.shape == P_before.shape  # the arrays are intact (no write went astray)


@pytest.mark.parametrize("which,bad", BAD_INDICES)
def test_error_sums_index_out_of_range_is_an_index_error(which, bad):
    require_debug_build()
    users, items, ratings, P, Q, bu, bi = problem()
    {"users": users, "items": items}[which][3] = bad
    with pytest.raises(IndexError):
        _sgd.error_sums(P, Q, bu, bi, users, items, ratings, 3.0, True, 2)


@pytest.mark.parametrize("which,bad", [("users", 6), ("items", 5)])
def test_predict_pairs_index_out_of_range_is_an_index_error(which, bad):
    # -1 means "unknown id" to predict_pairs; any index >= 0 must be in range.
    require_debug_build()
    users, items, ratings, P, Q, bu, bi = problem()
    {"users": users, "items": items}[which][3] = bad
    out = np.empty(len(users))
    with pytest.raises(IndexError):
        _sgd.predict_pairs(P, Q, bu, bi, users, items, 3.0, True, out)


def test_chunk_bounds_past_the_ratings_are_an_index_error():
    # The plan's own bookkeeping is checked too: a chunk reaching past the end.
    require_debug_build()
    users, items, ratings, P, Q, bu, bi = problem()
    rng = np.random.default_rng(2)
    plan = EpochPlan(users, items, ratings, 6, 5, 1, False, rng, chunk_size=8)
    bounds = plan.chunk_bounds.copy()
    bounds[-1] += 5
    visit_order, strata, stride = plan.draw(rng)
    with pytest.raises(IndexError):
        _sgd.sgd_epoch(P, Q, bu, bi, plan.users, plan.items, plan.ratings, bounds,
                       plan.block_chunks, visit_order, strata, stride, 3.0, 0.01, 0.02, 0.02,
                       True, False, 1)


@pytest.mark.parametrize("which,bad", BAD_INDICES)
def test_layout_sorts_index_out_of_range_is_an_index_error(which, bad):
    # The set-up's counting sorts trust their keys like the kernel does.
    from mfcy._layout import bucket_by_block, count_keys, sort_by_user_item

    require_debug_build()
    users, items, ratings, *_ = problem()
    {"users": users, "items": items}[which][3] = bad
    with pytest.raises(IndexError):
        sort_by_user_item(users, items, ratings.astype(np.float64), 6, 5)
    with pytest.raises(IndexError):
        bucket_by_block(users, items, ratings, np.zeros(6, np.int64), np.zeros(5, np.int64), 1)
    with pytest.raises(IndexError):
        count_keys({"users": users, "items": items}[which], {"users": 6, "items": 5}[which])
