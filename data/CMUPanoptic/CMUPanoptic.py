"""CMU Panoptic Studio: HD views of the dome with COCO-19 3D skeletons, read from the release's own files.

Layout under the dataset root (data.dataset_roots['CMUPanoptic'] or <data_dir>/CMUPanoptic/data), one folder per
sequence, as the panoptic-toolbox downloads and extracts it::

    <sequence>/calibration_<sequence>.json     {"cameras": [{"name": "PP_NN", "type": "hd" | "vga" | ...,
                                               "resolution": [W, H], "K": 3x3, "distCoef": 5 values (k1 k2 p1 p2 k3),
                                               "R": 3x3, "t": 3x1 centimetres}]}: x_cam = R X + t
    <sequence>/hdPose3d_stage1_coco19/body3DScene_<frame:08d>.json   {"bodies": [{"id", "joints19": 19 x (x, y, z,
                                               confidence)}]}: world centimetres, y down
    <sequence>/hdImgs/<PP_NN>/<PP_NN>_<frame:08d>.jpg                 the HD frames (distorted, as filmed)

Read as: every skeleton file of the split's sequences (multiview.cmu_train_sequences / cmu_test_sequences, in that
order, frames ascending) with at least one body, of which the **first body** is the sample (the seed's fork and
most single-person uses take one person per frame; multi-person frames give the first listed). Centimetres become
millimetres on load (positions and t). A joint is valid when its confidence is > 0 (the release writes -1 for an
unseen joint). The HD cameras read are multiview.cmu_cameras (empty: every 'hd' camera of the calibration) minus
multiview.ignore_cameras. The release has no person boxes: each view's box is the extent of the projected valid
joints enlarged by `BOX_MARGIN` (the joints stop short of the head top and the soles); a view where fewer than 2
joints lie in front of the camera, or whose box misses the image, is missing (view_mask False). With
multiview.undistort_images (default) each crop is undistorted while cut and its camera has no distortion;
otherwise the distorted crop and the distortion (meta_info['camera_dist']) are handed over.

The frame index of a sample is its row in the split's table (sequence order, then frame number). Joints: CMU's
COCO-19 order (`JOINT_NAMES`), pelvis = BodyCenter (2), the mid-hip point; the world is y down.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from common.geometry.multiview_camera import Camera
from data.annotation_io import read_json
from data.multiview import FrameTable, MultiViewDataset, View
from data.record import AnnotationError, MissingAnnotationError
from main.config_checks import ConfigError

__all__ = ["CMUPanoptic"]

_FRAME_FILE = re.compile(r"body3DScene_(\d+)\.json")


_PANEL_NODE = re.compile(r"\d{2}_\d{2}")  # an HD camera: panel 00, node NN


class CMUPanoptic(MultiViewDataset):
    """CMU Panoptic HD frames of the configured sequences (see the module docstring)."""

    NAME: ClassVar[str] = "CMUPanoptic"
    DOWNLOAD_PAGE: ClassVar[str] = "http://domedb.perception.cs.cmu.edu (panoptic-toolbox: getData.sh <sequence>)"
    JOINT_NAMES: ClassVar[tuple[str, ...]] = (
        "Neck", "Nose", "BodyCenter", "L_Shoulder", "L_Elbow", "L_Wrist", "L_Hip", "L_Knee", "L_Ankle", "R_Shoulder",
        "R_Elbow", "R_Wrist", "R_Hip", "R_Knee", "R_Ankle", "L_Eye", "L_Ear", "R_Eye", "R_Ear",
    )  # fmt: skip
    PELVIS_INDEX: ClassVar[int] = 2
    VERTICAL_AXIS: ClassVar[int] = 1  # CMU's world is y down
    POSE_DIR: ClassVar[str] = "hdPose3d_stage1_coco19"
    MM_PER_CM: ClassVar[float] = 10.0
    BOX_MARGIN: ClassVar[float] = 1.2  # the joints' extent times this: the head top and the soles lie beyond them

    @property
    def undistort_crops(self) -> bool:
        return bool(self.mv.undistort_images)

    def load_table(self) -> FrameTable:
        key = f"multiview.cmu_{self.split}_sequences"
        sequences = list(getattr(self.mv, f"cmu_{self.split}_sequences"))
        if not sequences:
            raise ConfigError(f"{key}: no CMU Panoptic sequence for the {self.split} split; name the sequence folders "
                              f"under {self.root}, e.g. {key}=[171204_pose1]", key)  # fmt: skip
        self.sequences = sequences
        self.sequence_cameras: list[list[tuple[str, Camera, tuple[int, int]]]] = []
        joints, valid, sequence_of, frame_of = [], [], [], []
        for s, sequence in enumerate(sequences):
            self.sequence_cameras.append(self._cameras(sequence))
            for frame, joints_mm, joints_valid in self._skeletons(sequence):
                joints.append(joints_mm)
                valid.append(joints_valid)
                sequence_of.append(s)
                frame_of.append(frame)
        self.frame_sequence, self.frame_number = np.array(sequence_of, np.int64), np.array(frame_of, np.int64)
        count = len(frame_of)
        return FrameTable(
            joints_world_mm=np.array(joints, np.float32).reshape(count, len(self.JOINT_NAMES), 3),
            joints_valid=np.array(valid, np.float32).reshape(count, len(self.JOINT_NAMES)),
            action_index=self.frame_sequence.copy(), action_names=tuple(sequences), in_split=np.ones(count, bool),
            source=f"{self.root}/{{{','.join(sequences)}}}/{self.POSE_DIR}",
        )  # fmt: skip

    def _required(self, path: Path) -> Path:
        if not path.exists():
            raise MissingAnnotationError(path, self.NAME, self.DOWNLOAD_PAGE)
        return path

    def _cameras(self, sequence: str) -> list[tuple[str, Camera, tuple[int, int]]]:
        """The sequence's chosen HD cameras: (name, camera in mm, (H, W) of its images)."""
        path = self._required(self.root / sequence / f"calibration_{sequence}.json")
        content = read_json(path)
        entries = content.get("cameras") if isinstance(content, dict) else None
        if not isinstance(entries, list):
            raise AnnotationError(f"{path}: expected a json object with a 'cameras' list", path)
        wanted, ignored = set(self.mv.cmu_cameras), set(self.mv.ignore_cameras)
        cameras = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or entry.get("type") != "hd":
                continue
            name = str(entry.get("name"))
            if not _PANEL_NODE.fullmatch(name):  # the name is a folder of the image paths: 'PP_NN' only
                raise AnnotationError(f"{path}: cameras[{index}]: name {name!r} is not a panel_node name 'PP_NN'",
                                      path)  # fmt: skip
            if (wanted and name not in wanted) or name in ignored:
                continue
            try:
                width, height = (int(v) for v in entry["resolution"])
                t_mm = np.asarray(entry["t"], dtype=np.float64).reshape(3) * self.MM_PER_CM
                camera = Camera(
                    entry["R"], t_mm, entry["K"], np.asarray(entry["distCoef"], np.float64).reshape(5), name
                )
            except (KeyError, TypeError, ValueError) as err:
                problem = f"{type(err).__name__}: {err}"
                raise AnnotationError(f"{path}: cameras[{index}] ({name}): expected resolution [W, H], K 3x3, "
                                      f"distCoef 5 values, R 3x3, t 3 values ({problem})", path) from err  # fmt: skip
            cameras.append((name, camera, (height, width)))
        missing = sorted(wanted - {name for name, _, _ in cameras} - ignored)
        if missing:
            raise AnnotationError(f"{path}: no HD camera {', '.join(missing)} (multiview.cmu_cameras)", path)
        if not cameras:
            raise AnnotationError(f"{path}: no HD camera left (multiview.cmu_cameras, multiview.ignore_cameras)", path)
        return cameras

    def _skeletons(self, sequence: str) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """(frame, (19, 3) joints mm, (19,) valid) of every skeleton file with a body, frames ascending."""
        folder = self._required(self.root / sequence / self.POSE_DIR)
        files = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _FRAME_FILE.fullmatch(p.name)))
        frames = []
        for frame, path in files:
            bodies = self._bodies(path)
            if not bodies:
                continue
            values = bodies[0].get("joints19") if isinstance(bodies[0], dict) else None
            try:
                joints = np.asarray(values, dtype=np.float64).reshape(len(self.JOINT_NAMES), 4)
            except (TypeError, ValueError):
                raise AnnotationError(f"{path}: bodies[0].joints19 must be 19 x (x, y, z, confidence) = 76 numbers",
                                      path) from None  # fmt: skip
            if not np.all(np.isfinite(joints)):
                raise AnnotationError(f"{path}: bodies[0].joints19 has non-finite values", path)
            frames.append((frame, joints[:, :3] * self.MM_PER_CM, (joints[:, 3] > 0).astype(np.float32)))
        return frames

    @staticmethod
    def _bodies(path: Path) -> list[Any]:
        content = read_json(path)
        bodies = content.get("bodies") if isinstance(content, dict) else None
        if not isinstance(bodies, list):
            raise AnnotationError(f"{path}: expected a json object with a 'bodies' list", path)
        return bodies

    def views(self, row: int) -> list[View]:
        sequence_index = int(self.frame_sequence[row])
        folder = self.root / self.sequences[sequence_index] / "hdImgs"
        frame = int(self.frame_number[row])
        points = self.table.joints_world_mm[row][self.table.joints_valid[row] > 0]
        views = []
        for name, camera, image_hw in self.sequence_cameras[sequence_index]:
            views.append(View(folder / name / f"{name}_{frame:08d}.jpg", camera, self._box(camera, points, image_hw)))
        return views

    def _box(self, camera: Camera, points_mm: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray | None:
        """The person box in the view's pixels (undistorted ones when crops are undistorted), or None: no view."""
        in_front = camera.world_to_camera(points_mm)[:, 2] > 0
        if in_front.sum() < 2:
            return None
        pixels = camera.project(points_mm[in_front], distort=not self.undistort_crops)
        low, high = pixels.min(axis=0), pixels.max(axis=0)
        centre, half = (low + high) / 2.0, (high - low) / 2.0 * self.BOX_MARGIN
        box = np.concatenate([centre - half, centre + half])
        height, width = image_hw
        if (
            box[2] - box[0] < 1
            or box[3] - box[1] < 1
            or box[2] <= 0
            or box[3] <= 0
            or box[0] >= width
            or box[1] >= height
        ):
            return None
        return box
