"""AGORA with SMPL-X ground truth, in the parsed layout Hand4Whole published; data/Synthetic writes the same.

Layout under the data root (``cfg.data.dataset_roots['AGORA']``, default ``<data_dir>/AGORA/data``)::

    AGORA_{train,validation}_SMPLX.json   COCO format. images: id, file_name_1280x720, file_name_3840x2160;
                                          annotations: image_id, person_id, smplx_param_path, cam_param_path,
                                          gender, kid, is_valid, bbox, lhand_bbox, rhand_bbox, face_bbox
                                          (xywh in 3840x2160 pixels)
    smplx_params_cam/<split>/<image>/<person_id>.json   global_orient, body_pose, jaw_pose, leye_pose, reye_pose,
                                          left_hand_pose, right_hand_pose, betas, expression, transl (camera frame)
    cam_params/<split>/<image>.json       focal, princpt in 3840x2160 pixels
    <file_name_1280x720>                  the 720p images (data.agora_resolution '1280x720')
    images_3840x2160/<folder>_crop/<image>_person_id_<k>.png and .json
                                          per-person crops of the 4K images ('3840x2160'), as Hand4Whole's
                                          tool/AGORA/crop_and_resize_4k_images.py writes them: <folder> is that of
                                          file_name_3840x2160; the json has bbox_orig, affine_mat (or img2bb_trans),
                                          resized_height and resized_width

Persons with is_valid false are left out (both splits, as Hand4Whole). Every person is posed with the neutral
SMPL-X layer and its first 10 betas, as Hand4Whole does (a kid's 11th, age blend-shape coefficient is dropped);
``data.agora_gender='annotated'`` uses the annotated gender's layer instead, which reproduces a mesh rendered
with it exactly (data/Synthetic). All joint targets come from the SMPL-X ground truth.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from common.body_models.files import GENDERS
from common.body_models.layers import NUM_BETAS
from common.utils.atomic_io import write_atomic
from common.utils.augmentation import apply_affine, crop_affine, process_bbox, sanitize_bbox
from common.utils.smplx_targets import CameraParams, SMPLXParams
from data.annotation_io import read_json
from data.dataset import BaseDataset
from data.record import Record

logger = logging.getLogger(__name__)

__all__ = ["AGORA", "CROP_AFFINE_KEYS", "IMAGE_HW_4K", "IMAGE_HW_720P"]

IMAGE_HW_4K = (2160, 3840)  # (H, W) of AGORA's images, which its boxes and intrinsics refer to
IMAGE_HW_720P = (720, 1280)
CROP_AFFINE_KEYS = (
    "affine_mat",
    "img2bb_trans",
)  # the crop tool writes the first; Hand4Whole's test branch read the second
BOX_PARTS = ("lhand", "rhand", "face")
_PARAM_SIZES = {"global_orient": 3, "body_pose": 63, "left_hand_pose": 45, "right_hand_pose": 45, "jaw_pose": 3,
                "expression": 10, "transl": 3}  # fmt: skip


def _xywh_to_xyxy(bbox_xywh: np.ndarray | None) -> np.ndarray | None:
    return None if bbox_xywh is None else np.concatenate([bbox_xywh[:2], bbox_xywh[:2] + bbox_xywh[2:]])


def _image_stem(image: Mapping[str, Any]) -> str:
    """AGORA's image name without resolution or extension ('ag_trainset_..._00042'), shared by both modes."""
    if "file_name_3840x2160" in image:
        return PurePosixPath(image["file_name_3840x2160"]).stem
    return PurePosixPath(image["file_name_1280x720"]).stem.removesuffix("_1280x720")


