"""MatrixFactorization: input forms, id maps, predictions, errors, plots."""

from functools import partial

import numpy as np
import pytest
import scipy.sparse as sp

from mfcy import DivergenceError, MatrixFactorization, UnknownIdWarning
from mfcy.datasets import make_low_rank

from helpers import random_triples, small_model


small_model = partial(small_model, n_factors=4, n_epochs=3)


def test_dense_sparse_and_pairs_give_the_same_model(rng):
    R = make_low_rank(25, 18, 3, 0.5, random_state=1)
    users, items = np.nonzero(~np.isnan(R))
    ratings = R[users, items]
    dense = small_model().fit(R)
    sparse = small_model().fit(sp.csr_matrix((ratings, (users, items)), shape=R.shape))
    # Pairs: shuffled rows must not matter, ids are positions here too.
    order = rng.permutation(len(users))
    pairs = small_model().fit(np.column_stack([users, items])[order], ratings[order])
    for other in (sparse, pairs):
        np.testing.assert_array_equal(other.user_factors_, dense.user_factors_)
        np.testing.assert_array_equal(other.item_factors_, dense.item_factors_)
    np.testing.assert_array_equal(dense.users_, np.arange(25))


def test_matrix_ids_count_empty_rows_and_columns():
    R = np.full((5, 4), np.nan)
    R[1, 2] = 3.0
    R[3, 0] = 4.0
    model = small_model().fit(R)
    assert model.user_factors_.shape == (5, 4)
    assert model.item_factors_.shape == (4, 4)
    s = small_model().fit(sp.coo_array(([3.0, 4.0], ([1, 3], [2, 0])), shape=(5, 4)))
    assert s.user_factors_.shape == (5, 4)


def test_pair_ids_are_labels_in_sorted_order():
    X = np.array([[2**40, 7], [-5, 7], [2**40, 1], [10, 3]])
    y = np.array([4.0, 3.0, 5.0, 1.0])
    model = small_model().fit(X, y)
    np.testing.assert_array_equal(model.users_, [-5, 10, 2**40])
    np.testing.assert_array_equal(model.items_, [1, 3, 7])
    assert model.user_factors_.shape == (3, 4)
    # Float ids that are integral are accepted as integers.
    model_f = small_model().fit(X.astype(float)[:, ::-1][:, ::-1], y)
    np.testing.assert_array_equal(model_f.users_, model.users_)


def test_string_ids_work():
    X = np.array([["alice", "matrix"], ["bob", "alien"], ["alice", "alien"]], dtype=object)
    model = small_model().fit(X, [5, 3, 4])
    assert list(model.users_) == ["alice", "bob"]
    assert list(model.items_) == ["alien", "matrix"]
    assert model.predict([["bob", "matrix"]]).shape == (1,)


def test_duplicates_are_averaged_in_every_form():
    X = np.array([[0, 1], [0, 1], [2, 0], [0, 1]])
    y = np.array([1.0, 2.0, 5.0, 3.0])
    pairs = small_model().fit(X, y)
    # The same data, deduplicated by hand, must give the same model.
    dedup = small_model().fit(np.array([[0, 1], [2, 0]]), np.array([2.0, 5.0]))
    np.testing.assert_array_equal(pairs.user_factors_, dedup.user_factors_)
    assert pairs.global_mean_ == pytest.approx(3.5)
    coo = sp.coo_matrix((y, (X[:, 0], X[:, 1])), shape=(3, 2))  # duplicate COO entries
    sparse = small_model().fit(coo)
    dense = small_model().fit(np.array([[np.nan, 2.0], [np.nan, np.nan], [5.0, np.nan]]))
    np.testing.assert_array_equal(sparse.user_factors_, dense.user_factors_)
    assert sparse.global_mean_ == pytest.approx(3.5)
    np.testing.assert_array_equal(pairs.item_factors_, dedup.item_factors_)
    assert pairs.history_["train_mse"] == dedup.history_["train_mse"]
    np.testing.assert_array_equal(sparse.item_factors_, dense.item_factors_)


