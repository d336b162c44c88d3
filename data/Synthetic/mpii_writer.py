"""Synthetic people in MPII Human Pose's COCO-format release: the 2D training set of the Integral family.

The layout is the one Hand4Whole's and Integral's MPII loaders read (the COCO conversion of MPII's annotations)::

    annotations/train.json      COCO: images [{id, file_name, height, width}], annotations [{id, image_id,
                                category_id 1, iscrowd 0, bbox [x, y, w, h], num_keypoints, keypoints: 16 x
                                (x, y, v)}], categories [{id 1, name 'person', keypoints: the 16 names}]
    images/<index:09d>.jpg      one person per image

MPII's 16 keypoints, in its file order: R_Ankle, R_Knee, R_Hip, L_Hip, L_Knee, L_Ankle, Pelvis, Thorax, Neck,
Head_top, R_Wrist, R_Elbow, R_Shoulder, L_Shoulder, L_Elbow, L_Wrist; pixel coordinates with pixel centres at
integers; v = 2 (labelled, visible) for a joint inside the image, 0 with (0, 0) outside, as MPII's converters write.

Each image is one frame of the synthetic Human3.6M generator (data/Synthetic/h36m_writer.py) seen by one of its
calibrated cameras, for subjects that the synthetic Human3.6M test subjects do not include (S6, S7, S8 by default),
so the 2D set adds people the 3D set does not have. The 16 keypoints come from the 17 Human3.6M joints that
generator regresses from the mesh, mapped by name (`MPII_FROM_H36M`): Thorax is the mean of the shoulders (what
Integral's Human3.6M reader also makes it), Head_top is Human3.6M's Head, Neck is its Neck. That mapping is written
here from the two skeletons' definitions, not from our MPII reader.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from common.utils.atomic_io import write_json_atomic

from .dataset_writer import _resolve_human_model_path
from .h36m_writer import ACTION_NAMES, CAMERAS, IMAGE_HW, SUBACTIONS, SUBJECTS, H36MGenerator, project_mm
from .parts_writer import box_xywh, manifest_matches, write_crop_dataset, write_jpeg

__all__ = ["MPII_FROM_H36M", "MPII_KEYPOINTS", "ensure_mpii", "make_mpii"]

MPII_KEYPOINTS: tuple[str, ...] = (
    "R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle", "Pelvis", "Thorax", "Neck", "Head_top", "R_Wrist",
    "R_Elbow", "R_Shoulder", "L_Shoulder", "L_Elbow", "L_Wrist",
)  # fmt: skip
# Human3.6M's 17 joints (h36m_writer's order): 0 Pelvis, 1 R_Hip, 2 R_Knee, 3 R_Ankle, 4 L_Hip, 5 L_Knee, 6 L_Ankle,
# 7 Torso, 8 Neck, 9 Nose, 10 Head, 11 L_Shoulder, 12 L_Elbow, 13 L_Wrist, 14 R_Shoulder, 15 R_Elbow, 16 R_Wrist.
# Each MPII keypoint: the Human3.6M joints it is the mean of.
MPII_FROM_H36M: dict[str, tuple[int, ...]] = {
    "R_Ankle": (3,), "R_Knee": (2,), "R_Hip": (1,), "L_Hip": (4,), "L_Knee": (5,), "L_Ankle": (6,), "Pelvis": (0,),
    "Thorax": (11, 14), "Neck": (8,), "Head_top": (10,), "R_Wrist": (16,), "R_Elbow": (15,), "R_Shoulder": (14,),
    "L_Shoulder": (11,), "L_Elbow": (12,), "L_Wrist": (13,),
}  # fmt: skip
DEFAULT_SUBJECTS = (6, 7, 8)
MANIFEST_NAME = "mpii"
MANIFEST_VERSION = 1
JPEG_QUALITY = 90


def image_file(index: int) -> str:
    """'images/000000007.jpg': MPII's 9-digit image names."""
    return f"images/{index:09d}.jpg"


def mpii_keypoints(h36m_joints_px: np.ndarray) -> np.ndarray:
    """(17, 2) Human3.6M joints in pixels -> (16, 2) MPII keypoints in pixels (`MPII_FROM_H36M`)."""
    return np.stack([h36m_joints_px[list(MPII_FROM_H36M[name])].mean(axis=0) for name in MPII_KEYPOINTS])


