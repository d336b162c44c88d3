"""AGORA with SMPL-X (or, for the Pose2Pose body model, SMPL) ground truth, in the parsed layout Hand4Whole published.

Layout under the data root (``cfg.data.dataset_roots['AGORA']``, default ``<data_dir>/AGORA/data``); data/Synthetic
writes the same::

    AGORA_{train,validation}_SMPLX.json   COCO format (tool/AGORA/agora2coco_smplx.py writes them). images: id,
                                          file_name_1280x720, file_name_3840x2160;
                                          annotations: image_id, person_id, smplx_param_path, cam_param_path,
                                          gender, kid, is_valid, bbox, lhand_bbox, rhand_bbox, face_bbox
                                          (xywh in 3840x2160 pixels)
    AGORA_{train,validation}_SMPL.json    the same for SMPL fits (tool/AGORA/agora2coco_smpl.py), with
                                          smpl_param_path instead of smplx_param_path (and usually no part boxes)
    (the folders below are read where the annotations point; <folder> is the image folder, train_0..9
    or validation)
    smplx_params_cam/<folder>/<image>/<person_id>.json   global_orient, body_pose, jaw_pose, leye_pose, reye_pose,
                                          left_hand_pose, right_hand_pose, betas, expression, transl (camera frame)
    smpl_params_cam/<folder>/<image>/<person_id>.json    global_orient 3, body_pose 69, betas, transl (camera frame)
    cam_params/<folder>/<image>.json      focal, princpt in 3840x2160 pixels
    <file_name_1280x720>                  the 720p images (data.agora_resolution '1280x720')
    images_3840x2160/<folder>_crop/<image>_person_id_<k>.png and .json
                                          per-person crops of the 4K images ('3840x2160'), as Hand4Whole's and our
                                          tool/AGORA/crop_and_resize_4k_images.py write them: <folder> is that of
                                          file_name_3840x2160; the json has bbox_orig, affine_mat (or img2bb_trans),
                                          resized_height and resized_width
    AGORA_test_bbox.json                  the test split: Hand4Whole's YOLOv5 detections, {image file name:
                                          [{'bbox': [x, y, w, h]}, ...]} in 3840x2160 pixels; images
                                          1280x720/test/<name>_1280x720.png, or the 4K crops
                                          images_3840x2160/test_crop/<name>_person_id_<k>.png and .json

Which fits are read follows the family (data/AGORA/fits.py): the Pose2Pose body model (model.arch pose2pose_body)
reads the SMPL variant into ``record.smpl``, every other family the SMPL-X variant into ``record.smplx``. Paths
in the annotations (images, parameter and camera files, the test detections' image names) must stay inside the
data root (`data.annotation_io.path_in_root`); they are checked when the dataset is built, before any is opened.

Persons with is_valid false are left out (both splits, as Hand4Whole). Every person is posed with the neutral
layer and its first 10 betas, as Hand4Whole does (a kid's 11th, age blend-shape coefficient is dropped);
``data.agora_gender='annotated'`` uses the annotated gender's layer instead, which reproduces a mesh rendered
with it exactly (data/Synthetic). All joint targets come from the parametric ground truth (JOINTS_FROM_PARAMS).

The test split has no ground truth: one record per detection (its index k is the person id, as in
Hand4Whole), and `AGORA.evaluate` only writes the server's SMPL-X prediction files (data/AGORA/server_format.py;
there is no SMPL export). The split the test tools evaluate is `AGORA.TEST_SPLIT`, 'validation'; the 'test'
split is built with ``data.build_dataset('AGORA', 'test', cfg)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from common.utils.augmentation import apply_affine, crop_affine, process_bbox, sanitize_bbox
from common.utils.metrics import report as report_metrics
from common.utils.smplx_targets import CameraParams
from data.AGORA.fits import FIT_VARIANTS, PARAM_PATH_KEYS, FitVariant, read_camera
from data.AGORA.server_format import PREDICTIONS_FOLDER, prediction_file_name, write_agora_prediction
from data.annotation_io import bbox_xywh, brief, numbers, path_in_root, read_coco, read_json, relative_path
from data.dataset import BaseDataset
from data.fits import fit_model, gender_of
from data.record import AnnotationError, Record

logger = logging.getLogger(__name__)

__all__ = ["AGORA", "CROP_AFFINE_KEYS", "IMAGE_HW_4K", "IMAGE_HW_720P", "TEST_BBOX_FILE", "crop_file_stem",
           "read_test_detections"]  # fmt: skip

IMAGE_HW_4K = (2160, 3840)  # (H, W) of AGORA's images, which its boxes and intrinsics refer to
IMAGE_HW_720P = (720, 1280)
TEST_BBOX_FILE = "AGORA_test_bbox.json"
CROP_AFFINE_KEYS = (
    "affine_mat",
    "img2bb_trans",
)  # the crop tool writes the first; Hand4Whole's test branch read the second
BOX_PARTS = ("lhand", "rhand", "face")
_IMAGE_KEYS = ("file_name_1280x720", "file_name_3840x2160")


def _xywh_to_xyxy(bbox_xywh: np.ndarray | None) -> np.ndarray | None:
    return None if bbox_xywh is None else np.concatenate([bbox_xywh[:2], bbox_xywh[:2] + bbox_xywh[2:]])


def _image_stem(image: Mapping[str, Any]) -> str:
    """AGORA's image name without resolution or extension ('ag_trainset_..._00042'), shared by both modes."""
    if "file_name_3840x2160" in image:
        return PurePosixPath(image["file_name_3840x2160"]).stem
    return PurePosixPath(image["file_name_1280x720"]).stem.removesuffix("_1280x720")


