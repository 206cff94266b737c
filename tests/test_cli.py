"""The ``mfcy`` command, driven as a subprocess on generated files."""

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from mfcy import MatrixFactorization
from mfcy.datasets import load_ratings

from helpers import SIGINT_DEFAULT, write_string_ratings

_SCRIPT = pathlib.Path(sys.executable).with_name("mfcy")
#: The installed console script (the entry point users run), else ``python -m mfcy``.
MFCY = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mfcy"]
ENV = {**os.environ, "MPLBACKEND": "Agg"}


def mfcy(*args, cwd, check=True):
    result = subprocess.run(MFCY + [str(a) for a in args], cwd=cwd, env=ENV, text=True,
                            capture_output=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"mfcy {' '.join(map(str, args))} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A ratings file with string ids and a model fitted on it by `mfcy fit`."""
    path = tmp_path_factory.mktemp("cli")
    write_string_ratings(path / "ratings.csv")
    result = mfcy("fit", "ratings.csv", "--model", "m.npz", "--factors", 4, "--epochs", 5,
                  "--threads", 1, "--test-fraction", 0.2, "--plot", "loss.png", cwd=path)
    return path, result


def test_demo_reproduces_the_lesson(tmp_path):
    result = mfcy("demo", "--out", "lesson", "--every", 100, cwd=tmp_path)
    assert "epoch  100  MSE" in result.stdout
    assert "final MSE 0.000533087" in result.stdout
    for name in ("loss.png", "reconstruction.png"):
        assert (tmp_path / "lesson" / name).stat().st_size > 1000


def test_fit_prints_each_epoch_and_a_summary(workdir):
    path, result = workdir
    out = result.stdout.splitlines()
    epochs = [line for line in out if line.startswith("epoch")]
    assert [line.split()[1] for line in epochs] == [f"{e}/5" for e in range(1, 6)]
    assert all("train RMSE" in line and "test RMSE" in line and "MAE" in line
               for line in epochs)
    assert any(line.startswith("fitted 5 epochs on") and "M updates/s" in line for line in out)
    assert "saved the model to m.npz" in out
    assert (path / "loss.png").stat().st_size > 1000
    # With --test-fraction, the one thing said on stderr: what the saved model saw.
    assert result.stderr.startswith("mfcy: note: the model is trained on ")
    assert len(result.stderr.splitlines()) == 1


def test_fit_test_metrics_are_those_of_the_seeded_split(workdir):
    path, result = workdir
    model = MatrixFactorization.load(path / "m.npz")
    assert model.n_epochs_ == 5 and model.n_factors == 4 and model.users_.dtype.kind == "U"
    ratings = load_ratings(path / "ratings.csv")
    order = np.random.default_rng(0).permutation(len(ratings))
    test = ratings.iloc[order[:int(len(ratings) * 0.2)]]
    errors = model.predict(test) - test["rating"].to_numpy()
    line = next(line for line in result.stdout.splitlines() if line.startswith("test RMSE"))
    assert f"test RMSE {np.sqrt(np.mean(errors ** 2)):.4f}, MAE {np.mean(np.abs(errors)):.4f}" \
        f" on {len(test):,} held-out ratings" in line
    # The training part is what the model kept as seen.
    assert len(model._seen_items) == len(ratings) - len(test)


def test_fit_options_reach_the_model(tmp_path):
    write_string_ratings(tmp_path / "r.csv")
    mfcy("fit", "r.csv", "--model", "a.npz", "--factors", 3, "--epochs", 2, "--lr", 0.01,
         "--reg", 0.1, "--no-bias", "--dtype", "float64", "--threads", 2, "--seed", 7,
         "--quiet", cwd=tmp_path)
    model = MatrixFactorization.load(tmp_path / "a.npz")
    params = model.get_params()
    assert (params["n_factors"], params["n_epochs"], params["learning_rate"],
            params["regularization"], params["biased"], params["dtype"], params["n_threads"],
            params["random_state"]) == (3, 2, 0.01, 0.1, False, "float64", 2, 7)
    assert model.user_factors_.dtype == np.float64


def test_same_seed_gives_the_same_model_for_any_thread_count(tmp_path):
    write_string_ratings(tmp_path / "r.csv")
    for threads in (1, 2):
        mfcy("fit", "r.csv", "--model", f"t{threads}.npz", "--factors", 3, "--epochs", 3,
             "--threads", threads, "--quiet", cwd=tmp_path)
    one, two = (MatrixFactorization.load(tmp_path / f"t{t}.npz") for t in (1, 2))
    np.testing.assert_array_equal(one.user_factors_, two.user_factors_)
    np.testing.assert_array_equal(one.item_factors_, two.item_factors_)


def test_fit_quiet_prints_only_the_summary(tmp_path):
    write_string_ratings(tmp_path / "r.csv")
    result = mfcy("fit", "r.csv", "--epochs", 3, "--threads", 1, "--quiet", cwd=tmp_path)
    assert not any(line.startswith("epoch") for line in result.stdout.splitlines())
    assert result.stdout.startswith("fitted 3 epochs")
    assert not list(tmp_path.glob("*.npz"))  # no --model: nothing written


def test_fit_shows_a_progress_bar_on_a_terminal(tmp_path):
    import pty

    write_string_ratings(tmp_path / "r.csv")
    leader, follower = pty.openpty()
    process = subprocess.Popen(MFCY + ["fit", "r.csv", "--epochs", "3", "--threads", "1"],
                               cwd=tmp_path, env=ENV, stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(timeout=120) == 0, process.stderr.read()
    text = output.decode()
    assert "3/3" in text and "epoch/s" in text and "100%" in text  # tqdm's bar
    assert "epoch 1/3  train RMSE" in text  # the per-epoch lines above it


PAIRS = "user,item,note\nalice,film 01,x\nnobody,film 02,y\nbob,film 29,z\n"


def test_predict_adds_a_prediction_column(workdir, tmp_path):
    path, _ = workdir
    (tmp_path / "pairs.csv").write_text(PAIRS)
    result = mfcy("predict", path / "m.npz", "pairs.csv", cwd=tmp_path)
    out = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert list(out.columns) == ["user", "item", "note", "prediction"]
    assert out["note"].tolist() == ["x", "y", "z"]
    model = MatrixFactorization.load(path / "m.npz")
    expected, _ = model.predict(["alice", "nobody", "bob"], ["film 01", "film 02", "film 29"],
                                clip=False, return_fallback=True)
    # Printed in the model's float32 precision, shortest round-trip form.
    np.testing.assert_array_equal(out["prediction"].to_numpy(np.float32),
                                  expected.astype(np.float32))
    assert "1 of 3 pairs have a user or item unseen in training" in result.stderr
    result = mfcy("predict", path / "m.npz", "pairs.csv", "--output", "out.csv",
                  "--mark-fallback", "--clip", cwd=tmp_path)
    assert "wrote 3 predictions to out.csv" in result.stdout
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["fallback"].tolist() == [0, 1, 0]
    low, high = model.rating_range_
    assert out["prediction"].between(low, high).all()


def test_predict_headerless_tsv_keeps_its_layout(workdir, tmp_path):
    path, _ = workdir
    (tmp_path / "pairs.tsv").write_text("alice\tfilm 03\t4\nbob\tfilm 04\t2\n")
    result = mfcy("predict", path / "m.npz", "pairs.tsv", cwd=tmp_path)
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[:3] for row in rows] == [["alice", "film 03", "4"], ["bob", "film 04", "2"]]
    assert all(len(row) == 4 for row in rows)


def test_recommend_excludes_what_the_user_rated(workdir):
    path, _ = workdir
    result = mfcy("recommend", "m.npz", "--user", "alice", "-n", 4, cwd=path)
    lines = result.stdout.splitlines()
    assert lines[0] == "rank\titem\tpredicted_rating"
    rows = [line.split("\t") for line in lines[1:]]
    assert [row[0] for row in rows] == ["1", "2", "3", "4"]
    model = MatrixFactorization.load(path / "m.npz")
    items, scores = model.recommend("alice", n=4)
    assert [row[1] for row in rows] == items.tolist()
    np.testing.assert_allclose([float(row[2]) for row in rows], scores, atol=5e-5)
    seen = model.items_[model._seen_items[model._seen_indptr[0]:model._seen_indptr[1]]]
    assert not set(items) & set(seen)
    with_seen = mfcy("recommend", "m.npz", "--user", "alice", "-n", 4, "--include-seen",
                     cwd=path)
    expected, _ = model.recommend("alice", n=4, exclude_seen=False)
    assert [line.split("\t")[1] for line in with_seen.stdout.splitlines()[1:]] == \
        expected.tolist()


def test_recommend_for_an_unknown_user_says_so(workdir):
    path, _ = workdir
    result = mfcy("recommend", "m.npz", "--user", "zed", "-n", 2, cwd=path)
    assert len(result.stdout.splitlines()) == 3
    assert "user 'zed' is not in the model" in result.stderr
    assert "UnknownIdWarning" not in result.stderr  # the note says it once


def test_recommend_shows_clipped_scores_unless_no_clip(workdir):
    path, _ = workdir
    model = MatrixFactorization.load(path / "m.npz")
    _, raw = model.recommend("alice", n=4, clip=False)
    clipped = mfcy("recommend", "m.npz", "--user", "alice", "-n", 4, cwd=path)
    unclipped = mfcy("recommend", "m.npz", "--user", "alice", "-n", 4, "--no-clip", cwd=path)
    shown = [float(line.split("\t")[2]) for line in clipped.stdout.splitlines()[1:]]
    shown_raw = [float(line.split("\t")[2]) for line in unclipped.stdout.splitlines()[1:]]
    np.testing.assert_allclose(shown_raw, raw, atol=5e-5)
    np.testing.assert_allclose(shown, np.clip(raw, *model.rating_range_), atol=5e-5)


def test_integer_ids_arrive_as_text_and_are_converted(tmp_path):
    # Each user rates about half of the items, so that there is something to recommend.
    (tmp_path / "r.tsv").write_text("".join(f"{u}\t{i}\t{(u * i) % 5 + 1}\n"
                                            for u in range(1, 30) for i in range(100, 120, 3)
                                            if (u + i) % 2))
    mfcy("fit", "r.tsv", "--model", "m.npz", "--epochs", 2, "--threads", 1, "--quiet",
         cwd=tmp_path)
    result = mfcy("recommend", "m.npz", "--user", "7", "-n", 2, cwd=tmp_path)
    model = MatrixFactorization.load(tmp_path / "m.npz")
    assert model.users_.dtype == np.int64
    items, _ = model.recommend(7, n=2)
    assert [line.split("\t")[1] for line in result.stdout.splitlines()[1:]] == \
        [str(i) for i in items]
    (tmp_path / "p.csv").write_text("7,100\n8,103\n")
    out = mfcy("predict", "m.npz", "p.csv", cwd=tmp_path).stdout.splitlines()
    np.testing.assert_array_equal([np.float32(line.split(",")[2]) for line in out],
                                  model.predict([7, 8], [100, 103]).astype(np.float32))


def test_info_describes_the_model(workdir):
    path, _ = workdir
    out = mfcy("info", "m.npz", cwd=path).stdout
    model = MatrixFactorization.load(path / "m.npz")
    assert f"users        {len(model.users_)} (string ids)" in out
    assert "factors      4 per user and item, float32" in out
    assert f"epochs       5; final train RMSE {model.history_['train_rmse'][-1]:.4f}" in out
    assert "written by mfcy" in out and "format 1" in out


# -- every user error: one line on stderr, exit status 2, no traceback ---------------

def write_bad_files(path):
    (path / "malformed.csv").write_text("user,item,rating\n1,2,3\n1,3,4\n2,5\n")
    (path / "words.tsv").write_text("1\t2\t3\n1\t3\tgood\n")
    (path / "sepfield.tsv").write_text("1\t2\t3\n1\t3\tsep=5\n")
    (path / "garbage.npz").write_text("not a model\n")
    (path / "ok.csv").write_text("user,item,rating\n1,2,3\n2,3,4\n3,1,5\n")
    (path / "strpairs.csv").write_text("1,2\nabc,3\n")


ERRORS = [
    (["fit", "missing.csv"], "ratings file 'missing.csv' does not exist"),
    (["fit", "malformed.csv"], "'malformed.csv', line 4: no rating"),
    (["fit", "words.tsv"], "'words.tsv', line 2: rating 'good' is not a number"),
    # A field echoed back is shown as it is in the file (was "'--sep 5'").
    (["fit", "sepfield.tsv"], "'sepfield.tsv', line 2: rating 'sep=5' is not a number"),
    (["fit", "ok.csv", "--columns", "user,item,stars"], "no column named 'stars'"),
    (["fit", "ok.csv", "--columns", "0,1,9"], "no column at position 9"),
    (["fit", "ok.csv", "--model", "no/such/dir/m.npz"], "directory .* does not exist"),
    (["fit", "ok.csv", "--test-fraction", "0.1"], "leaves no test ratings"),
    (["fit", "ok.csv", "--lr", "1e6", "--epochs", "50"], "training diverged"),
    (["predict", "garbage.npz", "ok.csv"], "not an mfcy model file"),
    (["predict", "int.npz", "missing.csv"], "pairs file 'missing.csv' does not exist"),
    (["predict", "int.npz", "strpairs.csv"], "line 2: user id 'abc' is not an integer"),
    (["recommend", "missing.npz", "--user", "1"], "model file 'missing.npz' does not exist"),
    (["recommend", "int.npz", "--user", "abc"], "user id 'abc' is not an integer"),
    (["info", "garbage.npz"], "not an mfcy model file"),
    (["info", "truncated.npz"], "truncated or damaged"),
    # Found by a check of the scan fix: pandas' "'c' engine" message before.
    (["fit", "ok.csv", "--sep", "§"], r"--sep '§': a separator is one ASCII character"),
    (["fit", "ok.csv", "--sep", ";;"], r"--sep ';;': a separator is one ASCII character"),
]


ARGPARSE_ERRORS = [
    (["fit", "ok.csv", "--factors", "0"], "--factors: must be a positive integer"),
    (["fit", "ok.csv", "--test-fraction", "1.5"], "between 0 and 1"),
    (["recommend", "int.npz"], "--user"),
    (["launch"], "invalid choice"),
]


@pytest.fixture(scope="module")
def error_runs(tmp_path_factory):
    """Every error case run once, a few processes at a time (they are independent)."""
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path_factory.mktemp("errors")
    write_bad_files(path)
    model = MatrixFactorization(n_factors=2, n_epochs=1, n_threads=1, random_state=0)
    model.fit(np.array([[1, 2], [2, 3], [3, 1]]), [3.0, 4.0, 5.0]).save(path / "int.npz")
    (path / "truncated.npz").write_bytes((path / "int.npz").read_bytes()[:300])
    cases = [tuple(args) for args, _ in ERRORS + ARGPARSE_ERRORS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda args: mfcy(*args, cwd=path, check=False), cases)
        return dict(zip(cases, results))


@pytest.mark.parametrize("args,message", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_user_errors_are_one_line_and_exit_2(error_runs, args, message):
    result = error_runs[tuple(args)]
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mfcy: error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize("args,message", ARGPARSE_ERRORS,
                         ids=[" ".join(a) for a, _ in ARGPARSE_ERRORS])
def test_bad_options_are_argparse_errors(error_runs, args, message):
    result = error_runs[tuple(args)]
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


# -- Ctrl-C ---------------------------------------------------------------------------

def test_ctrl_c_during_fit_saves_the_last_epoch_and_exits_130(tmp_path):
    write_string_ratings(tmp_path / "r.csv", n_users=300, n_items=200, density=0.2)
    process = subprocess.Popen(
        MFCY + ["fit", "r.csv", "--model", "m.npz", "--epochs", "100000", "--threads", "1"],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        **SIGINT_DEFAULT)
    # Wait for training to be under way (a line per epoch, since stdout is a pipe).
    for line in process.stdout:
        if line.startswith("epoch"):
            break
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    last = [line for line in stdout.splitlines() if line.startswith("epoch")]
    model = MatrixFactorization.load(tmp_path / "m.npz")
    assert f"interrupted: saved the model of epoch {model.n_epochs_} of 100000 to m.npz" \
        in stderr
    assert 1 <= model.n_epochs_ < 100000
    assert len(model.history_["train_rmse"]) == model.n_epochs_
    if last:  # the epoch lines printed after the first, up to the one saved
        assert last[-1].split()[1] == f"{model.n_epochs_}/100000"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_an_output_never_overwrites_an_input(workdir, tmp_path):
    # Found by an adversarial pass: `--model` named as the ratings file, or
    # `predict -o` named as the model, replaced the input (with exit 0).
    path, _ = workdir
    ratings = (path / "ratings.csv").read_bytes()
    (tmp_path / "ratings.csv").write_bytes(ratings)
    model = (path / "m.npz").read_bytes()
    (tmp_path / "m.npz").write_bytes(model)
    (tmp_path / "pairs.csv").write_text(PAIRS)
    os.symlink(tmp_path / "ratings.csv", tmp_path / "link.csv")
    cases = [
        (["fit", "ratings.csv", "--model", "ratings.csv"], "model file 'ratings.csv' is the "
                                                           "ratings file 'ratings.csv'"),
        (["fit", "ratings.csv", "--model", "./link.csv"], "is the ratings file"),
        (["fit", "ratings.csv", "--model", "new.npz", "--plot", "new.npz"],
         "plot 'new.npz' is the model file 'new.npz'"),
        (["fit", "ratings.csv", "--plot", "ratings.csv"], "is the ratings file"),
        (["predict", "m.npz", "pairs.csv", "-o", "m.npz"], "output file 'm.npz' is the model "
                                                           "file 'm.npz'"),
        (["predict", "m.npz", "pairs.csv", "--output", str(tmp_path / "pairs.csv")],
         "is the pairs file"),
    ]
    for args, message in cases:
        result = mfcy(*args, "--epochs" if args[0] == "fit" else "--clip",
                      *(["1"] if args[0] == "fit" else []), cwd=tmp_path, check=False)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "choose another name" in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (tmp_path / "ratings.csv").read_bytes() == ratings
    assert (tmp_path / "m.npz").read_bytes() == model
    assert (tmp_path / "pairs.csv").read_text() == PAIRS
    assert not (tmp_path / "new.npz").exists()
