"""Hand4Whole's sample contract (family 'hand4whole') and its target builder.

Every dataset returns ``(inputs, targets, meta_info)``, three dicts with Hand4Whole's names, documented here once
(`Inputs`, `Targets`, `MetaInfo`). Arrays are float32 numpy (``img`` a torch tensor); the DataLoader's default
collate stacks them into (B, ...) tensors. Units and spaces:

* heatmap units: the (D, H, W) = (8, 8, 6) body heatmap over the 512x384 crop; x in [0, 6), y in [0, 8)
  (x_hm = x_crop * 6 / 384, y_hm = y_crop * 8 / 512); z in [0, 8) is relative depth, z_hm = (z / (S / 2)
  + 1) / 2 * 8 with S = body_3d_size 2 m (body), hand_3d_size 0.3 m (hands), face_3d_size 0.3 m (face);
* camera metres: OpenCV axes, joint_cam relative to the pelvis (body), the wrist (each hand), the neck
  (face), turned with the in-plane augmentation;
* joints: Hand4Whole's 137 supervision joints (`common.body_models.joint_sets.JOINTS`); rotations: its
  53 rotation joints (`ORIG_JOINTS`) as axis-angle radians, 159 = 53 x 3.

A missing label is zeros with its mask 0 (never a missing key, never an ``if`` in the model). The test
split adds `EvalTargets`/`EvalMetaInfo`, which the tester hands the dataset's ``evaluate`` (`EVAL_EXTRAS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import torch

from common.body_models.joint_sets import JOINTS, remap_joints
from common.utils.augmentation import AugParams, compose_affine, invert_affine
from common.utils.metrics import MeshEvalSets, mpvpe_metrics
from common.utils.smplx_targets import empty_smplx_targets, smplx_in_camera, smplx_targets
from common.utils.targets import TargetSpace, box_targets, relative_joint_cam, transform_joints
from data.record import Record
from data.targets.base import EvalExtra, TargetBuilder

if TYPE_CHECKING:
    from data.dataset import BaseDataset

__all__ = ["EVAL_EXTRAS", "EvalMetaInfo", "EvalTargets", "Inputs", "MetaInfo", "Targets", "WholeBodyTargets",
           "sample_shapes"]  # fmt: skip


class Inputs(TypedDict):
    img: torch.Tensor  # (3, 512, 384) float32 RGB in [0, 1]: the augmented body crop


class Targets(TypedDict):
    joint_img: np.ndarray  # (137, 3) heatmap units: the dataset's GT joints (AGORA: the SMPL-X GT)
    joint_cam: np.ndarray  # (137, 3) relative camera metres, dataset GT; zeros for 2D datasets (is_3D 0)
    smplx_joint_img: np.ndarray  # (137, 3) heatmap units, joints of the SMPL-X (pseudo-)GT mesh
    smplx_joint_cam: np.ndarray  # (137, 3) relative camera metres, SMPL-X (pseudo-)GT
    smplx_pose: np.ndarray  # (159,) axis-angle radians: root (camera frame, crop turn folded in), 21 body,
    #                          15 left hand, 15 right hand, jaw; flipped with the image
    smplx_shape: np.ndarray  # (10,) betas (all zero when any |beta| > 3, as Hand4Whole)
    smplx_expr: np.ndarray  # (10,) expression coefficients
    lhand_bbox_center: np.ndarray  # (2,) heatmap units (x, y) of the subject's left-hand box
    lhand_bbox_size: np.ndarray  # (2,) heatmap units (w, h)
    rhand_bbox_center: np.ndarray  # (2,)
    rhand_bbox_size: np.ndarray  # (2,)
    face_bbox_center: np.ndarray  # (2,)
    face_bbox_size: np.ndarray  # (2,)


class MetaInfo(TypedDict):
    joint_valid: np.ndarray  # (137, 1) 1 where joint_img / joint_cam are labelled
    joint_trunc: np.ndarray  # (137, 1) joint_valid and inside the heatmap volume
    smplx_joint_valid: np.ndarray  # (137, 1)
    smplx_joint_trunc: np.ndarray  # (137, 1)
    smplx_pose_valid: np.ndarray  # (159,) per rotation joint, repeated x3
    smplx_shape_valid: np.ndarray  # () 0 or 1
    smplx_expr_valid: np.ndarray  # () 0 or 1 (jaw and expression annotated)
    is_3D: np.ndarray  # () 1 when joint_cam and the depth of joint_img are supervised
    lhand_bbox_valid: np.ndarray  # ()
    rhand_bbox_valid: np.ndarray  # ()
    face_bbox_valid: np.ndarray  # ()


class EvalTargets(Targets):
    smplx_mesh_cam: np.ndarray  # (V, 3) camera metres, un-augmented SMPL-X GT mesh; zeros when none (test split)


class EvalMetaInfo(MetaInfo):
    smplx_mesh_valid: np.ndarray  # () 1 when smplx_mesh_cam is a GT mesh
    bb2img_trans: np.ndarray  # (2, 3) crop pixels -> original-image pixels (`Record.orig2img_trans`)
    img2bb_trans: np.ndarray  # (2, 3) original-image pixels -> crop pixels


EVAL_EXTRAS: tuple[EvalExtra, ...] = (
    ("targets", "smplx_mesh_cam", "smplx_mesh_cam_target"),
    ("meta_info", "smplx_mesh_valid", "smplx_mesh_valid"),
    ("meta_info", "bb2img_trans", "bb2img_trans"),
    ("meta_info", "img2bb_trans", "img2bb_trans"),
)
"""The test split's ground truth and crop maps as `evaluate` reads them beside the predictions."""
_MPVPE_KEYS = ("mpvpe_all", "mpvpe_hand", "mpvpe_face", "pa_mpvpe_all", "pa_mpvpe_hand", "pa_mpvpe_face")


