"""Every accepted input form, turned into canonical triples and id maps.

The kernel sees only dense indices. This module is where raw input becomes
those indices, once, with vectorized checks:

* a 2-D array with NaN for unknown entries: the ids are the row and column
  positions, every row and column counts, even empty ones;
* a scipy.sparse matrix or array: the stored entries are the observations, the
  ids are again positions;
* ``(X, y)``: ``X`` of shape (n, 2) holds (user id, item id) labels and ``y`` the
  ratings (scikit-learn's shape); the ids are labels, mapped to indices in the
  sorted order of the distinct ids (``users_``/``items_`` map back);
* a pandas DataFrame with a user, an item and a rating column (named
  ``user``, ``item``, ``rating`` unless ``columns`` says otherwise), through
  the same id map as ``(X, y)``.

Whatever the form, the triples come out sorted by (user index, item index) with
duplicates of one (user, item) averaged into a single observation.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

import numpy as np

from ._limits import check_sparse_shape

__all__ = ["Triples", "Encoded", "input_form", "to_triples", "to_encoded", "rating_rows",
           "validation_rows", "encode_query_ids", "as_ids", "DEFAULT_COLUMNS"]

_INT32_MAX = np.iinfo(np.int32).max

#: The (user, item, rating) column names ``fit(df)`` looks for by default; also
#: the names :func:`mfcy.datasets.load_ratings` gives its columns.
DEFAULT_COLUMNS = ("user", "item", "rating")


@dataclass
class Encoded:
    """Observed ratings as dense indices, in no particular order.

    :func:`to_encoded` returns them in input order with duplicates not yet
    merged; :func:`to_triples` sorts and merges them into :class:`Triples`.
    The indices have the dtype :class:`Triples` would have (int32 unless there
    are too many ids).

    Attributes
    ----------
    users, items : ndarray of int32 or int64
        Dense indices.
    ratings : ndarray of float64
    user_ids, item_ids : ndarray
        Sorted distinct ids: index ``j`` stands for ``user_ids[j]``.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray

    @property
    def n_users(self):
        return len(self.user_ids)

    @property
    def n_items(self):
        return len(self.item_ids)

    def __len__(self):
        return len(self.ratings)


@dataclass
class Triples(Encoded):
    """Observed ratings in canonical form: :class:`Encoded` sorted and merged.

    ``users`` and ``items`` are sorted by (user, item) with no repeated pair;
    ``ratings`` holds one rating per pair (the mean of the pair's duplicates).

    Attributes
    ----------
    n_duplicates : int
        How many input rows were merged into another row of the same pair.
    """

    n_duplicates: int = 0


def _is_sparse(X):
    # Not imported here: a sparse matrix can only exist once scipy.sparse has
    # been imported, and importing it costs memory callers who never use it
    # should not pay.
    sp = sys.modules.get("scipy.sparse")
    return sp is not None and sp.issparse(X)


def _is_dataframe(X):
    return type(X).__name__ == "DataFrame" and hasattr(X, "columns")


