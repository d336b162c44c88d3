"""Target building on Hand4Whole's 137-joint set: relative 3D joints, heatmap coordinates, boxes, flips.

Spaces: ``_img`` original-image pixels; ``joint_img`` heatmap units of the (D, H, W) = (8, 8, 6) body
heatmap, x in [0, W), y in [0, H), z in [0, D); ``joint_cam`` metres in the camera frame, relative to the
pelvis (body), the wrists (hands) and the neck (face). Everything is vectorised over joints.

A horizontal flip is carried by the crop map ``img2crop`` (common/utils/augmentation.py) for image
coordinates; here it only swaps left/right labels (`JOINTS.flip_permutation`), negates camera x and
mirrors axis-angle rotations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.body_models.joint_sets import JOINTS, LWRIST_IDX, NECK_IDX, ORIG_JOINTS, ROOT_IDX, RWRIST_IDX

from .augmentation import apply_affine

__all__ = [
    "BOX_PARTS",
    "JointTargets",
    "TargetSpace",
    "box_targets",
    "depth_to_heatmap",
    "flip_pose",
    "in_plane_rotation",
    "mirror_sample_targets",
    "relative_joint_cam",
    "transform_joints",
]

BOX_PARTS = ("lhand", "rhand", "face")
_AA_MIRROR = np.array([1.0, -1.0, -1.0])  # common.geometry.mirror_axis_angle: negate y and z
JOINT_FLIP = JOINTS.flip_permutation()  # (137,)
POSE_FLIP = ORIG_JOINTS.flip_permutation()  # (53,)


def _reference_joints() -> np.ndarray:
    ref = np.full(len(JOINTS), ROOT_IDX, dtype=np.int64)
    ref[list(JOINTS.parts["lhand"])] = LWRIST_IDX
    ref[list(JOINTS.parts["rhand"])] = RWRIST_IDX
    ref[list(JOINTS.parts["face"])] = NECK_IDX
    return ref


JOINT_REFERENCE = _reference_joints()
"""(137,) the joint each supervision joint's ``joint_cam`` is relative to (pelvis, wrist or neck)."""


@dataclass(frozen=True)
class TargetSpace:
    """The geometry of the network's input and heatmaps (a view of ``ModelConfig``).

    Attributes:
        input_hw: (H, W) of the input crop, pixels (512, 384).
        hm_dhw: (D, H, W) of the body heatmap, voxels (8, 8, 6).
        body_3d_size, hand_3d_size, face_3d_size: metres spanned by the heatmap depth axis, per part.
    """

    input_hw: tuple[int, int] = (512, 384)
    hm_dhw: tuple[int, int, int] = (8, 8, 6)
    body_3d_size: float = 2.0
    hand_3d_size: float = 0.3
    face_3d_size: float = 0.3

    @classmethod
    def from_model_config(cls, model_cfg: Any) -> TargetSpace:
        """From ``cfg.model`` (main.config.ModelConfig)."""
        return cls(tuple(model_cfg.input_img_shape), tuple(model_cfg.output_hm_shape), model_cfg.body_3d_size,
                   model_cfg.hand_3d_size, model_cfg.face_3d_size)  # fmt: skip

    def joint_3d_size(self) -> np.ndarray:
        """(137,) metres spanned by the depth axis for each supervision joint."""
        size = np.full(len(JOINTS), self.body_3d_size)
        size[list(JOINTS.parts["hand"])] = self.hand_3d_size
        size[list(JOINTS.parts["face"])] = self.face_3d_size
        return size

    @property
    def aspect_ratio(self) -> float:
        """Width / height of the input crop (`common.utils.augmentation.process_bbox`'s aspect)."""
        return self.input_hw[1] / self.input_hw[0]

    def crop_to_heatmap(self) -> np.ndarray:
        """(2,) factors from crop pixels to heatmap units, (x, y)."""
        return np.array([self.hm_dhw[2] / self.input_hw[1], self.hm_dhw[1] / self.input_hw[0]])


def relative_joint_cam(joint_cam: np.ndarray) -> np.ndarray:
    """Hand4Whole's relative 3D joints: body - pelvis, hand - its wrist, face - neck.

    Args:
        joint_cam: (..., 137, 3) camera-frame joints, metres.

    Returns:
        (..., 137, 3) relative joints, metres.
    """
    return joint_cam - joint_cam[..., JOINT_REFERENCE, :]


