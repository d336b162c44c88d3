"""Multi-view cameras, lens distortion and triangulation against OpenCV, scipy and per-sample references."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from common.geometry.distortion import (
    distort_pixels,
    distort_points,
    undistort_pixels,
    undistort_points,
    undistortion_maps,
)
from common.geometry.multiview_camera import Camera, projection_matrices
from common.geometry.triangulation import reprojection_errors, triangulate_dlt, triangulate_ransac

# Human3.6M-like lens (camera 54138969 has k1 ~ -0.21, k2 ~ 0.25) and a stronger one.
MILD_DIST = np.array([-0.207, 0.247, -0.00142, -0.000976, -0.00309])
STRONG_DIST = np.array([-0.35, 0.12, 0.004, -0.003, -0.02])


def look_at_camera(eye_world: np.ndarray, rng: np.random.Generator, dist=None, name: str = "") -> Camera:
    """A camera at ``eye_world`` (mm) looking at the world origin, z up in the world, random intrinsics."""
    forward = -eye_world / np.linalg.norm(eye_world)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack((right, down, forward))  # rows: camera axes in world coordinates
    K = np.array(
        [[rng.uniform(900, 1200), 0.0, rng.uniform(480, 520)], [0.0, rng.uniform(900, 1200), 500.0], [0, 0, 1]]
    )
    return Camera(R=R, t=-R @ eye_world, K=K, dist=np.zeros(5) if dist is None else dist, name=name)


def random_rig(views: int, rng: np.random.Generator) -> list[Camera]:
    cameras = []
    for index in range(views):
        azimuth = 2 * np.pi * index / views + rng.uniform(-0.3, 0.3)
        distance = rng.uniform(4000, 6000)
        eye = np.array([distance * np.cos(azimuth), distance * np.sin(azimuth), rng.uniform(300, 2500)])
        cameras.append(look_at_camera(eye, rng, name=f"cam{index}"))
    return cameras


def random_camera_with_distortion(rng: np.random.Generator, dist: np.ndarray) -> Camera:
    R = Rotation.random(random_state=rng.integers(1 << 31)).as_matrix()
    K = np.array([[1145.0, 0.0, 512.5], [0.0, 1143.7, 515.4], [0.0, 0.0, 1.0]])
    return Camera(R=R, t=rng.uniform(-500, 500, 3) + np.array([0, 0, 0.0]), K=K, dist=dist, name="lens")


def points_in_front(camera: Camera, count: int, rng: np.random.Generator, half_fov: float = 0.45) -> np.ndarray:
    """World points whose normalised camera coordinates lie within +-half_fov, depth 2 to 6 m."""
    depth = rng.uniform(2000, 6000, count)
    xy = rng.uniform(-half_fov, half_fov, (count, 2)) * depth[:, None]
    points_cam = np.concatenate((xy, depth[:, None]), axis=1)
    return (points_cam - camera.t) @ camera.R  # R^T (x_cam - t)


# --------------------------------------------------------------------------------------------- camera


def test_project_matches_cv2_project_points_with_and_without_distortion() -> None:
    rng = np.random.default_rng(0)
    camera = random_camera_with_distortion(rng, MILD_DIST)
    points = points_in_front(camera, 50, rng)
    rvec, _ = cv2.Rodrigues(camera.R)
    expected, _ = cv2.projectPoints(points[:, None], rvec, camera.t, camera.K, camera.dist)
    np.testing.assert_allclose(camera.project(points), expected[:, 0], atol=1e-7)
    expected_pinhole, _ = cv2.projectPoints(points[:, None], rvec, camera.t, camera.K, np.zeros(5))
    np.testing.assert_allclose(camera.project(points, distort=False), expected_pinhole[:, 0], atol=1e-7)
    # The projection matrix is K [R | t]: homogeneous projection equals the pinhole projection.
    homogeneous = np.concatenate((points, np.ones((50, 1))), axis=1) @ camera.projection_matrix().T
    np.testing.assert_allclose(homogeneous[:, :2] / homogeneous[:, 2:], expected_pinhole[:, 0], atol=1e-7)
    np.testing.assert_allclose(camera.world_to_camera(points), points @ camera.R.T + camera.t)


def test_projection_matrices_stack_cameras_in_order() -> None:
    cameras = random_rig(3, np.random.default_rng(1))
    stacked = projection_matrices(cameras)
    assert stacked.shape == (3, 3, 4) and stacked.dtype == np.float64
    for index, camera in enumerate(cameras):
        np.testing.assert_array_equal(stacked[index], camera.K @ np.column_stack((camera.R, camera.t)))
    with pytest.raises(ValueError, match="at least one"):
        projection_matrices([])
    with pytest.raises(ValueError, match="not a Camera"):
        projection_matrices([cameras[0], np.eye(3)])


def test_cropped_and_resized_equal_shifting_and_scaling_the_pixels() -> None:
    rng = np.random.default_rng(2)
    camera = random_camera_with_distortion(rng, MILD_DIST)
    points = points_in_front(camera, 20, rng)
    pixels = camera.project(points)
    box_xyxy = (123.0, 45.5, 623.0, 545.5)
    cropped = camera.cropped(box_xyxy)
    np.testing.assert_allclose(cropped.project(points), pixels - np.array([123.0, 45.5]), atol=1e-9)
    resized = cropped.resized((500, 500), (384, 256))  # (H, W): x scaled by 256/500, y by 384/500
    expected = (pixels - np.array([123.0, 45.5])) * np.array([256 / 500, 384 / 500])
    np.testing.assert_allclose(resized.project(points), expected, atol=1e-9)
    pinhole = (camera.project(points, distort=False) - np.array([123.0, 45.5])) * np.array([256 / 500, 384 / 500])
    np.testing.assert_allclose(resized.project(points, distort=False), pinhole, atol=1e-9)
    # The originals are untouched (frozen cameras, fresh arrays).
    np.testing.assert_array_equal(camera.project(points), pixels)
    assert resized.name == camera.name and resized.dist is not None


def test_camera_validates_its_inputs() -> None:
    good = dict(R=np.eye(3), t=np.zeros(3), K=np.array([[1000.0, 0, 500], [0, 1000, 500], [0, 0, 1]]), dist=np.zeros(5))
    camera = Camera(**{**good, "t": np.zeros((3, 1)), "dist": np.zeros((1, 5))}, name="c1")  # on-disk shapes
    assert camera.t.shape == (3,) and camera.dist.shape == (5,)
    with pytest.raises(ValueError):
        camera.R[0, 0] = 2.0  # read-only arrays
    for key, value, message in (
        ("R", np.eye(4), "R must have shape"),
        ("R", 2 * np.eye(3), "not a rotation"),
        ("t", np.zeros(4), "t must have shape"),
        ("K", np.eye(3)[:2], "K must have shape"),
        ("K", np.diag([1000.0, 1000.0, 2.0]), "last row"),
        ("dist", np.zeros(4), "dist must have shape"),
        ("t", np.array([0.0, np.nan, 0.0]), "non-finite"),
    ):
        with pytest.raises(ValueError, match=message):
            Camera(**{**good, key: value}, name="broken")
    with pytest.raises(ValueError, match="positive"):
        camera.resized((0, 10), (5, 5))
    with pytest.raises(ValueError, match="4 finite values"):
        camera.cropped((1.0, 2.0, 3.0))


# ----------------------------------------------------------------------------------------- distortion


@pytest.mark.parametrize("dist", [MILD_DIST, STRONG_DIST], ids=["h36m_like", "strong"])
def test_distortion_round_trip_and_cv2(dist: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    xy = rng.uniform(-0.5, 0.5, (500, 2))
    distorted = distort_points(xy, dist)
    # Oracle for the forward model: cv2.projectPoints of (x, y, 1) with an identity pose and K = I.
    expected, _ = cv2.projectPoints(
        np.concatenate((xy, np.ones((500, 1))), axis=1)[:, None], np.zeros(3), np.zeros(3), np.eye(3), dist
    )
    np.testing.assert_allclose(distorted, expected[:, 0], atol=1e-12)
    np.testing.assert_allclose(undistort_points(distorted, dist), xy, atol=1e-6)
    assert np.abs(undistort_points(distorted, dist) - xy).max() < 1e-12  # Newton converges fully
    # Oracle for the inverse: OpenCV's iterative undistortion, run to convergence.
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 1000, 1e-15)
    cv2_xy = cv2.undistortPoints(distorted[:, None], np.eye(3), dist, criteria=criteria)[:, 0]
    np.testing.assert_allclose(undistort_points(distorted, dist), cv2_xy, atol=1e-6)


def test_pixel_distortion_matches_cv2() -> None:
    rng = np.random.default_rng(4)
    K = np.array([[1145.0, 0.0, 512.5], [0.0, 1143.7, 515.4], [0.0, 0.0, 1.0]])
    pixels = rng.uniform(50, 950, (200, 2))
    undistorted = undistort_pixels(pixels, K, MILD_DIST)
    expected = cv2.undistortPoints(pixels[:, None], K, MILD_DIST, P=K)[:, 0]  # 5 fixed-point steps: mild lens
    np.testing.assert_allclose(undistorted, expected, atol=1e-3)
    np.testing.assert_allclose(distort_pixels(undistorted, K, MILD_DIST), pixels, atol=1e-8)
    # A camera projection with distortion equals the pinhole projection then distort_pixels.
    camera = random_camera_with_distortion(rng, MILD_DIST)
    points = points_in_front(camera, 30, rng)
    np.testing.assert_allclose(
        distort_pixels(camera.project(points, distort=False), camera.K, camera.dist), camera.project(points), atol=1e-8
    )
    with pytest.raises(ValueError, match="5 values"):
        distort_points(np.zeros((1, 2)), np.zeros(4))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        undistort_points(np.zeros((3, 3)), MILD_DIST)


def test_undistortion_maps_match_cv2_and_are_cached() -> None:
    K = np.array([[300.0, 0.0, 80.3], [0.0, 310.0, 59.6], [0.0, 0.0, 1.0]])
    map_x, map_y = undistortion_maps(K, STRONG_DIST, (120, 160))
    expected_x, expected_y = cv2.initUndistortRectifyMap(K, STRONG_DIST, None, K, (160, 120), cv2.CV_32FC1)
    assert map_x.shape == (120, 160) and map_x.dtype == np.float32
    np.testing.assert_allclose(map_x, expected_x, atol=1e-3)
    np.testing.assert_allclose(map_y, expected_y, atol=1e-3)
    again = undistortion_maps(K.copy(), list(STRONG_DIST), [120, 160])
    assert again[0] is map_x and again[1] is map_y  # cached per camera and size
    assert not map_x.flags.writeable
    # The undistorted image of a distorted checkerboard puts a known point where the pinhole model does.
    image = np.zeros((120, 160), np.float32)
    source = distort_pixels(np.array([[100.0, 70.0]]), K, STRONG_DIST)[0]
    image[int(round(source[1])), int(round(source[0]))] = 1.0
    undistorted = cv2.remap(image, map_x, map_y, cv2.INTER_NEAREST)
    rows, cols = np.nonzero(undistorted)
    assert np.all(np.abs(cols - 100) <= 1) and np.all(np.abs(rows - 70) <= 1) and rows.size >= 1


# --------------------------------------------------------------------------------------- triangulation


def reference_dlt(P: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-point numpy reference of the documented DLT: weighted rows, columns scaled to unit norm, the smallest
    right singular vector by SVD. P (V, 3, 4), x (V, 2), w (V,) -> (3,)."""
    rows = []
    for view in range(P.shape[0]):
        for axis in range(2):
            row = x[view, axis] * P[view, 2] - P[view, axis]
            rows.append(w[view] * row)
    A = np.array(rows)
    scale = np.linalg.norm(A, axis=0)
    homogeneous = np.linalg.svd(A / scale)[2][-1] / scale
    return homogeneous[:3] / homogeneous[3]


