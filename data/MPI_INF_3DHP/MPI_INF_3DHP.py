"""MPI-INF-3DHP in the parsed release of Hand4Whole / NeuralAnnot (1k-pixel images): training only.

Layout under the data root (cfg.data.dataset_roots['MPI_INF_3DHP'] or <data_dir>/MPI_INF_3DHP/data)::

    MPI-INF-3DHP_1k.json                 COCO; images carry subject_idx, seq_idx, frame_idx, cam_idx, file_name;
                                         annotations carry bbox (xywh)
    MPI-INF-3DHP_camera_1k.json          [subject][seq][cam] -> R (3x3), t (mm), focal, princpt (pixels)
    MPI-INF-3DHP_joint_3d.json           [subject][seq][frame] -> 17 x 3 world mm
    MPI-INF-3DHP_SMPLX_NeuralAnnot.json  [subject][seq][frame] -> SMPL-X parameters, world frame
                                         (Hand4Whole's README calls it MPI-INF-3DHP_SMPL_NeuralAnnot.json;
                                         that name is accepted when the SMPLX one is absent)
    images_1k/S{subject}/Seq{seq}/imageSequence/<file_name>

Every 3rd frame is used (25 fps -> 8.3 fps), as Hand4Whole does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import numpy as np

from common.utils.augmentation import process_bbox
from data.annotation_io import load_coco, nested_entry, neural_annot_params, read_json
from data.dataset import BaseDataset
from data.record import CameraParams, MissingAnnotationError, Record

logger = logging.getLogger(__name__)

__all__ = ["MPI_INF_3DHP"]

_MM = 1000.0  # the release stores translations and joints in millimetres; the framework uses metres
_PREFIX = "MPI-INF-3DHP"


class MPI_INF_3DHP(BaseDataset):
    """MPI-INF-3DHP: 17 GT joints (is_3D) and NeuralAnnot SMPL-X pseudo-GT, camera extrinsics folded in."""

    NAME: ClassVar[str] = "MPI_INF_3DHP"
    DOWNLOAD_PAGE: ClassVar[str] = "https://github.com/mks0601/Hand4Whole_RELEASE#data (MPI-INF-3DHP parsed data)"
    SPLITS: ClassVar[tuple[str, ...]] = ("train",)
    JOINT_NAMES: ClassVar[tuple[str, ...]] = (
        "Head_top", "Neck", "R_Shoulder", "R_Elbow", "R_Wrist", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Hip", "R_Knee",
        "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Pelvis", "Torso", "Head",
    )  # fmt: skip
    # NeuralAnnot's fits get these wrong here as on Human3.6M (Hand4Whole masks them)
    SMPLX_INVALID_ROTATIONS: ClassVar[tuple[str, ...]] = ("L_Ankle", "R_Ankle", "L_Wrist", "R_Wrist")
    SMPLX_INVALID_JOINTS: ClassVar[tuple[str, ...]] = ("L_Big_toe", "L_Small_toe", "L_Heel", "R_Big_toe",
                                                       "R_Small_toe", "R_Heel")  # fmt: skip
    FRAME_STEP: ClassVar[int] = 3

    def _smplx_file(self) -> Path:
        """The SMPL-X fits file under either of its two published names."""
        try:
            return self.annotation_file(f"{_PREFIX}_SMPLX_NeuralAnnot.json")
        except MissingAnnotationError:
            if (self.root / f"{_PREFIX}_SMPL_NeuralAnnot.json").is_file():
                return self.root / f"{_PREFIX}_SMPL_NeuralAnnot.json"
            raise

    def load_records(self) -> list[Record]:
        """Records of every 3rd frame, with camera-frame joints (metres) and their projections."""
        paths = {"data": self.annotation_file(f"{_PREFIX}_1k.json"), "camera": self.annotation_file(
                 f"{_PREFIX}_camera_1k.json"), "joint_3d": self.annotation_file(f"{_PREFIX}_joint_3d.json"),
                 "smplx": self._smplx_file()}  # fmt: skip
        coco = load_coco(paths["data"])
        cameras, joints, fits = (read_json(paths[p]) for p in ("camera", "joint_3d", "smplx"))
        records, unfitted = [], 0
        for ann_id in sorted(coco.anns):
            ann = coco.anns[ann_id]
            img = coco.imgs[ann["image_id"]]
            subject, seq, frame = str(img["subject_idx"]), str(img["seq_idx"]), int(img["frame_idx"])
            if frame % self.FRAME_STEP:
                continue
            bbox = process_bbox(np.asarray(ann["bbox"], np.float64), int(img["width"]), int(img["height"]))
            if bbox is None:
                continue
            cam_json = nested_entry(cameras, (subject, seq, str(img["cam_idx"])), paths["camera"])
            cam = CameraParams(focal=np.asarray(cam_json["focal"], np.float64).reshape(2),
                               princpt=np.asarray(cam_json["princpt"], np.float64).reshape(2),
                               R=np.asarray(cam_json["R"], np.float64).reshape(3, 3),
                               t=np.asarray(cam_json["t"], np.float64).reshape(3) / _MM)  # fmt: skip
            key = (subject, seq, str(frame))
            joints_world_m = np.asarray(nested_entry(joints, key, paths["joint_3d"]), np.float64).reshape(-1, 3) / _MM
            joints_cam_m = joints_world_m @ cam.R.T + cam.t  # (17, 3) camera frame, metres
            fit = fits.get(subject, {}).get(seq, {}).get(str(frame))
            unfitted += fit is None
            where = f"{paths['smplx']} [{']['.join(key)}]"
            # the fits are bare parameter dicts in the world frame; the camera file brings them into the camera
            smplx = None if fit is None else neural_annot_params({"smplx_param": fit, "cam_param": {
                "focal": cam.focal, "princpt": cam.princpt}}, where)[0]  # fmt: skip
            image_dir = self.root / "images_1k" / f"S{subject}" / f"Seq{seq}" / "imageSequence"
            records.append(Record(
                img_path=image_dir / img["file_name"], img_hw=(int(img["height"]), int(img["width"])),
                bbox_xywh_img=bbox, cam=cam, smplx=smplx, joints_xy_img=cam.project(joints_cam_m),
                joints_cam=joints_cam_m, joints_valid=np.ones(len(self.JOINT_NAMES)), is_3D=True,
                info={"ann_id": int(ann_id), "subject": subject, "seq": seq, "frame": frame},
            ))  # fmt: skip
        if unfitted:
            logger.info("MPI_INF_3DHP: %d samples without a SMPL-X fit (their SMPL-X targets are masked)", unfitted)
        return records
