"""The stand-in's head: neck, skull with nose, eye sockets, lips and a jaw that opens, eyeballs and
ears; and where its 68 facial landmarks (iBUG order) lie.

The head group becomes the FLAME stand-in, so it holds everything FLAME holds (neck, eyeballs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .parts import Part, blend_towards, chain_weights, nearest_vertex, single_weights, smoothstep
from .primitives import limb, split_count, tube
from .skeleton import HEAD_CENTER, HEAD_RADII, mirror, rest_joints
from .skeleton import SMPLX_JOINTS as J

EYE_Y = 0.30  # height of the eyes, metres
MOUTH_Y = 0.225  # height of the mouth line
NOSE_TIP_Y = 0.258
EYE_X = 0.032
EYE_RADIUS = 0.0125

# iBUG-68 layout on the face, (x, y) metres; the subject's right is -x (the image left).
_BROW_RIGHT = [(-0.052, 0.318), (-0.043, 0.324), (-0.033, 0.326), (-0.023, 0.325), (-0.013, 0.322)]
_NOSE_BRIDGE = [(0.0, 0.296), (0.0, 0.284), (0.0, 0.271), (0.0, NOSE_TIP_Y)]
_NOSTRILS = [(-0.014, 0.246), (-0.007, 0.244), (0.0, 0.243), (0.007, 0.244), (0.014, 0.246)]
_EYE_RIGHT = [(-0.046, 0.300), (-0.038, 0.305), (-0.027, 0.305), (-0.019, 0.300), (-0.027, 0.295), (-0.038, 0.295)]
_LIPS_OUTER = [
    (-0.025, 0.225),
    (-0.016, 0.231),
    (-0.007, 0.234),
    (0.0, 0.233),
    (0.007, 0.234),
    (0.016, 0.231),
    (0.025, 0.225),
    (0.016, 0.218),
    (0.007, 0.215),
    (0.0, 0.214),
    (-0.007, 0.215),
    (-0.016, 0.218),
]
_LIPS_INNER = [(-0.020, 0.225), (-0.008, 0.228), (0.0, 0.228), (0.008, 0.228), (0.020, 0.225), (0.008, 0.222),
               (0.0, 0.222), (-0.008, 0.222)]  # fmt: skip


def _mirror_xy(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(-x, y) for x, y in points]


def static_landmarks_xy() -> np.ndarray:
    """(51, 2) the 51 inner-face landmarks (iBUG 17..67): brows, nose, eyes, lips; (x, y) metres."""
    brow_left = _mirror_xy(_BROW_RIGHT)[::-1]  # iBUG runs inner -> outer on the subject's left
    # the left eye starts at its inner corner: mirror of the right eye's points 39, 38, 37, 36, 41, 40
    eye_left = [_mirror_xy(_EYE_RIGHT)[k] for k in (3, 2, 1, 0, 5, 4)]
    return np.array(_BROW_RIGHT + brow_left + _NOSE_BRIDGE + _NOSTRILS + _EYE_RIGHT + eye_left
                    + _LIPS_OUTER + _LIPS_INNER)  # fmt: skip


@dataclass
class LandmarkRays:
    """Rays whose first hit on the skull defines each landmark.

    Attributes:
        origins: (..., 3) ray origins outside the head, metres.
        directions: (..., 3) unit directions pointing into the head.
    """

    origins: np.ndarray
    directions: np.ndarray


def landmark_rays() -> tuple[LandmarkRays, LandmarkRays]:
    """The static (51) and dynamic (79 yaw bins x 17 contour points) landmark rays.

    smplx picks the contour row from the head's yaw in whole degrees: rows 0..39 hold yaw 0..39 and
    rows 40..78 hold yaw -1..-39. Turning the head moves the visible jaw-line silhouette, so the
    contour points slide around the jaw by half the yaw.
    """
    xy = static_landmarks_xy()
    origins = np.stack([xy[:, 0], xy[:, 1], np.full(len(xy), 1.0)], axis=1)
    static = LandmarkRays(origins, np.tile([0.0, 0.0, -1.0], (len(xy), 1)))

    yaw_deg = np.array([b if b <= 39 else 39 - b for b in range(79)], dtype=np.float64)
    phi_max = np.deg2rad(76.0)
    base_phi = np.linspace(-phi_max, phi_max, 17)  # subject's right (-x) first
    heights = 0.168 + (0.272 - 0.168) * (np.abs(base_phi) / phi_max) ** 1.5
    phi = np.clip(base_phi[None] - 0.5 * np.deg2rad(yaw_deg)[:, None], -np.deg2rad(85), np.deg2rad(85))  # (79, 17)
    direction = np.stack([np.sin(phi), np.zeros_like(phi), np.cos(phi)], axis=-1)  # outwards, (79, 17, 3)
    axis = np.stack([np.zeros_like(phi), np.broadcast_to(heights, phi.shape), np.full(phi.shape, HEAD_CENTER[2])], -1)
    dynamic = LandmarkRays(axis + direction, -direction)
    return static, dynamic


def _skull(num_vertices: int, num_rings: int, with_eyeballs: bool) -> Part:
    cy, cz = HEAD_CENTER[1], HEAD_CENTER[2]
    ax, ay, az = HEAD_RADII
    y = cy + ay * np.linspace(-0.97, 0.97, num_rings)
    profile = np.sqrt(1 - ((y - cy) / ay) ** 2)
    narrowing = 1 - 0.22 * smoothstep((cy - 0.03 - y) / 0.08)  # jaw and chin narrower than the cranium
    mesh = tube(
        np.stack([np.zeros_like(y), y, np.full_like(y, cz)], axis=1),
        np.array([1.0, 0.0, 0.0]),
        np.array([0.0, 0.0, 1.0]),
        ax * profile * narrowing,
        az * profile,
        split_count(num_vertices - 2, num_rings),
        np.array([0.0, cy - ay, cz]),
        np.array([0.0, cy + ay, cz]),
    )
    v = mesh.vertices
    x, yy, front = v[:, 0], v[:, 1], smoothstep((v[:, 2] - cz) / 0.03)
    # nose: a ridge from the bridge to the tip, then back under the tip
    height = np.interp(yy, [0.236, 0.244, NOSE_TIP_Y, EYE_Y, 0.31], [0.0, 0.006, 0.022, 0.004, 0.0])
    width = 0.007 + 0.005 * np.clip((EYE_Y - yy) / 0.045, 0, 1)
    dz = height * np.exp(-0.5 * (x / width) ** 2)
    for sx in (-EYE_X, EYE_X):  # eye sockets
        dz -= 0.006 * np.exp(-0.5 * ((x - sx) ** 2 + (yy - EYE_Y) ** 2) / 0.013**2)
    dz += 0.005 * np.exp(-0.5 * ((x / 0.022) ** 4 + ((yy - MOUTH_Y) / 0.008) ** 2))  # lips
    dz += 0.003 * np.exp(-0.5 * ((yy - 0.322) / 0.008) ** 2)  # brow ridge
    v[:, 2] += dz * front

    weights = single_weights(len(v), "head")
    jaw = smoothstep((MOUTH_Y - yy) / 0.008) * smoothstep((v[:, 2] - (cz - 0.02)) / 0.03)
    weights = blend_towards(weights, jaw, "jaw")
    face_mask = smoothstep((v[:, 2] - cz - 0.02) / 0.03) * smoothstep((cy + 0.09 - yy) / 0.02)
    markers = {"nose": nearest_vertex(v, np.array([0.0, NOSE_TIP_Y, 0.3]), np.flatnonzero(np.abs(x) < 1e-9))}
    if not with_eyeballs:  # SMPL has no eyeballs: its eye points lie on the skull
        near_eye = np.flatnonzero(np.hypot(x - EYE_X, yy - EYE_Y) < 0.006)
        markers["leye"] = int(near_eye[np.argmax(v[near_eye, 2])])  # the front-most point of the eyelid
    return Part("skull", "head", mesh, weights, markers, face_mask)


def _left_eyeball(num_vertices: int) -> Part:
    center = rest_joints()[J.index("left_eye_smplhf")]
    num_rings = max(6, int(round(np.sqrt(num_vertices))))
    back, front = center - [0, 0, EYE_RADIUS * 0.999], center + [0, 0, EYE_RADIUS * 0.999]
    mesh, _ = limb(back, front, (1e-3, 1e-3), (1e-3, 1e-3), num_rings, num_vertices, np.array([1.0, 0, 0]))
    # a sphere: push every ring out to the sphere's radius at its height
    offset = mesh.vertices - mesh.axis_point
    s = mesh.axis_point[:, 2] - center[2]
    radius = np.sqrt(np.clip(EYE_RADIUS**2 - s**2, 0, None))
    norm = np.linalg.norm(offset, axis=1)
    ring = norm > 0
    mesh.vertices[ring] = mesh.axis_point[ring] + offset[ring] * (radius[ring] / norm[ring])[:, None]
    markers = {"leye": len(mesh.vertices) - 1}  # the front pole is the pupil
    return Part(
        "left_eyeball", "head", mesh, single_weights(num_vertices, "left_eye_smplhf"), markers, np.zeros(num_vertices)
    )


def _left_ear(num_vertices: int) -> Part:
    cy, cz = HEAD_CENTER[1], HEAD_CENTER[2]
    center = np.array([HEAD_RADII[0] * 0.96 + 0.006, cy - 0.005, cz - 0.012])
    num_rings = max(5, int(round(np.sqrt(num_vertices))))
    mesh, _ = limb(center - [0, 0.022, 0], center + [0, 0.022, 0], (0.008, 0.018), (0.008, 0.018), num_rings,
                   num_vertices, np.array([1.0, 0, 0]), (0.008, 0.008))  # fmt: skip
    v = mesh.vertices
    markers = {"lear": int(np.argmax(v[:, 0]))}
    return Part("left_ear", "head", mesh, single_weights(num_vertices, "head"), markers, np.zeros(num_vertices))


def _neck(num_vertices: int) -> Part:
    joints = rest_joints()
    mesh, _ = limb(np.array([0.0, 0.05, -0.015]), np.array([0.0, 0.215, -0.005]), (0.052, 0.050), (0.046, 0.046),
                   max(6, num_vertices // 24), num_vertices, np.array([1.0, 0, 0]), (0.01, 0.01))  # fmt: skip
    chain = ["spine3", "neck", "head"]
    weights = chain_weights(mesh.vertices[:, 1], chain, [joints[J.index(n), 1] for n in chain])
    return Part("neck", "head", mesh, weights, {}, np.zeros(num_vertices))


def head_parts(total_vertices: int, neck: int, eyeball: int, ear: int) -> list[Part]:
    """Neck, skull, eyeballs (if ``eyeball`` > 0) and ears with exactly ``total_vertices`` vertices."""
    from .parts import mirrored

    parts = [_neck(neck)]
    if eyeball:
        left_eye = _left_eyeball(eyeball)
        parts += [left_eye, mirrored(left_eye)]
    left_ear = _left_ear(ear)
    parts += [left_ear, mirrored(left_ear)]
    skull_vertices = total_vertices - sum(p.num_vertices for p in parts)
    skull = _skull(skull_vertices, max(20, int(round(np.sqrt(skull_vertices / 1.3)))), with_eyeballs=eyeball > 0)
    if not eyeball:
        skull.markers["reye"] = nearest_vertex(skull.mesh.vertices, mirror(skull.mesh.vertices[skull.markers["leye"]]))
    return [skull] + parts
