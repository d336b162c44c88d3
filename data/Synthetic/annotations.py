"""AGORA's parsed layout: file names, boxes and the COCO-style image and annotation records.

As Hand4Whole's ``tool/AGORA/agora2coco_smplx.py`` writes it: boxes are xywh in 3840x2160 pixels, the
extent of projected SMPL-X points enlarged x1.2 about its centre; camera intrinsics are at 3840x2160 as
well, three times those of the 1280x720 images that are written. The body box is AGORA's (the 127 joints
without the face contour). The hand and face boxes take the part's vertices as well as AGORA's joints
(hands: the 15 finger joints and 5 fingertips with the hand's MANO vertices; face: the 51 static landmarks
with the FLAME vertices): from the joints alone, the heel of the hand and the forehead fall outside them,
while the hand and face crops of the network must hold the whole part.

Each person is written as both of AGORA's fit variants: SMPL-X (what was rendered) and SMPL (its pseudo-GT,
data/Synthetic/smpl_variant.py), each with its annotation file; the SMPL one has the same entries and boxes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from common.body_models.joint_sets import FACE_STATIC_LANDMARKS, SMPLX_FINGERS, SMPLX_OUTPUT
from data.AGORA.fits import FIT_VARIANTS

IMAGE_HW = (720, 1280)  # (height, width) of the written images
SCALE_TO_4K = 3.0  # AGORA's boxes and intrinsics are at 3840x2160
BOX_ENLARGEMENT = 1.2
SPLITS = ("train", "validation")
MIN_VISIBLE_PIXELS = 200  # at 1280x720; with occlusion < 90 %, the person counts as is_valid
MAX_OCCLUSION = 90.0


def _hand(side: str) -> tuple[str, ...]:
    return tuple(f"{side}_{f}_{k}" for f in SMPLX_FINGERS for k in (1, 2, 3)) + tuple(
        f"{side}_{f}_4" for f in SMPLX_FINGERS
    )


PART_JOINTS: Mapping[str, tuple[str, ...]] = {
    "bbox": tuple(
        SMPLX_OUTPUT.names[i] for part in ("skeleton", "keypoints", "face_static") for i in SMPLX_OUTPUT.parts[part]
    ),
    "lhand_bbox": _hand("L"),
    "rhand_bbox": _hand("R"),
    "face_bbox": FACE_STATIC_LANDMARKS,
}
"""AGORA box key -> the SMPL-X output joints (names, ``joint_sets.SMPLX_OUTPUT``) it is made from."""
PART_JOINT_IDX: Mapping[str, np.ndarray] = {key: SMPLX_OUTPUT.indices(names) for key, names in PART_JOINTS.items()}


def agora_box(points_xy: np.ndarray) -> list[float]:
    """AGORA's box of 2D points: their extent enlarged x1.2 about its centre.

    Args:
        points_xy: (K, 2) pixels.

    Returns:
        [x, y, w, h] in the points' pixels, float32 values.
    """
    low, high = points_xy.min(axis=0), points_xy.max(axis=0)
    centre, size = (low + high) / 2.0, (high - low) * BOX_ENLARGEMENT
    return [float(v) for v in np.concatenate([centre - size / 2.0, size]).astype(np.float32)]


def part_boxes(joints_img: np.ndarray, part_vertices_img: Mapping[str, np.ndarray]) -> dict[str, list[float]]:
    """The four boxes of a person, xywh in the pixels of the inputs.

    Args:
        joints_img: (144, 2) projected SMPL-X output joints.
        part_vertices_img: {'lhand_bbox', 'rhand_bbox', 'face_bbox'} -> (K, 2) the part's projected vertices
            (the MANO ids of that hand, the FLAME ids); they widen the joints' extent.

    Returns:
        {'bbox', 'lhand_bbox', 'rhand_bbox', 'face_bbox'} -> [x, y, w, h].
    """
    boxes = {}
    for key, idx in PART_JOINT_IDX.items():
        extra = part_vertices_img.get(key)
        points = joints_img[idx] if extra is None else np.concatenate([joints_img[idx], extra])
        boxes[key] = agora_box(points)
    return boxes


def image_name(split: str, index: int) -> str:
    """The image's base name, e.g. 'synthetic_train_000042'."""
    return f"synthetic_{split}_{index:06d}"


def image_path(split: str, name: str) -> str:
    """The written 1280x720 PNG, relative to the dataset root (AGORA's ``file_name_1280x720``)."""
    return f"1280x720/{split}/{name}_1280x720.png"


def mask_path(split: str, name: str) -> str:
    """The optional person-label PNG (0: background, k + 1: person k), relative to the dataset root."""
    return f"masks_1280x720/{split}/{name}_1280x720.png"


def smplx_param_path(split: str, name: str, person_id: int) -> str:
    return f"smplx_params_cam/{split}/{name}/{person_id}.json"


def smpl_param_path(split: str, name: str, person_id: int) -> str:
    """The person's SMPL variant (data/Synthetic/smpl_variant.py), relative to the dataset root."""
    return FIT_VARIANTS["smpl"].params_path(split, name, person_id)


def cam_param_path(split: str, name: str) -> str:
    return f"cam_params/{split}/{name}.json"


def annotation_file(split: str) -> str:
    """AGORA's annotation file name of a split, e.g. 'AGORA_train_SMPLX.json'."""
    return f"AGORA_{split}_SMPLX.json"


def smpl_annotation_file(split: str) -> str:
    """The SMPL variant's annotation file name of a split, e.g. 'AGORA_train_SMPL.json'."""
    return FIT_VARIANTS["smpl"].annotation_file.format(split=split)


def image_record(image_id: int, split: str, name: str, with_mask: bool) -> dict[str, Any]:
    """A COCO ``images`` entry with AGORA's file-name keys."""
    record = {
        "id": image_id,
        "file_name_1280x720": image_path(split, name),
        "file_name_3840x2160": f"3840x2160/{split}/{name}.png",  # named as AGORA's, never written
        "width": IMAGE_HW[1],
        "height": IMAGE_HW[0],
    }
    if with_mask:
        record["file_name_mask_1280x720"] = mask_path(split, name)
    return record


def annotation_record(
    split: str, name: str, person_id: int, gender: str, occlusion: float, is_valid: bool, boxes: dict[str, list[float]]
) -> dict[str, Any]:
    """A COCO ``annotations`` entry with AGORA's keys; ``id`` and ``image_id`` are set by the writer."""
    return {
        "person_id": person_id,
        "smplx_param_path": smplx_param_path(split, name, person_id),
        "cam_param_path": cam_param_path(split, name),
        "gender": gender,
        "kid": False,
        "occlusion": round(float(occlusion), 2),
        "is_valid": bool(is_valid),
        "age": "adult",  # the body models are adult ones
        "ethnicity": "unspecified",  # not applicable to region-coloured meshes
        "category_id": 1,  # pycocotools indexes annotations by category once `categories` exists
        "iscrowd": 0,
        **boxes,
    }
