"""FFHQ faces with FLAME pseudo-GT: the Pose2Pose face model's training set (face crops, train only).

Layout under the data root (``cfg.data.dataset_roots['FFHQ']``, default ``<data_dir>/FFHQ/data`` as in the reference's
Pose2Pose branch)::

    FFHQ.json           COCO format: per face annotation 'bbox' (xywh pixels), 'keypoints' (73 x (x, y) pixels in
                        FLAME's output-joint order, `joint_sets.FLAME_OUTPUT`) and 'keypoints_valid' (73,)
    flame_param.json    str(annotation id) -> {'flame_param': {root_pose (3,), jaw_pose (3,), shape (10,),
                        expr (10,), trans (3,)}, 'cam_param': {focal, princpt}}; the reference's README calls this
                        file FFHQ_FLAME_NeuralAnnot.json: either name is read, the code's first
    images/<file_name>

The fits are axis-angle radians and metres in the camera frame (no R, t), intrinsics in the image's pixels. One record
per annotation whose box lies in the image, boxed at the face model's input aspect. The 2D joint targets are the
annotated keypoints (not the fit's projection) and there is no 3D label (is_3D False), as in the reference; a face
without a fit entry keeps its keypoints and has its FLAME masks at 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from common.body_models.joint_sets import FLAME_OUTPUT
from common.utils.augmentation import process_bbox
from data.annotation_io import image_hw, load_coco, numbers, path_in_root, read_table
from data.dataset import BaseDataset
from data.fits import neural_annot_fit
from data.record import AnnotationError, MissingAnnotationError, Record

__all__ = ["FFHQ", "FLAME_FIT_FILES", "MissingFitFileError"]

ANNOTATION_FILE = "FFHQ.json"
FLAME_FIT_FILES = ("flame_param.json", "FFHQ_FLAME_NeuralAnnot.json")
"""The FLAME fit file under its two names: the reference code's, then its README's."""


class MissingFitFileError(MissingAnnotationError):
    """None of a fit file's accepted names exists; the message names them all and the download page."""

    def __init__(self, paths: tuple[Path, ...], dataset: str, download_page: str) -> None:
        super().__init__(paths[0], dataset, download_page)
        names = " or ".join(str(path) for path in paths)
        self.message = (f"{dataset} FLAME fit file not found: {names}; download it from {download_page} and put it "
                        f"there, or set data.dataset_roots={{{dataset}: DIR}}")  # fmt: skip
        self.args = (self.message,)


def _face_keypoints(ann: Mapping[str, Any], source: Path) -> tuple[np.ndarray, np.ndarray]:
    """(73, 2) float64 pixels and (73,) float64 mask of an annotation's 'keypoints' and 'keypoints_valid'."""
    count, where = len(FLAME_OUTPUT), f"{source}: annotation {ann['id']}"
    xy, valid = (
        numbers(ann["keypoints"], None, f"{where} 'keypoints'"),
        numbers(ann["keypoints_valid"], None, f"{where} 'keypoints_valid'"),
    )
    if xy.size != count * 2 or valid.size != count:
        raise AnnotationError(f"{where} holds {xy.size} 'keypoints' numbers and {valid.size} 'keypoints_valid' flags, "
                              f"expected {count} x 2 and {count}", source)  # fmt: skip
    return xy.reshape(count, 2), (valid > 0).astype(np.float64)


class FFHQ(BaseDataset):
    """FFHQ face crops with their FLAME fits (2D keypoints; is_3D False); 'train' only, as in the reference."""

    NAME = "FFHQ"
    DOWNLOAD_PAGE = ("https://github.com/NVlabs/ffhq-dataset (images); FFHQ.json and the FLAME fits: the Pose2Pose "
                     "branch of https://github.com/mks0601/Hand4Whole_RELEASE")  # fmt: skip
    SPLITS = ("train",)
    JOINT_NAMES = FLAME_OUTPUT.names
    CROPS = ("face",)

    def fit_file(self) -> Path:
        """The first of `FLAME_FIT_FILES` under the root; `MissingFitFileError` naming both when neither exists."""
        paths = tuple(self.root / name for name in FLAME_FIT_FILES)
        for path in paths:
            if path.is_file():
                return path
        raise MissingFitFileError(paths, self.NAME, self.DOWNLOAD_PAGE)

    def load_records(self) -> list[Record]:
        """One record per annotation of FFHQ.json whose face box lies in the image."""
        coco_path = self.annotation_file(ANNOTATION_FILE)
        fits_path = self.fit_file()
        db = load_coco(coco_path, image_keys=("file_name", "height", "width"),
                       annotation_keys=("bbox", "keypoints", "keypoints_valid"))  # fmt: skip
        fits = read_table(fits_path)
        records = []
        for ann_id, ann in db.anns.items():
            img = db.imgs[ann["image_id"]]
            img_hw = image_hw(img)
            img_path = path_in_root(self.root / "images", img["file_name"], coco_path, f"image {img['id']}, file_name")
            bbox = process_bbox(ann["bbox"], img_hw[1], img_hw[0], aspect_ratio=self.space.aspect_ratio)
            if bbox is None:  # the face box lies outside the image
                continue
            xy, valid = _face_keypoints(ann, coco_path)
            record = Record(img_path=img_path, img_hw=img_hw, bbox_xywh_img=bbox, crop="face", joints_xy_img=xy,
                            joints_valid=valid, is_3D=False,
                            info={"ann_id": ann_id, "image_id": ann["image_id"]})  # fmt: skip
            entry = fits.get(str(ann_id))
            if entry is not None:
                record.flame, record.cam = neural_annot_fit(entry, "flame", f"{fits_path} [{str(ann_id)!r}]")
            records.append(record)
        return records
