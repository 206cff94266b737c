"""Data to learn from: a fixed 20 × 15 low-rank problem
(:func:`~mfcy.datasets.lesson_problem`, the teaching notebook's), random
low-rank ratings of any size (:func:`~mfcy.datasets.make_low_rank`), and
:func:`~mfcy.datasets.load_ratings` for ratings files (CSV, TSV, MovieLens
``u.data`` and ``ratings.dat``, compressed or not)."""

from __future__ import annotations

import warnings

import numpy as np

from ._ratings_file import (_DelimitedFile, _detect_header, _read_delimited_pandas,
                            _resolve_columns, _text_ids)
from .exceptions import RatingsFileError

__all__ = ["lesson_problem", "make_low_rank", "load_ratings", "RatingsFileError"]


def lesson_problem():
    """The teaching notebook's matrix and initial factors, exactly.

    NumPy's legacy global seed 42, then in the notebook's order: true user
    factors (20×3), true item factors (15×3), the mask ``rand(20, 15) < 0.6``,
    and the initial factors ``0.1 * randn(20, 3)`` and ``0.1 * randn(15, 3)``.
    The global NumPy random state is left as it was.

    Returns
    -------
    R : ndarray of shape (20, 15)
        The low-rank ratings with NaN where unobserved (171 observed).
    U0 : ndarray of shape (20, 3)
        Initial user factors.
    V0 : ndarray of shape (15, 3)
        Initial item factors.

    Examples
    --------
    >>> from mfcy.datasets import lesson_problem
    >>> R, U0, V0 = lesson_problem()
    >>> R.shape, int((~np.isnan(R)).sum())
    ((20, 15), 171)
    """
    # RandomState(42) draws exactly what np.random.seed(42) + np.random.* draw,
    # without touching the caller's global state.
    rs = np.random.RandomState(42)
    num_users, num_items, k = 20, 15, 3
    true_U = rs.randn(num_users, k)
    true_V = rs.randn(num_items, k)
    R_full = true_U @ true_V.T
    mask = rs.rand(num_users, num_items) < 0.6
    R = np.where(mask, R_full, np.nan)
    U0 = 0.1 * rs.randn(num_users, k)
    V0 = 0.1 * rs.randn(num_items, k)
    return R, U0, V0


