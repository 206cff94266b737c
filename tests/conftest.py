"""Shared test set-up: a non-interactive matplotlib backend, small helpers, the
hypothesis profiles of the fuzz tests."""

import os

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from helpers import FUZZ_EXAMPLES

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is a test extra; the kernel tests run without it
    settings = None

if settings is not None:
    _QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
              HealthCheck.large_base_example]
    # ci (the default): a fixed, bounded set of examples, the same on every run
    # (derandomized, no example database), and no deadline: a shared, noisy VM
    # must not turn a slow example into a failure.
    settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True,
                              database=None, suppress_health_check=_QUIET,
                              print_blob=True)
    # dev: fresh random examples each run, failures remembered in .hypothesis/.
    settings.register_profile("dev", max_examples=150, deadline=None,
                              suppress_health_check=_QUIET)
    # thorough: a long local hunt, e.g. HYPOTHESIS_PROFILE=thorough pytest tests/test_fuzz.py
    settings.register_profile("thorough", max_examples=3000, deadline=None,
                              suppress_health_check=_QUIET)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


#: A fuzz test must see at least this fraction of its generated inputs succeed
#: (and at least one): a test whose every example ends in a clear error would
#: pass while testing nothing but the refusals.
MIN_VALID_FRACTION = 0.02


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    before = {name: tuple(counts) for name, counts in FUZZ_EXAMPLES.items()}
    result = yield
    for name, (count, valid) in FUZZ_EXAMPLES.items():
        ran, succeeded = count - before.get(name, (0, 0))[0], valid - before.get(name, (0, 0))[1]
        if ran and succeeded < max(1, MIN_VALID_FRACTION * ran):
            raise AssertionError(f"fuzz test {name}: only {succeeded} of {ran} generated inputs "
                                 f"were valid (at least {MIN_VALID_FRACTION:.0%} must be): the "
                                 "strategy tests little beyond the refusals")
    return result


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_terminal_summary(terminalreporter):
    if FUZZ_EXAMPLES:
        total = sum(count for count, _ in FUZZ_EXAMPLES.values())
        detail = ", ".join(f"{name} {count} ({valid} valid)"
                           for name, (count, valid) in sorted(FUZZ_EXAMPLES.items()))
        profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
        terminalreporter.write_line(f"hypothesis ({profile} profile): {total} fuzz examples "
                                    f"ran ({detail})")


@pytest.fixture(scope="module")
def client():
    """A local Dask cluster of two worker processes, one per test module that asks."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client
