"""The model file as a zip of ``.npy`` members: a reader that trusts nothing, a safe writer.

Reading (:class:`ModelArchive`) happens in three steps, and memory is bounded
before the first array is allocated:

1. **The zip directory**: every member is a regular ``.npy`` file (no
   directory, no symbolic link, no encryption, stored or deflated, no name
   twice) lying inside the file, and the members together expand to at most
   :data:`MAX_EXPANSION` times the file's size (or :data:`SMALL_ARCHIVE`
   bytes). mfcy writes its members uncompressed, and fitted factors (random
   floats) hardly compress, so only a zip bomb expands by hundreds.
2. **The ``.npy`` headers**, read without the data: a plain dtype (no object,
   so nothing is ever unpickled), and a shape whose size is exactly what the
   zip directory says the member holds (an ``.npy`` header claiming 800 GB
   in a 1 MB member is refused). :func:`check_layout` then checks the shapes
   and dtype kinds against each other: factors of ``len(users)`` rows, CSR
   row pointers of ``len(users) + 1``, scalars where scalars belong.
3. **The arrays**, read in chunks by numpy (``allow_pickle=False``), hashed in
   place as they come (:func:`checksum`: no ``tobytes()`` copies), then the
   values checked (:func:`check_values`, :func:`load_json`).

The SHA-256 checksum detects corruption (a damaged disk, a truncated copy),
not tampering: anyone editing a file can recompute it. Loading a hostile file
is still safe (it is refused, or gives a model whose arrays are consistent),
but only a file from a trusted source gives trustworthy predictions.

Writing (:func:`atomic_write`) goes through a temporary file beside the target,
``fsync``-ed before it is renamed over the target (and the directory after),
with the target's permission mode, through a symbolic link to its target; the
temporary files of saves that were killed are removed by the next save.

Errors are :class:`ArchiveError` with a message that reads after the file's
name; :mod:`mfcy.io` turns them into its ``ModelFileError``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import zipfile
import zlib

import numpy as np

#: An archive of at most this many bytes is never refused for its expansion.
SMALL_ARCHIVE = 64 << 20
#: The most the members may expand against the file's size (deflate reaches 1032).
MAX_EXPANSION = 32
#: More members than this is no mfcy model file (version 1 has 20).
MAX_MEMBERS = 64
#: JSON members are flat: an object of scalars, or of lists of numbers.
MAX_JSON_DEPTH = 2

_HASH_CHUNK = 16 << 20


class ArchiveError(ValueError):
    """What is wrong with a model archive; the message follows the file's name."""


class Member:
    """One ``.npy`` member, known from its zip entry and header (nothing read yet)."""

    __slots__ = ("key", "info", "dtype", "shape", "fortran_order", "nbytes")

    def __init__(self, key, info, dtype, shape, fortran_order):
        self.key, self.info, self.dtype = key, info, dtype
        self.shape, self.fortran_order = shape, fortran_order
        self.nbytes = math.prod(shape) * dtype.itemsize


def _damaged(detail):
    return ArchiveError(f"is truncated or damaged ({detail})")


