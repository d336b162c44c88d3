"""Body models (SMPL-X, SMPL, MANO, FLAME) over the ``smplx`` package, joint sets by name, and the
files of Hand4Whole's ``human_model_files`` tree.

Importing this package is cheap and reads no file: `BodyModels` and `get_body_models` (which need
torch and smplx) are imported on first access; layers and arrays load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .files import MissingBodyModelFileError, UnreadableBodyModelFileError, UnsafePickleError
from .pickle_io import load_npy, load_npz, load_pickle

if TYPE_CHECKING:
    from .layers import BodyModels, get_body_models

__all__ = ["BodyModels", "MissingBodyModelFileError", "UnreadableBodyModelFileError", "UnsafePickleError",
           "get_body_models", "load_npy", "load_npz", "load_pickle"]  # fmt: skip
_LAZY = {"BodyModels", "get_body_models"}


def __getattr__(name: str) -> Any:
    # PEP 562: defer `layers` (torch, smplx) until a caller asks for it.
    if name in _LAZY:
        from . import layers

        return getattr(layers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
