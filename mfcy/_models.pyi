"""Typing stub of the compiled SVD++, NMF and baseline kernels :mod:`mfcy._models`."""

import numpy as np
import numpy.typing as npt

_R = npt.NDArray[np.floating]
_I = npt.NDArray[np.integer]
_P = npt.NDArray[np.int64]

def svdpp_implicit_sums(Y: _R, user_ptr: _P, user_items: _I, S: _R, n_threads: int = ...) -> None: ...
def svdpp_epoch(
    P: _R, Q: _R, Y: _R, user_bias: _R, item_bias: _R, user_ptr: _P, user_items: _I,
    user_ratings: _R, user_order: _P, global_mean: float, learning_rate: float,
    regularization: float, bias_regularization: float, implicit_learning_rate: float,
    implicit_regularization: float, biased: bool, n_lanes: int = ..., lane_ratings: int = ...,
    n_threads: int = ...,
) -> float: ...
def svdpp_predict(
    P: _R, Q: _R, S: _R, user_bias: _R, item_bias: _R, users: _I, items: _I,
    global_mean: float, biased: bool, out: _R,
) -> None: ...
def nmf_epoch(
    P: _R, Q: _R, user_bias: _R, item_bias: _R, user_ptr: _P, user_items: _I,
    user_ratings: _R, item_ptr: _P, item_users: _I, item_ratings: _R, global_mean: float,
    user_regularization: float, item_regularization: float, biased: bool, n_threads: int,
) -> float: ...
def nmf_predict(
    P: _R, Q: _R, user_bias: _R, item_bias: _R, users: _I, items: _I,
    global_mean: float, biased: bool, out: _R,
) -> None: ...
def baseline_sgd_epoch(
    user_bias: _R, item_bias: _R, users: _I, items: _I, ratings: _R, chunk_bounds: _P,
    block_chunks: _P, visit_order: _P, strata: _P, stride: int, global_mean: float,
    learning_rate: float, regularization: float, n_threads: int,
) -> float: ...
def baseline_als_epoch(
    user_bias: _R, item_bias: _R, user_ptr: _P, user_items: _I, user_ratings: _R,
    item_ptr: _P, item_users: _I, item_ratings: _R, global_mean: float,
    user_regularization: float, item_regularization: float, n_threads: int,
) -> float: ...
def baseline_predict(
    user_bias: _R, item_bias: _R, users: _I, items: _I, global_mean: float, out: _R,
) -> None: ...
