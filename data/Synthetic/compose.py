"""Renders the people of a scene one by one and composites them over the background by depth.

One render per person gives each person's own silhouette and depth, hence exact visibility: a pixel
shows the nearest person whose mesh covers it. (Rendering everyone in one scene would give the same
image but not who is where.) A person's occlusion is AGORA's: the percentage of its full silhouette,
including the part beyond the image border, that is not visible in the image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.utils.render import MeshRenderer, MeshSpec

from .camera import Camera

_WINDOW_MARGIN_PX = 2  # around a mesh's projected vertices: the silhouette never reaches further
_FIT_SIZE_PX = 256  # the longest side of the off-image render that measures a cut person's full silhouette


@dataclass
class Composite:
    """A composited image and who is visible where.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        labels: (H, W) uint8, 0 for the background and k + 1 where person k is visible.
        visible_pixels: (N,) int64 visible pixels per person.
        full_pixels: (N,) float64 area of each person's whole silhouette (in and out of the image), pixels.
    """

    image: np.ndarray
    labels: np.ndarray
    visible_pixels: np.ndarray
    full_pixels: np.ndarray

    @property
    def occlusion(self) -> np.ndarray:
        """(N,) percentage of each person's silhouette hidden by others or by the image border, 0-100."""
        return 100.0 * (1.0 - self.visible_pixels / np.maximum(self.full_pixels, 1e-9))


def full_silhouette_area(renderer: MeshRenderer, mesh: MeshSpec, camera: Camera) -> float:
    """Area in image pixels of a mesh's whole silhouette, including what falls outside the image.

    A second render through a camera that frames the mesh's projection (same focal-length ratio, shifted
    principal point, at most ``_FIT_SIZE_PX`` pixels) counts it; its pixels are scaled back to the image's.
    """
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    uv = vertices[:, :2] / vertices[:, 2:] * np.asarray(camera.focal) + np.asarray(camera.princpt)  # (V, 2)
    low, high = uv.min(axis=0) - 2.0, uv.max(axis=0) + 2.0
    scale = min(1.0, _FIT_SIZE_PX / float(max(high - low)))
    size_hw = (max(1, math.ceil((high[1] - low[1]) * scale)), max(1, math.ceil((high[0] - low[0]) * scale)))
    focal = (camera.focal[0] * scale, camera.focal[1] * scale)
    # A pixel at u in the image lands at (u - low) * scale in the fitted render.
    princpt = ((camera.princpt[0] - low[0]) * scale, (camera.princpt[1] - low[1]) * scale)
    return float(renderer.render(mesh, focal, princpt, image_size=size_hw, lit=False).mask.sum()) / scale**2


def composite(renderer: MeshRenderer, meshes: Sequence[MeshSpec], camera: Camera, background: np.ndarray) -> Composite:
    """Renders each mesh alone and keeps, per pixel, the nearest one, over the background.

    Args:
        renderer: a renderer (any default size; the background's size is used).
        meshes: N meshes in the camera frame, with vertex colours.
        camera: the camera's intrinsics (``focal``, ``princpt``) for the background's size.
        background: (H, W, 3) uint8 RGB.
    """
    height, width = background.shape[:2]
    image, labels = background.copy(), np.zeros((height, width), dtype=np.uint8)
    nearest = np.full((height, width), np.inf, dtype=np.float32)
    visible, full = np.zeros(len(meshes), dtype=np.int64), np.zeros(len(meshes), dtype=np.float64)
    for k, mesh in enumerate(meshes):
        vertices = np.asarray(mesh.vertices)
        uv = vertices[:, :2] / vertices[:, 2:] * np.asarray(camera.focal) + np.asarray(camera.princpt)
        # Only the window around the mesh's projection is rendered and read back: a person covers a tenth
        # of the image on average, and the read-back and per-pixel work scale with the window's area.
        x0, y0 = np.maximum(np.floor(uv.min(axis=0)).astype(int) - _WINDOW_MARGIN_PX, 0)
        x1, y1 = np.minimum(np.ceil(uv.max(axis=0)).astype(int) + _WINDOW_MARGIN_PX, (width - 1, height - 1))
        in_window_pixels = 0  # a mesh beside the image has no window
        if x0 <= x1 and y0 <= y1:
            window = (slice(y0, y1 + 1), slice(x0, x1 + 1))
            princpt = (camera.princpt[0] - x0, camera.princpt[1] - y0)
            # Unlit: the colours carry their baked-in light (appearance.shade) and unlit renders are bit-exact.
            output = renderer.render(mesh, camera.focal, princpt, image_size=(y1 - y0 + 1, x1 - x0 + 1), lit=False)
            # Strictly nearer: ties (touching surfaces) go to the earlier person, whatever the order of rendering.
            front = output.mask & (output.depth < nearest[window])
            nearest[window][front] = output.depth[front]
            labels[window][front] = k + 1
            image[window][front] = np.rint(output.color[front] * 255.0).astype(np.uint8)
            in_window_pixels = int(output.mask.sum())
        inside = (uv.min(axis=0) >= 0).all() and (uv.max(axis=0) <= (width - 1, height - 1)).all()
        full[k] = in_window_pixels if inside else full_silhouette_area(renderer, mesh, camera)
    visible[:] = np.bincount(labels.ravel(), minlength=len(meshes) + 1)[1:]
    return Composite(image=image, labels=labels, visible_pixels=visible, full_pixels=full)
