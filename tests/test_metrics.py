"""Rating errors and ranking metrics against hand-computed values."""

import math

import numpy as np
import pytest

from mfcy import MatrixFactorization
from mfcy.datasets import make_low_rank
from mfcy.metrics import mae, map_at_k, ndcg_at_k, precision_at_k, recall_at_k, rmse

RANKING = {"precision": precision_at_k, "recall": recall_at_k, "ndcg": ndcg_at_k,
           "map": map_at_k}


def test_rmse_and_mae_by_hand():
    assert rmse([1, 2, 3], [1, 4, 0]) == pytest.approx(math.sqrt((0 + 4 + 9) / 3))
    assert mae([1, 2, 3], [1, 4, 0]) == pytest.approx(5 / 3)
    assert rmse(np.array([2.5]), [2.5]) == 0.0
    with pytest.raises(ValueError, match="y_true has 2 values but y_pred has 1"):
        rmse([1, 2], [1])
    with pytest.raises(ValueError, match="empty"):
        mae([], [])
    with pytest.raises(ValueError, match="y_pred contain NaN"):
        rmse([1.0], [np.nan])


# Held-out ratings; with threshold 4: ann likes a, c, d (R = 3), bob likes b (R = 1),
# cy likes nothing and is not evaluated.
HELD_OUT = [["ann", "a"], ["ann", "b"], ["ann", "c"], ["ann", "d"], ["bob", "b"],
            ["bob", "e"], ["cy", "a"]]
RATINGS = [5, 2, 4, 5, 4, 1, 3]
LISTS = {"ann": ["a", "b", "d"], "bob": ["a", "c", "e"], "cy": ["b"]}

IDCG3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
EXPECTED = {
    # ann hits at ranks 1 and 3, bob none.
    ("precision", 3): (2 / 3 + 0) / 2,
    ("recall", 3): (2 / 3 + 0) / 2,
    ("ndcg", 3): ((1 + 1 / math.log2(4)) / IDCG3 + 0) / 2,
    ("map", 3): ((1 / 1 + 2 / 3) / 3 + 0) / 2,
    ("precision", 1): (1 + 0) / 2,
    ("recall", 1): (1 / 3 + 0) / 2,
    ("ndcg", 1): (1 + 0) / 2,
    ("map", 1): (1 / 1 + 0) / 2,  # divided by min(R, k) = 1
}


@pytest.mark.parametrize("name, k", sorted(EXPECTED))
def test_ranking_metrics_by_hand(name, k):
    value = RANKING[name](LISTS, HELD_OUT, RATINGS, k=k, threshold=4)
    assert value == pytest.approx(EXPECTED[name, k], rel=1e-12)


def test_without_threshold_every_held_out_item_is_relevant():
    # ann: a, b, c, d all relevant (3 hits of 4); bob: b, e (1 hit: e); cy: a (0 hits).
    assert precision_at_k(LISTS, HELD_OUT, RATINGS, k=3) == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert recall_at_k(LISTS, HELD_OUT, RATINGS, k=3) == pytest.approx((3 / 4 + 1 / 2 + 0) / 3)


def test_short_lists_and_missing_users():
    # Precision divides by k even for a 1-item list; a user absent from the
    # mapping has no recommendations.
    lists = {"ann": ["c"]}
    assert precision_at_k(lists, HELD_OUT, RATINGS, k=4, threshold=4) == pytest.approx(
        (1 / 4 + 0) / 2)
    assert ndcg_at_k(lists, HELD_OUT, RATINGS, k=4, threshold=4) == pytest.approx(
        (1 / IDCG3 + 0) / 2)
    assert map_at_k({}, HELD_OUT, RATINGS, k=4, threshold=4) == 0.0


def test_perfect_lists_score_one():
    perfect = {"ann": ["d", "a", "c"], "bob": ["b"]}
    for name in ("ndcg", "map", "recall"):
        assert RANKING[name](perfect, HELD_OUT, RATINGS, k=3, threshold=4) == pytest.approx(1)


def test_ranking_input_errors():
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        precision_at_k(LISTS, HELD_OUT, RATINGS, k=0)
    with pytest.raises(ValueError, match="no held-out rating is relevant"):
        precision_at_k(LISTS, HELD_OUT, RATINGS, threshold=6)
    with pytest.raises(ValueError, match="repeat an item"):
        precision_at_k({"ann": ["a", "a"]}, HELD_OUT, RATINGS, threshold=4)
    with pytest.raises(ValueError, match="strings against integers"):
        precision_at_k({"ann": [1, 2]}, HELD_OUT, RATINGS, threshold=4)
    with pytest.raises(ValueError, match="fitted model .* or a mapping"):
        precision_at_k([["a"]], HELD_OUT, RATINGS)


@pytest.fixture(scope="module")
def fitted_and_held_out():
    R = make_low_rank(60, 40, 3, 0.5, noise=0.1, random_state=0) + 3
    observed = np.argwhere(~np.isnan(R))
    held = np.random.default_rng(0).random(len(observed)) < 0.2
    R_train = R.copy()
    R_train[tuple(observed[held].T)] = np.nan
    model = MatrixFactorization(n_factors=3, n_epochs=50, learning_rate=0.02, random_state=0,
                                n_threads=1).fit(R_train)
    return model, observed[held], R[tuple(observed[held].T)], R_train


@pytest.mark.parametrize("name", sorted(RANKING))
def test_a_model_is_scored_through_its_recommendations(fitted_and_held_out, name):
    model, X_test, y_test, _ = fitted_and_held_out
    users = np.unique(X_test[y_test >= 3.5, 0])
    items, _ = model.recommend(users, n=5)
    lists = dict(zip(users.tolist(), items.tolist()))
    metric = RANKING[name]
    from_model = metric(model, X_test, y_test, k=5, threshold=3.5)
    assert from_model == pytest.approx(metric(lists, X_test, y_test, k=5, threshold=3.5))
    # A good model ranks far better than chance.
    rng = np.random.default_rng(0)
    random_lists = {u: rng.permutation(40)[:5].tolist() for u in users.tolist()}
    assert from_model > 1.5 * metric(random_lists, X_test, y_test, k=5, threshold=3.5)


def test_held_out_ratings_as_a_matrix(fitted_and_held_out):
    model, X_test, y_test, R_train = fitted_and_held_out
    R_test = np.full(R_train.shape, np.nan)
    R_test[tuple(X_test.T)] = y_test
    assert ndcg_at_k(model, R_test, k=5, threshold=3.5) == pytest.approx(
        ndcg_at_k(model, X_test, y_test, k=5, threshold=3.5))
    # k beyond the number of items: every unrated item is listed (padded, not an
    # error), so every held-out item is found.
    assert recall_at_k(model, R_test, k=100) == 1.0
    assert precision_at_k(model, R_test, k=100) < 0.2  # divided by k = 100
