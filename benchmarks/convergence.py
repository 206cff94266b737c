"""Time to a good model: test RMSE against seconds of fitting, epoch by epoch, per system.

    python benchmarks/convergence.py --peer-python /work/peers-venv/bin/python

On the ML-1M-star reference split (test = the first 10 % of
``numpy.random.default_rng(0).permutation(n)``), k = 100, L2 regularization
0.02 on factors and biases, one thread each, every system at the learning rate
of ``GRIDS`` that reaches the lowest test RMSE within its epoch budget. Each
(system, learning rate) is a fresh process; the curve is the test RMSE
(predictions clipped to [1, 5]) after every epoch against the seconds since the
fit began, the time spent evaluating excluded. Both clocks are recorded: the
wall clock and the fitting process's CPU time (``time.process_time``); with one
thread each, CPU time is the cost of the fit and does not grow when other
processes share the cores, so the table and plot use it unless ``--clock wall``:

- mfcy ``MatrixFactorization`` (its defaults otherwise: init N(0, 0.1),
  ``n_blocks=8``; ``track_loss=False``, the training-loss pass being a
  diagnostic): a ``fit(callback=...)`` scores the test set after each epoch;
  the clock starts before ``fit(X, y)`` on raw ids (id mapping included).
- cornac ``MF`` (its own init N(0, 0.01), zero biases): its kernel
  ``backend_cpu.fit_sgd`` runs all epochs in one call and reports each to a
  tqdm progress bar; the bar is replaced by an object that scores the model's
  arrays (updated in place) instead. The clock starts before ``MF.fit``
  (cornac's ``Dataset``, built before, is outside it, as in ``peers.py``).
- Surprise ``SVD`` (init N(0, 0.1)): its Cython ``sgd`` reads ``self.verbose``
  at the start of every epoch; a property there scores the state after the
  previous epoch, whose arrays are the ones the algorithm drew (a seeded
  ``RandomState`` that keeps what ``normal`` returned) and allocated (the
  module's ``np.zeros`` seen through a proxy that keeps them). The last
  epoch is scored after ``fit`` returns, and checked against Surprise's own
  ``algo.test``. The clock starts before ``algo.fit`` (trainset built before).
- LIBMF (python-libmf: no biases, its own per-row AdaGrad steps, ``eta`` its
  initial rate; uniform init): the binding has no warm start and no
  per-iteration hook, so each point is a separate fit of that many iterations
  (``LIBMF_EPOCHS``), timed whole (as ``peers.py`` times it). LIBMF with one
  thread is deterministic, so these are the prefixes of one long fit.

Learning rates per system are in ``GRIDS``. mfcy's adaptive schedule
(``learning_rate_schedule="adagrad"``) has its own grid entry; it is skipped,
with a notice, while the installed mfcy has no such parameter.

Printed: per system its best learning rate, best RMSE (and epoch), and the
seconds to reach the target RMSE (the lowest RMSE any peer reaches within its
budget), and to looser targets (``--extra-targets``); ratios against the
fastest peer. The curves go
to a PNG (log-scale time). All curves, metrics only, go to ``--json``.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

from _common import ML1M, cpu_description, load_triples, reference_split

HERE = pathlib.Path(__file__).resolve().parent
RATING_MIN, RATING_MAX = 1.0, 5.0
K, REG = 100, 0.02
PEERS = ("cornac", "surprise", "libmf")

#: label -> (system, learning rates tried, extra mfcy parameters).
GRIDS = {
    "mfcy constant": ("mfcy", (0.0025, 0.005, 0.01, 0.02), {}),
    # Written by another branch; skipped (with a notice) until mfcy has it.
    "mfcy adagrad": ("mfcy", (0.02, 0.05, 0.1, 0.2), {"learning_rate_schedule": "adagrad"}),
    # cornac's own initial scale on mfcy (issue 16: the defaults are part of the question).
    "mfcy init 0.01": ("mfcy", (0.0025, 0.005, 0.01, 0.02), {"init_std": 0.01}),
    "cornac MF": ("cornac", (0.0025, 0.005, 0.01, 0.02), {}),
    "Surprise SVD": ("surprise", (0.005, 0.01), {}),  # ~1 s an epoch: a small grid
    "LIBMF": ("libmf", (0.05, 0.1, 0.2), {}),
}
#: Fits of LIBMF (no per-iteration hook): iterations of each point.
LIBMF_EPOCHS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100)


# --------------------------------------------------------------- worker side


class Curve:
    """Seconds (evaluation excluded) and test RMSE after each epoch."""

    def __init__(self, test_ratings):
        self.truth = np.asarray(test_ratings, dtype=np.float64)
        self.epochs, self.seconds, self.cpu_seconds, self.rmse = [], [], [], []
        self.excluded = self.cpu_excluded = 0.0
        self.start = self.cpu_start = None

    def begin(self):
        self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def score(self, epoch, predict, seconds=None, cpu_seconds=None):
        """Record the epoch's times (or the ones given), then score ``predict()``, untimed."""
        now, cpu_now = time.perf_counter(), time.process_time()
        if seconds is None:
            seconds = now - self.start - self.excluded
            cpu_seconds = cpu_now - self.cpu_start - self.cpu_excluded
        err = np.clip(np.asarray(predict(), dtype=np.float64), RATING_MIN, RATING_MAX) - self.truth
        self.epochs.append(epoch)
        self.seconds.append(round(seconds, 5))
        self.cpu_seconds.append(round(cpu_seconds, 5))
        self.rmse.append(round(float(np.sqrt(np.mean(err * err))), 6))
        self.excluded += time.perf_counter() - now
        self.cpu_excluded += time.process_time() - cpu_now

    def as_dict(self):
        return {"epochs": self.epochs, "seconds": self.seconds, "cpu_seconds": self.cpu_seconds,
                "rmse": self.rmse}


