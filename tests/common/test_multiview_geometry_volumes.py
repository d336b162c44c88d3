"""Voxel grids, unprojection of feature maps and view aggregation against cameras, scipy and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from common.geometry.multiview_camera import Camera
from common.geometry.unprojection import aggregate_volumes, cuboid_grid, unproject_features


def look_at_camera(eye_world: np.ndarray, focal_px: float = 1000.0) -> Camera:
    """A 1000 x 1000 pixel camera at ``eye_world`` (mm) looking at the world origin, world z up."""
    forward = -eye_world / np.linalg.norm(eye_world)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    R = np.stack((right, np.cross(forward, right), forward))
    K = np.array([[focal_px, 0.0, 499.5], [0.0, 0.9 * focal_px, 499.5], [0.0, 0.0, 1.0]])
    return Camera(R=R, t=-R @ eye_world, K=K, dist=np.zeros(5))


RIG_EYES_MM = (
    np.array([5000.0, 300.0, 1200.0]),
    np.array([-800.0, 4800.0, 900.0]),
    np.array([-4000.0, -3000.0, 2000.0]),
)


def test_cuboid_grid_is_centred_evenly_spaced_and_rotates_about_the_vertical_axis() -> None:
    centers = torch.tensor([[100.0, -200.0, 900.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    grid = cuboid_grid(centers, side=2000.0, grid_size=5)
    assert grid.shape == (2, 5, 5, 5, 3) and grid.dtype == torch.float64
    # Voxel (i, j, k) at centre + (-1000 + 500 i, -1000 + 500 j, -1000 + 500 k): hand-computed.
    np.testing.assert_allclose(grid[0, 0, 0, 0].numpy(), [-900.0, -1200.0, -100.0])
    np.testing.assert_allclose(grid[0, 4, 2, 1].numpy(), [1100.0, -200.0, 400.0])
    np.testing.assert_allclose(grid[1, 2, 2, 2].numpy(), [0.0, 0.0, 0.0])
    offsets = (grid - centers[:, None, None, None]).reshape(2, -1, 3).numpy()
    angles = torch.tensor([math.pi / 2, 0.7], dtype=torch.float64)
    for axis in (0, 1, 2):
        rotated = cuboid_grid(centers, 2000.0, 5, angles, vertical_axis=axis)
        for b in range(2):
            rotation = Rotation.from_rotvec(np.eye(3)[axis] * float(angles[b]))  # right-handed about +axis
            expected = rotation.apply(offsets[b]) + centers[b].numpy()
            np.testing.assert_allclose(rotated[b].reshape(-1, 3).numpy(), expected, atol=1e-9)
    # A quarter turn about z takes the +x face to +y: hand-computed.
    quarter = cuboid_grid(centers[:1], 2000.0, 5, angles[:1])
    np.testing.assert_allclose(quarter[0, 4, 2, 2].numpy(), [100.0, 800.0, 900.0], atol=1e-9)
    with pytest.raises(ValueError, match="center_world"):
        cuboid_grid(torch.zeros(3), 1.0, 4)
    with pytest.raises(ValueError, match="grid_size"):
        cuboid_grid(torch.zeros(1, 3), 1.0, 1)
    with pytest.raises(ValueError, match="rotation_about_vertical_rad"):
        cuboid_grid(torch.zeros(2, 3), 1.0, 4, torch.zeros(3))


@pytest.mark.parametrize("map_hw", [(30, 50), (48, 20), (32, 32)], ids=["wide", "tall", "square"])
def test_unprojected_linear_features_equal_their_values_at_the_projections(map_hw: tuple[int, int]) -> None:
    """Bilinear sampling reproduces a linear function exactly: channel 0 = u, channel 1 = v of each pixel, so
    each voxel's samples are its projection in that map, computed independently by ``Camera.project``."""
    height, width = map_hw
    cameras = [look_at_camera(eye).resized((1000, 1000), map_hw) for eye in RIG_EYES_MM]
    center = torch.tensor([[50.0, -80.0, 100.0]], dtype=torch.float64)
    grid = cuboid_grid(center, side=1200.0, grid_size=6)  # (1, 6, 6, 6, 3)
    v_px, u_px = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    features = torch.stack((u_px, v_px)).expand(1, 3, 2, height, width)  # (B, V, C=2, h, w)
    proj = torch.from_numpy(np.stack([cam.projection_matrix() for cam in cameras]))[None].float()
    volumes = unproject_features(features, proj, grid.float())
    assert volumes.shape == (1, 3, 2, 6, 6, 6) and volumes.dtype == torch.float32
    for view, camera in enumerate(cameras):
        expected = camera.project(grid[0].reshape(-1, 3).numpy())  # (N, 2) pixels of this map
        inside = (expected[:, 0] <= width - 1) & (expected[:, 1] <= height - 1) & (expected.min(1) >= 0)
        assert inside.all()  # the rig sees the whole cube
        sampled = volumes[0, view].reshape(2, -1).T.numpy()
        np.testing.assert_allclose(sampled, expected, atol=2e-3)


