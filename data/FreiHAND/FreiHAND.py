"""FreiHAND in the parsed layout of Hand4Whole's Pose2Pose branch (I2L-MeshNet's files): right-hand crops with MANO GT.

Layout (the data root is ``cfg.data.dataset_roots['FreiHAND']``, default ``<data_dir>/FreiHAND/data``)::

    <root>/freihand_{train,eval}_coco.json     COCO. images: id, file_name (relative to <root>, e.g.
                                               'training/rgb/00000000.jpg'), width, height, db_idx (the key into
                                               the data file); annotations: id, image_id, bbox (xywh pixels)
    <root>/freihand_{train,eval}_data.json     {str(db_idx): {cam_param: {focal: [fx, fy], princpt: [cx, cy]}
                                               pixels, mano_param: {pose: 48 axis-angle radians (root, then 15
                                               finger joints relative to MANO's mean hand), shape: 10, trans: 3
                                               metres}, joint_3d: (21, 3) metres, scale: metres}}
    <root>/../rootnet_output/bbox_root_freihand_output.json
                                               split 'test' only: [{image_id, bbox (xywh, already square and
                                               enlarged x1.25 by RootNet), root_cam [x, y, z] metres}]
    <root>/training/rgb/%08d.jpg, <root>/evaluation/rgb/%08d.jpg

Frames and units: everything is in the camera frame of the image (FreiHAND has no extrinsics), metres; MANO is
the right hand with use_pca=False, flat_hand_mean=False (common.body_models.BodyModels.mano), posed with
``global_orient=pose[:3], hand_pose=pose[3:], betas=shape, transl=trans``. A data file without ``trans`` gets the
translation that moves the posed MANO's 21 joints (16 skeleton joints and 5 tips) onto ``joint_3d`` in the least
squares sense, i.e. the mean of their differences (`derive_mano_translation`). ``joint_3d`` follows FreiHAND's
order: wrist, then thumb, index, middle, ring and little finger, 4 joints each from the palm to the tip
(`FREIHAND_JOINTS`, mapped to the hand model's joints by name).

Split 'train' reads freihand_train_*; its crop box is the annotation box through `process_bbox` (square for the
hand crop). Split 'test' is FreiHAND's evaluation set (freihand_eval_*), one record per image in db_idx order (the
order of the benchmark's pred.json); its crop box is RootNet's box, used as given (only grown to the crop's
aspect): RootNet already enlarged it, so `process_bbox` would enlarge it twice. Its data file may lack the GT (the
benchmark withheld it): such records have no MANO or joint labels, are left out of the metrics and still get a
prediction in pred.json.

Evaluation (`evaluate`, `report`): per sample, FreiHAND's Procrustes-aligned PA-MPJPE, PA-MPVPE (mm) and F-scores
at 5 and 15 mm on the vertices (common.utils.hand_metrics). The benchmark's ``pred.json`` holds every sample's
prediction, but `evaluate` runs per batch in each test process and only per-sample metrics travel between
processes; so `evaluate` also writes each sample's prediction to ``<output_dir>/result/FreiHAND/pred_parts/
<index>.npz`` (joints_m (21, 3), verts_m (778, 3)), and `report` (rank 0, after every process has evaluated)
assembles pred.json from them in index order and removes the folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from common.body_models.joint_sets import HAND_21
from common.body_models.part_joints import PART_JOINTS, gather_part_joints
from common.utils.augmentation import process_bbox, sanitize_bbox
from common.utils.hand_metrics import freihand_metrics, write_freihand_pred
from data.annotation_io import (
    bbox_xywh,
    brief,
    image_hw,
    load_coco,
    nested_entry,
    numbers,
    path_in_root,
    read_json,
    read_table,
)
from data.dataset import BaseDataset
from data.fits import camera_params, mano_params
from data.prediction_parts import load_parts, save_part
from data.record import AnnotationError, MissingAnnotationError, Record

__all__ = ["FREIHAND_JOINTS", "FreiHAND", "derive_mano_translation"]

logger = logging.getLogger(__name__)

FREIHAND_JOINTS: tuple[str, ...] = (
    "Wrist",
    "Thumb_1", "Thumb_2", "Thumb_3", "Thumb_4",
    "Index_1", "Index_2", "Index_3", "Index_4",
    "Middle_1", "Middle_2", "Middle_3", "Middle_4",
    "Ring_1", "Ring_2", "Ring_3", "Ring_4",
    "Pinky_1", "Pinky_2", "Pinky_3", "Pinky_4",
)  # fmt: skip
"""FreiHAND's 21 joints in its files' order, named as joint_sets.HAND_21 (the little finger is 'Pinky')."""

ROOTNET_FILE = Path("rootnet_output") / "bbox_root_freihand_output.json"
"""RootNet's boxes and roots of the evaluation set, relative to the FreiHAND folder (the data root's parent)."""
_FILE_SPLITS = {"train": "train", "test": "eval"}  # our split -> the files' split name
_METRICS = ("pa_mpjpe", "pa_mpvpe", "f5_mesh", "f15_mesh")  # of hand_metrics.freihand_metrics, reported
_DEPTH_RANGE_M = (0.05, 10.0)  # a plausible median wrist depth: outside it, joint_3d is not in metres
_FIT_BATCH = 1024  # MANO forward passes per batch when deriving translations
PRED_PARTS = "pred_parts"
"""The folder under <output_dir>/result/FreiHAND holding `evaluate`'s per-sample predictions until `report`."""


