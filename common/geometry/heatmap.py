"""Soft-argmax over 2D heatmaps and 3D volumes, as in Hand4Whole's PositionNet.

Each joint's logits are normalised with one softmax over the whole heatmap (or volume), and the coordinates
are the expectation of the voxel indices: voxel centres sit at integer positions 0 .. W-1 (x), 0 .. H-1 (y),
0 .. D-1 (z), in heatmap units (the space of ``joint_img``).
"""

import torch
from torch import Tensor

__all__ = ["soft_argmax_2d", "soft_argmax_3d"]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # Half-precision exp/sum over a few hundred voxels loses the small probabilities and biases the expectation;
    # float32 costs little at heatmap sizes.
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _expectation(marginal: Tensor) -> Tensor:
    """Expected index along the last dimension of a (..., L) marginal distribution."""
    positions = torch.arange(marginal.shape[-1], dtype=marginal.dtype, device=marginal.device)  # (L,)
    return (marginal * positions).sum(-1)  # (...)


def soft_argmax_2d(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Differentiable argmax of 2D heatmaps.

    Args:
        logits: (..., J, H, W) unnormalised heatmaps, any floating dtype.

    Returns:
        coords: (..., J, 2) expected (x, y) in heatmap units, in the input dtype.
        probs: (..., J, H, W) softmax over each joint's H x W heatmap, in the input dtype.
    """
    height, width = logits.shape[-2:]
    flat = logits.flatten(-2)  # (..., J, H*W)
    probs = torch.softmax(flat, dim=-1, dtype=_compute_dtype(logits.dtype)).unflatten(-1, (height, width))
    x = _expectation(probs.sum(-2))  # marginal over H -> (..., J, W) -> (..., J)
    y = _expectation(probs.sum(-1))  # marginal over W -> (..., J, H) -> (..., J)
    coords = torch.stack((x, y), dim=-1)  # (..., J, 2)
    return coords.to(logits.dtype), probs.to(logits.dtype)


def soft_argmax_3d(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Differentiable argmax of 3D heatmap volumes.

    Args:
        logits: (..., J, D, H, W) unnormalised volumes, any floating dtype.

    Returns:
        coords: (..., J, 3) expected (x, y, z) in heatmap units, in the input dtype.
        probs: (..., J, D, H, W) softmax over each joint's D x H x W volume, in the input dtype.
    """
    depth, height, width = logits.shape[-3:]
    flat = logits.flatten(-3)  # (..., J, D*H*W)
    probs = torch.softmax(flat, dim=-1, dtype=_compute_dtype(logits.dtype)).unflatten(-1, (depth, height, width))
    x = _expectation(probs.sum((-3, -2)))  # (..., J, W) -> (..., J)
    y = _expectation(probs.sum((-3, -1)))  # (..., J, H) -> (..., J)
    z = _expectation(probs.sum((-2, -1)))  # (..., J, D) -> (..., J)
    coords = torch.stack((x, y, z), dim=-1)  # (..., J, 3)
    return coords.to(logits.dtype), probs.to(logits.dtype)
