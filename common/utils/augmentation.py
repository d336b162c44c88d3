"""Body boxes, Hand4Whole's augmentation and the affine crop to the network input (512x384).

Spaces (docs/conventions.md): ``_img`` original-image pixels, ``_crop`` pixels of the input crop,
pixel centres at integer coordinates. Affine maps are (2, 3) float64 matrices acting on column
vectors ``[x, y, 1]``; ``img2crop`` maps original-image pixels to crop pixels and already contains
the horizontal flip when the augmentation flips, so annotations never need a separate flip of
their image coordinates (only their left/right labels swap, see common/utils/targets.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "NO_AUGMENTATION",
    "AugParams",
    "apply_affine",
    "compose_affine",
    "crop_affine",
    "crop_image",
    "get_bbox",
    "invert_affine",
    "process_bbox",
    "sample_augmentation",
    "sanitize_bbox",
]

ASPECT_RATIO = 0.75  # width / height of Hand4Whole's 512x384 input
BOX_ENLARGE = 1.25


@dataclass(frozen=True)
class AugParams:
    """One sample's augmentation (Hand4Whole's ``get_aug_config``).

    Attributes:
        scale: box scale factor in [0.75, 1.25]; > 1 zooms out.
        rot: in-plane rotation in degrees, in [-60, 60]; the crop's axes turn by +rot in the image, so the
            content turns by -rot in the crop (and the 3D targets about the camera z axis by -rot).
        color: (3,) per-channel RGB multipliers in [0.8, 1.2].
        flip: mirror the image horizontally (left and right labels swap).
    """

    scale: float = 1.0
    rot: float = 0.0
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    flip: bool = False


NO_AUGMENTATION = AugParams()
"""The test-time setting: scale 1, no rotation, no colour change, no flip."""


def sample_augmentation(rng: np.random.Generator) -> AugParams:
    """Draw Hand4Whole's training augmentation from ``rng``.

    scale = 1 + 0.25 * clip(N(0, 1), -1, 1); rot = 30 * clip(N(0, 1), -2, 2) degrees with probability 0.6,
    else 0; colour factors U(0.8, 1.2) per channel; flip with probability 0.5. The same generator state
    gives the same parameters, which is what makes a sample reproducible from its seed.

    Args:
        rng: the sample's generator (consumed: 7 draws).

    Returns:
        The parameters.
    """
    scale = 1.0 + 0.25 * float(np.clip(rng.standard_normal(), -1.0, 1.0))
    rot = 30.0 * float(np.clip(rng.standard_normal(), -2.0, 2.0))
    rot = rot if rng.random() <= 0.6 else 0.0
    color = tuple(float(c) for c in rng.uniform(0.8, 1.2, size=3))
    return AugParams(scale=scale, rot=rot, color=color, flip=bool(rng.random() <= 0.5))


def sanitize_bbox(bbox_xywh: Sequence[float] | np.ndarray, img_width: int, img_height: int) -> np.ndarray | None:
    """Clip an xywh box to the image (Hand4Whole's ``sanitize_bbox``).

    Args:
        bbox_xywh: (4,) x, y, width, height in image pixels.
        img_width: image width, pixels.
        img_height: image height, pixels.

    Returns:
        (4,) float32 clipped xywh box, or None when nothing of it lies in the image.
    """
    x, y, w, h = (float(v) for v in bbox_xywh)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(img_width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(img_height - 1.0, y1 + max(0.0, h - 1.0))
    if w * h <= 0 or x2 <= x1 or y2 <= y1:
        return None
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float32)


def process_bbox(
    bbox_xywh: Sequence[float] | np.ndarray, img_width: int, img_height: int, aspect_ratio: float = ASPECT_RATIO
) -> np.ndarray | None:
    """The crop box of a person: clipped, grown to the input's aspect (width / height), then enlarged x1.25.

    Args:
        bbox_xywh: (4,) person box in image pixels.
        img_width: image width, pixels.
        img_height: image height, pixels.
        aspect_ratio: width / height of the network input: 0.75 for Hand4Whole's 512x384, 1 for Pose2Pose's
            256x256 hand crops (`TargetSpace.aspect_ratio`).

    Returns:
        (4,) float32 xywh crop box with the same centre as the clipped box (it may extend past the
        image: the crop pads with black), or None for a box outside the image or of zero area.
    """
    bbox = sanitize_bbox(bbox_xywh, img_width, img_height)
    if bbox is None:
        return None
    x, y, w, h = (float(v) for v in bbox)
    cx, cy = x + w / 2.0, y + h / 2.0
    # Grow the short side only, so the person is never cut to reach the aspect.
    w, h = max(w, h * aspect_ratio), max(h, w / aspect_ratio)
    w, h = w * BOX_ENLARGE, h * BOX_ENLARGE
    return np.array([cx - w / 2.0, cy - h / 2.0, w, h], dtype=np.float32)


def get_bbox(points_img: np.ndarray, valid: np.ndarray, extend_ratio: float = 1.2) -> np.ndarray:
    """The xywh box of the valid points, enlarged about its centre (Hand4Whole's ``get_bbox``).

    Args:
        points_img: (N, 2) pixels.
        valid: (N,) mask; at least one point must be valid.
        extend_ratio: enlargement of width and height.

    Returns:
        (4,) float32 xywh box, pixels.
    """
    pts = np.asarray(points_img, dtype=np.float64)[np.asarray(valid).reshape(-1) > 0]
    if len(pts) == 0:
        raise ValueError("get_bbox needs at least one valid point")
    lo, hi = pts.min(0), pts.max(0)
    center, size = (lo + hi) / 2.0, (hi - lo) * extend_ratio
    return np.concatenate([center - size / 2.0, size]).astype(np.float32)


def crop_affine(
    bbox_xywh: np.ndarray, out_hw: Sequence[int], aug: AugParams = NO_AUGMENTATION, img_width: int | None = None
) -> np.ndarray:
    """The (2, 3) map from original-image pixels to crop pixels (Hand4Whole's ``gen_trans_from_patch_cv``).

    The box centre goes to the crop centre, the box (times ``aug.scale``, turned by ``aug.rot``) fills the
    crop. With ``aug.flip`` the image is first mirrored (x -> W - 1 - x) and the box centre with it, as
    Hand4Whole's ``generate_patch_image`` does. Closed form in float64: A = diag(W_out / (s w), H_out / (s h))
    R(-rot); cv2.getAffineTransform on three float32 points gives the same map up to rounding.

    Args:
        bbox_xywh: (4,) crop box in image pixels (from `process_bbox`).
        out_hw: (H_out, W_out) crop size, pixels.
        aug: augmentation parameters.
        img_width: image width in pixels; required when ``aug.flip``.

    Returns:
        (2, 3) float64 img2crop matrix.
    """
    x, y, w, h = (float(v) for v in bbox_xywh)
    cx, cy = x + 0.5 * w, y + 0.5 * h
    flip = np.eye(3)
    if aug.flip:
        if img_width is None:
            raise ValueError("crop_affine needs img_width to flip")
        flip[0, 0], flip[0, 2] = -1.0, img_width - 1.0
        cx = img_width - 1.0 - cx
    theta = np.deg2rad(aug.rot)
    cos, sin = np.cos(theta), np.sin(theta)
    rot_inv = np.array([[cos, sin], [-sin, cos]])  # R(-rot): undoes the turn of the source box
    linear = np.diag([out_hw[1] / (w * aug.scale), out_hw[0] / (h * aug.scale)]) @ rot_inv
    offset = np.array([out_hw[1] * 0.5, out_hw[0] * 0.5]) - linear @ np.array([cx, cy])
    return np.concatenate([linear, offset[:, None]], axis=1) @ flip  # (2, 3): crop the mirrored image


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """(2, 3) inverse of an invertible (2, 3) affine map (e.g. crop2img from img2crop)."""
    full = np.concatenate([np.asarray(affine, dtype=np.float64), [[0.0, 0.0, 1.0]]], axis=0)
    return np.linalg.inv(full)[:2]


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(2, 3) map that applies the (2, 3) map ``inner`` first and then ``outer`` (float64)."""
    outer, inner = np.asarray(outer, dtype=np.float64), np.asarray(inner, dtype=np.float64)
    return np.concatenate([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]], axis=1)


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (..., 2) points by a (2, 3) affine matrix; returns (..., 2) in the same dtype as ``points``."""
    points = np.asarray(points)
    mapped = points @ affine[:, :2].T + affine[:, 2]
    return mapped.astype(points.dtype if np.issubdtype(points.dtype, np.floating) else np.float64)


def crop_image(image: np.ndarray, img2crop: np.ndarray, out_hw: Sequence[int], aug: AugParams) -> np.ndarray:
    """Warp an image into the crop and apply the colour factors.

    Args:
        image: (H, W, 3) uint8 RGB (or float in [0, 255]).
        img2crop: (2, 3) map from `crop_affine` (the flip, if any, is inside it).
        out_hw: (H_out, W_out) crop size, pixels.
        aug: supplies the colour factors.

    Returns:
        (3, H_out, W_out) float32 RGB in [0, 1], C-contiguous; outside the image is black.
    """
    patch = cv2.warpAffine(image, img2crop.astype(np.float32), (int(out_hw[1]), int(out_hw[0])), flags=cv2.INTER_LINEAR)
    factors = np.asarray(aug.color, dtype=np.float32) / np.float32(255.0)  # colour and 1/255 in one multiply
    chw = patch.transpose(2, 0, 1).astype(np.float32) * factors[:, None, None]  # (3, H_out, W_out)
    return np.ascontiguousarray(np.clip(chw, 0.0, 1.0, out=chw))
