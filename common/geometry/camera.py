"""Pinhole camera: projection, back-projection and Hand4Whole's virtual-camera translation.

Camera frame is OpenCV (docs/conventions.md, camera): x right, y down, z forward, metres. Pixel coordinates
(u, v) have u along x and v along y. There is no lens distortion and no skew.
"""

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["camera_translation", "pixel_to_camera", "project_points"]

# Focal lengths and principal points: a tensor (..., 2) or (2,), or a plain pair such as config values.
PixelPair = Tensor | Sequence[float]


def _as_pair(value: PixelPair, like: Tensor) -> Tensor:
    """(..., 1, 2) tensor on the device and dtype of ``like``, broadcastable against (..., N, 2)."""
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).unsqueeze(-2)  # (..., 1, 2)


def project_points(points_cam: Tensor, focal: PixelPair, princpt: PixelPair, min_depth: float = 1e-4) -> Tensor:
    """Pinhole projection of camera-frame points to pixels.

    Args:
        points_cam: (..., N, 3) points in the camera frame, metres, z > 0 in front of the camera.
        focal: (..., 2) or (2,) focal lengths (fx, fy), pixels.
        princpt: (..., 2) or (2,) principal point (cx, cy), pixels.
        min_depth: depth clamp, metres.

    Returns:
        (..., N, 2) pixel coordinates (u, v).
    """
    # Clamp: a point at z = 0 (a degenerate prediction, or the origin of an untrained translation) would give
    # inf/NaN pixels and gradients. 0.1 mm matches Hand4Whole's `z + 1e-4` denominator, is a normal number in
    # float16, and is far below any real depth, so valid points are unaffected.
    depth = points_cam[..., 2:].clamp_min(min_depth)  # (..., N, 1)
    return points_cam[..., :2] / depth * _as_pair(focal, points_cam) + _as_pair(princpt, points_cam)


def pixel_to_camera(points_px_depth: Tensor, focal: PixelPair, princpt: PixelPair) -> Tensor:
    """Back-projection of pixels with known depth; the inverse of ``project_points`` for z > 0.

    Args:
        points_px_depth: (..., N, 3) pixel coordinates (u, v) and depth z in metres.
        focal: (..., 2) or (2,) focal lengths (fx, fy), pixels.
        princpt: (..., 2) or (2,) principal point (cx, cy), pixels.

    Returns:
        (..., N, 3) points in the camera frame, metres.
    """
    depth = points_px_depth[..., 2:]  # (..., N, 1)
    xy = (points_px_depth[..., :2] - _as_pair(princpt, points_px_depth)) / _as_pair(focal, points_px_depth) * depth
    return torch.cat((xy, depth), dim=-1)  # (..., N, 3)


def camera_translation(
    cam_param: Tensor, focal: PixelPair, input_shape_hw: Sequence[int], camera_3d_size: float
) -> Tensor:
    """Hand4Whole's camera translation from the network's 3 camera parameters.

    The depth scale k = sqrt(fx * fy * camera_3d_size**2 / (H * W)) is the depth at which a
    camera_3d_size x camera_3d_size metre square projects to (fx * s / k) x (fy * s / k) pixels, an area equal
    to the H x W input: a body of that size fills the crop. The network then picks t_z = k * sigmoid(gamma) in
    (0, k), so the person is never behind the camera, and t_xy directly in metres. With Hand4Whole's focal
    (5000, 5000), body input (256, 192) and camera_3d_size 2.5 m, k ~= 56.38 m.

    Args:
        cam_param: (..., 3) network output (t_x metres, t_y metres, gamma logit).
        focal: (fx, fy) or (..., 2) focal lengths of the virtual camera, pixels.
        input_shape_hw: (H, W) of the network input, pixels.
        camera_3d_size: side of the square, metres, that fills the input at depth k.

    Returns:
        (..., 3) camera translation (t_x, t_y, t_z), metres, camera frame.
    """
    focal_t = torch.as_tensor(focal, dtype=cam_param.dtype, device=cam_param.device)  # (..., 2)
    height, width = input_shape_hw
    k = torch.sqrt(focal_t[..., 0] * focal_t[..., 1] * (camera_3d_size**2 / (height * width)))  # (...)
    t_z = k * torch.sigmoid(cam_param[..., 2])  # (...)
    return torch.cat((cam_param[..., :2], t_z.unsqueeze(-1)), dim=-1)  # (..., 3)
