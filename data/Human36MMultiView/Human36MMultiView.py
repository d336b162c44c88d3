"""Human3.6M seen by its 4 cameras at once, read from learnable triangulation's multi-view labels file.

Layout under the dataset root (data.dataset_roots['Human36MMultiView'] or <data_dir>/Human36MMultiView/data)::

    processed/<S>/<Action>-<trial>/imageSequence/<camera>/img_<frame_idx + 1:06d>.jpg       as filmed (distorted)
    processed/<S>/<Action>-<trial>/imageSequence-undistorted/<camera>/img_<frame_idx + 1:06d>.jpg
    <multiview.labels_path>   default extra/human36m-multiview-labels-GTbboxes.npy: np.save of a dict
        subject_names, camera_names, action_names   lists of str ('S1'; '54138969'; 'Directions-1')
        cameras   structured (n_subjects, n_cameras): R (3, 3), t (3, 1) mm (x_cam = R X + t), K (3, 3) pixels,
                  dist (5,) k1 k2 p1 p2 k3
        table     structured (n_frames,): subject_idx, action_idx, frame_idx (0-based; files are numbered from 1),
                  keypoints (17, 3) world mm (z up), bbox_by_camera_tlbr (n_cameras, 4) top, left, bottom, right;
                  a zero box: that camera has no image of the frame (S11 Directions-2 lacks 54138969)

The labels file is a pickle inside a .npy: it is read with the restricted unpickler of
common/body_models/pickle_io.py (numpy arrays and plain containers only), never with numpy's pickle-enabled load.

Splits: train S1, S5, S6, S7, S8; test S9, S11 (every multiview.retain_every_n_frames_in_test-th frame of the
table's test rows). multiview.with_damaged_actions false leaves out S9's Greeting-2, SittingDown-2 and Waiting-1,
whose labels are damaged. multiview.undistort_images (default true) reads imageSequence-undistorted/ with cameras
without distortion, as the seed does; false reads imageSequence/ and hands the distortion over in
meta_info['camera_dist'] (the projection matrices stay pinhole, as the seed's). The frame index of a sample is its
row in the labels table. Joints: the 17 of the labels file, in its order (`JOINT_NAMES`), pelvis = 6.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from common.body_models.files import UnreadableBodyModelFileError
from common.body_models.pickle_io import load_npy
from common.geometry.multiview_camera import Camera
from data.multiview import FrameTable, MultiViewDataset, View
from data.record import AnnotationError, MissingAnnotationError

__all__ = ["Human36MMultiView", "read_labels"]

CAMERA_FIELDS = {"R": 9, "t": 3, "K": 9, "dist": 5}  # field -> values per camera
TABLE_FIELDS = ("subject_idx", "action_idx", "frame_idx", "keypoints", "bbox_by_camera_tlbr")
LIST_KEYS = ("subject_names", "camera_names", "action_names")
_PATH_NAME = re.compile(r"[A-Za-z0-9_\- ]+")  # 'S1', '54138969', 'Directions-1', 'Walking Dog-2'; no '/', '.'


def _structured(labels: dict, key: str, fields: Any, ndim: int, path: Path) -> np.ndarray:
    value = labels[key]
    names = getattr(getattr(value, "dtype", None), "names", None) or ()
    if not isinstance(value, np.ndarray) or value.ndim != ndim or not set(fields) <= set(names):
        found = f"{type(value).__name__} {getattr(value, 'dtype', '')}"
        raise AnnotationError(f"{path}: {key!r} must be a {ndim}-D structured array with fields {', '.join(fields)}, "
                              f"got {found}", path)  # fmt: skip
    return value


def read_labels(path: Path) -> dict[str, Any]:
    """The labels dict of a multi-view labels file, checked key by key.

    Raises:
        AnnotationError: naming the file and what is wrong (refused or unreadable pickle, missing key, wrong
            shape, an index out of range).
    """
    try:
        array = load_npy(path)
    except UnreadableBodyModelFileError as err:  # the body-model loaders' error: say what this file is
        raise AnnotationError(f"{path}: not a usable multi-view labels file: {err.problem}", path) from err
    labels = array[()] if array.dtype == object and array.shape == () else None
    if not isinstance(labels, dict) or not {*LIST_KEYS, "cameras", "table"} <= set(labels):
        raise AnnotationError(f"{path}: expected a saved dict with keys {', '.join((*LIST_KEYS, 'cameras', 'table'))}",
                              path)  # fmt: skip
    for key in LIST_KEYS:
        if not isinstance(labels[key], list | tuple) or not all(isinstance(n, str) for n in labels[key]):
            raise AnnotationError(f"{path}: {key!r} must be a list of names", path)
        # The names become folder names of image paths: a name with a separator or '..' could leave the root.
        unsafe = [n for n in labels[key] if not _PATH_NAME.fullmatch(n)]
        if unsafe:
            raise AnnotationError(f"{path}: {key!r} holds names that are not plain folder names: {unsafe[:3]}", path)
    cameras = _structured(labels, "cameras", CAMERA_FIELDS, 2, path)
    table = _structured(labels, "table", TABLE_FIELDS, 1, path)
    shape = (len(labels["subject_names"]), len(labels["camera_names"]))
    if cameras.shape != shape or any(cameras[f][0, 0].size != n for f, n in CAMERA_FIELDS.items()):
        raise AnnotationError(f"{path}: 'cameras' must be (subjects, cameras) = {shape} with R 3x3, t 3, K 3x3, "
                              f"dist 5, got {cameras.shape}", path)  # fmt: skip
    if table["keypoints"].shape[1:] != (17, 3) or table["bbox_by_camera_tlbr"].shape[1:] != (shape[1], 4):
        found = f"{table['keypoints'].shape}, {table['bbox_by_camera_tlbr'].shape}"
        raise AnnotationError(f"{path}: table 'keypoints' must be (N, 17, 3) and 'bbox_by_camera_tlbr' "
                              f"(N, {shape[1]}, 4), got {found}", path)  # fmt: skip
    for field, names in (("subject_idx", "subject_names"), ("action_idx", "action_names")):
        column = table[field].astype(np.int64)
        if len(column) and (column.min() < 0 or column.max() >= len(labels[names])):
            raise AnnotationError(f"{path}: table {field!r} outside 0..{len(labels[names]) - 1}", path)
    return labels


def merged_action(name: str) -> str:
    """'Directions-1' -> 'Directions': per-action tables merge the two trials, as the seed's."""
    return re.sub(r"-\d+$", "", name)


