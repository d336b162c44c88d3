"""Offscreen mesh rendering with pyrender, for visualising meshes over images.

Frames and pixels (docs/conventions.md): meshes are given in the OpenCV camera frame (x right, y down,
z forward, metres) and projected with a pinhole camera (focal, princpt) in pixels whose centres lie at
integer coordinates, as in OpenCV and ``common.utils.draw``.

Backend: the OpenGL platform comes from the ``PYOPENGL_PLATFORM`` environment variable, ``egl`` (the
default, set here when the variable is unset) or ``osmesa``. PyOpenGL fixes the platform at its first
import in a process, so pyrender is imported lazily by :class:`MeshRenderer` and importing this module
has no side effects.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

if TYPE_CHECKING:
    import torch

ArrayLike: TypeAlias = "np.ndarray | torch.Tensor"  # numpy array or torch tensor (any device)
Meshes: TypeAlias = "MeshSpec | Sequence[MeshSpec]"
Pair: TypeAlias = tuple[float, float]

_PACKAGE_HINTS = {
    "egl": "EGL needs the system packages libegl1 libegl-mesa0 libgl1-mesa-dri "
    "(apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri)",
    "osmesa": "OSMesa needs the system package libosmesa6 (apt-get install libosmesa6) and PyOpenGL>=3.1.4; "
    "pyrender pins PyOpenGL==3.1.0, which lacks OSMesaCreateContextAttribs",
}
# The OpenCV camera frame is the scene's world frame; the pyrender (OpenGL) camera looks down its -z
# with +y up, so its pose in that world is a 180-degree turn about x (flip y and z). This is the one
# place where the OpenCV/OpenGL conversion happens: vertices and lights stay in the OpenCV frame.
_CV_TO_GL_CAMERA_POSE = np.diag([1.0, -1.0, -1.0, 1.0])
# (direction of travel in the OpenCV camera frame, intensity): a key light from the upper left, a
# fill from the right and a weak light from below, so the shape reads without flat regions.
_LIGHTS = (((0.5, 0.7, 1.0), 2.5), ((-0.8, 0.1, 1.0), 1.0), ((0.0, -0.8, 0.6), 0.5))
_AMBIENT = (0.1, 0.1, 0.1)
_MIN_ZNEAR = 1e-3  # metres; the near plane never comes closer than this


class RenderingUnavailableError(RuntimeError):
    """No OpenGL context could be created for offscreen rendering (missing libraries or a bad platform)."""


@dataclass
class MeshSpec:
    """One triangle mesh to render.

    Attributes:
        vertices: (V, 3) metres in the OpenCV camera frame (numpy array or torch tensor).
        faces: (F, 3) vertex indices (counter-clockwise seen from outside, for outward normals).
        color: RGB in [0, 1], used when vertex_colors is None.
        vertex_colors: optional (V, 3) RGB in [0, 1] per vertex.
    """

    vertices: ArrayLike
    faces: ArrayLike
    color: tuple[float, float, float] = (0.65, 0.74, 0.86)
    vertex_colors: ArrayLike | None = None

    def __post_init__(self) -> None:
        self.vertices = _as_numpy(self.vertices, np.float32)
        self.faces = _as_numpy(self.faces, np.int64)
        num_verts = len(self.vertices)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3 or not np.isfinite(self.vertices).all():
            raise ValueError(f"vertices must be finite (V, 3), got shape {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got shape {self.faces.shape}")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= num_verts):
            raise ValueError(f"face indices must lie in [0, {num_verts})")
        if self.vertex_colors is not None:
            self.vertex_colors = _as_numpy(self.vertex_colors, np.float32)
            if self.vertex_colors.shape != (num_verts, 3):
                raise ValueError(f"vertex_colors must be ({num_verts}, 3), got {self.vertex_colors.shape}")


@dataclass
class RenderOutput:
    """Result of :meth:`MeshRenderer.render`.

    Attributes:
        color: (H, W, 3) float32 RGB in [0, 1]; 0 where no mesh is.
        depth: (H, W) float32 z in metres (OpenCV camera frame); 0 where no mesh is.
        mask: (H, W) bool, True where a mesh covers the pixel.
    """

    color: np.ndarray
    depth: np.ndarray
    mask: np.ndarray


def _as_numpy(array: Any, dtype: Any) -> np.ndarray:
    """Converts a numpy array or torch tensor (any device, with or without grad) to a numpy array."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.ascontiguousarray(array, dtype=dtype)


