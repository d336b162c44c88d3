"""The supervision joints of Pose2Pose's part models, read off the SMPL / MANO / FLAME layers' outputs.

One definition serves the part models (main/pose2pose_model.py), which compute them from their predictions, and the
part targets (data/targets/pose2pose.py), which compute them from the datasets' parameters: predicted and target
joints are then the same points by construction. Each set is defined by name; the layer gives some joints and the
rest are mesh vertices.

- body: Pose2Pose's 33 joints (`POSE2POSE_BODY_JOINTS`) from smplx.SMPL's 45 output joints and 8 MCP vertices;
- hand: the 21-joint hand (`joint_sets.HAND_21`) from MANO's 16 joints and its 5 fingertip vertices;
- face: FLAME's 73 output joints as they are (`joint_sets.FLAME_OUTPUT`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS
from torch import Tensor

from common.body_models import joint_sets
from common.body_models.joint_sets import JointSet

__all__ = [
    "PART_JOINTS",
    "POSE2POSE_BODY_JOINTS",
    "POSE2POSE_BODY_POS_NAMES",
    "PartJoints",
    "SMPL_MCP_VERTICES",
    "SMPL_OUTPUT",
    "gather_part_joints",
]

SMPL_OUTPUT = JointSet.from_names((*joint_sets.SMPL_JOINTS.names, *joint_sets.SMPLX_VERTEX_KEYPOINTS))
"""The 45 joints of smplx.SMPL's output: 24 skeleton joints, then smplx's 21 vertex keypoints (SMPL-H ids)."""
SMPL_MCP_VERTICES: dict[str, int] = {
    "L_Index_1": 2274, "L_Middle_1": 2270, "L_Ring_1": 2293, "L_Pinky_1": 2173,
    "R_Index_1": 5595, "R_Middle_1": 5675, "R_Ring_1": 5636, "R_Pinky_1": 5655,
}  # fmt: skip
"""SMPL vertices Pose2Pose takes as the MCP joints, which SMPL has no joints for (facts of SMPL's topology; on the
synthetic stand-in they are mere mesh points, as only smplx's keypoint vertices are placed anatomically there)."""
POSE2POSE_BODY_POS_NAMES: tuple[str, ...] = joint_sets.POS_JOINTS.names[: len(joint_sets.POS_JOINTS.parts["body"])]
"""The 25 body joints of the body PositionNet (Hand4Whole's body heatmap joints)."""
POSE2POSE_BODY_JOINTS = JointSet.from_names(
    (*POSE2POSE_BODY_POS_NAMES[:14], *SMPL_MCP_VERTICES, "Nose", "L_Eye", "R_Eye", "L_Ear", "R_Ear",
     "L_Big_toe", "L_Small_toe", "L_Heel", "R_Big_toe", "R_Small_toe", "R_Heel"),
)  # fmt: skip
"""Pose2Pose's 33 body supervision joints in its order: 14 body joints, 8 MCP, nose, eyes, ears, 6 foot joints."""
_MANO_TIP_VERTICES: dict[str, int] = {f"{finger.capitalize()}_4": v for finger, v in SMPLX_VERTEX_IDS["mano"].items()}


@dataclass(frozen=True)
class PartJoints:
    """How one part's supervision joints come out of its layer.

    Attributes:
        joint_set: the supervision joints, by name.
        root: the joint that `joint_cam` is relative to.
        vertex_ids: (N,) mesh vertices appended to the layer's joints before gathering.
        gather: (K,) indices into [layer joints, those vertices], in `joint_set` order.
    """

    joint_set: JointSet
    root: str
    vertex_ids: np.ndarray
    gather: np.ndarray

    @classmethod
    def build(
        cls, joint_set: JointSet, root: str, layer_joints: tuple[str, ...], vertices: dict[str, int]
    ) -> PartJoints:
        sources = (*layer_joints, *vertices)
        gather = np.array([sources.index(name) for name in joint_set.names], dtype=np.int64)
        return cls(joint_set, root, np.array(list(vertices.values()), dtype=np.int64), gather)

    @property
    def root_idx(self) -> int:
        return self.joint_set.index(self.root)


PART_JOINTS: dict[str, PartJoints] = {
    "body": PartJoints.build(POSE2POSE_BODY_JOINTS, "Pelvis", SMPL_OUTPUT.names, SMPL_MCP_VERTICES),
    "hand": PartJoints.build(joint_sets.HAND_21, "Wrist", joint_sets.MANO_SKELETON.names, _MANO_TIP_VERTICES),
    "face": PartJoints.build(
        joint_sets.FLAME_OUTPUT, joint_sets.FLAME_OUTPUT.names[0], joint_sets.FLAME_OUTPUT.names, {}
    ),
}
"""Per part ('body', 'hand', 'face'): its supervision joints and how to gather them. The face's root is FLAME's
global joint, at the neck."""


def gather_part_joints(joints: Tensor, vertices: Tensor, vertex_ids: Tensor, gather: Tensor) -> Tensor:
    """The supervision joints from a layer's output.

    Args:
        joints: (B, J, 3) the layer's output joints, metres.
        vertices: (B, V, 3) its mesh, metres.
        vertex_ids: (N,) long, `PartJoints.vertex_ids` on the tensors' device.
        gather: (K,) long, `PartJoints.gather` on the tensors' device.

    Returns:
        (B, K, 3) metres.
    """
    return torch.cat((joints, vertices[:, vertex_ids]), dim=1)[:, gather]
