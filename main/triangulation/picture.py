"""The triangulation family's training picture and the skeletons of its joint sets.

`ViewsPicture` draws, for the first samples of a training batch, each view's soft-argmax 2D joints (the backbone's
heatmaps; main/triangulation/model.py's `detect_2d`) over its crop: one row per sample, one column per view, a
grey tile for a missing view. The trainer's picture hook sees only the inputs (no cameras), so the volumetric
model is drawn by its (frozen) heatmap layer too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor, nn

from common.utils.draw import draw_keypoints, draw_skeleton

__all__ = ["CMU_COCO19_EDGES", "HUMAN36M_MULTIVIEW_EDGES", "ViewsPicture", "skeleton_edges", "views_picture"]

# The seed's Human3.6M multi-view order: 0 R-ankle, 1 R-knee, 2 R-hip, 3 L-hip, 4 L-knee, 5 L-ankle, 6 pelvis,
# 7 spine, 8 neck, 9 head, 10 R-wrist, 11 R-elbow, 12 R-shoulder, 13 L-shoulder, 14 L-elbow, 15 L-wrist, 16 nose.
HUMAN36M_MULTIVIEW_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 6), (5, 4), (4, 3), (3, 6), (6, 7), (7, 8), (8, 16), (16, 9),
    (8, 12), (12, 11), (11, 10), (8, 13), (13, 14), (14, 15),
)  # fmt: skip
# CMU Panoptic's COCO-19: 0 neck, 1 nose, 2 body centre, 3-5 left shoulder/elbow/wrist, 6-8 left hip/knee/ankle,
# 9-11 right shoulder/elbow/wrist, 12-14 right hip/knee/ankle, 15 left eye, 16 left ear, 17 right eye, 18 right ear.
CMU_COCO19_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (0, 3), (3, 4), (4, 5), (0, 9), (9, 10), (10, 11), (2, 6), (6, 7), (7, 8),
    (2, 12), (12, 13), (13, 14), (1, 15), (15, 16), (1, 17), (17, 18),
)  # fmt: skip

_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def skeleton_edges(num_joints: int) -> tuple[tuple[int, int], ...]:
    """The bones of a joint set by its size: Human3.6M's 17, CMU's COCO-19; none for another (points only)."""
    return {17: HUMAN36M_MULTIVIEW_EDGES, 19: CMU_COCO19_EDGES}.get(num_joints, ())


def denormalize(images: np.ndarray) -> np.ndarray:
    """(..., 3, H, W) ImageNet-normalised RGB -> (..., H, W, 3) uint8."""
    rgb = np.moveaxis(images, -3, -1) * _IMAGENET_STD + _IMAGENET_MEAN
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def draw_joints(crop: np.ndarray, points_xy: np.ndarray, edges: tuple[tuple[int, int], ...],
                color: tuple[float, float, float] = (0.0, 1.0, 0.0)) -> np.ndarray:  # fmt: skip
    """A skeleton and its joints over an (H, W, 3) uint8 crop; (J, 2) pixel points."""
    drawn = draw_skeleton(crop, points_xy, edges, color=color, thickness=1) if edges else crop
    return draw_keypoints(drawn, points_xy, color=color, radius=2)


class ViewsPicture:
    """The training picture (module docstring).

    Args:
        num_joints: J, for the skeleton.
    """

    def __init__(self, num_joints: int) -> None:
        self.edges = skeleton_edges(num_joints)

    def draw(self, model: nn.Module, inputs: dict[str, Tensor]) -> np.ndarray | None:
        images, view_mask = inputs["images"], inputs["view_mask"].bool()
        points_hm, _, _, heatmap_hw = model.detect_2d(images, view_mask)  # type: ignore[operator]
        height, width = images.shape[-2:]
        scale = np.array([width / heatmap_hw[1], height / heatmap_hw[0]], dtype=np.float32)
        points_px = points_hm.float().cpu().numpy() * scale  # (B, V, J, 2) crop pixels
        crops = denormalize(images.float().cpu().numpy())  # (B, V, H, W, 3)
        mask = view_mask.cpu().numpy()
        rows = []
        for sample_crops, sample_points, sample_mask in zip(crops, points_px, mask, strict=True):
            views = zip(sample_crops, sample_points, sample_mask, strict=True)
            tiles = [draw_joints(crop, points, self.edges) if present else np.full_like(crop, 128)
                     for crop, points, present in views]  # fmt: skip
            rows.append(np.concatenate(tiles, axis=1))
        return np.concatenate(rows, axis=0)

    def close(self) -> None:
        pass


def views_picture(cfg: Any) -> ViewsPicture:
    """The family's `make_picture` hook."""
    return ViewsPicture(cfg.triangulation.num_joints)
