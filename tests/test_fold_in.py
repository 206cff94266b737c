"""fold_in: new (and known) users fitted against fixed item factors, by id."""

import numpy as np
import pytest

from mfcy import MatrixFactorization, UnknownIdWarning
from mfcy.datasets import make_low_rank
from mfcy.metrics import rmse


def model(**params):
    defaults = dict(n_factors=3, n_epochs=60, learning_rate=0.02, random_state=0, n_threads=1)
    return MatrixFactorization(**{**defaults, **params})


@pytest.fixture(scope="module")
def data():
    R = make_low_rank(300, 80, 3, 0.3, noise=0.2, random_state=2) + 3
    users, items = np.nonzero(~np.isnan(R))
    return np.column_stack([users, items]), R[users, items]


def test_folded_in_users_predict_held_out_ratings_as_well_as_a_full_refit(data):
    X, y = data
    half = np.random.default_rng(0).random(len(y)) < 0.5
    newcomer = X[:, 0] < 20
    profile, held_out = newcomer & half, newcomer & ~half
    refit = model().fit(X[~held_out], y[~held_out])
    folded = model().fit(X[~newcomer], y[~newcomer]).fold_in(X[profile], y[profile])
    refit_rmse = rmse(y[held_out], refit.predict(X[held_out]))
    folded_rmse = rmse(y[held_out], folded.predict(X[held_out]))
    baseline_rmse = rmse(y[held_out], np.full(held_out.sum(), y[~held_out].mean()))
    assert folded_rmse <= 1.1 * refit_rmse
    assert refit_rmse < 0.25 * baseline_rmse
    # The newcomers were appended in sorted order after the known users.
    np.testing.assert_array_equal(folded.users_[-20:], np.arange(20))
    assert folded.user_factors_.shape == (300, 3) and folded.user_bias_.shape == (300,)


@pytest.mark.parametrize("biased", [True, False])
def test_fold_in_solves_the_training_objective_for_the_user(data, biased):
    """The gradient of the per-user objective SGD minimises is zero at the solution."""
    X, y = data
    reg, reg_bias = 0.05, 0.01
    fitted = model(biased=biased, dtype="float64", regularization=reg,
                   bias_regularization=reg_bias).fit(X[X[:, 0] > 0], y[X[:, 0] > 0])
    mine = X[:, 0] == 0
    fitted.fold_in(X[mine], y[mine])
    row = int(np.flatnonzero(fitted.users_ == 0)[0])
    p, b = fitted.user_factors_[row], fitted.user_bias_[row]
    Q = fitted.item_factors_[X[mine, 1]]
    mu_bi = fitted.global_mean_ + fitted.item_bias_[X[mine, 1]] if biased else 0.0
    err = y[mine] - (mu_bi + b + Q @ p)
    n = mine.sum()
    np.testing.assert_allclose(-Q.T @ err + reg * n * p, 0, atol=1e-10)
    if biased:
        assert -err.sum() + reg_bias * n * b == pytest.approx(0, abs=1e-10)
    else:
        assert b == 0


def test_fold_in_batches_give_the_same_solutions():
    """Users solved in one batch of stacked systems, alone, or in smaller batches agree."""
    from mfcy._fold_in import _ridge_fold_in

    rng = np.random.default_rng(0)
    Q, item_bias = rng.standard_normal((40, 5)), rng.standard_normal(40)
    users = np.repeat(np.arange(6), [3, 1, 30, 7, 2, 12])
    items = np.concatenate([rng.choice(40, c, replace=False) for c in [3, 1, 30, 7, 2, 12]])
    ratings = rng.standard_normal(len(users))
    args = (Q, item_bias, 0.5, True, users, items, ratings, 0.1, 0.2)
    one_batch = _ridge_fold_in(*args)
    # A budget of one number: every user is its own batch of one system.
    alone = _ridge_fold_in(*args, budget=1)
    # Room for four 6 x 6 Gram matrices: batches of 4 and 2 users.
    mixed = _ridge_fold_in(*args, budget=4 * 36)
    for other in (alone, mixed):
        for got, expected in zip(other, one_batch):
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_fold_in_without_regularization_has_the_minimum_norm_solution():
    R = make_low_rank(40, 30, 5, 0.5, random_state=0)
    fitted = model(n_factors=5, regularization=0.0, dtype="float64").fit(R)
    # Two ratings for five factors plus a bias: underdetermined, still finite and exact.
    fitted.fold_in(np.array([[100, 0], [100, 1]]), [1.0, -1.0])
    np.testing.assert_allclose(fitted.predict([[100, 0], [100, 1]]), [1.0, -1.0], atol=1e-9)
    assert np.isfinite(fitted.user_factors_[-1]).all()


