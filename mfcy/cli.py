"""The ``mfcy`` command line (top floor: it uses the library, nothing uses it)."""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["main"]


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


def build_parser():
    """The argparse parser of the ``mfcy`` command."""
    parser = argparse.ArgumentParser(
        prog="mfcy", description="Matrix factorization for explicit ratings.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"mfcy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="run the teaching notebook's lesson on its built-in data")
    demo.add_argument("--out", default=".", help="directory for loss.png and reconstruction.png")
    demo.add_argument("--every", type=int, default=20, help="print the loss every N epochs")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None):
    """Entry point of the ``mfcy`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"mfcy: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
