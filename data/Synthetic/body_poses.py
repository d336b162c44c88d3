"""A library of natural SMPL-X body poses, perturbed within joint limits.

Angles are written in an *anatomical* convention, the same for both sides: every joint's rotation is
given as Euler angles in degrees about the axes of the SMPL-X rest pose (x: the body's left, y: up,
z: forward), as a left-side joint would have them; right-side joints are mirrored (x, y, z) -> (x, -y, -z)
when converted, so "flexion" and "abduction" mean the same on both sides. With this convention:

* hips: x < 0 flexes the thigh forward, z > 0 abducts it; knees: x > 0 flexes; ankles: x < 0 lifts the toes;
* spine, neck, head: x > 0 bends forward, y > 0 turns to the body's left, z tilts sideways;
* shoulders (T-pose arm along +x): z < 0 lowers the arm (-90: hanging), y < 0 swings it forward, x twists it;
  elbows: y < 0 flexes; wrists: z < 0 flexes towards the palm.

Arm joints use the extrinsic order x, z, y (twist, then elevation, then swing about the vertical), the
others y, z, x (twist, then side bend, then flexion), so that each angle keeps its meaning when the
others are non-zero.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.spatial.transform import Rotation

from common.body_models.joint_sets import BODY_JOINTS

POSE_JOINTS: tuple[str, ...] = BODY_JOINTS[1:]
"""The 21 joints of SMPL-X's ``body_pose``, in its order (the pelvis is ``global_orient``)."""
ANGLE_JOINTS: tuple[str, ...] = ("root", *POSE_JOINTS)
"""The joints a library pose sets: the root tilt, then the body-pose joints."""
_ARM_JOINTS = {"Collar", "Shoulder", "Elbow", "Wrist"}
_MIRROR = {"L_": "R_", "R_": "L_"}
Angles = tuple[float, float, float]


def _side_free(name: str) -> str:
    return name[2:] if name[:2] in ("L_", "R_") else name


def euler_order(joint: str) -> str:
    """scipy's extrinsic Euler order of a joint's angles (see the module docstring)."""
    return "xzy" if _side_free(joint) in _ARM_JOINTS else "yzx"


# Per-joint limits (low, high) in degrees for the anatomical (x, y, z) angles, and the standard deviation
# of the perturbation; both apply to the left and the (mirrored) right joint alike.
_LIMITS: Mapping[str, tuple[Angles, Angles]] = {
    "root": ((-20, -5, -8), (45, 5, 8)),
    "Hip": ((-130, -45, -30), (30, 45, 60)),
    "Knee": ((0, -5, -5), (150, 5, 5)),
    "Ankle": ((-30, -20, -20), (50, 20, 20)),
    "Foot": ((-30, -10, -10), (30, 10, 10)),
    "Spine_1": ((-20, -30, -25), (50, 30, 25)),
    "Spine_2": ((-20, -30, -25), (40, 30, 25)),
    "Spine_3": ((-20, -30, -25), (40, 30, 25)),
    "Neck": ((-30, -45, -25), (40, 45, 25)),
    "Head": ((-30, -45, -25), (40, 45, 25)),
    "Collar": ((-10, -20, -15), (10, 20, 25)),
    "Shoulder": ((-120, -130, -95), (90, 60, 95)),
    "Elbow": ((-60, -150, -5), (60, 0, 5)),
    "Wrist": ((-60, -35, -70), (60, 35, 70)),
}
_NOISE_DEG: Mapping[str, Angles] = {
    "root": (3, 0, 2), "Hip": (6, 5, 4), "Knee": (6, 1, 1), "Ankle": (6, 4, 4), "Foot": (4, 2, 2),
    "Spine_1": (4, 4, 3), "Spine_2": (4, 4, 3), "Spine_3": (4, 4, 3), "Neck": (8, 10, 5), "Head": (8, 12, 5),
    "Collar": (3, 3, 4), "Shoulder": (10, 10, 8), "Elbow": (8, 10, 1), "Wrist": (15, 10, 15),
}  # fmt: skip


