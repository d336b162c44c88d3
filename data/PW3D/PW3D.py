"""3DPW in the parsed release of Hand4Whole / I2L-MeshNet: SMPL GT, the Pose2Pose body model's test set.

Layout under the data root (cfg.data.dataset_roots['PW3D'] or <data_dir>/PW3D/data)::

    3DPW_{train,validation,test}.json   COCO; images carry sequence, file_name, cam_param {focal, princpt};
                                        annotations carry bbox (xywh) and smpl_param {pose (72), shape (10),
                                        trans (3), gender}, in the camera frame (metres)
    imageFiles/<sequence>/<file_name>

The GT is a gendered SMPL fit, kept as the record's ``smpl`` with the image's camera. The Pose2Pose body model
(model.arch pose2pose_body) takes its targets from it, its joint targets included (it is 3DPW's only 3D label), and
may train on the 'train' split. Hand4Whole has no SMPL-X label here: its samples carry masked targets only, so it
only evaluates on 3DPW.

Evaluation compares joints (Pose2Pose's protocol): the 14 H36M evaluation joints regressed from the GT SMPL mesh with
SMPL's H36M regressor and from the prediction with its own topology's (SMPL's for the body model's 'smpl_mesh_cam',
SMPL-X's for the whole-body 'smplx_mesh_cam'), MPJPE (pelvis-relative) and PA-MPJPE. The vertex metrics (MPVPE with
both meshes minus their regressed pelvis, PA-MPVPE) compare two SMPL meshes, as Pose2Pose does: a whole-body SMPL-X
prediction has no vertex correspondence with the GT, so it gets the joint metrics only.

SMPL's H36M regressor is read from ``<human_model_path>/smpl/J_regressor_h36m_smpl.npy`` (Hand4Whole ships it as
data/Human36M/J_regressor_h36m_smpl.npy), only when evaluating.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
import torch

from common.body_models.files import J_REGRESSOR_H36M_SMPL
from common.utils.augmentation import process_bbox
from common.utils.metrics import h36m_joint_metrics
from data.annotation_io import image_hw, load_coco, path_in_root
from data.dataset import BaseDataset
from data.fits import camera_params, fit_model, smpl_params
from data.Human36M.smpl_io import MESH_KEYS, h36m_regressor, mesh_topology
from data.record import Record

__all__ = ["PW3D", "SMPL_H36M_REGRESSOR"]

SMPL_H36M_REGRESSOR = J_REGRESSOR_H36M_SMPL
"""(17, 6890) Human3.6M joint regressor over SMPL vertices, relative to human_model_path."""


class PW3D(BaseDataset):
    """3DPW: images, person boxes, cameras and gendered SMPL GT (``record.smpl``)."""

    NAME: ClassVar[str] = "PW3D"
    DOWNLOAD_PAGE: ClassVar[str] = "https://github.com/mks0601/Hand4Whole_RELEASE#data (3DPW parsed data)"
    SPLITS: ClassVar[tuple[str, ...]] = ("validation", "test", "train")  # 'train': the body model only
    # The GT SMPL is 3DPW's only 3D label, so the body model's joint targets are its joints (no SMPL-X here: the
    # whole-body family gets masked joint targets either way).
    JOINTS_FROM_PARAMS: ClassVar[bool] = True

    def load_records(self) -> list[Record]:
        """One record per annotation of 3DPW_{split}.json, its SMPL GT and camera in the record."""
        model = fit_model(self.targets)
        path = self.annotation_file(f"3DPW_{self.split}.json")  # a missing file is reported first, for any family
        if self.is_train and model != "smpl":
            raise ValueError(f"PW3D: split 'train' serves the SMPL body model only (model.arch=pose2pose_body); "
                             f"model.arch={self.cfg.model.arch} reads no 3DPW label: use 'validation' or "
                             "'test'")  # fmt: skip
        coco = load_coco(path, image_keys=("file_name", "height", "width", "sequence", "cam_param"),
                         annotation_keys=("bbox", "smpl_param"))  # fmt: skip
        records = []
        for ann_id in sorted(coco.anns):
            ann = coco.anns[ann_id]
            img = coco.imgs[ann["image_id"]]
            img_path = path_in_root(self.root / "imageFiles", [img["sequence"], img["file_name"]], path,
                                    f"image {img['id']}, sequence/file_name")  # fmt: skip
            bbox = process_bbox(ann["bbox"], img["width"], img["height"])
            if bbox is None:
                continue
            where = f"{path} [annotation {ann_id}]"
            records.append(Record(
                img_path=img_path, img_hw=image_hw(img), bbox_xywh_img=bbox,
                # the image's intrinsics; no extrinsics: the GT is in the camera frame
                cam=camera_params(img["cam_param"], f"{path} [image {img['id']}] 'cam_param'"),
                smpl=smpl_params(ann["smpl_param"], where),
                is_3D=model == "smpl",  # joint_cam is supervised only where the SMPL GT makes the joint targets
                info={"ann_id": int(ann_id), "sequence": img["sequence"], "file_name": img["file_name"]},
            ))  # fmt: skip
        return records

    @property
    def smpl_vertex_count(self) -> int:
        """Vertices of the SMPL mesh (6890 with the real files), from the loaded model."""
        return int(self.body_models.smpl("neutral").v_template.shape[0])

    def smpl_h36m_regressor(self) -> np.ndarray:
        """(17, V) SMPL H36M regressor; MissingBodyModelFileError names the file and where it comes from."""
        return h36m_regressor(self.body_models, "smpl")

    def gt_smpl_mesh(self, indices: Sequence[int]) -> np.ndarray:
        """(B, V, 3) float64 GT SMPL meshes of the given samples (each with its gender's layer), camera frame, m."""
        meshes = np.zeros((len(indices), self.smpl_vertex_count, 3))
        params = [self.records[i].smpl for i in indices]
        for gender in sorted({p.gender for p in params}):
            rows = [k for k, p in enumerate(params) if p.gender == gender]

            def stack(key: str, rows: list[int] = rows) -> torch.Tensor:
                return torch.as_tensor(np.stack([getattr(params[k], key) for k in rows]), dtype=torch.float32)

            pose = stack("pose")
            with torch.no_grad():
                out = self.body_models.smpl(gender)(global_orient=pose[:, :3], body_pose=pose[:, 3:],
                                                    betas=stack("shape"), transl=stack("trans"))  # fmt: skip
            meshes[rows] = out.vertices.numpy()
        return meshes

    def _gt_meshes(self, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> np.ndarray:
        """(B, V, 3) GT SMPL meshes: the ones the tester hands in with the body model's outputs (its targets'
        'smpl_mesh_cam_target', built from the same records), else posed here from the records."""
        handed = [o.get("smpl_mesh_cam_target") for o in outs]
        valid = [float(np.asarray(o.get("smpl_mesh_valid", 1.0))) > 0 for o in outs]
        if all(mesh is not None for mesh in handed) and all(valid):
            return np.stack([np.asarray(mesh, np.float64) for mesh in handed])
        return self.gt_smpl_mesh(indices)

    def evaluate(self, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> dict[str, list[float]]:
        """MPJPE and PA-MPJPE (mm) on the 14 H36M joints regressed from the predicted and the GT SMPL meshes.

        A prediction in SMPL's topology (the Pose2Pose body model's 'smpl_mesh_cam') is compared vertex by vertex
        as well, MPVPE and PA-MPVPE, as the Pose2Pose branch reports 3DPW. A whole-body SMPL-X prediction has no
        vertex correspondence with the SMPL GT, so only its joints are compared (Hand4Whole reports no 3DPW
        vertex error either).

        Args:
            outs: per sample, the model's test output: 'smpl_mesh_cam' (6890, 3) or 'smplx_mesh_cam' (V, 3) metres,
                with the body model's eval extras 'smpl_mesh_cam_target' (6890, 3) and 'smpl_mesh_valid' () when the
                tester hands them in.
            indices: the dataset index of each output (its GT SMPL parameters are the record's).

        Returns:
            {'mpjpe', 'pa_mpjpe'[, 'mpvpe', 'pa_mpvpe']} -> one value per sample, mm.
        """
        if len(outs) != len(indices):
            raise ValueError(f"PW3D.evaluate: {len(outs)} outputs for {len(indices)} indices")
        if not outs:
            return {"mpjpe": [], "pa_mpjpe": []}
        topology = mesh_topology(outs, fit_model(self.targets), self.NAME)
        pred = np.stack([np.asarray(o[MESH_KEYS[topology]]) for o in outs])  # (B, V, 3) metres
        gt_mesh = self._gt_meshes(outs, indices)  # (B, 6890, 3) metres
        smpl_regressor = self.smpl_h36m_regressor()
        if topology == "smpl":  # same topology as the GT: joints and vertices
            metrics = h36m_joint_metrics(pred, gt_mesh, smpl_regressor)
        else:
            metrics = h36m_joint_metrics(pred, gt_mesh, h36m_regressor(self.body_models, "smplx"), smpl_regressor)
        return {k: [float(v) for v in values] for k, values in metrics.items()}
