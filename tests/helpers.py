"""Helpers shared by the tests (tests/ is on sys.path via pytest's pythonpath)."""

import numpy as np


def random_triples(rng, n_users, n_items, density, scale=1.0):
    """A random sparse problem as canonical (users, items, ratings) arrays."""
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    ratings = scale * rng.standard_normal(len(users)) + 3.0
    return users, items, ratings


#: Examples run by the property-based tests in this session, per test:
#: [examples, examples that ended in a valid result] (printed by conftest.py).
FUZZ_EXAMPLES = {}


def count_fuzz_example(name, valid=None):
    """Count one hypothesis example of the fuzz test ``name``.

    ``valid=True`` counts it (again) as one that returned a result rather than
    a clear error: call once on entry, once more with ``valid=True`` on success.
    """
    counts = FUZZ_EXAMPLES.setdefault(name, [0, 0])
    if valid:
        counts[1] += 1
    else:
        counts[0] += 1
