"""The :class:`MatrixFactorization` estimator: validation, the epoch loop, history."""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import os
import signal
import threading
import time
import warnings

import numpy as np

from . import _sgd
from ._blocking import EpochPlan
from ._layout import count_keys
from ._memory import empty_aligned
from ._exact import exact_mean
from .data import (Encoded, _canonical, as_ratings, encode_query_ids, rating_rows,
                   split_pairs, to_encoded, to_triples)

__all__ = ["MatrixFactorization", "DivergenceError"]

#: Below this much work per epoch (ratings × factors) a fit runs on one thread:
#: a 2-thread epoch pays a dozen barriers, which on a busy machine can cost
#: milliseconds each, more than the whole epoch of a small problem. The result
#: is the same either way.
MIN_WORK_PER_THREAD = 2_000_000

#: ``reconstruct()`` refuses larger matrices unless asked explicitly.
MAX_RECONSTRUCT_CELLS = 10**8

_UPDATES = ("simultaneous", "sequential")
_DTYPES = ("float32", "float64")


class DivergenceError(ValueError):
    """Training diverged: the loss or the factors stopped being finite.

    Raised at the end of the epoch in which it happened; the usual cure is a
    smaller ``learning_rate``.
    """


def _diverged(epoch, learning_rate, rating_magnitude):
    """The error of a fit whose loss stopped being finite in ``epoch`` (from 1)."""
    return DivergenceError(
        f"training diverged in epoch {epoch} (the loss is no longer finite) with "
        f"learning_rate={learning_rate!r} and ratings of magnitude up to "
        f"{rating_magnitude:.3g}: try a smaller learning rate, or center and rescale "
        "the ratings")


