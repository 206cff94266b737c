"""Reading ratings files without silent data loss, through pandas or pyarrow.

A byte-order mark, an ambiguous first line, ids with leading zeros and
duplicate pairs each changed a result silently; Parquet, Arrow and pyarrow's
CSV reader must give what the pandas path gives.
"""

import builtins
import gzip
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from mfcy import MatrixFactorization, build_info
from mfcy.datasets import RatingsFileError, load_ratings

pa = pytest.importorskip("pyarrow")  # the test extra installs it: CI runs these
import pyarrow.feather  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

ENGINES = ["pandas", "pyarrow"]


def write(path, text, opener=open, bom=False):
    with opener(path, "wt", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        f.write(text)
    return path


def quiet_load(path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say about these files
        return load_ratings(path, **options)


# -- a UTF-8 byte-order mark (Excel's "CSV UTF-8") ------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_a_byte_order_mark_is_not_part_of_the_first_name_or_id(tmp_path, engine):
    # With the mark glued to "item", the item column was not recognised and the
    # first three columns were taken in order: users and items silently swapped.
    path = write(tmp_path / "excel.csv", "item,user,rating\n10,1,4\n20,1,3\n", bom=True)
    frame = quiet_load(path, engine=engine)
    assert frame["user"].tolist() == [1, 1] and frame["item"].tolist() == [10, 20]
    # Named columns find the first name too.
    named = quiet_load(path, columns=("user", "item", "rating"), engine=engine)
    assert named["item"].tolist() == [10, 20]
    # Without a header the first id is an integer, not the text "\ufeff1".
    data = write(tmp_path / "data.csv", "1,10,4\n2,10,5\n", bom=True)
    assert quiet_load(data, engine=engine)["user"].tolist() == [1, 2]
    packed = write(tmp_path / "bom.csv.gz", "userId,movieId,rating\n1,10,4\n", gzip.open,
                   bom=True)
    assert quiet_load(packed, engine=engine)["user"].tolist() == [1]


# -- the first line: header or data, never a data row dropped silently ----------------

@pytest.mark.parametrize("engine", ENGINES)
def test_a_quoted_decimal_comma_line_is_data_not_a_header(tmp_path, engine):
    # Split without its quotes, the rating field was '"4' (not a number): the
    # line was taken as a header and dropped without a word.
    path = write(tmp_path / "comma.csv", 'a,x,"4,5"\nb,y,"3,5"\n')
    with pytest.raises(RatingsFileError, match=r"line 1: rating '4,5' is not a number"):
        load_ratings(path, engine=engine)
    one = write(tmp_path / "one.csv", 'a,x,"4,5"\n')
    with pytest.raises(RatingsFileError, match=r"line 1: rating '4,5' is not a number"):
        load_ratings(one, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_ambiguous_first_line_says_how_it_was_read(tmp_path, engine):
    path = write(tmp_path / "a.csv", "a,x,y\nb,x,4\nc,x,5\n")
    with pytest.warns(UserWarning, match=r"line 1 \('a,x,y'\) was read as a header: its "
                                         r"rating field 'y' is not a number and line 2's is"):
        frame = load_ratings(path, engine=engine)
    assert frame["user"].tolist() == ["b", "c"]
    # Recognised names or a numeric rating field are not ambiguous: no warning.
    assert len(quiet_load(write(tmp_path / "h.csv", "user,item,stars\n1,2,3\n"))) == 1
    assert len(quiet_load(write(tmp_path / "d.csv", "1,2,3\n4,5,6\n"))) == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_a_quoted_separator_is_part_of_its_field(tmp_path, engine):
    path = write(tmp_path / "q.csv", 'user,item,rating\n"Smith, J",x,4\nbob,"a,b",3\n')
    frame = quiet_load(path, engine=engine)
    assert frame["user"].tolist() == ["Smith, J", "bob"]
    assert frame["item"].tolist() == ["x", "a,b"]


def test_a_gigantic_first_line_is_refused_without_reading_it_all(tmp_path):
    # A 1 GB line of "a,a,a,..." went to 7.6 GB of Python strings, then a
    # traceback; the sniffing now stops at 1 MiB (here: a 3 MB line).
    path = tmp_path / "huge.csv"
    path.write_bytes(b"a," * 1_500_000 + b"a\n1,2,3\n")
    with pytest.raises(RatingsFileError, match="line 1: longer than 1,048,576 characters"):
        load_ratings(path)


@pytest.mark.skipif(bool(build_info()["sanitizers"]),
                    reason="peak RSS is meaningless under ASan (shadow memory, quarantine)")
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("before", [b"", b"1,2,3\n4,5,6\n"])
def test_a_gigantic_line_costs_bounded_memory(tmp_path, before, engine):
    # A subprocess, so that its peak RSS is this read's alone. A 100 MB line
    # first (sniffed with a cap) or third (refused by pyarrow's reader, whose
    # blocks are 16 MB; pandas alone would take ~6x the line).
    path = tmp_path / "huge.csv"
    with open(path, "wb") as f:
        f.write(before)
        for _ in range(100):
            f.write(b"a," * 500_000)
        f.write(b"a\n")
    code = ("import resource, sys\nfrom mfcy.datasets import load_ratings\n"
            "try:\n    load_ratings(sys.argv[1], engine=sys.argv[2])\nexcept ValueError as e:\n    print(e)\n"
            # VmHWM, not ru_maxrss: on Linux ru_maxrss also counts the parent's
            # RSS at the fork (the whole test session's).
            "try:\n    status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
            "    print(int(status.split()[0]))\n"
            "except OSError:\n"
            "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    run = subprocess.run([sys.executable, "-c", code, str(path), engine], capture_output=True,
                         cwd=tmp_path, text=True, timeout=300)
    out = run.stdout.splitlines()
    assert run.returncode == 0 and "longer than" in run.stdout, (run.stdout, run.stderr)
    assert int(out[-1]) < 400_000, out  # KiB: the 100 MB line is never held whole


# -- ids are parsed losslessly ------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_ids_are_read_losslessly(tmp_path, engine):
    # "001" and "1" were both the integer 1: two users merged into one.
    path = write(tmp_path / "zip.csv", "zip,item,rating\n001,10,4\n1,10,2\n002,20,5\n")
    from mfcy.datasets import _read_ratings

    frame, report = _read_ratings(path, columns=(0, 1, 2), header=True, engine=engine)
    assert frame["user"].tolist() == ["001", "1", "002"]
    assert isinstance(frame["user"].dtype, pd.CategoricalDtype)
    assert frame["item"].dtype == np.int64  # written plainly: integers
    assert len(report.id_notes) == 1 and "user ids kept as text: '001'" in report.id_notes[0]
    model = MatrixFactorization(n_factors=2, n_epochs=2, n_threads=1).fit(frame)
    assert model.users_.tolist() == ["001", "002", "1"]
    for text, kept in [("+1", "+1"), ("7.0", "7.0"), ("2.5", "2.5"), ("1e20", "1e20"),
                       ("-0", "-0"), (str(2**70), str(2**70))]:
        other = write(tmp_path / "o.csv", f"1,10,4\n{text},10,3\n")
        users = load_ratings(other, engine=engine)["user"]
        assert users.tolist() == ["1", kept], text
    # Plain integers stay integers (negative, uint64, surrounded by spaces).
    plain = write(tmp_path / "p.csv", f"5,-10,4\n{2**64 - 1},-10,3\n")
    assert load_ratings(plain, engine=engine)["user"].dtype == np.uint64
    assert load_ratings(plain, engine=engine)["item"].tolist() == [-10, -10]
    # Neither int64 nor uint64 holds both: text, said so.
    wide = write(tmp_path / "w.csv", f"-5,10,4\n{2**64 - 1},10,3\n")
    assert load_ratings(wide, engine=engine)["user"].tolist() == ["-5", str(2**64 - 1)]
    spaced = write(tmp_path / "s.csv", "user,item,rating\n 7 ,10,4\n7,11,3\n")
    assert load_ratings(spaced, engine=engine)["user"].tolist() == [7, 7]


def test_the_command_line_says_ids_were_kept_as_text(tmp_path):
    from mfcy.cli import main

    path = write(tmp_path / "zip.csv", "user,item,rating\n001,10,4\n1,10,2\n001,20,5\n")
    out, err = run_main(main, ["fit", str(path), "--factors", "2", "--epochs", "1"])
    assert "user ids kept as text: '001'" in err and "user ids text" in out


# -- duplicates are counted ----------------------------------------------------------------

def run_main(main, argv):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(argv) == 0
    return out.getvalue(), err.getvalue()


def test_duplicates_averaged_are_counted(tmp_path):
    from mfcy.cli import main

    rows = [(u, i, 1 + (u + i) % 5) for u in range(10) for i in range(30)]  # 300 ratings
    rows += rows[:71]
    text = "user,item,rating\n" + "".join(f"{u},{i},{r}\n" for u, i, r in rows)
    path = write(tmp_path / "dup.csv", text)
    out, _ = run_main(main, ["fit", str(path), "--factors", "2", "--epochs", "1"])
    assert "371 ratings -> 300 distinct (user, item) pairs; 71 duplicates averaged" in out
    frame = load_ratings(path)
    model = MatrixFactorization(n_factors=2, n_epochs=1, n_threads=1).fit(frame)
    assert model.n_duplicates_ == 71
    single = MatrixFactorization(n_factors=2, n_epochs=1, n_threads=1).fit(frame.iloc[:300])
    assert single.n_duplicates_ == 0
    out, _ = run_main(main, ["fit", str(write(tmp_path / "u.csv", text.split("\n", 1)[0] + "\n"
                                              + "".join(f"{u},{i},{r}\n" for u, i, r in
                                                        rows[:300]))),
                             "--factors", "2", "--epochs", "1"])
    assert "distinct (user, item) pairs" not in out


# -- pyarrow's CSV reader gives what pandas gives ------------------------------------------

FILES = {
    "movielens.csv": "userId,movieId,rating,timestamp\n1,10,4.0,9\n1,20,3.5,9\n2,10,5,9\n",
    "plain.tsv": "1\t10\t4\n2\t20\t3.5\n",
    "strings.csv": "user,item,rating\nalice,Dune,5\nbob, Alien,3\nalice,007,1\n",
    "zeros.csv": "u;i;r\n001;1;4\n1;01;3\n",
    "quoted.csv": 'user,item,rating\n"Smith, J","x",4\nbob,"a ""b""",3\n',
    "crlf.csv": "user,item,rating\r\n1,2,3\r\n4,5,6\r\n",
    "mixed_case.csv": "ts,Rating,movie_id,UserID\n0,4,10,1\n0,3.5,20,1\n",
    "big_ids.csv": f"{2**40},-5,1e0\n{2**63 + 5},7,.5\n",
    # Beyond int32 after a first line within it: read again as int64, by pyarrow still.
    "int64_ids.csv": f"user,item,rating\n1,2,3\n{2**31},{-2**31 - 1},4\n5,{2**40},1\n",
    "bom.csv": "\ufeffitem,user,rating\n10,1,4\n",
    "blank_lines.csv": "user,item,rating\n\n1,10,4\n   \n1,20,3.5\n\n",
    "spaces.csv": "user, item, rating\nalice, The Matrix, 5\nbob,Up,  3\n",
}


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("compress", [False, True])
def test_pyarrow_csv_reader_gives_the_pandas_frame(tmp_path, name, compress):
    from mfcy.datasets import _read_ratings

    path = tmp_path / (name + (".gz" if compress else ""))
    write(path, FILES[name], gzip.open if compress else open)
    by_pandas, _ = _read_ratings(path, engine="pandas")
    by_arrow, report = _read_ratings(path, engine="pyarrow")
    pd.testing.assert_frame_equal(by_arrow, by_pandas)
    if name not in ("blank_lines.csv", "spaces.csv"):  # those fall back to pandas
        assert report.reader == "pyarrow", name


def test_pyarrow_reads_integer_ids_as_int32_then_int64_then_text(tmp_path, monkeypatch):
    import pyarrow.csv as pacsv

    seen = []
    real = pacsv.read_csv

    def spy(source, read_options, parse_options, convert_options):
        seen.append(str(convert_options.column_types["f0"]))
        return real(source, read_options=read_options, parse_options=parse_options,
                    convert_options=convert_options)

    monkeypatch.setattr(pacsv, "read_csv", spy)
    for text, reads, user_ids in [
            ("user,item,rating\n1,2,3\n7,8,4\n", ["int32"], [1, 7]),
            (f"user,item,rating\n1,2,3\n{2**31},8,4\n", ["int32", "int64"], [1, 2**31]),
            (f"user,item,rating\n1,2,3\n{2**63},8,4\n", ["int32", "int64", "string"],
             None),
            ("user,item,rating\n1,2,3\nbob,8,4\n", ["int32", "string"], None)]:
        seen.clear()
        frame = load_ratings(write(tmp_path / "r.csv", text), engine="pyarrow")
        assert seen == reads, text
        if user_ids is not None:
            assert frame["user"].dtype == np.int64 and frame["user"].tolist() == user_ids


def test_pyarrow_reader_errors_are_the_pandas_errors(tmp_path):
    for text in ["user,item,rating\n1,10,4\n2,20\n", "1,10,4\n2,20,nan\n",
                 "1,10,4\n2,20,inf\n", "a,x,4\nb,,3\n", "1,10,4\n2,20,4,extra\n"]:
        path = write(tmp_path / "bad.csv", text)
        messages = []
        for engine in ENGINES:
            with pytest.raises(RatingsFileError) as info:
                load_ratings(path, engine=engine)
            messages.append((str(info.value), info.value.line))
        assert messages[0] == messages[1], text


def test_bad_engine(tmp_path):
    path = write(tmp_path / "r.csv", "1,2,3\n")
    with pytest.raises(ValueError, match="engine must be"):
        load_ratings(path, engine="polars")


# -- Parquet and Arrow ---------------------------------------------------------------------

def ratings_table(string_ids=False, n=500, seed=0):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 40, n)
    items = rng.integers(0, 25, n).astype(np.int32)
    ratings = rng.integers(1, 6, n).astype(np.float32)
    if string_ids:
        return pa.table({"userId": [f"user:{u:06d}" for u in users],
                         "movieId": [f"m{i}" for i in items], "rating": ratings})
    return pa.table({"userId": users, "movieId": items, "rating": ratings})


@pytest.mark.parametrize("string_ids", [False, True])
def test_parquet_file_directory_and_feather_read_as_the_csv(tmp_path, string_ids):
    table = ratings_table(string_ids)
    table.to_pandas().to_csv(tmp_path / "r.csv", index=False)
    expected = load_ratings(tmp_path / "r.csv", engine="pandas")
    pq.write_table(table, tmp_path / "one.parquet")
    os.mkdir(tmp_path / "parts")
    for j, start in enumerate(range(0, table.num_rows, 150)):
        pq.write_table(table.slice(start, 150), tmp_path / "parts" / f"part.{j}.parquet")
    pyarrow.feather.write_feather(table, tmp_path / "r.feather")
    pyarrow.feather.write_feather(table, tmp_path / "r.arrow", compression="uncompressed")
    for path in ["one.parquet", "parts", "r.feather", "r.arrow"]:
        frame = load_ratings(tmp_path / path)
        # The file's own types: int32 item ids stay int32; float32 ratings are float64.
        np.testing.assert_array_equal(frame["user"].astype(str), expected["user"].astype(str))
        np.testing.assert_array_equal(frame["item"].astype(str), expected["item"].astype(str))
        np.testing.assert_array_equal(frame["rating"], expected["rating"])
        assert frame["rating"].dtype == np.float64
        if string_ids:
            assert isinstance(frame["user"].dtype, pd.CategoricalDtype)
        else:
            assert frame["item"].dtype == np.int32 and frame["user"].dtype == np.int64
        a = MatrixFactorization(n_factors=3, n_epochs=2, n_threads=1, random_state=0)
        b = MatrixFactorization(n_factors=3, n_epochs=2, n_threads=1, random_state=0)
        np.testing.assert_array_equal(a.fit(frame).user_factors_,
                                      b.fit(expected).user_factors_)


def test_parquet_columns_by_name_or_position_and_bad_columns(tmp_path):
    table = pa.table({"ts": [0, 0], "stars": [4.0, 3.0], "who": ["a", "b"], "what": [1, 2]})
    pq.write_table(table, tmp_path / "r.parquet")
    frame = load_ratings(tmp_path / "r.parquet", columns=("who", "what", "stars"))
    assert frame["user"].tolist() == ["a", "b"] and frame["rating"].tolist() == [4.0, 3.0]
    assert load_ratings(tmp_path / "r.parquet", columns=(2, 3, 1))["item"].tolist() == [1, 2]
    with pytest.raises(RatingsFileError, match="no column named 'user'"):
        load_ratings(tmp_path / "r.parquet", columns=("user", "what", "stars"))
    nulls = pa.table({"user": [1, None], "item": [1, 2], "rating": [4.0, 3.0]})
    pq.write_table(nulls, tmp_path / "n.parquet")
    with pytest.raises(RatingsFileError, match="row 1: no user id"):
        load_ratings(tmp_path / "n.parquet")
    bad = pa.table({"user": [1, 2], "item": [1, 2], "rating": [4.0, float("nan")]})
    pq.write_table(bad, tmp_path / "b.parquet")
    with pytest.raises(RatingsFileError, match="row 1: rating nan is not a finite number"):
        load_ratings(tmp_path / "b.parquet")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes((tmp_path / "r.parquet").read_bytes()[:40])
    with pytest.raises(RatingsFileError, match="cannot be read"):
        load_ratings(broken)


def test_the_command_line_fits_a_parquet_directory(tmp_path):
    from mfcy.cli import main

    os.mkdir(tmp_path / "parts")
    table = ratings_table(string_ids=True)
    for j, start in enumerate(range(0, table.num_rows, 200)):
        pq.write_table(table.slice(start, 200), tmp_path / "parts" / f"{j}.parquet")
    out, _ = run_main(main, ["fit", str(tmp_path / "parts"), "--factors", "2", "--epochs",
                             "1", "--model", str(tmp_path / "m.npz")])
    assert "500 ratings" in out and "Parquet read by pyarrow" in out
    assert MatrixFactorization.load(tmp_path / "m.npz").users_[0].startswith("user:")


# -- without pyarrow ------------------------------------------------------------------------

@pytest.fixture
def no_pyarrow(monkeypatch):
    """Every import of pyarrow fails, as on a machine without it."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_without_pyarrow_parquet_says_what_to_install(tmp_path, no_pyarrow):
    from mfcy.cli import main
    from mfcy.datasets import _read_ratings

    pq.write_table(ratings_table(), tmp_path / "r.parquet")
    with pytest.raises(ImportError, match=r"needs pyarrow.*pip install 'mfcy\[parquet\]'"):
        load_ratings(tmp_path / "r.parquet")
    with pytest.raises(ImportError, match="needs pyarrow"):
        load_ratings(write(tmp_path / "r.csv", "1,2,3\n"), engine="pyarrow")
    # Text is still read, by pandas.
    frame, report = _read_ratings(tmp_path / "r.csv")
    assert report.reader == "pandas" and frame["user"].tolist() == [1]
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["fit", str(tmp_path / "r.parquet")]) == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and "pip install 'mfcy[parquet]'" in lines[0], lines


def test_the_plain_length_of_integers_is_that_of_their_text():
    # The pyarrow path's check that ids are written plainly rests on it.
    from mfcy._readers import _plain_length

    edge = [0, 1, 9, 10, 99, 100, -1, -9, -10, 10**18 - 1, 10**18, 2**63 - 1, -2**63]
    rng = np.random.default_rng(0)
    values = np.concatenate([np.array(edge, dtype=np.int64),
                             rng.integers(-2**63, 2**63 - 1, 10_000, dtype=np.int64)
                             // rng.integers(1, 10**18, 10_000)])
    assert _plain_length(values).tolist() == [len(str(int(v))) for v in values]


def test_a_parquet_directory_of_files_with_other_types_is_read_at_the_widest(tmp_path):
    # Found by an adversarial pass: the dataset took the first file's schema,
    # so its float32 ratings rounded a later file's float64 ratings (3.1 became
    # 3.0999999) and its int32 ids refused a later file's int64 ones.
    directory = tmp_path / "ratings"
    directory.mkdir()
    pq.write_table(pa.table({"user": pa.array([1, 2], pa.int32()),
                             "item": pa.array([1, 2], pa.int32()),
                             "rating": pa.array([3.5, 4.0], pa.float32())}),
                   directory / "part-0.parquet")
    pq.write_table(pa.table({"user": pa.array([3, 2**40], pa.int64()),
                             "item": pa.array([1, 5], pa.int64()),
                             "rating": pa.array([3.1, 4.7], pa.float64())}),
                   directory / "part-1.parquet")
    frame = load_ratings(directory)
    assert frame["user"].tolist() == [1, 2, 3, 2**40]
    assert frame["item"].tolist() == [1, 2, 1, 5]
    assert frame["rating"].tolist() == [3.5, 4.0, 3.1, 4.7]
    # Text ids written once as strings, once as a pandas Categorical (Arrow
    # dictionary), in either order.
    for order, (first, second) in enumerate([("str", "cat"), ("cat", "str")]):
        directory = tmp_path / f"text{order}"
        directory.mkdir()
        for n, (kind, users) in enumerate([(first, ["a", "b"]), (second, ["c", "a"])]):
            column = pd.Categorical(users) if kind == "cat" else users
            pd.DataFrame({"user": column, "item": [1, 2], "rating": [3.0, 4.0]}).to_parquet(
                directory / f"part-{n}.parquet")
        assert load_ratings(directory)["user"].tolist() == ["a", "b", "c", "a"]
