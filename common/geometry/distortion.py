"""Brown-Conrady lens distortion (OpenCV's 5-coefficient model) on normalised points and on pixels.

Coefficients are in OpenCV's order ``dist = (k1, k2, p1, p2, k3)``: radial k1, k2, k3 and tangential p1, p2. A
normalised point (x, y) = (X / Z, Y / Z) of the camera frame is distorted to

    r2 = x^2 + y^2,  radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3
    x_d = x radial + 2 p1 x y + p2 (r2 + 2 x^2)
    y_d = y radial + p1 (r2 + 2 y^2) + 2 p2 x y

and then to pixels by K. Undistortion inverts this by Newton's method in float64. All functions take numpy
arrays with any leading dimensions and return float64.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["distort_pixels", "distort_points", "undistort_pixels", "undistort_points", "undistortion_maps"]


def _coefficients(dist: np.ndarray) -> np.ndarray:
    """(5,) float64 (k1, k2, p1, p2, k3) from any array of 5 values (a (1, 5) OpenCV array is accepted)."""
    coefficients = np.asarray(dist, dtype=np.float64).reshape(-1)
    if coefficients.shape != (5,):
        raise ValueError(f"distortion coefficients must be 5 values (k1, k2, p1, p2, k3), got shape {np.shape(dist)}")
    return coefficients


def _points(points: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim < 1 or array.shape[-1] != 2:
        raise ValueError(f"{what} must have shape (..., 2), got {array.shape}")
    return array


def _intrinsics(K: np.ndarray) -> np.ndarray:
    matrix = np.asarray(K, dtype=np.float64)
    if matrix.shape != (3, 3):
        raise ValueError(f"K must have shape (3, 3), got {matrix.shape}")
    return matrix


def _distort_with_jacobian(xy: np.ndarray, dist: np.ndarray, with_jacobian: bool):
    """Distorted (..., 2) points and, optionally, the (..., 2, 2) Jacobian d(x_d, y_d) / d(x, y)."""
    k1, k2, p1, p2, k3 = dist
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    x_d = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    y_d = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    distorted = np.stack((x_d, y_d), axis=-1)
    if not with_jacobian:
        return distorted, None
    d_radial_d_r2 = k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2)
    dxd_dx = radial + 2.0 * x * x * d_radial_d_r2 + 2.0 * p1 * y + 6.0 * p2 * x
    dyd_dy = radial + 2.0 * y * y * d_radial_d_r2 + 6.0 * p1 * y + 2.0 * p2 * x
    cross = 2.0 * x * y * d_radial_d_r2 + 2.0 * p1 * x + 2.0 * p2 * y  # d x_d / dy = d y_d / dx
    jacobian = np.stack((np.stack((dxd_dx, cross), -1), np.stack((cross, dyd_dy), -1)), -2)
    return distorted, jacobian


def distort_points(xy_normalized: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Apply lens distortion to normalised camera coordinates.

    Args:
        xy_normalized: (..., 2) undistorted normalised coordinates (X / Z, Y / Z), unitless.
        dist: (5,) (k1, k2, p1, p2, k3), OpenCV order.

    Returns:
        (..., 2) float64 distorted normalised coordinates.
    """
    distorted, _ = _distort_with_jacobian(_points(xy_normalized, "xy_normalized"), _coefficients(dist), False)
    return distorted


def undistort_points(
    xy_distorted: np.ndarray, dist: np.ndarray, iterations: int = 20, tolerance: float = 1e-15
) -> np.ndarray:
    """Invert ``distort_points`` by Newton's method (float64), starting from the distorted point.

    Newton converges in 3 to 5 steps inside the lens's monotonic region (OpenCV's fixed-point iteration needs
    many more for strong distortion). Beyond the radius where the radial polynomial folds back the inverse is
    not unique and the result is the root nearest the start.

    Args:
        xy_distorted: (..., 2) distorted normalised coordinates, unitless.
        dist: (5,) (k1, k2, p1, p2, k3), OpenCV order.
        iterations: maximum Newton steps.
        tolerance: stop once every point's residual is below this (normalised units).

    Returns:
        (..., 2) float64 undistorted normalised coordinates.
    """
    target = _points(xy_distorted, "xy_distorted")
    coefficients = _coefficients(dist)
    if not np.any(coefficients):
        return target.copy()
    estimate = target.copy()
    for _ in range(int(iterations)):
        distorted, jacobian = _distort_with_jacobian(estimate, coefficients, True)
        residual = distorted - target  # (..., 2)
        if not np.any(np.abs(residual) > tolerance):
            break
        a, b, d = jacobian[..., 0, 0], jacobian[..., 0, 1], jacobian[..., 1, 1]
        determinant = a * d - b * b
        # A vanishing Jacobian (the fold of the radial polynomial) would send the step to infinity: take a
        # fixed-point step there instead (subtract the residual), which cannot blow up.
        safe = np.abs(determinant) > 1e-12
        determinant = np.where(safe, determinant, 1.0)
        step_x = (d * residual[..., 0] - b * residual[..., 1]) / determinant
        step_y = (a * residual[..., 1] - b * residual[..., 0]) / determinant
        step = np.where(safe[..., None], np.stack((step_x, step_y), -1), residual)
        estimate = estimate - step
    return estimate