def test_a_feature_at_a_points_projection_lands_in_that_points_voxel_in_every_view() -> None:
    map_hw = (24, 40)  # non-square: x normalised by the width, y by the height
    grid = cuboid_grid(torch.tensor([[0.0, 0.0, 900.0]], dtype=torch.float64), side=1500.0, grid_size=8)
    target = (3, 5, 2)
    point = grid[0][target].numpy()
    cameras, features = [], torch.zeros(1, 3, 1, *map_hw)
    for view, eye in enumerate(RIG_EYES_MM):
        camera = look_at_camera(eye).resized((1000, 1000), map_hw)
        u, v = camera.project(point[None])[0]
        # Shift the principal point so that the point projects exactly onto the pixel centre (round(u), round(v)).
        camera = camera.cropped((u - round(u), v - round(v), u - round(u) + 1.0, v - round(v) + 1.0))
        cameras.append(camera)
        features[0, view, 0, round(v), round(u)] = 1.0
    proj = torch.from_numpy(np.stack([cam.projection_matrix() for cam in cameras]))[None].float()
    volumes = unproject_features(features, proj, grid.float())  # (1, 3, 1, 8, 8, 8)
    for view in range(3):
        volume = volumes[0, view, 0]
        assert np.unravel_index(int(volume.argmax()), volume.shape) == target
        assert abs(float(volume[target]) - 1.0) < 1e-3


def test_points_behind_the_camera_and_masked_views_give_zero() -> None:
    # Camera at the world origin looking along +z, f = 1 px: every voxel with z > 0 of a 2-unit cube projects
    # inside the 6 x 8 map. Voxels with z <= 0 would too (their divide flips the sign) but must give 0.
    camera = Camera(R=np.eye(3), t=np.zeros(3), K=np.array([[1.0, 0.0, 3.5], [0.0, 1.0, 2.5], [0.0, 0.0, 1.0]]))
    proj = torch.from_numpy(camera.projection_matrix()).float().expand(1, 2, 3, 4)
    grid = cuboid_grid(torch.zeros(1, 3), side=2.0, grid_size=5)  # z in {-1, -0.5, 0, 0.5, 1}
    features = torch.ones(1, 2, 3, 6, 8)
    volumes = unproject_features(features, proj, grid, view_mask=torch.tensor([[True, False]]))
    in_front = (grid[0, ..., 2] > 0).float()  # (5, 5, 5)
    torch.testing.assert_close(volumes[0, 0], in_front.expand(3, 5, 5, 5))
    assert torch.count_nonzero(volumes[0, 1]) == 0  # the masked view
    # A voxel well outside the map also gives 0: move the camera's principal point far away.
    far = Camera(R=np.eye(3), t=np.zeros(3), K=np.array([[1.0, 0.0, 300.0], [0.0, 1.0, 2.5], [0.0, 0.0, 1.0]]))
    outside = unproject_features(features[:, :1], torch.from_numpy(far.projection_matrix()).float()[None, None], grid)
    assert torch.count_nonzero(outside) == 0


def test_unprojection_rejects_mismatched_shapes() -> None:
    features, grid = torch.zeros(1, 2, 3, 6, 8), torch.zeros(1, 2, 2, 2, 3)
    with pytest.raises(ValueError, match="proj_matrices"):
        unproject_features(features, torch.zeros(1, 3, 3, 4), grid)
    with pytest.raises(ValueError, match="grid_world"):
        unproject_features(features, torch.zeros(1, 2, 3, 4), torch.zeros(2, 2, 2, 2, 3))
    with pytest.raises(ValueError, match="at least 2 x 2"):
        unproject_features(torch.zeros(1, 2, 3, 1, 8), torch.zeros(1, 2, 3, 4), grid)


