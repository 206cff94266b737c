"""The compiled passes behind reading large files, against plain oracles.

* :func:`mfcy._layout.scan_text` (through ``_may_hide_zeros`` and
  ``_refuse_long_lines``) against the numpy byte scan it replaced and a line
  split, on random bytes cut into tiny pieces;
* :func:`mfcy._layout.encode_dense_ids` (the lookup table) against
  ``np.unique`` (the sort path of ``_encode``) on random ids of every width,
  negative ones, ranges too wide for a table, strided columns;
"""

import gzip

import numpy as np
import pytest

from mfcy import _ratings_file
from mfcy._input import _encode
from mfcy._layout import encode_dense_ids, scan_text
from mfcy._ratings_file import RatingsFileError

_FIELD_STARTS = np.zeros(256, dtype=bool)
_FIELD_STARTS[np.frombuffer(b",\t;|: \"'\r\n\xbf", dtype=np.uint8)] = True


def hidden_zeros_oracle(data):
    """The numpy scan ``_may_hide_zeros`` was before it was compiled (one piece)."""
    b = np.frombuffer(b"\n" + data + b"\n\n", dtype=np.uint8)
    zero, plus, minus, dot = (np.uint8(ord(c)) for c in "0+-.")
    c1 = b[1:-2]
    at = np.flatnonzero((c1 == zero) | (c1 == plus) | (c1 == minus))
    at = at[_FIELD_STARTS[b[at]]]
    first, second, third = b[at + 1], b[at + 2], b[at + 3]
    digit = (second >= zero) & (second <= zero + 9)
    odd = (((first == zero) & digit) | (first == plus)
           | ((first == minus) & (second == zero) & (third != dot)))
    return bool(odd.any())


def long_line_oracle(data, max_line):
    for number, line in enumerate(data.split(b"\n"), start=1):
        if len(line) > max_line:
            return number
    return None


class RawFile:
    """What the scans read of a ``_DelimitedFile`` (which would sniff the bytes as text)."""

    sep, encoding = ",", "utf-8"

    def __init__(self, path, compressed):
        self.path, self.where = str(path), repr(str(path))
        self.compression = "gzip" if compressed else None


ALPHABET = np.frombuffer(b"0123456789000,,,\n\n+-.. \"';:|\t\r\xbf\xefab", dtype=np.uint8)


def random_bytes(rng, n):
    return ALPHABET[rng.integers(0, len(ALPHABET), n)].tobytes()


@pytest.mark.parametrize("piece", [1, 2, 3, 5, 64, 1 << 22])
@pytest.mark.parametrize("compressed", [False, True])
def test_the_byte_scan_is_the_numpy_scan_and_a_line_split(tmp_path, monkeypatch, rng, piece,
                                                          compressed):
    monkeypatch.setattr(_ratings_file, "_SCAN_PIECE", piece)
    path = tmp_path / "r.csv"
    seen = {True: 0, False: 0}
    for trial in range(60):
        n = int(rng.integers(1, 300))
        data = b"1,2,3\n" + random_bytes(rng, n)
        if trial % 3 == 0:  # mostly clean data: digits, commas, line ends
            data = b"1,2,3\n" + bytes(rng.choice(list(b"123456789,\n"), n).astype(np.uint8))
            if trial % 2:
                data += rng.choice([b"\n0,05,3\n", b"\n-0,1,2", b"\n-0.5,1,2", b",+3", b"a0"])
        (gzip.open if compressed else open)(path, "wb").write(data)
        table = RawFile(path, compressed)
        want = hidden_zeros_oracle(data)
        assert _ratings_file._may_hide_zeros(table) == want
        seen[want] += 1
        for max_line in (0, 3, 7, 40):
            table = RawFile(path, compressed)
            monkeypatch.setattr(_ratings_file, "_MAX_LINE", max_line)
            expected = long_line_oracle(data, max_line)
            if expected is None:
                _ratings_file._refuse_long_lines(table)
                assert table._hidden_zeros == want  # the same pass answered both
            else:
                with pytest.raises(RatingsFileError, match=f"line {expected}: longer than"):
                    _ratings_file._refuse_long_lines(table)
    assert seen[True] and seen[False]


