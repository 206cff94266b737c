"""train_test_split for ratings, validation curves and their plots."""

import doctest

import matplotlib.axes
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mfcy.metrics
import mfcy.model_selection
from mfcy import MatrixFactorization
from mfcy.datasets import make_low_rank
from mfcy.metrics import rmse
from mfcy.model_selection import train_test_split, validation_curve
from mfcy.plotting import plot_validation_curve


def sparse_pairs(rng, n_users=80, n_items=50, n=600):
    """Ratings where many users and items have only one or two ratings."""
    users = rng.zipf(1.5, n) % n_users
    items = rng.zipf(1.5, n) % n_items
    key = np.unique(users * n_items + items)
    X = np.column_stack([key // n_items, key % n_items])
    return X, rng.integers(1, 6, len(X)).astype(float)


def row_keys(X):
    return set(map(tuple, np.asarray(X).tolist()))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("keep", ["users", "items", "both"])
def test_keep_in_train_keeps_every_user_and_item(seed, keep):
    rng = np.random.default_rng(seed)
    X, y = sparse_pairs(rng)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25,
                                                        keep_in_train=keep, random_state=seed)
    # A partition of the rows, ratings travelling with their pairs.
    assert len(X_train) + len(X_test) == len(X)
    assert row_keys(X_train) | row_keys(X_test) == row_keys(X)
    assert not row_keys(X_train) & row_keys(X_test)
    lookup = {tuple(x): r for x, r in zip(X.tolist(), y)}
    assert all(lookup[tuple(x)] == r for x, r in zip(X_test.tolist(), y_test))
    assert len(X_test) == int(np.ceil(0.25 * len(X)))
    if keep in ("users", "both"):
        assert set(X[:, 0]) == set(X_train[:, 0])
    if keep in ("items", "both"):
        assert set(X[:, 1]) == set(X_train[:, 1])


def test_without_keep_in_train_some_ids_are_held_out_entirely():
    X, y = sparse_pairs(np.random.default_rng(0))
    X_train, X_test, _, _ = train_test_split(X, y, test_size=0.3, random_state=0)
    assert set(X_test[:, 0]) - set(X_train[:, 0])  # cold-start users exist


def test_split_is_seeded_and_the_seed_matters():
    X, y = sparse_pairs(np.random.default_rng(0))
    a = train_test_split(X, y, random_state=3, keep_in_train="both")
    b = train_test_split(X, y, random_state=3, keep_in_train="both")
    c = train_test_split(X, y, random_state=4, keep_in_train="both")
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)
    assert row_keys(a[1]) != row_keys(c[1])


def test_split_of_a_dense_matrix_and_of_sparse_matrices():
    R = make_low_rank(20, 15, 2, 0.5, random_state=0)
    R_train, R_test = train_test_split(R, test_size=0.2, keep_in_train="both", random_state=0)
    observed, train_obs, test_obs = ~np.isnan(R), ~np.isnan(R_train), ~np.isnan(R_test)
    assert R_train.shape == R_test.shape == R.shape
    np.testing.assert_array_equal(train_obs | test_obs, observed)
    assert not (train_obs & test_obs).any()
    np.testing.assert_array_equal(np.where(test_obs, R_test, R_train)[observed], R[observed])
    assert (train_obs.any(axis=1) == observed.any(axis=1)).all()
    assert test_obs.sum() == int(np.ceil(0.2 * observed.sum()))
    for S in (sp.csr_matrix(np.nan_to_num(R)), sp.coo_array(np.nan_to_num(R))):
        S_train, S_test = train_test_split(S, test_size=5, random_state=0)
        assert type(S_train) is type(S) and S_train.format == S.format
        assert S_test.nnz == 5 and S_train.nnz == S.nnz - 5
        np.testing.assert_array_equal((S_train + S_test).toarray(), S.toarray())


def test_split_of_data_frames():
    frame = pd.DataFrame({"rating": [4.0, 3, 5, 2, 1, 4, 3, 5],
                          "uid": list("aabbccdd"), "iid": list("xyxyzxyz")})
    train, test = train_test_split(frame, test_size=0.25, keep_in_train="users",
                                   user_col="uid", item_col="iid", random_state=1)
    assert isinstance(train, pd.DataFrame) and len(test) == 2
    assert set(train.uid) == set("abcd")
    assert sorted(train.index.tolist() + test.index.tolist()) == list(range(8))
    X_train, X_test, y_train, y_test = train_test_split(frame[["uid", "iid"]], frame.rating,
                                                        test_size=2, random_state=1)
    assert isinstance(X_train, pd.DataFrame) and isinstance(y_test, pd.Series)
    assert (X_test.index == y_test.index).all()
    with pytest.raises(ValueError, match="no column 'user'"):
        train_test_split(frame, keep_in_train="users", user_col="user", item_col="iid")


