"""The four estimators (MatrixFactorization, SVDpp, NMF, BaselineOnly) through the shared
base: input forms, validation, early stopping, callbacks, warm start, prediction,
recommendation, files, pickling, cloning, the command line; and each new model's fit
against the kernel-level oracles of tests/test_models_kernel.py."""

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mfcy
import mfcy.baseline
import mfcy.nmf
import mfcy.svdpp
from mfcy import NMF, BaselineOnly, MatrixFactorization, SVDpp
from mfcy.cli import main
from mfcy.io import read_metadata

from test_models_kernel import (Problem, oracle_baseline_als_epoch, oracle_implicit,
                                oracle_nmf_epoch, oracle_svdpp_epoch,
                                oracle_svdpp_lanes_epoch)

MODELS = {
    "svd": lambda **kw: MatrixFactorization(n_factors=4, n_epochs=8, **kw),
    "svdpp": lambda **kw: SVDpp(n_factors=4, n_epochs=8, **kw),
    "nmf": lambda **kw: NMF(n_factors=4, n_epochs=8, **kw),
    "baseline": lambda **kw: BaselineOnly(n_epochs=8, **kw),
}
CLASSES = {"svd": MatrixFactorization, "svdpp": SVDpp, "nmf": NMF, "baseline": BaselineOnly}


@pytest.fixture(params=sorted(MODELS))
def name(request):
    return request.param


def _data(seed=0, n=600, n_users=40, n_items=30):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    ratings = rng.integers(1, 6, n).astype(float)
    return np.column_stack([users, items]), ratings


def _fit(name, X, y, **kw):
    return MODELS[name](random_state=0, dtype="float64", **kw).fit(X, y)


def test_every_input_form_gives_the_same_model(name):
    X, y = _data()
    X, y = X[:0], y[:0]
    # Distinct pairs, so the dense and sparse forms hold the same ratings.
    rng = np.random.default_rng(1)
    R = np.where(rng.random((20, 15)) < 0.5, rng.integers(1, 6, (20, 15)).astype(float), np.nan)
    R[:, 0] = 3.0  # every user and every item rated
    R[0, :] = 4.0
    users, items = np.nonzero(~np.isnan(R))
    pairs, ratings = np.column_stack([users, items]), R[users, items]
    reference = _fit(name, pairs, ratings).predict(pairs)
    frame = pd.DataFrame({"user": users, "item": items, "rating": ratings})
    forms = [(R, None), (sp.csr_matrix(np.nan_to_num(R)), None), (frame, None),
             (pairs[::-1], ratings[::-1])]
    for X_form, y_form in forms:
        got = _fit(name, X_form, y_form).predict(pairs)
        np.testing.assert_array_equal(got, reference)
    # String ids: the same model, by id.
    su, si = np.array([f"u{u:02d}" for u in users]), np.array([f"i{i:02d}" for i in items])
    model = _fit(name, np.column_stack([su, si]), ratings)
    np.testing.assert_array_equal(model.predict(np.column_stack([su, si])), reference)


def test_validation_early_stopping_and_callback(name):
    X, y = _data()
    seen = []

    def callback(model, epoch, history):
        seen.append((epoch, len(history["sgd_mse"])))
        return epoch < 5

    model = MODELS[name](random_state=0).fit(X[:500], y[:500], validation=(X[500:], y[500:]),
                                             callback=callback)
    assert seen == [(e, e) for e in range(1, 6)]
    assert model.n_epochs_ == 5 and len(model.history_["val_rmse"]) == 5
    assert 1 <= model.best_epoch_ <= 5
    stopped = MODELS[name](random_state=0, early_stopping=True, n_iter_no_change=1,
                           tol=10.0).fit(X[:500], y[:500], validation=(X[500:], y[500:]))
    assert stopped.n_epochs_ == 2  # the second epoch cannot improve by tol=10
    with pytest.raises(ValueError, match="early_stopping=True needs held-out"):
        MODELS[name](early_stopping=True).fit(X, y)


def test_warm_start_continues_from_the_fitted_state(name):
    X, y = _data()
    once = MODELS[name](random_state=0, dtype="float64").fit(X, y)
    warm = MODELS[name](random_state=0, dtype="float64", warm_start=True).fit(X, y)
    before = warm.predict(X)
    warm.fit(X, y)
    assert not np.array_equal(warm.predict(X), before)  # moved on from the fitted state
    np.testing.assert_array_equal(before, once.predict(X))
    assert warm.score(X, y) >= once.score(X, y) - 1e-9


