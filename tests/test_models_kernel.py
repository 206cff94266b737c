"""The SVD++, NMF and baseline kernels (mfcy._models) against pure-Python oracles.

Each oracle below is the update rule of the module docstring of ``_models.pyx``
written out in plain Python and numpy, one rating at a time. The compiled
kernels must match them to 1e-12 in float64 (only their dot products are
summed in another order) and to float32 rounding in float32; every pass must
give the same bits for any number of threads.
"""

import numpy as np
import pytest

import mfcy._models as _models
from mfcy._blocking import EpochPlan

from helpers import random_triples

# ---------------------------------------------------------------------------
# A problem in every layout the kernels take
# ---------------------------------------------------------------------------


class Problem:
    """Canonical triples, their blocked layout and both CSR views."""

    def __init__(self, seed=0, n_users=23, n_items=17, density=0.35, n_blocks=3,
                 chunk_size=5, index=np.int32, dtype=np.float64, scale=1.0, rank=None):
        rng = np.random.default_rng(seed)
        users, items, ratings = random_triples(rng, n_users, n_items, density, scale)
        if rank is not None:  # a low-rank signal plus a little noise
            A, B = rng.standard_normal((n_users, rank)), rng.standard_normal((n_items, rank))
            ratings = 3.0 + (A[users] * B[items]).sum(axis=1) + 0.1 * (ratings - 3.0)
        self.n_users, self.n_items = n_users, n_items
        self.users = users.astype(index)
        self.items = items.astype(index)
        self.ratings = ratings.astype(dtype)
        self.mu = float(ratings.mean())
        self.plan = EpochPlan(self.users, self.items, self.ratings, n_users, n_items,
                              n_blocks, True, rng, chunk_size=chunk_size)
        self.rng = rng
        self.user_ptr = np.zeros(n_users + 1, np.int64)
        np.cumsum(np.bincount(users, minlength=n_users), out=self.user_ptr[1:])
        self.user_items = self.items.copy()
        self.user_ratings = self.ratings.copy()
        by_item = np.lexsort((users, items))  # by item, then user
        self.item_ptr = np.zeros(n_items + 1, np.int64)
        np.cumsum(np.bincount(items, minlength=n_items), out=self.item_ptr[1:])
        self.item_users = self.users[by_item].copy()
        self.item_ratings = self.ratings[by_item].copy()

    def draws(self, n_epochs):
        return [self.plan.draw(self.rng) for _ in range(n_epochs)]

    def positions(self, visit_order, strata, stride):
        """The positions of the blocked layout in the order an epoch visits them, by block."""
        plan, n_blocks = self.plan, self.plan.n_blocks
        blocks = []
        for s in range(n_blocks):
            for a in range(n_blocks):
                block = a * n_blocks + (a + strata[s]) % n_blocks
                visit = []
                for j in range(plan.block_chunks[block], plan.block_chunks[block + 1]):
                    c = visit_order[j]
                    start, stop = plan.chunk_bounds[c], plan.chunk_bounds[c + 1]
                    n = stop - start
                    step, t = stride % n, 0
                    for _ in range(n):
                        visit.append(start + t)
                        t = (t + step) % n
                blocks.append(visit)
        return blocks

    def layout(self, draw):
        visit_order, strata, stride = draw
        plan = self.plan
        return (plan.users, plan.items, plan.ratings, plan.chunk_bounds, plan.block_chunks,
                visit_order, strata, stride)


def _init(rng, shape, dtype, low=None, high=None):
    if low is None:
        return (0.1 * rng.standard_normal(shape)).astype(dtype)
    return rng.uniform(low, high, shape).astype(dtype)


# ---------------------------------------------------------------------------
# SVD++
# ---------------------------------------------------------------------------


def oracle_implicit(Y, user_ptr, user_items):
    """s_u = |N(u)|^-1/2 sum_j y_j, the items in storage order."""
    S = np.zeros((len(user_ptr) - 1, Y.shape[1]), Y.dtype)
    for u in range(len(user_ptr) - 1):
        s = np.zeros(Y.shape[1], Y.dtype)
        for j in user_items[user_ptr[u]:user_ptr[u + 1]]:
            s = s + Y[j]
        n = user_ptr[u + 1] - user_ptr[u]
        if n:
            s = s * (1.0 / np.sqrt(n))
        S[u] = s
    return S


