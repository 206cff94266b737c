"""The teaching notebook, reproduced exactly."""

import numpy as np
import pytest

from mfcy import MatrixFactorization
from mfcy.datasets import lesson_problem

# The notebook's own printed values (171 observed entries).
FIRST_MSE = 1.9731534485206355
FINAL_MSE = 0.0005330870259347331


def notebook_sgd(R, U, V, lr=0.05, reg=0.01, epochs=200):
    """The notebook's loop, verbatim: the oracle of the lesson path."""
    errors = []
    rows, cols = np.where(~np.isnan(R))
    for _ in range(epochs):
        for i, j in zip(rows, cols):
            err = R[i, j] - U[i] @ V[j]
            U[i] += lr * (err * V[j] - reg * U[i])
            V[j] += lr * (err * U[i] - reg * V[j])
        pred = U @ V.T
        errors.append(np.nanmean((pred - R) ** 2))
    return errors


def lesson_model(**overrides):
    params = dict(n_factors=3, n_epochs=200, learning_rate=0.05, regularization=0.01,
                  biased=False, shuffle=False, update="sequential", dtype="float64")
    params.update(overrides)
    return MatrixFactorization(**params)


def test_lesson_problem_matches_the_notebook_draws():
    np.random.seed(42)
    true_U = np.random.randn(20, 3)
    true_V = np.random.randn(15, 3)
    mask = np.random.rand(20, 15) < 0.6
    R_expected = np.where(mask, true_U @ true_V.T, np.nan)
    U0_expected = 0.1 * np.random.randn(20, 3)
    V0_expected = 0.1 * np.random.randn(15, 3)
    state = np.random.get_state()[1].copy()

    R, U0, V0 = lesson_problem()
    np.testing.assert_array_equal(R, R_expected)
    np.testing.assert_array_equal(U0, U0_expected)
    np.testing.assert_array_equal(V0, V0_expected)
    assert int((~np.isnan(R)).sum()) == 171
    # lesson_problem() must not disturb the caller's global random state.
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_lesson_loss_curve_is_the_notebooks():
    R, U0, V0 = lesson_problem()
    model = lesson_model().fit(R, user_factors=U0, item_factors=V0)
    mse = model.history_["train_mse"]
    assert len(mse) == 200
    assert mse[0] == pytest.approx(FIRST_MSE, rel=1e-9)
    assert mse[-1] == pytest.approx(FINAL_MSE, rel=1e-9)
    np.testing.assert_allclose(model.history_["train_rmse"], np.sqrt(mse), rtol=1e-15)


def test_lesson_matches_the_notebook_loop_epoch_by_epoch():
    R, U0, V0 = lesson_problem()
    U, V = U0.copy(), V0.copy()
    expected = notebook_sgd(R, U, V)
    model = lesson_model().fit(R, user_factors=U0, item_factors=V0)
    np.testing.assert_allclose(model.history_["train_mse"], expected, rtol=1e-10)
    np.testing.assert_allclose(model.user_factors_, U, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(model.item_factors_, V, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(model.reconstruct(), U @ V.T, rtol=1e-10, atol=1e-13)


def test_lesson_initial_factors_are_copied_not_modified():
    R, U0, V0 = lesson_problem()
    U_before, V_before = U0.copy(), V0.copy()
    lesson_model(n_epochs=5).fit(R, user_factors=U0, item_factors=V0)
    np.testing.assert_array_equal(U0, U_before)
    np.testing.assert_array_equal(V0, V_before)


def test_lesson_in_float32_stays_close():
    R, U0, V0 = lesson_problem()
    model = lesson_model(dtype="float32").fit(R, user_factors=U0, item_factors=V0)
    assert model.user_factors_.dtype == np.float32
    assert model.history_["train_mse"][-1] == pytest.approx(FINAL_MSE, rel=1e-3)
