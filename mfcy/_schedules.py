"""Learning-rate schedules: their default rates and the state the adaptive one keeps.

``"constant"`` steps every update with ``learning_rate``. ``"adagrad"`` is
LIBMF's per-row AdaGrad (Chin et al., PAKDD 2015; the rule is in the kernel,
``mfcy/_sgd_range.h``, and documented in :class:`mfcy.MatrixFactorization`):
one accumulated squared gradient per user row and per item row.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_LEARNING_RATES", "DEFAULT_INIT_STDS", "initial_accumulators"]

#: ``learning_rate=None`` means this rate for each ``learning_rate_schedule``
#: (benchmarks/schedules.py measured the adagrad one; the constant one is the
#: historical default, kept so that earlier results stay reproducible).
DEFAULT_LEARNING_RATES = {"constant": 0.005, "adagrad": 0.05}

#: ``init_std=None`` means this standard deviation of the initial factors
#: (measured in the same script: 0.01 is better for both schedules, but the
#: constant one keeps its historical 0.1 so that default fits stay bit-identical).
DEFAULT_INIT_STDS = {"constant": 0.1, "adagrad": 0.01}


def initial_accumulators(schedule, n_users, n_items, dtype):
    """The (user, item) accumulators a fresh fit of ``schedule`` starts from, or None.

    1 for every row, as LIBMF starts them: a row's first step is the full
    learning rate.
    """
    if schedule == "constant":
        return None
    return np.ones(n_users, dtype=dtype), np.ones(n_items, dtype=dtype)
