"""2D drawing for visualisation: keypoints, skeletons, boxes and image grids (OpenCV only, no OpenGL).

Images are (H, W, 3) RGB, either float in [0, 1] or uint8 in [0, 255]; every function returns a new
array of the input's dtype and never modifies its input. Colours are RGB in [0, 1] whatever the image
dtype. Coordinates are pixels with pixel centres at integer coordinates (as in OpenCV and
``common.utils.render``); subpixel values are accepted. Points that are non-finite, or so far outside
the image that OpenCV's int32 arithmetic could overflow, are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeAlias

import cv2
import numpy as np

Color: TypeAlias = Sequence[float] | np.ndarray  # (3,) RGB in [0, 1], or (N, 3) one colour per item

_MAX_ABS_COORD = 1e6  # pixels; far beyond any image, well inside cv2's int32 coordinates
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _copy_image(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Returns a contiguous copy for cv2 to draw on and the value of full intensity (255 or 1)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"image must be uint8 or float, got {image.dtype}")
    return np.array(image, order="C", copy=True), 255.0 if image.dtype == np.uint8 else 1.0


def _colors(color: Color, count: int, scale: float) -> list[tuple[float, float, float]]:
    """Expands one RGB colour or (count, 3) colours in [0, 1] to `count` cv2 colour tuples in image units."""
    colors = np.asarray(color, dtype=np.float64)
    if colors.shape == (3,):
        colors = np.broadcast_to(colors, (count, 3))
    if colors.shape != (count, 3):
        raise ValueError(f"color must be (3,) or ({count}, 3), got {colors.shape}")
    return [tuple(c) for c in (colors * scale).tolist()]


def _drawable(points: np.ndarray) -> np.ndarray:
    """(N,) bool: rows of (N, D) coordinates that are finite and within cv2's safe range."""
    return np.all(np.abs(points) < _MAX_ABS_COORD, axis=-1)  # NaN compares False: skipped too


def _pixel(point: np.ndarray) -> tuple[int, int]:
    # cv2 draws at integer pixel centres; rounding moves a point by at most half a pixel.
    return int(round(float(point[0]))), int(round(float(point[1])))


def _keypoints_and_valid(keypoints_xy: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    keypoints_xy = np.asarray(keypoints_xy, dtype=np.float64).reshape(-1, 2)  # (K, 2)
    ok = _drawable(keypoints_xy)
    if valid is not None:
        ok &= np.asarray(valid).reshape(-1).astype(bool)
    return keypoints_xy, ok


def _put_text(canvas: np.ndarray, text: str, origin: tuple[int, int], rgb: tuple[float, ...]) -> None:
    """Writes antialiased text in place on a uint8 or float canvas (cv2.putText itself takes only uint8)."""
    coverage = np.zeros(canvas.shape[:2], dtype=np.uint8)
    cv2.putText(coverage, text, origin, _FONT, 0.5, 255, 1, cv2.LINE_AA)
    ys, xs = np.nonzero(coverage)
    weight = coverage[ys, xs, None].astype(np.float64) / 255.0  # (N, 1)
    blended = canvas[ys, xs] * (1.0 - weight) + np.asarray(rgb) * weight
    canvas[ys, xs] = np.rint(blended) if canvas.dtype == np.uint8 else blended


def draw_keypoints(
    image: np.ndarray,
    keypoints_xy: np.ndarray,
    valid: np.ndarray | None = None,
    color: Color = (1.0, 0.0, 0.0),
    radius: int = 3,
) -> np.ndarray:
    """Draws filled circles at keypoints.

    Args:
        image: (H, W, 3) RGB, float in [0, 1] or uint8; not modified.
        keypoints_xy: (K, 2) pixel coordinates (x, y).
        valid: optional (K,) mask; keypoints with a false or zero entry are skipped.
        color: RGB in [0, 1], or (K, 3) per keypoint.
        radius: circle radius in pixels.

    Returns:
        (H, W, 3) new image of the input's dtype.
    """
    canvas, scale = _copy_image(image)
    keypoints_xy, ok = _keypoints_and_valid(keypoints_xy, valid)
    for point, rgb, draw in zip(keypoints_xy, _colors(color, len(keypoints_xy), scale), ok, strict=True):
        if draw:
            cv2.circle(canvas, _pixel(point), int(radius), rgb, thickness=-1, lineType=cv2.LINE_AA)
    return canvas


def draw_skeleton(
    image: np.ndarray,
    keypoints_xy: np.ndarray,
    edges: Sequence[tuple[int, int]],
    valid: np.ndarray | None = None,
    color: Color = (0.0, 1.0, 0.0),
    thickness: int = 2,
) -> np.ndarray:
    """Draws a line for every edge whose two keypoints are valid.

    Args:
        image: (H, W, 3) RGB, float in [0, 1] or uint8; not modified.
        keypoints_xy: (K, 2) pixel coordinates (x, y).
        edges: (E, 2) pairs of keypoint indices.
        valid: optional (K,) mask; an edge is drawn only when both its ends are valid.
        color: RGB in [0, 1], or (E, 3) per edge.
        thickness: line width in pixels.

    Returns:
        (H, W, 3) new image of the input's dtype.
    """
    canvas, scale = _copy_image(image)
    keypoints_xy, ok = _keypoints_and_valid(keypoints_xy, valid)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)  # (E, 2)
    for (i, j), rgb in zip(edges, _colors(color, len(edges), scale), strict=True):
        if ok[i] and ok[j]:
            cv2.line(canvas, _pixel(keypoints_xy[i]), _pixel(keypoints_xy[j]), rgb, int(thickness), cv2.LINE_AA)
    return canvas


