"""Property-based fuzzing (hypothesis) of every public entry point that takes data.

The contract, for any input a user can pass: the call returns a valid result
(a model whose every fitted number is finite, predictions that are finite) or
raises ``ValueError``/``TypeError`` with a message. Never a crash, a
``SystemError``, another exception type, a numpy ``RuntimeWarning`` (an
overflow or invalid cast means garbage went through unchecked), a hang or NaN
factors.

How many examples run is set by the hypothesis profile (``tests/conftest.py``;
``HYPOTHESIS_PROFILE=ci`` by default, ``thorough`` for a long local run), and
the total is printed at the end of the pytest run.

Covered: ``fit`` on every input form (dense, sparse, pairs, DataFrame) and
with a ``validation`` set, the methods of a fitted model (``predict``,
``recommend``, ``similar_items``, ``reconstruct``, ``fold_in``),
``MatrixFactorization.load`` on damaged and forged files (which must be a
``ModelFileError``), ``mfcy.datasets.load_ratings`` on fuzzed text files, and
the command line (``mfcy.cli.main`` in-process: exit 0 or 2 with one line).

Adding an entry point: a new input form of ``fit`` is one strategy added to
``FIT_INPUTS``; a new method of a fitted model that takes ids or ratings is one
function added to ``QUERIES``; a new file reader is one ``@given`` test that
ends in :func:`check_outcome` and :func:`check_model` (or
:func:`check_fitted_state` for a model that was not just fitted).
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from mfcy import MatrixFactorization
from mfcy._input import as_ids, to_triples

from helpers import count_fuzz_example

# Random inputs meet these warnings by design, each asserted by a test of its own
# (test_frames/test_recommend: unknown ids; test_hardening/test_model: a growing
# loss; test_model: a matrix of zeros without NaN): here they are expected noise.
pytestmark = [
    pytest.mark.filterwarnings("ignore::mfcy.UnknownIdWarning"),
    pytest.mark.filterwarnings("ignore:the training loss grew:UserWarning"),
    pytest.mark.filterwarnings("ignore:the ratings matrix has no NaN and mostly zeros:UserWarning"),
]

INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOAT_DTYPES = [np.float16, np.float32, np.float64]
# Ids that are labels, not sizes: huge, negative, beyond int64, int32's edges.
EDGE_IDS = [0, 1, 2, 3, -1, -5, 2**31 - 1, 2**31, 2**40, -(2**40), 2**63 - 1, -(2**63)]
BEYOND_INT64 = [2**63, 2**63 + 5, 2**64 - 1]
EDGE_RATINGS = [0.0, 1.0, 5.0, -3.5, 1e30, -1e30, 3e38, 1e300, -1e300, 1e-300,
                np.nan, np.inf, -np.inf]


# -- the contract -----------------------------------------------------------------

def check_outcome(call):
    """Run ``call()``: return its result, or None after a ValueError/TypeError with a message.

    Any other exception, and any numpy RuntimeWarning, fails the example.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            return call()
        except (ValueError, TypeError) as exc:
            assert str(exc).strip(), f"{type(exc).__name__} without a message"
            return None


def check_model(model, params):
    """A fitted model: consistent shapes, every number finite."""
    k = params["n_factors"]
    n_users, n_items = len(model.users_), len(model.items_)
    assert n_users >= 1 and n_items >= 1
    assert model.user_factors_.shape == (n_users, k)
    assert model.item_factors_.shape == (n_items, k)
    assert model.user_bias_.shape == (n_users,) and model.item_bias_.shape == (n_items,)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert np.isfinite(getattr(model, name)).all(), f"{name} is not finite"
    assert np.isfinite(model.global_mean_)
    assert model.n_epochs_ == params["n_epochs"]
    for name, values in model.history_.items():
        if name.startswith("val_"):  # see the validation test
            continue
        assert len(values) == model.n_epochs_ and np.isfinite(values).all(), name
    for ids in (model.users_, model.items_):  # sorted distinct labels
        assert len(np.unique(ids)) == len(ids)


# -- strategies: shared pieces ------------------------------------------------------

model_params = st.fixed_dictionaries({
    "n_factors": st.integers(1, 4),
    "n_epochs": st.integers(1, 3),
    "learning_rate": st.sampled_from([0.005, 0.05, 0.5, 30.0]),
    "dtype": st.sampled_from(["float32", "float64"]),
    "biased": st.booleans(),
    "shuffle": st.booleans(),
    "update": st.sampled_from(["simultaneous", "sequential"]),
    "track_loss": st.booleans(),
    "n_blocks": st.integers(1, 3),
    "n_threads": st.sampled_from([1, 2]),
    "random_state": st.integers(0, 3),
})


@st.composite
def layout(draw, arr):
    """The same values, in the same order, as a C, Fortran, strided or negative-stride
    array, read-only or not."""
    arr = np.asarray(arr)
    how = draw(st.sampled_from(["C", "F", "strided", "negative"]))
    if how == "F" and arr.ndim >= 2:
        arr = np.asfortranarray(arr)
    elif how == "strided" and arr.ndim >= 1:
        arr = np.repeat(arr, 2, axis=0)[::2]  # every other row: not contiguous
    elif how == "negative" and arr.ndim >= 1:
        arr = arr[::-1].copy()[::-1]  # a view walking memory backwards
    if draw(st.booleans()):
        arr = arr.view()
        arr.setflags(write=False)
    return arr


def int_values(dtype):
    info = np.iinfo(dtype)
    edges = [v for v in EDGE_IDS + BEYOND_INT64 if info.min <= v <= info.max]
    return st.one_of(st.integers(0, 4), st.sampled_from(edges),
                     st.integers(int(info.min), int(info.max)))


def float_values(dtype, nan=True):
    width = np.finfo(dtype).bits
    return st.one_of(st.sampled_from([0.0, 1.0, 2.0, -1.0, 3.0]),
                     st.floats(width=width, allow_nan=nan, allow_infinity=nan))