def _has_fit(info: Mapping[str, Any]) -> bool:
    """Whether a record's info names a parameter file (train and validation), unlike a test detection's."""
    return any(key in info for key in PARAM_PATH_KEYS)


def crop_file_stem(image_stem: str, person_id: int) -> str:
    """``<image>_person_id_<k>``: the name (without .png / .json) of a person's 4K crop files."""
    return f"{image_stem}_person_id_{int(person_id)}"


def read_test_detections(path: Path) -> dict[str, list[np.ndarray]]:
    """AGORA_test_bbox.json as {image file name: [(4,) float64 xywh box in 4K pixels, ...]}, in file order."""
    content = read_json(path)
    if not isinstance(content, Mapping):
        raise AnnotationError(f"{path}: expected {{image file name: [{{'bbox': [x, y, w, h]}}, ...]}}", path)
    detections = {}
    for file_name, people in content.items():
        if not isinstance(people, list):
            raise AnnotationError(f"{path}: the detections of {file_name!r} are {brief(people)}, expected a list", path)
        boxes = []
        for person_id, detection in enumerate(people):
            where = f"{path}: detection {person_id} of {file_name!r}"
            if not isinstance(detection, Mapping) or "bbox" not in detection:
                raise AnnotationError(f"{where} needs 'bbox': [x, y, w, h], got {brief(detection)}", path)
            boxes.append(bbox_xywh(detection["bbox"], f"{where} 'bbox'"))
        detections[file_name] = boxes
    return detections


