"""Human3.6M in the parsed release of Hand4Whole / NeuralAnnot: 17 3D joints and SMPL-X or SMPL pseudo-GT.

Layout under the data root (cfg.data.dataset_roots['Human36M'] or <data_dir>/Human36M, as in Hand4Whole)::

    images/<file_name>                                  as the data json's file_name says
    annotations/Human36M_subject{S}_data.json           COCO; images carry subject, action_idx, subaction_idx,
                                                        frame_idx, cam_idx; annotations carry bbox (xywh)
    annotations/Human36M_subject{S}_camera.json         [cam_idx] -> R (3x3), t (mm), f, c (pixels)
    annotations/Human36M_subject{S}_joint_3d.json       [action][subaction][frame] -> 17 x 3 world mm
    annotations/Human36M_subject{S}_SMPLX_NeuralAnnot.json  [action][subaction][frame] -> SMPL-X parameters
                                                        (world frame: the camera's R and t bring them in)
    annotations/Human36M_subject{S}_SMPL_NeuralAnnot.json   the same for SMPL: {pose (72), shape (10), trans (3)},
                                                        read instead for the Pose2Pose body model (`FIT_FILES`)

Protocol (HMR, SPIN, Hand4Whole): train on subjects 1, 5, 6, 7, 8 every 5th frame, all cameras; test on
subjects 9 and 11 every 64th frame, camera 4 only; MPJPE and PA-MPJPE on the 14 H36M evaluation joints,
pelvis-relative, regressed from the predicted mesh (SMPL-X or SMPL, each with its own H36M regressor) against the
dataset's GT joints.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from common.utils.augmentation import process_bbox
from common.utils.metrics import H36M_JOINTS, h36m_joint_metrics
from data.annotation_io import image_hw, load_coco, nested_entry, path_in_root, read_table
from data.dataset import BaseDataset
from data.fits import calibrated_frame_fields, camera_params, fit_model
from data.Human36M.smpl_io import MESH_KEYS, h36m_regressor, mesh_topology
from data.record import Record

logger = logging.getLogger(__name__)

__all__ = ["Human36M"]

_MM = 1000.0  # the release stores translations and joints in millimetres; the framework uses metres
_IMAGE_KEYS = ("file_name", "height", "width", "frame_idx", "cam_idx", "action_idx", "subaction_idx")


class Human36M(BaseDataset):
    """Human3.6M: 17 GT joints (is_3D) and NeuralAnnot SMPL-X or SMPL pseudo-GT, camera extrinsics folded in."""

    NAME: ClassVar[str] = "Human36M"
    DEFAULT_SUBDIR: ClassVar[str] = ""  # Hand4Whole keeps images/ and annotations/ directly in data/Human36M/
    DOWNLOAD_PAGE: ClassVar[str] = "https://github.com/mks0601/Hand4Whole_RELEASE#data (Human3.6M parsed data)"
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "test")
    JOINT_NAMES: ClassVar[tuple[str, ...]] = H36M_JOINTS
    # NeuralAnnot's fits get these wrong on Human3.6M (Hand4Whole masks them)
    SMPLX_INVALID_ROTATIONS: ClassVar[tuple[str, ...]] = ("L_Ankle", "R_Ankle", "L_Wrist", "R_Wrist")
    SMPLX_INVALID_JOINTS: ClassVar[tuple[str, ...]] = ("L_Big_toe", "L_Small_toe", "L_Heel", "R_Big_toe",
                                                       "R_Small_toe", "R_Heel")  # fmt: skip
    SUBJECTS: ClassVar[Mapping[str, tuple[int, ...]]] = {"train": (1, 5, 6, 7, 8), "test": (9, 11)}
    FRAME_STEP: ClassVar[Mapping[str, int]] = {"train": 5, "test": 64}
    TEST_CAMERA: ClassVar[int] = 4  # the frontal camera HMR and SPIN evaluate on
    FIT_FILES: ClassVar[Mapping[str, str]] = {"smplx": "SMPLX_NeuralAnnot", "smpl": "SMPL_NeuralAnnot"}
    """The fits each body model reads (`smpl_io.fit_model`): annotations/Human36M_subject{S}_<name>.json."""

    def load_records(self) -> list[Record]:
        """Records of the split's subjects, sub-sampled in time (and camera 4 only at test)."""
        records: list[Record] = []
        for subject in self.SUBJECTS[self.split]:
            records += self._subject_records(subject)
        return records

    def _subject_records(self, subject: int) -> list[Record]:
        model = fit_model(self.targets)
        parts = {"data": "data", "camera": "camera", "joint_3d": "joint_3d", "fits": self.FIT_FILES[model]}
        paths = {key: self.annotation_file(f"annotations/Human36M_subject{subject}_{name}.json")
                 for key, name in parts.items()}  # fmt: skip
        coco = load_coco(paths["data"], image_keys=_IMAGE_KEYS, annotation_keys=("bbox",))
        tables = {p: read_table(paths[p], "id") for p in ("camera", "joint_3d", "fits")}
        records, unfitted = [], 0
        for ann_id in sorted(coco.anns):
            ann = coco.anns[ann_id]
            img = coco.imgs[ann["image_id"]]
            frame, cam_idx = int(img["frame_idx"]), int(img["cam_idx"])
            if frame % self.FRAME_STEP[self.split] or (not self.is_train and cam_idx != self.TEST_CAMERA):
                continue
            entry = f"image {img['id']}, file_name"
            img_path = path_in_root(self.root / "images", img["file_name"], paths["data"], entry)
            bbox = process_bbox(ann["bbox"], img["width"], img["height"])
            if bbox is None:
                continue
            key = (str(img["action_idx"]), str(img["subaction_idx"]), str(frame))
            cam = camera_params(nested_entry(tables["camera"], (str(cam_idx),), paths["camera"]),
                                f"{paths['camera']} [{cam_idx}]", focal="f", princpt="c", rotation="R",
                                translation="t", translation_unit_m=1 / _MM)  # fmt: skip
            fields = calibrated_frame_fields(cam, key, tables, paths, len(self.JOINT_NAMES), model)
            unfitted += model not in fields
            records.append(Record(
                img_path=img_path, img_hw=image_hw(img), bbox_xywh_img=bbox, **fields,
                info={"ann_id": int(ann_id), "subject": subject, "action": key[0], "subaction": key[1], "frame": frame,
                      "cam_idx": cam_idx},
            ))  # fmt: skip
        if unfitted:
            logger.info("Human36M subject %d: %d samples without a %s fit (their targets are masked)", subject,
                        unfitted, model.upper())  # fmt: skip
        return records

    def evaluate(self, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> dict[str, list[float]]:
        """MPJPE and PA-MPJPE (mm) on the 14 H36M joints: regressed from the predicted mesh vs the GT joints.

        The mesh is the body model's 'smpl_mesh_cam' (SMPL, regressed with smpl/J_regressor_h36m_smpl.npy, as the
        reference's Pose2Pose branch) or the whole-body 'smplx_mesh_cam' (SMPL-X, with the SMPL-X H36M regressor);
        the config's family decides when an output holds both.

        Args:
            outs: per sample, the model's test output with 'smpl_mesh_cam' (6890, 3) or 'smplx_mesh_cam' (V, 3)
                metres.
            indices: the dataset index of each output; the GT joints are the record's ``joints_cam``.

        Returns:
            {'mpjpe': [...], 'pa_mpjpe': [...]}, one value per sample, mm.

        Raises:
            MissingBodyModelFileError: SMPL predictions and no smpl/J_regressor_h36m_smpl.npy (the message names it).
        """
        if len(outs) != len(indices):
            raise ValueError(f"Human36M.evaluate: {len(outs)} outputs for {len(indices)} indices")
        if not outs:
            return {"mpjpe": [], "pa_mpjpe": []}
        topology = mesh_topology(outs, fit_model(self.targets), self.NAME)
        pred = np.stack([np.asarray(o[MESH_KEYS[topology]]) for o in outs])  # (B, V, 3) metres
        gt_joints = np.stack([self.records[i].joints_cam for i in indices])  # (B, 17, 3) metres
        # the GT joints are already in the regressor's H36M order: the identity "regresses" them
        metrics = h36m_joint_metrics(pred, gt_joints, h36m_regressor(self.body_models, topology),
                                     np.eye(len(H36M_JOINTS)))  # fmt: skip
        return {k: [float(v) for v in metrics[k]] for k in ("mpjpe", "pa_mpjpe")}