def test_predict_clip_fallback_recommend_score(name):
    X, y = _data()
    model = _fit(name, X, y)
    out, fallback = model.predict([[X[0, 0], X[0, 1]], [999, X[0, 1]]], return_fallback=True)
    assert fallback.tolist() == [False, True]
    clipped = model.predict(X, clip=True)
    assert clipped.min() >= 1.0 and clipped.max() <= 5.0
    items, scores = model.recommend(X[0, 0], n=5)
    rated = set(X[X[:, 0] == X[0, 0], 1].tolist())
    assert not rated & set(items.tolist())
    assert np.all(np.diff(scores) <= 0)
    # The recommendation scores are the predictions of those pairs.
    np.testing.assert_allclose(scores, model.predict(np.full(5, X[0, 0]), items), rtol=1e-12)
    assert np.isfinite(model.score(X, y))


def test_save_load_pickle_and_clone(name, tmp_path):
    from sklearn.base import clone

    X, y = _data()
    model = _fit(name, X, y)
    path = tmp_path / "model.npz"
    model.save(path)
    assert read_metadata(path)["format"] == f"mfcy.{CLASSES[name].__name__}"
    again = mfcy.io.load_model(path)
    assert type(again) is CLASSES[name]
    assert again.get_params() == model.get_params()
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert type(CLASSES[name].load(path)) is CLASSES[name]
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(X), model.predict(X))
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "users_")
    np.testing.assert_array_equal(copy.fit(X, y).predict(X), model.predict(X))


def test_a_model_file_of_another_kind_is_refused(tmp_path):
    X, y = _data()
    _fit("svdpp", X, y).save(tmp_path / "svdpp.npz")
    with pytest.raises(mfcy.ModelFileError, match="holds a SVDpp model, not a NMF"):
        NMF.load(tmp_path / "svdpp.npz")


def test_grid_search(name):
    from sklearn.model_selection import GridSearchCV

    X, y = _data()
    key = "n_epochs"
    search = GridSearchCV(MODELS[name](random_state=0), {key: [2, 4]}, cv=3).fit(X, y)
    assert search.best_params_[key] in (2, 4)


@pytest.mark.parametrize("algorithm", ["svd", "svdpp", "nmf", "baseline"])
def test_command_line_fit_and_info(algorithm, tmp_path, capsys):
    X, y = _data()
    path = tmp_path / "r.csv"
    pd.DataFrame({"u": X[:, 0], "i": X[:, 1], "r": y}).to_csv(path, header=False, index=False)
    out = tmp_path / "m.npz"
    assert main(["fit", str(path), "--algorithm", algorithm, "--model", str(out), "-q"]) == 0
    assert type(mfcy.io.load_model(out)) is CLASSES[algorithm]
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert f"model        {CLASSES[algorithm].__name__}" in capsys.readouterr().out


def test_command_line_refuses_options_a_model_does_not_have(tmp_path, capsys):
    X, y = _data()
    path = tmp_path / "r.csv"
    pd.DataFrame({"u": X[:, 0], "i": X[:, 1], "r": y}).to_csv(path, header=False, index=False)
    assert main(["fit", str(path), "--algorithm", "baseline", "--factors", "3"]) == 2
    assert "--factors does not apply to --algorithm baseline" in capsys.readouterr().err


@pytest.mark.parametrize("cls, param, value, message", [
    (SVDpp, "implicit_regularization", -1.0, "implicit_regularization must be >= 0"),
    (SVDpp, "n_lanes", 0, "n_lanes"),
    (NMF, "user_regularization", float("nan"), "user_regularization must be a finite"),
    (NMF, "n_factors", 0, "n_factors"),
    (BaselineOnly, "method", "newton", "method"),
    (BaselineOnly, "learning_rate", 0.0, "learning_rate must be > 0"),
])
def test_bad_hyperparameters_are_clear_errors(cls, param, value, message):
    X, y = _data()
    with pytest.raises(ValueError, match=message):
        cls(**{param: value}).fit(X, y)


def test_nmf_init_range_is_checked():
    X, y = _data()
    with pytest.raises(ValueError, match="init_low must be <= init_high"):
        NMF(init_low=2.0, init_high=1.0).fit(X, y)