def _available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _interrupt_after_epoch():
    """Defer Ctrl-C to the end of the running epoch.

    The kernel runs without the GIL, so Python would only see SIGINT after the
    epoch anyway; catching it here lets ``fit`` finish the bookkeeping of that
    epoch (history, fitted attributes) before re-raising ``KeyboardInterrupt``.
    Signal handlers can only be set from the main thread: elsewhere this is a
    no-op and Python's default behaviour stays.
    """
    state = {"interrupted": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        state["interrupted"] = True

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # pragma: no cover - e.g. an embedded interpreter
        yield state
        return
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_real(name, value, *, positive=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if not positive and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return float(value)


class MatrixFactorization:
    """Matrix factorization of explicit ratings, fitted by SGD in a compiled kernel.

    The model predicts the rating of user ``u`` for item ``i`` as

    .. math:: \\hat r_{ui} = \\mu + b_u + b_i + p_u^\\top q_i

    (``biased=True``) or :math:`p_u^\\top q_i` (``biased=False``, the lesson's
    model), and minimises the squared error on the observed entries plus L2
    penalties, one rating at a time.

    Parameters
    ----------
    n_factors : int, default=100
        Length of each latent vector (``k``).
    n_epochs : int, default=20
        Passes over the observed ratings.
    learning_rate : float, default=0.005
        SGD step size.
    regularization : float, default=0.02
        L2 penalty on the factors.
    bias_regularization : float or None, default=None
        L2 penalty on the biases; None means the same as ``regularization``.
    biased : bool, default=True
        Learn a global mean and user/item biases. False is the lesson's model
        (the global mean is still recorded, for unknown ids).
    init_std : float, default=0.1
        Standard deviation of the normal initial factors.
    shuffle : bool, default=True
        Visit the ratings in a fresh seeded order every epoch. False visits
        the canonical (user, item) order every epoch, serially, as the lesson
        does.
    update : {"simultaneous", "sequential"}, default="simultaneous"
        ``"simultaneous"``: the user and item vectors both move from their old
        values (Funk, Surprise, cornac). ``"sequential"``: the user vector
        moves first and the item vector then uses the new one (the lesson).
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
    warm_start : bool, default=False
        When the model is already fitted, ``fit`` continues from its current
        factors and biases instead of drawing new ones (ids new to the model
        start as if fresh: normal factors, zero bias); otherwise ``fit``
        re-initialises, as in scikit-learn. ``n_factors`` must not change;
        ``user_factors``/``item_factors`` given to ``fit`` take precedence.

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

    def __init__(self, n_factors=100, n_epochs=20, learning_rate=0.005, regularization=0.02,
                 bias_regularization=None, biased=True, init_std=0.1, shuffle=True,
                 update="simultaneous", dtype="float32", track_loss=True, n_blocks=8,
                 n_threads=None, random_state=None, verbose=False, early_stopping=False,
                 n_iter_no_change=3, tol=1e-4, warm_start=False):
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

    # -- scikit-learn style parameters ---------------------------------------------

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
        """Check every hyperparameter once; return them normalised."""
        p = {
            "n_factors": _check_int("n_factors", self.n_factors, 1),
            "n_epochs": _check_int("n_epochs", self.n_epochs, 1),
            "learning_rate": _check_real("learning_rate", self.learning_rate, positive=True),
            "regularization": _check_real("regularization", self.regularization),
            "init_std": _check_real("init_std", self.init_std),
            "n_blocks": _check_int("n_blocks", self.n_blocks, 1),
        }
        p["bias_regularization"] = (p["regularization"] if self.bias_regularization is None
                                    else _check_real("bias_regularization",
                                                     self.bias_regularization))
        if self.update not in _UPDATES:
            raise ValueError(f"update must be one of {_UPDATES}, got {self.update!r}")
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype is None or dtype.name not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {self.dtype!r}")
        p["dtype"] = dtype
        p["n_threads"] = (_available_cores() if self.n_threads is None
                          else _check_int("n_threads", self.n_threads, 1))
        p["n_iter_no_change"] = _check_int("n_iter_no_change", self.n_iter_no_change, 1)
        p["tol"] = _check_real("tol", self.tol)
        return p

    # -- fitting -------------------------------------------------------------------

    def _initial_factors(self, given, shape, name, rng, params):
        if given is None:
            # Drawn in float64 then cast, so float32 and float64 models start
            # from the same numbers.
            out = empty_aligned(shape, params["dtype"])
            out[...] = rng.standard_normal(shape) * params["init_std"]
            return out
        arr = np.asarray(given)
        if arr.dtype.kind not in "iuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (n, n_factors), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinity")
        out = empty_aligned(shape, params["dtype"])
        out[...] = arr
        return out

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
        params = self._validated_params()
        if callback is not None and not callable(callback):
            raise ValueError(f"callback must be callable, got {callback!r}")
        data = to_encoded(X, y, columns=columns)
        dtype = params["dtype"]
        n_users, n_items = data.n_users, data.n_items
        # The shuffled layout straight from the input (two compiled passes);
        # the canonical (user, item) triples for the lesson's serial path and
        # for input with duplicate pairs, which are averaged first.
        plan = (EpochPlan.from_encoded(data.users, data.items, data.ratings, n_users, n_items,
                                       params["n_blocks"], dtype)
                if self.shuffle else None)
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
            np.cumsum(count_keys(triples.users, n_users), out=seen_indptr[1:])
            seen_items = triples.items
            train_users, train_items = triples.users, triples.items
        else:
            # No pair repeats, so these are the same values in another order.
            ratings64, ratings = data.ratings, plan.ratings
            seen_indptr, seen_items = plan.seen_indptr, plan.seen_items
            train_users, train_items = plan.users, plan.items
        # What the rest needs of the ids: the id maps and the index dtype (the
        # input-order index arrays are let go).
        ids = Encoded(train_users, train_items, ratings, data.user_ids, data.item_ids)
        n_input_rows = len(data)
        del data
        rng = np.random.default_rng(self.random_state)
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
        biased = bool(self.biased)
        n_bias_users, n_bias_items = ((n_users, n_items) if biased else (0, 0))
        user_bias = np.zeros(n_bias_users, dtype=dtype)
        item_bias = np.zeros(n_bias_items, dtype=dtype)
        if self.warm_start and hasattr(self, "user_factors_"):
            self._warm_start_state(ids, P, Q, user_bias, item_bias,
                                   keep_users=user_factors is None,
                                   keep_items=item_factors is None)
        params["n_threads"] = max(1, min(params["n_threads"],
                                         len(ratings) * k // MIN_WORK_PER_THREAD))
        # Checked before any fitted state is replaced: a bad validation set
        # leaves a fitted model as it was.
        monitor = _EpochMonitor(self, validation, callback, params, ids, dtype, columns)
        if plan is None:
            plan = EpochPlan(triples.users, triples.items, ratings, n_users, n_items,
                             params["n_blocks"], self.shuffle, rng)
            del triples
        n = len(ratings)
        history = {"sgd_mse": [], "epoch_seconds": []}
        if self.track_loss:
            history["train_mse"] = []
            history["train_rmse"] = []
            history["loss_seconds"] = []
        sequential = self.update == "sequential"

        self.users_, self.items_ = ids.user_ids, ids.item_ids
        self.global_mean_ = global_mean
        self.rating_range_ = rating_range
        self.history_ = history
        self.n_epochs_ = 0
        self._set_state(P, Q, user_bias, item_bias, biased)
        self._seen_indptr, self._seen_items = seen_indptr, seen_items
        self.n_duplicates_ = n_input_rows - len(seen_items)  # rows averaged into another
        self.__dict__.pop("best_epoch_", None)

        with _interrupt_after_epoch() as interrupt:
            for epoch in range(params["n_epochs"]):
                start = time.perf_counter()
                visit_order, strata, stride = plan.draw(rng)
                sse = _sgd.sgd_epoch(P, Q, user_bias, item_bias, plan.users, plan.items,
                                     plan.ratings, plan.chunk_bounds, plan.block_chunks,
                                     visit_order, strata, stride, global_mean,
                                     params["learning_rate"],
                                     params["regularization"], params["bias_regularization"],
                                     biased, sequential, params["n_threads"])
                sgd_done = time.perf_counter()
                if self.track_loss:
                    loss, _ = self._error_sums(train_users, train_items, ratings,
                                               params["n_threads"])
                    history["loss_seconds"].append(time.perf_counter() - sgd_done)
                    finite = math.isfinite(loss)
                else:
                    # The epoch's own error sum misses a blow-up in its very last
                    # updates; the parameters' sum does not (any inf/NaN poisons it).
                    # errstate: inf + -inf is the NaN we look for, not a warning.
                    with np.errstate(over="ignore", invalid="ignore"):
                        finite = math.isfinite(sse) and math.isfinite(
                            float(P.sum(dtype=np.float64) + Q.sum(dtype=np.float64)
                                  + user_bias.sum(dtype=np.float64)
                                  + item_bias.sum(dtype=np.float64)))
                if not (math.isfinite(sse) and finite):
                    self._forget_fit()
                    raise _diverged(epoch + 1, self.learning_rate,
                                    float(np.abs(ratings).max()))
                history["sgd_mse"].append(sse / n)
                history["epoch_seconds"].append(sgd_done - start)
                if self.track_loss:
                    history["train_mse"].append(loss / n)
                    history["train_rmse"].append(math.sqrt(loss / n))
                self.n_epochs_ = epoch + 1
                monitor.record(epoch + 1)
                if self.verbose:
                    shown = history["train_rmse" if self.track_loss else "sgd_mse"][-1]
                    label = "train RMSE" if self.track_loss else "SGD MSE"
                    print(f"epoch {epoch + 1:4d}/{params['n_epochs']}  {label} {shown:.6f}"
                          f"{monitor.summary()}", flush=True)
                # The callback sees every completed epoch, the interrupted one too.
                stop = monitor.should_stop(epoch + 1)
                if interrupt["interrupted"]:
                    monitor.finish()
                    raise KeyboardInterrupt
                if stop:
                    break
        monitor.finish()
        return self

    def _set_state(self, P, Q, user_bias, item_bias, biased):
        self.user_factors_, self.item_factors_ = P, Q
        self._biased = biased
        # Unbiased models still expose zero biases so that formulas need no case.
        self.user_bias_ = user_bias if biased else np.zeros(P.shape[0], dtype=P.dtype)
        self.item_bias_ = item_bias if biased else np.zeros(Q.shape[0], dtype=Q.dtype)

    def _forget_fit(self):
        for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_",
                     "global_mean_", "users_", "items_", "n_epochs_", "rating_range_"):
            self.__dict__.pop(name, None)

    def _error_sums(self, users, items, ratings, n_threads=1):
        return _sgd.error_sums(self.user_factors_, self.item_factors_, self.user_bias_,
                               self.item_bias_, users, items, ratings, self.global_mean_,
                               self._biased, n_threads)

    # -- using the model -----------------------------------------------------------

    def _check_fitted(self):
        if not hasattr(self, "user_factors_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    def _indices(self, users, items):
        users_idx = self._user_codes(users)
        items_idx = encode_query_ids(items, self.items_, "item ids")
        if len(users_idx) != len(items_idx):
            raise ValueError(f"got {len(users_idx)} users but {len(items_idx)} items")
        return users_idx, items_idx

    def predict(self, X, items=None, *, clip=False, return_fallback=False):
        """Predicted ratings of (user, item) pairs.

        Parameters
        ----------
        X : array-like of shape (n, 2), DataFrame, or of shape (n,) with ``items``
            (user id, item id) pairs, a DataFrame with ``user`` and ``item``
            columns (or exactly two columns), or the user ids alone when
            ``items`` is given.
        items : array-like of shape (n,), optional
            Item ids.
        clip : bool, default=False
            Clip the predictions to the training scale, ``rating_range_``.
        return_fallback : bool, default=False
            Also return which predictions fell back to the baseline.

        Returns
        -------
        predictions : ndarray of float64, shape (n,)
            An id unseen in training contributes no factors: the prediction
            falls back to the global mean plus the known side's bias.
        fallback : ndarray of bool, shape (n,)
            Only with ``return_fallback=True``: True where the user or the
            item was unseen in training.

        Examples
        --------
        >>> import numpy as np
        >>> from mfcy import MatrixFactorization
        >>> X, y = np.array([[1, 10], [1, 20], [2, 10]]), np.array([4.0, 2.0, 5.0])
        >>> model = MatrixFactorization(n_factors=2, n_epochs=5, random_state=0).fit(X, y)
        >>> _, fallback = model.predict([[1, 20], [3, 10]], return_fallback=True)
        >>> fallback
        array([False,  True])
        """
        self._check_fitted()
        users, items = split_pairs(X) if items is None else (X, items)
        users_idx, items_idx = self._indices(users, items)
        out = np.empty(len(users_idx), dtype=self.user_factors_.dtype)
        _sgd.predict_pairs(self.user_factors_, self.item_factors_, self.user_bias_,
                           self.item_bias_, users_idx, items_idx, self.global_mean_,
                           self._biased, out)
        out = out.astype(np.float64)
        if clip:
            np.clip(out, *self.rating_range_, out=out)
        if return_fallback:
            return out, (users_idx < 0) | (items_idx < 0)
        return out

    def recommend(self, users, n=10, *, exclude_seen=True, batch_size=None):
        """Top-``n`` items for each user, best first.

        Scores are the model's predicted ratings. Users are scored in batches
        (``P[batch] Qᵀ`` then ``argpartition``), so memory stays bounded by
        ``batch_size × n_items`` whatever the number of users.

        Parameters
        ----------
        users : array-like of shape (n_users_asked,) or a single id
            User ids. A user unseen in training gets the baseline ranking
            (global mean plus item bias: the most favourably rated items).
        n : int, default=10
            Items per user (at most the number of items).
        exclude_seen : bool, default=True
            Leave out the items the user rated in training.
        batch_size : int, optional
            Users scored at once; by default enough for about 16 M scores.

        Returns
        -------
        items : ndarray of shape (n_users_asked, n)
            Item ids (raw ids, as in ``items_``). A single user id gives 1-D
            arrays.
        scores : ndarray of float64, shape (n_users_asked, n)
            ``-inf`` marks slots beyond the user's unrated items (the item id
            there is meaningless).
        """
        self._check_fitted()
        single = np.ndim(users) == 0
        user_idx = self._user_codes(np.atleast_1d(np.asarray(users)))
        n_items = len(self.items_)
        n = min(_check_int("n", n, 1), n_items)
        if batch_size is None:
            batch_size = max(1, 2**24 // max(n_items, 1))
        batch_size = _check_int("batch_size", batch_size, 1)
        Q = self.item_factors_
        item_base = self.item_bias_.astype(Q.dtype) + (Q.dtype.type(self.global_mean_)
                                                        if self._biased else 0)
        top = np.empty((len(user_idx), n), dtype=np.int64)
        scores = np.empty((len(user_idx), n), dtype=np.float64)
        for start in range(0, len(user_idx), batch_size):
            batch = user_idx[start:start + batch_size]
            known = batch >= 0
            S = np.empty((len(batch), n_items), dtype=Q.dtype)
            S[known] = self.user_factors_[batch[known]] @ Q.T
            if self._biased:
                S[known] += self.user_bias_[batch[known], None]
                S[known] += item_base
            # An unknown user: no factors, no user bias -> the baseline ranking.
            S[~known] = item_base if self._biased else self.global_mean_
            if exclude_seen:
                rows, cols = self._seen_pairs(batch)
                S[rows, cols] = -np.inf
            part = np.argpartition(-S, n - 1, axis=1)[:, :n] if n < n_items else (
                np.broadcast_to(np.arange(n_items), S.shape).copy())
            part_scores = np.take_along_axis(S, part, axis=1)
            # Best first; equal scores in item order, so results are deterministic.
            order = np.lexsort((part, -part_scores), axis=1) if part.size else part
            top[start:start + len(batch)] = np.take_along_axis(part, order, axis=1)
            scores[start:start + len(batch)] = np.take_along_axis(part_scores, order, axis=1)
        items = self.items_[top]
        return (items[0], scores[0]) if single else (items, scores)

    def _seen_pairs(self, user_idx):
        """(row in ``user_idx``, item index) of every training rating of those users."""
        known = np.flatnonzero(user_idx >= 0)
        starts = self._seen_indptr[user_idx[known]]
        counts = self._seen_indptr[user_idx[known] + 1] - starts
        rows = np.repeat(known, counts)
        # Positions starts[r] .. starts[r] + counts[r] - 1 for every row r.
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return rows, self._seen_items[np.repeat(starts, counts) + offsets]

    def similar_items(self, item, n=10):
        """The ``n`` items whose factor vectors have the highest cosine with ``item``'s.

        Parameters
        ----------
        item : id
            A training item id.
        n : int, default=10

        Returns
        -------
        items : ndarray of shape (n,)
            Item ids, most similar first (the item itself excluded).
        similarities : ndarray of float64, shape (n,)
            Cosine similarities in [-1, 1].
        """
        self._check_fitted()
        idx = encode_query_ids(np.atleast_1d(np.asarray(item)), self.items_, "item ids")
        if idx.size != 1 or idx[0] < 0:
            raise ValueError(f"similar_items needs one item id seen in training, got {item!r}")
        Q = self.item_factors_.astype(np.float64)
        norms = np.linalg.norm(Q, axis=1)
        norms[norms == 0] = 1.0  # a zero vector is similar to nothing (cosine 0)
        sims = (Q @ Q[idx[0]]) / (norms * norms[idx[0]])
        sims[idx[0]] = -np.inf
        n = min(_check_int("n", n, 1), len(sims) - 1)
        best = np.lexsort((np.arange(len(sims)), -sims))[:n]
        return self.items_[best], sims[best]

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
        self._check_fitted()
        n_users, n_items = len(self.user_factors_), len(self.item_factors_)
        if n_users * n_items > MAX_RECONSTRUCT_CELLS and not allow_large:
            raise ValueError(f"reconstruct() would build a {n_users} x {n_items} matrix "
                             f"({n_users * n_items:.3g} cells); pass allow_large=True if "
                             "you really want it, or use predict() on the pairs you need")
        M = self.user_factors_.astype(np.float64) @ self.item_factors_.T.astype(np.float64)
        if self._biased:
            M += self.global_mean_ + self.user_bias_[:, None] + self.item_bias_[None, :]
        return M

    def plot_loss(self, ax=None):
        """Plot the training MSE per epoch.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw; a new figure if omitted.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from .plotting import plot_loss

        self._check_fitted()
        return plot_loss(self.history_, ax=ax)

    def plot_reconstruction(self, ax=None):
        """Heat map of :meth:`reconstruct`.

        Parameters
        ----------
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib.axes.Axes
        """
        from .plotting import plot_matrix

        return plot_matrix(self.reconstruct(), ax=ax, title="Reconstructed ratings")

    # -- saving and loading --------------------------------------------------------

    def save(self, path):
        """Write the fitted model to one ``.npz`` file (no pickle inside).

        The file holds the factors, biases, id maps, hyperparameters,
        ``history_``, the training interactions and the mfcy version; see
        :mod:`mfcy.io` for the format. It is written under a temporary name and
        renamed into place, so an interrupted save leaves no truncated file.

        Parameters
        ----------
        path : str, os.PathLike or binary file object
            Used as given (no ``.npz`` is appended).

        Examples
        --------
        >>> import numpy as np, os, tempfile
        >>> from mfcy import MatrixFactorization
        >>> X, y = np.array([["ann", "dune"], ["bob", "dune"]]), np.array([4.0, 2.0])
        >>> model = MatrixFactorization(n_factors=2, n_epochs=3, random_state=0).fit(X, y)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
        >>> model.save(path)
        >>> again = MatrixFactorization.load(path)
        >>> bool((again.predict(X) == model.predict(X)).all()), again.users_.tolist()
        (True, ['ann', 'bob'])
        """
        from .io import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`.

        The archive is opened with ``allow_pickle=False``: nothing in it is
        ever unpickled. The format version, a SHA-256 checksum and every shape
        and index range are checked.

        Parameters
        ----------
        path : str, os.PathLike or binary file object

        Returns
        -------
        MatrixFactorization
            Fitted; its predictions are bit-identical to the saved model's.

        Raises
        ------
        mfcy.io.ModelFileError
            (a ``ValueError``) If the file is missing, truncated, modified, of
            an unsupported format version, or holds a pickled object.
        """
        from .io import load_model

        return load_model(path, cls)

    # -- model selection and scikit-learn compatibility ------------------------------
    #
    # scikit-learn is optional: these methods implement its estimator protocol by
    # hand (inheriting from sklearn.base.BaseEstimator would make `import mfcy`
    # import scikit-learn), and import it only when scikit-learn itself asks.

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
            # (n, 2) ids, possibly strings; or a matrix with NaN, or sparse.
            input_tags=InputTags(two_d_array=True, sparse=True, allow_nan=True, string=True),
        )

    def __sklearn_is_fitted__(self):
        """Whether ``fit`` has run (what ``sklearn.utils.validation.check_is_fitted`` asks)."""
        return hasattr(self, "user_factors_")

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
        self._check_fitted()
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

    def _user_codes(self, ids, what="user ids"):
        """Indices of user ids in ``users_`` (``-1`` if unknown).

        ``users_`` is sorted after ``fit`` but no longer after :meth:`fold_in`
        appends ids, so the lookup goes through a sorted view, cached for as
        long as ``users_`` is the same array.
        """
        users = self.users_
        cache = self.__dict__.get("_user_lookup")
        if cache is None or cache[0] is not users:
            if len(users) < 2 or bool(np.all(users[1:] > users[:-1])):
                cache = (users, users, None)
            else:
                order = np.argsort(users, kind="stable")
                cache = (users, users[order], order)
            self._user_lookup = cache
        codes = encode_query_ids(ids, cache[1], what)
        if cache[2] is not None:
            codes = np.where(codes >= 0, cache[2][np.maximum(codes, 0)], -1)
        return codes

    def _warm_start_state(self, triples, P, Q, user_bias, item_bias, *, keep_users, keep_items):
        """Copy the fitted factors and biases of the ids that ``triples`` shares with the model.

        ``P``, ``Q`` and the biases already hold a fresh start for every id;
        rows of ids the model knows are overwritten in place.
        """
        k_old, k = self.user_factors_.shape[1], P.shape[1]
        if k_old != k:
            raise ValueError(f"warm_start=True continues from the fitted factors, which have "
                             f"{k_old} columns, but n_factors={self.n_factors!r}: set "
                             "warm_start=False to start over with a new n_factors")
        if keep_users:
            old = self._user_codes(triples.user_ids)
            known = old >= 0
            P[known] = self.user_factors_[old[known]]
            if len(user_bias):
                user_bias[known] = self.user_bias_[old[known]]
        if keep_items:
            old = encode_query_ids(triples.item_ids, self.items_, "item ids")
            known = old >= 0
            Q[known] = self.item_factors_[old[known]]
            if len(item_bias):
                item_bias[known] = self.item_bias_[old[known]]

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
        costs ``O(n_u k² + k³)`` per user (a fraction of a millisecond at
        k = 100; the systems are solved in batches).

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
        self._check_fitted()
        params = self._validated_params()
        users_raw, items_raw, ratings = rating_rows(X, y)
        item_idx = encode_query_ids(items_raw, self.items_, "item ids")
        user_idx = self._user_codes(users_raw)
        new_ids = np.unique(users_raw[user_idx < 0])
        if len(new_ids):
            self._append_users(new_ids)
            user_idx = self._user_codes(users_raw)
        usable = item_idx >= 0
        if not usable.all():
            unknown = np.unique(items_raw[~usable])
            warnings.warn(f"fold_in: {int((~usable).sum())} ratings of {len(unknown)} item(s) "
                          f"unknown to the model (e.g. {unknown[0].item()!r}) were left out",
                          UserWarning, stacklevel=2)
        if not usable.any():
            return self
        # Averages duplicate pairs and sorts by user, as fit does.
        triples = to_triples(np.column_stack([user_idx[usable], item_idx[usable]]),
                             ratings[usable])
        users = triples.user_ids[triples.users]
        items = triples.item_ids[triples.items]
        with _one_blas_thread():
            solved_users, factors, biases = _ridge_fold_in(
                self.item_factors_, self.item_bias_, self.global_mean_, self._biased, users,
                items, triples.ratings, params["regularization"],
                params["bias_regularization"])
        self.user_factors_[solved_users] = factors
        if self._biased:
            self.user_bias_[solved_users] = biases
        self._add_seen(users, items)
        return self

    def _append_users(self, new_ids):
        """Append rows for user ids the model has not seen (zero factors and bias)."""
        ids = self.users_
        if new_ids.dtype != ids.dtype and ids.dtype.kind not in "US":
            # int64 next to uint64 ids would become float64: keep the model's dtype.
            cast = new_ids.astype(ids.dtype)
            # Compared as Python ints: a round trip through the other 64-bit type
            # restores -9 from 2**64 - 9 (and 2**63 from -2**63).
            if not np.array_equal(cast.astype(object), new_ids.astype(object)):
                raise ValueError(f"user ids {new_ids[:3].tolist()} do not fit the model's "
                                 f"id type {ids.dtype}")
            new_ids = cast
        n_new, k = len(new_ids), self.user_factors_.shape[1]
        P = self.user_factors_
        self.users_ = np.concatenate([ids, new_ids])
        self.user_factors_ = np.concatenate([P, np.zeros((n_new, k), dtype=P.dtype)])
        self.user_bias_ = np.concatenate([self.user_bias_,
                                          np.zeros(n_new, dtype=self.user_bias_.dtype)])
        self._seen_indptr = np.concatenate(
            [self._seen_indptr, np.full(n_new, self._seen_indptr[-1], dtype=np.int64)])

    def _add_seen(self, users, items):
        """Add (user index, item index) pairs to the training interactions."""
        n_users, n_items = len(self.users_), len(self.items_)
        counts = np.diff(self._seen_indptr)
        old_users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
        keys = np.unique(np.concatenate([old_users * n_items + self._seen_items,
                                         users.astype(np.int64) * n_items + items]))
        self._seen_indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // n_items, minlength=n_users), out=self._seen_indptr[1:])
        self._seen_items = (keys % n_items).astype(self._seen_items.dtype)


def _one_blas_thread():
    """Limit BLAS to one thread while solving many small systems, if threadpoolctl is there.

    A fold-in is thousands of k × k products and solves: BLAS threads only
    add synchronisation to each (measured 5–30× slower with two OpenBLAS
    threads on a busy two-core machine). threadpoolctl comes with
    scikit-learn; without it the BLAS default stays.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - an optional dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _ridge_fold_in(Q, item_bias, global_mean, biased, users, items, ratings, regularization,
                   bias_regularization, budget=2**22):
    """Closed-form per-user ridge solutions against fixed item factors.

    ``users`` are sorted indices. Each user's Gram matrix is one matrix
    product of its item rows (a batched sum of outer products would write
    ``n_u × d²`` numbers instead of reading ``n_u × d``: measured 30× slower at
    k = 100); the systems of a batch of users, at most ``budget`` numbers of
    Gram matrices, are then solved at once.

    Returns
    -------
    solved : ndarray of int64
        The distinct user indices.
    factors : ndarray of shape (len(solved), k)
    biases : ndarray of shape (len(solved),), zeros for an unbiased model
    """
    k = Q.shape[1]
    d = k + 1 if biased else k
    design = np.empty((len(items), d))
    design[:, :k] = Q[items]
    target = ratings.astype(np.float64)
    if biased:
        design[:, k] = 1.0
        target = target - global_mean - item_bias[items]
    solved, starts, counts = np.unique(users, return_index=True, return_counts=True)
    rhs = np.add.reduceat(design * target[:, None], starts, axis=0)
    penalty = np.full(d, float(regularization))
    if biased:
        penalty[k] = float(bias_regularization)
    singular = not (penalty > 0).all()
    solutions = np.empty((len(solved), d))
    diagonal = np.arange(d)
    batch = max(1, budget // (d * d))
    for first in range(0, len(solved), batch):
        last = min(first + batch, len(solved))
        gram = np.empty((last - first, d, d))
        for j, (start, count) in enumerate(zip(starts[first:last], counts[first:last])):
            rows = design[start:start + count]
            np.matmul(rows.T, rows, out=gram[j])
        gram[:, diagonal, diagonal] += counts[first:last, None] * penalty
        if singular:
            # No penalty: the minimum-norm least-squares solution (the limit
            # of a vanishing one), defined even with fewer ratings than factors.
            solutions[first:last] = (np.linalg.pinv(gram, hermitian=True)
                                     @ rhs[first:last, :, None])[:, :, 0]
        else:
            solutions[first:last] = np.linalg.solve(gram, rhs[first:last, :, None])[:, :, 0]
    biases = solutions[:, k] if biased else np.zeros(len(solved))
    return solved, solutions[:, :k], biases


class _ValidationSet:
    """Held-out ratings mapped once to the training indices, scored after every epoch.

    Pairs whose user and item are both known go through the compiled error
    pass; the others (an id absent from training) can only get the fallback
    prediction, ``μ`` plus the known side's bias, computed with numpy.
    """

    def __init__(self, validation, triples, dtype, columns=None):
        try:
            if isinstance(validation, tuple):
                if len(validation) != 2:
                    raise ValueError(f"a tuple must be (X_val, y_val), got {len(validation)} items")
                users, items, ratings = rating_rows(*validation)
            else:
                users, items, ratings = rating_rows(validation, columns=columns)
            user_idx = encode_query_ids(users, triples.user_ids, "user ids")
            item_idx = encode_query_ids(items, triples.item_ids, "item ids")
        except ValueError as exc:
            raise ValueError(f"validation: {exc}") from None
        known = (user_idx >= 0) & (item_idx >= 0)
        index_dtype = triples.users.dtype
        self.users = np.ascontiguousarray(user_idx[known], dtype=index_dtype)
        self.items = np.ascontiguousarray(item_idx[known], dtype=index_dtype)
        with np.errstate(over="ignore"):
            self.ratings = np.ascontiguousarray(ratings[known], dtype=dtype)
        if not np.isfinite(self.ratings).all():
            raise ValueError(f"validation: ratings overflow {np.dtype(dtype).name}")
        self.fallback_users = user_idx[~known]
        self.fallback_items = item_idx[~known]
        self.fallback_ratings = ratings[~known]
        self.n = len(ratings)

    def errors(self, model, n_threads):
        """(MSE, MAE) of the model's current predictions."""
        sse = sae = 0.0
        if len(self.users):
            sse, sae = model._error_sums(self.users, self.items, self.ratings, n_threads)
        if len(self.fallback_ratings):
            predicted = np.full(len(self.fallback_ratings), model.global_mean_)
            if model._biased:
                u, i = self.fallback_users, self.fallback_items
                predicted += np.where(u >= 0, model.user_bias_[np.maximum(u, 0)], 0.0)
                predicted += np.where(i >= 0, model.item_bias_[np.maximum(i, 0)], 0.0)
            # As in the compiled pass: squares of errors beyond 1e154 overflow
            # to an honest inf, no warning (the ratings themselves were checked).
            with np.errstate(over="ignore"):
                err = self.fallback_ratings - predicted
                sse += float(err @ err)
                sae += float(np.abs(err).sum())
        return sse / self.n, sae / self.n


class _EpochMonitor:
    """Validation scores, early stopping and the user's callback, once per epoch."""

    def __init__(self, model, validation, callback, params, triples, dtype, columns=None):
        self.model = model
        self.callback = callback
        self.early_stopping = bool(model.early_stopping)
        self.patience = params["n_iter_no_change"]
        self.tol = params["tol"]
        self.n_threads = params["n_threads"]
        if validation is None:
            if self.early_stopping:
                raise ValueError("early_stopping=True needs held-out ratings to watch: "
                                 "fit(X, y, validation=(X_val, y_val))")
            self.validation = None
        else:
            self.validation = _ValidationSet(validation, triples, dtype, columns)
        self.best_rmse = math.inf
        self.best_epoch = 0
        self.best_state = None
        self.epochs_without_improvement = 0

    def _state(self):
        m = self.model
        return (m.user_factors_, m.item_factors_, m.user_bias_, m.item_bias_)

    def record(self, epoch):
        """Score the validation set after ``epoch`` epochs; remember the best factors."""
        if self.validation is None:
            return
        mse, mae = self.validation.errors(self.model, self.n_threads)
        rmse = math.sqrt(mse)
        history = self.model.history_
        for key, value in (("val_mse", mse), ("val_rmse", rmse), ("val_mae", mae)):
            history.setdefault(key, []).append(value)
        if rmse < self.best_rmse - self.tol:
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        if rmse < self.best_rmse:
            self.best_rmse, self.best_epoch = rmse, epoch
            if self.early_stopping:
                # Copied only on improvement, into buffers allocated once.
                if self.best_state is None:
                    self.best_state = tuple(a.copy() for a in self._state())
                else:
                    for saved, current in zip(self.best_state, self._state()):
                        np.copyto(saved, current)
        self.model.best_epoch_ = self.best_epoch

    def summary(self):
        """Text appended to the verbose line of an epoch."""
        if self.validation is None:
            return ""
        return f"  val RMSE {self.model.history_['val_rmse'][-1]:.6f}"

    def should_stop(self, epoch):
        """Whether early stopping or the callback ends training after ``epoch``."""
        stop = False
        if self.callback is not None:
            stop = self.callback(self.model, epoch, self.model.history_) is False
        if self.early_stopping and self.epochs_without_improvement >= self.patience:
            if self.model.verbose:
                print(f"early stopping: no improvement of the validation RMSE for "
                      f"{self.patience} epochs; keeping epoch {self.best_epoch}", flush=True)
            stop = True
        return stop

    def finish(self):
        """Restore the best epoch's factors (early stopping) once training ends."""
        if self.best_state is not None and self.best_epoch != self.model.n_epochs_:
            for saved, current in zip(self.best_state, self._state()):
                np.copyto(current, saved)
