"""Ratings text files read without silent loss: sniffing, header detection, lossless ids.

The pieces :func:`mfcy.datasets.load_ratings` is made of for text files (CSV,
TSV, MovieLens ``u.data`` and ``ratings.dat``, compressed or not): the first
lines are sniffed (separator, header, compression, a byte-order mark), the
columns resolved by name or position, the table parsed by pandas (pyarrow's
reader, in :mod:`mfcy._readers`, builds on the same pieces), and id columns
turned into integer ids only when that loses nothing (``"001"`` stays text).
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import lzma
import os
import warnings
import zlib

import numpy as np

from .exceptions import RatingsFileError


#: Header names recognised for each role when ``columns`` is not given
#: (compared without case, spaces, "_" or "-").
_COLUMN_ALIASES = {
    "user": ("user", "userid", "uid", "users", "customer", "customerid", "reviewerid"),
    "item": ("item", "itemid", "iid", "items", "movie", "movieid", "product", "productid",
             "asin", "book", "isbn", "track", "trackid"),
    "rating": ("rating", "ratings", "score", "stars", "value", "bookrating"),
}

_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
_OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
#: Separators tried in this order on the first line when ``sep`` is not given.
_SEPARATORS = ("::", "\t", ",", ";", "|")
#: The longest first line read to sniff a file: a ratings line is a few dozen
#: characters, and a 1 GB line of "a,a,a,..." split into Python strings would
#: take 7 GB before any error.
_MAX_SNIFFED_LINE = 1 << 20
#: The longest line pandas is given: its tokenizer holds a line as Python
#: objects (about six bytes per byte of line) before any error could name it.
#: The same limit as pyarrow's reader (its block size).
_MAX_LINE = 1 << 24

#: The most fields a line may have. A ratings file has a few columns (user,
#: item, rating, a timestamp...); pandas parses every field of every line (to
#: catch a line with more than the first), about 40 bytes of memory a byte of
#: file for a file of short fields, so a wide file is refused before that.
_MAX_FIELDS = 1000


def refuse_unseekable(path, what):
    """A :class:`RatingsFileError` for a pipe, a FIFO or a terminal (``/dev/stdin``).

    A file is read more than once (its first lines sniffed, then scanned, then
    parsed): from a pipe each read would take bytes the next never sees.
    """
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # not there: the caller says so
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISBLK(mode)
            or os.fspath(path) == os.devnull):
        raise RatingsFileError(f"{os.fspath(path)!r} is not a regular file (a pipe or a "
                               f"terminal?): a {what} is read more than once; save it to a "
                               "file first")


def _compression(path):
    """Compression by content (magic bytes), not by the file's name."""
    with open(path, "rb") as f:
        head = f.read(6)
    for magic, method in _MAGIC:
        if head.startswith(magic):
            return method
    return None


def _is_blank(line, sep):
    # pandas skips lines of whitespace, but a line of separators is a row.
    if sep is None or sep.isspace() and len(sep) > 1:
        return line.strip() == ""
    return line.strip(" \t\r\n\f\v".replace(sep, "")) == ""


def _split(line, sep):
    return line.split() if sep is None else line.split(sep)


def _fields(line, sep):
    """The fields of one line as pandas' C parser splits them: a one-character
    separator inside double quotes belongs to its field (``a,x,"4,5"`` has 3)."""
    if sep is None or len(sep) > 1:
        return _split(line, sep)
    try:
        return next(csv.reader([line], delimiter=sep, quotechar='"', doublequote=True,
                               skipinitialspace=True, strict=False))
    except (csv.Error, StopIteration):  # pragma: no cover - csv is lenient with strict=False
        return _split(line, sep)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _normalise(name):
    return "".join(ch for ch in str(name).lower() if ch not in " _-\"'")


def _role_of(name):
    """``"user"``, ``"item"``, ``"rating"`` or None: what a header name says a column is."""
    key = _normalise(name)
    return next((role for role, names in _COLUMN_ALIASES.items() if key in names), None)


