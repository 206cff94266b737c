"""The installed package's version (one place, so that no module imports the package root)."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("mfcy")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"