@st.composite
def id_column(draw, n):
    """One column of raw ids, of any kind a user could hold."""
    kind = draw(st.sampled_from(["int", "int", "uint64", "float", "str", "bytes", "object",
                                 "object_mixed", "bool", "complex", "datetime"]))
    if kind == "int":
        dtype = draw(st.sampled_from(INT_DTYPES))
        pool = draw(st.lists(int_values(dtype), min_size=1, max_size=4))
        return np.array([draw(st.sampled_from(pool)) for _ in range(n)], dtype=dtype)
    if kind == "uint64":  # beyond int64 (a 64-bit hash, say)
        pool = draw(st.lists(st.sampled_from(BEYOND_INT64 + [0, 7]), min_size=1, max_size=3))
        return np.array([draw(st.sampled_from(pool)) for _ in range(n)], dtype=np.uint64)
    if kind == "float":
        dtype = draw(st.sampled_from(FLOAT_DTYPES))
        pool = draw(st.lists(st.one_of(st.sampled_from([0.0, 1.0, 2.0**40, -5.0, 0.5]),
                                       float_values(dtype)), min_size=1, max_size=3))
        return np.array([draw(st.sampled_from(pool)) for _ in range(n)], dtype=dtype)
    if kind in ("str", "bytes"):
        pool = draw(st.lists(st.text(min_size=0, max_size=3), min_size=1, max_size=3))
        arr = np.array([draw(st.sampled_from(pool)) for _ in range(n)], dtype=str)
        if kind == "bytes":
            arr = np.char.encode(arr, "utf-8")
        return arr
    if kind == "object":  # Python ints or strings, one kind per column
        values = draw(st.sampled_from([
            st.sampled_from(EDGE_IDS + BEYOND_INT64 + [2**64, -(2**70)]),
            st.text(max_size=2)]))
        arr = np.empty(n, dtype=object)
        arr[:] = [draw(values) for _ in range(n)]
        return arr
    if kind == "object_mixed":
        arr = np.empty(n, dtype=object)
        arr[:] = [draw(st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=2),
                                 st.floats(), st.booleans())) for _ in range(n)]
        return arr
    if kind == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if kind == "complex":
        return np.array(draw(st.lists(st.complex_numbers(max_magnitude=5), min_size=n,
                                      max_size=n)), dtype=complex)
    return np.arange(n).astype("datetime64[D]")


@st.composite
def ratings_column(draw, n):
    """Ratings of any dtype, with NaN, infinities and extreme magnitudes."""
    kind = draw(st.sampled_from(["float", "float", "int", "bool", "complex", "object", "str"]))
    if kind == "float":
        dtype = draw(st.sampled_from(FLOAT_DTYPES))
        with np.errstate(over="ignore"):  # 1e300 as float16 is inf: fine, that is fuzz
            values = [draw(st.one_of(float_values(dtype), st.sampled_from(EDGE_RATINGS)))
                      for _ in range(n)]
            return np.array(values, dtype=np.float64).astype(dtype)
    if kind == "int":
        dtype = draw(st.sampled_from(INT_DTYPES))
        return np.array([draw(int_values(dtype)) for _ in range(n)], dtype=dtype)
    if kind == "bool":
        return np.array([draw(st.booleans()) for _ in range(n)], dtype=bool)
    if kind == "complex":
        return np.array([draw(st.complex_numbers()) for _ in range(n)], dtype=complex)
    if kind == "object":
        arr = np.empty(n, dtype=object)
        arr[:] = [draw(st.one_of(st.integers(-10, 10), st.floats(), st.none(),
                                 st.text(max_size=3))) for _ in range(n)]
        return arr
    return np.array([draw(st.text(max_size=3)) for _ in range(n)], dtype=str)


# -- strategies: the input forms of fit ----------------------------------------------

@st.composite
def dense_inputs(draw):
    """A ratings matrix (NaN = unknown) of any shape and dtype: ``(X, None)``."""
    ndim = draw(st.sampled_from([2, 2, 2, 2, 1, 3]))
    shape = tuple(draw(st.integers(0, 6)) for _ in range(ndim))
    kind = draw(st.sampled_from(["float", "float", "float", "int", "bool", "complex",
                                 "object", "str"]))
    if kind == "float":
        dtype = draw(st.sampled_from(FLOAT_DTYPES))
        R = draw(hnp.arrays(dtype, shape, elements=float_values(dtype)))
        R[draw(hnp.arrays(bool, shape))] = np.nan
    elif kind == "int":
        dtype = draw(st.sampled_from(INT_DTYPES))
        R = draw(hnp.arrays(dtype, shape, elements=int_values(dtype)))
    elif kind == "bool":
        R = draw(hnp.arrays(bool, shape))
    elif kind == "complex":
        R = draw(hnp.arrays(complex, shape, elements=st.complex_numbers(max_magnitude=9)))
    elif kind == "object":
        R = draw(hnp.arrays(object, shape, elements=st.one_of(
            st.none(), st.integers(-3, 3), st.floats())))
    else:
        # No NUL: numpy strips trailing NULs from its strings (hypothesis refuses).
        R = draw(hnp.arrays("U3", shape, elements=st.text(
            st.characters(exclude_characters="\x00"), max_size=3)))
    form = draw(st.sampled_from(["array", "array", "list"]))
    X = draw(layout(R)) if form == "array" else R.tolist()
    return X, None