class _DelimitedFile:
    """A text table on disk: its first line sniffed, then read by pandas' C parser.

    Shared by :func:`load_ratings` and the command line's pairs files. Every
    error is a :class:`RatingsFileError` naming the file and, for one line,
    its number.

    Parameters
    ----------
    path : str or os.PathLike
    sep : str or None
        None: the first of ``::``, tab, ``,``, ``;``, ``|`` on the first
        line, else runs of whitespace.
    encoding : str
    what : str
        What the file is, for messages ("ratings file").
    """

    def __init__(self, path, sep=None, encoding="utf-8", what="ratings file"):
        path = os.fspath(path)
        self.path, self.where, self.what = path, repr(path), what
        #: The encoding as the user named it (for messages).
        self.encoding_name = encoding
        # Excel's "CSV UTF-8" starts with a byte-order mark: read as plain
        # utf-8 it would stay glued to the first header name (or the first id).
        try:
            utf8 = codecs.lookup(encoding).name == "utf-8"
        except (LookupError, TypeError):
            raise ValueError(f"unknown text encoding {encoding!r}") from None
        self.encoding = "utf-8-sig" if utf8 else encoding
        if not os.path.exists(path):
            raise FileNotFoundError(f"{what} {path!r} does not exist")
        if os.path.isdir(path):
            raise RatingsFileError(f"{path!r} is a directory, not a {what}")
        refuse_unseekable(path, what)
        self.compression = _compression(path)
        lines = self._first_lines(2)
        if not lines:
            raise RatingsFileError(f"{self.where} is empty")
        (self.first_number, first) = lines[0]
        if sep is None:
            sep = next((s for s in _SEPARATORS if s in first), None)
        elif not isinstance(sep, str) or not sep:
            raise ValueError(f"sep must be a non-empty string, got {sep!r}")
        elif sep != "::" and (len(sep) != 1 or not sep.isascii()):
            # pandas' C parser splits on one ASCII byte and pyarrow's on one
            # byte of UTF-8; "::" is read as ":" (see read).
            raise ValueError(f"sep={sep!r}: a separator is one ASCII character (',', tab, "
                             "';', '|', ' ', ...) or '::'; write the file with one of them")
        self.sep = sep
        #: The first non-blank line, as text.
        self.first_text = first
        #: The fields of the first non-blank line (a quoted separator is part of its field).
        self.fields = _fields(first, sep)
        if len(self.fields) > _MAX_FIELDS:
            raise RatingsFileError(
                f"{self.where}, line {self.first_number}: {len(self.fields):,} fields; a {what} "
                f"has a few columns, one {'pair' if what == 'pairs file' else 'rating'} a line "
                f"(at most {_MAX_FIELDS:,} fields: a matrix of users x items must be written "
                "as (user, item, rating) lines)", line=self.first_number)
        #: (number, fields) of the second non-blank line, or None.
        self.second = (lines[1][0], _fields(lines[1][1], sep)) if len(lines) > 1 else None
        self.skip_lines = None

    def _open(self):
        opener = _OPENERS.get(self.compression, open)
        return opener(self.path, "rt", encoding=self.encoding, newline="")

    def _first_lines(self, count):
        """[(1-based number, text)] of the first ``count`` non-blank lines.

        Each line is read up to :data:`_MAX_SNIFFED_LINE` characters: a longer
        one is a :class:`RatingsFileError`, not gigabytes of Python strings.
        """
        found = []
        try:
            with self._open() as f:
                number = 0
                while len(found) < count:
                    line = f.readline(_MAX_SNIFFED_LINE + 1)
                    if not line:
                        break
                    number += 1
                    if len(line) > _MAX_SNIFFED_LINE:
                        raise RatingsFileError(
                            f"{self.where}, line {number}: longer than "
                            f"{_MAX_SNIFFED_LINE:,} characters; a ratings file has one "
                            "short (user, item, rating) line per rating", line=number)
                    if line.strip():
                        found.append((number, line.rstrip("\r\n")))
        except UnicodeDecodeError as exc:
            raise RatingsFileError(f"{self.where} is not {self.encoding_name} text "
                                   f"({exc.reason} at byte {exc.start}); pass another "
                                   "encoding") from None
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise RatingsFileError(f"{self.where} cannot be read ({self.compression or 'plain'}"
                                   f" file: {exc})") from None
        return found

    def header_names(self):
        """The first line's fields as column names."""
        return [f.strip().strip('"') for f in self.fields]

    def read(self, header, positions=None, dtype=None):
        """Read the table with pandas.

        Parameters
        ----------
        header : bool
            Skip the first non-blank line.
        positions : list of int, optional
            Only these fields (by 0-based position); every field otherwise.
        dtype : dict or type, optional
            pandas dtypes by position (or one for all fields).

        Returns
        -------
        DataFrame
            Columns named by field position; one row per non-blank line.
        """
        import pandas as pd

        # pandas' C parser takes one-character separators only: "::" is read
        # as ":" with an empty field between any two real ones.
        doubled = self.sep == "::"
        read_sep = ":" if doubled else (r"\s+" if self.sep is None else self.sep)
        self.skip_lines = self.first_number if header else self.first_number - 1
        # skipinitialspace: "alice, Alien, 5" means the ids "alice" and "Alien".
        options = dict(sep=read_sep, header=None, skiprows=self.skip_lines, na_filter=False,
                       encoding=self.encoding, compression=self.compression, engine="c",
                       skipinitialspace=True)
        wanted = list(range(len(self.fields))) if positions is None else list(positions)
        if doubled:
            # Every field and the empty one inside each "::", so that a line
            # with more fields than the first, or a lone ":" inside a field
            # ("4:5"), is an error, not a field cut short.
            options["names"] = list(range(2 * len(self.fields) - 1))
            if isinstance(dtype, dict):
                dtype = {2 * p: t for p, t in dtype.items()}
        else:
            # Every field is parsed, so that a line with more fields than the
            # first (an unquoted separator inside an id...) is an error, not a
            # silent shift of the columns. Unwanted fields are dropped after.
            options["names"] = list(range(len(self.fields)))
        if dtype is not None:
            options["dtype"] = dtype
        try:
            with warnings.catch_warnings():
                # A column of integers that turn into text late in a large file
                # is read in chunks of two types; the ids are then decided as
                # text (_text_ids), which is right: pandas' advice is noise.
                warnings.simplefilter("ignore", pd.errors.DtypeWarning)
                frame = pd.read_csv(self.path, **options)
        except pd.errors.EmptyDataError:
            frame = None
        except pd.errors.ParserError as exc:
            raise _parser_error(exc, self.where, doubled) from None
        except UnicodeDecodeError as exc:
            raise RatingsFileError(f"{self.where} is not {self.encoding_name} text "
                                   f"({exc.reason}); pass another encoding") from None
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise RatingsFileError(f"{self.where} cannot be read ({exc})") from None
        if frame is None or len(frame) == 0:
            raise RatingsFileError(f"{self.where} has a header but no data lines")
        if doubled:
            # (A short line's missing fields are empty too: its rating is missing.)
            gaps = frame[options["names"][1::2]]
            lone = (gaps != "").any(axis=1).to_numpy()
            if lone.any():
                raise self.error(int(np.flatnonzero(lone)[0]),
                                 "a lone ':' inside a field (the fields are separated "
                                 "by '::')")
            frame = frame[[2 * p for p in wanted]]
            frame.columns = wanted
        elif positions is not None:
            frame = frame[wanted]
        return frame

    def line_of_row(self, row):
        """The file line number of data row ``row`` (after :meth:`read`)."""
        sep = ":" if self.sep == "::" else self.sep
        with self._open() as f:
            seen = -1
            inside = False  # in a quoted field that goes on past a line end
            for number, line in enumerate(f, start=1):
                if not inside:
                    if number <= self.skip_lines or _is_blank(line, sep):
                        continue
                    seen += 1
                    if seen == row:
                        return number
                if line.count('"') % 2:
                    inside = not inside
        return None  # pragma: no cover - the row exists

    def error(self, row, what):
        """A :class:`RatingsFileError` for data row ``row``, with its line number."""
        line = self.line_of_row(row)
        return RatingsFileError(f"{self.where}, line {line}: {what}", line=line)


