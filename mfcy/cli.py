"""The ``mfcy`` command line (top floor: it uses the library, nothing uses it).

Commands: ``demo`` (the teaching notebook's lesson, reproduced), ``fit`` (a ratings file to a model file),
``predict``, ``recommend`` and ``info`` (using a model file).

Exit status: 0 on success, 2 on a mistake of the user's (a missing or
malformed file, an unknown column, a bad option: one line on stderr, no
traceback), 130 when interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ._cli_algorithms import ALGORITHMS, model_from_options, resolve_algorithm
from ._cli_report import (EpochReporter, PhaseProgress, fit_phases, phase_line, plot_curves,
                          plural)
from ._cli_types import (_column_list, _fraction, _non_negative_float, _positive_float,
                         _positive_int, _separator)

__all__ = ["main", "build_parser"]

#: Exit status of a user's mistake (as argparse's own errors).
EXIT_USAGE = 2
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A mistake of the user's: printed as one line on stderr, exit status 2."""


def _cmd_demo(args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .datasets import lesson_problem
    from .model import MatrixFactorization
    from .plotting import plot_matrix

    R, U0, V0 = lesson_problem()
    n_observed = int((~__import__("numpy").isnan(R)).sum())
    print(f"The lesson: a {R.shape[0]} x {R.shape[1]} rank-3 matrix, {n_observed} entries "
          "observed; SGD with k=3, lr=0.05, reg=0.01, 200 epochs, sequential updates.")
    model = MatrixFactorization(n_factors=3, n_epochs=200, learning_rate=0.05,
                                regularization=0.01, biased=False, shuffle=False,
                                update="sequential", dtype="float64")
    model.fit(R, user_factors=U0, item_factors=V0)
    for epoch, mse in enumerate(model.history_["train_mse"], start=1):
        if epoch == 1 or epoch % args.every == 0:
            print(f"epoch {epoch:4d}  MSE {mse:.9f}")
    print(f"final MSE {model.history_['train_mse'][-1]!r}")

    os.makedirs(args.out, exist_ok=True)
    loss_path = os.path.join(args.out, "loss.png")
    ax = model.plot_loss()
    ax.figure.tight_layout()
    ax.figure.savefig(loss_path, dpi=100)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    plot_matrix(R, ax=left, title="Observed ratings (blank = unknown)")
    model.plot_reconstruction(ax=right)
    fig.tight_layout()
    recon_path = os.path.join(args.out, "reconstruction.png")
    fig.savefig(recon_path, dpi=100)
    print(f"wrote {loss_path} and {recon_path}")
    return 0



# -- shared helpers ---------------------------------------------------------------

def _describe(exc):
    """One line for an exception the user caused."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename!r}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _check_writable(path, what, inputs=()):
    """Fail before a long computation, not after, if ``path`` cannot be written.

    ``inputs``: (path, what) of the files this command reads (or writes
    besides): writing ``path`` over one of them would destroy it.
    """
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise UsageError(f"{what} {path!r} is a directory")
    for other, other_what in inputs:
        if other and _same_file(path, other):
            raise UsageError(f"{what} {path!r} is the {other_what} {other!r}: writing it "
                             f"would destroy the {other_what}; choose another name")
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write {what} {path!r}: directory {directory!r} does not exist")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"cannot write {what} {path!r}: directory {directory!r} is not "
                         "writable")


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file (links and relative paths included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def _load_model(path):
    from .io import load_model

    return load_model(path)  # whichever model kind the file records


def _ids_from_text(values, known, what, error=None):
    """Ids typed as text, converted to the model's id type (integers or strings).

    ``values`` is a pandas Series of strings (or a list). ``error(row, message)``
    builds the exception for a bad row; without it a UsageError names the value.
    """
    import numpy as np
    import pandas as pd

    from ._ratings_file import shown

    series = pd.Series(values, dtype=str)
    if known.dtype.kind in "US":
        return series.to_numpy(dtype=str)  # text ids match exactly
    series = series.str.strip()
    try:
        return series.to_numpy().astype(known.dtype)
    except (ValueError, OverflowError, TypeError):
        pass
    plain = series.str.fullmatch(r"[+-]?[0-9]+").to_numpy(dtype=bool)
    if not plain.all():
        row = int(np.flatnonzero(~plain)[0])
        message = (f"{what} {shown(series.iloc[row])} is not an integer, but the model's "
                   f"{what}s are integers")
    else:  # integers the model's id type cannot hold
        limits = np.iinfo(known.dtype)
        row = next(j for j, text in enumerate(series.tolist())
                   if not limits.min <= int(text) <= limits.max)
        message = (f"{what} {shown(series.iloc[row])} is outside the range of the model's "
                   f"{what}s ({known.dtype} integers): no such id can be in the model")
    if error is not None:
        raise error(row, message)
    raise UsageError(message)


# -- commands ---------------------------------------------------------------------

def _cmd_fit(args):
    import numpy as np

    from ._state import current
    from .datasets import _read_ratings

    MatrixFactorization = resolve_algorithm(args)
    if args.model:
        _check_writable(args.model, "model file", [(args.ratings, "ratings file")])
        if not args.model.endswith(".npz"):
            print(f"mfcy: warning: --model {args.model}: a model file is an .npz archive "
                  "(written there all the same; load it with that name)", file=sys.stderr)
    if args.plot:
        _check_writable(args.plot, "plot", [(args.ratings, "ratings file"),
                                            (args.model, "model file")])
    if args.epochs >= _MANY_EPOCHS:
        print(f"mfcy: warning: --epochs {args.epochs:,} is far more than SGD needs (20 to "
              "200 is usual, or --early-stopping); Ctrl-C stops and keeps the last epoch",
              file=sys.stderr, flush=True)
    start = time.perf_counter()
    reading = PhaseProgress(not args.quiet and sys.stdout.isatty(), f"reading {args.ratings}")
    try:
        ratings, report = _read_ratings(args.ratings, sep=args.sep, columns=args.columns,
                                        header=args.header, string_ids=args.string_ids)
    except KeyboardInterrupt:
        print(f"mfcy: interrupted while reading {args.ratings}: no model fitted or saved",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        reading.close()
    read_seconds = time.perf_counter() - start
    n_ratings = len(ratings)
    # What reading decided on the user's behalf is said even with --quiet.
    for note in ([report.header_note] if report.header_note else []) + report.id_notes:
        print(f"mfcy: note: {_cli_words(note)}", file=sys.stderr)
    phases = [("read", read_seconds)]
    kinds = ", ".join(f"{role} ids {'text' if _is_text(ratings[role]) else 'integers'}"
                      for role in ("user", "item"))
    encoded = None
    if not (args.test_fraction or args.validation_fraction or args.early_stopping
            or args.algorithm == "baseline"):
        # Trained on the whole file: the ids are encoded here, once, and the
        # frame let go, so that the fit holds the encoded triples but not the
        # file's columns beside them (0.8 GB less at Netflix size); the ids'
        # counts come with the encoding (a hash count of 10^8 ids takes seconds).
        from ._input import to_encoded

        encode_start = time.perf_counter()
        encoded = to_encoded(ratings)
        phases.append(("encode", time.perf_counter() - encode_start))
        n_users, n_items = encoded.n_users, encoded.n_items
    else:
        n_users, n_items = ratings["user"].nunique(), ratings["item"].nunique()
    if not args.quiet:
        how = {"text": "text", "parquet": "Parquet", "arrow": "Arrow"}[report.format]
        print(f"{args.ratings}: {n_ratings:,} ratings of {n_users:,} "
              f"users and {n_items:,} items ({how} read by "
              f"{report.reader} in {read_seconds:.2f} s; {kinds})", flush=True)
    _warn_absurd_sizes(args, n_users + n_items)
    if encoded is not None:
        ratings = encoded  # what fit (and --refit) trains on
        del encoded
        from ._readers import release_memory

        release_memory()  # the frame's columns that pyarrow allocated
    split_start = time.perf_counter()
    train, test = ratings, None
    if args.test_fraction:
        # Rows, not users or items, are held out: a seeded permutation of the
        # file's rows, the first fraction of it for testing (with seed 0 and
        # 0.1, the reference split of the benchmarks).
        order = np.random.default_rng(args.seed).permutation(n_ratings)
        n_test = int(n_ratings * args.test_fraction)
        if n_test == 0 or n_test == n_ratings:
            raise UsageError(f"--test-fraction {args.test_fraction} of {n_ratings} ratings "
                             "leaves no " + ("test" if n_test == 0 else "training") +
                             " ratings")
        # Each part keeps the file's row order: the model does not depend on
        # it, but a file sorted by user and item then needs no sorting in fit
        # (a third less peak memory on ML-1M).
        test = ratings.iloc[np.sort(order[:n_test])]
        train = ratings.iloc[np.sort(order[n_test:])]
        del order
        if not args.quiet:
            print(f"held out {n_test:,} ratings for testing (seed {args.seed})", flush=True)
    if args.early_stopping and not args.validation_fraction:
        args.validation_fraction = 0.1
        if not args.quiet:
            print("--early-stopping watches a validation set: holding out "
                  "--validation-fraction 0.1 of the training ratings", flush=True)
    validation = None
    if args.validation_fraction:
        # From the training part only (the test ratings stay unseen), seeded
        # apart from the test split.
        order = np.random.default_rng([args.seed, 1]).permutation(len(train))
        n_val = int(len(train) * args.validation_fraction)
        if n_val == 0 or n_val == len(train):
            raise UsageError(f"--validation-fraction {args.validation_fraction} of "
                             f"{len(train)} training ratings leaves no " +
                             ("validation" if n_val == 0 else "training") + " ratings")
        validation = train.iloc[np.sort(order[:n_val])]
        train = train.iloc[np.sort(order[n_val:])]
        del order
        if not args.quiet:
            print(f"held out {n_val:,} ratings for validation", flush=True)
    everything = ratings if args.refit else None
    del ratings  # the full table is not needed beside its parts (unless --refit)
    if test is not None or validation is not None:
        phases.append(("split", time.perf_counter() - split_start))
    model = _fit_model(args, MatrixFactorization, args.epochs, args.early_stopping)
    reporter = EpochReporter(args.epochs, test, args.quiet)
    start = time.perf_counter()
    try:
        model.fit(train, callback=reporter, validation=validation)
    except KeyboardInterrupt:
        reporter.close()
        done = getattr(model, "n_epochs_", 0)
        if not done:
            print("mfcy: interrupted before the first epoch finished; no model saved",
                  file=sys.stderr)
        elif args.model:
            model.save(args.model)
            print(f"mfcy: interrupted: saved the model of epoch {done} of {args.epochs} "
                  f"to {args.model}", file=sys.stderr)
        else:
            print(f"mfcy: interrupted after epoch {done} of {args.epochs} (no --model given: "
                  "nothing saved)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        reporter.close()
    seconds = time.perf_counter() - start
    fitted = fit_phases(model, seconds)
    if phases[-1][0] == "encode" and fitted[0][0] == "encode":
        # The fit's own encoding found the ids encoded: one phase.
        fitted[0] = ("encode", phases.pop()[1] + fitted[0][1])
    phases += fitted
    n_rows = len(train)
    del train  # the model keeps what it needs; matplotlib may come next
    n_train = len(current(model).seen_items)
    if n_train != n_rows:
        n_dup = n_rows - n_train
        print(f"{n_rows:,} ratings -> {n_train:,} distinct (user, item) pairs; {n_dup:,} "
              f"duplicate{'s' if n_dup != 1 else ''} averaged")
    updates = n_train * model.n_epochs_ / max(sum(model.history_["epoch_seconds"]), 1e-12)
    print(f"fitted {plural(model.n_epochs_, 'epoch')} on {n_train:,} ratings "
          f"({len(model.users_):,} users x {len(model.items_):,} items, k={args.factors}) "
          f"in {seconds:.2f} s: {updates / 1e6:.2f} M updates/s")
    if "train_rmse" in model.history_:
        print(f"train RMSE {model.history_['train_rmse'][-1]:.4f}")
    if test is not None:
        rmse, mae, n_fallback = reporter.evaluate(model)
        note = (f" ({n_fallback:,} with a user or item unseen in training, predicted by the "
                "baseline)" if n_fallback else "")
        print(f"test RMSE {rmse:.4f}, MAE {mae:.4f} on {len(test):,} held-out ratings{note}")
    if getattr(model, "best_epoch_", None) is not None and "val_rmse" in model.history_:
        best = model.best_epoch_
        print(f"best validation RMSE {model.history_['val_rmse'][best - 1]:.4f} at epoch "
              f"{best}" + (" (the fitted model is that epoch's)" if args.early_stopping
                           else ""))
    if args.refit:
        epochs = (model.best_epoch_ if args.early_stopping and
                  getattr(model, "best_epoch_", None) else model.n_epochs_)
        del model
        model = _fit_model(args, MatrixFactorization, epochs, False)
        refit_start = time.perf_counter()
        model.fit(everything)
        phases.append(("refit", time.perf_counter() - refit_start))
        print(f"refitted on all {len(everything):,} ratings with {plural(epochs, 'epoch')} "
              f"in {time.perf_counter() - refit_start:.2f} s: the model saved")
        del everything
    elif test is not None or validation is not None:
        held = len(test if test is not None else []) + len(validation if validation is not None
                                                           else [])
        print(f"mfcy: note: the model is trained on {n_rows:,} ratings, without the {held:,} "
              "held out; --refit trains it on all of them with the chosen number of epochs",
              file=sys.stderr)
    if args.model:
        save_start = time.perf_counter()
        model.save(args.model)
        phases.append(("save", time.perf_counter() - save_start))
        print(f"saved the model to {args.model}")
    else:
        print("mfcy: note: no --model given: the fitted model is not saved", file=sys.stderr)
    if args.plot:
        plot_start = time.perf_counter()
        plot_curves(model.history_, reporter.test_rmse, args.plot)
        phases.append(("plot", time.perf_counter() - plot_start))
        print(f"wrote {args.plot}")
    # Where the time went, even with --quiet (a summary line).
    print(phase_line(phases))
    return 0


def _is_text(column):
    import pandas as pd

    return isinstance(column.dtype, pd.CategoricalDtype) or column.dtype.kind in "OUS"


#: Beyond these a fit is almost surely a typo (--factors 100000, --epochs 10**9).
_LARGE_MODEL_BYTES = 1 << 30
_MANY_EPOCHS = 10_000


def _warn_absurd_sizes(args, n_ids):
    """Warn before the fit when the options ask for a huge model of ``n_ids`` users
    and items."""
    size = n_ids * args.factors * (4 if args.dtype == "float32" else 8)
    if size >= _LARGE_MODEL_BYTES:
        print(f"mfcy: warning: --factors {args.factors:,} makes a {size / 1e9:.1f} GB model "
              f"({n_ids:,} users and items x {args.factors:,} factors; 10 to 300 is usual)",
              file=sys.stderr, flush=True)


def _fit_model(args, cls, epochs, early_stopping):
    """The estimator the fit options describe."""
    return model_from_options(args, cls, epochs, early_stopping)


def _read_pairs(args, model):
    """The pairs file as text columns, its user and item positions, and its layout."""
    from ._ratings_file import _DelimitedFile, _refuse_long_lines, _resolve_positions, _role_of

    table = _DelimitedFile(args.pairs, sep=args.sep, what="pairs file")
    _refuse_long_lines(table)  # before pandas tokenizes a gigantic line whole
    fields = table.fields
    if len(fields) < 2:
        raise UsageError(f"{table.where}, line {table.first_number}: {len(fields)} field(s); "
                         "a pairs file needs a user and an item per line (pass --sep if the "
                         "separator is another)")
    header = args.header
    columns = args.columns
    if columns is not None and len(columns) != 2:
        raise UsageError(f"--columns must give 2 columns (user, item), got {len(columns)}")
    if header is None:
        if columns is not None and any(isinstance(c, str) for c in columns):
            header = True
        else:
            # A header names its columns; a data line holds ids of the model.
            roles = [_role_of(f) for f in fields]
            header = "user" in roles and "item" in roles
            if not header and model.users_.dtype.kind not in "US":
                user_at = columns[0] if columns is not None else 0
                header = not fields[user_at].strip().lstrip("-").isdigit()
    names = table.header_names() if header else None
    if columns is None:
        roles = [_role_of(n) for n in names] if names else []
        columns = ([roles.index("user"), roles.index("item")]
                   if "user" in roles and "item" in roles else [0, 1])
    positions = _resolve_positions(columns, ("user", "item"), names, len(fields), table.where)
    frame = table.read(bool(header), dtype=str)
    return table, frame, positions, names


def _cmd_predict(args):
    import numpy as np

    model = _load_model(args.model)
    if args.output:
        _check_writable(args.output, "output file", [(args.model, "model file"),
                                                     (args.pairs, "pairs file")])
    table, frame, (user_at, item_at), names = _read_pairs(args, model)
    users = _ids_from_text(frame[user_at], model.users_, "user id", error=table.error)
    items = _ids_from_text(frame[item_at], model.items_, "item id", error=table.error)
    predictions, fallback = model.predict(users, items, clip=args.clip, return_fallback=True)
    # The model's own precision, printed in the shortest form that round-trips.
    frame["prediction"] = predictions.astype(model.user_factors_.dtype)
    if args.mark_fallback:
        frame["fallback"] = fallback.astype(np.int8)
    if names is not None:
        frame.columns = names + list(frame.columns[len(names):])
    sep = table.sep if table.sep and len(table.sep) == 1 else "\t"
    out = args.output or sys.stdout
    frame.to_csv(out, sep=sep, header=names is not None, index=False)
    if fallback.any():
        print(f"mfcy: note: {int(fallback.sum()):,} of {len(frame):,} pairs have a user or item "
              "unseen in training: predicted by the baseline (global mean + the known bias)",
              file=sys.stderr)
    if args.output:
        print(f"wrote {len(frame):,} predictions to {args.output}")
    return 0


def _cmd_recommend(args):
    import warnings

    import numpy as np

    from .exceptions import UnknownIdWarning

    model = _load_model(args.model)
    user = _ids_from_text([args.user], model.users_, "user id")
    with warnings.catch_warnings():  # an unknown user gets the note below instead
        warnings.simplefilter("ignore", UnknownIdWarning)
        items, scores = model.recommend(user, n=args.n, exclude_seen=not args.include_seen,
                                        clip=not args.no_clip)
    items, scores = items[0], scores[0]
    if not np.isin(user, model.users_)[0]:
        print(f"mfcy: note: user {args.user!r} is not in the model: these are the baseline "
              "recommendations (the best-rated items on average)", file=sys.stderr)
    keep = np.isfinite(scores)
    if not keep.any():
        print(f"mfcy: note: user {args.user!r} has rated every item; nothing left to "
              "recommend (--include-seen lists them all)", file=sys.stderr)
    print("rank\titem\tpredicted_rating")
    for rank, (item, score) in enumerate(zip(items[keep], scores[keep]), start=1):
        print(f"{rank}\t{item}\t{score:.4f}")
    return 0


def _cmd_info(args):
    from ._state import current
    from .io import read_metadata

    meta = read_metadata(args.model)
    model = _load_model(args.model)
    size = os.path.getsize(args.model)

    def kind(ids):
        return "string ids" if ids.dtype.kind in "US" else "integer ids"

    params = model.get_params()
    state = current(model)
    lines = [
        f"model        {type(model).__name__}",
        f"model file   {args.model} ({size / 1e6:.2f} MB, format {meta['format_version']}, "
        f"written by mfcy {meta['mfcy_version']})",
        f"users        {len(model.users_):,} ({kind(model.users_)})",
        f"items        {len(model.items_):,} ({kind(model.items_)})",
        f"ratings      {len(state.seen_items):,} training ratings (kept for recommendations)",
        f"factors      {model.user_factors_.shape[1]} per user and item, "
        f"{model.user_factors_.dtype}",
        f"biases       {'yes' if state.biased else 'no'}; global mean "
        f"{model.global_mean_:.4f}",
        f"rating range {model.rating_range_[0]:g} to {model.rating_range_[1]:g}",
        f"epochs       {model.n_epochs_}" + (
            f"; final train RMSE {model.history_['train_rmse'][-1]:.4f}"
            if model.history_.get("train_rmse") else ""),
        "parameters   " + ", ".join(f"{k}={v!r}" for k, v in params.items()),
    ]
    print("\n".join(lines))
    return 0


def _add_format_options(parser, what):
    parser.add_argument("--sep", type=_separator, default=None,
                        help="field separator (default: detected from the first line: '::', "
                             "tab, ',', ';', '|' or whitespace); '\\t' or 'tab' for a tab")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--header", dest="header", action="store_const", const=True,
                       default=None, help="the first line names the columns")
    group.add_argument("--no-header", dest="header", action="store_const", const=False,
                       help="the first line is data (default: detected)")
    parser.add_argument("--columns", type=_column_list, default=None,
                        help=f"the {what} columns, by header name or 0-based position, comma "
                             "separated (default: the columns named user/userId/..., "
                             "item/movieId/..." + (", rating/score/...," if "rating" in what
                                                   else ",") +
                             " else the first ones)")


class _Parser(argparse.ArgumentParser):
    """argparse's parser, its usage errors one line on stderr (not seven) and exit 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"mfcy: error: {self.prog}: {message} (see '{self.prog} "
                              "--help')\n")


