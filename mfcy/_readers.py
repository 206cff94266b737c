"""Ratings files through pyarrow: Parquet, Arrow IPC / Feather, and CSV by its
multi-threaded reader.

The data layer's file readers, below :mod:`mfcy.datasets` (which decides what
a text file's columns are and turns ids into their final form). Columns go from
Arrow to numpy without a Python object per rating: integer ids and ratings as
numpy arrays, string ids as Arrow's dictionary encoding (the codes a numpy
array, one Python string per distinct id).

pyarrow is optional (``pip install 'mfcy[parquet]'``): a Parquet or Arrow file
without it is an ``ImportError`` that says what to install; text files are then
read by pandas.
"""

from __future__ import annotations

import os
import re

import numpy as np

#: What to install for the formats that need pyarrow.
INSTALL_HINT = "pip install 'mfcy[parquet]' (or pip install pyarrow)"

_PARQUET_MAGIC = b"PAR1"
_ARROW_MAGIC = b"ARROW1"
_FEATHER_V1_MAGIC = b"FEA1"


def import_pyarrow(what):
    """pyarrow (with its csv and dataset modules), or an ImportError saying what to install."""
    try:
        import pyarrow
        import pyarrow.csv  # noqa: F401
        import pyarrow.dataset  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"reading {what} needs pyarrow, which is not installed: "
                          f"{INSTALL_HINT}") from exc
    return pyarrow


def have_pyarrow():
    """Whether pyarrow can be imported (the CSV reader is then used)."""
    try:
        import_pyarrow("CSV")
    except ImportError:
        return False
    return True