def oracle_svdpp_epoch(pb, user_order, P, Q, Y, bu, bi, lr, reg, reg_b, lr_y, reg_y,
                       biased):
    """One SVD++ epoch in the documented order: user by user, y steps after each user."""
    mu = pb.mu if biased else 0.0
    sse = 0.0
    for u in user_order:
        lo, hi = pb.user_ptr[u], pb.user_ptr[u + 1]
        if hi == lo:
            continue
        norm = 1.0 / np.sqrt(hi - lo)
        decay = (1.0 - lr_y * reg_y) ** (hi - lo)
        s = np.zeros(P.shape[1], P.dtype)
        for j in pb.user_items[lo:hi]:
            s = s + Y[j]
        s = s * norm
        g = np.zeros(P.shape[1], P.dtype)
        for t in range(lo, hi):
            i, r = pb.user_items[t], pb.user_ratings[t]
            p, q = P[u].copy(), Q[i].copy()
            dot = float(np.dot(q, p + s))
            if biased:
                err = r - (mu + bu[u] + bi[i] + dot)
                bu[u] = bu[u] + lr * (err - reg_b * bu[u])
                bi[i] = bi[i] + lr * (err - reg_b * bi[i])
            else:
                err = r - dot
            g = g + err * q
            P[u] = p + lr * (err * q - reg * p)
            Q[i] = q + lr * (err * (p + s) - reg * q)
            sse += err * err
        for j in pb.user_items[lo:hi]:
            Y[j] = decay * Y[j] + (lr_y * norm) * g
    return sse


