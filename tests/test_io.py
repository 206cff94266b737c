"""Saving and loading models: bit-identical round trips, and every bad file refused."""

import io
import json
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

import mfcy.io
from mfcy import MatrixFactorization
from mfcy.datasets import make_low_rank
from mfcy.io import FORMAT_VERSION, ModelFileError

from helpers import small_model


def string_frame(seed=0):
    frame = make_low_rank(40, 25, 3, 0.4, random_state=seed, as_frame=True)
    frame["user"] = np.array(["ann", "bob", "cy", "dee"] + [f"user {j}" for j in range(36)]
                             )[frame["user"]]
    frame["item"] = np.array([f"film «{j}»" for j in range(25)])[frame["item"]]
    return frame


def fitted(**kw):
    return small_model(**kw).fit(string_frame())


@pytest.fixture(scope="module")
def model():
    return fitted()


@pytest.fixture
def saved(model, tmp_path):
    path = tmp_path / "model.npz"
    model.save(path)
    return path


def assert_same_model(a, b, frame):
    np.testing.assert_array_equal(a.predict(frame), b.predict(frame))
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "users_",
                 "items_", "_seen_indptr", "_seen_items"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == getattr(b, name).dtype, name
    assert a.global_mean_ == b.global_mean_
    assert a.rating_range_ == b.rating_range_
    assert a.history_ == b.history_
    assert a.n_epochs_ == b.n_epochs_
    assert a.get_params() == b.get_params()
    users = a.users_[:5]
    for exclude in (True, False):
        np.testing.assert_array_equal(a.recommend(users, n=5, exclude_seen=exclude)[0],
                                      b.recommend(users, n=5, exclude_seen=exclude)[0])


@pytest.mark.parametrize("kw", [dict(), dict(dtype="float64"), dict(biased=False),
                                dict(track_loss=False, regularization=0.1)])
def test_save_load_round_trip_is_bit_identical(tmp_path, kw):
    model = fitted(**kw)
    path = tmp_path / "m.npz"
    model.save(path)
    again = MatrixFactorization.load(path)
    assert_same_model(model, again, string_frame())
    # Unknown ids fall back the same way after loading.
    pairs = (["ann", "nobody", "nobody"], ["film «3»", "film «3»", "no film"])
    np.testing.assert_array_equal(model.predict(*pairs, return_fallback=True),
                                  again.predict(*pairs, return_fallback=True))


def test_string_ids_are_unicode_arrays_in_the_file_and_load_without_pickle(saved):
    with np.load(saved, allow_pickle=False) as archive:
        assert archive["users"].dtype.kind == "U"
        assert archive["items"].dtype.kind == "U"
        assert all(archive[name].dtype.kind != "O" for name in archive.files)
    again = MatrixFactorization.load(saved)
    assert again.users_.dtype.kind == "U"
    assert again.items_[3] == "film «12»"


def test_load_never_allows_pickle(saved, monkeypatch):
    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    MatrixFactorization.load(saved)
    assert calls == [False]


def test_integer_ids_stay_integers(tmp_path):
    X = np.array([[2**40, -5], [7, 3], [2**40, 3]])
    model = MatrixFactorization(n_factors=2, n_epochs=2, random_state=0,
                                n_threads=1).fit(X, [1.0, 2.0, 3.0])
    model.save(tmp_path / "m.npz")
    again = MatrixFactorization.load(tmp_path / "m.npz")
    assert again.users_.dtype == np.int64 and again.users_.tolist() == [7, 2**40]
    assert again.items_.tolist() == [-5, 3]
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    big = np.array([[2**63 + 5, 1], [1, 1]], dtype=np.uint64)
    model = MatrixFactorization(n_factors=2, n_epochs=2, random_state=0, n_threads=1).fit(big, [1.0, 2.0])
    model.save(tmp_path / "u.npz")
    assert MatrixFactorization.load(tmp_path / "u.npz").users_.dtype == np.uint64


def test_pickle_round_trip(model):
    again = pickle.loads(pickle.dumps(model))
    assert_same_model(model, again, string_frame())
    unfitted = pickle.loads(pickle.dumps(MatrixFactorization(n_factors=7)))
    assert unfitted.n_factors == 7


def test_file_objects_and_paths_without_suffix(model, tmp_path):
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    assert_same_model(model, MatrixFactorization.load(buffer), string_frame())
    plain = tmp_path / "model"  # no .npz appended
    model.save(str(plain))
    assert plain.exists() and not (tmp_path / "model.npz").exists()
    assert_same_model(model, MatrixFactorization.load(plain), string_frame())