#: The library's parameter names in messages, as the command line spells them.
_CLI_WORDS = (("pass sep=", "pass --sep"),
              ("pass header=False", "pass --no-header"),
              ("string_ids=True", "--string-ids"), ("pass another encoding",
                                                     "convert the file to UTF-8"))


def _cli_words(text):
    for library, cli in _CLI_WORDS:
        text = text.replace(library, cli)
    # Only a message that starts by naming the argument (the separator check's):
    # a field echoed later in a message may itself read "sep=...".
    if text.startswith("sep="):
        text = "--sep " + text[len("sep="):]
    return text.replace(" (mfcy fit --no-header)", "")


def build_parser():
    """The argparse parser of the ``mfcy`` command."""
    parser = _Parser(
        prog="mfcy", description="Matrix factorization for explicit ratings.",
        epilog="Run 'mfcy COMMAND --help' for a command's options.")
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"mfcy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="run the teaching notebook's lesson on its built-in data")
    demo.add_argument("--out", default=".", help="directory for loss.png and reconstruction.png")
    demo.add_argument("--every", type=_positive_int, default=20,
                      help="print the loss every N epochs")
    demo.set_defaults(func=_cmd_demo)

    fit = sub.add_parser(
        "fit", help="fit a model to a ratings file",
        description="Fit a model to a ratings file (CSV, TSV, MovieLens u.data or "
                    "ratings.dat; gzip/bz2/xz ok; Parquet or Arrow/Feather with pyarrow) "
                    "and save it with --model.")
    fit.add_argument("ratings", metavar="RATINGS",
                     help="ratings file: user, item, rating per line (CSV/TSV, gzip/bz2/xz "
                          "ok), or a Parquet file or directory, or an Arrow/Feather file "
                          "(these need pyarrow: pip install 'mfcy[parquet]')")
    fit.add_argument("--model", metavar="OUT.npz", help="where to save the fitted model")
    fit.add_argument("--algorithm", choices=tuple(ALGORITHMS), default="svd",
                     help="the model: svd (MatrixFactorization, default), svdpp (SVDpp), "
                          "nmf (NMF) or baseline (BaselineOnly); options left out take "
                          "that model's defaults")
    fit.add_argument("--factors", type=_positive_int, default=None, metavar="K",
                     help="latent factors per user and item (default 100 for svd)")
    fit.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                     help="passes over the ratings (default 20 for svd)")
    fit.add_argument("--lr", type=_positive_float, default=None,
                     help="learning rate (default 0.005 for svd)")
    fit.add_argument("--reg", type=_non_negative_float, default=None,
                     help="L2 regularization (default 0.02 for svd; nmf, baseline: "
                          "both the user and the item regularization)")
    fit.add_argument("--no-bias", action="store_true",
                     help="no global mean or user/item biases: predict plain P Q^T")
    fit.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                     help="precision of the factors (default float32)")
    fit.add_argument("--threads", type=_positive_int, default=None, metavar="T",
                     help="threads (default: all cores; the result is the same for any T)")
    fit.add_argument("--seed", type=int, default=0, metavar="S",
                     help="seed of the initial factors, the visiting order and the test split "
                          "(default 0: the same command gives the same model)")
    fit.add_argument("--test-fraction", type=_fraction, default=None, metavar="F",
                     help="hold out this fraction of the ratings (seeded) and report the "
                          "test RMSE and MAE")
    fit.add_argument("--validation-fraction", type=_fraction, default=None, metavar="F",
                     help="hold out this fraction of the training ratings (seeded) and "
                          "report their RMSE after each epoch")
    fit.add_argument("--early-stopping", action="store_true",
                     help="stop when the validation RMSE stops improving and keep the best "
                          "epoch's model (holds out --validation-fraction 0.1 by default)")
    fit.add_argument("--patience", type=_positive_int, default=3, metavar="N",
                     help="epochs without improvement before --early-stopping stops "
                          "(default 3)")
    fit.add_argument("--refit", action="store_true",
                     help="after the held-out evaluation, train on all the ratings with the "
                          "number of epochs found (the best with --early-stopping) and save "
                          "that model")
    fit.add_argument("--plot", metavar="PNG", help="save the RMSE curves to this image")
    fit.add_argument("--quiet", "-q", action="store_true",
                     help="no per-epoch output, only the summary")
    fit.add_argument("--string-ids", action="store_true",
                     help="keep ids as text even when they look like integers")
    _add_format_options(fit, "user, item and rating")
    fit.set_defaults(func=_cmd_fit)

    predict = sub.add_parser(
        "predict", help="predict the ratings of (user, item) pairs",
        description="Predict the rating of each (user, item) line of PAIRS; writes PAIRS "
                    "with a 'prediction' column added. Unknown users or items get the "
                    "baseline (global mean + the known bias).")
    predict.add_argument("model", metavar="MODEL", help="a model file from 'mfcy fit'")
    predict.add_argument("pairs", metavar="PAIRS", help="CSV/TSV of user, item per line "
                                                        "(other columns are kept)")
    predict.add_argument("--output", "-o", metavar="FILE", help="write here (default stdout)")
    predict.add_argument("--clip", action="store_true",
                         help="clip predictions to the training ratings' range")
    predict.add_argument("--mark-fallback", action="store_true",
                         help="add a 'fallback' column: 1 where the user or item was unseen "
                              "in training")
    _add_format_options(predict, "user and item")
    predict.set_defaults(func=_cmd_predict)

    recommend = sub.add_parser(
        "recommend", help="top-N items for a user",
        description="The N items with the highest predicted rating for a user, leaving out "
                    "the items the user rated in training.")
    recommend.add_argument("model", metavar="MODEL", help="a model file from 'mfcy fit'")
    recommend.add_argument("--user", required=True, metavar="ID", help="the user's id")
    recommend.add_argument("-n", type=_positive_int, default=10,
                           help="how many items (default 10)")
    recommend.add_argument("--include-seen", action="store_true",
                           help="keep the items the user rated in training")
    recommend.add_argument("--no-clip", action="store_true",
                           help="show the raw scores, not clipped to the rating scale")
    recommend.set_defaults(func=_cmd_recommend)

    info = sub.add_parser("info", help="describe a model file")
    info.add_argument("model", metavar="MODEL", help="a model file from 'mfcy fit'")
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv=None):
    """Entry point of the ``mfcy`` command; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 on a user's mistake (one line on stderr), 130 on
        Ctrl-C.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("mfcy: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `mfcy predict ... | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (UsageError, ValueError, OSError, ImportError) as exc:
        # ValueError is the library's contract for bad input (files, ids,
        # hyperparameters, model files); OSError covers files that cannot be
        # read or written; ImportError an optional dependency (pyarrow for
        # Parquet) that is not installed, its message saying what to install.
        print(f"mfcy: error: {_cli_words(_describe(exc))}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
