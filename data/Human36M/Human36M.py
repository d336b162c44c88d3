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
dataset's GT joints. A family that reads no fits (`data.fits.fit_model` is None) needs no NeuralAnnot file.

The upstream Integral-regression layout (``data/s_XX_act_XX_subact_XX_ca_XX/h36m_meta.mat`` and the frames, see
data/Human36M/upstream.py) is read instead where the root holds it (`LAYOUT`): 18 joints (the 17 + Thorax), all
cameras, every 5th frame for training and every 64th for testing, subjects by `PROTOCOL`
(#1: train S1, S5, S6, S7, S8, S9, test S11; #2: train S1, S5, S6, S7, S8, test S9, S11; Sun et al.'s numbering).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from common.utils.augmentation import process_bbox
from common.utils.metrics import H36M_JOINTS, h36m_joint_metrics
from data.annotation_io import image_hw, load_coco, nested_entry, path_in_root, read_table
from data.dataset import BaseDataset
from data.fits import calibrated_frame_fields, camera_params, fit_model
from data.Human36M import upstream
from data.Human36M.protocol_report import save_protocol_parts, write_protocol_report
from data.Human36M.smpl_io import MESH_KEYS, h36m_regressor, mesh_topology
from data.record import AnnotationError, Record

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
    """The fits each body model reads (`data.fits.fit_model`): annotations/Human36M_subject{S}_<name>.json."""
    LAYOUT: ClassVar[str] = "auto"
    """'json' (Hand4Whole's release), 'upstream' (data/s_*/h36m_meta.mat) or 'auto': upstream where the root holds
    such a folder, else json."""
    PROTOCOL: ClassVar[int] = 2
    """The upstream layout's split (Sun et al.'s numbering): 1 trains on S9 too and tests on S11 only (PA-MPJPE),
    2 tests on S9 and S11 (MPJPE)."""
    UPSTREAM_SUBJECTS: ClassVar[Mapping[int, Mapping[str, tuple[int, ...]]]] = {
        1: {"train": (1, 5, 6, 7, 8, 9), "test": (11,)},
        2: {"train": (1, 5, 6, 7, 8), "test": (9, 11)},
    }

    @property
    def layout(self) -> str:
        """The layout read: 'json' or 'upstream' (`LAYOUT`, 'auto' decided by what the root holds)."""
        if self.LAYOUT not in ("auto", "json", "upstream"):
            raise ValueError(f"Human36M.LAYOUT must be 'auto', 'json' or 'upstream', not {self.LAYOUT!r}")
        if self.LAYOUT != "auto":
            return self.LAYOUT
        return "upstream" if upstream.has_upstream_layout(self.root) else "json"

    def load_records(self) -> list[Record]:
        """Records of the split's subjects, sub-sampled in time (and camera 4 only at test in the json layout)."""
        if self.layout == "upstream":
            return self._upstream_records()
        records: list[Record] = []
        for subject in self.SUBJECTS[self.split]:
            records += self._subject_records(subject)
        return records

    def _upstream_records(self) -> list[Record]:
        if self.PROTOCOL not in self.UPSTREAM_SUBJECTS:
            raise ValueError(f"Human36M.PROTOCOL must be one of {sorted(self.UPSTREAM_SUBJECTS)}, not {self.PROTOCOL}")
        # this layout's records hold 18 joints: the 17 and Thorax (the target builders read the names per instance)
        self.JOINT_NAMES = upstream.UPSTREAM_JOINTS  # type: ignore[misc]
        subjects = self.UPSTREAM_SUBJECTS[self.PROTOCOL][self.split]
        if not upstream.list_videos(self.root, subjects):
            raise AnnotationError(f"{self.root / upstream.DATA_SUBDIR}: no video folder with an {upstream.META_FILE} "
                                  f"for subjects {list(subjects)} (split {self.split!r}, "
                                  f"protocol #{self.PROTOCOL})")  # fmt: skip
        return upstream.upstream_records(self.root, subjects, self.FRAME_STEP[self.split],
                                         aspect_ratio=self.space.aspect_ratio)  # fmt: skip

    def _subject_records(self, subject: int) -> list[Record]:
        model = fit_model(self.targets)
        parts = {"data": "data", "camera": "camera", "joint_3d": "joint_3d"}
        if model is not None:
            parts["fits"] = self.FIT_FILES[model]
        paths = {key: self.annotation_file(f"annotations/Human36M_subject{subject}_{name}.json")
                 for key, name in parts.items()}  # fmt: skip
        coco = load_coco(paths["data"], image_keys=_IMAGE_KEYS, annotation_keys=("bbox",))
        tables = {p: read_table(paths[p], "id") for p in parts if p != "data"}
        if model is None:  # a family that reads no fits: the frames carry none
            tables["fits"], paths["fits"] = {}, paths["joint_3d"]
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
            fields = calibrated_frame_fields(cam, key, tables, paths, len(self.JOINT_NAMES), model or "smplx")
            unfitted += model is not None and model not in fields
            records.append(Record(
                img_path=img_path, img_hw=image_hw(img), bbox_xywh_img=bbox, **fields,
                info={"ann_id": int(ann_id), "subject": subject, "action": key[0], "subaction": key[1], "frame": frame,
                      "cam_idx": cam_idx},
            ))  # fmt: skip
        if unfitted:
            logger.info("Human36M subject %d: %d samples without a %s fit (their targets are masked)", subject,
                        unfitted, str(model).upper())  # fmt: skip
        return records

    def evaluate(self, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> dict[str, list[float]]:
        """MPJPE and PA-MPJPE (mm) on the 14 H36M joints: regressed from the predicted mesh vs the GT joints.

        The mesh is the body model's 'smpl_mesh_cam' (SMPL, regressed with smpl/J_regressor_h36m_smpl.npy, as the
        reference's Pose2Pose branch) or the whole-body 'smplx_mesh_cam' (SMPL-X, with the SMPL-X H36M regressor);
        the config's family decides when an output holds both. A family that reads no fits (`data.fits.fit_model`
        None) is evaluated by its target builder instead (`BaseDataset.evaluate`).

        Args:
            outs: per sample, the model's test output with 'smpl_mesh_cam' (6890, 3) or 'smplx_mesh_cam' (V, 3)
                metres.
            indices: the dataset index of each output; the GT joints are the record's ``joints_cam``.

        Returns:
            {'mpjpe': [...], 'pa_mpjpe': [...]}, one value per sample, mm.

        Raises:
            MissingBodyModelFileError: SMPL predictions and no smpl/J_regressor_h36m_smpl.npy (the message names it).
        """
        if fit_model(self.targets) is None:  # a skeleton family (no body model): its target builder evaluates
            if self.layout == "upstream":  # the records know subject and action: per-action tables in `report`
                save_protocol_parts(self, outs, indices)
            return super().evaluate(outs, indices)
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

    def report(self, eval_result: Mapping[str, Sequence[float]], output_dir: Any) -> tuple[str, Path]:
        """The metrics table and metrics.json; for a skeleton family on the upstream layout, also the 15-action
        Protocol #1 / #2 tables and upstream's result files in result/Human36M/ (data/Human36M/protocol_report.py)."""
        table, path = super().report(eval_result, output_dir)
        skeleton_on_upstream = fit_model(self.targets) is None and self.layout == "upstream"
        tables = write_protocol_report(self, output_dir) if skeleton_on_upstream else None
        return (table if tables is None else f"{table}\n{tables}"), path