class AGORA(BaseDataset):
    """AGORA persons with their SMPL-X fits, or SMPL fits for the body model (is_3D; part boxes from the annotations).

    Args:
        split: 'train', 'validation' (the test split of data.build_testset, as in Hand4Whole) or 'test' (the
            detections of AGORA_test_bbox.json, without ground truth; for the evaluation server).
        cfg: the whole config; reads data.agora_resolution, data.agora_gender and output_dir (for the
            server export of `evaluate`) besides what `BaseDataset` reads.
    """

    NAME = "AGORA"
    DOWNLOAD_PAGE = ("https://agora.is.tue.mpg.de (images); AGORA_*_SMPLX.json, AGORA_*_SMPL.json, "
                     "AGORA_test_bbox.json, smplx_params_cam, smpl_params_cam and cam_params: "
                     "https://github.com/mks0601/Hand4Whole_RELEASE (AGORA section), or tool/AGORA/agora2coco_smplx.py "
                     "and agora2coco_smpl.py")  # fmt: skip
    SPLITS = ("train", "validation", "test")
    TEST_SPLIT = "validation"
    JOINTS_FROM_PARAMS = True

    def __init__(self, split: str, cfg: Any, **options: Any) -> None:
        self.resolution = cfg.data.agora_resolution
        self.gender_mode = cfg.data.agora_gender
        self.result_dir = Path(cfg.output_dir) / "result" / self.NAME
        # evaluate() maps joints from the pixels of the records' original images to AGORA's 3840x2160
        self.to_4k = 1.0 if self.resolution == "3840x2160" else IMAGE_HW_4K[1] / IMAGE_HW_720P[1]
        super().__init__(split, cfg, **options)

    @property
    def fit_variant(self) -> FitVariant:
        """The fits this family reads: SMPL for the Pose2Pose body model, else SMPL-X (data/AGORA/fits.py)."""
        return FIT_VARIANTS[fit_model(self.targets)]

    @property
    def predictions_dir(self) -> Path:
        """Where `evaluate` writes the server's files: zip this folder and upload it."""
        return self.result_dir / PREDICTIONS_FOLDER

    # --- parsing -------------------------------------------------------------------------------------
    def load_records(self) -> list[Record]:
        """One record per valid person of AGORA_<split>_SMPLX.json (or _SMPL.json; per detection for 'test')."""
        if self.split == "test":
            return self._load_test_records()
        path = self.annotation_file(self.fit_variant.annotation_file.format(split=self.split))
        image_key = _IMAGE_KEYS[1] if self.resolution == "3840x2160" else _IMAGE_KEYS[0]
        db = read_coco(
            path,
            image_keys=(image_key,),
            annotation_keys=("person_id", "is_valid", "bbox", self.fit_variant.path_key, "cam_param_path"),
        )
        images = {image["id"]: image for image in db["images"]}
        records = []
        for ann in db["annotations"]:
            if not ann["is_valid"]:
                continue
            image = images[ann["image_id"]]
            for key in _IMAGE_KEYS:  # both are checked: the 4K name also names the 720p mode's 'image_name'
                if key in image:
                    relative_path(image[key], path, f"image {image['id']}, {key}")
            make = self._crop_record if self.resolution == "3840x2160" else self._record_720p
            record = make(ann, image, path)
            if record is not None:
                records.append(record)
        return records

    def _part_boxes_4k(self, ann: Mapping[str, Any], path: Path) -> dict[str, np.ndarray | None]:
        """'lhand', 'rhand', 'face' -> (4,) xywh box in 4K pixels, or None where the annotation has none."""
        boxes = {}
        for part in BOX_PARTS:
            box = ann.get(f"{part}_bbox")
            boxes[part] = None if box is None else bbox_xywh(box, f"{path}: annotation {ann['id']} '{part}_bbox'")
        return boxes

    def _load_test_records(self) -> list[Record]:
        """One record per detection whose box lies in the image; the detection's index is its person id."""
        records = []
        detections = self.annotation_file(TEST_BBOX_FILE)
        for file_name, boxes in read_test_detections(detections).items():
            stem = PurePosixPath(file_name).stem
            for person_id, bbox_4k in enumerate(boxes):
                info = {"person_id": person_id, "image_name": stem}
                entry = f"detections of {file_name!r}"
                if self.resolution == "3840x2160":
                    record = self._crop_file_record("test", stem, person_id, bbox_4k, info, (detections, entry))
                else:
                    img_path = path_in_root(self.root, f"1280x720/test/{stem}_1280x720.png", detections, entry)
                    record = self._record_720p_from(img_path, bbox_4k, {}, info)
                if record is not None:
                    records.append(record)
        return records

    def _info(self, ann: Mapping[str, Any], image: Mapping[str, Any], path: Path) -> dict[str, Any]:
        """ids, the annotated gender (or neutral) and the per-person files, checked to lie under the root."""
        where = f"{path}: annotation {ann['id']}"
        gender = gender_of(ann.get("gender", "neutral"), where) if self.gender_mode == "annotated" else "neutral"
        files = {key: path_in_root(self.root, ann[key], path, f"annotation {ann['id']}, {key}")
                 for key in (self.fit_variant.path_key, "cam_param_path")}  # fmt: skip
        return {"ann_id": ann["id"], "person_id": int(ann["person_id"]), "image_name": _image_stem(image),
                "gender": gender, **files}  # fmt: skip

    def _record_720p(self, ann: Mapping[str, Any], image: Mapping[str, Any], path: Path) -> Record | None:
        entry = f"image {image['id']}, file_name_1280x720"
        img_path = path_in_root(self.root, image["file_name_1280x720"], path, entry)
        return self._record_720p_from(img_path, ann["bbox"], self._part_boxes_4k(ann, path),
                                      self._info(ann, image, path))  # fmt: skip

    def _record_720p_from(
        self, img_path: Path, bbox_4k: Any, part_boxes_4k: Mapping[str, Any], info: dict[str, Any]
    ) -> Record | None:
        """A 720p record from 4K boxes (xywh; part boxes may be None), or None for a box outside the image."""
        (height, width), scale = IMAGE_HW_720P, IMAGE_HW_720P[1] / IMAGE_HW_4K[1]
        bbox = process_bbox(np.asarray(bbox_4k, np.float64) * scale, width, height)
        if bbox is None:  # entirely outside the image
            return None
        boxes = {}
        for part in BOX_PARTS:
            box = part_boxes_4k.get(part)
            boxes[part] = None if box is None else _xywh_to_xyxy(sanitize_bbox(np.asarray(box) * scale, width, height))
        return Record(img_path=img_path, img_hw=IMAGE_HW_720P, bbox_xywh_img=bbox, part_boxes_xyxy_img=boxes,
                      is_3D=_has_fit(info), info=info)  # fmt: skip

    def _crop_record(self, ann: Mapping[str, Any], image: Mapping[str, Any], path: Path) -> Record | None:
        folder = PurePosixPath(image["file_name_3840x2160"]).parent.name
        record = self._crop_file_record(folder, _image_stem(image), int(ann["person_id"]), ann["bbox"],
                                        self._info(ann, image, path),
                                        (path, f"image {image['id']}, file_name_3840x2160"))  # fmt: skip
        if record is None:
            return None
        boxes = {}
        for part, box in self._part_boxes_4k(ann, path).items():
            box = None if box is None else _xywh_to_xyxy(sanitize_bbox(box, IMAGE_HW_4K[1], IMAGE_HW_4K[0]))
            if box is not None:  # the crop is a scale and a shift: corners stay corners
                corners = apply_affine(record.orig2img_trans, box.reshape(2, 2).astype(np.float64))
                box = np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32)
            boxes[part] = box
        return replace(record, part_boxes_xyxy_img=boxes)

    def _crop_file_record(
        self, folder: str, image_stem: str, person_id: int, bbox_4k: Any, info: dict[str, Any],
        named_by: tuple[Path, str],
    ) -> Record | None:  # fmt: skip
        """The record of a person's 4K crop files (no part boxes), or None when there is none to read.

        None for a box outside the image (the crop tool writes no crop for it, and the 720p mode drops it
        too) and, with data.skip_bad_images, for a missing crop json; otherwise a missing json is an error.
        ``named_by`` (annotation file, entry) is where the folder and image names come from, for errors.
        """
        if process_bbox(bbox_4k, IMAGE_HW_4K[1], IMAGE_HW_4K[0]) is None:
            return None
        crop_name = f"images_3840x2160/{folder}_crop/{crop_file_stem(image_stem, person_id)}.png"
        img_path = path_in_root(self.root, crop_name, *named_by)
        crop_path = img_path.with_suffix(".json")
        if not crop_path.is_file():
            if self.skip_bad_images:
                self.skipped_missing.append(img_path)
                return None
            raise FileNotFoundError(
                f"AGORA crop file not found: {crop_path} (written with the crop image {img_path.name} by "
                f"tool/AGORA/crop_and_resize_4k_images.py); set data.skip_bad_images=true to skip "
                f"such persons or data.agora_resolution=1280x720 to use the 720p images"
            )
        crop = read_json(crop_path)
        if not isinstance(crop, Mapping):
            raise AnnotationError(f"{crop_path}: expected a json object, got {brief(crop)}", crop_path)
        for key in ("resized_height", "resized_width"):
            value = crop.get(key)
            whole = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
            if not whole or value <= 0:  # is_integer: False for inf and NaN too
                raise AnnotationError(f"{crop_path}: {key!r} is {brief(value)}, expected a positive whole number",
                                      crop_path)  # fmt: skip
        crop_hw = (int(crop["resized_height"]), int(crop["resized_width"]))
        orig2crop = self._crop_affine(crop, crop_hw, crop_path)
        # The crop already is the person box grown to aspect 0.75 and x1.25: the whole file is the box.
        bbox = np.array([0.0, 0.0, crop_hw[1], crop_hw[0]], dtype=np.float32)
        return Record(img_path=img_path, img_hw=crop_hw, bbox_xywh_img=bbox, is_3D=_has_fit(info),
                      info=info, orig2img_trans=orig2crop)  # fmt: skip

    @staticmethod
    def _crop_affine(crop: Mapping[str, Any], crop_hw: tuple[int, int], path: Path) -> np.ndarray:
        """(2, 3) 4K-image -> crop-file map: the json's matrix under either key, else rebuilt from bbox_orig."""
        for key in CROP_AFFINE_KEYS:
            if key in crop:
                return numbers(crop[key], (2, 3), f"{path}: {key!r}")
        if "bbox_orig" in crop:  # the crop tool maps bbox_orig's centre to the crop's, scaled to fill it
            return crop_affine(bbox_xywh(crop["bbox_orig"], f"{path}: 'bbox_orig'"), crop_hw)
        raise AnnotationError(f"{path}: needs one of {', '.join((*CROP_AFFINE_KEYS, 'bbox_orig'))}", path)

    def load_labels(self, record: Record) -> Record:
        """The record with its parameters (SMPL-X or SMPL) and camera, read from per-person files; test: as is."""
        variant = self.fit_variant
        if variant.path_key not in record.info:  # a test-split detection: nothing to read
            return record
        params_path = self.annotation_file(record.info[variant.path_key])
        camera_4k = read_camera(self.annotation_file(record.info["cam_param_path"]))
        focal, princpt = camera_4k.focal, camera_4k.princpt
        params = variant.read(params_path, record.info["gender"])
        if record.orig2img_trans is None:  # 720p: the 4K intrinsics scaled with the image
            scale = IMAGE_HW_720P[1] / IMAGE_HW_4K[1]
            focal, princpt = focal * scale, princpt * scale
        else:  # a crop: scale and shift of the 4K image
            linear, shift = np.diag(record.orig2img_trans[:, :2]), record.orig2img_trans[:, 2]
            focal, princpt = focal * linear, princpt * linear + shift
        return replace(record, cam=CameraParams(focal=focal, princpt=princpt), **{variant.record_field: params})

    # --- evaluation ----------------------------------------------------------------------------------
    def evaluate(self, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> dict[str, list[float]]:
        """The MPVPE family (not on 'test', which has no GT), and each person's file for AGORA's evaluation server.

        The files, ``<image>_personId_<k>.pkl`` (`server_prediction`), go to `predictions_dir`
        (<output_dir>/result/AGORA/predictions): a folder of their own, because the server's format checker
        reads every file of the uploaded folder as a prediction. They are SMPL-X predictions: a family that
        reads the SMPL variant (the body model) gets its SMPL metrics and no files.

        Args:
            outs: per sample, the model's test-mode output merged with the sample's eval keys (see
                `BaseDataset.evaluate`); the export reads smplx_{root,body,lhand,rhand,jaw}_pose, smplx_shape,
                smplx_expr, cam_trans, smplx_joint_proj (body-heatmap units) and bb2img_trans.
            indices: the dataset index of each output.

        Returns:
            Metric key -> per-sample values in mm; empty for the test split. A prediction the server would reject
            (`server_format.check_agora_prediction`, e.g. NaN) is logged as an error and not written.
        """
        result = {} if self.split == "test" else super().evaluate(outs, indices)
        if self.fit_variant.record_field != "smplx":
            if self.split == "test":
                logger.warning("AGORA test: no server files written; the export takes SMPL-X predictions only")
            return result
        for out, index in zip(outs, indices, strict=True):
            info = self.records[index].info
            path = self.predictions_dir / prediction_file_name(info["image_name"], info["person_id"])
            try:
                write_agora_prediction(path, self.server_prediction(out))
            except ValueError as error:  # e.g. a non-finite output: the server would reject the whole upload
                logger.error("%s not written (the person counts as missed): %s", path.name, error)
        return result

    def report(self, eval_result: Mapping[str, Sequence[float]], output_dir: Any) -> tuple[str, Path]:
        """`BaseDataset.report`; on the test split, a note on where the server's files are instead of a table."""
        if self.split != "test":
            return super().report(eval_result, output_dir)
        _, path = report_metrics(eval_result, self.NAME, output_dir, split=self.split)
        if self.fit_variant.record_field != "smplx":
            return "AGORA test: no ground truth here, and no server files (the export takes SMPL-X predictions).", path
        count = len(list(self.predictions_dir.glob("*.pkl")))
        return (f"AGORA test: no ground truth here; {count} prediction files in {self.predictions_dir}. Zip that "
                f"folder ('predictions') and upload it to the AGORA evaluation server.", path)  # fmt: skip

    def server_prediction(self, out: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """One person's prediction in the format of AGORA's evaluation server (server_format.py).

        Returns:
            {'params': {transl, global_orient, body_pose, left_hand_pose, right_hand_pose, reye_pose, leye_pose,
            jaw_pose, expression, betas} each (1, n) float32 axis-angle (eyes zero; transl is the network's
            camera translation, as in Hand4Whole), 'joints': (K, 2) float32 projected joints in 3840x2160
            pixels (Hand4Whole wrote (1, K, 2), which the server's format checker rejects)}.
        """
        joint_proj = np.asarray(out["smplx_joint_proj"], np.float64)  # (K, 2) body-heatmap units
        if joint_proj.shape[0] != 144:  # the server matches people on the first 24 of SMPL-X's output joints
            logger.warning("AGORA export: %d projected joints, the evaluation server expects SMPL-X's 144",
                           joint_proj.shape[0])  # fmt: skip
        (crop_h, crop_w), (_, hm_h, hm_w) = self.space.input_hw, self.space.hm_dhw
        joint_crop = joint_proj * np.array([crop_w / hm_w, crop_h / hm_h])  # (K, 2) crop pixels
        joint_4k = apply_affine(np.asarray(out["bb2img_trans"], np.float64), joint_crop) * self.to_4k  # (K, 2)
        sources = {"transl": "cam_trans", "global_orient": "smplx_root_pose", "body_pose": "smplx_body_pose",
                   "left_hand_pose": "smplx_lhand_pose", "right_hand_pose": "smplx_rhand_pose",
                   "jaw_pose": "smplx_jaw_pose", "expression": "smplx_expr", "betas": "smplx_shape"}  # fmt: skip
        params = {key: np.asarray(out[src], np.float32).reshape(1, -1) for key, src in sources.items()}
        params |= {"reye_pose": np.zeros((1, 3), np.float32), "leye_pose": np.zeros((1, 3), np.float32)}
        return {"params": params, "joints": joint_4k.astype(np.float32)}
