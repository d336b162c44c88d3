"""3DPW in the parsed release of Hand4Whole / I2L-MeshNet: SMPL GT, evaluated on the test split.

Layout under the data root (cfg.data.dataset_roots['PW3D'] or <data_dir>/PW3D/data)::

    3DPW_{train,validation,test}.json   COCO; images carry sequence, file_name, cam_param {focal, princpt};
                                        annotations carry bbox (xywh) and smpl_param {pose (72), shape (10),
                                        trans (3), gender}, in the camera frame (metres)
    imageFiles/<sequence>/<file_name>

The GT is a SMPL mesh (the gendered SMPL layer), not SMPL-X, so a sample carries no SMPL-X targets
and evaluation compares joints (Pose2Pose's protocol): the 14 H36M evaluation joints regressed from
the GT SMPL mesh with SMPL's H36M regressor and from the predicted SMPL-X mesh with SMPL-X's, MPJPE
(pelvis-relative) and PA-MPJPE. The vertex metrics (MPVPE, PA-MPVPE) compare two SMPL meshes, as Pose2Pose
does: they are computed for predictions in SMPL's topology (the Pose2Pose body model); a whole-body SMPL-X
prediction has no vertex correspondence with the GT, so it gets the joint metrics only.

SMPL's H36M regressor is read from ``<human_model_path>/smpl/J_regressor_h36m_smpl.npy`` (Hand4Whole
ships it as data/Human36M/J_regressor_h36m_smpl.npy), only when evaluating.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from common.body_models.layers import NUM_BETAS
from common.body_models.regressors import read_regressor
from common.paths import resolve_repo_path
from common.utils.augmentation import process_bbox
from common.utils.metrics import h36m_joint_metrics
from data.annotation_io import load_coco
from data.dataset import BaseDataset
from data.record import Record

__all__ = ["PW3D", "SMPL_H36M_REGRESSOR"]

SMPL_H36M_REGRESSOR = "smpl/J_regressor_h36m_smpl.npy"
"""(17, 6890) Human3.6M joint regressor over SMPL vertices, relative to human_model_path."""
_REGRESSOR_SOURCE = "the Hand4Whole release (github.com/mks0601/Hand4Whole_RELEASE, data/Human36M/)"
_GENDERS = {"m": "male", "male": "male", "f": "female", "female": "female", "neutral": "neutral"}


class PW3D(BaseDataset):
    """3DPW: images, person boxes and SMPL GT parameters (``info['smpl_param']``), for evaluation."""

    NAME: ClassVar[str] = "PW3D"
    DOWNLOAD_PAGE: ClassVar[str] = "https://github.com/mks0601/Hand4Whole_RELEASE#data (3DPW parsed data)"
    # 'train' is left out: the SMPL GT gives no SMPL-X or joint targets here, so its samples would teach nothing
    SPLITS: ClassVar[tuple[str, ...]] = ("validation", "test")

    def __init__(self, split: str, cfg: Any) -> None:
        super().__init__(split, cfg)
        self._smpl_h36m_regressor: np.ndarray | None = None

    def load_records(self) -> list[Record]:
        """One record per annotation of 3DPW_{split}.json, the SMPL GT kept in ``info``."""
        path = self.annotation_file(f"3DPW_{self.split}.json")
        coco = load_coco(path)
        records = []
        for ann_id in sorted(coco.anns):
            ann = coco.anns[ann_id]
            img = coco.imgs[ann["image_id"]]
            bbox = process_bbox(np.asarray(ann["bbox"], np.float64), int(img["width"]), int(img["height"]))
            if bbox is None:
                continue
            records.append(Record(
                img_path=self.root / "imageFiles" / img["sequence"] / img["file_name"],
                img_hw=(int(img["height"]), int(img["width"])), bbox_xywh_img=bbox,
                info={"ann_id": int(ann_id), "smpl_param": _smpl_param(ann, path), "cam_param": img["cam_param"]},
            ))  # fmt: skip
        return records

    @property
    def smpl_vertex_count(self) -> int:
        """Vertices of the SMPL mesh (6890 with the real files), from the loaded model."""
        return int(self.body_models.smpl("neutral").v_template.shape[0])

    def smpl_h36m_regressor(self) -> np.ndarray:
        """(17, 6890) SMPL H36M regressor (loaded on first use); FileNotFoundError says where it comes from."""
        if self._smpl_h36m_regressor is None:
            path = resolve_repo_path(self.cfg.human_model_path) / SMPL_H36M_REGRESSOR
            if not path.is_file():
                raise FileNotFoundError(
                    f"SMPL H36M joint regressor not found: {path}\n  It comes from "
                    f"{_REGRESSOR_SOURCE}; put it at <human_model_path>/{SMPL_H36M_REGRESSOR}."
                )
            self._smpl_h36m_regressor = read_regressor(path, self.smpl_vertex_count)
        return self._smpl_h36m_regressor

    def gt_smpl_mesh(self, indices: Sequence[int]) -> np.ndarray:
        """(B, 6890, 3) float64 GT SMPL meshes of the given samples, camera frame, metres."""
        meshes = np.zeros((len(indices), self.smpl_vertex_count, 3))
        params = [self.records[i].info["smpl_param"] for i in indices]
        for gender in sorted({p["gender"] for p in params}):
            rows = [k for k, p in enumerate(params) if p["gender"] == gender]

            def stack(key: str, rows: list[int] = rows) -> torch.Tensor:
                return torch.as_tensor(np.stack([params[k][key] for k in rows]), dtype=torch.float32)

            pose = stack("pose")
            with torch.no_grad():
                out = self.body_models.smpl(gender)(global_orient=pose[:, :3], body_pose=pose[:, 3:],
                                                    betas=stack("shape"), transl=stack("trans"))  # fmt: skip
            meshes[rows] = out.vertices.numpy()
        return meshes

    def evaluate(self, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> dict[str, list[float]]:
        """MPJPE and PA-MPJPE (mm) on the 14 H36M joints regressed from the predicted and the GT SMPL meshes.

        A prediction in SMPL's topology (the Pose2Pose body model's 'smpl_mesh_cam') is compared vertex by vertex
        as well, MPVPE and PA-MPVPE, as the Pose2Pose branch reports 3DPW. A whole-body SMPL-X prediction has no
        vertex correspondence with the SMPL GT, so only its joints are compared (Hand4Whole reports no 3DPW
        vertex error either).

        Args:
            outs: per sample, the model's test output: 'smpl_mesh_cam' (6890, 3) or 'smplx_mesh_cam' (V, 3) metres.
            indices: the dataset index of each output (its GT SMPL parameters are the record's).

        Returns:
            {'mpjpe', 'pa_mpjpe'[, 'mpvpe', 'pa_mpvpe']} -> one value per sample, mm.
        """
        if len(outs) != len(indices):
            raise ValueError(f"PW3D.evaluate: {len(outs)} outputs for {len(indices)} indices")
        if not outs:
            return {"mpjpe": [], "pa_mpjpe": []}
        gt_mesh = self.gt_smpl_mesh(indices)
        if all("smpl_mesh_cam" in o for o in outs):  # same topology as the GT: joints and vertices
            pred = np.stack([o["smpl_mesh_cam"] for o in outs])  # (B, 6890, 3)
            metrics = h36m_joint_metrics(pred, gt_mesh, self.smpl_h36m_regressor())
        else:
            pred = np.stack([o["smplx_mesh_cam"] for o in outs])  # (B, V, 3)
            metrics = h36m_joint_metrics(pred, gt_mesh, self.body_models.h36m_regressor(),
                                         self.smpl_h36m_regressor())  # fmt: skip
        return {k: [float(v) for v in values] for k, values in metrics.items()}


def _smpl_param(ann: dict[str, Any], path: Any) -> dict[str, Any]:
    """The annotation's SMPL GT as arrays: pose (72,), shape (10,), trans (3,), gender ('male'/'female'/...)."""
    try:
        param = ann["smpl_param"]
        out = {"pose": np.asarray(param["pose"], np.float64).reshape(72),
               "shape": np.asarray(param["shape"], np.float64).reshape(-1)[:NUM_BETAS],
               "trans": np.asarray(param["trans"], np.float64).reshape(3),
               "gender": _GENDERS[str(param.get("gender", "neutral")).lower()]}  # fmt: skip
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path}: annotation {ann.get('id')} has no valid smpl_param ({err})") from None
    return out
