"""2D drawing (common/utils/draw.py): pixels land where the coordinates say, inputs stay untouched."""

from __future__ import annotations

import numpy as np
import pytest

from common.utils.draw import draw_boxes, draw_keypoints, draw_skeleton, make_grid

H, W = 60, 80


def blank(dtype: type) -> np.ndarray:
    return np.zeros((H, W, 3), dtype=dtype)


def changed_pixels(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(N, 2) (x, y) of the pixels that differ."""
    ys, xs = np.nonzero(np.any(before != after, axis=-1))
    return np.stack([xs, ys], axis=1).astype(np.float64)


def distance_to_segment(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    t = np.clip((points - a) @ (b - a) / max(float((b - a) @ (b - a)), 1e-12), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * (b - a)), axis=1)


@pytest.mark.parametrize("dtype, full", [(np.uint8, 255), (np.float32, 1.0), (np.float64, 1.0)])
def test_keypoints_drawn_at_their_pixels_only(dtype: type, full: float) -> None:
    image = blank(dtype)
    keypoints = np.array([[10.4, 20.6], [60.0, 45.0]])
    out = draw_keypoints(image, keypoints, color=(1.0, 0.0, 0.0), radius=3)
    assert out.dtype == image.dtype and out is not image and not image.any()
    for x, y in keypoints:
        assert tuple(out[round(y), round(x)]) == (full, 0, 0)  # RGB order: red is channel 0
    drawn = changed_pixels(image, out)
    nearest = np.min(np.linalg.norm(drawn[:, None] - keypoints[None], axis=-1), axis=1)
    assert nearest.max() <= 3 + 2.0  # radius, the antialiased rim (1 px) and rounding (up to 0.71 px)


def test_invalid_and_non_finite_keypoints_are_skipped() -> None:
    image = blank(np.uint8)
    keypoints = np.array([[20.0, 20.0], [np.nan, 5.0], [np.inf, -np.inf], [1e30, 3.0], [50.0, 40.0]])
    out = draw_keypoints(image, keypoints, valid=np.array([1, 1, 1, 1, 0]), radius=2)
    drawn = changed_pixels(image, out)
    assert len(drawn) > 0 and np.all(np.linalg.norm(drawn - [20.0, 20.0], axis=1) <= 2 + 2.0)
    assert not draw_keypoints(image, np.full((3, 2), np.nan)).any()


def test_skeleton_lines_follow_the_edges() -> None:
    image = blank(np.float32)
    keypoints = np.array([[10.0, 10.0], [70.0, 10.0], [40.0, 50.0], [np.nan, np.nan]])
    edges = [(0, 1), (1, 2), (2, 3)]  # the last edge has a NaN end: skipped
    colors = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    out = draw_skeleton(image, keypoints, edges, color=colors, thickness=1)
    assert out.dtype == np.float32 and not image.any()
    assert out[10, 40, 0] == 1.0 and out[30, 55, 2] > 0.5  # on the first and second edge
    drawn = changed_pixels(image, out)
    distance = np.minimum(
        distance_to_segment(drawn, keypoints[0], keypoints[1]), distance_to_segment(drawn, keypoints[1], keypoints[2])
    )
    assert distance.max() <= 1.5
    assert not out[..., 1].any()  # the green edge was not drawn
    hidden = draw_skeleton(image, keypoints, edges, valid=np.array([True, False, True, True]))
    assert not hidden.any()  # every drawable edge touches the invalid keypoint 1


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_boxes_drawn_on_their_outline(dtype: type) -> None:
    image = blank(dtype)
    boxes = np.array([[10.2, 15.0, 40.0, 35.4], [np.nan, 0.0, 5.0, 5.0]])
    out = draw_boxes(image, boxes, colors=[(0.0, 1.0, 0.0), (1.0, 0.0, 0.0)], thickness=1)
    assert out.dtype == image.dtype and not image.any()
    assert not out[..., 0].any()  # the NaN box (red) is skipped
    drawn = changed_pixels(image, out)
    x1, y1, x2, y2 = 10, 15, 40, 35
    outline = np.minimum.reduce(
        [np.abs(drawn[:, 0] - x1), np.abs(drawn[:, 0] - x2), np.abs(drawn[:, 1] - y1), np.abs(drawn[:, 1] - y2)]
    )
    inside = (
        (drawn[:, 0] >= x1 - 1.5) & (drawn[:, 0] <= x2 + 1.5) & (drawn[:, 1] >= y1 - 1.5) & (drawn[:, 1] <= y2 + 1.5)
    )
    assert np.all(inside) and outline.max() <= 1.5
    assert out[y1, 25, 1] > 0 and out[25, x1, 1] > 0 and not out[25, 25].any()


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_box_labels_are_drawn_above_the_box(dtype: type) -> None:
    image = blank(dtype)
    out = draw_boxes(image, [[20.0, 30.0, 60.0, 55.0], [5.0, 2.0, 30.0, 20.0]], labels=["lhand", "face"])
    assert out[:30, 20:60].any()  # the tag above the first box
    assert out[2:20, 5:30].any()  # the second box sits at the top: its tag is kept inside the image
    assert out.dtype == image.dtype and not image.any()
    with pytest.raises(ValueError, match="labels"):
        draw_boxes(image, [[0.0, 0.0, 5.0, 5.0]], labels=["a", "b"])


def test_make_grid_layout_and_dtypes() -> None:
    first = np.full((20, 30, 3), 10, dtype=np.uint8)
    second = np.full((40, 60, 3), 1.0, dtype=np.float32)  # resized and converted to uint8
    third = np.full((20, 30, 3), 200, dtype=np.uint8)
    grid = make_grid([first, second, third], ncols=2, pad=2, pad_value=0.0)
    assert grid.shape == (2 * (20 + 2) + 2, 2 * (30 + 2) + 2, 3) and grid.dtype == np.uint8
    assert np.all(grid[2:22, 2:32] == 10) and np.all(grid[2:22, 34:64] == 255) and np.all(grid[24:44, 2:32] == 200)
    assert np.all(grid[24:44, 34:64] == 0) and np.all(grid[:2] == 0)  # empty cell and padding
    assert make_grid([second], ncols=4).shape == (44, 64, 3)  # fewer images than columns
    with pytest.raises(ValueError):
        make_grid([], ncols=2)


def test_inputs_must_be_rgb_images() -> None:
    with pytest.raises(ValueError, match="H, W, 3"):
        draw_keypoints(np.zeros((H, W), dtype=np.uint8), np.zeros((1, 2)))
    with pytest.raises(TypeError):
        draw_keypoints(np.zeros((H, W, 3), dtype=np.int32), np.zeros((1, 2)))
