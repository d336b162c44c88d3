"""Shared parsing for dataset modules: COCO-format files, NeuralAnnot SMPL-X fits, per-frame json tables.

A NeuralAnnot file maps ``str(annotation id)`` to ``{'smplx_param': {...}, 'cam_param': {'focal', 'princpt'}}``:
axis-angle radians and metres, already in the frame of the image's camera (no R, t), intrinsics in the
pixels of the original image.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from common.body_models.layers import NUM_BETAS, NUM_EXPRESSION
from data.record import CameraParams, SMPLXParams

__all__ = ["keypoints", "load_coco", "neural_annot_params", "read_json"]

_BOX_PARTS = ("lhand", "rhand", "face")


def read_json(path: Path) -> Any:
    """The parsed content of a json file; ValueError naming the file when it is not valid json."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid json ({err})") from err


def load_coco(path: Path) -> COCO:
    """A pycocotools index of a COCO-format annotation file (its progress prints are swallowed)."""
    dataset = read_json(path)  # parsed here, so that a bad file is an error naming it
    if not isinstance(dataset, dict) or not {"images", "annotations"} <= dataset.keys():
        raise ValueError(f"{path}: not a COCO-format file (needs 'images' and 'annotations')")
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports progress on stdout
        coco.createIndex()
    return coco


def keypoints(ann: Mapping[str, Any], key: str, count: int, source: Path) -> tuple[np.ndarray, np.ndarray]:
    """One COCO keypoint field as pixels and a mask.

    Args:
        ann: the annotation dict.
        key: field holding ``count`` x (x, y, v) numbers, e.g. 'keypoints' or 'lefthand_kpts'.
        count: number of keypoints the field must hold.
        source: the annotation file, for error messages.

    Returns:
        (count, 2) float64 pixels and (count,) float64 mask: 1 where v > 0 (labelled, visible or not, as
        Hand4Whole counts them).
    """
    if key not in ann:
        raise ValueError(f"{source}: annotation {ann.get('id')} has no {key!r}")
    values = np.asarray(ann[key], dtype=np.float64)
    if values.size != count * 3:
        raise ValueError(f"{source}: annotation {ann.get('id')} {key!r} holds {values.size} numbers, "
                         f"expected {count} x 3")  # fmt: skip
    values = values.reshape(count, 3)
    return values[:, :2].copy(), (values[:, 2] > 0).astype(np.float64)


def _vector(param: Mapping[str, Any], key: str, size: int, where: str) -> np.ndarray:
    value = np.asarray(param[key], dtype=np.float64).reshape(-1)
    if value.size < size:
        raise ValueError(f"{where}: {key!r} has {value.size} values, expected {size}")
    return value[:size]  # NeuralAnnot stores exactly these sizes; extra betas (kids) are dropped as Hand4Whole


def neural_annot_params(
    entry: Mapping[str, Any], where: str, part_valid: Mapping[str, bool] | None = None
) -> tuple[SMPLXParams, CameraParams]:
    """SMPL-X parameters and the camera of one NeuralAnnot entry.

    A hand's pose (or the face's jaw pose and expression) is used only when present and valid: the entry's
    own ``lhand_valid`` / ``rhand_valid`` / ``face_valid`` flag when it has one, else ``part_valid`` (e.g. the
    COCO-WholeBody annotation's flags), else valid. Parts left out are posed with zeros and masked downstream.

    Args:
        entry: ``{'smplx_param': {...}, 'cam_param': {'focal', 'princpt'}}``.
        where: file and key of the entry, for error messages.
        part_valid: fallback validity per part ('lhand', 'rhand', 'face').

    Returns:
        (params, camera) with the camera's R and t None (the fits are in the camera frame).
    """
    try:
        param, cam = entry["smplx_param"], entry["cam_param"]
        valid = {p: bool(param.get(f"{p}_valid", (part_valid or {}).get(p, True))) for p in _BOX_PARTS}
        lhand = _vector(param, "lhand_pose", 45, where) if valid["lhand"] and "lhand_pose" in param else None
        rhand = _vector(param, "rhand_pose", 45, where) if valid["rhand"] and "rhand_pose" in param else None
        face = valid["face"] and "jaw_pose" in param and "expr" in param
        params = SMPLXParams(
            root_pose=_vector(param, "root_pose", 3, where),
            body_pose=_vector(param, "body_pose", 63, where),
            shape=_vector(param, "shape", NUM_BETAS, where),
            trans=_vector(param, "trans", 3, where),
            lhand_pose=lhand,
            rhand_pose=rhand,
            jaw_pose=_vector(param, "jaw_pose", 3, where) if face else None,
            expr=_vector(param, "expr", NUM_EXPRESSION, where) if face else None,
            gender=str(param.get("gender", "neutral")),
        )
        camera = CameraParams(focal=_vector(cam, "focal", 2, where), princpt=_vector(cam, "princpt", 2, where))
    except KeyError as err:
        raise ValueError(f"{where}: NeuralAnnot entry lacks {err}") from None
    return params, camera


def nested_entry(table: Mapping[str, Any], key: tuple[str, ...], path: Path) -> Any:
    """``table[key[0]][key[1]]...`` of a per-frame json (camera, joint, fit tables keyed by string ids).

    Raises:
        ValueError: naming the file and the key path that is missing.
    """
    value: Any = table
    for level, part in enumerate(key):
        if not isinstance(value, Mapping) or part not in value:
            raise ValueError(f"{path}: no entry [{']['.join(key[: level + 1])}]")
        value = value[part]
    return value