def test_split_input_errors():
    X, y = sparse_pairs(np.random.default_rng(0))
    with pytest.raises(ValueError, match="test_size must be in"):
        train_test_split(X, y, test_size=1.5)
    with pytest.raises(ValueError, match="test_size=0 ratings must be between 1"):
        train_test_split(X, y, test_size=0)
    with pytest.raises(ValueError, match="keep_in_train must be one of"):
        train_test_split(X, y, keep_in_train=True)
    with pytest.raises(ValueError, match="pairs but y has"):
        train_test_split(X, y[:-1])
    with pytest.raises(ValueError, match="at least 2 ratings"):
        train_test_split(X[:1], y[:1])
    # Every rating the only one of its user: nothing can be held out.
    with pytest.raises(ValueError, match="leaves no rating to hold out"), \
            pytest.warns(UserWarning, match="leaves only 0 ratings"):
        train_test_split(np.array([[1, 1], [2, 1], [3, 2]]), [1.0, 2.0, 3.0],
                         keep_in_train="users")
    with pytest.warns(UserWarning, match="leaves only 1 ratings to hold out, fewer than the 2"):
        train_test_split(np.array([[1, 1], [1, 2], [2, 1]]), [1.0, 2.0, 3.0], test_size=2,
                         keep_in_train="users", random_state=0)


@pytest.fixture(scope="module")
def curve_data():
    R = make_low_rank(80, 50, 3, 0.4, noise=0.2, random_state=0) + 3
    R_train, R_val = train_test_split(R, test_size=0.2, keep_in_train="both", random_state=0)
    return R_train, R_val


def test_validation_curve_matches_separate_fits(curve_data):
    R_train, R_val = curve_data
    base = MatrixFactorization(n_epochs=80, learning_rate=0.02, random_state=0, n_threads=1)
    curve = validation_curve(base, R_train, validation=R_val, param_name="n_factors",
                             param_range=[1, 3, 8])
    assert curve.best_value == 3
    val_pairs = np.argwhere(~np.isnan(R_val))
    for k, val_rmse, train_rmse in zip([1, 3, 8], curve.validation_rmse, curve.train_rmse):
        fitted = MatrixFactorization(n_factors=k, n_epochs=80, learning_rate=0.02,
                                     random_state=0, n_threads=1).fit(R_train)
        assert val_rmse == pytest.approx(rmse(R_val[~np.isnan(R_val)],
                                              fitted.predict(val_pairs)), rel=1e-12)
        # The curve scores predictions (clipped to the rating scale); the
        # history holds the raw scores' RMSE.
        train_rows = np.argwhere(~np.isnan(R_train))
        assert train_rmse == pytest.approx(rmse(R_train[~np.isnan(R_train)],
                                                fitted.predict(train_rows)), rel=1e-12)
        assert (rmse(R_train[~np.isnan(R_train)], fitted.predict(train_rows, clip=False))
                == pytest.approx(fitted.history_["train_rmse"][-1], rel=1e-5))
    assert base.n_factors == 100 and not hasattr(base, "user_factors_")  # untouched
    assert curve.train_rmse[2] < curve.train_rmse[1]  # more factors fit training better
    assert len(curve.histories[0]["val_rmse"]) == 80


def test_validation_curve_with_early_stopping_and_errors(curve_data):
    R_train, R_val = curve_data
    base = MatrixFactorization(n_factors=3, n_epochs=500, learning_rate=0.05, random_state=0,
                               n_threads=1, early_stopping=True)
    curve = validation_curve(base, R_train, validation=R_val, param_name="regularization",
                             param_range=[0.0, 0.05])
    assert (curve.n_epochs < 500).all()
    assert (curve.best_epochs == curve.n_epochs - base.n_iter_no_change).all()
    with pytest.raises(ValueError, match="'alpha' is not a parameter"):
        validation_curve(base, R_train, validation=R_val, param_name="alpha", param_range=[1])
    with pytest.raises(ValueError, match="param_range is empty"):
        validation_curve(base, R_train, validation=R_val, param_name="tol", param_range=[])


def test_plots_return_axes(curve_data):
    R_train, R_val = curve_data
    base = MatrixFactorization(n_factors=3, n_epochs=20, learning_rate=0.02, random_state=0,
                               n_threads=1)
    curve = validation_curve(base, R_train, validation=R_val, param_name="biased",
                             param_range=[False, True])
    ax = curve.plot()
    assert isinstance(ax, matplotlib.axes.Axes)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["False", "True"]
    ax = plot_validation_curve([0.005, 0.02, 0.05, 0.1], [1.0, 0.9, 0.95, 1.1],
                               param_name="regularization")
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "regularization"
    assert len(ax.get_lines()) == 2  # the validation curve and the best point
    ax = plot_validation_curve([5, 10, 20], [1.0, 0.9, 0.95], [0.8, 0.6, 0.4], xscale="linear")
    assert ax.get_xscale() == "linear" and len(ax.get_lines()) == 3
    with pytest.raises(ValueError, match="one score per value"):
        plot_validation_curve([1, 2], [1.0])


def test_loss_plot_shows_the_validation_curve(curve_data):
    R_train, R_val = curve_data
    fitted = MatrixFactorization(n_factors=3, n_epochs=5, random_state=0, n_threads=1)
    ax = fitted.fit(R_train, validation=R_val).plot_loss()
    assert [line.get_label() for line in ax.get_lines()] == ["train mse", "val mse"]


@pytest.mark.parametrize("module", [mfcy.model_selection, mfcy.metrics])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
