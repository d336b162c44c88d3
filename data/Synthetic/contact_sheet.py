"""A contact sheet of a synthetic split: sample images with their ground truth drawn over them.

For a person to check the annotations by eye: each person's SMPL-X skeleton and hand/face keypoints,
projected from the parameter files through the body model, and the four boxes of the annotation file.
People with ``is_valid`` false (mostly hidden or cut) are drawn in grey.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from common.body_models.joint_sets import SMPLX_OUTPUT
from common.body_models.layers import get_body_models
from common.geometry.boxes import xywh_to_xyxy
from common.utils.atomic_io import write_bytes_atomic
from common.utils.draw import draw_boxes, draw_keypoints, draw_skeleton, make_grid

from . import annotations as agora
from .dataset_writer import manifest_path
from .readback import pose_annotation, read_json

BOX_COLOURS = {"bbox": (1.0, 0.9, 0.0), "lhand_bbox": (0.0, 1.0, 0.3), "rhand_bbox": (1.0, 0.2, 0.2),
               "face_bbox": (0.0, 0.9, 1.0)}  # fmt: skip
BOX_LABELS = {"bbox": "", "lhand_bbox": "L", "rhand_bbox": "R", "face_bbox": "F"}
INVALID_COLOUR = (0.6, 0.6, 0.6)
_KEYPOINT_PARTS = ("keypoints", "face_static")  # drawn as dots; the skeleton joints are drawn as bones


def _human_model_path(root: Path, split: str) -> Path:
    """The body models a split was made with, from its manifest; the synthetic stand-in without one."""
    manifest = manifest_path(root, split)
    if manifest.is_file():
        return Path(read_json(manifest)["human_model_path"])
    from common.body_models.synthetic import ensure_synthetic_body_models

    return ensure_synthetic_body_models()


def _resized(points_xy: np.ndarray, scale: float) -> np.ndarray:
    """(..., 2) pixel coordinates in an image resized by ``scale`` (pixel centres at integer coordinates)."""
    return (points_xy + 0.5) * scale - 0.5


def annotated_image(
    root: Path, image: dict, annotations: list[dict], human_model_path: Path, scale: float = 1.0
) -> np.ndarray:
    """One image with every person's ground truth drawn over it.

    Args:
        root: the dataset root.
        image: the COCO ``images`` entry.
        annotations: its ``annotations`` entries.
        human_model_path: the body models the dataset was made with.
        scale: the image is resized by this factor before drawing, so that lines keep their width.

    Returns:
        (round(720 x scale), round(1280 x scale), 3) uint8 RGB.
    """
    path = root / image["file_name_1280x720"]
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"missing or unreadable image {path}")
    size_wh = (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale))
    canvas = np.ascontiguousarray(cv2.resize(bgr, size_wh, interpolation=cv2.INTER_AREA)[..., ::-1])
    body_models = get_body_models(human_model_path)
    parents = body_models.smplx("neutral").parents.numpy()  # (55,) kinematic tree, -1 at the root
    bones = [(j, int(parents[j])) for j in range(1, len(parents))]
    dots = np.concatenate([np.asarray(SMPLX_OUTPUT.parts[part]) for part in _KEYPOINT_PARTS])
    for annotation in annotations:
        person = pose_annotation(root, annotation, body_models)
        joints = person.joints[:, :2] / person.joints[:, 2:] * np.asarray(person.focal) + np.asarray(person.princpt)
        joints = _resized(joints, scale)
        valid = annotation["is_valid"]
        bone_colour, dot_colour = ((0.1, 1.0, 0.1), (1.0, 0.1, 1.0)) if valid else (INVALID_COLOUR, INVALID_COLOUR)
        canvas = draw_skeleton(canvas, joints[: len(parents)], bones, color=bone_colour)
        canvas = draw_keypoints(canvas, joints[dots], color=dot_colour, radius=1)
        keys = list(BOX_COLOURS)
        boxes_4k = xywh_to_xyxy(np.array([annotation[k] for k in keys], dtype=np.float64))
        boxes_img = _resized(boxes_4k.reshape(-1, 2) / agora.SCALE_TO_4K, scale).reshape(-1, 4)
        colours = np.array([BOX_COLOURS[k] if valid else INVALID_COLOUR for k in keys])
        labels = [BOX_LABELS[k] if k != "bbox" else f"{annotation['person_id']}" for k in keys]
        canvas = draw_boxes(canvas, boxes_img, colours, labels, thickness=2)
    return canvas


def contact_sheet(
    root: str | os.PathLike[str],
    split: str,
    num: int,
    out_png: str | os.PathLike[str],
    columns: int = 4,
    tile_width: int = 640,
    human_model_path: str | os.PathLike[str] | None = None,
) -> Path:
    """Writes a grid of the first ``num`` images of a split with their ground truth (see module docstring).

    Args:
        root: the dataset root.
        split: 'train' or 'validation'.
        num: number of images (at most the split's).
        out_png: the PNG to write (atomically).
        columns: tiles per row.
        tile_width: width of a tile in pixels (height by the 16:9 aspect).
        human_model_path: the body models; None reads them from the split's manifest.

    Returns:
        ``out_png`` as a Path.
    """
    root = Path(root)
    if num < 1:
        raise ValueError(f"num must be at least 1, got {num}")
    document = read_json(root / agora.annotation_file(split))
    model_path = _human_model_path(root, split) if human_model_path is None else Path(human_model_path)
    by_image: dict[int, list[dict]] = {}
    for annotation in document["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    scale = tile_width / agora.IMAGE_HW[1]
    tiles = [
        annotated_image(root, image, by_image.get(image["id"], []), model_path, scale)
        for image in document["images"][:num]
    ]
    sheet = make_grid(tiles, columns, pad=4)
    ok, encoded = cv2.imencode(".png", sheet[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise OSError(f"could not encode {out_png}")
    write_bytes_atomic(out_png, encoded.tobytes())
    return Path(out_png)
