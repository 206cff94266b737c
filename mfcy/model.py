"""The :class:`MatrixFactorization` estimator: its parameters, its fit (a runner of
the shared epoch loop), its prediction; the shared parts live in ``_sklearn_compat``,
``_training``, ``_recommend``, ``_fold_in`` and ``_state``."""

from __future__ import annotations

import time

import numpy as np

from ._blocking import EpochPlan
from ._extensions import _layout
from ._exact import exact_mean
from ._params import (Anything, Boolean, Choice, Dtype, Integer, RatingScale, Real,
                      available_cores)
from ._fold_in import fold_in_users
from ._limits import check_block_grid
from ._predict import predict
from ._starting import continue_from, initial_factors
from ._recommend import reconstruct, recommend, similar
from ._factor_model import FactorModelMixin
from ._sklearn_compat import Estimator
from ._state import current, install, register_model
from ._schedules import DEFAULT_INIT_STDS, DEFAULT_LEARNING_RATES, initial_accumulators
from ._training import BlockedRunner, fit_monitor, run_epochs
from .exceptions import DivergenceError
from ._input import Encoded, _canonical, rating_rows, to_encoded

__all__ = ["MatrixFactorization", "DivergenceError"]

#: Below this much work per epoch (ratings × factors) a fit runs on one thread:
#: a 2-thread epoch pays a dozen barriers, which on a busy machine can cost
#: milliseconds each, more than the whole epoch of a small problem. The result
#: is the same either way.
MIN_WORK_PER_THREAD = 2_000_000

#: ``reconstruct()`` refuses larger matrices unless asked explicitly.
MAX_RECONSTRUCT_CELLS = 10**8

#: The parameters every estimator ends its own with: threads, seed, output,
#: early stopping, warm start and the rating scale.
FIT_CONTROL_PARAMETERS = {
    "n_threads": Integer(1, none=available_cores),
    "random_state": Anything(),
    "verbose": Boolean(),
    "early_stopping": Boolean(),
    "n_iter_no_change": Integer(1),
    "tol": Real(),
    "warm_start": Boolean(),
    "rating_scale": RatingScale(),
}

#: The constructor parameters of :class:`MatrixFactorization` and what each may be.
#: (Checked in this order: the schedule comes before the rate that depends on it.)
PARAMETERS = {
    "n_factors": Integer(1),
    "n_epochs": Integer(0),
    "learning_rate_schedule": Choice(("constant", "adagrad")),
    "learning_rate": Real(positive=True, none_from=lambda params: DEFAULT_LEARNING_RATES[
        params["learning_rate_schedule"]]),
    "regularization": Real(),
    "bias_regularization": Real(none_is="regularization"),
    "biased": Boolean(),
    "init_std": Real(none_from=lambda params: DEFAULT_INIT_STDS[
        params["learning_rate_schedule"]]),
    "shuffle": Boolean(),
    "update": Choice(("simultaneous", "sequential")),
    "dtype": Dtype(("float32", "float64")),
    "track_loss": Boolean(),
    "n_blocks": Integer(1),
    **FIT_CONTROL_PARAMETERS,
}


