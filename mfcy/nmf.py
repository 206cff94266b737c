"""The :class:`NMF` estimator: non-negative factors by the multiplicative updates of
:mod:`mfcy._models`."""

from __future__ import annotations

import numpy as np

from ._extensions import _models
from ._grouped import GroupedRatings, copy_known_rows
from ._memory import empty_aligned
from ._params import Boolean, Dtype, Integer, Real
from ._state import register_model
from ._training import BlockedRunner, fit_monitor, run_epochs
from .model import FIT_CONTROL_PARAMETERS, MIN_WORK_PER_THREAD, MatrixFactorization

__all__ = ["NMF"]

#: ALS sweeps that fit the fixed biases of a biased NMF (BaselineOnly's default).
BIAS_SWEEPS = 10

#: The constructor parameters of :class:`NMF` and what each may be.
PARAMETERS = {
    "n_factors": Integer(1),
    "n_epochs": Integer(1),
    "user_regularization": Real(),
    "item_regularization": Real(),
    "biased": Boolean(),
    "init_low": Real(),
    "init_high": Real(),
    "dtype": Dtype(("float32", "float64")),
    "track_loss": Boolean(),
    **FIT_CONTROL_PARAMETERS,
}


def check_non_negative(data):
    """Refuse negative ratings, which the multiplicative updates cannot fit.

    The updates multiply a factor by (sum of q r) / (sum of q r_hat + penalty):
    a negative rating makes the numerator negative, the kernel sets the
    factor to 0, and the factor never moves again (with or without biases,
    whose predictions enter the same ratio).
    """
    low = data.rating_range[0]
    if low < 0:
        raise ValueError(f"NMF needs ratings >= 0 (its multiplicative updates set a factor "
                         f"that a negative rating pushes below 0 to 0, for good); the lowest "
                         f"rating is {low:g}: shift the ratings onto a non-negative scale "
                         "(e.g. 1 to 5), or fit MatrixFactorization, whose factors may have "
                         "any sign")


class _NMFRunner(BlockedRunner):
    """One multiplicative epoch per call (both sides from the factors met at its start)."""

    def __init__(self, params, rng, P, Q, user_bias, item_bias, data):
        super().__init__(None, rng, P, Q, user_bias, item_bias, params,
                         global_mean=data.global_mean, train_users=data.users,
                         train_items=data.items, ratings=data.ratings,
                         state_fields=data.state_fields())
        self.by_user = data.by_user
        if params.n_threads > 1 or params.biased:
            self.by_item = data.by_item()
        else:  # one thread reads only the item counts (see _models.nmf_epoch)
            empty = data.users[:0], data.ratings[:0]
            self.by_item = (data.item_ptr(), *empty)

    def sgd_epoch(self, epoch):
        p = self.params
        return _models.nmf_epoch(self.P, self.Q, self.user_bias, self.item_bias,
                                 *self.by_user, *self.by_item, self.global_mean,
                                 p.user_regularization, p.item_regularization, p.biased,
                                 p.n_threads)

    @property
    def divergence_advice(self):
        p = self.params
        return (f"NMF has no learning rate; the products p_u . q_i overflowed "
                f"{p.dtype.name}. The initial factors, uniform on [init_low, init_high] = "
                f"[{p.init_low:g}, {p.init_high:g}], set their scale (n_factors x "
                "init_high**2 near the typical rating suits): lower init_high, rescale the "
                "ratings, or use dtype='float64'")

    def fit_biases(self):
        """Biased NMF: ALS biases (λ_u = 15, λ_i = 10, as BaselineOnly), then held fixed."""
        for _ in range(BIAS_SWEEPS):
            _models.baseline_als_epoch(self.user_bias, self.item_bias, *self.by_user,
                                       *self.by_item, self.global_mean, 15.0, 10.0,
                                       self.params.n_threads)


