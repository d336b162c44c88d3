"""Depth maps to occupancy voxel grids, batched on the device of the input (V2V-PoseNet's input stage).

Conventions (docs/conventions.md, "Depth maps and voxels (V2V)"):

- Camera space in mm: x right, y down, z forward (depth > 0); pixel centres at integer (u, v).
- A cube of side ``cube_mm`` (per axis) centred on the reference point is divided into ``grid_size`` voxels per
  axis. The grid coordinate of a point is ``g = (p_mm - ref_mm) / cube_mm * grid_size + grid_size / 2``, so the
  cube spans [0, grid_size) on each axis; voxel i covers [i, i + 1) and its centre is at i + 0.5.
- Volumes are indexed ``volume[..., x_index, y_index, z_index]`` (x first).
- Augmentation is one 4x4 affine per sample acting on grid coordinates (``augmentation_matrices``); the same
  matrix is applied to the points (``voxelize``) and to the joints (``points_to_grid``), so they move together.

The heatmap targets, decoders and losses on the network's output grid live in common/geometry/voxel_targets.py
and are re-exported here, so ``common.geometry.voxel`` is the one import for the V2V geometry.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from common.geometry.voxel_targets import (
    decode_argmax,
    decode_argmax_centroid,
    decode_soft_argmax,
    gaussian_mse_loss,
    gaussian_targets,
    integral_loss,
    onehot_trilinear_targets,
    rescale_grid,
)

__all__ = [
    "augmentation_matrices",
    "decode_argmax",
    "decode_argmax_centroid",
    "decode_soft_argmax",
    "depth_to_points",
    "gaussian_mse_loss",
    "gaussian_targets",
    "grid_to_points",
    "identity_matrices",
    "integral_loss",
    "onehot_trilinear_targets",
    "points_to_grid",
    "rescale_grid",
    "voxelize",
]


def depth_to_points(depth_mm: Tensor, intrinsics: Tensor) -> tuple[Tensor, Tensor]:
    """Back-projects every pixel of a batch of depth maps to camera space (pinhole model).

    A pixel (u, v) (column, row; pixel centres at integers) with depth z becomes
    ``((u - cx) * z / fx, (v - cy) * z / fy, z)``: y points down, as everywhere in this framework (upstream V2V
    flips y for MSRA and NYU; we do not).

    Args:
        depth_mm: (B, H, W) depth in mm along the optical axis; 0 (or non-finite) = no measurement.
        intrinsics: (B, 4) fx, fy, cx, cy in pixels.

    Returns:
        points_mm: (B, H*W, 3) camera-space mm, in row-major pixel order (index v * W + u); pixels without depth
            give (0, 0, 0) or non-finite values and are marked invalid.
        valid: (B, H*W) bool, True where the depth is finite and > 0.
    """
    if depth_mm.dim() != 3 or intrinsics.shape != (depth_mm.shape[0], 4):
        raise ValueError(
            f"expected depth (B, H, W) and intrinsics (B, 4), got {tuple(depth_mm.shape)} and {tuple(intrinsics.shape)}"
        )
    batch, height, width = depth_mm.shape
    dtype = torch.promote_types(depth_mm.dtype, torch.float32)
    depth = depth_mm.to(dtype)
    fx, fy, cx, cy = intrinsics.to(device=depth.device, dtype=dtype).unbind(-1)  # each (B,)
    u = torch.arange(width, device=depth.device, dtype=dtype)  # (W,)
    v = torch.arange(height, device=depth.device, dtype=dtype)  # (H,)
    # The per-column and per-row factors are small; one full-size multiply each for x and y.
    x = depth * ((u[None, None, :] - cx[:, None, None]) / fx[:, None, None])  # (B, H, W)
    y = depth * ((v[None, :, None] - cy[:, None, None]) / fy[:, None, None])  # (B, H, W)
    points_mm = torch.stack((x, y, depth), dim=-1).reshape(batch, height * width, 3)
    valid = (torch.isfinite(depth) & (depth > 0)).reshape(batch, height * width)
    return points_mm, valid


def identity_matrices(
    batch: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """(B, 4, 4) identity transforms: no augmentation (evaluation); the same as ``transform=None``."""
    return torch.eye(4, device=device, dtype=dtype).expand(batch, 4, 4).clone()


def augmentation_matrices(
    batch: int,
    generator: torch.Generator | None = None,
    *,
    grid_size: int,
    scale: tuple[float, float] = (0.8, 1.2),
    rotation_deg: float = 40.0,
    translation_voxels: float = 8.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """One random affine per sample on grid coordinates: V2V-PoseNet's scale, rotation and translation.

    ``g' = R_z(theta) * s * (g - c) + c + t`` with c = (G/2, G/2, G/2) the grid centre, s ~ U[scale] isotropic,
    theta ~ U[-rotation_deg, rotation_deg] about the z axis (the x-y plane rotates, z does not), and
    t ~ U[-translation_voxels, translation_voxels] per axis (continuous, as the PyTorch port; the Lua original
    draws integer crops of a 96-grid, i.e. +-4 voxels). The values are drawn on the generator's device (CPU by
    default) and the matrices are moved to ``device``, so a CPU generator gives the same augmentation for a
    CUDA batch.

    Args:
        batch: B, the number of matrices.
        generator: the random source (None: torch's global generator).
        grid_size: G, voxels per axis of the input grid (88 in V2V-PoseNet).
        scale: (low, high) of the isotropic scale factor.
        rotation_deg: the largest rotation about z, degrees.
        translation_voxels: the largest shift per axis, input-grid voxels.
        device: where the matrices live (None: the generator's device).
        dtype: the matrices' dtype.

    Returns:
        (B, 4, 4) homogeneous matrices mapping input-grid coordinates (column vectors) to augmented ones.
    """
    draw_device = generator.device if generator is not None else torch.device("cpu")
    uniform = torch.rand(batch, 5, generator=generator, device=draw_device, dtype=torch.float64)  # (B, 5)
    s = scale[0] + (scale[1] - scale[0]) * uniform[:, 0]  # (B,)
    theta = math.radians(rotation_deg) * (2.0 * uniform[:, 1] - 1.0)  # (B,)
    t = translation_voxels * (2.0 * uniform[:, 2:] - 1.0)  # (B, 3)
    cos, sin = torch.cos(theta), torch.sin(theta)
    linear = torch.zeros(batch, 3, 3, dtype=torch.float64, device=draw_device)
    linear[:, 0, 0], linear[:, 0, 1] = s * cos, -s * sin
    linear[:, 1, 0], linear[:, 1, 1] = s * sin, s * cos
    linear[:, 2, 2] = s
    centre = torch.full((3,), grid_size / 2.0, dtype=torch.float64, device=draw_device)
    matrices = torch.zeros(batch, 4, 4, dtype=torch.float64, device=draw_device)
    matrices[:, :3, :3] = linear
    matrices[:, :3, 3] = centre + t - linear @ centre  # so that c maps to c + t
    matrices[:, 3, 3] = 1.0
    return matrices.to(device=device if device is not None else draw_device, dtype=dtype)


def _check_frame(points: Tensor, ref_point_mm: Tensor, cube_mm: Tensor, transform: Tensor | None) -> None:
    batch = points.shape[0]
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"expected points (B, N, 3), got {tuple(points.shape)}")
    if ref_point_mm.shape != (batch, 3) or cube_mm.shape != (batch, 3):
        raise ValueError(
            f"expected ref_point_mm and cube_mm (B, 3) with B = {batch}, got "
            f"{tuple(ref_point_mm.shape)} and {tuple(cube_mm.shape)}"
        )
    if transform is not None and transform.shape != (batch, 4, 4):
        raise ValueError(f"expected transform (B, 4, 4) with B = {batch}, got {tuple(transform.shape)}")


def _mm_to_grid64(
    points_mm: Tensor, ref_point_mm: Tensor, cube_mm: Tensor, grid_size: int, transform: Tensor | None
) -> Tensor:
    """(B, N, 3) camera mm -> (B, N, 3) float64 (augmented) grid coordinates.

    float64 because voxelisation floors these values: in float32 a point within ~1e-5 voxel of a face lands on
    either side depending on the order of operations; in float64 the voxels do not depend on it (CPU, CUDA and
    the per-sample reference agree). The cost is one float64 multiply-add per point (about a third of
    ``voxelize``'s time on a CPU).
    """
    device = points_mm.device
    ref = ref_point_mm.to(device=device, dtype=torch.float64)  # (B, 3)
    voxels_per_mm = grid_size / cube_mm.to(device=device, dtype=torch.float64)  # (B, 3)
    # g = diag(voxels_per_mm) p + (G/2 - voxels_per_mm * ref), then the transform: composed into one affine
    # (B x 4 x 4 numbers) so that the N points take a single batched multiply-add.
    linear = torch.diag_embed(voxels_per_mm)  # (B, 3, 3)
    shift = grid_size / 2.0 - voxels_per_mm * ref  # (B, 3)
    if transform is not None:
        matrix = transform.to(device=device, dtype=torch.float64)
        linear = matrix[:, :3, :3] @ linear
        shift = (matrix[:, :3, :3] @ shift[:, :, None])[..., 0] + matrix[:, :3, 3]
    return torch.baddbmm(shift[:, None, :], points_mm.to(torch.float64), linear.transpose(-1, -2))  # (B, N, 3)


def points_to_grid(
    points_mm: Tensor, ref_point_mm: Tensor, cube_mm: Tensor, grid_size: int, transform: Tensor | None = None
) -> Tensor:
    """Camera-space points (joints) to input-grid coordinates, through the same transform as ``voxelize``.

    Args:
        points_mm: (B, J, 3) camera-space mm.
        ref_point_mm: (B, 3) the cube centre, camera-space mm.
        cube_mm: (B, 3) the cube's side per axis, mm.
        grid_size: G, voxels per axis.
        transform: (B, 4, 4) augmentation on grid coordinates (``augmentation_matrices``); None = identity.

    Returns:
        (B, J, 3) continuous grid coordinates (voxel i spans [i, i + 1)), dtype of points_mm (at least float32).
    """
    _check_frame(points_mm, ref_point_mm, cube_mm, transform)
    grid = _mm_to_grid64(points_mm, ref_point_mm, cube_mm, grid_size, transform)
    return grid.to(torch.promote_types(points_mm.dtype, torch.float32))


def grid_to_points(
    grid: Tensor, ref_point_mm: Tensor, cube_mm: Tensor, grid_size: int, transform: Tensor | None = None
) -> Tensor:
    """Input-grid coordinates back to camera-space mm: the inverse of ``points_to_grid``.

    Args:
        grid: (B, J, 3) input-grid coordinates (a decoder's output-grid coordinates go through ``rescale_grid``
            first).
        ref_point_mm: (B, 3) the cube centre, camera-space mm.
        cube_mm: (B, 3) the cube's side per axis, mm.
        grid_size: G, voxels per axis.
        transform: (B, 4, 4) the augmentation the grid coordinates are in; None = identity.

    Returns:
        (B, J, 3) camera-space mm, dtype of grid (at least float32); differentiable in grid.
    """
    _check_frame(grid, ref_point_mm, cube_mm, transform)
    dtype = torch.promote_types(grid.dtype, torch.float32)
    grid = grid.to(dtype)
    if transform is not None:
        inverse = torch.linalg.inv(transform.to(device=grid.device, dtype=torch.float64)).to(dtype)  # (B, 4, 4)
        grid = grid @ inverse[:, :3, :3].transpose(-1, -2) + inverse[:, None, :3, 3]  # (B, J, 3)
    ref = ref_point_mm.to(device=grid.device, dtype=dtype)[:, None, :]
    cube = cube_mm.to(device=grid.device, dtype=dtype)[:, None, :]
    return (grid - grid_size / 2.0) / grid_size * cube + ref


def voxelize(
    points_mm: Tensor,
    valid: Tensor,
    ref_point_mm: Tensor,
    cube_mm: Tensor,
    grid_size: int,
    transform: Tensor | None = None,
) -> Tensor:
    """Binary occupancy grids of a batch of point clouds, with one scatter for the whole batch.

    Each valid point goes to the voxel ``floor(g)`` of its (augmented) grid coordinate g; points with any index
    outside [0, G) are dropped. Upstream, the Lua original floors the normalised coordinate before augmenting
    and rounds after it; the PyTorch port keeps it continuous and truncates toward zero at the scatter (which
    merges (-1, 1) into voxel 0). We floor once, after the transform, so voxel i is exactly [i, i + 1) and its
    centre i + 0.5 is what the decoders return.

    Args:
        points_mm: (B, N, 3) camera-space mm (``depth_to_points``).
        valid: (B, N) bool, False for points to ignore (no depth).
        ref_point_mm: (B, 3) the cube centre, camera-space mm.
        cube_mm: (B, 3) the cube's side per axis, mm.
        grid_size: G, voxels per axis.
        transform: (B, 4, 4) augmentation on grid coordinates; None = identity.

    Returns:
        (B, 1, G, G, G) float32 occupancy in {0, 1}, indexed [b, 0, x, y, z], on the points' device.
    """
    _check_frame(points_mm, ref_point_mm, cube_mm, transform)
    if valid.shape != points_mm.shape[:2]:
        raise ValueError(f"expected valid {tuple(points_mm.shape[:2])}, got {tuple(valid.shape)}")
    batch, device = points_mm.shape[0], points_mm.device
    cell = torch.floor_(_mm_to_grid64(points_mm, ref_point_mm, cube_mm, grid_size, transform))  # (B, N, 3)
    inside = valid.to(device) & ((cell >= 0) & (cell < grid_size)).all(-1)  # (B, N)
    voxels_per_sample = grid_size**3
    # Row-major x, y, z flat index of the cell; exact in float64 (integers below 2^53).
    strides = torch.tensor([grid_size * grid_size, grid_size, 1], device=device, dtype=torch.float64)
    flat = (cell @ strides).long() + torch.arange(batch, device=device)[:, None] * voxels_per_sample  # (B, N)
    # Dropped points go to one spare slot past the end instead of being masked out: a fixed-size scatter, no
    # data-dependent shape, so no host-device synchronisation on CUDA.
    flat = torch.where(inside, flat, batch * voxels_per_sample)
    occupancy = torch.zeros(batch * voxels_per_sample + 1, device=device, dtype=torch.float32)
    occupancy.scatter_(0, flat.reshape(-1), 1.0)
    return occupancy[:-1].view(batch, 1, grid_size, grid_size, grid_size)
