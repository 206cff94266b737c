"""The epoch loop every SGD fit runs: divergence, history, validation, early stopping,
callbacks, Ctrl-C and the per-epoch installs of the fitted state.

The loop (:func:`run_epochs`) does not know where the factors live. It drives
a *runner*, an object with

``sgd_epoch(epoch) -> float``
    Run one SGD pass; return the summed squared error met during it.
``train_loss() -> float``
    The summed squared error over the training ratings (``track_loss``).
``parameters_finite() -> bool``
    Whether every factor and bias is finite (the divergence check without
    a loss pass).
``state(history, n_epochs, best_epoch) -> FittedState``
    The fitted state as of now, to install.
``save_best()`` / ``restore_best()``
    Keep a copy of the current parameters / put that copy back (early
    stopping).
``n_ratings``, ``rating_magnitude``
    For the MSE and the divergence message.
``divergence_advice`` (optional)
    What to change when the fit diverges, for a runner whose model has no
    learning rate to lower (NMF).
``cheap_state``
    Whether ``state`` costs next to nothing (the local runner's arrays are
    the state). If not (the cluster's factors have to be gathered; SVD++'s
    state sums every user's implicit factors), the loop installs the state
    after an epoch only when a callback may look at the model, and once when
    training ends; until then the model is unfitted (no state is built before
    the first epoch).

:class:`BlockedRunner` is the local runner (the compiled kernel over the
block layout of :mod:`mfcy._blocking`); :mod:`mfcy.dask` has the cluster's.
One loop means one divergence check, one history layout and one early-stopping
rule for both.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time

import numpy as np

from ._extensions import _sgd
from ._state import FittedState, install, uninstall
from ._limits import warn_if_loss_grew
from ._input import encode_query_ids, validation_rows
from .exceptions import DivergenceError

__all__ = ["BlockedRunner", "Monitor", "ValidationSet", "fit_monitor", "run_epochs", "interrupt_after_epoch",
           "diverged"]


def diverged(epoch, learning_rate, rating_magnitude, advice=None):
    """The error of a fit whose loss stopped being finite in ``epoch`` (from 1).

    ``advice`` replaces the SGD advice (a smaller learning rate) for a model
    that has no learning rate (a runner's ``divergence_advice``).
    """
    if advice is not None:
        return DivergenceError(
            f"training diverged in epoch {epoch} (the loss is no longer finite) with "
            f"ratings of magnitude up to {rating_magnitude:.3g}: {advice}")
    return DivergenceError(
        f"training diverged in epoch {epoch} (the loss is no longer finite) with "
        f"learning_rate={learning_rate!r} and ratings of magnitude up to "
        f"{rating_magnitude:.3g}: try a smaller learning rate, or center and rescale "
        "the ratings")


@contextlib.contextmanager
def interrupt_after_epoch():
    """Defer Ctrl-C to the end of the running epoch, when nobody else handles it.

    The kernel runs without the GIL, so Python would only see SIGINT after the
    epoch anyway; catching it here lets ``fit`` finish the bookkeeping of that
    epoch (history, fitted attributes) before re-raising ``KeyboardInterrupt``.
    The handler is installed only from the main thread (the only one that may
    set handlers) and only while SIGINT has Python's default handler: an
    ignored SIGINT (``SIG_IGN``, as a background job inherits it) stays
    ignored, and a handler of the application's stays in place. In those
    cases ``interrupted`` never becomes true and the signal does what its
    owner set it to do.
    """
    flag = {"interrupted": False}
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield flag
        return

    def handler(signum, frame):
        flag["interrupted"] = True

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # pragma: no cover - e.g. an embedded interpreter
        yield flag
        return
    try:
        yield flag
    finally:
        # Put the default back only if the handler is still ours: something
        # that replaced it during the fit (a callback) keeps its own.
        if signal.getsignal(signal.SIGINT) is handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def new_history(track_loss):
    """The empty per-epoch history of a fit."""
    history = {"sgd_mse": [], "epoch_seconds": []}
    if track_loss:
        history["train_mse"] = []
        history["train_rmse"] = []
        history["loss_seconds"] = []
    return history


def run_epochs(model, runner, params, monitor, history=None):
    """Run up to ``params.n_epochs`` epochs through ``runner``, installing the state on ``model``.

    The state is installed before the first epoch (once everything has been
    checked, so that a refused fit leaves a fitted model as it was) and again
    after every epoch; a diverged fit leaves the model unfitted. A runner
    whose state is not cheap leaves the model unfitted until it installs one
    (see the module docstring).
    """
    track_loss, verbose = params.track_loss, params.verbose
    history = new_history(track_loss) if history is None else history
    n = runner.n_ratings
    if runner.cheap_state:
        install(model, runner.state(history, 0, None))
    else:
        # Building the starting state would hold a second copy of the factors
        # (the cluster's gathered to the client) for the whole fit.
        uninstall(model)
    with interrupt_after_epoch() as interrupt:
        for epoch in range(params.n_epochs):
            start = time.perf_counter()
            sse = runner.sgd_epoch(epoch)
            sgd_done = time.perf_counter()
            if track_loss:
                loss = runner.train_loss()
                history["loss_seconds"].append(time.perf_counter() - sgd_done)
                finite = math.isfinite(loss)
            else:
                # The epoch's own error sum misses a blow-up in its very last
                # updates; the parameters do not.
                finite = runner.parameters_finite()
            if not (math.isfinite(sse) and finite):
                uninstall(model)
                raise diverged(epoch + 1, params.learning_rate, runner.rating_magnitude,
                               getattr(runner, "divergence_advice", None))
            history["sgd_mse"].append(sse / n)
            history["epoch_seconds"].append(sgd_done - start)
            if track_loss:
                history["train_mse"].append(loss / n)
                history["train_rmse"].append(math.sqrt(loss / n))
            monitor.record(epoch + 1, history, runner)
            if runner.cheap_state or monitor.callback is not None:
                install(model, runner.state(history, epoch + 1, monitor.best_epoch_or_none()))
            if verbose:
                shown = history["train_rmse" if track_loss else "sgd_mse"][-1]
                label = "train RMSE" if track_loss else "SGD MSE"
                print(f"epoch {epoch + 1:4d}/{params.n_epochs}  {label} {shown:.6f}"
                      f"{monitor.summary(history)}", flush=True)
            # The callback sees every completed epoch, the interrupted one too.
            stop = monitor.should_stop(model, epoch + 1, history, verbose)
            if interrupt["interrupted"]:
                _finish(model, runner, monitor, history)
                raise KeyboardInterrupt
            if stop:
                break
    _finish(model, runner, monitor, history)
    warn_if_loss_grew(history, track_loss, params.learning_rate, stacklevel=4)
    return history


def _finish(model, runner, monitor, history):
    """Restore the best epoch (early stopping) and install the final state."""
    monitor.finish(len(history["sgd_mse"]), runner)
    install(model, runner.state(history, len(history["sgd_mse"]), monitor.best_epoch_or_none()))


class BlockedRunner:
    """The local runner: the compiled kernel over an :class:`~mfcy._blocking.EpochPlan`.

    Owns the factor and bias arrays it trains (nothing else writes them during
    the fit), so the loss pass and the validation pass read this fit's arrays
    whatever happens to the model object meanwhile.
    """

    #: The state holds the runner's own arrays: installing it costs nothing.
    cheap_state = True

    def __init__(self, plan, rng, P, Q, user_bias, item_bias, params, *, global_mean,
                 train_users, train_items, ratings, state_fields, accumulators=None):
        self.plan, self.rng = plan, rng
        self.P, self.Q, self.user_bias, self.item_bias = P, Q, user_bias, item_bias
        # (user, item) accumulators of the "adagrad" schedule, or None.
        self.accumulators = accumulators
        self.params = params
        self.global_mean = global_mean
        self.train = (train_users, train_items, ratings)
        self.n_ratings = len(ratings)
        self.fields = state_fields
        self.best = None
        # An unbiased fit trains no bias arrays; its state and the loss pass
        # see zeros (allocated once).
        self.shown_bias = ((user_bias, item_bias) if params.biased else
                           (np.zeros(len(P), P.dtype), np.zeros(len(Q), Q.dtype)))

    @property
    def rating_magnitude(self):
        return float(np.abs(self.train[2]).max())

    def sgd_epoch(self, epoch):
        plan, p = self.plan, self.params
        visit_order, strata, stride = plan.draw(self.rng)
        return _sgd.sgd_epoch(self.P, self.Q, self.user_bias, self.item_bias, plan.users,
                              plan.items, plan.ratings, plan.chunk_bounds, plan.block_chunks,
                              visit_order, strata, stride, self.global_mean, p.learning_rate,
                              p.regularization, p.bias_regularization, p.biased,
                              p.update == "sequential", p.n_threads,
                              *(self.accumulators or ()))

    def train_loss(self):
        users, items, ratings = self.train
        loss, _ = _sgd.error_sums(self.P, self.Q, *self.shown_bias, users, items, ratings,
                                  self.global_mean, self.params.biased, self.params.n_threads)
        return loss

    def parameters_finite(self):
        # Checked value by value, not through a sum: no float64 conversion of
        # every factor each epoch, and large finite values that would sum past
        # the float64 range are not taken for a blow-up.
        return all(np.isfinite(a).all() for a in (self.P, self.Q, self.user_bias,
                                                   self.item_bias))

    def state(self, history, n_epochs, best_epoch):
        user_g, item_g = self.accumulators or (None, None)
        return FittedState(self.P, self.Q, *self.shown_bias, self.params.biased,
                           history=history, n_epochs=n_epochs, best_epoch=best_epoch,
                           user_accumulator=user_g, item_accumulator=item_g, **self.fields)

    def _arrays(self):
        # Early stopping keeps the accumulators of the best epoch with its factors.
        return (self.P, self.Q, self.user_bias, self.item_bias, *(self.accumulators or ()))

    def save_best(self):
        # Copied only on improvement, into buffers allocated once.
        if self.best is None:
            self.best = tuple(a.copy() for a in self._arrays())
        else:
            for saved, now in zip(self.best, self._arrays()):
                np.copyto(saved, now)

    def restore_best(self):
        for saved, now in zip(self.best, self._arrays()):
            np.copyto(now, saved)


class ValidationSet:
    """Held-out ratings mapped once to the training indices, scored after every epoch.

    Pairs whose user and item are both known go through the compiled error
    pass; the others (an id absent from training) can only get the fallback
    prediction, ``μ`` plus the known side's bias, computed with numpy.
    """

    def __init__(self, validation, user_ids, item_ids, index_dtype, dtype, columns=None):
        try:
            users, items, ratings = validation_rows(validation, columns)
            user_idx = encode_query_ids(users, user_ids, "user ids")
            item_idx = encode_query_ids(items, item_ids, "item ids")
        except ValueError as exc:
            raise ValueError(f"validation: {exc}") from None
        known = (user_idx >= 0) & (item_idx >= 0)
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

    def errors(self, state, n_threads):
        """(MSE, MAE) of the predictions of ``state``."""
        sse = sae = 0.0
        if len(self.users):
            sse, sae = state.error_sums(self.users, self.items, self.ratings, n_threads)
        if len(self.fallback_ratings):
            predicted = np.full(len(self.fallback_ratings), state.global_mean)
            if state.biased:
                u, i = self.fallback_users, self.fallback_items
                predicted += np.where(u >= 0, state.user_bias[np.maximum(u, 0)], 0.0)
                predicted += np.where(i >= 0, state.item_bias[np.maximum(i, 0)], 0.0)
            # As in the compiled pass: squares of errors beyond 1e154 overflow
            # to an honest inf, no warning (the ratings themselves were checked).
            with np.errstate(over="ignore"):
                err = self.fallback_ratings - predicted
                sse += float(err @ err)
                sae += float(np.abs(err).sum())
        return sse / self.n, sae / self.n


def fit_monitor(params, validation, training, index_dtype, columns, callback):
    """The :class:`Monitor` of a fit, its held-out ratings (if any) encoded with
    ``training``'s id maps (``user_ids``, ``item_ids``) into ``index_dtype`` indices.

    Made before any fitted state is replaced: a bad validation set leaves a
    fitted model as it was.
    """
    held_out = (None if validation is None else
                ValidationSet(validation, training.user_ids, training.item_ids, index_dtype,
                              params.dtype, columns))
    return Monitor(params, held_out, callback)


class Monitor:
    """Validation scores, early stopping and the user's callback, once per epoch."""

    def __init__(self, params, validation, callback):
        if callback is not None and not callable(callback):
            raise ValueError(f"callback must be callable, got {callback!r}")
        self.callback = callback
        self.early_stopping = params.early_stopping
        self.patience = params.n_iter_no_change
        self.tol = params.tol
        self.n_threads = params.n_threads
        if validation is None and self.early_stopping:
            raise ValueError("early_stopping=True needs held-out ratings to watch: "
                             "fit(X, y, validation=(X_val, y_val))")
        self.validation = validation
        self.best_rmse = math.inf
        self.best_epoch = 0
        self.saved = False
        self.epochs_without_improvement = 0

    def best_epoch_or_none(self):
        return None if self.validation is None else self.best_epoch

    def record(self, epoch, history, runner):
        """Score the validation set after ``epoch`` epochs; remember the best factors."""
        if self.validation is None:
            return
        mse, mae = self.validation.errors(runner.state(history, epoch, None), self.n_threads)
        rmse = math.sqrt(mse)
        for key, value in (("val_mse", mse), ("val_rmse", rmse), ("val_mae", mae)):
            history.setdefault(key, []).append(value)
        if rmse < self.best_rmse - self.tol:
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        if rmse < self.best_rmse:
            self.best_rmse, self.best_epoch = rmse, epoch
            if self.early_stopping:
                runner.save_best()
                self.saved = True

    def summary(self, history):
        """Text appended to the verbose line of an epoch."""
        if self.validation is None:
            return ""
        return f"  val RMSE {history['val_rmse'][-1]:.6f}"

    def should_stop(self, model, epoch, history, verbose):
        """Whether early stopping or the callback ends training after ``epoch``."""
        stop = False
        if self.callback is not None:
            stop = self.callback(model, epoch, history) is False
        if self.early_stopping and self.epochs_without_improvement >= self.patience:
            if verbose:
                print(f"early stopping: no improvement of the validation RMSE for "
                      f"{self.patience} epochs; keeping epoch {self.best_epoch}", flush=True)
            stop = True
        return stop

    def finish(self, n_epochs, runner):
        """Restore the best epoch's factors (early stopping) once training ends."""
        if self.saved and self.best_epoch != n_epochs:
            runner.restore_best()
