"""Track ids for the people of a video: each frame's boxes associated with the live tracks by IoU.

A track remembers its last matched box and its velocity (the box's change per frame, blended over matches), and
is compared with a frame's boxes where it should be now: its last box moved by its velocity for the frames since
its last match. This constant-velocity prediction keeps the ids of two people who cross: at the crossing their
boxes overlap each other as much as their own, but just after it each track's prediction overlaps its own
person's box and not the other's. Boxes are assigned to tracks by the highest total IoU (the Hungarian method,
scipy's `linear_sum_assignment`) or greedily, best pair first; a pair below `min_iou` is never matched. A box left
unmatched starts a new track; a track left unmatched for more than `max_missed` frames in a row ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["ASSOCIATION_METHODS", "IoUTracker", "Track", "TrackUpdate", "TrackerOptions", "associate", "box_iou"]

ASSOCIATION_METHODS = ("hungarian", "greedy")
_VELOCITY_BLEND = 0.5  # weight of the newest displacement in the velocity: follows turns, damps box jitter


def box_iou(boxes_a_xywh: np.ndarray, boxes_b_xywh: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair of boxes.

    Args:
        boxes_a_xywh: (N, 4) x, y, width, height, pixels.
        boxes_b_xywh: (M, 4) likewise.

    Returns:
        (N, M) float64 in [0, 1]; 0 for boxes of no area.
    """
    a = np.asarray(boxes_a_xywh, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b_xywh, dtype=np.float64).reshape(-1, 4)
    a_lo, a_hi = a[:, None, :2], a[:, None, :2] + np.maximum(a[:, None, 2:], 0.0)  # (N, 1, 2)
    b_lo, b_hi = b[None, :, :2], b[None, :, :2] + np.maximum(b[None, :, 2:], 0.0)  # (1, M, 2)
    overlap = np.clip(np.minimum(a_hi, b_hi) - np.maximum(a_lo, b_lo), 0.0, None).prod(axis=-1)  # (N, M)
    union = (a_hi - a_lo).prod(axis=-1) + (b_hi - b_lo).prod(axis=-1) - overlap
    return np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)


def associate(iou: np.ndarray, min_iou: float, method: str = "hungarian") -> list[tuple[int, int]]:
    """Pairs (row, column) of an IoU matrix, each row and column at most once, every pair's IoU >= min_iou.

    Args:
        iou: (N, M) IoU of N tracks with M boxes.
        min_iou: the smallest IoU of a match.
        method: 'hungarian' (the highest total IoU) or 'greedy' (the best remaining pair first).
    """
    if method not in ASSOCIATION_METHODS:
        raise ValueError(f"unknown association method {method!r}; known: {ASSOCIATION_METHODS}")
    if iou.size == 0:
        return []
    if method == "hungarian":
        rows, cols = linear_sum_assignment(iou, maximize=True)
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= min_iou]
    pairs, used_rows, used_cols = [], set(), set()
    order = np.argsort(-iou, axis=None, kind="stable")  # flat indices, best first
    for flat in order:
        r, c = divmod(int(flat), iou.shape[1])
        if iou[r, c] < min_iou:
            break
        if r not in used_rows and c not in used_cols:
            pairs.append((r, c))
            used_rows.add(r)
            used_cols.add(c)
    return sorted(pairs)


@dataclass(frozen=True)
class TrackerOptions:
    """How boxes become tracks.

    Attributes:
        min_iou: the smallest IoU between a track's predicted box and a box for them to match.
        max_missed: a track ends once it has gone unmatched for more than this many frames in a row.
        method: 'hungarian' or 'greedy' (see `associate`).
    """

    min_iou: float = 0.3
    max_missed: int = 5
    method: str = "hungarian"

    def __post_init__(self) -> None:
        if not 0.0 < self.min_iou <= 1.0:
            raise ValueError(f"min_iou must lie in (0, 1], got {self.min_iou}")
        if self.max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {self.max_missed}")
        if self.method not in ASSOCIATION_METHODS:
            raise ValueError(f"unknown association method {self.method!r}; known: {ASSOCIATION_METHODS}")


@dataclass
class Track:
    """A live track.

    Attributes:
        track_id: its id, unique in the video (0, 1, 2, ... in order of appearance).
        bbox_xywh: (4,) float64 its last matched box, pixels.
        velocity_xywh: (4,) float64 the box's change per frame, pixels.
        missed: frames since its last match.
    """

    track_id: int
    bbox_xywh: np.ndarray
    velocity_xywh: np.ndarray = field(default_factory=lambda: np.zeros(4))
    missed: int = 0

    def predicted_box(self) -> np.ndarray:
        """(4,) where the box should be at the current frame (constant velocity since the last match)."""
        return self.bbox_xywh + self.velocity_xywh * (self.missed + 1)


@dataclass(frozen=True)
class TrackUpdate:
    """One frame's association.

    Attributes:
        track_ids: per box of the frame, in its order, the id of its track.
        ended: ids of the tracks that ended at this frame.
    """

    track_ids: list[int]
    ended: list[int]


class IoUTracker:
    """Gives each frame's boxes their track ids (module docstring); call `update` once per frame, in order."""

    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = options or TrackerOptions()
        self.tracks: list[Track] = []
        self._next_id = 0

    def update(self, boxes_xywh: Sequence[np.ndarray]) -> TrackUpdate:
        """Associates one frame's boxes with the live tracks.

        Args:
            boxes_xywh: the frame's boxes, (4,) x, y, width, height in pixels each (possibly none).

        Returns:
            The box ids and the tracks that ended.
        """
        boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
        predicted = np.array([track.predicted_box() for track in self.tracks]).reshape(-1, 4)
        pairs = associate(box_iou(predicted, boxes), self.options.min_iou, self.options.method)
        ids = [-1] * len(boxes)
        matched = set()
        for row, col in pairs:
            track = self.tracks[row]
            displacement = (boxes[col] - track.bbox_xywh) / (track.missed + 1)
            track.velocity_xywh = _VELOCITY_BLEND * displacement + (1.0 - _VELOCITY_BLEND) * track.velocity_xywh
            track.bbox_xywh, track.missed = boxes[col].copy(), 0
            ids[col] = track.track_id
            matched.add(row)
        ended, live = [], []
        for row, track in enumerate(self.tracks):
            if row not in matched:
                track.missed += 1
            (ended if track.missed > self.options.max_missed else live).append(track)
        self.tracks = live
        for col in range(len(boxes)):
            if ids[col] < 0:  # unmatched: a new person
                self.tracks.append(Track(self._next_id, boxes[col].copy()))
                ids[col] = self._next_id
                self._next_id += 1
        return TrackUpdate(ids, [track.track_id for track in ended])
