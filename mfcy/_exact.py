"""Exact, order-independent sums of float64 values.

The global mean of the ratings must come out the same to the last bit whether
one process sums all ratings (the local fit) or several workers each sum a
part (:mod:`mfcy.dask`). A float sum depends on the order of its terms, and
numpy's pairwise summation on how the array is split; the exact sum does not.

Every finite float64 is an integer multiple of 2**-1126 (with the mantissa
scaled to 53 bits), so the sum is computed as an integer: the 53-bit mantissas
are split into two halves of at most 27 bits and summed per binary exponent
with ``np.bincount``, whose float64 accumulators stay exact below 2**53 (hence
the slices of 2**26 values). About ten vectorized passes over the values.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ._extensions import _layout

_HALF = 26
_SLICE = 1 << 26
# frexp's exponent of a finite float64 is >= -1073; x = mantissa * 2**(e - 53).
_EXP_OFFSET = 1073
_SCALE = 53 + _EXP_OFFSET


def exact_sum(values):
    """The exact sum of finite float64 values, as a :class:`fractions.Fraction`.

    Sums of parts add up exactly: ``exact_sum(a) + exact_sum(b) ==
    exact_sum(np.concatenate([a, b]))`` whatever the split or order.
    """
    x = np.ascontiguousarray(values, dtype=np.float64).ravel()
    # The common case first: whole or half stars. Twice each value is then an
    # integer, summed exactly as an int64 in one compiled pass.
    doubled_sum = _layout.half_units_sum(x)
    if doubled_sum is not None:
        return Fraction(doubled_sum, 2)
    total = 0
    for start in range(0, len(x), _SLICE):
        part = x[start:start + _SLICE]
        fraction, exponent = np.frexp(part)  # 0.5 <= |fraction| < 1
        # Scaling by powers of two is exact: the integral 53-bit mantissa is
        # high * 2**26 + low with |high| <= 2**27 and 0 <= low < 2**26.
        high = np.floor(fraction * float(1 << (53 - _HALF)))
        low = fraction * float(1 << 53) - high * float(1 << _HALF)
        shift = exponent.astype(np.int64) + _EXP_OFFSET
        high_sums = np.bincount(shift, weights=high)
        low_sums = np.bincount(shift, weights=low)
        for s in np.flatnonzero((high_sums != 0) | (low_sums != 0)).tolist():
            total += ((int(high_sums[s]) << _HALF) + int(low_sums[s])) << s
    return Fraction(total, 1 << _SCALE)


def exact_mean(values):
    """The mean of float64 values, correctly rounded from their exact sum."""
    n = len(values)
    if n == 0:
        raise ValueError("the mean of no values is undefined")
    return float(exact_sum(values) / n)
