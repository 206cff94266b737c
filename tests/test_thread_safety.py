"""One model object used from several threads while it is being fitted (issue 18, items 1-2).

The fitted state is one immutable snapshot installed in one step, and every
reader takes one reference to it: a fit never reads another fit's arrays with
its own indices, and ``predict`` never maps ids with one state and reads the
factors of another. Run in a subprocess: the failure these guard against was
a segmentation fault.
"""

import json
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import json, sys, threading
    import numpy as np
    from mfcy import MatrixFactorization

    rng = np.random.default_rng(0)
    n = 150_000
    big_X = np.column_stack([rng.integers(0, 4000, n), rng.integers(0, 2000, n)])
    big_y = rng.integers(1, 6, n).astype(float)
    tiny_X = np.array([[0, 0], [1, 1], [2, 0], [0, 1], [3, 2], [1, 2], [4, 0], [2, 2],
                       [3, 1], [4, 2]])
    tiny_y = np.arange(1, 11, dtype=float) % 5 + 1
    model = MatrixFactorization(n_factors=16, n_epochs=int(sys.argv[2]), learning_rate=0.01,
                                random_state=1, n_threads=1)
    errors, bad = [], []

    def guarded(f):
        def run():
            try:
                f()
            except Exception as exc:  # reported, never a crash
                errors.append(f"{type(exc).__name__}: {exc}")
        return run

    def fit_big():
        model.fit(big_X, big_y)

    def refit_tiny():
        for _ in range(40):
            model.fit(tiny_X, tiny_y)

    def predict_while_fitting():
        for _ in range(400):
            try:
                p = model.predict(tiny_X)
            except ValueError:  # not fitted yet
                continue
            if not (np.isfinite(p).all() and np.abs(p).max() < 100):
                bad.append(p.tolist())

    if sys.argv[1] == "two_fits":
        threads = [threading.Thread(target=guarded(fit_big)),
                   threading.Thread(target=guarded(refit_tiny))]
    else:
        model.fit(tiny_X, tiny_y)
        threads = [threading.Thread(target=guarded(fit_big)),
                   threading.Thread(target=guarded(refit_tiny)),
                   threading.Thread(target=guarded(predict_while_fitting))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Whichever fit installed last, the model is whole: one state, consistent.
    state_ok = (model.user_factors_.shape[0] == len(model.users_)
                and model.item_factors_.shape[0] == len(model.items_)
                and bool(np.isfinite(model.predict(tiny_X)).all()))
    print(json.dumps({"errors": errors, "bad": bad[:3], "n_bad": len(bad),
                      "state_ok": state_ok}))
""")


def _run(mode, epochs, tmp_path):
    # cwd=tmp_path: the child must import the installed package, not a source tree.
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(epochs)], capture_output=True,
                         text=True, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, f"rc {out.returncode}: {out.stderr[-2000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_threads_fitting_one_object_neither_crash_nor_mix_states(tmp_path):
    result = _run("two_fits", 8, tmp_path)
    assert result["errors"] == [] and result["state_ok"], result


def test_predict_during_a_refit_sees_one_whole_state(tmp_path):
    result = _run("predict", 8, tmp_path)
    assert result["errors"] == [] and result["n_bad"] == 0 and result["state_ok"], result
