"""Several people in one picture: their meshes in one pyrender scene of the image camera, nearest surface in front.

The overlay takes each mesh as drawn (`demo.full_image_camera.drawn_vertices`: at its metric depth in the shared
camera, on the pixels of the person's own camera), so that people hide each other by depth while each lands on
its own pixels.
The side view turns the rigid meshes (the 3D scene of the OBJ files) about the vertical axis through the group's
centre and frames them, so that the depth layout reads left to right.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np

from common.utils.render import MeshRenderer, MeshSpec, overlay, side_view
from demo.camera import PinholeCamera
from demo.full_image_camera import mesh_pivot

__all__ = ["person_colour", "render_people_overlay", "render_people_side_view", "side_view_camera_frame"]

_GOLDEN_RATIO_CONJUGATE = 0.618033988749895  # hue step: consecutive ids get well-separated hues
_SIDE_VIEW_MARGIN = 0.9  # the framed group fills at most this fraction of the half-width and half-height
_SIDE_VIEW_MIN_DEPTH_M = 0.5  # the nearest vertex of the framed group stays at least this far from the camera


def person_colour(index: int) -> tuple[float, float, float]:
    """A light, saturated RGB colour in [0, 1] for a person index or track id; neighbouring ids differ clearly."""
    hue = (0.58 + index * _GOLDEN_RATIO_CONJUGATE) % 1.0  # 0.58: the first person gets the single demo's blue
    return colorsys.hsv_to_rgb(hue, 0.45, 0.95)


def _specs(meshes_m: Sequence[np.ndarray], faces: np.ndarray, colour_ids: Sequence[int] | None) -> list[MeshSpec]:
    ids = range(len(meshes_m)) if colour_ids is None else colour_ids
    return [MeshSpec(mesh, faces, color=person_colour(i)) for mesh, i in zip(meshes_m, ids, strict=True)]


def render_people_overlay(
    image_rgb: np.ndarray,
    drawn_meshes_m: Sequence[np.ndarray],
    faces: np.ndarray,
    camera: PinholeCamera,
    renderer: MeshRenderer,
    colour_ids: Sequence[int] | None = None,
    alpha: float = 0.85,
) -> np.ndarray:
    """Everyone over the image, in one scene of the image camera (the depth buffer orders them).

    Args:
        image_rgb: (H, W, 3) uint8 or float RGB; not modified.
        drawn_meshes_m: per person (V, 3) its mesh as drawn in the image camera, metres (`drawn_vertices`).
        faces: (F, 3) triangles shared by the meshes.
        camera: the image camera.
        renderer: a renderer (its context is resized to the image).
        colour_ids: per mesh, the id its colour comes from (track ids in a video); default 0, 1, 2, ...
        alpha: the meshes' opacity.

    Returns:
        (H, W, 3) array of the image's dtype.
    """
    if not drawn_meshes_m:
        return image_rgb.copy()
    specs = _specs(drawn_meshes_m, faces, colour_ids)
    return overlay(image_rgb, renderer.render(specs, camera.focal, camera.princpt, image_rgb.shape[:2]), alpha)


def side_view_camera_frame(
    meshes_m: Sequence[np.ndarray], camera: PinholeCamera, image_hw: Sequence[int], angle_deg: float = 90.0
) -> list[np.ndarray]:
    """The meshes turned about the vertical axis through the group's centre and moved so the camera frames them.

    The group's centre is the mean of the meshes' pivots. After the turn (`common.utils.render.side_view`) the
    group is moved along the optical axis and centred on it, just far enough that every vertex projects within
    `_SIDE_VIEW_MARGIN` of the image's half-size and lies in front of the camera.

    Args:
        meshes_m: per person (V, 3) metres, camera frame.
        camera: the camera that will render them (only its focal is used; the group is centred on its axis).
        image_hw: (H, W) of the rendered image.
        angle_deg: the turn, degrees (90: the group seen from its right-hand side as seen in the image).

    Returns:
        Per person (V, 3) float64 metres.
    """
    centre = np.mean([mesh_pivot(mesh) for mesh in meshes_m], axis=0)  # (3,)
    turned = [side_view(np.asarray(mesh, dtype=np.float64), angle_deg, centre) - centre for mesh in meshes_m]
    points = np.concatenate(turned)  # (N, 3) about the origin
    half_w = _SIDE_VIEW_MARGIN * (image_hw[1] - 1) / 2.0
    half_h = _SIDE_VIEW_MARGIN * (image_hw[0] - 1) / 2.0
    # |x| * f / (D + z) <= half  <=>  D >= |x| * f / half - z, for every vertex.
    distance = max(
        float(np.max(np.abs(points[:, 0]) * camera.focal[0] / half_w - points[:, 2])),
        float(np.max(np.abs(points[:, 1]) * camera.focal[1] / half_h - points[:, 2])),
        float(_SIDE_VIEW_MIN_DEPTH_M - points[:, 2].min()),
    )
    return [mesh + np.array([0.0, 0.0, distance]) for mesh in turned]


def render_people_side_view(
    meshes_m: Sequence[np.ndarray],
    faces: np.ndarray,
    camera: PinholeCamera,
    image_hw: Sequence[int],
    renderer: MeshRenderer,
    colour_ids: Sequence[int] | None = None,
    background: int = 255,
) -> np.ndarray:
    """(H, W, 3) uint8 the group's rigid meshes seen from the side (`side_view_camera_frame`), on a plain background.

    The camera has the image camera's focal and its principal point at the rendered image's centre.
    """
    height, width = (int(v) for v in image_hw)
    canvas = np.full((height, width, 3), background, dtype=np.uint8)
    if not meshes_m:
        return canvas
    framed = side_view_camera_frame(meshes_m, camera, image_hw)
    princpt = ((width - 1) / 2.0, (height - 1) / 2.0)
    output = renderer.render(_specs(framed, faces, colour_ids), camera.focal, princpt, (height, width))
    return overlay(canvas, output, 1.0)