def _items(subjects: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """Every (subject, action, subaction, camera): image i shows item i (one frame each)."""
    return [(s, a, sa, c) for s in subjects for a in ACTION_NAMES for sa in SUBACTIONS for c in CAMERAS]


class MPIIGenerator:
    """Renders image ``index``: one single-frame Human3.6M sequence seen by one camera, with its COCO records."""

    def __init__(self, human_model_path: Path, subjects: tuple[int, ...], seed: int, out_dir: Path,
                 image_hw: tuple[int, int]) -> None:  # fmt: skip
        self.out_dir, self.items = out_dir, _items(subjects)
        self.h36m = H36MGenerator(human_model_path, self.items, 1, seed, out_dir, image_hw)

    def generate(self, index: int) -> dict[str, Any]:
        subject, action, subaction, camera = self.items[index]
        joints_mm, cam, images, masks = self.h36m.render_sequence(subject, action, subaction, camera)
        image, mask = images[0], masks[0]
        height, width = image.shape[:2]
        keypoints_px = mpii_keypoints(project_mm(joints_mm[0], cam.R, cam.T, cam.f, cam.c))
        inside = (keypoints_px[:, 0] >= 0) & (keypoints_px[:, 0] <= width - 1)
        inside &= (keypoints_px[:, 1] >= 0) & (keypoints_px[:, 1] <= height - 1)
        keypoints = np.concatenate([np.where(inside[:, None], keypoints_px, 0.0), 2.0 * inside[:, None]], axis=1)
        rows, cols = np.nonzero(mask)
        silhouette = np.stack([cols, rows], axis=1).astype(np.float64)
        write_jpeg(self.out_dir / image_file(index), image, JPEG_QUALITY)
        return {
            "image": {"id": index, "file_name": image_file(index), "height": height, "width": width},
            "annotation": {"id": index, "image_id": index, "category_id": 1, "iscrowd": 0,
                           "bbox": box_xywh(silhouette, (height, width)), "num_keypoints": int(inside.sum()),
                           "keypoints": [round(float(v), 3) for v in keypoints.reshape(-1)]},
        }  # fmt: skip

    def close(self) -> None:
        self.h36m.close()


def _settings(num_images: int, subjects: tuple[int, ...], seed: int, image_hw: tuple[int, int],
              human_model_path: Path) -> dict[str, Any]:  # fmt: skip
    return {"version": MANIFEST_VERSION, "format": "mpii", "num_images": num_images, "subjects": list(subjects),
            "seed": seed, "image_hw": list(image_hw), "human_model_path": str(human_model_path)}  # fmt: skip


def _check(num_images: int, subjects: tuple[int, ...]) -> None:
    if not subjects or not set(subjects) <= set(SUBJECTS) or len(set(subjects)) != len(subjects):
        raise ValueError(f"subjects must be distinct values of {SUBJECTS}, got {subjects}")
    if num_images > len(_items(subjects)):
        raise ValueError(f"num_images must be at most {len(_items(subjects))} for subjects {subjects} (one image per "
                         f"subject, action, subaction and camera), got {num_images}")  # fmt: skip


def make_mpii(
    out_dir: str | os.PathLike[str],
    num_images: int = 48,
    subjects: tuple[int, ...] = DEFAULT_SUBJECTS,
    seed: int = 0,
    workers: int = 1,
    human_model_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    image_hw: tuple[int, int] = IMAGE_HW,
) -> dict[str, Any]:
    """Writes ``num_images`` synthetic MPII images and annotations/train.json under ``out_dir``.

    Args:
        out_dir: the MPII folder (created).
        num_images: >= 1, at most 120 per subject.
        subjects: synthetic Human3.6M subjects shown (their people, not their cameras' sequences).
        seed: non-negative; the same seed gives the same bytes, whatever ``workers``.
        workers: processes, >= 1.
        human_model_path: the body-model tree; None uses the synthetic stand-in (generated if missing).
        progress: show a tqdm progress bar.
        image_hw: (H, W) pixels.

    Returns:
        The manifest's settings plus images, seconds and images_per_s.
    """
    subjects, image_hw = tuple(subjects), (int(image_hw[0]), int(image_hw[1]))
    _check(num_images, subjects)
    out_dir, model_path = Path(out_dir), _resolve_human_model_path(human_model_path)
    settings = _settings(num_images, subjects, seed, image_hw, model_path)
    factory = functools.partial(MPIIGenerator, model_path, subjects, seed, out_dir, image_hw)

    def write_files(records: list[dict[str, Any]]) -> None:
        document = {"images": [r["image"] for r in records], "annotations": [r["annotation"] for r in records],
                    "categories": [{"id": 1, "name": "person", "keypoints": list(MPII_KEYPOINTS)}]}  # fmt: skip
        write_json_atomic(out_dir / "annotations" / "train.json", document)

    return write_crop_dataset(out_dir, MANIFEST_NAME, settings, factory, workers, "MPII images", progress, write_files)


def ensure_mpii(
    out_dir: str | os.PathLike[str],
    num_images: int = 48,
    subjects: tuple[int, ...] = DEFAULT_SUBJECTS,
    seed: int = 0,
    workers: int = 1,
    human_model_path: str | os.PathLike[str] | None = None,
    image_hw: tuple[int, int] = IMAGE_HW,
) -> Path:
    """``make_mpii`` unless ``out_dir`` already holds a finished run with the same settings; returns ``out_dir``."""
    out_dir, image_hw = Path(out_dir), (int(image_hw[0]), int(image_hw[1]))
    wanted = _settings(num_images, tuple(subjects), seed, image_hw, _resolve_human_model_path(human_model_path))
    if not manifest_matches(out_dir, MANIFEST_NAME, wanted, ["annotations/train.json"]):
        make_mpii(out_dir, num_images, subjects, seed, workers, human_model_path, False, image_hw)
    return out_dir