@st.composite
def sparse_inputs(draw):
    """A scipy.sparse matrix or array in any format, duplicates included; sometimes
    with indices corrupted after construction (scipy does not re-check them)."""
    shape = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    nnz = draw(st.integers(0, 12))
    rows = np.array([draw(st.integers(0, shape[0] - 1)) for _ in range(nnz)], dtype=np.int64)
    cols = np.array([draw(st.integers(0, shape[1] - 1)) for _ in range(nnz)], dtype=np.int64)
    kind = draw(st.sampled_from(["float", "float", "int", "bool", "complex"]))
    if kind == "float":
        dtype = draw(st.sampled_from([np.float32, np.float64]))
        data = np.array([draw(float_values(dtype)) for _ in range(nnz)], dtype=dtype)
    elif kind == "int":
        dtype = draw(st.sampled_from(INT_DTYPES))
        data = np.array([draw(int_values(dtype)) for _ in range(nnz)], dtype=dtype)
    elif kind == "bool":
        data = np.ones(nnz, dtype=bool)
    else:
        data = np.ones(nnz, dtype=complex)
    api = draw(st.sampled_from([sp.coo_matrix, sp.coo_array]))
    coo = api((data, (rows, cols)), shape=shape)  # keeps duplicate entries
    fmt = draw(st.sampled_from(["coo", "coo", "csr", "csc", "lil", "dok", "bsr"]))
    if fmt != "coo":
        return coo.asformat(fmt), None
    corrupt = draw(st.sampled_from([None, None, "row", "col", "negative", "data"]))
    if corrupt and nnz:
        if corrupt == "row":
            coo.row[0] = shape[0] + draw(st.integers(0, 2**20))
        elif corrupt == "col":
            coo.col[-1] = shape[1]
        elif corrupt == "negative":
            coo.col[0] = -draw(st.integers(1, 3))
        else:
            coo.data = coo.data[:-1]
    return coo, None


@st.composite
def pair_inputs(draw):
    """``(X, y)``: (user id, item id) rows of any id kind, ratings of any dtype."""
    n = draw(st.integers(0, 12))
    users, items = draw(id_column(n)), draw(id_column(n))
    how = draw(st.sampled_from(["stack", "object", "list", "transposed"]))
    if how == "stack":
        try:
            X = np.column_stack([users, items])
        except (TypeError, ValueError):  # e.g. datetime with strings: numpy refuses
            X = np.empty((n, 2), dtype=object)
            X[:, 0], X[:, 1] = users, items
        X = draw(layout(X))
    elif how == "object":
        X = np.empty((n, 2), dtype=object)
        X[:, 0], X[:, 1] = users, items
    elif how == "list":
        X = list(zip(users.tolist(), items.tolist()))
    else:  # a (2, n) array: the wrong orientation, unless n == 2
        X = np.vstack([users, items]) if users.dtype == items.dtype else np.zeros((2, n))
    m = n + draw(st.sampled_from([0, 0, 0, 0, 1, -1])) if n else n
    y = draw(ratings_column(max(m, 0)))
    if draw(st.booleans()):
        y = draw(layout(y))
    return X, (y.tolist() if draw(st.integers(0, 5)) == 0 else y)


@st.composite
def valid_pairs(draw, min_size=1, max_size=15):
    """Well-formed ``(X, y)`` with label ids (huge, negative, beyond int64, strings)."""
    n = draw(st.integers(min_size, max_size))
    kind = draw(st.sampled_from(["int", "int", "uint64", "str"]))
    if kind == "int":
        ids = st.sampled_from(EDGE_IDS)
        dtype = np.int64
    elif kind == "uint64":
        ids = st.sampled_from(BEYOND_INT64 + [0, 9])
        dtype = np.uint64
    else:
        ids = st.text(min_size=1, max_size=2)
        dtype = str
    users = np.array([draw(ids) for _ in range(n)], dtype=dtype)
    items = np.array([draw(ids) for _ in range(n)], dtype=dtype)
    y = np.array([draw(st.floats(-5, 5, allow_nan=False)) for _ in range(n)])
    return users, items, y


def one_in(n):
    """True about once in ``n`` draws (hypothesis' integers lean to their bounds)."""
    return st.sampled_from([True] + [False] * (n - 1))


def frame_column(draw, column, role):
    """A column of a DataFrame as pandas may hold it: plain, categorical, nullable
    (with missing values), a pandas string dtype, or with NaN/None spliced in."""
    import pandas as pd

    how = draw(st.sampled_from(["plain"] * 4 + ["category", "nullable", "missing"]))
    series = pd.Series(column)
    if how == "category":
        try:
            return series.astype("category")
        except (NotImplementedError, TypeError, ValueError):  # e.g. float16: pandas refuses
            return series
    if how == "nullable" and len(series):
        kind = series.dtype.kind
        nullable = {"i": "Int64", "u": "UInt64", "f": "Float64", "U": "string", "O": None}
        target = nullable.get(kind)
        if target is None:
            return series
        try:
            series = series.astype(target)
        except (TypeError, ValueError, OverflowError):
            return series
        if draw(st.booleans()):
            series.iloc[draw(st.integers(0, len(series) - 1))] = pd.NA
        return series
    if how == "missing" and len(series):
        series = series.astype(object)
        series.iloc[draw(st.integers(0, len(series) - 1))] = draw(
            st.sampled_from([None, np.nan, pd.NA]))
    return series


