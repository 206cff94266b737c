"""Sizes that once exhausted memory before a clear error (issue 18, item 8).

The cases that allocated gigabytes run in a subprocess under an address-space
limit, so that a regression is a failed test, not a machine out of memory.
"""

import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

from mfcy import MatrixFactorization, build_info

LIMITED_FIT = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    import numpy as np
    import scipy.sparse as sp
    from mfcy import MatrixFactorization
    case = sys.argv[1]
    try:
        if case == "sparse":
            X = sp.coo_matrix(([4.0, 3.0, 5.0], ([0, 5, 10**9 - 1], [7, 0, 10**9 - 1])),
                              shape=(10**9, 10**9))
            MatrixFactorization(n_factors=2, n_epochs=1).fit(X)
        else:
            MatrixFactorization(n_factors=2, n_epochs=1, n_blocks=int(case)).fit(
                np.array([[0, 0], [1, 1], [2, 2]]), [1.0, 2.0, 3.0])
    except ValueError as exc:
        print("ValueError:", exc)
    with open("/proc/self/status") as status:  # this image's peak, not the parent's
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    print("peak_mib", peak // 1024)
""")


LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="RLIMIT_AS and /proc/self/status")
# ASan reserves terabytes of address space and keeps freed memory in quarantine:
# an address-space limit or a peak-RSS bound means nothing in a sanitizer build.
SANITIZED = pytest.mark.skipif(bool(build_info()["sanitizers"]),
                               reason="memory bounds are meaningless under ASan")


def run_limited(case):
    # cwd away from the source tree: `python -c` puts the working directory on
    # sys.path, and the tests must import the installed package.
    result = subprocess.run([sys.executable, "-c", LIMITED_FIT, case], capture_output=True,
                            text=True, timeout=600, cwd=tempfile.gettempdir())
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@LINUX_ONLY
@SANITIZED
def test_a_huge_mostly_empty_sparse_matrix_is_a_clear_error():
    # Regression: 7.9 GB (the ids of 10**9 rows and columns), then MemoryError.
    out = run_limited("sparse")
    assert "ValueError: the sparse matrix declares shape (1000000000, 1000000000)" in out, out
    assert "pairs" in out
    assert int(out.split("peak_mib")[1]) < 500


@LINUX_ONLY
@SANITIZED
@pytest.mark.parametrize("n_blocks", ["20000", str(10**5)])
def test_a_block_grid_far_larger_than_the_ratings_is_a_clear_error(n_blocks):
    # Regression: n_blocks**2 blocks of bookkeeping, multi-GiB for 3 ratings.
    out = run_limited(n_blocks)
    assert f"ValueError: n_blocks={n_blocks}" in out, out
    assert int(out.split("peak_mib")[1]) < 500


def test_block_grids_up_to_1024_or_the_ratings_stay_allowed():
    X = np.column_stack([np.arange(50), np.arange(50)])
    MatrixFactorization(n_factors=2, n_epochs=1, n_blocks=1024).fit(X, np.ones(50))
    # shuffle=False ignores n_blocks: nothing to refuse.
    MatrixFactorization(n_factors=2, n_epochs=1, n_blocks=10**5, shuffle=False).fit(
        X, np.ones(50))


def test_a_loss_that_grows_while_staying_finite_is_a_warning():
    # Regression: n_factors=10**6 with 2 users predicted 6.6e16 without a word.
    X, y = np.array([[0, 0], [1, 1]]), [1.0, 5.0]
    for track_loss in (True, False):
        model = MatrixFactorization(n_factors=10**6, n_epochs=3, random_state=0,
                                    track_loss=track_loss)
        with pytest.warns(UserWarning, match="training loss grew .* learning_rate"):
            model.fit(X, y)
        assert np.isfinite(model.user_factors_).all()  # fitted, as before


@pytest.mark.filterwarnings("error")
def test_a_converging_fit_does_not_warn():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 30, 400), rng.integers(0, 20, 400)])
    MatrixFactorization(n_factors=4, n_epochs=20, random_state=0).fit(
        X, rng.uniform(1, 5, 400))
