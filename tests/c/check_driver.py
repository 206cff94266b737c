"""Run the C kernel driver (tests/c/kernel_driver.c) against the Python oracle.

    python tests/c/check_driver.py DRIVER [ARGS...] [--isa 0 1 2]

``DRIVER ARGS`` is the command that runs a built driver, e.g.
``qemu-aarch64 /tmp/kernel_driver-aarch64`` for a cross build. The problems
are drawn here, the expected values come from ``oracle_epoch`` of
tests/test_kernel.py (the oracle every compiled update rule is checked
against), and the tolerances are those of tests/test_kernel.py: float64 to
1e-12 relative, float32 against the float64 oracle to 1e-4 (factors) and
1e-5 (error sums and predictions). Needs numpy, pytest and an installed mfcy
(test_kernel.py imports it); the driver itself needs neither.
"""

import argparse
import itertools
import pathlib
import subprocess
import sys

import numpy as np

TESTS = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from test_kernel import oracle_epoch, oracle_epoch_adagrad  # noqa: E402

STEP = 7919  # a prime above every problem size here: a permutation of the chunk
EPOCHS = 3
MU, LR, REG, REG_B = 3.0, 0.03, 0.05, 0.02
LR_ADAGRAD = 0.1


def draw_problem(rng, k, real):
    n_users, n_items = 20, 15
    mask = rng.random((n_users, n_items)) < 0.3
    users, items = np.nonzero(mask)
    ratings = rng.uniform(1, 5, len(users)).astype(real)
    P = (0.1 * rng.standard_normal((n_users, k))).astype(real)
    Q = (0.1 * rng.standard_normal((n_items, k))).astype(real)
    bu = (0.1 * rng.standard_normal(n_users)).astype(real)
    bi = (0.1 * rng.standard_normal(n_items)).astype(real)
    pair_users = np.concatenate([rng.integers(0, n_users, 30), [-1, 3, -1]])
    pair_items = np.concatenate([rng.integers(0, n_items, 30), [2, -1, -1]])
    return users, items, ratings, P, Q, bu, bi, pair_users, pair_items


def fmt(values):
    # repr of a Python float round-trips exactly, float32 values included.
    return " ".join(repr(float(v)) for v in np.ravel(values))


def fmt_int(values):
    return " ".join(str(int(v)) for v in np.ravel(values))


def expected_values(problem, biased, sequential, adagrad):
    users, items, ratings, P, Q, bu, bi, pu, pi = problem
    P, Q, bu, bi, r = (a.astype(np.float64) for a in (P, Q, bu, bi, ratings))
    n = len(users)
    positions = [(j * STEP) % n for j in range(n)]
    mu = MU if biased else 0.0
    Gu, Gi = np.ones(len(P)), np.ones(len(Q))
    if adagrad:
        sse = [oracle_epoch_adagrad(P, Q, bu, bi, Gu, Gi, users, items, r, positions, mu,
                                    LR_ADAGRAD, REG, REG_B, biased, sequential)
               for _ in range(EPOCHS)]
    else:
        sse = [oracle_epoch(P, Q, bu, bi, users, items, r, positions, mu, LR, REG, REG_B,
                            biased, sequential) for _ in range(EPOCHS)]
    pred_r = (P[users] * Q[items]).sum(1) + (mu + bu[users] + bi[items] if biased else 0.0)
    err = r - pred_r
    pred = np.zeros(len(pu))
    for t, (u, i) in enumerate(zip(pu, pi)):
        value = mu
        if biased:
            value += (bu[u] if u >= 0 else 0.0) + (bi[i] if i >= 0 else 0.0)
        if u >= 0 and i >= 0:
            value = (value if biased else 0.0) + float(P[u] @ Q[i])
        pred[t] = value
    return {"sse": np.array(sse), "P": P.ravel(), "Q": Q.ravel(), "bu": bu, "bi": bi,
            "g": np.concatenate([Gu, Gi]),
            "err": np.array([np.sum(err ** 2), np.sum(np.abs(err))]), "pred": pred}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("driver", nargs="+", help="command running the built driver")
    parser.add_argument("--isa", type=int, nargs="+", default=[0],
                        help="0: the baseline loops, 1: AVX2+FMA, 2: AVX-512F (at every k); "
                        "each the best copy the CPU has up to it")
    parser.add_argument("--output", help="also write the driver's raw output here (to compare "
                        "two builds bit for bit)")
    args = parser.parse_args()

    rng = np.random.default_rng(20261202)
    cases, text = [], []
    for real, index, biased, sequential, adagrad, k, isa in itertools.product(
            ("f", "d"), (32, 64), (True, False), (True, False), (False, True), (5, 8, 33, 100),
            args.isa):
        problem = draw_problem(rng, k, np.float32 if real == "f" else np.float64)
        users, items, ratings, P, Q, bu, bi, pu, pi = problem
        text.append(f"case {real} {index} {P.shape[0]} {Q.shape[0]} {k} {len(users)} {EPOCHS} "
                    f"{STEP} {MU!r} {(LR_ADAGRAD if adagrad else LR)!r} {REG!r} {REG_B!r} "
                    f"{int(biased)} {int(sequential)} {int(adagrad)} {isa}")
        text += [fmt_int(users), fmt_int(items), fmt(ratings), fmt(P), fmt(Q), fmt(bu), fmt(bi),
                 str(len(pu)), fmt_int(pu), fmt_int(pi)]
        cases.append(((real, index, biased, sequential, adagrad, k, isa),
                      expected_values(problem, biased, sequential, adagrad)))

    run = subprocess.run(args.driver, input="\n".join(text) + "\n", capture_output=True,
                         text=True)
    sys.stderr.write(run.stderr)
    if run.returncode != 0:
        sys.exit(f"the driver failed with exit status {run.returncode}")
    if args.output:
        pathlib.Path(args.output).write_text(run.stdout)
    lines = run.stdout.splitlines()
    if len(lines) != 8 * len(cases):
        sys.exit(f"expected {8 * len(cases)} lines from the driver, got {len(lines)}")

    failures, worst = [], {"f": 0.0, "d": 0.0}
    for c, (key, expected) in enumerate(cases):
        real = key[0]
        for line in lines[8 * c:8 * c + 8]:
            label, *values = line.split()
            got, want = np.array(values, dtype=np.float64), expected[label]
            # test_kernel.py: float64 rtol 1e-12 / atol 1e-14; float32 against the
            # float64 oracle rtol 1e-4 / atol 1e-5 (factors, sums), predictions 1e-4 / 1e-5.
            rtol, atol = (1e-12, 1e-14) if real == "d" else (1e-4, 1e-5)
            if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=atol):
                failures.append(f"{key} {label}: max |diff| "
                                f"{np.max(np.abs(got - want)) if got.shape == want.shape else 'shape'}")
            else:
                used = np.abs(got - want) / (atol + rtol * np.abs(want))
                worst[real] = max(worst[real], float(np.max(used)))
    names = "real, index bits, biased, sequential, adagrad, k, isa"
    print(f"{len(cases)} cases ({names}: every combination of f/d, 32/64, both update rules, "
          f"biased or not, constant or adagrad, k in 5 8 33 100, isa {args.isa}); "
          f"largest |difference| from the oracle as a fraction of the tolerance "
          f"(test_kernel.py's): float32 {worst['f']:.3f}, float64 {worst['d']:.3f}")
    if failures:
        print("\n".join(failures[:20]))
        sys.exit(f"{len(failures)} values disagree with the oracle")
    print("all agree with the oracle")


if __name__ == "__main__":
    main()