@st.composite
def frame_inputs(draw):
    """A pandas DataFrame of (user, item, rating) rows, ``(frame, None, {"columns": ...})``:
    ids of any kind, NaN in any column, categorical and nullable dtypes, custom,
    missing and duplicate column names, extra columns, an empty frame."""
    import pandas as pd

    n = draw(st.integers(0, 10))
    role_names = draw(st.sampled_from([("user", "item", "rating")] * 3 + [
        ("userId", "movieId", "stars"), (0, 1, 2), ("u", "u", "r"), ("item", "user", "rating")]))
    if draw(st.booleans()):  # well-formed columns, for some valid fits
        users, items, ratings = draw(valid_pairs(min_size=n, max_size=n))
    else:
        users, items, ratings = draw(id_column(n)), draw(id_column(n)), draw(ratings_column(n))
    data = [(role_names[0], frame_column(draw, users, "user")),
            (role_names[1], frame_column(draw, items, "item")),
            (role_names[2], frame_column(draw, ratings, "rating"))]
    if draw(st.booleans()):
        data.append(("timestamp", pd.Series(np.arange(n))))
    if draw(one_in(8)):
        data.pop(draw(st.integers(0, len(data) - 1)))  # a missing column
    if draw(one_in(8)) and data:
        data.append(data[draw(st.integers(0, len(data) - 1))])  # a duplicate name
    order = draw(st.permutations(range(len(data))))
    frame = pd.concat([data[j][1].reset_index(drop=True) for j in order], axis=1) if data \
        else pd.DataFrame(index=range(n))
    frame.columns = [data[j][0] for j in order]
    given = draw(st.sampled_from(["default"] * 4 + ["names"] * 3 + ["wrong"]))
    kwargs = {}
    if given == "names":
        kwargs["columns"] = list(role_names)
    elif given == "wrong":
        kwargs["columns"] = draw(st.sampled_from([("user", "item"), "user", ("a", "b", "c"),
                                                  (0, 1, 2, 3), ("user", "user", "rating")]))
    y = None
    if draw(one_in(8)):  # a frame of (user, item) pairs with y
        y = draw(ratings_column(n))
        kwargs = {}
    return frame, y, kwargs


def unpack_fit_input(data):
    """``(X, y, fit's keyword arguments)`` of a drawn input of ``fit``."""
    return (*data, {}) if len(data) == 2 else data


#: Every input form of ``fit``, one strategy each, drawing ``(X, y)`` or
#: ``(X, y, kwargs)`` (keyword arguments of ``fit``, e.g. ``columns``).
#: A new form is one more entry.
FIT_INPUTS = {
    "dense": dense_inputs(),
    "sparse": sparse_inputs(),
    "pairs": pair_inputs(),
    "frame": frame_inputs(),
}


@pytest.mark.parametrize("form", sorted(FIT_INPUTS))
def test_fit_ends_in_a_valid_model_or_a_clear_error(form):
    @given(data=FIT_INPUTS[form], params=model_params)
    def run(data, params):
        count_fuzz_example(f"fit[{form}]")
        X, y, kwargs = unpack_fit_input(data)
        model = MatrixFactorization(**params)
        if check_outcome(lambda: model.fit(X, y, **kwargs)) is not None:
            count_fuzz_example(f"fit[{form}]", valid=True)
            check_model(model, params)
        else:  # a failed fit leaves no half-fitted (possibly NaN) factors behind
            assert not hasattr(model, "user_factors_")

    run()


@pytest.mark.parametrize("form", sorted(FIT_INPUTS))
def test_canonical_triples_are_what_the_kernel_trusts(form):
    # The kernel indexes P[users[t]] and Q[items[t]] unchecked (in a release
    # build): whatever the input, to_triples returns in-range indices or refuses.
    @given(data=FIT_INPUTS[form])
    def run(data):
        count_fuzz_example(f"to_triples[{form}]")
        X, y, kwargs = unpack_fit_input(data)
        triples = check_outcome(lambda: to_triples(X, y, **kwargs))
        if triples is None:
            return
        count_fuzz_example(f"to_triples[{form}]", valid=True)
        n = len(triples)
        assert n >= 1 and len(triples.users) == len(triples.items) == n
        assert triples.users.dtype == triples.items.dtype
        assert triples.users.dtype in (np.int32, np.int64)
        assert 0 <= triples.users.min() and triples.users.max() < triples.n_users
        assert 0 <= triples.items.min() and triples.items.max() < triples.n_items
        key = triples.users.astype(np.int64) * triples.n_items + triples.items
        assert (np.diff(key) > 0).all()  # sorted by (user, item), no repeated pair
        assert triples.ratings.dtype == np.float64 and np.isfinite(triples.ratings).all()

    run()


# -- valid inputs are accepted, ids mapped, duplicates averaged ---------------------

@given(data=valid_pairs(), params=model_params)
def test_valid_pairs_fit_with_labels_mapped_and_duplicates_averaged(data, params):
    count_fuzz_example("valid pairs")
    users, items, y = data
    params = dict(params, learning_rate=min(params["learning_rate"], 0.05))
    model = MatrixFactorization(**params).fit(np.column_stack([users, items]), y)
    count_fuzz_example("valid pairs", valid=True)
    check_model(model, params)
    np.testing.assert_array_equal(model.users_, np.unique(users))
    np.testing.assert_array_equal(model.items_, np.unique(items))
    # The global mean is the mean over pairs of each pair's mean rating.
    pairs = {}
    for u, i, r in zip(users.tolist(), items.tolist(), y.tolist()):
        pairs.setdefault((u, i), []).append(r)
    expected = np.mean([np.mean(v) for v in pairs.values()])
    assert model.global_mean_ == pytest.approx(expected, rel=1e-12, abs=1e-12)


# -- entry points of a fitted model --------------------------------------------------

@st.composite
def query_ids(draw, known, n):
    """Ids to ask a model about: known ones, unknown ones, and ids of any kind."""
    source = draw(st.sampled_from(["known", "known", "mixed", "any"]))
    if source == "any":
        return draw(id_column(n))
    pool = list(known.tolist())
    if source == "mixed":
        extra = [-7, 2**40, 2**63 + 1] if known.dtype.kind in "iu" else ["zz", ""]
        pool += extra
    values = [draw(st.sampled_from(pool)) for _ in range(n)]
    dtype = known.dtype if source == "known" else None
    return np.array(values, dtype=dtype) if values else np.array([], dtype=known.dtype)


def q_predict_pairs(model, draw):
    n = draw(st.integers(0, 6))
    X = np.empty((n, 2), dtype=object)
    X[:, 0], X[:, 1] = draw(query_ids(model.users_, n)), draw(query_ids(model.items_, n))
    X = X if draw(st.booleans()) else X.tolist()
    out = check_outcome(lambda: model.predict(X))
    if out is not None:
        assert out.shape == (n,) and out.dtype == np.float64 and np.isfinite(out).all()
    return out is not None


