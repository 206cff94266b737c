"""mfcy.datasets: the generator and load_ratings on every file form it accepts."""

import bz2
import gzip
import lzma
import re

import numpy as np
import pandas as pd
import pytest

from mfcy.datasets import RatingsFileError, load_ratings, make_low_rank

# -- make_low_rank ---------------------------------------------------------------------


def test_make_low_rank_matrix_is_low_rank_with_nan_for_unknown():
    R = make_low_rank(60, 40, 3, 0.3, random_state=0)
    assert R.shape == (60, 40)
    observed = ~np.isnan(R)
    assert 0.25 < observed.mean() < 0.35
    # The same draw with density 1 is the full matrix, of rank 3.
    full = make_low_rank(60, 40, 3, 1.0, random_state=0)
    assert not np.isnan(full).any()
    assert np.linalg.matrix_rank(full) == 3
    np.testing.assert_array_equal(R[observed], full[observed])


def test_make_low_rank_seed_noise_and_frame():
    a = make_low_rank(20, 10, 2, 0.5, random_state=7)
    np.testing.assert_array_equal(a, make_low_rank(20, 10, 2, 0.5, random_state=7))
    assert not np.array_equal(np.isnan(a), np.isnan(make_low_rank(20, 10, 2, 0.5,
                                                                  random_state=8)))
    noisy = make_low_rank(20, 10, 2, 1.0, noise=0.5, random_state=7)
    clean = make_low_rank(20, 10, 2, 1.0, random_state=7)
    assert 0.3 < np.std(noisy - clean) < 0.7
    frame = make_low_rank(20, 10, 2, 0.5, random_state=7, as_frame=True)
    assert list(frame.columns) == ["user", "item", "rating"]
    assert len(frame) == int((~np.isnan(a)).sum())
    np.testing.assert_array_equal(frame["rating"], a[frame["user"], frame["item"]])


