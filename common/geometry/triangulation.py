"""Triangulation of 2D points seen by calibrated views: batched weighted DLT (differentiable) and RANSAC.

Projection matrices P (3, 4) map homogeneous world points to homogeneous pixels (``Camera.projection_matrix``);
points are pixels (u, v) of the same image. The DLT solves, per batch item and joint, the homogeneous system
A x = 0 whose rows are w_v (u_v P_v[2] - P_v[0]) and w_v (v_v P_v[2] - P_v[1]) over the views v, as Learnable
Triangulation's algebraic method does, but for the whole batch in one call and with guards that keep the
value and the gradient finite when the weights are all zero or the geometry degenerate (issue #112 upstream:
SVD failing to converge and NaN gradients during training).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import Tensor

__all__ = ["reprojection_errors", "triangulate_dlt", "triangulate_ransac"]

# Relative size of the ridge added to A^T A (after the columns are scaled to unit norm, so A^T A has trace 4):
# far below float64 round-off of any real solution, large enough to make the system definite.
_RIDGE = 1e-12
# Floor of the eigenvalue gap in the eigenvector's derivative: bounds the gradient of degenerate systems.
_GAP_FLOOR = 1e-9
# Floor under squared norms before a square root, and under |x_4| before the homogeneous divide.
_TINY = 1e-30


def _check_dlt_inputs(proj_matrices: Tensor, points_2d: Tensor, weights: Tensor | None) -> None:
    if proj_matrices.ndim != 4 or proj_matrices.shape[-2:] != (3, 4):
        raise ValueError(f"proj_matrices must have shape (B, V, 3, 4), got {tuple(proj_matrices.shape)}")
    batch, views = proj_matrices.shape[:2]
    if points_2d.ndim != 4 or points_2d.shape[:2] != (batch, views) or points_2d.shape[-1] != 2:
        raise ValueError(
            f"points_2d must have shape (B, V, J, 2) = ({batch}, {views}, J, 2), got {tuple(points_2d.shape)}"
        )
    if weights is not None and tuple(weights.shape) != tuple(points_2d.shape[:3]):
        raise ValueError(
            f"weights must have shape (B, V, J) = {tuple(points_2d.shape[:3])}, got {tuple(weights.shape)}"
        )


def _smallest_eigenvector(matrix: Tensor) -> Tensor:
    """Unit eigenvector (..., 4) of the smallest eigenvalue of symmetric (..., 4, 4) ``matrix``, with a
    gradient that stays finite when eigenvalues coincide.

    torch.linalg.eigh's backward divides by the differences of *all* eigenvalue pairs and returns NaN as soon
    as any two coincide (an all-zero system, a ridge-only system). The derivative of the one eigenvector we use
    only needs its own gap: dv = -(M - l0 I)^+ dM v (first-order perturbation). The forward value comes from
    eigh without gradient; ``v - G (M v)`` with G = (M - l0 I + v v^T + gap_floor I)^-1 (I - v v^T) held
    constant equals v (M v = l0 v and (I - v v^T) v = 0) and has exactly that derivative, with the gap
    floored so that a degenerate system gives a large but finite gradient.
    """
    with torch.no_grad():
        eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
        vector = eigenvectors[..., 0]  # (..., 4)
        identity = torch.eye(4, dtype=matrix.dtype, device=matrix.device)
        outer = vector.unsqueeze(-1) * vector.unsqueeze(-2)  # (..., 4, 4)
        shifted = matrix - eigenvalues[..., :1, None] * identity + outer + _GAP_FLOOR * identity
        pseudo_inverse = torch.linalg.solve(shifted, identity - outer)  # (..., 4, 4)
    if not matrix.requires_grad:
        return vector
    return vector - (pseudo_inverse @ (matrix @ vector.unsqueeze(-1))).squeeze(-1)


def triangulate_dlt(proj_matrices: Tensor, points_2d: Tensor, weights: Tensor | None = None) -> Tensor:
    """Weighted direct linear transform for a batch of points, one call, differentiable.

    The rows of A are not normalised (as in OpenCV's and upstream's DLT): with P = K [R | t] a view's residual
    is its pixel error times the point's depth, the natural weighting; normalising rows to unit norm was tried
    and is ~40 % less accurate under pixel noise (the translation column dominates the norm). A projection
    matrix scaled by s therefore weighs its view s times more. The columns of A are scaled to unit norm before
    the eigen-solve and back after: world units such as mm make the last column ~1000 times the others, and
    with the scaling A^T A is well conditioned, the result does not depend on the world unit and the guards
    below are relative to an O(1) matrix. Noise-free views give the exact point with any positive weights
    (the unscaled DLT of OpenCV too); under pixel noise the two differ by ~1 % of the noise-induced error. A
    view with weight 0 has no influence at all; with all weights zero the result is the world origin.

    Args:
        proj_matrices: (B, V, 3, 4) world -> pixel projection matrices.
        points_2d: (B, V, J, 2) pixels (u, v) of J points in each view.
        weights: (B, V, J) non-negative confidences; None = all ones.

    Returns:
        (B, J, 3) world points in the dtype of ``points_2d``, same units as the projection's world.
    """
    _check_dlt_inputs(proj_matrices, points_2d, weights)
    out_dtype = points_2d.dtype
    proj = proj_matrices.to(torch.float64).unsqueeze(2)  # (B, V, 1, 3, 4)
    points = points_2d.to(torch.float64)  # (B, V, J, 2)
    # Rows u P[2] - P[0] and v P[2] - P[1]: (B, V, J, 2, 4).
    rows = points.unsqueeze(-1) * proj[..., 2:3, :] - proj[..., :2, :]
    if weights is not None:
        rows = rows * weights.to(torch.float64)[..., None, None]
    batch, views, joints = points.shape[:3]
    system = rows.permute(0, 2, 1, 3, 4).reshape(batch, joints, 2 * views, 4)  # A: (B, J, 2V, 4)
    column_norms = torch.sqrt(system.square().sum(-2) + _TINY)  # (B, J, 4)
    system = system / column_norms.unsqueeze(-2)
    normal = system.transpose(-1, -2) @ system  # A^T A: (B, J, 4, 4)
    # Ridge on the three point coordinates only (not the homogeneous one): it makes the system definite and
    # decides degenerate cases towards the origin; with zero weights the solution is exactly (0, 0, 0, 1).
    trace = normal.diagonal(dim1=-2, dim2=-1).sum(-1)  # (B, J)
    ridge = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64, device=normal.device)
    normal = normal + torch.diag_embed((_RIDGE * trace + _TINY)[..., None] * ridge)
    homogeneous = _smallest_eigenvector(normal) / column_norms  # undo the column scaling: (B, J, 4)
    last = homogeneous[..., 3:]
    # Sign-preserving clamp: a point at infinity becomes a very far, finite point instead of inf / NaN.
    safe_last = torch.where(last < 0, -1.0, 1.0) * last.abs().clamp_min(_TINY)
    return (homogeneous[..., :3] / safe_last).to(out_dtype)


def reprojection_errors(proj_matrices: Tensor, points_3d: Tensor, points_2d: Tensor) -> Tensor:
    """Euclidean reprojection error of world points in every view, pixels.

    Args:
        proj_matrices: (..., V, 3, 4) world -> pixel projection matrices.
        points_3d: (..., J, 3) world points.
        points_2d: (..., V, J, 2) observed pixels.

    Returns:
        (..., V, J) distances ||project(P_v, X_j) - x_vj||, pixels. Points at or behind a camera (z <= 0) get
        +inf: they cannot be inliers of anything.
    """
    homogeneous = torch.cat((points_3d, torch.ones_like(points_3d[..., :1])), dim=-1)  # (..., J, 4)
    projected = torch.einsum("...vik,...jk->...vji", proj_matrices.to(homogeneous.dtype), homogeneous)  # (..., V, J, 3)
    depth = projected[..., 2:]
    in_front = depth > 0
    pixels = projected[..., :2] / torch.where(in_front, depth, torch.ones_like(depth))
    errors = torch.linalg.vector_norm(pixels - points_2d.to(pixels.dtype), dim=-1)
    return torch.where(in_front[..., 0], errors, torch.full_like(errors, float("inf")))


def _refine_least_squares(proj: np.ndarray, points_2d: np.ndarray, start: np.ndarray, f_scale_px: float) -> np.ndarray:
    """Robust (Huber) least-squares reprojection refinement of one point from the views given."""
    from scipy.optimize import least_squares

    def residuals(point: np.ndarray) -> np.ndarray:
        projected = proj @ np.append(point, 1.0)  # (V, 3)
        depth = np.where(np.abs(projected[:, 2:]) > 1e-12, projected[:, 2:], 1e-12)
        return (projected[:, :2] / depth - points_2d).ravel()

    return least_squares(residuals, start, loss="huber", f_scale=f_scale_px, method="trf").x


def triangulate_ransac(
    proj_matrices: np.ndarray | Tensor,
    points_2d: np.ndarray | Tensor,
    threshold_px: float = 15.0,
    refine: bool = True,
    *,
    valid: np.ndarray | Tensor | None = None,
    direct_optimization: bool = False,
    max_hypotheses: int = 200,
    seed: int = 0,
):
    """RANSAC triangulation per joint: 2-view DLT hypotheses, the largest consensus wins.

    Every pair of usable views is a hypothesis (a seeded random subset of ``max_hypotheses`` pairs when there
    are more). A view is an inlier of a hypothesis when the hypothesis reprojects within ``threshold_px`` of
    its point (Euclidean distance; upstream Learnable Triangulation halves the distance before comparing with
    its 15 px, so its threshold equals ``threshold_px=30`` here). Ties go to the smaller total inlier error.
    With ``refine`` the point is re-triangulated by DLT from all inliers; with ``direct_optimization`` it is
    then refined by a Huber least-squares fit of the inlier reprojections (scipy; Huber scale threshold_px / 3,
    quadratic for ordinary keypoint errors and linear for those near the threshold). A joint with fewer than two
    inliers (or two usable views) is triangulated from all its usable views, its inliers those within the
    threshold of that point. Not differentiable (the baseline is not trained).

    Args:
        proj_matrices: (V, 3, 4) numpy array or tensor, world -> pixels.
        points_2d: (V, J, 2) pixels.
        threshold_px: inlier distance, pixels.
        refine: re-triangulate from the inliers.
        valid: (V, J) bool, False for an unusable observation (missing view, undetected joint); None = all.
        direct_optimization: least-squares refinement after the inlier DLT (implies ``refine``).
        max_hypotheses: most view pairs tried per joint.
        seed: seed of the pair subset.

    Returns:
        points (J, 3) world, inliers (V, J) bool; tensors (float64 -> input dtype, input device) when the
        input is a tensor, numpy arrays otherwise.
    """
    as_tensor = isinstance(points_2d, Tensor)
    proj = torch.as_tensor(
        np.asarray(proj_matrices.detach().cpu() if isinstance(proj_matrices, Tensor) else proj_matrices),
        dtype=torch.float64,
    )
    points = torch.as_tensor(np.asarray(points_2d.detach().cpu() if as_tensor else points_2d), dtype=torch.float64)
    if proj.ndim != 3 or proj.shape[1:] != (3, 4):
        raise ValueError(f"proj_matrices must have shape (V, 3, 4), got {tuple(proj.shape)}")
    views = proj.shape[0]
    if points.ndim != 3 or points.shape[0] != views or points.shape[2] != 2:
        raise ValueError(f"points_2d must have shape (V, J, 2) = ({views}, J, 2), got {tuple(points.shape)}")
    joints = points.shape[1]
    usable = torch.ones(views, joints, dtype=torch.bool)
    if valid is not None:
        usable = torch.as_tensor(
            np.asarray(valid.detach().cpu() if isinstance(valid, Tensor) else valid), dtype=torch.bool
        )
        if tuple(usable.shape) != (views, joints):
            raise ValueError(f"valid must have shape (V, J) = ({views}, {joints}), got {tuple(usable.shape)}")
    usable = usable & torch.isfinite(points).all(-1)
    points = torch.where(usable[..., None], points, torch.zeros_like(points))  # NaN rows would poison A

    pairs = list(itertools.combinations(range(views), 2))
    if len(pairs) > max_hypotheses:
        chosen = np.random.default_rng(seed).choice(len(pairs), size=max_hypotheses, replace=False)
        pairs = [pairs[i] for i in sorted(chosen)]
    if pairs:
        pair_index = torch.tensor(pairs)  # (H, 2)
        hypotheses = len(pairs)
        # Hypothesis h uses views pair_index[h] with the weights of their usable flags: (H, 2, J).
        pair_weights = usable[pair_index].to(torch.float64)
        candidates = triangulate_dlt(proj[pair_index], points[pair_index], pair_weights)  # (H, J, 3)
        errors = reprojection_errors(
            proj.expand(hypotheses, -1, -1, -1), candidates, points.expand(hypotheses, -1, -1, -1)
        )
        errors = torch.where(usable, errors, torch.full_like(errors, float("inf")))  # (H, V, J)
        hypothesis_inliers = errors < threshold_px
        both_usable = usable[pair_index].all(1)  # (H, J): a pair missing a view is no hypothesis
        counts = torch.where(both_usable, hypothesis_inliers.sum(1), -1)  # (H, J)
        inlier_error = torch.where(hypothesis_inliers, errors, torch.zeros_like(errors)).sum(1)  # (H, J)
        # Lexicographic best: most inliers, then smallest summed inlier error (errors < threshold << 1e9).
        score = counts.to(torch.float64) * 1e9 - inlier_error
        best = score.argmax(0)  # (J,)
        joint_index = torch.arange(joints)
        inliers = hypothesis_inliers[best, :, joint_index].T.clone()  # (V, J)
        result = candidates[best, joint_index]  # (J, 3)
        enough = counts[best, joint_index] >= 2  # (J,)
    else:
        inliers = torch.zeros(views, joints, dtype=torch.bool)
        result = torch.zeros(joints, 3, dtype=torch.float64)
        enough = torch.zeros(joints, dtype=torch.bool)

    if not bool(enough.all()):
        fallback = triangulate_dlt(proj[None], points[None], usable[None].to(torch.float64))[0]  # (J, 3)
        fallback_errors = reprojection_errors(proj, fallback, points)
        fallback_inliers = usable & (fallback_errors < threshold_px)
        result = torch.where(enough[:, None], result, fallback)
        # Such a joint keeps the all-view DLT point even when fewer than two views agree with it.
        inliers = torch.where(enough[None], inliers, fallback_inliers)
    refine = refine or direct_optimization
    if refine:
        has_inliers = inliers.sum(0) >= 2  # (J,)
        refined = triangulate_dlt(proj[None], points[None], inliers[None].to(torch.float64))[0]
        result = torch.where(has_inliers[:, None], refined, result)
        if direct_optimization:
            proj_np, points_np, result_np = proj.numpy(), points.numpy(), result.numpy().copy()
            for joint in np.flatnonzero(has_inliers.numpy()):
                views_used = inliers[:, joint].numpy()
                result_np[joint] = _refine_least_squares(
                    proj_np[views_used], points_np[views_used, joint], result_np[joint], threshold_px / 3.0
                )
            result = torch.from_numpy(result_np)
    if as_tensor:
        return result.to(device=points_2d.device, dtype=points_2d.dtype), inliers.to(points_2d.device)
    return result.numpy(), inliers.numpy()
