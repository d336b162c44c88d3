"""Read body-model ``.pkl``, ``.npy`` and ``.npz`` files without chumpy and without running code from them.

A pickle is a program: loading one calls whatever functions it names, so a plain ``pickle.load``
of a file from the internet can do anything. The unpickler here resolves only the names that the
official SMPL, MANO, FLAME and SMPL-X files (and the synthetic stand-in) need, listed in
`_allowed_globals`: numpy's array, dtype and scalar reconstruction, scipy.sparse matrices, plain
builtin containers and scalars, and Python 2's names for them. Any other name is refused with
`UnsafePickleError` (naming the file and ``module.name``) before anything is called.

The official pickles were written in Python 2 with some arrays stored as ``chumpy.ch.Ch`` objects.
chumpy is unmaintained and no longer imports with numpy >= 1.24 (it uses the removed ``np.bool``
etc.), so a plain ``pickle.load`` fails on these files. Here every ``chumpy.*`` class is replaced,
while unpickling, by a stub that only records the pickled state; afterwards each stub becomes the
numpy array it held. Nothing from chumpy is imported or executed.

``.npy`` files holding object arrays (FLAME's ``flame_dynamic_embedding.npy``: a dict) and the
object entries of SMPL-X ``.npz`` files (``joint2num``, ``part2num``) are pickles inside: they go
through the same unpickler; every other array is read with ``allow_pickle=False``.
"""

from __future__ import annotations

import functools
import os
import pickle
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from .files import UnreadableBodyModelFileError, UnsafePickleError

_CHUMPY_VALUE_KEY = "x"  # chumpy's Ch keeps its value in the term 'x' of its instance dict


class _ChumpyStub:
    """Stands in for one chumpy object during unpickling; keeps what pickle hands it."""

    chumpy_class = "chumpy"  # overwritten per stub class by `_stub_class`
    state: Any = None  # the pickled state; a class default, as copyreg._reconstructor skips __init__

    def __new__(cls, *args: Any, **kwargs: Any) -> _ChumpyStub:
        # pickle creates instances through cls.__new__(cls, *args) (protocol 2) or
        # copyreg._reconstructor (protocol 0/1); either way no chumpy constructor runs.
        return super().__new__(cls)

    def __setstate__(self, state: Any) -> None:
        self.state = state


_STUB_CLASSES: dict[str, type[_ChumpyStub]] = {}


def _stub_class(module: str, name: str) -> type[_ChumpyStub]:
    qualified = f"{module}.{name}"
    if qualified not in _STUB_CLASSES:
        _STUB_CLASSES[qualified] = type(f"ChumpyStub_{name}", (_ChumpyStub,), {"chumpy_class": qualified})
    return _STUB_CLASSES[qualified]


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """What ``_codecs.encode`` does in Python 3 pickles of bytes at protocol <= 2, for that one codec only."""
    if not isinstance(text, str) or encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not a bytes literal")
    return text.encode("latin1")


@functools.cache
def _allowed_globals() -> dict[tuple[str, str], Any]:
    """(module, name) -> object: every global the official body-model pickles need, under old and new names."""
    import copyreg

    import scipy.sparse

    try:  # numpy >= 2 (numpy 1.26 has it too); `numpy.core` is a deprecated alias there
        from numpy._core import multiarray, numeric
    except ImportError:
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]

    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):  # numpy 1 writes numpy.core, numpy 2 numpy._core
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct  # ndarray, protocols 0-4
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar  # numpy scalars, e.g. np.float64
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer  # ndarray, protocol 5
    for name in ("csc_matrix", "csr_matrix", "coo_matrix"):
        cls = getattr(scipy.sparse, name)
        kind = name[:3]
        for module in ("scipy.sparse", f"scipy.sparse.{kind}", f"scipy.sparse._{kind}"):  # public, old, new paths
            allowed[(module, name)] = cls
    # Containers and scalars only. `object` is the base that protocol 0/1 pickles hand to copyreg._reconstructor.
    plain = (bool, bytearray, bytes, complex, dict, float, frozenset, int, list, object, set, str, tuple)
    for cls in plain:
        for module in ("builtins", "__builtin__"):  # Python 3 and Python 2 names
            allowed[(module, cls.__name__)] = cls
    for module in ("copyreg", "copy_reg"):
        # Python's own rebuild of protocol 0/1 objects: it only calls base.__new__/__init__ of classes
        # that were themselves resolved through this list.
        allowed[(module, "_reconstructor")] = copyreg._reconstructor
    allowed[("_codecs", "encode")] = _latin1_bytes  # how Python 3 pickles bytes at protocol <= 2
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """A latin1 unpickler that stubs chumpy and resolves nothing outside `_allowed_globals`.

    Args:
        file: the open pickle stream.
        path: the file, for error messages.
        where: which part of the file the stream is (e.g. `` entry 'joint2num'``), for error messages.
    """

    def __init__(self, file: IO[bytes], path: Path, where: str = "") -> None:
        super().__init__(file, encoding="latin1")  # latin1: Python 2 str -> the bytes of numpy arrays
        self._path = path
        self._where = where

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _stub_class(module, name)
        allowed = _allowed_globals().get((module, name))
        if allowed is None:
            raise UnsafePickleError(self._path, f"{module}.{name}", self._where)
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(self._path, "a persistent id", self._where)  # no official file has one