def derive_mano_translation(layer: Any, pose: np.ndarray, shape: np.ndarray, joints_cam_m: np.ndarray) -> np.ndarray:
    """The MANO translations that best place the posed hands' joints on given joints (least squares: the mean offset).

    Args:
        layer: a MANO layer (common.body_models.BodyModels.mano).
        pose: (N, 48) axis-angle radians, root first. shape: (N, 10) betas.
        joints_cam_m: (N, 21, 3) target joints in joint_sets.HAND_21 order, metres.

    Returns:
        (N, 3) float64 ``transl``, metres.
    """
    spec = PART_JOINTS["hand"]
    vertex_ids, gather = torch.from_numpy(spec.vertex_ids), torch.from_numpy(spec.gather)
    trans = np.zeros((len(pose), 3))
    for start in range(0, len(pose), _FIT_BATCH):
        rows = slice(start, start + _FIT_BATCH)
        pose_t = torch.as_tensor(np.asarray(pose[rows], np.float32))  # (b, 48)
        with torch.no_grad():
            out = layer(global_orient=pose_t[:, :3], hand_pose=pose_t[:, 3:],
                        betas=torch.as_tensor(np.asarray(shape[rows], np.float32)))  # fmt: skip
            posed = gather_part_joints(out.joints, out.vertices, vertex_ids, gather).double().numpy()  # (b, 21, 3)
        trans[rows] = (np.asarray(joints_cam_m[rows], np.float64) - posed).mean(axis=1)
    return trans


