"""Ctrl-C during a long fit: a real SIGINT sent to a real process.

``fit`` defers SIGINT to the end of the running epoch, then re-raises
``KeyboardInterrupt`` with the model fitted up to that epoch.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from helpers import SIGINT_DEFAULT

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

CHILD = textwrap.dedent("""
    import json, signal, socket, sys, threading
    import numpy as np
    from mfcy import MatrixFactorization

    rng = np.random.default_rng(0)
    n = 1_000_000
    X = np.column_stack([rng.integers(0, 6000, n), rng.integers(0, 3000, n)])
    y = rng.normal(3.0, 1.0, n)
    params = dict(n_factors=32, learning_rate=0.005, random_state=1, n_threads=1,
                  track_loss=True, dtype=sys.argv[1])
    model = MatrixFactorization(n_epochs=100_000, verbose=True, **params)

    # The moment SIGINT arrives, seen from C: Python's low-level handler writes to
    # the wakeup fd whatever Python-level handler fit() has installed. A watcher
    # thread then notes how many epochs were complete (the kernel runs without
    # the GIL, so the watcher runs even in the middle of an epoch).
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno())
    seen = {}
    def watch():
        reader.recv(1)
        seen["epochs_at_signal"] = model.n_epochs_
    threading.Thread(target=watch, daemon=True).start()

    try:
        model.fit(X, y)
        outcome = "finished"
    except KeyboardInterrupt:
        outcome = "KeyboardInterrupt"
    signal.set_wakeup_fd(-1)

    # Fitted up to the last completed epoch: a fresh fit of exactly that many
    # epochs gives the same bits, and the recorded loss is that of the factors.
    done = model.n_epochs_
    again = MatrixFactorization(n_epochs=done, **params).fit(X, y)
    same = all(np.array_equal(getattr(model, a), getattr(again, a)) for a in
               ("user_factors_", "item_factors_", "user_bias_", "item_bias_"))
    users = np.searchsorted(model.users_, X[:, 0])
    items = np.searchsorted(model.items_, X[:, 1])
    print(json.dumps({
        "outcome": outcome, "epochs_done": done, "seen": seen,
        "history_lengths": sorted({len(v) for v in model.history_.values()}),
        "same_as_fresh_fit": same,
        "history_same": model.history_["train_mse"] == again.history_["train_mse"],
        "finite": bool(np.isfinite(model.user_factors_).all()
                       and np.isfinite(model.item_factors_).all()),
        "predict_works": bool(np.isfinite(model.predict(X[:5])).all()),
        "handler_restored": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
    }), flush=True)
""")


# The delay after an epoch's line only moves where the signal lands: in the
# epoch's Python bookkeeping (0) or, most likely, inside the next kernel call.
@pytest.mark.parametrize("dtype,delay", [("float64", 0.0), ("float32", 0.1)])
def test_sigint_stops_fit_after_the_running_epoch_with_a_consistent_model(dtype, delay,
                                                                          tmp_path):
    # cwd=tmp_path: `python -c` puts the working directory first on sys.path, and
    # the child must import the installed package, not a source tree.
    proc = subprocess.Popen([sys.executable, "-c", CHILD, dtype], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, **SIGINT_DEFAULT)
    try:
        lines = []
        for line in proc.stdout:  # verbose: one line per completed epoch
            lines.append(line)
            if line.startswith("epoch ") and int(line.split()[1].split("/")[0]) >= 3:
                time.sleep(delay)
                proc.send_signal(signal.SIGINT)
                break
        else:
            pytest.fail(f"the child ended before its third epoch: {proc.stderr.read()}")
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["outcome"] == "KeyboardInterrupt"
    done, at_signal = result["epochs_done"], result["seen"]["epochs_at_signal"]
    # Control came back within one epoch: at most the epoch that was running when
    # the signal arrived was completed after it.
    assert at_signal >= 3
    assert at_signal <= done <= at_signal + 1, result
    assert result["history_lengths"] == [done]
    assert result["same_as_fresh_fit"] and result["history_same"], result
    assert result["finite"] and result["predict_works"]
    assert result["handler_restored"]


# A Ctrl-C while the `mfcy` command is still importing numpy, pandas and the
# extensions (most of a second): the child raises SIGINT from inside the
# import of numpy, as a terminal's Ctrl-C would arrive.
IMPORT_INTERRUPT_CHILD = """
import builtins, signal, sys
real_import = builtins.__import__
def interrupting_import(name, *args, **kwargs):
    if name == "numpy":
        builtins.__import__ = real_import
        signal.raise_signal(signal.SIGINT)
    return real_import(name, *args, **kwargs)
builtins.__import__ = interrupting_import
if sys.argv[1] == "command":
    from mfcy.cli import main  # what the installed `mfcy` script runs
    sys.exit(main(["info", "no-such-model.npz"]))
from mfcy import MatrixFactorization  # a program's import: a KeyboardInterrupt, as usual
"""


def test_ctrl_c_while_the_command_imports_is_one_line_not_a_traceback(tmp_path):
    run = subprocess.run([sys.executable, "-c", IMPORT_INTERRUPT_CHILD, "command"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120,
                         **SIGINT_DEFAULT)
    assert (run.returncode, run.stderr, run.stdout) == (130, "mfcy: interrupted\n", "")
    # The child's interrupt is real: in a program's own import it surfaces.
    program = subprocess.run([sys.executable, "-c", IMPORT_INTERRUPT_CHILD, "program"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=120,
                             **SIGINT_DEFAULT)
    assert program.returncode != 0 and "KeyboardInterrupt" in program.stderr
