"""The SMPL-X step of the whole-body model: parameters -> mesh, part-relative joints and their 2D projection."""

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from common.body_models import joint_sets
from common.geometry import project_points

__all__ = ["SMPLXHead", "private_layer_copy"]


def private_layer_copy(layer: nn.Module) -> nn.Module:
    """A deep copy of a body-model layer whose buffers are all non-persistent.

    The copy moves with the model's `.to(device)` (the body-model cache shares its layer, which must not move)
    and never enters a state_dict, so checkpoints hold only network weights, as the reference's do.
    """
    layer = copy.deepcopy(layer)
    for module in layer.modules():
        for name, buffer in list(module.named_buffers(recurse=False)):
            module.register_buffer(name, buffer, persistent=False)
    return layer


def _part_anchors() -> Tensor:
    """(137,) the joint each supervision joint is relative to: wrists for hands, neck for the face, else pelvis."""
    anchors = torch.full((len(joint_sets.JOINTS),), joint_sets.ROOT_IDX, dtype=torch.long)
    for part, anchor in (
        ("lhand", joint_sets.LWRIST_IDX),
        ("rhand", joint_sets.RWRIST_IDX),
        ("face", joint_sets.NECK_IDX),
    ):
        anchors[list(joint_sets.JOINTS.parts[part])] = anchor
    return anchors


class SMPLXHead(nn.Module):
    """Runs SMPL-X on predicted parameters and places the result in the virtual camera (Hand4Whole's get_coord).

    Holds a private copy of the SMPL-X layer whose buffers are non-persistent: they move with `.to(device)` but
    never enter a state_dict, so checkpoints hold only network weights (as Hand4Whole's, which strip them).

    Args:
        smplx_layer: a neutral smplx.SMPLX with 10 betas, 10 expressions, flat_hand_mean=False and face contour
            (`common.body_models.BodyModels.smplx`); it is copied, not modified.
        focal: (fx, fy) of the virtual camera, body-input pixels.
        princpt: (cx, cy) of the virtual camera, body-input pixels.
        input_body_shape: (H, W) of the body input, pixels.
        hm_shape: (D, H, W) of the body heatmap, whose units joint_proj is given in.
    """

    def __init__(
        self,
        smplx_layer: nn.Module,
        focal: Sequence[float],
        princpt: Sequence[float],
        input_body_shape: Sequence[int],
        hm_shape: Sequence[int],
    ) -> None:
        super().__init__()
        self.layer = private_layer_copy(smplx_layer)
        # Camera constants as (2,) buffers, (x, y): they move with the model, so no step copies them to the device.
        self.register_buffer("focal", torch.tensor(focal, dtype=torch.float32), persistent=False)
        self.register_buffer("princpt", torch.tensor(princpt, dtype=torch.float32), persistent=False)
        px_to_hm = (hm_shape[2] / input_body_shape[1], hm_shape[1] / input_body_shape[0])
        self.register_buffer("px_to_hm", torch.tensor(px_to_hm, dtype=torch.float32), persistent=False)
        self.register_buffer("joint_idx", torch.tensor(joint_sets.JOINT_IDX, dtype=torch.long), persistent=False)
        self.register_buffer("part_anchors", _part_anchors(), persistent=False)

    def forward(
        self, params: dict[str, Tensor], cam_trans: Tensor, detach_proj: bool = False, all_joints: bool = False
    ) -> dict[str, Tensor]:
        """Mesh and joints of the predicted parameters (eyes at zero, no `transl`: the camera adds cam_trans).

        Runs in the layer's dtype (float32) with autocast off, whatever the caller's autocast state.

        Args:
            params: (B, ...) smplx_root_pose (3), smplx_body_pose (63), smplx_lhand_pose (45), smplx_rhand_pose
                (45), smplx_jaw_pose (3) axis-angle radians; smplx_shape (10); smplx_expr (10).
            cam_trans: (B, 3) metres, added to the SMPL-X output (which is not pelvis-centred).
            detach_proj: project detached joints, so the 2D loss trains only the camera.
            all_joints: project all 144 output joints instead of the 137 supervision joints.

        Returns:
            joint_cam: (B, 137, 3) metres; body joints pelvis-relative, hands wrist-relative, face neck-relative.
            joint_proj: (B, 137 or 144, 2) projected joints, body-heatmap units.
            mesh_cam: (B, V, 3) vertices in the camera frame, metres.
        """
        dtype = self.layer.shapedirs.dtype
        with torch.autocast(device_type=cam_trans.device.type, enabled=False):
            p = {key: value.to(dtype) for key, value in params.items()}
            zeros = torch.zeros_like(p["smplx_root_pose"])  # eye rotations are not estimated
            output = self.layer(
                betas=p["smplx_shape"], expression=p["smplx_expr"], global_orient=p["smplx_root_pose"],
                body_pose=p["smplx_body_pose"], left_hand_pose=p["smplx_lhand_pose"],
                right_hand_pose=p["smplx_rhand_pose"], jaw_pose=p["smplx_jaw_pose"], leye_pose=zeros, reye_pose=zeros,
            )  # fmt: skip
            cam_trans = cam_trans.to(dtype)
            joint_cam = output.joints[:, self.joint_idx]  # (B, 137, 3)
            to_project = output.joints if all_joints else joint_cam
            to_project = to_project.detach() if detach_proj else to_project
            focal, princpt = self.focal.to(dtype), self.princpt.to(dtype)
            proj_px = project_points(to_project + cam_trans[:, None], focal, princpt)  # (B, K, 2)
            joint_proj = proj_px * self.px_to_hm.to(dtype)
            joint_cam = joint_cam - joint_cam[:, joint_sets.ROOT_IDX, None]
            joint_cam = joint_cam - joint_cam[:, self.part_anchors]  # the pelvis' anchor is itself, already at 0
        return {"joint_cam": joint_cam, "joint_proj": joint_proj, "mesh_cam": output.vertices + cam_trans[:, None]}
