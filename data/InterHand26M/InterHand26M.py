"""InterHand2.6M (release 1.0, 5 fps or 30 fps) with its MANO NeuralAnnot fits: one hand crop per visible hand.

Layout (the data root is ``cfg.data.dataset_roots['InterHand26M']``, default ``<data_dir>/InterHand26M``)::

    annotations/<split>/InterHand2.6M_<split>_data.json      COCO. images: id, file_name (relative to
        images/<split>), width, height, capture, seq_name, camera, frame_idx; annotations: id, image_id,
        joint_valid (42), hand_type ('right' | 'left' | 'interacting')
    annotations/<split>/InterHand2.6M_<split>_camera.json    {capture: {campos, camrot, focal, princpt: {camera:
        ...}}}: camera centre (3,) mm and rotation (3, 3) world -> camera, focal (2,) and princpt (2,) pixels
    annotations/<split>/InterHand2.6M_<split>_joint_3d.json  {capture: {frame_idx: {world_coord: (42, 3) mm}}}
    annotations/<split>/InterHand2.6M_<split>_MANO_NeuralAnnot.json
        {capture: {frame_idx: {'right' | 'left': {pose: 48 axis-angle radians, shape: 10, trans: 3 metres} or
        null}}}, in the world frame
    images/<split>/<file_name>

Splits: 'train', 'val', 'test'. The 42 joints hold the right hand first (0-20), then the left (21-41), each from
the thumb tip to the wrist (`INTERHAND_HAND_JOINTS`). A hand's joints all count as unlabelled when its wrist is
(its root-relative pose would be meaningless), as the reference does.

Records: one per hand the annotation's hand_type names ('interacting' names both) with a labelled joint; its
21 joints (side-less `INTERHAND_HAND_JOINTS` names, mapped by name to joint_sets.HAND_21) in the camera frame,
metres: X_cam = R X_world / 1000 + t with t = -R campos / 1000. Its crop box is the box of its projected
labelled joints enlarged x1.5 (`common.utils.augmentation.get_bbox`), then `process_bbox` (square for the
hand crop). Its MANO fit is that of its side (a left hand keeps its left-MANO parameters; the hand model mirrors
it) in the world frame, with the camera's R and t (metres) in ``record.cam``: data/targets/pose2pose.py folds them
in (the root rotation turned by R, the mesh moved by t), exactly X_cam = R X_world + t of the posed world mesh.
A hand without a fit keeps its joints; its MANO masks are 0.

Camera views: the reference trained on about a tenth of the views (every (n // 10)-th of the n sorted camera
names of each capture and sequence); the maintainer advises against it for fair comparison (Hand4Whole_RELEASE
issue #72), so `InterHand26M.TRAIN_VIEWS` defaults to None, every view. The reference listed the camera folders on
disk; here the cameras are those the annotation file names for the capture and sequence.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from common.utils.augmentation import get_bbox, process_bbox
from data.annotation_io import image_hw, load_coco, nested_entry, numbers, optional_entry, path_in_root, read_table
from data.dataset import BaseDataset
from data.fits import mano_params
from data.record import AnnotationError, CameraParams, MANOParams, Record

__all__ = ["INTERHAND_HAND_JOINTS", "InterHand26M", "kept_views"]

logger = logging.getLogger(__name__)

INTERHAND_HAND_JOINTS: tuple[str, ...] = (
    "Thumb_4", "Thumb_3", "Thumb_2", "Thumb_1",
    "Index_4", "Index_3", "Index_2", "Index_1",
    "Middle_4", "Middle_3", "Middle_2", "Middle_1",
    "Ring_4", "Ring_3", "Ring_2", "Ring_1",
    "Pinky_4", "Pinky_3", "Pinky_2", "Pinky_1",
    "Wrist",
)  # fmt: skip
"""One hand's 21 joints in InterHand2.6M's order (tip to root per finger, wrist last), named as HAND_21."""

HAND_OFFSETS: dict[str, int] = {"right": 0, "left": len(INTERHAND_HAND_JOINTS)}
"""Where each hand's 21 joints start in the files' 42-joint arrays (right hand first)."""
_HAND_TYPES = {"right": ("right",), "left": ("left",), "interacting": ("right", "left")}
_FILES = ("data", "camera", "joint_3d", "MANO_NeuralAnnot")
_IMAGE_KEYS = ("file_name", "height", "width", "capture", "seq_name", "camera", "frame_idx")
_WRIST = INTERHAND_HAND_JOINTS.index("Wrist")
BOX_EXTEND = 1.5  # the hand box around its joints, as the reference


def kept_views(images: Mapping[Any, Mapping[str, Any]], views: int) -> set[tuple[str, str, str]]:
    """The reference's camera subsampling: per capture and sequence, every (n // views)-th of the n sorted camera
    names ('cam' + id, sorted as text), all of them when n < views.

    Args:
        images: the COCO images (with 'capture', 'seq_name', 'camera').
        views: about how many views to keep per capture and sequence (10 in the reference).

    Returns:
        The kept (capture, seq_name, camera) triples, as strings.
    """
    cameras: dict[tuple[str, str], set[str]] = defaultdict(set)
    for img in images.values():
        cameras[(str(img["capture"]), str(img["seq_name"]))].add(str(img["camera"]))
    kept = set()
    for (capture, seq_name), names in cameras.items():
        ordered = sorted(names, key=lambda cam: f"cam{cam}")
        step = 1 if len(ordered) < views else len(ordered) // views
        kept |= {(capture, seq_name, cam) for cam in ordered[::step]}
    return kept


class InterHand26M(BaseDataset):
    """InterHand2.6M hands ('train', 'val', 'test'), right and left, with MANO NeuralAnnot fits."""

    NAME: ClassVar[str] = "InterHand26M"
    DEFAULT_SUBDIR: ClassVar[str] = ""  # annotations/ and images/ directly in <data_dir>/InterHand26M, as Hand4Whole
    DOWNLOAD_PAGE: ClassVar[str] = (
        "https://mks0601.github.io/InterHand2.6M/ (images, annotations and MANO NeuralAnnot fits)"
    )
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    JOINT_NAMES: ClassVar[tuple[str, ...]] = INTERHAND_HAND_JOINTS
    CROPS: ClassVar[tuple[str, ...]] = ("hand",)
    TRAIN_VIEWS: ClassVar[int | None] = None
    """None: every camera view of 'train'. 10: the reference's ~1/10 of the views (`kept_views`), which its
    maintainer says to remove for a fair comparison. A subclass or an assignment sets it before construction."""

    def annotation_path(self, kind: str) -> Path:
        """annotations/<split>/InterHand2.6M_<split>_<kind>.json; MissingAnnotationError when absent."""
        return self.annotation_file(Path("annotations") / self.split / f"InterHand2.6M_{self.split}_{kind}.json")

    def load_records(self) -> list[Record]:
        """One record per labelled hand the annotations name, in annotation-id order."""
        paths = {kind: self.annotation_path(kind) for kind in _FILES}  # all checked before parsing any
        coco = load_coco(paths["data"], image_keys=_IMAGE_KEYS, annotation_keys=("joint_valid", "hand_type"))
        tables = {kind: read_table(paths[kind], "capture") for kind in _FILES[1:]}
        views = kept_views(coco.imgs, self.TRAIN_VIEWS) if self.is_train and self.TRAIN_VIEWS else None
        cameras: dict[tuple[str, str], CameraParams] = {}
        records: list[Record] = []
        for ann_id in sorted(coco.anns):
            ann = coco.anns[ann_id]
            img = coco.imgs[ann["image_id"]]
            capture, cam = str(img["capture"]), str(img["camera"])
            if views is not None and (capture, str(img["seq_name"]), cam) not in views:
                continue
            if (capture, cam) not in cameras:
                cameras[(capture, cam)] = self._camera(tables["camera"], capture, cam, paths["camera"])
            records += self._hand_records(ann, img, cameras[(capture, cam)], tables, paths)
        if views is not None:
            logger.info("%s train: kept %d camera views of %d (TRAIN_VIEWS=%d)", self.NAME, len(views),
                        len({(str(i["capture"]), str(i["seq_name"]), str(i["camera"])) for i in coco.imgs.values()}),
                        self.TRAIN_VIEWS)  # fmt: skip
        return records

    @staticmethod
    def _camera(table: Mapping[str, Any], capture: str, cam: str, path: Path) -> CameraParams:
        """One camera: intrinsics in pixels, R world -> camera, t = -R campos in metres."""
        where = f"{path} [{capture!r}]"
        rotation = numbers(nested_entry(table, (capture, "camrot", cam), path), (3, 3), f"{where}['camrot'][{cam!r}]")
        centre_mm = numbers(nested_entry(table, (capture, "campos", cam), path), (3,), f"{where}['campos'][{cam!r}]")
        focal = numbers(nested_entry(table, (capture, "focal", cam), path), (2,), f"{where}['focal'][{cam!r}]")
        princpt = numbers(nested_entry(table, (capture, "princpt", cam), path), (2,), f"{where}['princpt'][{cam!r}]")
        return CameraParams(focal=focal, princpt=princpt, R=rotation, t=-rotation @ centre_mm / 1000.0)

    def _hand_records(self, ann: Mapping[str, Any], img: Mapping[str, Any], cam: CameraParams,
                      tables: Mapping[str, Any], paths: Mapping[str, Path]) -> list[Record]:  # fmt: skip
        """The records of one annotation: one per hand its hand_type names that has a labelled joint in the image."""
        capture, frame = str(img["capture"]), str(img["frame_idx"])
        where = f"{paths['data']} annotation {ann['id']}"
        img_path = path_in_root(self.root / "images" / self.split, img["file_name"], paths["data"],
                                f"image {img['id']}, file_name")  # fmt: skip
        if ann["hand_type"] not in _HAND_TYPES:
            raise AnnotationError(f"{where}: hand_type {ann['hand_type']!r}, expected one of {', '.join(_HAND_TYPES)}",
                                  paths["data"])  # fmt: skip
        num_joints = 2 * len(INTERHAND_HAND_JOINTS)
        world_mm = numbers(nested_entry(tables["joint_3d"], (capture, frame, "world_coord"), paths["joint_3d"]),
                           (num_joints, 3), f"{paths['joint_3d']} [{capture!r}][{frame!r}]['world_coord']")  # fmt: skip
        valid_all = numbers(ann["joint_valid"], (num_joints,), f"{where} 'joint_valid'")
        assert cam.R is not None and cam.t is not None
        joints_cam = world_mm @ cam.R.T / 1000.0 + cam.t  # (42, 3) metres, camera frame
        xy_img = cam.project(joints_cam)  # (42, 2); unlabelled joints are masked below
        img_hw = image_hw(img)
        records = []
        for side in _HAND_TYPES[ann["hand_type"]]:
            rows = slice(HAND_OFFSETS[side], HAND_OFFSETS[side] + len(INTERHAND_HAND_JOINTS))
            valid = (valid_all[rows] > 0) * float(valid_all[rows][_WRIST] > 0)  # (21,) no wrist, no labels
            if not valid.any():
                continue
            box = get_bbox(xy_img[rows], valid, extend_ratio=BOX_EXTEND)
            bbox = process_bbox(box, img_hw[1], img_hw[0], aspect_ratio=self.space.aspect_ratio)
            if bbox is None:
                continue
            records.append(Record(
                img_path=img_path, img_hw=img_hw, bbox_xywh_img=bbox, cam=cam, crop="hand", hand_side=side,
                mano=self._mano(tables["MANO_NeuralAnnot"], capture, frame, side, paths["MANO_NeuralAnnot"]),
                joints_xy_img=xy_img[rows], joints_cam=joints_cam[rows], joints_valid=valid.astype(np.float64),
                is_3D=True, info={"ann_id": int(ann["id"]), "image_id": int(img["id"]), "capture": capture,
                                  "frame_idx": frame, "camera": str(img["camera"])},
            ))  # fmt: skip
        return records

    @staticmethod
    def _mano(table: Mapping[str, Any], capture: str, frame: str, side: str, path: Path) -> MANOParams | None:
        """The side's NeuralAnnot fit of a frame (world frame, metres), or None where the file has none."""
        param = optional_entry(table, (capture, frame, side), path)
        if param is None:
            return None
        return mano_params(param, side, f"{path} [{capture!r}][{frame!r}][{side!r}]")
