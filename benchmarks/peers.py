"""Fit one peer MF library on the reference split and print one JSON line.

This script is run by the *peer* virtualenv's interpreter, never by mfcy's,
so the peers' pinned numpy/scipy stay out of mfcy's environment and this file
must not import mfcy.  Build the venv as described at the top of
benchmarks/requirements-peers.txt, then for example::

    /work/peers-venv/bin/python benchmarks/peers.py --system cornac \\
        --data ../shared/data/ml-1m-star/ratings.tsv.gz \\
        --factors 100 --epochs 20 --lr 0.005 --reg 0.02 --threads 1 --seed 0

Systems: ``cornac`` (cornac.models.MF, SGD, float32, OpenMP threads),
``surprise`` (scikit-surprise SVD, float64, single-threaded only) and
``libmf`` (python-libmf, no biases, AdaGrad-scaled SGD over a block grid:
its figures are for speed only, its RMSE is not comparable).

Data: a ratings file ``user<TAB>item<TAB>rating`` (gzip allowed, no header).
Split: the reference split, always ``numpy.random.default_rng(0).permutation(n)``
with the first ``n // 10`` rows as test and the rest, in permutation order, as
train; ``--seed`` only seeds the factor initialisation.

Output: exactly one JSON line on stdout::

    {"system", "version", "threads", "factors", "epochs", "n_train",
     "fit_seconds", "updates_per_s", "test_rmse", "test_mae", "peak_rss_mb"}

``updates_per_s`` = n_train * epochs / fit_seconds.  Predictions are clipped to
[1, 5] before RMSE/MAE.  ``peak_rss_mb`` is the whole process's peak (data
loading and the peer's own data structures included).  Everything else,
including the peers' own chatter, goes to stderr.

Exit codes: 0 success; 3 the peer (or numpy/pandas) cannot be imported, with
``{"system": ..., "error": ...}`` on stdout so the caller can report it as
missing; 2 a request the peer cannot honour (e.g. Surprise with threads > 1),
again with an "error" JSON line.
"""

import argparse
import json
import os
import resource
import sys
import time

SYSTEMS = ("cornac", "surprise", "libmf")
RATING_MIN, RATING_MAX = 1.0, 5.0


def _claim_stdout():
    """Keep a private handle on the real stdout and send fd 1 to stderr.

    libmf prints from Python at import time and from C++ while training, and
    other peers may print progress; redirecting the file descriptor (not just
    sys.stdout) is the only way to keep C-level output off the JSON channel.
    """
    sys.stdout.flush()
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    return json_out


class PeerUnavailable(Exception):
    """The peer library (or numpy/pandas) failed to import."""


class Refused(Exception):
    """The peer cannot run with the requested settings."""


