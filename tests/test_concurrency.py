"""Python threads: the kernel releases the GIL, fits in two threads match sequential
fits bit for bit, and one fitted model answers several threads at once."""

import sys
import threading

import numpy as np
import pytest

import mfcy._sgd as _sgd
from mfcy import MatrixFactorization
from mfcy._blocking import EpochPlan

from helpers import random_triples


def ran_alongside(call, repeats=20):
    """Whether the calling thread ran Python code while a worker thread was inside
    ``call()`` (made ``repeats`` times in a row).

    With a huge switch interval CPython never *takes* the GIL from the worker; the
    only way back for this thread is a voluntary release by the worker. Between
    its start and its return the worker runs no code that releases the GIL except
    ``call``, so seeing ``returned`` still False here proves ``call`` runs without
    the GIL. (If the kernel kept the GIL, this thread would only get it back once
    the worker had finished all calls.) No timing is asserted: repeating the call
    just leaves the OS scheduler plenty of windows in which to wake this thread.
    """
    state = {"returned": False}

    def worker():
        for _ in range(repeats):
            call()
        state["returned"] = True

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    thread = threading.Thread(target=worker)
    try:
        thread.start()  # waits (GIL released) until the worker has started
        seen_running = not state["returned"]
    finally:
        thread.join()
        sys.setswitchinterval(previous)
    return seen_running


@pytest.fixture(scope="module")
def kernel_args():
    rng = np.random.default_rng(0)
    users, items, ratings = random_triples(rng, 3000, 1000, 0.03)
    k = 32
    P = (0.1 * rng.standard_normal((3000, k))).astype(np.float32)
    Q = (0.1 * rng.standard_normal((1000, k))).astype(np.float32)
    bu, bi = np.zeros(3000, np.float32), np.zeros(1000, np.float32)
    plan = EpochPlan(users.astype(np.int32), items.astype(np.int32), ratings.astype(np.float32),
                     3000, 1000, 2, True, rng)
    visit_order, strata, stride = plan.draw(rng)
    return P, Q, bu, bi, plan, visit_order, strata, stride


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("function", ["sgd_epoch", "error_sums", "predict_pairs"])
def test_every_kernel_entry_runs_without_the_gil(kernel_args, function, n_threads):
    P, Q, bu, bi, plan, visit_order, strata, stride = kernel_args
    out = np.empty(len(plan.ratings), dtype=np.float32)
    calls = {
        "sgd_epoch": lambda: _sgd.sgd_epoch(
            P, Q, bu, bi, plan.users, plan.items, plan.ratings, plan.chunk_bounds,
            plan.block_chunks, visit_order, strata, stride, 3.0, 1e-4, 0.02, 0.02, True, False,
            n_threads),
        "error_sums": lambda: _sgd.error_sums(P, Q, bu, bi, plan.users, plan.items,
                                              plan.ratings, 3.0, True, n_threads),
        "predict_pairs": lambda: _sgd.predict_pairs(P, Q, bu, bi, plan.users, plan.items,
                                                    3.0, True, out),
    }
    assert ran_alongside(calls[function])


def test_the_check_sees_a_call_that_keeps_the_gil():
    # The same check on pure-Python work (which holds the GIL): it must say no,
    # or the test above would prove nothing.
    assert not ran_alongside(lambda: sum(range(20_000)))


def problems():
    rng = np.random.default_rng(1)
    a = random_triples(rng, 800, 500, 0.05)
    b = random_triples(rng, 600, 900, 0.04)
    return [
        (np.column_stack(a[:2]), a[2], dict(n_factors=16, n_epochs=8, dtype="float32",
                                            n_blocks=4, n_threads=2, random_state=3)),
        (np.column_stack(b[:2]), b[2], dict(n_factors=8, n_epochs=10, dtype="float64",
                                            n_blocks=3, n_threads=1, random_state=4,
                                            update="sequential")),
    ]


def test_two_threads_fitting_two_models_match_sequential_fits():
    cases = problems()
    sequential = [MatrixFactorization(**params).fit(X, y) for X, y, params in cases]
    models = [MatrixFactorization(**params) for _, _, params in cases]
    errors = []
    # Both fits meet after their first epoch (in the callback, between two
    # kernel calls), so both are under way at once whatever the scheduler does;
    # at the meeting, while both threads wait, the epochs each model has done
    # are noted (read across threads: the installed state of a fit in progress).
    at_meeting = []
    meet = threading.Barrier(len(cases), timeout=120,
                             action=lambda: at_meeting.extend(m.n_epochs_ for m in models))

    def fit(j):
        def callback(model, epoch, history):
            if epoch == 1:
                meet.wait()

        try:
            X, y, _ = cases[j]
            models[j].fit(X, y, callback=callback)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fit, args=(j,)) for j in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for model, reference in zip(models, sequential):
        for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
            np.testing.assert_array_equal(getattr(model, name), getattr(reference, name))
        assert model.history_["train_mse"] == reference.history_["train_mse"]
    # Each fit was in progress (one epoch done of several) while the other ran:
    # the fits overlapped rather than ran one after the other.
    assert at_meeting == [1, 1]


# The queries draw ids the model does not know on purpose (the fallback path).
@pytest.mark.filterwarnings("ignore::mfcy.UnknownIdWarning")
def test_one_model_predicts_and_recommends_from_several_threads():
    X, y, params = problems()[0]
    model = MatrixFactorization(**params).fit(X, y)
    rng = np.random.default_rng(5)
    queries = [np.column_stack([rng.integers(-5, 900, 20_000), rng.integers(-5, 600, 20_000)])
               for _ in range(6)]
    users = [rng.integers(0, 800, 300) for _ in range(6)]
    expected = [(model.predict(q), model.recommend(u, n=7, batch_size=64))
                for q, u in zip(queries, users)]
    results = [None] * len(queries)
    start = threading.Barrier(len(queries))

    def work(j):
        start.wait()
        out = []
        for _ in range(5):
            out.append((model.predict(queries[j]), model.recommend(users[j], n=7, batch_size=64)))
        results[j] = out

    threads = [threading.Thread(target=work, args=(j,)) for j in range(len(queries))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, (pred, (items, scores)) in zip(results, expected):
        assert got is not None and len(got) == 5
        for pred_t, (items_t, scores_t) in got:
            np.testing.assert_array_equal(pred_t, pred)
            np.testing.assert_array_equal(items_t, items)
            np.testing.assert_array_equal(scores_t, scores)