def test_predict_forms_and_unknown_id_fallback():
    X = np.array([[1, 10], [1, 20], [2, 10], [3, 30]])
    y = np.array([4.0, 2.0, 5.0, 3.0])
    model = small_model().fit(X, y)
    pair = model.predict(np.array([[1, 10]]))
    assert pair.dtype == np.float64
    np.testing.assert_array_equal(model.predict([1], [10]), pair)
    u = 0  # index of user 1
    i = 0  # index of item 10
    expected = (model.global_mean_ + model.user_bias_[u] + model.item_bias_[i]
                + model.user_factors_[u].astype(float) @ model.item_factors_[i].astype(float))
    assert pair[0] == pytest.approx(expected, rel=1e-6)
    # Unknown user: global mean + the known item's bias. Unknown both: global mean.
    with pytest.warns(UnknownIdWarning, match=r"3 of 3 \(user, item\) pairs .*\(e.g. 99\)"):
        unknown = model.predict([99, 99, 1], [10, 99, 99])
    assert unknown[0] == pytest.approx(model.global_mean_ + model.item_bias_[i], rel=1e-6)
    assert unknown[1] == pytest.approx(model.global_mean_)
    assert unknown[2] == pytest.approx(model.global_mean_ + model.user_bias_[u], rel=1e-6)


def test_unbiased_model_predicts_dot_products_and_global_mean_for_unknown():
    X = np.array([[0, 0], [0, 1], [1, 0]])
    model = small_model(biased=False).fit(X, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(model.user_bias_, 0)
    dot = float(model.user_factors_[1].astype(float) @ model.item_factors_[0].astype(float))
    assert model.predict([[1, 0]], clip=False)[0] == pytest.approx(dot, rel=1e-6)
    with pytest.warns(UnknownIdWarning, match="1 of 1"):
        assert model.predict([[5, 0]])[0] == pytest.approx(2.0)


def test_same_seed_same_bits_different_seed_different_model():
    R = make_low_rank(30, 20, 3, 0.4, random_state=2)
    a = small_model(random_state=11).fit(R)
    b = small_model(random_state=11).fit(R)
    c = small_model(random_state=12).fit(R)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    assert not np.array_equal(a.user_factors_, c.user_factors_)


@pytest.mark.parametrize("param,value", [
    ("n_factors", 6), ("n_epochs", 5), ("learning_rate", 0.01), ("regularization", 0.3),
    ("bias_regularization", 0.5), ("biased", False), ("init_std", 0.3), ("shuffle", False),
    ("update", "sequential"), ("dtype", "float64"), ("n_blocks", 2), ("random_state", 5),
])
def test_every_hyperparameter_changes_the_result(param, value):
    R = make_low_rank(30, 20, 3, 0.5, random_state=3)
    base = small_model(learning_rate=0.05, n_epochs=10).fit(R)
    changed = small_model(**{"learning_rate": 0.05, "n_epochs": 10, param: value}).fit(R)
    # float64 differs from float32 only by rounding: any difference counts there.
    atol = 0 if param == "dtype" else 1e-4
    assert not np.allclose(base.reconstruct(), changed.reconstruct(), rtol=0, atol=atol)


def test_training_reduces_loss_and_history_has_one_value_per_epoch():
    R = make_low_rank(60, 40, 3, 0.5, random_state=4)
    model = MatrixFactorization(n_factors=3, n_epochs=30, learning_rate=0.02,
                                random_state=0).fit(R)
    mse = model.history_["train_mse"]
    assert len(mse) == len(model.history_["sgd_mse"]) == model.n_epochs_ == 30
    assert mse[-1] < 0.2 * mse[0]
    quiet = MatrixFactorization(n_factors=3, n_epochs=30, learning_rate=0.02,
                                random_state=0, track_loss=False).fit(R)
    assert "train_mse" not in quiet.history_
    np.testing.assert_array_equal(quiet.user_factors_, model.user_factors_)


def test_biases_help_on_data_with_offsets():
    rng = np.random.default_rng(5)
    n_users, n_items = 200, 150
    R = (3.5 + rng.normal(0, 0.8, (n_users, 1)) + rng.normal(0, 0.8, (1, n_items))
         + 0.3 * rng.standard_normal((n_users, 2)) @ rng.standard_normal((2, n_items))
         + 0.1 * rng.standard_normal((n_users, n_items)))
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.3)
    ratings = R[users, items]
    test = rng.random(len(users)) < 0.2
    X = np.column_stack([users, items])
    errors = {}
    for biased in (True, False):
        model = MatrixFactorization(n_factors=2, n_epochs=60, learning_rate=0.02,
                                    regularization=0.05, biased=biased, random_state=0)
        model.fit(X[~test], ratings[~test])
        errors[biased] = np.sqrt(np.mean((model.predict(X[test]) - ratings[test]) ** 2))
    assert errors[True] < 0.6 * errors[False], errors