def columnar_kind(path):
    """"parquet" or "arrow" for a columnar file (or a directory of Parquet
    files), None for anything else (text, or a path that does not exist)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        for root, _, names in os.walk(path):
            if any(name.endswith((".parquet", ".parq")) or _magic(os.path.join(root, name))
                   == "parquet" for name in names if not name.startswith(("_", "."))):
                return "parquet"
        return None
    return _magic(path) if os.path.isfile(path) else None


def release_memory():
    """Give back to the system the memory pyarrow's allocator keeps after a free.

    Its pool (mimalloc or jemalloc) holds on to freed pages for reuse: after
    a file's Arrow table (and the ids' columns, which pyarrow allocated) are
    dropped, the process would keep their size resident (1.7 GB for 10^8
    ratings: a third of a fit's peak). Nothing to do if pyarrow is not loaded.
    """
    import sys

    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()


def _magic(path):
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError:
        return None
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if head.startswith(_ARROW_MAGIC) or head.startswith(_FEATHER_V1_MAGIC):
        return "arrow"
    return None


def _is_feather_v1(path):
    with open(path, "rb") as f:
        return f.read(4) == _FEATHER_V1_MAGIC


def _error(message):
    from .exceptions import RatingsFileError

    return RatingsFileError(message)


def read_columnar(path, kind, columns, string_ids):
    """The user, item and rating columns of a Parquet or Arrow file (or directory).

    Returns
    -------
    dict
        ``user``, ``item``: numpy integer arrays (the file's own integer type)
        or Categoricals of strings; ``rating``: float64.
    """
    from ._ratings_file import _resolve_columns

    path = os.fspath(path)
    where = repr(path)
    pa = import_pyarrow("Parquet files" if kind == "parquet" else "Arrow/Feather files")
    import pyarrow.dataset as ds

    unified = None
    try:
        if kind == "parquet":
            dataset = ds.dataset(path, format="parquet")
            unified = _unified_schema(dataset)
            if unified is not None:
                dataset = ds.dataset(path, format="parquet", schema=unified)
        elif _is_feather_v1(path):
            import pyarrow.feather as feather

            dataset = ds.dataset(feather.read_table(path))
        else:
            dataset = ds.dataset(path, format="ipc")
        schema = dataset.schema
    except (pa.ArrowException, OSError) as exc:
        raise _error(f"{where} cannot be read as {kind} ({exc})") from None
    names = list(schema.names)
    if len(names) < 3:
        raise _error(f"{where} has {len(names)} column(s); ratings need 3 (user, item, rating)")
    positions = _resolve_columns(columns, names, len(names), where)
    wanted = [names[p] for p in positions]
    text = [name for name in wanted[:2] if pa.types.is_string(schema.field(name).type)
            or pa.types.is_large_string(schema.field(name).type)]
    if kind == "parquet" and text:
        # Text ids straight from Parquet's own dictionary pages: codes and the
        # distinct texts, never a string per rating in memory (a column of
        # 10^8 "user:000123" is 1.5 GB as strings, 0.4 GB as codes).
        try:
            dataset = ds.dataset(path, schema=unified, format=ds.ParquetFileFormat(
                read_options=ds.ParquetReadOptions(dictionary_columns=text)))
        except (pa.ArrowException, OSError) as exc:
            raise _error(f"{where} cannot be read as {kind} ({exc})") from None
    try:
        # Text ids: batches of up to a row group (not the scanner's 128 K rows),
        # so that few dictionaries are unified into one (20 M ratings: 156
        # dictionaries, 7.4 s; 20 dictionaries, 1.9 s).
        table = dataset.to_table(columns=wanted, **({"batch_size": 1 << 22} if text else {}))
    except (pa.ArrowException, OSError) as exc:
        raise _error(f"{where} cannot be read ({exc})") from None
    out = {}
    for role, name in zip(("user", "item"), wanted[:2]):
        out[role] = _columnar_ids(table.column(name), role, name, where, string_ids)
        table = table.drop_columns([name]) if name not in wanted[2:] else table
    out["rating"] = _columnar_ratings(table.column(wanted[2]), wanted[2], where)
    return out


def _unified_schema(dataset):
    """The schema that holds every file's columns, when the files of a directory differ.

    A dataset takes its first file's schema and casts the others to it: float32
    ratings there would round a later file's float64 ratings, int32 ids refuse
    a later file's larger ones. Widened instead (int32 and int64: int64;
    float32 and float64: float64). None when the files agree, or when no
    schema holds them all (the read then says which values do not fit).
    """
    import pyarrow as pa

    schemas = [fragment.physical_schema for fragment in dataset.get_fragments()]
    if all(schema.equals(schemas[0]) for schema in schemas[1:]):
        return None
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowException, TypeError):
        return None


def _first_null(column):
    import pyarrow.compute as pc

    return int(pc.index(pc.is_null(column), True).as_py())


def _columnar_ids(column, role, name, where, string_ids):
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_count:
        raise _error(f"{where}, row {_first_null(column)}: no {role} id (a null in column "
                     f"{name!r})")
    kind = column.type
    if pa.types.is_dictionary(kind):
        if pa.types.is_integer(kind.value_type) and not string_ids:
            column = column.cast(kind.value_type)
            kind = column.type
        else:
            codes, texts = _dictionary_parts(column)
            return _categorical(codes, texts, role, where)
    if pa.types.is_integer(kind) and not string_ids:
        return column.to_numpy()
    if pa.types.is_floating(kind) and not string_ids:
        values = column.to_numpy()
        integral = np.isfinite(values) & (values == np.round(values))
        integral &= np.abs(values) < 2.0**63
        if not integral.all():
            row = int(np.flatnonzero(~integral)[0])
            raise _error(f"{where}, row {row}: {role} id {values[row]!r} is not an integer "
                         "(ids are integers or text)")
        return values.astype(np.int64)
    if pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if not pa.types.is_string(kind) and not pa.types.is_large_string(kind):
            column = column.cast(pa.string())
        codes, texts = _dictionary_parts(pc.dictionary_encode(column))
        return _categorical(codes, texts, role, where)
    raise _error(f"{where}: column {name!r} ({kind}) cannot hold {role} ids; ids are "
                 "integers or strings")


def _categorical(codes, texts, role, where):
    from ._ratings_file import _text_ids

    def fail(row, message):
        return _error(f"{where}, row {row}: {message}")

    ids, _ = _text_ids(codes, texts, role, fail, keep_text=True)
    return ids


def _dictionary_parts(column):
    """(int32 codes, object array of the distinct values) of a dictionary column."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        chunks = [c for c in column.chunks]
        if not chunks:
            return np.zeros(0, np.int32), np.zeros(0, dtype=object)
        if len(chunks) > 1:
            column = pa.chunked_array(chunks).unify_dictionaries()
            chunks = column.chunks
        dictionary = chunks[0].dictionary
        codes = pa.chunked_array([c.indices for c in chunks]).to_numpy()
    else:
        dictionary = column.dictionary
        codes = column.indices.to_numpy()
    if codes.dtype.itemsize > 4 and len(dictionary) < 2**31:
        codes = codes.astype(np.int32)
    return codes, dictionary.to_numpy(zero_copy_only=False).astype(object)


def _columnar_ratings(column, name, where):
    import pyarrow as pa

    if column.null_count:
        raise _error(f"{where}, row {_first_null(column)}: no rating (a null in column "
                     f"{name!r})")
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
            or pa.types.is_decimal(kind)):
        raise _error(f"{where}: the rating column {name!r} holds {kind}, not numbers")
    if pa.types.is_decimal(kind):
        values = column.cast(pa.float64()).to_numpy()
    else:  # numpy widens faster than Arrow's cast (int8 stars: 0.7 -> 0.05 s at 10 M)
        values = column.to_numpy().astype(np.float64, copy=False)
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise _error(f"{where}, row {row}: rating {values[row]} is not a finite number")
    return values