@pytest.mark.parametrize("views", [2, 3, 5, 8])
def test_dlt_recovers_points_exactly_from_noise_free_views(views: int) -> None:
    rng = np.random.default_rng(10 + views)
    batch, joints = 3, 17
    rigs = [random_rig(views, rng) for _ in range(batch)]
    points_world = rng.uniform(-900, 900, (batch, joints, 3))
    proj = np.stack([projection_matrices(rig) for rig in rigs])  # (B, V, 3, 4)
    pixels = np.stack([[cam.project(points_world[b]) for cam in rigs[b]] for b in range(batch)])  # (B, V, J, 2)
    weights = rng.uniform(0.2, 1.0, (batch, views, joints))
    result = triangulate_dlt(torch.from_numpy(proj), torch.from_numpy(pixels), torch.from_numpy(weights))
    assert result.shape == (batch, joints, 3) and result.dtype == torch.float64
    np.testing.assert_allclose(result.numpy(), points_world, atol=1e-6)
    single = triangulate_dlt(torch.from_numpy(proj).float(), torch.from_numpy(pixels).float())
    assert single.dtype == torch.float32
    np.testing.assert_allclose(single.numpy(), points_world, atol=0.05)  # float32 pixels: ~1e-4 px rounding


def test_dlt_with_noise_matches_a_per_point_svd_reference() -> None:
    rng = np.random.default_rng(20)
    rig = random_rig(4, rng)
    proj = projection_matrices(rig)
    points_world = rng.uniform(-900, 900, (6, 3))
    pixels = np.stack([cam.project(points_world) for cam in rig]) + rng.normal(0, 3.0, (4, 6, 2))
    weights = rng.uniform(0.1, 1.0, (4, 6))
    result = triangulate_dlt(
        torch.from_numpy(proj)[None], torch.from_numpy(pixels)[None], torch.from_numpy(weights)[None]
    )
    for joint in range(6):
        expected = reference_dlt(proj, pixels[:, joint], weights[:, joint])
        np.testing.assert_allclose(result[0, joint].numpy(), expected, atol=1e-6)