class ModelArchive:
    """The members of an opened ``.npz`` archive, checked before any array is read.

    Parameters
    ----------
    zf : zipfile.ZipFile
        The archive (e.g. ``numpy.load(f, allow_pickle=False).zip``).
    size : int
        The size in bytes of the file holding it.
    """

    def __init__(self, zf, size):
        self._zip = zf
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ArchiveError(f"is not an mfcy model file ({len(infos)} members)")
        seen, expanded = set(), 0
        for info in infos:
            name = info.filename
            if name in seen:
                raise ArchiveError(f"is not an mfcy model file: member {name!r} appears "
                                   "more than once")
            seen.add(name)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ArchiveError(f"is not an mfcy model file: member {name!r} is a "
                                   "symbolic link")
            if info.is_dir() or stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                raise ArchiveError(f"is not an mfcy model file: member {name!r} is not a "
                                   "regular file")
            if not name.endswith(".npy") or "/" in name or "\\" in name:
                raise ArchiveError(f"is not an mfcy model file: member {name!r} is not an "
                                   ".npy array (mfcy model files hold nothing else)")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"is not an mfcy model file: member {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ArchiveError(f"is not an mfcy model file: member {name!r} uses zip "
                                   f"compression method {info.compress_type}")
            if info.header_offset + info.compress_size > size:
                raise _damaged(f"member {name!r} extends past the end of the file")
            if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                raise _damaged(f"member {name!r} has inconsistent sizes")
            expanded += info.file_size
        if expanded > max(SMALL_ARCHIVE, MAX_EXPANSION * size):
            raise ArchiveError(
                f"expands from {size:,} bytes to {expanded:,} bytes "
                f"({expanded / max(size, 1):.0f} times): refusing a likely zip bomb (mfcy "
                "writes model files uncompressed, and fitted factors barely compress)")
        self.members = {}
        for info in infos:
            member = self._header(info)
            self.members[member.key] = member

    def _header(self, info):
        key = info.filename[:-len(".npy")]
        try:
            with self._zip.open(info) as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
                elif version == (2, 0):
                    shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
                else:
                    raise ValueError(f".npy format version {version}")
                offset = stream.tell()
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise _damaged(f"member {key!r}: {exc}") from None
        if dtype.hasobject:
            raise ArchiveError(f"member {key!r} holds a pickled Python object, which mfcy "
                               "model files never contain; refusing to load it (unpickling "
                               "can run arbitrary code)")
        if dtype.kind not in "biufU" or dtype.fields is not None or dtype.subdtype is not None:
            raise ArchiveError(f"member {key!r} has dtype {dtype}, which mfcy model files "
                               "never contain")
        if len(shape) > 2 or any(not isinstance(n, int) or n < 0 for n in shape):
            raise _damaged(f"member {key!r} has shape {shape}")
        member = Member(key, info, dtype, tuple(shape), bool(fortran_order))
        if offset + member.nbytes != info.file_size:
            raise _damaged(f"member {key!r} declares shape {member.shape} of {dtype} "
                           f"({member.nbytes:,} bytes) but holds {info.file_size - offset:,} "
                           "bytes")
        return member

    def read(self, key):
        """One member as an array (read in chunks; the zip's CRC checked at its end)."""
        member = self.members[key]
        try:
            with self._zip.open(member.info) as stream:
                arr = np.lib.format.read_array(stream, allow_pickle=False)
                if stream.read(1):
                    raise ValueError("data after the array")
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise _damaged(f"member {key!r}: {exc}") from None
        return arr

    def read_all(self, skip=("checksum",)):
        """Every member but ``skip``, and the checksum of them computed as they are read."""
        digest = hashlib.sha256()
        arrays = {}
        for key in sorted(self.members):
            if key in skip:
                continue
            arrays[key] = self.read(key)
            _hash_member(digest, key, arrays[key])
        return arrays, digest.hexdigest()


