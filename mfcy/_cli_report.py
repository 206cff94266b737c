"""What ``mfcy fit`` prints and draws while and after it trains: progress, curves, counts."""

from __future__ import annotations

import os
import sys

__all__ = ["EpochReporter", "PhaseProgress", "phase_line", "plot_curves", "plural"]


class EpochReporter:
    """The ``callback`` of ``fit``: held-out metrics and progress after each epoch.

    A tqdm bar (with the per-epoch lines printed above it) when stdout is a
    terminal, one plain line per epoch otherwise, nothing with ``--quiet``.
    """

    def __init__(self, n_epochs, test, quiet):
        self.n_epochs = n_epochs
        self.test = test
        self.test_rmse, self.test_mae = [], []
        self.mode = "quiet" if quiet else ("bar" if sys.stdout.isatty() else "lines")
        self.bar = None
        # Until the first epoch ends, fit encodes the ids and lays the ratings
        # out (a minute at Netflix size): a ticking line says so.
        self.setup = PhaseProgress(self.mode == "bar", "encoding ids, laying out the ratings")

    def _epoch_bar(self):
        from tqdm import tqdm

        self.setup.close()
        # mininterval=0: an epoch is rare enough to redraw the bar after each.
        self.bar = tqdm(total=self.n_epochs, unit="epoch", file=sys.stdout, mininterval=0,
                        **_tqdm_size())

    def evaluate(self, model):
        """(RMSE, MAE, number of fallback predictions) on the held-out ratings."""
        import numpy as np

        frame = self.test
        predictions, fallback = model.predict(frame, return_fallback=True)
        errors = predictions - frame["rating"].to_numpy()
        return (float(np.sqrt(np.mean(errors ** 2))), float(np.mean(np.abs(errors))),
                int(fallback.sum()))

    def __call__(self, model, epoch, history):
        parts = [f"epoch {epoch:{len(str(self.n_epochs))}d}/{self.n_epochs}"]
        if "train_rmse" in history:
            parts.append(f"train RMSE {history['train_rmse'][-1]:.4f}")
        if "val_rmse" in history:
            parts.append(f"val RMSE {history['val_rmse'][-1]:.4f}")
        if self.test is not None:
            rmse, mae, _ = self.evaluate(model)
            self.test_rmse.append(rmse)
            self.test_mae.append(mae)
            parts.append(f"test RMSE {rmse:.4f}  MAE {mae:.4f}")
        parts.append(f"{history['epoch_seconds'][-1]:.2f} s")
        line = "  ".join(parts)
        if self.mode == "bar":
            if self.bar is None:
                self._epoch_bar()
            self.bar.write(line, file=sys.stdout)
            self.bar.update(1)
        elif self.mode == "lines":
            print(line, flush=True)

    def close(self):
        self.setup.close()
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _tqdm_size():
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except (OSError, ValueError):
        size = os.terminal_size((0, 0))
    sized = size.columns > 0 and size.lines > 0
    # A terminal that reports no size (a bare pty) would hide the bar: give it 80 x 24.
    return dict(dynamic_ncols=sized, ncols=None if sized else 80, nrows=None if sized else 24)


class PhaseProgress:
    """A line on the terminal naming a phase that has no steps to count (reading a
    file, laying out the ratings) and its elapsed time, redrawn every half second
    by a daemon thread until :meth:`close`; nothing when not ``enabled``."""

    def __init__(self, enabled, what):
        self.bar = None
        if not enabled:
            return
        import threading

        from tqdm import tqdm

        self.bar = tqdm(total=None, desc=what, file=sys.stdout, leave=False,
                        bar_format="{desc} [{elapsed}]", **_tqdm_size())
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def _tick(self):
        while not self._done.wait(0.5):
            self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self._done.set()
            self._thread.join()
            self.bar.close()
            self.bar = None


def plot_curves(history, test_rmse, path):
    """Train (and test) RMSE per epoch, drawn to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    train = history.get("train_rmse", [])
    ax.plot(range(1, len(train) + 1), train, label="train RMSE")
    if test_rmse:
        ax.plot(range(1, len(test_rmse) + 1), test_rmse, label="test RMSE")
    ax.set_title("Matrix factorization: RMSE per epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE (rating units)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plural(count, word):
    """ "1 epoch", "2 epochs". """
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def phase_line(phases):
    """``phases: read 1.20 s, encode 0.31 s, ...; total 2.10 s`` of (name, seconds) pairs."""
    parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases)
    return f"phases: {parts}; total {sum(seconds for _, seconds in phases):.2f} s"


def fit_phases(model, fit_seconds):
    """The (name, seconds) phases of ``model.fit``: its ``fit_phases_`` when it times
    them (the rest of the call, if any, as ``other``), else the whole call as ``fit``."""
    phases = getattr(model, "fit_phases_", None)
    if not phases:
        return [("fit", fit_seconds)]
    out = list(phases.items())
    rest = fit_seconds - sum(phases.values())
    if rest >= 0.005:
        out.append(("other", rest))
    return out
