"""The exceptions mfcy raises beyond the built-in ones.

Each is a :class:`ValueError` (a bad value given to mfcy: hyperparameters,
ratings, a file), so ``except ValueError`` catches every refusal; the
subclasses let a caller tell the cases apart.
"""

import sys

__all__ = ["DivergenceError", "ModelFileError", "NotFittedError", "RatingsFileError",
           "UnknownIdWarning"]


class DivergenceError(ValueError):
    """Training diverged: the loss or the factors stopped being finite.

    Raised at the end of the epoch in which it happened; the usual cure is a
    smaller ``learning_rate``.
    """


class ModelFileError(ValueError):
    """A file that is not a readable, intact mfcy model file."""


class NotFittedError(ValueError, AttributeError):
    """A model used before :meth:`~mfcy.MatrixFactorization.fit` (or ``load``).

    Also an :class:`AttributeError`, as scikit-learn's ``NotFittedError`` is,
    so that ``hasattr``-style checks of fitted state keep working.
    """


class RatingsFileError(ValueError):
    """A ratings file that cannot be read as (user, item, rating) rows.

    The message names the file and, for a malformed line, its line number
    (1-based, counting every line of the file). ``line`` holds that number,
    or None when the problem is not tied to one line.

    Parameters
    ----------
    message : str
        What is wrong, naming the file (and the line).
    line : int, optional
        The 1-based line number of the malformed line.
    """

    def __init__(self, message, line=None):
        super().__init__(message)
        self.line = line


class UnknownIdWarning(UserWarning):
    """Ids asked of a model that were not in its training data (they get the baseline).

    ``predict(..., return_fallback=True)`` returns which predictions fell back
    instead of warning; ``warnings.filterwarnings("ignore", category=UnknownIdWarning)``
    silences it.
    """


_SKLEARN_NOT_FITTED = {}


def not_fitted(message):
    """A :class:`NotFittedError` to raise; also scikit-learn's when scikit-learn is in use.

    scikit-learn stays optional and is never imported for this: a caller who
    catches ``sklearn.exceptions.NotFittedError`` (or runs scikit-learn's
    checks) has imported it, and then the error is of a class that derives
    from both mfcy's and scikit-learn's ``NotFittedError``.
    """
    sk = sys.modules.get("sklearn.exceptions")
    if sk is None:
        return NotFittedError(message)
    cls = _SKLEARN_NOT_FITTED.get(sk.NotFittedError)
    if cls is None:
        cls = type("NotFittedError", (NotFittedError, sk.NotFittedError),
                   {"__module__": "mfcy", "__doc__": NotFittedError.__doc__})
        _SKLEARN_NOT_FITTED[sk.NotFittedError] = cls
    return cls(message)


def data_conversion_warning():
    """scikit-learn's ``DataConversionWarning`` when scikit-learn is in use, else ``UserWarning``."""
    sk = sys.modules.get("sklearn.exceptions")
    return UserWarning if sk is None else sk.DataConversionWarning


# Shown (in tracebacks and the API reference) under the names users import them by.
DivergenceError.__module__ = NotFittedError.__module__ = UnknownIdWarning.__module__ = "mfcy"
ModelFileError.__module__ = "mfcy.io"
RatingsFileError.__module__ = "mfcy.datasets"