def as_ids(values, what, widen=True):
    """Validate one column of raw ids and return it as a 1-D numpy array.

    Integers (any width) become int64 (uint64 beyond int64's range is kept as
    uint64), integral floats become int64, strings become a numpy unicode
    array. Non-integral floats, NaN, booleans, complex numbers and mixed
    object columns are a ``ValueError``. With ``widen=False`` integer ids keep
    their own width (no copy of a million int32 ids just to encode them; the
    sorted distinct ids that :func:`_encode` returns are int64 either way).
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind == "O":
        arr = _ids_from_objects(arr, what)
        kind = arr.dtype.kind
    if kind == "b":
        raise ValueError(f"{what} are booleans; ids must be integers or strings")
    if kind == "c":
        raise ValueError(f"{what} are complex numbers; ids must be integers or strings")
    if kind == "i":
        return arr.astype(np.int64, copy=False) if widen else arr
    if kind == "u":
        if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
            return arr
        return arr.astype(np.int64, copy=False) if widen or arr.dtype == np.uint64 else arr
    if kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} contain NaN or infinity; ids must be integers or strings")
        # Beyond 2**63 the cast below is undefined (compared in float64: float16
        # cannot even hold 2**63).
        outside = np.abs(arr.astype(np.float64)) >= 2.0**63
        if outside.any():
            raise ValueError(f"{what} contain floats outside the 64-bit integer range (e.g. "
                             f"{arr[outside][0]!r}); pass integer ids")
        as_int = arr.astype(np.int64)
        if not np.array_equal(as_int, arr):
            raise ValueError(f"{what} contain non-integral floats (e.g. "
                             f"{arr[as_int != arr][0]!r}); ids must be integers or strings")
        return as_int
    if kind in "US":
        return arr.astype(str) if kind == "S" else arr
    raise ValueError(f"{what} have unsupported dtype {arr.dtype}; use integers or strings")


def _ids_from_objects(arr, what):
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    types = {type(v) for v in arr.tolist()}
    # issubclass: numpy's str_ (what iterating a unicode array gives) is a str.
    if all(issubclass(t, str) for t in types):
        return arr.astype(str)
    if all(issubclass(t, (int, np.integer)) and not issubclass(t, (bool, np.bool_))
           for t in types):
        try:
            return arr.astype(np.int64)
        except OverflowError:
            pass
        try:  # as numpy arrays of uint64 ids are: non-negative ids up to 2**64 - 1
            return as_ids(arr.astype(np.uint64), what)
        except OverflowError:
            raise ValueError(f"{what} contain integers outside the 64-bit range (signed or "
                             "unsigned)") from None
    names = ", ".join(sorted(t.__name__ for t in types))
    raise ValueError(f"{what} mix or use unsupported types ({names}); "
                     "use one kind per column: integers or strings")


def as_ratings(values, what="ratings"):
    """Validate ratings: a 1-D real, finite array returned as float64."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{what} must be numbers; got non-numeric values") from None
    if arr.dtype.kind == "b":
        raise ValueError(f"{what} are booleans; ratings must be real numbers")
    if arr.dtype.kind == "c":
        raise ValueError(f"{what} are complex numbers; ratings must be real numbers")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{what} have unsupported dtype {arr.dtype}; ratings must be real numbers")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr))
        raise ValueError(f"{what} contain NaN or infinity ({len(bad)} values, first at "
                         f"position {bad[0]})")
    return arr


def _encode(ids):
    """Sorted distinct ids and the index (int64 or int32) of each input id among them.

    Integer ids of any width are accepted; the distinct ids come back as int64
    (uint64 when they exceed int64), as :func:`as_ids` would have made them.
    """
    id_dtype = (ids.dtype if ids.dtype.kind not in "iu" or ids.dtype == np.uint64
                else np.dtype(np.int64))
    if ids.dtype in (np.int32, np.int64) and ids.ndim == 1:
        # The common id types, compiled: one pass for the range, one for the
        # lookups, reading a column of an (n, 2) array in place.
        from ._extensions import _layout

        if not ids.flags.aligned:
            # The compiled pass loads whole words: an array that sits at an odd
            # address (pickle-5 buffers of a Dask partition do) is copied first.
            ids = np.require(ids, requirements="A")
        encoded = _layout.encode_dense_ids(ids, 2 * len(ids) + 1_000_001)
        if encoded is not None:
            return encoded
    if ids.dtype.kind in "iu" and len(ids):
        low, high = int(ids.min()), int(ids.max())
        # Ids that fill their range densely (MovieLens: 1..6040) are mapped by
        # a lookup table in O(n + span) instead of sorting them: the same result
        # as np.unique, faster (benchmarks/README.md).
        if high - low <= 2 * len(ids) + 1_000_000:
            base = 0 if 0 <= low <= 1_000_000 else low  # skip the subtraction if cheap
            # In a type that holds the span (ids - low of int16 ids may not fit int16).
            offset = ids if base == 0 else ids.astype(id_dtype) - id_dtype.type(base)
            present = np.zeros(high - base + 1, dtype=bool)
            present[offset] = True
            n_distinct = int(np.count_nonzero(present))
            index_dtype = np.int32 if n_distinct <= _INT32_MAX else np.int64
            index_of = np.cumsum(present, dtype=index_dtype)
            index_of -= 1
            uniques = np.flatnonzero(present).astype(id_dtype) + id_dtype.type(base)
            return uniques, index_of[offset]
    # Otherwise search a sorted copy: np.unique(return_inverse=True) argsorts
    # and builds several arrays of the input's length (five times the ids).
    uniques = np.unique(ids)
    inverse = np.searchsorted(uniques, ids)
    return (uniques.astype(id_dtype, copy=False),
            inverse.astype(_index_dtype(len(uniques), 0), copy=False))


