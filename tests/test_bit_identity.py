"""Pinned checksums of small fits: a refactoring must not change a single bit.

The digests were computed on the code before the layered restructuring
(issue 13); any change to the arithmetic, the order of the draws or the
order of the updates shows up here as a different digest.
"""

import hashlib

import numpy as np
import pytest

from mfcy import MatrixFactorization, _sgd, build_info
from mfcy.datasets import make_low_rank


def _problem():
    frame = make_low_rank(60, 40, 4, 0.3, random_state=7, as_frame=True)
    return frame[["user", "item"]].to_numpy(), frame["rating"].to_numpy() + 3.0


def _digest(model):
    h = hashlib.sha256()
    for arr in (model.user_factors_, model.item_factors_, model.user_bias_, model.item_bias_):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(np.float64(model.global_mean_).tobytes())
    h.update(np.asarray(model.history_["sgd_mse"], dtype=np.float64).tobytes())
    return h.hexdigest()


CASES = {
    "default": {},
    "unbiased": {"biased": False},
    "float64": {"dtype": "float64"},
    "two_threads": {"n_threads": 2},
    "serial": {"shuffle": False},
    "sequential_float64": {"update": "sequential", "dtype": "float64", "shuffle": False},
    "no_loss": {"track_loss": False, "n_blocks": 3},
    "early_stopping": {"early_stopping": True, "n_iter_no_change": 1, "learning_rate": 0.05},
    "warm_start": {"warm_start": True},
}

def fitted(name):
    """The model of case ``name``, fitted as when the digests were pinned."""
    X, y = _problem()
    model = MatrixFactorization(n_factors=5, n_epochs=7, random_state=3, **CASES[name])
    if name == "early_stopping":
        model.fit(X[::2], y[::2], validation=(X[1::2], y[1::2]))
    elif name == "warm_start":
        model.fit(X, y)
        model.set_params(n_epochs=3).fit(X, y)
    else:
        model.fit(X, y)
    return model


# Per copy of the compiled loops: the AVX2+FMA copy and the baseline one agree
# to rounding, not to the bit (MFCY_ISA=baseline selects the baseline copy).
# On an AVX-512F CPU the import selects "avx512f", but these fits have 5 factors,
# below mfcy._sgd.avx512_min_k(): the AVX2+FMA copy runs them, so its digests
# hold (checked when they were added; at k >= the threshold the AVX-512F copy
# rounds its own way and nothing here pins it).
PINNED = {
    "avx2+fma": {
        "default":
            "2075b9a24fb943ebadb05dd4c2d02f1beac948d0b293e225064091b893bbaef1",
        "early_stopping":
            "c5aef98a2267e081e504603b5222737264b69b26c3157697a7f13417ba5b9c95",
        "float64":
            "936003d92a1ebbfffc7affc61c642631941b42b71e23281df85aa05264b3a8f2",
        "no_loss":
            "2766c26d73cefe24dd75aa464de135761caad47ba7e9cf187fac070d90a68232",
        "sequential_float64":
            "a4ab247bf07c07acd7592439f838a6cc475c1ae8f574990ec3db4def5821d673",
        "serial":
            "97df36aff34eaac9e798fc5376f82b91c442a339b955b06ac3a8caae694bc99f",
        "two_threads":
            "2075b9a24fb943ebadb05dd4c2d02f1beac948d0b293e225064091b893bbaef1",
        "unbiased":
            "d70307b6f6a3eaccac9f8236a6c7893370c97e44b29da8dabc99cd23cf783cce",
        "warm_start":
            "6a5250a74b2587cb2c8a77862dae9d406a90208bcdef9f511550fea37ea011ea",
    },
    "baseline": {
        "default":
            "5d05152dc9bfedefe0a2a9d4bfa7155d8193621ee227cff4271bead9d6ee7a23",
        "early_stopping":
            "6daa5fe56a3a32d4c0055052f864a9ccd533978ced2c14b4d956c914b37288fb",
        "float64":
            "75d7094c63a29fd830bd4ee09e7faf98b85a80a372e7aa3d3e8acd1a118c6672",
        "no_loss":
            "0e10345cd1c0193030fb8dfd50a1b680ccc4fb8480feffe7180a5b8d62f665ac",
        "sequential_float64":
            "bd7bba2c3ca6678cc45baf2bbe30eea07cf34fc79dcbe6866a5dbfb48a62a670",
        "serial":
            "05117ca423c02a8c887d147008a75b40653316c7f47f2fead51a9319c91db611",
        "two_threads":
            "5d05152dc9bfedefe0a2a9d4bfa7155d8193621ee227cff4271bead9d6ee7a23",
        "unbiased":
            "9df32bb1c6964e49e7d7c8758e4cf7730b95b5114315927785fb3f688e4255fd",
        "warm_start":
            "75bfc4171eeead3b3f8326f1fa3bc2ce2956564c1addf8421632843c5987c1fe",
    },
}


PINNED["avx512f"] = PINNED["avx2+fma"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_small_fit_is_bit_identical_to_the_pinned_digest(name):
    info = build_info()
    if info["debug_build"] or info["sanitizers"]:
        # The digests are of the release build (-O3); the debug and sanitizer
        # builds compile the loops at -O1, where gcc fuses fewer multiply-adds.
        pytest.skip("digests are pinned for release builds; this is a debug/sanitizer build")
    if not info["compiler"].startswith("gcc"):
        # Another compiler schedules and fuses the multiply-adds its own way: the
        # same code rounds differently (clang 14 differs here even with
        # -ffp-contract=fast). The digests pin gcc's release build, which CI runs.
        pytest.skip(f"digests are pinned for gcc builds, not {info['compiler']}")
    isa = _sgd.vector_isa(n_factors=5)  # the copy these fits run
    if isa not in PINNED:
        pytest.skip(f"no digests pinned for the {isa} loops")
    assert _digest(fitted(name)) == PINNED[isa][name]
