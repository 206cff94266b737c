"""Shared test set-up: a non-interactive matplotlib backend, small helpers."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
