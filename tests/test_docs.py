"""The documentation's runnable text runs: the ``>>>`` sessions of the hand-written
pages under docs/ (checked by doctest, outputs included) and the mfcy part of the
README's main command.

The gallery examples and the API pages are executed by the docs build itself
(``sphinx-build -W`` in .ci/run), which needs the ``docs`` extra; these checks
need nothing beyond the package, so they run with every ``pytest``.
"""

import doctest
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# Hand-written pages only: gen_modules/, auto_examples/ and
# sg_execution_times.rst are build output.
BUILD_OUTPUT = {"_build", "gen_modules", "auto_examples", "_templates", "sg_execution_times.rst"}
PAGES = sorted(p for p in DOCS.rglob("*.rst")
               if not BUILD_OUTPUT & set(p.relative_to(DOCS).parts))
SESSION_PAGES = [p for p in PAGES if ">>> " in p.read_text(encoding="utf-8")]


def test_the_pages_with_sessions_are_found():
    names = {p.relative_to(DOCS).as_posix() for p in SESSION_PAGES}
    assert {"getting_started.rst", "user_guide/model.rst", "user_guide/input.rst",
            "user_guide/reproducibility.rst"} <= names


@pytest.mark.parametrize("page", SESSION_PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_docs_page_sessions(page, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a page that writes files writes them here
    text = page.read_text(encoding="utf-8")
    test = doctest.DocTestParser().get_doctest(text, {}, page.name, str(page), 0)
    assert test.examples
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {page}"


def readme_main_command():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- main-command -->\s*```bash\n(.*?)```", text, flags=re.S)
    assert block, "README has no main command"
    return block.group(1).strip()


def test_readme_main_command_runs(tmp_path):
    # The install step is CI's job (.ci/run runs the whole line in a fresh venv);
    # here the installed `mfcy` runs the rest of the line.
    command = readme_main_command().split("&&")[-1].strip()
    argv = shlex.split(command)
    assert argv[0] == "mfcy"
    executable = shutil.which("mfcy") or shutil.which("mfcy", path=str(pathlib.Path(
        sys.executable).parent))
    assert executable, "the mfcy command is not installed"
    done = subprocess.run([executable, *argv[1:]], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr
    assert "final MSE 0.000533087" in done.stdout
    out = tmp_path / argv[argv.index("--out") + 1]
    for name in ("loss.png", "reconstruction.png"):
        assert (out / name).stat().st_size > 1000
