"""The :class:`BaselineOnly` estimator: ``μ + b_u + b_i``, fitted by ALS or SGD in the
compiled kernels of :mod:`mfcy._models`.

A baseline is a factorization with zero factors: its fitted state is the
shared :class:`~mfcy._state.FittedState` with ``(n, 0)`` factor arrays, so
prediction, recommendation, scoring and the model file are the
:class:`~mfcy.MatrixFactorization` ones.
"""

from __future__ import annotations

import numpy as np

from ._extensions import _models
from ._blocking import EpochPlan
from ._fold_in import fold_in_users
from ._grouped import GroupedRatings, copy_known_rows
from ._limits import check_block_grid
from ._params import Boolean, Choice, Dtype, Integer, Params, Real
from ._state import current, install, register_model
from ._training import BlockedRunner, fit_monitor, run_epochs
from ._input import encode_query_ids, rating_rows
from .model import FIT_CONTROL_PARAMETERS, MIN_WORK_PER_THREAD, MatrixFactorization

__all__ = ["BaselineOnly"]

#: The constructor parameters of :class:`BaselineOnly` and what each may be.
PARAMETERS = {
    "method": Choice(("als", "sgd")),
    "n_epochs": Integer(1),
    "user_regularization": Real(),
    "item_regularization": Real(),
    "learning_rate": Real(positive=True),
    "regularization": Real(),
    "dtype": Dtype(("float32", "float64")),
    "track_loss": Boolean(),
    "n_blocks": Integer(1),
    **FIT_CONTROL_PARAMETERS,
}


class _BaselineRunner(BlockedRunner):
    """The epoch of :func:`~mfcy._training.run_epochs` for the biases alone."""

    def __init__(self, params, rng, user_bias, item_bias, *, plan, data):
        dtype = user_bias.dtype
        P, Q = np.zeros((data.n_users, 0), dtype), np.zeros((data.n_items, 0), dtype)
        super().__init__(plan, rng, P, Q, user_bias, item_bias, params,
                         global_mean=data.global_mean, train_users=data.users,
                         train_items=data.items, ratings=data.ratings,
                         state_fields=data.state_fields())
        self.by_user = data.by_user
        self.by_item = data.by_item() if params.method == "als" else None

    def sgd_epoch(self, epoch):
        p = self.params
        if p.method == "als":
            return _models.baseline_als_epoch(
                self.user_bias, self.item_bias, *self.by_user, *self.by_item, self.global_mean,
                p.user_regularization, p.item_regularization, p.n_threads)
        plan = self.plan
        visit_order, strata, stride = plan.draw(self.rng)
        return _models.baseline_sgd_epoch(
            self.user_bias, self.item_bias, plan.users, plan.items, plan.ratings,
            plan.chunk_bounds, plan.block_chunks, visit_order, strata, stride,
            self.global_mean, p.learning_rate, p.regularization, p.n_threads)


