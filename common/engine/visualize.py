"""Training-time pictures: predicted meshes rendered over their input crops, tiled into one grid for TensorBoard."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
from torch import Tensor

from common.utils.draw import make_grid
from common.utils.render import MeshRenderer, MeshSpec, RenderingUnavailableError, render_overlay

__all__ = ["MeshGridRenderer", "MeshPicture"]

logger = logging.getLogger(__name__)


class MeshGridRenderer:
    """Renders (B, V, 3) camera-frame meshes over (B, 3, H, W) crops; turns itself off, with one warning, when
    offscreen rendering is unavailable.

    Args:
        faces: (F, 3) mesh triangles.
        focal: (fx, fy) of the virtual camera in crop pixels.
        princpt: (cx, cy) in crop pixels.
    """

    def __init__(self, faces: np.ndarray, focal: Sequence[float], princpt: Sequence[float]) -> None:
        self.faces = faces
        self.focal, self.princpt = (float(focal[0]), float(focal[1])), (float(princpt[0]), float(princpt[1]))
        self._renderer: MeshRenderer | None = None
        self.available = True

    def grid(self, images: Tensor, meshes_cam: Tensor) -> np.ndarray | None:
        """(H', W', 3) uint8 grid of the overlays in one row, or None when rendering is unavailable.

        Args:
            images: (B, 3, H, W) float RGB in [0, 1].
            meshes_cam: (B, V, 3) metres, OpenCV camera frame of the virtual camera.
        """
        if not self.available:
            return None
        crops = (images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round()
        crops = crops.astype(np.uint8)  # (B, H, W, 3)
        try:
            if self._renderer is None:
                self._renderer = MeshRenderer(crops.shape[2], crops.shape[1])
            overlays = [
                render_overlay(crop, MeshSpec(mesh, self.faces), self.focal, self.princpt, renderer=self._renderer)
                for crop, mesh in zip(crops, meshes_cam.detach().float().cpu().numpy(), strict=True)
            ]
        except (RenderingUnavailableError, ValueError) as exc:  # ValueError: a non-finite mesh early in training
            self.available = isinstance(exc, ValueError)
            logger.warning("Mesh images %s: %s", "skipped this time" if self.available else "turned off", exc)
            return None
        return make_grid(overlays, ncols=len(overlays))

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


class MeshPicture:
    """A family's training picture for mesh models: the test-mode mesh under `mesh_key`, over the input crops.

    Args:
        faces: (F, 3) triangles of the model's mesh.
        focal: (fx, fy) of the model's virtual camera in pixels of the input crop.
        princpt: (cx, cy) in the same pixels.
        mesh_key: the test-mode output key of the (B, V, 3) camera-frame mesh, metres.
    """

    def __init__(self, faces: np.ndarray, focal: Sequence[float], princpt: Sequence[float], mesh_key: str) -> None:
        self.renderer = MeshGridRenderer(faces, focal, princpt)
        self.mesh_key = mesh_key

    def draw(self, model: Callable[..., dict[str, Tensor]], inputs: dict[str, Tensor]) -> np.ndarray | None:
        """(H', W', 3) uint8 grid of the meshes over `inputs['img']`, or None (see `MeshGridRenderer.grid`)."""
        meshes = model(inputs, mode="test")[self.mesh_key]
        return self.renderer.grid(inputs["img"], meshes)

    def close(self) -> None:
        self.renderer.close()
