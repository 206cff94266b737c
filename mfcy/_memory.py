"""Factor matrices on 64-byte boundaries.

The kernel loads and stores factor rows in 16- or 32-byte vectors. numpy
aligns large arrays to 16 bytes only, and a 32-byte vector that starts 16 bytes
into a cache line straddles two lines, which costs a second access on every
such load and store (the epoch times with and without aligned matrices are
in benchmarks/README.md, "Measurements behind the code").
"""

from __future__ import annotations

import numpy as np

CACHE_LINE = 64


def empty_aligned(shape, dtype, alignment=CACHE_LINE):
    """An uninitialised C-contiguous array whose data starts on an ``alignment`` boundary.

    A view into a slightly larger byte buffer (kept alive by the view).
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buffer = np.empty(nbytes + alignment, dtype=np.uint8)
    offset = -buffer.ctypes.data % alignment
    return buffer[offset:offset + nbytes].view(dtype).reshape(shape)
