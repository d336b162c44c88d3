"""Readers of the MSRA hand gesture release (Sun et al., CVPR 2015) and of V2V-PoseNet's refined centre files.

Layout under ``root`` (cvpr15_MSRAHandGestureDB)::

    P0 .. P8/                       9 subjects, in this order
        1 2 3 4 5 6 7 8 9 I IP L MP RP T TIP Y/     17 gesture folders, in this fixed order (`GESTURES`)
            joint.txt               line 1: the frame count N; then N lines of 21 x (x y z) mm
            000000_depth.bin ...    one file per frame, {frame:06d}_depth.bin
    center/                         V2V-PoseNet's refined hand centres (distributed apart from MSRA; any folder)
        center_train_{k}_refined.txt    fold k (test subject k): one line per frame of the 8 other subjects
        center_test_{k}_refined.txt     ... of subject k; a line is 'x y z' mm or 'invalid'

Axes. Our camera frame (docs/conventions.md) is OpenCV's: x right, y down, z forward, here in millimetres.
MSRA's ``joint.txt`` stores (x, y, z) with **y up and z negative** (an OpenGL-like camera looking down -z); V2V's
pixel-to-world mapping (``Y = (cy - v) z / fy``) and its centre files use y up with z positive (the depth).
The readers convert on load, so every array returned here is in our camera frame:

    ours = (x, -y, -z) of joint.txt          ours = (x, -y, z) of a centre file (`msra_world_to_camera`)

and a point projects to u = cx + fx x / z, v = cy + fy y / z with MSRA's camera (`MSRA_INTRINSICS`).

Depth files. A header of 6 little-endian uint32 (image width, image height, left, top, right, bottom) is followed
by (right - left) x (bottom - top) float32 depths (mm) of the hand's box, row-major; right and bottom are exclusive.
`read_depth_bin` pastes the box into a zero 240 x 320 frame with box pixel (r, c) at image pixel (top + r,
left + c), and image pixel (row v, column u) is the pixel whose centre is at (u, v) (pixel centres at integer
coordinates, as everywhere here). The two upstream readers differ from this by one pixel each way (the Lua
original's pixel of box column c has u = left + c - 1, the PyTorch port's u = left + c + 1): ours is the middle
reading, the one the header states literally. 0 means no depth.

Frame order (upstream, both the Lua original and the port): subjects P0..P8, gesture folders in `GESTURES` order,
frames in ``joint.txt`` order; centre line i belongs to frame i of its fold, and an 'invalid' line skips its frame
but still counts (`load_fold`).

Every malformed file raises `data.record.AnnotationError` naming the file (and the line or the expected size); a
missing one raises `data.record.MissingAnnotationError` naming it.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.body_models.joint_sets import JointSet
from data.record import AnnotationError, MissingAnnotationError

__all__ = ["CENTER_DIR", "DEPTH_HEADER", "GESTURES", "MSRA_INTRINSICS", "MSRA_JOINTS", "NUM_JOINTS", "SPLITS",
           "SUBJECTS", "CameraIntrinsics", "MSRAFold", "MSRAFrame", "camera_to_msra_world", "center_file",
           "depth_file", "fold_subjects", "joint_file", "list_fold_frames", "list_frames", "load_fold",
           "msra_world_to_camera", "read_depth_bin", "read_depth_box", "read_frame_count", "read_joint_txt",
           "read_refined_centers"]  # fmt: skip

GESTURES: tuple[str, ...] = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "I", "IP", "L", "MP", "RP", "T", "TIP", "Y")
SUBJECTS = 9  # P0..P8
SPLITS: tuple[str, ...] = ("train", "test")
NUM_JOINTS = 21
CENTER_DIR = "center"  # where the synthetic writer puts the centre files, relative to the root
DEPTH_HEADER = struct.Struct("<6I")  # image width, image height, left, top, right (excl.), bottom (excl.)
DATASET_NAME = "MSRA"
DOWNLOAD_PAGE = "the MSRA hand gesture release (cvpr15_MSRAHandGestureDB, Sun et al., CVPR 2015)"
CENTER_DOWNLOAD_PAGE = "V2V-PoseNet's precomputed centres (mks0601/V2V-PoseNet_RELEASE, README)"

MSRA_JOINTS = JointSet.from_names(
    ("Wrist", *(f"{finger}_{k}" for finger in ("Index", "Middle", "Ring", "Pinky", "Thumb") for k in range(1, 5)))
)
"""MSRA's 21 joints: wrist, then index, middle, ring, little (Pinky) and thumb, each MCP, PIP, DIP, TIP (_1.._4)."""


