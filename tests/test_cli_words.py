"""The command line's words and fit options: counts in the singular, what is (not)
saved, validation, early stopping and the refit on every rating."""

import contextlib
import io
import re

from mfcy.cli import main


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def ratings_file(path):
    path.write_text("user,item,rating\n" + "".join(f"{u},{i},{1 + (u * i) % 5}\n"
                                                   for u in range(8) for i in range(6)))
    return path


def test_one_epoch_is_singular_and_an_unsaved_model_is_said(tmp_path):
    status, out, err = run(["fit", ratings_file(tmp_path / "r.csv"), "--epochs", 1,
                            "--factors", 2])
    assert status == 0
    assert "fitted 1 epoch on 48 ratings" in out
    assert "no --model given: the fitted model is not saved" in err


def test_a_model_file_not_named_npz_is_warned_about(tmp_path):
    status, out, err = run(["fit", ratings_file(tmp_path / "r.csv"), "--epochs", 2,
                            "--factors", 2, "--model", tmp_path / "m.csv"])
    assert status == 0 and "fitted 2 epochs" in out
    assert "--model" in err and "is an .npz archive" in err and "not saved" not in err
    assert (tmp_path / "m.csv").exists()


def low_rank_file(path):
    from mfcy.datasets import make_low_rank

    make_low_rank(60, 40, 3, 0.5, noise=0.3, random_state=0, as_frame=True).to_csv(
        path, index=False)
    return path


def test_early_stopping_keeps_the_best_epoch_and_refit_trains_on_everything(tmp_path):
    from mfcy import MatrixFactorization

    path = low_rank_file(tmp_path / "r.csv")
    status, out, err = run(["fit", path, "--epochs", 200, "--factors", 8, "--lr", 0.05,
                            "--threads", 1, "--test-fraction", 0.1, "--early-stopping",
                            "--patience", 2, "--refit", "--model", tmp_path / "m.npz"])
    assert status == 0, err
    assert "holding out --validation-fraction 0.1" in out and "val RMSE" in out
    best = int(re.search(r"best validation RMSE [\d.]+ at epoch (\d+)", out).group(1))
    fitted = int(re.search(r"fitted (\d+) epochs", out).group(1))
    assert best < fitted < 200  # stopped early, patience 2 after the best epoch
    assert fitted == best + 2
    n = int(re.search(r"refitted on all ([\d,]+) ratings with", out).group(1).replace(",", ""))
    model = MatrixFactorization.load(tmp_path / "m.npz")
    assert model.n_epochs_ == best and len(model._seen_items) == n == sum(
        1 for _ in open(path)) - 1


def test_a_held_out_fit_says_the_model_is_trained_on_the_rest(tmp_path):
    path = low_rank_file(tmp_path / "r.csv")
    status, out, err = run(["fit", path, "--epochs", 2, "--factors", 2, "--threads", 1,
                            "--test-fraction", 0.2, "--validation-fraction", 0.25])
    assert status == 0
    assert "held out" in out and "val RMSE" in out and "best validation RMSE" in out
    assert re.search(r"the model is trained on [\d,]+ ratings, without the [\d,]+ held out; "
                     r"--refit", err)