def test_dlt_agrees_with_cv2_triangulate_points_for_two_views() -> None:
    rng = np.random.default_rng(21)
    rig = [look_at_camera(np.array([5000.0, 0.0, 1500.0]), rng), look_at_camera(np.array([0.0, 4500.0, 1000.0]), rng)]
    proj = projection_matrices(rig)
    points_world = rng.uniform(-900, 900, (25, 3))
    pixels = np.stack([cam.project(points_world) for cam in rig])
    for noise_px, tolerance_mm in ((0.0, 1e-6), (1.0, 0.2)):
        noisy = pixels + rng.normal(0, noise_px, pixels.shape)
        expected = cv2.triangulatePoints(proj[0], proj[1], noisy[0].T.copy(), noisy[1].T.copy())
        expected = (expected[:3] / expected[3]).T
        result = triangulate_dlt(torch.from_numpy(proj)[None], torch.from_numpy(noisy)[None])[0].numpy()
        # Noise-free both are exact. With 1 px noise (~5 mm per pixel at 5 m, errors ~10 mm) OpenCV solves the
        # unscaled system and we the column-scaled one: they differ by ~1 % of the error.
        np.testing.assert_allclose(result, expected, atol=tolerance_mm)
        if noise_px:
            assert np.abs(expected - points_world).max() > 2.0  # the noise moved the points: a real comparison


