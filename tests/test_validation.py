"""Validation during training, early stopping, callbacks, warm start."""

import math
from functools import partial

import numpy as np
import pytest

from mfcy.datasets import make_low_rank
from mfcy.metrics import mae, rmse

from helpers import small_model


def shuffled_pairs(R, seed=0):
    users, items = np.nonzero(~np.isnan(R))
    order = np.random.default_rng(seed).permutation(len(users))
    return np.column_stack([users, items])[order], R[users, items][order]


@pytest.fixture(scope="module")
def split():
    R = make_low_rank(120, 50, 3, 0.35, noise=0.3, random_state=1) + 3
    X, y = shuffled_pairs(R)
    n_train = int(0.8 * len(y))
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


# Enough epochs for validation scores to turn (early stopping has something to stop).
small_model = partial(small_model, n_epochs=30, learning_rate=0.02)


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_validation_history_matches_predict_including_unknown_ids(split, biased, dtype):
    X, y, X_val, y_val = split
    # Ids absent from training on either side, and on both: the fallback prediction.
    X_val = np.vstack([X_val, [[1000, X[0, 1]], [X[0, 0], 2000], [1001, 2001]]])
    y_val = np.concatenate([y_val, [4.0, 1.5, 2.0]])
    model = small_model(biased=biased, dtype=dtype, n_epochs=5)
    model.fit(X, y, validation=(X_val, y_val))
    predicted, _ = model.predict(X_val, clip=False, return_fallback=True)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    assert len(model.history_["val_rmse"]) == 5
    assert model.history_["val_rmse"][-1] == pytest.approx(rmse(y_val, predicted), rel=rtol)
    assert model.history_["val_mae"][-1] == pytest.approx(mae(y_val, predicted), rel=rtol)
    assert model.history_["val_mse"][-1] == pytest.approx(rmse(y_val, predicted) ** 2, rel=rtol)
    assert model.best_epoch_ == 1 + int(np.argmin(model.history_["val_rmse"]))


def test_validation_as_a_matrix_and_as_a_validation_set_of_new_ids_only():
    R = make_low_rank(30, 20, 2, 0.6, random_state=0)
    observed = np.argwhere(~np.isnan(R))
    held = observed[::5]
    R_train, R_val = R.copy(), np.full_like(R, np.nan)
    R_train[held[:, 0], held[:, 1]] = np.nan
    R_val[held[:, 0], held[:, 1]] = R[held[:, 0], held[:, 1]]
    model = small_model(n_factors=2, n_epochs=3).fit(R_train, validation=R_val)
    assert model.history_["val_rmse"][-1] == pytest.approx(
        rmse(R_val[held[:, 0], held[:, 1]], model.predict(held)), rel=1e-5)
    # Nothing known in the validation set: every pair is a fallback.
    model.fit(R_train, validation=(np.array([[99, 98]]), [1.0]))
    assert model.history_["val_rmse"] == [pytest.approx(abs(1.0 - model.global_mean_))] * 3


def test_validation_errors_leave_a_fitted_model_alone(split):
    X, y, X_val, y_val = split
    model = small_model(n_epochs=2).fit(X, y)
    factors = model.user_factors_.copy()
    with pytest.raises(ValueError, match="validation: .*2 .*pairs but y has 3"):
        model.fit(X, y, validation=(X_val[:2], y_val[:3]))
    with pytest.raises(ValueError, match="validation: a tuple must be"):
        model.fit(X, y, validation=(X_val, y_val, y_val))
    with pytest.raises(ValueError, match="validation: .*NaN"):
        model.fit(X, y, validation=(X_val[:1], [np.nan]))
    with pytest.raises(ValueError, match="validation: user ids must be integers"):
        model.fit(X, y, validation=(np.array([["a", "b"]]), [1.0]))
    np.testing.assert_array_equal(model.user_factors_, factors)


