"""The exceptions mfcy raises beyond the built-in ones.

Each is a :class:`ValueError` (a bad value given to mfcy: hyperparameters,
ratings, a file), so ``except ValueError`` catches every refusal; the
subclasses let a caller tell the cases apart.
"""

__all__ = ["DivergenceError", "ModelFileError", "NotFittedError"]


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


# Shown (in tracebacks and the API reference) under the names users import them by.
DivergenceError.__module__ = NotFittedError.__module__ = "mfcy"
ModelFileError.__module__ = "mfcy.io"
