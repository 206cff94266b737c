"""One decision of which input form a ratings argument is (mfcy._input.input_form), shared
by fit, score, the metrics and train_test_split."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mfcy._input import input_form, rating_rows, to_encoded, validation_rows
from mfcy.model_selection import train_test_split, validation_curve

from helpers import small_model

R = np.array([[5.0, np.nan, 3.0], [np.nan, 4.0, 1.0]])
X = np.array([[0, 0], [0, 2], [1, 1], [1, 2]])
y = np.array([5.0, 3.0, 4.0, 1.0])
FRAME = pd.DataFrame({"user": X[:, 0], "item": X[:, 1], "rating": y})


@pytest.mark.parametrize("args, form", [
    ((R,), "dense"), ((sp.csr_matrix(np.nan_to_num(R)),), "sparse"), ((FRAME,), "frame"),
    ((X, y), "pairs"), ((FRAME[["user", "item"]], y), "pairs"), (([[1.0]],), "dense"),
])
def test_each_form_is_named(args, form):
    assert input_form(*args) == form


def test_every_form_gives_the_same_rows():
    expected = rating_rows(X, y)
    csr = sp.csr_matrix((y, (X[:, 0], X[:, 1])), shape=(2, 3))
    for args in ((R,), (csr,), (FRAME,), (X, y)):
        for got, want in zip(rating_rows(*args), expected):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("call", [
    lambda Z: to_encoded(Z, y), lambda Z: rating_rows(Z, y), lambda Z: input_form(Z, y),
    lambda Z: train_test_split(Z, y), lambda Z: small_model().fit(Z, y),
])
def test_a_sparse_matrix_with_y_is_refused_alike_everywhere(call):
    with pytest.raises(ValueError, match="y must be None when X is a sparse ratings matrix"):
        call(sp.csr_matrix(np.nan_to_num(R)))


@pytest.mark.parametrize("args", [(R,), (X, y)])
def test_columns_belong_to_a_data_frame_alone(args):
    with pytest.raises(ValueError, match="columns= names the"):
        input_form(*args, columns=("user", "item", "rating"))
    with pytest.raises(ValueError, match="columns= names the"):
        rating_rows(*args, columns=("user", "item", "rating"))


def test_pairs_and_ratings_of_different_lengths_are_refused_alike():
    for call in (lambda: to_encoded(X, y[:3]), lambda: rating_rows(X, y[:3]),
                 lambda: train_test_split(X, y[:3])):
        with pytest.raises(ValueError, match=r"X has 4 \(user, item\) pairs but y has 3"):
            call()


def test_validation_forms():
    for got, want in zip(validation_rows((X, y)), rating_rows(X, y)):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(validation_rows(FRAME), rating_rows(FRAME)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match=r"a tuple must be \(X_val, y_val\), got 3 items"):
        validation_rows((X, y, y))
    # validation_curve reads its held-out set as fit does.
    with pytest.raises(ValueError, match=r"a tuple must be \(X_val, y_val\), got 3 items"):
        validation_curve(small_model(), X, y, param_name="n_factors", param_range=[1],
                         validation=(X, y, y))


def test_a_column_vector_y_warns_at_the_callers_line():
    model = small_model()
    for call in (lambda: model.fit(X, y[:, None]), lambda: model.score(X, y[:, None])):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        column = [w for w in caught if "column-vector y" in str(w.message)]
        assert len(column) == 1 and column[0].filename == __file__


def test_ids_at_an_odd_address_encode_as_aligned_ones():
    # Dask hands a worker its partition in pickle-5 buffers, which may sit at
    # any address; the compiled encoder loads whole words (UBSan: misaligned load).
    import numpy as np

    from mfcy._input import _encode

    ids = np.array([7, 3, 7, 11, 3, 5], dtype=np.int64)
    raw = np.zeros(ids.nbytes + 1, dtype=np.uint8)
    misaligned = raw[1:].view(np.int64)
    misaligned[:] = ids
    assert not misaligned.flags.aligned
    for got, want in zip(_encode(misaligned), _encode(ids)):
        np.testing.assert_array_equal(got, want)