def test_get_and_set_params_round_trip():
    model = MatrixFactorization(n_factors=7, regularization=0.1)
    params = model.get_params()
    assert params["n_factors"] == 7 and params["regularization"] == 0.1
    assert MatrixFactorization(**params).get_params() == params
    assert model.set_params(n_factors=9) is model and model.n_factors == 9
    with pytest.raises(ValueError, match="invalid parameter 'k'"):
        model.set_params(k=3)
    assert "n_factors=9" in repr(model)


def test_converted_not_rejected_inputs():
    R = make_low_rank(20, 10, 2, 0.6, random_state=6)
    users, items = np.nonzero(~np.isnan(R))
    ratings = R[users, items]
    ref = small_model().fit(np.column_stack([users, items]), ratings)
    # Lists, non-contiguous, read-only, other dtypes.
    X = np.column_stack([users, users, items, items]).astype(np.int16)[:, ::2]
    assert not X.flags.c_contiguous
    y = ratings.astype(np.float32).astype(np.float64)
    y.setflags(write=False)
    other = small_model().fit(X.tolist(), list(y))
    assert other.user_factors_.shape == ref.user_factors_.shape
    R_f = np.asfortranarray(R)
    R_f.setflags(write=False)
    np.testing.assert_array_equal(small_model().fit(R_f).user_factors_,
                                  small_model().fit(R).user_factors_)
    ints = small_model().fit(np.array([[0, 0], [1, 1]]), np.array([3, 4], dtype=np.int8))
    assert ints.global_mean_ == 3.5


@pytest.mark.parametrize("X,y,message", [
    (np.array([[0, 1], [1, 0]]), [1.0, np.nan], "NaN or infinity"),
    (np.array([[0, 1], [1, 0]]), [1.0, np.inf], "NaN or infinity"),
    (np.array([[0.5, 1], [1, 0]]), [1.0, 2.0], "non-integral"),
    (np.array([[np.nan, 1], [1, 0]]), [1.0, 2.0], "NaN or infinity"),
    (np.array([[True, False]]), [1.0], "booleans"),
    (np.array([[1 + 1j, 2]]), [1.0], "complex"),
    (np.array([[0, 1], [1, 0]]), [1.0], "2 .* pairs but y has 1"),
    (np.array([0, 1, 2]), [1.0, 2.0, 3.0], r"shape \(n, 2\)"),
    (np.zeros((3, 3)), [1.0, 2.0, 3.0], r"shape \(n, 2\)"),
    (np.zeros((3, 2, 1)), [1.0, 2.0, 3.0], r"shape \(n, 2\)"),
    (np.array([[0, 1]]), [[1.0, 2.0]], "one-dimensional"),
    (np.array([[0, 1]]), ["high"], "numbers"),
    (np.full((3, 3), np.nan), None, "no observed ratings"),
    (np.zeros(4), None, "must be 2-D"),
    (np.array([[1.0, np.inf]]), None, "infinity"),
    (np.zeros((0, 2)), np.zeros(0), "no observed ratings"),
])
def test_bad_input_is_a_clear_value_error(X, y, message):
    with pytest.raises(ValueError, match=message):
        small_model().fit(X, y)


