"""common/geometry/voxel.py and voxel_targets.py: the batched V2V geometry against per-sample numpy references,
hand-computed cases and round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.geometry.voxel import (
    augmentation_matrices,
    decode_argmax,
    decode_argmax_centroid,
    decode_soft_argmax,
    depth_to_points,
    gaussian_mse_loss,
    gaussian_targets,
    grid_to_points,
    identity_matrices,
    integral_loss,
    onehot_trilinear_targets,
    points_to_grid,
    rescale_grid,
    voxelize,
)

DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=pytest.mark.gpu)]
GRID = 88
OUT = 44


# ---------------------------------------------------------------------------------------------------------------
# Per-sample references, written from the upstream description (seed-systems-notes §1.2, §1.4), one point at a time


def reference_back_project(depth: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """(H, W) depth -> (H*W, 3) points, pixel by pixel with the pinhole formula, y down."""
    height, width = depth.shape
    points = np.zeros((height * width, 3))
    for v in range(height):
        for u in range(width):
            z = float(depth[v, u])
            points[v * width + u] = ((u - cx) * z / fx, (v - cy) * z / fy, z)
    return points


def reference_voxelize(
    points: np.ndarray, valid: np.ndarray, ref: np.ndarray, cube: np.ndarray, grid: int, matrix: np.ndarray
) -> np.ndarray:
    """One sample: normalise to [-1, 1] by the half cube, to [0, G), transform, floor, keep inside, mark."""
    volume = np.zeros((grid, grid, grid), dtype=np.float32)
    for point, ok in zip(points, valid, strict=True):
        if not ok:
            continue
        normalised = (point - ref) / (cube / 2.0)
        coords = (normalised + 1.0) * grid / 2.0
        coords = matrix[:3, :3] @ coords + matrix[:3, 3]
        index = np.floor(coords).astype(np.int64)
        if np.all(index >= 0) and np.all(index < grid):
            volume[index[0], index[1], index[2]] = 1.0
    return volume


def synthetic_depth(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A sphere-like blob (a 'hand') at ~400 mm in front of a wall at ~900 mm, with holes (depth 0)."""
    v, u = np.mgrid[0:height, 0:width]
    radius = min(height, width) * 0.35
    r2 = ((u - width / 2) ** 2 + (v - height / 2) ** 2) / radius**2
    depth = np.where(r2 < 1.0, 400.0 - 60.0 * np.sqrt(np.clip(1.0 - r2, 0, 1)), 900.0)
    depth = depth + rng.uniform(-2.0, 2.0, depth.shape)
    depth[rng.random(depth.shape) < 0.1] = 0.0
    return depth


