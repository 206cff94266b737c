"""The fitted state of a model: one immutable snapshot, installed in one step.

A model's fitted attributes (``user_factors_``, ``users_``, ``history_``, …)
are read-only views of a single :class:`FittedState` object held in the
model's ``_fitted`` slot. :func:`install` is the only code that writes it:
``fit``, the Dask fit, :func:`mfcy.io.load_model` and ``fold_in`` build a new
state privately and install it with one assignment, so a reader that takes
one reference (:func:`current`) at entry sees one consistent state — id maps,
factors, biases and the seen-items CSR of the same fit — whatever another
thread installs meanwhile.

What this guarantees, and what not
----------------------------------
* ``predict``, ``recommend``, ``score``, ``save`` and the other readers are
  safe from any number of threads, also while another thread fits the same
  object: each call sees either the state before or the one after an
  install, never a mix, so it never indexes one state's arrays with
  another's indices.
* During a fit, the state installed after each epoch holds the arrays the
  kernel keeps updating in place (copying the factors every epoch would cost
  memory and time): a concurrent reader gets predictions of the running fit,
  consistent in shape and ids, but possibly from the middle of an epoch.
* Two threads fitting the same object at once do not crash or mix states
  (each fit trains its own arrays); the object ends with the state of
  whichever fit installed last. That is rarely what anyone wants: fit a
  :func:`sklearn.base.clone` per thread instead.
"""

from __future__ import annotations

import dataclasses
import importlib
from functools import cached_property

import numpy as np

from ._extensions import _models, _sgd
from ._input import encode_query_ids
from .exceptions import not_fitted

__all__ = ["FittedState", "FittedAttributes", "install", "uninstall", "current",
           "register_model", "model_class"]


@dataclasses.dataclass(frozen=True, eq=False)
class FittedState:
    """Everything a fitted factorization model knows, in one immutable object.

    Attributes
    ----------
    user_factors, item_factors : ndarray of shape (n, k)
    user_bias, item_bias : ndarray of shape (n,)
        Zeros for an unbiased model (so that formulas need no case).
    biased : bool
    global_mean : float
    rating_range : tuple of float
    users, items : ndarray
        Index → id.
    seen_indptr, seen_items : ndarray
        The training interactions, a CSR of item indices per user.
    history : dict of lists
    n_epochs : int
    best_epoch : int or None
        Only for a fit with a validation set.
    n_duplicates : int or None
        Input rows of the fit that repeated a (user, item) pair and were
        averaged into it; None for a model loaded from a file (the file does
        not record it).
    user_accumulator, item_accumulator : ndarray of shape (n,) or None
        The ``"adagrad"`` schedule's accumulated squared gradient per row
        (what a ``warm_start`` fit continues from); None for the constant
        schedule and for a loaded model (model files do not hold them).
    implicit_factors : ndarray of shape (n_items, k) or None
        SVD++'s implicit item factors ``y_j``: the user side of a prediction is
        then ``p_u + |N(u)|^-1/2 Σ_{j∈N(u)} y_j`` over the seen items N(u)
        (:attr:`scoring_user_factors`). None for the other models.
    phase_seconds : dict or None
        Wall seconds of each phase of the fit (``fit_phases_``); None for a
        loaded model and for the estimators that do not time them.
    """

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    biased: bool
    global_mean: float
    rating_range: tuple
    users: np.ndarray
    items: np.ndarray
    seen_indptr: np.ndarray
    seen_items: np.ndarray
    history: dict
    n_epochs: int
    best_epoch: int | None = None
    n_duplicates: int | None = None
    user_accumulator: np.ndarray | None = None
    item_accumulator: np.ndarray | None = None
    implicit_factors: np.ndarray | None = None
    phase_seconds: dict | None = None

    @classmethod
    def build(cls, user_factors, item_factors, user_bias, item_bias, biased, **fields):
        """A state whose unbiased models get zero biases of the factors' dtype."""
        if not biased:
            user_bias = np.zeros(user_factors.shape[0], dtype=user_factors.dtype)
            item_bias = np.zeros(item_factors.shape[0], dtype=item_factors.dtype)
        return cls(user_factors, item_factors, user_bias, item_bias, bool(biased), **fields)

    #: Columns of the ``X`` that ``predict(X)`` takes: (user id, item id)
    #: (scikit-learn's ``n_features_in_``).
    n_features_in = 2

    def __post_init__(self):
        # Computed now, not on the first predict: reading a model never writes
        # to it (scikit-learn's check_dict_unchanged; no race between readers).
        self.user_lookup  # noqa: B018
        self.scoring_user_factors  # noqa: B018

    def replace(self, **changes):
        """A new state with some fields changed (this one stays as it is)."""
        return dataclasses.replace(self, **changes)

    @cached_property
    def scoring_user_factors(self):
        """The user vectors a prediction multiplies with ``q_i``: ``p_u`` (+ SVD++'s ``s_u``)."""
        Y = self.implicit_factors
        if Y is None:
            return self.user_factors
        S = np.zeros_like(self.user_factors)
        _models.svdpp_implicit_sums(Y, self.seen_indptr, self.seen_items, S)
        S += self.user_factors
        return S

    @cached_property
    def user_lookup(self):
        """``(sorted ids, order)`` to map user ids: ``order`` is None while ``users`` is sorted.

        ``users`` is sorted after ``fit`` but no longer after ``fold_in``
        appends ids; computed once per state.
        """
        users = self.users
        if len(users) < 2 or bool(np.all(users[1:] > users[:-1])):
            return users, None
        order = np.argsort(users, kind="stable")
        return users[order], order

    def user_codes(self, ids, what="user ids"):
        """Indices of user ids in ``users`` (``-1`` if unknown)."""
        sorted_ids, order = self.user_lookup
        codes = encode_query_ids(ids, sorted_ids, what)
        if order is not None:
            codes = np.where(codes >= 0, order[np.maximum(codes, 0)], -1)
        return codes

    def seen_pairs(self, user_idx):
        """(row in ``user_idx``, item index) of every training rating of those users."""
        known = np.flatnonzero(user_idx >= 0)
        starts = self.seen_indptr[user_idx[known]]
        counts = self.seen_indptr[user_idx[known] + 1] - starts
        rows = np.repeat(known, counts)
        # Positions starts[r] .. starts[r] + counts[r] - 1 for every row r.
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return rows, self.seen_items[np.repeat(starts, counts) + offsets]

    def error_sums(self, users, items, ratings, n_threads=1):
        """(sum of squared errors, sum of absolute errors) of these (index) triples."""
        return _sgd.error_sums(self.scoring_user_factors, self.item_factors, self.user_bias,
                               self.item_bias, users, items, ratings, self.global_mean,
                               self.biased, n_threads)

    def predict_indices(self, user_idx, item_idx):
        """Predictions (in the factors' dtype) of index pairs; -1 means unknown."""
        out = np.empty(len(user_idx), dtype=self.user_factors.dtype)
        _sgd.predict_pairs(self.scoring_user_factors, self.item_factors, self.user_bias,
                           self.item_bias, user_idx, item_idx, self.global_mean,
                           self.biased, out)
        return out


