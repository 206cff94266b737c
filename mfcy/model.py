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

import numpy as np

from . import _sgd
from ._blocking import EpochPlan
from .data import encode_query_ids, split_pairs, to_triples

__all__ = ["MatrixFactorization", "DivergenceError"]

#: ``reconstruct()`` refuses larger matrices unless asked explicitly.
MAX_RECONSTRUCT_CELLS = 10**8

_UPDATES = ("simultaneous", "sequential")
_DTYPES = ("float32", "float64")


class DivergenceError(ValueError):
    """Training diverged: the loss or the factors stopped being finite.

    Raised at the end of the epoch in which it happened; the usual cure is a
    smaller ``learning_rate``.
    """


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
        Any value gives the same factors.
    random_state : int, numpy.random.Generator or None, default=None
        Seed of the initial factors and of the visiting order. The same seed
        gives bit-identical factors.
    verbose : bool, default=False
        Print the loss after each epoch.

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, n_factors)
    item_factors_ : ndarray of shape (n_items, n_factors)
    user_bias_ : ndarray of shape (n_users,)
        Zeros when ``biased=False``.
    item_bias_ : ndarray of shape (n_items,)
    global_mean_ : float
        Mean training rating (what an unknown user and item predict).
    users_, items_ : ndarray
        Index → id: row ``j`` of ``user_factors_`` belongs to ``users_[j]``.
    history_ : dict of lists
        Per epoch: ``"train_mse"`` and ``"train_rmse"`` (after the epoch, over
        every observed training entry, when ``track_loss``), ``"sgd_mse"``
        (the mean squared error met during the epoch, before each update,
        free) and ``"epoch_seconds"``.
    n_epochs_ : int
        Epochs actually run.

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
                 n_threads=None, random_state=None, verbose=False):
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
        return p

    # -- fitting -------------------------------------------------------------------

    def _initial_factors(self, given, shape, name, rng, params):
        if given is None:
            # Drawn in float64 then cast, so float32 and float64 models start
            # from the same numbers.
            return (rng.standard_normal(shape) * params["init_std"]).astype(params["dtype"])
        arr = np.asarray(given)
        if arr.dtype.kind not in "iuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (n, n_factors), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinity")
        return np.array(arr, dtype=params["dtype"], order="C", copy=True)

    def fit(self, X, y=None, *, user_factors=None, item_factors=None):
        """Fit the factors to the observed ratings.

        Parameters
        ----------
        X : array-like of shape (n_users, n_items), scipy.sparse matrix, or (n, 2) ids
            A ratings matrix with NaN for unknown entries, a sparse matrix
            whose stored entries are the ratings, or (user id, item id) pairs
            when ``y`` is given. Duplicate (user, item) observations are
            averaged.
        y : array-like of shape (n,), optional
            Ratings of the pairs in ``X``.
        user_factors, item_factors : array-like, optional
            Initial factors of shape (n_users, n_factors) and
            (n_items, n_factors), copied; drawn from N(0, init_std²) if omitted.

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
        ``global_mean_`` is the float64 mean. Ratings that overflow ``dtype``
        (1e39 with float32), or whose sum overflows float64, are a
        ``ValueError``. SGD is not scale-free: ratings as large as 1e30 make
        the factors overflow within the first epochs at any usual learning
        rate, which is a ``DivergenceError`` whose message gives the ratings'
        magnitude; center and rescale such ratings.
        """
        params = self._validated_params()
        triples = to_triples(X, y)
        dtype = params["dtype"]
        rng = np.random.default_rng(self.random_state)
        k = params["n_factors"]
        P = self._initial_factors(user_factors, (triples.n_users, k), "user_factors", rng, params)
        Q = self._initial_factors(item_factors, (triples.n_items, k), "item_factors", rng, params)
        with np.errstate(over="ignore"):  # reported below, as a ValueError
            ratings = triples.ratings.astype(dtype)
        if not np.isfinite(ratings).all():
            raise ValueError(f"ratings overflow {dtype.name} (largest magnitude "
                             f"{np.abs(triples.ratings).max():.3g})")
        with np.errstate(over="ignore"):  # reported below, as a ValueError
            global_mean = float(triples.ratings.mean())
        if not math.isfinite(global_mean):
            raise ValueError("ratings too large: their mean overflows float64; rescale the "
                             "ratings")
        # From here on only the kernel's copy of the ratings is needed: let the
        # float64 one go (a fit must not hold more copies of the ratings than it
        # uses; with float64 factors the two are one array anyway).
        triples.ratings = ratings
        biased = bool(self.biased)
        n_bias_users, n_bias_items = ((triples.n_users, triples.n_items) if biased else (0, 0))
        user_bias = np.zeros(n_bias_users, dtype=dtype)
        item_bias = np.zeros(n_bias_items, dtype=dtype)

        plan = EpochPlan(triples.users, triples.items, ratings, triples.n_users,
                         triples.n_items, params["n_blocks"], self.shuffle, rng)
        n = len(ratings)
        history = {"sgd_mse": [], "epoch_seconds": []}
        if self.track_loss:
            history["train_mse"] = []
            history["train_rmse"] = []
        sequential = self.update == "sequential"

        self.users_, self.items_ = triples.user_ids, triples.item_ids
        self.global_mean_ = global_mean
        self.history_ = history
        self.n_epochs_ = 0
        self._set_state(P, Q, user_bias, item_bias, biased)
        # The training interactions, as a compact CSR of item indices per user
        # (the canonical triples are sorted by user, then item): recommendations
        # exclude what a user already rated.
        self._seen_indptr = np.zeros(triples.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(triples.users, minlength=triples.n_users),
                  out=self._seen_indptr[1:])
        self._seen_items = triples.items

        with _interrupt_after_epoch() as interrupt:
            for epoch in range(params["n_epochs"]):
                start = time.perf_counter()
                visit_order, strata = plan.draw(rng)
                sse = _sgd.sgd_epoch(P, Q, user_bias, item_bias, plan.users, plan.items,
                                     plan.ratings, plan.chunk_bounds, plan.block_chunks,
                                     visit_order, strata, global_mean, params["learning_rate"],
                                     params["regularization"], params["bias_regularization"],
                                     biased, sequential, params["n_threads"])
                if self.track_loss:
                    loss, _ = self._error_sums(triples.users, triples.items, ratings,
                                               params["n_threads"])
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
                    scale = float(np.abs(triples.ratings).max())
                    raise DivergenceError(
                        f"training diverged in epoch {epoch + 1} (the loss is no longer "
                        f"finite) with learning_rate={self.learning_rate!r} and ratings of "
                        f"magnitude up to {scale:.3g}: try a smaller learning rate, or "
                        "center and rescale the ratings")
                history["sgd_mse"].append(sse / n)
                history["epoch_seconds"].append(time.perf_counter() - start)
                if self.track_loss:
                    history["train_mse"].append(loss / n)
                    history["train_rmse"].append(math.sqrt(loss / n))
                self.n_epochs_ = epoch + 1
                if self.verbose:
                    shown = history["train_rmse" if self.track_loss else "sgd_mse"][-1]
                    label = "train RMSE" if self.track_loss else "SGD MSE"
                    print(f"epoch {epoch + 1:4d}/{params['n_epochs']}  {label} {shown:.6f}",
                          flush=True)
                if interrupt["interrupted"]:
                    raise KeyboardInterrupt
        return self

    def _set_state(self, P, Q, user_bias, item_bias, biased):
        self.user_factors_, self.item_factors_ = P, Q
        self._biased = biased
        # Unbiased models still expose zero biases so that formulas need no case.
        self.user_bias_ = user_bias if biased else np.zeros(P.shape[0], dtype=P.dtype)
        self.item_bias_ = item_bias if biased else np.zeros(Q.shape[0], dtype=Q.dtype)

    def _forget_fit(self):
        for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_",
                     "global_mean_", "users_", "items_", "n_epochs_"):
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
        users_idx = encode_query_ids(users, self.users_, "user ids")
        items_idx = encode_query_ids(items, self.items_, "item ids")
        if len(users_idx) != len(items_idx):
            raise ValueError(f"got {len(users_idx)} users but {len(items_idx)} items")
        return users_idx, items_idx

    def predict(self, X, items=None):
        """Predicted ratings of (user, item) pairs.

        Parameters
        ----------
        X : array-like of shape (n, 2), or of shape (n,) with ``items``
            (user id, item id) pairs, or the user ids alone when ``items`` is
            given.
        items : array-like of shape (n,), optional
            Item ids.

        Returns
        -------
        ndarray of float64, shape (n,)
            An id unseen in training contributes no factors: the prediction
            falls back to the global mean plus the known side's bias.
        """
        self._check_fitted()
        users, items = split_pairs(X) if items is None else (X, items)
        users_idx, items_idx = self._indices(users, items)
        out = np.empty(len(users_idx), dtype=self.user_factors_.dtype)
        _sgd.predict_pairs(self.user_factors_, self.item_factors_, self.user_bias_,
                           self.item_bias_, users_idx, items_idx, self.global_mean_,
                           self._biased, out)
        return out.astype(np.float64)

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
        user_idx = encode_query_ids(np.atleast_1d(np.asarray(users)), self.users_, "user ids")
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
