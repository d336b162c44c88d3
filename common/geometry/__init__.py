"""Pure geometry functions: rotations, camera, soft-argmax, Procrustes alignment (docs/conventions.md)."""

from common.geometry.alignment import SimilarityTransform, procrustes_transform, rigid_align, similarity_procrustes
from common.geometry.boxes import box_center_size, xywh_to_xyxy, xyxy_to_xywh
from common.geometry.camera import camera_translation, pixel_to_camera, project_points
from common.geometry.heatmap import soft_argmax_2d, soft_argmax_3d
from common.geometry.rotation import (
    axis_angle_to_rot6d,
    axis_angle_to_rotmat,
    mirror_axis_angle,
    rot6d_to_axis_angle,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_rot6d,
)

__all__ = [
    "SimilarityTransform",
    "axis_angle_to_rot6d",
    "box_center_size",
    "axis_angle_to_rotmat",
    "camera_translation",
    "mirror_axis_angle",
    "pixel_to_camera",
    "procrustes_transform",
    "project_points",
    "rigid_align",
    "rot6d_to_axis_angle",
    "rot6d_to_rotmat",
    "rotmat_to_axis_angle",
    "rotmat_to_rot6d",
    "similarity_procrustes",
    "soft_argmax_2d",
    "soft_argmax_3d",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]