def _frames(batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ref = np.stack([rng.uniform(-5, 5, batch), rng.uniform(-5, 5, batch), rng.uniform(370, 390, batch)], axis=1)
    cube = np.stack([rng.uniform(150, 200, batch), rng.uniform(150, 200, batch), rng.uniform(180, 250, batch)], 1)
    return ref, cube


# ---------------------------------------------------------------------------------------------------------------
# depth_to_points


def test_depth_to_points_hand_computed_pinhole() -> None:
    depth = torch.zeros(2, 3, 4)
    depth[0, 2, 3] = 500.0  # (u, v) = (3, 2)
    depth[0, 0, 0] = 250.0
    depth[1, 1, 2] = 300.0
    intrinsics = torch.tensor([[200.0, 100.0, 1.5, 1.0], [150.0, 150.0, 2.0, 0.0]])
    points, valid = depth_to_points(depth, intrinsics)
    assert points.shape == (2, 12, 3) and valid.shape == (2, 12)
    torch.testing.assert_close(points[0, 2 * 4 + 3], torch.tensor([(3 - 1.5) * 500 / 200, (2 - 1) * 500 / 100, 500.0]))
    torch.testing.assert_close(points[0, 0], torch.tensor([-1.875, -2.5, 250.0]))
    torch.testing.assert_close(points[1, 1 * 4 + 2], torch.tensor([0.0, 2.0, 300.0]))  # own intrinsics per sample
    assert valid[0].nonzero().flatten().tolist() == [0, 11] and valid[1].nonzero().flatten().tolist() == [6]


def test_depth_to_points_matches_per_pixel_reference() -> None:
    rng = np.random.default_rng(0)
    depth = synthetic_depth(12, 16, rng)
    intrinsics = (241.42, 230.0, 8.3, 5.7)
    points, valid = depth_to_points(torch.from_numpy(depth)[None], torch.tensor([intrinsics], dtype=torch.float64))
    np.testing.assert_allclose(points[0].numpy(), reference_back_project(depth, *intrinsics), rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(valid[0].numpy(), depth.reshape(-1) > 0)


# ---------------------------------------------------------------------------------------------------------------
# augmentation_matrices


def test_augmentation_matrices_are_scale_rotation_z_translation_about_the_centre() -> None:
    matrices = augmentation_matrices(4000, torch.Generator().manual_seed(0), grid_size=GRID, dtype=torch.float64)
    assert matrices.shape == (4000, 4, 4)
    linear, shift = matrices[:, :3, :3], matrices[:, :3, 3]
    scale = linear[:, 2, 2]
    # x-y block is s * rotation, z only scaled, no coupling between z and x-y; last row homogeneous.
    torch.testing.assert_close(
        linear[:, :2, :2].transpose(-1, -2) @ linear[:, :2, :2],
        scale[:, None, None] ** 2 * torch.eye(2, dtype=torch.float64).expand(4000, 2, 2),
    )
    assert torch.all(torch.linalg.det(linear[:, :2, :2]) > 0)
    assert torch.all(linear[:, :2, 2] == 0) and torch.all(linear[:, 2, :2] == 0)
    assert torch.equal(matrices[:, 3], torch.tensor([0.0, 0, 0, 1], dtype=torch.float64).expand(4000, 4))
    angle_deg = torch.rad2deg(torch.atan2(linear[:, 1, 0], linear[:, 0, 0]))
    centre = torch.full((3,), GRID / 2, dtype=torch.float64)
    translation = linear @ centre + shift - centre  # where the centre goes
    for values, low, high in ((scale, 0.8, 1.2), (angle_deg, -40, 40), (translation, -8, 8)):
        assert values.min() >= low and values.max() <= high
        assert values.min() < low + 0.05 * (high - low) and values.max() > high - 0.05 * (high - low)  # range filled


def test_augmentation_matrices_are_reproducible_and_identity_without_ranges() -> None:
    first = augmentation_matrices(3, torch.Generator().manual_seed(7), grid_size=GRID)
    again = augmentation_matrices(3, torch.Generator().manual_seed(7), grid_size=GRID)
    other = augmentation_matrices(3, torch.Generator().manual_seed(8), grid_size=GRID)
    assert torch.equal(first, again) and not torch.allclose(first, other)
    none = augmentation_matrices(
        3, torch.Generator().manual_seed(7), grid_size=GRID, scale=(1, 1), rotation_deg=0, translation_voxels=0
    )
    torch.testing.assert_close(none, identity_matrices(3))


# ---------------------------------------------------------------------------------------------------------------
# voxelize


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("augment", [False, True])
def test_voxelize_equals_per_sample_reference_from_depth_maps(device: str, augment: bool) -> None:
    rng = np.random.default_rng(1)
    batch, height, width = 3, 40, 48
    depth = np.stack([synthetic_depth(height, width, rng) for _ in range(batch)])  # float64: exact reference
    intrinsics = np.array([[241.42, 241.42, width / 2, height / 2], [200.0, 210.0, 20.3, 22.1], [260, 250, 25, 19]])
    ref, cube = _frames(batch, rng)
    matrices = (
        augmentation_matrices(batch, torch.Generator().manual_seed(3), grid_size=GRID)
        if augment
        else identity_matrices(batch)
    )
    as_torch = {"device": device}
    points, valid = depth_to_points(torch.tensor(depth, **as_torch), torch.tensor(intrinsics, **as_torch))
    volumes = voxelize(
        points,
        valid,
        torch.tensor(ref, **as_torch),
        torch.tensor(cube, **as_torch),
        GRID,
        matrices.to(device) if augment else None,
    )
    assert volumes.shape == (batch, 1, GRID, GRID, GRID) and volumes.dtype == torch.float32
    assert volumes.device.type == device
    for b in range(batch):
        sample_points = reference_back_project(depth[b], *intrinsics[b])
        expected = reference_voxelize(
            sample_points, depth[b].reshape(-1) > 0, ref[b], cube[b], GRID, matrices[b].double().numpy()
        )
        assert expected.sum() > 200  # the blob is inside the cube, the wall outside
        np.testing.assert_array_equal(volumes[b, 0].cpu().numpy(), expected)


@pytest.mark.parametrize("device", DEVICES)
def test_voxelize_float32_points_equal_reference(device: str) -> None:
    rng = np.random.default_rng(2)
    batch, count = 2, 4000
    ref, cube = _frames(batch, rng)
    points = (ref[:, None] + rng.uniform(-0.6, 0.6, (batch, count, 3)) * cube[:, None]).astype(np.float32)
    valid = rng.random((batch, count)) > 0.2
    matrices = augmentation_matrices(batch, torch.Generator().manual_seed(5), grid_size=GRID)
    volumes = voxelize(
        torch.tensor(points, device=device),
        torch.tensor(valid, device=device),
        torch.tensor(ref, device=device, dtype=torch.float32),
        torch.tensor(cube, device=device, dtype=torch.float32),
        GRID,
        matrices.to(device),
    )
    for b in range(batch):
        expected = reference_voxelize(
            points[b].astype(np.float64),
            valid[b],
            ref[b].astype(np.float32),
            cube[b].astype(np.float32),
            GRID,
            matrices[b].double().numpy(),
        )
        np.testing.assert_array_equal(volumes[b, 0].cpu().numpy(), expected)


def test_voxelize_axis_order_floor_and_bounds() -> None:
    ref = torch.tensor([[0.0, 0.0, 400.0]])
    cube = torch.tensor([[88.0, 88.0, 88.0]])  # 1 mm per voxel: grid coordinate = p - ref + 44
    grid_points = torch.tensor(
        [
            [1.5, 2.5, 3.5],
            [0.0, 0.0, 0.0],
            [88.0, 5.0, 5.0],
            [-0.5, 7.2, 7.2],
            [10.5, 10.5, 10.5],
            [87.99, 87.99, 87.99],
        ]
    )
    valid = torch.tensor([[True, True, True, True, False, True]])
    points = grid_points[None] - 44.0 + ref[:, None]
    volume = voxelize(points, valid, ref, cube, GRID)[0, 0]
    occupied = sorted(map(tuple, volume.nonzero().tolist()))
    # x first; the lower faces belong to the voxel, the upper face of the cube and negative coordinates do not
    # (truncation toward zero would keep -0.5 in voxel 0); invalid points are dropped.
    assert occupied == [(0, 0, 0), (1, 2, 3), (87, 87, 87)]


def test_a_joint_on_a_point_stays_on_it_under_augmentation() -> None:
    rng = np.random.default_rng(4)
    batch = 4
    ref, cube = _frames(batch, rng)
    points = torch.tensor(ref[:, None] + rng.uniform(-0.45, 0.45, (batch, 500, 3)) * cube[:, None])
    valid = torch.ones(batch, 500, dtype=torch.bool)
    ref_t, cube_t = torch.tensor(ref), torch.tensor(cube)
    for seed in range(3):
        matrices = augmentation_matrices(batch, torch.Generator().manual_seed(seed), grid_size=GRID)
        volumes = voxelize(points, valid, ref_t, cube_t, GRID, matrices)
        joints = points[:, ::25]  # (B, 20, 3): joints placed on points
        joints_grid = points_to_grid(joints, ref_t, cube_t, GRID, matrices)
        index = torch.floor(joints_grid).long()
        inside = ((index >= 0) & (index < GRID)).all(-1)
        assert inside.sum() > 40
        b = torch.arange(batch)[:, None].expand_as(inside)
        assert torch.all(volumes[b[inside], 0, index[inside][:, 0], index[inside][:, 1], index[inside][:, 2]] == 1)
        # and with the un-augmented grid, the joint's voxel is generally another one: the transform is applied
        plain = torch.floor(points_to_grid(joints, ref_t, cube_t, GRID)).long()
        assert (plain != index).any(-1).float().mean() > 0.5


# ---------------------------------------------------------------------------------------------------------------
# grid <-> mm


def test_points_to_grid_hand_computed_and_round_trip() -> None:
    ref = torch.tensor([[0.0, 0.0, 400.0]])
    cube = torch.tensor([[200.0, 250.0, 300.0]])
    points = torch.tensor([[[100.0, -50.0, 400.0], [0.0, 0.0, 400.0], [-100.0, 125.0, 550.0]]])
    expected = torch.tensor([[[88.0, 44 - 50 / 250 * 88, 44.0], [44.0, 44.0, 44.0], [0.0, 88.0, 88.0]]])
    torch.testing.assert_close(points_to_grid(points, ref, cube, GRID), expected)
    rng = np.random.default_rng(6)
    ref64, cube64 = (torch.tensor(a) for a in _frames(3, rng))
    points64 = ref64[:, None] + torch.tensor(rng.uniform(-150, 150, (3, 21, 3)))
    matrices = augmentation_matrices(3, torch.Generator().manual_seed(1), grid_size=GRID)
    for transform in (None, matrices):
        grid64 = points_to_grid(points64, ref64, cube64, GRID, transform)
        torch.testing.assert_close(grid_to_points(grid64, ref64, cube64, GRID, transform), points64, rtol=0, atol=1e-9)
        grid32 = points_to_grid(points64.float(), ref64.float(), cube64.float(), GRID, transform)
        assert grid32.dtype == torch.float32
        back = grid_to_points(grid32, ref64.float(), cube64.float(), GRID, transform)
        torch.testing.assert_close(back, points64.float(), rtol=0, atol=1e-3)


def test_rescale_grid_maps_88_voxel_pairs_onto_44_voxels() -> None:
    # 88-grid voxels 2k and 2k + 1 (centres 2k + 0.5, 2k + 1.5; shared edge 2k + 1) form 44-grid voxel k (centre
    # k + 0.5); the cube's faces 0 and 88 map to 0 and 44.
    coords88 = torch.tensor([[0.0, 88.0, 2 * 7 + 1.0], [2 * 7 + 0.5, 2 * 7 + 1.5, 2 * 43 + 1.0]])
    torch.testing.assert_close(rescale_grid(coords88, GRID, OUT), torch.tensor([[0.0, 44.0, 7.5], [7.25, 7.75, 43.5]]))
    assert torch.equal(rescale_grid(rescale_grid(coords88, GRID, OUT), OUT, GRID), coords88)


# ---------------------------------------------------------------------------------------------------------------
# targets


def test_gaussian_targets_hand_computed() -> None:
    joints = torch.tensor([[[10.5, 20.5, 30.5], [10.0, 20.5, 30.5]]])  # a voxel centre; half a voxel lower in x
    targets = gaussian_targets(joints, OUT, sigma=1.7)
    assert targets.shape == (1, 2, OUT, OUT, OUT)
    two_sigma2 = 2 * 1.7**2
    cases = {
        (0, 10, 20, 30): 1.0,
        (0, 11, 20, 30): math.exp(-1 / two_sigma2),
        (0, 9, 21, 31): math.exp(-3 / two_sigma2),
        (0, 10, 22, 30): math.exp(-4 / two_sigma2),
        (1, 10, 20, 30): math.exp(-0.25 / two_sigma2),
        (1, 9, 20, 30): math.exp(-0.25 / two_sigma2),
        (1, 12, 19, 30): math.exp(-(2.5**2 + 1) / two_sigma2),  # centre 12.5 is 2.5 from x = 10
    }
    for (joint, x, y, z), value in cases.items():
        assert targets[0, joint, x, y, z].item() == pytest.approx(value, rel=1e-6)
    assert targets.max() <= 1.0 and targets[0, 0].sum() > 10  # unnormalised: the peak is 1, not the sum


def test_onehot_trilinear_targets_hand_computed() -> None:
    joints = torch.tensor([[[10.75, 20.5, 30.25], [-3.0, 43.9, 0.5]]])
    targets = onehot_trilinear_targets(joints, OUT)
    # joint 0: x between centres 10.5 and 11.5 (f = 0.25), y on centre 20.5, z between 29.5 and 30.5 (f = 0.75)
    expected = {
        (10, 20, 30): 0.75 * 0.75,
        (11, 20, 30): 0.25 * 0.75,
        (10, 20, 29): 0.75 * 0.25,
        (11, 20, 29): 0.25 * 0.25,
    }
    nonzero = {tuple(i): targets[0, 0][tuple(i)].item() for i in targets[0, 0].nonzero().tolist()}
    assert nonzero.keys() == expected.keys()
    for key, value in expected.items():
        assert nonzero[key] == pytest.approx(value, abs=1e-6)
    # joint 1 lies outside the centres' range in x and y: clamped onto the corner centre (0.5, 43.5, 0.5)
    assert targets[0, 1, 0, 43, 0].item() == pytest.approx(1.0) and targets[0, 1].sum().item() == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------------------------
# decoders


def _sub_voxel_joints() -> torch.Tensor:
    rng = np.random.default_rng(9)
    return torch.tensor(rng.uniform(14.0, 30.0, (2, 5, 3)), dtype=torch.float32)  # (B, J, 3), 14+ voxels inside


def test_decode_argmax_returns_the_voxel_centre_x_first() -> None:
    heatmaps = torch.zeros(2, 3, OUT, OUT, OUT)
    peaks = [[(3, 17, 40), (0, 0, 0), (43, 1, 22)], [(5, 6, 7), (40, 30, 20), (43, 43, 43)]]
    for b, joints in enumerate(peaks):
        for j, (x, y, z) in enumerate(joints):
            heatmaps[b, j, x, y, z] = 2.0
            heatmaps[b, j, min(x + 1, 43), y, z] = 1.0  # a lower neighbour does not move a hard argmax
    expected = torch.tensor(peaks, dtype=torch.float32) + 0.5
    torch.testing.assert_close(decode_argmax(heatmaps), expected)
    joints = _sub_voxel_joints()
    torch.testing.assert_close(decode_argmax(gaussian_targets(joints, OUT)), torch.floor(joints) + 0.5)


def test_decode_argmax_centroid_is_exact_on_trilinear_targets() -> None:
    joints = _sub_voxel_joints()
    torch.testing.assert_close(decode_argmax_centroid(onehot_trilinear_targets(joints, OUT)), joints, rtol=0, atol=1e-5)
    centres = torch.floor(joints) + 0.5  # a symmetric Gaussian on a voxel centre: its centre
    torch.testing.assert_close(decode_argmax_centroid(gaussian_targets(centres, OUT)), centres, rtol=0, atol=1e-5)
    # sub-voxel Gaussian: the 3x3x3 centroid is biased toward the peak voxel, but closer than the argmax
    gaussian = gaussian_targets(joints, OUT)
    centroid_error = (decode_argmax_centroid(gaussian) - joints).abs()
    assert torch.all(centroid_error <= (decode_argmax(gaussian) - joints).abs() + 1e-6)
    # a peak in a corner: the neighbours outside the volume carry no weight
    corner = torch.zeros(1, 1, OUT, OUT, OUT)
    corner[0, 0, 0, 0, 0], corner[0, 0, 1, 0, 0] = 3.0, 1.0
    torch.testing.assert_close(decode_argmax_centroid(corner), torch.tensor([[[0.75, 0.5, 0.5]]]))


def test_decode_soft_argmax_is_exact_on_log_targets() -> None:
    joints = _sub_voxel_joints().double()
    # softmax(log w) = w: the expectation of the trilinear weights is the joint.
    logits = torch.log(onehot_trilinear_targets(joints, OUT).clamp_min(1e-300))
    torch.testing.assert_close(decode_soft_argmax(logits), joints, rtol=0, atol=1e-9)
    # softmax(log Gaussian) is a discrete Gaussian, whose mean equals the joint up to exp(-2 pi^2 sigma^2) ~ 1e-25
    # (Poisson summation) and the tails cut off at the faces (joints >= 14 voxels inside: ~1e-15)
    gaussian_logits = torch.log(gaussian_targets(joints, OUT))
    torch.testing.assert_close(decode_soft_argmax(gaussian_logits), joints, rtol=0, atol=1e-9)
    half = decode_soft_argmax(torch.log(gaussian_targets(joints.float(), OUT)).bfloat16())
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, joints.float(), rtol=0, atol=0.1)


# ---------------------------------------------------------------------------------------------------------------
# losses


def test_integral_loss_hand_computed_and_masked() -> None:
    joints = torch.tensor([[[10.75, 20.5, 30.25], [30.5, 5.5, 12.5]]], dtype=torch.float64)
    weights = onehot_trilinear_targets(joints, OUT)
    logits = torch.log(weights.clamp_min(1e-300))
    # cross-entropy = entropy of the target (joint 0: two axes split 0.75 / 0.25; joint 1: one voxel), L1 = 0
    entropy_axis = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert integral_loss(logits, joints).item() == pytest.approx(0.5 * (2 * entropy_axis + 0.0) / 2, rel=1e-9)
    # uniform logits: cross-entropy log(S^3) for every joint, L1 the mean |centre of the volume - joint|
    uniform = torch.zeros(1, 2, OUT, OUT, OUT, dtype=torch.float64, requires_grad=True)
    l1 = (joints - OUT / 2).abs().mean(-1)  # (1, 2)
    loss = integral_loss(uniform, joints)
    assert loss.item() == pytest.approx(0.5 * 3 * math.log(OUT) + 0.5 * l1.mean().item(), rel=1e-9)
    masked = integral_loss(uniform, joints, valid=torch.tensor([[1.0, 0.0]]))
    assert masked.item() == pytest.approx((0.5 * 3 * math.log(OUT) + 0.5 * l1[0, 0].item()) / 2, rel=1e-9)
    loss.backward()
    assert torch.isfinite(uniform.grad).all() and uniform.grad.abs().sum() > 0


def test_gaussian_mse_loss_zero_at_target_and_gaussian_energy_at_zero() -> None:
    joints = _sub_voxel_joints().double()
    assert gaussian_mse_loss(gaussian_targets(joints, OUT, 1.7), joints, 1.7).item() == pytest.approx(0.0, abs=1e-20)
    # sum over an unbounded grid of exp(-d^2 / sigma^2) per axis is sigma sqrt(pi) (Poisson summation; the error,
    # ~exp(-pi^2 sigma^2), and the tails beyond the volume are far below the tolerance)
    zero = torch.zeros(2, 5, OUT, OUT, OUT, dtype=torch.float64)
    expected = (1.7 * math.sqrt(math.pi)) ** 3 / OUT**3
    assert gaussian_mse_loss(zero, joints, 1.7).item() == pytest.approx(expected, rel=1e-6)


def test_decoded_joint_round_trips_to_mm() -> None:
    """mm -> 88 grid (augmented) -> 44 grid -> target -> decoder -> 88 grid -> mm gives the joint back."""
    rng = np.random.default_rng(11)
    ref, cube = (torch.tensor(a, dtype=torch.float32) for a in _frames(2, rng))
    joints_mm = ref[:, None] + torch.tensor(rng.uniform(-20, 20, (2, 21, 3)), dtype=torch.float32)
    matrices = augmentation_matrices(2, torch.Generator().manual_seed(2), grid_size=GRID)
    joints_out = rescale_grid(points_to_grid(joints_mm, ref, cube, GRID, matrices), GRID, OUT)
    for decoded in (
        decode_argmax_centroid(onehot_trilinear_targets(joints_out, OUT)),
        decode_soft_argmax(torch.log(gaussian_targets(joints_out, OUT))),
    ):
        back = grid_to_points(rescale_grid(decoded, OUT, GRID), ref, cube, GRID, matrices)
        torch.testing.assert_close(back, joints_mm, rtol=0, atol=0.01)
