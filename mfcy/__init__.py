"""mfcy: collaborative filtering by matrix factorization, with a compiled SGD kernel.

Public names: :class:`MatrixFactorization`, :class:`SVDpp`, :class:`NMF`,
:class:`BaselineOnly`, the exceptions
:class:`DivergenceError` and :class:`NotFittedError`, the warning
:class:`UnknownIdWarning` (and
:class:`mfcy.io.ModelFileError`), :func:`build_info`, and the
modules :mod:`mfcy.datasets`, :mod:`mfcy.metrics`, :mod:`mfcy.model_selection` and
:mod:`mfcy.plotting`.
"""

import importlib

from ._version import __version__

# The public names, imported on first use (PEP 562): ``import mfcy`` loads no
# extension, numpy or pandas, so it is quick and free of side effects, and the
# ``mfcy`` command (mfcy/_entry.py) can catch a Ctrl-C during the heavy imports.
_LAZY_NAMES = {"MatrixFactorization": "model", "SVDpp": "svdpp", "NMF": "nmf",
               "BaselineOnly": "baseline", "DivergenceError": "exceptions",
               "ModelFileError": "exceptions", "NotFittedError": "exceptions",
               "UnknownIdWarning": "exceptions"}
_LAZY_SUBMODULES = ("datasets", "io", "metrics", "model_selection", "plotting")


def __getattr__(name):
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    elif name in _LAZY_SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY_NAMES) | set(_LAZY_SUBMODULES))


def build_info():
    """How this installation of mfcy was built, and which compiled loops it runs.

    Returns
    -------
    dict
        ``version``: the package version. ``openmp``: whether the kernel was
        built with OpenMP (without it every fit runs on one thread).
        ``vector_isa``: the copy of the SGD loops in use, ``"avx512f"`` or
        ``"avx2+fma"`` (chosen at import on CPUs that have them; the AVX-512F
        copy runs fits of ``mfcy._sgd.avx512_min_k()`` factors or more, the
        AVX2+FMA one those with fewer) or ``"baseline"`` (SSE2 on x86-64);
        the environment variable ``MFCY_ISA`` (``baseline``, ``avx2``,
        ``avx512``) forces one. The copies agree to rounding, not to the bit
        (see the user guide's reproducibility page). ``kernel_path``: the baseline copy of the
        loops this build compiled, ``"sse2"`` (x86-64), ``"neon"`` (aarch64),
        ``"vector16"`` (another CPU with 16-byte GNU C vectors) or
        ``"portable"`` (plain C: MSVC on Windows, or ``MFCY_PORTABLE=1`` at
        build time, bit-identical to ``"sse2"`` on x86-64). ``compiler``:
        the C compiler that built the kernel. ``machine``: the CPU
        architecture Python runs on. ``debug_build``: whether every index is checked
        (``MFCY_DEBUG=1`` at build time). ``sanitizers``: the ``-fsanitize=``
        list of the build, ``""`` for none.

    Examples
    --------
    >>> import mfcy
    >>> sorted(mfcy.build_info())
    ['compiler', 'debug_build', 'kernel_path', 'machine', 'openmp', 'sanitizers', 'vector_isa', 'version']
    """
    import platform

    from ._extensions import _sgd

    return {"version": __version__, "openmp": _sgd.openmp_enabled(),
            "vector_isa": _sgd.vector_isa(), "kernel_path": _sgd.kernel_path(),
            "compiler": _sgd.compiler(), "machine": platform.machine(),
            "debug_build": _sgd.debug_build(), "sanitizers": _sgd.sanitizers()}


__all__ = ["MatrixFactorization", "SVDpp", "NMF", "BaselineOnly", "DivergenceError",
           "NotFittedError", "UnknownIdWarning", "build_info", "datasets", "metrics",
           "model_selection", "__version__"]
