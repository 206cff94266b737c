"""Training on a Dask cluster: the blocked, stratified SGD of the local fit, distributed.

Use it as::

    from distributed import Client
    import dask.dataframe as dd
    import mfcy.dask
    from mfcy import MatrixFactorization

    client = Client("tcp://scheduler:8786")
    ratings = dd.read_parquet("s3://bucket/ratings/")      # user, item, rating columns
    model = MatrixFactorization(n_factors=64, n_blocks=32, random_state=0)
    mfcy.dask.fit(client, ratings, model)                  # a normal, local model afterwards
    model.recommend([42])

How it works (the user guide's "Training on a cluster" has the details):
:func:`partition` lays each *row block* of the local fit's block grid out on
one worker, as the local fit lays it out (``mfcy._cluster_tasks`` holds
what the workers run). The fit then runs the local fit's epoch loop
(``mfcy._training.run_epochs``: divergence, history, validation, early
stopping, callbacks, Ctrl-C) through ``_ClusterRunner``: in sub-epoch
``s`` row block ``a`` runs the same compiled kernel on block
``(a, (a + strata[s]) % n_blocks)`` and hands that item-factor block on; the
driver draws each epoch's orders from the same seeded generator, so the model
is **bit-identical** to ``model.fit`` on one machine. A worker lost at any
wait (an epoch's tasks or the gather of their results) is noticed within a
second: the fit restarts from the last checkpoint, which holds the
generator's state, or raises :class:`WorkerLostError`.

Importing this module imports Dask; ``import mfcy`` does not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import math
import uuid
import warnings
import weakref

import numpy as np

try:
    import distributed
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("mfcy.dask needs Dask's distributed scheduler and dataframes: "
                      "pip install 'mfcy[dask]'") from exc

from ._blocking import CHUNK_SIZE, EpochPlan
from ._cluster_partition import BlockedRatings, _ensure_layouts, _workers, partition
from ._cluster_tasks import (
    _StateLost, _drop_states, _end_epoch, _init_state, _row_loss, _seen_items, _sgd_block,
    _snapshot)
from ._params import Integer
from ._starting import initial_factors
from ._state import FittedState, uninstall
from ._training import fit_monitor, run_epochs
from ._input import DEFAULT_COLUMNS, _index_dtype
from .model import MatrixFactorization

__all__ = ["fit", "partition", "BlockedRatings", "WorkerLostError", "DEFAULT_COLUMNS"]

#: A grid of this many blocks or more (tasks per epoch) whose blocks hold
#: fewer than CHUNK_SIZE ratings on average gets a warning: each task costs the
#: scheduler about a millisecond, far more than the SGD of such a block.
MANY_TASKS = 1024

#: How often (seconds) the driver checks that the workers holding row blocks
#: are still there while it waits for an epoch.
_POLL_SECONDS = 0.5


class WorkerLostError(RuntimeError):
    """A worker holding training state left the cluster and no restart was left."""


class _WorkerLost(Exception):
    def __init__(self, missing):
        super().__init__(f"worker {', '.join(sorted(missing))} holding training state left "
                         "the cluster" if missing else
                         "training state or data was lost with a worker")
        self.missing = missing


# -- the driver ---------------------------------------------------------------------


def _missing(client, owners):
    return set(owners) - set(_workers(client))


def _wait(client, futures, owners):
    """Wait for futures; raise _WorkerLost when a worker holding state has left."""
    while True:
        try:
            with client.as_current():
                distributed.wait(futures, timeout=_POLL_SECONDS)
            break
        except (TimeoutError, asyncio.TimeoutError):
            missing = _missing(client, owners)
            if missing:
                raise _WorkerLost(missing) from None
        except (asyncio.CancelledError, concurrent.futures.CancelledError) as exc:
            # The scheduler gives up on tasks pinned to a worker that left, and
            # on tasks whose inputs were lost with one.
            raise _WorkerLost(_missing(client, owners)) from exc
    for future in futures:
        if future.status == "error":
            exc = future.exception()
            missing = _missing(client, owners)
            if missing or isinstance(exc, (distributed.KilledWorker, _StateLost)):
                raise _WorkerLost(missing) from exc
            raise exc


def _fetch(client, futures, owners):
    """The results of futures, noticing a lost worker within a poll, as :func:`_wait` does.

    A result can be lost *after* its task finished (its worker dies before the
    transfer): the future then goes back to waiting for a worker that will
    never come, and a plain ``client.gather`` would wait forever. So each
    result is fetched with a timeout, checking the workers between tries.
    """
    _wait(client, futures, owners)
    results = []
    for future in futures:
        while True:
            try:
                results.append(future.result(timeout=_POLL_SECONDS))
                break
            except (TimeoutError, asyncio.TimeoutError):
                missing = _missing(client, owners)
                if missing:
                    raise _WorkerLost(missing) from None
            except (asyncio.CancelledError, concurrent.futures.CancelledError,
                    distributed.KilledWorker, _StateLost) as exc:
                raise _WorkerLost(_missing(client, owners)) from exc
    return results


class _Run:
    """One attempt at training, from a checkpoint to the end or to a lost worker."""

    def __init__(self, client, owners, name):
        self.client = client
        self.owners = owners
        self.name = name
        # Weak: holding every future would keep every past version of the
        # item blocks in the cluster's memory. Only unfinished ones matter.
        self.futures = weakref.WeakSet()

    def submit(self, func, *args, key, a):
        future = self.client.submit(func, self.name, a, *args, key=f"mfcy-{key}-{self.name}",
                                    workers=[self.owners[a]], allow_other_workers=False,
                                    pure=False)
        self.futures.add(future)
        return future

    def fetch(self, futures):
        return _fetch(self.client, futures, self.owners)

    def close(self):
        self.client.cancel(list(self.futures))
        self.futures = weakref.WeakSet()
        self.client.run(_drop_states, self.name, on_error="ignore")


def _warn_if_blocks_too_small(blocked, stacklevel):
    """Warn when the grid's tasks cost far more than the SGD they run."""
    n_blocks, n = blocked.n_blocks, blocked.n_ratings
    if n_blocks**2 < MANY_TASKS or n >= n_blocks**2 * CHUNK_SIZE:
        return
    better = max(1, math.isqrt(n // CHUNK_SIZE))
    warnings.warn(
        f"n_blocks={n_blocks} cuts {n} ratings into {n_blocks**2} blocks of ~"
        f"{n / n_blocks**2:.3g} ratings: an epoch runs {n_blocks**2 + n_blocks} Dask tasks, "
        "whose scheduling costs far more than their SGD; use n_blocks <= "
        f"{better} (blocks of {CHUNK_SIZE}+ ratings), a multiple of the number of workers",
        UserWarning, stacklevel=stacklevel)


def fit(client, ratings, model, *, columns=None, user_factors=None, item_factors=None,
        validation=None, callback=None, checkpoint_every=10, max_restarts=2):
    """Fit a :class:`~mfcy.MatrixFactorization` on a Dask cluster.

    The result is the model :meth:`MatrixFactorization.fit
    <mfcy.MatrixFactorization.fit>` gives on one machine with the same
    ``random_state`` and ``n_blocks``, to the last bit of every factor and
    bias (and of ``history_["sgd_mse"]`` and the validation scores;
    ``"train_mse"`` is summed in another order and agrees to ~1e-15): the
    two fits run the same epoch loop (divergence check, history, validation,
    early stopping, callbacks, Ctrl-C). Afterwards the model is an ordinary
    local one: ``predict``, ``recommend``, saving and plotting work as usual.

    Parameters
    ----------
    client : distributed.Client
        The cluster. Row block ``a`` lives on worker ``a % n_workers`` (in
        sorted address order): use ``n_blocks`` a multiple of the number of
        workers, so that each does the same share.
    ratings : dask.dataframe.DataFrame, pandas.DataFrame or BlockedRatings
        One row per rating (see :func:`partition`), or ratings partitioned
        already by :func:`partition` with the model's ``n_blocks``.
    model : MatrixFactorization
        Not a subclass with a fit of its own (:class:`~mfcy.SVDpp`,
        :class:`~mfcy.NMF`, :class:`~mfcy.BaselineOnly`: fit those locally).
        Its hyperparameters are used (``n_threads`` only for the validation
        pass on the client: each block runs on one thread of its worker, and
        the result does not depend on it; ``warm_start`` is not supported);
        fitted in place and returned.
    columns : sequence of 3 str, optional
        The (user, item, rating) column names; by default
        ``("user", "item", "rating")``.
    user_factors, item_factors : array-like, optional
        Initial factors, as for the local ``fit``.
    validation : tuple (X_val, y_val), or another form ``fit`` takes, optional
        Held-out ratings scored after every epoch, as for the local ``fit``
        (needed by ``early_stopping``). Scoring reads every factor, so each
        epoch then gathers the factors to the client (which also serves as a
        checkpoint).
    callback : callable, optional
        ``callback(model, epoch, history)`` after every epoch, as for the
        local ``fit``; ``model`` holds that epoch's factors (gathered to the
        client for it, every epoch).
    checkpoint_every : int or None, default=10
        Every this many epochs, copy the factors to the client, so that a fit
        that loses a worker resumes from there. Each checkpoint moves all the
        factors to the client once; None keeps only the start (re-drawn from
        the seed) and the factors gathered for a validation set or a callback.
    max_restarts : int, default=2
        Restarts after a lost worker before giving up with
        :class:`WorkerLostError`.

    Returns
    -------
    MatrixFactorization
        ``model``, fitted.

    Raises
    ------
    ValueError
        On invalid hyperparameters or input (naming the column or partition),
        or a model whose kind has no cluster fit.
    DivergenceError
        When the loss stops being finite.
    WorkerLostError
        When workers holding state were lost more than ``max_restarts`` times.
    """
    _check_cluster_model(model)
    params = model._fit_params(callback)
    if params.warm_start:
        raise ValueError("mfcy.dask.fit does not support warm_start=True; fit locally or "
                         "leave it at its default")
    if checkpoint_every is not None:
        checkpoint_every = Integer(1).check("checkpoint_every", checkpoint_every, {})
    max_restarts = Integer(0).check("max_restarts", max_restarts, {})
    n_blocks = params.n_blocks if params.shuffle else 1
    if isinstance(ratings, BlockedRatings):
        if columns is not None:
            raise ValueError("columns= names the columns of a DataFrame; the ratings are "
                             "partitioned already")
        if ratings.n_blocks != n_blocks:
            raise ValueError(f"the ratings are partitioned into {ratings.n_blocks} blocks "
                             f"but the model uses n_blocks={n_blocks}")
        blocked = ratings
    else:
        blocked = partition(client, ratings, n_blocks, columns=columns)
    _warn_if_blocks_too_small(blocked, stacklevel=2)

    rng = np.random.default_rng(params.random_state)
    k = params.n_factors
    # Given factors are validated and copied as the local fit does. Drawn ones
    # are not drawn here: the runner draws them one block at a time as it sends
    # them out (the same numbers, from the same generator, P before Q), so the
    # client never holds the whole start.
    start = tuple(None if given is None else model._initial_factors(given, shape, name, rng, params)
                  for given, shape, name in ((user_factors, (blocked.n_users, k), "user_factors"),
                                             (item_factors, (blocked.n_items, k), "item_factors")))
    index_dtype = _index_dtype(blocked.n_users, blocked.n_items)
    monitor = fit_monitor(params, validation, blocked, index_dtype, columns, callback)
    runner = _ClusterRunner(client, blocked, params, start, rng, checkpoint_every,
                            max_restarts)
    try:
        run_epochs(model, runner, params, monitor)
    except WorkerLostError:
        uninstall(model)  # never a model trained on a lost state
        raise
    finally:
        runner.close()
    return model


def _check_cluster_model(model):
    """Refuse, before anything runs on the cluster, a model the cluster cannot fit.

    Only :class:`~mfcy.MatrixFactorization`'s blocked SGD has a cluster
    version; the other estimators subclass it (for prediction, saving and
    the rest) but fit by other kernels, so they say so themselves
    (``_fits_on_cluster = False``).
    """
    if not isinstance(model, MatrixFactorization):
        raise ValueError(f"mfcy.dask.fit fits a MatrixFactorization; got "
                         f"{type(model).__name__}")
    if not type(model)._fits_on_cluster:
        name = type(model).__name__
        raise ValueError(f"mfcy.dask.fit fits MatrixFactorization only; {name} has no "
                         f"cluster fit: fit it locally, {name}(...).fit(ratings) on a pandas "
                         "DataFrame (a Dask DataFrame's .compute()), or fit a "
                         "MatrixFactorization on the cluster")


class _ClusterRunner:
    """The cluster's runner of :func:`mfcy._training.run_epochs`.

    Row block ``a`` (its ratings, user factors and biases) stays on one
    worker; in sub-epoch ``s`` that worker runs the compiled kernel on block
    ``(a, (a + strata[s]) % n_blocks)`` and hands the updated item block on.
    Every wait on the cluster goes through :func:`_fetch`: when a worker
    holding state is lost, the runner starts a new run from the checkpoint
    and replays the epochs since (the checkpoint holds the generator's state,
    so the replay gives the same bits), and the loop never sees it.
    """

    #: The factors live on the workers: a state means gathering them.
    cheap_state = False

    def __init__(self, client, blocked, params, start, rng, checkpoint_every, max_restarts):
        self.client, self.blocked, self.params, self.rng = client, blocked, params, rng
        self.B = blocked.n_blocks
        self.plan = EpochPlan.from_block_sizes(blocked.block_sizes.ravel(), self.B,
                                               params.shuffle)
        self.n_ratings = blocked.n_ratings
        self.rating_magnitude = max(abs(v) for v in blocked.rating_range)
        self.checkpoint_every, self.max_restarts = checkpoint_every, max_restarts
        self.hyper = (blocked.global_mean, params.learning_rate, params.regularization,
                      params.bias_regularization, params.biased, params.update == "sequential")
        n_bias = (blocked.n_users, blocked.n_items) if params.biased else (0, 0)
        k = params.n_factors
        #: Shapes of (P, user bias, Q, item bias).
        self.shapes = ((blocked.n_users, k), (n_bias[0],), (blocked.n_items, k), (n_bias[1],))
        #: (P or None, Q or None): the given starting factors; None: drawn.
        self.start = start
        self.epochs_done = 0
        # (epochs, arrays): the factors gathered to the client after that many
        # epochs, and the latest checkpoint (which also holds the generator).
        # After 0 epochs the arrays are None: the start, which _start_blocks
        # makes again from the generator's state before the draw.
        self.snapshot = (0, None)
        self.checkpoint = (0, copy.deepcopy(rng.bit_generator.state), None)
        self.best = None
        self.parameter_sum = 0.0
        self.run = None
        self.restarts = 0
        self.where = "epoch 1"
        self.token = uuid.uuid4().hex[:12]
        self.generation = 0
        self.fields = self._fields()

    def _fields(self):
        blocked = self.blocked
        index_dtype = _index_dtype(blocked.n_users, blocked.n_items)
        # Read once, before training: pinned to nothing, a lost layout is
        # recomputed. One row block at a time, into the model's own array: the
        # client holds the seen items (4 or 8 bytes a rating) once, not twice.
        seen = [self.client.submit(_seen_items, layout, index_dtype, pure=False)
                for layout in blocked._layouts]
        seen_indptr = np.zeros(blocked.n_users + 1, dtype=np.int64)
        seen_items = np.empty(blocked.n_ratings, dtype=index_dtype)
        for a in range(self.B):
            counts, items = _fetch(self.client, [seen[a]], [])[0]
            seen[a] = None
            lo = int(blocked.user_bounds[a])
            np.cumsum(counts, out=seen_indptr[lo + 1:lo + 1 + len(counts)])
            seen_indptr[lo + 1:lo + 1 + len(counts)] += seen_indptr[lo]
            seen_items[seen_indptr[lo]:seen_indptr[lo] + len(items)] = items
        return dict(global_mean=blocked.global_mean, rating_range=blocked.rating_range,
                    users=blocked.user_ids, items=blocked.item_ids, seen_indptr=seen_indptr,
                    seen_items=seen_items, n_duplicates=blocked.n_duplicates)

    # -- fault handling ------------------------------------------------------------

    def _on_cluster(self, operation):
        """Run ``operation`` on the current run, restarting from the checkpoint if need be."""
        while True:
            try:
                if self.run is None:
                    self._resume()
                return operation()
            except _WorkerLost as lost:
                self._close_run()
                self.restarts += 1
                if self.restarts > self.max_restarts:
                    raise WorkerLostError(
                        f"{lost} in {self.where}; gave up after {self.restarts - 1} "
                        f"restart(s) (max_restarts={self.max_restarts}); the model is not "
                        "fitted") from lost
                warnings.warn(
                    f"{lost} in {self.where}; restarting from the checkpoint after epoch "
                    f"{self.checkpoint[0]} (restart {self.restarts} of at most "
                    f"{self.max_restarts})", RuntimeWarning, stacklevel=5)

    def _resume(self):
        """A new run from the checkpoint, replaying the epochs done since."""
        client, B = self.client, self.B
        if self.generation:
            _ensure_layouts(client, self.blocked)
        workers = _workers(client)
        if not workers:
            client.wait_for_workers(1, timeout=60)
            workers = _workers(client)
        self.run = run = _Run(client, [workers[a % len(workers)] for a in range(B)],
                              f"{self.token}g{self.generation}")
        self.generation += 1
        epochs, rng_state, arrays = self.checkpoint
        self.rng.bit_generator.state = copy.deepcopy(rng_state)
        # From the start, this draws the factors from self.rng, which it leaves
        # where the local fit's draw leaves its generator.
        blocks = self._start_blocks(self.rng) if arrays is None else self._blocks(arrays)
        self.step, self.last, self.items = 0, [], []
        for a in range(B):
            P_a, ub_a = client.scatter(list(next(blocks)), workers=[run.owners[a]], hash=False)
            self.last.append(run.submit(_init_state, self.blocked._layouts[a], P_a, ub_a,
                                        self.params.dtype, key=f"init-a{a}", a=a))
        # Item block b starts next to row block b (its first user is a guess).
        for b in range(B):
            self.items.append(client.scatter([next(blocks)], workers=[run.owners[b]],
                                             hash=False)[0])
        target, self.epochs_done = self.epochs_done, epochs
        while self.epochs_done < target:
            self._epoch()

    def _block_bounds(self):
        """(row blocks' bounds, item blocks' bounds), as ranges of indices."""
        return [[(int(bounds[a]), int(bounds[a + 1])) for a in range(self.B)]
                for bounds in (self.blocked.user_bounds, self.blocked.item_bounds)]

    def _blocks(self, arrays):
        """(factors, bias) of each row block, then of each item block, from whole arrays."""
        for (factors, bias), bounds in zip((arrays[:2], arrays[2:]), self._block_bounds()):
            for lo, hi in bounds:
                # An unbiased model's bias is the same empty array for every block.
                yield factors[lo:hi], bias[lo:hi] if len(bias) else bias

    def _start_blocks(self, rng):
        """:meth:`_blocks` of the starting arrays, drawn block by block from ``rng``.

        ``rng`` must be in the state it had before the draw (the checkpoint's
        after 0 epochs). Drawn rows come in order, P's before Q's, so the
        numbers are those of :func:`~mfcy._starting.initial_factors` drawing
        each matrix at once; given factors are sliced.
        """
        dtype = self.params.dtype
        names = ("user_factors", "item_factors")
        for given, name, shape, n_bias, bounds in zip(self.start, names, self.shapes[::2],
                                                      self.shapes[1::2], self._block_bounds()):
            empty_bias = np.zeros(0, dtype)
            for lo, hi in bounds:
                # Not kept in a local variable: the block sent last is freed
                # before the next is drawn.
                yield ((initial_factors(None, (hi - lo,) + shape[1:], name, rng, self.params)
                        if given is None else given[lo:hi]),
                       np.zeros(hi - lo, dtype) if n_bias[0] else empty_bias)

    def _start_arrays(self):
        """The whole starting arrays (for a state after 0 epochs), drawn apart from self.rng."""
        rng = np.random.Generator(type(self.rng.bit_generator)())
        rng.bit_generator.state = copy.deepcopy(self.checkpoint[1])
        arrays = tuple(np.empty(shape, self.params.dtype) for shape in self.shapes)
        for target, block in zip(self._blocks(arrays), self._start_blocks(rng)):
            for out, values in zip(target, block):
                out[...] = values
        return arrays

    def _close_run(self):
        if self.run is not None:
            self.run.close()
            self.run = None

    def close(self):
        """Let go of the training state on the workers."""
        self._close_run()

    # -- the runner interface --------------------------------------------------------

    def _epoch(self):
        run, B, epoch = self.run, self.B, self.epochs_done
        visit_order, strata, stride = self.plan.draw(self.rng)
        block_chunks = self.plan.block_chunks
        first_step = self.step
        for s in range(B):
            moved = [None] * B
            for a in range(B):
                b = (a + int(strata[s])) % B
                begin, end = block_chunks[a * B + b], block_chunks[a * B + b + 1]
                moved[b] = self.last[a] = run.submit(
                    _sgd_block, self.step, b, self.items[b], self.last[a],
                    visit_order[begin:end] - begin, stride, self.hyper,
                    key=f"sgd-e{epoch}-s{s}-a{a}", a=a)
            self.items = moved
            self.step += 1
        ends = run.fetch([run.submit(_end_epoch, self.step, first_step, self.last[a],
                                     key=f"end-e{epoch}-a{a}", a=a) for a in range(B)])
        self.epochs_done += 1
        if (self.checkpoint_every and self.epochs_done % self.checkpoint_every == 0
                and self.epochs_done < self.params.n_epochs):
            self._gather()
        sse = 0.0
        for s in range(B):  # the kernel's order: strata, then row blocks
            for a in range(B):
                sse += ends[a][0][s]
        with np.errstate(over="ignore", invalid="ignore"):
            self.parameter_sum = sum(end[1] for end in ends)
        return sse

    def _gather(self):
        """Every factor and bias on the client (cached per epoch; each is a checkpoint)."""
        if self.snapshot[0] == self.epochs_done:
            if self.snapshot[1] is None:  # after 0 epochs
                self.snapshot = (0, self._start_arrays())
            return self.snapshot[1]
        run = self.run
        snaps = [run.submit(_snapshot, self.step, self.last[a],
                            key=f"snapshot-s{self.step}-a{a}", a=a) for a in range(self.B)]
        # Block by block into whole arrays: the client holds the factors once
        # (and a block), not all the blocks and their copy.
        arrays = tuple(np.empty(shape, self.params.dtype) for shape in self.shapes)
        for (factors, bias), future in zip(self._blocks(arrays), snaps + self.items):
            block_factors, block_bias = run.fetch([future])[0]
            factors[...] = block_factors
            if len(bias):  # unbiased: every block's bias is the same empty array
                bias[...] = block_bias
            del block_factors, block_bias  # not alive beside the next block
        self.snapshot = (self.epochs_done, arrays)
        self.checkpoint = (self.epochs_done, copy.deepcopy(self.rng.bit_generator.state),
                           arrays)
        return arrays

    def sgd_epoch(self, epoch):
        self.where = f"epoch {epoch + 1}"
        return self._on_cluster(self._epoch)

    def train_loss(self):
        def loss():
            run = self.run
            hyper = (self.blocked.global_mean, self.params.biased)
            return sum(run.fetch([run.submit(_row_loss, self.step, self.last[a], hyper,
                                             *self.items, key=f"loss-s{self.step}-a{a}", a=a)
                                  for a in range(self.B)]))
        return self._on_cluster(loss)

    def parameters_finite(self):
        return math.isfinite(self.parameter_sum)

    def state(self, history, n_epochs, best_epoch):
        if self.epochs_done == self.params.n_epochs:
            self.where = "the final gathering"
        P, ub, Q, ib = self._on_cluster(self._gather)
        return FittedState.build(P, Q, ub, ib, self.params.biased, history=history,
                                 n_epochs=n_epochs, best_epoch=best_epoch, **self.fields)

    def save_best(self):
        self.best = self._on_cluster(self._gather)

    def restore_best(self):
        # Training is over: the best epoch's factors become the ones a state shows.
        self.snapshot = (self.epochs_done, self.best)
