"""The Integral family's sample contract ('integral': Sun et al., ECCV 2018) and its target builder.

A body crop (`crop = 'body'`, `model.input_img_shape`, 256x256 upstream) becomes 3D joint targets on the 18-joint
set `INTEGRAL_JOINTS`: Human3.6M's 17 joints (`common.utils.metrics.H36M_JOINTS` names and order, root 'Pelvis' at
index 0) plus 'Thorax' (index 17, the mean of the shoulders where a dataset has no Thorax of its own; used by MPII,
excluded from evaluation). A dataset's joints are mapped by name from its `JOINT_NAMES`; joints it lacks are masked.

=====================  ===============  ==============================================================
key                    shape            meaning
=====================  ===============  ==============================================================
inputs: img            (3, H, W)        float32 RGB in [0, 1], the augmented crop (H, W = input_img_shape)
joint_img              (18, 3)          float32 heatmap units of the (D, H_hm, W_hm) = output_hm_shape volume:
                                        x = u_crop * W_hm / W, y = v_crop * H_hm / H (crop pixels, pixel centres
                                        at integers), z = (z_rel / S + 0.5) * D with z_rel the depth relative to
                                        the Pelvis and S = `model.body_3d_size` (2.0 m: the 2000 mm box);
                                        zeros where unlabelled
meta_info: joint_vis   (18, 1)          float32 1 where labelled and inside the volume (upstream's visibility)
meta_info: is_3D       ()               float32 1 where z is supervised (Human3.6M), 0 for 2D data (MPII)
=====================  ===============  ==============================================================

A flip mirrors the crop (`img2crop`), swaps left/right joints by name (`INTEGRAL_JOINTS.flip_permutation()`) and
negates camera x. The test split adds `joint_cam` (18, 3) float32, the GT relative to the Pelvis in metres
(camera frame, after the same augmentation; zeros for 2D data), and the crop maps `img2bb_trans` / `bb2img_trans`
(2, 3) (data/targets/hand4whole.py `eval_crop_maps`). The default `evaluate` gives MPJPE and PA-MPJPE (mm) on the
17 Human3.6M joints (Thorax excluded), both root-aligned, for 3D samples; the per-action Protocol #1/#2 tables are
the Human3.6M dataset's own evaluator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from common.body_models.joint_sets import JointSet, remap_joints
from common.utils.augmentation import AugParams
from common.utils.metrics import H36M_JOINTS, mean_point_error, pa_point_error
from common.utils.targets import transform_joints
from data.record import Record
from data.targets.base import EvalExtra, TargetBuilder
from data.targets.hand4whole import eval_crop_maps

if TYPE_CHECKING:
    from data.dataset import BaseDataset

__all__ = ["EVAL_JOINTS", "INTEGRAL_JOINTS", "INTEGRAL_SKELETON", "IntegralTargets", "ROOT_IDX", "THORAX_IDX"]

INTEGRAL_JOINTS: JointSet = JointSet.from_names((*H36M_JOINTS, "Thorax"))
_JOINT_FLIP = INTEGRAL_JOINTS.flip_permutation()  # (18,) left/right swap of a mirrored crop, computed once
"""The 18 joints: Human3.6M's 17 + Thorax; flip pairs are the L_/R_ names."""
ROOT_IDX: int = INTEGRAL_JOINTS.names.index("Pelvis")
THORAX_IDX: int = INTEGRAL_JOINTS.names.index("Thorax")
EVAL_JOINTS: np.ndarray = np.arange(len(H36M_JOINTS))
"""Indices of the 17 evaluated joints (all but Thorax)."""
_SKELETON_NAMES = (
    ("Pelvis", "R_Hip"), ("R_Hip", "R_Knee"), ("R_Knee", "R_Ankle"), ("Pelvis", "L_Hip"), ("L_Hip", "L_Knee"),
    ("L_Knee", "L_Ankle"), ("Pelvis", "Torso"), ("Torso", "Neck"), ("Neck", "Head"), ("Head", "Head_top"),
    ("Neck", "L_Shoulder"), ("L_Shoulder", "L_Elbow"), ("L_Elbow", "L_Wrist"), ("Neck", "R_Shoulder"),
    ("R_Shoulder", "R_Elbow"), ("R_Elbow", "R_Wrist"),
)  # fmt: skip
INTEGRAL_SKELETON: tuple[tuple[int, int], ...] = tuple(
    (INTEGRAL_JOINTS.names.index(a), INTEGRAL_JOINTS.names.index(b)) for a, b in _SKELETON_NAMES
)
"""Bones of the 17 Human3.6M joints, as index pairs into INTEGRAL_JOINTS (for drawing)."""
_SHOULDERS = (INTEGRAL_JOINTS.names.index("L_Shoulder"), INTEGRAL_JOINTS.names.index("R_Shoulder"))