def test_a_view_weighted_zero_has_no_effect() -> None:
    rng = np.random.default_rng(22)
    rig = random_rig(4, rng)
    proj = torch.from_numpy(projection_matrices(rig))[None]
    points_world = rng.uniform(-900, 900, (5, 3))
    pixels = np.stack([cam.project(points_world) for cam in rig]) + rng.normal(0, 2.0, (4, 5, 2))
    without_view = triangulate_dlt(proj[:, :3], torch.from_numpy(pixels[:3])[None])
    pixels[3] += rng.uniform(200, 400, (5, 2))  # gross outliers in the last view
    weights = torch.ones(1, 4, 5, dtype=torch.float64)
    weights[:, 3] = 0.0
    with_zero_weight = triangulate_dlt(proj, torch.from_numpy(pixels)[None], weights)
    np.testing.assert_allclose(with_zero_weight.numpy(), without_view.numpy(), atol=1e-9)
    unweighted = triangulate_dlt(proj, torch.from_numpy(pixels)[None])
    assert (unweighted - without_view).abs().max() > 10.0  # the outliers do matter when weighted


def test_dlt_is_finite_with_finite_gradients_when_degenerate() -> None:
    rng = np.random.default_rng(23)
    camera = random_rig(1, rng)[0]
    twin = Camera(camera.R, camera.t + np.array([1e-3, 0.0, 0.0]), camera.K, name="twin")  # 1 micrometre baseline
    proj = torch.from_numpy(projection_matrices([camera, twin]))[None].float().requires_grad_()
    points_world = rng.uniform(-900, 900, (4, 3))
    pixels_np = np.stack([camera.project(points_world), twin.project(points_world)])
    pixels = (torch.from_numpy(pixels_np)[None] + 0.3 * torch.randn(1, 2, 4, 2, dtype=torch.float64)).float()
    pixels.requires_grad_()
    weights = torch.rand(1, 2, 4, requires_grad=True)
    result = triangulate_dlt(proj, pixels, weights)
    result.sum().backward()
    assert torch.isfinite(result).all()
    for tensor in (proj, pixels, weights):
        assert torch.isfinite(tensor.grad).all()

    # All-zero weights: nothing observed, the result is the world origin, with finite (zero) gradients.
    pixels = torch.from_numpy(pixels_np)[None].float().requires_grad_()
    zero_weights = torch.zeros(1, 2, 4, requires_grad=True)
    result = triangulate_dlt(proj.detach(), pixels, zero_weights)
    result.square().sum().backward()
    assert torch.equal(result, torch.zeros_like(result))
    assert torch.isfinite(pixels.grad).all() and torch.isfinite(zero_weights.grad).all()


