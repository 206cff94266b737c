"""Hostile and broken model files, and how a model file is written (issue 18, items 4-9).

Every hostile file is a :class:`ModelFileError` (in the CLI: one line, exit 2)
with bounded memory: sizes are checked from the zip directory and the ``.npy``
headers before any array is read. Cases that would exhaust memory on a build
without these checks run in a subprocess under an address-space limit.
"""

import io
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import zipfile

import numpy as np
import pytest

import mfcy.io
from mfcy import MatrixFactorization, build_info
from mfcy.cli import main
from mfcy.io import ModelFileError

from helpers import small_model


def fitted(**kw):
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 30, 300), rng.integers(0, 20, 300)])
    return small_model(**{"n_epochs": 3, **kw}).fit(X, rng.uniform(1, 5, 300))


@pytest.fixture(scope="module")
def model():
    return fitted()


@pytest.fixture
def saved(model, tmp_path):
    path = tmp_path / "model.npz"
    model.save(path)
    return path


def members_of(path):
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def checksum(members):
    return np.array(mfcy.io._checksum({k: v for k, v in members.items() if k != "checksum"}))


def forge(path, **changes):
    """Rewrite the model file with members changed and a consistent checksum."""
    members = members_of(path)
    members.update(changes)
    members["checksum"] = checksum(members)
    with open(path, "wb") as f:
        np.savez(f, **members)


def npy_bytes(arr):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(arr), allow_pickle=False)
    return buffer.getvalue()


def write_zip(path, entries):
    """A zip of ``(ZipInfo or name, bytes)`` entries, written as given."""
    with zipfile.ZipFile(path, "w") as z:
        for info, data in entries:
            z.writestr(info, data)


def model_entries(path):
    return [(f"{name}.npy", npy_bytes(arr)) for name, arr in members_of(path).items()]


def refused(path, match, metadata=False):
    with pytest.raises(ModelFileError, match=match):
        MatrixFactorization.load(path)
    if metadata:  # a file that is no model file at all: read_metadata refuses it too
        with pytest.raises(ModelFileError, match=match):
            mfcy.io.read_metadata(path)