def draw_boxes(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    colors: Color = (1.0, 1.0, 0.0),
    labels: Sequence[str] | None = None,
    thickness: int = 2,
) -> np.ndarray:
    """Draws axis-aligned boxes, each with an optional text label above its top-left corner.

    Args:
        image: (H, W, 3) RGB, float in [0, 1] or uint8; not modified.
        boxes_xyxy: (N, 4) boxes (x1, y1, x2, y2) in pixels; boxes with a non-finite coordinate are skipped.
        colors: RGB in [0, 1], or (N, 3) per box.
        labels: optional N strings, drawn on a filled tag of the box colour.
        thickness: line width in pixels.

    Returns:
        (H, W, 3) new image of the input's dtype.
    """
    canvas, scale = _copy_image(image)
    boxes_xyxy = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)  # (N, 4)
    if labels is not None and len(labels) != len(boxes_xyxy):
        raise ValueError(f"got {len(labels)} labels for {len(boxes_xyxy)} boxes")
    ok = _drawable(boxes_xyxy)
    for n, (box, rgb) in enumerate(zip(boxes_xyxy, _colors(colors, len(boxes_xyxy), scale), strict=True)):
        if not ok[n]:
            continue
        top_left, bottom_right = _pixel(box[:2]), _pixel(box[2:])
        cv2.rectangle(canvas, top_left, bottom_right, rgb, int(thickness), cv2.LINE_AA)
        if labels is not None and labels[n]:
            (text_w, text_h), baseline = cv2.getTextSize(str(labels[n]), _FONT, 0.5, 1)
            x, y = top_left[0], max(top_left[1], text_h + baseline)  # keep the tag inside the image at the top
            cv2.rectangle(canvas, (x, y - text_h - baseline), (x + text_w, y), rgb, thickness=-1)
            # Black or white text, whichever contrasts more with the tag (Rec. 601 luma).
            luma = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / scale
            text_rgb = (0.0, 0.0, 0.0) if luma > 0.5 else (scale, scale, scale)
            _put_text(canvas, str(labels[n]), (x, y - baseline), text_rgb)
    return canvas


def make_grid(images: Sequence[np.ndarray], ncols: int, pad: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tiles images row by row into one image, resizing each to the first image's size.

    Args:
        images: N images (H, W, 3) RGB, float in [0, 1] or uint8; converted to the first image's dtype.
        ncols: number of columns (fewer when there are fewer images).
        pad: pixels of padding between the tiles and around the border.
        pad_value: padding intensity in [0, 1].

    Returns:
        (rows * (H + pad) + pad, cols * (W + pad) + pad, 3) image of the first image's dtype, with
        rows = ceil(N / cols) and cols = min(ncols, N).
    """
    if len(images) == 0 or ncols < 1:
        raise ValueError(f"need at least one image and ncols >= 1, got {len(images)} images, ncols={ncols}")
    first, scale = _copy_image(images[0])
    height, width = first.shape[:2]
    cols = min(int(ncols), len(images))
    rows = math.ceil(len(images) / cols)
    grid = np.full((rows * (height + pad) + pad, cols * (width + pad) + pad, 3), pad_value * scale, first.dtype)
    for n, image in enumerate(images):
        tile, tile_scale = _copy_image(image)
        if tile.shape[:2] != (height, width):
            tile = cv2.resize(tile, (width, height), interpolation=cv2.INTER_AREA)
        if tile.dtype != first.dtype:
            tile = tile.astype(np.float64) * (scale / tile_scale)
            tile = np.clip(np.rint(tile), 0, 255) if first.dtype == np.uint8 else tile
        y, x = pad + (n // cols) * (height + pad), pad + (n % cols) * (width + pad)
        grid[y : y + height, x : x + width] = tile
    return grid
