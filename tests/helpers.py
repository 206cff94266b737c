"""Helpers shared by the tests (tests/ is on sys.path via pytest's pythonpath)."""

import os
import signal

import numpy as np

#: The parameters of a small test model: a few factors and epochs, seeded, one
#: thread (on tiny data thread start-up and barriers would dominate; the
#: factors are the same bits for any thread count).
SMALL_MODEL = dict(n_factors=3, n_epochs=4, random_state=0, n_threads=1)


def small_model(**params):
    """An unfitted :class:`mfcy.MatrixFactorization` with :data:`SMALL_MODEL`'s
    parameters, ``params`` overriding them. A test module that needs other
    defaults binds them once: ``functools.partial(small_model, n_epochs=30)``."""
    from mfcy import MatrixFactorization

    return MatrixFactorization(**{**SMALL_MODEL, **params})


def random_triples(rng, n_users, n_items, density, scale=1.0):
    """A random sparse problem as canonical (users, items, ratings) arrays."""
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    ratings = scale * rng.standard_normal(len(users)) + 3.0
    return users, items, ratings


def write_string_ratings(path, n_users=40, n_items=30, density=0.3, seed=0):
    """A small ratings CSV with string ids (alice, bob, ...; film titles), 1-5 stars.

    Returns the DataFrame written (columns user, item, rating).
    """
    from mfcy.datasets import make_low_rank

    frame = make_low_rank(n_users, n_items, 3, density, random_state=seed, as_frame=True)
    names = ["alice", "bob", "carol", "dave"] + [f"user{j:03d}" for j in range(4, n_users)]
    titles = [f"film {j:02d}" for j in range(n_items)]
    frame["user"] = np.array(names)[frame["user"]]
    frame["item"] = np.array(titles)[frame["item"]]
    frame["rating"] = np.clip(np.round(frame["rating"] + 3), 1, 5)
    frame.to_csv(path, index=False, header=["userId", "movieId", "rating"])
    return frame


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


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


#: Popen keywords for a child that is sent Ctrl-C: SIGINT back to its default
#: in the child. Tests started as a background job (``pytest &``) ignore
#: SIGINT, children inherit that, and Python then leaves it ignored (as mfcy
#: does, on purpose): the child would train on through the test's signal.
SIGINT_DEFAULT = {"preexec_fn": _default_sigint} if os.name == "posix" else {}
