"""Prediction files for AGORA's official evaluation server, and the server's format rules.

The server (github.com/pixelite1201/agora_evaluation) reads one pickle per detected person, named
``<image name without .png>_personId_<k>.pkl``, from a folder ``predictions`` inside an uploaded zip. Its
format checker (``agora_evaluation/check_pred_format.py``, ``check_smplx``) accepts a dict with

* ``joints``: an np.ndarray of exactly two dimensions (K, >= 2) with K >= 24, pixels of the 3840x2160 image;
  only the first 24 rows are used, to match predictions to people. The checker does not squeeze this
  array, so Hand4Whole's (1, 144, 2) fails it: we write (144, 2).
* either ``verts`` (10475, 3) and ``allSmplJoints3d`` (>= 127, 3) (both squeezed), or ``params``: a dict of
  np.ndarrays with the shapes of `SMPLX_PARAM_SHAPES` (axis-angle vectors, the default ``pose2rot=True``)
  or `SMPLX_PARAM_SHAPES_ROTMAT` (``pose2rot=False``), ``betas`` of shape (1, num_betas);
* optional ``gender`` ('male', 'female', 'neutral'), ``kid_flag`` (True or False; a kid needs 11 betas and
  ``num_betas`` 11), ``num_betas`` (10 to 299, default 10), ``pose2rot`` (default True).

The checker tests only ``isinstance(value, np.ndarray)``, not the dtype; the server poses SMPL-X with
``torch.tensor(value, dtype=torch.float)``. `check_agora_prediction` therefore also requires real numbers
(integer or floating dtype, no object or complex arrays) and finite values: those are our rules, not the
checker's.

The evaluation kit runs with numpy 1.x (its requirements pin pandas 1.0.3 and torch 1.4). A numpy 2 pickle of
an array names ``numpy._core.multiarray._reconstruct``, which numpy 1.x cannot import, so the files are
written with pickle protocol 2 (readable by every Python 3 and by 2.7) and their numpy 2 module names mapped
back to ``numpy.core`` (`dumps_for_numpy1`); numpy 2 still loads ``numpy.core.multiarray._reconstruct``.
"""

from __future__ import annotations

import os
import pickle
import pickletools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from common.utils.atomic_io import write_bytes_atomic

__all__ = [
    "PREDICTIONS_FOLDER",
    "SMPLX_PARAM_SHAPES",
    "SMPLX_PARAM_SHAPES_ROTMAT",
    "check_agora_prediction",
    "dumps_for_numpy1",
    "prediction_file_name",
    "write_agora_prediction",
]

PREDICTIONS_FOLDER = "predictions"  # the checker reads <zip>/predictions/*; every file there must be a pickle
MIN_MATCHING_JOINTS = 24  # the server matches predictions to people on the first 24 projected joints
SMPLX_VERTICES, SMPLX_EVAL_JOINTS = 10475, 127  # sizes of the verts / allSmplJoints3d route
SMPLX_PARAM_SHAPES: Mapping[str, tuple[int, ...]] = {
    "transl": (1, 3), "global_orient": (1, 3), "body_pose": (1, 63), "left_hand_pose": (1, 45),
    "right_hand_pose": (1, 45), "leye_pose": (1, 3), "reye_pose": (1, 3), "jaw_pose": (1, 3),
    "expression": (1, 10),
}  # fmt: skip
"""params shapes with pose2rot True (axis-angle); betas is (1, num_betas)."""
SMPLX_PARAM_SHAPES_ROTMAT: Mapping[str, tuple[int, ...]] = {
    "transl": (1, 3), "global_orient": (1, 1, 3, 3), "body_pose": (1, 21, 3, 3), "left_hand_pose": (1, 15, 3, 3),
    "right_hand_pose": (1, 15, 3, 3), "leye_pose": (1, 1, 3, 3), "reye_pose": (1, 1, 3, 3),
    "jaw_pose": (1, 1, 3, 3), "expression": (1, 10),
}  # fmt: skip
"""params shapes with pose2rot False (rotation matrices); betas is (1, num_betas)."""
_GENDERS = ("male", "female", "neutral")
_NUMPY2_CORE, _NUMPY1_CORE = "numpy._core", "numpy.core"


def prediction_file_name(image_name: str, person_id: int) -> str:
    """``<image name>_personId_<k>.pkl``: the server finds the image by dropping the last two '_' fields."""
    return f"{image_name}_personId_{int(person_id)}.pkl"


