"""Held-out splits of ratings, and hyperparameter sweeps scored on them.

scikit-learn does cross-validated searching: :class:`~mfcy.MatrixFactorization`
is a scikit-learn regressor of (user id, item id) pairs, so
``GridSearchCV(MatrixFactorization(), {...}, scoring="neg_root_mean_squared_error")``
works on ``(X, y)``. What scikit-learn lacks for ratings lives here:

* :func:`train_test_split` can keep every user and item in the training part,
  so that every held-out rating tests the factors rather than the fallback
  for unknown ids;
* :func:`validation_curve` fits one model per value of a hyperparameter and
  scores each on a held-out set (with the model's own validation tracking and
  early stopping): validation error against the number of factors, the
  regularization, biased or not.

Recipes
-------
Three sweeps on a training / validation split (they answer the teaching
notebook's exercises):

>>> import numpy as np
>>> from mfcy import MatrixFactorization
>>> from mfcy.datasets import make_low_rank
>>> from mfcy.model_selection import train_test_split, validation_curve
>>> R = make_low_rank(60, 40, 3, 0.5, noise=0.1, random_state=0)
>>> R_train, R_val = train_test_split(R, test_size=0.2, keep_in_train="both",
...                                   random_state=0)
>>> # (One thread: on data this small, threads cost more than they bring.)
>>> base = MatrixFactorization(n_epochs=100, learning_rate=0.02, random_state=0,
...                            n_threads=1)
>>> # 1. "Try different latent dimensions": validation RMSE against k.
>>> k_sweep = validation_curve(base, R_train, validation=R_val,
...                            param_name="n_factors", param_range=[1, 2, 3, 5, 8])
>>> int(k_sweep.best_value)
3
>>> # 2. "Hold out a validation set to tune regularization".
>>> reg_sweep = validation_curve(base.set_params(n_factors=3), R_train, validation=R_val,
...                              param_name="regularization",
...                              param_range=[0.005, 0.02, 0.05, 0.1, 0.5])
>>> # 3. "Add bias terms": unbiased against biased.
>>> bias = validation_curve(base, R_train, validation=R_val,
...                         param_name="biased", param_range=[False, True])
>>> ax = k_sweep.plot()  # or mfcy.plotting.plot_validation_curve(...)
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._input import (as_ids, as_ratings, check_pair_count, input_form, rating_rows, split_pairs,
                     validation_rows)
from .metrics import rmse

__all__ = ["train_test_split", "validation_curve", "ValidationCurve"]

_KEEP = (None, "users", "items", "both")


def _n_test(test_size, n):
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise ValueError(f"test_size must be a fraction in (0, 1) or a count, got {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        if not 1 <= test_size < n:
            raise ValueError(f"test_size={test_size} ratings must be between 1 and "
                             f"{n - 1} (there are {n} ratings)")
        return int(test_size)
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1) as a fraction, got {test_size!r}")
    # Rounded up, as scikit-learn does, and never the whole data.
    return min(max(1, math.ceil(test_size * n)), n - 1)


def _frame_columns(frame, user_col, item_col):
    """The user and item columns of a ratings DataFrame."""
    columns = list(frame.columns)
    if user_col is None and item_col is None and "user" in columns and "item" in columns:
        user_col, item_col = "user", "item"
    user_col = columns[0] if user_col is None else user_col
    item_col = columns[1] if item_col is None else item_col
    for name in (user_col, item_col):
        if name not in columns:
            raise ValueError(f"no column {name!r} in the DataFrame (columns: {columns})")
    return frame[user_col].to_numpy(), frame[item_col].to_numpy()


def _take(a, rows):
    return a.iloc[rows] if hasattr(a, "iloc") else np.asarray(a)[rows]


def train_test_split(X, y=None, *, test_size=0.2, keep_in_train=None, random_state=None,
                     user_col=None, item_col=None):
    """Split ratings at random into a training and a test part.

    Parameters
    ----------
    X : array-like of shape (n, 2), ratings matrix, scipy.sparse matrix or DataFrame
        (user id, item id) pairs with ``y``; or, without ``y``, a ratings
        matrix (NaN for unknown), a sparse matrix (stored entries are the
        ratings) or a DataFrame with one rating per row.
    y : array-like of shape (n,), optional
        The ratings of the pairs in ``X``.
    test_size : float or int, default=0.2
        Fraction of the ratings to hold out (rounded up), or their number.
    keep_in_train : {None, "users", "items", "both"}, default=None
        Make sure every user (item, or both) keeps at least one rating in the
        training part: one rating of each is drawn at random and kept there,
        and the test part is drawn from the others. A user with a single
        rating then never appears in the test part. None draws the test part
        from all ratings, so some test ids may be unknown to the model
        (the cold-start setting).
    random_state : int, numpy.random.Generator or None
        Seed; the same seed gives the same split.
    user_col, item_col : str, optional
        For a DataFrame without ``y`` and ``keep_in_train``: its user and item
        columns (default ``"user"`` and ``"item"`` if present, otherwise the
        first two columns).

    Returns
    -------
    X_train, X_test, y_train, y_test
        When ``y`` is given: the rows of each part, in random order (as
        :func:`sklearn.model_selection.train_test_split` returns them), of the
        type given (ndarray, DataFrame, Series).
    train, test
        Without ``y``: a matrix is split into two matrices of the same shape
        (NaN, or not stored, where the entry belongs to the other part); a
        DataFrame into two DataFrames of its rows, in random order.

    Warns
    -----
    UserWarning
        When ``keep_in_train`` leaves fewer ratings to hold out than asked.

    Examples
    --------
    >>> import numpy as np
    >>> from mfcy.model_selection import train_test_split
    >>> X = np.array([[user, item] for user in (1, 2, 3) for item in (10, 20, 30)])
    >>> y = np.array([4.0, 3.0, 5.0, 2.0, 1.0, 4.0, 3.0, 3.0, 5.0])
    >>> X_train, X_test, y_train, y_test = train_test_split(
    ...     X, y, test_size=3, keep_in_train="both", random_state=0)
    >>> len(X_train), len(X_test)
    (6, 3)
    >>> set(X_test[:, 0]) <= set(X_train[:, 0]) and set(X_test[:, 1]) <= set(X_train[:, 1])
    True
    """
    if keep_in_train not in _KEEP:
        raise ValueError(f"keep_in_train must be one of {_KEEP}, got {keep_in_train!r}")
    form = input_form(X, y)
    if form == "pairs":
        users, items = split_pairs(X)
        # Checked, not kept: the split returns y's own rows (a Series stays one).
        ratings = as_ratings(np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y),
                             "y (the ratings)")
        check_pair_count(len(users), len(ratings))
    elif form == "frame":
        users, items = _frame_columns(X, user_col, item_col)
    elif form == "sparse":
        coo = X.tocoo()
        users, items = coo.row, coo.col
    else:
        R = np.asarray(X)
        if R.ndim != 2 or R.dtype.kind not in "iuf":
            raise ValueError("without y, X must be a 2-D ratings matrix (NaN for unknown), "
                             f"a sparse matrix or a DataFrame; got shape {R.shape}, "
                             f"dtype {R.dtype}")
        users, items = np.nonzero(~np.isnan(R))
    n = len(users)
    if n < 2:
        raise ValueError(f"need at least 2 ratings to split, got {n}")
    n_test = _n_test(test_size, n)
    rng = np.random.default_rng(random_state)
    order = rng.permutation(n)
    forced = np.zeros(n, dtype=bool)
    if keep_in_train in ("users", "both"):
        forced[_one_row_each(as_ids(users, "user ids"), order)] = True
    if keep_in_train in ("items", "both"):
        forced[_one_row_each(as_ids(items, "item ids"), order)] = True
    candidates = order[~forced[order]]
    if len(candidates) < n_test:
        warnings.warn(f"keep_in_train={keep_in_train!r} leaves only {len(candidates)} ratings "
                      f"to hold out, fewer than the {n_test} asked", UserWarning, stacklevel=2)
        if len(candidates) == 0:
            raise ValueError(f"keep_in_train={keep_in_train!r} leaves no rating to hold out: "
                             "every rating is the only one of its user or item")
        n_test = len(candidates)
    test = candidates[:n_test]
    is_test = np.zeros(n, dtype=bool)
    is_test[test] = True
    train = order[~is_test[order]]

    if form == "pairs":
        return _take(X, train), _take(X, test), _take(y, train), _take(y, test)
    if form == "frame":
        return X.iloc[train], X.iloc[test]
    if form == "sparse":
        import scipy.sparse as sp

        # A sparse matrix stays a matrix, a sparse array an array, in its format.
        coo_type = sp.coo_matrix if isinstance(X, sp.spmatrix) else sp.coo_array
        return tuple(coo_type((coo.data[rows], (coo.row[rows], coo.col[rows])),
                              shape=coo.shape).asformat(X.format)
                     for rows in (np.sort(train), np.sort(test)))
    R_train = np.array(R, dtype=np.float64)
    R_test = np.array(R, dtype=np.float64)
    R_train[users[test], items[test]] = np.nan
    R_test[users[train], items[train]] = np.nan
    return R_train, R_test


def _one_row_each(ids, order):
    """One row per distinct id: its first in the random ``order``."""
    _, first = np.unique(ids[order], return_index=True)
    return order[first]


@dataclass
class ValidationCurve:
    """Scores of one model per value of a hyperparameter (see :func:`validation_curve`).

    Parameters
    ----------
    param_name : str
        The hyperparameter that varies.
    param_range : list
        The values tried, in the order given.
    train_rmse, validation_rmse : ndarray of shape (len(param_range),)
        RMSE of each fitted model on the training and validation ratings.
    n_epochs, best_epochs : ndarray of int
        Epochs run by each fit, and after how many epochs its validation RMSE
        was lowest (with ``early_stopping``, the epoch whose factors it kept).
    histories : list of dict
        Each fit's ``history_`` (per-epoch training and validation curves).
    """

    param_name: str
    param_range: list
    train_rmse: np.ndarray
    validation_rmse: np.ndarray
    n_epochs: np.ndarray
    best_epochs: np.ndarray
    histories: list = field(repr=False)

    @property
    def best_index(self):
        """Position in ``param_range`` of the lowest validation RMSE."""
        return int(np.argmin(self.validation_rmse))

    @property
    def best_value(self):
        """The value of ``param_name`` with the lowest validation RMSE."""
        return self.param_range[self.best_index]

    def plot(self, ax=None, **kwargs):
        """Draw the curve with :func:`mfcy.plotting.plot_validation_curve`.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw; a new figure if omitted.
        **kwargs
            Passed on to :func:`mfcy.plotting.plot_validation_curve`.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from .plotting import plot_validation_curve

        return plot_validation_curve(self.param_range, self.validation_rmse, self.train_rmse,
                                     param_name=self.param_name, ax=ax, **kwargs)