def cli_refuses(path, capsys):
    """`mfcy info`, `predict` and `recommend` each print one line and exit 2."""
    pairs = path.parent / "pairs.csv"
    pairs.write_text("0,1\n")
    for argv in (["info", str(path)], ["predict", str(path), str(pairs)],
                 ["recommend", str(path), "--user", "0"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("mfcy: error: ") and err.count("\n") == 1, err


# -- item 4: zip bombs and sizes declared before any array is read --------------------

def header_claiming(shape, dtype="<f4"):
    """An .npy header declaring ``shape``, padded as numpy pads it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def write_bomb(path, model_path, n_bytes):
    """The model file with ``user_factors`` replaced by ``n_bytes`` of deflated zeros.

    Written as a stream (zipfile compresses chunk by chunk): making a 1 GiB bomb
    costs one pass of the compressor, not 1 GiB of memory.
    """
    shape = (n_bytes // (4 * 3), 3)
    entries = [e for e in model_entries(model_path) if e[0] != "user_factors.npy"]
    write_zip(path, entries)
    zeros = bytes(1 << 24)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("user_factors.npy", "w", force_zip64=True) as member:
            member.write(header_claiming(shape))
            left = shape[0] * shape[1] * 4
            while left:
                member.write(zeros[:min(left, len(zeros))])
                left -= min(left, len(zeros))
    return path


BOMB_CHILD = textwrap.dedent("""
    import resource, sys
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import mfcy.io
    from mfcy import MatrixFactorization
    try:
        MatrixFactorization.load(sys.argv[1])
    except mfcy.io.ModelFileError as exc:
        print("refused:", exc)
    try:  # this process image's peak (ru_maxrss also counts the parent's RSS at the fork)
        with open("/proc/self/status") as status:
            peak_kib = next(int(line.split()[1]) for line in status
                            if line.startswith("VmHWM"))
    except OSError:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("peak_mib", peak_kib // 1024)
""")


LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="RLIMIT_AS and /proc/self/status")
# ASan reserves terabytes of address space and keeps freed memory in quarantine:
# an address-space limit or a peak-RSS bound means nothing in a sanitizer build.
SANITIZED = pytest.mark.skipif(bool(build_info()["sanitizers"]),
                               reason="memory bounds are meaningless under ASan")
POSIX_ONLY = pytest.mark.skipif(os.name != "posix", reason="POSIX modes, links and pids")


def run_limited(code, *args, limit=1 << 30):
    # cwd away from the source tree: the child must import the installed package.
    return subprocess.run([sys.executable, "-c", code, *map(str, args), str(limit)],
                          capture_output=True, text=True, timeout=600,
                          cwd=tempfile.gettempdir())


@LINUX_ONLY
@SANITIZED
def test_a_zip_bomb_is_refused_before_it_is_decompressed(saved, tmp_path):
    # Regression: a 1 GiB deflated array (5 MB on disk) was decompressed into
    # memory before the checksum refused it (4 GiB: 8.4 GB of RSS).
    bomb = write_bomb(tmp_path / "bomb.npz", saved, 1 << 30)
    assert bomb.stat().st_size < 8 << 20  # 1 GiB in under 8 MB
    result = run_limited(BOMB_CHILD, bomb, limit=1 << 30)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused:" in result.stdout and "zip bomb" in result.stdout, result.stdout
    assert int(result.stdout.split("peak_mib")[1]) < 200


@LINUX_ONLY
@SANITIZED
def test_an_npy_header_claiming_800_gb_is_refused_without_allocating(saved, tmp_path):
    # Regression: MemoryError (a traceback) from allocating what the header claims.
    path = tmp_path / "huge.npz"
    entries = [(n, d if n != "item_factors.npy"
                else header_claiming((200 * 10**9 // 12, 3)) + d[128:])
               for n, d in model_entries(saved)]
    write_zip(path, entries)
    result = run_limited(BOMB_CHILD, path, limit=1 << 30)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused:" in result.stdout and "item_factors" in result.stdout, result.stdout


def test_member_shapes_must_agree_before_any_array_is_read(saved, monkeypatch):
    # The shapes come from the headers: a user_factors of the wrong length is
    # refused without reading (or allocating) a single array.
    forge(saved, user_factors=np.zeros((5, 3), dtype=np.float32))

    import mfcy._archive

    read = []
    real_read = mfcy._archive.ModelArchive.read

    def spy(self, key):
        read.append(key)
        return real_read(self, key)

    monkeypatch.setattr(mfcy._archive.ModelArchive, "read", spy)
    refused(saved, r"factor shapes \(5, 3\)")
    assert set(read) <= {"format", "format_version", "mfcy_version"}, read


def test_checksum_is_computed_without_copies_and_agrees_with_the_file(model, saved):
    members = members_of(saved)
    assert str(members["checksum"]) == str(checksum(members))
    # A Fortran-ordered member hashes as its C-ordered bytes, as before.
    P = np.asfortranarray(members["user_factors"])
    assert mfcy.io._checksum({"p": P}) == mfcy.io._checksum({"p": np.ascontiguousarray(P)})


# -- item 5: members that are not what a model file holds -----------------------------

def test_a_member_that_is_not_npy_is_refused(saved, capsys):
    entries = model_entries(saved) + [("notes.txt", b"hello")]
    write_zip(saved, entries)
    refused(saved, "notes.txt", metadata=True)
    cli_refuses(saved, capsys)


def test_a_symlink_member_is_refused(saved, capsys):
    entries = model_entries(saved)
    info = zipfile.ZipInfo("users.npy")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    entries = [(info if n == "users.npy" else n, b"/etc/passwd" if n == "users.npy" else d)
               for n, d in entries]
    write_zip(saved, entries)
    refused(saved, "symbolic link", metadata=True)
    cli_refuses(saved, capsys)


def test_a_duplicated_member_is_refused(saved):
    entries = model_entries(saved)
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_zip(saved, entries + [("users.npy", dict(entries)["users.npy"])])
    refused(saved, "more than once", metadata=True)


@pytest.mark.parametrize("member", ["params", "history"])
def test_deeply_nested_json_is_refused_without_recursion_error(saved, member, capsys):
    # Regression: RecursionError (a traceback) from json.loads.
    text = '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    forge(saved, **{member: np.array(text)})
    refused(saved, "nested")
    cli_refuses(saved, capsys)


@pytest.mark.parametrize("history,match", [
    ({"train_rmse": {"a": 1}, "sgd_mse": [1.0, 2.0, 3.0]}, "train_rmse"),
    ({"train_rmse": ["x", "y", "z"]}, "train_rmse"),
    ({"sgd_mse": [1.0, None, 3.0]}, "sgd_mse"),
    ([1, 2], "JSON object"),
])
def test_history_of_the_wrong_type_is_refused(saved, history, match, capsys):
    # Regression: train_rmse stored as a dict made `mfcy info` raise KeyError.
    forge(saved, history=np.array(json.dumps(history)))
    refused(saved, match)
    cli_refuses(saved, capsys)


def test_params_holding_lists_or_objects_are_refused(saved):
    params = json.loads(str(members_of(saved)["params"]))
    params["verbose"] = [1]
    forge(saved, params=np.array(json.dumps(params)))
    refused(saved, "verbose")


# -- item 6: every field's dtype kind, sign and consistency ---------------------------

def test_unsigned_non_monotone_row_pointers_are_refused(saved, model, capsys):
    # Regression: np.diff of unsigned row pointers never goes negative, so this
    # passed, and recommend() then said a user "has rated every item".
    indptr = model._seen_indptr.astype(np.uint64)
    indptr[1], indptr[2] = indptr[2], indptr[1]
    assert not np.all(np.diff(indptr.astype(np.int64)) >= 0)
    forge(saved, seen_indptr=indptr)
    refused(saved, "row pointers are out of order")


@pytest.mark.parametrize("change,match", [
    (lambda m: dict(user_factors=m["user_factors"][:, :0], item_factors=m["item_factors"][:, :0]),
     "at least one factor"),
    (lambda m: dict(rating_range=m["rating_range"][::-1].copy()), "rating range"),
    (lambda m: dict(n_epochs=np.array(-5)), "n_epochs"),
    (lambda m: dict(n_epochs=np.array(3.0)), "n_epochs"),
    (lambda m: dict(best_epoch=np.array(7)), "best_epoch"),
    (lambda m: dict(best_epoch=np.array(-3)), "best_epoch"),
    (lambda m: dict(params=np.array(json.dumps({**json.loads(str(m["params"])),
                                                "n_factors": 5}))), "n_factors"),
    (lambda m: dict(global_mean=np.array(9.0)), "global mean"),
    (lambda m: dict(biased=np.array(1)), "biased"),
    (lambda m: dict(global_mean=np.array([3.0])), "global_mean"),
    (lambda m: dict(users=m["users"].astype(np.float64)), "users"),
    (lambda m: dict(format_version=np.array(1.0)), "format_version"),
])
def test_fields_of_the_wrong_kind_sign_or_consistency_are_refused(saved, change, match,
                                                                  capsys):
    # Regression: each of these loaded silently.
    forge(saved, **change(members_of(saved)))
    refused(saved, match)
    cli_refuses(saved, capsys)


def test_unbiased_models_must_have_zero_biases(tmp_path):
    path = tmp_path / "m.npz"
    fitted(biased=False).save(path)
    members = members_of(path)
    forge(path, user_bias=members["user_bias"] + 1)
    refused(path, "biases")


# -- item 7: the checksum detects corruption, not tampering ---------------------------

def test_the_checksum_is_not_a_signature(saved):
    # Documented: anyone editing the file can recompute the SHA-256, so a
    # consistent forgery loads (it is still validated, never unpickled).
    members = members_of(saved)
    forge(saved, user_factors=members["user_factors"] * 2)
    assert MatrixFactorization.load(saved).user_factors_[0, 0] == 2 * members["user_factors"][0, 0]
    doc = " ".join(mfcy.io.__doc__.split())
    assert "corruption" in doc and "not tampering" in doc


# -- item 9: saving --------------------------------------------------------------------

def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@POSIX_ONLY
def test_stale_temporary_files_of_dead_processes_are_removed(model, tmp_path):
    target = tmp_path / "m.npz"
    stale = tmp_path / f".m.npz.{dead_pid()}.0badc0de.tmp"
    stale.write_bytes(b"x" * 1000)
    live = tmp_path / f".m.npz.{os.getppid()}.0badc0de.tmp"  # a live process's save
    live.write_bytes(b"y")
    other = tmp_path / f".other.npz.{dead_pid()}.0badc0de.tmp"  # another target's
    other.write_bytes(b"z")
    model.save(target)
    assert not stale.exists()
    assert live.exists() and other.exists()
    MatrixFactorization.load(target)


KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from mfcy import MatrixFactorization
    X = np.column_stack([np.arange(50) % 7, np.arange(50) % 5])
    model = MatrixFactorization(n_factors=2, n_epochs=1, random_state=0).fit(X, np.ones(50))
    real_replace = os.replace
    def killed(*args, **kwargs):  # kill -9 with the temporary file written
        os.kill(os.getpid(), signal.SIGKILL)
    os.replace = killed
    model.save(sys.argv[1])
""")


@POSIX_ONLY
def test_a_save_killed_with_sigkill_leaves_a_temp_file_the_next_save_removes(model, tmp_path):
    target = tmp_path / "m.npz"
    result = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(target)],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == -signal.SIGKILL, result.stderr
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".m.npz."), leftovers
    model.save(target)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


@POSIX_ONLY
def test_resaving_keeps_the_file_mode(model, tmp_path):
    # Regression: a 0600 file became 0644 (the umask's mode) when saved again.
    target = tmp_path / "m.npz"
    model.save(target)
    os.chmod(target, 0o600)
    model.save(target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


@POSIX_ONLY
def test_saving_through_a_symlink_replaces_the_target_not_the_link(model, tmp_path):
    # Regression: the link was replaced by a regular file.
    real = tmp_path / "store" / "real.npz"
    real.parent.mkdir()
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o640
    MatrixFactorization.load(real)
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.npz"]


def test_the_file_and_its_directory_are_synced_around_the_rename(model, tmp_path,
                                                                monkeypatch):
    # So that a power loss never leaves an empty model under the final name.
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", None))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    model.save(tmp_path / "m.npz")
    assert events == [("fsync", False), ("replace", None), ("fsync", True)]
