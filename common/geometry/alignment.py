"""Similarity and rigid Procrustes alignment (Umeyama 1991), as used by PA-MPJPE and PA-MPVPE.

The rotation is RoMa's ``special_procrustes`` (Horn's closed form, computed in float64), so it is always a proper
rotation (det +1) even when the best orthogonal fit would be a reflection, and it is the identity for a zero
cross-covariance. Degenerate inputs (all source points equal, all weights zero) give finite results, never NaN.
"""

from typing import NamedTuple

import roma
import torch
from torch import Tensor

__all__ = ["SimilarityTransform", "procrustes_transform", "rigid_align", "similarity_procrustes"]


class SimilarityTransform(NamedTuple):
    """x -> scale * R @ x + translation, batched.

    Attributes:
        scale: (...) unitless, >= 0 (1 for a rigid fit).
        rotation: (..., 3, 3) rotation matrix, det +1.
        translation: (..., 3) in the units of the target points.
    """

    scale: Tensor
    rotation: Tensor
    translation: Tensor

    def apply(self, points: Tensor) -> Tensor:
        """Transform (..., N, 3) points; returns (..., N, 3)."""
        rotated = points @ self.rotation.transpose(-1, -2)  # (..., N, 3)
        return self.scale[..., None, None] * rotated + self.translation[..., None, :]


def procrustes_transform(
    source: Tensor, target: Tensor, weights: Tensor | None = None, with_scale: bool = True
) -> SimilarityTransform:
    """Least-squares similarity (or rigid) transform from ``source`` to ``target`` (Umeyama 1991).

    Minimises sum_n w_n * || s * R @ source_n + t - target_n ||^2 over s >= 0 (fixed to 1 if not ``with_scale``),
    R in SO(3) and t.

    Args:
        source: (..., N, 3) points to align, any unit (e.g. metres).
        target: (..., N, 3) corresponding target points, same unit.
        weights: (..., N) non-negative per-point weights (e.g. a joint validity mask); None for uniform.
            Points with weight 0 are ignored. If all weights are 0 the fit is the degenerate one below.
        with_scale: fit the scale s; if False, s = 1 (rigid alignment).

    Returns:
        The transform. If the (weighted) source points all coincide, R = I and, with scale, s = 0, so every
        point maps to the weighted target centroid (the least-squares optimum).
    """
    if weights is None:
        weights = torch.ones(source.shape[:-1], dtype=source.dtype, device=source.device)  # (..., N)
    weights = weights.to(source.dtype)
    tiny = torch.finfo(source.dtype).tiny
    # clamp: all-zero weights would divide 0 by 0; zero normalised weights give zero centroids instead.
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(tiny)  # (..., N), sums to 1 or 0
    mean_src = torch.einsum("...n,...ni->...i", weights, source)  # (..., 3)
    mean_tgt = torch.einsum("...n,...ni->...i", weights, target)  # (..., 3)
    src = source - mean_src[..., None, :]  # (..., N, 3)
    tgt = target - mean_tgt[..., None, :]  # (..., N, 3)
    # Cross-covariance M = sum_n w_n tgt_n src_n^T; the optimal R maximises tr(R^T M) over SO(3).
    cov = torch.einsum("...n,...ni,...nj->...ij", weights, tgt, src)  # (..., 3, 3)
    rotation = roma.special_procrustes(cov)  # (..., 3, 3), det +1 (sign-corrected, Umeyama's S)
    if with_scale:
        # Umeyama eq. 42: s = tr(D S) / sigma_src^2, and tr(D S) = tr(R^T M) for the sign-corrected R.
        var_src = torch.einsum("...n,...ni,...ni->...", weights, src, src)  # (...)
        # clamp: coincident source points have var 0 and tr 0; s = 0 is then an optimum, 0/0 would be NaN.
        scale = (rotation * cov).sum((-2, -1)) / var_src.clamp_min(tiny)  # (...)
    else:
        scale = torch.ones(rotation.shape[:-2], dtype=source.dtype, device=source.device)  # (...)
    translation = mean_tgt - scale[..., None] * (rotation @ mean_src[..., None])[..., 0]  # (..., 3)
    return SimilarityTransform(scale, rotation, translation)


def similarity_procrustes(source: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """``source`` aligned to ``target`` by the best similarity transform (scale, rotation, translation).

    This is the alignment of PA-MPJPE / PA-MPVPE. See ``procrustes_transform`` for the transform itself.

    Args:
        source: (..., N, 3) points to align (e.g. predicted joints, metres).
        target: (..., N, 3) corresponding target points (e.g. ground-truth joints), same unit.
        weights: (..., N) non-negative per-point weights; None for uniform.

    Returns:
        (..., N, 3) aligned source points, in the target's frame and unit.
    """
    return procrustes_transform(source, target, weights, with_scale=True).apply(source)


def rigid_align(source: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """``source`` aligned to ``target`` by the best rigid transform (rotation and translation, no scale).

    Args:
        source: (..., N, 3) points to align.
        target: (..., N, 3) corresponding target points, same unit.
        weights: (..., N) non-negative per-point weights; None for uniform.

    Returns:
        (..., N, 3) aligned source points.
    """
    return procrustes_transform(source, target, weights, with_scale=False).apply(source)