def _index_dtype(n_users, n_items):
    # int32 halves the index traffic of the kernel; only huge id sets need int64.
    return np.int32 if max(n_users, n_items) <= _INT32_MAX else np.int64


def _canonical(users, items, ratings, user_ids, item_ids):
    """Sort by (user, item) and average duplicates.

    A compiled counting sort (:func:`mfcy._layout.sort_by_user_item`), O(n);
    it holds the inputs, one (user, rating) buffer between its two passes and
    the sorted outputs at once (a fit of 10 M ratings must not make many
    copies of them).
    """
    from ._extensions import _layout

    n_users, n_items = len(user_ids), len(item_ids)
    dtype = _index_dtype(n_users, n_items)
    users, items, ratings, n_dup = _layout.sort_by_user_item(
        np.ascontiguousarray(users, dtype=dtype), np.ascontiguousarray(items, dtype=dtype),
        np.ascontiguousarray(ratings, dtype=np.float64), n_users, n_items)
    if n_dup:
        first = np.empty(len(users), dtype=bool)  # first rating of its pair?
        first[0] = True
        np.not_equal(users[1:], users[:-1], out=first[1:])
        first[1:] |= items[1:] != items[:-1]
        starts = np.flatnonzero(first)
        del first
        # The mean of each pair's ratings (a pair seen once keeps its value).
        with np.errstate(over="ignore"):  # reported just below
            ratings = np.add.reduceat(ratings, starts) / np.diff(np.append(starts, len(users)))
        if not np.isfinite(ratings).all():  # the sum of a pair's ratings overflowed
            raise ValueError("ratings too large: averaging the duplicates of a (user, "
                             "item) pair overflows float64; rescale the ratings")
        users, items = users[starts], items[starts]
    return Triples(users, items, ratings, user_ids, item_ids, int(n_dup))


def _from_dense(X):
    R = np.asarray(X)
    if R.ndim != 2:
        raise ValueError(f"a ratings matrix must be 2-D, got {R.ndim}-D with shape {R.shape}")
    if R.dtype.kind not in "iuf":
        raise ValueError(f"a ratings matrix must hold real numbers, got dtype {R.dtype}")
    R = R.astype(np.float64, copy=False)
    observed = ~np.isnan(R)
    if np.isinf(R).any():
        raise ValueError("the ratings matrix contains infinity; use NaN for unknown entries")
    if R.size and observed.all() and np.count_nonzero(R == 0) * 2 >= R.size:
        warnings.warn("the ratings matrix has no NaN and mostly zeros: zeros are treated as "
                      "observed ratings of 0. Mark unknown entries with NaN (or pass a "
                      "scipy.sparse matrix whose stored entries are the ratings).",
                      UserWarning, stacklevel=4)
    # Row-major (np.where's order): the input order a fit's layout, and so its
    # bits, are built from.
    users, items = np.nonzero(observed)
    return users, items, R[observed], np.arange(R.shape[0]), np.arange(R.shape[1])


def _from_sparse(X):
    if X.ndim != 2:  # scipy's sparse arrays may be 1-D or n-D
        raise ValueError(f"a sparse ratings matrix must be 2-D, got {X.ndim}-D with shape "
                         f"{X.shape}")
    coo = X.tocoo()
    if coo.dtype.kind not in "iuf":
        raise ValueError(f"a sparse ratings matrix must hold real numbers, got dtype {coo.dtype}")
    ratings = as_ratings(np.asarray(coo.data), "stored entries of the sparse matrix")
    # scipy's own index dtype (int32 mostly): _canonical widens them once, to its key.
    rows, cols = np.asarray(coo.row), np.asarray(coo.col)
    # scipy checks the indices when a matrix is built, not when its arrays are
    # changed afterwards (nor for every constructor): these indices go to the
    # kernel, which trusts them, so they are checked here.
    if not (len(rows) == len(cols) == len(ratings)):
        raise ValueError(f"the sparse matrix is corrupted: {len(ratings)} stored values but "
                         f"{len(rows)} row and {len(cols)} column indices")
    n_rows, n_cols = coo.shape
    for what, index, size in (("row", rows, n_rows), ("column", cols, n_cols)):
        if len(index) and (index.min() < 0 or index.max() >= size):
            bad = index[(index < 0) | (index >= size)][0]
            raise ValueError(f"the sparse matrix stores an entry at {what} {bad}, outside its "
                             f"shape {coo.shape}")
    check_sparse_shape(coo.shape, len(ratings))  # before the ids of every row and column
    return rows, cols, ratings, np.arange(n_rows), np.arange(n_cols)


