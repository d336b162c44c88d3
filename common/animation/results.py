"""The per-frame, per-track SMPL-X results file that the animation exporters read (demo/video.py writes one).

Contract: a ``.npz`` archive read with ``np.load(allow_pickle=False)`` (so no object arrays), N rows, one per
(frame, track), every array's first axis being the row:

=============  =========================  ===================================================================
key            shape, dtype               meaning
=============  =========================  ===================================================================
``frame``      (N,) integer               video frame index (>= 0); time = frame / fps
``track``      (N,) integer               track id (the person)
``root_pose``  (N, 3) float               SMPL-X global orientation, axis-angle, radians
``body_pose``  (N, 21, 3) or (N, 63)      body joints 1..21, axis-angle, radians
``lhand_pose`` (N, 15, 3) or (N, 45)      left-hand joints, axis-angle, radians, relative to the layer's mean hand
``rhand_pose`` (N, 15, 3) or (N, 45)      right-hand joints, likewise (Hand4Whole: ``flat_hand_mean=False``)
``jaw_pose``   (N, 3) float               jaw, axis-angle, radians
``shape``      (N, 10) float              SMPL-X betas
``expr``       (N, 10) float, optional    SMPL-X expression coefficients; missing: zeros and no morph targets
``cam_trans``  (N, 3) float               metres, added to the SMPL-X output (vertices and joints)
``leye_pose``  (N, 3), optional           eyeballs, axis-angle, radians; missing: zeros (Hand4Whole predicts none)
``reye_pose``  (N, 3), optional
``fps``        () float, optional         frames per second of the video (a command line's ``--fps`` wins)
=============  =========================  ===================================================================

The parameters are in one frame of reference, the SMPL-X layer's output frame plus ``cam_trans``: for the demos
that is the OpenCV camera frame (x right, y down, z forward). Any other key (``time_s``, ``bbox_xywh``, the
unsmoothed ``raw_*`` copies) is ignored.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.utils.errors import InputDataError

__all__ = ["ResultsFile", "ResultsFileError", "TrackMotion", "UnknownTrackError"]

# key -> the per-row shapes accepted (the first one is the one stored in TrackMotion)
_POSE_SHAPES: dict[str, tuple[tuple[int, ...], ...]] = {
    "root_pose": ((3,),),
    "body_pose": ((21, 3), (63,)),
    "lhand_pose": ((15, 3), (45,)),
    "rhand_pose": ((15, 3), (45,)),
    "jaw_pose": ((3,),),
    "shape": ((10,),),
    "cam_trans": ((3,),),
}
_OPTIONAL_SHAPES: dict[str, tuple[tuple[int, ...], ...]] = {
    "expr": ((10,),),
    "leye_pose": ((3,),),
    "reye_pose": ((3,),),
}
REQUIRED_KEYS: tuple[str, ...] = ("frame", "track", *_POSE_SHAPES)


class ResultsFileError(InputDataError):
    """A results file that cannot be read or does not follow the contract; the message names the file and key."""


class UnknownTrackError(ResultsFileError):
    """The requested track id is not in the file; the message lists the ones that are."""


@dataclass(frozen=True)
class TrackMotion:
    """One track's SMPL-X parameters, T rows sorted by frame, float64.

    Attributes:
        track: the track id.
        frames: (T,) int64 strictly increasing frame indices (gaps where the person was not seen).
        root_pose, jaw_pose, leye_pose, reye_pose: (T, 3) axis-angle, radians.
        body_pose: (T, 21, 3); lhand_pose, rhand_pose: (T, 15, 3) axis-angle, radians (hands relative to the
            layer's mean hand pose).
        shape: (T, 10) betas.
        expr: (T, 10) expression coefficients, or None when the file has none.
        cam_trans: (T, 3) metres.
    """

    track: int
    frames: np.ndarray
    root_pose: np.ndarray
    body_pose: np.ndarray
    lhand_pose: np.ndarray
    rhand_pose: np.ndarray
    jaw_pose: np.ndarray
    leye_pose: np.ndarray
    reye_pose: np.ndarray
    shape: np.ndarray
    expr: np.ndarray | None
    cam_trans: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)

    def pose_axis_angle(self) -> np.ndarray:
        """(T, 55, 3) SMPL-X's joint order: root, 21 body, jaw, left eye, right eye, 15 left hand, 15 right hand
        (radians; the hands still relative to the mean hand pose)."""
        parts = (self.root_pose[:, None], self.body_pose, self.jaw_pose[:, None], self.leye_pose[:, None],
                 self.reye_pose[:, None], self.lhand_pose, self.rhand_pose)  # fmt: skip
        return np.concatenate(parts, axis=1)


class ResultsFile:
    """A validated results file (see the module docstring for the contract).

    Args:
        path: the ``.npz`` file.

    Raises:
        FileNotFoundError: no such file.
        ResultsFileError: not a readable ``.npz`` without pickles, a required key missing (all missing keys are
            named), a key of the wrong shape or with non-finite values, ``frame``/``track`` not integers.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such results file")
        arrays = self._read()
        missing = [key for key in REQUIRED_KEYS if key not in arrays]
        if missing:
            raise ResultsFileError(
                f"{self.path}: missing key(s) {', '.join(missing)}; the file has {', '.join(sorted(arrays)) or 'none'}"
            )
        self.num_rows = self._check_index(arrays, "frame")
        self._check_index(arrays, "track")
        if (arrays["frame"] < 0).any():
            raise ResultsFileError(f"{self.path}: key 'frame' has negative frame indices")
        self._arrays: dict[str, np.ndarray] = {"frame": arrays["frame"].astype(np.int64),
                                               "track": arrays["track"].astype(np.int64)}  # fmt: skip
        for key, shapes in (_POSE_SHAPES | _OPTIONAL_SHAPES).items():
            if key in arrays:
                self._arrays[key] = self._checked_parameter(arrays[key], key, shapes)
        self.fps: float | None = self._read_fps(arrays)

    def _read(self) -> dict[str, np.ndarray]:
        try:
            archive = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:  # ValueError: a pickle, refused
            raise ResultsFileError(f"{self.path}: not a readable .npz file ({error})") from error
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ResultsFileError(f"{self.path}: expected a .npz archive of arrays, found a single .npy array")
        arrays = {}
        with archive:
            for key in archive.files:
                try:
                    arrays[key] = archive[key]
                except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:  # ValueError: an object array
                    raise ResultsFileError(f"{self.path}: key {key!r} cannot be read: {error}") from error
        return arrays

    def _check_index(self, arrays: dict[str, np.ndarray], key: str) -> int:
        value = arrays[key]
        if value.ndim != 1 or not np.issubdtype(value.dtype, np.integer):
            raise ResultsFileError(f"{self.path}: key {key!r} must be a (N,) integer array, got {value.dtype} "
                                   f"of shape {value.shape}")  # fmt: skip
        if key != "frame" and len(value) != len(arrays["frame"]):
            raise ResultsFileError(
                f"{self.path}: key {key!r} has {len(value)} rows, 'frame' has {len(arrays['frame'])}"
            )
        return len(value)

    def _checked_parameter(self, value: np.ndarray, key: str, shapes: tuple[tuple[int, ...], ...]) -> np.ndarray:
        expected = " or ".join(str((self.num_rows, *shape)) for shape in shapes)
        if not np.issubdtype(value.dtype, np.number) or len(value) != self.num_rows or value.shape[1:] not in shapes:
            raise ResultsFileError(f"{self.path}: key {key!r} must be a numeric array of shape {expected}, got "
                                   f"{value.dtype} of shape {value.shape}")  # fmt: skip
        if not np.isfinite(value).all():
            raise ResultsFileError(f"{self.path}: key {key!r} has non-finite values")
        return value.astype(np.float64).reshape(self.num_rows, *shapes[0])

    def _read_fps(self, arrays: dict[str, np.ndarray]) -> float | None:
        if "fps" not in arrays:
            return None
        fps = arrays["fps"]
        if fps.size != 1 or not np.issubdtype(fps.dtype, np.number) or not np.isfinite(fps).all() or fps.item() <= 0:
            raise ResultsFileError(f"{self.path}: key 'fps' must be one positive number, got {fps!r}")
        return float(fps.item())

    @property
    def tracks(self) -> list[int]:
        """The track ids in the file, ascending."""
        return sorted(int(track) for track in np.unique(self._arrays["track"]))

    def track(self, track: int) -> TrackMotion:
        """The rows of one track, sorted by frame.

        Raises:
            UnknownTrackError: no row has this track id (the message lists the ids there are).
            ResultsFileError: the track has two rows for one frame.
        """
        rows = np.flatnonzero(self._arrays["track"] == track)
        if len(rows) == 0:
            available = ", ".join(map(str, self.tracks)) or "none (the file has no rows)"
            raise UnknownTrackError(f"{self.path}: no track {track}; the tracks in the file are {available}")
        rows = rows[np.argsort(self._arrays["frame"][rows], kind="stable")]
        frames = self._arrays["frame"][rows]
        repeated = frames[1:][np.diff(frames) == 0]
        if len(repeated):
            raise ResultsFileError(f"{self.path}: track {track} has several rows for frame {int(repeated[0])}")
        zeros = np.zeros((len(rows), 3))
        fields = {key: self._arrays[key][rows] for key in _POSE_SHAPES}
        fields |= {key: self._arrays[key][rows] if key in self._arrays else zeros for key in ("leye_pose", "reye_pose")}
        expr = self._arrays["expr"][rows] if "expr" in self._arrays else None
        return TrackMotion(track=int(track), frames=frames, expr=expr, **fields)