def biased_predictor(user_idx, item_idx, arrays):
    """Predictions μ + b_u + b_i + p_u·q_i; an unknown side adds nothing (as the peers do)."""
    ku, ki = user_idx >= 0, item_idx >= 0
    uu, ii = np.where(ku, user_idx, 0), np.where(ki, item_idx, 0)

    def predict():
        mu, bu, bi, P, Q = arrays()
        pred = np.full(len(uu), float(mu))
        pred += np.where(ku, bu[uu], 0.0)
        pred += np.where(ki, bi[ii], 0.0)
        pred += np.where(ku & ki, np.einsum("ij,ij->i", P[uu], Q[ii]), 0.0)
        return pred
    return predict


def run_mfcy(lr, epochs, extra, train, test):
    import mfcy

    model = mfcy.MatrixFactorization(n_factors=K, n_epochs=epochs, learning_rate=lr,
                                     regularization=REG, track_loss=False, n_threads=1,
                                     random_state=0)
    unknown = set(extra) - set(model.get_params())
    if unknown:
        raise LookupError(f"the installed mfcy {mfcy.__version__} has no parameter "
                          f"{', '.join(sorted(unknown))}")
    model.set_params(**extra)
    curve = Curve(test[2])
    test_pairs = np.column_stack([test[0], test[1]])
    X, y = np.column_stack([train[0], train[1]]), train[2]

    def callback(model, epoch, history):
        curve.score(epoch, lambda: model.predict(test_pairs))
    curve.begin()
    try:
        model.fit(X, y, callback=callback)
    except mfcy.DivergenceError as exc:
        return mfcy.__version__, curve, f"diverged: {exc}"
    return mfcy.__version__, curve, None


