"""Saving and loading fitted models: one ``.npz`` file, never a pickle.

A model file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) holding

* ``format``, ``format_version`` and ``mfcy_version``: what wrote it;
* ``params``: the constructor's hyperparameters, as JSON text;
* ``history``: the model's ``history_``, as JSON text (floats round-trip
  exactly through JSON);
* the fitted arrays: ``user_factors``, ``item_factors``, ``user_bias``,
  ``item_bias``, ``global_mean``, ``biased``, ``rating_range``, ``n_epochs``;
* the id maps ``users`` and ``items`` (integers stay int64 or uint64, strings
  are a NumPy unicode array: no Python objects);
* the training interactions ``seen_indptr`` and ``seen_items`` (a CSR of item
  indices per user) that recommendations exclude;
* ``checksum``: SHA-256 over every other member (name, dtype, shape, bytes).

Loading opens the archive with ``allow_pickle=False``, so a member holding a
pickled object is refused before anything is unpickled. Before any array is
read, the zip directory and every ``.npy`` header are checked (regular
``.npy`` members only, sizes that agree with each other and with the file, no
zip bomb: see ``mfcy._archive``); the arrays are then read, the checksum
computed as they come, and the format and version, the shapes, dtypes, signs
and index ranges the compiled kernel relies on checked: whatever the file,
loading gives a model whose predictions are bit-identical to the saved one's,
or a :class:`ModelFileError` naming the problem, in bounded memory.

The checksum detects corruption (a damaged disk, a truncated copy), not
tampering: it is a plain SHA-256, which anyone editing the file can recompute.
A file from an untrusted source is safe to load (it is never unpickled, and
what reaches the kernel is checked), but its predictions are only as
trustworthy as its source; check its origin outside mfcy (a signature or a
published digest of the whole file) when that matters.

Saving writes a temporary file beside the target, flushed to disk and renamed
over it, so a reader or a crash sees the old model or the new one, never a
partial one; an existing target keeps its permission mode, a symbolic link is
written through (its target is replaced), and temporary files left by killed
saves are removed by the next save to that path.
"""

from __future__ import annotations

import json
import numbers
import os
import zipfile

import numpy as np

from . import _archive
from ._state import FittedState, current, install, model_class
from .exceptions import ModelFileError

__all__ = ["ModelFileError", "save_model", "load_model", "read_metadata",
           "FORMAT", "FORMAT_VERSION"]

#: The ``format`` member of a :class:`~mfcy.MatrixFactorization` file; other models
#: write ``"mfcy." + their class name`` (the model kind), read back by that name.
FORMAT = "mfcy.MatrixFactorization"
#: The version of the layout this module writes; it reads this version only.
FORMAT_VERSION = 1

_META = ("format", "format_version", "mfcy_version")
_ARRAYS = ("params", "history", "user_factors", "item_factors", "user_bias", "item_bias",
           "global_mean", "biased", "rating_range", "n_epochs", "users", "items",
           "seen_indptr", "seen_items", "best_epoch")
#: Members only some model kinds have (SVD++'s implicit item factors).
_OPTIONAL = ("implicit_factors",)


def _mfcy_version():
    from ._version import __version__

    return __version__


