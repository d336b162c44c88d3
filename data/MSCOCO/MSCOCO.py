"""MSCOCO with COCO-WholeBody keypoints and NeuralAnnot pseudo-GT: Hand4Whole's 2D training set, and the Pose2Pose
part models' (person, hand and face crops).

Layout under the data root (``cfg.data.dataset_roots['MSCOCO']``, default ``<data_dir>/MSCOCO`` as in Hand4Whole)::

    annotations/coco_wholebody_train_v1.0.json    split 'train'
    annotations/coco_wholebody_val_v1.0.json      split 'test'
    annotations/MSCOCO_train_SMPLX_all_NeuralAnnot.json   str(ann id) -> {'smplx_param', 'cam_param'} (hand4whole)
    annotations/MSCOCO_train_SMPL_NeuralAnnot.json        str(ann id) -> {'smpl_param', 'cam_param'} (pose2pose_body)
    annotations/MSCOCO_train_MANO_NeuralAnnot.json        str(ann id) -> {'left', 'right'} -> {'mano_param',
                                                          'cam_param'} or null (pose2pose_hand)
    annotations/MSCOCO_train_FLAME_NeuralAnnot.json       str(ann id) -> {'flame_param', 'cam_param'} (pose2pose_face)
    images/train2017/<file_name>   images/val2017/<file_name>

The family's target builder says which crop a record frames (`BaseDataset.crop`) and which fits to read (its
``prefix``: 'smpl', 'mano', 'flame'; Hand4Whole's builder has none and reads the SMPL-X fits). Fits are read for the
'train' split only (there are none for val2017); a missing fit file is an error, a missing entry masks the sample's
parametric targets. All fits are axis-angle radians and metres in the camera frame (no R, t), intrinsics in pixels.

- 'body' crops: one record per annotation that is not a crowd and has a labelled body keypoint, boxed by ``bbox``;
  2D only (is_3D False): 17 body + pelvis + 6 feet + 21 per hand + 68 face, mapped by name to the supervision
  joints. Hand and face boxes come from the annotation's ``*_box`` fields where its ``*_valid`` flag is set.
- 'hand' crops: one record per hand with ``lefthand_valid`` / ``righthand_valid``, boxed by its ``*hand_box`` at the
  input's aspect (1 for 256x256 hand inputs), ``hand_side`` set; the hand targets take that side's 21 keypoints.
- 'face' crops: one record per face with ``face_valid``, boxed by ``face_box``; the face targets take the 68
  keypoints (named as FLAME's landmarks).
Part crops take the part's own keypoints only: the Pose2Pose reference fills no hand wrist or nose tip from the body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from common.body_models.joint_sets import HAND_20, IBUG68_NAMES
from common.geometry import xywh_to_xyxy
from common.utils.augmentation import process_bbox
from data.annotation_io import bbox_xywh, brief, image_hw, keypoints, load_coco, path_in_root, read_table
from data.dataset import BaseDataset
from data.fits import neural_annot_fit
from data.record import AnnotationError, Record

__all__ = ["MSCOCO", "NEURAL_ANNOT_FILES", "WHOLEBODY_JOINTS", "wholebody_joints"]

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
_HAND_FIELDS = (("left", "lefthand"), ("right", "righthand"))  # record side -> annotation prefix, reference order
_SPLIT_FILES = {  # split -> (COCO-WholeBody file, image folder)
    "train": ("coco_wholebody_train_v1.0.json", "train2017"),
    "test": ("coco_wholebody_val_v1.0.json", "val2017"),
}
NEURAL_ANNOT_FILES: dict[str, str] = {
    "smplx": "MSCOCO_train_SMPLX_all_NeuralAnnot.json",
    "smpl": "MSCOCO_train_SMPL_NeuralAnnot.json",
    "mano": "MSCOCO_train_MANO_NeuralAnnot.json",
    "flame": "MSCOCO_train_FLAME_NeuralAnnot.json",
}
"""The NeuralAnnot fit file of each body model, by the target builder's ``prefix`` (the file names of the reference's
main branch for SMPL-X and of its Pose2Pose branch for the part models)."""
NEURAL_ANNOT_FILE = NEURAL_ANNOT_FILES["smplx"]
_CROP_PREFIXES = {"body": ("smplx", "smpl"), "hand": ("mano",), "face": ("flame",)}  # the fits each crop can use


# --- COCO-WholeBody annotations ---------------------------------------------------------------------------------
def wholebody_joints(
    ann: Mapping[str, Any], source: Path, fill_from_body: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """An annotation's keypoints on `WHOLEBODY_JOINTS`.

    Args:
        ann: a COCO-WholeBody annotation.
        source: its file, for error messages.
        fill_from_body: fill unlabelled hand wrists and the face's nose tip from the body (Hand4Whole's whole-body
            loader; the Pose2Pose part crops do not).

    Returns:
        (134, 2) float64 pixels and (134,) float64 mask; the pelvis is the mean of the hips, labelled when
        both are.
    """
    parts = [keypoints(ann, key, count, source) for key, count in _KEYPOINT_FIELDS]
    body_xy, body_valid = parts[0]
    hips = [COCO_BODY_JOINTS.index(n) for n in ("L_Hip", "R_Hip")]
    pelvis_xy, pelvis_valid = body_xy[hips].mean(0, keepdims=True), body_valid[hips].prod(keepdims=True)
    xy = np.concatenate([body_xy, pelvis_xy, *(p[0] for p in parts[1:])])  # (134, 2)
    valid = np.concatenate([body_valid, pelvis_valid, *(p[1] for p in parts[1:])])  # (134,)
    for part_name, body_name in _FILL_FROM_BODY if fill_from_body else ():
        part, body = WHOLEBODY_JOINTS.index(part_name), WHOLEBODY_JOINTS.index(body_name)
        if valid[part] == 0:
            xy[part], valid[part] = xy[body], valid[body]
    return xy, valid


def _part_boxes(ann: Mapping[str, Any], source: Path) -> dict[str, np.ndarray | None]:
    """'lhand', 'rhand', 'face' -> (4,) float64 xyxy pixels, or None where the annotation has no valid box."""
    boxes: dict[str, np.ndarray | None] = {}
    for part, prefix in _BOX_FIELDS.items():
        if not ann.get(f"{prefix}_valid", False) or f"{prefix}_box" not in ann:
            boxes[part] = None
            continue
        box = _annotated_box(ann, f"{prefix}_box", source)
        boxes[part] = xywh_to_xyxy(box) if box[2] > 0 and box[3] > 0 else None
    return boxes


def _annotated_box(ann: Mapping[str, Any], key: str, source: Path) -> np.ndarray:
    """(4,) float64 xywh pixels of ``ann[key]``; AnnotationError naming the file, annotation and key otherwise."""
    if key not in ann:
        raise AnnotationError(f"{source}: annotation {ann['id']} has no xywh box {key!r}", source)
    return bbox_xywh(ann[key], f"{source}: annotation {ann['id']} {key!r}")


class MSCOCO(BaseDataset):
    """COCO-WholeBody persons, hands or faces with NeuralAnnot fits; 'train' (train2017, fits) and 'test' (val2017).

    A training sample without a fit entry keeps its keypoints and boxes; its parametric masks are 0.
    """

    NAME = "MSCOCO"
    DEFAULT_SUBDIR = ""  # Hand4Whole keeps images/ and annotations/ directly in data/MSCOCO/
    DOWNLOAD_PAGE = ("https://github.com/jin-s13/COCO-WholeBody (keypoints), https://cocodataset.org/#download "
                     "(images) and https://github.com/mks0601/NeuralAnnot_RELEASE (SMPL-X, SMPL, MANO and FLAME "
                     "fits)")  # fmt: skip
    SPLITS = ("train", "test")
    JOINT_NAMES = WHOLEBODY_JOINTS
    CROPS = ("body", "hand", "face")

    @property
    def fit_prefix(self) -> str:
        """The body model whose fits this family reads: its target builder's ``prefix``, SMPL-X without one."""
        return getattr(self.targets, "prefix", "smplx")

    def load_records(self) -> list[Record]:
        """The split's records of `self.crop`: persons, labelled hands or labelled faces (see the module doc)."""
        prefix = self.fit_prefix
        if prefix not in _CROP_PREFIXES[self.crop]:
            raise ValueError(f"MSCOCO has no {prefix} fits for {self.crop} crops (model.arch={self.cfg.model.arch}); "
                             f"it has {', '.join(_CROP_PREFIXES[self.crop])}")  # fmt: skip
        coco_file, image_dir = _SPLIT_FILES[self.split]
        coco_path = self.annotation_file(Path("annotations") / coco_file)
        fits_path = self.annotation_file(Path("annotations") / NEURAL_ANNOT_FILES[prefix]) if self.is_train else None
        # both files are checked above, before parsing gigabytes of json
        db = load_coco(coco_path, image_keys=("file_name", "height", "width"), annotation_keys=("bbox",))
        fits: Mapping[str, Any] = read_table(fits_path) if fits_path is not None else {}
        per_annotation: Callable[..., list[Record]] = {
            "body": self._person_records, "hand": self._hand_records, "face": self._face_records,
        }[self.crop]  # fmt: skip
        records = []
        for ann_id, ann in db.anns.items():
            if ann.get("iscrowd", 0):
                continue
            img = db.imgs[ann["image_id"]]
            img_path = path_in_root(self.root / "images" / image_dir, img["file_name"], coco_path,
                                    f"image {img['id']}, file_name")  # fmt: skip
            base = Record(img_path=img_path, img_hw=image_hw(img),
                          bbox_xywh_img=np.zeros(4, np.float32), is_3D=False,
                          info={"ann_id": ann_id, "image_id": ann["image_id"]})  # fmt: skip
            records += per_annotation(ann, base, fits.get(str(ann_id)), f"{fits_path} [{str(ann_id)!r}]", coco_path)
        if self.is_train:
            fitted = sum(getattr(r, prefix) is not None for r in records)
            logger.info("MSCOCO train: %d of %d %s crops have a NeuralAnnot %s fit", fitted, len(records), self.crop,
                        prefix.upper())  # fmt: skip
        return records

    def _crop_box(self, box_xywh: Any, record: Record) -> np.ndarray | None:
        """The crop box of an annotated box at the family's input aspect, or None when it misses the image."""
        return process_bbox(box_xywh, record.img_hw[1], record.img_hw[0], aspect_ratio=self.space.aspect_ratio)

    def _person_records(self, ann: Mapping[str, Any], base: Record, entry: Any, where: str,
                        source: Path) -> list[Record]:  # fmt: skip
        """The person of an annotation with a labelled body keypoint, with its SMPL-X (or SMPL) fit."""
        xy, valid = wholebody_joints(ann, source)
        bbox = self._crop_box(_annotated_box(ann, "bbox", source), base)
        if not valid[: len(COCO_BODY_JOINTS)].any() or bbox is None:  # no body keypoint, or box off the image
            return []
        record = replace(base, bbox_xywh_img=bbox, joints_xy_img=xy, joints_valid=valid,
                         part_boxes_xyxy_img=_part_boxes(ann, source))  # fmt: skip
        if entry is not None and self.fit_prefix == "smplx":
            flags = {part: bool(ann.get(f"{prefix}_valid", False)) for part, prefix in _BOX_FIELDS.items()}
            record.smplx, record.cam = neural_annot_fit(entry, "smplx", where, part_valid=flags)
        elif entry is not None:
            record.smpl, record.cam = neural_annot_fit(entry, "smpl", where)
        return [record]

    def _hand_records(self, ann: Mapping[str, Any], base: Record, entry: Any, where: str,
                      source: Path) -> list[Record]:  # fmt: skip
        """One record per labelled hand of an annotation (left first), with that hand's MANO fit."""
        if entry is not None and not isinstance(entry, Mapping):
            raise AnnotationError(f"{where}: a MANO fit entry maps 'left' and 'right' to a fit or null, got "
                                  f"{brief(entry)}")  # fmt: skip
        xy, valid = wholebody_joints(ann, source, fill_from_body=False)
        records = []
        for side, field in _HAND_FIELDS:
            if not ann.get(f"{field}_valid", False):
                continue
            bbox = self._crop_box(_annotated_box(ann, f"{field}_box", source), base)
            if bbox is None:
                continue
            record = replace(base, bbox_xywh_img=bbox, crop="hand", hand_side=side, joints_xy_img=xy,
                             joints_valid=valid, info={**base.info, "hand_side": side})  # fmt: skip
            side_entry = entry.get(side) if entry is not None else None
            if side_entry is not None:  # null: no fit of this hand (the reference's loader allows it)
                record.mano, record.cam = neural_annot_fit(side_entry, "mano", f"{where}[{side!r}]", side=side)
            records.append(record)
        return records

    def _face_records(self, ann: Mapping[str, Any], base: Record, entry: Any, where: str,
                      source: Path) -> list[Record]:  # fmt: skip
        """The labelled face of an annotation, with its FLAME fit."""
        if not ann.get("face_valid", False):
            return []
        bbox = self._crop_box(_annotated_box(ann, "face_box", source), base)
        if bbox is None:
            return []
        xy, valid = wholebody_joints(ann, source, fill_from_body=False)
        record = replace(base, bbox_xywh_img=bbox, crop="face", joints_xy_img=xy, joints_valid=valid)
        if entry is not None:
            record.flame, record.cam = neural_annot_fit(entry, "flame", where)
        return [record]