class Human36MMultiView(MultiViewDataset):
    """Human3.6M multi-view frames of the labels file (see the module docstring)."""

    NAME: ClassVar[str] = "Human36MMultiView"
    DOWNLOAD_PAGE: ClassVar[str] = (
        "http://vision.imar.ro/human3.6m (images: anibali/h36m-fetch; labels: learnable-triangulation-pytorch's "
        "mvn/datasets/human36m_preprocessing)"
    )
    # The labels file's order: Human3.6M 32-joint indices 3, 2, 1, 6, 7, 8, 0, 12, 13, 15, 27, 26, 25, 17, 18, 19, 14,
    # named as common.utils.metrics.H36M_JOINTS names those rows of the 17-joint regressor.
    JOINT_NAMES: ClassVar[tuple[str, ...]] = (
        "R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle", "Pelvis", "Torso", "Neck", "Head_top", "R_Wrist",
        "R_Elbow", "R_Shoulder", "L_Shoulder", "L_Elbow", "L_Wrist", "Head",
    )  # fmt: skip
    PELVIS_INDEX: ClassVar[int] = 6
    VERTICAL_AXIS: ClassVar[int] = 2  # Human3.6M's world is z up
    SUBJECTS: ClassVar[dict[str, tuple[str, ...]]] = {"train": ("S1", "S5", "S6", "S7", "S8"), "test": ("S9", "S11")}
    DAMAGED_ACTIONS: ClassVar[dict[str, tuple[str, ...]]] = {"S9": ("Greeting-2", "SittingDown-2", "Waiting-1")}
    IMAGES_DIR: ClassVar[str] = "processed"

    def load_table(self) -> FrameTable:
        path = self.root / self.mv.labels_path
        if not path.is_file():
            raise MissingAnnotationError(path, self.NAME, self.DOWNLOAD_PAGE)
        labels = read_labels(path)
        self.labels_path = path
        self.subject_names, self.action_names = list(labels["subject_names"]), list(labels["action_names"])
        self.camera_names = list(labels["camera_names"])
        self.cameras = self._cameras(labels["cameras"], path)
        table = labels["table"]
        self.subject_idx, self.action_idx = table["subject_idx"].astype(np.int64), table["action_idx"].astype(np.int64)
        self.frame_idx = table["frame_idx"].astype(np.int64)
        self.boxes_tlbr = table["bbox_by_camera_tlbr"].astype(np.int64)
        split_subjects = {i for i, name in enumerate(self.subject_names) if name in self.SUBJECTS[self.split]}
        in_split = np.isin(self.subject_idx, sorted(split_subjects))
        if not self.mv.with_damaged_actions:
            for subject, actions in self.DAMAGED_ACTIONS.items():
                damaged = [i for i, name in enumerate(self.action_names) if name in actions]
                is_subject = self.subject_idx == (self.subject_names.index(subject) if subject in self.subject_names
                                                  else -1)  # fmt: skip
                in_split &= ~(is_subject & np.isin(self.action_idx, damaged))
        merged = list(dict.fromkeys(merged_action(name) for name in self.action_names))
        action_of = np.array([merged.index(merged_action(name)) for name in self.action_names], dtype=np.int64)
        joints = table["keypoints"].astype(np.float32)
        self.kept_cameras = [k for k, name in enumerate(self.camera_names) if name not in self.mv.ignore_cameras]
        return FrameTable(joints_world_mm=joints, joints_valid=np.ones(joints.shape[:2], dtype=np.float32),
                          action_index=action_of[self.action_idx], action_names=tuple(merged), in_split=in_split,
                          source=str(path))  # fmt: skip

    def _cameras(self, cameras: np.ndarray, path: Path) -> list[list[Camera]]:
        result = []
        for s, subject in enumerate(self.subject_names):
            row = []
            for k, name in enumerate(self.camera_names):
                entry = cameras[s, k]
                # Undistorted images (the default) are pinhole images: their cameras have no distortion.
                dist = None if self.mv.undistort_images else entry["dist"].reshape(5)
                try:
                    row.append(Camera(entry["R"], entry["t"].reshape(3), entry["K"], dist, f"{subject}/{name}"))
                except ValueError as err:
                    raise AnnotationError(f"{path}: cameras[{s}, {k}] ({subject}, {name}): {err}", path) from err
            result.append(row)
        return result

    def views(self, row: int) -> list[View]:
        subject, action = self.subject_names[self.subject_idx[row]], self.action_names[self.action_idx[row]]
        sequence = "imageSequence-undistorted" if self.mv.undistort_images else "imageSequence"
        folder = self.root / self.IMAGES_DIR / subject / action / sequence
        views = []
        for k in self.kept_cameras:
            top, left, bottom, right = (int(v) for v in self.boxes_tlbr[row, k])
            box = None if bottom <= top or right <= left else np.array([left, top, right, bottom], dtype=np.float64)
            image = folder / self.camera_names[k] / f"img_{int(self.frame_idx[row]) + 1:06d}.jpg"
            views.append(View(image, self.cameras[self.subject_idx[row]][k], box))
        return views
