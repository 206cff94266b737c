"""The :class:`SVDpp` estimator: Koren's SVD++ on the compiled kernel of :mod:`mfcy._models`."""

from __future__ import annotations

import math

import numpy as np

from ._extensions import _models
from ._grouped import GroupedRatings, copy_known_rows
from ._params import Boolean, Dtype, Integer, Real
from ._state import FittedState, register_model
from ._training import BlockedRunner, fit_monitor, run_epochs
from .model import FIT_CONTROL_PARAMETERS, MIN_WORK_PER_THREAD, MatrixFactorization

__all__ = ["SVDpp"]

#: The constructor parameters of :class:`SVDpp` and what each may be.
PARAMETERS = {
    "n_factors": Integer(1),
    "n_epochs": Integer(1),
    "learning_rate": Real(positive=True),
    "regularization": Real(),
    "bias_regularization": Real(none_is="regularization"),
    "implicit_learning_rate": Real(positive=True, none_is="learning_rate"),
    "implicit_regularization": Real(),
    "biased": Boolean(),
    "init_std": Real(),
    "n_lanes": Integer(1),
    "lane_ratings": Integer(1),
    "dtype": Dtype(("float32", "float64")),
    "track_loss": Boolean(),
    **FIT_CONTROL_PARAMETERS,
}


class _SVDppRunner(BlockedRunner):
    """One SVD++ epoch per call: the users in a fresh seeded order, each user's ratings together."""

    #: A state sums every user's implicit factors (its scoring user vectors), a
    #: pass over all the ratings: the loop builds one after an epoch only for a
    #: callback (validation builds its own), and once when training ends.
    cheap_state = False

    def __init__(self, params, rng, P, Q, Y, user_bias, item_bias, data):
        super().__init__(None, rng, P, Q, user_bias, item_bias, params,
                         global_mean=data.global_mean, train_users=data.users,
                         train_items=data.items, ratings=data.ratings,
                         state_fields=data.state_fields())
        self.Y = Y
        self.by_user = data.by_user
        self.n_users = data.n_users

    def sgd_epoch(self, epoch):
        p = self.params
        order = self.rng.permutation(self.n_users).astype(np.int64)
        return _models.svdpp_epoch(
            self.P, self.Q, self.Y, self.user_bias, self.item_bias, *self.by_user, order,
            self.global_mean, p.learning_rate, p.regularization, p.bias_regularization,
            p.implicit_learning_rate, p.implicit_regularization, p.biased, p.n_lanes,
            p.lane_ratings, p.n_threads)

    def train_loss(self):
        users, items, ratings = self.train
        loss, _ = self.state({}, 0, None).error_sums(users, items, ratings, self.params.n_threads)
        return loss

    def parameters_finite(self):
        with np.errstate(over="ignore", invalid="ignore"):
            return (super().parameters_finite()
                    and math.isfinite(float(self.Y.sum(dtype=np.float64))))

    def state(self, history, n_epochs, best_epoch):
        return FittedState(self.P, self.Q, *self.shown_bias, self.params.biased,
                           history=history, n_epochs=n_epochs, best_epoch=best_epoch,
                           implicit_factors=self.Y, **self.fields)

    def _arrays(self):
        return (self.P, self.Q, self.Y, self.user_bias, self.item_bias)


