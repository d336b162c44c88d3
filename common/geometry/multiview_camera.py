"""A calibrated camera of a multi-view rig: world -> camera -> (distorted) pixels, updated for crops and resizes.

Conventions (docs/conventions.md, multi-view cameras): x_cam = R @ x_world + t, OpenCV camera frame (x right,
y down, z forward), world units as given (millimetres for Human3.6M and CMU Panoptic), pixel centres at integer
coordinates, lens distortion Brown-Conrady with OpenCV's coefficient order (k1, k2, p1, p2, k3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.geometry.distortion import distort_points

__all__ = ["Camera", "projection_matrices"]


def _as_matrix(value, shape: tuple[int, ...], name: str, camera_name: str) -> np.ndarray:
    array = np.array(value, dtype=np.float64)  # a copy: the camera owns its arrays
    if array.shape != shape and array.size == int(np.prod(shape)) and name in ("t", "dist"):
        array = array.reshape(shape)  # t as (3, 1) and dist as (1, 5) are common on disk
    if array.shape != shape:
        raise ValueError(f"camera {camera_name!r}: {name} must have shape {shape}, got {np.shape(value)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"camera {camera_name!r}: {name} has non-finite values")
    array.flags.writeable = False
    return array


# eq=False: numpy fields have no single truth value, so cameras compare (and hash) by identity.
@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated camera.

    Attributes:
        R: (3, 3) float64 world -> camera rotation: x_cam = R @ x_world + t.
        t: (3,) float64 translation, world units (mm for Human3.6M; CMU converted to mm on load).
        K: (3, 3) float64 intrinsics, pixels (fx, skew, cx; 0, fy, cy; 0, 0, 1).
        dist: (5,) float64 Brown-Conrady (k1, k2, p1, p2, k3), OpenCV order; zeros = none.
        name: camera identifier (for error messages and bookkeeping).
    """

    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    dist: np.ndarray = None  # type: ignore[assignment]  # None -> zeros
    name: str = ""

    def __post_init__(self) -> None:
        name = str(self.name)
        rotation = _as_matrix(self.R, (3, 3), "R", name)
        # Catches a K or a camera-to-world matrix passed in R's place; calibration files store R in float32.
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4) or np.linalg.det(rotation) < 0:
            raise ValueError(f"camera {name!r}: R is not a rotation matrix (orthonormal, det +1): {rotation.tolist()}")
        intrinsics = _as_matrix(self.K, (3, 3), "K", name)
        if not np.allclose(intrinsics[2], (0.0, 0.0, 1.0)) or intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0:
            raise ValueError(
                f"camera {name!r}: K must have positive fx, fy and last row (0, 0, 1), got {intrinsics.tolist()}"
            )
        dist = np.zeros(5) if self.dist is None else self.dist
        object.__setattr__(self, "R", rotation)
        object.__setattr__(self, "t", _as_matrix(self.t, (3,), "t", name))
        object.__setattr__(self, "K", intrinsics)
        object.__setattr__(self, "dist", _as_matrix(dist, (5,), "dist", name))
        object.__setattr__(self, "name", name)

    def projection_matrix(self) -> np.ndarray:
        """(3, 4) float64 K @ [R | t]: homogeneous world points -> homogeneous pixels (no distortion)."""
        return self.K @ np.concatenate((self.R, self.t[:, None]), axis=1)

    def cropped(self, box_xyxy: Sequence[float]) -> Camera:
        """The camera of the crop starting at the box's top-left corner: principal point minus (x_min, y_min).

        Args:
            box_xyxy: (x_min, y_min, x_max, y_max) pixels of this camera's image; only the top-left is used
                (the crop's size does not change K).
        """
        box = np.asarray(box_xyxy, dtype=np.float64).reshape(-1)
        if box.shape != (4,) or not np.all(np.isfinite(box)):
            raise ValueError(f"camera {self.name!r}: box_xyxy must be 4 finite values, got {box_xyxy!r}")
        shift = np.array([[1.0, 0.0, -box[0]], [0.0, 1.0, -box[1]], [0.0, 0.0, 1.0]])
        return Camera(self.R, self.t, shift @ self.K, self.dist, self.name)

    def resized(self, from_hw: Sequence[int], to_hw: Sequence[int]) -> Camera:
        """The camera of the image scaled from ``from_hw`` to ``to_hw`` (H, W): fx, skew, cx times W'/W and
        fy, cy times H'/H.

        This is the pixel map u' = u W'/W, v' = v H'/H: what an affine warp with that scale matrix does
        (cv2.warpAffine, as our crops). cv2.resize instead maps u' = (u + 0.5) W'/W - 0.5, half a pixel of
        the output apart at most; upstream Learnable Triangulation ignores that difference too.
        """
        (from_h, from_w), (to_h, to_w) = (tuple(float(s) for s in hw) for hw in (from_hw, to_hw))
        if min(from_h, from_w, to_h, to_w) <= 0:
            raise ValueError(f"camera {self.name!r}: sizes must be positive, got {from_hw} -> {to_hw}")
        scale = np.diag([to_w / from_w, to_h / from_h, 1.0])
        return Camera(self.R, self.t, scale @ self.K, self.dist, self.name)

    def world_to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (..., 3) float64 camera-frame points, world units."""
        points = np.asarray(points_world, dtype=np.float64)
        if points.ndim < 1 or points.shape[-1] != 3:
            raise ValueError(f"camera {self.name!r}: points_world must have shape (..., 3), got {points.shape}")
        return points @ self.R.T + self.t

    def project(self, points_world: np.ndarray, distort: bool = True) -> np.ndarray:
        """(..., 3) world points -> (..., 2) float64 pixels (u, v), with the lens distortion unless
        ``distort=False``. Points at or behind the camera (z <= 0) give meaningless pixels: check
        ``world_to_camera(points)[..., 2] > 0`` where it matters."""
        points_cam = self.world_to_camera(points_world)
        with np.errstate(divide="ignore", invalid="ignore"):
            xy_normalized = points_cam[..., :2] / points_cam[..., 2:]
        if distort and np.any(self.dist):
            xy_normalized = distort_points(xy_normalized, self.dist)
        homogeneous = np.concatenate((xy_normalized, np.ones_like(xy_normalized[..., :1])), axis=-1)
        return (homogeneous @ self.K.T)[..., :2]


def projection_matrices(cameras: Sequence[Camera]) -> np.ndarray:
    """(V, 3, 4) float64 stacked ``Camera.projection_matrix()`` of V >= 1 cameras."""
    if len(cameras) == 0:
        raise ValueError("projection_matrices needs at least one camera")
    for index, camera in enumerate(cameras):
        if not isinstance(camera, Camera):
            raise ValueError(f"projection_matrices: item {index} is a {type(camera).__name__}, not a Camera")
    return np.stack([camera.projection_matrix() for camera in cameras])
