"""MSCOCO with COCO-WholeBody keypoints and NeuralAnnot SMPL-X pseudo-GT: Hand4Whole's 2D training set.

Layout under the data root (``cfg.data.dataset_roots['MSCOCO']``, default ``<data_dir>/MSCOCO`` as in Hand4Whole)::

    annotations/coco_wholebody_train_v1.0.json    split 'train'
    annotations/coco_wholebody_val_v1.0.json      split 'test'
    annotations/MSCOCO_train_SMPLX_all_NeuralAnnot.json   str(annotation id) -> SMPL-X fit (train only)
    images/train2017/<file_name>   images/val2017/<file_name>

One record per person annotation that is not a crowd and has a labelled body keypoint. Keypoints are 2D only
(is_3D False): 17 body + pelvis + 6 feet + 21 per hand + 68 face, mapped by name to the supervision joints.
Hand and face boxes come from the annotation's ``*_box`` fields where its ``*_valid`` flag is set.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from common.body_models.joint_sets import HAND_20, IBUG68_NAMES
from common.geometry import xywh_to_xyxy
from common.utils.augmentation import process_bbox
from data.annotation_io import keypoints, load_coco, neural_annot_params, read_json
from data.dataset import BaseDataset
from data.record import Record

__all__ = ["MSCOCO", "WHOLEBODY_JOINTS", "wholebody_joints"]

logger = logging.getLogger(__name__)

COCO_BODY_JOINTS = (
    "Nose", "L_Eye", "R_Eye", "L_Ear", "R_Ear", "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow", "L_Wrist",
    "R_Wrist", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle", "R_Ankle",
)  # fmt: skip
FOOT_JOINTS = ("L_Big_toe", "L_Small_toe", "L_Heel", "R_Big_toe", "R_Small_toe", "R_Heel")


def _hand(side: str) -> tuple[str, ...]:
    # COCO-WholeBody's hand order: wrist, then thumb..pinky from the base to the tip (= HAND_20's order).
    # The hand's own wrist gets a name of its own: the supervision set keeps only the body's wrist.
    return (f"{side}_Wrist_Hand", *(f"{side}_{name}" for name in HAND_20))


WHOLEBODY_JOINTS: tuple[str, ...] = (
    *COCO_BODY_JOINTS, "Pelvis", *FOOT_JOINTS, *_hand("L"), *_hand("R"), *IBUG68_NAMES
)  # fmt: skip
"""Hand4Whole's 134 MSCOCO joints: COCO-WholeBody's 133 keypoints and the pelvis; face in iBUG-68 order."""

# (fields, count) in the order of WHOLEBODY_JOINTS, the pelvis inserted after the body.
_KEYPOINT_FIELDS = (("keypoints", 17), ("foot_kpts", 6), ("lefthand_kpts", 21), ("righthand_kpts", 21),
                    ("face_kpts", 68))  # fmt: skip
# Part keypoints taken from the body where the part's annotation lacks them (Hand4Whole): COCO-WholeBody
# labels hands and faces only where they are clear enough, while the body set often has the wrist and nose.
# Face_18 is the nose tip (iBUG point 31). Of the three only the nose tip reaches the targets (the supervision
# set's wrists are the body's); the hand wrists are filled too so that a record matches Hand4Whole's 134 joints.
_FILL_FROM_BODY = (("L_Wrist_Hand", "L_Wrist"), ("R_Wrist_Hand", "R_Wrist"), ("Face_18", "Nose"))
_BOX_FIELDS = {"lhand": "lefthand", "rhand": "righthand", "face": "face"}  # our part -> the annotation's prefix
_SPLIT_FILES = {  # split -> (COCO-WholeBody file, image folder)
    "train": ("coco_wholebody_train_v1.0.json", "train2017"),
    "test": ("coco_wholebody_val_v1.0.json", "val2017"),
}
NEURAL_ANNOT_FILE = "MSCOCO_train_SMPLX_all_NeuralAnnot.json"


def wholebody_joints(ann: Mapping[str, Any], source: Path) -> tuple[np.ndarray, np.ndarray]:
    """An annotation's keypoints on `WHOLEBODY_JOINTS`.

    Args:
        ann: a COCO-WholeBody annotation.
        source: its file, for error messages.

    Returns:
        (134, 2) float64 pixels and (134,) float64 mask; the pelvis is the mean of the hips, labelled when
        both are, and the hand wrists and the face's nose tip are filled from the body where unlabelled.
    """
    parts = [keypoints(ann, key, count, source) for key, count in _KEYPOINT_FIELDS]
    body_xy, body_valid = parts[0]
    hips = [COCO_BODY_JOINTS.index(n) for n in ("L_Hip", "R_Hip")]
    pelvis_xy, pelvis_valid = body_xy[hips].mean(0, keepdims=True), body_valid[hips].prod(keepdims=True)
    xy = np.concatenate([body_xy, pelvis_xy, *(p[0] for p in parts[1:])])  # (134, 2)
    valid = np.concatenate([body_valid, pelvis_valid, *(p[1] for p in parts[1:])])  # (134,)
    for part_name, body_name in _FILL_FROM_BODY:
        part, body = WHOLEBODY_JOINTS.index(part_name), WHOLEBODY_JOINTS.index(body_name)
        if valid[part] == 0:
            xy[part], valid[part] = xy[body], valid[body]
    return xy, valid


def _part_boxes(ann: Mapping[str, Any]) -> dict[str, np.ndarray | None]:
    """'lhand', 'rhand', 'face' -> (4,) float64 xyxy pixels, or None where the annotation has no valid box."""
    boxes: dict[str, np.ndarray | None] = {}
    for part, prefix in _BOX_FIELDS.items():
        box = np.asarray(ann.get(f"{prefix}_box", (0, 0, 0, 0)), dtype=np.float64).reshape(4)
        usable = bool(ann.get(f"{prefix}_valid", False)) and box[2] > 0 and box[3] > 0
        boxes[part] = xywh_to_xyxy(box) if usable else None
    return boxes


class MSCOCO(BaseDataset):
    """COCO-WholeBody persons with NeuralAnnot SMPL-X fits; 'train' (train2017, fits) and 'test' (val2017).

    A training person without a NeuralAnnot entry keeps its keypoints and boxes; its SMPL-X masks are 0.
    """

    NAME = "MSCOCO"
    DEFAULT_SUBDIR = ""  # Hand4Whole keeps images/ and annotations/ directly in data/MSCOCO/
    DOWNLOAD_PAGE = ("https://github.com/jin-s13/COCO-WholeBody (keypoints), https://cocodataset.org/#download "
                     "(images) and https://github.com/mks0601/NeuralAnnot_RELEASE (SMPL-X fits)")  # fmt: skip
    SPLITS = ("train", "test")
    JOINT_NAMES = WHOLEBODY_JOINTS

    def load_records(self) -> list[Record]:
        """One record per usable person annotation of the split's COCO-WholeBody file."""
        coco_file, image_dir = _SPLIT_FILES[self.split]
        coco_path = self.annotation_file(Path("annotations") / coco_file)
        fits_path = self.annotation_file(Path("annotations") / NEURAL_ANNOT_FILE) if self.is_train else None
        db = load_coco(coco_path)  # both files are checked above, before parsing gigabytes of json
        fits: Mapping[str, Any] = read_json(fits_path) if fits_path is not None else {}
        records = []
        for ann_id, ann in db.anns.items():
            if ann.get("iscrowd", 0):
                continue
            xy, valid = wholebody_joints(ann, coco_path)
            img = db.imgs[ann["image_id"]]
            img_hw = (int(img["height"]), int(img["width"]))
            bbox = process_bbox(ann["bbox"], img_hw[1], img_hw[0])
            if not valid[: len(COCO_BODY_JOINTS)].any() or bbox is None:  # no body keypoint, or box off the image
                continue
            record = Record(img_path=self.root / "images" / image_dir / img["file_name"], img_hw=img_hw,
                            bbox_xywh_img=bbox, joints_xy_img=xy, joints_valid=valid,
                            part_boxes_xyxy_img=_part_boxes(ann), is_3D=False,
                            info={"ann_id": ann_id, "image_id": ann["image_id"]})  # fmt: skip
            entry = fits.get(str(ann_id))
            if entry is not None:
                flags = {part: bool(ann.get(f"{prefix}_valid", False)) for part, prefix in _BOX_FIELDS.items()}
                record.smplx, record.cam = neural_annot_params(entry, f"{fits_path} [{str(ann_id)!r}]", flags)
            records.append(record)
        if self.is_train:
            fitted = sum(r.smplx is not None for r in records)
            logger.info("MSCOCO train: %d of %d persons have a NeuralAnnot SMPL-X fit", fitted, len(records))
        return records