@register_model
class SVDpp(MatrixFactorization):
    """Koren's SVD++: biased matrix factorization plus the implicit feedback of who rated what.

    .. math:: \\hat r_{ui} = \\mu + b_u + b_i
              + q_i^\\top \\Bigl(p_u + |N(u)|^{-1/2} \\sum_{j \\in N(u)} y_j\\Bigr)

    with :math:`N(u)` the items ``u`` rated in training. Each epoch visits the
    users in an order drawn from ``random_state`` and processes a user's
    ratings together, the implicit sum computed once per user and the
    :math:`y_j` steps applied after the user's last rating (the update order
    of :ref:`models`; a documented variant of Surprise's per-rating rule
    costing :math:`O(\\text{ratings} \\times k)` per epoch).

    The defaults are Surprise's ``SVDpp`` (``n_factors=20``, ``n_epochs=20``,
    ``learning_rate=0.007``, ``regularization=0.02``, ``init_std=0.1``) except
    ``implicit_regularization=0.005``: on Surprise's 5-fold protocol it
    measured mean RMSE 0.9169 on ML-100K and 0.8583 on ML-1M against 0.9202
    and 0.8622 with Surprise's 0.02 (``benchmarks/models_kernel.py --sweep``,
    figures in ``benchmarks/README.md``).

    Parameters
    ----------
    n_factors : int, default=20
        Length of ``p_u``, ``q_i`` and ``y_j``.
    n_epochs : int, default=20
        Passes over the users.
    learning_rate : float, default=0.007
        SGD step size of the factors and biases.
    regularization : float, default=0.02
        L2 penalty on ``p_u`` and ``q_i``.
    bias_regularization : float or None, default=None
        L2 penalty on the biases; None means ``regularization``.
    implicit_learning_rate : float or None, default=None
        Step size of the ``y_j``; None means ``learning_rate``.
    implicit_regularization : float, default=0.005
        L2 penalty on the ``y_j`` (see above for why not Surprise's 0.02).
    biased : bool, default=True
        Learn ``μ``, ``b_u`` and ``b_i``.
    init_std : float, default=0.1
        Standard deviation of the normal initial ``p``, ``q`` and ``y``.
    n_lanes : int, default=2
        How many runs (*lanes*) the epoch's user order is cut into; the lanes
        go in rounds, each on its own copy of the item rows, and the copies
        are averaged after every round (:ref:`models`). Lanes are what threads
        run, so ``n_lanes`` bounds the threads used. The result depends on
        ``n_lanes`` and ``lane_ratings``, never on ``n_threads``. 1: the plain
        rule, applied in place, on one thread. More than 2 slows learning (each
        item's steps are averaged over more lanes): ML-1M-star test RMSE 0.8557
        with 4 lanes against 0.8459 with 1 and 0.8471 with 2
        (``benchmarks/README.md``).
    lane_ratings : int, default=262144
        Ratings a lane takes per round (``n_lanes > 1``), in whole users.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the factors and of the kernel's arithmetic.
    track_loss : bool, default=False
        Also compute the training MSE after every epoch (``history_["train_mse"]``,
        ``"train_rmse"``): one more pass over the ratings, which first sums
        every user's implicit factors. ``history_["sgd_mse"]``, the error met
        during the epoch before each update, is recorded either way, and
        divergence is caught either way.
    n_threads : int or None, default=None
        Threads running the lanes; None uses every core. Any value gives the
        same bits.
    random_state : int, numpy.random.Generator or None, default=None
        Seed of the initial factors and of the user order of every epoch.
    verbose : bool, default=False
        Print the loss after each epoch: the training RMSE with
        ``track_loss=True``, else ``history_["sgd_mse"]``.
    early_stopping : bool, default=False
        Stop on the validation RMSE, as in :class:`MatrixFactorization`.
    n_iter_no_change : int, default=3
        Patience of ``early_stopping``, in epochs.
    tol : float, default=1e-4
        Smallest improvement of the validation RMSE that counts.
    warm_start : bool, default=False
        Continue from the fitted ``p``, ``q``, ``y`` and biases (ids new to the
        model start fresh); ``n_factors`` must not change.
    rating_scale : (float, float) or None, default=None
        The scale ``predict`` and ``recommend`` clip to; None means the
        observed range (as :class:`MatrixFactorization`).

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, n_factors)
        ``p_u``.
    item_factors_ : ndarray of shape (n_items, n_factors)
        ``q_i``.
    implicit_factors_ : ndarray of shape (n_items, n_factors)
        ``y_j``.
    user_bias_, item_bias_ : ndarray
    global_mean_ : float
    rating_range_ : tuple of float
    users_, items_ : ndarray
        Index → id.
    history_ : dict of lists
        As ``MatrixFactorization.history_``: ``"sgd_mse"`` and
        ``"epoch_seconds"`` always, ``"train_mse"``, ``"train_rmse"`` and
        ``"loss_seconds"`` with ``track_loss=True``, the ``"val_*"`` curves
        with a validation set.
    n_epochs_ : int
    n_duplicates_ : int
    best_epoch_ : int
        Only when fitted with a validation set.

    Examples
    --------
    >>> import numpy as np
    >>> from mfcy import SVDpp
    >>> X, y = np.array([[1, 10], [1, 20], [2, 10]]), np.array([4.0, 2.0, 5.0])
    >>> model = SVDpp(n_factors=2, random_state=0).fit(X, y)
    >>> model.implicit_factors_.shape
    (2, 2)
    """

    PARAMETERS = PARAMETERS
    get_params = MatrixFactorization.get_params
    set_params = MatrixFactorization.set_params
    score = MatrixFactorization.score
    _fits_on_cluster = False

    def __init__(self, n_factors=20, n_epochs=20, learning_rate=0.007, regularization=0.02,
                 bias_regularization=None, implicit_learning_rate=None,
                 implicit_regularization=0.005, biased=True, init_std=0.1, n_lanes=2,
                 lane_ratings=262144, dtype="float32", track_loss=False, n_threads=None,
                 random_state=None, verbose=False, early_stopping=False, n_iter_no_change=3,
                 tol=1e-4, warm_start=False, rating_scale=None):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.bias_regularization = bias_regularization
        self.implicit_learning_rate = implicit_learning_rate
        self.implicit_regularization = implicit_regularization
        self.biased = biased
        self.init_std = init_std
        self.n_lanes = n_lanes
        self.lane_ratings = lane_ratings
        self.dtype = dtype
        self.track_loss = track_loss
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.rating_scale = rating_scale

    def fit(self, X, y=None, *, columns=None, validation=None, callback=None):
        """Fit ``p``, ``q``, ``y`` and the biases to the observed ratings.

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
        rng = np.random.default_rng(params.random_state)
        k = params.n_factors
        P = self._initial_factors(None, (data.n_users, k), "user_factors", rng, params)
        Q = self._initial_factors(None, (data.n_items, k), "item_factors", rng, params)
        Y = self._initial_factors(None, (data.n_items, k), "implicit_factors", rng, params)
        n_bias_users, n_bias_items = ((data.n_users, data.n_items) if params.biased
                                      else (0, 0))
        user_bias = np.zeros(n_bias_users, dtype=dtype)
        item_bias = np.zeros(n_bias_items, dtype=dtype)
        previous = self.__dict__.get("_fitted")
        if params.warm_start and previous is not None:
            k_old = previous.user_factors.shape[1]
            if k_old != k:
                raise ValueError(f"warm_start=True continues from the fitted factors, which "
                                 f"have {k_old} columns, but n_factors={k!r}: set "
                                 "warm_start=False to start over with a new n_factors")
            pairs = [("user", P, previous.user_factors), ("item", Q, previous.item_factors),
                     ("item", Y, previous.implicit_factors)]
            if params.biased:
                pairs += [("user", user_bias, previous.user_bias),
                          ("item", item_bias, previous.item_bias)]
            copy_known_rows(previous, data, pairs)
        # One lane is serial; lanes run on at most as many threads as the work pays for.
        n_threads = 1 if params.n_lanes == 1 else max(
            1, min(params.n_threads, params.n_lanes, len(data) * k // MIN_WORK_PER_THREAD))
        params = params.replace(n_threads=n_threads)
        monitor = fit_monitor(params, validation, data, data.users.dtype, columns, callback)
        runner = _SVDppRunner(params, rng, P, Q, Y, user_bias, item_bias, data)
        run_epochs(self, runner, params, monitor)
        return self

    def fold_in(self, X, y=None):
        """Not available for SVD++.

        Parameters
        ----------
        X : array-like
        y : array-like, optional

        Raises
        ------
        ValueError
            Always: a user's ratings enter SVD++ twice (through ``p_u`` and
            through the implicit sum over the items rated), and the update
            of one user moves the shared ``y_j``; there is no per-user closed
            form with the item side fixed. Refit (``warm_start=True`` keeps the
            fitted factors as the start).
        """
        raise ValueError("SVDpp.fold_in is not available: the implicit factors y_j are "
                         "shared by every user who rated j, so a user cannot be solved in "
                         "closed form against fixed items; refit with warm_start=True")
