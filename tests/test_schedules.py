"""The learning-rate schedules of MatrixFactorization: parameters, state, warm start."""

import numpy as np
import pytest

from mfcy import MatrixFactorization
from mfcy.datasets import make_low_rank

from helpers import random_triples


def _problem():
    frame = make_low_rank(80, 50, 4, 0.3, random_state=5, as_frame=True)
    return frame[["user", "item"]].to_numpy(), frame["rating"].to_numpy() + 3.0


def test_learning_rate_none_means_the_schedules_default():
    assert MatrixFactorization()._validated_params().learning_rate == 0.005
    adagrad = MatrixFactorization(learning_rate_schedule="adagrad")
    assert adagrad._validated_params().learning_rate == 0.05
    # init_std=None likewise: the constant schedule keeps its historical 0.1.
    assert MatrixFactorization()._validated_params().init_std == 0.1
    assert adagrad._validated_params().init_std == 0.01
    assert MatrixFactorization(learning_rate=0.02,
                               learning_rate_schedule="adagrad")._validated_params() \
        .learning_rate == 0.02


@pytest.mark.parametrize("value", ["Adagrad", "decay", None, 1])
def test_an_unknown_schedule_is_a_value_error(value):
    X, y = _problem()
    with pytest.raises(ValueError, match="learning_rate_schedule"):
        MatrixFactorization(learning_rate_schedule=value).fit(X, y)


def test_the_constant_schedule_keeps_no_accumulators_and_adagrad_does():
    X, y = _problem()
    constant = MatrixFactorization(n_factors=4, n_epochs=2, random_state=0).fit(X, y)
    assert constant._fitted.user_accumulator is None
    model = MatrixFactorization(n_factors=4, n_epochs=2, random_state=0,
                                learning_rate_schedule="adagrad").fit(X, y)
    state = model._fitted
    assert state.user_accumulator.shape == (len(model.users_),)
    assert state.item_accumulator.shape == (len(model.items_),)
    # Every row was rated, so every accumulator grew from its start of 1.
    assert (state.user_accumulator > 1).all() and (state.item_accumulator > 1).all()
    assert not np.array_equal(model.user_factors_, constant.user_factors_)