def test_early_stopping_keeps_the_best_epoch(split):
    X, y, X_val, y_val = split
    model = small_model(n_epochs=300, early_stopping=True, n_iter_no_change=4, tol=0.0)
    model.fit(X, y, validation=(X_val, y_val))
    history = model.history_["val_rmse"]
    assert model.n_epochs_ < 300, "the validation RMSE should stop improving on noisy data"
    assert len(history) == model.n_epochs_ == model.best_epoch_ + 4
    assert history[model.best_epoch_ - 1] == min(history)
    # The kept factors are exactly those of a fit stopped at the best epoch.
    reference = small_model(n_epochs=model.best_epoch_).fit(X, y)
    np.testing.assert_array_equal(model.user_factors_, reference.user_factors_)
    np.testing.assert_array_equal(model.item_factors_, reference.item_factors_)
    np.testing.assert_array_equal(model.user_bias_, reference.user_bias_)
    np.testing.assert_array_equal(model.item_bias_, reference.item_bias_)
    assert rmse(y_val, model.predict(X_val, clip=False)) == pytest.approx(min(history), rel=1e-5)


def test_tol_makes_early_stopping_impatient(split):
    X, y, X_val, y_val = split
    patient = small_model(n_epochs=300, early_stopping=True, tol=0.0).fit(
        X, y, validation=(X_val, y_val))
    # An improvement must beat 0.05 RMSE per epoch: training stops far sooner.
    strict = small_model(n_epochs=300, early_stopping=True, tol=0.05).fit(
        X, y, validation=(X_val, y_val))
    assert strict.n_epochs_ < patient.n_epochs_
    history = strict.history_["val_rmse"]
    assert history[-1] > history[-1 - strict.n_iter_no_change] - 0.05


def test_without_early_stopping_the_last_epoch_is_kept(split):
    X, y, X_val, y_val = split
    model = small_model(n_epochs=40, learning_rate=0.05).fit(X, y, validation=(X_val, y_val))
    assert model.n_epochs_ == 40
    assert rmse(y_val, model.predict(X_val, clip=False)) == pytest.approx(model.history_["val_rmse"][-1],
                                                               rel=1e-5)
    assert model.best_epoch_ < 40  # it overfits, but the last epoch's factors stay


def test_early_stopping_needs_a_validation_set_and_valid_parameters(split):
    X, y, _, _ = split
    with pytest.raises(ValueError, match="early_stopping=True needs held-out ratings"):
        small_model(early_stopping=True).fit(X, y)
    with pytest.raises(ValueError, match="n_iter_no_change must be >= 1"):
        small_model(n_iter_no_change=0).fit(X, y)
    with pytest.raises(ValueError, match="tol must be >= 0"):
        small_model(tol=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="tol must be a finite real"):
        small_model(tol=math.nan).fit(X, y)


def test_best_epoch_is_dropped_by_a_fit_without_validation(split):
    X, y, X_val, y_val = split
    model = small_model(n_epochs=3).fit(X, y, validation=(X_val, y_val))
    assert hasattr(model, "best_epoch_")
    model.fit(X, y)
    assert not hasattr(model, "best_epoch_")
    assert "val_rmse" not in model.history_


def test_callback_sees_every_epoch_and_can_stop(split):
    X, y, X_val, y_val = split
    seen = []

    def record(model, epoch, history):
        seen.append((epoch, len(history["train_mse"]), len(history["val_rmse"]),
                     model.n_epochs_))

    small_model(n_epochs=4).fit(X, y, validation=(X_val, y_val), callback=record)
    assert seen == [(e, e, e, e) for e in range(1, 5)]

    model = small_model(n_epochs=50).fit(X, y, callback=lambda m, epoch, h: epoch < 3)
    assert model.n_epochs_ == 3 and len(model.history_["train_mse"]) == 3
    # Only False stops; None (no return value) or 0 does not.
    assert small_model(n_epochs=5).fit(X, y, callback=lambda m, e, h: 0).n_epochs_ == 5
    with pytest.raises(ValueError, match="callback must be callable"):
        small_model().fit(X, y, callback="stop")