def q_predict_users_items(model, draw):
    n = draw(st.integers(0, 6))
    users = draw(layout(draw(query_ids(model.users_, n))))
    items = draw(query_ids(model.items_, n + draw(st.sampled_from([0, 0, 1]))))
    out = check_outcome(lambda: model.predict(users, items))
    if out is not None:
        assert out.shape == (len(users),) and np.isfinite(out).all()
    return out is not None


def check_recommendations(items, scores, model):
    """Masked slots (several users) pad past a user's unrated items; the rest are real."""
    padded = np.ma.getmaskarray(scores)
    np.testing.assert_array_equal(np.ma.getmaskarray(items), padded)
    values = np.ma.getdata(scores)
    assert np.isfinite(values[~padded]).all() and np.isnan(values[padded]).all()
    # Padding only at the end of a row; best first before it.
    assert (padded[..., :-1] <= padded[..., 1:]).all()
    ranked = np.where(padded, -np.inf, values)
    assert (ranked[..., 1:] <= ranked[..., :-1]).all()
    assert np.isin(np.ma.getdata(items)[~padded], model.items_).all()


def q_recommend(model, draw):
    n_users = draw(st.integers(0, 5))
    users = draw(query_ids(model.users_, n_users))
    if draw(st.integers(0, 3)) == 0 and n_users:
        users = users[0]  # a single id
    n = draw(st.one_of(st.integers(-1, len(model.items_) + 2), st.sampled_from([2.5, None])))
    batch_size = draw(st.sampled_from([None, 1, 2, 0, 1.5]))
    exclude_seen = draw(st.booleans())
    out = check_outcome(lambda: model.recommend(users, n=n, exclude_seen=exclude_seen,
                                                batch_size=batch_size))
    if out is not None:
        items, scores = out
        assert items.shape == scores.shape
        assert scores.shape[-1] <= min(n, len(model.items_))
        check_recommendations(items, scores, model)
    return out is not None


def q_similar_items(model, draw):
    item = draw(st.one_of(st.sampled_from(list(model.items_)), st.sampled_from(
        [-3, 2**64 - 1, "x", 1.5, None, np.nan])))
    n = draw(st.one_of(st.integers(-1, len(model.items_) + 2), st.just("3")))
    out = check_outcome(lambda: model.similar_items(item, n=n))
    if out is not None:
        items, sims = out
        assert len(items) == len(sims) == min(n, len(model.items_) - 1)
        assert np.all((sims >= -1 - 1e-9) & (sims <= 1 + 1e-9))
        assert item not in items.tolist()
    return out is not None


def q_reconstruct(model, draw):
    M = check_outcome(model.reconstruct)
    assert M is not None  # small models always reconstruct
    assert M.shape == (len(model.users_), len(model.items_)) and np.isfinite(M).all()
    return True


def check_fitted_state(model):
    """Any fitted model (after fit, fold_in or load): the arrays the kernel and
    ``recommend`` index agree in shape, hold finite numbers and in-range indices."""
    n_users, n_items = len(model.users_), len(model.items_)
    P, Q = model.user_factors_, model.item_factors_
    assert P.ndim == Q.ndim == 2 and P.shape[1] == Q.shape[1]
    assert P.shape[0] == n_users and Q.shape[0] == n_items
    assert model.user_bias_.shape == (n_users,) and model.item_bias_.shape == (n_items,)
    assert P.dtype == Q.dtype == model.user_bias_.dtype == model.item_bias_.dtype
    assert P.dtype in (np.float32, np.float64)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert np.isfinite(getattr(model, name)).all(), f"{name} is not finite"
    assert np.isfinite(model.global_mean_)
    assert len(np.unique(model.users_)) == n_users  # fold_in appends: distinct, not sorted
    assert (model.items_[1:] > model.items_[:-1]).all()
    indptr, seen = model._seen_indptr, model._seen_items
    assert indptr.shape == (n_users + 1,) and indptr[0] == 0 and indptr[-1] == len(seen)
    assert (np.diff(indptr) >= 0).all()
    assert seen.dtype.kind == "i" and seen.ndim == 1
    assert len(seen) == 0 or (0 <= seen.min() and seen.max() < n_items)


def fold_in_pairs(model, draw):
    """``(X, y)`` for fold_in: new and known users, known and unknown items,
    duplicates, ids and ratings of any kind, empty."""
    n = draw(st.integers(0, 8))
    new_users = ([-9, 2**40 + 1, 12345] if model.users_.dtype.kind in "iu"
                 else ["new user", "ü", "zz"])
    source = draw(st.sampled_from(["labels"] * 3 + ["any"]))
    if source == "labels":
        pool = list(model.users_.tolist()) + new_users[:draw(st.integers(1, 3))]
        users = np.array([draw(st.sampled_from(pool)) for _ in range(n)],
                         dtype=model.users_.dtype if model.users_.dtype.kind in "US" else None)
        items = draw(query_ids(model.items_, n))
    else:
        users, items = draw(id_column(n)), draw(id_column(n))
    if draw(one_in(4)):
        y = draw(ratings_column(n + draw(st.sampled_from([0, 0, 1]))))
    else:
        y = np.array([draw(st.floats(-5, 5, allow_nan=False)) for _ in range(n)])
    X = np.empty((n, 2), dtype=object)
    X[:, 0], X[:, 1] = users, items
    how = draw(st.sampled_from(["object", "list", "stack"]))
    if how == "list":
        X = X.tolist()
    elif how == "stack":
        try:
            X = np.column_stack([users, items])
        except (TypeError, ValueError):
            pass
    return X, y


