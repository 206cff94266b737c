"""What a user of Surprise or scikit-learn expects (issue 15): the rating scale,
predictions of one pair, unknown ids reported, recommendations without padding,
scikit-learn's conventions and its adapted check_estimator."""

import subprocess
import sys
import warnings
from functools import partial

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mfcy import MatrixFactorization, NotFittedError, UnknownIdWarning

from helpers import small_model


# Trained enough for raw predictions to leave the training range.
small = partial(small_model, n_factors=2, n_epochs=30, learning_rate=0.05)


X = np.array([[1, 10], [1, 20], [2, 10], [2, 30], [3, 20], [3, 30]])
y = np.array([4.0, 2.0, 5.0, 1.0, 3.0, 4.5])


def test_rating_scale_is_a_checked_parameter_and_predict_clips_to_it():
    model = small(rating_scale=(2, 4)).fit(X, y)
    raw = model.predict(X, clip=False)
    assert raw.min() < 2 and raw.max() > 4
    np.testing.assert_array_equal(model.predict(X), np.clip(raw, 2, 4))
    # The default scale is the training range.
    default = small().fit(X, y)
    np.testing.assert_array_equal(default.predict(X), np.clip(default.predict(X, clip=False),
                                                              1.0, 5.0))
    # Training is not affected by the scale.
    np.testing.assert_array_equal(model.user_factors_, default.user_factors_)
    for bad in ((5, 1), (1,), "1-5", (1, np.inf), (True, 5)):
        with pytest.raises(ValueError, match="rating_scale"):
            small(rating_scale=bad).fit(X, y)


def test_rating_scale_survives_save_and_load(tmp_path):
    model = small(rating_scale=(0.5, 5)).fit(X, y)
    model.save(tmp_path / "m.npz")
    again = MatrixFactorization.load(tmp_path / "m.npz")
    assert tuple(again.rating_scale) == (0.5, 5.0)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_one_pair_gives_a_scalar():
    model = small().fit(X, y)
    value = model.predict(1, 30)
    assert isinstance(value, float)
    assert value == model.predict([[1, 30]])[0]
    value, fallback = model.predict(9, 30, return_fallback=True)
    assert isinstance(value, float) and fallback is True


