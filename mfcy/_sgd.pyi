"""Typing stub of the compiled kernel :mod:`mfcy._sgd` (see ``_sgd.pyx``)."""

import numpy as np
import numpy.typing as npt

def openmp_enabled() -> bool: ...
def debug_build() -> bool: ...
def sanitizers() -> str: ...
def vector_isa(n_factors: int | None = ...) -> str: ...
def avx512_min_k() -> int: ...
def kernel_path() -> str: ...
def compiler() -> str: ...
def _set_vector_isa(name: str, avx512_min_k: int | None = ...) -> str: ...
def sgd_epoch(
    P: npt.NDArray[np.floating], Q: npt.NDArray[np.floating],
    user_bias: npt.NDArray[np.floating], item_bias: npt.NDArray[np.floating],
    users: npt.NDArray[np.integer], items: npt.NDArray[np.integer],
    ratings: npt.NDArray[np.floating], chunk_bounds: npt.NDArray[np.int64],
    block_chunks: npt.NDArray[np.int64], visit_order: npt.NDArray[np.int64],
    strata: npt.NDArray[np.int64], stride: int, global_mean: float, learning_rate: float,
    regularization: float, bias_regularization: float, biased: bool, sequential: bool,
    n_threads: int,
    user_accumulator: npt.NDArray[np.floating] | None = ...,
    item_accumulator: npt.NDArray[np.floating] | None = ...,
) -> float: ...
def error_sums(
    P: npt.NDArray[np.floating], Q: npt.NDArray[np.floating],
    user_bias: npt.NDArray[np.floating], item_bias: npt.NDArray[np.floating],
    users: npt.NDArray[np.integer], items: npt.NDArray[np.integer],
    ratings: npt.NDArray[np.floating], global_mean: float, biased: bool, n_threads: int,
) -> tuple[float, float]: ...
def predict_pairs(
    P: npt.NDArray[np.floating], Q: npt.NDArray[np.floating],
    user_bias: npt.NDArray[np.floating], item_bias: npt.NDArray[np.floating],
    users: npt.NDArray[np.integer], items: npt.NDArray[np.integer],
    global_mean: float, biased: bool, out: npt.NDArray[np.floating],
) -> None: ...
