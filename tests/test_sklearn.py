"""scikit-learn compatibility: clone, tags, score, GridSearchCV, folds with unseen ids."""

import subprocess
import sys

import numpy as np
import pytest
# scikit-learn is a test dependency (the `test` extra), optional at run time.
from sklearn.base import clone, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_validate
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)
from sklearn.utils.validation import check_is_fitted

from mfcy import MatrixFactorization, UnknownIdWarning
from mfcy.datasets import make_low_rank


@pytest.fixture(scope="module")
def ratings():
    R = make_low_rank(200, 60, 3, 0.3, noise=0.3, random_state=0) + 3
    users, items = np.nonzero(~np.isnan(R))
    order = np.random.default_rng(0).permutation(len(users))
    return np.column_stack([users, items])[order], R[users, items][order]


def model(**params):
    defaults = dict(n_epochs=60, learning_rate=0.02, random_state=0, n_threads=1)
    return MatrixFactorization(**{**defaults, **params})


def test_import_mfcy_does_not_import_sklearn(tmp_path):
    code = ("import sys, mfcy, mfcy.model_selection, mfcy.metrics; "
            "print(any(m.split('.')[0] == 'sklearn' for m in sys.modules))")
    # Run away from the source tree, so that the installed package is imported.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.strip() == "False"


def test_clone_gives_an_unfitted_copy_with_the_same_parameters(ratings):
    X, y = ratings
    fitted = model(n_factors=4, early_stopping=False, tol=1e-3, warm_start=True).fit(X, y)
    copy = clone(fitted)
    assert copy is not fitted and type(copy) is MatrixFactorization
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "user_factors_")


def test_tags_say_regressor():
    estimator = MatrixFactorization()
    assert is_regressor(estimator)
    tags = get_tags(estimator)
    assert tags.estimator_type == "regressor"
    # The (X, y) form: string ids, no NaN, not sparse (issue 15; the matrix
    # forms are tested in test_conventions.py).
    assert tags.input_tags.string
    assert not tags.input_tags.sparse and not tags.input_tags.allow_nan
    assert tags.requires_fit


@pytest.mark.parametrize("check", [check_parameters_default_constructible,
                                   check_no_attributes_set_in_init,
                                   check_get_params_invariance, check_set_params])
def test_sklearn_estimator_checks_of_the_parameter_protocol(check):
    check("MatrixFactorization", MatrixFactorization())


def test_check_is_fitted(ratings):
    X, y = ratings
    estimator = model(n_epochs=1)
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator)
    check_is_fitted(estimator.fit(X, y))


def test_score_is_r2(ratings):
    X, y = ratings
    fitted = model().fit(X[:3000], y[:3000])
    X_test, y_test = X[3000:], y[3000:]
    predicted = fitted.predict(X_test)
    assert fitted.score(X_test, y_test) == pytest.approx(r2_score(y_test, predicted), rel=1e-12)
    weights = np.random.default_rng(0).random(len(y_test))
    assert fitted.score(X_test, y_test, sample_weight=weights) == pytest.approx(
        r2_score(y_test, predicted, sample_weight=weights), rel=1e-12)
    assert 0.8 < fitted.score(X_test, y_test) < 1
    # A constant target: 1.0 only for exact predictions, as r2_score.
    assert fitted.score(X_test[:3], [7.0, 7.0, 7.0]) == 0.0
    with pytest.raises(ValueError, match="sample_weight has 2 values for 3 ratings"):
        fitted.score(X_test[:3], y_test[:3], sample_weight=[1, 1])
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        fitted.score(X_test[:2], y_test[:2], sample_weight=[1, -1])


def test_score_of_held_out_ratings_as_a_matrix():
    R = make_low_rank(30, 20, 2, 0.7, random_state=0)
    fitted = model(n_factors=2).fit(R)
    observed = np.argwhere(~np.isnan(R))
    assert fitted.score(R) == pytest.approx(
        r2_score(R[~np.isnan(R)], fitted.predict(observed)), rel=1e-12)


def test_grid_search_picks_the_true_rank_and_light_regularization(ratings):
    X, y = ratings
    search = GridSearchCV(model(), {"n_factors": [1, 3, 10], "regularization": [0.02, 1.0]},
                          cv=3, scoring="neg_root_mean_squared_error").fit(X, y)
    assert search.best_params_ == {"n_factors": 3, "regularization": 0.02}
    # The noise has standard deviation 0.3: the best model gets close to it.
    assert -search.best_score_ < 0.6
    assert isinstance(search.best_estimator_, MatrixFactorization)
    assert search.best_estimator_.n_epochs_ == 60


def test_folds_whose_users_are_all_unseen_fall_back_to_the_baseline(ratings):
    X, y = ratings
    # Grouped by user: every test user is absent from its training folds.
    with pytest.warns(UnknownIdWarning, match="not seen in training"):
        result = cross_validate(model(), X, y, groups=X[:, 0], cv=GroupKFold(n_splits=3),
                                scoring=["neg_root_mean_squared_error", "r2"],
                                return_estimator=True)
    rmse = -result["test_neg_root_mean_squared_error"]
    assert np.isfinite(rmse).all()
    fold_model = result["estimator"][0]
    new_user = np.setdiff1d(X[:, 0], fold_model.users_)[0]
    some_item = fold_model.items_[0]
    assert fold_model.predict([[new_user, some_item]], return_fallback=True)[0][0] == pytest.approx(
        fold_model.global_mean_ + fold_model.item_bias_[0], rel=1e-6)