def _to_normalized(points_px: np.ndarray, K: np.ndarray) -> np.ndarray:
    homogeneous = np.concatenate((points_px, np.ones_like(points_px[..., :1])), axis=-1)  # (..., 3)
    camera = homogeneous @ np.linalg.inv(K).T
    return camera[..., :2] / camera[..., 2:]


def _to_pixels(xy_normalized: np.ndarray, K: np.ndarray) -> np.ndarray:
    homogeneous = np.concatenate((xy_normalized, np.ones_like(xy_normalized[..., :1])), axis=-1)  # (..., 3)
    pixels = homogeneous @ K.T
    return pixels[..., :2] / pixels[..., 2:]


def distort_pixels(points_px: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Pixels of an ideal (undistorted) pinhole image -> pixels of the distorted image, same K.

    Args:
        points_px: (..., 2) pixel coordinates (u, v), pixel centres at integers.
        K: (3, 3) intrinsics, pixels.
        dist: (5,) (k1, k2, p1, p2, k3).

    Returns:
        (..., 2) float64 distorted pixel coordinates.
    """
    matrix = _intrinsics(K)
    return _to_pixels(distort_points(_to_normalized(_points(points_px, "points_px"), matrix), dist), matrix)


def undistort_pixels(points_px: np.ndarray, K: np.ndarray, dist: np.ndarray, iterations: int = 20) -> np.ndarray:
    """Pixels of the distorted image -> pixels of the ideal pinhole image with the same K (as
    ``cv2.undistortPoints(points, K, dist, P=K)``).

    Args:
        points_px: (..., 2) distorted pixel coordinates (u, v).
        K: (3, 3) intrinsics, pixels.
        dist: (5,) (k1, k2, p1, p2, k3).
        iterations: maximum Newton steps (see ``undistort_points``).

    Returns:
        (..., 2) float64 undistorted pixel coordinates.
    """
    matrix = _intrinsics(K)
    normalized = undistort_points(_to_normalized(_points(points_px, "points_px"), matrix), dist, iterations)
    return _to_pixels(normalized, matrix)


@functools.lru_cache(maxsize=64)
def _cached_maps(K_key: tuple, dist_key: tuple, image_hw: tuple) -> tuple[np.ndarray, np.ndarray]:
    height, width = image_hw
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))  # (H, W) each
    K = np.asarray(K_key, dtype=np.float64).reshape(3, 3)
    source = distort_pixels(np.stack((u, v), axis=-1), K, np.asarray(dist_key))  # (H, W, 2)
    map_x = np.ascontiguousarray(source[..., 0], dtype=np.float32)
    map_y = np.ascontiguousarray(source[..., 1], dtype=np.float32)
    # Shared between callers through the cache: read-only so that no caller can corrupt another's maps.
    map_x.flags.writeable = False
    map_y.flags.writeable = False
    return map_x, map_y


def undistortion_maps(K: np.ndarray, dist: np.ndarray, image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Remap tables that undistort an image in place of its camera: ``cv2.remap(image, map_x, map_y, ...)``.

    For every pixel (u, v) of the undistorted output (same K, same size), the maps hold the pixel of the
    distorted input to sample, as ``cv2.initUndistortRectifyMap(K, dist, None, K, (W, H), cv2.CV_32FC1)``.
    Results are cached per (K, dist, size), since every frame of a camera shares them; the returned arrays are
    read-only.

    Args:
        K: (3, 3) intrinsics, pixels.
        dist: (5,) (k1, k2, p1, p2, k3).
        image_hw: (H, W) of the image, pixels.

    Returns:
        map_x, map_y: (H, W) float32 source pixel coordinates.
    """
    matrix = _intrinsics(K)
    coefficients = _coefficients(dist)
    height, width = (int(s) for s in image_hw)
    if height <= 0 or width <= 0:
        raise ValueError(f"image_hw must be two positive sizes, got {image_hw}")
    return _cached_maps(tuple(matrix.ravel().tolist()), tuple(coefficients.tolist()), (height, width))