@dataclass(frozen=True)
class CameraIntrinsics:
    """A pinhole camera without distortion.

    Attributes:
        fx, fy: focal lengths, pixels.
        cx, cy: principal point, pixels (pixel centres at integer coordinates).
        width, height: image size, pixels.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def as_array(self) -> np.ndarray:
        """(4,) float32 (fx, fy, cx, cy): the ``inputs['intrinsics']`` of a depth sample."""
        return np.array([self.fx, self.fy, self.cx, self.cy], dtype=np.float32)

    def project(self, points_mm: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame points (z > 0) -> (..., 2) float64 pixel coordinates (u, v)."""
        points = np.asarray(points_mm, dtype=np.float64)
        return np.stack(
            [self.cx + self.fx * points[..., 0] / points[..., 2], self.cy + self.fy * points[..., 1] / points[..., 2]],
            axis=-1,
        )


MSRA_INTRINSICS = CameraIntrinsics(fx=241.42, fy=241.42, cx=160.0, cy=120.0, width=320, height=240)


@dataclass(frozen=True)
class MSRAFrame:
    """One frame of the release.

    Attributes:
        subject: 0..8 (folder P{subject}).
        gesture: one of `GESTURES`.
        frame: the frame's index in its folder (its ``joint.txt`` row and depth file number).
        depth_path: its ``{frame:06d}_depth.bin``.
    """

    subject: int
    gesture: str
    frame: int
    depth_path: Path


@dataclass
class MSRAFold:
    """The frames of one split of a leave-one-subject-out fold, with their labels, in the upstream order.

    Attributes:
        test_subject: k, the held-out subject.
        split: 'train' (the other subjects) or 'test' (subject k).
        frames: (N,) every frame, including those whose centre is invalid.
        joints_mm: (N, 21, 3) float32 camera-frame mm, `MSRA_JOINTS` order.
        centers_mm: (N, 3) float32 camera-frame mm, NaN rows where the centre file says 'invalid'.
    """

    test_subject: int
    split: str
    frames: list[MSRAFrame]
    joints_mm: np.ndarray
    centers_mm: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """(N,) bool: frames with a centre (upstream skips the others)."""
        return np.isfinite(self.centers_mm).all(axis=1)


# --- axes -----------------------------------------------------------------------------------------------------------
def msra_world_to_camera(points_mm: np.ndarray) -> np.ndarray:
    """V2V's world (x right, y up, z forward; centre files, result and gt files) -> our camera frame: negates y."""
    return np.asarray(points_mm, dtype=np.float32) * np.array([1.0, -1.0, 1.0], dtype=np.float32)


def camera_to_msra_world(points_mm: np.ndarray) -> np.ndarray:
    """Our camera frame -> V2V's world (y up, z forward), as its centre, result and ``*_gt.txt`` files hold points."""
    return msra_world_to_camera(points_mm)  # negating y is its own inverse


# --- paths ----------------------------------------------------------------------------------------------------------
def _check_subject(subject: int) -> None:
    if not 0 <= int(subject) < SUBJECTS:
        raise ValueError(f"MSRA subjects are 0..{SUBJECTS - 1}, got {subject}")


def joint_file(root: str | os.PathLike[str], subject: int, gesture: str) -> Path:
    """``root/P{subject}/{gesture}/joint.txt``."""
    return Path(root) / f"P{subject}" / gesture / "joint.txt"