def q_fold_in(model, draw):
    X, y = fold_in_pairs(model, draw)
    before = {name: np.copy(getattr(model, name)) for name in
              ("users_", "items_", "user_factors_", "user_bias_", "item_factors_", "item_bias_",
               "_seen_indptr", "_seen_items")}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "fold_in: .* unknown to the model", UserWarning)
        out = check_outcome(lambda: model.fold_in(X, y))
    check_fitted_state(model)
    if out is None:  # refused: the model is as it was
        for name, value in before.items():
            np.testing.assert_array_equal(getattr(model, name), value, err_msg=name)
        return False
    assert out is model
    # Items and the known users' ids never change; new users are appended.
    np.testing.assert_array_equal(model.items_, before["items_"])
    np.testing.assert_array_equal(model.item_factors_, before["item_factors_"])
    np.testing.assert_array_equal(model.users_[:len(before["users_"])], before["users_"])
    # The ids as the library reads them (numpy turns [False, "a"] into strings).
    folded = np.unique(as_ids(np.asarray(X)[:, 0], "user ids"))
    assert np.isin(folded, model.users_).all()
    predictions = model.predict(model.users_, np.repeat(model.items_[:1], len(model.users_)))
    assert np.isfinite(predictions).all()
    items, scores = model.recommend(folded, n=2)
    assert items.shape == scores.shape and scores.shape[0] == len(folded)
    assert scores.shape[1] <= min(2, len(model.items_))
    check_recommendations(items, scores, model)
    return True


#: Every method of a fitted model that takes ids (or nothing), one function each:
#: ``query(model, draw)`` draws its arguments, calls the method through
#: check_outcome, checks a result and returns whether there was one. A new method (e.g. ``fold_in``) is one entry.
QUERIES = {
    "predict(X)": q_predict_pairs,
    "predict(users, items)": q_predict_users_items,
    "recommend": q_recommend,
    "similar_items": q_similar_items,
    "reconstruct": q_reconstruct,
    "fold_in": q_fold_in,
}


@pytest.mark.parametrize("query", sorted(QUERIES))
def test_fitted_model_entry_points_answer_or_refuse_clearly(query):
    @given(train=valid_pairs(), params=model_params, data=st.data())
    def run(train, params, data):
        count_fuzz_example(query)
        users, items, y = train
        params = dict(params, learning_rate=min(params["learning_rate"], 0.05))
        model = MatrixFactorization(**params).fit(np.column_stack([users, items]), y)
        if QUERIES[query](model, data.draw):
            count_fuzz_example(query, valid=True)

    run()


def test_unfitted_model_entry_points_are_clear_errors():
    model = MatrixFactorization()
    for call in (lambda: model.predict([[0, 0]]), lambda: model.recommend([0]),
                 lambda: model.similar_items(0), model.reconstruct):
        with pytest.raises(ValueError, match="not fitted"):
            call()


# -- fit(..., validation=...) -------------------------------------------------------

@st.composite
def validation_sets(draw, users, items):
    """Held-out ratings for a model trained on ``users`` x ``items``: unknown ids, ids
    of another kind, wrong shapes and lengths, NaN, a matrix, a frame, a bad tuple."""
    import pandas as pd

    n = draw(st.integers(0, 6))
    form = draw(st.sampled_from(["pairs"] * 4 + ["frame", "matrix", "tuple3", "bare"]))
    if form == "matrix":  # positions as ids: fine for integer ids, refused for strings
        shape = (draw(st.integers(0, 4)), draw(st.integers(0, 4)))
        R = draw(hnp.arrays(np.float64, shape, elements=float_values(np.float64)))
        R[draw(hnp.arrays(bool, shape))] = np.nan
        return R
    val_users = draw(query_ids(users, n))
    val_items = draw(query_ids(items, n))
    if draw(one_in(3)):
        y = draw(ratings_column(n + draw(st.sampled_from([0, 0, 1]))))
    else:
        y = np.array([draw(st.floats(-5, 5, allow_nan=False)) for _ in range(n)])
    if form == "frame":
        return pd.DataFrame({"user": val_users, "item": val_items,
                             "rating": y if len(y) == n else y[:n]})
    X = np.empty((n, 2), dtype=object)
    X[:, 0], X[:, 1] = val_users, val_items
    if form == "tuple3":
        return (X, y, y)
    if form == "bare":
        return X  # (n, 2) ids without ratings: a 2-column ratings matrix
    return (X if draw(st.booleans()) else X.tolist(), y)


@given(train=valid_pairs(), params=model_params, data=st.data())
def test_fit_with_a_validation_set_ends_in_a_scored_model_or_a_clear_error(train, params, data):
    count_fuzz_example("fit(validation=)")
    users, items, y = train
    params = dict(params, learning_rate=min(params["learning_rate"], 0.05))
    validation = data.draw(validation_sets(np.unique(users), np.unique(items)))
    model = MatrixFactorization(**params)
    if check_outcome(lambda: model.fit(np.column_stack([users, items]), y,
                                       validation=validation)) is None:
        assert not hasattr(model, "user_factors_")
        return
    count_fuzz_example("fit(validation=)", valid=True)
    check_model(model, params)
    check_fitted_state(model)
    for key in ("val_rmse", "val_mse", "val_mae"):
        assert len(model.history_[key]) == model.n_epochs_
        # +inf only when the squared errors of finite, float64 validation
        # ratings overflow (a rating of 1e154): an honest value, never NaN.
        values = np.array(model.history_[key])
        assert not np.isnan(values).any() and (values >= 0).all(), key


# -- MatrixFactorization.load on damaged and forged files ---------------------------

def _saved_models():
    """Bytes of small saved models: string ids with a folded-in user, and
    unbiased uint64 ids (built once: every example starts from one of them)."""
    import io

    if not _SAVED:
        string_ids = np.array([["ann", "dune"], ["bob", "dune"], ["bob", "heat"],
                               ["cy", "alien"]])
        first = MatrixFactorization(n_factors=2, n_epochs=2, random_state=0, n_threads=1)
        first.fit(string_ids, [4.0, 2.0, 5.0, 3.0]).fold_in([["dee", "heat"]], [1.0])
        X = np.empty((3, 2), dtype=object)
        X[:, 0], X[:, 1] = [2**63, 5, 5], [1, 2, 3]
        second = MatrixFactorization(n_factors=3, n_epochs=1, biased=False, dtype="float64",
                                     random_state=0, n_threads=1).fit(X, [1.0, 2.0, 3.0])
        for model in (first, second):
            buffer = io.BytesIO()
            model.save(buffer)
            _SAVED.append(buffer.getvalue())
    return _SAVED


