"""Hardening: inputs that once slipped past validation, duplicates in every input
form, and the numerical rules (conversions, extreme ratings, divergence)."""

import re
from functools import partial

import numpy as np
import pytest
import scipy.sparse as sp

from mfcy import DivergenceError, MatrixFactorization
from mfcy._input import to_triples
from mfcy.datasets import make_low_rank

from helpers import small_model


small_model = partial(small_model, learning_rate=0.02)


def assert_same_model(a, b):
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.global_mean_ == b.global_mean_
    for key in ("train_mse", "sgd_mse"):  # not epoch_seconds: a timing
        assert a.history_[key] == b.history_[key], key


# -- sparse matrices whose indices scipy did not (re)check --------------------------

def coo(rows=(0, 1, 2), cols=(0, 1, 0), shape=(3, 2), api=sp.coo_matrix):
    return api((np.array([1.0, 2.0, 3.0]), (np.array(rows), np.array(cols))), shape=shape)


@pytest.mark.parametrize("api", [sp.coo_matrix, sp.coo_array])
@pytest.mark.parametrize("attr,position,value,message", [
    ("row", 0, 3, "row 3, outside its shape"),
    ("col", 2, 2**20, "column 1048576, outside its shape"),
    ("col", 1, -1, "column -1, outside its shape"),
    ("row", 2, -7, "row -7, outside its shape"),
])
def test_sparse_indices_changed_after_construction_are_refused(api, attr, position, value,
                                                               message):
    # Regression: these went straight to the kernel, which wrote outside the factors.
    X = coo(api=api)
    getattr(X, attr)[position] = value
    with pytest.raises(ValueError, match=message):
        small_model().fit(X)


def test_sparse_data_of_the_wrong_length_is_refused():
    X = coo()
    X.data = X.data[:2]
    with pytest.raises(ValueError, match="corrupted: 2 stored values but 3 row"):
        small_model().fit(X)


@pytest.mark.parametrize("X", [sp.coo_array(np.array([1.0, 2.0])),
                               sp.coo_array(np.ones((2, 2, 2)))])
def test_sparse_arrays_that_are_not_2d_are_refused(X):
    # Regression: 1-D raised IndexError, 3-D was silently read as its last two axes.
    with pytest.raises(ValueError, match="must be 2-D"):
        small_model().fit(X)


# -- ids at the edges of the integer types -------------------------------------------