def run_cornac(lr, epochs, extra, train, test):
    import cornac
    from cornac.data import Dataset
    from cornac.models import MF
    from cornac.models.mf import backend_cpu

    tu, ti, tr = train
    train_set = Dataset.from_uir(zip(tu.tolist(), ti.tolist(), tr.tolist()))
    model = MF(k=K, max_iter=epochs, learning_rate=lr, lambda_reg=REG, use_bias=True,
               early_stop=False, num_threads=1, seed=0, verbose=False)
    curve = Curve(test[2])
    user_idx = np.array([train_set.uid_map.get(x, -1) for x in test[0].tolist()])
    item_idx = np.array([train_set.iid_map.get(x, -1) for x in test[1].tolist()])
    predict = biased_predictor(user_idx, item_idx, lambda: (
        model.global_mean, model.u_biases, model.i_biases, model.u_factors, model.i_factors))

    class EpochReport:
        """Stands in for fit_sgd's tqdm bar: ``update(1)`` ends an epoch."""

        def __init__(self, n, disable=True):
            self.n, self.done = n, 0

        def __iter__(self):
            return iter(range(self.n))

        def update(self, count):
            self.done += count
            curve.score(self.done, predict)

        def set_postfix(self, *args, **kwargs):
            pass

        def close(self):
            pass

    backend_cpu.trange = EpochReport
    curve.begin()
    model.fit(train_set)
    if curve.epochs[-1:] != [epochs]:
        raise RuntimeError(f"cornac reported {curve.epochs[-1:]} epochs, not {epochs}")
    return cornac.__version__, curve, None


def run_surprise(lr, epochs, extra, train, test):
    import pandas as pd
    import surprise
    from surprise.prediction_algorithms import matrix_factorization as surprise_mf

    class KeptDraws(np.random.RandomState):
        """A seeded RandomState that keeps the arrays ``normal`` returns (p_u, q_i)."""

        def __init__(self, seed):
            super().__init__(seed)
            self.kept = []

        def normal(self, *args, **kwargs):
            out = super().normal(*args, **kwargs)
            self.kept.append(out)
            return out

    class KeptZeros:
        """The Cython module's ``np``: numpy, keeping what ``zeros`` made (b_u, b_i)."""

        def __init__(self):
            self.kept = []

        def __getattr__(self, name):
            return getattr(np, name)

        def zeros(self, *args, **kwargs):
            out = np.zeros(*args, **kwargs)
            self.kept.append(out)
            return out

    rng, zeros = KeptDraws(0), KeptZeros()

    class ScoredSVD(surprise.SVD):
        """SVD whose per-epoch ``self.verbose`` check scores the state so far."""

        epochs_started = 0

        @property
        def verbose(self):
            # Read at the start of epoch e (0-based): the state after e epochs.
            if self.epochs_started > 0:
                curve.score(self.epochs_started, predict)
            self.epochs_started += 1
            return False

        @verbose.setter
        def verbose(self, value):
            pass

    tu, ti, tr = train
    reader = surprise.Reader(rating_scale=(RATING_MIN, RATING_MAX))
    frame = pd.DataFrame({"user": tu, "item": ti, "rating": tr.astype(np.float64)})
    trainset = surprise.Dataset.load_from_df(frame, reader).build_full_trainset()
    algo = ScoredSVD(n_factors=K, n_epochs=epochs, lr_all=lr, reg_all=REG, init_std_dev=0.1,
                     random_state=rng)
    curve = Curve(test[2])

    def inner(to_inner, raw):
        out = np.full(len(raw), -1)
        for j, x in enumerate(raw.tolist()):
            try:
                out[j] = to_inner(x)
            except ValueError:
                pass
        return out
    user_idx = inner(trainset.to_inner_uid, test[0])
    item_idx = inner(trainset.to_inner_iid, test[1])
    predict = biased_predictor(user_idx, item_idx, lambda: (
        trainset.global_mean, zeros.kept[0], zeros.kept[1], rng.kept[0], rng.kept[1]))
    original_np = surprise_mf.np
    surprise_mf.np = zeros
    try:
        curve.begin()
        algo.fit(trainset)
        curve.score(epochs, predict)  # the last epoch: no further verbose check
    finally:
        surprise_mf.np = original_np
    if len(rng.kept) != 2 or len(zeros.kept) != 2 or curve.epochs != list(range(1, epochs + 1)):
        raise RuntimeError("Surprise's SVD.sgd no longer looks as this script expects")
    # The captured arrays must be the fitted model's, and score as Surprise scores.
    own = algo.test(list(zip(test[0].tolist(), test[1].tolist(), test[2].tolist())))
    err = np.array([p.est for p in own]) - curve.truth
    own_rmse = float(np.sqrt(np.mean(err * err)))
    if not np.shares_memory(algo.pu, rng.kept[0]) or abs(own_rmse - curve.rmse[-1]) > 1e-5:
        raise RuntimeError(f"scored state differs from Surprise's: {own_rmse} vs "
                           f"{curve.rmse[-1]}")
    return surprise.__version__, curve, None