def oracle_svdpp_lanes_epoch(pb, user_order, P, Q, Y, bu, bi, lr, reg, reg_b, lr_y, reg_y,
                             biased, n_lanes, lane_ratings):
    """The lanes of svdpp_epoch: rounds of whole users per lane against the round's start."""
    mu = pb.mu if biased else 0.0
    n = len(user_order)
    pos = [b * n // n_lanes for b in range(n_lanes)]
    end = [(b + 1) * n // n_lanes for b in range(n_lanes)]
    lane_sse = [0.0] * n_lanes
    while any(p < e for p, e in zip(pos, end)):
        rounds = []
        for b in range(n_lanes):
            # Working copies: item -> [q, y, b_i] as the lane sees them.
            work, done = {}, 0
            while pos[b] < end[b] and done < lane_ratings:
                u = user_order[pos[b]]
                pos[b] += 1
                lo, hi = pb.user_ptr[u], pb.user_ptr[u + 1]
                if hi == lo:
                    continue
                norm = 1.0 / np.sqrt(hi - lo)
                decay = (1.0 - lr_y * reg_y) ** (hi - lo)
                s = np.zeros(P.shape[1], P.dtype)
                for j in pb.user_items[lo:hi]:
                    if j not in work:
                        work[j] = [Q[j].copy(), Y[j].copy(), bi[j] if biased else 0.0]
                    s = s + work[j][1]
                s = s * norm
                g = np.zeros(P.shape[1], P.dtype)
                for t in range(lo, hi):
                    i, r = pb.user_items[t], pb.user_ratings[t]
                    p, q = P[u].copy(), work[i][0].copy()
                    dot = float(np.dot(q, p + s))
                    if biased:
                        b_i = work[i][2]
                        err = r - (mu + bu[u] + b_i + dot)
                        bu[u] = bu[u] + lr * (err - reg_b * bu[u])
                        work[i][2] = b_i + lr * (err - reg_b * b_i)
                    else:
                        err = r - dot
                    g = g + err * q
                    P[u] = p + lr * (err * q - reg * p)
                    work[i][0] = q + lr * (err * (p + s) - reg * q)
                    lane_sse[b] += err * err
                for j in pb.user_items[lo:hi]:
                    work[j][1] = decay * work[j][1] + (lr_y * norm) * g
                done += hi - lo
            rounds.append(work)
        # Each item row used this round: its start plus the mean of the changes
        # of the lanes that used it (summed in lane order).
        for j in {j for work in rounds for j in work}:
            lanes = [work for work in rounds if j in work]
            dq, dy, db = 0.0, 0.0, 0.0
            for work in lanes:
                dq = dq + (work[j][0] - Q[j])
                dy = dy + (work[j][1] - Y[j])
                db = db + (work[j][2] - bi[j]) if biased else 0.0
            Q[j] = Q[j] + dq / len(lanes)
            Y[j] = Y[j] + dy / len(lanes)
            if biased:
                bi[j] = bi[j] + db / len(lanes)
    return sum(lane_sse)


def _svdpp_state(pb, k, dtype, seed=1):
    rng = np.random.default_rng(seed)
    P = _init(rng, (pb.n_users, k), dtype)
    Q = _init(rng, (pb.n_items, k), dtype)
    Y = _init(rng, (pb.n_items, k), dtype)
    bu = _init(rng, pb.n_users, dtype)
    bi = _init(rng, pb.n_items, dtype)
    return [P, Q, Y, bu, bi]


def _svdpp_kernel_epoch(pb, user_order, state, lr, reg, reg_b, lr_y, reg_y, biased,
                        n_threads, n_lanes=1, lane_ratings=1024):
    P, Q, Y, bu, bi = state
    return _models.svdpp_epoch(P, Q, Y, bu, bi, pb.user_ptr, pb.user_items, pb.user_ratings,
                               user_order, pb.mu, lr, reg, reg_b, lr_y, reg_y, biased,
                               n_lanes, lane_ratings, n_threads)


def _orders(pb, n_epochs, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.permutation(pb.n_users).astype(np.int64) for _ in range(n_epochs)]


def test_implicit_sums_are_the_definition():
    pb = Problem()
    rng = np.random.default_rng(5)
    Y = rng.standard_normal((pb.n_items, 6))
    S = np.full((pb.n_users, 6), np.nan)
    _models.svdpp_implicit_sums(Y, pb.user_ptr, pb.user_items, S, n_threads=2)
    # Independent of the loop: the 0/1 matrix of N(u), row-normalised, times Y.
    N = np.zeros((pb.n_users, pb.n_items))
    N[pb.users, pb.items] = 1.0
    counts = N.sum(axis=1)
    expected = (N @ Y) / np.sqrt(np.maximum(counts, 1))[:, None]
    np.testing.assert_allclose(S, expected, rtol=1e-13, atol=1e-14)
    assert (S[counts == 0] == 0).all()


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("k", [1, 4, 11])
def test_svdpp_matches_oracle_float64(biased, k):
    pb = Problem(seed=k)
    kernel = _svdpp_state(pb, k, np.float64)
    oracle = [a.copy() for a in kernel]
    hyper = (0.05, 0.02, 0.03, 0.04, 0.05)  # lr, reg, reg_bias, lr_y, reg_y all differ
    for order in _orders(pb, 3):
        sse = _svdpp_kernel_epoch(pb, order, kernel, *hyper, biased, 1)
        expected = oracle_svdpp_epoch(pb, order, *oracle, *hyper, biased)
        assert sse == pytest.approx(expected, rel=1e-12)
        for got, want in zip(kernel, oracle):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    # Something moved: the test would fail for a kernel that did nothing.
    assert not np.allclose(kernel[2], _svdpp_state(pb, k, np.float64)[2])


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("n_lanes, lane_ratings", [(2, 1), (3, 7), (4, 1000)])
def test_svdpp_lanes_match_oracle_float64(biased, n_lanes, lane_ratings):
    pb = Problem(seed=20 + n_lanes, n_users=31)
    kernel = _svdpp_state(pb, 6, np.float64)
    oracle = [a.copy() for a in kernel]
    hyper = (0.05, 0.02, 0.03, 0.04, 0.05)
    for order in _orders(pb, 3):
        sse = _svdpp_kernel_epoch(pb, order, kernel, *hyper, biased, 2, n_lanes, lane_ratings)
        expected = oracle_svdpp_lanes_epoch(pb, order, *oracle, *hyper, biased, n_lanes,
                                            lane_ratings)
        assert sse == pytest.approx(expected, rel=1e-12)
        for got, want in zip(kernel, oracle):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_svdpp_lanes_merge_in_pieces_matches_oracle(n_threads):
    """Items beyond one merge piece (1024) and a tail that is not a whole flag word:
    the round's merge, split between threads, is still the oracle's."""
    pb = Problem(seed=5, n_users=12, n_items=2053, density=0.06)
    kernel = _svdpp_state(pb, 5, np.float64)
    oracle = [a.copy() for a in kernel]
    hyper = (0.05, 0.02, 0.03, 0.04, 0.05)
    for order in _orders(pb, 2):
        sse = _svdpp_kernel_epoch(pb, order, kernel, *hyper, True, n_threads, 3, 60)
        expected = oracle_svdpp_lanes_epoch(pb, order, *oracle, *hyper, True, 3, 60)
        assert sse == pytest.approx(expected, rel=1e-12)
        for got, want in zip(kernel, oracle):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    assert pb.items.max() > 2 * 1024 and pb.n_items % 8


def test_svdpp_one_lane_per_user_round_is_the_plain_rule():
    """Lanes of one user each, one after another, are the plain per-user rule."""
    pb = Problem(seed=30)
    plain = _svdpp_state(pb, 5, np.float64)
    lanes = [a.copy() for a in plain]
    for order in _orders(pb, 2):
        _svdpp_kernel_epoch(pb, order, plain, 0.05, 0.02, 0.02, 0.05, 0.02, True, 1)
        oracle_svdpp_lanes_epoch(pb, order, *lanes, 0.05, 0.02, 0.02, 0.05, 0.02, True, 1, 1)
    for a, b in zip(plain, lanes):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_svdpp_float32_follows_the_oracle():
    pb = Problem(seed=3, dtype=np.float32)
    kernel = _svdpp_state(pb, 8, np.float32)
    oracle = [a.astype(np.float64) for a in kernel]
    hyper = (0.05, 0.02, 0.02, 0.05, 0.02)
    for order in _orders(pb, 3):
        sse = _svdpp_kernel_epoch(pb, order, kernel, *hyper, True, 1)
        expected = oracle_svdpp_epoch(pb, order, *oracle, *hyper, True)
        assert sse == pytest.approx(expected, rel=1e-4)
    for got, want in zip(kernel, oracle):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_svdpp_int64_indices_give_the_same_bits():
    results = []
    for index in (np.int32, np.int64):
        pb = Problem(seed=4, index=index)
        state = _svdpp_state(pb, 5, np.float64)
        for order in _orders(pb, 2):
            _svdpp_kernel_epoch(pb, order, state, 0.05, 0.02, 0.02, 0.05, 0.02, True, 1)
        results.append(state)
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


def test_svdpp_predict_is_the_formula():
    pb = Problem(seed=6)
    P, Q, Y, bu, bi = _svdpp_state(pb, 7, np.float64)
    S = np.empty_like(P)
    _models.svdpp_implicit_sums(Y, pb.user_ptr, pb.user_items, S)
    users = np.array([0, 3, -1, 5, -1, 2], np.int32)
    items = np.array([1, 2, 4, -1, -1, 0], np.int32)
    out = np.empty(len(users))
    _models.svdpp_predict(P, Q, S, bu, bi, users, items, pb.mu, True, out)
    N = np.zeros((pb.n_users, pb.n_items))
    N[pb.users, pb.items] = 1.0
    implicit = (N @ Y) / np.sqrt(np.maximum(N.sum(axis=1), 1))[:, None]
    for t, (u, i) in enumerate(zip(users, items)):
        want = pb.mu + (bu[u] if u >= 0 else 0) + (bi[i] if i >= 0 else 0)
        if u >= 0 and i >= 0:
            want += Q[i] @ (P[u] + implicit[u])
        assert out[t] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("n_lanes", [1, 8])
def test_svdpp_threads_give_the_same_bits(n_lanes):
    pb = Problem(seed=7, n_users=300, n_items=200, density=0.15, dtype=np.float32)
    orders = _orders(pb, 3)
    results = []
    for n_threads in (1, 2, 4):
        state = _svdpp_state(pb, 16, np.float32)
        losses = [_svdpp_kernel_epoch(pb, o, state, 0.01, 0.02, 0.02, 0.01, 0.02, True,
                                      n_threads, n_lanes, 64) for o in orders]
        S = np.empty_like(state[0])
        _models.svdpp_implicit_sums(state[2], pb.user_ptr, pb.user_items, S, n_threads)
        results.append((losses, state + [S]))
    for losses, state in results[1:]:
        assert losses == results[0][0]
        for a, b in zip(state, results[0][1]):
            assert a.tobytes() == b.tobytes()


def test_svdpp_learns():
    """On a low-rank problem the training error falls well below its first epoch's."""
    pb = Problem(seed=8, n_users=80, n_items=60, density=0.3, rank=3)
    state = _svdpp_state(pb, 4, np.float64)
    losses = [_svdpp_kernel_epoch(pb, o, state, 0.02, 0.02, 0.02, 0.02, 0.02, True, 1)
              for o in _orders(pb, 30)]
    assert losses[-1] < 0.3 * losses[0]


@pytest.mark.parametrize("lane_ratings", [8, 10**9])
def test_svdpp_two_lanes_learn_as_one_lane_does(lane_ratings):
    """Averaged lanes, even one round per epoch, settle within 10 % of one lane's error.

    They start slower (an item both lanes moved takes the mean of their steps)."""
    pb = Problem(seed=8, n_users=80, n_items=60, density=0.3, rank=3)
    results = []
    for n_lanes in (1, 2):
        state = _svdpp_state(pb, 4, np.float64)
        losses = [_svdpp_kernel_epoch(pb, o, state, 0.02, 0.02, 0.02, 0.02, 0.02, True, 1,
                                      n_lanes, lane_ratings) for o in _orders(pb, 100)]
        results.append(losses[-1])
    assert results[1] < 1.1 * results[0]


# ---------------------------------------------------------------------------
# NMF
# ---------------------------------------------------------------------------


def oracle_nmf_epoch(pb, P, Q, bu, bi, reg_u, reg_i, biased):
    """Luo et al.'s multiplicative update as Surprise's NMF, simultaneous in P and Q."""
    k = P.shape[1]
    P0, Q0 = P.copy(), Q.copy()
    sse = 0.0

    def est_of(u, i):
        dot = float(np.dot(P0[u], Q0[i]))
        return pb.mu + bu[u] + bi[i] + dot if biased else dot

    def step(x, num, den, reg_n):
        out = x.copy()
        for f in range(k):
            d = den[f] + reg_n * x[f]
            if d > 0:
                out[f] = max(x[f] * (num[f] / d), 0.0)
        return out

    for u in range(pb.n_users):
        num, den = np.zeros(k), np.zeros(k)
        for t in range(pb.user_ptr[u], pb.user_ptr[u + 1]):
            i, r = pb.user_items[t], pb.user_ratings[t]
            est = est_of(u, i)
            sse += (r - est) ** 2
            num += r * Q0[i]
            den += est * Q0[i]
        P[u] = step(P0[u], num, den, reg_u * (pb.user_ptr[u + 1] - pb.user_ptr[u]))
    for i in range(pb.n_items):
        num, den = np.zeros(k), np.zeros(k)
        for t in range(pb.item_ptr[i], pb.item_ptr[i + 1]):
            u, r = pb.item_users[t], pb.item_ratings[t]
            est = est_of(u, i)
            num += r * P0[u]
            den += est * P0[u]
        Q[i] = step(Q0[i], num, den, reg_i * (pb.item_ptr[i + 1] - pb.item_ptr[i]))
    return sse


def _nmf_kernel_epoch(pb, P, Q, bu, bi, reg_u, reg_i, biased, n_threads):
    return _models.nmf_epoch(P, Q, bu, bi, pb.user_ptr, pb.user_items, pb.user_ratings,
                             pb.item_ptr, pb.item_users, pb.item_ratings, pb.mu, reg_u,
                             reg_i, biased, n_threads)


def _can_run_nmf_copy(name):
    before = _models.nmf_vector_isa()
    try:
        return _models._set_nmf_vector_isa(name) != "baseline" or name == "baseline"
    finally:
        _models._set_nmf_vector_isa("baseline" if before == "baseline" else "auto")


@pytest.fixture(params=["baseline", "avx2"])
def nmf_copy(request):
    """Run the test on each compiled copy of NMF's passes this CPU can run."""
    if not _can_run_nmf_copy(request.param):
        pytest.skip(f"this CPU (or build) cannot run NMF's {request.param} copy")
    before = _models.nmf_vector_isa()
    _models._set_nmf_vector_isa(request.param)
    yield request.param
    _models._set_nmf_vector_isa("baseline" if before == "baseline" else "auto")


def test_nmf_copy_names():
    assert _models.nmf_vector_isa() in ("baseline", "avx2+fma")
    with pytest.raises(ValueError, match="unknown NMF vector ISA"):
        _models._set_nmf_vector_isa("avx9")


@pytest.mark.usefixtures("nmf_copy")
@pytest.mark.parametrize("k", [5, 15, 16, 33])
@pytest.mark.parametrize("biased", [False, True])
def test_nmf_matches_oracle_float64(biased, k):
    # k = 15 and 33 are padded to 16 and 40 inside the kernel; 16 runs the
    # constant-k loops, 40 the general ones.
    pb = Problem(seed=9)
    rng = np.random.default_rng(2)
    P, Q = _init(rng, (pb.n_users, k), np.float64, 0, 1), _init(rng, (pb.n_items, k),
                                                               np.float64, 0, 1)
    bu, bi = _init(rng, pb.n_users, np.float64), _init(rng, pb.n_items, np.float64)
    oP, oQ = P.copy(), Q.copy()
    for _ in range(4):
        sse = _nmf_kernel_epoch(pb, P, Q, bu, bi, 0.06, 0.08, biased, 1)
        expected = oracle_nmf_epoch(pb, oP, oQ, bu, bi, 0.06, 0.08, biased)
        assert sse == pytest.approx(expected, rel=1e-12)
        np.testing.assert_allclose(P, oP, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(Q, oQ, rtol=1e-12, atol=1e-14)


@pytest.mark.usefixtures("nmf_copy")
def test_nmf_float32_follows_the_oracle_and_threads_give_the_same_bits():
    pb = Problem(seed=10, n_users=200, n_items=150, density=0.2, dtype=np.float32)
    rng = np.random.default_rng(3)
    P0 = _init(rng, (pb.n_users, 15), np.float32, 0, 1)
    Q0 = _init(rng, (pb.n_items, 15), np.float32, 0, 1)
    empty = np.zeros(0, np.float32)
    runs = []
    for n_threads in (1, 2, 4):
        P, Q = P0.copy(), Q0.copy()
        losses = [_nmf_kernel_epoch(pb, P, Q, empty, empty, 0.06, 0.06, False, n_threads)
                  for _ in range(3)]
        runs.append((losses, P, Q))
    for losses, P, Q in runs[1:]:
        assert losses == runs[0][0]
        assert P.tobytes() == runs[0][1].tobytes() and Q.tobytes() == runs[0][2].tobytes()
    oP, oQ = P0.astype(np.float64), Q0.astype(np.float64)
    for _ in range(3):
        oracle_nmf_epoch(pb, oP, oQ, empty, empty, 0.06, 0.06, False)
    np.testing.assert_allclose(runs[0][1], oP, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(runs[0][2], oQ, rtol=2e-4, atol=1e-6)


@pytest.mark.usefixtures("nmf_copy")
def test_nmf_one_thread_reads_only_the_item_counts():
    """One thread works without the item CSR's users and ratings, to the same bits."""
    pb = Problem(seed=10, n_users=50, n_items=40, density=0.3)
    rng = np.random.default_rng(3)
    P0, Q0 = _init(rng, (pb.n_users, 15), np.float64, 0, 1), _init(rng, (pb.n_items, 15),
                                                                   np.float64, 0, 1)
    empty, runs = np.zeros(0), []
    for item_users, item_ratings in ((pb.item_users, pb.item_ratings),
                                     (pb.item_users[:0], pb.item_ratings[:0])):
        P, Q = P0.copy(), Q0.copy()
        sse = _models.nmf_epoch(P, Q, empty, empty, pb.user_ptr, pb.user_items,
                                pb.user_ratings, pb.item_ptr, item_users, item_ratings, pb.mu,
                                0.06, 0.06, False, 1)
        runs.append((sse, P.tobytes(), Q.tobytes()))
    assert runs[0] == runs[1]
    with pytest.raises(ValueError, match="needs the item CSR"):
        _models.nmf_epoch(P, Q, empty, empty, pb.user_ptr, pb.user_items, pb.user_ratings,
                          pb.item_ptr, pb.item_users[:0], pb.item_ratings[:0], pb.mu, 0.06,
                          0.06, False, 2)


@pytest.mark.usefixtures("nmf_copy")
def test_nmf_factors_never_negative():
    # Negative ratings and large negative biases make some numerators and
    # denominators negative: the factors must still stay >= 0 and finite.
    pb = Problem(seed=11, scale=4.0)
    rng = np.random.default_rng(4)
    P = _init(rng, (pb.n_users, 6), np.float64, 0, 1)
    Q = _init(rng, (pb.n_items, 6), np.float64, 0, 1)
    P[0] = 0.0  # a zero row: denominators 0
    bu = -3.0 * np.abs(_init(rng, pb.n_users, np.float64))
    bi = rng.standard_normal(pb.n_items)
    assert (pb.ratings < 0).any()
    for biased in (True, False, True):
        for _ in range(5):
            _nmf_kernel_epoch(pb, P, Q, bu, bi, 0.06, 0.06, biased, 2)
            assert (P >= 0).all() and (Q >= 0).all()
            assert np.isfinite(P).all() and np.isfinite(Q).all()


@pytest.mark.usefixtures("nmf_copy")
def test_nmf_lowers_the_error():
    pb = Problem(seed=12, n_users=60, n_items=50, density=0.4, rank=3)
    rng = np.random.default_rng(5)
    P = _init(rng, (pb.n_users, 4), np.float64, 0, 1)
    Q = _init(rng, (pb.n_items, 4), np.float64, 0, 1)
    empty = np.zeros(0)
    losses = [_nmf_kernel_epoch(pb, P, Q, empty, empty, 0.06, 0.06, False, 1)
              for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]


def test_nmf_predict_is_the_formula():
    pb = Problem(seed=13)
    rng = np.random.default_rng(6)
    P, Q = rng.random((pb.n_users, 3)), rng.random((pb.n_items, 3))
    bu, bi = rng.standard_normal(pb.n_users), rng.standard_normal(pb.n_items)
    users = np.array([1, -1, 4, 2], np.int64)
    items = np.array([2, 3, -1, 0], np.int64)
    out = np.empty(4)
    _models.nmf_predict(P, Q, bu, bi, users, items, pb.mu, False, out)
    np.testing.assert_allclose(out, [P[1] @ Q[2], pb.mu, pb.mu, P[2] @ Q[0]], rtol=1e-12)
    _models.nmf_predict(P, Q, bu, bi, users, items, pb.mu, True, out)
    np.testing.assert_allclose(out, [pb.mu + bu[1] + bi[2] + P[1] @ Q[2], pb.mu + bi[3],
                                     pb.mu + bu[4], pb.mu + bu[2] + bi[0] + P[2] @ Q[0]],
                               rtol=1e-12)


# ---------------------------------------------------------------------------
# Baseline
# ---------------------------------------------------------------------------


def oracle_baseline_sgd_epoch(pb, draw, bu, bi, lr, reg):
    sse = 0.0
    plan = pb.plan
    for block in pb.positions(*draw):
        block_sse = 0.0
        for t in block:
            u, i = plan.users[t], plan.items[t]
            err = plan.ratings[t] - (pb.mu + bu[u] + bi[i])
            bu[u], bi[i] = bu[u] + lr * (err - reg * bu[u]), bi[i] + lr * (err - reg * bi[i])
            block_sse += err * err
        sse += block_sse
    return sse


def oracle_baseline_als_epoch(pb, bu, bi, reg_u, reg_i):
    """Surprise's baseline_als: every item, then every user."""
    for i in range(pb.n_items):
        dev = 0.0
        for t in range(pb.item_ptr[i], pb.item_ptr[i + 1]):
            dev += (pb.item_ratings[t] - pb.mu) - bu[pb.item_users[t]]
        bi[i] = dev / (reg_i + (pb.item_ptr[i + 1] - pb.item_ptr[i]))
    sse = 0.0
    for u in range(pb.n_users):
        dev = 0.0
        for t in range(pb.user_ptr[u], pb.user_ptr[u + 1]):
            dev += (pb.user_ratings[t] - pb.mu) - bi[pb.user_items[t]]
        bu[u] = dev / (reg_u + (pb.user_ptr[u + 1] - pb.user_ptr[u]))
        for t in range(pb.user_ptr[u], pb.user_ptr[u + 1]):
            sse += (pb.user_ratings[t] - (pb.mu + bu[u] + bi[pb.user_items[t]])) ** 2
    return sse


def _als(pb, bu, bi, n_threads, reg_u=15.0, reg_i=10.0):
    return _models.baseline_als_epoch(bu, bi, pb.user_ptr, pb.user_items, pb.user_ratings,
                                      pb.item_ptr, pb.item_users, pb.item_ratings, pb.mu,
                                      reg_u, reg_i, n_threads)


def test_baseline_sgd_matches_oracle():
    pb = Problem(seed=14)
    bu, bi = np.zeros(pb.n_users), np.zeros(pb.n_items)
    obu, obi = bu.copy(), bi.copy()
    for draw in pb.draws(4):
        sse = _models.baseline_sgd_epoch(bu, bi, *pb.layout(draw), pb.mu, 0.05, 0.02, 1)
        assert sse == pytest.approx(oracle_baseline_sgd_epoch(pb, draw, obu, obi, 0.05, 0.02),
                                    rel=1e-12)
        np.testing.assert_allclose(bu, obu, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(bi, obi, rtol=1e-12, atol=1e-15)
    assert np.abs(bu).max() > 0.01


def test_baseline_als_matches_oracle_and_converges():
    pb = Problem(seed=15)
    bu, bi = np.zeros(pb.n_users), np.zeros(pb.n_items)
    obu, obi = bu.copy(), bi.copy()
    objective = []
    for _ in range(10):
        sse = _als(pb, bu, bi, 1)
        objective.append(sse + 15.0 * (bu**2).sum() + 10.0 * (bi**2).sum())
        assert sse == pytest.approx(oracle_baseline_als_epoch(pb, obu, obi, 15.0, 10.0),
                                           rel=1e-12)
        np.testing.assert_allclose(bu, obu, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(bi, obi, rtol=1e-12, atol=1e-15)
    # Exact block-coordinate minimisation of the regularized squared error: never up.
    assert all(b <= a * (1 + 1e-12) for a, b in zip(objective, objective[1:]))
    assert objective[-1] < objective[0]
    # Small regularization: the ALS fixed point is the least-squares fit of the biases.
    bu, bi = np.zeros(pb.n_users), np.zeros(pb.n_items)
    for _ in range(300):
        _als(pb, bu, bi, 1, reg_u=1e-9, reg_i=1e-9)
    grad_u = np.bincount(pb.users, pb.ratings - pb.mu - bu[pb.users] - bi[pb.items],
                         minlength=pb.n_users)
    np.testing.assert_allclose(grad_u, 0.0, atol=1e-6)


def test_baseline_threads_and_index_types_give_the_same_bits():
    runs = []
    for n_threads, index, dtype in [(1, np.int32, np.float32), (2, np.int32, np.float32),
                                    (4, np.int64, np.float32)]:
        pb = Problem(seed=16, n_users=300, n_items=200, density=0.15, n_blocks=4,
                     chunk_size=64, index=index, dtype=dtype)
        bu, bi = np.zeros(pb.n_users, dtype), np.zeros(pb.n_items, dtype)
        sgd = [_models.baseline_sgd_epoch(bu, bi, *pb.layout(d), pb.mu, 0.005, 0.02,
                                          n_threads) for d in pb.draws(3)]
        abu, abi = np.zeros(pb.n_users, dtype), np.zeros(pb.n_items, dtype)
        als = [_als(pb, abu, abi, n_threads) for _ in range(3)]
        runs.append((sgd, als, bu.tobytes(), bi.tobytes(), abu.tobytes(), abi.tobytes()))
    assert runs[1] == runs[0] and runs[2] == runs[0]


def test_baseline_predict():
    bu, bi = np.array([0.5, -1.0]), np.array([0.25, 2.0, -0.5])
    users = np.array([0, 1, -1, 1, -1], np.int32)
    items = np.array([2, 1, 0, -1, -1], np.int32)
    out = np.empty(5)
    _models.baseline_predict(bu, bi, users, items, 3.0, out)
    np.testing.assert_array_equal(out, [3.0, 4.0, 3.25, 2.0, 3.0])


def test_zero_factors_is_a_clear_error():
    pb = Problem(seed=17)
    state = _svdpp_state(pb, 0, np.float64)
    with pytest.raises(ValueError, match="at least one factor"):
        _svdpp_kernel_epoch(pb, _orders(pb, 1)[0], state, 0.01, 0.02, 0.02, 0.01, 0.02, True,
                            1)
    with pytest.raises(ValueError, match="at least one factor"):
        _nmf_kernel_epoch(pb, state[0], state[1], state[3], state[4], 0.06, 0.06, False, 1)


# ---------------------------------------------------------------------------
# Debug builds (MFCY_DEBUG=1): an index past validation is an IndexError
# ---------------------------------------------------------------------------


def _require_debug_build():
    import mfcy._sgd as _sgd
    from test_debug_build import require_debug_build

    assert isinstance(_sgd.debug_build(), bool)
    require_debug_build()


@pytest.mark.parametrize("kernel", ["svdpp", "nmf", "als", "sgd"])
def test_debug_build_catches_an_item_index_out_of_range(kernel):
    _require_debug_build()
    pb = Problem(seed=40)
    bad = pb.n_items + 3
    pb.user_items[4] = bad
    pb.item_users[4] = pb.n_users + 3
    pb.plan.items[4] = bad
    P, Q, Y, bu, bi = _svdpp_state(pb, 3, np.float64)
    with pytest.raises(IndexError):
        if kernel == "svdpp":
            _svdpp_kernel_epoch(pb, _orders(pb, 1)[0], [P, Q, Y, bu, bi], 0.01, 0.02, 0.02,
                                0.01, 0.02, True, 1)
        elif kernel == "nmf":
            _nmf_kernel_epoch(pb, np.abs(P), np.abs(Q), bu, bi, 0.06, 0.06, True, 1)
        elif kernel == "als":
            _als(pb, bu, bi, 1)
        else:
            _models.baseline_sgd_epoch(bu, bi, *pb.layout(pb.draws(1)[0]), pb.mu, 0.01, 0.02,
                                       1)


def test_mfcy_isa_baseline_picks_nmf_baseline_copy():
    import subprocess
    import sys
    code = "import mfcy._models as m; print(m.nmf_vector_isa())"
    env = {**__import__("os").environ, "MFCY_ISA": "baseline"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd="/")
    assert out.stdout.strip() == "baseline"
