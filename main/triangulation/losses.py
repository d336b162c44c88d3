"""The triangulation family's losses, on world joints (mm scaled by `keypoints_scale`, the seed's 0.1: cm).

Each is normalised as the seed's: the sum over batch, joints and coordinates of the masked error, divided by
3 x the number of valid joints in the batch (at least 1), so a batch with fewer annotated joints weighs the same.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["keypoints_l1", "mse_smooth", "volumetric_ce"]


def _valid_count(joints_valid: Tensor) -> Tensor:
    return joints_valid.sum().clamp_min(1.0)  # on the device: no host synchronisation


def mse_smooth(pred: Tensor, target: Tensor, joints_valid: Tensor, threshold: float) -> Tensor:
    """The seed's MSESmooth: per-coordinate squared error e, replaced by e**0.1 * threshold**0.9 where e > threshold.

    Args:
        pred, target: (B, J, 3) joints (the same scaled unit, the seed's cm).
        joints_valid: (B, J) 1 for annotated joints, 0 else.
        threshold: squared error above which the loss grows as e**0.1 (the seed: 400 cm^2, i.e. 20 cm).

    Returns:
        () the loss.
    """
    squared = (pred - target).square() * joints_valid.unsqueeze(-1)  # (B, J, 3)
    # where(): the smooth branch's pow is also evaluated (and differentiated) for small e; clamping keeps its
    # gradient finite at e = 0, where the branch is not selected anyway.
    smooth = squared.clamp_min(threshold).pow(0.1) * threshold**0.9
    loss = torch.where(squared > threshold, smooth, squared)
    return loss.sum() / (3.0 * _valid_count(joints_valid))


def keypoints_l1(pred: Tensor, target: Tensor, joints_valid: Tensor) -> Tensor:
    """The seed's MAE: |pred - target| summed over valid joints and coordinates / (3 x valid joints).

    Args:
        pred, target: (B, J, 3) joints. joints_valid: (B, J) 1 for annotated joints.

    Returns:
        () the loss.
    """
    error = (pred - target).abs() * joints_valid.unsqueeze(-1)
    return error.sum() / (3.0 * _valid_count(joints_valid))


def volumetric_ce(probabilities: Tensor, grid_world: Tensor, target: Tensor, joints_valid: Tensor) -> Tensor:
    """The seed's volumetric cross-entropy: -log(p + 1e-6) at the voxel whose centre is nearest each GT joint,
    averaged over the valid joints of the batch.

    Args:
        probabilities: (B, J, G, G, G) each joint's softmax over its volume.
        grid_world: (B, G, G, G, 3) world coordinates of the voxel centres (the same unit as `target`).
        target: (B, J, 3) GT joints. joints_valid: (B, J) 1 for annotated joints.

    Returns:
        () the loss.
    """
    flat_probs = probabilities.flatten(2)  # (B, J, G^3)
    with torch.no_grad():  # the nearest voxel is a label, not a function of the prediction
        distances = torch.cdist(
            target.to(grid_world.dtype), grid_world.flatten(1, 3), compute_mode="donot_use_mm_for_euclid_dist"
        )  # (B, J, G^3), exact
        nearest = distances.argmin(dim=-1, keepdim=True)  # (B, J, 1)
    at_joint = flat_probs.gather(-1, nearest).squeeze(-1)  # (B, J)
    loss = -torch.log(at_joint + 1e-6) * joints_valid
    return loss.sum() / _valid_count(joints_valid)
