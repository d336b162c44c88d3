"""Causal smoothing of each track's parameters over time: the One-Euro filter on continuous representations.

The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) is a first-order low-pass filter whose cutoff rises
with the signal's speed: x_hat_t = a x_t + (1 - a) x_hat_{t-1}, a = 1 / (1 + tau / dt), tau = 1 / (2 pi f_c),
f_c = min_cutoff + beta |dx_hat|, where dx_hat is the derivative (x_t - x_hat_{t-1}) / dt low-passed at d_cutoff.
Still, it smooths at min_cutoff and removes jitter; moving fast, its cutoff rises and the lag shrinks. It reads
only the current and past frames: an output never changes when a later frame does.

What is filtered, per track (each element on its own):

* rotations (every parameter named *pose*: axis-angle, k x 3) as Hand4Whole's 6D representation
  (common/geometry/rotation.py, through RoMa): continuous, with no 2-pi wrap of axis-angle and no sign flip of
  quaternions, so a weighted mean of past values is a meaningful rotation once Gram-Schmidt makes it one;
* shape and expression coefficients as they are;
* the translation (cam_trans, image camera) as (x / z, y / z, log z): where the person is in the image and its
  relative depth, free of the focal length's scale, so that one setting suits any camera.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from common.geometry.rotation import axis_angle_to_rot6d, rot6d_to_axis_angle

__all__ = [
    "OneEuroFilter",
    "OneEuroSettings",
    "ParamSmoother",
    "SmoothingSettings",
    "TrackSmoother",
    "from_image_translation",
    "to_image_translation",
]


@dataclass(frozen=True)
class OneEuroSettings:
    """One filter's constants.

    Attributes:
        min_cutoff_hz: the cutoff at rest, Hz (lower: smoother and slower).
        beta: how fast the cutoff rises with speed, Hz per (unit / s) of the signal.
        d_cutoff_hz: the cutoff of the speed estimate, Hz.
    """

    min_cutoff_hz: float
    beta: float
    d_cutoff_hz: float = 1.0

    def __post_init__(self) -> None:
        if self.min_cutoff_hz <= 0 or self.d_cutoff_hz <= 0 or self.beta < 0:
            raise ValueError(f"One-Euro cutoffs must be > 0 and beta >= 0, got {self}")


def _smoothing_factor(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroFilter:
    """The One-Euro filter over an array of any fixed shape, elementwise (module docstring)."""

    def __init__(self, settings: OneEuroSettings) -> None:
        self.settings = settings
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time_s = 0.0

    def __call__(self, value: np.ndarray, time_s: float) -> np.ndarray:
        """Filters the value observed at `time_s` (strictly after the previous call's); returns float64."""
        value = np.asarray(value, dtype=np.float64)
        if self._value is None:  # the first value passes through: nothing to average with yet
            self._value, self._speed, self._time_s = value.copy(), np.zeros_like(value), float(time_s)
            return value.copy()
        dt = float(time_s) - self._time_s
        if dt <= 0:
            raise ValueError(f"times must increase: {time_s} after {self._time_s}")
        s = self.settings
        speed = (value - self._value) / dt
        self._speed = self._speed + _smoothing_factor(s.d_cutoff_hz, dt) * (speed - self._speed)
        cutoff = s.min_cutoff_hz + s.beta * np.abs(self._speed)
        self._value = self._value + _smoothing_factor(cutoff, dt) * (value - self._value)
        self._time_s = float(time_s)
        return self._value.copy()


@dataclass(frozen=True)
class SmoothingSettings:
    """The filters' constants per kind of parameter (units: 6D components, coefficients, (x/z, y/z, log z)).

    The defaults were chosen on tests/demo/test_video.py's noisy tracks at 30 frames per second: they cut the
    acceleration error of jittery rotations several-fold and follow a step within a few frames.
    """

    rotation: OneEuroSettings = field(default_factory=lambda: OneEuroSettings(min_cutoff_hz=1.0, beta=2.0))
    coefficients: OneEuroSettings = field(default_factory=lambda: OneEuroSettings(min_cutoff_hz=0.5, beta=0.5))
    translation: OneEuroSettings = field(default_factory=lambda: OneEuroSettings(min_cutoff_hz=1.0, beta=5.0))


def from_image_translation(translation_m: np.ndarray) -> np.ndarray:
    """(..., 3) metres, z > 0 -> (..., 3) (x / z, y / z, log z)."""
    t = np.asarray(translation_m, dtype=np.float64)
    if np.any(t[..., 2] <= 0):
        raise ValueError(f"a translation to smooth must lie in front of the camera, got z = {t[..., 2]}")
    return np.concatenate([t[..., :2] / t[..., 2:], np.log(t[..., 2:])], axis=-1)


def to_image_translation(normalised: np.ndarray) -> np.ndarray:
    """The inverse of `from_image_translation`."""
    n = np.asarray(normalised, dtype=np.float64)
    depth = np.exp(n[..., 2:])
    return np.concatenate([n[..., :2] * depth, depth], axis=-1)


def _rotations_to_6d(axis_angle: np.ndarray) -> np.ndarray:
    """(3k,) axis-angle radians -> (k, 6) float64."""
    return axis_angle_to_rot6d(torch.from_numpy(np.asarray(axis_angle, dtype=np.float64).reshape(-1, 3))).numpy()


def _rotations_from_6d(rot6d: np.ndarray) -> np.ndarray:
    """(k, 6) -> (3k,) float64 axis-angle radians."""
    return rot6d_to_axis_angle(torch.from_numpy(rot6d)).numpy().reshape(-1)


class ParamSmoother:
    """Smooths one track's parameters frame by frame (module docstring).

    Args:
        settings: the filters' constants.
        rotation_keys: keys of axis-angle parameters ((3k,) radians each).
        translation_key: the key of the (3,) image-camera translation, metres; every other key is a coefficient
            vector.
    """

    def __init__(self, settings: SmoothingSettings, rotation_keys: Sequence[str], translation_key: str) -> None:
        self.settings, self.rotation_keys, self.translation_key = settings, set(rotation_keys), translation_key
        self._filters: dict[str, OneEuroFilter] = {}

    def _filter(self, key: str, kind: OneEuroSettings) -> OneEuroFilter:
        if key not in self._filters:
            self._filters[key] = OneEuroFilter(kind)
        return self._filters[key]

    def __call__(self, params: Mapping[str, np.ndarray], time_s: float) -> dict[str, np.ndarray]:
        """The smoothed parameters at `time_s`: the same keys and shapes, float32."""
        smoothed = {}
        for key, value in params.items():
            value = np.asarray(value)
            if key in self.rotation_keys:
                rot6d = self._filter(key, self.settings.rotation)(_rotations_to_6d(value), time_s)
                result = _rotations_from_6d(rot6d)
            elif key == self.translation_key:
                normalised = self._filter(key, self.settings.translation)(from_image_translation(value), time_s)
                result = to_image_translation(normalised)
            else:
                result = self._filter(key, self.settings.coefficients)(value, time_s)
            smoothed[key] = result.reshape(value.shape).astype(np.float32)
        return smoothed


class TrackSmoother:
    """One `ParamSmoother` per live track: created at a track's first frame, dropped when it ends."""

    def __init__(self, settings: SmoothingSettings, rotation_keys: Sequence[str], translation_key: str) -> None:
        self.settings, self.rotation_keys, self.translation_key = settings, tuple(rotation_keys), translation_key
        self._tracks: dict[int, ParamSmoother] = {}

    def smooth(self, track_id: int, params: Mapping[str, np.ndarray], time_s: float) -> dict[str, np.ndarray]:
        """The track's smoothed parameters at `time_s` (see `ParamSmoother.__call__`)."""
        if track_id not in self._tracks:
            self._tracks[track_id] = ParamSmoother(self.settings, self.rotation_keys, self.translation_key)
        return self._tracks[track_id](params, time_s)

    def end(self, track_id: int) -> None:
        """Forgets an ended track (a new track never inherits its state)."""
        self._tracks.pop(track_id, None)
