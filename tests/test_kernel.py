"""The compiled kernel against a pure-Python oracle of the same update rules."""

import importlib.machinery

import numpy as np
import pytest

import mfcy._sgd as _sgd
from mfcy import MatrixFactorization
from mfcy._blocking import EpochPlan

from helpers import random_triples


_NAMES = {"baseline": "baseline", "avx2": "avx2+fma", "avx512": "avx512f"}
_BACK = {name: isa for isa, name in _NAMES.items()}


def _has(isa):
    """Whether this CPU (and build) can run the copy ``isa``; leaves the choice as it was."""
    before, min_k = _sgd.vector_isa(), _sgd.avx512_min_k()
    try:
        _sgd._set_vector_isa(isa)
        return True
    except ValueError:  # a CPU (or a non-x86 build) without it
        return False
    finally:
        _sgd._set_vector_isa(_BACK[before], avx512_min_k=min_k)


@pytest.fixture(params=["baseline", "avx2", "avx512"], autouse=True)
def vector_isa(request):
    """Every test here runs once per compiled copy of the loops this CPU can run.

    The AVX-512F copy runs for every k here (fits use it for k >= avx512_min_k()).
    """
    if request.param != "baseline" and not _has(request.param):
        pytest.skip(f"this CPU (or build) cannot run the {request.param} copy")
    before, min_k = _sgd.vector_isa(), _sgd.avx512_min_k()
    _sgd._set_vector_isa(request.param, avx512_min_k=0)
    yield request.param
    _sgd._set_vector_isa(_BACK[before], avx512_min_k=min_k)


def oracle_epoch(P, Q, bu, bi, users, items, ratings, positions, mu, lr, reg, reg_b,
                 biased, sequential):
    """One SGD epoch in plain Python, visiting ``positions`` in order (in place)."""
    sse = 0.0
    for t in positions:
        u, i, r = users[t], items[t], ratings[t]
        pred = float(np.dot(P[u], Q[i]))
        if biased:
            pred += mu + bu[u] + bi[i]
        err = r - pred
        sse += err * err
        if biased:
            bu[u] += lr * (err - reg_b * bu[u])
            bi[i] += lr * (err - reg_b * bi[i])
        if sequential:
            P[u] += lr * (err * Q[i] - reg * P[u])
            Q[i] += lr * (err * P[u] - reg * Q[i])
        else:
            p_old = P[u].copy()
            P[u] += lr * (err * Q[i] - reg * P[u])
            Q[i] += lr * (err * p_old - reg * Q[i])
    return sse


def oracle_epoch_adagrad(P, Q, bu, bi, Gu, Gi, users, items, ratings, positions, mu, lr, reg,
                         reg_b, biased, sequential):
    """One epoch of the "adagrad" schedule (LIBMF's per-row AdaGrad) in plain Python.

    Row ``u`` steps with ``lr / sqrt(Gu[u])`` (its bias too), then ``Gu[u]``
    grows by the mean over the k components of that row's squared gradient;
    items alike. ``Gu``, ``Gi`` are updated in place.
    """
    sse = 0.0
    for t in positions:
        u, i, r = users[t], items[t], ratings[t]
        pred = float(np.dot(P[u], Q[i]))
        if biased:
            pred += mu + bu[u] + bi[i]
        err = r - pred
        sse += err * err
        lr_u, lr_i = lr / np.sqrt(Gu[u]), lr / np.sqrt(Gi[i])
        if biased:
            bu[u] += lr_u * (err - reg_b * bu[u])
            bi[i] += lr_i * (err - reg_b * bi[i])
        grad_p = err * Q[i] - reg * P[u]
        p_new = P[u] + lr_u * grad_p
        grad_q = err * (p_new if sequential else P[u]) - reg * Q[i]
        P[u] = p_new
        Q[i] += lr_i * grad_q
        Gu[u] += np.mean(grad_p ** 2)
        Gi[i] += np.mean(grad_q ** 2)
    return sse