class AGORA(BaseDataset):
    """AGORA persons with their SMPL-X fits (is_3D; hand and face boxes from the annotations).

    Args:
        split: 'train' or 'validation' (the test split, as in Hand4Whole).
        cfg: the whole config; reads data.agora_resolution, data.agora_gender and output_dir (for the
            server export of `evaluate`) besides what `BaseDataset` reads.
    """

    NAME = "AGORA"
    DOWNLOAD_PAGE = ("https://agora.is.tue.mpg.de (images); AGORA_*_SMPLX.json, smplx_params_cam and cam_params: "
                     "https://github.com/mks0601/Hand4Whole_RELEASE (AGORA section)")  # fmt: skip
    SPLITS = ("train", "validation")
    TEST_SPLIT = "validation"
    JOINTS_FROM_SMPLX = True

    def __init__(self, split: str, cfg: Any) -> None:
        self.resolution = cfg.data.agora_resolution
        self.gender_mode = cfg.data.agora_gender
        self.result_dir = Path(cfg.output_dir) / "result" / self.NAME
        # evaluate() maps joints from the pixels of the records' original images to AGORA's 3840x2160
        self.to_4k = 1.0 if self.resolution == "3840x2160" else IMAGE_HW_4K[1] / IMAGE_HW_720P[1]
        super().__init__(split, cfg)

    # --- parsing -------------------------------------------------------------------------------------
    def load_records(self) -> list[Record]:
        """One record per valid person of AGORA_<split>_SMPLX.json whose box lies in the image."""
        path = self.annotation_file(f"AGORA_{self.split}_SMPLX.json")
        db = read_json(path)
        try:
            images = {image["id"]: image for image in db["images"]}
            records = []
            for ann in db["annotations"]:
                if not ann["is_valid"]:
                    continue
                image = images[ann["image_id"]]
                make = self._crop_record if self.resolution == "3840x2160" else self._record_720p
                record = make(ann, image)
                if record is not None:
                    records.append(record)
        except KeyError as error:
            raise ValueError(f"{path}: missing key {error} in an image or annotation entry") from error
        return records

    def _info(self, ann: Mapping[str, Any], image: Mapping[str, Any]) -> dict[str, Any]:
        gender = ann.get("gender", "neutral") if self.gender_mode == "annotated" else "neutral"
        return {
            "ann_id": ann.get("id"), "person_id": int(ann["person_id"]), "image_name": _image_stem(image),
            "smplx_param_path": ann["smplx_param_path"], "cam_param_path": ann["cam_param_path"],
            "gender": gender if gender in GENDERS else "neutral",
        }  # fmt: skip

    def _record_720p(self, ann: Mapping[str, Any], image: Mapping[str, Any]) -> Record | None:
        (height, width), scale = IMAGE_HW_720P, IMAGE_HW_720P[1] / IMAGE_HW_4K[1]
        bbox = process_bbox(np.asarray(ann["bbox"], np.float64) * scale, width, height)
        if bbox is None:  # entirely outside the image
            return None
        boxes = {}
        for part in BOX_PARTS:
            box = ann.get(f"{part}_bbox")
            boxes[part] = None if box is None else _xywh_to_xyxy(sanitize_bbox(np.asarray(box) * scale, width, height))
        return Record(img_path=self.root / image["file_name_1280x720"], img_hw=IMAGE_HW_720P, bbox_xywh_img=bbox,
                      part_boxes_xyxy_img=boxes, is_3D=True, info=self._info(ann, image))  # fmt: skip

    def _crop_record(self, ann: Mapping[str, Any], image: Mapping[str, Any]) -> Record | None:
        folder = PurePosixPath(image["file_name_3840x2160"]).parent.name
        stem = f"{_image_stem(image)}_person_id_{int(ann['person_id'])}"
        img_path = self.root / "images_3840x2160" / f"{folder}_crop" / f"{stem}.png"
        crop_path = img_path.with_suffix(".json")
        if not crop_path.is_file():
            if self.skip_bad_images:
                self.skipped_missing.append(img_path)
                return None
            raise FileNotFoundError(
                f"AGORA crop file not found: {crop_path} (written with the crop image {img_path.name} by "
                f"Hand4Whole's tool/AGORA/crop_and_resize_4k_images.py); set data.skip_bad_images=true to skip "
                f"such persons or data.agora_resolution=1280x720 to use the 720p images"
            )
        crop = read_json(crop_path)
        crop_hw = (int(crop["resized_height"]), int(crop["resized_width"]))
        orig2crop = self._crop_affine(crop, crop_hw, crop_path)
        boxes = {}
        for part in BOX_PARTS:
            box = ann.get(f"{part}_bbox")
            box = None if box is None else _xywh_to_xyxy(sanitize_bbox(box, IMAGE_HW_4K[1], IMAGE_HW_4K[0]))
            if box is not None:  # the crop is a scale and a shift: corners stay corners
                corners = apply_affine(orig2crop, box.reshape(2, 2).astype(np.float64))
                box = np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32)
            boxes[part] = box
        # The crop already is the person box grown to aspect 0.75 and x1.25: the whole file is the box.
        bbox = np.array([0.0, 0.0, crop_hw[1], crop_hw[0]], dtype=np.float32)
        return Record(img_path=img_path, img_hw=crop_hw, bbox_xywh_img=bbox, part_boxes_xyxy_img=boxes, is_3D=True,
                      info=self._info(ann, image), orig2img_trans=orig2crop)  # fmt: skip

    @staticmethod
    def _crop_affine(crop: Mapping[str, Any], crop_hw: tuple[int, int], path: Path) -> np.ndarray:
        """(2, 3) 4K-image -> crop-file map: the json's matrix under either key, else rebuilt from bbox_orig."""
        for key in CROP_AFFINE_KEYS:
            if key in crop:
                return np.asarray(crop[key], dtype=np.float64).reshape(2, 3)
        if "bbox_orig" in crop:  # the crop tool maps bbox_orig's centre to the crop's, scaled to fill it
            return crop_affine(np.asarray(crop["bbox_orig"], np.float64), crop_hw)
        raise ValueError(f"{path}: needs one of {', '.join((*CROP_AFFINE_KEYS, 'bbox_orig'))}")

    def load_labels(self, record: Record) -> Record:
        """The record with its SMPL-X parameters and camera (per-person files, read at load time)."""
        params_path = self.annotation_file(record.info["smplx_param_path"])
        cam_path = self.annotation_file(record.info["cam_param_path"])
        params, cam = read_json(params_path), read_json(cam_path)
        try:
            values = {key: np.asarray(params[key], np.float64).reshape(-1) for key in (*_PARAM_SIZES, "betas")}
            focal, princpt = np.asarray(cam["focal"], np.float64), np.asarray(cam["princpt"], np.float64)
        except KeyError as error:
            raise ValueError(f"{params_path} or {cam_path}: missing key {error}") from error
        for key, size in _PARAM_SIZES.items():
            if values[key].size != size:
                raise ValueError(f"{params_path}: {key} has {values[key].size} values, expected {size}")
        if record.orig2img_trans is None:  # 720p: the 4K intrinsics scaled with the image
            scale = IMAGE_HW_720P[1] / IMAGE_HW_4K[1]
            focal, princpt = focal * scale, princpt * scale
        else:  # a crop: scale and shift of the 4K image
            linear, shift = np.diag(record.orig2img_trans[:, :2]), record.orig2img_trans[:, 2]
            focal, princpt = focal * linear, princpt * linear + shift
        smplx = SMPLXParams(
            root_pose=values["global_orient"], body_pose=values["body_pose"], shape=values["betas"][:NUM_BETAS],
            trans=values["transl"], lhand_pose=values["left_hand_pose"], rhand_pose=values["right_hand_pose"],
            jaw_pose=values["jaw_pose"], expr=values["expression"], gender=record.info["gender"],
        )  # fmt: skip
        return replace(record, smplx=smplx, cam=CameraParams(focal=focal, princpt=princpt))

    # --- evaluation ----------------------------------------------------------------------------------
    def evaluate(self, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> dict[str, list[float]]:
        """The MPVPE family, and one .pkl per person for AGORA's evaluation server under <output_dir>/result/AGORA/.

        Args:
            outs: per sample, the model's test-mode output merged with the sample's eval keys (see
                `BaseDataset.evaluate`); the export reads smplx_{root,body,lhand,rhand,jaw}_pose, smplx_shape,
                smplx_expr, cam_trans, smplx_joint_proj (body-heatmap units) and bb2img_trans.
            indices: the dataset index of each output.

        Returns:
            Metric key -> per-sample values in mm.
        """
        result = super().evaluate(outs, indices)
        self.result_dir.mkdir(parents=True, exist_ok=True)
        for out, index in zip(outs, indices, strict=True):
            info = self.records[index].info
            path = self.result_dir / f"{info['image_name']}_personId_{info['person_id']}.pkl"
            prediction = self.server_prediction(out)
            write_atomic(path, lambda file, p=prediction: pickle.dump(p, file, protocol=pickle.HIGHEST_PROTOCOL))
        return result

    def server_prediction(self, out: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """One person's prediction in the format of AGORA's evaluation server (as Hand4Whole writes it).

        Returns:
            {'params': {transl, global_orient, body_pose, left_hand_pose, right_hand_pose, reye_pose, leye_pose,
            jaw_pose, expression, betas} each (1, n) float32 (eyes zero; transl is the network's camera
            translation, as in Hand4Whole), 'joints': (1, K, 2) float32 projected joints in 3840x2160 pixels}.
        """
        joint_proj = np.asarray(out["smplx_joint_proj"], np.float64)  # (K, 2) body-heatmap units
        if joint_proj.shape[0] != 144:
            logger.warning("AGORA export: %d projected joints, the evaluation server expects SMPL-X's 144",
                           joint_proj.shape[0])  # fmt: skip
        (crop_h, crop_w), (_, hm_h, hm_w) = self.space.input_hw, self.space.hm_dhw
        joint_crop = joint_proj * np.array([crop_w / hm_w, crop_h / hm_h])  # (K, 2) crop pixels
        joint_4k = apply_affine(np.asarray(out["bb2img_trans"], np.float64), joint_crop) * self.to_4k
        sources = {"transl": "cam_trans", "global_orient": "smplx_root_pose", "body_pose": "smplx_body_pose",
                   "left_hand_pose": "smplx_lhand_pose", "right_hand_pose": "smplx_rhand_pose",
                   "jaw_pose": "smplx_jaw_pose", "expression": "smplx_expr", "betas": "smplx_shape"}  # fmt: skip
        params = {key: np.asarray(out[src], np.float32).reshape(1, -1) for key, src in sources.items()}
        params |= {"reye_pose": np.zeros((1, 3), np.float32), "leye_pose": np.zeros((1, 3), np.float32)}
        return {"params": params, "joints": joint_4k.astype(np.float32).reshape(1, -1, 2)}