def _resolve_columns(columns, names, n_fields, where):
    """Positions of the (user, item, rating) fields."""
    if columns is None:
        if names is not None:
            found = [next((j for j, name in enumerate(names) if _role_of(name) == role), None)
                     for role in ("user", "item", "rating")]
            if None not in found:
                return found
        columns = (0, 1, 2)
    if isinstance(columns, (str, bytes)) or len(columns) != 3:
        raise ValueError(f"columns must give 3 columns (user, item, rating) by name or "
                         f"position, got {columns!r}")
    return _resolve_positions(columns, ("user", "item", "rating"), names, n_fields, where)


def _resolve_positions(columns, roles, names, n_fields, where):
    """0-based positions of ``columns`` (header names or positions), one per role."""
    positions = []
    for role, column in zip(roles, columns):
        if isinstance(column, (int, np.integer)) and not isinstance(column, bool):
            if not 0 <= column < n_fields:
                raise RatingsFileError(f"{where}: no column at position {column} for the "
                                       f"{role}s (the first line has {n_fields} fields; "
                                       "positions count from 0)")
            positions.append(int(column))
        elif isinstance(column, str):
            if names is None:
                raise RatingsFileError(f"{where}: column {column!r} named for the {role}s, "
                                       "but the file has no header line")
            stripped = [str(n).strip() for n in names]
            if column.strip() not in stripped:
                raise RatingsFileError(f"{where}: no column named {column!r} for the {role}s "
                                       f"(the header has: {', '.join(stripped)})")
            positions.append(stripped.index(column.strip()))
        else:
            raise ValueError(f"a column is given by name (str) or position (int), got "
                             f"{column!r} for the {role}s")
    if len(set(positions)) != len(positions):
        raise ValueError(f"the {', '.join(roles)} columns must be different columns, "
                         f"got {list(columns)!r}")
    return positions


