"""The stand-in's skeleton: SMPL-X's 55 joints in SMPL-X's rest pose, with human proportions.

Frame: SMPL-X's model frame, metres, y up, +x towards the subject's left, +z where the subject
faces. Rest pose: SMPL-X's T-pose (arms along x, palms down, fingers straight). Only the subject's
left side is written out; the right side is its mirror image (x -> -x), which is what makes the
stand-in exactly mirror-symmetric.

Joint names and their order come from the smplx package itself (``smplx.joint_names``), so the
kinematic tree here is SMPL-X's by construction.
"""

from __future__ import annotations

import numpy as np
from smplx.joint_names import JOINT_NAMES

SMPLX_JOINTS: tuple[str, ...] = tuple(JOINT_NAMES[:55])
"""The 55 SMPL-X skeleton joints in smplx's order."""

FINGERS = ("index", "middle", "pinky", "ring", "thumb")  # SMPL-X's finger order


def _smplx_parents() -> tuple[int, ...]:
    """SMPL-X's kinematic tree, by name: each joint's parent index (-1 for the pelvis)."""
    parent_of = {
        "left_hip": "pelvis", "right_hip": "pelvis", "spine1": "pelvis",
        "left_knee": "left_hip", "right_knee": "right_hip", "spine2": "spine1",
        "left_ankle": "left_knee", "right_ankle": "right_knee", "spine3": "spine2",
        "left_foot": "left_ankle", "right_foot": "right_ankle", "neck": "spine3",
        "left_collar": "spine3", "right_collar": "spine3", "head": "neck",
        "left_shoulder": "left_collar", "right_shoulder": "right_collar",
        "left_elbow": "left_shoulder", "right_elbow": "right_shoulder",
        "left_wrist": "left_elbow", "right_wrist": "right_elbow",
        "jaw": "head", "left_eye_smplhf": "head", "right_eye_smplhf": "head",
    }  # fmt: skip
    for side in ("left", "right"):
        for finger in FINGERS:
            parent_of[f"{side}_{finger}1"] = f"{side}_wrist"
            parent_of[f"{side}_{finger}2"] = f"{side}_{finger}1"
            parent_of[f"{side}_{finger}3"] = f"{side}_{finger}2"
    return tuple(-1 if n == "pelvis" else SMPLX_JOINTS.index(parent_of[n]) for n in SMPLX_JOINTS)


SMPLX_PARENTS: tuple[int, ...] = _smplx_parents()

FLOOR_Y = -1.33  # soles of the feet, metres
HEAD_CENTER = np.array([0.0, 0.275, 0.02])  # centre of the skull ellipsoid
HEAD_RADII = np.array([0.078, 0.115, 0.098])  # (x, y, z) semi-axes of the skull, metres

# Subject's left side and mid-line joints, metres (a 1.72 m adult).
_LEFT_AND_MIDLINE = {
    "pelvis": (0.0, -0.43, 0.0),
    "left_hip": (0.085, -0.52, 0.0),
    "spine1": (0.0, -0.32, -0.005),
    "left_knee": (0.10, -0.92, 0.005),
    "spine2": (0.0, -0.19, -0.005),
    "left_ankle": (0.095, -1.27, -0.03),
    "spine3": (0.0, -0.06, 0.0),
    "left_foot": (0.11, -1.31, 0.085),
    "neck": (0.0, 0.08, -0.02),
    "left_collar": (0.065, 0.04, -0.005),
    "head": (0.0, 0.17, -0.01),
    "left_shoulder": (0.175, 0.03, -0.02),
    "left_elbow": (0.43, 0.02, -0.03),
    "left_wrist": (0.685, 0.02, -0.03),
    "jaw": (0.0, 0.245, 0.0),  # the jaw hinge, behind the mouth at the height of the nostrils
    "left_eye_smplhf": (0.032, 0.30, 0.094),
}

# Hand layout relative to the left wrist, palm down, fingers along +x, thumb towards +z (forward).
# Each finger: MCP offset from the wrist and its three segment lengths (metres).
FINGER_BASE = {
    "index": (0.090, 0.000, 0.026),
    "middle": (0.094, 0.000, 0.008),
    "ring": (0.090, 0.000, -0.010),
    "pinky": (0.082, -0.002, -0.027),
    "thumb": (0.028, -0.012, 0.024),
}
FINGER_SEGMENTS = {
    "index": (0.040, 0.025, 0.024),
    "middle": (0.045, 0.028, 0.025),
    "ring": (0.042, 0.026, 0.024),
    "pinky": (0.033, 0.021, 0.021),
    "thumb": (0.036, 0.031, 0.028),
}
FINGER_RADIUS = {"index": 0.0095, "middle": 0.0100, "ring": 0.0095, "pinky": 0.0085, "thumb": 0.0110}
THUMB_DIRECTION = np.array([1.0, -0.25, 1.0]) / np.linalg.norm([1.0, -0.25, 1.0])


def mirror(points: np.ndarray) -> np.ndarray:
    """Mirror points across the body's mid-plane (x -> -x). (..., 3) -> (..., 3)."""
    return np.asarray(points) * np.array([-1.0, 1.0, 1.0])


def finger_direction(finger: str) -> np.ndarray:
    """(3,) unit direction of a straight left-hand finger in the rest pose."""
    return THUMB_DIRECTION if finger == "thumb" else np.array([1.0, 0.0, 0.0])


def left_finger_joints(finger: str, wrist: np.ndarray) -> np.ndarray:
    """(4, 3) the three joints of a left-hand finger and its tip, metres."""
    base = wrist + np.asarray(FINGER_BASE[finger])
    lengths = np.cumsum((0.0,) + FINGER_SEGMENTS[finger])
    return base + lengths[:, None] * finger_direction(finger)


def rest_joints() -> np.ndarray:
    """(55, 3) target rest positions of the SMPL-X joints, metres (before regression from the mesh)."""
    joints = np.zeros((len(SMPLX_JOINTS), 3))
    for name, position in _LEFT_AND_MIDLINE.items():
        joints[SMPLX_JOINTS.index(name)] = position
        if name.startswith("left_"):
            joints[SMPLX_JOINTS.index("right_" + name[5:])] = mirror(np.asarray(position))
    wrist = np.asarray(_LEFT_AND_MIDLINE["left_wrist"])
    for finger in FINGERS:
        chain = left_finger_joints(finger, wrist)
        for k in range(3):
            joints[SMPLX_JOINTS.index(f"left_{finger}{k + 1}")] = chain[k]
            joints[SMPLX_JOINTS.index(f"right_{finger}{k + 1}")] = mirror(chain[k])
    joints[SMPLX_JOINTS.index("right_eye_smplhf")] = mirror(joints[SMPLX_JOINTS.index("left_eye_smplhf")])
    return joints


def joint_flip_permutation(names: tuple[str, ...]) -> np.ndarray:
    """Index array mapping each joint to its mirror partner (itself on the mid-line)."""

    def partner(name: str) -> str:
        for a, b in (("left", "right"), ("right", "left")):
            if name.startswith(a + "_"):
                return b + name[len(a) :]
        return name

    return np.array([names.index(partner(n)) for n in names])
