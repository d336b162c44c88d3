"""Volumetric unprojection (Learnable Triangulation's volumetric model): a cuboid of voxel centres in the world,
per-view feature maps sampled at the voxels' projections, and the views aggregated into one volume.

Sampling convention: pixel centres at integer coordinates (docs/conventions.md). A pixel (u, v) of an h x w map
is normalised for ``F.grid_sample`` as x = 2 u / (w - 1) - 1 and y = 2 v / (h - 1) - 1 with
``align_corners=True``, so that -1 and +1 are the centres of the first and last pixels. x is normalised by the
width and y by the height; upstream swapped the two (dividing x by the map's height), which only agreed for
square maps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["AGGREGATION_METHODS", "aggregate_volumes", "cuboid_grid", "unproject_features"]

AGGREGATION_METHODS = ("sum", "max", "conf", "conf_norm", "softmax")


def cuboid_grid(
    center_world: Tensor,
    side: float,
    grid_size: int,
    rotation_about_vertical_rad: Tensor | None = None,
    vertical_axis: int = 2,
) -> Tensor:
    """World coordinates of the voxel centres of a cube.

    Voxel (i, j, k) lies at center + (-side/2 + side/(G-1) * (i, j, k)) along the world x, y, z axes (the cube's
    corner voxels sit on its faces, as upstream: spacing side / (G - 1)). With a rotation, the offsets are
    rotated by that angle about the world's vertical axis through the centre (right-handed, counter-clockwise
    seen from the positive axis): training-time augmentation of the 3D network.

    Args:
        center_world: (B, 3) cube centres, world units.
        side: cube side, world units (2500 mm upstream).
        grid_size: G voxels per side (>= 2).
        rotation_about_vertical_rad: (B,) angles, radians, or None.
        vertical_axis: 0, 1 or 2: the world's vertical axis (z for Human3.6M, y for CMU Panoptic).

    Returns:
        (B, G, G, G, 3) voxel centres, world units, dtype and device of ``center_world``.
    """
    if center_world.ndim != 2 or center_world.shape[-1] != 3:
        raise ValueError(f"center_world must have shape (B, 3), got {tuple(center_world.shape)}")
    if int(grid_size) < 2 or not side > 0:
        raise ValueError(f"need grid_size >= 2 and side > 0, got grid_size={grid_size}, side={side}")
    if vertical_axis not in (0, 1, 2):
        raise ValueError(f"vertical_axis must be 0, 1 or 2, got {vertical_axis}")
    steps = torch.linspace(-side / 2, side / 2, int(grid_size), dtype=center_world.dtype, device=center_world.device)
    offsets = torch.stack(torch.meshgrid(steps, steps, steps, indexing="ij"), dim=-1)  # (G, G, G, 3)
    offsets = offsets.expand(center_world.shape[0], -1, -1, -1, -1)  # (B, G, G, G, 3)
    if rotation_about_vertical_rad is not None:
        angles = torch.as_tensor(rotation_about_vertical_rad, dtype=center_world.dtype, device=center_world.device)
        if angles.shape != center_world.shape[:1]:
            raise ValueError(
                f"rotation_about_vertical_rad must have shape (B,) = ({center_world.shape[0]},), "
                f"got {tuple(angles.shape)}"
            )
        # The two horizontal axes in right-handed cyclic order (x->y about z, y->z about x, z->x about y).
        first, second = (vertical_axis + 1) % 3, (vertical_axis + 2) % 3
        cos, sin = torch.cos(angles)[:, None, None, None], torch.sin(angles)[:, None, None, None]
        a, b = offsets[..., first], offsets[..., second]
        rotated = [None, None, None]
        rotated[first] = cos * a - sin * b
        rotated[second] = sin * a + cos * b
        rotated[vertical_axis] = offsets[..., vertical_axis]
        offsets = torch.stack(rotated, dim=-1)
    return center_world[:, None, None, None, :] + offsets


def unproject_features(
    features: Tensor, proj_matrices: Tensor, grid_world: Tensor, view_mask: Tensor | None = None
) -> Tensor:
    """Sample every view's feature map at the projections of the voxel centres, all views in one grid_sample.

    Args:
        features: (B, V, C, h, w) per-view feature maps (h, w >= 2).
        proj_matrices: (B, V, 3, 4) world -> pixels of THAT h x w map (the camera resized to the map).
        grid_world: (B, G1, G2, G3, 3) voxel centres, world units.
        view_mask: (B, V) bool, False for a missing view; None = all present.

    Returns:
        (B, V, C, G1, G2, G3) bilinear samples in the dtype of ``features``. Voxels at or behind a camera
        (depth <= 0), voxels projecting outside the map (zero padding: a voxel within one pixel of the edge
        gets the edge pixel partially) and masked views are 0.
    """
    if features.ndim != 5:
        raise ValueError(f"features must have shape (B, V, C, h, w), got {tuple(features.shape)}")
    batch, views, channels, height, width = features.shape
    if height < 2 or width < 2:
        raise ValueError(f"feature maps must be at least 2 x 2 pixels, got {height} x {width}")
    if tuple(proj_matrices.shape) != (batch, views, 3, 4):
        raise ValueError(
            f"proj_matrices must have shape (B, V, 3, 4) = {(batch, views, 3, 4)}, got {tuple(proj_matrices.shape)}"
        )
    if grid_world.ndim != 5 or grid_world.shape[0] != batch or grid_world.shape[-1] != 3:
        raise ValueError(
            f"grid_world must have shape (B, G1, G2, G3, 3) with B = {batch}, got {tuple(grid_world.shape)}"
        )
    if view_mask is not None and tuple(view_mask.shape) != (batch, views):
        raise ValueError(f"view_mask must have shape (B, V) = {(batch, views)}, got {tuple(view_mask.shape)}")
    grid_shape = grid_world.shape[1:4]
    # Project in at least float32: world mm times focal lengths in pixels lose whole pixels in float16.
    compute_dtype = torch.promote_types(torch.promote_types(grid_world.dtype, proj_matrices.dtype), torch.float32)
    points = grid_world.reshape(batch, -1, 3).to(compute_dtype)  # (B, N, 3)
    homogeneous = torch.cat((points, torch.ones_like(points[..., :1])), dim=-1)  # (B, N, 4)
    projected = torch.einsum("bvik,bnk->bvni", proj_matrices.to(compute_dtype), homogeneous)  # (B, V, N, 3)
    depth = projected[..., 2]
    in_front = depth > 0  # (B, V, N)
    pixels = projected[..., :2] / torch.where(in_front, depth, torch.ones_like(depth)).unsqueeze(-1)
    normalizer = torch.tensor([width - 1, height - 1], dtype=compute_dtype, device=pixels.device)
    # Clamp: a voxel near a camera's plane projects to huge coordinates; |x| <= 3 is already > 1 pixel outside.
    sample_at = (2.0 * pixels / normalizer - 1.0).clamp(-3.0, 3.0)  # (B, V, N, 2), x by width, y by height
    sampled = F.grid_sample(
        features.reshape(batch * views, channels, height, width),
        sample_at.reshape(batch * views, -1, 1, 2).to(features.dtype),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )  # (B * V, C, N, 1)
    keep = in_front if view_mask is None else in_front & view_mask.to(torch.bool)[..., None]  # (B, V, N)
    sampled = sampled.reshape(batch, views, channels, -1)
    sampled = torch.where(keep.unsqueeze(2), sampled, torch.zeros((), dtype=sampled.dtype, device=sampled.device))
    return sampled.reshape(batch, views, channels, *grid_shape)


def aggregate_volumes(
    volumes: Tensor, method: str, view_confidences: Tensor | None = None, view_mask: Tensor | None = None
) -> Tensor:
    """Combine per-view volumes into one (Learnable Triangulation's ``volume_aggregation_method``).

    - ``sum``: sum over the present views.
    - ``max``: per voxel and channel, the maximum over the present views.
    - ``conf``: sum over views of confidence[v, c] * volume[v, c].
    - ``conf_norm``: the same with each channel's confidences divided by their sum over the present views.
    - ``softmax``: per voxel and channel, a softmax over the present views of the volume values gives the
      weights of a weighted sum (the paper's best model).

    Args:
        volumes: (B, V, C, G1, G2, G3) unprojected features.
        method: one of ``AGGREGATION_METHODS``.
        view_confidences: (B, V, C) non-negative per-view per-channel confidences, for ``conf`` and ``conf_norm``.
        view_mask: (B, V) bool, False for a missing view; None = all present. A batch item without any present
            view gives zeros.

    Returns:
        (B, C, G1, G2, G3) aggregated volume, dtype of ``volumes``.
    """
    if method not in AGGREGATION_METHODS:
        raise ValueError(f"unknown volume aggregation method {method!r}; known: {list(AGGREGATION_METHODS)}")
    if volumes.ndim != 6:
        raise ValueError(f"volumes must have shape (B, V, C, G1, G2, G3), got {tuple(volumes.shape)}")
    batch, views, channels = volumes.shape[:3]
    if view_mask is None:
        present = torch.ones(batch, views, dtype=torch.bool, device=volumes.device)
    elif tuple(view_mask.shape) != (batch, views):
        raise ValueError(f"view_mask must have shape (B, V) = {(batch, views)}, got {tuple(view_mask.shape)}")
    else:
        present = view_mask.to(torch.bool)
    present = present[:, :, None, None, None, None]  # (B, V, 1, 1, 1, 1)
    zero = torch.zeros((), dtype=volumes.dtype, device=volumes.device)
    if method == "sum":
        return torch.where(present, volumes, zero).sum(1)
    if method == "max":
        lowest = torch.finfo(volumes.dtype).min
        maximum = torch.where(present, volumes, torch.full((), lowest, dtype=volumes.dtype, device=volumes.device))
        return torch.where(present.any(1), maximum.amax(1), zero)
    if method == "softmax":
        logits = torch.where(present, volumes, torch.full((), -math.inf, dtype=volumes.dtype, device=volumes.device))
        weights = torch.softmax(logits, dim=1)
        # A batch item with no present view has all -inf logits and NaN weights: zero them (where, not
        # multiply, so that no NaN reaches the gradient).
        weights = torch.where(present, weights, zero)
        return (weights * volumes).sum(1)
    if view_confidences is None:
        raise ValueError(f"aggregation method {method!r} needs view_confidences (B, V, C)")
    if tuple(view_confidences.shape) != (batch, views, channels):
        raise ValueError(
            f"view_confidences must have shape (B, V, C) = {(batch, views, channels)}, "
            f"got {tuple(view_confidences.shape)}"
        )
    confidences = torch.where(present[..., 0, 0, 0], view_confidences.to(volumes.dtype), zero)  # (B, V, C)
    if method == "conf_norm":
        total = confidences.sum(1, keepdim=True)
        confidences = confidences / torch.where(total > 0, total, torch.ones_like(total))
    return (confidences[..., None, None, None] * volumes).sum(1)
