"""MPII Human Pose with NeuralAnnot SMPL-X or SMPL pseudo-GT: one of Hand4Whole's 2D training sets (train only).

Layout under the data root (``cfg.data.dataset_roots['MPII']``, default ``<data_dir>/MPII/data``, as Hand4Whole)::

    annotations/train.json                        COCO format, 16 keypoints per person
    annotations/test.json                         the same, optional: read with train.json by a family that reads
                                                  no fits (`data.fits.fit_model` None, e.g. Integral regression,
                                                  which trains on all MPII persons), never needed
    annotations/MPII_train_SMPLX_NeuralAnnot.json str(annotation id) -> SMPL-X fit (Hand4Whole)
    annotations/MPII_train_SMPL_NeuralAnnot.json  str(annotation id) -> {'smpl_param': {pose, shape, trans},
                                                  'cam_param': {focal, princpt}}, read instead for the Pose2Pose
                                                  body model (`FIT_FILES`)
    <file_name>                                   the image, relative to the root (e.g. images/015601864.jpg)

One record per person annotation that is not a crowd and has a labelled keypoint. No hand or face boxes. A family
that reads no fits needs no NeuralAnnot file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.utils.augmentation import process_bbox
from data.annotation_io import image_hw, keypoints, load_coco, path_in_root, read_table
from data.dataset import BaseDataset
from data.fits import fit_model, neural_annot_fit
from data.record import Record

__all__ = ["FIT_FILES", "MPII", "MPII_JOINTS"]

MPII_JOINTS: tuple[str, ...] = (
    "R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle", "Pelvis", "Thorax", "Neck", "Head_top", "R_Wrist",
    "R_Elbow", "R_Shoulder", "L_Shoulder", "L_Elbow", "L_Wrist",
)  # fmt: skip
"""MPII's 16 keypoints in file order (Thorax and Head_top have no supervision joint and are dropped)."""
ANNOTATION_FILE = "train.json"
EXTRA_ANNOTATION_FILES: tuple[str, ...] = ("test.json",)
"""Read too, where present, when the family reads no fits (the NeuralAnnot fits cover train.json only)."""
FIT_FILES: Mapping[str, str] = {
    "smplx": "MPII_train_SMPLX_NeuralAnnot.json",
    "smpl": "MPII_train_SMPL_NeuralAnnot.json",
}
"""The NeuralAnnot fits each body model reads (`data.fits.fit_model`), under annotations/."""
NEURAL_ANNOT_FILE = FIT_FILES["smplx"]


class MPII(BaseDataset):
    """MPII persons with their NeuralAnnot SMPL-X (or, for the body model, SMPL) fits (2D keypoints; is_3D False).

    The SMPL-X fits' ankle and wrist rotations and their foot keypoints are not supervised (Hand4Whole: NeuralAnnot
    fits them poorly on body-only data); a person without a fit has its SMPL-X / SMPL masks at 0.
    """

    NAME = "MPII"
    DOWNLOAD_PAGE = ("http://human-pose.mpi-inf.mpg.de (images); train.json and the SMPL-X fits: "
                     "https://github.com/mks0601/NeuralAnnot_RELEASE")  # fmt: skip
    SPLITS = ("train",)
    JOINT_NAMES = MPII_JOINTS
    SMPLX_INVALID_ROTATIONS = ("L_Ankle", "R_Ankle", "L_Wrist", "R_Wrist")
    SMPLX_INVALID_JOINTS = ("L_Big_toe", "L_Small_toe", "L_Heel", "R_Big_toe", "R_Small_toe", "R_Heel")

    def load_records(self) -> list[Record]:
        """One record per usable person annotation of train.json (and test.json where present for a family that
        reads no fits)."""
        model = fit_model(self.targets)
        if model is None:
            records = self._coco_records(self.annotation_file(Path("annotations") / ANNOTATION_FILE), None, {}, "")
            for name in EXTRA_ANNOTATION_FILES:
                if (self.root / "annotations" / name).is_file():
                    records += self._coco_records(self.annotation_file(Path("annotations") / name), None, {}, "")
            return records
        coco_path = self.annotation_file(Path("annotations") / ANNOTATION_FILE)
        fits_path = self.annotation_file(Path("annotations") / FIT_FILES[model])
        return self._coco_records(coco_path, model, read_table(fits_path), str(fits_path))

    def _coco_records(self, coco_path: Path, model: str | None, fits: Mapping[str, Any], fits_name: str
                      ) -> list[Record]:  # fmt: skip
        """The records of one COCO file, with their ``model`` fits from ``fits`` (none when ``model`` is None)."""
        db = load_coco(coco_path, image_keys=("file_name", "height", "width"), annotation_keys=("bbox", "keypoints"))
        records = []
        for ann_id, ann in db.anns.items():
            if ann.get("iscrowd", 0):
                continue
            xy, valid = keypoints(ann, "keypoints", len(MPII_JOINTS), coco_path)
            img = db.imgs[ann["image_id"]]
            img_hw = image_hw(img)
            img_path = path_in_root(self.root, img["file_name"], coco_path, f"image {img['id']}, file_name")
            bbox = process_bbox(ann["bbox"], img_hw[1], img_hw[0])
            if not valid.any() or bbox is None:  # no keypoint, or the person box lies outside the image
                continue
            record = Record(img_path=img_path, img_hw=img_hw, bbox_xywh_img=bbox, joints_xy_img=xy,
                            joints_valid=valid, is_3D=False,
                            info={"ann_id": ann_id, "image_id": ann["image_id"], "file": coco_path.name})  # fmt: skip
            entry = fits.get(str(ann_id))
            if model is not None and entry is not None:
                params, record.cam = neural_annot_fit(entry, model, f"{fits_name} [{str(ann_id)!r}]")
                setattr(record, model, params)
            records.append(record)
        return records