_SAVED = []


def _members(blob):
    import io

    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@st.composite
def damaged_member(draw, arr):
    """A replacement for one member: retyped, reshaped, a value changed, or other JSON."""
    how = draw(st.sampled_from(["retype", "reshape", "value", "value", "json", "other"]))
    if how == "retype":
        dtype = draw(st.sampled_from(INT_DTYPES + FLOAT_DTYPES + [
            bool, complex, ">f8", ">i8", "U5", "S3", "datetime64[s]"]))
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return arr.astype(dtype)
        except (TypeError, ValueError, OverflowError):
            return np.zeros(arr.shape, dtype=dtype)
    if how == "reshape":
        choice = draw(st.sampled_from(["drop", "add", "2d", "scalar", "empty"]))
        flat = arr.reshape(-1)
        if choice == "drop":
            return flat[:-1] if flat.size else flat
        if choice == "add":
            return np.concatenate([flat, flat[:1]]) if flat.size else np.zeros(1, arr.dtype)
        if choice == "2d":
            return flat.reshape(1, -1)
        if choice == "scalar":
            return flat[0] if flat.size else np.array(0, dtype=arr.dtype)
        return flat[:0]
    if how == "value":
        if arr.size == 0 or arr.dtype.kind not in "iufb":
            return np.array(draw(st.sampled_from([-1, 2**40, np.nan])))
        out = arr.copy().reshape(-1)
        values = {"i": [-1, 0, 2**31 - 1, -(2**62), 10**6], "u": [0, 2**64 - 1, 10**6],
                  "f": [np.nan, np.inf, -1e300, 0.0], "b": [True, False]}[arr.dtype.kind]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[draw(st.integers(0, out.size - 1))] = np.array(draw(st.sampled_from(values))
                                                               ).astype(out.dtype)
        return out.reshape(arr.shape)
    if how == "json":
        return np.array(draw(st.sampled_from([
            "{not json", "[]", "null", '{"n_factors": "x"}', '{"n_factors": -3}',
            '{"dtype": "int8"}', '{"surprise": 1}', '{"train_mse": 5}',
            '{"n_epochs": 1e400}', '"text"'])))
    return np.array(draw(st.sampled_from(["", "mfcy.MatrixFactorization", "x" * 300])))


class Exploit:
    """Unpickling this would raise: a member that is a pickled object must never be
    unpickled by load."""

    def __reduce__(self):
        return (_unpickled, ())


def _unpickled():
    raise AssertionError("load unpickled a member")


@st.composite
def model_files(draw):
    """Bytes of a damaged or forged model file."""
    import io

    blob = draw(st.sampled_from(_saved_models()))
    how = draw(st.sampled_from(["bytes", "truncate", "truncate", "flip", "members",
                                "members", "members", "members", "pickled"]))
    if how == "bytes":
        prefix = draw(st.sampled_from([b"", b"PK\x03\x04", b"\x80\x04", b"\x93NUMPY"]))
        return prefix + draw(st.binary(max_size=200))
    if how == "truncate":
        return blob[:draw(st.integers(0, len(blob) - 1))]
    if how == "flip":
        data = bytearray(blob)
        at = draw(st.integers(0, len(data) - 1))
        data[at] ^= draw(st.integers(1, 255))
        return bytes(data)
    members = _members(blob)
    if how == "pickled":
        name = draw(st.sampled_from(sorted(members)))
        members[name] = np.array([Exploit()], dtype=object)
    else:
        for _ in range(draw(st.integers(1, 2))):
            name = draw(st.sampled_from(sorted(members)))
            if draw(one_in(4)):
                del members[name]
            else:
                members[name] = draw(damaged_member(members[name]))
        if draw(st.booleans()):  # a forgery with a valid checksum
            import mfcy.io

            members["checksum"] = np.array(mfcy.io._checksum(
                {k: v for k, v in members.items() if k != "checksum"}))
    buffer = io.BytesIO()
    np.savez(buffer, **members)
    return buffer.getvalue()


@given(blob=model_files())
def test_load_of_a_damaged_or_forged_file_is_a_model_file_error_or_a_sound_model(blob):
    import io

    from mfcy.io import ModelFileError

    count_fuzz_example("load")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            model = MatrixFactorization.load(io.BytesIO(blob))
        except ModelFileError as exc:
            assert str(exc).strip()
            return
    count_fuzz_example("load", valid=True)
    # Only forgeries that keep the model consistent get here (a changed factor,
    # hyperparameter or history entry): the model must be safe to use.
    check_fitted_state(model)
    model._validated_params()
    users = model.users_[:3]
    assert np.isfinite(model.predict(users, np.repeat(model.items_[:1], len(users)))).all()
    items, scores = model.recommend(users, n=2)
    check_recommendations(items, scores, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.fold_in(np.array([[model.users_[0], model.items_[0]]], dtype=object), [1.0])
    check_fitted_state(model)


# -- mfcy.datasets.load_ratings on fuzzed text files --------------------------------

FIELD_TEXT = st.one_of(
    st.integers(-5, 50).map(str),
    st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "1e400", "3.5", "4,5", "0x10",
                     "99999999999999999999", "18446744073709551615", "-9223372036854775809",
                     "1e20", "2.0", "007", "True", '"quoted, comma"', '"', "'a'", "é", "\\",
                     "user", "rating", "#comment"]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=4),
)


