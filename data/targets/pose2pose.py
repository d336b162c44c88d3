"""The Pose2Pose part models' sample contract (families 'pose2pose_body', '_hand', '_face') and its target builders.

A record framing one body (SMPL), one hand (MANO) or one face (FLAME) becomes the targets main/pose2pose_model.py
documents, with the part's model prefix P = smpl | mano | flame and its K supervision joints
(common/body_models/part_joints.py: body 33, hand 21, face 73):

=====================  ===============  ==============================================================
key                    shape            meaning
=====================  ===============  ==============================================================
inputs: img            (3, H, W)        float32 RGB in [0, 1], the augmented crop (H, W = input_img_shape)
inputs: is_left        ()               bool, hand only: the crop shows a left hand (after the flip)
joint_img              (K, 3)           dataset joints, heatmap units (output_hm_shape); zeros without labels
joint_cam              (K, 3)           dataset joints, metres, relative to the root joint; zeros for 2D data
P_joint_img            (K, 3)           joints of the part's (pseudo-)GT mesh, heatmap units (body, hand)
P_joint_cam            (K, 3)           the same, relative metres
smpl_pose / mano_pose  (72,) / (48,)    axis-angle radians: root (camera frame, crop turn folded in) + joints
flame_root_pose        (3,)             axis-angle radians, likewise; flame_jaw_pose (3,)
P_shape, flame_expr    (10,)            shape (zero when any |beta| > 3, as the reference) / expression
=====================  ===============  ==============================================================

meta_info: joint_valid, joint_trunc, P_joint_valid (K, 1), P_joint_trunc (K, 1) (body, hand); smpl_pose_valid (72,)
(SMPL's two hand joints 0: the body model does not estimate them) / mano_pose_valid (48,); P_shape_valid,
flame_expr_valid, flame_root_pose_valid, flame_jaw_pose_valid, is_3D (). Depth in heatmap units spans the part's
`model.{body,hand,face}_3d_size` around its root (Pelvis, Wrist, FLAME's neck joint). Left hands keep their own
(left MANO) parameters: the hand model mirrors its prediction back into left-hand space before the loss. A flip
mirrors the crop, so a right hand becomes a left one (`is_left` toggles) and its rotations are mirrored.
The test split adds P_mesh_cam (V, 3) metres (un-augmented GT mesh) and P_mesh_valid (), and the crop maps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from common.body_models import joint_sets
from common.body_models.joint_sets import remap_joints
from common.body_models.part_joints import PART_JOINTS, gather_part_joints
from common.geometry import axis_angle_to_rotmat, rotmat_to_axis_angle
from common.utils.augmentation import AugParams
from common.utils.metrics import mean_point_error, pa_point_error
from common.utils.smplx_targets import CameraParams
from common.utils.targets import in_plane_rotation, transform_joints
from data.record import Record
from data.targets.base import EvalExtra, TargetBuilder
from data.targets.hand4whole import eval_crop_maps

if TYPE_CHECKING:
    from data.dataset import BaseDataset

__all__ = ["BodyTargets", "FaceTargets", "HandTargets", "PartGT", "PartTargets"]

_AA_MIRROR = np.array([1.0, -1.0, -1.0])  # common.geometry.mirror_axis_angle: negate y and z
_SHAPE_LIMIT = 3.0  # the reference resets betas beyond +-3 to the mean shape
_SMPL_POSE_FLIP = joint_sets.SMPL_JOINTS.flip_permutation()  # (24,)
_SMPL_HAND_JOINTS = joint_sets.SMPL_JOINTS.indices(["L_Hand", "R_Hand"])


@dataclass
class PartGT:
    """A part's layer output for one record, in the dataset camera's frame, before augmentation.

    Attributes:
        joint_cam: (K, 3) float64 supervision joints, metres. mesh_cam: (V, 3) float32, metres.
        rotations: name -> (N, 3) float64 axis-angle with the camera rotation folded into the root (first row of
            the rotation named first). shape: (10,) float64. expr: (10,) float64 (face) or None.
    """

    joint_cam: np.ndarray
    mesh_cam: np.ndarray
    rotations: dict[str, np.ndarray]
    shape: np.ndarray
    expr: np.ndarray | None = None


def _rotate_root(rotation: np.ndarray, axis_angle: np.ndarray) -> np.ndarray:
    """(3,) axis-angle of rotation @ R(axis_angle), through roma in float64."""
    rotmat = torch.as_tensor(rotation, dtype=torch.float64) @ axis_angle_to_rotmat(
        torch.as_tensor(axis_angle, dtype=torch.float64))  # fmt: skip
    return rotmat_to_axis_angle(rotmat).numpy()


def _run_layer(
    layer: Any, part: str, cam: CameraParams, root: np.ndarray, **params: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poses a layer with the root rotated by the camera's R, then moves it by R j0 + t - j0 (the layer turns about
    its joint 0), which is exactly R X + t of the un-rotated mesh. Returns (root (3,), joints (K, 3), mesh (V, 3))."""
    if cam.R is not None:
        root = _rotate_root(np.asarray(cam.R, np.float64).reshape(3, 3), root)
    tensors = {k: torch.as_tensor(np.asarray(v, np.float32).reshape(1, -1)) for k, v in params.items()}
    with torch.no_grad():
        output = layer(global_orient=torch.as_tensor(np.asarray(root, np.float32).reshape(1, 3)), **tensors)
        spec = PART_JOINTS[part]
        joints = gather_part_joints(output.joints, output.vertices, torch.from_numpy(spec.vertex_ids),
                                    torch.from_numpy(spec.gather))[0].numpy().astype(np.float64)  # fmt: skip
    mesh = output.vertices[0].numpy().astype(np.float64)
    if cam.R is not None:
        rotation = np.asarray(cam.R, np.float64).reshape(3, 3)
        t = np.zeros(3) if cam.t is None else np.asarray(cam.t, np.float64).reshape(3)
        joint0 = output.joints[0, 0].numpy().astype(np.float64)
        shift = rotation @ joint0 + t - joint0
        joints, mesh = joints + shift, mesh + shift
    return root, joints, mesh


