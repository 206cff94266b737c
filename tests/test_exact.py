"""The exact sum behind the global mean: the same bits however the ratings are split."""

from fractions import Fraction

import numpy as np

from mfcy._exact import exact_mean, exact_sum


def test_exact_sum_is_the_exact_rational_sum(rng):
    wild = rng.standard_normal(500) * 10.0 ** rng.integers(-300, 300, 500)
    edge = np.array([1e308, 1e308, -1e308, 5e-324, -5e-324, -0.0, 2.5e-310, 3.0])
    for values in (wild, edge, rng.integers(1, 11, 300) * 0.5, np.zeros(0)):
        assert exact_sum(values) == sum((Fraction(v) for v in values.tolist()), Fraction(0))


def test_exact_mean_does_not_depend_on_order_or_split(rng):
    values = rng.normal(3.5, 1.0, 10_001)
    mean = exact_mean(values)
    assert mean == float(sum(Fraction(v) for v in values.tolist()) / len(values))
    assert exact_mean(rng.permutation(values)) == mean
    parts = np.split(values, [17, 4000, 9999])
    assert float(sum((exact_sum(p) for p in parts), Fraction(0)) / len(values)) == mean


def test_star_ratings_take_the_fast_path_and_agree_with_the_general_one():
    from fractions import Fraction

    import numpy as np

    from mfcy._exact import exact_sum

    rng = np.random.default_rng(3)
    stars = rng.integers(2, 11, 10_000) / 2.0  # 1.0, 1.5, ..., 5.0
    assert exact_sum(stars) == sum(Fraction(float(v)) for v in stars)
    # Not half-integral: the general path, still exact.
    odd = stars + 0.1
    assert exact_sum(odd) == sum(Fraction(float(v)) for v in odd)
    assert exact_sum(odd[:5000]) + exact_sum(odd[5000:]) == exact_sum(odd)


def test_half_units_sum_is_exact_or_declines():
    from mfcy._layout import half_units_sum

    big = np.full(100, 2.0**50) + np.arange(100) * 0.5  # sums past 2**53: int64 is exact
    assert half_units_sum(big) == 2 * sum(Fraction(v) for v in big.tolist())
    assert half_units_sum(np.array([-2.5, 1.0, -0.5])) == -4
    assert half_units_sum(np.zeros(0)) == 0
    assert half_units_sum(np.array([1.0, 0.25])) is None  # not a multiple of 1/2
    assert half_units_sum(np.array([2.0**52 + 0.5])) is None  # twice it reaches 2**53
    assert half_units_sum(np.array([1e308, 1.0])) is None  # twice it overflows
    assert half_units_sum(np.full(2000, 2.0**51)) is None  # the total could leave int64
    assert exact_sum(np.full(2000, 2.0**51)) == 2000 * 2**51  # the general path takes it
