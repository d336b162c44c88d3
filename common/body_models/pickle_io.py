"""Load the official SMPL, MANO, FLAME and SMPL-X ``.pkl`` files without chumpy.

The official pickles were written in Python 2 with some arrays stored as ``chumpy.ch.Ch`` objects.
chumpy is unmaintained and no longer imports with numpy >= 1.24 (it uses the removed ``np.bool``
etc.), so a plain ``pickle.load`` fails on these files. Here every ``chumpy.*`` class is replaced,
while unpickling, by a stub that only records the pickled state; afterwards each stub becomes the
numpy array it held. Nothing from chumpy is imported or executed.

Like any pickle, these files can run code when loaded: load only files from the official sources
(or the synthetic stand-in).
"""

from __future__ import annotations

import mmap
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

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


class _ChumpyFreeUnpickler(pickle.Unpickler):
    """A latin1 unpickler that never imports chumpy."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _stub_class(module, name)
        if module.startswith("scipy.sparse.") and not module.startswith("scipy.sparse._"):
            # Old scipy module paths (scipy.sparse.csc.csc_matrix in the official files) are deprecated
            # and go away in SciPy 2.0; the public namespace holds the same classes.
            import scipy.sparse

            if hasattr(scipy.sparse, name):
                return getattr(scipy.sparse, name)
        return super().find_class(module, name)


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
    """Load an official body-model pickle (Python 2 era, possibly with chumpy arrays).

    Args:
        path: the ``.pkl`` file.

    Returns:
        The unpickled object with every chumpy array replaced by a numpy array: a dict for the
        model files (SMPL, MANO, FLAME, SMPL-X .pkl, the vertex-id and embedding files), an array
        for ``SMPLX_to_J14.pkl``. ``scipy.sparse`` matrices (e.g. SMPL's ``J_regressor``) stay
        sparse; smplx densifies them itself.

    Raises:
        ValueError: the file holds a chumpy object that is not a plain ``Ch`` array (e.g. a lazy
            chumpy expression); the message names the file and the key.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = _ChumpyFreeUnpickler(f, encoding="latin1").load()  # latin1: Python 2 str -> bytes of arrays
    return _convert(raw, path, "")


def pickle_references_chumpy(path: str | os.PathLike[str]) -> bool:
    """Whether a pickle names a chumpy class, i.e. whether a plain ``pickle.load`` needs chumpy.

    A pickle that references a class stores its module name as plain text (opcode GLOBAL in
    protocols 0-3, a string before STACK_GLOBAL in 4-5), so the bytes ``chumpy`` occur in every
    file that needs chumpy. A false positive (those bytes inside array data) only costs a
    sanitised copy; a false negative cannot happen.
    """
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return False
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(b"chumpy") >= 0