@register_model
class MatrixFactorization(FactorModelMixin, Estimator):
    """Matrix factorization of explicit ratings, fitted by SGD in a compiled kernel.

    The model predicts the rating of user ``u`` for item ``i`` as

    .. math:: \\hat r_{ui} = \\mu + b_u + b_i + p_u^\\top q_i

    (``biased=True``) or :math:`p_u^\\top q_i` (``biased=False``), and minimises
    the squared error on the observed entries plus L2 penalties, one rating at
    a time.

    Parameters
    ----------
    n_factors : int, default=100
        Length of each latent vector (``k``).
    n_epochs : int, default=20
        Passes over the observed ratings. 0 is allowed and fits nothing: the
        model then predicts the global mean plus the dot product of the
        initial factors (as Surprise's SVD with ``n_epochs=0``), a reference
        point rather than a model.
    learning_rate : float or None, default=None
        SGD step size; None means the schedule's default: 0.005 for
        ``"constant"``, 0.05 for ``"adagrad"``.
    regularization : float, default=0.02
        L2 penalty on the factors.
    bias_regularization : float or None, default=None
        L2 penalty on the biases; None means the same as ``regularization``.
    biased : bool, default=True
        Learn a global mean and user/item biases. False predicts
        :math:`p_u^\\top q_i` alone (the global mean is still recorded, for
        unknown ids).
    init_std : float or None, default=None
        Standard deviation of the normal initial factors; None means the
        schedule's default: 0.1 for ``"constant"`` (mfcy's historical value,
        kept so that earlier fits stay reproducible), 0.01 for
        ``"adagrad"`` (benchmarks/README.md, "Learning-rate schedules",
        measured 0.01 better for both schedules).
    shuffle : bool, default=True
        Visit the ratings in a fresh seeded order every epoch. False visits
        the canonical (user, item) order every epoch, serially (one block,
        one thread).
    update : {"simultaneous", "sequential"}, default="simultaneous"
        ``"simultaneous"``: the user and item vectors both move from their old
        values (Funk, Surprise, cornac). ``"sequential"``: the user vector
        moves first and the item vector then uses the new one.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the factors and of the kernel's arithmetic.
    track_loss : bool, default=True
        Compute the training MSE after every epoch (one read-only compiled
        pass). False is faster; divergence is still caught.
    n_blocks : int, default=8
        The ratings are cut into an ``n_blocks × n_blocks`` grid of user and
        item blocks and an epoch runs the grid's strata one after another,
        the blocks of a stratum in parallel. The result depends on
        ``n_blocks`` and ``random_state`` but never on ``n_threads``.
        Ignored when ``shuffle=False``.
    n_threads : int or None, default=None
        Threads for the kernel; None uses every core available to the process.
        Any value gives the same factors. Small fits (under about two million
        rating × factor products per epoch per thread) use fewer threads,
        since synchronising would cost more than it saves.
    random_state : int, numpy.random.Generator or None, default=None
        Seed of the initial factors and of the visiting order. The same seed
        gives bit-identical factors.
    verbose : bool, default=False
        Print the loss after each epoch.
    early_stopping : bool, default=False
        Stop when the validation RMSE (``fit(..., validation=...)``, which is
        then required) has not improved by more than ``tol`` for
        ``n_iter_no_change`` epochs in a row, and keep the factors of the
        epoch with the lowest validation RMSE (``best_epoch_``), not the last.
    n_iter_no_change : int, default=3
        Patience of ``early_stopping``, in epochs.
    tol : float, default=1e-4
        Smallest decrease of the validation RMSE that counts as an
        improvement for ``early_stopping``.
    learning_rate_schedule : {"constant", "adagrad"}, default="constant"
        How the step size changes during the fit. ``"constant"``: every
        update steps with ``learning_rate`` (:math:`\\eta`). ``"adagrad"``:
        per-row AdaGrad as LIBMF does it (Chin et al., PAKDD 2015): each user
        row and each item row keeps one accumulated squared gradient
        :math:`G_u` (:math:`G_i`), 1 at the start, and a rating's update of
        row :math:`u`, with gradient
        :math:`g_u = e_{ui} q_i - \\lambda p_u`, is

        .. math:: p_u \\leftarrow p_u + \\frac{\\eta}{\\sqrt{G_u}}\\, g_u,
                  \\qquad G_u \\leftarrow G_u + \\frac{1}{k}\\lVert g_u \\rVert^2

        (the rate uses :math:`G_u` before this rating; item rows alike). The
        biases step with their row's rate,
        :math:`b_u \\leftarrow b_u + \\eta / \\sqrt{G_u}\\,(e_{ui} - \\lambda_b b_u)`,
        and do not enter :math:`G`: two extra numbers per row, not per
        factor. Rows rated often slow down, rare rows keep large steps, so
        one default rate works across data sets (benchmarks/README.md has
        the table). The accumulators are fitted state: ``warm_start``
        continues from them (rows new to the model start at 1); a model
        saved and loaded again does not keep them, so a warm start after
        :meth:`load` restarts them at 1.
    warm_start : bool, default=False
        When the model is already fitted, ``fit`` continues from its current
        factors and biases instead of drawing new ones (ids new to the model
        start as if fresh: normal factors, zero bias); otherwise ``fit``
        re-initialises, as in scikit-learn. ``n_factors`` must not change;
        ``user_factors``/``item_factors`` given to ``fit`` take precedence.
    rating_scale : (float, float) or None, default=None
        The (lowest, highest) possible rating, as Surprise's
        ``Reader(rating_scale=...)``: ``predict`` and ``recommend`` clip their
        predictions to it unless asked not to (``clip=False``). None uses the
        range of the training ratings, ``rating_range_``. Training itself is
        not affected.

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, n_factors)
    item_factors_ : ndarray of shape (n_items, n_factors)
    user_bias_ : ndarray of shape (n_users,)
        Zeros when ``biased=False``.
    item_bias_ : ndarray of shape (n_items,)
    global_mean_ : float
        Mean training rating (what an unknown user and item predict).
    rating_range_ : tuple of float
        (lowest, highest) training rating: the scale ``predict(clip=True)``
        clips to.
    users_, items_ : ndarray
        Index → id: row ``j`` of ``user_factors_`` belongs to ``users_[j]``.
    n_duplicates_ : int
        Input ratings averaged into another of the same (user, item) pair by
        the last ``fit``: the input had ``n_duplicates_`` more rows than the
        distinct pairs trained on.
    history_ : dict of lists
        Per epoch: ``"train_mse"`` and ``"train_rmse"`` (after the epoch, over
        every observed training entry, when ``track_loss``), ``"sgd_mse"``
        (the mean squared error met during the epoch, before each update,
        free), ``"epoch_seconds"`` (wall time of the SGD pass and its
        shuffle) and ``"loss_seconds"`` (of the loss pass, when tracked).
    fit_phases_ : dict of float
        Wall seconds of the last ``fit``'s phases, in order: ``"encode"``
        (ids to dense indices), ``"layout"`` (the block layout of the ratings,
        the seen-items index, the initial factors) and ``"epochs"`` (all the
        epochs, with their loss passes and callbacks; ``history_`` has each
        epoch's own time). Not saved in model files.
    n_epochs_ : int
        Epochs actually run (by the last call to ``fit``; ``history_`` too).
    best_epoch_ : int
        Only when fitted with a validation set: the number of epochs after
        which the validation RMSE was lowest, so that
        ``history_["val_rmse"][best_epoch_ - 1]`` is the best value. With
        ``early_stopping`` the fitted factors are that epoch's.

    Notes
    -----
    The estimator follows scikit-learn's conventions without importing it:
    ``get_params``/``set_params``, ``sklearn.base.clone``, the tags API
    (a regressor of (user id, item id) pairs), and :meth:`score` (R²), so that
    ``GridSearchCV`` and ``cross_validate`` work on ``(X, y)`` with ``X`` of
    shape (n, 2). Rows of a test fold whose user or item is missing from the
    training folds get the baseline prediction (see :meth:`predict`). Shuffle
    the rows (or pass ``cv=KFold(shuffle=True)``) when ``X`` is sorted by
    user, or whole users will land in the test folds.

    Thread safety: the fitted attributes are views of one immutable snapshot
    that ``fit``, ``load`` and ``fold_in`` replace in one step, and every
    method reads one snapshot from start to end. So ``predict``,
    ``recommend``, ``score`` and ``save`` may run in any number of threads,
    also while another thread fits the same object (they then see the running
    fit's factors, with its ids). Two threads fitting one object do not crash
    or mix states, but the object keeps whichever fit finished last: fit a
    ``sklearn.base.clone`` per thread instead.

    Examples
    --------
    >>> from mfcy import MatrixFactorization
    >>> from mfcy.datasets import lesson_problem
    >>> R, U0, V0 = lesson_problem()
    >>> model = MatrixFactorization(n_factors=3, n_epochs=200, learning_rate=0.05,
    ...                             regularization=0.01, biased=False, shuffle=False,
    ...                             update="sequential", dtype="float64")
    >>> model = model.fit(R, user_factors=U0, item_factors=V0)
    >>> round(model.history_["train_mse"][-1], 9)
    0.000533087
    """

    PARAMETERS = PARAMETERS
    # Shared with every model (mfcy/_sklearn_compat.py); named here too because
    # the API reference lists the members a class defines itself.
    get_params = Estimator.get_params
    set_params = Estimator.set_params
    score = Estimator.score
    #: Whether :func:`mfcy.dask.fit` can fit this kind (its blocked SGD only).
    _fits_on_cluster = True

    def __init__(self, n_factors=100, n_epochs=20, learning_rate=None, regularization=0.02,
                 bias_regularization=None, biased=True, init_std=None, shuffle=True,
                 update="simultaneous", dtype="float32", track_loss=True, n_blocks=8,
                 n_threads=None, random_state=None, verbose=False, early_stopping=False,
                 n_iter_no_change=3, tol=1e-4, warm_start=False, rating_scale=None,
                 learning_rate_schedule="constant"):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.bias_regularization = bias_regularization
        self.biased = biased
        self.init_std = init_std
        self.shuffle = shuffle
        self.update = update
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
        self.learning_rate_schedule = learning_rate_schedule

    # -- fitting -------------------------------------------------------------------

    def _fit_params(self, callback):
        """The checked hyperparameters, and ``callback`` checked, before any data is read."""
        params = self._validated_params()
        if callback is not None and not callable(callback):
            raise ValueError(f"callback must be callable, got {callback!r}")
        return params

    def _initial_factors(self, given, shape, name, rng, params):
        return initial_factors(given, shape, name, rng, params)

    def fit(self, X, y=None, *, columns=None, user_factors=None, item_factors=None,
            validation=None,
            callback=None):
        """Fit the factors to the observed ratings.

        Parameters
        ----------
        X : array-like of shape (n_users, n_items), scipy.sparse matrix, (n, 2) ids, or DataFrame
            A ratings matrix with NaN for unknown entries, a sparse matrix
            whose stored entries are the ratings, (user id, item id) pairs
            when ``y`` is given, or a pandas DataFrame with one row per rating
            (see ``columns``). Ids are integers or strings (one kind per
            column). Duplicate (user, item) observations are averaged.
        y : array-like of shape (n,), optional
            Ratings of the pairs in ``X``.
        columns : sequence of 3 str, optional
            The (user, item, rating) column names of a DataFrame ``X``;
            ``("user", "item", "rating")`` by default, the names
            :func:`mfcy.datasets.load_ratings` gives.
        user_factors, item_factors : array-like, optional
            Initial factors of shape (n_users, n_factors) and
            (n_items, n_factors), copied; drawn from N(0, init_std²) if omitted.
        validation : tuple (X_val, y_val), or a ratings matrix or other form ``fit`` takes, optional
            Held-out ratings, scored after every epoch into
            ``history_["val_rmse"]``, ``["val_mse"]`` and ``["val_mae"]`` (one
            compiled read-only pass; the ids are mapped once, before the
            first epoch). Pairs whose user or item is not in the training
            data are scored with the fallback prediction of :meth:`predict`.
            Required by ``early_stopping``.
        callback : callable, optional
            ``callback(model, epoch, history)`` after every epoch, ``epoch``
            counting from 1 and ``history`` being ``model.history_``;
            returning ``False`` (not merely a falsy value) stops training
            after that epoch.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            On invalid hyperparameters or input.
        DivergenceError
            When the loss or any parameter stops being finite, at the end of
            the epoch in which it happened; the model is then left unfitted
            (never with NaN or infinite factors).
        KeyboardInterrupt
            On Ctrl-C, after the running epoch: the model is then fitted up to
            that epoch.

        Notes
        -----
        How ratings are converted: any integer or floating dtype is accepted
        (bool and complex are not) and converted to float64, which is exact
        for float16, float32 and integers up to 2**53 in magnitude; duplicates
        of a (user, item) pair are averaged in float64; the kernel then works
        on those values rounded to ``dtype`` (round to nearest), while
        ``global_mean_`` is the exact mean rounded to float64. Ratings that
        overflow ``dtype`` (1e39 with float32), or duplicates of one pair whose
        sum overflows float64, are a ``ValueError``. SGD is not scale-free: ratings as large as 1e30 make
        the factors overflow within the first epochs at any usual learning
        rate, which is a ``DivergenceError`` whose message gives the ratings'
        magnitude; center and rescale such ratings.
        """
        params = self._fit_params(callback)
        started = time.perf_counter()
        data = to_encoded(X, y, columns=columns)
        # Wall time of each phase (fit_phases_): the encoding of the ids, the
        # set-up (block layout, seen-items CSR, initial factors), the epochs.
        phases = {"encode": time.perf_counter() - started}
        started = time.perf_counter()
        dtype = params["dtype"]
        n_users, n_items = data.n_users, data.n_items
        if params.shuffle:  # before the grid is laid out (shuffle=False has one block)
            check_block_grid(params.n_blocks, len(data.ratings))
        # The shuffled layout straight from the input (two compiled passes);
        # the canonical (user, item) triples for the serial path (shuffle=False) and
        # for input with duplicate pairs, which are averaged first.
        plan = (EpochPlan.from_encoded(data.users, data.items, data.ratings, n_users, n_items,
                                       params["n_blocks"], dtype)
                if params.shuffle else None)
        triples = None
        if plan is None:
            triples = _canonical(data.users, data.items, data.ratings, data.user_ids,
                                 data.item_ids)
            ratings64 = triples.ratings
            with np.errstate(over="ignore"):  # reported below, as a ValueError
                ratings = ratings64.astype(dtype, copy=False)
            # The training pairs, as a compact CSR of item indices per user:
            # recommendations exclude what a user already rated.
            seen_indptr = np.zeros(n_users + 1, dtype=np.int64)
            np.cumsum(_layout.count_keys(triples.users, n_users), out=seen_indptr[1:])
            seen_items = triples.items
            train_users, train_items = triples.users, triples.items
        else:
            # No pair repeats, so these are the same values in another order.
            ratings64, ratings = data.ratings, plan.ratings
            seen_indptr, seen_items = plan.seen_indptr, plan.seen_items
            train_users, train_items = plan.users, plan.items
        # What the rest needs of the ids: the id maps and the index dtype (the
        # input-order index arrays are let go).
        training = Encoded(train_users, train_items, ratings, data.user_ids, data.item_ids)
        n_input_rows = len(data)
        del data
        rng = np.random.default_rng(params.random_state)
        k = params["n_factors"]
        P = self._initial_factors(user_factors, (n_users, k), "user_factors", rng, params)
        Q = self._initial_factors(item_factors, (n_items, k), "item_factors", rng, params)
        if not np.isfinite(ratings).all():
            raise ValueError(f"ratings overflow {dtype.name} (largest magnitude "
                             f"{np.abs(ratings64).max():.3g})")
        # Exact (order-independent), so that a fit on a cluster, which sums the
        # ratings in parts, finds the same mean to the last bit.
        global_mean = exact_mean(ratings64)
        rating_range = (float(ratings64.min()), float(ratings64.max()))
        # From here on only the kernel's copy of the ratings is needed: let the
        # float64 one go (a fit must not hold more copies of the ratings than it
        # uses; with float64 factors the two are one array anyway).
        del ratings64
        if triples is not None:
            triples.ratings = ratings
        biased = params.biased
        n_bias_users, n_bias_items = ((n_users, n_items) if biased else (0, 0))
        user_bias = np.zeros(n_bias_users, dtype=dtype)
        item_bias = np.zeros(n_bias_items, dtype=dtype)
        accumulators = initial_accumulators(params.learning_rate_schedule, n_users, n_items,
                                            dtype)
        previous = self.__dict__.get("_fitted")
        if params.warm_start and previous is not None:
            continue_from(previous, training, P, Q, user_bias, item_bias, accumulators,
                          keep_users=user_factors is None, keep_items=item_factors is None)
        params = params.replace(n_threads=max(1, min(params.n_threads,
                                                     len(ratings) * k // MIN_WORK_PER_THREAD)))
        # Checked before any fitted state is replaced: a bad validation set
        # leaves a fitted model as it was.
        monitor = fit_monitor(params, validation, training, training.users.dtype, columns,
                              callback)
        if plan is None:
            plan = EpochPlan(triples.users, triples.items, ratings, n_users, n_items,
                             params.n_blocks, params.shuffle, rng)
            del triples
        runner = BlockedRunner(
            plan, rng, P, Q, user_bias, item_bias, params, global_mean=global_mean,
            train_users=train_users, train_items=train_items, ratings=ratings,
            state_fields=dict(global_mean=global_mean, rating_range=rating_range,
                              users=training.user_ids, items=training.item_ids,
                              seen_indptr=seen_indptr, seen_items=seen_items,
                              # input rows averaged into another (user, item) pair
                              n_duplicates=n_input_rows - len(seen_items),
                              phase_seconds=phases),
            accumulators=accumulators)
        phases["layout"] = time.perf_counter() - started
        started = time.perf_counter()
        try:
            run_epochs(self, runner, params, monitor)
        finally:  # an interrupted fit keeps its epochs (and their time) too
            phases["epochs"] = time.perf_counter() - started
        return self

    # -- using the model -----------------------------------------------------------

    def _check_fitted(self):
        current(self)

    def predict(self, X, items=None, *, clip=True, return_fallback=False):
        """Predicted ratings of (user, item) pairs.

        Parameters
        ----------
        X : array-like of shape (n, 2), DataFrame, a single user id, or user ids of shape (n,)
            (user id, item id) pairs; a DataFrame with user and item columns
            (found by name as ``fit`` finds them, other columns ignored) or
            exactly two columns; or the user ids alone when ``items`` is given.
        items : array-like of shape (n,) or a single item id, optional
            Item ids. ``predict(user, item)`` with two single ids returns a float.
        clip : bool, default=True
            Clip the predictions to the rating scale: ``rating_scale``, or the
            training range ``rating_range_`` when that is None (as Surprise
            clips). False returns the raw scores ``μ + b_u + b_i + p_uᵀ q_i``.
        return_fallback : bool, default=False
            Also return which predictions fell back to the baseline (and do
            not warn about them).

        Returns
        -------
        predictions : ndarray of float64, shape (n,), or float
            Pairs of known ids are computed in double precision and rounded to
            the model's ``dtype`` (then widened to float64). An id unseen in
            training contributes no factors: the prediction falls back to the
            global mean plus the known side's bias, computed in float64
            (exact, also for a float32 model).
        fallback : ndarray of bool, shape (n,), or bool
            Only with ``return_fallback=True``: True where the user or the
            item was unseen in training.

        Warns
        -----
        mfcy.UnknownIdWarning
            When some pairs fall back to the baseline and ``return_fallback``
            is False.

        Examples
        --------
        >>> import numpy as np
        >>> from mfcy import MatrixFactorization
        >>> X, y = np.array([[1, 10], [1, 20], [2, 10]]), np.array([4.0, 2.0, 5.0])
        >>> model = MatrixFactorization(n_factors=2, n_epochs=5, random_state=0).fit(X, y)
        >>> _, fallback = model.predict([[1, 20], [3, 10]], return_fallback=True)
        >>> fallback
        array([False,  True])
        >>> 2.0 <= model.predict(1, 20) <= 5.0   # one pair: a float, on the 2-5 scale
        True
        """
        return predict(current(self), X, items, clip=clip, return_fallback=return_fallback,
                       rating_scale=self._validated_params().rating_scale)

    def recommend(self, users, n=10, *, exclude_seen=True, batch_size=None, clip=True):
        """Top-``n`` items for each user, best first.

        Items are ranked by the raw score (the unclipped predicted rating) and
        shown with their prediction clipped to the rating scale (as
        :meth:`predict` does), so that ties at the top of the scale keep the
        model's order. Users are scored in batches (``P[batch] Qᵀ`` then
        ``argpartition``), so memory stays bounded by ``batch_size × n_items``
        whatever the number of users.

        Parameters
        ----------
        users : array-like of shape (n_users_asked,) or a single id
            User ids. A user unseen in training gets the baseline ranking
            (global mean plus item bias: the most favourably rated items),
            with an :class:`~mfcy.UnknownIdWarning`.
        n : int, default=10
            Items per user (at most the number of items).
        exclude_seen : bool, default=True
            Leave out the items the user rated in training.
        batch_size : int, optional
            Users scored at once; by default enough for about 16 M scores.
        clip : bool, default=True
            Clip the shown scores to the rating scale (see :meth:`predict`);
            False shows the raw scores.

        Returns
        -------
        items : ndarray of shape (m,), or masked array of shape (n_users_asked, m)
            Item ids (raw ids, as in ``items_``). Never an item the user
            rated (with ``exclude_seen``): a user with fewer than ``n``
            unrated items gets fewer. For a single user id, 1-D arrays of
            ``m = min(n, unrated items)``. For several users,
            :class:`numpy.ma.MaskedArray` of ``m = min(n, most unrated items of
            any asked user)`` columns whose mask is True at the slots a user
            has no item for (the data there is ``-1``, ``0`` for uint64 ids
            or ``""`` for string ids: test the mask, not the value);
            ``items[j].compressed()`` is user ``j``'s list.
        scores : ndarray of float64, same shape (and mask) as ``items``
            The predicted ratings; NaN in the masked slots.
        """
        return recommend(current(self), users, n, exclude_seen=exclude_seen,
                         batch_size=batch_size, clip=clip,
                         scale=self._validated_params().rating_scale)

    def similar_items(self, items, n=10):
        """The ``n`` items whose factor vectors have the highest cosine with each given item's.

        Parameters
        ----------
        items : id or array-like of shape (n_asked,)
            Training item ids.
        n : int, default=10

        Returns
        -------
        items : ndarray of shape (n,), or (n_asked, n) for several ids
            Item ids, most similar first (the item itself excluded).
        similarities : ndarray of float64, same shape
            Cosine similarities in [-1, 1].
        """
        return similar(current(self), items, n, what="item")

    def similar_users(self, users, n=10):
        """The ``n`` users whose factor vectors have the highest cosine with each given user's.

        Parameters
        ----------
        users : id or array-like of shape (n_asked,)
            User ids of the model (trained or folded in).
        n : int, default=10

        Returns
        -------
        users : ndarray of shape (n,), or (n_asked, n) for several ids
            User ids, most similar first (the user itself excluded).
        similarities : ndarray of float64, same shape
            Cosine similarities in [-1, 1].
        """
        return similar(current(self), users, n, what="user")

    def reconstruct(self, *, allow_large=False):
        """The dense matrix of every user's predicted rating of every item.

        Parameters
        ----------
        allow_large : bool, default=False
            Allow more than 10**8 cells.

        Returns
        -------
        ndarray of shape (n_users, n_items)
            ``μ + b_u + b_i + P Qᵀ`` (or ``P Qᵀ`` for an unbiased model).
        """
        return reconstruct(current(self), allow_large=allow_large,
                           max_cells=MAX_RECONSTRUCT_CELLS)

    # -- new users without refitting ---------------------------------------------------

    def fold_in(self, X, y=None):
        """Fit the factors and bias of some users against the fixed item factors.

        For each user in the given ratings, solves in closed form the same
        regularised least squares that training minimises, restricted to that
        user's variables:

        .. math:: \\min_{p_u, b_u} \\sum_{i \\in I_u}
                  (r_{ui} - \\mu - b_u - b_i - p_u^\\top q_i)^2
                  + \\lambda n_u \\lVert p_u \\rVert^2 + \\lambda_b n_u b_u^2

        (``λ = regularization``, ``λ_b = bias_regularization``, as currently
        set; ``n_u = |I_u|``: SGD applies the penalty once per rating, so this is
        exactly the stationary point training would converge to for that
        user if the items stood still; the unbiased model drops ``μ``, ``b``).
        The closed form rather than a few SGD epochs because it is exact and
        deterministic, needs no learning rate or epoch count to tune, and
        costs ``O(n_u k² + k³)`` per user (the systems are solved in batches).

        A user id new to the model is appended to ``users_`` (and rows to
        ``user_factors_``, ``user_bias_``): ``predict`` and ``recommend`` then
        know it by id. A known user's factors and bias are re-solved from the
        given ratings alone (pass all of them: the model keeps which items a
        user rated, not the values), and the given items join the items that
        ``recommend`` excludes for that user. Item factors, item biases and
        ``global_mean_`` do not change.

        Parameters
        ----------
        X : array-like of shape (n, 2), or any form ``fit`` takes
            (user id, item id) pairs with ``y``. Duplicate pairs are averaged.
        y : array-like of shape (n,), optional
            The ratings.

        Returns
        -------
        self

        Warns
        -----
        UserWarning
            For ratings of items the model does not know: they are left out
            (an item without factors cannot inform a user's factors). A new
            user with no rating left gets zero factors and bias, i.e. the
            baseline prediction.
        """
        state = current(self)
        params = self._validated_params()
        users_raw, items_raw, ratings = rating_rows(X, y)
        install(self, fold_in_users(state, users_raw, items_raw, ratings,
                                    params.regularization, params.bias_regularization))
        return self