@pytest.mark.parametrize("biased", [False, True])
def test_nmf_refuses_negative_ratings_before_fitting(biased):
    X, y = _data()
    fitted = NMF(n_factors=2, n_epochs=2, random_state=0).fit(X, y)
    before = fitted.user_factors_.copy()
    with pytest.raises(ValueError, match=r"NMF needs ratings >= 0 .*the lowest rating is -2: "
                                         "shift the ratings onto a non-negative scale"):
        fitted.set_params(biased=biased).fit(X, y - 3)
    np.testing.assert_array_equal(fitted.user_factors_, before)  # left as it was
    # Zero is a rating like any other.
    assert NMF(n_factors=2, n_epochs=2, random_state=0).fit(X, y - 1).n_epochs_ == 2


def test_nmf_refuses_factors_that_start_at_zero():
    X, y = _data()
    with pytest.raises(ValueError, match="init_high must be > 0: the multiplicative updates "
                                         "never move a factor that is 0"):
        NMF(init_low=0.0, init_high=0.0).fit(X, y)


def test_nmf_divergence_says_what_to_change():
    X, y = _data()
    model = NMF(n_factors=4, n_epochs=3, init_high=1e20, random_state=0)
    with pytest.raises(mfcy.DivergenceError, match=r"diverged in epoch 1 .*NMF has no learning "
                                                   r"rate; the products p_u \. q_i overflowed "
                                                   r"float32.*\[0, 1e\+20\].*lower init_high"):
        model.fit(X, y)
    assert not hasattr(model, "user_factors_")
    # float64 holds those products: the advice works.
    assert np.isfinite(NMF(n_factors=4, n_epochs=3, init_high=1e20, dtype="float64",
                           random_state=0).fit(X, y).user_factors_).all()


def test_command_line_nmf_with_negative_ratings_is_exit_2(tmp_path, capsys):
    X, y = _data()
    path = tmp_path / "r.csv"
    pd.DataFrame({"u": X[:, 0], "i": X[:, 1], "r": y - 3}).to_csv(path, header=False,
                                                                   index=False)
    assert main(["fit", str(path), "--algorithm", "nmf", "-q"]) == 2
    assert "NMF needs ratings >= 0" in capsys.readouterr().err


def test_fold_in_baseline_is_the_closed_form_and_the_others_refuse():
    X, y = _data()
    for method in ("als", "sgd"):
        model = _fit("baseline", X, y, method=method)
        item_bias = model.item_bias_.copy()
        new_X = np.array([[500, X[0, 1]], [500, X[1, 1]]])
        new_y = np.array([5.0, 4.0])
        model.fold_in(new_X, new_y)
        residual = (new_y - model.global_mean_ - item_bias[np.searchsorted(model.items_,
                                                                           new_X[:, 1])]).sum()
        expected = (residual / (model.user_regularization + 2) if method == "als"
                    else residual / (2 * (1 + model.regularization)))
        assert model.user_bias_[model.users_ == 500][0] == pytest.approx(expected, rel=1e-12)
        np.testing.assert_array_equal(model.item_bias_, item_bias)
    for name in ("svdpp", "nmf"):
        with pytest.raises(ValueError, match="fold_in is not available"):
            _fit(name, X, y).fold_in(X[:2], y[:2])
    with pytest.raises(ValueError, match="no item factors"):
        _fit("baseline", X, y).similar_items(X[0, 1])


# -- the estimators against the kernel-level oracles --------------------------------------

def _problem():
    pb = Problem(seed=5, n_users=12, n_items=9, density=0.5)
    assert len(np.unique(pb.users)) == pb.n_users and len(np.unique(pb.items)) == pb.n_items
    return pb


def _oracle_predict(pb, mu, P, Q, bu, bi, S=None):
    Z = P if S is None else P + S
    return mu + bu[pb.users] + bi[pb.items] + (Z[pb.users] * Q[pb.items]).sum(axis=1)


