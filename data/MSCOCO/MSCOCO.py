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
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from common.body_models.joint_sets import HAND_20, IBUG68_NAMES
from common.body_models.layers import NUM_BETAS, NUM_EXPRESSION
from common.geometry import xywh_to_xyxy
from common.utils.augmentation import process_bbox
from data.annotation_io import keypoints, load_coco, neural_annot_params, read_json
from data.dataset import BaseDataset
from data.record import CameraParams, FLAMEParams, MANOParams, Record, SMPLParams

__all__ = ["MSCOCO", "NEURAL_ANNOT_FILES", "WHOLEBODY_JOINTS", "flame_fit", "mano_fit", "read_fit_table",
           "resolve_annotated_path", "smpl_fit", "wholebody_joints"]  # fmt: skip

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


# --- shared parsing of part fits and annotated paths -----------------------------------------------------------
def resolve_annotated_path(root: Path, relpath: Any, source: Path, entry: str) -> Path:
    """``root / relpath`` for a path read from an annotation file, which must stay under ``root``.

    Args:
        root: the folder the path is relative to (inside the dataset root).
        relpath: the path as the annotation writes it ('/' or '\\' separators).
        source: the annotation file, and entry: what holds the path there, for the error message.

    Raises:
        ValueError: naming the file, the entry and the path when it is empty, absolute or climbs out with '..'.
    """
    text = str(relpath)
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if not text or text.startswith(("/", "\\")) or PureWindowsPath(text).drive or ".." in parts:
        raise ValueError(f"{source}: {entry} has the path {text!r}; annotation paths must be relative and stay "
                         f"under {root}")  # fmt: skip
    return root.joinpath(*parts)


def read_fit_table(path: Path) -> Mapping[str, Any]:
    """A NeuralAnnot fit file: ``str(annotation id) -> entry``; ValueError naming the file when it is not a table."""
    table = read_json(path)
    if not isinstance(table, Mapping):
        raise ValueError(f"{path}: expected a json object keyed by annotation id, got {type(table).__name__}")
    return table


def _fit_vector(param: Mapping[str, Any], key: str, size: int, where: str, default: float | None = None) -> np.ndarray:
    """(size,) float64 of ``param[key]`` (extra values dropped, as the reference does with kids' 11th beta)."""
    if key not in param:
        if default is None:
            raise ValueError(f"{where}: the fit lacks {key!r}")
        return np.full(size, default, dtype=np.float64)
    try:
        value = np.asarray(param[key], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):  # null, a string, a ragged list
        raise ValueError(f"{where}: {key!r} is not a list of numbers") from None
    if value.size < size:
        raise ValueError(f"{where}: {key!r} has {value.size} values, expected {size}")
    return value[:size]


