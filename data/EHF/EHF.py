"""EHF (ExPose's "Expressive Hands and Faces" test set): 100 images with SMPL-X GT meshes, test only.

Layout under the data root (cfg.data.dataset_roots['EHF'] or <data_dir>/EHF/data)::

    EHF.json          COCO format; each annotation has body_bbox, lefthand_bbox, righthand_bbox, face_bbox (xywh)
    NN_img.jpg        the images, as the json's file_name says
    NN_align.ply      the GT mesh of image NN (SMPL-X topology, metres, in the capture's world frame)

The GT meshes are rotated into the camera frame by a fixed rotation (no translation: every metric
aligns a root joint or a similarity transform first). Evaluation: the MPVPE family and EHF's
PA-MPJPE of the body (14 joints) and the hands (21 joints each).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import trimesh

from common.geometry import axis_angle_to_rotmat, xywh_to_xyxy
from common.utils.augmentation import AugParams, process_bbox
from common.utils.metrics import ehf_joint_metrics
from data.annotation_io import image_hw, load_coco, path_in_root
from data.dataset import BaseDataset
from data.record import AnnotationError, Record

__all__ = ["EHF", "EHF_WORLD_TO_CAMERA_AXIS_ANGLE", "read_ply_vertices"]

EHF_WORLD_TO_CAMERA_AXIS_ANGLE = np.array([-2.98747896, 0.01172457, -0.05704687])
"""Rodrigues vector of the rotation from the frame of the NN_align.ply meshes to EHF's camera frame."""

_PART_BOXES = {"lhand": "lefthand_bbox", "rhand": "righthand_bbox", "face": "face_bbox"}
_BOX_KEYS = ("body_bbox", *_PART_BOXES.values())


def read_ply_vertices(path: Path, num_vertices: int) -> np.ndarray:
    """(V, 3) float64 vertices of a PLY mesh; ValueError naming the file when it is not a V-vertex mesh."""
    try:
        mesh = trimesh.load(path, file_type="ply", process=False)  # process=False keeps the vertex order
    except Exception as err:  # trimesh raises several types for a damaged file
        raise AnnotationError(f"{path}: not a readable PLY mesh ({type(err).__name__}: {err})", path) from err
    vertices = np.asarray(getattr(mesh, "vertices", np.zeros((0, 3))), dtype=np.float64)
    if vertices.shape != (num_vertices, 3):
        raise AnnotationError(f"{path}: expected {num_vertices} SMPL-X vertices, found an array of shape "
                              f"{vertices.shape}", path)  # fmt: skip
    return vertices


class EHF(BaseDataset):
    """EHF test set: image, body box, hand and face boxes, and the GT SMPL-X mesh in the eval targets."""

    NAME: ClassVar[str] = "EHF"
    DOWNLOAD_PAGE: ClassVar[str] = "https://smpl-x.is.tue.mpg.de (Downloads: EHF dataset)"
    SPLITS: ClassVar[tuple[str, ...]] = ("test",)
    ANNOTATION_FILE: ClassVar[str] = "EHF.json"

    def __init__(self, split: str, cfg: Any, **options: Any) -> None:
        super().__init__(split, cfg, **options)
        self.world_to_camera = axis_angle_to_rotmat(torch.as_tensor(EHF_WORLD_TO_CAMERA_AXIS_ANGLE)).numpy()

    def load_records(self) -> list[Record]:
        """One record per annotation of EHF.json; the GT mesh path is kept in ``info['mesh_path']``."""
        path = self.annotation_file(self.ANNOTATION_FILE)
        coco = load_coco(path, image_keys=("file_name", "width", "height"), annotation_keys=_BOX_KEYS)
        records = []
        for ann_id in sorted(coco.anns):
            ann = coco.anns[ann_id]
            img = coco.imgs[ann["image_id"]]
            img_path = path_in_root(self.root, img["file_name"], path, f"image {img['id']}, file_name")
            # 'NN' of NN_img.jpg names its mesh NN_align.ply, in the root
            mesh_path = path_in_root(self.root, f"{img_path.name.split('_')[0]}_align.ply", path, f"image {img['id']}")
            height, width = image_hw(img)
            bbox = process_bbox(ann["body_bbox"], width, height)
            if bbox is None:  # a box outside the image: nothing to crop (Hand4Whole skips it too)
                continue
            boxes = {part: xywh_to_xyxy(np.asarray(ann[key], np.float64)) for part, key in _PART_BOXES.items()}
            records.append(Record(
                img_path=img_path, img_hw=(height, width), bbox_xywh_img=bbox, part_boxes_xyxy_img=boxes,
                info={"ann_id": int(ann_id), "mesh_path": mesh_path},
            ))  # fmt: skip
        return records

    def gt_mesh_cam(self, record: Record) -> np.ndarray:
        """(V, 3) float32 GT mesh of a record in the camera frame, metres."""
        mesh_path = record.info["mesh_path"]
        if not mesh_path.is_file():
            raise FileNotFoundError(f"EHF GT mesh not found: {mesh_path} (download page: {self.DOWNLOAD_PAGE})")
        vertices = read_ply_vertices(mesh_path, self.body_models.vertex_count)
        return (vertices @ self.world_to_camera.T).astype(np.float32)

    def build_sample(self, record: Record, image: np.ndarray, aug: AugParams) -> tuple[dict, dict, dict]:
        """The shared sample, with the GT mesh from NN_align.ply as ``smplx_mesh_cam`` (valid 1)."""
        inputs, targets, meta = super().build_sample(record, image, aug)
        targets["smplx_mesh_cam"] = self.gt_mesh_cam(record)
        meta["smplx_mesh_valid"] = np.asarray(1.0, np.float32)
        return inputs, targets, meta

    def evaluate(self, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> dict[str, list[float]]:
        """MPVPE / PA-MPVPE (all, hands, face; `BaseDataset.evaluate`) and PA-MPJPE (body, hands) in mm.

        Args:
            outs: per sample, the model's test output ('smplx_mesh_cam' (V, 3) metres) merged with the sample's
                eval targets ('smplx_mesh_cam_target' (V, 3) metres, 'smplx_mesh_valid').
            indices: the dataset index of each output (unused: the GT travels in ``outs``).

        Returns:
            metric key -> one value per sample with a GT mesh, in mm.
        """
        result = super().evaluate(outs, indices)
        kept = [out for out in outs if float(np.asarray(out.get("smplx_mesh_valid", 1.0))) > 0]
        if not kept:
            return result | {"pa_mpjpe_body": [], "pa_mpjpe_hand": []}
        pred = np.stack([np.asarray(out["smplx_mesh_cam"]) for out in kept])  # (B, V, 3)
        gt = np.stack([np.asarray(out["smplx_mesh_cam_target"]) for out in kept])  # (B, V, 3)
        joints = ehf_joint_metrics(pred, gt, self.body_models.j14_regressor(), self.body_models.hand_regressors())
        return result | {key: [float(v) for v in values] for key, values in joints.items()}