def run_libmf(lr, epochs, extra, train, test):
    import peers
    from libmf import mf

    # The CPU time of MF.fit alone, the call peers.run_libmf times on the wall clock.
    fit_cpu = []
    untimed_fit = mf.MF.fit

    def fit(self, X):
        cpu_start = time.process_time()
        out = untimed_fit(self, X)
        fit_cpu.append(time.process_time() - cpu_start)
        return out
    mf.MF.fit = fit
    curve = Curve(test[2])
    for n in [e for e in LIBMF_EPOCHS if e <= epochs]:
        args = argparse.Namespace(factors=K, epochs=n, threads=1, lr=lr, reg=REG,
                                  native_init=False, init_std=0.1)
        version, _, fit_seconds, pred = peers.run_libmf(args, train, test)
        # One fit per point: its whole time is the point's time.
        curve.score(n, lambda: pred, seconds=fit_seconds, cpu_seconds=fit_cpu[-1])
    return version, curve, None


RUNNERS = {"mfcy": run_mfcy, "cornac": run_cornac, "surprise": run_surprise,
           "libmf": run_libmf}


def worker(args):
    from peers import _claim_stdout  # the peers print from C; keep stdout for JSON

    out = _claim_stdout()
    users, items, ratings = load_triples(args.data)
    train_rows, test_rows = reference_split(len(ratings))
    train = (users[train_rows], items[train_rows], ratings[train_rows])
    test = (users[test_rows], items[test_rows], ratings[test_rows])
    extra = json.loads(args.extra)
    record = {"system": args.worker, "lr": args.lr, "extra": extra}
    try:
        version, curve, note = RUNNERS[args.worker](args.lr, args.epochs, extra, train, test)
    except (ImportError, LookupError) as exc:
        record["error"] = str(exc)
        out.write(json.dumps(record) + "\n")
        return 3
    record.update(version=version, note=note, **curve.as_dict())
    out.write(json.dumps(record) + "\n")
    return 0


# ---------------------------------------------------------------- table side


def run_worker(python, system, lr, epochs, extra, data):
    cmd = [python, str(HERE / "convergence.py"), "--worker", system, "--lr", repr(lr),
           "--epochs", str(epochs), "--extra", json.dumps(extra), "--data", str(data)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}, no output"])[-1]
        return {"system": system, "lr": lr, "error": tail}


def seconds_to(curve, target):
    """Seconds of the first epoch at or below ``target`` (None if never)."""
    for seconds, rmse, epoch in zip(curve["t"], curve["rmse"], curve["epochs"]):
        if rmse <= target:
            return seconds, epoch
    return None


def fastest_to(runs, target):
    """(seconds, epoch, lr) of the run of ``runs`` first reaching ``target`` (None if none)."""
    hits = [(*hit, r["lr"]) for r in runs if "error" not in r and (hit := seconds_to(r, target))]
    return min(hits, default=None)


def best_run(runs):
    """The run with the lowest RMSE of its curve (ties: the one reaching it sooner)."""
    good = [r for r in runs if "error" not in r and r["rmse"]]
    if not good:
        return None
    return min(good, key=lambda r: (min(r["rmse"]), seconds_to(r, min(r["rmse"]))[0]))