@pytest.mark.parametrize("param,value,message", [
    ("n_factors", 0, "n_factors"), ("n_factors", 2.5, "n_factors"), ("n_factors", True, "n_factors"),
    ("n_epochs", -1, "n_epochs"), ("learning_rate", 0, "learning_rate"),
    ("learning_rate", -1e-3, "learning_rate"), ("learning_rate", float("nan"), "learning_rate"),
    ("regularization", -0.1, "regularization"), ("bias_regularization", -1, "bias_regularization"),
    ("init_std", -1, "init_std"), ("update", "parallel", "update"), ("dtype", "float16", "dtype"),
    ("dtype", "bogus", "dtype"), ("n_blocks", 0, "n_blocks"), ("n_threads", 0, "n_threads"),
])
def test_bad_hyperparameters_are_clear_value_errors(param, value, message):
    with pytest.raises(ValueError, match=message):
        small_model(**{param: value}).fit(np.array([[0, 0]]), [1.0])


def test_initial_factors_of_the_wrong_shape_or_values():
    R = make_low_rank(5, 4, 2, 1.0, random_state=0)
    with pytest.raises(ValueError, match=r"user_factors must have shape \(5, 4\)"):
        small_model().fit(R, user_factors=np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"item_factors must have shape \(4, 4\)"):
        small_model().fit(R, item_factors=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="item_factors contains NaN"):
        small_model().fit(R, item_factors=np.full((4, 4), np.nan))


@pytest.mark.parametrize("track_loss", [True, False])
def test_divergence_is_an_error_naming_the_epoch(track_loss):
    R = make_low_rank(30, 20, 3, 0.5, random_state=1) * 10
    # Fitted first: a diverged re-fit must not leave the old state or NaN factors.
    model = small_model(n_epochs=2, track_loss=track_loss).fit(R)
    model.set_params(learning_rate=10.0, n_epochs=50)
    with pytest.raises(ValueError, match=r"epoch \d+.*smaller learning rate") as raised:
        model.fit(R)
    assert raised.type is DivergenceError  # and a ValueError, as the raises() above checks
    assert not hasattr(model, "user_factors_")  # never NaN factors left behind


def test_ratings_that_overflow_float32_are_an_error():
    with pytest.raises(ValueError, match="overflow float32"):
        small_model().fit(np.array([[0, 0], [1, 1]]), [1e39, 1.0])


def test_dense_matrix_of_zeros_warns():
    R = np.zeros((10, 10))
    R[0, 0] = 5.0
    with pytest.warns(UserWarning, match="zeros are treated as"):
        small_model().fit(R)


def test_reconstruct_refuses_huge_matrices(monkeypatch):
    import mfcy.model

    model = small_model().fit(np.array([[0, 0], [1, 1]]), [1.0, 2.0])
    monkeypatch.setattr(mfcy.model, "MAX_RECONSTRUCT_CELLS", 3)
    with pytest.raises(ValueError, match="allow_large=True"):
        model.reconstruct()
    assert model.reconstruct(allow_large=True).shape == (2, 2)


def test_predict_before_fit_and_type_mismatch():
    with pytest.raises(ValueError, match="not fitted"):
        small_model().predict([[0, 0]])
    model = small_model().fit(np.array([[0, 0], [1, 1]]), [1.0, 2.0])
    with pytest.raises(ValueError, match="must be integers"):
        model.predict([["a", "b"]])