@pytest.mark.parametrize("kwargs,message", [
    (dict(n_users=0), "n_users"), (dict(n_items=2.5), "n_items"),
    (dict(n_factors=True), "n_factors"), (dict(density=0), "density"),
    (dict(density=1.5), "density"), (dict(noise=-1), "noise"),
])
def test_make_low_rank_rejects_bad_arguments(kwargs, message):
    args = dict(n_users=5, n_items=4, n_factors=2, density=0.5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        make_low_rank(**args)


# -- load_ratings: formats ---------------------------------------------------------------

ROWS = [(1, 10, 4.0), (1, 20, 3.5), (2, 10, 5.0), (30, 7, 1.0)]


def write(path, text, opener=open):
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


def check_rows(frame, rows=ROWS):
    assert list(frame.columns) == ["user", "item", "rating"]
    assert frame["rating"].dtype == np.float64
    assert [tuple(r) for r in frame.itertuples(index=False)] == [tuple(r) for r in rows]


@pytest.mark.parametrize("name,text", [
    ("ratings.csv", "userId,movieId,rating,timestamp\n" +
     "".join(f"{u},{i},{r},978300760\n" for u, i, r in ROWS)),
    ("plain.csv", "".join(f"{u},{i},{r}\n" for u, i, r in ROWS)),
    ("ratings.tsv", "".join(f"{u}\t{i}\t{r}\n" for u, i, r in ROWS)),
    ("u.data", "".join(f"{u}\t{i}\t{r:g}\t881250949\n" for u, i, r in ROWS)),
    ("ratings.dat", "".join(f"{u}::{i}::{r:g}::978300760\n" for u, i, r in ROWS)),
    ("semi.txt", "user;item;rating\n" + "".join(f"{u};{i};{r}\n" for u, i, r in ROWS)),
    ("spaces.txt", "".join(f"{u}  {i} {r}\n" for u, i, r in ROWS)),
    ("crlf.csv", "".join(f"{u},{i},{r}\r\n" for u, i, r in ROWS)),
])
def test_load_ratings_reads_each_format(tmp_path, name, text):
    frame = load_ratings(write(tmp_path / name, text))
    check_rows(frame)
    assert frame["user"].dtype == np.int64 and frame["item"].dtype == np.int64


@pytest.mark.parametrize("opener,suffix", [(gzip.open, ".gz"), (bz2.open, ".bz2"),
                                           (lzma.open, ".xz"), (gzip.open, ".csv")])
def test_load_ratings_decompresses_by_content(tmp_path, opener, suffix):
    # The last case is a gzip file named .csv: recognised by its bytes, not its name.
    text = "user\titem\trating\n" + "".join(f"{u}\t{i}\t{r}\n" for u, i, r in ROWS)
    check_rows(load_ratings(write(tmp_path / f"ratings{suffix}", text, opener)))


def test_header_is_detected_or_declared(tmp_path):
    with_header = write(tmp_path / "h.csv", "a,b,c\n1,10,4\n")
    with pytest.warns(UserWarning, match=r"line 1 \('a,b,c'\) was read as a header"):
        assert len(load_ratings(with_header)) == 1
    without = write(tmp_path / "n.csv", "1,10,4\n2,10,5\n")
    assert len(load_ratings(without)) == 2
    # Declared: a header whose rating field looks numeric, and a file without one.
    numeric_header = write(tmp_path / "nh.csv", "user,item,5\n1,10,4\n")
    assert len(load_ratings(numeric_header, header=True)) == 1
    assert len(load_ratings(without, header=False)) == 2
    # A header line declared absent is data: its rating "c" is then an error.
    with pytest.raises(RatingsFileError, match="line 1: rating 'c' is not a number"):
        load_ratings(with_header, header=False)


def test_columns_by_name_position_and_alias(tmp_path):
    path = write(tmp_path / "r.csv", "ts,rating,movie_id,UserID\n0,4,10,1\n0,3.5,20,1\n")
    # Aliases in any case and spelling: rating, movie_id, UserID.
    check_rows(load_ratings(path), ROWS[:2])
    check_rows(load_ratings(path, columns=("UserID", "movie_id", "rating")), ROWS[:2])
    check_rows(load_ratings(path, columns=(3, 2, 1)), ROWS[:2])
    swapped = load_ratings(path, columns=("movie_id", "UserID", "rating"))
    assert swapped["user"].tolist() == [10, 20]
    # Without recognisable names: the first three columns.
    plain = write(tmp_path / "p.csv", "a,b,c,d\n1,10,4,0\n")
    with pytest.warns(UserWarning, match="read as a header"):
        check_rows(load_ratings(plain), ROWS[:1])


@pytest.mark.parametrize("columns,message", [
    (("user", "item", "stars"), r"no column named 'stars' for the ratings \(the header has: "
                                r"user, item, rating\)"),
    ((0, 1, 7), "no column at position 7 for the ratings"),
    ((0, 0, 2), "different columns"),
    (("user", "item"), "3 columns"),
])
def test_unknown_or_bad_columns_are_clear_errors(tmp_path, columns, message):
    path = write(tmp_path / "r.csv", "user,item,rating\n1,10,4\n")
    with pytest.raises(ValueError, match=message):
        load_ratings(path, columns=columns)


def test_a_column_named_in_a_file_without_header(tmp_path):
    path = write(tmp_path / "r.csv", "1,10,4\n")
    with pytest.raises(RatingsFileError, match="no header line"):
        load_ratings(path, columns=("user", 1, 2), header=False)


def test_string_ids_and_integer_ids(tmp_path):
    path = write(tmp_path / "s.csv", "user,item,rating\nalice,The Matrix,5\nbob,007,3\n")
    frame = load_ratings(path)
    assert frame["user"].tolist() == ["alice", "bob"]
    # One non-integer id makes the column text: "007" is kept as written.
    assert frame["item"].tolist() == ["The Matrix", "007"]
    ints = write(tmp_path / "i.csv", "7,1,5\n2,3,4\n")
    assert load_ratings(ints)["user"].tolist() == [7, 2]
    assert load_ratings(ints, string_ids=True)["user"].tolist() == ["7", "2"]
    big = write(tmp_path / "b.csv", f"{2**40},-5,5\n")
    assert load_ratings(big)["user"].tolist() == [2**40]
    assert load_ratings(big)["item"].tolist() == [-5]


def test_spaces_after_separators_are_not_part_of_ids(tmp_path):
    path = write(tmp_path / "s.csv", "user, item, rating\nalice, The Matrix, 5\nbob,Up,  3\n")
    frame = load_ratings(path)
    assert frame["user"].tolist() == ["alice", "bob"]
    assert frame["item"].tolist() == ["The Matrix", "Up"]
    assert frame["rating"].tolist() == [5.0, 3.0]


@pytest.mark.parametrize("engine", ["pyarrow", "pandas"])
@pytest.mark.parametrize("sep", ["§", ";;", "\t\t"])
def test_a_separator_that_is_not_one_ascii_character_is_refused(tmp_path, sep, engine):
    # Neither parser splits on such a separator: pandas' C parser takes one
    # ASCII byte, pyarrow's one byte of UTF-8. The error was pandas' own.
    pytest.importorskip(engine)
    path = write(tmp_path / "s.txt", f"1{sep}007{sep}4\n1{sep}7{sep}2\n")
    with pytest.raises(ValueError, match=re.escape(f"sep={sep!r}: a separator is one ASCII")):
        load_ratings(path, sep=sep, engine=engine)
    # "::" (MovieLens' ratings.dat) stays the one separator of two characters.
    assert load_ratings(write(tmp_path / "d.dat", "1::7::4\n"), sep="::")["item"].tolist() == [7]


def test_blank_lines_are_skipped(tmp_path):
    path = write(tmp_path / "b.csv", "\nuser,item,rating\n\n1,10,4\n   \n1,20,3.5\n\n")
    check_rows(load_ratings(path), ROWS[:2])


# -- load_ratings: malformed lines carry their line number ------------------------------

MALFORMED = [
    # (file text, line number, message)
    ("user,item,rating\n1,10,4\n2,20\n", 3, "no rating"),
    ("user,item,rating\n1,10,4\n2,20,4,extra\n", 3, "4 fields where the first line has 3"),
    ("user,item,rating\n1,10,4\n\n2,20,five\n", 4, "rating 'five' is not a number"),
    ("1,10,4\n2,20,nan\n", 2, "rating 'nan' is not a number"),
    ("1,10,4\n2,20,inf\n", 2, "rating inf is not a finite number"),
    ("1,10,4\n1,10,4\n,20,3\n", 3, "no user id"),
    ("a,x,4\nb,,3\n", 2, "no item id"),
    ("1\t10\t4\n2\t20\tN/A\n", 2, "rating 'N/A' is not a number"),
    ("1::10::4\n2::20::x\n", 2, "rating 'x' is not a number"),
    # Found by the fuzz tests: a short first data line of a "::" file made pandas
    # read other columns (a KeyError or AttributeError escaped); an integral
    # float id beyond int64 was cast to garbage (a RuntimeWarning); such ids
    # ("1e20", "2.5") are now text, kept as written (test_ids_are_read_losslessly).
    ("user::item::rating\n0::0\n0::0::1\n", 2, r"no rating \(an empty or missing field\)"),
    ("user::item::rating\n0::\n0::0::1\n", 2, r"no rating \(an empty or missing field\)"),
    # Found by an adversarial pass: a lone ":" inside a field of a "::" file
    # cut the field short ("4:5" was the rating 4).
    ("1::7::3\n1::8::4:5\n2::9::2\n", 2, "more ':' than the first line has"),
    ("1::7::3::100\n1::8:9::4::200\n", 2, "more ':' than the first line has"),
    ("1::7::3::100\n1::8::4:5::200\n", 2, "more ':' than the first line has"),
    ("1::7::3::100\n1::8::4::200::9\n", 2, r"more ':' than the first line has \(a lone ':' "
                                            r"inside a field, or more than its 4 "
                                            r"'::'-separated fields\)"),
    ("1::7::3::100\n1::8:4::200\n", 2, "a lone ':' inside a field"),
    # Found by an adversarial pass: pandas parses every field of every line,
    # ~40 bytes a byte of such a file, before an error in its last line.
    ("\n1,2,3," + ",".join(["0"] * 1000) + "\n", 2, "1,003 fields; a ratings file has a few "
                                                   "columns"),
    # A quoted field over two lines is one row (the line numbers were one short).
    ('a,x,3\nb,"m\nl",4\nc,z,nan\n', 4, "rating 'nan' is not a number"),
    ('a,"x ""y""",3\nb,"m\nl ""q""\n",4\nc,z,5\nd,z,\n', 6, "no rating"),
]


@pytest.mark.parametrize("text,line,message", MALFORMED)
def test_malformed_line_error_names_its_line(tmp_path, text, line, message):
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(RatingsFileError, match=f"line {line}: {message}") as info:
        load_ratings(path)
    assert info.value.line == line
    assert "bad.txt" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_malformed_line_in_a_compressed_file(tmp_path):
    text = "user\titem\trating\n" + "1\t2\t3\n" * 1000 + "1\t2\toops\n"
    path = write(tmp_path / "big.tsv.gz", text, gzip.open)
    with pytest.raises(RatingsFileError, match="line 1002: rating 'oops' is not a number"):
        load_ratings(path)


def test_files_that_are_not_ratings(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_ratings(tmp_path / "missing.csv")
    with pytest.raises(RatingsFileError, match="directory"):
        load_ratings(tmp_path)
    with pytest.raises(RatingsFileError, match="empty"):
        load_ratings(write(tmp_path / "empty.csv", "\n\n"))
    with pytest.raises(RatingsFileError, match="no data lines"):
        load_ratings(write(tmp_path / "header.csv", "user,item,rating\n"))
    with pytest.raises(RatingsFileError, match="needs at least 3"):
        load_ratings(write(tmp_path / "two.csv", "1,2\n3,4\n"))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("café,1,4\n".encode("latin-1"))
    with pytest.raises(RatingsFileError, match="not utf-8 text"):
        load_ratings(latin)
    assert load_ratings(latin, encoding="latin-1")["user"].tolist() == ["café"]
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(b"1,2,3\n" * 1000)[:50])
    with pytest.raises(RatingsFileError, match="cannot be read"):
        load_ratings(broken)


def test_loaded_frame_fits_like_pairs(tmp_path):
    from mfcy import MatrixFactorization

    frame = make_low_rank(30, 20, 3, 0.4, random_state=1, as_frame=True)
    path = tmp_path / "r.csv"
    frame.to_csv(path, index=False)
    loaded = load_ratings(path)
    pd.testing.assert_frame_equal(loaded, frame)
    a = MatrixFactorization(n_factors=3, n_epochs=3, random_state=0, n_threads=1).fit(loaded)
    b = MatrixFactorization(n_factors=3, n_epochs=3, random_state=0, n_threads=1).fit(
        frame[["user", "item"]].to_numpy(), frame["rating"].to_numpy())
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


def test_a_pipe_is_refused_with_a_clear_error(tmp_path):
    # Found by an adversarial pass: a FIFO (or `cat f | mfcy fit /dev/stdin`) was
    # read several times, each read eating bytes, and the error was about a
    # "header but no data lines" or a short first line.
    # (The refusal must not open the FIFO: that would wait for a writer forever.)
    import os

    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    fifo = tmp_path / "ratings.fifo"
    os.mkfifo(fifo)
    with pytest.raises(RatingsFileError, match="is not a regular file .* save it to a file"):
        load_ratings(fifo)