@pytest.mark.parametrize("n_lanes, lane_ratings", [(1, None), (None, 5), (None, None)])
def test_svdpp_fit_is_the_oracle(n_lanes, lane_ratings):
    """The plain rule with one lane; by default (2 lanes) the lanes' rule."""
    pb = _problem()
    k, n_epochs = 3, 4
    lanes = {} if n_lanes is None else {"n_lanes": n_lanes}
    if lane_ratings is not None:
        lanes["lane_ratings"] = lane_ratings
    model = SVDpp(n_factors=k, n_epochs=n_epochs, random_state=7, dtype="float64",
                  **lanes).fit(np.column_stack([pb.users, pb.items]), pb.ratings)
    pb.mu = model.global_mean_
    rng = np.random.default_rng(7)
    P, Q, Y = (rng.standard_normal((n, k)) * 0.1 for n in (pb.n_users, pb.n_items, pb.n_items))
    bu, bi = np.zeros(pb.n_users), np.zeros(pb.n_items)
    for _ in range(n_epochs):
        order = rng.permutation(pb.n_users).astype(np.int64)
        hyper = (0.007, 0.02, 0.02, 0.007, 0.005, True)
        if model.n_lanes == 1:
            oracle_svdpp_epoch(pb, order, P, Q, Y, bu, bi, *hyper)
        else:
            oracle_svdpp_lanes_epoch(pb, order, P, Q, Y, bu, bi, *hyper, model.n_lanes,
                                     model.lane_ratings)
    np.testing.assert_allclose(model.implicit_factors_, Y, rtol=0, atol=1e-12)
    S = oracle_implicit(Y, pb.user_ptr, pb.user_items)
    np.testing.assert_allclose(model.predict(np.column_stack([pb.users, pb.items])),
                               _oracle_predict(pb, pb.mu, P, Q, bu, bi, S), rtol=0, atol=1e-12)


def test_nmf_fit_is_the_oracle():
    pb = _problem()
    pb.ratings = np.abs(pb.ratings)
    pb.user_ratings, pb.item_ratings = np.abs(pb.user_ratings), np.abs(pb.item_ratings)
    k, n_epochs = 3, 6
    model = NMF(n_factors=k, n_epochs=n_epochs, random_state=3, dtype="float64").fit(
        np.column_stack([pb.users, pb.items]), pb.ratings)
    rng = np.random.default_rng(3)
    P, Q = (rng.uniform(0.0, 1.0, (n, k)) for n in (pb.n_users, pb.n_items))
    zeros_u, zeros_i = np.zeros(pb.n_users), np.zeros(pb.n_items)
    for _ in range(n_epochs):
        oracle_nmf_epoch(pb, P, Q, zeros_u, zeros_i, 0.08, 0.08, False)
    # clip=False: the raw scores (predict clips to the rating scale by default).
    np.testing.assert_allclose(model.predict(np.column_stack([pb.users, pb.items]), clip=False),
                               (P[pb.users] * Q[pb.items]).sum(axis=1), rtol=0, atol=1e-12)


def test_baseline_fit_is_the_oracle():
    pb = _problem()
    model = BaselineOnly(n_epochs=5, dtype="float64").fit(
        np.column_stack([pb.users, pb.items]), pb.ratings)
    pb.mu = model.global_mean_
    bu, bi = np.zeros(pb.n_users), np.zeros(pb.n_items)
    for _ in range(5):
        oracle_baseline_als_epoch(pb, bu, bi, 15.0, 10.0)
    np.testing.assert_allclose(model.user_bias_, bu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.item_bias_, bi, rtol=0, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda **kw: SVDpp(n_factors=4, n_epochs=3, n_lanes=4, lane_ratings=16, **kw),
    lambda **kw: SVDpp(n_factors=4, n_epochs=3, lane_ratings=64, **kw),  # the default 2 lanes
    lambda **kw: NMF(n_factors=4, n_epochs=3, **kw),
    lambda **kw: NMF(n_factors=4, n_epochs=3, biased=True, **kw),
    lambda **kw: BaselineOnly(n_epochs=3, **kw),
    lambda **kw: BaselineOnly(method="sgd", n_epochs=3, n_blocks=3, **kw),
])
def test_threads_give_the_same_bits(make, monkeypatch):
    # Small fits settle on one thread; lift that so two threads really run.
    for module in (mfcy.svdpp, mfcy.nmf, mfcy.baseline):
        monkeypatch.setattr(module, "MIN_WORK_PER_THREAD", 1)
    X, y = _data(n=2000, n_users=80, n_items=60)
    one = make(n_threads=1, random_state=0).fit(X, y)
    two = make(n_threads=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(one.predict(X), two.predict(X))
    np.testing.assert_array_equal(one.user_factors_, two.user_factors_)