def plan_positions(plan, visit_order, strata, stride):
    """The positions the kernel visits, in order, for one epoch of ``plan``."""
    B = plan.n_blocks
    out = []
    for s in strata:
        for a in range(B):
            block = a * B + (a + s) % B
            for j in range(plan.block_chunks[block], plan.block_chunks[block + 1]):
                c = visit_order[j]
                start, n = plan.chunk_bounds[c], plan.chunk_bounds[c + 1] - plan.chunk_bounds[c]
                out.extend(start + (j * stride) % n for j in range(n))
    return out


@pytest.fixture(params=["off", "on"])
def pair_updates(request):
    """The constant schedule's loops one rating at a time, then two at a time."""
    before = _sgd._set_pair_updates(request.param)
    yield request.param
    _sgd._set_pair_updates(before)


def make_problem(rng, n_users, n_items, k, index_dtype, real_dtype):
    users, items, ratings = random_triples(rng, n_users, n_items, 0.3)
    P = (0.1 * rng.standard_normal((n_users, k))).astype(real_dtype)
    Q = (0.1 * rng.standard_normal((n_items, k))).astype(real_dtype)
    bu = (0.1 * rng.standard_normal(n_users)).astype(real_dtype)
    bi = (0.1 * rng.standard_normal(n_items)).astype(real_dtype)
    return (users.astype(index_dtype), items.astype(index_dtype), ratings.astype(real_dtype),
            P, Q, bu, bi)


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("sequential", [True, False])
@pytest.mark.parametrize("shape,k,n_blocks,shuffle", [
    ((30, 20, ), 5, 1, False),
    ((57, 41), 16, 3, True),
    ((9, 70), 33, 4, True),
    # k = 8, 32 and 64 have loops of their own (constant trip counts); 100 takes
    # the 4-accumulator dot on both instruction sets.
    ((25, 18), 8, 2, True),
    ((20, 15), 32, 2, True),
    ((12, 10), 64, 1, True),
    ((10, 8), 100, 2, True),
    # A run-time k whose 8-lane vectors leave 5 values (the AVX-512F copy's
    # 4-lane tail and one more; 100 takes that copy's tail at a constant k).
    ((11, 9), 13, 2, True),
])
def test_kernel_matches_oracle_float64(rng, index_dtype, biased, sequential, shape, k,
                                       n_blocks, shuffle, pair_updates):
    users, items, ratings, P, Q, bu, bi = make_problem(rng, *shape, k, index_dtype, np.float64)
    plan = EpochPlan(users, items, ratings, shape[0], shape[1], n_blocks, shuffle, rng,
                     chunk_size=7)
    Po, Qo, buo, bio = P.copy(), Q.copy(), bu.copy(), bi.copy()
    mu, lr, reg, reg_b = 3.0, 0.03, 0.05, 0.02
    for _ in range(3):
        visit_order, strata, stride = plan.draw(rng)
        sse = _sgd.sgd_epoch(P, Q, bu, bi, plan.users, plan.items, plan.ratings,
                             plan.chunk_bounds, plan.block_chunks, visit_order, strata, stride,
                             mu, lr, reg, reg_b, biased, sequential, 1)
        positions = plan_positions(plan, visit_order, strata, stride)
        assert sorted(positions) == list(range(len(ratings)))  # each rating once
        sse_o = oracle_epoch(Po, Qo, buo, bio, plan.users, plan.items, plan.ratings,
                             positions, mu, lr, reg, reg_b, biased, sequential)
        assert sse == pytest.approx(sse_o, rel=1e-12)
    np.testing.assert_allclose(P, Po, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(Q, Qo, rtol=1e-12, atol=1e-14)
    if biased:
        np.testing.assert_allclose(bu, buo, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(bi, bio, rtol=1e-12, atol=1e-14)
    else:  # an unbiased epoch must not touch the biases
        np.testing.assert_array_equal(bu, buo)


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("sequential", [True, False])
@pytest.mark.parametrize("shape,k,n_blocks,shuffle", [
    ((30, 20), 5, 1, False),
    ((57, 41), 16, 3, True),
    ((9, 70), 33, 4, True),
    ((25, 18), 8, 2, True),
    ((20, 15), 32, 2, True),
    ((12, 10), 64, 1, True),
    ((10, 8), 100, 2, True),
])
def test_adagrad_kernel_matches_oracle_float64(rng, index_dtype, biased, sequential, shape, k,
                                               n_blocks, shuffle):
    users, items, ratings, P, Q, bu, bi = make_problem(rng, *shape, k, index_dtype, np.float64)
    plan = EpochPlan(users, items, ratings, shape[0], shape[1], n_blocks, shuffle, rng,
                     chunk_size=7)
    # Accumulators mid-fit (not all 1) so that the sqrt is not of 1 only.
    Gu = 1.0 + rng.random(shape[0])
    Gi = 1.0 + rng.random(shape[1])
    Po, Qo, buo, bio, Guo, Gio = P.copy(), Q.copy(), bu.copy(), bi.copy(), Gu.copy(), Gi.copy()
    mu, lr, reg, reg_b = 3.0, 0.1, 0.05, 0.02
    for _ in range(3):
        visit_order, strata, stride = plan.draw(rng)
        sse = _sgd.sgd_epoch(P, Q, bu, bi, plan.users, plan.items, plan.ratings,
                             plan.chunk_bounds, plan.block_chunks, visit_order, strata, stride,
                             mu, lr, reg, reg_b, biased, sequential, 1, Gu, Gi)
        positions = plan_positions(plan, visit_order, strata, stride)
        sse_o = oracle_epoch_adagrad(Po, Qo, buo, bio, Guo, Gio, plan.users, plan.items,
                                     plan.ratings, positions, mu, lr, reg, reg_b, biased,
                                     sequential)
        assert sse == pytest.approx(sse_o, rel=1e-12)
    for got, want in ((P, Po), (Q, Qo), (Gu, Guo), (Gi, Gio)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert (Gu > 1).any() and (Gi > 1).any()
    if biased:
        np.testing.assert_allclose(bu, buo, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(bi, bio, rtol=1e-12, atol=1e-14)
    else:
        np.testing.assert_array_equal(bu, buo)


@pytest.mark.parametrize("sequential", [True, False])
@pytest.mark.parametrize("k", [12, 8, 32, 100])
def test_adagrad_kernel_matches_oracle_float32(rng, sequential, k):
    users, items, ratings, P, Q, bu, bi = make_problem(rng, 40, 30, k, np.int32, np.float32)
    plan = EpochPlan(users, items, ratings, 40, 30, 2, True, rng, chunk_size=16)
    Gu, Gi = np.ones(40, np.float32), np.ones(30, np.float32)
    P64, Q64, bu64, bi64, Gu64, Gi64 = (a.astype(np.float64) for a in (P, Q, bu, bi, Gu, Gi))
    for _ in range(3):
        visit_order, strata, stride = plan.draw(rng)
        sse = _sgd.sgd_epoch(P, Q, bu, bi, plan.users, plan.items, plan.ratings,
                             plan.chunk_bounds, plan.block_chunks, visit_order, strata, stride,
                             3.0, 0.1, 0.05, 0.02, True, sequential, 1, Gu, Gi)
        sse_o = oracle_epoch_adagrad(P64, Q64, bu64, bi64, Gu64, Gi64, plan.users, plan.items,
                                     plan.ratings.astype(np.float64),
                                     plan_positions(plan, visit_order, strata, stride),
                                     3.0, 0.1, 0.05, 0.02, True, sequential)
        assert sse == pytest.approx(sse_o, rel=1e-4)
    for got, want in ((P, P64), (Q, Q64), (bu, bu64), (Gu, Gu64), (Gi, Gi64)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_adagrad_needs_both_accumulators_of_the_right_length(rng):
    users, items, ratings, P, Q, bu, bi = make_problem(rng, 10, 8, 4, np.int32, np.float64)
    plan = EpochPlan(users, items, ratings, 10, 8, 1, False, rng)
    visit_order, strata, stride = plan.draw(rng)
    args = (P, Q, bu, bi, plan.users, plan.items, plan.ratings, plan.chunk_bounds,
            plan.block_chunks, visit_order, strata, stride, 3.0, 0.1, 0.05, 0.02, True, False, 1)
    with pytest.raises(ValueError, match="both accumulators"):
        _sgd.sgd_epoch(*args, np.ones(10))
    with pytest.raises(ValueError, match="length"):
        _sgd.sgd_epoch(*args, np.ones(9), np.ones(8))


@pytest.mark.parametrize("sequential", [True, False])
@pytest.mark.parametrize("k", [12, 8, 21, 32, 100, 130])
def test_kernel_matches_oracle_float32(rng, sequential, k):
    users, items, ratings, P, Q, bu, bi = make_problem(rng, 40, 30, k, np.int32, np.float32)
    plan = EpochPlan(users, items, ratings, 40, 30, 2, True, rng, chunk_size=16)
    P64, Q64, bu64, bi64 = (a.astype(np.float64) for a in (P, Q, bu, bi))
    for _ in range(3):
        visit_order, strata, stride = plan.draw(rng)
        sse = _sgd.sgd_epoch(P, Q, bu, bi, plan.users, plan.items, plan.ratings,
                             plan.chunk_bounds, plan.block_chunks, visit_order, strata, stride,
                             3.0, 0.03, 0.05, 0.02, True, sequential, 1)
        sse_o = oracle_epoch(P64, Q64, bu64, bi64, plan.users, plan.items,
                             plan.ratings.astype(np.float64),
                             plan_positions(plan, visit_order, strata, stride),
                             3.0, 0.03, 0.05, 0.02, True, sequential)
        assert sse == pytest.approx(sse_o, rel=1e-4)
    np.testing.assert_allclose(P, P64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(Q, Q64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bu, bu64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("real_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("sequential", [True, False])
@pytest.mark.parametrize("k", [8, 16, 32, 64, 100])
@pytest.mark.parametrize("shape,n_ratings", [
    # Few items: consecutive ratings often share one (those go one by one).
    ((300, 6), 1500),
    # Factors above the kernel's 2 MB prefetch threshold: the prefetching loop.
    ((9000, 500), 6000),
])
def test_pair_updates_give_the_factors_of_one_by_one(rng, real_dtype, biased, sequential, k,
                                                     shape, n_ratings):
    n_users, n_items = shape
    users = rng.integers(0, n_users, n_ratings)
    items = rng.integers(0, n_items, n_ratings)
    ratings = rng.integers(1, 6, n_ratings).astype(real_dtype)
    P = (0.1 * rng.standard_normal((n_users, k))).astype(real_dtype)
    Q = (0.1 * rng.standard_normal((n_items, k))).astype(real_dtype)
    bu = (0.1 * rng.standard_normal(n_users)).astype(real_dtype)
    bi = (0.1 * rng.standard_normal(n_items)).astype(real_dtype)
    # An odd chunk length: a chunk's last rating can be left without a partner.
    plan = EpochPlan(users, items, ratings, n_users, n_items, 2, True, rng, chunk_size=37)
    draws = [plan.draw(rng) for _ in range(3)]
    results = {}
    before = _sgd._set_pair_updates("auto")
    try:
        for mode in ("off", "on", "auto"):
            _sgd._set_pair_updates(mode)
            arrays = [a.copy() for a in (P, Q, bu, bi)]
            sses = [_sgd.sgd_epoch(*arrays, plan.users, plan.items, plan.ratings,
                                   plan.chunk_bounds, plan.block_chunks, visit_order, strata,
                                   stride, 3.0, 0.03, 0.05, 0.02, biased, sequential, 1)
                    for visit_order, strata, stride in draws]
            results[mode] = (arrays, sses)
    finally:
        _sgd._set_pair_updates(before)
    for mode in ("on", "auto"):
        for got, want in zip(results[mode][0], results["off"][0]):
            np.testing.assert_array_equal(got, want)
        assert results[mode][1] == results["off"][1]
    assert not np.array_equal(results["off"][0][0], P)  # the epochs did move the factors


def test_pair_updates_mode_is_checked():
    with pytest.raises(ValueError, match="'auto', 'on' or 'off'"):
        _sgd._set_pair_updates("sometimes")
    assert _sgd._set_pair_updates("auto") == "auto"


@pytest.mark.parametrize("real_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("k", [7, 8, 21, 64, 100, 130])
def test_error_sums_and_predictions_match_numpy(rng, real_dtype, biased, k):
    users, items, ratings, P, Q, bu, bi = make_problem(rng, 300, 50, k, np.int64, real_dtype)
    mu = 2.5
    expected = (P[users] * Q[items]).sum(1, dtype=np.float64)
    if biased:
        expected += mu + bu[users] + bi[items]
    err = ratings - expected
    sse, sae = _sgd.error_sums(P, Q, bu, bi, users, items, ratings, mu, biased, 2)
    tol = 1e-12 if real_dtype == np.float64 else 1e-5
    assert sse == pytest.approx(np.sum(err ** 2), rel=tol)
    assert sae == pytest.approx(np.sum(np.abs(err)), rel=tol)

    out = np.empty(len(users), dtype=real_dtype)
    _sgd.predict_pairs(P, Q, bu, bi, users, items, mu, biased, out)
    np.testing.assert_allclose(out, expected, rtol=tol * 10, atol=tol)


def test_error_sums_do_not_depend_on_thread_count(rng):
    users, items, ratings, P, Q, bu, bi = make_problem(rng, 2000, 300, 9, np.int32, np.float32)
    sums = {n: _sgd.error_sums(P, Q, bu, bi, users, items, ratings, 3.0, True, n)
            for n in (1, 2, 4)}
    assert sums[1] == sums[2] == sums[4]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_factors_are_bit_identical_for_any_thread_count(dtype, monkeypatch):
    import mfcy.model

    # This problem is small enough that fit would run it on one thread anyway.
    monkeypatch.setattr(mfcy.model, "MIN_WORK_PER_THREAD", 1)
    rng = np.random.default_rng(7)
    users, items, ratings = random_triples(rng, 400, 300, 0.1)
    X = np.column_stack([users, items])
    fits = [MatrixFactorization(n_factors=8, n_epochs=4, n_blocks=4, n_threads=n,
                                dtype=dtype, random_state=3).fit(X, ratings)
            for n in (1, 2, 4)]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.user_factors_, fits[0].user_factors_)
        np.testing.assert_array_equal(other.item_factors_, fits[0].item_factors_)
        np.testing.assert_array_equal(other.user_bias_, fits[0].user_bias_)
        assert other.history_["train_mse"] == fits[0].history_["train_mse"]


def test_kernel_is_a_compiled_extension():
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    assert _sgd.__file__.endswith(suffixes), _sgd.__file__
    assert isinstance(_sgd.openmp_enabled(), bool)


def test_vector_isa_can_be_chosen(vector_isa):
    assert _sgd.vector_isa() == _NAMES[vector_isa]
    with pytest.raises(ValueError, match=r"auto, baseline, avx2 \(or avx2\+fma\) or avx512 \(or avx512f\)"):
        _sgd._set_vector_isa("avx1024")
    with pytest.raises(ValueError, match="avx512_min_k"):
        _sgd._set_vector_isa(vector_isa, avx512_min_k=-1)


def test_the_avx512_copy_runs_from_its_smallest_k_only(vector_isa):
    # What vector_isa(k) names is the copy a fit of k factors runs: the
    # AVX-512F copy from avx512_min_k() up, the AVX2+FMA one below it.
    _sgd._set_vector_isa(vector_isa, avx512_min_k=32)
    assert _sgd.avx512_min_k() == 32
    if vector_isa == "avx512":
        assert _sgd.vector_isa(31) == "avx2+fma"
        assert _sgd.vector_isa(32) == _sgd.vector_isa(100) == "avx512f"
    else:
        assert _sgd.vector_isa(8) == _sgd.vector_isa(100) == _NAMES[vector_isa]


@pytest.mark.parametrize("k", [8, 100])
def test_the_avx512_dispatch_by_k_matches_the_copies(rng, vector_isa, k):
    # The same fit with the AVX-512F copy at every k and with the import's
    # threshold: bit-identical where k is above it, and equal to the AVX2 copy's
    # below it (the dispatch picks the copy vector_isa(k) names).
    if vector_isa != "avx512":
        pytest.skip("the dispatch by k concerns the AVX-512F copy")
    X, y = _small_fit_problem(rng)

    def fit(isa, min_k):
        _sgd._set_vector_isa(isa, avx512_min_k=min_k)
        model = MatrixFactorization(n_factors=k, n_epochs=2, random_state=1).fit(X, y)
        return model.user_factors_

    threshold = 32
    dispatched = fit("avx512", threshold)
    expected = fit("avx512", 0) if k >= threshold else fit("avx2", threshold)
    np.testing.assert_array_equal(dispatched, expected)


def _small_fit_problem(rng):
    users = rng.integers(0, 40, 600)
    items = rng.integers(0, 30, 600)
    return np.column_stack([users, items]), rng.uniform(1, 5, 600)


@pytest.mark.parametrize("value,expected", [("baseline", "baseline"), (" BASELINE ", "baseline"),
                                            ("avx2", "avx2+fma"), ("avx512", "avx512f"),
                                            # build_info()'s names of the copies too
                                            ("avx2+fma", "avx2+fma"), ("AVX512F", "avx512f"),
                                            ("", None), ("auto", None)])
def test_mfcy_isa_environment_variable(value, expected, tmp_path):
    import os
    import subprocess
    import sys

    if expected not in (None, "baseline") and not _has(value):
        pytest.skip(f"this CPU (or build) cannot run the {value} copy")
    if expected is None:  # the import picks the best copy the CPU has
        expected = next(_NAMES[isa] for isa in ("avx512", "avx2", "baseline")
                        if isa == "baseline" or _has(isa))

    code = "import mfcy._sgd as s; print(s.vector_isa())"
    env = dict(os.environ, MFCY_ISA=value)
    # cwd: away from the source tree, whose mfcy/ has no compiled kernel.
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout.strip()
    assert out in ("baseline", "avx2+fma", "avx512f")
    if expected is not None:
        assert out == expected


def test_a_bad_mfcy_isa_fails_the_import_with_its_name(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, MFCY_ISA="sse9")
    result = subprocess.run([sys.executable, "-c", "import mfcy; mfcy.MatrixFactorization"], env=env,
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert "MFCY_ISA='sse9'" in result.stderr


def test_build_info_reports_the_build_and_the_loops_in_use(vector_isa):
    import mfcy

    info = mfcy.build_info()
    assert info["vector_isa"] == _sgd.vector_isa()
    assert info["openmp"] == _sgd.openmp_enabled()
    assert info["debug_build"] == _sgd.debug_build()
    assert info["sanitizers"] == _sgd.sanitizers()
    assert info["version"] == mfcy.__version__
    assert info["kernel_path"] == _sgd.kernel_path()
    assert info["kernel_path"] in ("sse2", "neon", "vector16", "portable")
    assert info["compiler"] == _sgd.compiler() and info["compiler"]


def test_kernel_path_names_the_build(monkeypatch):
    import os
    import platform

    expected = os.environ.get("MFCY_EXPECT_KERNEL_PATH")  # set by CI for each build it makes
    if expected:
        assert _sgd.kernel_path() == expected
    elif platform.machine().lower() in ("x86_64", "amd64"):
        # A portable build has no AVX2 copy: the two names go together.
        assert _sgd.kernel_path() in ("sse2", "portable")
    if _sgd.kernel_path() == "portable":
        with pytest.raises(ValueError, match="does not have it"):
            _sgd._set_vector_isa("avx2")
        with pytest.raises(ValueError, match="does not have it"):
            _sgd._set_vector_isa("avx512")


@pytest.mark.parametrize("real_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [5, 8, 100, 130])
def test_predictions_use_the_same_loops_as_the_error_pass(rng, real_dtype, k):
    # An unbiased prediction is the dot product alone, and the error pass of a
    # rating of 0 sums |0 - dot|: the two agree to the bit only if both run the
    # same copy of the loops (the one the vector_isa fixture selected).
    users, items, _, P, Q, bu, bi = make_problem(rng, 30, 20, k, np.int64, real_dtype)
    users, items = users[:40], items[:40]
    out = np.empty(len(users), dtype=real_dtype)
    _sgd.predict_pairs(P, Q, bu, bi, users, items, 0.0, False, out)
    zero = np.zeros(1, dtype=real_dtype)
    sae = [_sgd.error_sums(P, Q, bu, bi, users[t:t + 1], items[t:t + 1], zero, 0.0, False, 1)[1]
           for t in range(len(users))]
    np.testing.assert_array_equal(np.abs(out.astype(np.float64)), sae)
