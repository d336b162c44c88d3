"""Every person of an image in one camera: each crop's virtual-camera prediction placed in the image's camera.

The network predicts each person in its own camera (demo/camera.py): the virtual camera of `model.focal` and
`model.princpt` on its input (`MeshView.camera_hw` pixels), which the crop maps into the original image as

    K_i = (F, P),  F = focal_virtual * s,  P = princpt_virtual * s + crop corner,

with s the crop's original-image pixels per input pixel (isotropic: the crop keeps the input's aspect). Its mesh X
(camera frame, metres, cam_trans included) projects onto the person: u_i(X) = F * X_xy / X_z + P. People of one
image get different K_i; to show them together (one overlay ordered by depth, one 3D scene) they must share one
camera K = (f, c): the image's, with the principal point c at the image centre and a focal f from the user or a
default field of view.

Rigid placement (the meshes written to OBJ, `cam_trans` in the image camera). Each mesh moves by one translation
Delta, chosen at its pivot T (the centre of its bounding box) so that T projects where K_i projects it and the
person keeps its size in pixels at that depth:

    T'_z = alpha * T_z with alpha = f / F     (pixels per metre p = F / T_z = f / T'_z, the same in both cameras)
    T'_xy = (u_i(T) - c) * T'_z / f           (the pivot's pixel, absorbing the principal-point shift P - c)
    Delta = T' - T,   X' = X + Delta,   cam_trans' = cam_trans + Delta.

With square pixels F and f are scalars; otherwise alpha uses their geometric means. The pivot lands exactly. A
vertex X = T + d off the pivot's depth plane lands off by (with a = T_x / T_z the pivot's slope in the person's
camera and a' = T'_x / T'_z its slope in the image camera; likewise in y)

    u(X') - u_i(X) = p * [(d_x - a' d_z) / (1 + d_z / T'_z) - (d_x - a d_z) / (1 + d_z / T_z)]
                   ~ -p * d_z * [(a' - a) + d_x * (1 / T'_z - 1 / T_z)]          (first order in d / T)

which is not zero in general, and no rigid placement can make it zero: a rigid motion X -> R X + t that reproduces
every pixel of K_i in K maps each ray through the camera centre onto one, so t = 0 and K R = K_i up to a scale; an
upper-triangular rotation is the identity, hence K = K_i. The residual is the difference between the network's
camera, nearly orthographic (focal 5000 px on a 192-px input: 2.2 degrees of view, people 40-90 m away), and the
image's real perspective: parallax of the body's depth d_z off the optical axis (a') and the stronger
foreshortening at the real depth T'_z. It is small when f is long (`network_matched_focal`: the network's angle
per pixel over the whole image; about a pixel) and reaches tens of pixels at the image border with a 60-degree
lens; `PersonInImage.residual_px` reports it per person.

Drawing (the overlays). The meshes are drawn in the image camera as `drawn_vertices`: every vertex keeps its rigid
depth (so people hide each other by their metric depths) and moves within its depth plane onto the ray of the pixel
where the person's own camera shows it,

    u_i(X) = u_i(T) + p * (d_xy - a d_z) / (1 + d_z / T_z),   u_i(T) = c + f * T'_xy / T'_z,   T_z = T'_z / alpha,

which needs only the rigid mesh, alpha and a: the overlay shows each person exactly as the single-person demo
does (the virtual camera's own perspective across the body, up to about a pixel for a large person, included),
whatever f. Without alpha and a (both 0) it is the weak-perspective drawing u = c + f * X'_xy / T'_z.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from demo.camera import PinholeCamera

__all__ = [
    "DEFAULT_FOV_DEG",
    "PersonInImage",
    "drawn_vertices",
    "image_camera",
    "mesh_pivot",
    "network_matched_focal",
    "place_in_image_camera",
    "project",
]

DEFAULT_FOV_DEG = 60.0  # across the image's longer side: a common lens when the real one is unknown


def image_camera(img_hw: Sequence[int], focal_px: float | None = None, fov_deg: float | None = None) -> PinholeCamera:
    """The camera shared by all people of an image: square pixels, principal point at the image centre.

    Args:
        img_hw: (H, W) of the image, pixels.
        focal_px: the focal length in pixels, when known; wins over `fov_deg`.
        fov_deg: the field of view across the image's longer side, degrees (default `DEFAULT_FOV_DEG`).

    Returns:
        focal (f, f) and princpt ((W - 1) / 2, (H - 1) / 2): the centre with pixel centres at integers.
    """
    height, width = (int(v) for v in img_hw)
    if focal_px is None:
        fov = DEFAULT_FOV_DEG if fov_deg is None else float(fov_deg)
        if not 0.0 < fov < 180.0:
            raise ValueError(f"the field of view must lie in (0, 180) degrees, got {fov}")
        focal_px = 0.5 * max(height, width) / math.tan(math.radians(fov) / 2.0)
    if not (math.isfinite(focal_px) and focal_px > 0.0):
        raise ValueError(f"the focal length must be a positive number of pixels, got {focal_px}")
    return PinholeCamera((float(focal_px), float(focal_px)), ((width - 1) / 2.0, (height - 1) / 2.0))


def network_matched_focal(img_hw: Sequence[int], focal_virtual: Sequence[float], camera_hw: Sequence[int]) -> float:
    """The focal whose angle per pixel is the network's: its virtual camera stretched over the whole image.

    With this focal the rigid placement's residual stays near a pixel (the scene is then a telephoto one: depths
    grow with f, so people stand far apart in depth).

    Args:
        img_hw: (H, W) of the image, pixels.
        focal_virtual: (fx, fy) of the virtual camera, input pixels (`model.focal`).
        camera_hw: (H, W) of the input the virtual camera refers to (`MeshView.camera_hw`).
    """
    scale = max(img_hw[0] / camera_hw[0], img_hw[1] / camera_hw[1])
    return float(math.sqrt(focal_virtual[0] * focal_virtual[1]) * scale)


def project(points_m: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """(..., 3) camera-frame metres (z > 0) -> (..., 2) float64 pixels of a pinhole camera."""
    points = np.asarray(points_m, dtype=np.float64)
    return points[..., :2] / points[..., 2:] * np.asarray(camera.focal) + np.asarray(camera.princpt)


def mesh_pivot(vertices_m: np.ndarray) -> np.ndarray:
    """(3,) float64 centre of a (V, 3) mesh's bounding box: the point that keeps |d| smallest, hence the residual."""
    vertices = np.asarray(vertices_m, dtype=np.float64)
    return (vertices.min(axis=0) + vertices.max(axis=0)) / 2.0