def _both(joint: str, angles: Angles) -> dict[str, Angles]:
    return {f"L_{joint}": angles, f"R_{joint}": angles}


_RELAXED_ARMS = {**_both("Shoulder", (0, -5, -75)), **_both("Elbow", (0, -15, 0))}
# Each pose: joint -> anatomical angles in degrees; missing joints stay at 0. "root" tilts the whole body (the
# pelvis, like the spine joints) before it is turned and set on the ground, e.g. to keep the legs vertical
# when bending over.
POSE_LIBRARY: Mapping[str, Mapping[str, Angles]] = {
    "standing": {**_RELAXED_ARMS, **_both("Hip", (-3, 0, 4))},
    "a_pose": {**_both("Shoulder", (0, 0, -45)), **_both("Elbow", (0, -5, 0))},
    "t_pose": {**_both("Elbow", (0, -5, 0))},
    "contrapposto": {
        **_RELAXED_ARMS, "L_Hip": (-5, 0, 10), "R_Hip": (5, 5, -4), "L_Knee": (15, 0, 0),
        "Spine_1": (0, 0, 5), "Spine_2": (0, 5, 4), "Head": (0, 15, -5),
    },
    "walking": {
        "L_Hip": (-25, 0, 3), "R_Hip": (15, 0, 3), "L_Knee": (10, 0, 0), "R_Knee": (40, 0, 0), "R_Ankle": (15, 0, 0),
        "L_Shoulder": (0, 20, -75), "R_Shoulder": (0, -25, -75), "L_Elbow": (0, -15, 0), "R_Elbow": (0, -35, 0),
        "Spine_2": (3, -5, 0),
    },
    "running": {
        "L_Hip": (-60, 0, 3), "R_Hip": (20, 0, 3), "L_Knee": (60, 0, 0), "R_Knee": (95, 0, 0), "R_Ankle": (25, 0, 0),
        "L_Shoulder": (0, 35, -70), "R_Shoulder": (0, -50, -70), "L_Elbow": (0, -90, 0), "R_Elbow": (0, -90, 0),
        "Spine_1": (10, 0, 0), "Spine_2": (5, -8, 0), "Neck": (-10, 0, 0),
    },
    "reaching_forward": {
        "L_Shoulder": (0, -85, 5), "L_Elbow": (0, -10, 0), "R_Shoulder": (0, 0, -75), "R_Elbow": (0, -15, 0),
        "Spine_1": (10, 5, 0), "Spine_2": (8, 5, 0), "L_Hip": (-10, 0, 3), "L_Knee": (10, 0, 0),
    },
    "reaching_up": {
        "L_Shoulder": (0, -20, 80), "L_Elbow": (0, -10, 0), "R_Shoulder": (0, -5, -70), "R_Elbow": (0, -20, 0),
        "Spine_2": (-5, 0, -8), "Head": (-20, 0, 0), "R_Ankle": (20, 0, 0),
    },
    "pointing": {
        "R_Shoulder": (0, -70, -5), "R_Elbow": (0, -5, 0), **{"L_Shoulder": (0, -5, -75), "L_Elbow": (0, -15, 0)},
        "Head": (0, -15, 0), "Neck": (0, -10, 0),
    },
    "waving": {
        "R_Shoulder": (-90, -10, 15), "R_Elbow": (0, -100, 0), "R_Wrist": (0, 0, 15),
        "L_Shoulder": (0, -5, -75), "L_Elbow": (0, -15, 0), "Head": (0, -5, 5),
    },
    "arms_crossed": {
        **_both("Shoulder", (30, -35, -70)), **_both("Elbow", (-20, -120, 0)), **_both("Collar", (0, -10, 0)),
        "Head": (-5, 0, 0),
    },
    "hands_on_hips": {**_both("Shoulder", (90, 10, -55)), **_both("Elbow", (0, -100, 0)), **_both("Wrist", (0, 0, 30))},
    "hands_behind_head": {
        **_both("Shoulder", (-90, 10, 25)), **_both("Elbow", (0, -150, 0)), **_both("Collar", (0, 0, 10)),
        "Head": (10, 0, 0), "Spine_3": (-5, 0, 0),
    },
    "phone": {
        "R_Shoulder": (0, -25, -75), "R_Elbow": (0, -135, 0), "R_Wrist": (0, 0, -10),
        "L_Shoulder": (0, -5, -75), "L_Elbow": (0, -15, 0), "Neck": (20, 0, 0), "Head": (20, 0, 0),
    },
    "stretching_up": {**_both("Shoulder", (0, -10, 82)), **_both("Elbow", (0, -15, 0)), "Spine_2": (-8, 0, 0)},
    "jumping_jack": {**_both("Shoulder", (0, 0, 60)), **_both("Hip", (0, 0, 25)), **_both("Ankle", (20, 0, -10))},
    "sitting": {
        **_both("Hip", (-90, 0, 8)), **_both("Knee", (90, 0, 0)), **_both("Shoulder", (0, -35, -70)),
        **_both("Elbow", (0, -60, 0)), "Spine_1": (5, 0, 0), "Spine_2": (5, 0, 0),
    },
    "sitting_leaning_back": {
        **_both("Hip", (-75, 0, 10)), **_both("Knee", (50, 0, 0)), **_both("Shoulder", (0, 20, -70)),
        **_both("Elbow", (0, -30, 0)), "Spine_1": (-10, 0, 0), "R_Hip": (-80, 10, 5), "R_Knee": (100, 0, 0),
    },
    "sitting_on_floor": {
        "root": (-10, 0, 0), **_both("Hip", (-90, 15, 15)), **_both("Knee", (20, 0, 0)),
        **_both("Shoulder", (0, 40, -80)), **_both("Elbow", (0, -10, 0)), **_both("Wrist", (0, 0, 40)),
        "Spine_1": (-10, 0, 0),
    },
    "crouching": {
        **_both("Hip", (-115, 0, 18)), **_both("Knee", (135, 0, 0)), **_both("Ankle", (-25, 0, 0)),
        **_both("Shoulder", (0, -60, -40)), **_both("Elbow", (0, -40, 0)), "Spine_1": (25, 0, 0),
        "Spine_2": (15, 0, 0), "Neck": (-15, 0, 0), "Head": (-10, 0, 0),
    },
    "kneeling": {
        "L_Hip": (-5, 0, 5), "L_Knee": (90, 0, 0), "L_Ankle": (35, 0, 0), "R_Hip": (-85, 0, 5), "R_Knee": (85, 0, 0),
        "L_Shoulder": (0, -10, -75), "R_Shoulder": (0, -40, -70), "R_Elbow": (0, -70, 0), "L_Elbow": (0, -20, 0),
    },
    "lunge": {
        "root": (10, 0, 0), "L_Hip": (-75, 0, 5), "L_Knee": (75, 0, 0), "R_Hip": (25, 0, 5), "R_Knee": (20, 0, 0),
        "R_Ankle": (25, 0, 0),
        **_both("Shoulder", (0, -10, -40)), **_both("Elbow", (0, -20, 0)), "Spine_1": (5, 0, 0),
    },
    "bending_over": {
        "root": (35, 0, 0), "Spine_1": (15, 0, 0), "Spine_2": (15, 0, 0), "Spine_3": (10, 0, 0),
        **_both("Hip", (-35, 0, 5)),
        **_both("Knee", (10, 0, 0)), **_both("Shoulder", (0, -70, -75)), **_both("Elbow", (0, -20, 0)),
        "Neck": (-20, 0, 0),
    },
    "dancing": {
        "L_Shoulder": (-60, -20, 50), "L_Elbow": (0, -70, 0), "R_Shoulder": (0, -30, -20), "R_Elbow": (0, -90, 0),
        "L_Hip": (-30, 10, 15), "L_Knee": (45, 0, 0), "Spine_1": (0, 10, -8), "Head": (0, 20, 10),
    },
}  # fmt: skip
POSE_NAMES: tuple[str, ...] = tuple(POSE_LIBRARY)