def validation_curve(estimator, X, y=None, *, param_name, param_range, validation,
                     fit_params=None):
    """Fit one copy of ``estimator`` per value of a hyperparameter; score each on held-out data.

    Parameters
    ----------
    estimator : MatrixFactorization
        Not modified: each value is tried on a fresh copy
        (``type(estimator)(**estimator.get_params())``).
    X, y
        Training ratings, in any form ``fit`` takes.
    param_name : str
        A constructor parameter, e.g. ``"n_factors"``, ``"regularization"``,
        ``"biased"``.
    param_range : sequence
        The values to try.
    validation : tuple (X_val, y_val), or a ratings matrix or other form ``fit`` takes
        Held-out ratings: passed to ``fit(validation=...)`` (so that
        ``early_stopping`` can use them) and scored after fitting.
    fit_params : dict, optional
        Further keyword arguments of ``fit``.

    Returns
    -------
    ValidationCurve
    """
    param_range = list(param_range)
    if not param_range:
        raise ValueError("param_range is empty")
    if param_name not in estimator.get_params():
        raise ValueError(f"{param_name!r} is not a parameter of {type(estimator).__name__}")
    train_rows = rating_rows(X, y)
    val_rows = validation_rows(validation)
    train_rmse, val_rmse, n_epochs, best_epochs, histories = [], [], [], [], []
    for value in param_range:
        model = type(estimator)(**estimator.get_params()).set_params(**{param_name: value})
        model.fit(X, y, validation=validation, **(fit_params or {}))
        train_rmse.append(rmse(train_rows[2], model.predict(train_rows[0], train_rows[1])))
        val_rmse.append(rmse(val_rows[2], model.predict(val_rows[0], val_rows[1])))
        n_epochs.append(model.n_epochs_)
        best_epochs.append(model.best_epoch_)
        histories.append(model.history_)
    return ValidationCurve(param_name, param_range, np.array(train_rmse), np.array(val_rmse),
                           np.array(n_epochs), np.array(best_epochs), histories)