def test_save_needs_a_fitted_model(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        MatrixFactorization().save(tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def test_interrupted_save_leaves_no_file_behind(model, tmp_path, monkeypatch):
    target = tmp_path / "m.npz"
    model.save(target)
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        model.save(target)
    # The old file is intact and no temporary file is left over.
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_saved_file_records_version_and_metadata(saved):
    meta = mfcy.io.read_metadata(saved)
    assert meta == {"format": "mfcy.MatrixFactorization", "format_version": FORMAT_VERSION,
                    "mfcy_version": mfcy.__version__}
    with np.load(saved, allow_pickle=False) as archive:
        params = json.loads(str(archive["params"]))
    assert params["n_factors"] == 3 and params["random_state"] == 0


def test_a_generator_seed_is_not_saved_but_the_model_is(tmp_path):
    model = fitted(random_state=np.random.default_rng(3))
    model.save(tmp_path / "m.npz")
    again = MatrixFactorization.load(tmp_path / "m.npz")
    assert again.random_state is None
    np.testing.assert_array_equal(again.predict(string_frame()), model.predict(string_frame()))


# -- every bad file is refused with a clear error --------------------------------------


def rewrite(path, change):
    """Rewrite the archive at ``path`` with ``change(members)`` applied (valid zip CRCs)."""
    with np.load(path, allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files}
    change(members)
    with open(path, "wb") as f:
        np.savez(f, **members)


def refresh_checksum(members):
    members["checksum"] = np.array(mfcy.io._checksum(
        {k: v for k, v in members.items() if k != "checksum"}))


def test_truncated_file(saved):
    data = saved.read_bytes()
    for size in (len(data) // 2, len(data) - 30, 10):
        saved.write_bytes(data[:size])
        with pytest.raises(ModelFileError, match="truncated or damaged"):
            MatrixFactorization.load(saved)


def test_flipped_bytes_are_caught(saved):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as z:
        info = z.getinfo("user_factors.npy")
    # A byte inside the stored factors: the zip's CRC catches it.
    data[info.header_offset + 100 + len(info.filename)] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="damaged"):
        MatrixFactorization.load(saved)


def test_tampered_values_fail_the_checksum(saved):
    def change(members):
        members["user_factors"] = members["user_factors"] * 2
    rewrite(saved, change)
    with pytest.raises(ModelFileError, match="fails its checksum: the file was modified"):
        MatrixFactorization.load(saved)


def test_tampered_ids_fail_the_checksum(saved):
    def change(members):
        members["users"] = np.array(["x" + u for u in members["users"]])
    rewrite(saved, change)
    with pytest.raises(ModelFileError, match="checksum"):
        MatrixFactorization.load(saved)


@pytest.mark.parametrize("change,message", [
    (lambda m: m.update(user_factors=m["user_factors"][:-1]), "factor shapes"),
    (lambda m: m.update(item_bias=m["item_bias"].astype(np.float64)), "different dtypes"),
    (lambda m: m.update(seen_items=m["seen_items"] + 1000), "items the model does not have"),
    (lambda m: m.update(seen_indptr=m["seen_indptr"][::-1].copy()), "out of order"),
    (lambda m: m.update(items=m["items"][::-1].copy()), "not sorted"),
    # Users may be out of order (fold_in appends), never repeated.
    (lambda m: m.update(users=np.repeat(m["users"][:1], len(m["users"]))), "not distinct"),
    (lambda m: m.update(item_factors=np.full_like(m["item_factors"], np.nan)), "NaN"),
    (lambda m: m.update(params=np.array("{not json")), "JSON"),
    (lambda m: m.pop("history"), "incomplete: no 'history'"),
])
def test_consistent_checksum_but_inconsistent_content(saved, change, message):
    # A forged file with a correct checksum still cannot reach the kernel.
    def forge(members):
        change(members)
        refresh_checksum(members)
    rewrite(saved, forge)
    with pytest.raises(ModelFileError, match=message):
        MatrixFactorization.load(saved)


@pytest.mark.parametrize("version,message", [
    (FORMAT_VERSION + 1, "newer mfcy.*upgrade mfcy"), (0, "older mfcy")])
def test_wrong_format_version(saved, version, message):
    def change(members):
        members["format_version"] = np.array(version)
        members["mfcy_version"] = np.array("9.9.9")
    rewrite(saved, change)
    with pytest.raises(ModelFileError, match=f"format version {version}.*{message}"):
        MatrixFactorization.load(saved)


def test_not_an_mfcy_archive(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.arange(3))
    with pytest.raises(ModelFileError, match="not an mfcy model file"):
        MatrixFactorization.load(path)


class Exploit:
    """Unpickling this would write a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_object_inside_the_archive_is_refused_unexecuted(saved, tmp_path):
    marker = tmp_path / "pwned"

    def change(members):
        members["users"] = np.array([Exploit(marker)] * len(members["users"]), dtype=object)
    with np.load(saved, allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files}
    change(members)
    with open(saved, "wb") as f:
        np.savez(f, **members)  # an object array: numpy pickles it into the .npy
    with pytest.raises(ModelFileError, match="member 'users' holds a pickled Python object"):
        MatrixFactorization.load(saved)
    assert not marker.exists()


def test_a_pickle_file_is_refused_unexecuted(model, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps([model, Exploit(marker)]))
    with pytest.raises(ModelFileError, match="Python pickle, not an mfcy model file"):
        MatrixFactorization.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"), (b"user,item,rating\n1,2,3\n", "not a .npz archive"),
    (np.lib.format.MAGIC_PREFIX + b"\x01\x00", "not a .npz archive"),
])
def test_other_files_are_refused(tmp_path, content, message):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message):
        MatrixFactorization.load(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        MatrixFactorization.load(tmp_path / "nope.npz")
    with pytest.raises(ModelFileError, match="is a directory"):
        MatrixFactorization.load(tmp_path)


def test_unknown_hyperparameter_from_another_version(saved):
    def change(members):
        params = json.loads(str(members["params"]))
        params["quantum"] = 1
        members["params"] = np.array(json.dumps(params))
        refresh_checksum(members)
    rewrite(saved, change)
    with pytest.raises(ModelFileError, match="does not know: quantum"):
        MatrixFactorization.load(saved)


def test_model_file_error_is_a_value_error(tmp_path):
    path = tmp_path / "not-a-model.npz"
    path.write_bytes(b"PK\x03\x04 certainly not a zip archive")
    # What callers that catch ValueError rely on: the refusal of a bad file is one.
    with pytest.raises(ValueError, match="not a readable mfcy model file") as raised:
        MatrixFactorization.load(path)
    assert raised.type is ModelFileError


def test_the_frame_used_is_unchanged(model):
    frame = string_frame()
    copy = frame.copy()
    model.predict(frame)
    pd.testing.assert_frame_equal(frame, copy)


def test_fold_in_and_early_stopping_state_survive_save_load(tmp_path):
    """fold_in appends users out of order, early stopping records best_epoch_."""
    import numpy as np

    from mfcy import MatrixFactorization
    from mfcy.model_selection import train_test_split

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 40, 600), rng.integers(0, 30, 600)])
    y = rng.normal(3.5, 1.0, 600)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    model = MatrixFactorization(n_factors=3, n_epochs=30, early_stopping=True,
                                n_iter_no_change=2, n_threads=1, random_state=0)
    model.fit(X_train, y_train, validation=(X_val, y_val))
    model.fold_in(np.array([[-7, 1], [-7, 2], [-3, 4]]), [5.0, 4.0, 2.0])
    assert list(model.users_[-2:]) == [-7, -3]
    path = tmp_path / "m.npz"
    model.save(path)
    again = MatrixFactorization.load(path)
    assert again.best_epoch_ == model.best_epoch_
    pairs = np.array([[-7, 3], [-3, 1], [5, 5]])
    np.testing.assert_array_equal(again.predict(pairs), model.predict(pairs))
    np.testing.assert_array_equal(again.recommend([-7], n=3)[0], model.recommend([-7], n=3)[0])


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.uint64, ">i4"])
def test_seen_items_of_another_integer_type_load_as_int64(tmp_path, dtype):
    # Found by the fuzz tests: a (checksum-consistent) file storing the seen
    # items as int8 loaded as int8, and fold_in() then wrapped item indices
    # beyond 127 to negative ones in recommend's exclusion list.
    X = np.column_stack([np.repeat([0, 1], 150), np.tile(np.arange(150), 2)])
    model = MatrixFactorization(n_factors=2, n_epochs=1, random_state=0,
                                n_threads=1).fit(X, np.ones(300))
    path = tmp_path / "m.npz"
    model.save(path)

    def forge(members):  # a CSR of seen items that int8 holds, stored as `dtype`
        members["seen_items"] = np.array([0, 100, 0, 120], dtype=dtype)
        members["seen_indptr"] = np.array([0, 2, 4])
        refresh_checksum(members)
    rewrite(path, forge)
    loaded = MatrixFactorization.load(path)
    assert loaded._seen_items.dtype == np.int64
    loaded.fold_in([[0, 140], [0, 149]], [2.0, 3.0])
    assert loaded._seen_items.min() >= 0 and loaded._seen_items.max() < 150
    items, _ = loaded.recommend([0], n=150, exclude_seen=True)
    assert not np.isin([140, 149], items[0][:148]).any()


@pytest.mark.parametrize("params", ['{"n_factors": -3}', '{"dtype": "int8"}',
                                    '{"n_factors": "x"}'])
def test_invalid_hyperparameters_with_a_consistent_checksum(saved, params):
    # Found by the fuzz tests: such a forged file loaded, and only a later
    # fold_in() or fit() refused the model's own hyperparameters.
    def forge(members):
        members["params"] = np.array(params)
        refresh_checksum(members)
    rewrite(saved, forge)
    with pytest.raises(ModelFileError, match="invalid hyperparameters"):
        MatrixFactorization.load(saved)


@pytest.mark.parametrize("member,value", [("global_mean", np.array(-1e300)),
                                          ("rating_range", np.array([0.0, 1e39]))])
def test_a_global_mean_beyond_the_factor_dtype_is_refused(saved, member, value):
    # Found by the fuzz tests: a forged float32 model with a global mean of
    # -1e300 (finite in float64) loaded and predicted -inf for everyone.
    def forge(members):
        members[member] = value
        refresh_checksum(members)
    rewrite(saved, forge)
    with pytest.raises(ModelFileError, match="overflows float32"):
        MatrixFactorization.load(saved)
