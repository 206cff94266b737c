"""Data to learn from: the lesson's synthetic problem and generated low-rank ratings."""

from __future__ import annotations

import numpy as np

__all__ = ["lesson_problem", "make_low_rank"]


def lesson_problem():
    """The teaching notebook's matrix and initial factors, exactly.

    NumPy's legacy global seed 42, then in the notebook's order: true user
    factors (20×3), true item factors (15×3), the mask ``rand(20, 15) < 0.6``,
    and the initial factors ``0.1 * randn(20, 3)`` and ``0.1 * randn(15, 3)``.
    The global NumPy random state is left as it was.

    Returns
    -------
    R : ndarray of shape (20, 15)
        The low-rank ratings with NaN where unobserved (171 observed).
    U0 : ndarray of shape (20, 3)
        Initial user factors.
    V0 : ndarray of shape (15, 3)
        Initial item factors.

    Examples
    --------
    >>> from mfcy.datasets import lesson_problem
    >>> R, U0, V0 = lesson_problem()
    >>> R.shape, int((~np.isnan(R)).sum())
    ((20, 15), 171)
    """
    # RandomState(42) draws exactly what np.random.seed(42) + np.random.* draw,
    # without touching the caller's global state.
    rs = np.random.RandomState(42)
    num_users, num_items, k = 20, 15, 3
    true_U = rs.randn(num_users, k)
    true_V = rs.randn(num_items, k)
    R_full = true_U @ true_V.T
    mask = rs.rand(num_users, num_items) < 0.6
    R = np.where(mask, R_full, np.nan)
    U0 = 0.1 * rs.randn(num_users, k)
    V0 = 0.1 * rs.randn(num_items, k)
    return R, U0, V0


def make_low_rank(n_users, n_items, n_factors, density, noise=0.0, random_state=None,
                  as_frame=False):
    """Ratings from random low-rank factors, each entry observed with probability ``density``.

    The lesson's generator, generalised: ``R = U Vᵀ (+ noise)`` with standard
    normal ``U`` (n_users × n_factors) and ``V`` (n_items × n_factors).

    Parameters
    ----------
    n_users, n_items, n_factors : int
    density : float in (0, 1]
        Probability that an entry is observed.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to the observed ratings.
    random_state : int, numpy.random.Generator or None
    as_frame : bool, default=False
        Return a pandas DataFrame of (user, item, rating) triples instead of
        the matrix.

    Returns
    -------
    ndarray of shape (n_users, n_items) with NaN for unknown, or DataFrame
    """
    for name, value in (("n_users", n_users), ("n_items", n_items), ("n_factors", n_factors)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(random_state)
    U = rng.standard_normal((n_users, n_factors))
    V = rng.standard_normal((n_items, n_factors))
    mask = rng.random((n_users, n_items)) < density
    R = U @ V.T
    if noise:
        R += noise * rng.standard_normal(R.shape)
    R[~mask] = np.nan
    if not as_frame:
        return R
    import pandas as pd

    users, items = np.nonzero(mask)
    return pd.DataFrame({"user": users, "item": items, "rating": R[users, items]})
