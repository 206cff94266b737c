"""Typing stub of the compiled set-up passes :mod:`mfcy._layout` (sorts, id lookups,
the scan of text files; see ``_layout.pyx``)."""

import numpy as np
import numpy.typing as npt

def sort_by_user_item(
    users: npt.NDArray[np.integer], items: npt.NDArray[np.integer],
    ratings: npt.NDArray[np.float64], n_users: int, n_items: int,
) -> tuple[npt.NDArray[np.integer], npt.NDArray[np.integer], npt.NDArray[np.float64], int]: ...
def bucket_by_block(
    users: npt.NDArray[np.integer], items: npt.NDArray[np.integer],
    ratings: npt.NDArray[np.floating], user_block: npt.NDArray[np.int64],
    item_block: npt.NDArray[np.int64], n_blocks: int,
) -> tuple[npt.NDArray[np.integer], npt.NDArray[np.integer], npt.NDArray[np.floating],
           npt.NDArray[np.int64]]: ...
def count_keys(keys: npt.NDArray[np.integer], n: int) -> npt.NDArray[np.int64]: ...
def half_units_sum(values: npt.NDArray[np.float64]) -> int | None: ...
def encode_dense_ids(
    ids: npt.NDArray[np.integer], max_span: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.integer]] | None: ...
def block_layout(
    users: npt.NDArray[np.integer], items: npt.NDArray[np.integer],
    ratings: npt.NDArray[np.float64], user_block: npt.NDArray[np.int64],
    item_block: npt.NDArray[np.int64], n_blocks: int, out_ratings: npt.NDArray[np.floating],
) -> tuple[npt.NDArray[np.integer], npt.NDArray[np.integer], npt.NDArray[np.int64]] | None: ...
def items_by_user(
    users: npt.NDArray[np.integer], items: npt.NDArray[np.integer], n_users: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.integer]]: ...
def scan_text(
    buf: bytearray, begin: int, end: int, run: int, max_line: int, zeros: bool, last: bool,
    extra_starts: bytes = ...,
) -> tuple[bool, int, int]: ...
