"""Package-level promises: importing mfcy has no side effects; parameters are checked strictly."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mfcy import MatrixFactorization


def _run(code, tmp_path, env=None):
    # cwd=tmp_path: the child must import the installed package, not a source tree.
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_leaves_the_environment_unchanged(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    result = _run("""
        import json, os, subprocess, sys
        before = dict(os.environ)
        import mfcy, mfcy.io, mfcy.model_selection, mfcy.metrics, mfcy.plotting
        mfcy.MatrixFactorization(n_factors=2, n_epochs=2).fit([[0, 0], [1, 1]], [1.0, 2.0])
        child = subprocess.run([sys.executable, "-c",
                                "import os; print(os.environ.get('OMP_WAIT_POLICY'))"],
                               capture_output=True, text=True).stdout.strip()
        print(json.dumps({"same": dict(os.environ) == before, "child": child}))
    """, tmp_path, env=env)
    assert result == {"same": True, "child": "None"}


def test_a_users_openmp_setting_is_kept(tmp_path):
    env = dict(os.environ, OMP_WAIT_POLICY="active")
    result = _run("""
        import json, os
        import mfcy
        print(json.dumps(os.environ.get("OMP_WAIT_POLICY")))
    """, tmp_path, env=env)
    assert result == "active"


@pytest.mark.parametrize("name", ["biased", "shuffle", "track_loss", "verbose",
                                  "early_stopping", "warm_start"])
@pytest.mark.parametrize("value", ["False", 2, None, 0, 1.0, "yes"])
def test_boolean_parameters_must_be_real_booleans(name, value):
    with pytest.raises(ValueError, match=f"{name} must be True or False, got {value!r}"):
        MatrixFactorization(n_factors=2, n_epochs=1, **{name: value}).fit([[0, 0]], [1.0])


def test_numpy_booleans_are_booleans():
    model = MatrixFactorization(n_factors=2, n_epochs=1, biased=np.False_, shuffle=np.True_)
    assert not model.fit([[0, 0], [1, 1]], [1.0, 2.0]).user_bias_.any()


def test_checked_parameters_are_frozen():
    params = MatrixFactorization()._validated_params()
    with pytest.raises(AttributeError):
        params.n_factors = 3
    assert params.replace(n_threads=1).n_threads == 1 and params.n_factors == 100


SIGNAL_CHILD = """
    import json, signal, sys, threading
    import numpy as np
    from mfcy import MatrixFactorization
    mine = lambda signum, frame: None
    setting = {"ignored": signal.SIG_IGN, "own": mine, "default": signal.default_int_handler}
    signal.signal(signal.SIGINT, setting[sys.argv[1]])
    seen = []
    def callback(model, epoch, history):
        seen.append(signal.getsignal(signal.SIGINT))
    X = np.array([[0, 0], [1, 1], [0, 1]]); y = np.array([1.0, 2.0, 3.0])
    model = MatrixFactorization(n_factors=2, n_epochs=2)
    if sys.argv[2] == "thread":
        t = threading.Thread(target=model.fit, args=(X, y), kwargs={"callback": callback})
        t.start(); t.join()
    else:
        model.fit(X, y, callback=callback)
    after = signal.getsignal(signal.SIGINT)
    print(json.dumps({"during_is_setting": [s is setting[sys.argv[1]] for s in seen],
                      "after_is_setting": after is setting[sys.argv[1]]}))
"""


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("setting,where,swapped", [
    ("ignored", "main", False), ("own", "main", False), ("default", "main", True),
    ("default", "thread", False), ("ignored", "thread", False)])
def test_fit_installs_its_sigint_handler_only_over_the_default_in_the_main_thread(
        setting, where, swapped, tmp_path):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(SIGNAL_CHILD), setting, where],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["during_is_setting"] == [not swapped] * 2
    assert result["after_is_setting"]
