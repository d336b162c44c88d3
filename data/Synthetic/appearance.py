"""Appearance of the people: a colour per body region, optional stripes, and a random light baked in.

A vertex belongs to the region of its dominant skinning joint (the largest linear-blend-skinning
weight), so every rigid segment (down to each finger) gets its own colour and the image shows how each
limb is posed, not only the silhouette. The people are rendered unlit (``MeshRenderer.render(lit=False)``, which is
bit-exact from run to run); their only light is a random one (direction, colour, strength) baked into the vertex
colours here (ambient + Lambert), so the lighting varies from image to image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from common.body_models.joint_sets import SMPLX_FINGERS, SMPLX_SKELETON_JOINTS

_SIDES = ("L_", "R_")
REGIONS: Mapping[str, tuple[str, ...]] = {
    "hips": ("Pelvis", "Spine_1"),
    "chest": ("Spine_2", "Spine_3", "L_Collar", "R_Collar"),
    "neck": ("Neck",),
    "head": ("Head", "Jaw"),
    "eyes": ("L_Eyeball", "R_Eyeball"),
    **{f"{s}upper_arm": (f"{s}Shoulder",) for s in _SIDES},
    **{f"{s}forearm": (f"{s}Elbow",) for s in _SIDES},
    **{f"{s}hand": (f"{s}Wrist",) for s in _SIDES},
    **{f"{s}{f.lower()}": tuple(f"{s}{f}_{k}" for k in (1, 2, 3)) for s in _SIDES for f in SMPLX_FINGERS},
    **{f"{s}thigh": (f"{s}Hip",) for s in _SIDES},
    **{f"{s}shin": (f"{s}Knee",) for s in _SIDES},
    **{f"{s}foot": (f"{s}Ankle", f"{s}Foot") for s in _SIDES},
}  # fmt: skip
"""Body region -> the skeleton joints whose vertices it holds."""
REGION_NAMES: tuple[str, ...] = tuple(REGIONS)
# Regions sharing one garment when an outfit is drawn instead of one colour per region.
_OUTFIT = {
    "top": ("chest", "L_upper_arm", "R_upper_arm"),
    "sleeves": ("L_forearm", "R_forearm"),
    "bottom": ("hips", "L_thigh", "R_thigh"),
    "legs": ("L_shin", "R_shin"),
    "shoes": ("L_foot", "R_foot"),
    "skin": ("neck", "head", *(f"{s}{f}" for s in _SIDES for f in ("hand", *(f.lower() for f in SMPLX_FINGERS)))),
    "eyes": ("eyes",),
}
SEGMENT_COLOURS_PROBABILITY = 0.6  # otherwise an outfit: fewer colours, closer to clothed people
STRIPES_PROBABILITY = 0.3


def vertex_regions(lbs_weights: np.ndarray) -> np.ndarray:
    """(V,) int64 region index (into ``REGION_NAMES``) of every vertex, from (V, 55) skinning weights."""
    joint_region = np.empty(len(SMPLX_SKELETON_JOINTS), dtype=np.int64)
    for r, joints in enumerate(REGIONS.values()):
        joint_region[[SMPLX_SKELETON_JOINTS.index(j) for j in joints]] = r
    return joint_region[np.asarray(lbs_weights).argmax(axis=1)]


def _random_colours(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 3) RGB in [0, 1], saturated enough to tell neighbouring regions apart."""
    hue = rng.uniform(0.0, 1.0, count)
    saturation, value = rng.uniform(0.25, 0.95, count), rng.uniform(0.35, 1.0, count)
    k = (np.array([5.0, 3.0, 1.0]) + hue[:, None] * 6.0) % 6.0  # HSV -> RGB without a per-colour loop
    return value[:, None] * (1.0 - saturation[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))


def sample_albedo(rng: np.random.Generator, regions: np.ndarray, rest_vertices: np.ndarray) -> np.ndarray:
    """(V, 3) float32 vertex colours in [0, 1] for one person.

    Args:
        rng: the random generator.
        regions: (V,) region index per vertex (``vertex_regions``).
        rest_vertices: (V, 3) rest-pose vertices in metres; stripes follow the body surface through them.
    """
    if rng.random() < SEGMENT_COLOURS_PROBABILITY:
        palette = _random_colours(rng, len(REGION_NAMES))
    else:
        garments = _random_colours(rng, len(_OUTFIT))
        palette = np.zeros((len(REGION_NAMES), 3))
        for g, members in enumerate(_OUTFIT.values()):
            palette[[REGION_NAMES.index(m) for m in members]] = garments[g]
    palette[REGION_NAMES.index("eyes")] = rng.uniform(0.0, 0.2, 3)  # dark eyes, so the gaze reads
    albedo = palette[regions]
    if rng.random() < STRIPES_PROBABILITY:
        direction = rng.normal(size=3)
        phase = rest_vertices @ (direction / np.linalg.norm(direction)) * rng.uniform(15.0, 60.0)  # radians per metre
        albedo = albedo * (0.75 + 0.25 * np.sign(np.sin(phase)))[:, None]
    return albedo.astype(np.float32)


@dataclass
class Light:
    """A directional light baked into the vertex colours.

    Attributes:
        direction: (3,) unit vector towards the light, OpenCV camera frame.
        color: (3,) RGB tint of the light.
        ambient: the unlit fraction of the albedo.
        strength: the added fraction where the surface faces the light.
    """

    direction: np.ndarray
    color: np.ndarray
    ambient: float
    strength: float


def sample_light(rng: np.random.Generator) -> Light:
    """A light from the camera's side of the scene (z < 0 towards the camera), above more often than below."""
    direction = np.array([rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 0.4), -rng.uniform(0.2, 1.0)])
    color = 1.0 - rng.uniform(0.0, 0.25, 3)  # a mild tint
    return Light(direction / np.linalg.norm(direction), color, rng.uniform(0.45, 0.8), rng.uniform(0.2, 0.6))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals of a (V, 3) mesh with (F, 3) triangles."""
    tri = vertices[faces]  # (F, 3, 3)
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F, 3), length = 2 x area
    normals = np.stack(
        [np.bincount(faces.ravel(), np.repeat(face_normals[:, c], 3), len(vertices)) for c in range(3)], axis=1
    )  # (V, 3)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def shade(albedo: np.ndarray, vertices: np.ndarray, faces: np.ndarray, light: Light) -> np.ndarray:
    """(V, 3) float32 vertex colours: albedo x (ambient + strength x max(0, n . l)) x light colour, in [0, 1].

    Args:
        albedo: (V, 3) RGB in [0, 1].
        vertices: (V, 3) metres, camera frame.
        faces: (F, 3) triangles.
        light: the light, camera frame.
    """
    lambert = np.clip(vertex_normals(vertices, faces) @ light.direction, 0.0, None)  # (V,)
    shading = (light.ambient + light.strength * lambert)[:, None] * light.color  # (V, 3)
    return np.clip(albedo * shading, 0.0, 1.0).astype(np.float32)
