"""Torso, arms, legs and feet of the stand-in."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator

from .parts import Part, blend_towards, chain_weights, nearest_vertex, smoothstep
from .primitives import limb, split_count, tube
from .skeleton import FLOOR_Y, rest_joints
from .skeleton import SMPLX_JOINTS as J

# Torso cross-section along the height: y, half-width (x), half-depth (z), depth centre (z); metres.
_TORSO_PROFILE = np.array([
    (-0.60, 0.100, 0.080, 0.000),
    (-0.52, 0.165, 0.105, 0.000),
    (-0.42, 0.170, 0.110, 0.000),
    (-0.30, 0.148, 0.098, 0.005),
    (-0.18, 0.155, 0.104, 0.005),
    (-0.06, 0.168, 0.114, 0.005),
    (0.00, 0.178, 0.104, -0.005),
    (0.04, 0.160, 0.088, -0.012),
    (0.07, 0.100, 0.068, -0.015),
    (0.09, 0.055, 0.050, -0.015),
])  # fmt: skip

# Vertex counts of the left-side body parts at resolution 1 (the right side mirrors them).
LIMB_VERTICES = {"collar": 90, "upper_arm": 200, "forearm": 180, "thigh": 260, "shin": 220, "foot": 180}


def torso(num_vertices: int, num_rings: int = 36) -> Part:
    """The trunk from the crotch to the neck base, skinned along pelvis -> spine1..3 -> neck."""
    joints = rest_joints()
    y = np.linspace(_TORSO_PROFILE[0, 0], _TORSO_PROFILE[-1, 0], num_rings)
    half_w, half_d, center_z = (PchipInterpolator(_TORSO_PROFILE[:, 0], _TORSO_PROFILE[:, k])(y) for k in (1, 2, 3))
    centers = np.stack([np.zeros_like(y), y, center_z], axis=1)
    mesh = tube(
        centers,
        np.array([1.0, 0.0, 0.0]),
        np.array([0.0, 0.0, 1.0]),
        half_w,
        half_d,
        split_count(num_vertices - 2, num_rings),
        np.array([0.0, y[0] - 0.025, 0.0]),
        np.array([0.0, y[-1] + 0.012, -0.015]),
    )
    v = mesh.vertices
    chain = ["pelvis", "spine1", "spine2", "spine3", "neck"]
    weights = chain_weights(v[:, 1], chain, [joints[J.index(n), 1] for n in chain])
    # the sides of the hips follow the thighs, the tops of the shoulders follow the collar bones
    for side, sign in (("left", 1.0), ("right", -1.0)):
        lateral = sign * v[:, 0]
        hip = smoothstep((lateral - 0.05) / 0.08) * smoothstep((-0.46 - v[:, 1]) / 0.08) * 0.5
        weights = blend_towards(weights, hip, f"{side}_hip")
        collar = smoothstep((lateral - 0.06) / 0.08) * smoothstep((v[:, 1] + 0.05) / 0.07) * 0.6
        weights = blend_towards(weights, collar, f"{side}_collar")
    return Part("torso", "body", mesh, weights)


def _bone_part(name: str, joint: str, parent: str, child: str, start, end, r0, r1, extend, count, hint) -> Part:
    num_rings = max(4, int(round(np.sqrt(count * 0.8))))
    mesh, along = limb(start, end, r0, r1, num_rings, count, hint, extend)
    weights = chain_weights(along, [joint, child], [0.0, 1.0], parent=parent)
    return Part(name, "body", mesh, weights)


def left_arm(scale: float) -> list[Part]:
    """Collar, upper arm and forearm of the subject's left side (T-pose, along +x)."""
    j = {n: rest_joints()[J.index(n)] for n in ("left_collar", "left_shoulder", "left_elbow", "left_wrist")}
    up = np.array([0.0, 1.0, 0.0])
    n = {k: int(round(c * scale)) for k, c in LIMB_VERTICES.items()}
    collar_start = np.array([0.02, 0.055, -0.02])
    return [
        _bone_part("left_collar", "left_collar", "spine3", "left_shoulder", collar_start, j["left_shoulder"],
                   (0.040, 0.040), (0.052, 0.050), (0.02, 0.04), n["collar"], up),
        _bone_part("left_upper_arm", "left_shoulder", "left_collar", "left_elbow", j["left_shoulder"],
                   j["left_elbow"], (0.050, 0.047), (0.038, 0.036), (0.03, 0.02), n["upper_arm"], up),
        _bone_part("left_forearm", "left_elbow", "left_shoulder", "left_wrist", j["left_elbow"], j["left_wrist"],
                   (0.037, 0.036), (0.022, 0.028), (0.02, 0.01), n["forearm"], up),
    ]  # fmt: skip


def left_leg(scale: float) -> list[Part]:
    """Thigh, shin and foot of the subject's left side."""
    joints = rest_joints()
    hip, knee, ankle, foot = (joints[J.index(f"left_{n}")] for n in ("hip", "knee", "ankle", "foot"))
    forward = np.array([0.0, 0.0, 1.0])
    n = {k: int(round(c * scale)) for k, c in LIMB_VERTICES.items()}
    parts = [
        _bone_part("left_thigh", "left_hip", "pelvis", "left_knee", hip, knee,
                   (0.085, 0.082), (0.056, 0.054), (0.07, 0.03), n["thigh"], forward),
        _bone_part("left_shin", "left_knee", "left_hip", "left_ankle", knee, ankle,
                   (0.053, 0.052), (0.034, 0.033), (0.03, 0.03), n["shin"], forward),
    ]  # fmt: skip
    # The foot lies along +z, its sole on the floor: half-height shrinks from heel to toes.
    heel = np.array([ankle[0], FLOOR_Y + 0.040, ankle[2] - 0.055])
    toe = np.array([ankle[0] + 0.02, FLOOR_Y + 0.018, ankle[2] + 0.18])
    mesh, _ = limb(heel, toe, (0.033, 0.040), (0.045, 0.018), 14, n["foot"], np.array([1.0, 0.0, 0.0]), (0.03, 0.03))
    v = mesh.vertices
    weights = chain_weights(v[:, 2], ["left_ankle", "left_foot"], [ankle[2], foot[2]])
    front_ring = mesh.ring == mesh.ring[mesh.ring < mesh.ring.max()].max()
    candidates = np.flatnonzero(front_ring)
    markers = {
        "LBigToe": nearest_vertex(v, np.array([toe[0] - 0.03, FLOOR_Y, toe[2] + 0.03]), candidates),
        "LSmallToe": nearest_vertex(v, np.array([toe[0] + 0.04, FLOOR_Y, toe[2]]), candidates),
        "LHeel": nearest_vertex(v, np.array([heel[0], FLOOR_Y, heel[2] - 0.03])),
    }
    parts.append(Part("left_foot", "body", mesh, weights, markers))
    return parts