@register_model
class BaselineOnly(MatrixFactorization):
    """The baseline predictor ``μ + b_u + b_i``, fitted by ALS or SGD.

    .. math:: \\hat r_{ui} = \\mu + b_u + b_i

    minimising :math:`\\sum (r_{ui} - \\mu - b_u - b_i)^2 + \\lambda_u \\sum b_u^2
    + \\lambda_i \\sum b_i^2` (ALS, Surprise's default and the same update:
    every item bias, then every user bias, each in closed form given the
    other side) or the per-rating SGD of Surprise's ``baseline_sgd`` (the
    penalty ``regularization`` applied at every rating). Surprise's
    defaults are kept, since the measured RMSE is Surprise's own table's
    (ALS: 10 epochs, ``λ_u = 15``, ``λ_i = 10``; SGD: learning rate 0.005,
    regularization 0.02).

    Parameters
    ----------
    method : {"als", "sgd"}, default="als"
        How the biases are fitted.
    n_epochs : int, default=10
        ALS sweeps or SGD passes.
    user_regularization : float, default=15
        ALS: the penalty ``λ_u`` of the user biases (not scaled by the count).
    item_regularization : float, default=10
        ALS: the penalty ``λ_i`` of the item biases.
    learning_rate : float, default=0.005
        SGD step size.
    regularization : float, default=0.02
        SGD: the L2 penalty of both biases, applied at every rating.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the biases and of the kernel's arithmetic.
    track_loss : bool, default=True
        Compute the training MSE after every epoch.
    n_blocks : int, default=8
        SGD: the ``n_blocks × n_blocks`` grid of the epoch, as in
        :class:`MatrixFactorization`; the result never depends on ``n_threads``.
    n_threads : int or None, default=None
        Threads for the kernel; None uses every core. Any value gives the same bits.
    random_state : int, numpy.random.Generator or None, default=None
        Seed of the SGD visiting order (ALS is deterministic).
    verbose : bool, default=False
        Print the loss after each epoch.
    early_stopping : bool, default=False
        Stop on the validation RMSE, as in :class:`MatrixFactorization`.
    n_iter_no_change : int, default=3
        Patience of ``early_stopping``, in epochs.
    tol : float, default=1e-4
        Smallest improvement of the validation RMSE that counts.
    warm_start : bool, default=False
        Continue from the fitted biases (ids new to the model start at zero).
    rating_scale : (float, float) or None, default=None
        The scale ``predict`` and ``recommend`` clip to; None means the
        observed range (as :class:`MatrixFactorization`).

    Attributes
    ----------
    user_bias_ : ndarray of shape (n_users,)
    item_bias_ : ndarray of shape (n_items,)
    global_mean_ : float
    rating_range_ : tuple of float
    users_, items_ : ndarray
        Index → id.
    user_factors_, item_factors_ : ndarray of shape (n, 0)
        Empty: the model has no factors.
    history_ : dict of lists
        As ``MatrixFactorization.history_``.
    n_epochs_ : int
    n_duplicates_ : int
    best_epoch_ : int
        Only when fitted with a validation set.

    Examples
    --------
    >>> import numpy as np
    >>> from mfcy import BaselineOnly
    >>> X, y = np.array([[1, 10], [1, 20], [2, 10]]), np.array([4.0, 2.0, 5.0])
    >>> model = BaselineOnly(user_regularization=0, item_regularization=0).fit(X, y)
    >>> model.predict([[2, 20]]).round(3)
    array([3.])
    """

    PARAMETERS = PARAMETERS
    get_params = MatrixFactorization.get_params
    set_params = MatrixFactorization.set_params
    score = MatrixFactorization.score
    _fits_on_cluster = False

    def __init__(self, method="als", n_epochs=10, user_regularization=15.0,
                 item_regularization=10.0, learning_rate=0.005, regularization=0.02,
                 dtype="float32", track_loss=True, n_blocks=8, n_threads=None,
                 random_state=None, verbose=False, early_stopping=False, n_iter_no_change=3,
                 tol=1e-4, warm_start=False, rating_scale=None):
        self.method = method
        self.n_epochs = n_epochs
        self.user_regularization = user_regularization
        self.item_regularization = item_regularization
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.dtype = dtype
        self.track_loss = track_loss
        self.n_blocks = n_blocks
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.rating_scale = rating_scale

    #: A baseline stores zero factors (what a model file must hold).
    n_factors = 0

    def fit(self, X, y=None, *, columns=None, validation=None, callback=None):
        """Fit the biases to the observed ratings.

        Parameters
        ----------
        X : array-like, scipy.sparse matrix, (n, 2) ids, or DataFrame
            Any form :meth:`MatrixFactorization.fit` takes.
        y : array-like of shape (n,), optional
            Ratings of the pairs in ``X``.
        columns : sequence of 3 str, optional
            The (user, item, rating) column names of a DataFrame ``X``.
        validation : tuple (X_val, y_val), or any form ``fit`` takes, optional
            Held-out ratings scored after every epoch (``history_["val_rmse"]``).
        callback : callable, optional
            ``callback(model, epoch, history)`` after every epoch; returning
            False stops training.

        Returns
        -------
        self
        """
        params = self._fit_params(callback)
        dtype = params["dtype"]
        data = GroupedRatings(X, y, columns, dtype)
        if params.method == "sgd":
            check_block_grid(params.n_blocks, len(data))
        user_bias = np.zeros(data.n_users, dtype=dtype)
        item_bias = np.zeros(data.n_items, dtype=dtype)
        previous = self.__dict__.get("_fitted")
        if params.warm_start and previous is not None:
            copy_known_rows(previous, data, [("user", user_bias, previous.user_bias),
                                             ("item", item_bias, previous.item_bias)])
        # The runner's shared parts read ``biased`` (a baseline always is).
        params = Params({**params.as_dict(), "biased": True, "n_threads": max(
            1, min(params.n_threads, len(data) // MIN_WORK_PER_THREAD))})
        monitor = fit_monitor(params, validation, data, data.users.dtype, columns, callback)
        rng = np.random.default_rng(params.random_state)
        plan = (EpochPlan(data.users, data.items, data.ratings, data.n_users, data.n_items,
                          params.n_blocks, True, rng)
                if params.method == "sgd" else None)
        runner = _BaselineRunner(params, rng, user_bias, item_bias, plan=plan, data=data)
        run_epochs(self, runner, params, monitor)
        return self

    def fold_in(self, X, y=None):
        """Fit the biases of some users in closed form, the item biases fixed.

        With ``method="als"`` this is the ALS user step,
        :math:`b_u = \\sum_{i \\in I_u} (r_{ui} - \\mu - b_i) / (\\lambda_u + |I_u|)`;
        with ``method="sgd"`` the point SGD converges to for that user,
        :math:`b_u = \\sum_{i \\in I_u} (r_{ui} - \\mu - b_i) / ((1 + \\lambda)|I_u|)`.
        New user ids are appended, as in :meth:`MatrixFactorization.fold_in`.

        Parameters
        ----------
        X : array-like of shape (n, 2), or any form ``fit`` takes
            (user id, item id) pairs with ``y``.
        y : array-like of shape (n,), optional
            The ratings.

        Returns
        -------
        self
        """
        state = current(self)
        params = self._validated_params()
        users_raw, items_raw, ratings = rating_rows(X, y)
        new = fold_in_users(state, users_raw, items_raw, ratings, 0.0, params.regularization)
        if params.method == "als":
            user_idx = new.user_codes(users_raw)
            item_idx = encode_query_ids(items_raw, new.items, "item ids")
            usable = item_idx >= 0
            if usable.any():
                # Duplicate pairs averaged first, as fit and the SGD fold-in do.
                keys = user_idx[usable].astype(np.int64) * len(new.items) + item_idx[usable]
                pairs, inverse, counts = np.unique(keys, return_inverse=True,
                                                   return_counts=True)
                mean = np.bincount(inverse, ratings[usable].astype(np.float64)) / counts
                u, i = pairs // len(new.items), pairs % len(new.items)
                residual = mean - new.global_mean - new.item_bias[i].astype(np.float64)
                solved, where, n_u = np.unique(u, return_inverse=True, return_counts=True)
                sums = np.bincount(where, residual)
                user_bias = new.user_bias.copy()
                user_bias[solved] = sums / (params.user_regularization + n_u)
                new = new.replace(user_bias=user_bias)
        install(self, new)
        return self

    def similar_items(self, item, n=10):
        """Not defined for a baseline.

        Parameters
        ----------
        item : id
        n : int, default=10

        Raises
        ------
        ValueError
            Always: the model has no item factors to compare.
        """
        raise ValueError("BaselineOnly has no item factors: similar_items needs a "
                         "factorization model (MatrixFactorization, SVDpp, NMF)")