def test_adagrad_fits_better_than_its_start():
    X, y = _problem()
    model = MatrixFactorization(n_factors=4, n_epochs=60, random_state=0,
                                learning_rate_schedule="adagrad").fit(X, y)
    rmse = model.history_["train_rmse"]
    assert rmse[-1] < 0.5 * rmse[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adagrad_is_bit_identical_for_any_thread_count(dtype, monkeypatch):
    import mfcy.model

    monkeypatch.setattr(mfcy.model, "MIN_WORK_PER_THREAD", 1)
    rng = np.random.default_rng(7)
    users, items, ratings = random_triples(rng, 400, 300, 0.1)
    X = np.column_stack([users, items])
    fits = [MatrixFactorization(n_factors=8, n_epochs=4, n_blocks=4, n_threads=n, dtype=dtype,
                                random_state=3, learning_rate_schedule="adagrad").fit(X, ratings)
            for n in (1, 2, 4)]
    for other in fits[1:]:
        for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
            np.testing.assert_array_equal(getattr(other, name), getattr(fits[0], name))
        np.testing.assert_array_equal(other._fitted.user_accumulator,
                                      fits[0]._fitted.user_accumulator)
        assert other.history_["train_mse"] == fits[0].history_["train_mse"]


def test_warm_start_continues_from_the_accumulators():
    from test_kernel import oracle_epoch_adagrad

    X, y = _problem()
    params = dict(n_factors=4, random_state=0, learning_rate_schedule="adagrad",
                  shuffle=False, dtype="float64", regularization=0.03)
    model = MatrixFactorization(n_epochs=2, **params).fit(X, y)
    state = model._fitted
    P, Q, bu, bi = (a.copy() for a in (state.user_factors, state.item_factors,
                                       state.user_bias, state.item_bias))
    Gu, Gi = state.user_accumulator.copy(), state.item_accumulator.copy()
    assert (Gu > 1).all() and (Gi > 1).all()
    model.set_params(warm_start=True, n_epochs=1).fit(X, y)
    # The same epoch in the oracle, from the fitted factors *and* accumulators,
    # visiting the canonical (user, item) order of shuffle=False.
    users = np.searchsorted(model.users_, X[:, 0])
    items = np.searchsorted(model.items_, X[:, 1])
    order = np.lexsort((items, users))
    oracle_epoch_adagrad(P, Q, bu, bi, Gu, Gi, users[order], items[order], y[order],
                         range(len(y)), state.global_mean, 0.05, 0.03, 0.03, True, False)
    np.testing.assert_allclose(model.user_factors_, P, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.item_bias_, bi, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model._fitted.user_accumulator, Gu, rtol=1e-12)


def test_warm_start_gives_new_rows_fresh_accumulators():
    X, y = _problem()
    first = X[:, 0] < 60
    model = MatrixFactorization(n_factors=4, n_epochs=3, random_state=0,
                                learning_rate_schedule="adagrad").fit(X[first], y[first])
    known = len(model.users_)
    old = model._fitted.user_accumulator.copy()
    model.set_params(warm_start=True, n_epochs=1)
    starts = {}

    # The accumulators the warm fit starts from: the state installed before epoch 1.
    import mfcy._training as training

    real_run = training.run_epochs

    def spy(model_, runner, *args, **kwargs):
        starts["user"] = runner.accumulators[0].copy()
        return real_run(model_, runner, *args, **kwargs)

    import mfcy.model
    mfcy.model.run_epochs = spy
    try:
        model.fit(X, y)
    finally:
        mfcy.model.run_epochs = real_run
    start = starts["user"]
    index = {u: j for j, u in enumerate(model.users_.tolist())}
    for j, user in enumerate(sorted(set(X[first, 0].tolist()))):
        assert start[index[user]] == old[j]
    fresh = [index[u] for u in set(X[~first, 0].tolist())]
    assert known < len(model.users_) and len(fresh)
    assert (start[fresh] == 1).all()


def test_a_loaded_model_restarts_the_accumulators(tmp_path):
    from mfcy._state import install

    X, y = _problem()
    model = MatrixFactorization(n_factors=4, n_epochs=2, random_state=0,
                                learning_rate_schedule="adagrad").fit(X, y)
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = MatrixFactorization.load(path)
    assert loaded.learning_rate_schedule == "adagrad"
    assert loaded._fitted.user_accumulator is None
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # A warm start from the loaded model restarts the accumulators at 1: the
    # same as the original model with its accumulators dropped, not as the
    # original model.
    reset = MatrixFactorization(**model.get_params())
    install(reset, model._fitted.replace(user_accumulator=None, item_accumulator=None))
    for m in (loaded, reset, model):
        m.set_params(warm_start=True, n_epochs=1, random_state=9).fit(X, y)
    np.testing.assert_array_equal(loaded.user_factors_, reset.user_factors_)
    assert not np.array_equal(loaded.user_factors_, model.user_factors_)


def test_early_stopping_keeps_the_best_epochs_accumulators():
    X, y = _problem()
    seen = {}

    def remember(model, epoch, history):
        seen[epoch] = model._fitted.user_accumulator.copy()

    model = MatrixFactorization(n_factors=4, n_epochs=40, random_state=0, early_stopping=True,
                                n_iter_no_change=2, learning_rate=0.3, regularization=0.0,
                                learning_rate_schedule="adagrad")
    model.fit(X[::2], y[::2], validation=(X[1::2], y[1::2]), callback=remember)
    assert model.best_epoch_ < model.n_epochs_
    np.testing.assert_array_equal(model._fitted.user_accumulator, seen[model.best_epoch_])