def _fit_aspect(bbox_xywh: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """(4,) float32 box grown on its short side to width / height = aspect_ratio, same centre, no enlargement."""
    x, y, w, h = (float(v) for v in bbox_xywh)
    cx, cy = x + w / 2.0, y + h / 2.0
    w, h = max(w, h * aspect_ratio), max(h, w / aspect_ratio)
    return np.array([cx - w / 2.0, cy - h / 2.0, w, h], dtype=np.float32)


class FreiHAND(BaseDataset):
    """FreiHAND right-hand crops with MANO and 3D-joint GT: 'train' (training set) and 'test' (evaluation set)."""

    NAME: ClassVar[str] = "FreiHAND"
    DOWNLOAD_PAGE: ClassVar[str] = (
        "https://github.com/mks0601/Hand4Whole_RELEASE/tree/Pose2Pose (parsed FreiHAND files, RootNet output) and "
        "https://lmb.informatik.uni-freiburg.de/projects/freihand/ (images)"
    )
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "test")
    JOINT_NAMES: ClassVar[tuple[str, ...]] = FREIHAND_JOINTS
    CROPS: ClassVar[tuple[str, ...]] = ("hand",)
    METRIC_LABELS: ClassVar[dict[str, str]] = {
        "pa_mpjpe": "PA-MPJPE (21 joints)",
        "pa_mpvpe": "PA-MPVPE (778 vertices)",
    }

    # --- parsing ---------------------------------------------------------------------------------------
    def load_records(self) -> list[Record]:
        """One record per annotation of the split's coco file ('test': in db_idx order, every image kept)."""
        name = _FILE_SPLITS[self.split]
        coco_path = self.annotation_file(f"freihand_{name}_coco.json")
        data_path = self.annotation_file(f"freihand_{name}_data.json")
        rootnet = self._rootnet_boxes() if not self.is_train else None
        # db_idx: an image's key into the data file (FreiHAND's sample index, shared by a sample's four versions)
        coco = load_coco(coco_path, image_keys=("file_name", "height", "width", "db_idx"),
                         annotation_keys=("bbox",) if self.is_train else ())  # fmt: skip
        data = read_table(data_path, "db_idx")
        records = []
        db_idx = {image_id: img["db_idx"] for image_id, img in coco.imgs.items()}
        for ann_id in sorted(coco.anns, key=lambda a: (db_idx[coco.anns[a]["image_id"]], a)):
            ann = coco.anns[ann_id]
            img = coco.imgs[ann["image_id"]]
            record = self._record(img, ann, data, coco_path, data_path, rootnet)
            if record is not None:
                records.append(record)
        self._complete_translations(records, data_path)
        return records

    def _rootnet_boxes(self) -> dict[int, tuple[np.ndarray, float]]:
        """image_id -> (RootNet's (4,) xywh box, pixels; its root depth, metres)."""
        path = self.root.parent / ROOTNET_FILE
        if not path.is_file():
            raise MissingAnnotationError(path, self.NAME, self.DOWNLOAD_PAGE)
        items = read_json(path)
        if not isinstance(items, list):
            raise AnnotationError(f"{path}: expected a list of {{image_id, bbox, root_cam}}, got {brief(items)}", path)
        boxes = {}
        for k, item in enumerate(items):
            where = f"{path} [{k}]"
            if not isinstance(item, Mapping) or not {"image_id", "bbox", "root_cam"} <= item.keys():
                raise AnnotationError(f"{where}: expected an entry with 'image_id', 'bbox' and 'root_cam', got "
                                      f"{brief(item)}", path)  # fmt: skip
            root_depth_m = float(numbers(item["root_cam"], (3,), f"{where} 'root_cam'")[2])
            boxes[int(item["image_id"])] = (bbox_xywh(item["bbox"], f"{where} 'bbox'"), root_depth_m)
        return boxes

    def _record(self, img: Mapping[str, Any], ann: Mapping[str, Any], data: Mapping[str, Any], coco_path: Path,
                data_path: Path, rootnet: Mapping[int, tuple[np.ndarray, float]] | None) -> Record | None:  # fmt: skip
        """The record of one annotation, or None for a training box outside the image."""
        img_hw = image_hw(img)
        img_path = path_in_root(self.root, img["file_name"], coco_path, f"image {img['id']}, file_name")
        db_idx = str(img["db_idx"])
        entry = nested_entry(data, (db_idx,), data_path)
        where = f"{data_path} [{db_idx!r}]"
        cam = camera_params(nested_entry(data, (db_idx, "cam_param"), data_path), f"{where}['cam_param']")
        info: dict[str, Any] = {"db_idx": int(db_idx), "image_id": int(img["id"]), "ann_id": int(ann["id"])}
        if rootnet is None:
            bbox = process_bbox(ann["bbox"], img_hw[1], img_hw[0], aspect_ratio=self.space.aspect_ratio)
            if bbox is None:
                return None
        else:
            rootnet_path = self.root.parent / ROOTNET_FILE
            if int(img["id"]) not in rootnet:
                raise AnnotationError(f"{rootnet_path}: no entry for image_id {img['id']}", rootnet_path)
            rootnet_box, info["root_depth_m"] = rootnet[int(img["id"])]
            if sanitize_bbox(rootnet_box, img_hw[1], img_hw[0]) is None:
                raise AnnotationError(f"{rootnet_path}: the box of image_id {img['id']} misses the image", rootnet_path)
            bbox = _fit_aspect(rootnet_box, self.space.aspect_ratio)
        record = Record(img_path=img_path, img_hw=img_hw, bbox_xywh_img=bbox, cam=cam, crop="hand", hand_side="right",
                        info=info)  # fmt: skip
        self._add_labels(record, entry, where)
        return record

    def _add_labels(self, record: Record, entry: Mapping[str, Any], where: str) -> None:
        """MANO parameters and the 21 joints of a data-file entry, when it has them (the eval set may not)."""
        if not isinstance(entry, Mapping):
            raise AnnotationError(f"{where}: expected a json object {{cam_param, mano_param, joint_3d}}, got "
                                  f"{brief(entry)}")  # fmt: skip
        if "joint_3d" in entry:
            joints = numbers(entry["joint_3d"], (len(FREIHAND_JOINTS), 3), f"{where} 'joint_3d'")
            assert record.cam is not None
            record.joints_cam, record.joints_xy_img = joints, record.cam.project(joints)
            record.joints_valid, record.is_3D = np.ones(len(FREIHAND_JOINTS)), True
        if "mano_param" in entry:
            # a missing 'trans' is NaN here and derived in _complete_translations
            record.mano = mano_params(entry["mano_param"], "right", f"{where} ['mano_param']", default_trans=np.nan)

    def _complete_translations(self, records: list[Record], data_path: Path) -> None:
        """Checks that joint_3d is in metres and derives the MANO translations the data file leaves out."""
        depths = [r.joints_cam[FREIHAND_JOINTS.index("Wrist"), 2] for r in records if r.joints_cam is not None]
        if depths and not _DEPTH_RANGE_M[0] < float(np.median(depths)) < _DEPTH_RANGE_M[1]:
            raise AnnotationError(f"{data_path}: the median wrist depth of 'joint_3d' is {np.median(depths):g}, not a "
                                  f"distance in metres within {_DEPTH_RANGE_M}", data_path)  # fmt: skip
        missing = [r for r in records if r.mano is not None and np.isnan(r.mano.trans).any()]
        if not missing:
            return
        if any(r.joints_cam is None for r in missing):
            raise AnnotationError(f"{data_path}: an entry has 'mano_param' without 'trans' and without 'joint_3d' to "
                                  "derive it from", data_path)  # fmt: skip
        to_hand21 = [FREIHAND_JOINTS.index(name) for name in HAND_21.names]
        trans = derive_mano_translation(
            self.body_models.mano("right"), np.stack([r.mano.pose for r in missing]),  # type: ignore[union-attr]
            np.stack([r.mano.shape for r in missing]),  # type: ignore[union-attr]
            np.stack([r.joints_cam[to_hand21] for r in missing]),  # type: ignore[index]
        )  # fmt: skip
        for record, value in zip(missing, trans, strict=True):
            record.mano.trans = value  # type: ignore[union-attr]
        logger.info("%s: derived the MANO translation of %d entries from joint_3d", data_path, len(missing))

    # --- evaluation ------------------------------------------------------------------------------------
    def prediction_joints(self, out: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """A prediction's joints and vertices in one frame, as pred.json wants them.

        The hand model's 'mano_joint_cam' is relative to its wrist; it is moved to the wrist regressed from
        'mano_mesh_cam' (MANO's joint regressor, row 0), so joints and mesh lie together in the camera frame.
        (The benchmark aligns each on its own, so this placement changes no metric.)

        Returns:
            (21, 3) float64 joints in `FREIHAND_JOINTS` order and (778, 3) float64 vertices, metres.
        """
        verts = np.asarray(out["mano_mesh_cam"], dtype=np.float64)  # (V, 3)
        rel = np.asarray(out["mano_joint_cam"], dtype=np.float64)[HAND_21.indices(FREIHAND_JOINTS)]  # (21, 3)
        wrist = self.body_models.mano("right").J_regressor[0].double().numpy() @ verts  # (3,)
        return rel - rel[FREIHAND_JOINTS.index("Wrist")] + wrist, verts

    def evaluate(self, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> dict[str, list[float]]:
        """FreiHAND's aligned metrics of a batch; each prediction is also saved for `report`'s pred.json.

        Args:
            outs: per sample, the hand model's test output ('mano_mesh_cam' (778, 3) metres, 'mano_joint_cam'
                (21, 3) wrist-relative metres in HAND_21 order) and the GT the tester adds ('mano_mesh_cam_target'
                (778, 3) metres, 'mano_mesh_valid' ()).
            indices: the dataset index of each output; its record holds the GT joints.

        Returns:
            'pa_mpjpe', 'pa_mpvpe' (mm), 'f5_mesh', 'f15_mesh' (F-scores in [0, 1]) -> one value per sample with
            GT (mesh and joints); samples without GT only go to pred.json.
        """
        if len(outs) != len(indices):
            raise ValueError(f"FreiHAND.evaluate: {len(outs)} outputs for {len(indices)} indices")
        parts_dir = self.result_dir(self.cfg.output_dir) / PRED_PARTS
        pred_joints, pred_verts, gt_joints, gt_verts = [], [], [], []
        for out, index in zip(outs, indices, strict=True):
            joints, verts = self.prediction_joints(out)
            save_part(parts_dir, int(index), joints_m=joints, verts_m=verts)
            record = self.records[int(index)]
            if float(np.asarray(out.get("mano_mesh_valid", 0.0))) > 0 and record.joints_cam is not None:
                pred_joints.append(joints)
                pred_verts.append(verts)
                gt_joints.append(record.joints_cam)
                gt_verts.append(np.asarray(out["mano_mesh_cam_target"], dtype=np.float64))
        if not pred_joints:
            return {key: [] for key in _METRICS}
        metrics = freihand_metrics(np.stack(pred_joints), np.stack(pred_verts), np.stack(gt_joints), np.stack(gt_verts))
        return {key: [float(v) for v in metrics[key]] for key in _METRICS}

    def result_dir(self, output_dir: str | os.PathLike[str]) -> Path:
        """<output_dir>/result/FreiHAND, where metrics.json, pred.json and the prediction parts go."""
        return Path(output_dir) / "result" / self.NAME

    def report(
        self, eval_result: Mapping[str, Sequence[float]], output_dir: str | os.PathLike[str]
    ) -> tuple[str, Path]:
        """The metrics table and metrics.json (the base report), then pred.json from `evaluate`'s saved parts."""
        table, metrics_path = super().report(eval_result, output_dir)
        pred_path = self.write_pred_json(output_dir)
        if pred_path is not None:
            table += f"\nFreiHAND benchmark file (CodaLab): {pred_path}"
        return table, metrics_path

    def write_pred_json(self, output_dir: str | os.PathLike[str]) -> Path | None:
        """Assembles pred.json from the parts `evaluate` saved, in dataset index order, and removes the parts.

        Returns:
            The pred.json path, or None when some sample has no saved prediction (a warning says how many).
        """
        parts = load_parts(self.result_dir(output_dir) / PRED_PARTS, len(self), self.NAME)
        if parts is None:
            return None
        pred_path = write_freihand_pred(self.result_dir(output_dir) / "pred.json", parts["joints_m"], parts["verts_m"])
        return pred_path
