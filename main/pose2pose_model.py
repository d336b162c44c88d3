"""Pose2Pose single-part models: body-only (SMPL), hand-only (right-hand MANO) and face-only (FLAME).

The reference's Pose2Pose branch (notes section 8): one crop of `model.input_img_shape` goes straight into one
backbone (`model.resnet_type`); no boxes, no RoI crops. Body and hand: PositionNet heatmaps (`output_hm_shape`)
-> joints -> PartRotationNet (root, pose, shape, camera); face: FlameRegressor on the pooled feature. The part's
layer runs once per batch, its joints are projected with the virtual camera (`focal`, `princpt` in input pixels,
t_z = k * sigmoid(gamma) with `camera_3d_size`) into heatmap units, and made root-relative. `state_dict()` keys
and shapes equal tests/main/checkpoint_layouts/pose2pose_{body,hand,face}_state_dict.tsv; the layers' buffers are
non-persistent, as the reference strips them on save.

Called like the whole-body model: `model(inputs, targets, meta_info, mode)` with `inputs = {'img': (B, 3, H, W)
float RGB in [0, 1]}`; the hand model also reads an optional `inputs['is_left']` (B,) bool: those crops show left
hands, which are mirrored into right-hand space for the network and their results mirrored back (the reference
mirrors left hands in its data pipeline and demo instead). 'train' returns the part's weighted loss terms
(`loss_terms`), 'test' its output dict with the reference's keys (`test_outputs`).

Targets (Hand4Whole's names with the part's model prefix P = smpl | mano | flame; K joints of `joint_set`):

=====================  ===============  ==============================================================
targets                shape            meaning
=====================  ===============  ==============================================================
joint_img              (B, K, 3)        dataset joints in heatmap units (x < W_hm, y < H_hm, z < D_hm)
P_joint_img            (B, K, 3)        pseudo-GT joints of the part's model, same space (body, hand)
joint_cam              (B, K, 3)        dataset joints, metres, relative to the root joint
P_joint_cam            (B, K, 3)        pseudo-GT joints, same space
smpl_pose, mano_pose   (B, 72), (B, 48) root + body (23 joints, hands 0) / root + 15 fingers, axis-angle
flame_root_pose, flame_jaw_pose  (B, 3) axis-angle radians
P_shape, flame_expr    (B, 10)          shape / expression coefficients
=====================  ===============  ==============================================================

meta_info: joint_valid, joint_trunc, P_joint_valid, P_joint_trunc (B, K, 1) (face: no P_joint_trunc); smpl_pose_valid
(B, 72) / mano_pose_valid (B, 48); P_shape_valid, flame_expr_valid, flame_root_pose_valid, flame_jaw_pose_valid,
is_3D (B,). Masks are 0/1 floats. Roots: Pelvis (body), Wrist (hand), FLAME's global joint at the neck (face).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from common.body_models import get_body_models, joint_sets
from common.body_models.part_joints import (
    PART_JOINTS,
    POSE2POSE_BODY_JOINTS,
    POSE2POSE_BODY_POS_NAMES,
    SMPL_MCP_VERTICES,
    SMPL_OUTPUT,
    gather_part_joints,
)
from common.geometry import camera_translation, mirror_axis_angle, project_points, rot6d_to_axis_angle
from common.nets import (
    FlameRegressor,
    PartRotationNet,
    PositionNet,
    build_backbone,
    coord_l1,
    full_precision,
    init_head_weights,
    param_l1,
    pose_l1,
    private_layer_copy,
)
from common.nets.layers import xy_constant
from common.paths import resolve_repo_path
from main.config import Config, LossConfig, LossWeights, ModelConfig

__all__ = [
    "BODY_JOINTS",
    "BodyPartModel",
    "FacePartModel",
    "HandPartModel",
    "PARTS",
    "PartModel",
    "SMPL_MCP_VERTICES",
    "SMPL_OUTPUT",
    "get_part_model",
]

PARTS: tuple[str, ...] = ("body", "hand", "face")
MODES: tuple[str, ...] = ("train", "test")
_SHAPE_DIM = _EXPR_DIM = 10

BODY_JOINTS = POSE2POSE_BODY_JOINTS  # the name the tests and Pose2Pose's docs use
_BODY_POS_IDX = BODY_JOINTS.indices(POSE2POSE_BODY_POS_NAMES)  # (25,) the PositionNet joints within the 33
# Pose2Pose's loss terms have no weights of their own: each takes the whole-body term of the same role's weight.
_WEIGHT_OF_ROLE = {"pose": "smplx_pose", "root_pose": "smplx_pose", "jaw_pose": "smplx_pose", "shape": "smplx_shape",
                   "expr": "smplx_expr", "joint_cam": "smplx_joint_cam", "joint_img": "smplx_joint_img"}  # fmt: skip


class PartModel(nn.Module):
    """What the three part models share: the camera, placing the layer's output in it, the mode dispatch.

    Subclasses set `part`, `prefix` (the body model's name in target and output keys) and `loss_terms`, build
    their heads after the backbone (the checkpoints' key order), and implement `predict` and `compute_losses`.

    Args:
        model_cfg: input and heatmap shapes, camera, backbone.
        loss_cfg: loss weights (see `_WEIGHT_OF_ROLE`) and the pose-loss form.
        layer: the part's body-model layer (smplx.SMPL / MANO / FLAME); the model keeps a private copy whose
            buffers are non-persistent.
        proj_detach_joint_cam: in 'train' mode project detached joints, so that the 2D loss trains only the camera
            (the reference does this when training on AGORA alone).
    """

    part: ClassVar[str]
    prefix: ClassVar[str]
    loss_terms: ClassVar[tuple[str, ...]]

    def __init__(
        self, model_cfg: ModelConfig, loss_cfg: LossConfig, layer: nn.Module, proj_detach_joint_cam: bool = False
    ) -> None:
        super().__init__()
        self.cfg, self.loss_cfg, self.proj_detach_joint_cam = model_cfg, loss_cfg, proj_detach_joint_cam
        joints = PART_JOINTS[self.part]
        self.joint_set, self.root_idx = joints.joint_set, joints.root_idx
        self.register_buffer("vertex_ids", torch.from_numpy(joints.vertex_ids.copy()), persistent=False)
        self.register_buffer("joint_gather", torch.from_numpy(joints.gather.copy()), persistent=False)
        (img_h, img_w), (_, hm_h, hm_w) = model_cfg.input_img_shape, model_cfg.output_hm_shape
        self.px_to_hm = (hm_w / img_w, hm_h / img_h)  # (x, y) heatmap cells per input pixel
        self.backbone = build_backbone(model_cfg.resnet_type)
        self.layer = private_layer_copy(layer)  # buffers only, all non-persistent: not in state_dict

    def heads(self) -> list[nn.Module]:
        """The modules `get_part_model(cfg, 'train')` initialises with `init_head_weights`: all but the backbone
        and the body-model layer."""
        return [module for name, module in self.named_children() if name not in ("backbone", "layer")]

    def forward(
        self,
        inputs: dict[str, Tensor],
        targets: dict[str, Tensor] | None = None,
        meta_info: dict[str, Tensor] | None = None,
        mode: str = "test",
    ) -> dict[str, Tensor]:
        """Loss terms ('train') or predictions ('test') for a batch of part crops.

        Args:
            inputs: {'img': (B, 3, H, W) float RGB in [0, 1], (H, W) = input_img_shape}; the hand model also takes
                'is_left' (B,) bool.
            targets: the part's targets (module docstring); required in 'train' mode.
            meta_info: the part's masks (module docstring); required in 'train' mode.
            mode: 'train' or 'test'.

        Returns:
            'train': `loss_terms` -> weighted scalar. 'test': see `test_outputs`.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; accepted: {MODES}")
        train = mode == "train"
        pred = self.predict(inputs, detach_proj=train and self.proj_detach_joint_cam)
        if train:
            if targets is None or meta_info is None:
                raise ValueError("'train' mode needs targets and meta_info")
            losses = self.compute_losses(pred, targets, meta_info)
            return {name: losses[name] * self._weight(name) for name in self.loss_terms}
        return self.test_outputs(pred)

    def predict(self, inputs: dict[str, Tensor], detach_proj: bool = False) -> dict[str, Tensor]:
        raise NotImplementedError

    def compute_losses(
        self, pred: dict[str, Tensor], targets: dict[str, Tensor], meta_info: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        raise NotImplementedError

    def _weight(self, name: str) -> float:
        role = name.removeprefix(f"{self.prefix}_")
        weights: LossWeights = self.loss_cfg.weights
        return getattr(weights, _WEIGHT_OF_ROLE[role] if role != name else name)

    def _camera(self, cam_param: Tensor) -> Tensor:
        """(B, 3) network camera parameters -> (B, 3) camera translation, metres."""
        return camera_translation(
            full_precision(cam_param), self.cfg.focal, self.cfg.input_img_shape, self.cfg.camera_3d_size
        )

    def _place(
        self, joints: Tensor, vertices: Tensor, cam_trans: Tensor, detach_proj: bool, mirror: Tensor | None = None
    ) -> dict[str, Tensor]:
        """The layer's joints and vertices in the camera: projected, root-relative, translated.

        Args:
            joints: (B, K, 3) the supervision joints in the layer's frame, metres.
            vertices: (B, V, 3) the mesh, metres.
            cam_trans: (B, 3) translation added to both, metres.
            detach_proj: project detached joints.
            mirror: (B,) bool, samples whose result is mirrored (x -> -x) after the translation; None for none.

        Returns:
            joint_cam (B, K, 3) root-relative metres; joint_proj (B, K, 2) heatmap units; mesh_cam (B, V, 3) metres;
            cam_trans (B, 3) (mirrored where asked).
        """
        if mirror is not None:
            flip = torch.where(mirror, -1.0, 1.0).to(joints.dtype)  # (B,)
            sign = torch.stack((flip, torch.ones_like(flip), torch.ones_like(flip)), dim=-1)  # (B, 3): x -> -x
            joints, vertices, cam_trans = joints * sign[:, None], vertices * sign[:, None], cam_trans * sign
        to_project = joints.detach() if detach_proj else joints
        proj_px = project_points(to_project + cam_trans[:, None], self.cfg.focal, self.cfg.princpt)  # (B, K, 2)
        return {
            "joint_cam": joints - joints[:, self.root_idx, None],
            "joint_proj": proj_px * xy_constant(proj_px, *self.px_to_hm),
            "mesh_cam": vertices + cam_trans[:, None],
            "cam_trans": cam_trans,
        }

    def _joint_losses(
        self, pred: dict[str, Tensor], targets: dict[str, Tensor], meta_info: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """joint_proj, joint_cam and P_joint_cam, as the reference computes them for every part."""
        is_3d = meta_info["is_3D"]
        return {
            "joint_proj": coord_l1(pred["joint_proj"], targets["joint_img"][..., :2], meta_info["joint_trunc"]),
            "joint_cam": coord_l1(
                pred["joint_cam"], targets["joint_cam"], meta_info["joint_valid"] * is_3d[:, None, None]
            ),
            f"{self.prefix}_joint_cam": coord_l1(
                pred["joint_cam"], targets[f"{self.prefix}_joint_cam"], meta_info[f"{self.prefix}_joint_valid"]
            ),
        }

    def _heatmap_losses(
        self, pred: dict[str, Tensor], targets: dict[str, Tensor], meta_info: dict[str, Tensor], pos_idx: Tensor
    ) -> dict[str, Tensor]:
        """joint_img and P_joint_img on the PositionNet joints (`pos_idx` into the supervision set)."""
        prefix = self.prefix
        return {
            "joint_img": coord_l1(
                pred["joint_img"], targets["joint_img"][:, pos_idx], meta_info["joint_trunc"][:, pos_idx],
                meta_info["is_3D"],
            ),
            f"{prefix}_joint_img": coord_l1(
                pred["joint_img"], targets[f"{prefix}_joint_img"][:, pos_idx],
                meta_info[f"{prefix}_joint_trunc"][:, pos_idx],
            ),
        }  # fmt: skip

    def test_outputs(self, pred: dict[str, Tensor]) -> dict[str, Tensor]:
        """The reference's test-mode dict for the part (prefix P = smpl | mano | flame), predictions only.

        Returns:
            cam_trans (B, 3) metres; P_mesh_cam (B, V, 3) metres; P_joint_cam (B, K, 3) root-relative metres;
            P_joint_proj (B, K, 2) heatmap units; the part's parameters (`param_keys`); joint_img (B, J, 3) heatmap
            units (body, hand). Ground truth for evaluation travels beside it (common/engine/tester.py).
        """
        prefix = self.prefix
        out = {
            "cam_trans": pred["cam_trans"],
            f"{prefix}_mesh_cam": pred["mesh_cam"],
            f"{prefix}_joint_cam": pred["joint_cam"],
            f"{prefix}_joint_proj": pred["joint_proj"],
        }
        out |= {key: pred[key] for key in self.param_keys}
        if "joint_img" in pred:
            out["joint_img"] = pred["joint_img"]
        return out

    @property
    def param_keys(self) -> tuple[str, ...]:
        """The predicted parameter keys that `test_outputs` reports."""
        return (f"{self.prefix}_pose", f"{self.prefix}_shape")


class BodyPartModel(PartModel):
    """Pose2Pose body-only model: ResNet -> 25 heatmap joints -> SMPL root, 21 body rotations (hands zero), betas,
    camera -> SMPL mesh and Pose2Pose's 33 joints (24 regressed, keypoint and MCP vertices)."""

    part, prefix = "body", "smpl"
    loss_terms = ("joint_img", "smpl_joint_img", "smpl_pose", "smpl_shape", "joint_proj", "joint_cam", "smpl_joint_cam")

    def __init__(
        self, model_cfg: ModelConfig, loss_cfg: LossConfig, layer: nn.Module, proj_detach_joint_cam: bool = False
    ) -> None:
        super().__init__(model_cfg, loss_cfg, layer, proj_detach_joint_cam)
        channels = self.backbone.out_channels
        self.position_net = PositionNet(len(POSE2POSE_BODY_POS_NAMES), model_cfg.output_hm_shape, channels)
        # SMPL's 23 joints besides the root; its two hand joints are not estimated (no hand features here).
        self.rot_joint_num = len(joint_sets.SMPL_JOINTS) - 3
        self.rotation_net = PartRotationNet(len(POSE2POSE_BODY_POS_NAMES), channels, self.rot_joint_num, _SHAPE_DIM)
        self.register_buffer("pos_idx", torch.from_numpy(_BODY_POS_IDX.copy()), persistent=False)

    def predict(self, inputs: dict[str, Tensor], detach_proj: bool = False) -> dict[str, Tensor]:
        """Predictions: joint_img (B, 25, 3) heatmap units; smpl_pose (B, 72) axis-angle (root, 23 joints with
        the hands 0); smpl_shape (B, 10); cam_trans (B, 3); joint_cam (B, 33, 3); joint_proj (B, 33, 2);
        mesh_cam (B, 6890, 3) with the real files."""
        img_feat = self.backbone(inputs["img"])
        joint_img, _ = self.position_net(img_feat)  # (B, 25, 3)
        root_6d, pose_6d, shape, cam_param = self.rotation_net(img_feat, joint_img.detach())
        root = rot6d_to_axis_angle(full_precision(root_6d))  # (B, 3)
        body = rot6d_to_axis_angle(full_precision(pose_6d).unflatten(-1, (-1, 6))).flatten(1)  # (B, 63)
        pose = torch.cat((root, body, body.new_zeros(body.shape[0], 6)), dim=1)  # (B, 72): hands at zero
        shape, cam_trans = full_precision(shape), self._camera(cam_param)
        dtype = self.layer.shapedirs.dtype
        with torch.autocast(device_type=cam_trans.device.type, enabled=False):
            output = self.layer(
                betas=shape.to(dtype), global_orient=pose[:, :3].to(dtype), body_pose=pose[:, 3:].to(dtype)
            )
            joints = gather_part_joints(
                output.joints, output.vertices, self.vertex_ids, self.joint_gather
            )  # (B, 33, 3)
            placed = self._place(joints, output.vertices, cam_trans.to(dtype), detach_proj)
        return {"joint_img": joint_img, "smpl_pose": pose, "smpl_shape": shape, **placed}

    def compute_losses(
        self, pred: dict[str, Tensor], targets: dict[str, Tensor], meta_info: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """The reference's seven body terms, unweighted (`forward` weights them)."""
        pred = {k: v.float() for k, v in pred.items()}  # reduce in float32 under autocast
        return {
            **self._heatmap_losses(pred, targets, meta_info, self.pos_idx),
            "smpl_pose": pose_l1(pred["smpl_pose"], targets["smpl_pose"], meta_info["smpl_pose_valid"],
                                 self.loss_cfg.pose_loss),
            "smpl_shape": param_l1(pred["smpl_shape"], targets["smpl_shape"], meta_info["smpl_shape_valid"][:, None]),
            **self._joint_losses(pred, targets, meta_info),
        }  # fmt: skip


class HandPartModel(PartModel):
    """Pose2Pose hand-only model for right hands: ResNet -> 21 heatmap joints (wrist included) -> MANO root, 15
    finger rotations, shape, camera -> right MANO mesh and 21 joints (16 regressed, 5 fingertip vertices).

    Left hands (`inputs['is_left']`) are mirrored into right-hand space before the backbone; their joint_img is
    mirrored back (`model.left_hand_unflip`), their rotations mirrored (axis-angle y, z negated), and their mesh,
    joints and camera translation mirrored in 3D (x -> -x): for a left MANO that is the right one's mirror image,
    as MANO's are (with the known left shapedirs fix), that is the left MANO mesh of the mirrored parameters.
    """

    part, prefix = "hand", "mano"
    loss_terms = ("joint_img", "mano_joint_img", "mano_pose", "mano_shape", "joint_proj", "joint_cam", "mano_joint_cam")

    def __init__(
        self, model_cfg: ModelConfig, loss_cfg: LossConfig, layer: nn.Module, proj_detach_joint_cam: bool = False
    ) -> None:
        super().__init__(model_cfg, loss_cfg, layer, proj_detach_joint_cam)
        channels, joint_num = self.backbone.out_channels, len(joint_sets.HAND_21)
        self.position_net = PositionNet(joint_num, model_cfg.output_hm_shape, channels)
        self.rot_joint_num = len(joint_sets.MANO_SKELETON) - 1  # 15 finger joints
        self.rotation_net = PartRotationNet(joint_num, channels, self.rot_joint_num, _SHAPE_DIM)
        # The 21 joints: MANO's 16 and the 5 fingertip vertices smplx uses (common/body_models/part_joints.py; the
        # reference took vertices 1-3 away: 745, 317, 445, 556, 673).
        self.register_buffer("pos_idx", torch.arange(joint_num), persistent=False)

    def _mirror_joint_img(self, joint_img: Tensor) -> Tensor:
        width_hm = self.cfg.output_hm_shape[2]
        if self.cfg.left_hand_unflip == "heatmap":
            mirrored_x = width_hm - 1 - joint_img[..., :1]  # a flip of the heatmap grid, as Hand4Whole's
        else:  # the crop's pixel flip u' = W - 1 - u, in heatmap units
            width_px = self.cfg.input_img_shape[1]
            mirrored_x = (width_px - 1) * width_hm / width_px - joint_img[..., :1]
        return torch.cat((mirrored_x, joint_img[..., 1:]), dim=-1)

    def predict(self, inputs: dict[str, Tensor], detach_proj: bool = False) -> dict[str, Tensor]:
        """Predictions: joint_img (B, 21, 3) heatmap units; mano_pose (B, 48) axis-angle (root, 15 fingers);
        mano_shape (B, 10); cam_trans (B, 3); joint_cam (B, 21, 3); joint_proj (B, 21, 2); mesh_cam (B, 778, 3)
        with the real files. Left hands' results are in left-hand space (see the class docstring)."""
        img = inputs["img"]
        is_left = inputs.get("is_left")
        left = None if is_left is None else is_left.to(device=img.device, dtype=torch.bool)  # (B,)
        if left is not None:
            img = torch.where(left[:, None, None, None], img.flip(-1), img)
        img_feat = self.backbone(img)
        joint_img, _ = self.position_net(img_feat)  # (B, 21, 3), right-hand space
        root_6d, pose_6d, shape, cam_param = self.rotation_net(img_feat, joint_img.detach())
        root = rot6d_to_axis_angle(full_precision(root_6d))  # (B, 3)
        fingers = rot6d_to_axis_angle(full_precision(pose_6d).unflatten(-1, (-1, 6)))  # (B, 15, 3)
        shape, cam_trans = full_precision(shape), self._camera(cam_param)
        dtype = self.layer.shapedirs.dtype
        with torch.autocast(device_type=cam_trans.device.type, enabled=False):
            output = self.layer(
                betas=shape.to(dtype), global_orient=root.to(dtype), hand_pose=fingers.flatten(1).to(dtype)
            )
            joints = gather_part_joints(
                output.joints, output.vertices, self.vertex_ids, self.joint_gather
            )  # (B, 21, 3)
            placed = self._place(joints, output.vertices, cam_trans.to(dtype), detach_proj, mirror=left)
        pose = torch.cat((root[:, None], fingers), dim=1)  # (B, 16, 3)
        if left is not None:
            pose = torch.where(left[:, None, None], mirror_axis_angle(pose), pose)
            joint_img = torch.where(left[:, None, None], self._mirror_joint_img(joint_img), joint_img)
        return {"joint_img": joint_img, "mano_pose": pose.flatten(1), "mano_shape": shape, **placed}

    def compute_losses(
        self, pred: dict[str, Tensor], targets: dict[str, Tensor], meta_info: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """The reference's seven hand terms, unweighted (`forward` weights them)."""
        pred = {k: v.float() for k, v in pred.items()}
        return {
            **self._heatmap_losses(pred, targets, meta_info, self.pos_idx),
            "mano_pose": pose_l1(pred["mano_pose"], targets["mano_pose"], meta_info["mano_pose_valid"],
                                 self.loss_cfg.pose_loss),
            "mano_shape": param_l1(pred["mano_shape"], targets["mano_shape"], meta_info["mano_shape_valid"][:, None]),
            **self._joint_losses(pred, targets, meta_info),
        }  # fmt: skip


class FacePartModel(PartModel):
    """Pose2Pose face-only model: ResNet -> FlameRegressor (FLAME root and jaw 6D, shape, expression, camera) ->
    FLAME mesh and its 73 joints (5 skeleton joints, 68 landmarks); neck and eye rotations zero."""

    part, prefix = "face", "flame"
    loss_terms = ("flame_root_pose", "flame_jaw_pose", "flame_shape", "flame_expr", "joint_proj", "joint_cam",
                  "flame_joint_cam")  # fmt: skip

    def __init__(
        self, model_cfg: ModelConfig, loss_cfg: LossConfig, layer: nn.Module, proj_detach_joint_cam: bool = False
    ) -> None:
        super().__init__(model_cfg, loss_cfg, layer, proj_detach_joint_cam)
        self.regressor = FlameRegressor(self.backbone.out_channels, _SHAPE_DIM, _EXPR_DIM)

    @property
    def param_keys(self) -> tuple[str, ...]:
        return ("flame_root_pose", "flame_jaw_pose", "flame_shape", "flame_expr")

    def predict(self, inputs: dict[str, Tensor], detach_proj: bool = False) -> dict[str, Tensor]:
        """Predictions: flame_root_pose, flame_jaw_pose (B, 3) axis-angle; flame_shape, flame_expr (B, 10);
        cam_trans (B, 3); joint_cam (B, 73, 3); joint_proj (B, 73, 2) heatmap units; mesh_cam (B, 5023, 3) with
        the real files."""
        root_6d, jaw_6d, shape, expr, cam_param = self.regressor(self.backbone(inputs["img"]))
        params = {
            "flame_root_pose": rot6d_to_axis_angle(full_precision(root_6d)),
            "flame_jaw_pose": rot6d_to_axis_angle(full_precision(jaw_6d)),
            "flame_shape": full_precision(shape),
            "flame_expr": full_precision(expr),
        }
        cam_trans = self._camera(cam_param)
        dtype = self.layer.shapedirs.dtype
        with torch.autocast(device_type=cam_trans.device.type, enabled=False):
            p = {key: value.to(dtype) for key, value in params.items()}
            zeros = torch.zeros_like(p["flame_root_pose"])  # neck and eyes are not estimated
            output = self.layer(
                betas=p["flame_shape"], expression=p["flame_expr"], global_orient=p["flame_root_pose"],
                jaw_pose=p["flame_jaw_pose"], neck_pose=zeros, leye_pose=zeros, reye_pose=zeros,
            )  # fmt: skip
            placed = self._place(output.joints, output.vertices, cam_trans.to(dtype), detach_proj)
        return {**params, **placed}

    def compute_losses(
        self, pred: dict[str, Tensor], targets: dict[str, Tensor], meta_info: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """The reference's seven face terms, unweighted (`forward` weights them)."""
        pred = {k: v.float() for k, v in pred.items()}
        losses = {}
        for name in ("flame_root_pose", "flame_jaw_pose"):
            valid = meta_info[f"{name}_valid"][:, None].expand(-1, 3)  # (B, 3)
            losses[name] = pose_l1(pred[name], targets[name], valid, self.loss_cfg.pose_loss)
        for name in ("flame_shape", "flame_expr"):
            losses[name] = param_l1(pred[name], targets[name], meta_info[f"{name}_valid"][:, None])
        return {**losses, **self._joint_losses(pred, targets, meta_info)}


PART_MODELS: dict[str, type[PartModel]] = {"body": BodyPartModel, "hand": HandPartModel, "face": FacePartModel}
"""Part models by part name ('body', 'hand', 'face'; `model.arch` is 'pose2pose_' + the part)."""


def get_part_model(cfg: Config, mode: str) -> PartModel:
    """Builds the Pose2Pose part model of a config (`cfg.model.arch` 'pose2pose_body', '_hand' or '_face').

    In 'train' mode the heads get Hand4Whole's init (`init_head_weights`) and the backbone loads the local ImageNet
    file `model.backbone_weights` names ('' keeps the random init); in 'test' mode the weights are left for a
    checkpoint. `model.proj_detach_joint_cam` projects detached joints in training (the reference does so when
    training on AGORA alone).

    Args:
        cfg: the experiment config; reads cfg.model, cfg.loss and cfg.human_model_path.
        mode: 'train' or 'test'.

    Returns:
        The model, on the CPU, in training mode.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; accepted: {MODES}")
    part = cfg.model.arch.removeprefix("pose2pose_")
    if part not in PART_MODELS:
        raise ValueError(f"model.arch={cfg.model.arch!r} is not a part model; part models: "
                         f"{', '.join('pose2pose_' + p for p in PART_MODELS)}")  # fmt: skip
    body_models = get_body_models(cfg.human_model_path)
    layers = {"body": lambda: body_models.smpl("neutral"), "hand": lambda: body_models.mano("right"),
              "face": body_models.flame}  # fmt: skip
    model = PART_MODELS[part](
        cfg.model, cfg.loss, layers[part](), proj_detach_joint_cam=cfg.model.proj_detach_joint_cam
    )
    if mode == "train":
        for head in model.heads():
            head.apply(init_head_weights)
        if cfg.model.backbone_weights:
            model.backbone.load_imagenet_weights(resolve_repo_path(cfg.model.backbone_weights))
    return model