def test_scan_text_checks_its_margins():
    with pytest.raises(ValueError, match="three bytes before the piece"):
        scan_text(bytearray(b"\n\n\n12"), 3, 5, 0, -1, True, True)
    with pytest.raises(ValueError, match="three bytes before the piece"):
        scan_text(bytearray(b"\n\n12\n\n"), 2, 4, 0, -1, True, True)
    assert scan_text(bytearray(b"\n\n\n\n\n"), 3, 3, 4, 10, True, True) == (False, 0, 4)
    # "-0" then "." in the next piece: no hit before the next piece is seen.
    assert scan_text(bytearray(b"\n\n\n,-0\n\n"), 3, 6, 0, -1, True, False)[0] is False
    assert scan_text(bytearray(b"\n\n\n,-0\n\n"), 3, 6, 0, -1, True, True)[0] is True


def test_scan_text_takes_separator_bytes_above_127():
    # Found by UBSan: such a byte (a BOM's 0xEF) indexed the table at -17.
    text = bytearray(b"\n\n\n1\xa7007\n\n")
    assert scan_text(text, 3, len(text) - 2, 0, -1, True, True)[0] is False
    assert scan_text(text, 3, len(text) - 2, 0, -1, True, True, b"\xa7")[0] is True
    assert scan_text(text, 3, len(text) - 2, 0, -1, True, True, b"\xef\xbb\xbf")[0] is False


ODD_SEPARATORS = ["#", "/", "~", "^", "!", "=", "&", "*", "@", "\x1f"]


@pytest.mark.parametrize("engine", ["pyarrow", "pandas"])
def test_ids_written_like_007_are_seen_after_any_separator(tmp_path, engine):
    # Found by an adversarial pass: after a separator outside the scan's own
    # set, "007" and "+7" were read as the integer 7 (merged with "7").
    pytest.importorskip(engine)
    from mfcy.datasets import load_ratings

    # No odd field at a line's start: the scan must see them after the separator.
    lines = [("1", "007", "4"), ("1", "7", "2"), ("2", "+7", "5"), ("2", "7", "1")]
    expected = load_ratings(_write(tmp_path / "comma.csv", ",", lines), engine=engine)
    assert expected["item"].tolist() == ["007", "7", "+7", "7"]
    for n, sep in enumerate(ODD_SEPARATORS):
        got = load_ratings(_write(tmp_path / f"odd{n}.txt", sep, lines), sep=sep, engine=engine)
        assert got["item"].tolist() == expected["item"].tolist(), sep
        assert got["user"].tolist() == expected["user"].tolist(), sep


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
@pytest.mark.parametrize("engine", ["pyarrow", "pandas"])
def test_ids_written_like_007_are_seen_in_any_encoding(tmp_path, encoding, engine):
    pytest.importorskip(engine)
    from mfcy.datasets import load_ratings

    lines = [("1", "007", "4"), ("1", "7", "2"), ("2", "+7", "5")]
    expected = load_ratings(_write(tmp_path / "utf8.csv", ",", lines), engine=engine)
    got = load_ratings(_write(tmp_path / "other.csv", ",", lines, encoding), encoding=encoding,
                       engine=engine)
    assert got["item"].tolist() == expected["item"].tolist() == ["007", "7", "+7"]
    assert got["rating"].tolist() == [4.0, 2.0, 5.0]


