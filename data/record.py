"""What a dataset module produces: one `Record` per person sample, and the errors of bad annotation files.

A dataset module (data/<NAME>/<NAME>.py) parses only its own files into records; `data.dataset.BaseDataset`
turns a record into the sample contract. Coordinates in a record are in the pixels of the record's image
file and in metres in its camera's frame; nothing in a record is augmented or cropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.utils.errors import InputDataError
from common.utils.smplx_targets import CameraParams, SMPLXParams

__all__ = ["CROPS", "AnnotationError", "CameraParams", "FLAMEParams", "MANOParams", "MissingAnnotationError", "Record",
           "SMPLParams", "SMPLXParams"]  # fmt: skip

CROPS: tuple[str, ...] = ("body", "hand", "face")
"""What a record's crop box frames: a person ('body'), one hand, or a face. A family's targets ask for one
(`data.targets`), and a dataset lists the crops it can make (`BaseDataset.CROPS`)."""


@dataclass
class SMPLParams:
    """One person's SMPL parameters (axis-angle radians, metres).

    Attributes:
        pose: (72,) root + 23 joints. shape: (10,) betas. trans: (3,) translation (camera frame unless the camera
            has R, t). gender: 'neutral', 'male' or 'female'.
    """

    pose: np.ndarray
    shape: np.ndarray
    trans: np.ndarray
    gender: str = "neutral"


@dataclass
class MANOParams:
    """One hand's MANO parameters (axis-angle radians, metres), for the MANO layer of its side.

    Attributes:
        pose: (48,) root + 15 finger joints. shape: (10,). trans: (3,). side: 'right' or 'left'.
    """

    pose: np.ndarray
    shape: np.ndarray
    trans: np.ndarray
    side: str = "right"


@dataclass
class FLAMEParams:
    """One face's FLAME parameters (axis-angle radians, metres).

    Attributes:
        root_pose: (3,) global rotation. jaw_pose: (3,). shape: (10,). expr: (10,) expression. trans: (3,).
        neck_pose: (3,) or None (zero).
    """

    root_pose: np.ndarray
    jaw_pose: np.ndarray
    shape: np.ndarray
    expr: np.ndarray
    trans: np.ndarray
    neck_pose: np.ndarray | None = None


@dataclass
class Record:
    """One person sample as a dataset module parses it; `BaseDataset` does everything after this.

    Attributes:
        img_path: the image file.
        img_hw: (H, W) pixels of that file, which all coordinates below refer to.
        bbox_xywh_img: (4,) crop box, already through `common.utils.augmentation.process_bbox`.
        cam: intrinsics (and extrinsics) in this image's pixels; needed with any parameters below.
        smplx: SMPL-X (pseudo-)GT parameters, or None.
        smpl, mano, flame: SMPL (body crops), MANO (hand crops) or FLAME (face crops) (pseudo-)GT, or None.
        crop: what the crop box frames (`CROPS`); a hand crop's side is `hand_side`.
        hand_side: 'right' or 'left' for a hand crop (what the image shows, before augmentation).
        joints_xy_img: (J, 2) GT joints in the dataset's `BaseDataset.JOINT_NAMES`, pixels, or None.
        joints_cam: (J, 3) GT joints in the camera frame, metres (absolute), or None for 2D data.
        joints_valid: (J,) mask of the GT joints.
        part_boxes_xyxy_img: {'lhand', 'rhand', 'face'} -> (4,) xyxy pixels, or None when not annotated.
        is_3D: whether joints_cam is supervised (Hand4Whole's is_3D).
        info: anything the dataset's own code needs later (ids, file names for export), untouched here.
        orig2img_trans: (2, 3) map from the pixels of the dataset's original image to those of ``img_path``
            when the file is a pre-cut crop of it (AGORA's 4K crops), else None (the file is the original);
            the eval keys img2bb_trans / bb2img_trans refer to the original image through it.
    """

    img_path: Path
    img_hw: tuple[int, int]
    bbox_xywh_img: np.ndarray
    cam: CameraParams | None = None
    smplx: SMPLXParams | None = None
    smpl: SMPLParams | None = None
    mano: MANOParams | None = None
    flame: FLAMEParams | None = None
    crop: str = "body"
    hand_side: str = "right"
    joints_xy_img: np.ndarray | None = None
    joints_cam: np.ndarray | None = None
    joints_valid: np.ndarray | None = None
    part_boxes_xyxy_img: dict[str, np.ndarray | None] = field(default_factory=dict)
    is_3D: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    orig2img_trans: np.ndarray | None = None


class MissingAnnotationError(FileNotFoundError):
    """An annotation file of a dataset is not where the config says; the message says where to get it."""

    def __init__(self, path: Path, dataset: str, download_page: str) -> None:
        self.message = (f"{dataset} annotation file not found: {path}; download it from {download_page} and put it "
                        f"there, or set data.dataset_roots={{{dataset}: DIR}}")  # fmt: skip
        super().__init__(self.message)
        self.filename = str(path)  # what OSError handlers read

    def __str__(self) -> str:  # OSError's own would print '[Errno None] None: <filename>' once filename is set
        return self.message


class AnnotationError(InputDataError, ValueError):
    """An annotation file that is there but cannot be used: not json, truncated, of the wrong layout or types, a
    missing key, a path that leaves its root, or no sample at all for the split.

    The message is one line naming the file and the entry, key or value at fault, so that the command-line tools
    report it as a user error (exit code 2) rather than with a traceback. A ValueError, so that callers that already
    catch ValueError for bad input keep working.

    Attributes:
        path: the annotation file at fault, or None when the message names several.
    """

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)