def _unavailable(platform: str, exc: BaseException) -> RenderingUnavailableError:
    hint = _PACKAGE_HINTS.get(platform)
    if hint is None:
        hint = f"supported values are 'egl' and 'osmesa'; {_PACKAGE_HINTS['egl']}; {_PACKAGE_HINTS['osmesa']}"
    return RenderingUnavailableError(
        f"Offscreen rendering is unavailable with PYOPENGL_PLATFORM={platform!r} ({type(exc).__name__}: {exc}). {hint}."
    )


def _to_output(rgba: np.ndarray, depth: np.ndarray) -> RenderOutput:
    """Builds the RenderOutput from pyrender's (H, W, 4) uint8 RGBA and (H, W) linear depth.

    pyrender's EGL path renders with 4x MSAA: the colour is resolved by averaging the samples (edge pixels
    are blended with the black, transparent background) while the depth keeps one sample. The mask comes
    from the depth, so mask and depth agree, but its silhouette is shifted by under half a pixel: sample 0
    of the standard pattern lies 0.125 px left of and 0.375 px below the pixel centre, which moves the
    mask by about (+0.125, -0.375) px in (x, y). OSMesa renders without MSAA and has no such shift.
    """
    depth = np.asarray(depth, dtype=np.float32)
    mask = depth > 0
    pixels = rgba[mask].astype(np.float32) / 255.0  # (N, 3 or 4); only covered pixels, for speed
    if pixels.shape[1] == 4:  # EGL; OSMesa returns RGB, rendered without MSAA: nothing to un-premultiply
        # Divide by the coverage, so edge pixels of the mask show the mesh colour, not a dark fringe.
        pixels = np.minimum(pixels[:, :3] / np.maximum(pixels[:, 3:], 1.0 / 255.0), 1.0)
    color = np.zeros(mask.shape + (3,), dtype=np.float32)
    color[mask] = pixels
    return RenderOutput(color=color, depth=depth, mask=mask)


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit vertex normals, area-weighted over the adjacent faces, for smooth shading."""
    tri = vertices[faces]  # (F, 3, 3)
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F, 3), length = 2 * area
    normals = np.stack(
        [np.bincount(faces.ravel(), np.repeat(face_normals[:, c], 3), len(vertices)) for c in range(3)], axis=1
    )  # (V, 3); bincount is much faster than np.add.at for scatter-adding
    return (normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _clip_planes(specs: Sequence[MeshSpec]) -> tuple[float, float]:
    """Near and far planes (metres) around the meshes' depth range.

    Fitted per scene rather than fixed: Hand4Whole's virtual camera puts people 50-110 m away (t_z = k / gamma),
    beyond any fixed far plane that still leaves a fixed-point depth buffer precise at 1 m. A ratio of a few
    between the planes keeps the 24-bit depth precise to well under a millimetre per metre of depth.
    """
    depths = np.concatenate([spec.vertices[:, 2] for spec in specs]) if specs else np.zeros(0)
    in_front = depths[depths > _MIN_ZNEAR]
    if in_front.size == 0:  # nothing in front of the camera: any valid planes give an empty image
        return _MIN_ZNEAR, 1.0
    return max(0.5 * float(in_front.min()), _MIN_ZNEAR), 2.0 * float(in_front.max())


def _light_pose(direction: Sequence[float]) -> np.ndarray:
    """(4, 4) pose of a directional light (which shines along its local -z) travelling along `direction`."""
    z_axis = -np.asarray(direction, dtype=np.float64) / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z_axis[1]) > 0.9 else np.array([0.0, 1.0, 0.0])
    x_axis = np.cross(helper, z_axis)
    x_axis /= np.linalg.norm(x_axis)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x_axis, np.cross(z_axis, x_axis), z_axis], axis=1)
    return pose


class MeshRenderer:
    """Offscreen renderer holding one OpenGL context, reused for every call.

    Use as a context manager or call :meth:`close`. Several renderers may live in one process.

    Args:
        width: default image width in pixels.
        height: default image height in pixels.

    Raises:
        RenderingUnavailableError: when no OpenGL context can be created.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = int(width), int(height)
        self._offscreen = None
        platform = os.environ.setdefault("PYOPENGL_PLATFORM", "egl")  # before OpenGL's first import
        try:
            import pyrender  # lazily: the import reads PYOPENGL_PLATFORM (see the module docstring)

            self._offscreen = pyrender.OffscreenRenderer(self.width, self.height)
        except Exception as exc:  # missing libraries surface as ImportError, OSError, GLError, ValueError...
            raise _unavailable(platform, exc) from exc
        self._pyrender = pyrender

    def render(
        self,
        meshes: Meshes,
        focal: Pair,
        princpt: Pair,
        image_size: tuple[int, int] | None = None,
        lit: bool = True,
    ) -> RenderOutput:
        """Renders meshes given in the OpenCV camera frame with a pinhole camera.

        Args:
            meshes: one MeshSpec or several, rendered in one scene (the nearest surface wins).
            focal: (fx, fy) pixels.
            princpt: (cx, cy) pixels; pixel centres at integer coordinates.
            image_size: (H, W) pixels; defaults to the renderer's size. The context is resized, not recreated
                (OSMesa alone recreates it, as its buffer has a fixed size).
            lit: shade with the renderer's lights; False shows the (vertex) colours as they are, for callers
                that bake their own lighting into them. Unlit renders are bit-exact from run to run; lit ones
                may differ by one grey level in a few pixels, as pyrender sums its lights in the iteration
                order of a set, which changes between processes.

        Returns:
            RenderOutput with (H, W) images.
        """
        if self._offscreen is None:
            raise RuntimeError("MeshRenderer is closed")
        pyrender = self._pyrender
        height, width = (self.height, self.width) if image_size is None else (int(s) for s in image_size)
        self._offscreen.viewport_width, self._offscreen.viewport_height = width, height
        scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=_AMBIENT)
        specs = [meshes] if isinstance(meshes, MeshSpec) else list(meshes)
        for spec in specs:
            scene.add(self._to_pyrender(spec))
        znear, zfar = _clip_planes(specs)
        # +0.5: OpenGL puts pixel centres at half-integer window coordinates, OpenCV at integers.
        camera = pyrender.IntrinsicsCamera(*focal, princpt[0] + 0.5, princpt[1] + 0.5, znear=znear, zfar=zfar)
        scene.add(camera, pose=_CV_TO_GL_CAMERA_POSE)
        for direction, intensity in _LIGHTS:
            scene.add(pyrender.DirectionalLight(intensity=intensity), pose=_light_pose(direction))
        # No culling: open meshes (hands, face) show their inside. RGBA: the alpha is the coverage (_to_output).
        flags = pyrender.RenderFlags.SKIP_CULL_FACES | pyrender.RenderFlags.RGBA
        if not lit:
            flags |= pyrender.RenderFlags.FLAT
        rgba, depth = self._offscreen.render(scene, flags=flags)
        return _to_output(rgba, depth)

    def _to_pyrender(self, spec: MeshSpec) -> Any:
        pyrender = self._pyrender
        base_color = (1.0, 1.0, 1.0, 1.0) if spec.vertex_colors is not None else (*spec.color, 1.0)
        material = pyrender.MetallicRoughnessMaterial(
            baseColorFactor=base_color, metallicFactor=0.0, roughnessFactor=0.6, alphaMode="OPAQUE", doubleSided=True
        )
        normals = _vertex_normals(spec.vertices, spec.faces)
        primitive = pyrender.Primitive(spec.vertices, normals, indices=spec.faces, color_0=spec.vertex_colors)
        primitive.material = material
        return pyrender.Mesh([primitive])

    def close(self) -> None:
        """Frees the OpenGL context; safe to call twice."""
        offscreen, self._offscreen = self._offscreen, None
        if offscreen is None:
            return
        platform = offscreen._platform
        offscreen._platform.make_current()
        offscreen._renderer.delete()
        if hasattr(platform, "_egl_context"):
            # pyrender's delete() calls eglTerminate on the EGL display, which is shared by every context of
            # the process and would break other live renderers; destroy only this context instead.
            from OpenGL.EGL import eglDestroyContext

            eglDestroyContext(platform._egl_display, platform._egl_context)
            platform._egl_context = platform._egl_display = None
        else:
            platform.delete_context()
        offscreen._renderer = offscreen._platform = None

    def __enter__(self) -> MeshRenderer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # at interpreter exit OpenGL may already be torn down; nothing left to free
            pass


