"""Procedural backgrounds: colour gradients, multi-scale noise, stripes, a checkered floor, clutter of shapes.

Smooth layers are drawn at a low resolution and resized (cheap and just as good); only hard edges
(stripes, shapes) are drawn at full resolution. All images are (H, W, 3) uint8 RGB.
"""

from __future__ import annotations

import cv2
import numpy as np

from .camera import Camera

_LOW_RES = (90, 160)  # (height, width) of the smooth layers before resizing


def _colours(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.uniform(0.0, 255.0, (count, 3))


def _resize(image: np.ndarray, size_hw: tuple[int, int], interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    return cv2.resize(image, (size_hw[1], size_hw[0]), interpolation=interpolation)


def gradient(rng: np.random.Generator, size_hw: tuple[int, int]) -> np.ndarray:
    """A linear blend of 2-3 random colours along a random direction, float32 (H, W, 3) in [0, 255]."""
    height, width = _LOW_RES
    angle = rng.uniform(0.0, 2.0 * np.pi)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = x / width * np.cos(angle) + y / height * np.sin(angle)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)  # (h, w) in [0, 1]
    colours = _colours(rng, int(rng.integers(2, 4)))
    stops = np.linspace(0.0, 1.0, len(colours))
    low = np.stack([np.interp(t, stops, colours[:, c]) for c in range(3)], axis=-1).astype(np.float32)
    return _resize(low, size_hw)


def noise(rng: np.random.Generator, size_hw: tuple[int, int]) -> np.ndarray:
    """Multi-octave value noise, coloured, float32 (H, W, 3) in [0, 255]."""
    total = np.zeros((*_LOW_RES, 3), dtype=np.float32)
    for octave, cells in enumerate((3, 6, 12, 24, 48)):
        grid = rng.uniform(-1.0, 1.0, (cells, max(2, int(cells * 16 / 9)), 3)).astype(np.float32)
        total += _resize(grid, _LOW_RES, cv2.INTER_CUBIC) * 0.6**octave
    low = np.clip(127.5 + total * rng.uniform(60.0, 120.0), 0.0, 255.0)
    image = _resize(low, size_hw, cv2.INTER_CUBIC)
    fine = rng.uniform(-1.0, 1.0, (size_hw[0] // 4, size_hw[1] // 4, 1)).astype(np.float32)
    return np.clip(image + _resize(fine, size_hw)[..., None] * rng.uniform(0.0, 25.0), 0.0, 255.0)


def stripes(rng: np.random.Generator, size_hw: tuple[int, int]) -> np.ndarray:
    """Straight stripes of two colours at a random angle and period, hard or soft, float32 (H, W, 3)."""
    height, width = size_hw
    angle, period = rng.uniform(0.0, np.pi), rng.uniform(8.0, 120.0)
    # Python floats keep the arithmetic in float32 (a numpy float64 scalar would promote it to float64).
    step_x, step_y = (float(v) * 2.0 * np.pi / period for v in (np.cos(angle), np.sin(angle)))
    phase = np.arange(width, dtype=np.float32)[None] * step_x + np.arange(height, dtype=np.float32)[:, None] * step_y
    wave = np.sin(phase)  # (H, W) float32
    weight = (wave > 0).astype(np.float32) if rng.random() < 0.5 else 0.5 + 0.5 * wave
    first, second = _colours(rng, 2).astype(np.float32)
    return cv2.merge([second[c] + weight * (first[c] - second[c]) for c in range(3)])  # (H, W, 3), fast on planes


def floor(rng: np.random.Generator, size_hw: tuple[int, int], camera: Camera, base: np.ndarray) -> np.ndarray:
    """``base`` with a checkered ground plane (y = 0 in the world) drawn in perspective below the horizon."""
    height, width = _LOW_RES[0] * 4, _LOW_RES[1] * 4  # (360, 640): checks need more than the smooth layers
    scale = width / size_hw[1]
    v, u = np.mgrid[0:height, 0:width].astype(np.float64) / scale
    rays_cam = np.stack([(u - camera.princpt[0]) / camera.focal[0], (v - camera.princpt[1]) / camera.focal[1],
                         np.ones_like(u)], axis=-1)  # fmt: skip
    rays = rays_cam @ camera.rotation  # (h, w, 3) world directions: R^T r for each ray
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = -camera.position[1] / rays[..., 1]  # ray parameter where it meets y = 0
    hit = depth > 0
    points = camera.position + rays * np.where(hit, depth, 0.0)[..., None]
    size = rng.uniform(0.3, 1.5)  # metres per check
    checks = (np.floor(points[..., 0] / size) + np.floor(points[..., 2] / size)) % 2  # (h, w)
    first, second = _colours(rng, 2)
    ground = second + checks[..., None] * (first - second)
    fade = np.exp(-np.where(hit, depth, np.inf) / rng.uniform(15.0, 60.0))[..., None]  # distant floor fades out
    ground = ground * fade + ground.mean(axis=(0, 1)) * (1.0 - fade)
    low = np.where(hit[..., None], ground, _resize(base, (height, width))).astype(np.float32)
    return _resize(low, size_hw)


def clutter(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Draws 10-60 random filled or outlined rectangles, circles, ellipses, triangles and lines in place."""
    height, width = image.shape[:2]
    for _ in range(int(rng.integers(10, 61))):
        colour = tuple(float(c) for c in _colours(rng, 1)[0])
        thickness = -1 if rng.random() < 0.6 else int(rng.integers(1, 8))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(8, max(9, width // 5)))
        kind = rng.integers(5)
        if kind == 0:
            cv2.rectangle(image, (x, y), (x + size, y + int(rng.integers(8, size + 9))), colour, thickness)
        elif kind == 1:
            cv2.circle(image, (x, y), size // 2, colour, thickness, cv2.LINE_AA)
        elif kind == 2:
            axes = (size // 2, int(rng.integers(4, size // 2 + 5)))
            cv2.ellipse(image, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, colour, thickness, cv2.LINE_AA)
        elif kind == 3:
            points = (np.array([x, y]) + rng.integers(-size, size + 1, (3, 2))).astype(np.int32)
            cv2.drawContours(image, [points], 0, colour, thickness, cv2.LINE_AA)
        else:
            end = (x + int(rng.integers(-size, size + 1)), y + int(rng.integers(-size, size + 1)))
            cv2.line(image, (x, y), end, colour, max(1, thickness), cv2.LINE_AA)
    return image


def sample_background(rng: np.random.Generator, size_hw: tuple[int, int], camera: Camera) -> np.ndarray:
    """A random background: gradient, noise or stripes, maybe a floor seen by ``camera``, maybe clutter.

    Args:
        rng: the random generator.
        size_hw: (height, width) pixels.
        camera: the scene's camera, for the floor's perspective.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    kind = rng.integers(3)
    image = (gradient, noise, stripes)[kind](rng, size_hw)
    if rng.random() < 0.4 and camera.position[1] > 0.05:
        image = floor(rng, size_hw, camera, image)
    image = np.clip(image, 0.0, 255.0).astype(np.uint8)
    if rng.random() < 0.6:
        image = clutter(rng, image)
    return image