def _detect_header(table, rating_at):
    """Whether the first line is a header, and a note when that was a guess."""
    fields = table.fields
    if rating_at >= len(fields):
        return True, None  # too few fields: an error follows either way
    if _looks_numeric(fields[rating_at]):
        return False, None
    if any(_role_of(name) for name in table.header_names()):
        return True, None
    second = table.second
    shown = table.first_text if len(table.first_text) <= 60 else table.first_text[:57] + "..."
    if second is not None and rating_at < len(second[1]) and _looks_numeric(second[1][rating_at]):
        return True, (f"{table.where}: line {table.first_number} ({shown!r}) was read as a "
                      f"header: its rating field {fields[rating_at].strip()!r} is not a "
                      f"number and line {second[0]}'s is; if it is data, pass header=False "
                      "(mfcy fit --no-header)")
    # The errors on the first line then say what is wrong with it.
    return False, None


def _looks_numeric(text):
    """A number, or a number written with a decimal comma (``4,5``): data, not a name."""
    text = text.strip().strip('"')
    return _is_number(text) or (text.count(",") == 1 and _is_number(text.replace(",", ".")))


def _read_delimited_pandas(table, header, positions, string_ids):
    """(codes, texts) or integer ids of the user and item columns and the
    float64 ratings, by pandas' C parser."""
    import pandas as pd

    _refuse_long_lines(table)
    ids = positions[:2]
    frame = table.read(header, positions, {p: str for p in ids} if string_ids else None)
    # pandas reads a column of numbers as integers (or floats, or booleans):
    # lossless only if no id is written "007", "+7" or "7.0". Such columns are
    # read again, as text.
    again = [p for p in ids if (_may_hide_zeros(table) if frame[p].dtype.kind in "iu" else
                                pd.api.types.infer_dtype(frame[p], skipna=False) != "string")]
    if again:
        text = table.read(header, again, {p: str for p in again})
        for p in again:
            frame[p] = text[p]
        del text
    parts = []
    for position in ids:
        column = frame[position]
        if column.dtype.kind in "iu":
            parts.append(column.to_numpy())
        else:
            codes, texts = pd.factorize(column.to_numpy(dtype=object))
            parts.append((codes, np.asarray(texts, dtype=object)))
        del frame[position]
    parts.append(_file_ratings(frame[positions[2]], table.error))
    return parts