def _array(value: Any, key: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise ValueError(f"AGORA prediction: {key!r} must be a numpy.ndarray, got {type(value).__name__}")
    if value.dtype.kind not in "iuf":
        raise ValueError(f"AGORA prediction: {key!r} has dtype {value.dtype}; the server needs real numbers")
    if not np.all(np.isfinite(value)):
        raise ValueError(f"AGORA prediction: {key!r} has non-finite values")
    return value


def _shape(value: Any, shape: tuple[int, ...], key: str) -> None:
    if _array(value, key).shape != shape:
        raise ValueError(f"AGORA prediction: {key!r} has shape {value.shape}, the server expects {shape}")


def _num_betas(pred: Mapping[str, Any]) -> int:
    """The betas count the checker expects, after its checks of gender, kid_flag and num_betas."""
    if "gender" in pred and pred["gender"] not in _GENDERS:
        raise ValueError(f"AGORA prediction: 'gender' is {pred['gender']!r}, expected one of {_GENDERS}")
    kid = pred.get("kid_flag", False)
    if kid not in (True, False):
        raise ValueError(f"AGORA prediction: 'kid_flag' is {kid!r}, expected True or False")
    num_betas = pred.get("num_betas", 10)
    if "num_betas" in pred and num_betas not in range(10, 300):
        raise ValueError(f"AGORA prediction: 'num_betas' is {num_betas!r}, expected an integer in [10, 300)")
    if kid and num_betas != 11:  # the checker demands (1, 11) betas for a kid, and (1, num_betas) for everyone
        raise ValueError("AGORA prediction: a kid ('kid_flag' True) needs 'num_betas' 11 and (1, 11) 'betas'")
    return int(num_betas)


def _check_params(pred: Mapping[str, Any]) -> None:
    params = pred["params"]
    if not isinstance(params, Mapping):
        raise ValueError(f"AGORA prediction: 'params' must be a dict, got {type(params).__name__}")
    pose2rot = pred.get("pose2rot", True)
    shapes = {**(SMPLX_PARAM_SHAPES if pose2rot else SMPLX_PARAM_SHAPES_ROTMAT), "betas": (1, _num_betas(pred))}
    for key, shape in shapes.items():
        if key not in params:
            raise ValueError(f"AGORA prediction: 'params' lacks {key!r}")
        _shape(params[key], shape, f"params.{key}")


def check_agora_prediction(pred: Mapping[str, Any]) -> None:
    """Raise ValueError naming the key if ``pred`` is not one person's SMPL-X prediction the server accepts.

    Encodes check_pred_format.py's ``check_smplx`` rules (module docstring) plus ours: real-number dtypes and
    finite values.

    Args:
        pred: the dict that goes into one ``*_personId_<k>.pkl`` file.
    """
    if not isinstance(pred, Mapping):
        raise ValueError(f"AGORA prediction: must be a dict, got {type(pred).__name__}")
    if "allSmplJoints3d" in pred and "verts" in pred:
        _shape(np.squeeze(_array(pred["verts"], "verts")), (SMPLX_VERTICES, 3), "verts")
        joints_3d = np.squeeze(_array(pred["allSmplJoints3d"], "allSmplJoints3d"))
        if joints_3d.ndim != 2 or joints_3d.shape[1] != 3 or joints_3d.shape[0] < SMPLX_EVAL_JOINTS:
            raise ValueError(f"AGORA prediction: 'allSmplJoints3d' has shape {joints_3d.shape}, the server expects "
                             f"({SMPLX_EVAL_JOINTS} or more, 3)")  # fmt: skip
    elif "params" in pred:
        _check_params(pred)
    else:
        raise ValueError("AGORA prediction: needs 'params', or 'verts' and 'allSmplJoints3d'")
    if "joints" not in pred:
        raise ValueError("AGORA prediction: lacks 'joints' (projected joints in 3840x2160 pixels)")
    joints = _array(pred["joints"], "joints")  # not squeezed: the checker takes the array as it is
    if joints.ndim != 2 or joints.shape[1] < 2 or joints.shape[0] < MIN_MATCHING_JOINTS:
        raise ValueError(f"AGORA prediction: 'joints' has shape {joints.shape}, the server expects "
                         f"({MIN_MATCHING_JOINTS} or more, 2): two dimensions, no batch axis")  # fmt: skip


def dumps_for_numpy1(obj: Any) -> bytes:
    """``obj`` pickled with protocol 2, numpy 2's ``numpy._core.*`` globals renamed to numpy 1's ``numpy.core.*``.

    Protocol 2 writes each global as a GLOBAL opcode, ``c<module>\\n<name>\\n``, and has no frames or byte
    offsets, so rewriting exactly those opcodes (located with pickletools, never by searching the bytes,
    which could hit array data) leaves a valid pickle.

    Args:
        obj: plain containers, strings, numbers and numpy arrays.

    Returns:
        The pickle bytes.
    """
    data = pickle.dumps(obj, protocol=2)
    pieces, copied_to = [], 0
    for opcode, arg, pos in pickletools.genops(data):
        if opcode.name != "GLOBAL":
            continue
        module, name = arg.split(" ", 1)
        if module == _NUMPY2_CORE or module.startswith(_NUMPY2_CORE + "."):
            legacy = _NUMPY1_CORE + module[len(_NUMPY2_CORE) :]
            pieces += [data[copied_to:pos], b"c", legacy.encode("ascii"), b"\n", name.encode("ascii"), b"\n"]
            copied_to = pos + 1 + len(module) + 1 + len(name) + 1  # the opcode byte, two lines
    pieces.append(data[copied_to:])
    return b"".join(pieces)


def write_agora_prediction(path: str | os.PathLike[str], pred: Mapping[str, Any]) -> Path:
    """Check one person's prediction (`check_agora_prediction`) and write it atomically for numpy 1.x readers."""
    check_agora_prediction(pred)
    return write_bytes_atomic(path, dumps_for_numpy1(dict(pred)))
