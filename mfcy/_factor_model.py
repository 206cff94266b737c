"""What every factor model shares on its fitted state: its plots, saving and loading."""

from __future__ import annotations

from ._state import current

__all__ = ["FactorModelMixin"]


class FactorModelMixin:
    """Plots, :meth:`save` and :meth:`load` of a fitted factor model (a mixin of the estimators)."""

    def plot_loss(self, ax=None):
        """Plot the training MSE per epoch.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw; a new figure if omitted.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from .plotting import plot_loss

        state = current(self)
        return plot_loss(state.history, ax=ax)

    def plot_reconstruction(self, ax=None):
        """Heat map of :meth:`reconstruct`.

        Parameters
        ----------
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib.axes.Axes
        """
        from .plotting import plot_matrix

        return plot_matrix(self.reconstruct(), ax=ax, title="Reconstructed ratings")

    # -- saving and loading --------------------------------------------------------

    def save(self, path):
        """Write the fitted model to one ``.npz`` file (no pickle inside).

        The file holds the factors, biases, id maps, hyperparameters,
        ``history_``, the training interactions and the mfcy version; see
        :mod:`mfcy.io` for the format. It is written under a temporary name and
        renamed into place, so an interrupted save leaves no truncated file.

        Parameters
        ----------
        path : str, os.PathLike or binary file object
            Used as given (no ``.npz`` is appended).

        Examples
        --------
        >>> import numpy as np, os, tempfile
        >>> from mfcy import MatrixFactorization
        >>> X, y = np.array([["ann", "dune"], ["bob", "dune"]]), np.array([4.0, 2.0])
        >>> model = MatrixFactorization(n_factors=2, n_epochs=3, random_state=0).fit(X, y)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
        >>> model.save(path)
        >>> again = MatrixFactorization.load(path)
        >>> bool((again.predict(X) == model.predict(X)).all()), again.users_.tolist()
        (True, ['ann', 'bob'])
        """
        from .io import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`.

        The archive is opened with ``allow_pickle=False``: nothing in it is
        ever unpickled. The format version, a SHA-256 checksum and every shape
        and index range are checked.

        Parameters
        ----------
        path : str, os.PathLike or binary file object

        Returns
        -------
        MatrixFactorization
            Fitted; its predictions are bit-identical to the saved model's.

        Raises
        ------
        mfcy.io.ModelFileError
            (a ``ValueError``) If the file is missing, truncated, modified, of
            an unsupported format version, or holds a pickled object.
        """
        from .io import load_model

        return load_model(path, cls)