def _refuse_long_lines(table):
    """Refuse a line longer than :data:`_MAX_LINE`, naming it, in one streaming pass.

    Reads the (decompressed) file a few MB at a time, so a gigantic line is
    never held whole. The same pass answers :func:`_may_hide_zeros` (cached
    on ``table``): the pandas path asks both of the same bytes.
    """
    if getattr(table, "_lines_checked", False):
        return
    try:
        hidden, number = _scan_bytes(table, zeros=True, max_line=_MAX_LINE)
    except (OSError, EOFError, zlib.error, lzma.LZMAError):
        return  # a damaged file: the parser that follows names the problem
    if number is None:
        table._hidden_zeros = hidden
        table._lines_checked = True
        return
    one = ("a pairs file has one short (user, item) line per pair"
           if getattr(table, "what", "") == "pairs file" else
           "a ratings file has one short (user, item, rating) line per rating")
    raise RatingsFileError(f"{table.where}, line {number}: longer than {_MAX_LINE:,} bytes; "
                           f"{one}",
                           line=number)


#: Bytes of a text file read (and scanned) at a time: a few MB, whatever the file.
_SCAN_PIECE = 1 << 22


def _scan_bytes(table, zeros, max_line):
    """One compiled pass over the (decompressed) bytes of ``table``'s file.

    Returns
    -------
    (hidden, number)
        ``hidden``: whether a field is written like ``007``, ``+7`` or ``-0``
        (when ``zeros``; once seen, that check stops). ``number``: the line
        number of the first line longer than ``max_line`` bytes (the scan
        stops there), or None (``max_line < 0``: not checked).
    """
    from ._extensions import _layout

    opener = _OPENERS.get(table.compression, open)
    # A field also begins after the file's own separator, whatever it is.
    # (Encoded without a byte-order mark: "utf-8-sig" would prepend one.)
    encoding = "utf-8" if table.encoding == "utf-8-sig" else table.encoding
    separator = (table.sep or "").encode(encoding, errors="ignore")
    # [previous piece's last 3 bytes][piece][2 bytes of lookahead]: no copy
    # of the piece to see a field whole across two pieces.
    buf = bytearray(3 + _SCAN_PIECE + 2)
    buf[:3] = b"\n\n\n"
    view = memoryview(buf)
    hidden, number, run = False, 1, 0
    try:
        with opener(table.path, "rb") as f:
            got = f.readinto(view[3:3 + _SCAN_PIECE])
            while got:
                buf[3 + got:5 + got] = b"\n\n"
                seen, newlines, run = _layout.scan_text(buf, 3, 3 + got, run, max_line,
                                                        zeros and not hidden, False,
                                                        separator)
                hidden = hidden or seen
                number += newlines
                if max_line >= 0 and run > max_line:
                    return hidden, number
                if hidden and max_line < 0:
                    break
                buf[:3] = buf[got:got + 3]
                got = f.readinto(view[3:3 + _SCAN_PIECE])
            if zeros and not hidden:  # the file's last two bytes, before its end
                buf[3:5] = b"\n\n"
                hidden = _layout.scan_text(buf, 3, 3, 0, -1, True, True, separator)[0]
    finally:
        view.release()
    return hidden, None


def _contains_byte(table, byte):
    """Whether the (decompressed) bytes of ``table``'s file contain ``byte``."""
    opener = _OPENERS.get(table.compression, open)
    with opener(table.path, "rb") as f:
        while piece := f.read(_SCAN_PIECE):
            if byte in piece:
                return True
    return False


def _ascii_compatible(encoding):
    """Whether ``encoding`` writes digits, signs, separators and line ends as ASCII bytes."""
    probe = "0123456789+-.,;:|\t \"'\r\n#"
    encoded = probe.encode(encoding)
    return encoded.endswith(probe.encode("ascii")) and len(encoded) - len(probe) <= 3  # a BOM


def _may_hide_zeros(table):
    """Whether any field of the file is written like ``007``, ``+7`` or ``-0``
    (a compiled scan of the bytes: cheaper than parsing the ids as text)."""
    cached = getattr(table, "_hidden_zeros", None)
    if cached is not None:
        return cached
    # The scan reads bytes as ASCII: in another encoding (UTF-16, UTF-32) it
    # would miss them, so every id is then judged as text.
    found = (not _ascii_compatible(table.encoding)
             or _scan_bytes(table, zeros=True, max_line=-1)[0])
    table._hidden_zeros = found
    return found


