"""MPI-INF-3DHP in the parsed release of Hand4Whole / NeuralAnnot (1k-pixel images): training only.

Layout under the data root (cfg.data.dataset_roots['MPI_INF_3DHP'] or <data_dir>/MPI_INF_3DHP/data)::

    MPI-INF-3DHP_1k.json                 COCO; images carry subject_idx, seq_idx, frame_idx, cam_idx, file_name;
                                         annotations carry bbox (xywh)
    MPI-INF-3DHP_camera_1k.json          [subject][seq][cam] -> R (3x3), t (mm), focal, princpt (pixels)
    MPI-INF-3DHP_joint_3d.json           [subject][seq][frame] -> 17 x 3 world mm
    MPI-INF-3DHP_SMPLX_NeuralAnnot.json  [subject][seq][frame] -> SMPL-X parameters, world frame
                                         (Hand4Whole's README calls it MPI-INF-3DHP_SMPL_NeuralAnnot.json;
                                         that name is accepted when the SMPLX one is absent)
    MPI-INF-3DHP_SMPL_NeuralAnnot.json   [subject][seq][frame] -> SMPL {pose (72), shape (10), trans (3)}, world
                                         frame: what the Pose2Pose body model reads (`FIT_FILES`)
    images_1k/S{subject}/Seq{seq}/imageSequence/<file_name>

Every 3rd frame is used (25 fps -> 8.3 fps), as Hand4Whole does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from common.utils.augmentation import process_bbox
from data.annotation_io import image_hw, load_coco, nested_entry, path_in_root, read_table
from data.dataset import BaseDataset
from data.fits import calibrated_frame_fields, camera_params, fit_model
from data.record import Record

logger = logging.getLogger(__name__)

__all__ = ["MPI_INF_3DHP"]

_MM = 1000.0  # the release stores translations and joints in millimetres; the framework uses metres
_PREFIX = "MPI-INF-3DHP"
_IMAGE_KEYS = ("file_name", "height", "width", "subject_idx", "seq_idx", "frame_idx", "cam_idx")


class MPI_INF_3DHP(BaseDataset):
    """MPI-INF-3DHP: 17 GT joints (is_3D) and NeuralAnnot SMPL-X or SMPL pseudo-GT, camera extrinsics folded in."""

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
    FIT_FILES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "smplx": (f"{_PREFIX}_SMPLX_NeuralAnnot.json", f"{_PREFIX}_SMPL_NeuralAnnot.json"),
        "smpl": (f"{_PREFIX}_SMPL_NeuralAnnot.json",),
    }
    """The fits each body model reads (`smpl_io.fit_model`): the first of its names that is there (SMPL-X's under
    the README's name too)."""

    def _fits_file(self, model: str) -> Path:
        """The fits file of a body model; MissingAnnotationError names its first name."""
        names = self.FIT_FILES[model]
        for name in names:
            if (self.root / name).is_file():
                return self.root / name
        return self.annotation_file(names[0])  # raises, naming it and the download page

    def load_records(self) -> list[Record]:
        """Records of every 3rd frame, with camera-frame joints (metres) and their projections."""
        model = fit_model(self.targets)
        paths = {"data": self.annotation_file(f"{_PREFIX}_1k.json"), "camera": self.annotation_file(
                 f"{_PREFIX}_camera_1k.json"), "joint_3d": self.annotation_file(f"{_PREFIX}_joint_3d.json"),
                 "fits": self._fits_file(model)}  # fmt: skip
        coco = load_coco(paths["data"], image_keys=_IMAGE_KEYS, annotation_keys=("bbox",))
        tables = {p: read_table(paths[p], "subject") for p in ("camera", "joint_3d", "fits")}
        records, unfitted = [], 0
        for ann_id in sorted(coco.anns):
            ann = coco.anns[ann_id]
            img = coco.imgs[ann["image_id"]]
            subject, seq, frame = str(img["subject_idx"]), str(img["seq_idx"]), int(img["frame_idx"])
            if frame % self.FRAME_STEP:
                continue
            img_path = path_in_root(self.root / "images_1k" / f"S{subject}" / f"Seq{seq}" / "imageSequence",
                                    img["file_name"], paths["data"], f"image {img['id']}, file_name")  # fmt: skip
            bbox = process_bbox(ann["bbox"], img["width"], img["height"])
            if bbox is None:
                continue
            cam_key = (subject, seq, str(img["cam_idx"]))
            cam = camera_params(nested_entry(tables["camera"], cam_key, paths["camera"]),
                                f"{paths['camera']} [{']['.join(cam_key)}]", rotation="R", translation="t",
                                translation_unit_m=1 / _MM)  # fmt: skip
            fields = calibrated_frame_fields(cam, (subject, seq, str(frame)), tables, paths, len(self.JOINT_NAMES),
                                             model)  # fmt: skip
            unfitted += model not in fields
            records.append(Record(
                img_path=img_path, img_hw=image_hw(img), bbox_xywh_img=bbox, **fields,
                info={"ann_id": int(ann_id), "subject": subject, "seq": seq, "frame": frame},
            ))  # fmt: skip
        if unfitted:
            logger.info("MPI_INF_3DHP: %d samples without a %s fit (their %s targets are masked)", unfitted,
                        model.upper(), model.upper())  # fmt: skip
        return records