def _hash_member(digest, name, arr):
    arr = np.asarray(arr)
    # np.ascontiguousarray makes 0-d arrays 1-d: the format's checksum has
    # always hashed scalars with shape (1,).
    shape = arr.shape if arr.ndim else (1,)
    digest.update(f"{name}\0{arr.dtype.str}\0{shape}\0".encode())
    if arr.nbytes == 0:
        return
    if arr.flags.c_contiguous:
        digest.update(arr.reshape(-1).view(np.uint8))
        return
    # Another memory order: hash its C-order bytes a few rows at a time.
    step = max(1, _HASH_CHUNK // max(1, arr[:1].nbytes))
    for start in range(0, len(arr), step):
        digest.update(np.ascontiguousarray(arr[start:start + step]).reshape(-1).view(np.uint8))


def checksum(arrays):
    """SHA-256 over every array (name, dtype, shape, bytes), in name order, without copies."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        _hash_member(digest, name, arrays[name])
    return digest.hexdigest()


# -- the layout: shapes and dtype kinds, from the headers ---------------------------

_SCALARS = {"format": "U", "format_version": "iu", "mfcy_version": "U", "params": "U",
            "history": "U", "checksum": "U", "global_mean": "f", "biased": "b",
            "n_epochs": "iu", "best_epoch": "i"}


def _inconsistent(what):
    return ArchiveError(f"is inconsistent: {what}")


def check_layout(members, min_factors=1):
    """Check the members' shapes and dtypes against each other (nothing is read).

    ``members`` maps each key to a :class:`Member`; all the format's members
    are present. ``min_factors`` is 0 for a model kind without factors
    (:class:`~mfcy.BaselineOnly`).
    """
    for key, kind in _SCALARS.items():
        m = members[key]
        if m.shape != () or m.dtype.kind not in kind:
            raise ArchiveError(f"member {key!r} is not a scalar of the expected type")
    rating_range = members["rating_range"]
    if rating_range.shape != (2,) or rating_range.dtype.kind != "f":
        raise _inconsistent("rating_range must hold two floats")
    users, items = members["users"], members["items"]
    for ids in (users, items):
        if len(ids.shape) != 1 or ids.dtype.kind not in "iuU":
            raise _inconsistent(f"{ids.key} must be a 1-D array of integer or string ids")
    n_users, n_items = users.shape[0], items.shape[0]
    P, Q = members["user_factors"], members["item_factors"]
    if (P.dtype not in (np.float32, np.float64) or len(P.shape) != 2
            or len(Q.shape) != 2):
        raise _inconsistent("the factors must be 2-D float32 or float64 arrays")
    ub, ib = members["user_bias"], members["item_bias"]
    if any(a.dtype != P.dtype for a in (Q, ub, ib)):
        raise _inconsistent("the factors and biases have different dtypes")
    if P.shape[0] != n_users or Q.shape[0] != n_items or P.shape[1] != Q.shape[1]:
        raise _inconsistent(f"factor shapes {P.shape} and {Q.shape} do not match {n_users} "
                            f"users and {n_items} items")
    if P.shape[1] < min_factors:
        raise _inconsistent("the factors must have at least one factor per user and item")
    if ub.shape != (n_users,) or ib.shape != (n_items,):
        raise _inconsistent("bias shapes do not match the numbers of users and items")
    indptr, seen = members["seen_indptr"], members["seen_items"]
    if (indptr.dtype.kind not in "iu" or seen.dtype.kind not in "iu" or len(seen.shape) != 1
            or indptr.shape != (n_users + 1,)):
        raise _inconsistent("the training interactions are not a CSR of item indices per user")


# -- the values ----------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def load_json(text, what):
    """Parse a flat JSON member; deep nesting is refused before the parser recurses."""
    # Nesting depth of the brackets outside string literals, vectorized.
    codes = np.frombuffer(_STRING.sub('""', text).encode("utf-8", "surrogatepass"),
                          dtype=np.uint8)
    step = ((codes == ord("[")) | (codes == ord("{"))).astype(np.int64)
    step -= (codes == ord("]")) | (codes == ord("}"))
    if len(step) and np.cumsum(step).max() > MAX_JSON_DEPTH:
        raise _inconsistent(f"{what} is nested deeper than an mfcy model file's {what}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _inconsistent(f"unreadable JSON in {what} ({exc})") from None


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_params(params):
    """Hyperparameters are a JSON object of scalars (what ``save`` writes)."""
    if not isinstance(params, dict):
        raise _inconsistent("params and history must be JSON objects")
    for key, value in params.items():
        if isinstance(value, list) and key == "rating_scale":
            value = None if len(value) == 2 and all(map(_is_number, value)) else value
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise _inconsistent(f"hyperparameter {key!r} is a JSON {type(value).__name__}, "
                                "not a number, string, boolean or null")


def check_history(history):
    """The history is a JSON object of lists of numbers (what ``save`` writes)."""
    if not isinstance(history, dict):
        raise _inconsistent("params and history must be JSON objects")
    for key, values in history.items():
        if not isinstance(values, list) or not all(map(_is_number, values)):
            raise _inconsistent(f"history[{key!r}] is not a list of numbers")


def check_values(arrays):
    """What the compiled kernel, ``recommend`` and ``mfcy info`` rely on, beyond shapes.

    Run after :func:`check_layout`, on the arrays read.
    """
    indptr = arrays["seen_indptr"]
    if indptr.dtype.kind == "u" and len(indptr) and indptr.max() > np.iinfo(np.int64).max:
        raise _inconsistent("the training interactions' row pointers are out of order")
    # Signed: the differences of unsigned pointers never go negative (they wrap).
    indptr = indptr.astype(np.int64, copy=False)
    if (indptr[0] != 0 or indptr[-1] != len(arrays["seen_items"])
            or np.any(np.diff(indptr) < 0)):
        raise _inconsistent("the training interactions' row pointers are out of order")
    low, high = (float(v) for v in arrays["rating_range"])
    if not low <= high:
        raise _inconsistent(f"the rating range is reversed or not a number ({low} to {high})")
    mean = float(arrays["global_mean"][()])
    # The mean of the training ratings lies between their smallest and largest.
    if not low <= mean <= high:
        raise _inconsistent(f"the global mean {mean} lies outside the rating range "
                            f"{low} to {high}")
    n_epochs = int(arrays["n_epochs"][()])
    if n_epochs < 0:
        raise _inconsistent(f"n_epochs is {n_epochs}, a negative number of epochs")
    best_epoch = int(arrays["best_epoch"][()])
    if not (best_epoch == -1 or 1 <= best_epoch <= n_epochs):
        raise _inconsistent(f"best_epoch is {best_epoch}, not an epoch of the {n_epochs} "
                            "run (or -1)")
    if not bool(arrays["biased"][()]):
        for key in ("user_bias", "item_bias"):
            if np.any(arrays[key]):
                raise _inconsistent(f"an unbiased model's {key.replace('_', ' ')} biases "
                                    "are not zero")


def check_n_factors(n_factors, arrays):
    """The (validated) hyperparameter ``n_factors`` is the number of factors stored."""
    k = arrays["user_factors"].shape[1]
    if n_factors != k:
        raise _inconsistent(f"the hyperparameter n_factors={n_factors!r} does not match the "
                            f"{k} factors stored")


# -- writing -------------------------------------------------------------------------

def _temporary_name(directory, base):
    return os.path.join(directory, f".{base}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


def _process_exists(pid):
    if os.name != "posix":
        return True  # os.kill(pid, 0) is no existence test on Windows: keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process (or no way to tell): keep its file
    return True


def remove_stale_temporaries(directory, base):
    """Remove ``.BASE.PID.xxxxxxxx.tmp`` files of processes that no longer exist.

    A save killed with ``kill -9`` (or by a power loss) cannot remove its own
    temporary file; the next save to the same path does. Files of live
    processes, of other targets and of other names are left alone.
    """
    pattern = re.compile(rf"\.{re.escape(base)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or _process_exists(int(match.group(1))):
            continue
        path = os.path.join(directory, name)
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.unlink(path)
        except OSError:
            pass  # removed by another save at the same time, or not ours to remove


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # platforms that cannot open a directory (Windows) cannot sync it either
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write):
    """Write a file by ``write(file_object)`` so that readers see the old or the new one.

    The data goes to a temporary file beside the target, which is flushed to
    disk (``fsync``) and renamed over the target; the directory is synced after
    the rename, so that a power loss leaves the old file or the whole new one,
    never an empty one. A target that is a symbolic link is written through:
    the file it points to is replaced, the link stays. An existing target
    keeps its permission mode (a new one gets the umask's).

    Parameters
    ----------
    path : str or os.PathLike
    write : callable
        ``write(f)`` writes the content to the binary file object ``f``.
    """
    target = os.path.realpath(os.fspath(path))
    directory, base = os.path.split(target)
    remove_stale_temporaries(directory, base)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    tmp = _temporary_name(directory, base)
    # os.open with 0o666 lets the umask decide the permissions of a new file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if mode is not None:
                os.chmod(tmp, mode)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)
