"""SMPL-X pseudo-ground truth through the body-model layer, and its targets (Hand4Whole's
``process_human_model_output``, 'smplx' branch).

Parameters are axis-angle radians; the mesh and joints come out of the layer in metres and are
brought into the dataset camera's frame (OpenCV axes). A part without parameters (no hand pose, no
face) is posed with zeros and its rotations and joints are marked invalid, never branched on later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from common.body_models.joint_sets import JOINT_IDX, JOINTS, ORIG_JOINTS, ROOT_IDX, JointSet
from common.body_models.layers import NUM_BETAS, NUM_EXPRESSION, BodyModels
from common.geometry import axis_angle_to_rotmat, rotmat_to_axis_angle

from .augmentation import AugParams
from .targets import TargetSpace, flip_pose, in_plane_rotation, relative_joint_cam, transform_joints

__all__ = ["CameraParams", "SMPLXParams", "SMPLXPseudoGT", "empty_smplx_targets", "smplx_in_camera", "smplx_targets"]

_SHAPE_LIMIT = 3.0  # Hand4Whole resets betas beyond +-3 (fits that left the shape space) to the mean shape


@dataclass
class SMPLXParams:
    """One person's SMPL-X parameters as a dataset stores them (axis-angle radians, metres).

    Attributes:
        root_pose: (3,) global orientation. body_pose: (63,) 21 body joints. shape: (10,) betas.
        trans: (3,) translation, metres (camera frame unless the camera has R, t).
        lhand_pose, rhand_pose: (45,) 15 finger joints each, or None when not annotated.
        jaw_pose: (3,) and expr: (10,) expression, or None when the face is not annotated (both or neither).
        gender: 'neutral', 'male' or 'female': which layer reproduces the annotated mesh.
    """

    root_pose: np.ndarray
    body_pose: np.ndarray
    shape: np.ndarray
    trans: np.ndarray
    lhand_pose: np.ndarray | None = None
    rhand_pose: np.ndarray | None = None
    jaw_pose: np.ndarray | None = None
    expr: np.ndarray | None = None
    gender: str = "neutral"


@dataclass
class CameraParams:
    """A dataset camera: pinhole intrinsics in the pixels of the image the record points to, optional extrinsics.

    Attributes:
        focal: (2,) (fx, fy) pixels. princpt: (2,) (cx, cy) pixels.
        R: (3, 3) rotation and t: (3,) translation in metres from the parameters' frame to the camera
            frame, or None when the parameters are already in the camera frame.
    """

    focal: np.ndarray
    princpt: np.ndarray
    R: np.ndarray | None = None
    t: np.ndarray | None = None

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """(N, 3) camera-frame metres -> (N, 2) pixels (depth clamped at 0.1 mm like project_points)."""
        depth = np.maximum(points_cam[:, 2:], 1e-4)
        return points_cam[:, :2] / depth * np.asarray(self.focal) + np.asarray(self.princpt)


@dataclass
class SMPLXPseudoGT:
    """The SMPL-X layer's output for one person, in the dataset camera frame, before augmentation.

    Attributes:
        joint_cam: (137, 3) float64 supervision joints, metres. mesh_cam: (V, 3) float32 vertices, metres.
        pose: (53, 3) float64 axis-angle with the camera rotation folded into the root. pose_valid: (53,).
        joint_valid: (137,). shape: (10,) and expr: (10,) float64. expr_valid: 1.0 or 0.0.
    """

    joint_cam: np.ndarray
    mesh_cam: np.ndarray
    pose: np.ndarray
    pose_valid: np.ndarray
    joint_valid: np.ndarray
    shape: np.ndarray
    expr: np.ndarray
    expr_valid: float


def _rotate_axis_angle(rotation: np.ndarray, axis_angle: np.ndarray) -> np.ndarray:
    """(3,) axis-angle of rotation @ R(axis_angle), through roma in float64."""
    rotmat = torch.as_tensor(rotation, dtype=torch.float64) @ axis_angle_to_rotmat(
        torch.as_tensor(axis_angle, dtype=torch.float64))  # fmt: skip
    return rotmat_to_axis_angle(rotmat).numpy()


def _part(value: np.ndarray | None, size: int) -> tuple[np.ndarray, bool]:
    if value is None:
        return np.zeros(size), False
    return np.asarray(value, dtype=np.float64).reshape(size), True


def smplx_in_camera(params: SMPLXParams, cam: CameraParams, body_models: BodyModels) -> SMPLXPseudoGT:
    """Pose the SMPL-X layer with a dataset's parameters and bring it into the camera frame.

    With extrinsics, R is folded into the root pose and the mesh is then moved by
    X <- X - pelvis + R pelvis + t: the layer rotates about the pelvis, not the origin, so this is
    exactly R X_world + t (Hand4Whole's convention). A missing t counts as zero.

    Args:
        params: the person's parameters.
        cam: the camera (only R and t are used here).
        body_models: supplies the gendered layer.

    Returns:
        The pseudo-GT; rotations and joints of unannotated parts are marked invalid.
    """
    pose_valid, joint_valid = np.ones(len(ORIG_JOINTS)), np.ones(len(JOINTS))
    face = params.jaw_pose is not None and params.expr is not None  # Hand4Whole: jaw and expression together
    parts = {}
    for name, value, size, part in (
        ("lhand", params.lhand_pose, 45, "lhand"),
        ("rhand", params.rhand_pose, 45, "rhand"),
        ("jaw", params.jaw_pose if face else None, 3, "face"),
        ("expr", params.expr if face else None, NUM_EXPRESSION, "face"),
    ):
        parts[name], present = _part(value, size)
        if not present:  # posed with zeros, and nothing of the part is supervised
            pose_valid[list(ORIG_JOINTS.parts[part])] = 0.0
            joint_valid[list(JOINTS.parts[part])] = 0.0
    root_pose = np.asarray(params.root_pose, dtype=np.float64).reshape(3)
    if cam.R is not None:
        root_pose = _rotate_axis_angle(np.asarray(cam.R, dtype=np.float64).reshape(3, 3), root_pose)
    shape = np.asarray(params.shape, dtype=np.float64).reshape(-1)[:NUM_BETAS]
    inputs = {
        "global_orient": root_pose, "body_pose": params.body_pose, "left_hand_pose": parts["lhand"],
        "right_hand_pose": parts["rhand"], "jaw_pose": parts["jaw"], "leye_pose": np.zeros(3),
        "reye_pose": np.zeros(3), "betas": shape, "expression": parts["expr"], "transl": params.trans,
    }  # fmt: skip
    with torch.no_grad():
        output = body_models.smplx(params.gender)(
            **{k: torch.as_tensor(np.asarray(v, dtype=np.float32).reshape(1, -1)) for k, v in inputs.items()}
        )
    mesh = output.vertices[0].numpy().astype(np.float64)  # (V, 3)
    joints = output.joints[0].numpy().astype(np.float64)[JOINT_IDX]  # (137, 3)
    if cam.R is not None:
        rotation = np.asarray(cam.R, dtype=np.float64).reshape(3, 3)
        t = np.zeros(3) if cam.t is None else np.asarray(cam.t, dtype=np.float64).reshape(3)
        pelvis = joints[ROOT_IDX]
        shift = rotation @ pelvis + t - pelvis
        mesh, joints = mesh + shift, joints + shift
    body_pose = np.asarray(params.body_pose, np.float64).reshape(63)
    pose = np.concatenate([root_pose, body_pose, parts["lhand"], parts["rhand"], parts["jaw"]]).reshape(-1, 3)
    return SMPLXPseudoGT(
        joints, mesh.astype(np.float32), pose, pose_valid, joint_valid, shape, parts["expr"], float(face)
    )


def _name_mask(names: Iterable[str], joint_set: JointSet) -> np.ndarray:
    """(J,) ones with zeros at the named joints; KeyError for a name outside the set."""
    mask = np.ones(len(joint_set))
    mask[joint_set.indices(list(names))] = 0.0
    return mask


def smplx_targets(
    gt: SMPLXPseudoGT,
    cam: CameraParams,
    img2crop: np.ndarray,
    aug: AugParams,
    space: TargetSpace,
    invalid_rotations: Iterable[str] = (),
    invalid_joints: Iterable[str] = (),
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The SMPL-X targets and masks of one augmented sample.

    Args:
        gt: the pseudo-GT from `smplx_in_camera`.
        cam: intrinsics for projecting the joints into the original image.
        img2crop: (2, 3) crop map, the flip included.
        aug: the sample's augmentation (rotation is folded into the root pose and joint_cam; flip mirrors).
        space: network geometry.
        invalid_rotations: `ORIG_JOINTS` names whose rotations the dataset does not trust (NeuralAnnot's
            ankles and wrists); masked before the flip, so the names are the subject's joints.
        invalid_joints: `JOINTS` names to mask likewise (e.g. NeuralAnnot's foot keypoints).

    Returns:
        (targets, meta_info) with the sample contract's smplx_* keys (data/dataset.py), float32.
    """
    pose_valid = gt.pose_valid * _name_mask(invalid_rotations, ORIG_JOINTS)
    joint_valid = gt.joint_valid * _name_mask(invalid_joints, JOINTS)
    joints = transform_joints(cam.project(gt.joint_cam), relative_joint_cam(gt.joint_cam), joint_valid, img2crop,
                              aug.rot, aug.flip, space)  # fmt: skip
    pose = gt.pose
    if aug.flip:
        pose, pose_valid = flip_pose(pose, pose_valid)
    pose = pose.copy()
    pose[0] = _rotate_axis_angle(in_plane_rotation(aug.rot), pose[0])  # the crop's turn, about the camera z axis
    shape = gt.shape if np.all(np.abs(gt.shape) <= _SHAPE_LIMIT) else np.zeros_like(gt.shape)
    targets = {
        "smplx_joint_img": joints.joint_img, "smplx_joint_cam": joints.joint_cam,
        "smplx_pose": pose.reshape(-1).astype(np.float32), "smplx_shape": shape.astype(np.float32),
        "smplx_expr": gt.expr.astype(np.float32),
    }  # fmt: skip
    meta = {
        "smplx_joint_valid": joints.joint_valid, "smplx_joint_trunc": joints.joint_trunc,
        "smplx_pose_valid": np.repeat(pose_valid, 3).astype(np.float32),
        "smplx_shape_valid": np.asarray(1.0, np.float32), "smplx_expr_valid": np.asarray(gt.expr_valid, np.float32),
    }  # fmt: skip
    return targets, meta


def empty_smplx_targets() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Zeros with every mask 0, for a sample without SMPL-X parameters."""
    joints, rotations = len(JOINTS), 3 * len(ORIG_JOINTS)
    shapes = {"smplx_joint_img": (joints, 3), "smplx_joint_cam": (joints, 3), "smplx_pose": (rotations,),
              "smplx_shape": (NUM_BETAS,), "smplx_expr": (NUM_EXPRESSION,)}  # fmt: skip
    masks = {"smplx_joint_valid": (joints, 1), "smplx_joint_trunc": (joints, 1), "smplx_pose_valid": (rotations,),
             "smplx_shape_valid": (), "smplx_expr_valid": ()}  # fmt: skip
    return ({k: np.zeros(v, np.float32) for k, v in shapes.items()},
            {k: np.zeros(v, np.float32) for k, v in masks.items()})  # fmt: skip
