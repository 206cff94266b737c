"""Helpers shared by the tests (tests/ is on sys.path via pytest's pythonpath)."""

import numpy as np


def random_triples(rng, n_users, n_items, density, scale=1.0):
    """A random sparse problem as canonical (users, items, ratings) arrays."""
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    ratings = scale * rng.standard_normal(len(users)) + 3.0
    return users, items, ratings
