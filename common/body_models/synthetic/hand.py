"""The stand-in's left hand: a palm and five separate fingers that bend at their joints.

The right hand is its mirror image. In SMPL-X's rest pose the palm faces down and the fingers
point away from the body; the thumb points forward.
"""

from __future__ import annotations

import numpy as np

from .parts import Part, chain_weights
from .primitives import limb
from .skeleton import FINGER_RADIUS, FINGER_SEGMENTS, FINGERS, finger_direction, left_finger_joints, rest_joints
from .skeleton import SMPLX_JOINTS as J

TIP_MARKERS = {"thumb": "lthumb", "index": "lindex", "middle": "lmiddle", "ring": "lring", "pinky": "lpinky"}


def _finger(finger: str, wrist: np.ndarray, num_vertices: int) -> Part:
    chain = left_finger_joints(finger, wrist)  # (4, 3): three joints and the tip
    direction = finger_direction(finger)
    radius = FINGER_RADIUS[finger]
    num_rings = max(6, (num_vertices - 2) // 8)
    hint = np.array([0.0, 0.0, 1.0]) if finger != "thumb" else np.array([0.0, 1.0, 0.0])
    # the finger's tube starts a little inside the palm so that the knuckle is covered
    mesh, along = limb(chain[0] - 0.012 * direction, chain[3], (radius, radius * 0.9), (radius * 0.8, radius * 0.72),
                       num_rings, num_vertices, hint, (0.004, radius * 0.8))  # fmt: skip
    length = float(np.linalg.norm(chain[3] - chain[0]) + 0.012)
    along_m = along * length - 0.012  # metres from the first joint
    joint_pos = np.cumsum((0.0,) + FINGER_SEGMENTS[finger][:2])
    weights = chain_weights(along_m, [f"left_{finger}{k}" for k in (1, 2, 3)], list(joint_pos), parent="left_wrist")
    markers = {TIP_MARKERS[finger]: len(mesh.vertices) - 1}  # the end pole is the fingertip
    return Part(f"left_{finger}", "left_hand", mesh, weights, markers)


def left_hand(total_vertices: int, finger_vertices: int) -> list[Part]:
    """Palm and fingers of the left hand with exactly ``total_vertices`` vertices.

    Args:
        total_vertices: the hand's vertex budget (778 for SMPL-X/MANO); the palm takes what the
            fingers leave.
        finger_vertices: vertices per finger.
    """
    joints = rest_joints()
    wrist = joints[J.index("left_wrist")]
    fingers = [_finger(f, wrist, finger_vertices) for f in FINGERS]
    palm_vertices = total_vertices - sum(p.num_vertices for p in fingers)
    num_rings = max(6, int(round(np.sqrt(palm_vertices / 1.6))))
    mesh, along = limb(wrist - np.array([0.02, 0.0, 0.0]), wrist + np.array([0.088, -0.003, 0.0]),
                       (0.030, 0.017), (0.046, 0.014), num_rings, palm_vertices, np.array([0.0, 0.0, 1.0]),
                       (0.01, 0.012))  # fmt: skip
    along_m = along * 0.108 - 0.02  # metres from the wrist
    # in units of 8 cm, so that the blend into the forearm spans the 2 cm around the wrist
    weights = chain_weights(along_m / 0.08, ["left_wrist"], [0.0], parent="left_elbow")
    palm = Part("left_palm", "left_hand", mesh, weights)
    return [palm] + fingers