def test_dlt_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(24)
    rig = random_rig(3, rng)
    proj = torch.from_numpy(projection_matrices(rig))[None].requires_grad_()
    points_world = rng.uniform(-900, 900, (2, 3))
    pixels = np.stack([cam.project(points_world) for cam in rig]) + rng.normal(0, 2.0, (3, 2, 2))
    pixels = torch.from_numpy(pixels)[None].requires_grad_()
    weights = torch.from_numpy(rng.uniform(0.3, 1.0, (1, 3, 2))).requires_grad_()
    assert torch.autograd.gradcheck(triangulate_dlt, (proj, pixels, weights), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_dlt_rejects_mismatched_shapes() -> None:
    proj = torch.zeros(2, 3, 3, 4)
    with pytest.raises(ValueError, match="proj_matrices"):
        triangulate_dlt(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 5, 2))
    with pytest.raises(ValueError, match="points_2d"):
        triangulate_dlt(proj, torch.zeros(2, 4, 5, 2))
    with pytest.raises(ValueError, match="weights"):
        triangulate_dlt(proj, torch.zeros(2, 3, 5, 2), torch.ones(2, 3, 4))


def test_reprojection_errors_are_pixel_distances() -> None:
    rng = np.random.default_rng(25)
    rig = random_rig(3, rng)
    points_world = rng.uniform(-900, 900, (4, 3))
    observed = rng.uniform(0, 1000, (3, 4, 2))
    expected = np.stack([np.linalg.norm(cam.project(points_world) - observed[v], axis=-1) for v, cam in enumerate(rig)])
    errors = reprojection_errors(
        torch.from_numpy(projection_matrices(rig)), torch.from_numpy(points_world), torch.from_numpy(observed)
    )
    np.testing.assert_allclose(errors.numpy(), expected, atol=1e-8)
    behind = reprojection_errors(
        torch.from_numpy(projection_matrices(rig[:1])), -torch.from_numpy(rig[0].R.T @ rig[0].t)[None] * 2,
        torch.zeros(1, 1, 2, dtype=torch.float64),
    )  # fmt: skip
    assert torch.isinf(behind).all()  # twice the camera centre's position from the origin: behind the camera


