"""mfcy.dask: the blocked fit on a local Dask cluster (two worker processes).

One cluster for the module (it starts in about a second); every fit is on
small data, and each is compared bit for bit with the local fit.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import mfcy.dask  # noqa: E402
from mfcy import NMF, BaselineOnly, DivergenceError, MatrixFactorization, SVDpp  # noqa: E402


@pytest.fixture
def two_workers(client):
    # A test that killed a worker leaves the nanny restarting it.
    client.wait_for_workers(2, timeout=60)
    return client


def ratings_frame(rng, n=6000, n_users=300, n_items=200, ids="int"):
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    if ids == "str":
        users = np.array([f"user{u:04d}" for u in users], dtype=object)
        items = np.array([f"item{i:03d}" for i in items], dtype=object)
    else:
        users = users * 7 + 10**12  # labels, not positions
    # Arbitrary floats: only an exact mean makes the two fits agree.
    return pd.DataFrame({"user": users, "item": items,
                         "rating": rng.normal(3.5, 1.0, n)})


def local_fit(frame, n_threads, **params):
    X = frame[["user", "item"]].to_numpy()
    return MatrixFactorization(n_threads=n_threads, **params).fit(X, frame["rating"].to_numpy())


def assert_same_model(cluster_model, local_model):
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "users_",
                 "items_", "_seen_indptr", "_seen_items"):
        np.testing.assert_array_equal(getattr(cluster_model, name), getattr(local_model, name),
                                      err_msg=name)
    assert cluster_model.user_factors_.dtype == local_model.user_factors_.dtype
    assert cluster_model.global_mean_ == local_model.global_mean_
    assert cluster_model.rating_range_ == local_model.rating_range_
    assert cluster_model.history_["sgd_mse"] == local_model.history_["sgd_mse"]
    if "train_mse" in local_model.history_:
        np.testing.assert_allclose(cluster_model.history_["train_mse"],
                                   local_model.history_["train_mse"], rtol=1e-12)
    # Nothing of the fitted state is missing (a model fitted on the cluster is
    # an ordinary local model).
    assert sorted(vars(cluster_model)) == sorted(vars(local_model))


def test_import_mfcy_does_not_import_dask(tmp_path):
    code = "import sys, mfcy; print(any(m.split('.')[0] in ('dask', 'distributed') " \
           "for m in sys.modules))"
    # Run away from the source tree, so that the installed package is imported.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.strip() == "False"


def test_cluster_fit_is_bit_identical_to_the_local_fit(two_workers, rng):
    frame = ratings_frame(rng)
    # Duplicated pairs (with other ratings) are averaged the same way.
    frame = pd.concat([frame, frame.iloc[::5].assign(rating=lambda f: f["rating"] + 0.3)])
    params = dict(n_factors=6, n_epochs=4, n_blocks=4, learning_rate=0.02, random_state=7)
    model = mfcy.dask.fit(two_workers, dd.from_pandas(frame, npartitions=3),
                          MatrixFactorization(**params))
    for n_threads in (1, 2):
        assert_same_model(model, local_fit(frame, n_threads, **params))
    # ... and behaves as one.
    pairs = frame[["user", "item"]].to_numpy()[:50]
    np.testing.assert_array_equal(model.predict(pairs),
                                  local_fit(frame, 1, **params).predict(pairs))
    some_users = frame["user"].to_numpy()[:5]
    np.testing.assert_array_equal(model.recommend(some_users, n=5)[0],
                                  local_fit(frame, 1, **params).recommend(some_users, n=5)[0])


def test_partition_once_fit_several_models(two_workers, rng):
    frame = ratings_frame(rng, ids="str").rename(columns={"rating": "stars"})
    blocked = mfcy.dask.partition(two_workers, dd.from_pandas(frame, npartitions=2), 3,
                                  columns=("user", "item", "stars"))
    assert blocked.n_ratings == len(frame.drop_duplicates(["user", "item"]))
    assert blocked.block_sizes.shape == (3, 3)
    local = frame.rename(columns={"stars": "rating"})
    # n_blocks not a multiple of the workers; unbiased, float64, the lesson's
    # update rule, given initial item factors, no loss tracking.
    item_factors = rng.normal(0, 0.1, (frame["item"].nunique(), 5))
    for learning_rate in (0.01, 0.03):
        params = dict(n_factors=5, n_epochs=3, n_blocks=3, learning_rate=learning_rate,
                      biased=False, dtype="float64", update="sequential", track_loss=False,
                      random_state=np.random.default_rng(3))
        model = mfcy.dask.fit(two_workers, blocked, MatrixFactorization(**params),
                              item_factors=item_factors)
        params["random_state"] = np.random.default_rng(3)
        X = local[["user", "item"]].to_numpy()
        expected = MatrixFactorization(**params).fit(X, local["rating"].to_numpy(),
                                                     item_factors=item_factors)
        assert_same_model(model, expected)
    with pytest.raises(ValueError, match="partitioned into 3 blocks but the model uses "
                                         "n_blocks=4"):
        mfcy.dask.fit(two_workers, blocked, MatrixFactorization(n_blocks=4))


def _pickle_this_module_by_value():
    # The workers cannot import the tests (they are not an installed package):
    # send the plugin class below by value.
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


_pickle_this_module_by_value()


class KillOnce(distributed.WorkerPlugin):
    """Kill the worker process (SIGKILL) when it starts the first task whose key matches."""

    def __init__(self, pattern, marker):
        self.pattern, self.marker = pattern, marker

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or self.pattern not in str(key):
            return
        try:  # once per test, whichever worker gets there first
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)


@pytest.fixture
def kill_worker_at(two_workers, tmp_path):
    names = []

    def arm(pattern):
        name = f"kill-{len(names)}-{tmp_path.name}"
        two_workers.register_plugin(KillOnce(pattern, str(tmp_path / name)), name=name)
        names.append(name)

    yield arm
    for name in names:
        two_workers.unregister_worker_plugin(name)


@pytest.mark.parametrize("kill_at,blocks,every,lost_in,restart_after", [
    # Mid-epoch 4 (index 3), in the middle of a stratum.
    ("mfcy-sgd-e3-s2-a1-", 4, 2, 4, 2),
    # Before any checkpoint: the start is drawn block by block as it is sent
    # out, never kept on the client, so the restart draws it again from the
    # generator's first state.
    ("mfcy-sgd-e1-s1-a0-", 3, None, 2, 0),
])
def test_a_killed_worker_resumes_from_the_checkpoint_bit_identical(
        two_workers, kill_worker_at, rng, kill_at, blocks, every, lost_in, restart_after):
    frame = ratings_frame(rng)
    params = dict(n_factors=4, n_epochs=5, n_blocks=blocks, random_state=11)
    kill_worker_at(kill_at)
    with pytest.warns(RuntimeWarning, match=f"left the cluster in epoch {lost_in}; restarting "
                                            f"from the checkpoint after epoch {restart_after}"):
        model = mfcy.dask.fit(two_workers, dd.from_pandas(frame, npartitions=2),
                              MatrixFactorization(**params), checkpoint_every=every)
    assert_same_model(model, local_fit(frame, 2, **params))


def test_zero_epochs_give_the_start_of_the_local_fit(two_workers, rng):
    frame = ratings_frame(rng, n=3000)
    user_factors = rng.normal(0, 0.1, (frame["user"].nunique(), 3))
    for given in ({}, {"user_factors": user_factors}):
        params = dict(n_factors=3, n_epochs=0, n_blocks=2, random_state=4)
        model = mfcy.dask.fit(two_workers, dd.from_pandas(frame, npartitions=2),
                              MatrixFactorization(**params), **given)
        X = frame[["user", "item"]].to_numpy()
        local = MatrixFactorization(**params).fit(X, frame["rating"].to_numpy(), **given)
        assert_same_model(model, local)


def test_the_client_holds_the_factors_once(two_workers, rng):
    # What the client allocates during the fit beyond what it keeps (the
    # fitted model): the start is drawn and sent block by block, no state is
    # built before the first epoch, and the gathered factors go straight into
    # the model's arrays. So the excess is a block or two of factors in
    # transit (n_blocks=4: a quarter each), not a second copy of them all
    # (1.25x the factors before).
    import tracemalloc

    n_users, n_items, k = 12000, 3000, 64
    frame = pd.DataFrame({"user": rng.integers(0, n_users, 30000),
                          "item": rng.integers(0, n_items, 30000),
                          "rating": rng.integers(1, 6, 30000).astype(float)})
    ratings = mfcy.dask.partition(two_workers, dd.from_pandas(frame, npartitions=2), 4)
    model = MatrixFactorization(n_factors=k, n_epochs=2, n_blocks=4, track_loss=False,
                                random_state=0)
    tracemalloc.start()
    try:
        mfcy.dask.fit(two_workers, ratings, model)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    factor_bytes = model.user_factors_.nbytes + model.item_factors_.nbytes
    assert kept > factor_bytes  # the model's arrays were allocated under the trace
    assert peak - kept < 0.6 * factor_bytes, (peak, kept, factor_bytes)


def test_a_killed_worker_without_restarts_is_a_clear_error(two_workers, kill_worker_at, rng):
    frame = ratings_frame(rng, n=2000)
    model = MatrixFactorization(n_factors=4, n_epochs=3, n_blocks=2, random_state=0)
    kill_worker_at("mfcy-sgd-e1-s0-a0-")
    with pytest.raises(mfcy.dask.WorkerLostError, match=r"left the cluster in epoch 2; gave "
                                                        r"up .*max_restarts=0"):
        mfcy.dask.fit(two_workers, dd.from_pandas(frame, npartitions=2), model,
                      max_restarts=0)
    assert not hasattr(model, "user_factors_")


def test_bad_input_is_a_clear_error(two_workers, rng):
    good = ratings_frame(rng, n=500)
    model = MatrixFactorization(n_factors=2, n_epochs=1, n_blocks=2, random_state=0)
    with pytest.raises(ValueError, match=r"no column 'rating' \(their columns: 'user', "
                                         r"'item', 'stars'\)"):
        mfcy.dask.fit(two_workers, dd.from_pandas(good.rename(columns={"rating": "stars"}),
                                                  npartitions=2), model)
    bad = good.iloc[:100].astype({"rating": object})
    bad.iloc[7, 2] = "five"
    frame = dd.concat([dd.from_pandas(good, npartitions=1), dd.from_pandas(bad, npartitions=1)])
    with pytest.raises(ValueError, match=r"ratings \(column 'rating', partition 1\) must be "
                                         "numbers"):
        mfcy.dask.fit(two_workers, frame, model)
    missing = good.astype({"user": object})
    missing.iloc[3, 0] = None
    with pytest.raises(ValueError, match="user column 'user' has missing values in partition 0 "
                                         r"\(first at row 3\)"):
        mfcy.dask.fit(two_workers, dd.from_pandas(missing, npartitions=2), model)
    mixed = dd.concat([dd.from_pandas(good, npartitions=1),
                       dd.from_pandas(good.assign(item=good["item"].astype(str)),
                                      npartitions=1)])
    with pytest.raises(ValueError, match="item ids are strings in some partitions and numbers "
                                         "in others"):
        mfcy.dask.fit(two_workers, mixed, model)
    with pytest.raises(ValueError, match="must be a Dask DataFrame"):
        mfcy.dask.fit(two_workers, good.to_numpy(), model)
    with pytest.raises(DivergenceError, match="diverged in epoch 1 .*smaller learning rate"):
        mfcy.dask.fit(two_workers, dd.from_pandas(good.assign(rating=good["rating"] * 1e3),
                                                  npartitions=2),
                      MatrixFactorization(n_factors=2, n_epochs=2, n_blocks=2,
                                          learning_rate=50.0, random_state=0))


@pytest.mark.parametrize("kind", [SVDpp, NMF, BaselineOnly])
def test_a_model_without_a_cluster_fit_is_a_clear_error(two_workers, rng, kind):
    frame = dd.from_pandas(ratings_frame(rng, n=500), npartitions=2)
    model = kind(n_epochs=1, random_state=0)
    with pytest.raises(ValueError, match=rf"{kind.__name__} has no cluster fit: fit it "
                                         r"locally, .*\.compute\(\)"):
        mfcy.dask.fit(two_workers, frame, model)
    assert not hasattr(model, "user_factors_")  # nothing was fitted
    with pytest.raises(ValueError, match="mfcy.dask.fit fits a MatrixFactorization; got dict"):
        mfcy.dask.fit(two_workers, frame, {"n_factors": 2})


def kill_after_wait(monkeypatch, client, key_part):
    """Kill a worker (SIGKILL) right after the driver's wait for ``key_part`` tasks ends.

    Their results are then in the memory of a dead worker, which is the moment
    a plain gather would wait for forever.
    """
    pids = client.run(os.getpid)
    real_wait, done = mfcy.dask._wait, []

    def wait(client_, futures, owners):
        real_wait(client_, futures, owners)
        if not done and any(key_part in str(f.key) for f in futures):
            done.append(owners[0])
            os.kill(pids[owners[0]], signal.SIGKILL)
            for _ in range(600):  # until the scheduler knows (it takes well under a second)
                if owners[0] not in client_.nthreads():
                    break
                time.sleep(0.05)

    monkeypatch.setattr(mfcy.dask, "_wait", wait)
    return done


def test_a_worker_lost_before_the_gather_restarts_instead_of_hanging(two_workers, monkeypatch,
                                                                     rng):
    frame = ratings_frame(rng, n=3000)
    params = dict(n_factors=4, n_epochs=4, n_blocks=2, random_state=5)
    killed = kill_after_wait(monkeypatch, two_workers, "mfcy-end-e2-")
    with pytest.warns(RuntimeWarning, match="left the cluster in epoch 3; restarting from "
                                            "the checkpoint after epoch 2"):
        model = mfcy.dask.fit(two_workers, dd.from_pandas(frame, npartitions=2),
                              MatrixFactorization(**params), checkpoint_every=2)
    assert killed
    assert_same_model(model, local_fit(frame, 1, **params))


def test_validation_early_stopping_and_callbacks_match_the_local_fit(two_workers, rng):
    frame = ratings_frame(rng, n=4000)
    train, held = frame.iloc[:3200], frame.iloc[3200:]
    X_val, y_val = held[["user", "item"]].to_numpy(), held["rating"].to_numpy()
    params = dict(n_factors=8, n_epochs=30, n_blocks=2, learning_rate=0.05, random_state=3,
                  early_stopping=True, n_iter_no_change=2)
    seen = {"cluster": [], "local": []}

    def callback(where):
        def record(model, epoch, history):
            # The model holds this epoch's factors, on the cluster too.
            seen[where].append((epoch, model.n_epochs_, model.user_factors_.sum()))
            return None if epoch < 25 else False
        return record

    model = mfcy.dask.fit(two_workers, dd.from_pandas(train, npartitions=2),
                          MatrixFactorization(**params), validation=(X_val, y_val),
                          callback=callback("cluster"))
    local = MatrixFactorization(n_threads=1, **params).fit(
        train[["user", "item"]].to_numpy(), train["rating"].to_numpy(),
        validation=(X_val, y_val), callback=callback("local"))
    assert local.best_epoch_ < local.n_epochs_ < 30  # early stopping did stop it
    assert_same_model(model, local)
    assert model.best_epoch_ == local.best_epoch_ and model.n_epochs_ == local.n_epochs_
    assert model.history_["val_rmse"] == local.history_["val_rmse"]
    assert seen["cluster"] == seen["local"]
    # A callback returning False stops the cluster fit too.
    stopped = mfcy.dask.fit(two_workers, dd.from_pandas(train, npartitions=2),
                            MatrixFactorization(**{**params, "early_stopping": False}),
                            callback=lambda model, epoch, history: epoch < 3)
    assert stopped.n_epochs_ == 3
    with pytest.raises(ValueError, match="early_stopping=True needs held-out ratings"):
        mfcy.dask.fit(two_workers, dd.from_pandas(train, npartitions=2),
                      MatrixFactorization(**params))


def test_object_integer_ids_are_integers_as_locally(two_workers, rng):
    frame = ratings_frame(rng, n=2000).astype({"user": object, "item": object})
    params = dict(n_factors=3, n_epochs=2, n_blocks=2, random_state=1)
    model = mfcy.dask.fit(two_workers, frame, MatrixFactorization(**params))
    local = MatrixFactorization(n_threads=1, **params).fit(frame)
    assert model.users_.dtype == local.users_.dtype == np.int64
    assert_same_model(model, local)


def test_blocks_far_too_small_are_warned_about(two_workers, rng):
    frame = ratings_frame(rng, n=20000, n_users=2000, n_items=1000)
    blocked = mfcy.dask.partition(two_workers, frame, 40)
    with pytest.warns(UserWarning, match=r"n_blocks=40 cuts \d+ ratings into 1600 blocks .*"
                                         r"use n_blocks <= 4 "):
        mfcy.dask.fit(two_workers, blocked,
                      MatrixFactorization(n_factors=2, n_epochs=1, n_blocks=40))