def _frame_column(frame, name, role):
    if name not in frame.columns:
        have = ", ".join(map(repr, frame.columns[:10])) + (", ..." if frame.shape[1] > 10 else "")
        raise ValueError(f"the DataFrame has no {role} column {name!r} (its columns: {have}); "
                         "name the (user, item, rating) columns with columns=(...)")
    column = frame[name]
    if _is_dataframe(column):
        raise ValueError(f"the DataFrame has more than one column named {name!r}")
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise ValueError(f"the {role} column {name!r} has missing values (first at position {row})")
    return column


def _frame_ids(column, role):
    """Ids of one DataFrame column (integers, or strings, one kind per column)."""
    import pandas as pd
    from pandas.api.types import infer_dtype

    if isinstance(column.dtype, pd.CategoricalDtype):
        return _categorical_ids(column, role)
    values = column.to_numpy()
    if values.dtype.kind in "iu":
        # Integer ids: the compiled lookup of (X, y), not a hash table (the same
        # sorted ids and indices; 10 M ids: 3.2 s -> well under 1 s).
        return _encode(as_ids(values, f"{role} ids", widen=False))
    if values.dtype.kind == "O" and infer_dtype(values, skipna=False) == "string":
        values = np.asarray(values, dtype=object)
    else:
        values = as_ids(values, f"{role} ids")
        if values.dtype.kind in "US":
            values = values.astype(object)
    # A hash-based factorization sorts only the distinct ids: faster and
    # lighter than np.unique's sort of every id, with the same result.
    codes, uniques = pd.factorize(values, sort=True)
    uniques = np.asarray(uniques)
    if uniques.dtype.kind == "O":
        uniques = uniques.astype(str)
    return uniques, codes.astype(np.int64, copy=False)


def _categorical_ids(column, role):
    """Ids of a ``category`` column (string ids from :func:`mfcy.datasets.load_ratings`)
    from its codes: one Python object per distinct id, not per rating."""
    import pandas as pd

    codes = column.cat.codes.to_numpy()
    categories = np.asarray(column.cat.categories)
    used = np.flatnonzero(np.bincount(codes, minlength=len(categories)))
    values = as_ids(categories[used], f"{role} ids")
    # The same ids, in the same order, as the column's values would give.
    rank, uniques = pd.factorize(values.astype(object) if values.dtype.kind in "US" else values,
                                 sort=True)
    uniques = np.asarray(uniques)
    remap = np.full(len(categories), -1, dtype=_index_dtype(len(used), 0))
    remap[used] = rank
    return (uniques.astype(str) if uniques.dtype.kind == "O" else uniques), remap[codes]


def _frame_roles(frame, roles):
    """The frame's column for each role, found by name as the command line finds them.

    ``user``/``item``/``rating`` first; otherwise the header names
    :func:`mfcy.datasets.load_ratings` recognises (``userId``, ``movieId``,
    ``stars``, ...). None when some role has no column, or more than one.
    """
    if all(role in frame.columns for role in roles):  # DEFAULT_COLUMNS
        return tuple(roles)
    from ._ratings_file import _role_of  # the one list of header names, shared with the CLI

    found = {}
    for name in frame.columns:
        role = _role_of(name)
        if role in roles:
            found.setdefault(role, []).append(name)
    if all(len(found.get(role, ())) == 1 for role in roles):
        return tuple(found[role][0] for role in roles)
    return None


def _from_frame(frame, columns):
    if columns is None:
        columns = _frame_roles(frame, ("user", "item", "rating")) or DEFAULT_COLUMNS
    if isinstance(columns, str) or len(columns) != 3:
        raise ValueError("columns must name 3 columns: (user, item, rating), "
                         f"got {columns!r}")
    user_col, item_col, rating_col = columns
    user_ids, users = _frame_ids(_frame_column(frame, user_col, "user"), "user")
    item_ids, items = _frame_ids(_frame_column(frame, item_col, "item"), "item")
    ratings = as_ratings(_frame_column(frame, rating_col, "rating").to_numpy(),
                         f"ratings (column {rating_col!r})")
    return users, items, ratings, user_ids, item_ids


