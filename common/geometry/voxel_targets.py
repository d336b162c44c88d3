"""V2V-PoseNet's heatmap targets, coordinate decoders and losses on the network's output grid.

The output grid covers the same cube as the input grid with ``out_size`` voxels per axis (44 for an 88 input:
V2V pools once). Both grids put voxel i at [i, i + 1) with its centre at i + 0.5, so a continuous coordinate maps
between them by the ratio of the sizes: ``g_out = g_in * out_size / grid_size`` (88 -> 44: halve; output voxel k
covers input voxels 2k and 2k + 1). Volumes are indexed ``[..., x_index, y_index, z_index]``; every coordinate
here is (x, y, z) in output-grid units (docs/conventions.md, "Depth maps and voxels (V2V)").
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.geometry.heatmap import soft_argmax_3d

__all__ = [
    "decode_argmax",
    "decode_argmax_centroid",
    "decode_soft_argmax",
    "gaussian_mse_loss",
    "gaussian_targets",
    "integral_loss",
    "onehot_trilinear_targets",
    "rescale_grid",
]


def rescale_grid(coords: Tensor, from_size: int, to_size: int) -> Tensor:
    """Continuous grid coordinates from one grid of the cube to another (e.g. input 88 -> output 44).

    Args:
        coords: (..., 3) coordinates in the ``from_size`` grid.
        from_size: voxels per axis of the grid the coordinates are in.
        to_size: voxels per axis of the grid to express them in.

    Returns:
        (..., 3) ``coords * to_size / from_size``: edges and centres of the two grids coincide at the cube's.
    """
    return coords * (to_size / from_size)


def _voxel_centres(size: int, like: Tensor) -> Tensor:
    return torch.arange(size, device=like.device, dtype=like.dtype) + 0.5  # (S,)


def _outer3(weights: Tensor) -> Tensor:
    """(..., 3, S) per-axis weights -> (..., S, S, S) their product, indexed [x, y, z]."""
    wx, wy, wz = weights.unbind(-2)  # each (..., S)
    return wx[..., :, None, None] * wy[..., None, :, None] * wz[..., None, None, :]


def _float_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def gaussian_targets(joints_grid: Tensor, out_size: int, sigma: float = 1.7) -> Tensor:
    """V2V-PoseNet's heatmap targets: one unnormalised 3D Gaussian per joint, peak 1 at the joint.

    ``H_j(v) = exp(-|v - c_j|^2 / (2 sigma^2))`` evaluated at the voxel centres v = index + 0.5.

    Args:
        joints_grid: (B, J, 3) joint positions c_j, output-grid coordinates (``rescale_grid`` from the input grid).
        out_size: S, voxels per axis of the output grid (44).
        sigma: the standard deviation in output-grid voxels (1.7 in V2V-PoseNet).

    Returns:
        (B, J, S, S, S) targets in (0, 1], dtype of joints_grid (at least float32).
    """
    joints = joints_grid.to(_float_dtype(joints_grid.dtype))
    offsets = _voxel_centres(out_size, joints) - joints[..., :, None]  # (B, J, 3, S)
    return _outer3(torch.exp(-(offsets**2) / (2.0 * sigma**2)))  # separable: exp(a + b + c) = exp(a)exp(b)exp(c)


def onehot_trilinear_targets(joints_grid: Tensor, out_size: int) -> Tensor:
    """The integral loss's target: each joint spread over its 8 neighbouring voxel centres, trilinear weights.

    Per axis, a joint at c between the centres i + 0.5 and i + 1.5 gives them the weights 1 - f and f with
    f = c - (i + 0.5) (the tent ``max(0, 1 - |centre - c|)``); the 3D weight is the product over axes, so the
    weights sum to 1 and their expectation of the voxel centres is c. Joints are first clamped to the centres'
    range [0.5, S - 0.5] (the port clips its index-space coordinates to [0, S - 2]).

    Args:
        joints_grid: (B, J, 3) output-grid coordinates.
        out_size: S, voxels per axis of the output grid.

    Returns:
        (B, J, S, S, S) non-negative weights summing to 1 per joint, dtype of joints_grid (at least float32).
    """
    joints = joints_grid.to(_float_dtype(joints_grid.dtype)).clamp(0.5, out_size - 0.5)
    distance = (_voxel_centres(out_size, joints) - joints[..., :, None]).abs()  # (B, J, 3, S)
    return _outer3((1.0 - distance).clamp_min(0.0))


def _unravel(flat_index: Tensor, size: int) -> Tensor:
    """(...) flat indices into a cube of side S -> (...) x S^3 (x, y, z) integer indices, x slowest."""
    return torch.stack((flat_index // (size * size), (flat_index // size) % size, flat_index % size), dim=-1)


def decode_argmax(heatmaps: Tensor) -> Tensor:
    """Hard argmax per joint (V2V-PoseNet's decoder): the centre of the highest voxel.

    Args:
        heatmaps: (..., S, S, S) volumes indexed [x, y, z].

    Returns:
        (..., 3) output-grid coordinates index + 0.5, float32 (float64 for float64 input).
    """
    size = heatmaps.shape[-1]
    index = _unravel(heatmaps.flatten(-3).argmax(-1), size)  # (..., 3)
    return index.to(_float_dtype(heatmaps.dtype)) + 0.5


def decode_argmax_centroid(heatmaps: Tensor) -> Tensor:
    """Argmax, then the weighted centroid of the 3x3x3 voxels around it (hpoes' decoder): sub-voxel positions.

    The weights are the heatmap values clamped at 0 (an MSE-trained heatmap dips below zero around the peak; a
    negative weight would push the centroid away from it); voxels outside the volume have no weight. Where all
    27 weights are 0, the argmax voxel's centre is returned.

    Args:
        heatmaps: (..., S, S, S) volumes indexed [x, y, z].

    Returns:
        (..., 3) output-grid coordinates, float32 (float64 for float64 input).
    """
    size = heatmaps.shape[-1]
    dtype = _float_dtype(heatmaps.dtype)
    flat = heatmaps.flatten(-3)  # (..., S^3)
    peak = _unravel(flat.argmax(-1), size)  # (..., 3)
    steps = torch.arange(-1, 2, device=heatmaps.device)
    offsets = torch.stack(torch.meshgrid(steps, steps, steps, indexing="ij"), dim=-1).reshape(27, 3)  # (27, 3)
    neighbours = peak[..., None, :] + offsets  # (..., 27, 3)
    inside = ((neighbours >= 0) & (neighbours < size)).all(-1)  # (..., 27)
    clamped = neighbours.clamp(0, size - 1)
    values = flat.gather(-1, (clamped[..., 0] * size + clamped[..., 1]) * size + clamped[..., 2])  # (..., 27)
    weights = values.to(dtype).clamp_min(0.0) * inside  # (..., 27)
    total = weights.sum(-1, keepdim=True)  # (..., 1)
    centroid = (weights[..., None] * (neighbours.to(dtype) + 0.5)).sum(-2) / total.clamp_min(1e-30)  # (..., 3)
    return torch.where(total > 0, centroid, peak.to(dtype) + 0.5)


def decode_soft_argmax(logits: Tensor) -> Tensor:
    """Soft-argmax: the expected voxel centre under one softmax over each joint's whole volume.

    The softmax and the expectation run in float32 at least (common.geometry.heatmap.soft_argmax_3d): in half
    precision the small probabilities of tens of thousands of voxels vanish and the coordinates round to
    fractions of a voxel.

    Args:
        logits: (..., S, S, S) unnormalised volumes indexed [x, y, z] (temperature 1).

    Returns:
        (..., 3) output-grid coordinates, float32 (float64 for float64 input); differentiable.
    """
    coords_last_first, _ = soft_argmax_3d(logits.to(_float_dtype(logits.dtype)))  # (..., 3) E over axes -1, -2, -3
    return coords_last_first.flip(-1) + 0.5  # soft_argmax_3d orders (last axis, ..., first axis); ours is x first


def _masked_mean(per_joint: Tensor, valid: Tensor | None) -> Tensor:
    # As the other families' losses: masked joints count in the denominator (a batch's loss scale does not
    # depend on how many of its joints are labelled).
    if valid is None:
        return per_joint.mean()
    return (per_joint * valid.to(per_joint.dtype)).mean()


def integral_loss(
    logits: Tensor,
    joints_grid: Tensor,
    valid: Tensor | None = None,
    cross_entropy_weight: float = 0.5,
    l1_weight: float = 0.5,
) -> Tensor:
    """The PyTorch port's integral loss: soft-max cross-entropy against the one-hot trilinear target plus L1 on
    the soft-argmax coordinates, 0.5 each.

    Both terms use the joints clamped to the voxel centres' range [0.5, S - 0.5] (as ``onehot_trilinear_targets``).

    Args:
        logits: (B, J, S, S, S) the network's output volumes.
        joints_grid: (B, J, 3) ground-truth joints, output-grid coordinates.
        valid: (B, J) 0/1 joint mask, or None (all valid).
        cross_entropy_weight: weight of the cross-entropy (per joint, summed over voxels).
        l1_weight: weight of the L1 distance (per joint, mean over x, y, z, output-grid voxels).

    Returns:
        () scalar loss, float32 (float64 for float64 logits).
    """
    size = logits.shape[-1]
    joints = joints_grid.to(_float_dtype(logits.dtype)).clamp(0.5, size - 0.5)
    log_probs = torch.log_softmax(logits.flatten(-3), dim=-1, dtype=_float_dtype(logits.dtype))  # (B, J, S^3)
    cross_entropy = -(onehot_trilinear_targets(joints, size).flatten(-3) * log_probs).sum(-1)  # (B, J)
    l1 = (decode_soft_argmax(logits) - joints).abs().mean(-1)  # (B, J)
    return _masked_mean(cross_entropy_weight * cross_entropy + l1_weight * l1, valid)


def gaussian_mse_loss(heatmaps: Tensor, joints_grid: Tensor, sigma: float = 1.7, valid: Tensor | None = None) -> Tensor:
    """V2V-PoseNet's loss: mean squared error against ``gaussian_targets`` over all J x S^3 voxels.

    Args:
        heatmaps: (B, J, S, S, S) the network's output volumes.
        joints_grid: (B, J, 3) ground-truth joints, output-grid coordinates.
        sigma: the targets' standard deviation, output-grid voxels.
        valid: (B, J) 0/1 joint mask, or None (all valid).

    Returns:
        () scalar loss, float32 (float64 for float64 heatmaps).
    """
    targets = gaussian_targets(joints_grid.to(_float_dtype(heatmaps.dtype)), heatmaps.shape[-1], sigma)
    squared_error = (heatmaps.to(targets.dtype) - targets).square().flatten(-3).mean(-1)  # (B, J)
    return _masked_mean(squared_error, valid)