def _json_param(name, value):
    """A hyperparameter as a JSON value (what cannot be written becomes None)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if name == "dtype":
        return np.dtype(value).name
    if name == "rating_scale":  # (low, high)
        return [float(v) for v in value]
    # A random_state given as a Generator: the fitted state is saved, the
    # generator (needed only to fit again) is not.
    return None


def _checksum(arrays):
    return _archive.checksum(arrays)


def _model_arrays(model):
    state = current(model)  # one reference: a concurrent fit cannot mix two states
    params = {name: _json_param(name, value) for name, value in model.get_params().items()}
    history = {key: [float(v) for v in values] for key, values in state.history.items()}
    arrays = {
        "format": np.array(f"mfcy.{type(model).__name__}"),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "mfcy_version": np.array(_mfcy_version()),
        "params": np.array(json.dumps(params, sort_keys=True)),
        "history": np.array(json.dumps(history)),
        "user_factors": state.user_factors,
        "item_factors": state.item_factors,
        "user_bias": state.user_bias,
        "item_bias": state.item_bias,
        "global_mean": np.array(state.global_mean, dtype=np.float64),
        "biased": np.array(bool(state.biased)),
        "rating_range": np.array(state.rating_range, dtype=np.float64),
        "n_epochs": np.array(state.n_epochs, dtype=np.int64),
        # -1: no early-stopping bookkeeping (fit without a validation set).
        "best_epoch": np.array(-1 if state.best_epoch is None else state.best_epoch,
                               dtype=np.int64),
        "users": state.users,
        "items": state.items,
        "seen_indptr": state.seen_indptr,
        "seen_items": state.seen_items,
    }
    if state.implicit_factors is not None:  # SVD++
        arrays["implicit_factors"] = state.implicit_factors
    for name in ("users", "items"):
        if arrays[name].dtype.kind not in "iuU":
            raise ValueError(f"cannot save {name} ids of dtype {arrays[name].dtype}")
    arrays["checksum"] = np.array(_checksum(arrays))
    return arrays


def save_model(model, file):
    """Write a fitted model to one ``.npz`` file.

    The file is written under a temporary name beside the target and renamed
    into place, so an interrupted save never leaves a truncated model behind.

    Parameters
    ----------
    model : MatrixFactorization
        A fitted model.
    file : str, os.PathLike or binary file object
        Where to write. A path is used as given (no ``.npz`` is appended).

    Raises
    ------
    ValueError
        If the model is not fitted.
    """
    arrays = _model_arrays(model)
    if hasattr(file, "write"):
        np.savez(file, **arrays)
        return
    _archive.atomic_write(file, lambda f: np.savez(f, **arrays))


def _name(file):
    return repr(os.fspath(file)) if isinstance(file, (str, os.PathLike)) else "the model file"


def _read_archive(file, arrays=True):
    """The header and (if ``arrays``) every member; ModelFileError on anything unreadable."""
    name = _name(file)
    if not hasattr(file, "read"):
        try:
            with open(file, "rb") as f:
                return _read_archive_from(f, name, arrays)
        except FileNotFoundError:
            raise ModelFileError(f"model file {name} does not exist") from None
        except IsADirectoryError:
            raise ModelFileError(f"model file {name} is a directory") from None
        except PermissionError:
            raise ModelFileError(f"model file {name} cannot be read (permission "
                                 "denied)") from None
    return _read_archive_from(file, name, arrays)


class _refusing:
    """Turn the archive reader's errors into ModelFileError naming the file."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, _archive.ArchiveError):
            sep = ": " if str(exc).startswith("member") else " "
            raise ModelFileError(f"{self.name}{sep}{exc}") from None
        return False


def _read_archive_from(f, name, arrays=True):
    start = f.tell()
    magic = f.read(4)
    size = f.seek(0, os.SEEK_END) - start
    f.seek(start)
    if not magic:
        raise ModelFileError(f"{name} is empty, not an mfcy model file")
    if magic[:1] == b"\x80":
        raise ModelFileError(f"{name} is a Python pickle, not an mfcy model file; refusing "
                             "to load it (unpickling can run arbitrary code)")
    if magic != b"PK\x03\x04":
        raise ModelFileError(f"{name} is not an mfcy model file (not a .npz archive)")
    try:
        npz = np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{name} is not a readable mfcy model file "
                             f"(truncated or damaged: {exc})") from None
    # The zip directory and every .npy header are checked before any array is
    # read (sizes, types, shapes against each other): see mfcy._archive.
    with npz, _refusing(name):
        archive = _archive.ModelArchive(npz.zip, size)
        # Only scalars are read here; anything else is refused as not one.
        header = _check_header(name, {key: archive.read(key) if archive.members[key].shape
                                      == () else np.empty(0) for key in _META
                                      if key in archive.members})
        if not arrays:
            return name, header, None
        return name, header, _read_members(name, archive, header["format"])


def _read_members(name, archive, fmt):
    """Every member, after the layout checks, with the checksum verified as they are read."""
    known = _META + _ARRAYS + ("checksum",)
    missing = [key for key in known if key not in archive.members]
    known += _OPTIONAL
    if missing:
        raise ModelFileError(f"{name} is incomplete: no {', '.join(map(repr, missing))}")
    unknown = sorted(set(archive.members) - set(known))
    if unknown:
        raise ModelFileError(f"{name} is not an mfcy model file of format version "
                             f"{FORMAT_VERSION}: unknown member {unknown[0]!r}")
    # A model kind that declares zero factors (BaselineOnly) stores (n, 0) arrays.
    kind = model_class(fmt.partition(".")[2])
    _archive.check_layout(archive.members, 0 if getattr(kind, "n_factors", None) == 0 else 1)
    stored = archive.read("checksum")
    members, digest = archive.read_all(skip=("checksum",))
    if digest != str(stored[()]):
        raise ModelFileError(f"{name} fails its checksum: the file was modified or "
                             "corrupted after it was saved")
    members["checksum"] = stored
    return members