def depth_file(root: str | os.PathLike[str], subject: int, gesture: str, frame: int) -> Path:
    """``root/P{subject}/{gesture}/{frame:06d}_depth.bin``."""
    return Path(root) / f"P{subject}" / gesture / f"{frame:06d}_depth.bin"


def center_file(center_dir: str | os.PathLike[str], split: str, test_subject: int) -> Path:
    """``center_dir/center_{split}_{test_subject}_refined.txt`` (V2V-PoseNet's name)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return Path(center_dir) / f"center_{split}_{test_subject}_refined.txt"


def _read_lines(path: Path, download_page: str) -> list[str]:
    """The file's lines without line ends; MissingAnnotationError / AnnotationError for a missing or binary file."""
    try:
        with open(path, encoding="ascii") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        raise MissingAnnotationError(path, DATASET_NAME, download_page) from None
    except UnicodeDecodeError:
        raise AnnotationError(f"{path}: not a text file", path) from None


# --- joint.txt ------------------------------------------------------------------------------------------------------
def _frame_count(first_line: str, path: Path) -> int:
    try:
        count = int(first_line.strip())
    except ValueError:
        raise AnnotationError(f"{path}, line 1: expected the frame count, got {first_line[:40]!r}", path) from None
    if count < 0:
        raise AnnotationError(f"{path}, line 1: negative frame count {count}", path)
    return count


def read_frame_count(path: str | os.PathLike[str]) -> int:
    """The frame count N on the first line of a ``joint.txt`` (reads that line only)."""
    path = Path(path)
    try:
        with open(path, encoding="ascii") as f:
            first = f.readline()
    except FileNotFoundError:
        raise MissingAnnotationError(path, DATASET_NAME, DOWNLOAD_PAGE) from None
    except UnicodeDecodeError:
        raise AnnotationError(f"{path}: not a text file", path) from None
    if not first.strip():
        raise AnnotationError(f"{path}, line 1: empty, expected the frame count", path)
    return _frame_count(first, path)


def _bad_joint_line(lines: list[str], path: Path) -> AnnotationError:
    """The error for the first data line of ``lines`` (joint.txt from line 2) that is not 63 finite numbers."""
    for number, line in enumerate(lines, start=2):
        values = line.split()
        if len(values) != 3 * NUM_JOINTS:
            return AnnotationError(f"{path}, line {number}: {len(values)} values, expected {3 * NUM_JOINTS}", path)
        try:
            if not np.isfinite(np.array(values, dtype=np.float64)).all():
                return AnnotationError(f"{path}, line {number}: a value is not finite", path)
        except ValueError:
            return AnnotationError(f"{path}, line {number}: not all values are numbers", path)
    return AnnotationError(f"{path}: unreadable joint values", path)


def read_joint_txt(path: str | os.PathLike[str]) -> np.ndarray:
    """The joints of one gesture folder, in our camera frame.

    Args:
        path: a ``joint.txt``: line 1 the frame count N, then N lines of 21 x (x y z) mm, MSRA's axes (y up,
            z negative); blank lines after the last frame are ignored.

    Returns:
        (N, 21, 3) float32 camera-frame mm (x right, y down, z forward: joint.txt's (x, -y, -z)), `MSRA_JOINTS` order.

    Raises:
        MissingAnnotationError: no such file.
        AnnotationError: naming the file and the line, for a bad count, a line of the wrong length, a value that is
            not a finite number, or a frame count that differs from the number of lines.
    """
    path = Path(path)
    lines = _read_lines(path, DOWNLOAD_PAGE)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise AnnotationError(f"{path}: empty file, expected the frame count on line 1", path)
    count = _frame_count(lines[0], path)
    data = lines[1:]
    if len(data) != count:
        raise AnnotationError(f"{path}: line 1 says {count} frames, the file has {len(data)} joint lines", path)
    if count == 0:
        return np.zeros((0, NUM_JOINTS, 3), dtype=np.float32)
    try:  # numpy's C parser: the release's 76k lines in a fraction of a second
        values = np.loadtxt(io.StringIO("\n".join(data)), dtype=np.float64, ndmin=2)
    except ValueError:
        raise _bad_joint_line(data, path) from None
    if values.shape != (count, 3 * NUM_JOINTS) or not np.isfinite(values).all():
        raise _bad_joint_line(data, path)
    joints = values.reshape(count, NUM_JOINTS, 3) * np.array([1.0, -1.0, -1.0])  # MSRA's y up, z < 0 -> ours
    return joints.astype(np.float32)