def _add_thorax(values: np.ndarray, valid: np.ndarray, has_thorax: bool) -> tuple[np.ndarray, np.ndarray]:
    """Fills Thorax with the mean of the shoulders (where both are labelled) unless the dataset has its own."""
    if has_thorax:
        return values, valid
    values, valid = values.copy(), valid.copy()
    left, right = _SHOULDERS
    values[THORAX_IDX] = (values[left] + values[right]) / 2.0
    valid[THORAX_IDX] = valid[left] * valid[right]
    return values, valid


class IntegralTargets(TargetBuilder):
    """3D joint targets in heatmap units on the 18-joint set (family 'integral'; module docstring)."""

    crop: ClassVar[str] = "body"
    fits: ClassVar[None] = None  # a skeleton family: the datasets need no parametric (NeuralAnnot) fits
    eval_extras: ClassVar[tuple[EvalExtra, ...]] = (
        ("targets", "joint_cam", "joint_cam_target"),
        ("meta_info", "is_3D", "is_3D"),
        ("meta_info", "bb2img_trans", "bb2img_trans"),
        ("meta_info", "img2bb_trans", "img2bb_trans"),
        ("meta_info", "cam_focal", "cam_focal"),
        ("meta_info", "cam_princpt", "cam_princpt"),
        ("meta_info", "root_depth_m", "root_depth_m"),
    )

    def __init__(self, cfg: Any, body_models: Any) -> None:
        super().__init__(cfg, body_models)
        self.depth_size_m = float(cfg.model.body_3d_size)
        self.hm_dhw = tuple(int(v) for v in cfg.model.output_hm_shape)

    def crop_box(self, dataset: BaseDataset, record: Record) -> np.ndarray:
        """Upstream's crop of a 3D sample: the S x S box (S = `model.body_3d_size`, 2000 mm) around the root in the
        root's depth plane, centred on the root's projection (JimmySuen's ``rect_3d_width/height``), so that the
        crop's pixels span the same metres as the volume's depth axis. 2D samples (MPII) and records without a
        camera keep their person box."""
        names = tuple(dataset.JOINT_NAMES)
        if record.joints_cam is None or record.cam is None or not record.is_3D or "Pelvis" not in names:
            return super().crop_box(dataset, record)
        root_cam = np.asarray(record.joints_cam, np.float64)[names.index("Pelvis")]
        if root_cam[2] <= 0:
            return super().crop_box(dataset, record)
        centre = record.cam.project(root_cam[None])[0]
        size = self.depth_size_m * np.asarray(record.cam.focal, np.float64) / root_cam[2]  # (w, h) pixels
        return np.array([centre[0] - size[0] / 2, centre[1] - size[1] / 2, size[0], size[1]])

    def predicted_joint_cam(self, out: Mapping[str, np.ndarray]) -> np.ndarray:
        """(J, 3) float64 root-relative camera metres of one test output, as upstream evaluates it.

        Upstream (mks0601) back-projects: the volume's (x, y) -> crop pixels -> original-image pixels (u, v)
        (`bb2img_trans`), the depth Z = (z / D - 0.5) * S + the GT root depth, then X = (u - cx) Z / fx,
        Y = (v - cy) Z / fy. Without a camera (`root_depth_m` 0) the model's weak-perspective `joint_cam` is used.
        """
        root_depth = float(np.asarray(out.get("root_depth_m", 0.0)))
        if root_depth <= 0 or "joint_img" not in out:
            return np.asarray(out["joint_cam"], np.float64)
        depth, height, width = self.hm_dhw
        joint_img = np.asarray(out["joint_img"], np.float64)
        input_h, input_w = self.space.input_hw
        crop_px = joint_img[:, :2] * np.array([input_w / width, input_h / height])
        image_px = (
            crop_px @ np.asarray(out["bb2img_trans"], np.float64)[:, :2].T
            + np.asarray(out["bb2img_trans"], np.float64)[:, 2]
        )
        z = (joint_img[:, 2] / depth - 0.5) * self.depth_size_m + root_depth
        focal, princpt = np.asarray(out["cam_focal"], np.float64), np.asarray(out["cam_princpt"], np.float64)
        cam = np.concatenate([(image_px - princpt) / focal * z[:, None], z[:, None]], axis=1)
        return cam - cam[ROOT_IDX]

    def joints(self, dataset: BaseDataset, record: Record) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The record's joints on INTEGRAL_JOINTS: (18, 2) image pixels, (18, 3) Pelvis-relative metres (zeros
        without 3D labels) and (18,) validity."""
        names = tuple(dataset.JOINT_NAMES)
        has_thorax = "Thorax" in names
        count = len(INTEGRAL_JOINTS)
        if record.joints_xy_img is None:
            return np.zeros((count, 2)), np.zeros((count, 3)), np.zeros(count)
        xy, valid = remap_joints(np.asarray(record.joints_xy_img, np.float64), names, INTEGRAL_JOINTS)
        labelled = np.ones(len(names)) if record.joints_valid is None else record.joints_valid
        valid = valid * remap_joints(np.asarray(labelled, np.float64).reshape(-1, 1), names, INTEGRAL_JOINTS)[0][:, 0]
        xy, valid = _add_thorax(xy, valid, has_thorax)
        cam_rel = np.zeros((count, 3))
        if record.joints_cam is not None and record.is_3D:
            cam = remap_joints(np.asarray(record.joints_cam, np.float64), names, INTEGRAL_JOINTS)[0]
            cam, _ = _add_thorax(cam, valid, has_thorax)
            cam_rel = cam - cam[ROOT_IDX]
        return xy, cam_rel, valid

    def build(
        self, dataset: BaseDataset, record: Record, img2crop: np.ndarray, aug: AugParams
    ) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
        xy, cam_rel, valid = self.joints(dataset, record)
        joints = transform_joints(xy, cam_rel, valid, img2crop, aug.rot, aug.flip, self.space,
                                  _JOINT_FLIP, self.depth_size_m)  # fmt: skip
        is_3d = float(record.is_3D and record.joints_cam is not None)
        targets = {"joint_img": joints.joint_img}
        meta = {"joint_vis": joints.joint_trunc, "is_3D": np.asarray(is_3d, np.float32)}
        if not dataset.is_train:
            targets["joint_cam"] = joints.joint_cam
            meta |= eval_crop_maps(record, img2crop) | self._camera(dataset, record)
        return {}, targets, meta

    @staticmethod
    def _camera(dataset: BaseDataset, record: Record) -> dict[str, np.ndarray]:
        """The evaluation's back-projection inputs: focal, principal point (pixels of the original image) and the
        GT root depth (metres); zeros when the record has no camera or 3D joints."""
        names = tuple(dataset.JOINT_NAMES)
        known = record.cam is not None and record.joints_cam is not None and "Pelvis" in names
        root_depth = float(np.asarray(record.joints_cam)[names.index("Pelvis"), 2]) if known else 0.0
        return {"cam_focal": np.asarray(record.cam.focal if known else (0.0, 0.0), np.float32).reshape(2),
                "cam_princpt": np.asarray(record.cam.princpt if known else (0.0, 0.0), np.float32).reshape(2),
                "root_depth_m": np.asarray(root_depth, np.float32)}  # fmt: skip

    def sample_shapes(self, split: str) -> dict[str, tuple[int, ...]]:
        count = len(INTEGRAL_JOINTS)
        shapes: dict[str, tuple[int, ...]] = {"img": (3, *self.space.input_hw), "joint_img": (count, 3),
                                              "joint_vis": (count, 1), "is_3D": ()}  # fmt: skip
        if split != "train":
            shapes |= {"joint_cam": (count, 3), "bb2img_trans": (2, 3), "img2bb_trans": (2, 3), "cam_focal": (2,),
                       "cam_princpt": (2,), "root_depth_m": ()}  # fmt: skip
        return shapes

    def evaluate(self, dataset: BaseDataset, outs: Sequence[Mapping[str, np.ndarray]]) -> dict[str, list[float]]:
        """'mpjpe_17j' and 'pa_mpjpe_17j' (similarity Procrustes, common.utils.metrics), mm, on the 17 Human3.6M
        joints of the 3D samples (the prediction back-projected as upstream: `predicted_joint_cam`), both skeletons
        moved to their Pelvis first (not the 14-joint 'mpjpe' of the mesh families)."""
        kept = [out for out in outs if float(np.asarray(out.get("is_3D", 1.0))) > 0]
        if not kept:
            return {"mpjpe_17j": [], "pa_mpjpe_17j": []}
        pred = np.stack([self.predicted_joint_cam(out) for out in kept])[:, EVAL_JOINTS]  # (B, 17, 3)
        gt = np.stack([np.asarray(out["joint_cam_target"], np.float64) for out in kept])[:, EVAL_JOINTS]
        pred, gt = pred - pred[:, ROOT_IDX : ROOT_IDX + 1], gt - gt[:, ROOT_IDX : ROOT_IDX + 1]
        return {"mpjpe_17j": mean_point_error(pred, gt).tolist(), "pa_mpjpe_17j": pa_point_error(pred, gt).tolist()}
