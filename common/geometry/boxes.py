"""Box formats (docs/conventions.md, boxes): ``xywh`` is (x_min, y_min, width, height), ``xyxy`` is
(x_min, y_min, x_max, y_max), both in the pixel space the variable's name states (``_img``, ``_hm``).
Works on numpy arrays and torch tensors with any leading dimensions."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Boxes = TypeVar("Boxes", np.ndarray, torch.Tensor)


def _cat(parts: list, like: Boxes) -> Boxes:
    return torch.stack(parts, dim=-1) if isinstance(like, torch.Tensor) else np.stack(parts, axis=-1)


def xywh_to_xyxy(bbox_xywh: Boxes) -> Boxes:
    """(..., 4) (x, y, w, h) -> (..., 4) (x0, y0, x1, y1), same space and units."""
    x, y, w, h = (bbox_xywh[..., k] for k in range(4))
    return _cat([x, y, x + w, y + h], bbox_xywh)


def xyxy_to_xywh(bbox_xyxy: Boxes) -> Boxes:
    """(..., 4) (x0, y0, x1, y1) -> (..., 4) (x, y, w, h), same space and units."""
    x0, y0, x1, y1 = (bbox_xyxy[..., k] for k in range(4))
    return _cat([x0, y0, x1 - x0, y1 - y0], bbox_xyxy)


def box_center_size(bbox_xyxy: Boxes) -> tuple[Boxes, Boxes]:
    """(..., 4) xyxy -> centre (..., 2) and size (..., 2) (width, height), as Hand4Whole's box targets."""
    center = _cat([(bbox_xyxy[..., 0] + bbox_xyxy[..., 2]) / 2, (bbox_xyxy[..., 1] + bbox_xyxy[..., 3]) / 2], bbox_xyxy)
    size = _cat([bbox_xyxy[..., 2] - bbox_xyxy[..., 0], bbox_xyxy[..., 3] - bbox_xyxy[..., 1]], bbox_xyxy)
    return center, size