def test_plots_return_axes_and_save(tmp_path):
    import matplotlib.axes
    import matplotlib.pyplot as plt

    R = make_low_rank(20, 15, 3, 0.6, random_state=0)
    model = small_model(n_epochs=5).fit(R)
    for method in (model.plot_loss, model.plot_reconstruction):
        ax = method()
        assert isinstance(ax, matplotlib.axes.Axes)
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        path = tmp_path / f"{method.__name__}.png"
        ax.figure.savefig(path)
        assert path.stat().st_size > 1000
    assert len(model.plot_loss().lines[0].get_ydata()) == 5
    fig, ax = plt.subplots()
    assert model.plot_loss(ax=ax) is ax
    plt.close("all")
    with pytest.raises(ValueError, match="track_loss"):
        small_model(track_loss=False).fit(R).plot_loss()


def test_small_fits_run_on_one_thread_with_the_same_result(monkeypatch):
    import mfcy._sgd
    import mfcy.model

    calls = []
    real_epoch = mfcy._sgd.sgd_epoch

    def spy(*args):
        calls.append(args[-1])  # n_threads is the kernel's last argument
        return real_epoch(*args)

    monkeypatch.setattr(mfcy._sgd, "sgd_epoch", spy)
    R = make_low_rank(30, 20, 3, 0.5, random_state=0)
    small = small_model(n_threads=2).fit(R)
    assert set(calls) == {1}
    calls.clear()
    monkeypatch.setattr(mfcy.model, "MIN_WORK_PER_THREAD", 1)
    threaded = small_model(n_threads=2).fit(R)
    assert set(calls) == {2}
    np.testing.assert_array_equal(small.user_factors_, threaded.user_factors_)


@pytest.mark.parametrize("id_dtype", [np.int8, np.int16, np.int32, np.uint16, np.uint32])
def test_narrow_integer_ids_fit_like_int64_ids(id_dtype):
    # Narrow ids are encoded without widening them first; the id maps are
    # int64 all the same, and the fit is the one of the int64 ids.
    rng = np.random.default_rng(3)
    info = np.iinfo(id_dtype)
    # Ids at both ends of the type: a span wider than the type itself can hold.
    user_pool = np.array([info.min, info.min + 1, 0, 5, info.max - 1, info.max])
    item_pool = np.array([info.min, 1, 2, info.max])
    users = rng.choice(user_pool, 60)
    items = rng.choice(item_pool, 60)
    ratings = rng.uniform(1, 5, 60)
    narrow = np.column_stack([users, items]).astype(id_dtype)
    wide = narrow.astype(np.int64)
    kwargs = dict(n_factors=2, n_epochs=3, random_state=0)
    a = MatrixFactorization(**kwargs).fit(narrow, ratings)
    b = MatrixFactorization(**kwargs).fit(wide, ratings)
    assert a.users_.dtype == b.users_.dtype == np.int64
    np.testing.assert_array_equal(a.users_, b.users_)
    np.testing.assert_array_equal(a.items_, b.items_)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.predict(narrow), b.predict(wide))


def test_repeated_pairs_take_the_canonical_path_with_the_same_result():
    # A fit whose input repeats a pair averages it (the canonical path); the
    # same ratings with the pair given once, already averaged, fit the same.
    rng = np.random.default_rng(4)
    users, items, ratings = random_triples(rng, 40, 30, 0.3)
    X = np.column_stack([users, items])
    twice = np.vstack([X, X[:1]])
    y_twice = np.append(ratings, 2 * 3.0 - ratings[0])  # the pair's mean is 3.0
    y_once = ratings.copy()
    y_once[0] = 3.0
    kwargs = dict(n_factors=3, n_epochs=4, random_state=1)
    a = MatrixFactorization(**kwargs).fit(twice, y_twice)
    b = MatrixFactorization(**kwargs).fit(X, y_once)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    assert a.global_mean_ == b.global_mean_
    np.testing.assert_array_equal(a._seen_items, b._seen_items)