def overlay(image: np.ndarray, output: RenderOutput, alpha: float = 0.8) -> np.ndarray:
    """Alpha-blends the rendered colour over an image inside the render mask.

    Args:
        image: (H, W, 3) RGB, float in [0, 1] or uint8; not modified.
        output: a RenderOutput of the same (H, W).
        alpha: opacity of the rendering, in [0, 1].

    Returns:
        (H, W, 3) array of image's dtype; pixels outside the mask are copied unchanged.
    """
    if image.shape[:2] != output.mask.shape or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image {image.shape} does not match the rendering {output.mask.shape} (need H, W, 3)")
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    result = image.copy()
    blended = alpha * output.color[output.mask] * scale + (1.0 - alpha) * image[output.mask].astype(np.float32)
    result[output.mask] = np.clip(np.rint(blended), 0, 255) if image.dtype == np.uint8 else blended
    return result


def render_overlay(
    image: np.ndarray,
    meshes: Meshes,
    focal: Pair,
    princpt: Pair,
    alpha: float = 0.8,
    renderer: MeshRenderer | None = None,
) -> np.ndarray:
    """Renders meshes at the image's size and blends them over it (see :func:`overlay`).

    Pass a long-lived ``renderer`` when drawing many images; without one, a context is made for this call.
    """
    if renderer is None:
        with MeshRenderer(image.shape[1], image.shape[0]) as temporary:
            return render_overlay(image, meshes, focal, princpt, alpha, temporary)
    return overlay(image, renderer.render(meshes, focal, princpt, image_size=image.shape[:2]), alpha)


