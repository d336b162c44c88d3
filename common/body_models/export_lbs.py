"""An export-friendly SMPL-X forward: our own linear blend skinning over the tensors of an ``smplx.SMPLX`` layer.

`ExportSMPLX` computes what ``smplx.SMPLX.forward`` computes for the layer `common.body_models.BodyModels.smplx`
builds (full 45-D hand poses added to the mean hand pose, face contour, no `joint_mapper`, no `transl`): the posed
vertices and the 144 output joints (55 skeleton joints, 21 vertex keypoints from the layer's
``vertex_joint_selector``, 51 static and 17 dynamic face-contour landmarks; `joint_sets.SMPLX_OUTPUT`). It is
written to be traced (torch.onnx.export, torch.export): every index is a tensor fixed at construction, the
kinematic chain is a Python loop over the parent list read once from the layer, and nothing branches on data. The
one data-dependent choice smplx makes, the contour landmarks' look-up row from the neck's yaw, is a tensor gather.

Use it where the smplx layer is called with keywords, e.g. ``model.smplx_head.layer = ExportSMPLX(layer)``: it
takes the same keyword arguments and returns an object with ``.vertices`` and ``.joints``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["ExportSMPLX", "ExportSMPLXOutput", "rodrigues"]

# The contour look-up table of smplx has one row per degree of neck yaw: rows 0..39 for yaw 0..39 degrees, rows
# 40..78 for yaw -1..-39 degrees; yaws beyond +-39 degrees use the last row of their side.
_MAX_CONTOUR_YAW_DEG = 39
_LAST_CONTOUR_ROW = 2 * _MAX_CONTOUR_YAW_DEG


class ExportSMPLXOutput(NamedTuple):
    """What `ExportSMPLX` returns, named as smplx's output fields.

    Attributes:
        vertices: (B, V, 3) posed mesh, metres, in the model's frame (no translation).
        joints: (B, 144, 3) output joints in smplx's order (`joint_sets.SMPLX_OUTPUT` with the real files), metres.
    """

    vertices: Tensor
    joints: Tensor


def rodrigues(axis_angle: Tensor) -> Tensor:
    """Rotation matrices of rotation vectors by Rodrigues' formula R = cos(a) I + sin(a) [k]x + (1 - cos(a)) k k^T.

    Built from element-wise operations and stacks only (no linear-algebra kernels, no reshape), so that every
    exporter translates it with any batch shape. (common.geometry.axis_angle_to_rotmat, through roma, is the
    training-side conversion; this one is the same formula, written for export.)

    Args:
        axis_angle: (..., 3) rotation vectors, radians.

    Returns:
        (..., 3, 3) rotation matrices; the identity for a zero vector.
    """
    # The floor keeps the division finite at zero rotation, where the axis becomes 0 and R = I exactly; below it,
    # R = I + [axis_angle]x to first order. A clamp, not an added epsilon: ONNX graph optimisers (onnxscript's)
    # drop the addition of a near-zero constant as a no-op.
    angle = torch.sqrt((axis_angle * axis_angle).sum(-1, keepdim=True).clamp_min(1e-16))  # (..., 1)
    axis = axis_angle / angle  # (..., 3)
    cos, sin = torch.cos(angle)[..., None], torch.sin(angle)[..., None]  # (..., 1, 1)
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    rows = ((zero, -z, y), (z, zero, -x), (-y, x, zero))
    cross = torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)  # (..., 3, 3) [k]x
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return cos * eye + sin * cross + (1 - cos) * (axis[..., :, None] * axis[..., None, :])


class ExportSMPLX(nn.Module):
    """SMPL-X vertices and joints by our own linear blend skinning over an ``smplx.SMPLX`` layer's tensors.

    Args:
        layer: an ``smplx.SMPLX`` built without PCA hands and with the face contour (as `BodyModels.smplx`
            builds it). Its tensors are copied into non-persistent buffers, so this module never enters a
            state_dict and moves with ``.to(device)``; the layer itself is not modified.

    Raises:
        ValueError: the layer uses PCA hand poses, has no face contour or has a joint mapper (all of which this
            forward does not reproduce).
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        if getattr(layer, "use_pca", False) or not getattr(layer, "use_face_contour", False):
            raise ValueError("ExportSMPLX reproduces SMPL-X with full hand poses and the face contour only")
        if getattr(layer, "joint_mapper", None) is not None:
            raise ValueError("ExportSMPLX does not reproduce a joint mapper")
        # Host-side constants of the graph: the kinematic tree and the neck chain, as Python ints.
        self.parents: list[int] = [int(p) for p in layer.parents.tolist()]
        self.neck_chain: list[int] = [int(j) for j in layer.neck_kin_chain.tolist()]
        if self.parents[0] >= 0 or any(not 0 <= p < j for j, p in enumerate(self.parents) if j > 0):
            raise ValueError("the layer's parents must list every joint after its parent, the root first")
        self.num_betas = int(layer.shapedirs.shape[-1])
        self.num_expression = int(layer.expr_dirs.shape[-1])
        faces = layer.faces_tensor  # (F, 3)
        buffers = {
            "v_template": layer.v_template,  # (V, 3) metres
            "shapedirs": layer.shapedirs,  # (V, 3, S) metres per shape coefficient
            "exprdirs": layer.expr_dirs,  # (V, 3, E) metres per expression coefficient
            "posedirs": layer.posedirs,  # (9 * (J - 1), V * 3) metres per rotation-matrix entry
            "J_regressor": layer.J_regressor,  # (J, V)
            "lbs_weights": layer.lbs_weights,  # (V, J)
            "pose_mean": layer.pose_mean,  # (165,) axis-angle added to every pose (the mean hand pose)
            "extra_joint_vertex_ids": layer.vertex_joint_selector.extra_joints_idxs,  # (21,)
            # Landmarks as vertex triplets and barycentric weights: the face lookup is done once, here.
            "static_lmk_vertex_ids": faces[layer.lmk_faces_idx],  # (51, 3)
            "static_lmk_bary": layer.lmk_bary_coords,  # (51, 3)
            "contour_lmk_vertex_ids": faces[layer.dynamic_lmk_faces_idx],  # (79, 17, 3), one row per yaw degree
            "contour_lmk_bary": layer.dynamic_lmk_bary_coords,  # (79, 17, 3)
        }
        for name, value in buffers.items():
            self.register_buffer(name, value.detach().clone(), persistent=False)

    def forward(
        self,
        betas: Tensor,
        expression: Tensor,
        global_orient: Tensor,
        body_pose: Tensor,
        left_hand_pose: Tensor,
        right_hand_pose: Tensor,
        jaw_pose: Tensor,
        leye_pose: Tensor,
        reye_pose: Tensor,
    ) -> ExportSMPLXOutput:
        """Posed vertices and output joints, as ``smplx.SMPLX.forward`` gives them for the same inputs.

        Args:
            betas: (B, S) shape coefficients.
            expression: (B, E) expression coefficients.
            global_orient: (B, 3) root rotation, axis-angle radians.
            body_pose: (B, 63) 21 body joint rotations, axis-angle radians.
            left_hand_pose, right_hand_pose: (B, 45) 15 finger rotations each, axis-angle radians, relative to the
                mean hand pose.
            jaw_pose, leye_pose, reye_pose: (B, 3) axis-angle radians.

        Returns:
            `ExportSMPLXOutput`: vertices (B, V, 3) and joints (B, 144, 3), metres.
        """
        batch = betas.shape[0]
        # Reshapes name the batch from an input's shape (traced as a runtime value), never a size the tracer saw.
        parts = (global_orient, body_pose, jaw_pose, leye_pose, reye_pose, left_hand_pose, right_hand_pose)
        full_pose = torch.cat(parts, dim=1) + self.pose_mean  # (B, 165): root, body, jaw, eyes, left/right fingers
        rotmats = rodrigues(full_pose.reshape(batch, -1, 3))  # (B, J, 3, 3)

        coefficients = torch.cat((betas, expression), dim=1)  # (B, S + E)
        blend_dirs = torch.cat((self.shapedirs, self.exprdirs), dim=-1).flatten(0, 1)  # (V * 3, S + E)
        v_shaped = self.v_template + (coefficients @ blend_dirs.T).reshape(batch, -1, 3)  # (B, V, 3)
        joints_rest = torch.einsum("jv,bvc->bjc", self.J_regressor, v_shaped)  # (B, J, 3)

        eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
        pose_feature = (rotmats[:, 1:] - eye).flatten(1)  # (B, 9 * (J - 1)): zero at the rest pose
        v_posed = v_shaped + (pose_feature @ self.posedirs).reshape(batch, -1, 3)  # (B, V, 3)

        rot_world, joints_posed = self._kinematic_chain(rotmats, joints_rest)  # (B, J, 3, 3), (B, J, 3)
        # Skinning transforms: x -> R_world x + (p_posed - R_world p_rest) for each joint, blended per vertex.
        offset = joints_posed - (rot_world @ joints_rest[..., None])[..., 0]  # (B, J, 3)
        transforms = torch.cat((rot_world, offset[..., None]), dim=-1).flatten(2)  # (B, J, 12)
        blended = (self.lbs_weights @ transforms).reshape(batch, -1, 3, 4)  # (B, V, 3, 4)
        vertices = (blended[..., :3] @ v_posed[..., None])[..., 0] + blended[..., 3]  # (B, V, 3)

        extra = vertices[:, self.extra_joint_vertex_ids]  # (B, 21, 3)
        landmarks = self._landmarks(vertices, rotmats, batch)  # (B, 68, 3)
        return ExportSMPLXOutput(vertices, torch.cat((joints_posed, extra, landmarks), dim=1))

    def _kinematic_chain(self, rotmats: Tensor, joints_rest: Tensor) -> tuple[Tensor, Tensor]:
        """World rotations (B, J, 3, 3) and posed joint positions (B, J, 3) down the tree, root first."""
        rot_world, position = [rotmats[:, 0]], [joints_rest[:, 0]]
        for joint in range(1, len(self.parents)):
            parent = self.parents[joint]
            bone = joints_rest[:, joint] - joints_rest[:, parent]  # (B, 3) rest-pose offset from the parent
            position.append(position[parent] + (rot_world[parent] @ bone[..., None])[..., 0])
            rot_world.append(rot_world[parent] @ rotmats[:, joint])
        return torch.stack(rot_world, dim=1), torch.stack(position, dim=1)

    def _landmarks(self, vertices: Tensor, rotmats: Tensor, batch: int) -> Tensor:
        """The 51 static and 17 contour landmarks (B, 68, 3), barycentric points of mesh triangles.

        The contour row follows smplx: the neck chain's accumulated rotation, its yaw in whole degrees (rounded
        half to even, as torch.round and ONNX Round are), clamped to the table.
        """
        neck = rotmats[:, self.neck_chain[-1]]
        for joint in reversed(self.neck_chain[:-1]):
            neck = neck @ rotmats[:, joint]  # R_root ... R_head, smplx's product order
        yaw = torch.atan2(-neck[:, 2, 0], torch.sqrt(neck[:, 0, 0] ** 2 + neck[:, 1, 0] ** 2))  # (B,) radians
        yaw_deg = torch.round(torch.clamp(-yaw * (180.0 / math.pi), max=float(_MAX_CONTOUR_YAW_DEG)))
        negative_row = torch.clamp(_MAX_CONTOUR_YAW_DEG - yaw_deg, max=_LAST_CONTOUR_ROW)
        row = torch.where(yaw_deg >= 0, yaw_deg, negative_row).long()  # (B,)
        vertex_ids = torch.cat(
            (self.static_lmk_vertex_ids.expand(batch, -1, -1), self.contour_lmk_vertex_ids[row]), dim=1
        )  # (B, 68, 3)
        bary = torch.cat((self.static_lmk_bary.expand(batch, -1, -1), self.contour_lmk_bary[row]), dim=1)
        corners = torch.gather(vertices, 1, vertex_ids.flatten(1)[..., None].expand(-1, -1, 3))  # (B, 68 * 3, 3)
        return (corners.reshape(batch, -1, 3, 3) * bary[..., None]).sum(2)  # (B, 68, 3)
