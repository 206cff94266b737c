"""mfcy: collaborative filtering by matrix factorization, with a compiled SGD kernel.

Public names: :class:`MatrixFactorization`, :class:`DivergenceError`, and the
modules :mod:`mfcy.datasets`, :mod:`mfcy.metrics`, :mod:`mfcy.model_selection` and
:mod:`mfcy.plotting`.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import datasets, metrics, model_selection
from .model import DivergenceError, MatrixFactorization

try:
    __version__ = _version("mfcy")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["MatrixFactorization", "DivergenceError", "datasets", "metrics", "model_selection",
           "__version__"]