def sample_shapes(space: TargetSpace, num_vertices: int, split: str = "train") -> dict[str, tuple[int, ...]]:
    """Every key of the contract and its shape, for checking samples (a test keeps it equal to the TypedDicts)."""
    joints, hm = (len(JOINTS), 3), tuple(space.input_hw)
    shapes: dict[str, tuple[int, ...]] = {"img": (3, *hm), "smplx_pose": (159,), "smplx_shape": (10,),
                                          "smplx_expr": (10,), "smplx_pose_valid": (159,)}  # fmt: skip
    shapes |= {k: joints for k in ("joint_img", "joint_cam", "smplx_joint_img", "smplx_joint_cam")}
    shapes |= {k: (len(JOINTS), 1) for k in ("joint_valid", "joint_trunc", "smplx_joint_valid", "smplx_joint_trunc")}
    shapes |= {f"{p}_bbox_{s}": (2,) for p in ("lhand", "rhand", "face") for s in ("center", "size")}
    shapes |= {k: () for k in ("smplx_shape_valid", "smplx_expr_valid", "is_3D")}
    shapes |= {f"{p}_bbox_valid": () for p in ("lhand", "rhand", "face")}
    if split != "train":
        shapes |= {"smplx_mesh_cam": (num_vertices, 3), "smplx_mesh_valid": (), "bb2img_trans": (2, 3),
                   "img2bb_trans": (2, 3)}  # fmt: skip
    return shapes


def eval_crop_maps(record: Record, img2crop: np.ndarray) -> dict[str, np.ndarray]:
    """img2bb_trans and bb2img_trans (2, 3) float32 between the dataset's original image and the crop."""
    orig2crop = img2crop if record.orig2img_trans is None else compose_affine(img2crop, record.orig2img_trans)
    return {"img2bb_trans": orig2crop.astype(np.float32), "bb2img_trans": invert_affine(orig2crop).astype(np.float32)}