@dataclass(frozen=True)
class PersonInImage:
    """One person's prediction placed in the image camera (see the module docstring).

    Attributes:
        mesh_m: (V, 3) float32 the rigid mesh in the image camera, metres (the virtual mesh + translation_m).
        cam_trans_m: (3,) float32 the translation to add to the body model's output for mesh_m, metres.
        translation_m: (3,) float64 Delta, from the person's virtual camera frame to the image camera, metres.
        pivot_m: (3,) float64 the pivot T' in the image camera, metres.
        depth_ratio: alpha = T'_z / T_z = f / F.
        virtual_slope: (2,) float64 a = T_xy / T_z, the pivot's slope in the person's virtual camera.
        camera_person: K_i, the person's own camera in original-image pixels (the virtual mesh projects with it).
        residual_px: max over the vertices of |u(mesh_m) - u_i(virtual mesh)|, pixels.
    """

    mesh_m: np.ndarray
    cam_trans_m: np.ndarray
    translation_m: np.ndarray
    pivot_m: np.ndarray
    depth_ratio: float
    virtual_slope: np.ndarray
    camera_person: PinholeCamera
    residual_px: float


def place_in_image_camera(
    mesh_virtual_m: np.ndarray,
    cam_trans_virtual_m: np.ndarray,
    camera_person: PinholeCamera,
    camera_img: PinholeCamera,
) -> PersonInImage:
    """Moves a person's mesh from its virtual camera into the image camera by one translation (module docstring).

    Args:
        mesh_virtual_m: (V, 3) the network's mesh in its camera frame, metres, cam_trans included.
        cam_trans_virtual_m: (3,) the network's cam_trans, metres.
        camera_person: K_i, the virtual camera mapped through the person's crop (`demo.camera.original_image_camera`).
        camera_img: K, the image camera shared by everyone (`image_camera`).

    Returns:
        The placement, with the residual of the rigid mesh against the person's own projection.

    Raises:
        ValueError: the mesh's pivot is not in front of the camera.
    """
    mesh = np.asarray(mesh_virtual_m, dtype=np.float64)
    pivot = mesh_pivot(mesh)
    if pivot[2] <= 0.0:
        raise ValueError(f"the mesh's centre lies behind the virtual camera (z = {pivot[2]:.3g} m)")
    ratio = math.sqrt(camera_img.focal[0] * camera_img.focal[1] / (camera_person.focal[0] * camera_person.focal[1]))
    depth = ratio * pivot[2]  # T'_z
    pivot_px = project(pivot, camera_person)  # u_i(T)
    pivot_img = np.append((pivot_px - np.asarray(camera_img.princpt)) * depth / np.asarray(camera_img.focal), depth)
    translation = pivot_img - pivot
    placed = mesh + translation
    residual = np.linalg.norm(project(placed, camera_img) - project(mesh, camera_person), axis=-1)
    return PersonInImage(
        mesh_m=placed.astype(np.float32),
        cam_trans_m=(np.asarray(cam_trans_virtual_m, dtype=np.float64) + translation).astype(np.float32),
        translation_m=translation,
        pivot_m=pivot_img,
        depth_ratio=ratio,
        virtual_slope=pivot[:2] / pivot[2],
        camera_person=camera_person,
        residual_px=float(residual.max()),
    )


