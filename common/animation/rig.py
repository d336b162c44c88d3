"""The rig the exporters write: an SMPL-X layer's template with one subject's shape baked in, its skeleton and
skinning weights, and a track's parameters turned into per-joint local rotations.

Frame and units: SMPL-X's own (the layer's output frame, metres; the model's rest pose stands along +y), which is
also glTF's (y up, right-handed, metres). An optional ``world_rotation`` F turns the whole motion: every exported
point is F applied to the SMPL-X output plus ``cam_trans``. `CAMERA_TO_Y_UP` is the 180-degree turn about x that
stands up a person given in the OpenCV camera frame (y down, z forward), as the demos write their parameters.

What the rig does not carry: SMPL-X's pose-corrective blend shapes (``posedirs``), which neither glTF nor BVH
can express; a mesh posed from the exported files is SMPL-X's linear blend skinning without that term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation
from smplx.joint_names import JOINT_NAMES
from torch import nn

from .results import TrackMotion

__all__ = ["CAMERA_TO_Y_UP", "RigMotion", "SMPLXRig", "rig_motion"]

CAMERA_TO_Y_UP = np.diag([1.0, -1.0, -1.0])
"""Rotation by 180 degrees about x: OpenCV camera axes (x right, y down, z forward) to y up, z towards the camera."""


def _layer_array(layer: nn.Module, name: str) -> np.ndarray:
    return getattr(layer, name).detach().cpu().numpy().astype(np.float64)


@dataclass(frozen=True)
class SMPLXRig:
    """An SMPL-X subject at rest (the model's T-pose) with its shape baked in, float64, metres.

    Attributes:
        joint_names: J names (smplx's for the 55 SMPL-X joints), unique, without spaces.
        parents: (J,) int64 parent index of each joint, -1 for the root (the pelvis); parents precede children.
        vertices_rest: (V, 3) ``v_template + shapedirs @ betas``.
        joints_rest: (J, 3) ``J_regressor @ vertices_rest``.
        faces: (F, 3) int64 triangles.
        lbs_weights: (V, J) the layer's skinning weights (rows sum to 1).
        expression_dirs: (V, 3, E) the layer's expression blend shapes, metres per unit coefficient.
        expression_joint_dirs: (J, 3, E) ``J_regressor @ expression_dirs``: how an expression moves the joints
            SMPL-X regresses from the shaped mesh (the glTF writer makes up for it, see gltf_export).
        pose_mean: (J, 3) axis-angle added to every frame's parameters (the mean hand pose when the layer has
            ``flat_hand_mean=False``, as `BodyModels.smplx` builds it; zeros elsewhere).
        betas: (S,) the shape the rig was built with.
    """

    joint_names: tuple[str, ...]
    parents: np.ndarray
    vertices_rest: np.ndarray
    joints_rest: np.ndarray
    faces: np.ndarray
    lbs_weights: np.ndarray
    expression_dirs: np.ndarray
    expression_joint_dirs: np.ndarray
    pose_mean: np.ndarray
    betas: np.ndarray

    @classmethod
    def from_layer(cls, layer: nn.Module, betas: np.ndarray) -> SMPLXRig:
        """The rig of an ``smplx.SMPLX`` layer (as `BodyModels.smplx` builds it) for one shape.

        Args:
            layer: the SMPL-X layer; only read.
            betas: (S,) shape coefficients, S <= the layer's shape components.
        """
        betas = np.asarray(betas, dtype=np.float64)
        shapedirs = _layer_array(layer, "shapedirs")  # (V, 3, S_layer)
        if betas.shape != (betas.size,) or betas.size > shapedirs.shape[-1]:
            raise ValueError(f"betas must be (S,) with S <= {shapedirs.shape[-1]}, got shape {betas.shape}")
        vertices_rest = _layer_array(layer, "v_template") + shapedirs[..., : betas.size] @ betas  # (V, 3)
        regressor = _layer_array(layer, "J_regressor")  # (J, V)
        expression_dirs = _layer_array(layer, "expr_dirs")  # (V, 3, E)
        parents = layer.parents.detach().cpu().numpy().astype(np.int64).copy()
        parents[0] = -1  # smplx stores the root's parent as -1 already; the kintree files as a large number
        num_joints = len(parents)
        names = tuple(JOINT_NAMES[:num_joints]) if num_joints <= 55 else tuple(f"joint_{j}" for j in range(num_joints))
        return cls(
            joint_names=names,
            parents=parents,
            vertices_rest=vertices_rest,
            joints_rest=regressor @ vertices_rest,
            faces=np.asarray(layer.faces, dtype=np.int64),
            lbs_weights=_layer_array(layer, "lbs_weights"),
            expression_dirs=expression_dirs,
            expression_joint_dirs=np.einsum("jv,vce->jce", regressor, expression_dirs),
            pose_mean=_layer_array(layer, "pose_mean").reshape(num_joints, 3),
            betas=betas,
        )

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    def joint_offsets(self) -> np.ndarray:
        """(J, 3) each joint's rest position relative to its parent's (the root's: its own rest position), metres."""
        parent_rest = np.where(self.parents[:, None] >= 0, self.joints_rest[self.parents], 0.0)
        return self.joints_rest - parent_rest

    def top_influences(self, count: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """The ``count`` largest skinning weights of every vertex, renormalised to sum to 1.

        Returns:
            joints: (V, count) int64 joint indices, largest weight first; unused slots (a vertex with fewer
                non-zero weights) hold joint 0 with weight 0.
            weights: (V, count) float64, rows summing to 1.
        """
        order = np.argsort(-self.lbs_weights, axis=1, kind="stable")[:, :count]  # (V, count)
        weights = np.take_along_axis(self.lbs_weights, order, axis=1).clip(min=0.0)
        joints = np.where(weights > 0, order, 0)
        return joints, weights / weights.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class RigMotion:
    """A track's motion on a rig, T frames.

    Attributes:
        frames: (T,) int64 frame indices.
        local_rotations: (T, J, 3, 3) each joint's rotation relative to its parent (the root's includes the world
            rotation F), i.e. SMPL-X's full pose including ``pose_mean``.
        root_position: (T, 3) metres, the root joint's world position ``F (joints_rest[0] + cam_trans)``.
        expression: (T, E) coefficients, or None.
        world_rotation: (3, 3) F.
    """

    frames: np.ndarray
    local_rotations: np.ndarray
    root_position: np.ndarray
    expression: np.ndarray | None
    world_rotation: np.ndarray


def rig_motion(rig: SMPLXRig, motion: TrackMotion, world_rotation: np.ndarray | None = None) -> RigMotion:
    """A track's parameters as local joint rotations on ``rig``.

    Args:
        rig: the rig (its ``pose_mean`` is added to the parameters, as smplx adds it).
        motion: the track's parameters.
        world_rotation: (3, 3) F applied to the whole motion (default identity: SMPL-X's frame).
    """
    world = np.eye(3) if world_rotation is None else np.asarray(world_rotation, dtype=np.float64)
    pose = motion.pose_axis_angle() + rig.pose_mean  # (T, J, 3)
    rotations = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(*pose.shape, 3)  # (T, J, 3, 3)
    rotations[:, 0] = world @ rotations[:, 0]
    root_position = (rig.joints_rest[0] + motion.cam_trans) @ world.T  # (T, 3)
    return RigMotion(motion.frames, rotations, root_position, motion.expr, world)
