"""Shape and expression blend shapes, and the mean hand pose, of the stand-in.

Every field is written as a function of the rest-pose vertex and is mirror-symmetric by
construction (x-displacement odd in x, y/z-displacements even), so that flipping SMPL-X parameters
gives exactly the mirrored mesh; the assembler symmetrises once more to remove rounding.
"""

from __future__ import annotations

import numpy as np

from .head import EYE_X, EYE_Y, MOUTH_Y, NOSE_TIP_Y
from .parts import smoothstep
from .skeleton import FINGERS, FLOOR_Y, HEAD_CENTER, finger_direction

NUM_SHAPE_FIELDS = 10
NUM_EXPRESSION_FIELDS = 10
_TOP_Y = HEAD_CENTER[1] + 0.115


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * (x / sigma) ** 2)


def shape_fields(vertices: np.ndarray, axis_points: np.ndarray, group: np.ndarray, part: np.ndarray) -> np.ndarray:
    """The 10 shape components, displacement per unit coefficient.

    Args:
        vertices: (V, 3) rest-pose vertices, metres.
        axis_points: (V, 3) centre of each vertex's ring (girth scales away from it).
        group: (V,) 'head', 'left_hand', 'right_hand' or 'body'.
        part: (V,) part name of each vertex.

    Returns:
        (V, 3, 10) metres per unit of beta: 0 height, 1 girth, 2 shoulder width, 3 leg length,
        4 belly, 5 hip width, 6 head size, 7 arm length, 8 chest depth, 9 torso length.
    """
    x, y, z = vertices.T
    sign = np.sign(x)
    radial = vertices - axis_points
    is_torso = part == "torso"
    is_arm = np.char.find(part.astype(str), "arm") >= 0
    is_hand = np.char.endswith(group.astype(str), "hand")
    is_leg = np.isin(part, ["left_thigh", "right_thigh", "left_shin", "right_shin", "left_foot", "right_foot"])
    fields = np.zeros((len(vertices), 3, NUM_SHAPE_FIELDS))
    fields[:, 1, 0] = 0.04 * (y - FLOOR_Y) / (_TOP_Y - FLOOR_Y)
    fields[:, :, 1] = radial * np.where(group == "body", 0.12, np.where(group == "head", 0.03, 0.05))[:, None]
    upper = smoothstep((y + 0.12) / 0.12)
    fields[:, 0, 2] = np.where(is_arm | is_hand | np.char.endswith(part.astype(str), "collar"), 0.02 * sign,
                               np.where(is_torso, 0.02 * (x / 0.18) * upper, 0.0))  # fmt: skip
    fields[:, 1, 3] = np.where(y < -0.52, -0.04 * (-0.52 - y) / (-0.52 - FLOOR_Y), 0.0)
    fields[:, 2, 4] = np.where(is_torso, 0.03 * _gauss(y + 0.25, 0.1) * np.clip(radial[:, 2] / 0.1, 0, None), 0.0)
    hips = smoothstep((-0.3 - y) / 0.15)
    fields[:, 0, 5] = np.where(is_torso, 0.02 * (x / 0.17) * hips, np.where(is_leg, 0.02 * sign, 0.0))
    fields[:, :, 6] = np.where((group == "head")[:, None], 0.06 * (vertices - HEAD_CENTER), 0.0)
    reach = np.clip((np.abs(x) - 0.175) / 0.51, 0, 1)
    fields[:, 0, 7] = np.where(is_arm, 0.04 * sign * reach, np.where(is_hand, 0.04 * sign, 0.0))
    fields[:, 2, 8] = np.where(is_torso, 0.1 * radial[:, 2] * _gauss(y + 0.05, 0.12), 0.0)
    fields[:, 1, 9] = np.where(y > -0.52, 0.03 * np.clip((y + 0.52) / 0.6, 0, 1), 0.0)
    return fields


def expression_fields(vertices: np.ndarray, face_mask: np.ndarray) -> np.ndarray:
    """The 10 expression components: (V, 3, 10) metres per unit coefficient, zero off the face.

    0 chin down, 1 smile, 2 brows up, 3 frown, 4 cheeks puffed, 5 pucker, 6 wide mouth, 7 lips pressed,
    8 nose wrinkle, 9 squint.
    """
    x, y, _ = vertices.T
    ax = np.abs(x)
    sign = np.sign(x)
    mouth = _gauss(ax, 0.025) * _gauss(y - MOUTH_Y, 0.012)
    corners = _gauss(ax - 0.025, 0.008) * _gauss(y - MOUTH_Y, 0.008)
    brows = _gauss(y - 0.322, 0.01) * _gauss(ax - 0.032, 0.025)
    eyes = _gauss(ax - EYE_X, 0.015) * _gauss(y - EYE_Y, 0.012)
    fields = np.zeros((len(vertices), 3, NUM_EXPRESSION_FIELDS))
    fields[:, 1, 0] = -0.006 * smoothstep((MOUTH_Y - y) / 0.02)
    fields[:, 0, 1], fields[:, 1, 1] = 0.004 * sign * corners, 0.004 * corners
    fields[:, 1, 2] = 0.004 * brows
    fields[:, 1, 3] = -0.003 * _gauss(y - 0.322, 0.01) * _gauss(ax - 0.015, 0.01)
    fields[:, 2, 4] = 0.005 * _gauss(ax - 0.045, 0.015) * _gauss(y - 0.25, 0.015)
    fields[:, 2, 5], fields[:, 0, 5] = 0.004 * mouth, -0.2 * x * mouth
    fields[:, 0, 6] = 0.004 * (x / 0.025) * mouth
    fields[:, 1, 7] = -0.002 * np.tanh((y - MOUTH_Y) / 0.004) * mouth
    fields[:, 1, 8] = 0.002 * _gauss(ax, 0.012) * _gauss(y - NOSE_TIP_Y - 0.015, 0.012)
    fields[:, 1, 9] = -0.15 * (y - EYE_Y) * eyes
    return fields * face_mask[:, None, None]


def right_hand_mean_pose() -> np.ndarray:
    """(45,) SMPL-X's mean right-hand pose (axis-angle, 15 joints in SMPL-X order): relaxed curl.

    Each finger bends towards the palm (the palm faces -y in the rest pose) about the axis
    perpendicular to the finger and the palm normal.
    """
    palm_normal = np.array([0.0, -1.0, 0.0])
    bend = {"thumb": (0.15, 0.20, 0.15)}
    pose = []
    for finger in FINGERS:
        direction = finger_direction(finger) * np.array([-1.0, 1.0, 1.0])  # right hand: mirrored
        axis = np.cross(direction, palm_normal)
        axis /= np.linalg.norm(axis)
        for angle in bend.get(finger, (0.25, 0.35, 0.25)):
            pose.append(angle * axis)
    return np.concatenate(pose)