def make_low_rank(n_users, n_items, n_factors, density, noise=0.0, random_state=None,
                  as_frame=False):
    """Ratings from random low-rank factors, each entry observed with probability ``density``.

    ``R = U Vᵀ (+ noise)`` with standard normal ``U`` (n_users × n_factors) and
    ``V`` (n_items × n_factors): the construction of
    :func:`~mfcy.datasets.lesson_problem`, at any size and drawn from a
    :class:`numpy.random.Generator`.

    Parameters
    ----------
    n_users, n_items, n_factors : int
    density : float in (0, 1]
        Probability that an entry is observed.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to the observed ratings.
    random_state : int, numpy.random.Generator or None
    as_frame : bool, default=False
        Return a pandas DataFrame of (user, item, rating) triples instead of
        the matrix.

    Returns
    -------
    ndarray of shape (n_users, n_items) with NaN for unknown, or DataFrame
    """
    for name, value in (("n_users", n_users), ("n_items", n_items), ("n_factors", n_factors)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(random_state)
    U = rng.standard_normal((n_users, n_factors))
    V = rng.standard_normal((n_items, n_factors))
    mask = rng.random((n_users, n_items)) < density
    R = U @ V.T
    if noise:
        R += noise * rng.standard_normal(R.shape)
    R[~mask] = np.nan
    if not as_frame:
        return R
    import pandas as pd

    users, items = np.nonzero(mask)
    return pd.DataFrame({"user": users, "item": items, "rating": R[users, items]})


def load_ratings(path, *, sep=None, columns=None, header=None, string_ids=False,
                 encoding="utf-8", engine=None):
    """Read a ratings file: one (user, item, rating) per line or row.

    Text: CSV, TSV, MovieLens ``u.data`` (tab-separated, with a timestamp
    column) and ``ratings.dat`` (``::``-separated) are recognised by their
    first line; gzip, bz2 and xz files are decompressed transparently
    (recognised by content, whatever their name); a UTF-8 byte-order mark is
    removed. Columnar: a Parquet file, a directory of Parquet files (as Spark
    and Dask write them) and an Arrow IPC / Feather file, read by pyarrow
    (``pip install 'mfcy[parquet]'``).

    Text is parsed by pyarrow's multi-threaded CSV reader when pyarrow is
    installed and the file suits it, by pandas' C parser otherwise; both give
    the same frame (and the same errors: a file pyarrow refuses is read again
    by pandas, which names the line).

    Parameters
    ----------
    path : str or os.PathLike
        A text file, a Parquet or Arrow/Feather file, or a directory of
        Parquet files.
    sep : str, optional
        Field separator of a text file: one ASCII character, or ``::``. By
        default the first of ``::``, tab, ``,``, ``;``, ``|`` found on the
        first line, else runs of whitespace.
    columns : sequence of 3 str or int, optional
        The user, item and rating columns, by header (or schema) name or by
        0-based position. By default the columns whose names say so
        (``user``, ``userId``, ``item``, ``movieId``, ``rating``, ``score``,
        ... in any case), else the first three columns.
    header : bool, optional
        Whether the first line of a text file names the columns. By default:
        a line whose rating field is a number is data; else a line naming a
        known column (``userId``, ``rating``, ...) is a header; else the line
        is read as a header only when the next line's rating field is a
        number, and a ``UserWarning`` says so (a data line is never dropped
        silently). A column given by name implies a header.
    string_ids : bool, default=False
        Keep ids as text even when they look like integers. By default a text
        column whose every id is written as an integer (``42``, ``-7``; not
        ``007``, ``+7`` or ``7.0``) gives integer ids: parsing ids is
        lossless, so ``"001"`` and ``"1"`` are never merged into one id.
    encoding : str, default="utf-8"
        Of a text file.
    engine : {"pyarrow", "pandas"}, optional
        The text parser; by default pyarrow when it is installed.

    Returns
    -------
    pandas.DataFrame
        Columns ``user``, ``item`` and ``rating`` (float64), one row per line,
        in file order: what :meth:`MatrixFactorization.fit
        <mfcy.MatrixFactorization.fit>` takes. Integer ids are an int64
        column (a columnar file's own integer type); string ids a
        ``category`` column (sorted categories: one Python string per
        distinct id, not per rating).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ImportError
        For a Parquet or Arrow file (or ``engine="pyarrow"``) without pyarrow.
    RatingsFileError
        (a ``ValueError``) On a malformed line (a missing or extra field, a
        rating that is not a finite number, an empty id), with its line
        number, or on a column that does not exist.

    Examples
    --------
    >>> import os, tempfile
    >>> from mfcy.datasets import load_ratings
    >>> path = os.path.join(tempfile.mkdtemp(), "ratings.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("userId,movieId,rating,timestamp\\nalice,dune,5,0\\nbob,dune,3.5,0\\n")
    >>> load_ratings(path)
        user  item  rating
    0  alice  dune     5.0
    1    bob  dune     3.5
    """
    frame, report = _read_ratings(path, sep=sep, columns=columns, header=header,
                                  string_ids=string_ids, encoding=encoding, engine=engine)
    if report.header_note:
        warnings.warn(report.header_note, UserWarning, stacklevel=2)
    return frame


class _ReadReport:
    """How a ratings file was read: for the command line's summary.

    Attributes
    ----------
    format : str
        "text", "parquet" or "arrow".
    reader : str
        "pyarrow" or "pandas".
    header_note : str or None
        Set when the first line was ambiguous: which way it was read.
    id_notes : list of str
        Why ids that look numeric were kept as text.
    """

    def __init__(self, format):
        self.format, self.reader = format, "pyarrow"
        self.header_note, self.id_notes = None, []


def _read_ratings(path, *, sep=None, columns=None, header=None, string_ids=False,
                  encoding="utf-8", engine=None):
    """:func:`load_ratings`, also returning its :class:`_ReadReport`."""
    import pandas as pd

    if engine not in (None, "pyarrow", "pandas"):
        raise ValueError(f"engine must be 'pyarrow', 'pandas' or None, got {engine!r}")
    from . import _readers
    from ._ratings_file import refuse_unseekable

    refuse_unseekable(path, "ratings file")
    kind = _readers.columnar_kind(path)
    if kind is not None:
        report = _ReadReport(kind)
        out = _readers.read_columnar(path, kind, columns, string_ids)
        _readers.release_memory()  # the Arrow table's pages (its columns are copied out)
        return pd.DataFrame(out, copy=False), report
    report = _ReadReport("text")
    table = _DelimitedFile(path, sep=sep, encoding=encoding)
    fields = table.fields
    rating_at = 2
    if header is None and columns is not None and not isinstance(columns, str) \
            and len(columns) == 3:
        if any(isinstance(c, str) for c in columns):
            header = True
        elif isinstance(columns[2], (int, np.integer)):
            rating_at = int(columns[2])
    if header is None:
        header, report.header_note = _detect_header(table, rating_at)
    if len(fields) < 3:
        shown = "whitespace" if table.sep is None else repr(table.sep)
        raise RatingsFileError(
            f"{table.where}, line {table.first_number}: {len(fields)} field(s) separated by "
            f"{shown}; a ratings file needs at least 3 (user, item, rating): pass sep= if the "
            "separator is another", line=table.first_number)
    names = table.header_names() if header else None
    positions = _resolve_columns(columns, names, len(fields), table.where)
    parts = None
    if engine != "pandas":
        parts = _readers.read_delimited(table, bool(header), positions,
                                        required=engine == "pyarrow", string_ids=string_ids)
    if parts is None:
        report.reader = "pandas"
        parts = _read_delimited_pandas(table, bool(header), positions, string_ids)
    out = {}
    for role, part in zip(("user", "item"), parts[:2]):
        if isinstance(part, np.ndarray):  # integers, read losslessly
            out[role] = part.astype(np.int64, copy=False) if part.dtype.kind == "i" else part
            continue
        out[role], note = _text_ids(*part, role, table.error, string_ids)
        if note:
            report.id_notes.append(note)
    out["rating"] = parts[2]
    del parts
    _readers.release_memory()
    return pd.DataFrame(out, copy=False), report