def drawn_vertices(
    mesh_m: np.ndarray, depth_ratio: float = 0.0, virtual_slope: Sequence[float] = (0.0, 0.0)
) -> np.ndarray:
    """The mesh as the overlays draw it in the image camera: as the person's own camera shows it, at metric depths.

    Each vertex X' = T' + d (T' the bounding-box centre) keeps its depth z' and moves within its depth plane onto
    the ray (u_i(X) - c) / f of the module docstring, so that any camera at the origin with the image camera's
    principal point and focal projects it where the person's own camera projects the virtual mesh.

    Args:
        mesh_m: (V, 3) the rigid mesh in the image camera, metres, in front of the camera.
        depth_ratio: alpha = f / F of the person (`PersonInImage.depth_ratio`); 0: weak perspective.
        virtual_slope: (2,) a = T_xy / T_z of the person (`PersonInImage.virtual_slope`).

    Returns:
        (V, 3) float32.
    """
    mesh = np.asarray(mesh_m, dtype=np.float64)
    pivot = mesh_pivot(mesh)
    offsets = mesh - pivot  # (V, 3) d
    # 1 + d_z / T_z with T_z = T'_z / alpha: the person's own perspective across its body (1 when alpha = 0).
    perspective = 1.0 + offsets[:, 2:] * depth_ratio / pivot[2]  # (V, 1)
    slope = np.asarray(virtual_slope, dtype=np.float64)
    ray = pivot[:2] / pivot[2] + (offsets[:, :2] - slope * offsets[:, 2:]) / (pivot[2] * perspective)  # (V, 2)
    return np.concatenate([ray * mesh[:, 2:], mesh[:, 2:]], axis=1).astype(np.float32)