def side_view(vertices: ArrayLike, angle_deg: float = 90.0, center: ArrayLike | None = None) -> np.ndarray:
    """Turns a mesh about the camera-frame vertical axis (y, pointing down) through its centre.

    Rotation by R_y(angle) = [[cos, 0, sin], [0, 1, 0], [-sin, 0, cos]] about `center`: at 90 degrees a point
    on the +x side (image right) moves to the -z side (towards the camera), so rendering the result with
    the same camera shows the mesh's right-hand side (as seen in the image).

    Args:
        vertices: (V, 3) metres, OpenCV camera frame (numpy array or torch tensor).
        angle_deg: rotation angle in degrees.
        center: (3,) rotation centre in metres; defaults to the vertices' mean.

    Returns:
        (V, 3) numpy array, float dtype of the input (float32 for integer input).
    """
    verts = _as_numpy(vertices, None)
    dtype = verts.dtype if np.issubdtype(verts.dtype, np.floating) else np.float32
    verts = verts.astype(np.float64)
    pivot = verts.mean(axis=0) if center is None else _as_numpy(center, np.float64).reshape(3)
    cos, sin = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    rot = np.array([[cos, 0.0, sin], [0.0, 1.0, 0.0], [-sin, 0.0, cos]])
    return ((verts - pivot) @ rot.T + pivot).astype(dtype)
