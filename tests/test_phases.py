"""Where a fit's time goes: ``fit_phases_`` and the ``phases:`` line of ``mfcy fit``."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from mfcy import MatrixFactorization
from mfcy.datasets import make_low_rank

from helpers import write_string_ratings

PHASES = ("encode", "layout", "epochs")


def small_problem():
    R = make_low_rank(60, 40, 3, 0.4, random_state=0)
    return R


@pytest.mark.parametrize("shuffle", [True, False])
def test_fit_phases_name_each_phase_in_order_with_its_seconds(shuffle):
    model = MatrixFactorization(n_factors=3, n_epochs=4, shuffle=shuffle,
                                random_state=0).fit(small_problem())
    phases = model.fit_phases_
    assert tuple(phases) == PHASES
    assert all(isinstance(s, float) and s >= 0 for s in phases.values())
    # The epochs phase holds every epoch (and their bookkeeping).
    assert phases["epochs"] >= sum(model.history_["epoch_seconds"])


def test_fit_phases_change_nothing_else_and_are_replaced_by_the_next_fit():
    R = small_problem()
    one = MatrixFactorization(n_factors=3, n_epochs=2, random_state=0).fit(R)
    first = dict(one.fit_phases_)
    history = one.history_
    assert set(history) == {"sgd_mse", "epoch_seconds", "train_mse", "train_rmse",
                            "loss_seconds"}  # per epoch only
    one.fit(R)
    assert one.fit_phases_ is not first and tuple(one.fit_phases_) == PHASES


def test_a_loaded_model_has_no_fit_phases(tmp_path):
    model = MatrixFactorization(n_factors=3, n_epochs=2, random_state=0).fit(small_problem())
    model.save(tmp_path / "m.npz")
    loaded = MatrixFactorization.load(tmp_path / "m.npz")
    assert not hasattr(loaded, "fit_phases_")
    np.testing.assert_array_equal(loaded.user_factors_, model.user_factors_)


def test_fit_phases_are_set_when_an_epoch_callback_interrupts():
    def stop(model, epoch, history):
        raise KeyboardInterrupt

    model = MatrixFactorization(n_factors=3, n_epochs=5, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        model.fit(small_problem(), callback=stop)
    assert tuple(model.fit_phases_) == PHASES


def mfcy(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "mfcy", *map(str, args)], cwd=cwd,
                            text=True, capture_output=True, timeout=300,
                            env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr
    return result


def phases_of(stdout):
    lines = [line for line in stdout.splitlines() if line.startswith("phases: ")]
    assert len(lines) == 1, stdout
    body, total = lines[0][len("phases: "):].rsplit("; total ", 1)
    found = [re.fullmatch(r"(\w+) (\d+\.\d\d) s", part).groups() for part in body.split(", ")]
    return [name for name, _ in found], [float(s) for _, s in found], float(total[:-2])


def test_cli_summary_times_every_phase(tmp_path):
    write_string_ratings(tmp_path / "r.csv")
    result = mfcy("fit", "r.csv", "--epochs", 3, "--threads", 1, "--model", "m.npz",
                  "--quiet", cwd=tmp_path)
    names, seconds, total = phases_of(result.stdout)
    assert names[:4] == ["read", "encode", "layout", "epochs"]
    assert names[-1] == "save" and set(names[4:-1]) <= {"other"}
    assert total == pytest.approx(sum(seconds), abs=0.01 * len(seconds))
    # The last line of the summary, after the model is saved.
    assert result.stdout.splitlines()[-1].startswith("phases: ")


def test_cli_phases_name_the_split_refit_and_plot(tmp_path):
    write_string_ratings(tmp_path / "r.csv")
    result = mfcy("fit", "r.csv", "--epochs", 2, "--threads", 1, "--test-fraction", 0.2,
                  "--refit", "--plot", "p.png", "--quiet", cwd=tmp_path)
    names, _, _ = phases_of(result.stdout)
    assert names[:2] == ["read", "split"]
    assert "refit" in names and names[-1] == "plot" and "save" not in names


def test_cli_phases_of_a_model_without_fit_phases(tmp_path):
    write_string_ratings(tmp_path / "r.csv")
    result = mfcy("fit", "r.csv", "--algorithm", "baseline", "--epochs", 2, "--quiet",
                  cwd=tmp_path)
    names, _, _ = phases_of(result.stdout)
    assert names == ["read", "fit"]


def test_terminal_shows_the_reading_and_layout_phases(tmp_path):
    import pty

    write_string_ratings(tmp_path / "r.csv")
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "mfcy", "fit", "r.csv", "--epochs", "2",
                                "--threads", "1"], cwd=tmp_path, stdout=follower,
                               stderr=subprocess.PIPE, env={**os.environ, "MPLBACKEND": "Agg"})
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(timeout=120) == 0, process.stderr.read()
    text = output.decode()
    assert "reading r.csv [" in text
    assert "encoding ids, laying out the ratings [" in text
    assert "2/2" in text and "100%" in text  # then the epochs' bar