_MODEL_CLASSES = {}
# The module that defines (and registers) each model kind a model file may name:
# the package loads its names on first use, so loading a file may be the first
# use of its kind. Named, not imported, because the estimators sit above this layer.
_MODEL_MODULES = {"MatrixFactorization": "mfcy.model", "SVDpp": "mfcy.svdpp",
                  "NMF": "mfcy.nmf", "BaselineOnly": "mfcy.baseline"}


def register_model(cls):
    """Class decorator: make ``cls`` known by name to code below the models (``mfcy.io``)."""
    _MODEL_CLASSES[cls.__name__] = cls
    return cls


def model_class(name):
    """The registered model class called ``name``."""
    if name not in _MODEL_CLASSES and name in _MODEL_MODULES:
        importlib.import_module(_MODEL_MODULES[name])
    try:
        return _MODEL_CLASSES[name]
    except KeyError:
        raise ValueError(f"no model class {name!r} is registered") from None


def install(model, state):
    """Make ``state`` the model's fitted state: one assignment, the only write there is."""
    if not isinstance(state, FittedState):
        raise TypeError(f"expected a FittedState, got {type(state).__name__}")
    model.__dict__["_fitted"] = state


def uninstall(model):
    """Leave the model unfitted (a diverged fit)."""
    model.__dict__["_fitted"] = None


def current(model):
    """The model's fitted state (one reference: use it for the whole call)."""
    state = model.__dict__.get("_fitted")
    if state is None:
        raise not_fitted(f"this {type(model).__name__} is not fitted yet: call fit() first")
    return state


#: Fitted attribute -> FittedState field.
FITTED_ATTRIBUTES = {
    "user_factors_": "user_factors", "item_factors_": "item_factors",
    "user_bias_": "user_bias", "item_bias_": "item_bias", "global_mean_": "global_mean",
    "rating_range_": "rating_range", "users_": "users", "items_": "items",
    "history_": "history", "n_epochs_": "n_epochs", "best_epoch_": "best_epoch",
    "n_duplicates_": "n_duplicates", "implicit_factors_": "implicit_factors",
    "n_features_in_": "n_features_in", "fit_phases_": "phase_seconds",
    # Private, for the package's own tests and tools.
    "_biased": "biased", "_seen_indptr": "seen_indptr", "_seen_items": "seen_items",
}


class FittedAttributes:
    """Read-only fitted attributes (scikit-learn's trailing underscore) of the installed state.

    Looked up only when ordinary lookup fails (``__getattr__``), so they are
    not class members and ``vars(model)`` holds the parameters and the one
    ``_fitted`` reference. Reading one while the model is unfitted raises
    :class:`~mfcy.NotFittedError`, an ``AttributeError``: ``hasattr(model,
    "user_factors_")`` is False before ``fit``, as in scikit-learn. Assigning
    one is an ``AttributeError``: only :func:`install` changes the state.
    """

    def __getattr__(self, name):
        field = FITTED_ATTRIBUTES.get(name)
        if field is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = getattr(current(self), field)
        if value is None:  # best_epoch_ of a fit without a validation set
            if name != "best_epoch_":
                raise AttributeError(f"a {type(self).__name__} has no {name}")
            raise AttributeError(f"{name} is set by a fit with a validation set only")
        return value

    def __setattr__(self, name, value):
        if name in FITTED_ATTRIBUTES or name == "_fitted":
            raise AttributeError(f"{name} is fitted state, set by fit() (or load, fold_in); "
                                 "it cannot be assigned")
        object.__setattr__(self, name, value)

    def __sklearn_is_fitted__(self):
        """Whether a state is installed (what ``sklearn.utils.validation.check_is_fitted`` asks)."""
        return self.__dict__.get("_fitted") is not None
