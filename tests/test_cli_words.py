"""The command line's words: counts in the singular, what is (not) saved."""

import contextlib
import io

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