def load_split(path):
    import numpy as np
    import pandas as pd

    df = pd.read_csv(
        path,
        sep="\t",
        header=None,
        usecols=[0, 1, 2],
        names=["user", "item", "rating"],
        dtype={"user": np.int64, "item": np.int64, "rating": np.float64},
    )
    u = df["user"].to_numpy()
    i = df["item"].to_numpy()
    r = df["rating"].to_numpy()
    n = len(r)
    perm = np.random.default_rng(0).permutation(n)
    test, train = perm[: n // 10], perm[n // 10 :]
    return (u[train], i[train], r[train]), (u[test], i[test], r[test])


# ---------------------------------------------------------------- cornac


def run_cornac(args, train, test):
    try:
        import numpy as np
        import cornac
        from cornac.data import Dataset
        from cornac.models import MF
    except Exception as exc:  # ImportError, or an ABI error from a bad numpy
        raise PeerUnavailable(f"cornac: {exc!r}") from exc

    tu, ti, tr = train
    # Dataset.from_uir is cornac's ordinary entry point; it is a pure-Python
    # loop (~1-2 s here) building the raw-id -> index maps, so it is kept
    # outside the timed region.  Python ints keep the map keys plain ints.
    train_set = Dataset.from_uir(zip(tu.tolist(), ti.tolist(), tr.tolist()))

    # cornac hard-codes N(0, 0.01) for the factors; the reference protocol
    # wants N(0, init_std), which MF only accepts through init_params (biases
    # still start at 0, as in every peer).
    init_params = None
    if not args.native_init:
        rng = np.random.default_rng(args.seed)
        shape_u = (train_set.num_users, args.factors)
        shape_v = (train_set.num_items, args.factors)
        init_params = {
            "U": rng.normal(0.0, args.init_std, shape_u).astype(np.float32),
            "V": rng.normal(0.0, args.init_std, shape_v).astype(np.float32),
        }

    model = MF(
        k=args.factors,
        max_iter=args.epochs,
        learning_rate=args.lr,
        lambda_reg=args.reg,
        use_bias=True,
        early_stop=False,
        num_threads=args.threads,
        # Any non-None seed forces num_threads=1 inside MF.__init__, so the
        # seed is only used for cornac's own init when --native-init asks
        # for it (and then only with one thread).
        seed=args.seed if (args.native_init and args.threads == 1) else None,
        init_params=init_params,
        verbose=False,
    )
    # MF clamps num_threads to [1, cpu_count]; report what it will use.
    threads = model.num_threads

    # Timed: MF.fit = Recommender.fit bookkeeping + _init (allocates biases,
    # draws factors only under --native-init) + a float64->float32 copy of
    # the ratings + backend_cpu.fit_sgd.  fit_sgd walks the ratings in the
    # given (already shuffled) order every epoch, no reshuffle; with >1
    # thread it is lock-free OpenMP prange(schedule='static'), i.e. each
    # thread takes a contiguous half and results are not reproducible.
    t0 = time.perf_counter()
    model.fit(train_set)
    fit_seconds = time.perf_counter() - t0

    # Vectorised equivalent of MF.score: unknown users/items contribute no
    # bias and no dot product (cornac itself raises for unknown items).
    eu, ei, _ = test
    uidx = np.array([train_set.uid_map.get(x, -1) for x in eu.tolist()])
    iidx = np.array([train_set.iid_map.get(x, -1) for x in ei.tolist()])
    ku, ki = uidx >= 0, iidx >= 0
    uu, ii = np.where(ku, uidx, 0), np.where(ki, iidx, 0)
    pred = np.full(len(eu), float(model.global_mean))
    pred += np.where(ku, model.u_biases[uu], 0.0)
    pred += np.where(ki, model.i_biases[ii], 0.0)
    dots = np.einsum("ij,ij->i", model.u_factors[uu], model.i_factors[ii])
    pred += np.where(ku & ki, dots, 0.0)
    return cornac.__version__, threads, fit_seconds, pred


# -------------------------------------------------------------- surprise


def run_surprise(args, train, test):
    try:
        import numpy as np
        import pandas as pd
        import surprise
        from surprise import SVD, Dataset, Reader
    except Exception as exc:
        raise PeerUnavailable(f"surprise: {exc!r}") from exc
    if args.threads != 1:
        raise Refused("surprise SVD is single-threaded; use --threads 1")
    if args.native_init:
        print("surprise: its native init is already N(0, init_std)", file=sys.stderr)

    tu, ti, tr = train
    frame = pd.DataFrame({"user": tu, "item": ti, "rating": tr})
    # Untimed: Surprise's raw-id -> inner-id mapping (pure Python dicts).
    reader = Reader(rating_scale=(RATING_MIN, RATING_MAX))
    trainset = Dataset.load_from_df(frame, reader).build_full_trainset()

    algo = SVD(
        n_factors=args.factors,
        n_epochs=args.epochs,
        lr_all=args.lr,
        reg_all=args.reg,
        init_mean=0.0,
        init_std_dev=args.init_std,
        biased=True,
        random_state=args.seed,
    )
    # Timed: SVD.fit = float64 N(0, init_std) init + the lazily computed
    # global mean (a Python generator over all ratings) + 20 epochs that
    # walk trainset.all_ratings() (grouped by user, not in input order).
    t0 = time.perf_counter()
    algo.fit(trainset)
    fit_seconds = time.perf_counter() - t0

    eu, ei, er = test
    # Surprise's own predict handles unknown users/items like cornac above.
    preds = algo.test(list(zip(eu.tolist(), ei.tolist(), er.tolist())))
    pred = np.array([p.est for p in preds], dtype=np.float64)
    return surprise.__version__, 1, fit_seconds, pred


# ----------------------------------------------------------------- libmf


def run_libmf(args, train, test):
    try:
        import numpy as np
        from importlib.metadata import version
        from libmf import mf  # prints the .so path to stdout (fd 1 is stderr now)
    except Exception as exc:
        raise PeerUnavailable(f"libmf: {exc!r}") from exc
    if args.native_init or args.init_std != 0.1:
        print("libmf: init is fixed, uniform[0,1) * sqrt(1/k)", file=sys.stderr)

    tu, ti, tr = train
    # libmf sizes P and Q from the largest index, so hand it dense 0-based
    # indices; test ids unseen in training map to -1, which mf_predict
    # answers with the model's global average.
    users, u_idx = np.unique(tu, return_inverse=True)
    items, i_idx = np.unique(ti, return_inverse=True)
    X = np.column_stack([u_idx, i_idx, tr]).astype(np.float32)

    engine = mf.MF(
        k=args.factors,
        nr_iters=args.epochs,
        nr_threads=args.threads,
        eta=args.lr,  # initial rate of libmf's AdaGrad-style schedule
        # The binding's defaults put 0.04 on the *L1* terms (lambda_*1);
        # the protocol's regularisation is L2, i.e. lambda_*2.
        lambda_p1=0.0,
        lambda_q1=0.0,
        lambda_p2=args.reg,
        lambda_q2=args.reg,
        # quiet=False would also compute the training loss every iteration.
        quiet=True,
    )
    # Timed: MF.fit = a float32 copy of X + the C++ conversion to mf_node
    # triples + mf_train (grid partitioning, shuffling, scaling, SGD).  The
    # wheel is built from source with -O3 but without -fopenmp or SSE/AVX,
    # so the inner loop is scalar; its worker threads are std::threads.
    t0 = time.perf_counter()
    engine.fit(X)
    fit_seconds = time.perf_counter() - t0

    eu, ei, _ = test
    pos_u = np.searchsorted(users, eu).clip(0, len(users) - 1)
    pos_i = np.searchsorted(items, ei).clip(0, len(items) - 1)
    eu_idx = np.where(users[pos_u] == eu, pos_u, -1)
    ei_idx = np.where(items[pos_i] == ei, pos_i, -1)
    # pred_model_interface reads X as column-major (all users, then all
    # items) although MF.predict's docstring asks for an (n, 2) array; a
    # Fortran-ordered array satisfies both (astype keeps the layout).
    uv = np.asfortranarray(np.column_stack([eu_idx, ei_idx]).astype(np.float32))
    pred = np.asarray(engine.predict(uv), dtype=np.float64)
    return version("libmf"), args.threads, fit_seconds, pred


RUNNERS = {"cornac": run_cornac, "surprise": run_surprise, "libmf": run_libmf}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--system", required=True, choices=SYSTEMS)
    p.add_argument("--data", required=True, help="ratings TSV(.gz): user, item, rating")
    p.add_argument("--factors", type=int, default=100)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--reg", type=float, default=0.02)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="seeds the factor init only")
    p.add_argument("--init-std", type=float, default=0.1)
    p.add_argument(
        "--native-init",
        action="store_true",
        help="use the peer's own factor initialiser (cornac: N(0, 0.01))",
    )
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    out = _claim_stdout()

    def emit(record):
        out.write(json.dumps(record) + "\n")
        out.flush()

    try:
        import numpy as np

        train, test = load_split(args.data)
        version, threads, fit_seconds, pred = RUNNERS[args.system](args, train, test)
    except PeerUnavailable as exc:
        emit({"system": args.system, "error": str(exc)})
        return 3
    except ImportError as exc:  # numpy/pandas themselves
        emit({"system": args.system, "error": repr(exc)})
        return 3
    except Refused as exc:
        emit({"system": args.system, "error": str(exc)})
        return 2

    err = np.clip(pred, RATING_MIN, RATING_MAX) - test[2]
    rmse = float(np.sqrt(np.mean(err * err)))
    mae = float(np.mean(np.abs(err)))
    n_train = int(len(train[2]))
    sys.stdout.flush()
    emit(
        {
            "system": args.system,
            "version": version,
            "threads": int(threads),
            "factors": args.factors,
            "epochs": args.epochs,
            "n_train": n_train,
            "fit_seconds": round(fit_seconds, 4),
            "updates_per_s": round(n_train * args.epochs / fit_seconds),
            "test_rmse": round(rmse, 5) if np.isfinite(rmse) else None,
            "test_mae": round(mae, 5) if np.isfinite(mae) else None,
            # ru_maxrss is in KiB on Linux.
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
