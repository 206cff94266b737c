"""The README's Python examples and its command-line session run as written."""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from helpers import write_string_ratings

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    text = README.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def console_commands(marker):
    """The ``$ `` lines of the ```console block after ``<!-- marker -->``."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker} -->\n```console\n(.*?)```", text, flags=re.S)
    assert found, f"no console block after <!-- {marker} --> in README.md"
    return [line[2:] for line in found.group(1).splitlines() if line.startswith("$ ")]


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_block_runs(index, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks may write files (model.save)
    namespace = {}
    exec(compile(python_blocks()[index], f"README.md block {index}", "exec"), namespace)
    # Every block fits a model; the first one is the lesson, with its exact value.
    assert hasattr(namespace["model"], "user_factors_")
    if index == 0:
        assert "0.000533087" in capsys.readouterr().out


def test_readme_has_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert "<!-- main-command -->" in text and "<!-- test-command -->" in text


def test_readme_newcomer_session_runs_as_written(tmp_path):
    """Exactly the README's commands, on a generated ratings.csv with string ids."""
    commands = console_commands("newcomer-session")
    assert commands == ["mfcy fit ratings.csv --model m.npz",
                        "mfcy recommend m.npz --user alice"]
    frame = write_string_ratings(tmp_path / "ratings.csv")
    script = pathlib.Path(sys.executable).with_name("mfcy")
    mfcy = [str(script)] if script.exists() else [sys.executable, "-m", "mfcy"]
    outputs = []
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "mfcy"
        result = subprocess.run(mfcy + argv[1:], cwd=tmp_path, capture_output=True, text=True,
                                timeout=300, env={**os.environ, "MPLBACKEND": "Agg"})
        assert result.returncode == 0, f"$ {command}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        outputs.append(result.stdout)
    assert (tmp_path / "m.npz").exists()
    assert "saved the model to m.npz" in outputs[0]
    rows = [line.split("\t") for line in outputs[1].splitlines()[1:]]
    assert len(rows) == 10
    rated = set(frame.loc[frame["user"] == "alice", "item"])
    recommended = {row[1] for row in rows}
    assert recommended <= set(frame["item"]) and not recommended & rated