class PartTargets(TargetBuilder):
    """What the three part builders share: dataset joints by name, the part's joint targets, flips, evaluation.

    Subclasses set `crop`, `prefix` and `size_key` and implement `pseudo_gt` and `param_targets`.
    """

    prefix: ClassVar[str]
    size_key: ClassVar[str]  # the ModelConfig field of the depth extent, metres
    joint_img_targets: ClassVar[bool] = True  # P_joint_img / P_joint_trunc (body, hand; the face model has none)

    def __init__(self, cfg: Any, body_models: Any) -> None:
        super().__init__(cfg, body_models)
        self.joints = PART_JOINTS[self.crop]
        self.depth_size_m = float(getattr(cfg.model, self.size_key))
        self.joint_flip = self.joints.joint_set.flip_permutation()  # (K,) once, not per sample
        prefix = self.prefix
        self.eval_extras: tuple[EvalExtra, ...] = (
            ("targets", f"{prefix}_mesh_cam", f"{prefix}_mesh_cam_target"),
            ("meta_info", f"{prefix}_mesh_valid", f"{prefix}_mesh_valid"),
            ("meta_info", "bb2img_trans", "bb2img_trans"),
            ("meta_info", "img2bb_trans", "img2bb_trans"),
        )

    # --- per part ------------------------------------------------------------------------------------
    def pseudo_gt(self, record: Record) -> PartGT | None:
        raise NotImplementedError

    def param_targets(self, gt: PartGT | None, aug: AugParams) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        raise NotImplementedError

    def layer_for_eval(self) -> Any:
        raise NotImplementedError

    def dataset_joint_names(self, dataset: BaseDataset, record: Record) -> Sequence[str]:
        """The record's joint names translated into the part's joint set (names outside it are ignored)."""
        return dataset.JOINT_NAMES

    # --- shared --------------------------------------------------------------------------------------
    def _transform(self, xy_img: np.ndarray, cam_rel: np.ndarray, valid: np.ndarray, img2crop: np.ndarray,
                   aug: AugParams) -> dict[str, np.ndarray]:  # fmt: skip
        joints = transform_joints(xy_img, cam_rel, valid, img2crop, aug.rot, aug.flip, self.space,
                                  self.joint_flip, self.depth_size_m)  # fmt: skip
        return {"joint_img": joints.joint_img, "joint_cam": joints.joint_cam, "joint_valid": joints.joint_valid,
                "joint_trunc": joints.joint_trunc}  # fmt: skip

    def build(
        self, dataset: BaseDataset, record: Record, img2crop: np.ndarray, aug: AugParams
    ) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
        prefix, num_joints, root = self.prefix, len(self.joints.joint_set), self.joints.root_idx
        gt = self.pseudo_gt(record)
        if gt is not None:
            assert record.cam is not None  # pseudo_gt checked
            part = self._transform(record.cam.project(gt.joint_cam), gt.joint_cam - gt.joint_cam[root],
                                   np.ones(num_joints), img2crop, aug)  # fmt: skip
        else:
            part = self._transform(np.zeros((num_joints, 2)), np.zeros((num_joints, 3)), np.zeros(num_joints),
                                   img2crop, aug)  # fmt: skip
        if record.joints_xy_img is not None:
            joints = self._dataset_joints(dataset, record, img2crop, aug)
        elif dataset.JOINTS_FROM_PARAMS:  # the parametric GT is the dataset's only 3D label (AGORA, synthetic)
            joints = {key: value.copy() for key, value in part.items()}
        else:
            joints = self._transform(np.zeros((num_joints, 2)), np.zeros((num_joints, 3)), np.zeros(num_joints),
                                     img2crop, aug)  # fmt: skip
        targets = {"joint_img": joints["joint_img"], "joint_cam": joints["joint_cam"]}
        meta = {"joint_valid": joints["joint_valid"], "joint_trunc": joints["joint_trunc"]}
        targets[f"{prefix}_joint_cam"], meta[f"{prefix}_joint_valid"] = part["joint_cam"], part["joint_valid"]
        if self.joint_img_targets:
            targets[f"{prefix}_joint_img"], meta[f"{prefix}_joint_trunc"] = part["joint_img"], part["joint_trunc"]
        param_t, param_m = self.param_targets(gt, aug)
        targets |= param_t
        meta |= param_m
        meta["is_3D"] = np.asarray(float(record.is_3D), np.float32)
        if not dataset.is_train:
            vertices = self.layer_for_eval().v_template.shape[0]
            targets[f"{prefix}_mesh_cam"] = gt.mesh_cam if gt is not None else np.zeros((vertices, 3), np.float32)
            meta[f"{prefix}_mesh_valid"] = np.asarray(float(gt is not None), np.float32)
            meta |= eval_crop_maps(record, img2crop)
        return self.extra_inputs(record, aug), targets, meta

    def extra_inputs(self, record: Record, aug: AugParams) -> dict[str, Any]:
        return {}

    def _dataset_joints(self, dataset: BaseDataset, record: Record, img2crop: np.ndarray,
                        aug: AugParams) -> dict[str, np.ndarray]:  # fmt: skip
        names, joint_set = self.dataset_joint_names(dataset, record), self.joints.joint_set
        xy, valid = remap_joints(np.asarray(record.joints_xy_img, np.float64), names, joint_set)
        valid = valid * remap_joints(np.asarray(record.joints_valid, np.float64).reshape(-1, 1), names,
                                     joint_set)[0][:, 0]  # fmt: skip
        cam_rel = np.zeros((len(joint_set), 3))
        if record.joints_cam is not None:
            cam = remap_joints(np.asarray(record.joints_cam, np.float64), names, joint_set)[0]
            cam_rel = cam - cam[self.joints.root_idx]
        return self._transform(xy, cam_rel, valid, img2crop, aug)

    def _rotations(self, rotations: np.ndarray, valid: np.ndarray, aug: AugParams,
                   flip_perm: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """(N, 3) rotations with row 0 the root: mirrored with the image, the crop's turn folded into the root."""
        rotations, valid = rotations.copy(), valid.copy()
        if aug.flip:
            if flip_perm is not None:
                rotations, valid = rotations[flip_perm], valid[flip_perm]
            rotations = rotations * _AA_MIRROR
        rotations[0] = _rotate_root(in_plane_rotation(aug.rot), rotations[0])
        return rotations, valid

    @staticmethod
    def _shape(shape: np.ndarray) -> np.ndarray:
        return (shape if np.all(np.abs(shape) <= _SHAPE_LIMIT) else np.zeros_like(shape)).astype(np.float32)

    def _require_cam(self, record: Record) -> CameraParams:
        if record.cam is None:
            raise ValueError(f"a record with {self.prefix.upper()} parameters needs a camera ({record.img_path})")
        return record.cam

    def sample_shapes(self, split: str) -> dict[str, tuple[int, ...]]:
        num_joints, prefix = len(self.joints.joint_set), self.prefix
        shapes: dict[str, tuple[int, ...]] = {"img": (3, *self.space.input_hw), "is_3D": ()}
        shapes |= {k: (num_joints, 3) for k in ("joint_img", "joint_cam", f"{prefix}_joint_cam")}
        shapes |= {k: (num_joints, 1) for k in ("joint_valid", "joint_trunc", f"{prefix}_joint_valid")}
        if self.joint_img_targets:
            shapes |= {f"{prefix}_joint_img": (num_joints, 3), f"{prefix}_joint_trunc": (num_joints, 1)}
        shapes |= self.param_shapes()
        if split != "train":
            vertices = self.layer_for_eval().v_template.shape[0]
            shapes |= {f"{prefix}_mesh_cam": (vertices, 3), f"{prefix}_mesh_valid": (), "bb2img_trans": (2, 3),
                       "img2bb_trans": (2, 3)}  # fmt: skip
        return shapes

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def evaluate(self, dataset: BaseDataset, outs: Sequence[Mapping[str, np.ndarray]]) -> dict[str, list[float]]:
        """MPVPE (the prediction moved so that its root joint, regressed from the mesh by the layer's joint
        regressor, meets the GT's) and PA-MPVPE (similarity Procrustes) on the part's mesh, mm, for the samples
        with a GT mesh."""
        prefix = self.prefix
        kept = [out for out in outs if float(np.asarray(out.get(f"{prefix}_mesh_valid", 1.0))) > 0]
        if not kept:
            return {"mpvpe": [], "pa_mpvpe": []}
        pred = np.stack([np.asarray(out[f"{prefix}_mesh_cam"], np.float64) for out in kept])  # (B, V, 3)
        gt = np.stack([np.asarray(out[f"{prefix}_mesh_cam_target"], np.float64) for out in kept])  # (B, V, 3)
        regressor = self.layer_for_eval().J_regressor[0].double().numpy()  # (V,) the root joint's row
        shift = np.einsum("v,bvc->bc", regressor, gt - pred)  # (B, 3)
        return {"mpvpe": mean_point_error(pred + shift[:, None], gt).tolist(),
                "pa_mpvpe": pa_point_error(pred, gt).tolist()}  # fmt: skip


class _PoseShapeTargets(PartTargets):
    """Body and hand: a root plus joint rotations (`pose`) and 10 shape coefficients, from one layer.

    Subclasses set `num_rotations`, `pose_kwarg` (the layer's argument for the non-root rotations), `pose_flip`
    (the rotations' left/right permutation, None for one hand) and `invalid_rotations`, and implement
    `params_and_layer`.
    """

    num_rotations: ClassVar[int]
    pose_kwarg: ClassVar[str]
    pose_flip: ClassVar[np.ndarray | None] = None
    invalid_rotations: ClassVar[np.ndarray] = np.zeros(0, dtype=np.int64)

    def params_and_layer(self, record: Record) -> tuple[Any, Any] | None:
        """(SMPLParams | MANOParams, its layer) of the record, or None without parameters."""
        raise NotImplementedError

    def pseudo_gt(self, record: Record) -> PartGT | None:
        found = self.params_and_layer(record)
        if found is None:
            return None
        params, layer = found
        pose = np.asarray(params.pose, np.float64).reshape(self.num_rotations, 3)
        shape = np.asarray(params.shape, np.float64).reshape(-1)[:10]
        root, joints, mesh = _run_layer(layer, self.crop, self._require_cam(record), pose[0],
                                        **{self.pose_kwarg: pose[1:]}, betas=shape,
                                        transl=np.asarray(params.trans))  # fmt: skip
        rotations = np.concatenate([root[None], pose[1:]])
        return PartGT(joints, mesh.astype(np.float32), {"pose": rotations}, shape)

    def param_targets(self, gt: PartGT | None, aug: AugParams) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        prefix, size = self.prefix, 3 * self.num_rotations
        if gt is None:
            return ({f"{prefix}_pose": np.zeros(size, np.float32), f"{prefix}_shape": np.zeros(10, np.float32)},
                    {f"{prefix}_pose_valid": np.zeros(size, np.float32),
                     f"{prefix}_shape_valid": np.asarray(0.0, np.float32)})  # fmt: skip
        valid = np.ones(self.num_rotations)
        valid[self.invalid_rotations] = 0.0
        pose, valid = self._rotations(gt.rotations["pose"], valid, aug, self.pose_flip)
        return ({f"{prefix}_pose": pose.reshape(-1).astype(np.float32), f"{prefix}_shape": self._shape(gt.shape)},
                {f"{prefix}_pose_valid": np.repeat(valid, 3).astype(np.float32),
                 f"{prefix}_shape_valid": np.asarray(1.0, np.float32)})  # fmt: skip

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        size, prefix = 3 * self.num_rotations, self.prefix
        return {f"{prefix}_pose": (size,), f"{prefix}_shape": (10,), f"{prefix}_pose_valid": (size,),
                f"{prefix}_shape_valid": ()}  # fmt: skip


class BodyTargets(_PoseShapeTargets):
    """SMPL targets of a person crop (family 'pose2pose_body')."""

    crop, prefix, size_key = "body", "smpl", "body_3d_size"
    num_rotations, pose_kwarg, pose_flip = 24, "body_pose", _SMPL_POSE_FLIP
    invalid_rotations = _SMPL_HAND_JOINTS  # not estimated by the body model (no hand features)

    def params_and_layer(self, record: Record) -> tuple[Any, Any] | None:
        return None if record.smpl is None else (record.smpl, self.body_models.smpl(record.smpl.gender))

    def layer_for_eval(self) -> Any:
        return self.body_models.smpl("neutral")


class HandTargets(_PoseShapeTargets):
    """MANO targets of a hand crop (family 'pose2pose_hand'); left hands keep left-MANO parameters."""

    crop, prefix, size_key = "hand", "mano", "hand_3d_size"
    num_rotations, pose_kwarg = 16, "hand_pose"  # one hand: no left/right rotations to swap

    def params_and_layer(self, record: Record) -> tuple[Any, Any] | None:
        params = record.mano
        if params is None:
            return None
        if params.side != record.hand_side:
            raise ValueError(f"{record.img_path}: a {record.hand_side} hand crop with {params.side} MANO parameters")
        return params, self.body_models.mano(params.side)

    def dataset_joint_names(self, dataset: BaseDataset, record: Record) -> Sequence[str]:
        """Hand datasets name the 21 joints without a side (FreiHAND); whole-body ones with it (MSCOCO's
        'L_Wrist_Hand', 'L_Thumb_1', ...): those of the record's side become the side-less names."""
        names = dataset.JOINT_NAMES
        if set(joint_sets.HAND_21.names) <= set(names):
            return names
        side = "L_" if record.hand_side == "left" else "R_"
        renamed = [name.removeprefix(side) if name.startswith(side) else f"~{name}" for name in names]
        if "Wrist_Hand" in renamed:  # the hand keypoints' own wrist, rather than the body skeleton's
            renamed = [f"~{n}" if n == "Wrist" else n for n in renamed]
            renamed = ["Wrist" if n == "Wrist_Hand" else n for n in renamed]
        return renamed

    def extra_inputs(self, record: Record, aug: AugParams) -> dict[str, Any]:
        return {"is_left": np.asarray((record.hand_side == "left") != aug.flip)}

    def sample_shapes(self, split: str) -> dict[str, tuple[int, ...]]:
        return {**super().sample_shapes(split), "is_left": ()}

    def layer_for_eval(self) -> Any:
        return self.body_models.mano("right")


class FaceTargets(PartTargets):
    """FLAME targets of a face crop (family 'pose2pose_face')."""

    crop, prefix, size_key = "face", "flame", "face_3d_size"
    joint_img_targets = False

    def pseudo_gt(self, record: Record) -> PartGT | None:
        if record.flame is None:
            return None
        cam, params = self._require_cam(record), record.flame
        zeros = np.zeros(3)
        neck = zeros if params.neck_pose is None else np.asarray(params.neck_pose, np.float64)
        root, joints, mesh = _run_layer(self.body_models.flame(), "face", cam, np.asarray(params.root_pose, np.float64),
                                        jaw_pose=params.jaw_pose, neck_pose=neck, leye_pose=zeros, reye_pose=zeros,
                                        betas=np.asarray(params.shape).reshape(-1)[:10],
                                        expression=np.asarray(params.expr).reshape(-1)[:10],
                                        transl=np.asarray(params.trans))  # fmt: skip
        rotations = np.stack([root, np.asarray(params.jaw_pose, np.float64).reshape(3)])
        return PartGT(joints, mesh.astype(np.float32), {"pose": rotations}, np.asarray(params.shape, np.float64)[:10],
                      np.asarray(params.expr, np.float64).reshape(-1)[:10])  # fmt: skip

    def param_targets(self, gt: PartGT | None, aug: AugParams) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        one, zero = np.asarray(1.0, np.float32), np.asarray(0.0, np.float32)
        if gt is None:
            targets = {
                "flame_root_pose": np.zeros(3, np.float32),
                "flame_jaw_pose": np.zeros(3, np.float32),
                "flame_shape": np.zeros(10, np.float32),
                "flame_expr": np.zeros(10, np.float32),
            }
            return targets, {f"{key}_valid": zero for key in targets}
        rotations, _ = self._rotations(gt.rotations["pose"], np.ones(2), aug, None)
        assert gt.expr is not None
        targets = {"flame_root_pose": rotations[0].astype(np.float32),
                   "flame_jaw_pose": rotations[1].astype(np.float32),
                   "flame_shape": self._shape(gt.shape), "flame_expr": gt.expr.astype(np.float32)}  # fmt: skip
        return targets, {f"{key}_valid": one for key in targets}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        keys = {"flame_root_pose": (3,), "flame_jaw_pose": (3,), "flame_shape": (10,), "flame_expr": (10,)}
        return keys | {f"{key}_valid": () for key in keys}

    def layer_for_eval(self) -> Any:
        return self.body_models.flame()
