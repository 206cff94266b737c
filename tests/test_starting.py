"""The starting factors: drawn by blocks of rows, the same numbers as one draw."""

import numpy as np
import pytest

import mfcy._starting as starting


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("block_values", [1, 7, 30, 10**6])
def test_drawing_by_blocks_gives_the_numbers_of_one_draw(monkeypatch, dtype, block_values):
    monkeypatch.setattr(starting, "DRAW_BLOCK_VALUES", block_values)
    params = {"dtype": dtype, "init_std": 0.3}
    used = np.random.default_rng(4)
    drawn = starting.initial_factors(None, (23, 5), "user_factors", used, params)
    rng = np.random.default_rng(4)
    expected = (rng.standard_normal((23, 5)) * 0.3).astype(dtype)
    assert drawn.dtype == np.dtype(dtype)
    assert drawn.tobytes() == expected.tobytes()
    # The generator is left where one draw would leave it.
    assert used.standard_normal() == np.random.default_rng(4).standard_normal(23 * 5 + 1)[-1]


def test_the_float64_draw_stays_within_a_block(monkeypatch):
    """The temporary float64 block is what DRAW_BLOCK_VALUES says, not the whole matrix."""
    sizes = []
    real = np.random.Generator.standard_normal

    class Spy:
        def __init__(self, rng):
            self.rng = rng

        def standard_normal(self, size):
            sizes.append(int(np.prod(size)))
            return real(self.rng, size)

    monkeypatch.setattr(starting, "DRAW_BLOCK_VALUES", 100)
    starting.initial_factors(None, (1000, 10), "user_factors", Spy(np.random.default_rng(0)),
                             {"dtype": "float32", "init_std": 0.1})
    assert max(sizes) == 100 and sum(sizes) == 10_000