def _scalar(members, key, kind, name):
    arr = members.get(key)
    if arr is None:
        raise ModelFileError(f"{name} is not an mfcy model file (no {key!r} member)")
    if arr.shape != () or arr.dtype.kind not in kind:
        raise ModelFileError(f"{name}: member {key!r} is not a scalar of the expected type")
    return arr[()]


def _check_header(name, members):
    fmt = _scalar(members, "format", "U", name)
    if not _known_format(str(fmt)):
        raise ModelFileError(f"{name} is not an mfcy model file (format {str(fmt)!r})")
    version = int(_scalar(members, "format_version", "iu", name))
    written_by = str(members["mfcy_version"][()]) if "mfcy_version" in members else "unknown"
    if version != FORMAT_VERSION:
        newer = "a newer" if version > FORMAT_VERSION else "an older"
        raise ModelFileError(
            f"{name} has model format version {version} (written by {newer} mfcy, "
            f"{written_by}); this mfcy ({_mfcy_version()}) reads format version "
            f"{FORMAT_VERSION} only" + (": upgrade mfcy" if version > FORMAT_VERSION else ""))
    return {"format": str(fmt), "format_version": version, "mfcy_version": written_by}


def _known_format(fmt):
    prefix, _, kind = fmt.partition(".")
    try:
        return prefix == "mfcy" and model_class(kind) is not None
    except ValueError:
        return False


def read_metadata(file):
    """What wrote a model file, without building the model.

    Parameters
    ----------
    file : str, os.PathLike or binary file object

    Returns
    -------
    dict
        ``format``, ``format_version`` and ``mfcy_version``.

    Raises
    ------
    ModelFileError
        If the file is not a readable mfcy model file of a supported version.
    """
    return _read_archive(file, arrays=False)[1]