def test_usage_errors_are_one_line_in_the_command_line_words(tmp_path):
    import pytest

    for argv, message in [(["fit", "r.csv", "--factors", "0"],
                           "mfcy: error: mfcy fit: argument --factors: must be a positive "
                           "integer, got '0' (see 'mfcy fit --help')"),
                          (["launch"], "invalid choice: 'launch'"),
                          (["fit"], "the following arguments are required: RATINGS")]:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and message in lines[0], lines
    # The library's "pass sep=" is "--sep" on the command line.
    two = tmp_path / "two.csv"
    two.write_text("1,2\n3,4\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["fit", str(two)]) == 2
    assert "pass --sep if the separator" in err.getvalue() and "sep=" not in err.getvalue()


def test_absurd_sizes_are_warned_about_before_the_fit(tmp_path, monkeypatch):
    import mfcy.cli

    path = ratings_file(tmp_path / "r.csv")
    monkeypatch.setattr(mfcy.cli, "_LARGE_MODEL_BYTES", 14 * 4 * 1000)  # 14 ids x 1000 x 4 B
    monkeypatch.setattr(mfcy.cli, "_MANY_EPOCHS", 3)
    status, out, err = run(["fit", path, "--factors", 1000, "--epochs", 3, "--threads", 1])
    assert status == 0
    assert "--factors 1,000 makes a 0.0 GB model (14 users and items x 1,000 factors" in err
    assert "--epochs 3 is far more than SGD needs" in err
    status, out, err = run(["fit", path, "--factors", 2, "--epochs", 2])
    assert "warning" not in err


def test_an_interrupt_while_reading_says_nothing_was_saved(tmp_path, monkeypatch):
    import mfcy.datasets

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mfcy.datasets, "_read_ratings", interrupted)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["fit", str(ratings_file(tmp_path / "r.csv"))]) == 130
    assert err.getvalue() == (f"mfcy: interrupted while reading {tmp_path / 'r.csv'}: no model "
                              "fitted or saved\n")


def test_predict_names_the_bad_line_and_refuses_long_lines(tmp_path, monkeypatch):
    # Found by an adversarial pass: an id that is not an integer written
    # plainly ("7.0") was blamed on line 1; a pairs file had no long-line
    # guard (pandas tokenized a 60 MB line whole, ~9 bytes a byte) and a long
    # field was echoed whole in the "one line" of the error.
    from mfcy import _ratings_file

    model = tmp_path / "m.npz"
    assert run(["fit", ratings_file(tmp_path / "r.csv"), "--epochs", 1, "--factors", 2,
                "--model", model])[0] == 0
    for bad, message in (("7.0", "item id '7.0' is not an integer"),
                         ("1e3", "item id '1e3' is not an integer"),
                         ("9223372036854775808", "item id '9223372036854775808' is outside "
                                                 "the range of the model's item ids (int64")):
        (tmp_path / "p.csv").write_text(f"1,2\n3,4\n2,{bad}\n")
        status, _, err = run(["predict", model, tmp_path / "p.csv"])
        assert status == 2 and "line 3: " + message in err, err
    status, _, err = run(["recommend", model, "--user", "99999999999999999999"])
    assert status == 2 and "is outside the range of the model's user ids" in err, err
    (tmp_path / "long.csv").write_text("1,2\n1," + "9" * 5000 + "x\n")
    status, _, err = run(["predict", model, tmp_path / "long.csv"])
    assert status == 2 and "line 2: item id '999" in err and "'... is not an integer" in err, err
    assert len(err) < 300, err
    monkeypatch.setattr(_ratings_file, "_MAX_LINE", 1000)
    status, _, err = run(["predict", model, tmp_path / "long.csv"])
    assert status == 2, err
    assert "line 2: longer than 1,000 bytes; a pairs file has one short (user, item) line" in err


def test_a_long_rating_field_is_shown_cut_short(tmp_path):
    (tmp_path / "r.csv").write_text("1,2,3\n1,3," + "x" * 100000 + "\n")
    status, _, err = run(["fit", tmp_path / "r.csv"])
    assert status == 2 and "rating 'xxx" in err and "is not a number" in err, err
    assert len(err) < 300, err


def test_pandas_mixed_type_advice_does_not_reach_the_terminal(tmp_path):
    # Found by an adversarial pass: an id column of integers that turns into
    # text late in a large file made pandas print a DtypeWarning (two lines,
    # one of them mfcy's own source) although the ids come out right as text.
    path = tmp_path / "r.dat"
    import warnings

    path.write_text("".join(f"{u}::{u % 97}::3\n" for u in range(1, 200000)) + "x::1::3\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, out, err = run(["fit", path, "--epochs", 1, "--factors", 2, "-q"])
    assert status == 0, err
    assert not [w for w in caught if "mixed types" in str(w.message)], caught
