"""Human3.6M in the upstream Integral-regression layout: one folder per video with an ``h36m_meta.mat`` and its frames.

Layout under the dataset root (the layout of mks0601's Integral-Human-Pose-Regression code, whose MATLAB
preprocessing script writes it from the official release)::

    data/s_{S:02d}_act_{A:02d}_subact_{B:02d}_ca_{C:02d}/       one video: subject S, action A (2..16),
                                                                subaction B (1, 2), camera C (1..4)
        h36m_meta.mat                                           scipy.io.loadmat keys:
            pose3d_world  (N, 17, 3) world joints, millimetres, H36M order (`H36M_JOINTS`)
            R             (3, 3) rotation world -> camera
            T             (3,) / (1, 3) / (3, 1) the camera centre in the world frame, millimetres
            f             (2,) / (1, 2) focal length (fx, fy), pixels
            c             (2,) / (1, 2) principal point (cx, cy), pixels
            img_width, img_height   (N,) / (N, 1) per-frame image size in pixels (a single value is accepted)
        <folder>_{n + 1:06d}.jpg                                frame n (0-based row of pose3d_world), numbered
                                                                from 1 in the file name as upstream

Camera convention (upstream ``process_world_coordinate`` and the preprocessing script's sanity check
``K * R * (X - T)``): ``X_cam = R @ (X_world - T)``; pixels ``u = fx * X / Z + cx``, ``v = fy * Y / Z + cy``, no
distortion. T is the camera centre, not the translation of ``X_cam = R X + t`` (that one is ``t = -R @ T``).

Samples (upstream): every ``step``-th frame of each video (train 5, test 64); the video
``s_11_act_02_subact_02_ca_01`` is corrupt in the official release and skipped (`CORRUPT_VIDEOS`). Each frame also
gets the Thorax joint, the mean of the shoulders (`UPSTREAM_JOINTS`): used to align with MPII, not evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.utils.augmentation import get_bbox, process_bbox
from common.utils.metrics import H36M_JOINTS
from data.record import AnnotationError, CameraParams, Record

__all__ = ["ACTION_NAMES", "CORRUPT_VIDEOS", "META_FILE", "UPSTREAM_JOINTS", "UpstreamMeta", "UpstreamVideo",
           "frame_path", "has_upstream_layout", "list_videos", "read_meta", "upstream_records"]  # fmt: skip

META_FILE = "h36m_meta.mat"
DATA_SUBDIR = "data"
UPSTREAM_JOINTS: tuple[str, ...] = (*H36M_JOINTS, "Thorax")
"""The 17 H36M joints (file order) and Thorax = mean of L_Shoulder and R_Shoulder (alignment only, not evaluated)."""
CORRUPT_VIDEOS: frozenset[str] = frozenset({"s_11_act_02_subact_02_ca_01"})
"""Skipped as upstream: subject 11, Directions, subaction 2, camera 1 (the release's broken video)."""
ACTION_NAMES: dict[int, str] = dict(enumerate((
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases", "Sitting", "SittingDown",
    "Smoking", "Photo", "Waiting", "Walking", "WalkDog", "WalkTogether"), start=2))  # fmt: skip
"""Action index (2..16, as in the folder names) -> name, in the order of the per-action tables."""
_FOLDER = re.compile(r"s_(\d+)_act_(\d+)_subact_(\d+)_ca_(\d+)")
_MM = 1000.0


@dataclass(frozen=True)
class UpstreamVideo:
    """One video folder: its path and the indices its name holds."""

    path: Path
    subject: int
    action: int
    subaction: int
    camera: int

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class UpstreamMeta:
    """The content of one h36m_meta.mat (see the module docstring for units and the camera convention).

    Attributes:
        joints_world_mm: (N, 17, 3) float64. R: (3, 3). T: (3,) mm, camera centre. f, c: (2,) pixels.
        img_hw: (N, 2) int (height, width) per frame.
    """

    joints_world_mm: np.ndarray
    R: np.ndarray
    T: np.ndarray
    f: np.ndarray
    c: np.ndarray
    img_hw: np.ndarray

    def camera(self) -> CameraParams:
        """The framework's camera: ``X_cam = R X_world + t`` with t = -R T in metres."""
        return CameraParams(focal=self.f.copy(), princpt=self.c.copy(), R=self.R.copy(), t=-(self.R @ self.T) / _MM)


def parse_video_name(name: str) -> tuple[int, int, int, int] | None:
    """(subject, action, subaction, camera) of a folder name ``s_XX_act_XX_subact_XX_ca_XX``, else None."""
    match = _FOLDER.fullmatch(name)
    return None if match is None else tuple(int(g) for g in match.groups())  # type: ignore[return-value]


def has_upstream_layout(root: Path) -> bool:
    """Whether ``root/data`` holds at least one video folder with its h36m_meta.mat."""
    data_dir = Path(root) / DATA_SUBDIR
    if not data_dir.is_dir():
        return False
    return any(parse_video_name(p.parent.name) is not None for p in data_dir.glob(f"s_*/{META_FILE}"))


def list_videos(root: Path, subjects: Iterable[int], skip: Iterable[str] = CORRUPT_VIDEOS) -> list[UpstreamVideo]:
    """The video folders of ``subjects`` under ``root/data`` that hold an h36m_meta.mat, sorted by name.

    Folders whose name is not ``s_XX_act_XX_subact_XX_ca_XX`` are ignored; those in ``skip`` are left out.
    """
    wanted, skipped = set(subjects), set(skip)
    videos = []
    for meta in sorted((Path(root) / DATA_SUBDIR).glob(f"s_*/{META_FILE}")):
        ids = parse_video_name(meta.parent.name)
        if ids is None or ids[0] not in wanted or meta.parent.name in skipped:
            continue
        videos.append(UpstreamVideo(meta.parent, *ids))
    return videos


def frame_path(video: UpstreamVideo, frame: int) -> Path:
    """The image of 0-based frame ``frame``: ``<folder>/<folder>_<frame + 1:06d>.jpg`` (numbered from 1 as upstream)."""
    return video.path / f"{video.name}_{frame + 1:06d}.jpg"


def _array(data: dict, key: str, size: int | None, path: Path) -> np.ndarray:
    if key not in data:
        expected = "pose3d_world, R, T, f, c, img_width, img_height"
        raise AnnotationError(f"{path}: no {key!r} (expected keys {expected})", path)
    try:
        value = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise AnnotationError(f"{path}: {key!r} is not numeric", path) from None
    if size is not None and value.size != size:
        raise AnnotationError(f"{path}: {key!r} has {value.size} values, expected {size}", path)
    return value


def read_meta(path: Path) -> UpstreamMeta:
    """Read one h36m_meta.mat (scipy.io.loadmat); AnnotationError names the file and the key at fault."""
    import scipy.io  # only this layout needs scipy

    path = Path(path)
    try:
        data = scipy.io.loadmat(str(path))
    except Exception as err:  # scipy raises ValueError, TypeError or its own MatReadError for a bad file
        raise AnnotationError(f"{path}: not a readable .mat file ({type(err).__name__}: {err})", path) from err
    joints = _array(data, "pose3d_world", None, path)
    if joints.ndim != 3 or joints.shape[1:] != (len(H36M_JOINTS), 3):
        raise AnnotationError(f"{path}: 'pose3d_world' has shape {joints.shape}, expected (N, 17, 3)", path)
    num = joints.shape[0]
    sizes = []
    for key in ("img_height", "img_width"):
        value = _array(data, key, None, path).reshape(-1)
        if value.size not in (1, num):
            raise AnnotationError(f"{path}: {key!r} has {value.size} values for {num} frames", path)
        sizes.append(np.broadcast_to(value, (num,)))
    return UpstreamMeta(
        joints_world_mm=joints,
        R=_array(data, "R", 9, path).reshape(3, 3),
        T=_array(data, "T", 3, path).reshape(3),
        f=_array(data, "f", 2, path).reshape(2),
        c=_array(data, "c", 2, path).reshape(2),
        img_hw=np.stack(sizes, axis=1).round().astype(int),
    )


def with_thorax(joints: np.ndarray) -> np.ndarray:
    """(..., 17, C) -> (..., 18, C): the Thorax row appended, the mean of the shoulders."""
    shoulders = joints[..., [H36M_JOINTS.index("L_Shoulder"), H36M_JOINTS.index("R_Shoulder")], :]
    return np.concatenate([joints, shoulders.mean(axis=-2, keepdims=True)], axis=-2)


def upstream_records(root: Path, subjects: Sequence[int], step: int, cameras: Iterable[int] | None = None,
                     aspect_ratio: float | None = None) -> list[Record]:  # fmt: skip
    """One record per kept frame of the videos of ``subjects``: every ``step``-th frame (0, step, 2 step, ...).

    Args:
        root: the dataset root (it holds data/).
        subjects: the split's subjects.
        step: the frame subsampling.
        cameras: the cameras to keep; None: all.
        aspect_ratio: the network input's width / height for `process_bbox`; None: its default.

    Returns:
        Records with joints_cam (18, 3) metres in the camera frame, joints_xy_img (18, 2) their projection,
        joints_valid ones, is_3D True, cam (R, t world -> camera in metres) and the box of the projected joints;
        info: subject, action (index 2..16), action_name, subaction, camera, frame (0-based), video.
    """
    records = []
    for video in list_videos(root, subjects):
        if cameras is not None and video.camera not in set(cameras):
            continue
        meta = read_meta(video.path / META_FILE)
        cam = meta.camera()
        joints_cam_m = with_thorax(np.einsum("ij,nkj->nki", meta.R, meta.joints_world_mm - meta.T) / _MM)
        for frame in range(0, len(joints_cam_m), step):
            joints = joints_cam_m[frame]
            xy = cam.project(joints)
            valid = np.ones(len(UPSTREAM_JOINTS))
            height, width = (int(v) for v in meta.img_hw[frame])
            options = {} if aspect_ratio is None else {"aspect_ratio": aspect_ratio}
            bbox = process_bbox(get_bbox(xy, valid), width, height, **options)
            if bbox is None:  # the person is outside the image
                continue
            records.append(Record(
                img_path=frame_path(video, frame), img_hw=(height, width), bbox_xywh_img=bbox, cam=cam,
                joints_xy_img=xy, joints_cam=joints, joints_valid=valid, is_3D=True,
                info={"subject": video.subject, "action": video.action,
                      "action_name": ACTION_NAMES.get(video.action, str(video.action)), "subaction": video.subaction,
                      "camera": video.camera, "frame": frame, "video": video.name},
            ))  # fmt: skip
    return records