def pose_angles(name: str) -> np.ndarray:
    """(22, 3) anatomical angles in degrees of a library pose, in ``ANGLE_JOINTS`` order."""
    pose = POSE_LIBRARY[name]
    return np.array([pose.get(joint, (0.0, 0.0, 0.0)) for joint in ANGLE_JOINTS], dtype=np.float64)


def mirror_angles(angles: np.ndarray) -> np.ndarray:
    """The anatomical angles (22, 3) of the mirror image of a pose: left and right joints swap."""
    index = {joint: i for i, joint in enumerate(ANGLE_JOINTS)}
    swap = [index[_MIRROR.get(joint[:2], "") + joint[2:]] if joint[:2] in _MIRROR else i
            for i, joint in enumerate(ANGLE_JOINTS)]  # fmt: skip
    mirrored = angles[swap].copy()
    centre = [i for i, joint in enumerate(ANGLE_JOINTS) if joint[:2] not in _MIRROR]
    mirrored[centre, 1:] *= -1  # a mid-line joint's turn and side bend reverse in the mirror
    return mirrored


def clip_to_limits(angles: np.ndarray) -> np.ndarray:
    """(22, 3) anatomical angles in degrees, ``ANGLE_JOINTS`` order, clipped to each joint's limits."""
    low = np.array([_LIMITS[_side_free(j)][0] for j in ANGLE_JOINTS], dtype=np.float64)
    high = np.array([_LIMITS[_side_free(j)][1] for j in ANGLE_JOINTS], dtype=np.float64)
    return np.clip(angles, low, high)


