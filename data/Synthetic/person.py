"""One person's SMPL-X parameters in its own (canonical) frame: shape, body pose, hands, jaw, expression."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .body_poses import sample_body_pose
from .hand_poses import sample_hand_pose

NUM_BETAS = 10
NUM_EXPRESSION = 10
BETA_LIMIT = 2.0  # shape coefficients stay within +-2 standard deviations
EXPRESSION_LIMIT = 2.5
JAW_OPEN_MAX_RAD = 0.35  # about 20 degrees, a wide-open mouth


@dataclass
class PersonPose:
    """SMPL-X parameters of one person, without the global rotation and translation.

    Attributes:
        gender: 'neutral', 'male' or 'female': the layer the person is rendered with.
        betas: (10,) shape coefficients, within +-2.
        expression: (10,) expression coefficients.
        root_tilt: (3,) axis-angle, radians, in the rest frame: the pose's tilt of the whole body (e.g. bending
            over), applied before the person is turned and placed.
        body_pose: (21, 3) axis-angle, radians.
        left_hand_pose: (15, 3) axis-angle relative to the mean hand (flat_hand_mean=False), radians.
        right_hand_pose: (15, 3) likewise.
        jaw_pose: (3,) axis-angle, radians.
        pose_name: the library pose it was perturbed from.
        gestures: (left, right) gesture names.
    """

    gender: str
    betas: np.ndarray
    expression: np.ndarray
    root_tilt: np.ndarray
    body_pose: np.ndarray
    left_hand_pose: np.ndarray
    right_hand_pose: np.ndarray
    jaw_pose: np.ndarray
    pose_name: str
    gestures: tuple[str, str]


def sample_person(
    rng: np.random.Generator,
    genders: Sequence[str],
    hand_means: dict[str, tuple[np.ndarray, np.ndarray]],
) -> PersonPose:
    """Draws a person: gender, shape, a perturbed library pose, two hand gestures, jaw and expression.

    Args:
        rng: the random generator.
        genders: genders to draw from uniformly.
        hand_means: gender -> (left, right) (45,) mean hand poses of that gender's layer, radians.
    """
    gender = genders[rng.integers(len(genders))]
    betas = np.clip(rng.normal(size=NUM_BETAS), -BETA_LIMIT, BETA_LIMIT)
    # Most faces are near neutral; some are strongly expressive.
    expression = np.clip(rng.normal(size=NUM_EXPRESSION) * rng.uniform(0.2, 1.2), -EXPRESSION_LIMIT, EXPRESSION_LIMIT)
    pose_name, root_tilt, body_pose = sample_body_pose(rng)
    left_mean, right_mean = hand_means[gender]
    left_gesture, left_hand = sample_hand_pose(rng, "left", left_mean)
    right_gesture, right_hand = sample_hand_pose(rng, "right", right_mean)
    jaw_open = rng.uniform(0.0, JAW_OPEN_MAX_RAD) if rng.random() < 0.5 else rng.uniform(0.0, 0.05)
    jaw_pose = np.array([jaw_open, rng.normal(scale=0.03), rng.normal(scale=0.03)])  # x > 0 opens the mouth
    return PersonPose(
        gender=gender, betas=betas, expression=expression, root_tilt=root_tilt, body_pose=body_pose,
        left_hand_pose=left_hand.reshape(15, 3), right_hand_pose=right_hand.reshape(15, 3), jaw_pose=jaw_pose,
        pose_name=pose_name, gestures=(left_gesture, right_gesture),
    )  # fmt: skip
