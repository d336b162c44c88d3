"""Finger articulation for SMPL-X hands: open, relaxed, fist, pointing and other gestures, random curls.

A hand is described by one curl per finger in [0, 1] (0: straight, 1: fully flexed) and a spread in
degrees. Curls become joint rotations about each finger's flexion axis in the SMPL-X rest pose (palm
down, fingers along +x for the left hand, thumb pointing forward): fingers flex about -z, the thumb about
(1, 0, -1)/sqrt(2), i.e. towards the palm; the right hand is the mirror image, (x, y, z) -> (x, -y, -z).
The returned parameters are relative to the model's mean hand pose, as SMPL-X with
``flat_hand_mean=False`` expects (the layer adds the mean back).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from common.body_models.joint_sets import SMPLX_FINGERS

FINGER_ORDER: tuple[str, ...] = SMPLX_FINGERS  # Index, Middle, Pinky, Ring, Thumb: SMPL-X's hand_pose order
# Flexion at full curl, degrees, for joints 1 (knuckle), 2 and 3.
_FULL_CURL_DEG = {"finger": (75.0, 100.0, 65.0), "Thumb": (35.0, 35.0, 55.0)}
_THUMB_AXIS = np.array([1.0, 0.0, -1.0]) / np.sqrt(2.0)
_FINGER_AXIS = np.array([0.0, 0.0, -1.0])
_SPREAD_SIGN = {"Index": -1.0, "Middle": 0.0, "Ring": 0.5, "Pinky": 1.0, "Thumb": 0.0}  # index towards the thumb

# gesture -> curls (index, middle, pinky, ring, thumb), in FINGER_ORDER
GESTURES: Mapping[str, tuple[float, float, float, float, float]] = {
    "open": (0.0, 0.0, 0.0, 0.0, 0.0),
    "relaxed": (0.25, 0.3, 0.4, 0.35, 0.2),
    "fist": (1.0, 1.0, 1.0, 1.0, 0.8),
    "pointing": (0.0, 1.0, 1.0, 1.0, 0.8),
    "peace": (0.0, 0.0, 1.0, 1.0, 0.9),
    "thumbs_up": (1.0, 1.0, 1.0, 1.0, 0.0),
    "ok": (0.55, 0.1, 0.2, 0.15, 0.6),
    "claw": (0.5, 0.5, 0.5, 0.5, 0.4),
    "random": (np.nan,) * 5,  # each curl drawn uniformly in [0, 1]
}
GESTURE_NAMES: tuple[str, ...] = tuple(GESTURES)


def finger_rotations(curls: np.ndarray, spread_deg: float) -> np.ndarray:
    """Left-hand joint rotations for given curls and spread.

    Args:
        curls: (5,) curl per finger in FINGER_ORDER, 0 straight to 1 fully flexed.
        spread_deg: sideways spread of the fingers at the knuckles, degrees (negative: closed together).

    Returns:
        (15, 3) axis-angle in radians, SMPL-X's finger-joint order (3 joints per finger).
    """
    rotations = np.zeros((15, 3), dtype=np.float64)
    for f, finger in enumerate(FINGER_ORDER):
        full = _FULL_CURL_DEG["Thumb" if finger == "Thumb" else "finger"]
        axis = _THUMB_AXIS if finger == "Thumb" else _FINGER_AXIS
        for k in range(3):
            rotations[3 * f + k] = axis * np.radians(full[k] * curls[f])
        # The spread is small, so adding it to the knuckle's rotation vector is close to composing the rotations.
        rotations[3 * f, 1] += np.radians(spread_deg * _SPREAD_SIGN[finger])
    return rotations


def sample_hand_pose(
    rng: np.random.Generator, side: str, hand_mean: np.ndarray, gesture: str | None = None
) -> tuple[str, np.ndarray]:
    """A random gesture with jittered curls and spread, as SMPL-X hand-pose parameters.

    Args:
        rng: the random generator.
        side: 'left' or 'right'.
        hand_mean: (45,) the model's mean hand pose of that side (``layer.left_hand_mean``), radians.
        gesture: a key of ``GESTURES``; None draws one uniformly.

    Returns:
        The gesture name and (45,) float64 axis-angle in radians, relative to ``hand_mean``.
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    if gesture is None:
        gesture = GESTURE_NAMES[rng.integers(len(GESTURE_NAMES))]
    curls = np.array(GESTURES[gesture], dtype=np.float64)
    curls = np.where(np.isnan(curls), rng.random(5), curls + rng.normal(scale=0.08, size=5))
    rotations = finger_rotations(np.clip(curls, 0.0, 1.0), spread_deg=rng.uniform(-5.0, 15.0))
    if side == "right":
        rotations = rotations * (1.0, -1.0, -1.0)  # the mirror image of the left hand
    return gesture, rotations.reshape(45) - np.asarray(hand_mean, dtype=np.float64).reshape(45)