class WholeBodyTargets(TargetBuilder):
    """Hand4Whole's targets: SMPL-X pseudo-GT, the dataset's joints on the 137-joint set, hand and face boxes."""

    crop = "body"
    eval_extras = EVAL_EXTRAS

    def build(
        self, dataset: BaseDataset, record: Record, img2crop: np.ndarray, aug: AugParams
    ) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
        space = self.space
        gt = None
        if record.smplx is not None:
            if record.cam is None:
                raise ValueError(f"{dataset.NAME}: a record with SMPL-X parameters needs a camera ({record.img_path})")
            gt = smplx_in_camera(record.smplx, record.cam, self.body_models)
            targets, meta = smplx_targets(gt, record.cam, img2crop, aug, space, dataset.SMPLX_INVALID_ROTATIONS,
                                          dataset.SMPLX_INVALID_JOINTS)  # fmt: skip
        else:
            targets, meta = empty_smplx_targets()
        targets |= self._joint_targets(dataset, record, img2crop, aug, targets, meta)
        meta["joint_valid"], meta["joint_trunc"] = targets.pop("joint_valid"), targets.pop("joint_trunc")
        boxes = box_targets(record.part_boxes_xyxy_img, img2crop, aug.flip, space)
        targets |= {k: v for k, v in boxes.items() if not k.endswith("_valid")}
        meta |= {k: v for k, v in boxes.items() if k.endswith("_valid")}
        meta["is_3D"] = np.asarray(float(record.is_3D), np.float32)
        if not dataset.is_train:
            mesh = gt.mesh_cam if gt is not None else np.zeros((self.body_models.vertex_count, 3), np.float32)
            targets["smplx_mesh_cam"] = mesh
            meta["smplx_mesh_valid"] = np.asarray(float(gt is not None), np.float32)
            meta |= eval_crop_maps(record, img2crop)
        return {}, targets, meta

    def _joint_targets(
        self, dataset: BaseDataset, record: Record, img2crop: np.ndarray, aug: AugParams, smplx_t: dict, smplx_m: dict
    ) -> dict:
        names = dataset.JOINT_NAMES
        if record.joints_xy_img is not None:
            xy, valid = remap_joints(np.asarray(record.joints_xy_img, np.float64), names, JOINTS)
            valid = valid * remap_joints(np.asarray(record.joints_valid, np.float64).reshape(-1, 1), names,
                                         JOINTS)[0][:, 0]  # fmt: skip
            cam = np.zeros((len(JOINTS), 3))
            if record.joints_cam is not None:
                cam = relative_joint_cam(remap_joints(np.asarray(record.joints_cam, np.float64), names, JOINTS)[0])
            joints = transform_joints(xy, cam, valid, img2crop, aug.rot, aug.flip, self.space)
            return {"joint_img": joints.joint_img, "joint_cam": joints.joint_cam, "joint_valid": joints.joint_valid,
                    "joint_trunc": joints.joint_trunc}  # fmt: skip
        if dataset.JOINTS_FROM_PARAMS:
            return {
                "joint_img": smplx_t["smplx_joint_img"].copy(),
                "joint_cam": smplx_t["smplx_joint_cam"].copy(),
                "joint_valid": smplx_m["smplx_joint_valid"].copy(),
                "joint_trunc": smplx_m["smplx_joint_trunc"].copy(),
            }
        zeros3, zeros1 = np.zeros((len(JOINTS), 3), np.float32), np.zeros((len(JOINTS), 1), np.float32)
        return {"joint_img": zeros3, "joint_cam": zeros3.copy(), "joint_valid": zeros1, "joint_trunc": zeros1.copy()}

    def sample_shapes(self, split: str) -> dict[str, tuple[int, ...]]:
        return sample_shapes(self.space, self.body_models.vertex_count, split)

    def evaluate(self, dataset: BaseDataset, outs: Sequence[Mapping[str, np.ndarray]]) -> dict[str, list[float]]:
        """The MPVPE family (common.utils.metrics.mpvpe_metrics) of the samples that have a GT mesh.

        Args:
            dataset: the test set.
            outs: per sample, the model's test-mode output without the batch dimension merged with the
                sample's eval keys: 'smplx_mesh_cam' (V, 3) metres predicted, 'smplx_mesh_cam_target' (V, 3)
                metres GT and 'smplx_mesh_valid' () (a sample without it counts as having a GT mesh).

        Returns:
            Metric key -> per-sample values in mm, for the samples with smplx_mesh_valid; empty lists when none.
        """
        kept = [out for out in outs if float(np.asarray(out.get("smplx_mesh_valid", 1.0))) > 0]
        if not kept:
            return {key: [] for key in _MPVPE_KEYS}
        pred = np.stack([np.asarray(out["smplx_mesh_cam"]) for out in kept])  # (B, V, 3)
        gt = np.stack([np.asarray(out["smplx_mesh_cam_target"]) for out in kept])  # (B, V, 3)
        metrics = mpvpe_metrics(pred, gt, MeshEvalSets.from_body_models(self.body_models))
        return {key: [float(v) for v in metrics[key]] for key in _MPVPE_KEYS}
