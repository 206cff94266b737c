"""The scikit-learn estimator protocol, written once for every mfcy model.

scikit-learn is optional: :class:`Estimator` implements its protocol by hand
(inheriting from ``sklearn.base.BaseEstimator`` would make ``import mfcy``
import scikit-learn) and imports it only when scikit-learn itself asks.

A model built on :class:`Estimator` supplies

* ``PARAMETERS``: its constructor parameters' constraints (:mod:`mfcy._params`),
  in the order of its ``__init__`` signature, which stores them unchanged;
* ``fit``: its runner (the kernel calls) handed to :func:`mfcy._training.run_epochs`;
* ``predict``: its prediction formula over the installed
  :class:`~mfcy._state.FittedState`.

Everything else comes from here: ``get_params``/``set_params``/``repr``,
the checked parameters, the fitted attributes (read-only views of the one
installed state), the tags and :meth:`Estimator.score` (R²).
"""

from __future__ import annotations

import inspect

import numpy as np

from ._params import validate
from ._state import FittedAttributes, current
from ._input import as_ratings, rating_rows

__all__ = ["Estimator"]


class Estimator(FittedAttributes):
    """Base of mfcy's rating regressors: parameters, scikit-learn protocol, fitted state."""

    #: Constraint per constructor parameter (set by each model).
    PARAMETERS: dict = {}

    @classmethod
    def _get_param_names(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        """Constructor parameters, as given.

        Parameters
        ----------
        deep : bool, default=True
            Ignored (no nested estimators); kept for scikit-learn.

        Returns
        -------
        dict
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set constructor parameters; returns ``self``.

        Parameters
        ----------
        **params
            Constructor parameter names and their new values.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For a name that is not a constructor parameter.
        """
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default
                    for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not (v is defaults[k] or (type(v) is type(defaults[k]) and v == defaults[k]))]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _validated_params(self):
        """Every hyperparameter checked against the class's ``PARAMETERS``, as a frozen Params."""
        return validate(type(self).PARAMETERS, self.get_params())

    # Read by scikit-learn < 1.6, which predates the tags API.
    _estimator_type = "regressor"

    def __sklearn_tags__(self):
        """Estimator tags for scikit-learn >= 1.6 (a regressor).

        Returns
        -------
        sklearn.utils.Tags
        """
        from sklearn.utils import InputTags, RegressorTags, TargetTags, Tags

        return Tags(
            estimator_type="regressor",
            # fit(R) needs no y: a ratings matrix carries its own targets.
            target_tags=TargetTags(required=False),
            regressor_tags=RegressorTags(),
            # The tags describe the (X, y) form scikit-learn's tools use: X of
            # (n, 2) ids, possibly strings, never NaN, never sparse (a sparse
            # matrix or a matrix with NaN is the ratings-matrix form, fit(R)
            # with no y, which scikit-learn's checks cannot express).
            input_tags=InputTags(two_d_array=True, sparse=False, allow_nan=False, string=True),
        )

    def score(self, X, y=None, sample_weight=None):
        """Coefficient of determination R² of the predictions.

        ``1 - Σ w (r - r̂)² / Σ w (r - r̄)²`` with ``r̄`` the (weighted) mean of
        the given ratings, as scikit-learn's regressors define ``score``: 1 is
        perfect, 0 is what predicting ``r̄`` for every pair achieves, and it
        can be negative. (To compare models by rating error, use
        ``scoring="neg_root_mean_squared_error"`` or :func:`mfcy.metrics.rmse`.)
        When all given ratings are equal, the result is 1.0 for exact
        predictions and 0.0 otherwise, as in ``sklearn.metrics.r2_score``.

        Parameters
        ----------
        X : array-like of shape (n, 2), or any form ``fit`` takes
            (user id, item id) pairs with ``y``, or held-out ratings on their
            own (e.g. a matrix with NaN for unknown entries).
        y : array-like of shape (n,), optional
            The true ratings of the pairs in ``X``.
        sample_weight : array-like of shape (n,), optional
            Non-negative weight of each rating.

        Returns
        -------
        float
        """
        current(self)  # a clear error when unfitted, before reading X
        users, items, ratings = rating_rows(X, y)
        predicted = self.predict(users, items)
        if sample_weight is None:
            weight = np.ones_like(ratings)
        else:
            weight = as_ratings(sample_weight, "sample_weight")
            if len(weight) != len(ratings):
                raise ValueError(f"sample_weight has {len(weight)} values for "
                                 f"{len(ratings)} ratings")
            if (weight < 0).any() or weight.sum() <= 0:
                raise ValueError("sample_weight must be >= 0 with a positive sum")
        residual = float(weight @ (ratings - predicted) ** 2)
        mean = float(weight @ ratings / weight.sum())
        total = float(weight @ (ratings - mean) ** 2)
        if total == 0:
            return 1.0 if residual == 0 else 0.0
        return 1.0 - residual / total
