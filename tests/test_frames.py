"""fit(DataFrame), raw ids in predict/recommend, the fallback mask and clipping."""

import numpy as np
import pandas as pd
import pytest

from mfcy.datasets import make_low_rank

from helpers import small_model


@pytest.fixture
def frame():
    frame = make_low_rank(30, 20, 3, 0.4, random_state=2, as_frame=True)
    frame["rating"] += 3
    return frame


def test_frame_fits_exactly_like_pairs(frame, rng):
    shuffled = frame.iloc[rng.permutation(len(frame))]
    by_frame = small_model().fit(shuffled)
    by_pairs = small_model().fit(frame[["user", "item"]].to_numpy(), frame["rating"].to_numpy())
    np.testing.assert_array_equal(by_frame.user_factors_, by_pairs.user_factors_)
    np.testing.assert_array_equal(by_frame.item_factors_, by_pairs.item_factors_)
    np.testing.assert_array_equal(by_frame.users_, by_pairs.users_)
    assert by_frame.users_.dtype == np.int64


def test_column_names_are_configurable(frame):
    renamed = frame.rename(columns={"user": "userId", "item": "movieId", "rating": "stars"})
    renamed["timestamp"] = 0
    model = small_model().fit(renamed, columns=("userId", "movieId", "stars"))
    np.testing.assert_array_equal(model.user_factors_, small_model().fit(frame).user_factors_)
    # Names the command line recognises are found without columns= (issue 15).
    np.testing.assert_array_equal(small_model().fit(renamed).user_factors_,
                                  model.user_factors_)
    unknown = renamed.rename(columns={"userId": "who", "movieId": "what"})
    with pytest.raises(ValueError, match=r"no user column 'user' \(its columns: 'who', "
                                         r"'what', 'stars', 'timestamp'\).*columns="):
        small_model().fit(unknown)
    with pytest.raises(ValueError, match="3 columns"):
        small_model().fit(renamed, columns=("userId", "movieId"))
    with pytest.raises(ValueError, match="columns= names .* cannot be used with y"):
        small_model().fit(frame[["user", "item"]], frame["rating"], columns=("a", "b", "c"))
    with pytest.raises(ValueError, match="cannot be used with a ndarray"):
        small_model().fit(np.ones((3, 3)), columns=("a", "b", "c"))


def test_string_ids_in_a_frame_map_like_pairs():
    names = np.array(["zoe", "ann", "Émile", "bob"])
    films = np.array(["Up", "Alien", "Heat"])
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 4, 40), rng.integers(0, 3, 40)
    ratings = rng.integers(1, 6, 40).astype(float)
    frame = pd.DataFrame({"user": names[users], "item": films[items], "rating": ratings})
    model = small_model().fit(frame)
    assert model.users_.tolist() == sorted(names.tolist())
    assert model.users_.dtype.kind == "U"
    pairs = small_model().fit(np.column_stack([names[users], films[items]]), ratings)
    np.testing.assert_array_equal(model.item_factors_, pairs.item_factors_)
    np.testing.assert_array_equal(model.predict(frame), pairs.predict(frame[["user", "item"]]))
    # Categorical and object columns give the same model.
    cat = frame.astype({"user": "category", "item": object})
    np.testing.assert_array_equal(small_model().fit(cat).user_factors_, model.user_factors_)
    items, _ = model.recommend("ann", n=2, exclude_seen=False)
    assert set(items) <= set(films)


@pytest.mark.parametrize("column,values,dtype,message", [
    ("user", [1, None, 3], object,
     r"user column 'user' has missing values \(first at position 1\)"),
    ("item", ["a", 2, "c"], object, "mix or use unsupported types"),
    ("rating", ["4", "x", "5"], object, "must be numbers"),
    ("rating", [1.0, np.nan, 2.0], float, "rating column 'rating' has missing values"),
    ("user", [0.5, 1.0, 2.0], float, "non-integral"),
])
def test_bad_frame_columns_are_clear_errors(column, values, dtype, message):
    frame = pd.DataFrame({"user": [1, 2, 3], "item": ["a", "b", "c"], "rating": [1.0, 2.0, 3.0]})
    frame[column] = pd.Series(values, dtype=dtype)
    with pytest.raises(ValueError, match=message):
        small_model().fit(frame)


def test_predict_takes_a_ratings_frame_and_returns_fallback_mask(frame):
    model = small_model().fit(frame)
    np.testing.assert_array_equal(model.predict(frame),
                                  model.predict(frame[["user", "item"]].to_numpy()))
    swapped = frame[["item", "user"]]  # named columns win over their order
    np.testing.assert_array_equal(model.predict(swapped), model.predict(frame))
    users = np.array([0, 999, 1, 999])
    items = np.array([0, 0, 999, 999])
    predictions, fallback = model.predict(users, items, return_fallback=True)
    np.testing.assert_array_equal(fallback, [False, True, True, True])
    assert predictions[3] == pytest.approx(model.global_mean_)
    assert predictions[1] == pytest.approx(model.global_mean_ + model.item_bias_[0], rel=1e-6)


def test_clipping_to_the_training_scale_by_default():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, 2]])
    y = np.array([1.0, 5.0, 5.0, 1.0, 3.0])
    model = small_model(n_factors=2, n_epochs=5).fit(X, y)
    assert model.rating_range_ == (1.0, 5.0)
    # Force predictions outside the scale: dot products of +-8.
    model.user_factors_[:] = 2
    model.item_factors_[:] = [[2, 0], [-2, 0], [0, 0.1]]
    raw = model.predict(X, clip=False)
    assert raw.min() < 1.0 and raw.max() > 5.0
    clipped = model.predict(X)
    np.testing.assert_array_equal(clipped, model.predict(X, clip=True))
    np.testing.assert_array_equal(clipped, np.clip(raw, 1.0, 5.0))
    inside = (raw >= 1) & (raw <= 5)
    np.testing.assert_array_equal(clipped[inside], raw[inside])


def test_callback_sees_every_epoch_and_can_stop(frame):
    seen = []

    def callback(model, epoch, history):
        seen.append((epoch, len(history["train_mse"]), model.n_epochs_))
        model.predict(frame.head())  # the model is usable inside the callback
        return epoch < 3

    model = small_model(n_epochs=10).fit(frame, callback=callback)
    assert seen == [(1, 1, 1), (2, 2, 2), (3, 3, 3)]
    assert model.n_epochs_ == 3 and len(model.history_["train_mse"]) == 3
    with pytest.raises(ValueError, match="callable"):
        small_model().fit(frame, callback=42)