def _unpickle(stream: IO[bytes], path: Path, where: str = "") -> Any:
    """One restricted unpickling; a broken pickle becomes `UnreadableBodyModelFileError`."""
    try:
        return _RestrictedUnpickler(stream, path, where).load()
    except UnreadableBodyModelFileError:
        raise
    except Exception as exc:  # truncated or foreign data raises EOFError, UnpicklingError, ValueError, ...
        raise UnreadableBodyModelFileError(path, f"not a readable pickle{where} ({type(exc).__name__}: {exc})") from exc


def _convert(value: Any, path: Path, key: str) -> Any:
    """Replace every chumpy stub inside ``value`` (dicts, lists, tuples) by its numpy array."""
    if isinstance(value, _ChumpyStub):
        state = value.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]  # (instance dict, slot state) form of pickle's BUILD
        if not isinstance(state, dict) or _CHUMPY_VALUE_KEY not in state:
            keys = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"{path}: entry {key!r} is a {value.chumpy_class} object without a stored value "
                f"(state: {keys}); only chumpy.Ch arrays can be read without chumpy"
            )
        return np.asarray(_convert(state[_CHUMPY_VALUE_KEY], path, key))
    if isinstance(value, dict):
        return {k: _convert(v, path, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        converted = [_convert(v, path, f"{key}[{i}]") for i, v in enumerate(value)]
        return converted if isinstance(value, list) else tuple(converted)
    return value


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """Load an official body-model pickle (Python 2 era, possibly with chumpy arrays) without running code.

    Args:
        path: the ``.pkl`` file.

    Returns:
        The unpickled object with every chumpy array replaced by a numpy array: a dict for the
        model files (SMPL, MANO, FLAME, SMPL-X .pkl, the vertex-id and embedding files), an array
        for ``SMPLX_to_J14.pkl``. ``scipy.sparse`` matrices (e.g. SMPL's ``J_regressor``) stay
        sparse; smplx densifies them itself.

    Raises:
        UnsafePickleError: the pickle names a global outside the allow-list; nothing was called.
        UnreadableBodyModelFileError: the file is truncated or not a pickle.
        ValueError: the file holds a chumpy object that is not a plain ``Ch`` array (e.g. a lazy
            chumpy expression); the message names the file and the key.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = _unpickle(f, path)
    return _convert(raw, path, "")


_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _read_npy(stream: IO[bytes], path: Path, where: str = "") -> np.ndarray:
    """One ``.npy`` stream: object arrays through the restricted unpickler, all others without pickle.

    ``stream`` must be seekable (files and zip members are).
    """
    try:
        version = np.lib.format.read_magic(stream)
        if version not in _NPY_HEADER_READERS:  # 3.0 only adds utf8 field names, which object arrays never have
            raise ValueError(f"unsupported .npy format version {version}")
        shape, _, dtype = _NPY_HEADER_READERS[version](stream)
        if not dtype.hasobject:
            stream.seek(0)
            return np.lib.format.read_array(stream, allow_pickle=False)
    except Exception as exc:  # truncated or foreign data: ValueError, EOFError, zlib.error, BadZipFile (CRC)
        raise UnreadableBodyModelFileError(path, f"not a readable .npy array{where} ({exc})") from exc
    # np.save writes an object array as one pickle of the whole array, right after the header
    array = _unpickle(stream, path, where)
    if not isinstance(array, np.ndarray) or array.shape != shape:
        raise UnreadableBodyModelFileError(path, f"the pickled array{where} is not the {shape} array of its header")
    return array


def load_npy(path: str | os.PathLike[str]) -> np.ndarray:
    """Load a ``.npy`` file without running code from it.

    Args:
        path: the file, e.g. ``SMPL-X__FLAME_vertex_ids.npy`` (a plain array) or
            ``flame_dynamic_embedding.npy`` (a 0-d object array holding a dict; ``[()]`` gives the dict).

    Returns:
        The array; an object array's items are unpickled through the allow-list of `load_pickle`.

    Raises:
        UnsafePickleError: an object array names a global outside the allow-list; nothing was called.
        UnreadableBodyModelFileError: the file is truncated or not a ``.npy`` file.
    """
    path = Path(path)
    with open(path, "rb") as f:
        return _read_npy(f, path)


def load_npz(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load every entry of a ``.npz`` archive (an SMPL-X model file) without running code from it.

    Args:
        path: the archive.

    Returns:
        entry name -> array. Numeric entries are read with ``allow_pickle=False``; object entries
        (the official ``joint2num``, ``part2num``) through the allow-list of `load_pickle`.

    Raises:
        UnsafePickleError: an object entry names a global outside the allow-list; nothing was called.
        UnreadableBodyModelFileError: the file is truncated, not a zip archive, or has a member
            that is not a ``.npy`` array.
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise UnreadableBodyModelFileError(path, f"not a .npz (zip) archive ({exc})") from exc
    entries: dict[str, Any] = {}
    with archive:
        for info in archive.infolist():
            key = info.filename.removesuffix(".npy")
            where = f" in entry {key!r}"
            try:
                member = archive.open(info)
            except (zipfile.BadZipFile, NotImplementedError, ValueError) as exc:
                raise UnreadableBodyModelFileError(path, f"unreadable archive member{where} ({exc})") from exc
            with member:
                entries[key] = _read_npy(member, path, where)
    return entries