@pytest.mark.parametrize("direct_optimization", [False, True])
def test_ransac_rejects_an_outlier_view(direct_optimization: bool) -> None:
    rng = np.random.default_rng(26)
    rig = random_rig(5, rng)
    proj = projection_matrices(rig)
    points_world = rng.uniform(-900, 900, (6, 3))
    pixels = np.stack([cam.project(points_world) for cam in rig]) + rng.normal(0, 0.5, (5, 6, 2))
    pixels[2, :, 0] += 150.0  # view 2 is off for every joint
    pixels[4, 3] += (80.0, -60.0)  # and view 4 for joint 3
    points, inliers = triangulate_ransac(proj, pixels, direct_optimization=direct_optimization)
    expected_inliers = np.ones((5, 6), bool)
    expected_inliers[2] = False
    expected_inliers[4, 3] = False
    np.testing.assert_array_equal(inliers, expected_inliers)
    for joint in range(6):
        views = expected_inliers[:, joint]
        inlier_proj, inlier_pixels = proj[views], pixels[views, joint]
        clean = triangulate_dlt(torch.from_numpy(inlier_proj)[None], torch.from_numpy(inlier_pixels[:, None])[None])
        clean = clean[0, 0].numpy()
        if not direct_optimization:  # the result is the DLT of the inliers alone
            np.testing.assert_allclose(points[joint], clean, atol=1e-6)
        else:  # the least-squares refinement lowers the inliers' squared reprojection error (Huber is quadratic
            # below its 5 px scale, above these errors) and stays near the DLT point
            homogeneous = np.append(points[joint], 1.0), np.append(clean, 1.0)
            errors = [inlier_proj @ h for h in homogeneous]
            squared = [np.square(e[:, :2] / e[:, 2:] - inlier_pixels).sum() for e in errors]
            assert squared[0] <= squared[1] + 1e-9
            assert np.abs(points[joint] - clean).max() < 5.0
    assert np.abs(points - points_world).max() < 5.0
    plain = triangulate_dlt(torch.from_numpy(proj)[None], torch.from_numpy(pixels)[None])[0].numpy()
    assert np.abs(plain - points_world).max() > 20.0  # without RANSAC the outlier view pulls the points away
    # Tensors in, tensors out; a masked observation is never an inlier.
    valid = torch.ones(5, 6, dtype=torch.bool)
    valid[0, 0] = False
    points_t, inliers_t = triangulate_ransac(
        torch.from_numpy(proj).float(),
        torch.from_numpy(pixels).float(),
        valid=valid,
        direct_optimization=direct_optimization,
    )
    assert points_t.dtype == torch.float32 and inliers_t.dtype == torch.bool
    expected_inliers[0, 0] = False
    np.testing.assert_array_equal(inliers_t.numpy(), expected_inliers)
    np.testing.assert_allclose(points_t[1:].numpy(), points[1:], atol=0.05)


def test_ransac_with_too_few_usable_views_falls_back_to_all_of_them() -> None:
    rng = np.random.default_rng(27)
    rig = random_rig(3, rng)
    proj = projection_matrices(rig)
    points_world = rng.uniform(-900, 900, (2, 3))
    pixels = np.stack([cam.project(points_world) for cam in rig])
    pixels[1, 1] = np.nan  # joint 1: view 1 unusable (NaN), view 2 masked: one view left
    valid = np.ones((3, 2), bool)
    valid[2, 1] = False
    points, inliers = triangulate_ransac(proj, pixels, valid=valid)
    np.testing.assert_allclose(points[0], points_world[0], atol=1e-6)
    assert np.isfinite(points[1]).all()
    # One view constrains the point to its ray: the result reprojects onto the observation.
    np.testing.assert_allclose(rig[0].project(points[1][None])[0], pixels[0, 1], atol=1e-3)
    np.testing.assert_array_equal(inliers[:, 1], [True, False, False])