# --- depth.bin ------------------------------------------------------------------------------------------------------
def read_depth_box(path: str | os.PathLike[str]) -> tuple[tuple[int, int, int, int, int, int], np.ndarray]:
    """The header and the depth box of a ``_depth.bin`` file, as stored.

    Returns:
        ((image_width, image_height, left, top, right, bottom), (bottom - top, right - left) float32 depth mm).

    Raises:
        MissingAnnotationError: no such file.
        AnnotationError: naming the file: a short header, a box that does not fit the image, or a size other than
            header + box (a truncated file names the expected and the actual size).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingAnnotationError(path, DATASET_NAME, DOWNLOAD_PAGE) from None
    if len(data) < DEPTH_HEADER.size:
        raise AnnotationError(
            f"{path}: truncated depth file: {len(data)} bytes, shorter than the {DEPTH_HEADER.size}-byte header", path
        )
    header = DEPTH_HEADER.unpack_from(data)
    width, height, left, top, right, bottom = header
    if not (left <= right <= width and top <= bottom <= height):
        raise AnnotationError(
            f"{path}: box (left {left}, top {top}, right {right}, bottom {bottom}) does not fit the "
            f"{width} x {height} image",
            path,
        )
    box_hw = (bottom - top, right - left)
    expected = DEPTH_HEADER.size + 4 * box_hw[0] * box_hw[1]
    if len(data) != expected:
        what = "truncated depth file" if len(data) < expected else "depth file longer than its box"
        raise AnnotationError(
            f"{path}: {what}: expected {expected} bytes ({DEPTH_HEADER.size}-byte header + {box_hw[0]} x {box_hw[1]} "
            f"float32), found {len(data)}",
            path,
        )
    box = np.frombuffer(data, dtype="<f4", offset=DEPTH_HEADER.size).reshape(box_hw).astype(np.float32)
    return header, box


def read_depth_bin(path: str | os.PathLike[str], width: int = 320, height: int = 240) -> np.ndarray:
    """A full depth map from a ``_depth.bin`` file: its box pasted into a zero frame.

    Args:
        path: the file (module docstring: 6 x uint32 header, then the box's float32 depths, row-major).
        width, height: the image size the header must state (MSRA: 320 x 240).

    Returns:
        (height, width) float32 depth mm, 0 = no depth; box pixel (r, c) at image pixel (top + r, left + c).

    Raises:
        MissingAnnotationError / AnnotationError: as `read_depth_box`, and for a header whose image size is not
            width x height, or a depth that is negative or not finite.
    """
    path = Path(path)
    (image_width, image_height, left, top, right, bottom), box = read_depth_box(path)
    if (image_width, image_height) != (width, height):
        raise AnnotationError(
            f"{path}: the header states a {image_width} x {image_height} image, expected {width} x {height}", path
        )
    if not np.isfinite(box).all() or (box < 0).any():
        raise AnnotationError(f"{path}: depth values must be finite and non-negative", path)
    depth_mm = np.zeros((height, width), dtype=np.float32)
    depth_mm[top:bottom, left:right] = box
    return depth_mm


# --- centre files ---------------------------------------------------------------------------------------------------
def read_refined_centers(path: str | os.PathLike[str]) -> np.ndarray:
    """V2V-PoseNet's refined hand centres, one per frame, in our camera frame.

    Args:
        path: a ``center_{train,test}_{k}_refined.txt``: per line 'x y z' (mm, V2V's world: y up, z the depth) or
            'invalid'; blank lines after the last frame are ignored.

    Returns:
        (N, 3) float32 camera-frame mm ((x, -y, z) of the file), a NaN row for each 'invalid' line.

    Raises:
        MissingAnnotationError: no such file.
        AnnotationError: naming the file and the line, for a line that is neither.
    """
    path = Path(path)
    lines = _read_lines(path, CENTER_DOWNLOAD_PAGE)
    while lines and not lines[-1].strip():
        lines.pop()
    centers = np.full((len(lines), 3), np.nan, dtype=np.float64)
    for index, line in enumerate(lines):
        values = line.split()
        if values == ["invalid"]:
            continue  # upstream skips the frame; the NaN row keeps the line count
        bad = AnnotationError(f"{path}, line {index + 1}: expected 'x y z' or 'invalid', got {line[:60]!r}", path)
        if len(values) != 3:
            raise bad
        try:
            centers[index] = [float(v) for v in values]
        except ValueError:
            raise bad from None
        if not np.isfinite(centers[index]).all():
            raise AnnotationError(f"{path}, line {index + 1}: a value is not finite", path)
    return msra_world_to_camera(centers)


# --- frames and folds -----------------------------------------------------------------------------------------------
def list_frames(root: str | os.PathLike[str], subject: int) -> list[MSRAFrame]:
    """Every frame of one subject, in the upstream order (gesture folders in `GESTURES` order, then frames).

    Reads only the first line (the frame count) of each ``joint.txt``; the depth files are not opened.

    Raises:
        MissingAnnotationError: a gesture folder's ``joint.txt`` is missing (all 17 are part of the release).
        AnnotationError: a bad frame count.
    """
    _check_subject(subject)
    frames = []
    for gesture in GESTURES:
        count = read_frame_count(joint_file(root, subject, gesture))
        frames += [MSRAFrame(subject, gesture, i, depth_file(root, subject, gesture, i)) for i in range(count)]
    return frames


def fold_subjects(test_subject: int, split: str) -> tuple[int, ...]:
    """The subjects of one split of fold ``test_subject``: 'train' all others, 'test' that one."""
    _check_subject(test_subject)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return (test_subject,) if split == "test" else tuple(s for s in range(SUBJECTS) if s != test_subject)


def list_fold_frames(root: str | os.PathLike[str], test_subject: int, split: str) -> list[MSRAFrame]:
    """Every frame of a fold's split, in the order of its centre file's lines."""
    return [frame for subject in fold_subjects(test_subject, split) for frame in list_frames(root, subject)]


def load_fold(
    root: str | os.PathLike[str], test_subject: int, split: str, center_dir: str | os.PathLike[str] | None = None
) -> MSRAFold:
    """The frames, joints and centres of one split of fold ``test_subject``, aligned line by line.

    Args:
        root: the release folder (P0..P8).
        test_subject: k, 0..8.
        split: 'train' or 'test'.
        center_dir: the folder of the centre files; None: ``root/center`` (`CENTER_DIR`).

    Returns:
        The fold; frames with an 'invalid' centre are kept, with a NaN centre (``fold.valid`` is False there).

    Raises:
        MissingAnnotationError / AnnotationError: as the readers, and when the centre file's line count differs
            from the fold's frame count (V2V's centres list the original release's frames; a later download of
            MSRA dropped some frames, and the lines would no longer match their frames).
    """
    root = Path(root)
    frames = list_fold_frames(root, test_subject, split)
    centers_path = center_file(root / CENTER_DIR if center_dir is None else center_dir, split, test_subject)
    centers_mm = read_refined_centers(centers_path)
    if len(centers_mm) != len(frames):
        raise AnnotationError(
            f"{centers_path}: {len(centers_mm)} centre lines, but the {split} frames of fold {test_subject} (subjects "
            f"{', '.join(f'P{s}' for s in fold_subjects(test_subject, split))}) number {len(frames)}",
            centers_path,
        )
    joints = []
    for subject in fold_subjects(test_subject, split):
        for gesture in GESTURES:
            joints.append(read_joint_txt(joint_file(root, subject, gesture)))
    joints_mm = np.concatenate(joints) if joints else np.zeros((0, NUM_JOINTS, 3), dtype=np.float32)
    return MSRAFold(test_subject, split, frames, joints_mm, centers_mm)