def test_object_ids_beyond_int64_are_uint64_like_numpy_ones():
    big = [2**63 + 5, 2**64 - 1, 7]
    X_obj = np.empty((3, 2), dtype=object)
    X_obj[:, 0], X_obj[:, 1] = big, [1, 2, 3]
    X_u64 = np.column_stack([np.array(big, dtype=np.uint64), np.array([1, 2, 3], np.uint64)])
    a = small_model().fit(X_obj, [1.0, 2.0, 3.0])
    b = small_model().fit(X_u64, [1.0, 2.0, 3.0])
    assert a.users_.dtype == np.uint64 and a.users_.tolist() == [7, 2**63 + 5, 2**64 - 1]
    assert_same_model(a, b)
    assert a.predict([2**64 - 1], [2])[0] == b.predict([2**64 - 1], [2])[0]
    X_obj[0, 0] = -1  # negative and beyond int64: no 64-bit type holds both
    with pytest.raises(ValueError, match="outside the 64-bit range"):
        small_model().fit(X_obj, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("value", [2.0**63, -1e30, 1e300])
def test_float_ids_beyond_int64_are_a_clear_error(value):
    # Regression: cast to garbage with a RuntimeWarning, reported as "non-integral".
    with pytest.raises(ValueError, match="outside the 64-bit integer range"):
        small_model().fit(np.array([[value, 1.0], [2.0, 3.0]]), [1.0, 2.0])


# -- duplicates of one (user, item) are averaged, in every input form ------------------

DUP_USERS = np.array([0, 2, 0, 1, 0, 2, 1])
DUP_ITEMS = np.array([1, 0, 1, 2, 1, 0, 0])
DUP_RATINGS = np.array([1.0, 5.0, 2.0, 4.0, 4.5, 2.0, 3.0])
# (0, 1) three times -> 2.5; (2, 0) twice -> 3.5; (1, 2) 4.0; (1, 0) 3.0.
DEDUP_USERS = np.array([0, 1, 1, 2])
DEDUP_ITEMS = np.array([1, 0, 2, 0])
DEDUP_RATINGS = np.array([2.5, 3.0, 4.0, 3.5])


def reference():
    return small_model().fit(np.column_stack([DEDUP_USERS, DEDUP_ITEMS]), DEDUP_RATINGS)


def test_canonical_triples_average_each_pairs_duplicates():
    triples = to_triples(np.column_stack([DUP_USERS, DUP_ITEMS]), DUP_RATINGS)
    np.testing.assert_array_equal(triples.users, DEDUP_USERS)
    np.testing.assert_array_equal(triples.items, DEDUP_ITEMS)
    np.testing.assert_array_equal(triples.ratings, DEDUP_RATINGS)
    assert triples.n_duplicates == 3


@pytest.mark.parametrize("order", ["as given", "reversed", "shuffled"])
def test_pairs_with_duplicates_give_the_deduplicated_model(order):
    idx = {"as given": np.arange(7), "reversed": np.arange(7)[::-1],
           "shuffled": np.random.default_rng(0).permutation(7)}[order]
    model = small_model().fit(np.column_stack([DUP_USERS, DUP_ITEMS])[idx], DUP_RATINGS[idx])
    assert_same_model(model, reference())
    assert model.global_mean_ == pytest.approx(DEDUP_RATINGS.mean(), rel=1e-15)


def test_pairs_with_string_ids_and_duplicates():
    names_u, names_i = np.array(["ann", "bob", "cy"]), np.array(["a", "b", "c"])
    model = small_model().fit(np.column_stack([names_u[DUP_USERS], names_i[DUP_ITEMS]]),
                              DUP_RATINGS)
    assert_same_model(model, reference())


@pytest.mark.parametrize("api", [sp.coo_matrix, sp.coo_array])
def test_sparse_coo_with_duplicate_entries_is_averaged_not_summed(api):
    # scipy's own conversions (tocsr, toarray) would SUM duplicate COO entries.
    X = api((DUP_RATINGS, (DUP_USERS, DUP_ITEMS)), shape=(3, 3))
    assert not X.has_canonical_format
    assert_same_model(small_model().fit(X), reference())


def test_sparse_csr_with_a_repeated_column_in_a_row_is_averaged():
    # A CSR built from (data, indices, indptr) may repeat a column within a row.
    X = sp.csr_matrix((np.array([1.0, 2.0, 4.5, 3.0, 4.0, 5.0, 2.0]),
                       np.array([1, 1, 1, 0, 2, 0, 0]), np.array([0, 3, 5, 7])), shape=(3, 3))
    assert not X.has_canonical_format
    assert_same_model(small_model().fit(X), reference())


def test_dense_matrix_has_one_cell_per_pair_and_matches_the_pairs():
    # A dense matrix cannot hold two ratings of one pair: nothing to average.
    R = np.full((3, 3), np.nan)
    R[DEDUP_USERS, DEDUP_ITEMS] = DEDUP_RATINGS
    assert to_triples(R).n_duplicates == 0
    assert_same_model(small_model().fit(R), reference())


# -- numerical rules ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float16_and_integer_ratings_are_converted_exactly(dtype):
    X = np.column_stack([DEDUP_USERS, DEDUP_ITEMS])
    as16 = DEDUP_RATINGS.astype(np.float16)  # 2.5, 3, 4, 3.5 are exact in float16
    ref = small_model(dtype=dtype).fit(X, DEDUP_RATINGS)
    assert_same_model(small_model(dtype=dtype).fit(X, as16), ref)
    ints = np.array([2, 3, 4, 3])
    ref_int = small_model(dtype=dtype).fit(X, ints.astype(np.float64))
    for int_dtype in (np.int8, np.uint8, np.int64, np.uint64):
        assert_same_model(small_model(dtype=dtype).fit(X, ints.astype(int_dtype)), ref_int)


def test_ratings_are_rounded_to_the_model_dtype_but_the_mean_is_float64():
    X = np.array([[0, 0], [1, 1]])
    y = np.array([2**24 + 1, 2**24 + 3], dtype=np.int64)  # not float32-representable
    # Ratings of 1.7e7 with no centring: SGD blows up, and says so.
    with pytest.warns(UserWarning, match="training loss grew .* rescale the ratings"):
        model = small_model(dtype="float32", biased=False, n_epochs=1).fit(X, y)
    assert model.global_mean_ == 2**24 + 2  # exact float64 mean of the int64 ratings
    triples = to_triples(X, y)
    np.testing.assert_array_equal(triples.ratings, [2**24 + 1, 2**24 + 3])
    assert np.float32(triples.ratings[0]) == 2**24  # what the float32 kernel sees


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("track_loss", [True, False])
def test_ratings_of_1e30_are_a_divergence_error_asking_to_rescale(dtype, track_loss):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    model = small_model(dtype=dtype, track_loss=track_loss, n_epochs=20)
    with pytest.raises(DivergenceError, match=r"magnitude up to 1e\+30.*rescale"):
        model.fit(X, [1e30, 2.0, 3.0, 4.0])
    assert not hasattr(model, "user_factors_")  # never inf factors returned


def test_ratings_whose_average_or_mean_overflows_are_clear_errors():
    with pytest.raises(ValueError, match="averaging the duplicates .* overflows"):
        small_model(dtype="float64").fit(np.array([[0, 0], [0, 0]]), [1.5e308, 1.5e308])
    # The global mean is computed exactly (no float64 sum to overflow): ratings
    # this large still give a finite mean and, here, a finite model.
    huge = small_model(dtype="float64").fit(np.array([[0, 0], [1, 1]]), [1.5e308, 1.5e308])
    assert huge.global_mean_ == 1.5e308
    assert np.isfinite(huge.user_factors_).all() and np.isfinite(huge.user_bias_).all()
    with pytest.raises(ValueError, match="overflow float32"):
        small_model(dtype="float32").fit(np.array([[0, 0], [1, 1]]), [1e39, 1.0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("track_loss", [True, False])
def test_divergence_is_caught_in_the_epoch_it_happens(dtype, track_loss):
    R = make_low_rank(30, 20, 3, 0.5, random_state=1) * 3
    params = dict(n_factors=4, learning_rate=0.095, dtype=dtype, track_loss=track_loss,
                  random_state=0)
    with pytest.raises(DivergenceError) as info:
        MatrixFactorization(n_epochs=100, **params).fit(R)
    epoch = int(re.search(r"diverged in epoch (\d+)", str(info.value)).group(1))
    assert epoch >= 2, "choose a learning rate that diverges later"
    # The epochs before it were finite: had a blow-up been missed in an earlier
    # epoch, this shorter fit would return non-finite parameters.
    before = MatrixFactorization(n_epochs=epoch - 1, **params).fit(R)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert np.isfinite(getattr(before, name)).all(), name
    assert np.isfinite(before.history_["sgd_mse"]).all()


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_divergence_check_warns_nothing_when_parameters_hold_both_infinities():
    # Regression (found by the fuzz tests): with track_loss=False the check sums
    # the parameters; +inf + -inf made numpy warn next to the DivergenceError.
    R = np.full((2, 3), 171841.0, dtype=np.float32)
    model = small_model(n_factors=2, n_epochs=1, learning_rate=0.05, biased=False,
                        shuffle=False, track_loss=False, dtype="float32")
    with pytest.raises(DivergenceError, match="epoch 1"):
        model.fit(R)


def test_object_arrays_of_numpy_strings_are_string_ids():
    # Found by the fuzz tests: iterating a unicode array gives numpy.str_
    # values, and an object array of them was refused as "mixed types (str_)".
    ids = np.array(["ann", "bob", "ann"])
    X = np.empty((3, 2), dtype=object)
    X[:, 0], X[:, 1] = list(ids), list(np.array(["dune", "dune", "heat"]))
    model = small_model().fit(X, [1.0, 2.0, 3.0])
    assert model.users_.tolist() == ["ann", "bob"]
    assert model.predict(X).shape == (3,)
    model.fold_in(np.array([[np.str_("cy"), np.str_("heat")]], dtype=object), [4.0])
    assert model.users_.tolist() == ["ann", "bob", "cy"]


def test_validation_errors_that_overflow_are_inf_without_a_warning():
    # Found by the fuzz tests: a finite validation rating of 1e200 of an unknown
    # user (scored by the baseline, with numpy) raised "overflow in matmul".
    import warnings

    X, y = np.array([[0, 0], [1, 1]]), np.array([1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = small_model(dtype="float64", n_epochs=1).fit(
            X, y, validation=(np.array([[7, 0]]), np.array([1e200])))
    assert model.history_["val_mse"] == [np.inf]