def _validated_state(name, members):
    """The fitted state, after checking everything the kernel trusts."""
    def bad(what):
        return ModelFileError(f"{name} is inconsistent: {what}")

    P, Q = members["user_factors"], members["item_factors"]
    ub, ib = members["user_bias"], members["item_bias"]
    dtype = P.dtype
    if dtype not in (np.float32, np.float64) or P.ndim != 2 or Q.ndim != 2:
        raise bad("the factors must be 2-D float32 or float64 arrays")
    if any(a.dtype != dtype for a in (Q, ub, ib)):
        raise bad("the factors and biases have different dtypes")
    users, items = members["users"], members["items"]
    for ids, what in ((users, "users"), (items, "items")):
        if ids.ndim != 1 or ids.dtype.kind not in "iuU":
            raise bad(f"{what} must be a 1-D array of integer or string ids")
        # Items stay sorted; users are sorted after fit, but fold_in() appends
        # new users at the end, so for them only distinctness is required.
        if what == "items" and len(ids) > 1 and not np.all(ids[1:] > ids[:-1]):
            raise bad(f"{what} ids are not sorted and distinct")
        if what == "users" and len(np.unique(ids)) != len(ids):
            raise bad(f"{what} ids are not distinct")
    n_users, n_items = len(users), len(items)
    if P.shape[0] != n_users or Q.shape[0] != n_items or P.shape[1] != Q.shape[1]:
        raise bad(f"factor shapes {P.shape} and {Q.shape} do not match {n_users} users "
                  f"and {n_items} items")
    if ub.shape != (n_users,) or ib.shape != (n_items,):
        raise bad("bias shapes do not match the numbers of users and items")
    for arr, what in ((P, "user factors"), (Q, "item factors"), (ub, "user biases"),
                      (ib, "item biases")):
        if not np.isfinite(arr).all():
            raise bad(f"the {what} contain NaN or infinity")
    Y = members.get("implicit_factors")
    if Y is not None and (Y.dtype != dtype or Y.shape != Q.shape
                          or not np.isfinite(Y).all()):
        raise bad("the implicit factors must be finite, of the item factors' shape and dtype")
    indptr, seen = members["seen_indptr"], members["seen_items"]
    if (indptr.dtype.kind not in "iu" or seen.dtype.kind not in "iu" or indptr.ndim != 1
            or seen.ndim != 1 or indptr.shape != (n_users + 1,)):
        raise bad("the training interactions are not a CSR of item indices per user")
    if indptr[0] != 0 or indptr[-1] != len(seen) or np.any(np.diff(indptr) < 0):
        raise bad("the training interactions' row pointers are out of order")
    if len(seen) and (seen.min() < 0 or seen.max() >= n_items):
        raise bad("the training interactions refer to items the model does not have")
    if seen.dtype not in (np.int32, np.int64):
        # A narrower (or unsigned, or byte-swapped) type would wrap item indices
        # when fold_in() adds items to it; the values were just range-checked.
        seen = seen.astype(np.int64)
    global_mean = float(_scalar(members, "global_mean", "f", name))
    rating_range = members["rating_range"]
    if rating_range.shape != (2,) or rating_range.dtype.kind != "f":
        raise bad("rating_range must hold two floats")
    if not (np.isfinite(global_mean) and np.isfinite(rating_range).all()):
        raise bad("the global mean or the rating range is not finite")
    with np.errstate(over="ignore"):
        # fit() refuses ratings that overflow the factors' dtype: predictions
        # (in that dtype) from a larger mean would be infinite.
        fits = np.isfinite(np.array([global_mean, *rating_range]).astype(dtype)).all()
    if not fits:
        raise bad(f"the global mean or the rating range overflows {dtype}")
    with _refusing(name):  # the values beyond the kernel's needs: see mfcy._archive
        params = _archive.load_json(str(_scalar(members, "params", "U", name)), "params")
        history = _archive.load_json(str(_scalar(members, "history", "U", name)), "history")
        _archive.check_params(params)
        _archive.check_history(history)
        _archive.check_values(members)
    return {
        "params": params, "history": history, "P": np.ascontiguousarray(P),
        "Q": np.ascontiguousarray(Q), "user_bias": np.ascontiguousarray(ub),
        "item_bias": np.ascontiguousarray(ib), "global_mean": global_mean,
        "biased": bool(_scalar(members, "biased", "b", name)),
        "rating_range": (float(rating_range[0]), float(rating_range[1])),
        "n_epochs": int(_scalar(members, "n_epochs", "iu", name)),
        "users": users, "items": items, "seen_indptr": indptr.astype(np.int64, copy=False),
        "seen_items": seen,
        "implicit_factors": None if Y is None else np.ascontiguousarray(Y),
    }


def load_model(file, cls=None):
    """Read a model written by :func:`save_model`.

    Parameters
    ----------
    file : str, os.PathLike or binary file object
    cls : type, optional
        The class to build (:class:`~mfcy.MatrixFactorization` or a subclass).

    Returns
    -------
    MatrixFactorization
        Fitted, with predictions bit-identical to the saved model's.

    Raises
    ------
    ModelFileError
        If the file is missing, truncated, modified, of another format
        version, or holds a pickled object (which is never unpickled).
    """
    name, meta, members = _read_archive(file)
    # Registered by the model modules when mfcy is imported (io never imports a model).
    kind = model_class(meta["format"].partition(".")[2])
    if cls is not None and not issubclass(kind, cls):
        raise ModelFileError(f"{name} holds a {kind.__name__} model, not a {cls.__name__}: "
                             f"load it with {kind.__name__}.load or mfcy.io.load_model")
    cls = kind
    state = _validated_state(name, members)
    params = state["params"]
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise ModelFileError(
            f"{name} has hyperparameters this mfcy ({_mfcy_version()}) does not know: "
            f"{', '.join(unknown)} (written by mfcy {members['mfcy_version'][()]})")
    model = cls(**params)
    try:  # the constructor stores them as given; fold_in and fit would refuse them later
        model._validated_params()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{name} has invalid hyperparameters: {exc}") from None
    with _refusing(name):
        _archive.check_n_factors(model.n_factors, members)
    best_epoch = int(_scalar(members, "best_epoch", "i", "the model file"))
    install(model, FittedState.build(
        state["P"], state["Q"], state["user_bias"], state["item_bias"], state["biased"],
        global_mean=state["global_mean"], rating_range=state["rating_range"],
        users=state["users"], items=state["items"], seen_indptr=state["seen_indptr"],
        seen_items=state["seen_items"], history=state["history"], n_epochs=state["n_epochs"],
        best_epoch=best_epoch if best_epoch >= 0 else None,
        implicit_factors=state["implicit_factors"]))
    return model
