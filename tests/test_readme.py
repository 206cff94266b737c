"""The README's Python examples run as written."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    text = README.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_block_runs(index, capsys):
    exec(compile(python_blocks()[index], f"README.md block {index}", "exec"), {})
    assert "0.000533087" in capsys.readouterr().out or index > 0


def test_readme_has_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert "<!-- main-command -->" in text and "<!-- test-command -->" in text