def test_unknown_ids_are_reported():
    model = small().fit(X, y)
    with pytest.warns(UnknownIdWarning, match=r"1 of 2 \(user, item\) pairs .*e.g. 7"):
        model.predict([[1, 10], [7, 10]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict([[1, 10], [7, 10]], return_fallback=True)  # asked for: no warning
    with pytest.warns(UnknownIdWarning, match="1 of 2 users"):
        model.recommend([1, 7], n=1)


@pytest.mark.parametrize("biased", [True, False])
def test_float32_fallback_is_the_exact_float64_baseline(biased):
    ratings = y + 1 / 3  # a mean that float32 cannot hold
    model = small(dtype="float32", biased=biased).fit(X, ratings)
    out = model.predict([[9, 10], [1, 99], [9, 99]], clip=False, return_fallback=True)[0]
    mean = model.global_mean_
    expected = ([mean + float(model.item_bias_[0]), mean + float(model.user_bias_[0]), mean]
                if biased else [mean, mean, mean])
    assert out.tolist() == expected
    assert out[2] != np.float32(mean)


def test_recommend_ranks_by_raw_score_and_shows_clipped_scores():
    model = small(rating_scale=(1, 2), n_epochs=50).fit(X, y)
    items, scores = model.recommend(1, n=1, exclude_seen=True)
    # recommend scores in the model's dtype (a float32 matrix product), predict
    # in double precision rounded to it: equal to float32 rounding.
    raw = model.predict([1], items, clip=False)
    np.testing.assert_allclose(scores, np.clip(raw, 1, 2), rtol=1e-6)
    items, scores = model.recommend(1, n=3, exclude_seen=False)
    _, unclipped = model.recommend(1, n=3, exclude_seen=False, clip=False)
    assert (np.diff(unclipped) <= 0).all()  # ranked by the raw score
    assert unclipped.max() > 2 and scores.max() == 2  # ...shown on the scale
    np.testing.assert_array_equal(scores, np.clip(unclipped, 1, 2))
    raw = model.predict(np.repeat(1, 3), items, clip=False)
    np.testing.assert_allclose(unclipped, raw, rtol=1e-6)


def test_recommend_never_pads_with_rated_items():
    model = small().fit(X, y)
    # User 1 rated 10 and 20 of the 3 items: one left.
    items, scores = model.recommend(1, n=3)
    assert items.tolist() == [30] and scores.shape == (1,)
    with pytest.warns(UnknownIdWarning):  # 7: unknown, all three items
        items, scores = model.recommend([1, 7], n=3)
    assert isinstance(items, np.ma.MaskedArray) and items.shape == (2, 3)
    np.testing.assert_array_equal(items.mask, [[False, True, True], [False, False, False]])
    assert items[0].compressed().tolist() == [30]
    assert np.isnan(scores.data[0, 1:]).all() and (items.data[0, 1:] == -1).all()
    strings = small().fit(X.astype(str), y)
    with pytest.warns(UnknownIdWarning):
        items, _ = strings.recommend(["1", "7"], n=3)
    assert items.data[0, 1] == "" and items.mask[0, 1]


def test_similar_items_and_users_for_several_ids():
    model = small().fit(X, y)
    many, sims = model.similar_items([10, 30], n=2)
    assert many.shape == sims.shape == (2, 2)
    for row, item in enumerate([10, 30]):
        one, one_sims = model.similar_items(item, n=2)
        np.testing.assert_array_equal(many[row], one)
        np.testing.assert_array_equal(sims[row], one_sims)
        assert item not in one
    users, sims = model.similar_users(1, n=2)
    P = model.user_factors_.astype(float)
    cos = P @ P[0] / (np.linalg.norm(P, axis=1) * np.linalg.norm(P[0]))
    np.testing.assert_allclose(sims, np.sort(cos[1:])[::-1], rtol=1e-12)
    assert 1 not in users
    with pytest.raises(ValueError, match="similar_users needs user ids seen in training"):
        model.similar_users([1, 99])


def test_n_epochs_zero_is_the_initial_state():
    model = small(n_epochs=0).fit(X, y)
    assert model.n_epochs_ == 0 and model.history_["train_mse"] == []
    P = np.random.default_rng(0).standard_normal((3, 2)) * 0.1
    np.testing.assert_allclose(model.user_factors_, P, rtol=1e-6)
    np.testing.assert_array_equal(model.user_bias_, 0)
    np.testing.assert_allclose(model.predict(X, clip=False),
                               y.mean() + np.sum(model.user_factors_[[0, 0, 1, 1, 2, 2]]
                                                 * model.item_factors_[[0, 1, 0, 2, 1, 2]],
                                                 axis=1), rtol=1e-6)


def test_n_features_in_and_predict_leaves_the_model_unchanged():
    model = small()
    assert not hasattr(model, "n_features_in_")
    model.fit(X, y)
    assert model.n_features_in_ == 2
    before = dict(vars(model))
    state_before = dict(vars(model._fitted))
    model.predict(X)
    model.recommend([1, 2])
    assert vars(model) == before and vars(model._fitted) == state_before


def test_column_vector_y_is_accepted_with_a_data_conversion_warning():
    from sklearn.exceptions import DataConversionWarning

    with pytest.warns(DataConversionWarning, match="column-vector y"):
        model = small().fit(X, y[:, None])
    np.testing.assert_array_equal(model.user_factors_, small().fit(X, y).user_factors_)
    with pytest.warns(DataConversionWarning):
        assert model.score(X, y[:, None]) == model.score(X, y)


def test_not_fitted_is_scikit_learns_error_when_scikit_learn_is_in_use():
    import sklearn.exceptions

    model = small()
    for call in (lambda: model.predict(X), lambda: model.score(X, y),
                 lambda: model.recommend([1])):
        with pytest.raises(sklearn.exceptions.NotFittedError) as info:
            call()
        assert isinstance(info.value, NotFittedError) and isinstance(info.value, ValueError)


def test_not_fitted_without_scikit_learn_is_mfcys_own_and_does_not_import_it(tmp_path):
    code = ("import sys, mfcy\n"
            "try:\n    mfcy.MatrixFactorization().predict([[0, 0]])\n"
            "except mfcy.NotFittedError as e:\n    assert isinstance(e, ValueError)\n"
            "    print(type(e) is mfcy.NotFittedError, 'sklearn' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout.split()
    assert out == ["True", "False"]


def test_tags_describe_the_pairs_form():
    tags = small().__sklearn_tags__()
    assert tags.input_tags.allow_nan is False and tags.input_tags.sparse is False
    # The matrix forms, which the tags cannot describe, work (tested here instead).
    R = np.array([[4.0, np.nan], [np.nan, 2.0]])
    assert small().fit(R).predict([[0, 0]]).shape == (1,)
    assert small().fit(sp.csr_matrix(np.nan_to_num(R))).predict([[1, 1]]).shape == (1,)
    with pytest.raises(ValueError, match="NaN"):
        small().fit(np.array([[0, np.nan]]), [1.0])


def test_frames_find_their_columns_by_name_and_predict_ignores_extra_columns():
    frame = pd.DataFrame({"timestamp": [0] * 6, "movieId": X[:, 1], "userId": X[:, 0],
                          "rating": y})
    model = small().fit(frame)
    reference = small().fit(X, y)
    np.testing.assert_array_equal(model.user_factors_, reference.user_factors_)
    np.testing.assert_array_equal(model.predict(frame), reference.predict(X))
    with pytest.raises(ValueError, match="2 columns"):
        model.predict(frame.rename(columns={"userId": "a", "movieId": "b"}))


# --- scikit-learn's check_estimator, adapted -----------------------------------

class IdPairs(MatrixFactorization):
    """The checks' continuous features mapped to (user id, item id) integers (a test device)."""

    @staticmethod
    def _ids(X):
        if sp.issparse(X):
            return X
        X = np.asarray(X)
        if X.dtype == object:
            try:
                X = X.astype(float)
            except (TypeError, ValueError):
                return X
        if X.ndim == 2 and X.shape[1] >= 1 and X.dtype.kind in "iuf":
            cols = X[:, :2] if X.shape[1] >= 2 else np.column_stack([X[:, 0], X[:, 0]])
            if not np.isfinite(cols).all():
                return cols  # NaN or inf stay: mfcy must refuse them
            return np.floor(cols.astype(float) * 3).astype(np.int64)
        return X

    def fit(self, X, y=None, **kwargs):
        return super().fit(self._ids(X), y, **kwargs)

    def predict(self, X, items=None, **kwargs):
        return super().predict(self._ids(X), items, **kwargs)

    def score(self, X, y=None, sample_weight=None):
        return super().score(self._ids(X), y, sample_weight)


#: Each check that fails because a model of ids is not a model of features.
EXPECTED_FAILURES = {
    "check_n_features_in_after_fitting": "X is always 2 (user, item) ids: n_features_in_ is 2, "
                                         "not the check's 4 columns, which the wrapper maps",
    "check_complex_data": "refused with mfcy's message ('are complex numbers'), not "
                          "scikit-learn's wording",
    "check_estimators_empty_data_messages": "refused with mfcy's message (shape (n, 2) of "
                                            "ids), not scikit-learn's wording",
    "check_regressors_train": "ids carry no features: a target that is a function of "
                              "continuous features cannot be learnt from floor(3x) labels",
}


def test_adapted_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(IdPairs(n_factors=2, n_epochs=5, random_state=0),
                                  on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    passed = [r for r in results if r["status"] == "passed"]
    assert failed == set(EXPECTED_FAILURES), {
        r["check_name"]: repr(r["exception"])[:200] for r in results
        if r["status"] == "failed" and r["check_name"] not in EXPECTED_FAILURES}
    assert len(passed) >= 40


# --- plot defaults ---------------------------------------------------------------

def test_plot_defaults_log_scale_shared_colours_integer_ticks():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from mfcy.plotting import plot_loss, plot_matrices, plot_matrix

    try:
        ax = plot_loss({"train_mse": [10.0, 1.0, 0.1, 0.05]})
        assert ax.get_yscale() == "log"
        assert isinstance(ax.xaxis.get_major_locator(), MaxNLocator)
        assert all(float(t).is_integer() for t in ax.get_xticks())
        assert plot_loss({"train_mse": [1.0, 0.9, 0.8]}).get_yscale() == "linear"
        assert plot_loss({"train_mse": [1.0, 0.01]}, yscale="linear").get_yscale() == "linear"
        ax = plot_matrix(np.arange(12.0).reshape(3, 4))
        assert all(float(t).is_integer() for t in ax.get_xticks())
        assert all(float(t).is_integer() for t in ax.get_yticks())
        observed = np.array([[1.0, np.nan], [5.0, 2.0]])
        axes = plot_matrices([observed, np.array([[0.5, 3.0], [6.0, 2.0]])], ["a", "b"])
        limits = {ax.images[0].get_clim() for ax in axes}
        assert limits == {(0.5, 6.0)}
        assert len(axes[0].figure.axes) == 3  # two panels, one colour bar
    finally:
        plt.close("all")
