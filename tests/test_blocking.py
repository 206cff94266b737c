"""The block layout and the per-epoch visiting order (mfcy._blocking)."""

import numpy as np
import pytest

from mfcy._blocking import EpochPlan, _good_strides, _spread

from helpers import random_triples


@pytest.mark.parametrize("chunk_size", [4, 7, 64, 1024])
def test_strides_are_primes_beyond_the_chunk_that_spread_a_full_chunk(chunk_size):
    strides = _good_strides(chunk_size)
    assert len(strides) == len(set(strides.tolist())) == 32
    for p in strides.tolist():
        assert p > chunk_size and all(p % d for d in range(2, int(p**0.5) + 1))
        # A permutation of every chunk length (p is coprime to all of them) ...
        for n in (1, 2, chunk_size // 2 + 1, chunk_size):
            assert sorted((j * p) % n for j in range(n)) == list(range(n))
        # ... and on a full chunk the next 8 visits land far from this one.
        if chunk_size >= 16:
            assert _spread(p % chunk_size, chunk_size) >= chunk_size // 16


def test_spread_is_the_closest_return_of_the_next_visits():
    assert _spread(7, 1024) == 7
    assert _spread(512, 1024) == 0  # the second visit comes back to the start
    assert _spread(633, 1024, lookahead=1) == 1024 - 633


def canonical(rng, n_users=300, n_items=200, density=0.2):
    users, items, ratings = random_triples(rng, n_users, n_items, density)
    order = np.lexsort((items, users))
    return (users[order].astype(np.int32), items[order].astype(np.int32), ratings[order],
            n_users, n_items)


@pytest.mark.parametrize("n_blocks", [1, 2, 5])
def test_blocks_are_contiguous_balanced_and_keep_the_canonical_order(rng, n_blocks):
    users, items, ratings, n_users, n_items = canonical(rng)
    plan = EpochPlan(users, items, ratings, n_users, n_items, n_blocks, True, rng,
                     chunk_size=16)
    # The same triples, regrouped.
    key = lambda u, i: u.astype(np.int64) * n_items + i
    np.testing.assert_array_equal(np.sort(key(plan.users, plan.items)), key(users, items))
    sizes = []
    for a in range(n_blocks):
        for b in range(n_blocks):
            block = a * n_blocks + b
            lo = plan.chunk_bounds[plan.block_chunks[block]]
            hi = plan.chunk_bounds[plan.block_chunks[block + 1]]
            u, i = plan.users[lo:hi], plan.items[lo:hi]
            k = key(u, i)
            assert np.all(k[1:] > k[:-1])  # canonical (user, item) order inside a block
            sizes.append(hi - lo)
            if len(u):  # this block's users and items are ranges no other block row shares
                other = np.ones(len(plan.users), bool)
                other[lo:hi] = False
                row = np.zeros(len(plan.users), bool)
                for b2 in range(n_blocks):
                    blk = a * n_blocks + b2
                    row[plan.chunk_bounds[plan.block_chunks[blk]]:
                        plan.chunk_bounds[plan.block_chunks[blk + 1]]] = True
                assert not np.isin(plan.users[~row], u).any()
    assert sum(sizes) == len(ratings)
    # Each user block holds about 1/n_blocks of the ratings.
    rows = np.array(sizes).reshape(n_blocks, n_blocks).sum(1)
    assert rows.max() - rows.min() <= 0.1 * len(ratings)


def test_each_draw_visits_every_rating_once_and_depends_only_on_the_seed(rng):
    users, items, ratings, n_users, n_items = canonical(rng)
    plan = EpochPlan(users, items, ratings, n_users, n_items, 3, True, rng, chunk_size=16)
    draws = [plan.draw(np.random.default_rng(5)) for _ in range(2)]
    for (v1, s1, st1), (v2, s2, st2) in zip(draws, draws[1:]):
        np.testing.assert_array_equal(v1, v2)
        np.testing.assert_array_equal(s1, s2)
        assert st1 == st2
    visit_order, strata, stride = draws[0]
    assert sorted(visit_order.tolist()) == list(range(plan.n_chunks))
    assert sorted(strata.tolist()) == [0, 1, 2]
    assert stride in plan._strides


def test_no_shuffle_is_the_canonical_order_walked_in_storage_order(rng):
    users, items, ratings, n_users, n_items = canonical(rng)
    plan = EpochPlan(users, items, ratings, n_users, n_items, 4, False, rng, chunk_size=16)
    assert plan.n_blocks == 1
    np.testing.assert_array_equal(plan.users, users)
    visit_order, strata, stride = plan.draw(rng)
    np.testing.assert_array_equal(visit_order, np.arange(plan.n_chunks))
    assert stride == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_blocks", [1, 3, 8])
def test_the_plan_from_encoded_triples_is_the_plan_from_canonical_ones(rng, dtype, n_blocks):
    users, items, ratings, n_users, n_items = canonical(rng)
    order = rng.permutation(len(ratings))  # any input order
    fast = EpochPlan.from_encoded(users[order], items[order], ratings[order], n_users,
                                  n_items, n_blocks, dtype, chunk_size=16)
    slow = EpochPlan(users, items, ratings.astype(dtype), n_users, n_items, n_blocks, True,
                     rng, chunk_size=16)
    for name in ("users", "items", "ratings", "chunk_bounds", "block_chunks"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)
    assert fast.ratings.dtype == dtype and fast.n_blocks == n_blocks
    # The seen-items CSR is the canonical order, user by user.
    np.testing.assert_array_equal(fast.seen_items, items)
    np.testing.assert_array_equal(fast.seen_indptr,
                                  np.concatenate([[0], np.cumsum(np.bincount(users,
                                                                             minlength=n_users))]))


def test_the_plan_from_encoded_triples_declines_repeated_pairs(rng):
    users, items, ratings, n_users, n_items = canonical(rng)
    users = np.append(users, users[5])
    items = np.append(items, items[5])
    ratings = np.append(ratings, 1.0)
    assert EpochPlan.from_encoded(users, items, ratings, n_users, n_items, 3, np.float32) is None
