"""Hyperparameters: one declarative table of constraints, checked once per call.

Every estimator declares its constructor parameters as a table of
:class:`Constraint` objects; :func:`validate` checks the values an estimator
holds against it and returns a frozen :class:`Params`. The constructor stores
what it is given unchanged (scikit-learn's rule, so ``get_params`` and
``clone`` work); the checks run when the values are used (``fit``,
``fold_in``, ``load``).

Booleans must be real ``bool`` values (or numpy's): ``biased="False"`` is a
non-empty string and would read as true, so it is refused rather than guessed.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Constraint", "Integer", "Real", "Boolean", "Choice", "Dtype", "Anything",
           "RatingScale", "Params", "validate", "available_cores"]


def available_cores():
    """The cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Constraint:
    """What one hyperparameter may be; :meth:`check` returns it normalised."""

    #: Whether None is accepted (then :attr:`none_means` says what it stands for).
    allow_none = False

    def check(self, name, value, params):  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Integer(Constraint):
    """An integer (not a bool) of at least ``minimum``; None allowed when ``none`` is."""

    minimum: int
    none: Any = None

    @property
    def allow_none(self):
        return self.none is not None

    def check(self, name, value, params):
        if value is None and self.none is not None:
            return self.none() if callable(self.none) else self.none
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name} must be an integer >= {self.minimum}, got {value!r}")
        if value < self.minimum:
            raise ValueError(f"{name} must be >= {self.minimum}, got {value}")
        return int(value)


@dataclass(frozen=True)
class Real(Constraint):
    """A finite real number, > 0 (``positive``) or >= 0; None may stand for another parameter.

    ``none_is`` names an earlier parameter whose checked value None stands for;
    ``none_from`` is a function of the earlier checked values giving it (e.g. a
    learning rate that depends on the schedule).
    """

    positive: bool = False
    none_is: str | None = None
    none_from: Any = None

    def check(self, name, value, params):
        if value is None and self.none_is is not None:
            return params[self.none_is]
        if value is None and self.none_from is not None:
            return float(self.none_from(params))
        if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
                or not math.isfinite(value)):
            raise ValueError(f"{name} must be a finite real number, got {value!r}")
        if self.positive and value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
        if not self.positive and value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
        return float(value)


@dataclass(frozen=True)
class Boolean(Constraint):
    """``True`` or ``False`` (Python's or numpy's), nothing that merely has a truth value."""

    def check(self, name, value, params):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {value!r}")
        return bool(value)


@dataclass(frozen=True)
class Choice(Constraint):
    """One of a fixed set of strings."""

    choices: tuple

    def check(self, name, value, params):
        if not isinstance(value, str) or value not in self.choices:
            raise ValueError(f"{name} must be one of {self.choices}, got {value!r}")
        return value


@dataclass(frozen=True)
class Dtype(Constraint):
    """A floating dtype among ``choices``, given as anything :class:`numpy.dtype` reads."""

    choices: tuple

    def check(self, name, value, params):
        try:
            dtype = np.dtype(value)
        except TypeError:
            dtype = None
        if dtype is None or dtype.name not in self.choices:
            raise ValueError(f"{name} must be one of {self.choices}, got {value!r}")
        return dtype


@dataclass(frozen=True)
class Anything(Constraint):
    """Not checked here (e.g. ``random_state``, which NumPy checks when it is used)."""

    def check(self, name, value, params):
        return value


@dataclass(frozen=True)
class RatingScale(Constraint):
    """None, or a pair ``(low, high)`` of finite reals with ``low < high``, as a tuple of floats."""

    allow_none = True

    def check(self, name, value, params):
        if value is None:
            return None
        try:
            low, high = value
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be None or a pair (low, high), got {value!r}") from None
        for bound in (low, high):
            if (isinstance(bound, (bool, np.bool_)) or not isinstance(bound, numbers.Real)
                    or not math.isfinite(bound)):
                raise ValueError(f"{name} must hold two finite real numbers, got {value!r}")
        if not low < high:
            raise ValueError(f"{name} must be (low, high) with low < high, got {value!r}")
        return (float(low), float(high))


class Params:
    """Checked hyperparameters, read-only: ``params.n_factors`` or ``params["n_factors"]``.

    The values live in the instance dictionary, so reading one is an ordinary
    attribute access (the epoch loop reads several per epoch).
    """

    def __init__(self, values):
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __getitem__(self, name):
        return self.__dict__[name]

    def __setattr__(self, name, value):
        raise AttributeError("Params are read-only: use replace()")

    def __delattr__(self, name):
        raise AttributeError("Params are read-only: use replace()")

    def __contains__(self, name):
        return name in self.__dict__

    def replace(self, **changes):
        """A copy with some values changed (e.g. the thread count a fit settles on)."""
        unknown = set(changes) - set(self.__dict__)
        if unknown:
            raise KeyError(f"unknown parameters {sorted(unknown)}")
        return Params({**self.__dict__, **changes})

    def as_dict(self):
        return dict(self.__dict__)

    def __repr__(self):
        return f"Params({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


def validate(table, values):
    """Check ``values`` (a mapping of parameter names) against ``table``, in table order.

    A constraint may refer to a parameter earlier in the table (a
    ``bias_regularization`` of None means the ``regularization``).
    """
    checked = {}
    for name, constraint in table.items():
        checked[name] = constraint.check(name, values[name], checked)
    return Params(checked)
