"""Tests of common/geometry: rotations against scipy, camera, soft-argmax, Procrustes."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from common import geometry as geo

DTYPES = [torch.float32, torch.float64]
ATOL = {torch.float32: 1e-5, torch.float64: 1e-10}


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    torch.manual_seed(0)
    return request.param


def random_rotations(n: int, seed: int = 0) -> Rotation:
    return Rotation.random(n, random_state=seed)


def t(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(array, dtype=dtype)


# Rotations ------------------------------------------------------------------------------------------------------------


def test_axis_angle_rotmat_rot6d_round_trips_match_scipy(dtype: torch.dtype) -> None:
    rot = random_rotations(24)
    aa, mat = t(rot.as_rotvec(), dtype).reshape(2, 12, 3), t(rot.as_matrix(), dtype).reshape(2, 12, 3, 3)
    atol = ATOL[dtype] * 10
    assert geo.axis_angle_to_rotmat(aa).dtype == dtype
    torch.testing.assert_close(geo.axis_angle_to_rotmat(aa), mat, atol=atol, rtol=0)
    torch.testing.assert_close(geo.rotmat_to_axis_angle(mat), aa, atol=atol, rtol=0)
    rot6d = geo.axis_angle_to_rot6d(aa)  # (2, 12, 6)
    assert rot6d.shape == (2, 12, 6)
    torch.testing.assert_close(geo.rot6d_to_rotmat(rot6d), mat, atol=atol, rtol=0)
    torch.testing.assert_close(geo.rot6d_to_axis_angle(rot6d), aa, atol=atol, rtol=0)
    torch.testing.assert_close(geo.rot6d_to_rotmat(geo.rotmat_to_rot6d(mat)), mat, atol=atol, rtol=0)


def test_rot6d_layout_is_row_major_first_two_columns(dtype: torch.dtype) -> None:
    mat = t(random_rotations(1, seed=3).as_matrix()[0], dtype)
    col0, col1 = mat[:, 0], mat[:, 1]
    x = torch.stack([col0[0], col1[0], col0[1], col1[1], col0[2], col1[2]])  # (x0, x2, x4) = column 0
    torch.testing.assert_close(geo.rotmat_to_rot6d(mat), x, atol=0, rtol=0)
    torch.testing.assert_close(geo.rot6d_to_rotmat(x), mat, atol=ATOL[dtype], rtol=0)
    # Gram-Schmidt keeps column 0's direction and removes column 0 from column 1, whatever their scales.
    raw = torch.stack([3 * col0, 2 * col1 + 0.5 * col0], dim=-1).flatten()  # (6,) row-major (3, 2)
    torch.testing.assert_close(geo.rot6d_to_rotmat(raw), mat, atol=ATOL[dtype] * 10, rtol=0)


def test_zero_and_small_angles(dtype: torch.dtype) -> None:
    eye = torch.eye(3, dtype=dtype)
    assert torch.equal(geo.axis_angle_to_rotmat(torch.zeros(3, dtype=dtype)), eye)
    assert torch.equal(geo.rotmat_to_axis_angle(eye), torch.zeros(3, dtype=dtype))
    assert torch.equal(geo.rot6d_to_axis_angle(geo.rotmat_to_rot6d(eye)), torch.zeros(3, dtype=dtype))
    aa = t(np.array([[1e-8, 0, 0], [0, -1e-8, 0], [3e-9, -4e-9, 5e-9]]), dtype)
    mat = geo.axis_angle_to_rotmat(aa)
    torch.testing.assert_close(mat, t(Rotation.from_rotvec(aa.double().numpy()).as_matrix(), dtype), atol=1e-15, rtol=0)
    torch.testing.assert_close(geo.rotmat_to_axis_angle(mat), aa, atol=1e-15, rtol=1e-6)
    torch.testing.assert_close(geo.rot6d_to_axis_angle(geo.rotmat_to_rot6d(mat)), aa, atol=1e-15, rtol=1e-6)


@pytest.mark.parametrize("axis", [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [0.3, -0.5, 0.8]])
def test_angles_at_and_near_pi(dtype: torch.dtype, axis: list) -> None:
    unit = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    # Exactly pi: both signs of the vector are the same rotation, so compare matrices and the angle.
    mat = geo.axis_angle_to_rotmat(t(unit * math.pi, dtype))
    torch.testing.assert_close(mat, t(Rotation.from_rotvec(unit * math.pi).as_matrix(), dtype), atol=1e-6, rtol=0)
    for recovered in (geo.rotmat_to_axis_angle(mat), geo.rot6d_to_axis_angle(geo.rotmat_to_rot6d(mat))):
        assert torch.isfinite(recovered).all()
        assert abs(recovered.norm().item() - math.pi) < 1e-6
        torch.testing.assert_close(geo.axis_angle_to_rotmat(recovered), mat, atol=1e-6, rtol=0)
    rot6d = geo.rotmat_to_rot6d(mat).clone().requires_grad_()
    geo.rot6d_to_axis_angle(rot6d).sum().backward()
    assert torch.isfinite(rot6d.grad).all()
    # Near pi the vector is unique once the gap is above the dtype's resolution.
    gap = 1e-3 if dtype == torch.float32 else 1e-7
    aa = t(unit * (math.pi - gap), dtype)
    torch.testing.assert_close(geo.rotmat_to_axis_angle(geo.axis_angle_to_rotmat(aa)), aa, atol=1e-5, rtol=0)


def test_finite_gradients_at_zero_rotation(dtype: torch.dtype) -> None:
    aa = torch.zeros(2, 3, dtype=dtype, requires_grad=True)
    (geo.axis_angle_to_rotmat(aa) * torch.randn(2, 3, 3, dtype=dtype)).sum().backward()
    assert torch.isfinite(aa.grad).all() and aa.grad.abs().sum() > 0
    rot6d = geo.rotmat_to_rot6d(torch.eye(3, dtype=dtype)).expand(2, 6).clone().requires_grad_()
    geo.rot6d_to_axis_angle(rot6d).sum().backward()
    assert torch.isfinite(rot6d.grad).all() and rot6d.grad.abs().sum() > 0
    # A degenerate (all-zero) 6D output, e.g. from a zero-initialised layer, stays finite too.
    zero6d = torch.zeros(6, dtype=dtype, requires_grad=True)
    geo.rot6d_to_axis_angle(zero6d).sum().backward()
    assert torch.isfinite(zero6d.grad).all()
    if dtype == torch.float64:  # analytic gradients equal finite differences at the identity
        assert torch.autograd.gradcheck(geo.axis_angle_to_rotmat, (torch.zeros(1, 3, dtype=dtype, requires_grad=True),))
        assert torch.autograd.gradcheck(geo.rot6d_to_axis_angle, (rot6d.detach().clone().requires_grad_(),))


def test_mirror_axis_angle_is_m_r_m(dtype: torch.dtype) -> None:
    aa = t(random_rotations(16, seed=1).as_rotvec(), dtype).reshape(4, 4, 3)
    mirror = torch.diag(t(np.array([-1.0, 1.0, 1.0]), dtype))
    expected = mirror @ geo.axis_angle_to_rotmat(aa) @ mirror  # (4, 4, 3, 3)
    torch.testing.assert_close(geo.axis_angle_to_rotmat(geo.mirror_axis_angle(aa)), expected, atol=ATOL[dtype], rtol=0)
    torch.testing.assert_close(geo.mirror_axis_angle(geo.mirror_axis_angle(aa)), aa, atol=0, rtol=0)


# Camera ---------------------------------------------------------------------------------------------------------------


def test_project_points_hand_computed_and_round_trip(dtype: torch.dtype) -> None:
    points = t(np.array([[0.1, -0.2, 2.0], [0.0, 0.0, 4.0]]), dtype)
    pixels = geo.project_points(points, (5000.0, 4000.0), (96.0, 128.0))
    # u = 5000 * 0.1 / 2 + 96 = 346, v = 4000 * -0.2 / 2 + 128 = -272; the optical axis hits the principal point.
    torch.testing.assert_close(pixels, t(np.array([[346.0, -272.0], [96.0, 128.0]]), dtype))
    batch = torch.randn(2, 5, 3, dtype=dtype) + t(np.array([0.0, 0.0, 5.0]), dtype)  # (2, 5, 3), z ~ 5 m
    focal = t(np.array([[5000.0, 5000.0], [1000.0, 1200.0]]), dtype)  # (2, 2), one camera per sample
    princpt = t(np.array([[96.0, 128.0], [320.0, 240.0]]), dtype)
    uvz = torch.cat((geo.project_points(batch, focal, princpt), batch[..., 2:]), dim=-1)  # (2, 5, 3)
    torch.testing.assert_close(geo.pixel_to_camera(uvz, focal, princpt), batch, atol=ATOL[dtype] * 10, rtol=1e-6)
    assert torch.isfinite(geo.project_points(torch.zeros(1, 3, dtype=dtype), (5000.0, 5000.0), (0.0, 0.0))).all()


def test_camera_translation_matches_hand4whole(dtype: torch.dtype) -> None:
    cam_param = t(np.array([[0.1, -0.2, 0.0], [0.0, 0.0, 30.0]]), dtype)
    trans = geo.camera_translation(cam_param, (5000.0, 5000.0), (256, 192), 2.5)
    k = 5000 * 2.5 / math.sqrt(256 * 192)
    assert abs(k - 56.38) < 5e-3
    torch.testing.assert_close(trans, t(np.array([[0.1, -0.2, k / 2], [0.0, 0.0, k]]), dtype))


# Heatmaps -------------------------------------------------------------------------------------------------------------


def test_soft_argmax_hand_computed(dtype: torch.dtype) -> None:
    logits = torch.zeros(2, 3, 4, 5, 6, dtype=dtype)  # (B, J, D, H, W)
    logits[0, 0, 1, 2, 3] = 100.0  # one peak at x=3, y=2, z=1
    logits[0, 1, 0, 1, 1] = logits[0, 1, 2, 3, 5] = 100.0  # two equal peaks: midpoint (3, 2, 1)
    logits[0, 2, 0, 0, :2] = t(np.array([0.0, math.log(3.0)]), dtype) + 100.0  # probs 1/4, 3/4 -> x = 0.75
    coords, probs = geo.soft_argmax_3d(logits)
    assert coords.shape == (2, 3, 3) and probs.shape == logits.shape and coords.dtype == dtype
    expected = t(np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [0.75, 0.0, 0.0]]), dtype)
    torch.testing.assert_close(coords[0], expected)
    torch.testing.assert_close(coords[1], t(np.array([[2.5, 2.0, 1.5]] * 3), dtype))  # uniform -> centre
    torch.testing.assert_close(probs.sum((-3, -2, -1)), torch.ones(2, 3, dtype=dtype))
    coords2d, probs2d = geo.soft_argmax_2d(logits[:, :, 1])  # (B, J, H, W) slice through the first peak
    torch.testing.assert_close(coords2d[0, 0], t(np.array([3.0, 2.0]), dtype))
    torch.testing.assert_close(coords2d[1], t(np.array([[2.5, 2.0]] * 3), dtype))
    assert probs2d.shape == (2, 3, 5, 6)


def test_soft_argmax_matches_brute_force_and_bf16() -> None:
    logits = torch.randn(2, 4, 3, 5, 6, dtype=torch.float64) * 3
    probs = torch.softmax(logits.flatten(-3), -1).reshape(logits.shape)
    z, y, x = torch.meshgrid(torch.arange(3.0), torch.arange(5.0), torch.arange(6.0), indexing="ij")
    grid = torch.stack((x, y, z), dim=-1).double()  # (D, H, W, 3) voxel centres as (x, y, z)
    expected = (probs[..., None] * grid).sum((-4, -3, -2))  # (2, 4, 3)
    torch.testing.assert_close(geo.soft_argmax_3d(logits)[0], expected)
    coords, half_probs = geo.soft_argmax_3d(logits.bfloat16())
    assert coords.dtype == half_probs.dtype == torch.bfloat16
    torch.testing.assert_close(coords.double(), expected, atol=0.05, rtol=0.01)
    peak = torch.full((1, 8, 8), -1e4, dtype=torch.bfloat16)  # large logits: exp would overflow without the max shift
    peak[0, 6, 1] = 1e4
    assert torch.equal(geo.soft_argmax_2d(peak)[0].float(), torch.tensor([[1.0, 6.0]]))


# Procrustes -----------------------------------------------------------------------------------------------------------


def make_similarity(dtype: torch.dtype, batch: tuple = (2, 3), n: int = 20) -> tuple:
    rot = t(random_rotations(int(np.prod(batch)), seed=2).as_matrix(), dtype).reshape(*batch, 3, 3)
    scale = torch.rand(batch, dtype=dtype) + 0.5  # (2, 3)
    trans = torch.randn(*batch, 3, dtype=dtype)  # (2, 3, 3)
    source = torch.randn(*batch, n, 3, dtype=dtype)  # (2, 3, N, 3)
    target = scale[..., None, None] * source @ rot.transpose(-1, -2) + trans[..., None, :]
    return source, target, scale, rot, trans


def test_procrustes_recovers_known_similarity(dtype: torch.dtype) -> None:
    source, target, scale, rot, trans = make_similarity(dtype)
    fit = geo.procrustes_transform(source, target)
    for got, want in zip(fit, (scale, rot, trans), strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(geo.similarity_procrustes(source, target), target, atol=1e-5, rtol=0)
    rigid_target = source @ rot.transpose(-1, -2) + trans[..., None, :]
    torch.testing.assert_close(geo.rigid_align(source, rigid_target), rigid_target, atol=1e-5, rtol=0)
    assert torch.equal(geo.procrustes_transform(source, target, with_scale=False).scale, torch.ones_like(scale))


def test_procrustes_reflection_target_gives_proper_rotation(dtype: torch.dtype) -> None:
    source = torch.randn(30, 3, dtype=dtype)
    target = source * t(np.array([-1.0, 1.0, 1.0]), dtype)  # a mirror image: no rotation reaches it
    fit = geo.procrustes_transform(source, target)
    torch.testing.assert_close(torch.linalg.det(fit.rotation), torch.ones((), dtype=dtype))
    src_c, tgt_c = (p - p.mean(0) for p in (source, target))
    best, _ = Rotation.align_vectors(tgt_c.double().numpy(), src_c.double().numpy())  # Kabsch, det +1
    torch.testing.assert_close(fit.rotation, t(best.as_matrix(), dtype), atol=1e-5, rtol=0)
    assert fit.scale > 0


def test_procrustes_zero_weights_ignore_outliers(dtype: torch.dtype) -> None:
    source, target, scale, rot, trans = make_similarity(dtype)
    weights = torch.ones(source.shape[:-1], dtype=dtype)  # (2, 3, N)
    target[..., :4, :] += 10.0  # outliers
    weights[..., :4] = 0.0
    fit = geo.procrustes_transform(source, target, weights)
    torch.testing.assert_close(fit.rotation, rot, atol=1e-5, rtol=0)
    torch.testing.assert_close(fit.scale, scale, atol=1e-5, rtol=0)
    aligned = geo.similarity_procrustes(source, target, weights)
    torch.testing.assert_close(aligned[..., 4:, :], target[..., 4:, :], atol=1e-5, rtol=0)


def test_procrustes_degenerate_inputs_are_finite(dtype: torch.dtype) -> None:
    target = torch.randn(2, 5, 3, dtype=dtype)
    same = torch.ones(2, 5, 3, dtype=dtype).requires_grad_()  # all source points equal
    fit = geo.procrustes_transform(same, target)
    torch.testing.assert_close(fit.rotation, torch.eye(3, dtype=dtype).expand(2, 3, 3))
    aligned = geo.similarity_procrustes(same, target)
    torch.testing.assert_close(aligned, target.mean(-2, keepdim=True).expand_as(target))
    aligned.sum().backward()
    assert torch.isfinite(same.grad).all()
    zero_w = torch.zeros(2, 5, dtype=dtype)
    for fn in (geo.similarity_procrustes, geo.rigid_align):
        assert torch.isfinite(fn(target, target.flip(-2), zero_w)).all()
        assert torch.isfinite(fn(target[:, :1], target[:, 1:2])).all()  # a single point
    line = torch.linspace(0, 1, 5, dtype=dtype)[:, None] * t(np.array([1.0, 2.0, 3.0]), dtype)  # colinear
    fit = geo.procrustes_transform(line, line.flip(0))
    assert all(torch.isfinite(x).all() for x in fit)
    torch.testing.assert_close(torch.linalg.det(fit.rotation), torch.ones((), dtype=dtype))