def depth_to_heatmap(
    joint_cam_rel: np.ndarray, space: TargetSpace, depth_size_m: np.ndarray | float | None = None
) -> np.ndarray:
    """Relative depth to the heatmap's z axis: z_hm = (z / (S / 2) + 1) / 2 * D, S per part.

    Args:
        joint_cam_rel: (..., J, 3) relative joints, metres.
        space: supplies D and, for the 137 supervision joints, the per-part metric sizes S.
        depth_size_m: S for another joint set: one number or (J,) metres; None for the 137 joints' sizes.

    Returns:
        (..., J) z in heatmap units; [0, D) covers +-S/2 around the part's reference joint.
    """
    size = space.joint_3d_size() if depth_size_m is None else np.asarray(depth_size_m, dtype=np.float64)
    return (joint_cam_rel[..., 2] / (size / 2.0) + 1.0) / 2.0 * space.hm_dhw[0]


def in_plane_rotation(rot_deg: float) -> np.ndarray:
    """(3, 3) rotation about the camera z axis by -rot: what the crop's in-plane turn does to 3D points."""
    theta = np.deg2rad(-rot_deg)
    cos, sin = np.cos(theta), np.sin(theta)
    return np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class JointTargets:
    """Joint targets of one sample on a joint set of J joints.

    Attributes:
        joint_img: (J, 3) float32 heatmap units (x, y, z).
        joint_cam: (J, 3) float32 relative camera-frame metres, turned with the in-plane augmentation.
        joint_valid: (J, 1) float32 1 where labelled.
        joint_trunc: (J, 1) float32 1 where labelled and inside the heatmap volume.
    """

    joint_img: np.ndarray
    joint_cam: np.ndarray
    joint_valid: np.ndarray
    joint_trunc: np.ndarray


def transform_joints(
    joint_xy_img: np.ndarray,
    joint_cam_rel: np.ndarray,
    joint_valid: np.ndarray,
    img2crop: np.ndarray,
    rot_deg: float,
    flip: bool,
    space: TargetSpace,
    flip_perm: np.ndarray | None = None,
    depth_size_m: np.ndarray | float | None = None,
) -> JointTargets:
    """Augment and express joints in heatmap units (Hand4Whole's ``process_db_coord``, vectorised).

    Args:
        joint_xy_img: (J, 2) pixels in the original image (unflipped).
        joint_cam_rel: (J, 3) relative joints (`relative_joint_cam`), metres.
        joint_valid: (J,) label mask.
        img2crop: (2, 3) crop map, the flip included.
        rot_deg: the augmentation's in-plane rotation, degrees.
        flip: whether ``img2crop`` mirrors; left/right labels then swap and camera x is negated.
        space: network geometry.
        flip_perm: (J,) the left/right permutation of another joint set (`JointSet.flip_permutation`); None for
            the 137 supervision joints.
        depth_size_m: the depth extent of another joint set (see `depth_to_heatmap`); None for the 137 joints.

    Returns:
        The targets; joint_trunc is joint_valid times "x in [0, W), y in [0, H), z in [0, D)".
    """
    perm = JOINT_FLIP if flip_perm is None else flip_perm
    z_hm = depth_to_heatmap(joint_cam_rel, space, depth_size_m)  # (J,)
    xy = apply_affine(img2crop, np.asarray(joint_xy_img, dtype=np.float64)) * space.crop_to_heatmap()  # (J, 2)
    joint_img = np.concatenate([xy, z_hm[:, None]], axis=1)  # (J, 3)
    cam, valid = np.asarray(joint_cam_rel, dtype=np.float64), np.asarray(joint_valid, dtype=np.float64).reshape(-1)
    if flip:  # the image is mirrored by img2crop; here the labels follow it
        joint_img, valid = joint_img[perm], valid[perm]
        cam = cam[perm] * np.array([-1.0, 1.0, 1.0])
    cam = cam @ in_plane_rotation(rot_deg).T
    depth, height, width = space.hm_dhw
    inside = np.all((joint_img >= 0) & (joint_img < np.array([width, height, depth])), axis=1)
    return JointTargets(  # unlabelled joints are zeros, whatever the crop map made of their placeholders
        (joint_img * valid[:, None]).astype(np.float32),
        (cam * valid[:, None]).astype(np.float32),
        valid[:, None].astype(np.float32),
        (valid * inside)[:, None].astype(np.float32),
    )


