"""The compiled extensions, loaded once with OpenMP's passive waiting, ``os.environ`` untouched.

Every module of mfcy that uses an extension (``_layout``, ``_models``, ``_sgd``)
imports this module first (tests/test_architecture.py checks it), so the
extensions are loaded here whichever public name or submodule a user imports
first, and ``import mfcy`` itself stays cheap (its names are loaded on first use).

OpenMP threads that wait at a barrier spin by default. The kernel meets a
barrier after every stratum, and on a busy machine (a CI runner, a laptop
running a browser) a spinning thread takes the core its partner needs
(benchmarks/README.md has the measurement). Sleeping waits cost a few
microseconds per barrier on an idle machine.

The OpenMP runtime reads ``OMP_WAIT_POLICY`` once, when it initialises, so
the hint is set only around that moment and the environment is then put back
exactly as it was: other libraries and subprocesses never see it. GNU
libgomp initialises when it is loaded (with the extension); LLVM's libomp on
its first OpenMP call, which :func:`_initialise_runtime` makes while the hint
is set. A setting of the user's (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``)
always wins, and if another library loaded the runtime first its settings
stay.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

__all__ = ["_layout", "_models", "_sgd"]

_HINT = ("OMP_WAIT_POLICY", "PASSIVE")


@contextlib.contextmanager
def _passive_waits_hint():
    name, value = _HINT
    if name in os.environ or "GOMP_SPINCOUNT" in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        del os.environ[name]


def _loaded_openmp_runtimes():
    """Paths of the OpenMP runtimes mapped into this process (Linux; empty elsewhere)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(None, 5)[-1].strip() for line in maps if "/" in line}
    except OSError:  # pragma: no cover - not Linux
        return []
    return sorted(p for p in paths if os.path.basename(p).startswith(("libomp", "libiomp")))


def _initialise_runtime():
    """Make libomp read its environment now (libgomp already did, when it loaded)."""
    for path in _loaded_openmp_runtimes():
        try:
            ctypes.CDLL(path).omp_get_max_threads()
        except (OSError, AttributeError):  # pragma: no cover - an unexpected runtime
            pass


with _passive_waits_hint():
    from . import _layout, _models, _sgd  # noqa: E402,F401  (loads the OpenMP runtime they link)

    _initialise_runtime()