_POWERS_OF_TEN = np.array([10**j for j in range(20)], dtype=np.uint64)


def _plain_length(ints):
    """Length of ``str(i)`` for each int64 ``i``, vectorized."""
    magnitude = np.abs(ints).astype(np.uint64)  # abs(-2**63) wraps, and casts to 2**63
    digits = np.searchsorted(_POWERS_OF_TEN, magnitude, side="right")
    np.maximum(digits, 1, out=digits)  # "0"
    return digits + (ints < 0)


def _arrow_ids(column, string_ids, table):
    """A text id column: an int64 array when every id is an integer written plainly
    (cast and checked in bulk, as the pandas path's rule), else (codes, texts)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not string_ids:
        trimmed = pc.utf8_trim_whitespace(column)
        try:
            ints = pc.cast(trimmed, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            ints = None  # text, empty ids, or beyond int64: decided per distinct id
        if ints is not None:
            # Written plainly iff as long as the integer's own text: "007", "+7"
            # and "-0" parse to the same integer but are longer.
            ints = ints.to_numpy()
            if np.array_equal(pc.binary_length(trimmed).to_numpy(), _plain_length(ints)):
                return ints
            del ints
        del trimmed
    codes, texts = _dictionary_parts(pc.dictionary_encode(column))
    texts = texts.tolist()
    if any(t.startswith(" ") for t in texts):
        # pandas' skipinitialspace: the spaces after a separator are not part
        # of an id, but those inside quotes are (" b" is not b), which pyarrow's
        # values no longer tell apart: a file with quotes is the pandas path's.
        from ._ratings_file import _contains_byte

        if _contains_byte(table, b'"'):
            raise _Refused
        texts = [t.lstrip(" ") for t in texts]  # _text_ids merges what then coincides
    return codes, np.array(texts, dtype=object)


#: pyarrow's complaint about an integer id that int32 cannot hold.
_INT32_OVERFLOW = re.compile(r"to int32: invalid value '-?[0-9]+'")

#: The longest line pyarrow's reader takes (its block size); pandas would read longer.
BLOCK_SIZE = 1 << 24


def _long_line(table):
    """The RatingsFileError naming the first line longer than :data:`BLOCK_SIZE`,
    found reading at most that much at a time."""
    from ._ratings_file import _OPENERS

    opener = _OPENERS.get(table.compression, open)
    with opener(table.path, "rb") as f:
        number = 0
        while True:
            line = f.readline(BLOCK_SIZE)
            if not line:
                break
            number += 1
            if len(line) >= BLOCK_SIZE and not line.endswith(b"\n"):
                break
            # (the rest of a long line is read on, never held whole)
    from .exceptions import RatingsFileError

    return RatingsFileError(f"{table.where}, line {number}: longer than {BLOCK_SIZE:,} "
                            "bytes; a ratings file has one short (user, item, rating) line "
                            "per rating", line=number)


# -- text ---------------------------------------------------------------------------

class _Refused(Exception):
    """pyarrow refused the file (or its values): pandas reads it and names the line."""


def read_delimited(table, header, positions, required=False, string_ids=False):
    """The user and item columns as (codes, texts) and the float64 ratings, by
    pyarrow's CSV reader; None when pyarrow is missing or cannot read this file
    exactly as pandas would (the caller then uses pandas).

    Parameters
    ----------
    table : mfcy._ratings_file._DelimitedFile
    header : bool
    positions : list of 3 int
    required : bool
        Raise ImportError when pyarrow is missing (``engine="pyarrow"``).
    """
    if required:
        import_pyarrow("text with engine='pyarrow'")
    elif not have_pyarrow():
        return None
    # What pyarrow's reader cannot do as pandas does: a separator of several
    # characters or runs of whitespace, other encodings, xz, blank lines before
    # the first (skip_rows would count them differently).
    if (table.sep is None or len(table.sep) != 1 or table.encoding != "utf-8-sig"
            or table.compression not in (None, "gzip", "bz2") or table.first_number != 1):
        return None
    try:
        return _read_csv_arrow(table, header, positions, string_ids)
    except _Refused:
        return None


def _read_csv_arrow(table, header, positions, string_ids, decide_integers=False):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    n_fields = len(table.fields)
    names = [f"f{j}" for j in range(n_fields)]
    # Ids as plain strings (Arrow's dictionary conversion in the reader is ~10x
    # slower): integers are then cast in bulk, other text dictionary-encoded.
    # Integer-looking ids (by the first data line) are parsed as int64 by the
    # reader, if no field of the file is written "007", "+7" or "-0" (the pandas
    # path's byte scan): else strings, checked below.
    from ._ratings_file import _may_hide_zeros, _refuse_long_lines

    sample = table.second[1] if header and table.second else table.fields
    as_int = not string_ids and all(
        p < len(sample) and sample[p].strip().lstrip("-").isdigit() for p in positions[:2])
    # The pandas path's limit on a line (pyarrow's own, a block, is not exact:
    # a line of one to two blocks may pass); the same pass looks for hidden zeros.
    _refuse_long_lines(table)
    try:
        if as_int and _may_hide_zeros(table):
            as_int = False
    except (OSError, EOFError, ValueError) as exc:  # a damaged file: pandas names it
        raise _Refused from exc
    table.skip_lines = 1 if header else 0

    def read(id_type):
        types = {names[positions[0]]: id_type, names[positions[1]]: id_type,
                 names[positions[2]]: pa.float64()}
        source = pa.OSFile(table.path, "rb")
        if table.compression:
            source = pa.CompressedInputStream(source, table.compression)
        # A byte-order mark is skipped by the reader itself (as utf-8-sig does).
        return pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=table.skip_lines,
                                           use_threads=True, block_size=BLOCK_SIZE),
            parse_options=pacsv.ParseOptions(delimiter=table.sep, quote_char='"',
                                              double_quote=True, escape_char=False,
                                              newlines_in_values=False,
                                              ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=[names[p] for p in positions],
                null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False,
                check_utf8=True))

    try:
        if not as_int:
            data = read(pa.string())
        else:
            # int32 first, widened below: the reader's int64 columns take more
            # time than the widening (benchmarks/README.md, reading); an id
            # beyond int32 means a second read as int64.
            try:
                data = read(pa.int32())
            except pa.ArrowInvalid as exc:
                if not _INT32_OVERFLOW.search(str(exc)):
                    raise
                data = read(pa.int64())
    except (pa.ArrowException, OSError, ValueError) as exc:
        if as_int and "straddl" not in str(exc):
            # An id that is not a plain integer after all: read them as text.
            return _read_csv_arrow(table, header, positions, string_ids=True,
                                   decide_integers=True)
        if "straddl" in str(exc):
            # A row longer than a block: pandas would tokenize all of it (a
            # 1 GB line of "a,a,a..." takes gigabytes), so it is refused here.
            raise _long_line(table) from None
        raise _Refused from None
    if data.num_rows == 0:
        raise _Refused
    parts = []
    for position in positions[:2]:
        column = data.column(names[position])
        if as_int:
            parts.append(column.to_numpy().astype(np.int64, copy=False))
        else:
            parts.append(_arrow_ids(column, string_ids and not decide_integers, table))
        data = data.drop_columns([names[position]])
        del column
    ratings = data.column(names[positions[2]])
    del data
    if ratings.null_count:
        raise _Refused
    ratings = ratings.to_numpy()
    if not np.isfinite(ratings).all():
        # pandas' messages for "nan", "inf" (and their line numbers).
        raise _Refused
    parts.append(np.ascontiguousarray(ratings, dtype=np.float64))
    return parts