def _fit_parts(entry: Any, param_key: str, where: str) -> tuple[Mapping[str, Any], CameraParams]:
    """(the body model's parameter dict, the camera) of one fit entry."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get(param_key), Mapping):
        raise ValueError(f"{where}: a fit entry needs {param_key!r} and 'cam_param'")
    cam = entry.get("cam_param")
    if not isinstance(cam, Mapping):
        raise ValueError(f"{where}: the fit entry lacks 'cam_param'")
    camera = CameraParams(focal=_fit_vector(cam, "focal", 2, where), princpt=_fit_vector(cam, "princpt", 2, where))
    return entry[param_key], camera


def smpl_fit(entry: Any, where: str) -> tuple[SMPLParams, CameraParams]:
    """SMPL parameters and camera of ``{'smpl_param': {pose (72,), shape (10,), trans (3,), [gender]}, 'cam_param':
    {focal, princpt}}``; ``where`` (file and key) goes into the errors."""
    param, camera = _fit_parts(entry, "smpl_param", where)
    return SMPLParams(pose=_fit_vector(param, "pose", 72, where), shape=_fit_vector(param, "shape", NUM_BETAS, where),
                      trans=_fit_vector(param, "trans", 3, where),
                      gender=str(param.get("gender", "neutral"))), camera  # fmt: skip


def mano_fit(entry: Any, side: str, where: str) -> tuple[MANOParams, CameraParams]:
    """MANO parameters of one hand (for the MANO layer of ``side``) and camera of ``{'mano_param': {pose (48,) root
    + 15 joints, shape (10,), trans (3,)}, 'cam_param': {focal, princpt}}``."""
    param, camera = _fit_parts(entry, "mano_param", where)
    return MANOParams(pose=_fit_vector(param, "pose", 48, where), shape=_fit_vector(param, "shape", NUM_BETAS, where),
                      trans=_fit_vector(param, "trans", 3, where), side=side), camera  # fmt: skip


def flame_fit(entry: Any, where: str) -> tuple[FLAMEParams, CameraParams]:
    """FLAME parameters and camera of ``{'flame_param': {root_pose (3,), jaw_pose (3,), shape (10,), expr (10,),
    [trans (3,)]}, 'cam_param': {focal, princpt}}``; a missing trans is zero, as the reference reads it."""
    param, camera = _fit_parts(entry, "flame_param", where)
    return FLAMEParams(root_pose=_fit_vector(param, "root_pose", 3, where),
                       jaw_pose=_fit_vector(param, "jaw_pose", 3, where),
                       shape=_fit_vector(param, "shape", NUM_BETAS, where),
                       expr=_fit_vector(param, "expr", NUM_EXPRESSION, where),
                       trans=_fit_vector(param, "trans", 3, where, default=0.0)), camera  # fmt: skip


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


def _part_boxes(ann: Mapping[str, Any]) -> dict[str, np.ndarray | None]:
    """'lhand', 'rhand', 'face' -> (4,) float64 xyxy pixels, or None where the annotation has no valid box."""
    boxes: dict[str, np.ndarray | None] = {}
    for part, prefix in _BOX_FIELDS.items():
        box = np.asarray(ann.get(f"{prefix}_box", (0, 0, 0, 0)), dtype=np.float64).reshape(4)
        usable = bool(ann.get(f"{prefix}_valid", False)) and box[2] > 0 and box[3] > 0
        boxes[part] = xywh_to_xyxy(box) if usable else None
    return boxes


def _annotated_box(ann: Mapping[str, Any], key: str, source: Path) -> np.ndarray:
    """(4,) float64 xywh pixels of ``ann[key]``; ValueError naming the file, annotation and key otherwise."""
    try:
        return np.asarray(ann[key], dtype=np.float64).reshape(4)
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"{source}: annotation {ann.get('id')} has no xywh box {key!r}") from None


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
        db = load_coco(coco_path)  # both files are checked above, before parsing gigabytes of json
        fits: Mapping[str, Any] = read_fit_table(fits_path) if fits_path is not None else {}
        per_annotation: Callable[..., list[Record]] = {
            "body": self._person_records, "hand": self._hand_records, "face": self._face_records,
        }[self.crop]  # fmt: skip
        records = []
        for ann_id, ann in db.anns.items():
            if ann.get("iscrowd", 0):
                continue
            img = db.imgs[ann["image_id"]]
            img_path = resolve_annotated_path(self.root / "images" / image_dir, img["file_name"], coco_path,
                                              f"image {img['id']} 'file_name'")  # fmt: skip
            base = Record(img_path=img_path, img_hw=(int(img["height"]), int(img["width"])),
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
                         part_boxes_xyxy_img=_part_boxes(ann))  # fmt: skip
        if entry is not None and self.fit_prefix == "smplx":
            flags = {part: bool(ann.get(f"{prefix}_valid", False)) for part, prefix in _BOX_FIELDS.items()}
            record.smplx, record.cam = neural_annot_params(entry, where, flags)
        elif entry is not None:
            record.smpl, record.cam = smpl_fit(entry, where)
        return [record]

    def _hand_records(self, ann: Mapping[str, Any], base: Record, entry: Any, where: str,
                      source: Path) -> list[Record]:  # fmt: skip
        """One record per labelled hand of an annotation (left first), with that hand's MANO fit."""
        if entry is not None and not isinstance(entry, Mapping):
            raise ValueError(f"{where}: a MANO fit entry maps 'left' and 'right' to a fit or null")
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
                record.mano, record.cam = mano_fit(side_entry, side, f"{where}[{side!r}]")
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
            record.flame, record.cam = flame_fit(entry, where)
        return [record]