@st.composite
def ratings_files(draw):
    """Bytes of a ratings file: delimited text with random separators, quoting,
    headers, missing and extra fields, odd numbers and ids, or binary junk;
    compressed or not (sometimes truncated)."""
    import bz2
    import gzip

    if draw(one_in(8)):
        raw = draw(st.binary(max_size=80))
    else:
        sep = draw(st.sampled_from([",", "\t", "::", ";", "|", " ", "  "]))
        n_fields = draw(st.sampled_from([3, 3, 3, 4, 2, 1]))
        lines = []
        if draw(st.booleans()):
            lines.append(sep.join(draw(st.sampled_from([
                ["user", "item", "rating", "timestamp"], ["userId", "movieId", "rating"],
                ["a", "b", "c"], ["rating", "user", "item"]]))[:n_fields]))
        clean = draw(one_in(3))  # a file of clean rows (but for its header and separator)
        for _ in range(draw(st.integers(0, 6))):
            if clean or draw(one_in(3)):  # a clean row: keeps some files valid
                fields = [str(draw(st.integers(0, 4))), str(draw(st.integers(0, 4))),
                          str(draw(st.sampled_from([1, 2.5, 5])))] + ["0"] * (n_fields - 3)
            else:
                k = n_fields + draw(st.sampled_from([0, 0, 0, -1, 1]))
                fields = [draw(FIELD_TEXT) for _ in range(max(k, 0))]
            lines.append(sep.join(fields))
        end = draw(st.sampled_from(["\n", "\r\n", "\n\n"]))
        raw = end.join(lines).encode(draw(st.sampled_from(["utf-8", "utf-8", "latin-1"])),
                                     errors="replace")
        if draw(st.booleans()):
            raw += end.encode()
    compress = draw(st.sampled_from([None, None, None, "gzip", "bz2"]))
    if compress:
        raw = gzip.compress(raw) if compress == "gzip" else bz2.compress(raw)
        if draw(one_in(4)):
            raw = raw[:draw(st.integers(0, len(raw)))]
    return raw


_LOAD_OPTIONS = st.fixed_dictionaries({}, optional={
    "sep": st.sampled_from([",", "\t", "::", " ", ";", "", "xx"]),
    "header": st.booleans(),
    "string_ids": st.booleans(),
    "columns": st.sampled_from([(0, 1, 2), (1, 0, 2), ("user", "item", "rating"),
                                (0, 1), (0, 0, 1), (0, 1, 7), ("a", "b", "c")]),
})


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def test_load_ratings_gives_the_documented_frame_or_a_clear_error(fuzz_dir):
    import pandas as pd

    from mfcy.datasets import load_ratings

    @given(raw=ratings_files(), options=_LOAD_OPTIONS)
    def run(raw, options):
        count_fuzz_example("load_ratings")
        path = fuzz_dir / "ratings.txt"
        path.write_bytes(raw)
        with warnings.catch_warnings():
            # An ambiguous first line ("a,b,c" then data) is read as a header, with
            # a warning that says so (tests/test_reading.py asserts it).
            warnings.filterwarnings("ignore", message=".*was read as a header",
                                    category=UserWarning)
            frame = check_outcome(lambda: load_ratings(path, **options))
        if frame is None:
            return
        count_fuzz_example("load_ratings", valid=True)
        assert isinstance(frame, pd.DataFrame)
        assert list(frame.columns) == ["user", "item", "rating"] and len(frame) >= 1
        assert frame["rating"].dtype == np.float64 and np.isfinite(frame["rating"]).all()
        for role in ("user", "item"):
            column = frame[role]
            # String ids are a category column of strings (one object per distinct id).
            assert column.dtype in (np.int64, np.uint64) or (
                isinstance(column.dtype, pd.CategoricalDtype)
                and pd.api.types.infer_dtype(column.cat.categories, skipna=False) == "string"
            ), column.dtype
            if column.dtype.kind == "O":
                assert (column.astype(str).str.strip() != "").all()
        # What load_ratings gives, fit takes.
        triples = check_outcome(lambda: to_triples(frame))
        assert triples is not None and len(triples) >= 1

    run()


# -- the command line, in-process --------------------------------------------------

def run_cli(argv):
    """``mfcy.cli.main(argv)`` in this process: (exit status, stdout, stderr)."""
    import contextlib
    import io

    from mfcy.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def check_cli(status, err):
    assert status in (0, 2), status
    assert "Traceback" not in err
    if status == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mfcy: error: ") and lines[0][13:].strip()


def test_cli_on_fuzzed_files_exits_0_or_2_with_one_line(fuzz_dir):
    from hypothesis import settings

    fewer = max(10, settings.default.max_examples // 5)  # each example fits a model

    @settings(max_examples=fewer)
    @given(ratings=ratings_files(), model=st.one_of(st.none(), model_files()),
           user=st.sampled_from(["0", "1", "ann", "-5", "99999999999999999999", "", "1.5"]),
           sep=st.sampled_from([None, ",", "\t"]))
    def run(ratings, model, user, sep):
        count_fuzz_example("cli")
        ratings_path, model_path = fuzz_dir / "cli.csv", fuzz_dir / "cli.npz"
        ratings_path.write_bytes(ratings)
        options = ["--sep", sep] if sep else []
        status, _, err = run_cli(["fit", ratings_path, "--model", model_path, "--factors", 2,
                                  "--epochs", 1, "--threads", 1, "--quiet", *options])
        check_cli(status, err)
        if status == 0:
            count_fuzz_example("cli", valid=True)
        elif model_path.exists():
            model_path.unlink()
        if model is not None:  # a damaged model for the commands that read one
            model_path.write_bytes(model)
        if not model_path.exists():
            return
        for argv in (["info", model_path], ["recommend", model_path, "--user", user, "-n", 3],
                     ["predict", model_path, ratings_path, "-o", fuzz_dir / "out.tsv",
                      *options]):
            status, _, err = run_cli(argv)
            check_cli(status, err)
        model_path.unlink()

    run()