def test_callback_stop_with_early_stopping_restores_the_best(split):
    X, y, X_val, y_val = split
    # Stop by callback at epoch 60, long after overfitting started at this learning rate.
    model = small_model(n_epochs=200, learning_rate=0.05, early_stopping=True,
                        n_iter_no_change=1000)
    model.fit(X, y, validation=(X_val, y_val), callback=lambda m, epoch, h: epoch < 60)
    assert model.n_epochs_ == 60 and model.best_epoch_ < 60
    assert rmse(y_val, model.predict(X_val, clip=False)) == pytest.approx(
        model.history_["val_rmse"][model.best_epoch_ - 1], rel=1e-5)


def test_verbose_prints_the_validation_rmse(split, capsys):
    X, y, X_val, y_val = split
    # No epoch improves the RMSE by 0.5: training stops after the second epoch.
    small_model(n_epochs=20, early_stopping=True, n_iter_no_change=1, tol=0.5,
                verbose=True).fit(X, y, validation=(X_val, y_val))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all("val RMSE" in line for line in lines[:2])
    assert lines[2].startswith("early stopping") and "keeping epoch" in lines[2]


# -- warm start --------------------------------------------------------------------------


def test_warm_start_continues_from_the_fitted_factors(split):
    X, y, _, _ = split
    # Without shuffling an epoch is a fixed function of the factors, so a warm
    # start is exactly a fit from the previous factors.
    params = dict(biased=False, shuffle=False, dtype="float64", n_epochs=3)
    model = small_model(**params).fit(X, y)
    P, Q = model.user_factors_.copy(), model.item_factors_.copy()
    model.set_params(warm_start=True).fit(X, y)
    explicit = small_model(**params).fit(X, y, user_factors=P, item_factors=Q)
    np.testing.assert_array_equal(model.user_factors_, explicit.user_factors_)
    np.testing.assert_array_equal(model.item_factors_, explicit.item_factors_)


def test_warm_start_keeps_known_ids_and_starts_new_ones_fresh(split):
    X, y, _, _ = split
    model = small_model(n_epochs=10).fit(X, y)
    old = {name: getattr(model, name).copy()
           for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_")}
    X_more = np.vstack([X, [[500, 0], [500, 1], [0, 700]]])
    y_more = np.concatenate([y, [5.0, 4.0, 1.0]])
    # A negligible step: the factors stay where the warm start put them.
    model.set_params(warm_start=True, learning_rate=1e-12, n_epochs=1).fit(X_more, y_more)
    assert model.users_[-1] == 500 and model.items_[-1] == 700
    for name, value in old.items():
        np.testing.assert_allclose(getattr(model, name)[:-1], value, atol=1e-6)
    assert model.user_bias_[-1] == pytest.approx(0.0, abs=1e-6)
    assert np.abs(model.user_factors_[-1]).max() > 1e-3  # drawn, not copied


def test_without_warm_start_fit_starts_over(split):
    X, y, _, _ = split
    model = small_model(n_epochs=5).fit(X, y)
    first = model.user_factors_.copy()
    model.fit(X, y)
    np.testing.assert_array_equal(model.user_factors_, first)


def test_warm_start_with_another_n_factors_is_an_error(split):
    X, y, _, _ = split
    model = small_model(n_epochs=2, warm_start=True).fit(X, y)  # first fit: a cold start
    with pytest.raises(ValueError, match="warm_start=True continues .* 3 columns"):
        model.set_params(n_factors=4).fit(X, y)


def test_validation_curve_plot_labels_numpy_values_plainly():
    import matplotlib.pyplot as plt
    import numpy as np

    from mfcy.plotting import plot_validation_curve

    ax = plot_validation_curve(np.array([0.01, 0.1]), [0.9, 0.8], param_name="regularization")
    labels = [line.get_label() for line in ax.get_lines()]
    assert "best: regularization=0.1" in labels
    plt.close("all")