def test_a_quoted_leading_space_is_part_of_the_id_with_both_engines(tmp_path):
    # Found by an adversarial pass: pyarrow's reader merged the quoted " b"
    # with b; pandas (skipinitialspace) drops only the spaces outside quotes.
    pytest.importorskip("pyarrow")
    from mfcy.datasets import load_ratings

    path = tmp_path / "q.csv"
    path.write_text('a,x,3\na," b",5\nb, b,6\nb,b,1\nc," 7",2\n')
    for engine in ("pyarrow", "pandas"):
        got = load_ratings(path, engine=engine)
        assert got["item"].tolist() == ["x", " b", "b", "b", " 7"], engine
        assert got["rating"].tolist() == [3.0, 5.0, 6.0, 1.0, 2.0], engine


def test_both_engines_refuse_the_same_long_lines(tmp_path, monkeypatch):
    # Found by an adversarial pass: pyarrow's reader took a line of one to two
    # of its blocks (16-32 MiB) that the pandas path refuses.
    pytest.importorskip("pyarrow")
    from mfcy.datasets import load_ratings

    monkeypatch.setattr(_ratings_file, "_MAX_LINE", 1000)
    path = tmp_path / "long.csv"
    path.write_text("1,7,3\n" * 3 + "1," + "a" * 5000 + ",4\n" + "1,7,3\n" * 3)
    for engine in ("pyarrow", "pandas"):
        with pytest.raises(RatingsFileError, match="line 4: longer than 1,000 bytes"):
            load_ratings(path, engine=engine)


def _write(path, sep, lines, encoding="utf-8"):
    text = sep.join(("user", "item", "rating")) + "\n" + "".join(
        sep.join(line) + "\n" for line in lines)
    path.write_bytes(text.encode(encoding))
    return path


def unique_oracle(ids):
    uniques, inverse = np.unique(ids, return_inverse=True)
    return uniques, inverse


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                   np.uint32, np.uint64])
@pytest.mark.parametrize("low", [0, -1000, 10**6 + 7, "max"])
def test_the_lookup_and_the_sort_give_the_same_codes_and_ids(rng, dtype, low):
    info = np.iinfo(dtype)
    for n, span in ((1, 1), (50, 3), (2000, 500), (3000, 40_000)):
        start = info.max - span if low == "max" else low
        if start < info.min or start + span > info.max:
            continue
        ids = rng.integers(0, span, n).astype(dtype) + np.array(start).astype(dtype)
        uniques, codes = _encode(ids)
        want_uniques, want_codes = unique_oracle(ids)
        np.testing.assert_array_equal(uniques, want_uniques)
        np.testing.assert_array_equal(codes, want_codes)
        assert codes.dtype == np.int32
        assert uniques.dtype == (np.uint64 if dtype == np.uint64 else np.int64)
        if dtype in (np.int32, np.int64):
            uniques, codes = encode_dense_ids(ids, 2 * n + 1_000_001)
            np.testing.assert_array_equal(uniques, want_uniques)
            np.testing.assert_array_equal(codes, want_codes)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_the_lookup_reads_strided_and_reversed_columns(rng, dtype):
    pairs = rng.integers(-500, 500, (4000, 3)).astype(dtype)
    for column in (pairs[:, 1], pairs[::-1, 2], pairs[::3, 0]):
        uniques, codes = encode_dense_ids(column, 10_000)
        want_uniques, want_codes = unique_oracle(column)
        np.testing.assert_array_equal(uniques, want_uniques)
        np.testing.assert_array_equal(codes, want_codes)


def test_huge_ranges_fall_back_to_the_sort(rng):
    for ids in (np.array([0, 10**12, 5, 10**12], dtype=np.int64),
                np.array([np.iinfo(np.int64).min, 0, np.iinfo(np.int64).max]),
                np.array([2**64 - 1, 0, 2**63], dtype=np.uint64),
                rng.integers(-2**62, 2**62, 1000)):
        assert ids.dtype != np.int64 or encode_dense_ids(ids, 2 * len(ids) + 1_000_001) is None
        uniques, codes = _encode(ids)
        want_uniques, want_codes = unique_oracle(ids)
        np.testing.assert_array_equal(uniques, want_uniques)
        np.testing.assert_array_equal(codes, want_codes)