def box_targets(
    boxes_xyxy_img: Mapping[str, np.ndarray | None], img2crop: np.ndarray, flip: bool, space: TargetSpace
) -> dict[str, np.ndarray]:
    """Hand and face boxes in heatmap units (Hand4Whole's ``process_hand_face_bbox``).

    The four corners go through the crop map and the axis-aligned box around them is kept (a rotated
    crop turns the box). With a flip the left- and right-hand boxes swap, as the hands' labels do.

    Args:
        boxes_xyxy_img: {'lhand', 'rhand', 'face'} -> (4,) xyxy in original-image pixels, or None if absent.
        img2crop: (2, 3) crop map, the flip included.
        flip: whether ``img2crop`` mirrors.
        space: network geometry.

    Returns:
        '{part}_bbox_center' (2,) and '{part}_bbox_size' (2,) float32 in heatmap units (x, y), and
        '{part}_bbox_valid' () float32; an absent box is zeros with valid 0.
    """
    out: dict[str, np.ndarray] = {}
    for part in BOX_PARTS:
        box = boxes_xyxy_img.get(part)
        center, size, valid = np.zeros(2, np.float32), np.zeros(2, np.float32), np.float32(0.0)
        if box is not None:
            x0, y0, x1, y1 = (float(v) for v in box)
            corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
            hm = apply_affine(img2crop, corners) * space.crop_to_heatmap()  # (4, 2)
            lo, hi = hm.min(0), hm.max(0)
            center, size, valid = ((lo + hi) / 2).astype(np.float32), (hi - lo).astype(np.float32), np.float32(1)
        out[f"{part}_bbox_center"], out[f"{part}_bbox_size"] = center, size
        out[f"{part}_bbox_valid"] = np.asarray(valid, dtype=np.float32)
    if flip:
        for suffix in ("center", "size", "valid"):
            out[f"lhand_bbox_{suffix}"], out[f"rhand_bbox_{suffix}"] = (
                out[f"rhand_bbox_{suffix}"], out[f"lhand_bbox_{suffix}"])  # fmt: skip
    return out


def flip_pose(pose: np.ndarray, pose_valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror SMPL-X pose parameters: swap the 53 rotation joints' left/right pairs, negate axis-angle y and z.

    Args:
        pose: (53, 3) axis-angle in `ORIG_JOINTS` order, radians.
        pose_valid: (53,) mask.

    Returns:
        The mirrored (53, 3) pose and the (53,) mask, swapped the same way. Applying it twice is the identity.
    """
    return pose[POSE_FLIP] * _AA_MIRROR, pose_valid[POSE_FLIP]


def mirror_sample_targets(
    targets: Mapping[str, np.ndarray], meta_info: Mapping[str, np.ndarray], space: TargetSpace
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Mirror a sample's targets about the vertical centre line of the crop (x_hm -> W - x_hm).

    For a sample without in-plane rotation this equals cropping the horizontally flipped image; it is
    an involution, which the tests use, and serves flip test-time augmentation. Keys that are not
    sample-contract targets pass through unchanged.

    Args:
        targets: the sample's targets (data/dataset.py), numpy.
        meta_info: the sample's meta_info, numpy.
        space: network geometry (W of the heatmap).

    Returns:
        New (targets, meta_info) dicts.
    """
    t, m = dict(targets), dict(meta_info)
    width = space.hm_dhw[2]
    for prefix in ("", "smplx_"):
        valid = m[f"{prefix}joint_valid"]  # (137, 1); unlabelled joints stay zeros
        mirrored = t[f"{prefix}joint_img"] * np.array([-1.0, 1.0, 1.0]) + np.array([width, 0.0, 0.0])
        t[f"{prefix}joint_img"] = (mirrored * valid)[JOINT_FLIP].astype(np.float32)
        t[f"{prefix}joint_cam"] = (t[f"{prefix}joint_cam"] * np.array([-1.0, 1.0, 1.0]))[JOINT_FLIP].astype(np.float32)
        for key in ("joint_valid", "joint_trunc"):
            m[f"{prefix}{key}"] = m[f"{prefix}{key}"][JOINT_FLIP]
    pose, pose_valid = flip_pose(t["smplx_pose"].reshape(-1, 3), m["smplx_pose_valid"].reshape(-1, 3)[:, 0])
    t["smplx_pose"] = pose.reshape(-1).astype(np.float32)
    m["smplx_pose_valid"] = np.repeat(pose_valid, 3).astype(np.float32)
    for part in BOX_PARTS:
        mirrored = t[f"{part}_bbox_center"] * np.array([-1.0, 1.0]) + np.array([width, 0.0])
        t[f"{part}_bbox_center"] = (mirrored * m[f"{part}_bbox_valid"]).astype(np.float32)
    for suffix in ("center", "size"):
        t[f"lhand_bbox_{suffix}"], t[f"rhand_bbox_{suffix}"] = t[f"rhand_bbox_{suffix}"], t[f"lhand_bbox_{suffix}"]
    m["lhand_bbox_valid"], m["rhand_bbox_valid"] = m["rhand_bbox_valid"], m["lhand_bbox_valid"]
    return t, m