def angles_to_axis_angle(angles: np.ndarray) -> np.ndarray:
    """Anatomical angles (22, 3) in degrees -> (22, 3) axis-angle in radians (root tilt, then body_pose)."""
    rotvecs = np.zeros((len(ANGLE_JOINTS), 3), dtype=np.float64)
    for i, joint in enumerate(ANGLE_JOINTS):
        order = euler_order(joint)
        ordered = angles[i, ["xyz".index(axis) for axis in order]]  # scipy wants the angles in `order`
        rotvec = Rotation.from_euler(order, ordered, degrees=True).as_rotvec()
        rotvecs[i] = rotvec * (1.0, -1.0, -1.0) if joint.startswith("R_") else rotvec  # mirror the right side
    return rotvecs


def sample_body_pose(rng: np.random.Generator, name: str | None = None) -> tuple[str, np.ndarray, np.ndarray]:
    """A library pose (random unless named), maybe mirrored, perturbed and clipped to the joint limits.

    Args:
        rng: the random generator (the only source of randomness).
        name: a key of ``POSE_LIBRARY``; None draws one uniformly.

    Returns:
        The pose name; the root tilt as (3,) axis-angle in radians in the SMPL-X rest frame (to be applied
        before the person is turned about the vertical); the SMPL-X ``body_pose`` as (21, 3) float64
        axis-angle in radians.
    """
    if name is None:
        name = POSE_NAMES[rng.integers(len(POSE_NAMES))]
    angles = pose_angles(name)
    if rng.random() < 0.5:
        angles = mirror_angles(angles)
    noise_std = np.array([_NOISE_DEG[_side_free(j)] for j in ANGLE_JOINTS], dtype=np.float64)
    rotvecs = angles_to_axis_angle(clip_to_limits(angles + rng.normal(size=angles.shape) * noise_std))
    return name, rotvecs[0], rotvecs[1:]
