"""Reads a written person back: its SMPL-X (or SMPL) mesh and joints posed from the parameter files, and the camera.

The AGORA loader does the same through the data pipeline; this short path serves the contact sheet and the
tests, which check that the files reproduce what was rendered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.body_models.layers import BodyModels
from data.AGORA.fits import checked_relpath

from . import annotations as agora

PARAM_SHAPES: Mapping[str, tuple[int, ...]] = {
    "global_orient": (3,), "body_pose": (21, 3), "jaw_pose": (3,), "leye_pose": (3,), "reye_pose": (3,),
    "left_hand_pose": (15, 3), "right_hand_pose": (15, 3), "betas": (10,), "expression": (10,), "transl": (3,),
}  # fmt: skip
"""The keys of a ``smplx_params_cam`` file and their shapes."""
SMPL_PARAM_SHAPES: Mapping[str, tuple[int, ...]] = {"global_orient": (3,), "body_pose": (23, 3), "betas": (10,),
                                                    "transl": (3,)}  # fmt: skip
"""The keys of a ``smpl_params_cam`` file (data/Synthetic/smpl_variant.py) and their shapes."""


@dataclass
class PosedPerson:
    """One annotated person posed from its files, camera frame.

    Attributes:
        vertices: (V, 3) float32 metres.
        joints: (J, 3) float32 metres, the SMPL-X output joints (144 with the face contour), or SMPL's 45.
        focal: (fx, fy) pixels of the 1280x720 image.
        princpt: (cx, cy) pixels of the 1280x720 image.
    """

    vertices: np.ndarray
    joints: np.ndarray
    focal: tuple[float, float]
    princpt: tuple[float, float]


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"missing file {path}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid json ({error})") from error


def read_smplx_params(path: Path, shapes: Mapping[str, tuple[int, ...]] = PARAM_SHAPES) -> dict[str, np.ndarray]:
    """A ``smplx_params_cam`` file (or, with `SMPL_PARAM_SHAPES`, a ``smpl_params_cam`` one) as float32 arrays of
    those shapes; an error names the file and key."""
    params = read_json(path)
    arrays = {}
    for key, shape in shapes.items():
        if key not in params:
            raise ValueError(f"{path}: missing key {key!r}")
        arrays[key] = np.asarray(params[key], dtype=np.float32).reshape(shape)
    return arrays


def _path(root: Path, annotation: Mapping[str, Any], key: str) -> Path:
    """root / the annotation's path under ``key``, which must stay inside the root."""
    return root / checked_relpath(annotation[key], root, f"annotation {annotation.get('id')}", key)


def pose_annotation(root: Path, annotation: Mapping[str, Any], body_models: BodyModels) -> PosedPerson:
    """Poses one COCO annotation of a synthetic (or AGORA) dataset with its annotated gender's layer.

    Args:
        root: the dataset root.
        annotation: an ``annotations`` entry (``smplx_param_path``, or ``smpl_param_path`` for the SMPL variant,
            ``cam_param_path``, ``gender``).
        body_models: the body models the dataset was made with.
    """
    if "smpl_param_path" in annotation:
        params = read_smplx_params(_path(root, annotation, "smpl_param_path"), SMPL_PARAM_SHAPES)
        layer = body_models.smpl(annotation["gender"])
    else:
        params = read_smplx_params(_path(root, annotation, "smplx_param_path"))
        layer = body_models.smplx(annotation["gender"])
    camera = read_json(_path(root, annotation, "cam_param_path"))
    with torch.no_grad():
        output = layer(**{k: torch.from_numpy(v.reshape(1, -1)) for k, v in params.items()})
    fx, fy = (float(f) / agora.SCALE_TO_4K for f in camera["focal"])  # the file is at 3840x2160
    cx, cy = (float(c) / agora.SCALE_TO_4K for c in camera["princpt"])
    return PosedPerson(output.vertices[0].numpy(), output.joints[0].numpy(), (fx, fy), (cx, cy))