def test_folded_in_users_get_predictions_and_recommendations_by_id():
    X = np.array([["bob", "a"], ["bob", "b"], ["cy", "b"], ["cy", "c"], ["dan", "a"],
                  ["dan", "d"], ["eve", "c"], ["eve", "d"]])
    y = np.array([5.0, 3.0, 4.0, 2.0, 1.0, 4.0, 5.0, 2.0])
    fitted = model(n_factors=2, n_epochs=20).fit(X, y)
    before = fitted.predict(X)
    # "al" sorts before every training id: users_ is no longer sorted afterwards.
    fitted.fold_in(np.array([["zed", "a"], ["al", "b"], ["al", "c"]]), [4.0, 2.0, 5.0])
    assert fitted.users_.tolist() == ["bob", "cy", "dan", "eve", "al", "zed"]
    np.testing.assert_array_equal(fitted.predict(X), before)  # known users untouched
    row = 4
    expected = (fitted.global_mean_ + fitted.user_bias_[row] + fitted.item_bias_[3]
                + fitted.user_factors_[row] @ fitted.item_factors_[3])
    assert fitted.predict([["al", "d"]])[0] == pytest.approx(expected, rel=1e-6)
    items, _ = fitted.recommend(["al", "zed", "bob"], n=2)
    assert set(items[0]) == {"a", "d"}  # al's folded-in items are excluded
    assert "a" not in items[1]
    assert not {"a", "b"} & set(items[2])
    # An unknown id still falls back; string/int mix-ups are still errors.
    with pytest.warns(UnknownIdWarning, match="e.g. 'nobody'"):
        unknown = fitted.predict([["nobody", "a"]])[0]
    assert unknown == pytest.approx(
        fitted.global_mean_ + fitted.item_bias_[0], rel=1e-6)
    with pytest.raises(ValueError, match="ids must be strings like the training ids"):
        fitted.fold_in(np.array([[1, 2]]), [3.0])


def test_fold_in_of_a_known_user_re_solves_it_and_adds_its_items(data):
    X, y = data
    fitted = model().fit(X, y)
    n_users = len(fitted.users_)
    others = fitted.user_factors_[1:].copy()
    rated = set(X[X[:, 0] == 0, 1])
    new_item = next(i for i in range(80) if i not in rated)
    fitted.fold_in([[0, new_item], [0, next(iter(rated))]], [5.0, 5.0])
    assert len(fitted.users_) == n_users
    np.testing.assert_array_equal(fitted.user_factors_[1:], others)
    # Two ratings of 5 and the penalty: the new prediction moves up towards 5.
    assert fitted.predict([[0, new_item]])[0] > 4.0 > fitted.global_mean_
    items, _ = fitted.recommend(0, n=80 - len(rated) - 1)
    assert new_item not in items and not rated & set(items)


def test_fold_in_leaves_out_unknown_items_with_a_warning(data):
    X, y = data
    fitted = model(n_epochs=5).fit(X, y)
    with pytest.warns(UserWarning, match="1 ratings of 1 item.*unknown.*left out"):
        fitted.fold_in([[1000, 0], [1000, 999]], [4.0, 2.0])
    assert fitted.users_[-1] == 1000
    with pytest.warns(UserWarning, match="left out"):
        fitted.fold_in([[1001, 999]], [4.0])
    # Nothing to learn from: zero factors and bias, the baseline prediction.
    assert fitted.predict([[1001, 0]])[0] == pytest.approx(
        fitted.predict([[5000, 0]], return_fallback=True)[0][0], rel=1e-6)


def test_fold_in_duplicates_are_averaged_and_input_is_validated(data):
    X, y = data
    fitted = model(n_epochs=5, dtype="float64").fit(X, y)
    twin = model(n_epochs=5, dtype="float64").fit(X, y)
    fitted.fold_in([[500, 0], [500, 0], [500, 1]], [2.0, 4.0, 5.0])
    twin.fold_in([[500, 0], [500, 1]], [3.0, 5.0])
    np.testing.assert_allclose(fitted.user_factors_[-1], twin.user_factors_[-1], rtol=1e-12)
    with pytest.raises(ValueError, match="NaN"):
        fitted.fold_in([[501, 0]], [np.nan])
    with pytest.raises(ValueError, match="not fitted"):
        MatrixFactorization().fold_in([[1, 0]], [1.0])


def test_refit_after_fold_in_and_warm_start_use_the_appended_users(data):
    X, y = data
    fitted = model(n_epochs=5, warm_start=True).fit(X[X[:, 0] > 0], y[X[:, 0] > 0])
    fitted.fold_in(X[X[:, 0] == 0], y[X[:, 0] == 0])
    folded = fitted.user_factors_[-1].copy()
    # Warm start finds user 0 at the end of users_ and starts it from its folded-in factors.
    fitted.set_params(learning_rate=1e-12, n_epochs=1).fit(X, y)
    assert fitted.users_[0] == 0
    np.testing.assert_allclose(fitted.user_factors_[0], folded, atol=1e-6)


@pytest.mark.parametrize("train_ids,new_id", [
    (np.array([2**63, 2**63 + 5], dtype=np.uint64), -9),  # uint64 model, negative id
    (np.array([-3, 4]), 2**63),  # int64 model, an id beyond int64
])
def test_fold_in_of_an_id_the_model_id_type_cannot_hold_is_refused(train_ids, new_id):
    # Found by the fuzz tests: such an id was cast to the model's 64-bit type
    # (-9 stored as 2**64 - 9), so the folded-in user was not found by its id and
    # the follow-up lookup wrote the CSR of seen items with index -1 (zeroed).
    X = np.empty((2, 2), dtype=object)  # column_stack would make uint64 ids floats
    X[:, 0], X[:, 1] = train_ids.tolist(), [0, 1]
    fitted = model(n_epochs=2).fit(X, [1.0, 2.0])
    before = fitted.users_.copy(), fitted._seen_indptr.copy(), fitted._seen_items.copy()
    with pytest.raises(ValueError, match="do not fit the model's id type"):
        fitted.fold_in(np.array([[new_id, 0]], dtype=object), [3.0])
    for kept, now in zip(before, (fitted.users_, fitted._seen_indptr, fitted._seen_items)):
        np.testing.assert_array_equal(now, kept)
    assert fitted.predict(X).shape == (2,)