@register_model
class NMF(MatrixFactorization):
    """Non-negative matrix factorization by the multiplicative updates of Luo et al. (2014).

    .. math:: \\hat r_{ui} = p_u^\\top q_i, \\qquad p_u, q_i \\ge 0

    (plus :math:`\\mu + b_u + b_i` with ``biased=True``). One epoch moves every
    user and every item factor at once from the values met at its start,

    .. math:: p_{uf} \\leftarrow p_{uf} \\frac{\\sum_{i \\in I_u} q_{if} r_{ui}}
              {\\sum_{i \\in I_u} q_{if} \\hat r_{ui} + |I_u| \\lambda_u p_{uf}}

    and the same for :math:`q_{if}` over the item's users, the rule of
    Surprise's ``NMF``; the factors never go negative. The multiplicative
    rule was kept over projected SGD, which was not measured.

    The defaults are Surprise's (``n_factors=15``, ``n_epochs=50``) except the
    regularization, 0.08 for Surprise's ``reg_pu = reg_qi = 0.06``: at 50
    epochs it gave 5-fold mean RMSE 0.9567 on ML-100K and 0.9147 on ML-1M-star
    against 0.9642 and 0.9159 with Surprise's (``benchmarks/models_kernel.py
    --sweep``, ``benchmarks/README.md``). The updates are still converging
    after 50 epochs: ``n_epochs=100`` lowered the RMSE by a further 0.015
    (ML-100K) and 0.025 (ML-1M-star) there, at twice the fit time.

    Parameters
    ----------
    n_factors : int, default=15
        Length of ``p_u`` and ``q_i``.
    n_epochs : int, default=50
        Multiplicative epochs (Surprise's default; more keep lowering the
        error, see above).
    user_regularization : float, default=0.08
        ``λ_u``.
    item_regularization : float, default=0.08
        ``λ_i``.
    biased : bool, default=False
        Add :math:`\\mu + b_u + b_i`, the biases fitted first by 10 ALS sweeps
        (those of :class:`BaselineOnly`) and held fixed during the epochs
        (Surprise moves them by SGD inside the same pass, which its
        documentation warns overfits).
    init_low, init_high : float, default=0, 1
        The initial factors are uniform on ``[init_low, init_high]``
        (``0 <= init_low <= init_high``).
    dtype : {"float32", "float64"}, default="float32"
        Precision of the factors and of the kernel's arithmetic.
    track_loss : bool, default=False
        Also compute the training MSE after every epoch (``history_["train_mse"]``,
        ``"train_rmse"``), one more pass over the ratings. Not needed to follow
        the fit: an epoch starts from the factors the previous one left, so its
        ``history_["sgd_mse"]`` already is the training MSE after the previous
        epoch (one epoch behind). Divergence is caught either way.
    n_threads : int or None, default=None
        Threads for the kernel; None uses every core. Any value gives the same bits.
    random_state : int, numpy.random.Generator or None, default=None
        Seed of the initial factors.
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
        Continue from the fitted factors and biases (ids new to the model start
        fresh); ``n_factors`` must not change.
    rating_scale : (float, float) or None, default=None
        The scale ``predict`` and ``recommend`` clip to; None means the
        observed range (as :class:`MatrixFactorization`).

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, n_factors)
        Non-negative.
    item_factors_ : ndarray of shape (n_items, n_factors)
        Non-negative.
    user_bias_, item_bias_ : ndarray
        Zeros when ``biased=False``.
    global_mean_ : float
    rating_range_ : tuple of float
    users_, items_ : ndarray
        Index → id.
    history_ : dict of lists
        As ``MatrixFactorization.history_``: ``"sgd_mse"`` and
        ``"epoch_seconds"`` always, ``"train_mse"``, ``"train_rmse"`` and
        ``"loss_seconds"`` with ``track_loss=True``, the ``"val_*"`` curves
        with a validation set. ``"sgd_mse"`` is the training MSE of the factors
        the multiplicative epoch started from.
    n_epochs_ : int
    n_duplicates_ : int
    best_epoch_ : int
        Only when fitted with a validation set.

    Examples
    --------
    >>> import numpy as np
    >>> from mfcy import NMF
    >>> X, y = np.array([[1, 10], [1, 20], [2, 10]]), np.array([4.0, 2.0, 5.0])
    >>> model = NMF(n_factors=2, random_state=0).fit(X, y)
    >>> bool((model.user_factors_ >= 0).all() and (model.item_factors_ >= 0).all())
    True
    """

    PARAMETERS = PARAMETERS
    get_params = MatrixFactorization.get_params
    set_params = MatrixFactorization.set_params
    score = MatrixFactorization.score
    _fits_on_cluster = False

    def __init__(self, n_factors=15, n_epochs=50, user_regularization=0.08,
                 item_regularization=0.08, biased=False, init_low=0.0, init_high=1.0,
                 dtype="float32", track_loss=False, n_threads=None, random_state=None,
                 verbose=False, early_stopping=False, n_iter_no_change=3, tol=1e-4,
                 warm_start=False, rating_scale=None):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.user_regularization = user_regularization
        self.item_regularization = item_regularization
        self.biased = biased
        self.init_low = init_low
        self.init_high = init_high
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
        """Fit the non-negative factors to the observed ratings.

        Parameters
        ----------
        X : array-like, scipy.sparse matrix, (n, 2) ids, or DataFrame
            Any form :meth:`MatrixFactorization.fit` takes. The ratings must
            be ``>= 0`` (a ``ValueError`` otherwise: the multiplicative updates
            cannot fit a negative rating).
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
        if params.init_low > params.init_high:
            raise ValueError(f"init_low must be <= init_high, got {params.init_low} > "
                             f"{params.init_high}")
        if params.init_high == 0:
            raise ValueError("init_high must be > 0: the multiplicative updates never move a "
                             "factor that is 0, so factors that all start at 0 stay 0")
        dtype = params["dtype"]
        data = GroupedRatings(X, y, columns, dtype)
        check_non_negative(data)
        rng = np.random.default_rng(params.random_state)
        k = params.n_factors
        P, Q = (self._uniform((n, k), rng, params) for n in (data.n_users, data.n_items))
        user_bias = np.zeros(data.n_users if params.biased else 0, dtype=dtype)
        item_bias = np.zeros(data.n_items if params.biased else 0, dtype=dtype)
        previous = self.__dict__.get("_fitted")
        warm = params.warm_start and previous is not None
        if warm:
            k_old = previous.user_factors.shape[1]
            if k_old != k:
                raise ValueError(f"warm_start=True continues from the fitted factors, which "
                                 f"have {k_old} columns, but n_factors={k!r}: set "
                                 "warm_start=False to start over with a new n_factors")
            pairs = [("user", P, previous.user_factors), ("item", Q, previous.item_factors)]
            if params.biased:
                pairs += [("user", user_bias, previous.user_bias),
                          ("item", item_bias, previous.item_bias)]
            copy_known_rows(previous, data, pairs)
        params = params.replace(n_threads=max(1, min(params.n_threads,
                                                     len(data) * k // MIN_WORK_PER_THREAD)))
        # The shared loop names the step size in its divergence message; NMF has none.
        params = type(params)({**params.as_dict(), "learning_rate": None})
        monitor = fit_monitor(params, validation, data, data.users.dtype, columns, callback)
        runner = _NMFRunner(params, rng, P, Q, user_bias, item_bias, data)
        if params.biased and not warm:
            runner.fit_biases()
        run_epochs(self, runner, params, monitor)
        return self

    @staticmethod
    def _uniform(shape, rng, params):
        # Drawn in float64 then cast, so float32 and float64 models start alike.
        out = empty_aligned(shape, params["dtype"])
        out[...] = rng.uniform(params.init_low, params.init_high, shape)
        return out

    def fold_in(self, X, y=None):
        """Not available for NMF.

        Parameters
        ----------
        X : array-like
        y : array-like, optional

        Raises
        ------
        ValueError
            Always: the closed-form ridge fold-in of
            :meth:`MatrixFactorization.fold_in` gives factors of any sign, and
            a non-negative least-squares fold-in is not implemented. Refit
            (``warm_start=True`` keeps the fitted factors as the start).
        """
        raise ValueError("NMF.fold_in is not available: the closed-form fold-in would give "
                         "negative factors, and non-negative least squares is not "
                         "implemented; refit with warm_start=True")