def plot(best, all_runs, target, path, data_name, clock):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for label, run in best.items():
        line, = ax.plot(run["t"], run["rmse"], marker="." if run["system"] == "libmf"
                        else None, label=f"{label} (lr {run['lr']:g})")
        for other in all_runs[label]:
            if other is not run and "error" not in other and other["rmse"]:
                ax.plot(other["t"], other["rmse"], color=line.get_color(), alpha=0.25,
                        linewidth=0.8)
    ax.axhline(target, color="grey", linestyle="--", linewidth=0.8)
    ax.text(ax.get_xlim()[0], target, f" target {target:.4f}", va="bottom", color="grey",
            fontsize=8)
    ax.set_xscale("log")
    ax.set_ylim(target - 0.01, target + 0.09)
    ax.set_xlabel(("CPU seconds of the fitting process" if clock == "cpu" else
                   "seconds (wall clock)") + " since the fit began, evaluation excluded (log)")
    ax.set_ylabel("test RMSE")
    ax.set_title(f"{data_name}, reference split, k = {K}, reg {REG}, one thread "
                 "(faint: other learning rates)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def run_grids(args, labels):
    """Run every (label, learning rate) of ``labels``: (runs per label, notices)."""
    all_runs, notices = {}, []
    for label in labels:
        system, rates, extra = GRIDS[label]
        epochs = (args.surprise_epochs or args.epochs) if system == "surprise" else args.epochs
        runs = []
        for lr in rates:
            if system != "mfcy" and args.peer_python is None:
                runs.append({"system": system, "lr": lr, "error": "no --peer-python given"})
                break
            python = sys.executable if system == "mfcy" else args.peer_python
            run = run_worker(python, system, lr, epochs, extra, args.data)
            run["label"] = label
            runs.append(run)
            if "error" in run:
                print(f"  {label} lr {lr:g}: {run['error']}", file=sys.stderr, flush=True)
                if system == "mfcy":  # a missing parameter: the other rates fail alike
                    break
                continue
            if not run["rmse"]:
                print(f"  {label} lr {lr:g}: {run['note']}", file=sys.stderr, flush=True)
                continue
            best_epoch = int(np.argmin(run["rmse"]))
            print(f"  {label} lr {lr:g}: best RMSE {run['rmse'][best_epoch]:.4f} at epoch "
                  f"{run['epochs'][best_epoch]} ({run['seconds'][best_epoch]:.2f} s)"
                  f"{'; ' + run['note'] if run.get('note') else ''}", file=sys.stderr, flush=True)
        all_runs[label] = runs
        if all(("error" in r) for r in runs):
            notices.append(f"{label}: SKIPPED ({runs[0]['error']})")

    return all_runs, notices


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ML1M))
    p.add_argument("--peer-python", default=None,
                   help="python of the peers' venv (cornac, Surprise, libmf)")
    p.add_argument("--epochs", type=int, default=100, help="epoch budget of every system")
    p.add_argument("--surprise-epochs", type=int, default=None,
                   help="a smaller budget for Surprise (slow); default: --epochs")
    p.add_argument("--systems", default=",".join(GRIDS),
                   help="comma-separated labels of GRIDS to run")
    p.add_argument("--target", type=float, default=None,
                   help="target RMSE to use instead of the best peer's (e.g. from an "
                        "earlier run's JSON, when running only some systems)")
    p.add_argument("--extra-targets", type=lambda text: [float(t) for t in text.split(",")],
                   default=[0.86, 0.87], help="looser RMSE targets also shown (default 0.86,0.87)")
    p.add_argument("--from-json", nargs="+", default=None, metavar="JSON",
                   help="tabulate and plot the curves saved by earlier runs (--json) instead; "
                        "several files are merged, a label's runs from the last file that has it")
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                   help="seconds of the table and plot: the fitting process's CPU time "
                        "(default: one thread each, robust on a shared machine) or wall clock")
    p.add_argument("--png", default=str(HERE.parent / "docs" / "_static" / "convergence.png"))
    p.add_argument("--json", default=str(HERE / "results" / "convergence.json"))
    p.add_argument("--worker", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    p.add_argument("--lr", type=float, help=argparse.SUPPRESS)
    p.add_argument("--extra", default="{}", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    if not pathlib.Path(args.data).exists():
        sys.exit(f"data file not found: {args.data} (pass --data)")
    labels = args.systems.split(",")
    unknown = set(labels) - set(GRIDS)
    if unknown:
        p.error(f"--systems: unknown {sorted(unknown)}; choose from {list(GRIDS)}")

    if args.from_json:
        # Tabulate and plot an earlier run again (no fitting).
        all_runs = {}
        for path in args.from_json:
            saved = json.loads(pathlib.Path(path).read_text())
            measured = {label: runs for label, runs in saved["runs"].items()
                        if label in labels and not all("error" in r for r in runs)}
            all_runs.update({label: runs for label, runs in saved["runs"].items()
                             if label in labels and label not in all_runs} | measured)
            print(f"(read from {path}, the run of {saved['date']}: {', '.join(measured)})")
        notices = [f"{label}: SKIPPED ({runs[0]['error']})" for label, runs in all_runs.items()
                   if all("error" in r for r in runs)]
    else:
        all_runs, notices = run_grids(args, labels)
        pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.json).write_text(json.dumps(
            {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_description(), "k": K,
             "regularization": REG, "runs": all_runs}) + "\n")

    for runs in all_runs.values():
        for run in runs:
            if "error" not in run:
                run["t"] = run["cpu_seconds" if args.clock == "cpu" else "seconds"]
    best = {label: b for label, runs in all_runs.items() if (b := best_run(runs))}
    peer_best = [min(b["rmse"]) for b in best.values() if b["system"] in PEERS]
    if args.target is not None:
        target, why = args.target, "given by --target"
    elif not peer_best:
        target, why = min(min(b["rmse"]) for b in best.values()), "no peer ran: the lowest RMSE"
    else:
        target, why = min(peer_best), "the lowest test RMSE a peer reaches within its budget"
    targets = [target] + [t for t in args.extra_targets if t > target]
    data_name = ("ML-1M-star" if pathlib.Path(args.data) == ML1M
                 else pathlib.Path(args.data).name)

    print(f"\n{cpu_description()}; {time.strftime('%Y-%m-%d')}; {data_name}, the reference "
          f"split, k = {K}, reg {REG}, 1 thread; each system at its best learning rate of the grid; "
          f"{args.clock} seconds; a shared machine: compare ratios")
    print(f"target RMSE {target:.4f}: {why}")
    header = (f"{'system':16} {'best RMSE':>9} {'lr':>7} {'epoch':>5} "
              + "".join(f" | {'s to ' + format(t, '.4f'):>11} {'lr':>6} {'epoch':>5} {'vs peer':>7}"
                        for t in targets))
    print(header)
    print("-" * len(header))
    # Per target, each system at the learning rate of its grid that reaches it first.
    reach = {label: {t: fastest_to(all_runs[label], t) for t in targets} for label in best}
    fastest_peer = {t: min((reach[label][t][0] for label in best if best[label]["system"]
                            in PEERS and reach[label][t]), default=None) for t in targets}
    for label, run in best.items():
        i = int(np.argmin(run["rmse"]))
        cells = ""
        for t in targets:
            hit = reach[label][t]
            if hit is None:
                cells += f" | {'not reached':>11} {'':>6} {'':>5} {'':>7}"
            else:
                ratio = f"{fastest_peer[t] / hit[0]:.2f}x" if fastest_peer[t] else ""
                cells += f" | {hit[0]:9.2f} s {hit[2]:>6g} {hit[1]:>5} {ratio:>7}"
        print(f"{label:16} {min(run['rmse']):9.4f} {run['lr']:>7g} {run['epochs'][i]:>5}{cells}")
    constant = reach.get("mfcy constant", {})
    for label in best:
        if label.startswith("mfcy") and label != "mfcy constant":
            ratios = [f"{t:.4f}: {constant[t][0] / reach[label][t][0]:.2f}x" for t in targets
                      if constant.get(t) and reach[label][t]]
            print(f"{label} against mfcy constant (its seconds / these): "
                  + (", ".join(ratios) or "no target reached by both"))
    for notice in notices:
        print(notice)
    print("\nbest RMSE: the lowest test RMSE of the grid (its lr and epoch; the curve drawn). "
          "s to T: seconds (evaluation excluded) until the first epoch with test RMSE <= T, "
          "at the grid's lr reaching it first; vs peer: the fastest peer's seconds / this "
          "system's (> 1: sooner)")
    for label, runs in all_runs.items():
        tried = ", ".join(f"{r['lr']:g}: " + ("error" if "error" in r else
                                              "diverged" if not r["rmse"] else
                                              f"{min(r['rmse']):.4f}"
                                              + (" then diverged" if r.get("note") else ""))
                          for r in runs)
        print(f"  {label} grid (lr: best RMSE): {tried}")
    if best:
        plot(best, all_runs, target, args.png, clock=args.clock, data_name=data_name)
        print(f"curves: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
