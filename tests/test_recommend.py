"""Top-N recommendations and item similarity against brute force."""

import numpy as np
import pytest

from mfcy import MatrixFactorization, UnknownIdWarning
from mfcy.datasets import make_low_rank


@pytest.fixture(scope="module")
def fitted():
    R = make_low_rank(50, 30, 3, 0.3, random_state=0) + 3
    model = MatrixFactorization(n_factors=3, n_epochs=10, learning_rate=0.02,
                                random_state=0).fit(R)
    return model, R


@pytest.mark.parametrize("batch_size", [1, 7, None])
@pytest.mark.parametrize("exclude_seen", [True, False])
def test_recommend_matches_brute_force(fitted, batch_size, exclude_seen):
    model, R = fitted
    users = np.array([0, 5, 49, 5])
    items, scores = model.recommend(users, n=6, exclude_seen=exclude_seen,
                                    batch_size=batch_size)
    assert items.shape == scores.shape == (4, 6)
    full = model.reconstruct()
    for row, u in enumerate(users):
        s = full[u].copy()
        if exclude_seen:
            s[~np.isnan(R[u])] = -np.inf
        expected = np.lexsort((np.arange(len(s)), -s))[:6]
        np.testing.assert_array_equal(items[row], model.items_[expected])
        np.testing.assert_allclose(scores[row], s[expected], rtol=1e-5)
        if exclude_seen:
            assert not np.isin(items[row], np.flatnonzero(~np.isnan(R[u]))).any()


def test_recommend_single_user_unknown_user_and_padding(fitted):
    model, R = fitted
    items, scores = model.recommend(3, n=4)
    assert items.shape == (4,) and np.all(np.diff(scores) <= 0)
    # An unknown user gets the baseline ranking: global mean + item bias.
    with pytest.warns(UnknownIdWarning, match=r"1 of 1 users are not seen .*\(e.g. 1000\)"):
        items, scores = model.recommend([1000], n=3)
    best = np.argsort(-model.item_bias_, kind="stable")[:3]
    np.testing.assert_array_equal(items[0], model.items_[best])
    # n beyond the unrated items: fewer items, never a rated one as padding.
    n_unseen = int(np.isnan(R[0]).sum())
    items, scores = model.recommend([0], n=30)
    assert scores.shape == (1, n_unseen) and not np.ma.is_masked(items)
    assert not np.isin(items[0], np.flatnonzero(~np.isnan(R[0]))).any()
    with pytest.raises(ValueError, match="n must be"):
        model.recommend([0], n=0)


def test_recommend_with_string_ids():
    X = np.array([["ann", "a"], ["ann", "b"], ["bob", "b"], ["bob", "c"], ["cy", "a"]])
    model = MatrixFactorization(n_factors=2, n_epochs=5, random_state=0)
    model.fit(X, [5, 3, 4, 2, 1])
    items, _ = model.recommend(["ann"], n=1)
    assert items.tolist() == [["c"]]


def test_similar_items_by_cosine(fitted):
    model, _ = fitted
    items, sims = model.similar_items(4, n=5)
    Q = model.item_factors_.astype(float)
    cos = Q @ Q[4] / (np.linalg.norm(Q, axis=1) * np.linalg.norm(Q[4]))
    cos[4] = -np.inf
    np.testing.assert_array_equal(items, np.argsort(-cos, kind="stable")[:5])
    np.testing.assert_allclose(sims, np.sort(cos)[::-1][:5], rtol=1e-10)
    assert 4 not in items
    with pytest.raises(ValueError, match="seen in training"):
        model.similar_items(999)