# Per view (rows) and channel (columns) values of a single voxel, and per-view per-channel confidences.
VALUES = [[1.0, -2.0], [3.0, 0.5], [-1.0, 4.0]]
CONFIDENCES = [[0.5, 1.0], [0.25, 2.0], [1.0, 0.0]]
E = math.e
# Hand-computed results: all three views present, then view 2 missing.
EXPECTED_ALL = {
    "sum": [3.0, 2.5],
    "max": [3.0, 4.0],
    "conf": [0.5 * 1 + 0.25 * 3 + 1 * -1, 1 * -2 + 2 * 0.5 + 0 * 4],
    "conf_norm": [(0.5 * 1 + 0.25 * 3 - 1) / 1.75, (1 * -2 + 2 * 0.5) / 3.0],
    "softmax": [
        (1 * E + 3 * E**3 - 1 * E**-1) / (E + E**3 + E**-1),
        (-2 * E**-2 + 0.5 * E**0.5 + 4 * E**4) / (E**-2 + E**0.5 + E**4),
    ],
}
EXPECTED_WITHOUT_VIEW_2 = {
    "sum": [4.0, -1.5],
    "max": [3.0, 0.5],
    "conf": [0.5 + 0.75, -2.0 + 1.0],
    "conf_norm": [1.25 / 0.75, -1.0 / 3.0],
    "softmax": [(E + 3 * E**3) / (E + E**3), (-2 * E**-2 + 0.5 * E**0.5) / (E**-2 + E**0.5)],
}


@pytest.mark.parametrize("method", ["sum", "max", "conf", "conf_norm", "softmax"])
def test_aggregation_methods_match_hand_computed_values(method: str) -> None:
    # Batch of 3: all views; view 2 missing; no view at all. One voxel, broadcast over a 2 x 1 x 3 grid (every
    # voxel must give the same), plus a second voxel pattern scaled by 2 to check the voxels stay independent.
    values = torch.tensor(VALUES, dtype=torch.float64)[None, :, :, None, None, None].expand(3, 3, 2, 2, 1, 3).clone()
    values[:, :, :, 1] *= 2.0
    confidences = torch.tensor(CONFIDENCES, dtype=torch.float64).expand(3, 3, 2)
    view_mask = torch.tensor([[True, True, True], [True, True, False], [False, False, False]])
    values.requires_grad_()
    result = aggregate_volumes(values, method, confidences, view_mask)
    assert result.shape == (3, 2, 2, 1, 3)
    for batch, expected in ((0, EXPECTED_ALL[method]), (1, EXPECTED_WITHOUT_VIEW_2[method])):
        torch.testing.assert_close(
            result[batch, :, 0], torch.tensor(expected, dtype=torch.float64)[:, None, None].expand(2, 1, 3)
        )
    if method in ("sum", "max", "conf", "conf_norm"):  # homogeneous of degree 1 in the values
        torch.testing.assert_close(result[:2, :, 1], 2.0 * result[:2, :, 0])
    assert torch.count_nonzero(result[2]) == 0  # no view: zeros
    result.sum().backward()
    assert torch.isfinite(values.grad).all()
    # Without a mask every view counts.
    unmasked = aggregate_volumes(values.detach()[:1], method, confidences[:1])
    torch.testing.assert_close(unmasked, result.detach()[:1])


def test_aggregation_rejects_bad_arguments() -> None:
    volumes = torch.zeros(1, 2, 3, 2, 2, 2)
    with pytest.raises(ValueError, match="unknown volume aggregation"):
        aggregate_volumes(volumes, "mean")
    with pytest.raises(ValueError, match="needs view_confidences"):
        aggregate_volumes(volumes, "conf")
    with pytest.raises(ValueError, match="view_confidences must have shape"):
        aggregate_volumes(volumes, "conf_norm", torch.ones(1, 2, 4))
    with pytest.raises(ValueError, match="view_mask"):
        aggregate_volumes(volumes, "sum", view_mask=torch.ones(1, 3, dtype=torch.bool))


def test_unprojection_and_aggregation_are_differentiable_in_the_features() -> None:
    cameras = [look_at_camera(eye).resized((1000, 1000), (16, 24)) for eye in RIG_EYES_MM]
    proj = torch.from_numpy(np.stack([cam.projection_matrix() for cam in cameras]))[None].float()
    grid = cuboid_grid(torch.tensor([[0.0, 0.0, 900.0]]), side=2500.0, grid_size=8)
    features = torch.randn(1, 3, 4, 16, 24, requires_grad=True)
    volumes = unproject_features(features, proj, grid)
    aggregate_volumes(volumes, "softmax").square().sum().backward()
    assert torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0