def split_pairs(X, what="X"):
    """Split (user, item) ids given as an (n, 2) array or a 2-column frame."""
    if _is_dataframe(X):
        named = _frame_roles(X, ("user", "item"))
        if named is not None:
            # Named columns (e.g. a frame from load_ratings) win over positions;
            # other columns (a rating, a timestamp) are ignored.
            return X[named[0]].to_numpy(), X[named[1]].to_numpy()
        if X.shape[1] != 2:
            raise ValueError(f"{what} must have 2 columns (user, item) or a user and an item "
                             f"column named as fit finds them ('user', 'userId', 'item', "
                             f"'movieId', ...), got columns {list(X.columns)[:10]}")
        return X.iloc[:, 0].to_numpy(), X.iloc[:, 1].to_numpy()
    if isinstance(X, (list, tuple)) and len(X) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    arr = np.asarray(X)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{what} must have shape (n, 2) of (user, item) ids, got shape "
                         f"{arr.shape}. Reshape your data: one (user id, item id) row per pair")
    return arr[:, 0], arr[:, 1]


def _ratings_of_y(y, stacklevel):
    """``y`` as ratings; a column vector (n, 1) is accepted with a warning, as in scikit-learn."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        from .exceptions import data_conversion_warning

        warnings.warn("A column-vector y was passed when a 1d array was expected. Please "
                      "change the shape of y to (n_samples,), for example using ravel().",
                      data_conversion_warning(), stacklevel=stacklevel)
        y = y.ravel()
    return as_ratings(y, "y (the ratings)")


def check_pair_count(n_pairs, n_ratings):
    """The ``ValueError`` of an ``(X, y)`` whose pairs and ratings differ in number."""
    if n_ratings != n_pairs:
        raise ValueError(f"X has {n_pairs} (user, item) pairs but y has {n_ratings} ratings")


def _pair_rows(X, y):
    """The raw (user id, item id) columns and the ratings of an ``(X, y)`` input."""
    users_raw, items_raw = split_pairs(X)
    # Called from to_encoded or rating_rows, which are called by the public
    # method: the warning points at the caller of that method.
    ratings = _ratings_of_y(y, stacklevel=5)
    check_pair_count(len(users_raw), len(ratings))
    return users_raw, items_raw, ratings


def input_form(X, y=None, columns=None):
    """Which accepted input form ``X`` (with ``y``) is: the one place that decides.

    Every reader of ratings (:func:`to_encoded`, :func:`rating_rows`,
    :func:`mfcy.model_selection.train_test_split`) branches on this answer, so
    that one input is read as the same form everywhere.

    Parameters
    ----------
    X : array-like, scipy.sparse matrix, (n, 2) ids or DataFrame
    y : array-like, optional
    columns : sequence of 3 str, optional
        Only allowed with a DataFrame ``X`` and no ``y``.

    Returns
    -------
    {"pairs", "sparse", "frame", "dense"}
        ``"pairs"``: ``X`` holds (user id, item id) rows and ``y`` their
        ratings; ``"sparse"``: the stored entries of a scipy.sparse matrix;
        ``"frame"``: a DataFrame of (user, item, rating) rows; ``"dense"``:
        anything else, read as a 2-D ratings matrix with NaN for unknown
        entries (and refused there if it is not one).

    Raises
    ------
    ValueError
        For ``columns`` with anything but a DataFrame alone, and for a sparse
        matrix with ``y``.
    """
    if columns is not None and not (_is_dataframe(X) and y is None):
        raise ValueError("columns= names the (user, item, rating) columns of a DataFrame; "
                         "it cannot be used with " + ("y" if y is not None else
                                                      f"a {type(X).__name__}"))
    if _is_sparse(X):
        if y is not None:
            raise ValueError("y must be None when X is a sparse ratings matrix")
        return "sparse"
    if y is not None:
        return "pairs"
    return "frame" if _is_dataframe(X) else "dense"


def to_encoded(X, y=None, columns=None):
    """Turn any accepted input form into :class:`Encoded` triples (in input order).

    Parameters
    ----------
    X : array-like, scipy.sparse matrix, (n, 2) ids or DataFrame
        A ratings matrix (NaN = unknown), a sparse matrix, or a DataFrame of
        (user, item, rating) rows when ``y`` is None; otherwise (user id,
        item id) pairs.
    y : array-like of shape (n,), optional
        The ratings of the pairs in ``X``.
    columns : sequence of 3 str, optional
        The (user, item, rating) column names of a DataFrame ``X``; by default
        ``("user", "item", "rating")``. Only for a DataFrame without ``y``.

    Returns
    -------
    Encoded

    Raises
    ------
    ValueError
        On anything that is not one of the accepted forms, with a message that
        names the problem.
    """
    if isinstance(X, Encoded) and y is None and columns is None:
        return X  # already encoded (the command line encodes a file once, then fits)
    form = input_form(X, y, columns)
    if form == "sparse":
        parts = _from_sparse(X)
    elif form == "frame":
        parts = _from_frame(X, columns)
    elif form == "dense":
        parts = _from_dense(X)
    else:
        users_raw, items_raw, ratings = _pair_rows(X, y)
        user_ids, users = _encode(as_ids(users_raw, "user ids", widen=False))
        item_ids, items = _encode(as_ids(items_raw, "item ids", widen=False))
        parts = (users, items, ratings, user_ids, item_ids)
    users, items, ratings, user_ids, item_ids = parts
    if len(ratings) == 0:
        raise ValueError("no observed ratings: the input has no known entry to learn from")
    dtype = _index_dtype(len(user_ids), len(item_ids))
    return Encoded(np.ascontiguousarray(users, dtype=dtype),
                   np.ascontiguousarray(items, dtype=dtype),
                   np.ascontiguousarray(ratings, dtype=np.float64), user_ids, item_ids)


def to_triples(X, y=None, columns=None):
    """Turn any accepted input form into :class:`Triples` (canonical order).

    :func:`to_encoded` followed by the sort by (user, item) and the averaging
    of duplicates; same parameters and errors.
    """
    encoded = to_encoded(X, y, columns=columns)
    return _canonical(encoded.users, encoded.items, encoded.ratings, encoded.user_ids,
                      encoded.item_ids)


def encode_query_ids(ids, known, what):
    """Indices of ``ids`` among the sorted ``known`` ids, ``-1`` where unseen.

    A string id asked of a model trained on integer ids (or the reverse) is a
    ``ValueError``: it can never match and is almost certainly a mistake.
    """
    ids = as_ids(ids, what)
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    known_str = known.dtype.kind in "US"
    if (ids.dtype.kind in "US") != known_str:
        kinds = ("strings", "integers") if known_str else ("integers", "strings")
        raise ValueError(f"{what} must be {kinds[0]} like the training ids, got {kinds[1]}")
    if len(known) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    if not known_str and (ids.dtype != known.dtype):
        # Mixed int64/uint64 comparisons go through float64 in numpy: compare
        # in Python ints' domain instead by promoting both to object only here.
        if ids.dtype == np.uint64 or known.dtype == np.uint64:
            ids, known = ids.astype(object), known.astype(object)
    pos = np.searchsorted(known, ids)
    pos = np.minimum(pos, len(known) - 1)
    found = known[pos] == ids
    return np.where(found, pos, -1).astype(np.int64)


def rating_rows(X, y=None, columns=None):
    """Raw (user id, item id, rating) rows of any accepted input form, not deduplicated.

    With ``y`` the rows are the given pairs in their given order (an evaluation
    must score every row a caller passed, duplicates included); without it, the
    observed entries of the matrix (or whatever else :func:`to_triples` takes),
    with their ids.

    Returns
    -------
    users, items : ndarray
        Ids as :func:`as_ids` returns them.
    ratings : ndarray of float64
    """
    if input_form(X, y, columns) != "pairs":
        triples = to_triples(X, y, columns=columns)
        return (triples.user_ids[triples.users], triples.item_ids[triples.items],
                triples.ratings)
    users_raw, items_raw, ratings = _pair_rows(X, y)
    if len(ratings) == 0:
        raise ValueError("no ratings given: X and y are empty")
    return as_ids(users_raw, "user ids"), as_ids(items_raw, "item ids"), ratings


def validation_rows(validation, columns=None):
    """:func:`rating_rows` of a held-out set in the forms ``fit(validation=...)`` takes.

    A tuple is ``(X_val, y_val)``; anything else is one ratings input on its
    own (a matrix, a sparse matrix, a DataFrame, read with ``columns``).
    """
    if isinstance(validation, tuple):
        if len(validation) != 2:
            raise ValueError(f"a tuple must be (X_val, y_val), got {len(validation)} items")
        return rating_rows(*validation)
    return rating_rows(validation, columns=columns)