def _text_ids(codes, texts, role, fail, keep_text):
    """The ids of one text column from its (codes, distinct texts) encoding.

    Integer ids (an int64 array) when every used text is an integer written
    canonically and ``keep_text`` is false; else a Categorical of the texts
    with sorted categories. Returns ``(ids, note)``, ``note`` saying why
    numeric-looking ids were kept as text (or None).
    """
    import pandas as pd

    texts = np.asarray(texts, dtype=object)
    codes = np.asarray(codes)
    if len(texts) and len(set(texts.tolist())) != len(texts):
        # Texts that coincide once pandas' skipped spaces are gone: one id.
        inverse, texts = pd.factorize(texts)
        codes = inverse[codes]
        texts = np.asarray(texts, dtype=object)
    used = np.bincount(codes, minlength=len(texts)) > 0
    stripped = [text.strip() for text in texts.tolist()]
    empty = np.array([not text for text in stripped], dtype=bool) & used
    if empty.any():
        row = int(np.flatnonzero(empty[codes])[0])
        raise fail(row, f"no {role} id (an empty or missing field)")
    note = None
    if not keep_text:
        values, note = _integer_ids([t for t, u in zip(stripped, used) if u], role)
        if values is not None:
            index = np.cumsum(used) - 1
            return values[index[codes]], None
    keep = np.flatnonzero(used)
    order = keep[np.argsort(texts[keep], kind="stable")]
    rank = np.full(len(texts), -1, dtype=np.int32 if len(texts) < 2**31 else np.int64)
    rank[order] = np.arange(len(order), dtype=rank.dtype)
    categories = pd.Index(texts[order], dtype=object)
    return pd.Categorical.from_codes(rank[codes], categories=categories), note


def _integer_ids(texts, role):
    """int64 (or uint64) ids from texts that all write an integer canonically.

    Returns ``(array, None)``, or ``(None, note)`` when the texts look numeric
    but reading them as integers would lose information (``007``, ``+7``,
    ``7.0``, or beyond 64 bits), or ``(None, None)`` for names.
    """
    values, odd = [], None
    for text in texts:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or str(value) != text:
            if not _is_number(text):
                return None, None
            odd = text if odd is None else odd
        values.append(value)
    if odd is None:
        for dtype in (np.int64, np.uint64):
            try:
                return np.array(values, dtype=dtype), None
            except OverflowError:
                pass
        odd = str(max(values, key=abs))
    return None, (f"{role} ids kept as text: {shown(odd)} is not an integer written plainly "
                  "(ids such as '001' and '1' stay two different ids)")


def shown(text, limit=60):
    """``repr(text)``, cut to about ``limit`` characters: a field echoed in a message
    (a 10 MB field is not a one-line message)."""
    text = str(text)
    return repr(text) if len(text) <= limit else repr(text[:limit - 3]) + "..."


def _parser_error(exc, where, doubled=False):
    """``doubled``: the file's separator is ``::``, read as ``:`` (pandas counts those fields)."""
    import re

    message = str(exc)
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if found:
        expected, line, saw = map(int, found.groups())
        if doubled:
            return RatingsFileError(
                f"{where}, line {line}: more ':' than the first line has (a lone ':' inside "
                f"a field, or more than its {(expected + 1) // 2} '::'-separated fields)",
                line=line)
        return RatingsFileError(f"{where}, line {line}: {saw} fields where the first line "
                                f"has {expected}", line=line)
    return RatingsFileError(f"{where} is malformed: {message.strip()}")


def _file_ratings(column, fail):
    import pandas as pd

    values = column.to_numpy()
    if values.dtype.kind not in "iuf":
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(np.isnan(numbers))
        if len(bad):
            text = str(values[bad[0]]).strip()
            raise fail(int(bad[0]), "no rating (an empty or missing field)" if not text else
                       f"rating {shown(text)} is not a number")
        values = numbers
    values = values.astype(np.float64, copy=False)
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise fail(row, f"rating {float(values[row])} is not a finite number")
    return values
