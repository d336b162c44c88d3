"""Multi-view samples (the triangulation family): the sample contract, `collate_multiview`, and `MultiViewDataset`.

One sample is one frame of a label table seen by V calibrated cameras (`MultiViewDataset.__getitem__`)::

    inputs['images']        (V, 3, H, W) float32  ImageNet mean/std normalised RGB; H x W = multiview.image_shape.
                                                  Each view is its person box, made square (upstream's integer
                                                  rule), scaled by multiview.scale_bbox, cut out (zeros outside the
                                                  image) and resized (cv2, INTER_AREA when shrinking).
    inputs['view_mask']     (V,) bool             False: no view (zero box in the labels, or padding by the collate).
    targets['joints_world_mm']  (J, 3) float32    world millimetres (Human3.6M: z up; CMU Panoptic: y down).
    targets['joints_valid']     (J,) float32      1 = annotated.
    meta_info['proj_matrices']  (V, 3, 4) float32 world mm -> pixels of the H x W input: K [R | t] of the camera
                                                  updated for the crop and the resize; no distortion.
    meta_info['camera_K']   (V, 3, 3) float32     that camera's intrinsics (pixels of the input).
    meta_info['camera_R']   (V, 3, 3) float32     world -> camera rotation: x_cam = R x_world + t.
    meta_info['camera_t']   (V, 3) float32        millimetres.
    meta_info['camera_dist']  (V, 5) float32      k1 k2 p1 p2 k3 of the input's pixels (crop and resize keep them);
                                                  zeros when the views are undistorted (Human3.6M's
                                                  imageSequence-undistorted, CMU crops undistorted while cut).
    meta_info['bbox_xyxy_img']  (V, 4) float32    the cut-out box in the image file's pixels (square, scaled).
    meta_info['frame_index']    () int64          the sample's row in the dataset's label table: stable across runs
                                                  (results.pkl is keyed by it).
    meta_info['cuboid_center_world_mm']  (3,) float32  the volumetric cuboid's centre: the GT pelvis
                                                  (`PELVIS_INDEX`; the mean of the valid joints when it is not
                                                  annotated), or the pelvis of an algebraic run's results.pkl
                                                  (multiview.pelvis_results_{train,test}).

Missing views (view_mask False) have zero images, zero matrices and zero boxes. The camera of a view maps pixel
centres as the crop does: u' = s (u - u0) for the crop's top-left u0 and scale s (`Camera.cropped`, `.resized`),
with cv2.resize's half-pixel convention folded into u0, so that projections land where the image shows a point.

`collate_multiview` stacks samples and pads the view axis (the keys in `VIEW_KEYS`) to the batch's largest V with
masked views. Test outputs a model returns: 'joints_world_mm' (B, J, 3) (and optionally 'joint_confidences'
(B, V, J), 'joints_2d_px' (B, V, J, 2)). `MultiViewDataset.evaluate` computes the relative (both skeletons minus
their pelvis) and absolute MPJPE per sample over the valid joints; `report` prints them per action (trials merged)
and writes ``<output_dir>/result/<NAME>/results.pkl`` ({'keypoints_3d': (N, J, 3) float32 mm, 'indexes': (N,) int64
frame indices, 'dataset': NAME}, the pelvis source of a volumetric run) and metrics.json.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from common.body_models.files import UnreadableBodyModelFileError
from common.body_models.pickle_io import load_pickle
from common.geometry.distortion import distort_points
from common.geometry.multiview_camera import Camera
from common.paths import resolve_repo_path
from common.utils.atomic_io import write_atomic
from common.utils.h36m_protocols import format_action_tables, per_action_table
from common.utils.image_io import read_image
from common.utils.metrics import report as report_metrics
from data.dataset import single_thread_opencv
from data.prediction_parts import load_parts, save_part
from data.record import AnnotationError

__all__ = ["VIEW_KEYS", "FrameTable", "MultiViewDataset", "View", "collate_multiview", "crop_box_xyxy", "crop_view",
           "joint_errors_mm", "read_results", "write_results"]  # fmt: skip

logger = logging.getLogger(__name__)

IMAGENET_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)
VIEW_KEYS: dict[str, tuple[str, ...]] = {
    "inputs": ("images", "view_mask"),
    "meta_info": ("proj_matrices", "camera_K", "camera_R", "camera_t", "camera_dist", "bbox_xyxy_img"),
}
"""The keys of each part of a sample whose first axis is the view axis (padded by `collate_multiview`)."""
RESULTS_FILE = "results.pkl"
PARTS_DIR = "multiview_parts"
MAX_SUPERSAMPLING = 2  # an undistorted crop is resampled at up to 2x the input size, then area-averaged down


# --- boxes and crops ------------------------------------------------------------------------------------------------
def crop_box_xyxy(box_xyxy: Sequence[float], scale: float) -> np.ndarray:
    """The cut-out box of a person box: made square, then scaled about its centre (upstream's integer rules).

    Args:
        box_xyxy: (left, top, right, bottom) pixels, right and bottom exclusive.
        scale: multiview.scale_bbox.

    Returns:
        (4,) int64 (left, top, right, bottom).
    """
    left, top, right, bottom = (int(round(float(v))) for v in box_xyxy)
    width, height = right - left, bottom - top
    if width > height:  # the longer side kept, the box centred on the same (integer) centre
        top = (top + bottom) // 2 - width // 2
        bottom = top + width
    else:
        left = (left + right) // 2 - height // 2
        right = left + height
    centre_x, centre_y = (left + right) // 2, (top + bottom) // 2
    new_width, new_height = int(scale * (right - left)), int(scale * (bottom - top))
    left, top = centre_x - new_width // 2, centre_y - new_height // 2
    return np.array([left, top, left + new_width, top + new_height], dtype=np.int64)


def _cut(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """image[top:bottom, left:right] with zeros where the box leaves the image."""
    left, top, right, bottom = (int(v) for v in box)
    out = np.zeros((bottom - top, right - left, *image.shape[2:]), dtype=image.dtype)
    height, width = image.shape[:2]
    y0, y1, x0, x1 = max(top, 0), min(bottom, height), max(left, 0), min(right, width)
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
    return out


def _undistorted_cut(image: np.ndarray, camera: Camera, box: np.ndarray, out_hw: tuple[int, int]) -> tuple:
    """The box of the undistorted image, sampled at ``out_hw`` pixels straight from the distorted ``image``."""
    pinhole = Camera(camera.R, camera.t, camera.K, None, camera.name)
    box_hw = (int(box[3] - box[1]), int(box[2] - box[0]))
    target = pinhole.cropped(box).resized(box_hw, out_hw)
    v, u = np.mgrid[0 : out_hw[0], 0 : out_hw[1]].astype(np.float64)
    K = target.K
    y = (v - K[1, 2]) / K[1, 1]
    x = (u - K[0, 2] - K[0, 1] * y) / K[0, 0]
    distorted = distort_points(np.stack([x, y], axis=-1), camera.dist)  # (h, w, 2) normalised, with the lens
    source = distorted @ camera.K[:2, :2].T + camera.K[:2, 2]  # pixels of the distorted image
    maps = source.astype(np.float32)
    cut = cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cut, target


def crop_view(
    image: np.ndarray, camera: Camera, box_xyxy: np.ndarray, out_hw: tuple[int, int], undistort: bool = False
) -> tuple[np.ndarray, Camera]:
    """Cuts a box out of an image and resizes it, with the camera of the result.

    Args:
        image: (H, W, 3) uint8 RGB, the image file as is.
        camera: its camera (pixels of ``image``).
        box_xyxy: (4,) integer (left, top, right, bottom) of ``image`` (`crop_box_xyxy`), any part outside it
            filled with zeros.
        out_hw: (h, w) of the result.
        undistort: remove the camera's lens distortion while cutting (the box is then in undistorted pixels);
            the returned camera has no distortion.

    Returns:
        The (h, w, 3) uint8 crop and its camera: `Camera.project` of a world point is where the crop shows it.
    """
    box = np.asarray(box_xyxy, dtype=np.int64)
    box_hw = (int(box[3] - box[1]), int(box[2] - box[0]))
    if min(box_hw) <= 0:
        raise ValueError(f"crop_view: empty box {box.tolist()}")
    if undistort and np.any(camera.dist):
        # Sampled at up to 2x the output and area-averaged down, so that a large box is not aliased.
        factor = int(min(MAX_SUPERSAMPLING, max(1, math.ceil(max(box_hw[0] / out_hw[0], box_hw[1] / out_hw[1])))))
        cut, cam = _undistorted_cut(image, camera, box, (out_hw[0] * factor, out_hw[1] * factor))
    else:
        cut, cam = _cut(image, box), camera.cropped(box)
    cut_hw = cut.shape[:2]
    if cut_hw != tuple(out_hw):
        shrink = cut_hw[0] > out_hw[0] or cut_hw[1] > out_hw[1]
        cut = cv2.resize(cut, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        # cv2.resize maps pixel centres u' = (u + 0.5) s - 0.5 = s (u - o) with o = 0.5 / s - 0.5, while
        # Camera.resized is u' = s u: the offset o is a crop of the camera by o first.
        offset_x, offset_y = 0.5 * cut_hw[1] / out_hw[1] - 0.5, 0.5 * cut_hw[0] / out_hw[0] - 0.5
        cam = cam.cropped((offset_x, offset_y, offset_x, offset_y)).resized(cut_hw, out_hw)
    return cut, cam


def normalize_image(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32, ImageNet mean/std normalised."""
    scaled = (rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN_RGB) / IMAGENET_STD_RGB
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 0, 1)))


# --- batching -------------------------------------------------------------------------------------------------------
def _pad_views(value: torch.Tensor, views: int) -> torch.Tensor:
    missing = views - value.shape[0]
    if missing == 0:
        return value
    return torch.cat([value, value.new_zeros((missing, *value.shape[1:]))])  # zeros; False for the view mask


def collate_multiview(samples: Sequence[tuple[dict, dict, dict]]) -> tuple[dict, dict, dict]:
    """Batches multi-view samples: tensors stacked (B, ...), the view axis padded to the batch's largest V.

    Args:
        samples: (inputs, targets, meta_info) of each sample, as `MultiViewDataset` returns them.

    Returns:
        (inputs, targets, meta_info): padded views have view_mask False and zero images, matrices and boxes.
        Values that are not tensors are gathered into lists.
    """
    if not samples:
        raise ValueError("collate_multiview: no samples")
    views = max(int(sample[0]["images"].shape[0]) for sample in samples)
    batch = []
    for part, name in enumerate(("inputs", "targets", "meta_info")):
        keys = list(samples[0][part])
        if any(list(sample[part]) != keys for sample in samples):
            raise ValueError(f"collate_multiview: the samples' {name} have different keys")
        collated = {}
        for key in keys:
            values = [sample[part][key] for sample in samples]
            if not all(isinstance(v, torch.Tensor) for v in values):
                collated[key] = values
                continue
            if key in VIEW_KEYS.get(name, ()):
                values = [_pad_views(v, views) for v in values]
            collated[key] = torch.stack(values)
        batch.append(collated)
    return batch[0], batch[1], batch[2]


# --- metrics and result files ---------------------------------------------------------------------------------------
def joint_errors_mm(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, pelvis_index: int) -> tuple:
    """Relative and absolute MPJPE of each sample, millimetres, over its valid joints.

    Args:
        pred, gt: (N, J, 3) world millimetres.
        valid: (N, J) 1 = annotated.
        pelvis_index: the joint both skeletons are aligned at for the relative error.

    Returns:
        (relative, absolute), each (N,) float64; NaN where no joint is valid (relative: or the pelvis is not).
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    mask = np.asarray(valid) > 0
    count = mask.sum(axis=1)
    with np.errstate(invalid="ignore"):  # 0 / 0 -> NaN where nothing is valid
        absolute = (np.linalg.norm(pred - gt, axis=-1) * mask).sum(axis=1) / count
        rel_pred = pred - pred[:, pelvis_index : pelvis_index + 1]
        rel_gt = gt - gt[:, pelvis_index : pelvis_index + 1]
        relative = (np.linalg.norm(rel_pred - rel_gt, axis=-1) * mask).sum(axis=1) / count
    relative[~mask[:, pelvis_index] | (count == 0)] = np.nan
    absolute[count == 0] = np.nan
    return relative, absolute


def write_results(path: Path, keypoints_3d_mm: np.ndarray, indexes: np.ndarray, dataset: str) -> Path:
    """Writes results.pkl: a pickle of plain numpy arrays, an int array and a str (readable by `read_results`)."""
    payload = {"keypoints_3d": np.asarray(keypoints_3d_mm, dtype=np.float32),
               "indexes": np.asarray(indexes, dtype=np.int64), "dataset": str(dataset)}  # fmt: skip
    return write_atomic(path, lambda file: pickle.dump(payload, file, protocol=4))


def read_results(path: Path) -> dict[str, Any]:
    """A results.pkl (`write_results`), through the restricted unpickler: nothing in it can run code.

    Returns:
        {'keypoints_3d': (N, J, 3) float64 mm, 'indexes': (N,) int64, 'dataset': str}.

    Raises:
        AnnotationError: naming the file: missing, unreadable, refused, or not of that layout.
    """
    if not path.is_file():
        raise AnnotationError(f"{path}: results file not found", path)
    try:
        content = load_pickle(path)
    except UnreadableBodyModelFileError as err:
        raise AnnotationError(f"{path}: not a usable results.pkl: {err.problem}", path) from err
    if not isinstance(content, dict) or not {"keypoints_3d", "indexes"} <= set(content):
        raise AnnotationError(f"{path}: expected a dict with 'keypoints_3d' and 'indexes' (a results.pkl)", path)
    keypoints = np.asarray(content["keypoints_3d"], dtype=np.float64)
    indexes = np.asarray(content["indexes"]).reshape(-1)
    if keypoints.ndim != 3 or keypoints.shape[2] != 3 or len(indexes) != len(keypoints):
        raise AnnotationError(f"{path}: 'keypoints_3d' {keypoints.shape} and 'indexes' {indexes.shape} do not match "
                              "(N, J, 3) and (N,)", path)  # fmt: skip
    if not np.issubdtype(indexes.dtype, np.integer):
        raise AnnotationError(f"{path}: 'indexes' must be integers, got {indexes.dtype}", path)
    return {"keypoints_3d": keypoints, "indexes": indexes.astype(np.int64), "dataset": str(content.get("dataset", ""))}


# --- the dataset ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class View:
    """One camera's view of a table row, as a dataset module reads it.

    Attributes:
        image_path: the image file.
        camera: its camera (pixels of the file; world millimetres).
        box_xyxy: (left, top, right, bottom) person box in the file's pixels (undistorted pixels when the dataset
            undistorts while cropping), or None: no view.
    """

    image_path: Path
    camera: Camera
    box_xyxy: np.ndarray | None


@dataclass
class FrameTable:
    """A dataset's label table: one row per multi-view frame.

    Attributes:
        joints_world_mm: (N, J, 3) float32 world millimetres.
        joints_valid: (N, J) float32, 1 = annotated.
        action_index: (N,) int64 index into action_names (per-action tables).
        action_names: the actions (Human3.6M: trials merged) or sequences (CMU Panoptic).
        in_split: (N,) bool, the rows of the dataset's split.
        source: the label file(s), as named in errors.
    """

    joints_world_mm: np.ndarray
    joints_valid: np.ndarray
    action_index: np.ndarray
    action_names: tuple[str, ...]
    in_split: np.ndarray
    source: str


class MultiViewDataset(Dataset):
    """The shared multi-view pipeline: a dataset module reads its label table and views; crops, view subsets,
    cuboid centres, evaluation and result files are done here. The sample contract is the module docstring's.

    Args:
        split: one of ``SPLITS``; 'train' draws random view subsets (multiview.min_views/max_views).
        cfg: the whole config (main.config.Config); `cfg.multiview` configures the readers.
        evaluation: the split is tested, not trained on (no random views), whatever its name.
    """

    NAME: ClassVar[str] = ""
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "test")
    TEST_SPLIT: ClassVar[str] = "test"
    DEFAULT_SUBDIR: ClassVar[str] = "data"  # the root is <data_dir>/<NAME>/data unless data.dataset_roots names one
    DOWNLOAD_PAGE: ClassVar[str] = ""
    JOINT_NAMES: ClassVar[tuple[str, ...]] = ()
    PELVIS_INDEX: ClassVar[int] = 0
    VERTICAL_AXIS: ClassVar[int] = 2  # the world axis along gravity (volumetric rotation augmentation)
    METRIC_LABELS: ClassVar[dict[str, str]] = {"mpjpe_relative": "MPJPE relative (pelvis-aligned)",
                                               "mpjpe_absolute": "MPJPE absolute (world)"}  # fmt: skip

    def __init__(self, split: str, cfg: Any, evaluation: bool = False) -> None:
        if split not in self.SPLITS:
            raise ValueError(f"{self.NAME}: unknown split {split!r}; accepted: {', '.join(self.SPLITS)}")
        self.split, self.is_train, self.cfg, self.mv = split, split == "train" and not evaluation, cfg, cfg.multiview
        single_thread_opencv()  # before any DataLoader forks workers from this process
        configured = cfg.data.dataset_roots.get(self.NAME)
        self.root = (
            resolve_repo_path(configured) if configured else Path(cfg.data_dir) / self.NAME / self.DEFAULT_SUBDIR
        )
        self.seed, self.epoch = cfg.train.seed, 0
        self.table = self.load_table()
        rows = np.flatnonzero(self.table.in_split)
        if split != "train":
            rows = rows[:: self.mv.retain_every_n_frames_in_test]
        if len(rows) == 0:
            raise AnnotationError(f"{self.table.source}: no {self.NAME} frames for split {split!r}")
        self.rows = rows.astype(np.int64)
        self.pelvis_world_mm = self._pelvis_from_results()
        logger.info("%s %s: %d frames from %s", self.NAME, split, len(self.rows), self.root)

    # --- what a dataset module implements ---------------------------------------------------------------------------
    def load_table(self) -> FrameTable:
        """Reads the label table (called once, in __init__)."""
        raise NotImplementedError

    def views(self, row: int) -> list[View]:
        """The views of table row ``row``, in camera order (ignored cameras left out)."""
        raise NotImplementedError

    @property
    def undistort_crops(self) -> bool:
        """Whether crops are undistorted while cut (datasets without undistorted image files)."""
        return False

    # --- samples ----------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch that seeds the random view subsets."""
        self.epoch = int(epoch)

    def _chosen_views(self, views: list[View], index: int) -> list[View]:
        """Training: a random subset of between min_views and max_views of the available views."""
        if not self.is_train or not self.mv.max_views:
            return views
        rng = np.random.default_rng([self.seed, self.epoch, index])
        count = int(rng.integers(self.mv.min_views, self.mv.max_views + 1))
        available = [k for k, view in enumerate(views) if view.box_xyxy is not None]
        chosen = sorted(rng.choice(available, size=min(count, len(available)), replace=False).tolist())
        return [views[k] for k in chosen]

    def __getitem__(self, index: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        row = int(self.rows[index])
        views = self._chosen_views(self.views(row), index)
        out_hw = tuple(self.mv.image_shape)
        count = len(views)
        images = torch.zeros((count, 3, *out_hw), dtype=torch.float32)
        mask = torch.zeros(count, dtype=torch.bool)
        proj, K, R = np.zeros((count, 3, 4)), np.zeros((count, 3, 3)), np.zeros((count, 3, 3))
        t, dist, boxes = np.zeros((count, 3)), np.zeros((count, 5)), np.zeros((count, 4))
        for k, view in enumerate(views):
            if view.box_xyxy is None:
                continue
            box = crop_box_xyxy(view.box_xyxy, self.mv.scale_bbox)
            crop, cam = crop_view(read_image(view.image_path), view.camera, box, out_hw, self.undistort_crops)
            images[k], mask[k] = normalize_image(crop), True
            proj[k], K[k], R[k], t[k], dist[k], boxes[k] = cam.projection_matrix(), cam.K, cam.R, cam.t, cam.dist, box
        joints = self.table.joints_world_mm[row]
        valid = self.table.joints_valid[row]
        inputs = {"images": images, "view_mask": mask}
        # Copies: a consumer that edits a sample in place must not edit the table.
        targets = {"joints_world_mm": torch.from_numpy(np.array(joints, np.float32)),
                   "joints_valid": torch.from_numpy(np.array(valid, np.float32))}  # fmt: skip
        meta = {name: torch.from_numpy(value.astype(np.float32)) for name, value in
                (("proj_matrices", proj), ("camera_K", K), ("camera_R", R), ("camera_t", t), ("camera_dist", dist),
                 ("bbox_xyxy_img", boxes))}  # fmt: skip
        meta["frame_index"] = torch.tensor(row, dtype=torch.int64)
        meta["cuboid_center_world_mm"] = torch.from_numpy(self.cuboid_center(row).astype(np.float32))
        return inputs, targets, meta

    def cuboid_center(self, row: int) -> np.ndarray:
        """(3,) world mm: the pelvis of the results file, else the GT pelvis (the valid joints' mean without it)."""
        if self.pelvis_world_mm is not None:
            return self.pelvis_world_mm[row]
        joints, valid = self.table.joints_world_mm[row], self.table.joints_valid[row] > 0
        if valid[self.PELVIS_INDEX] or not valid.any():
            return np.asarray(joints[self.PELVIS_INDEX], np.float64)
        return np.asarray(joints[valid], np.float64).mean(axis=0)

    def _pelvis_from_results(self) -> np.ndarray | None:
        """(N_table, 3) pelvis of every row of this split from multiview.pelvis_results_<split>, or None."""
        key = "pelvis_results_train" if self.split == "train" else "pelvis_results_test"
        if not getattr(self.mv, key):
            return None
        path = resolve_repo_path(getattr(self.mv, key))
        results = read_results(path)
        if results["dataset"] and results["dataset"] != self.NAME:
            raise AnnotationError(f"{path} (multiview.{key}): results of {results['dataset']}, not {self.NAME}", path)
        keypoints, indexes = results["keypoints_3d"], results["indexes"]
        if keypoints.shape[1] != len(self.JOINT_NAMES):
            raise AnnotationError(f"{path} (multiview.{key}): {keypoints.shape[1]} joints per frame, {self.NAME} has "
                                  f"{len(self.JOINT_NAMES)}", path)  # fmt: skip
        position = {int(frame): k for k, frame in enumerate(indexes)}
        missing = [int(row) for row in self.rows if int(row) not in position]
        if missing:
            raise AnnotationError(
                f"{path} (multiview.{key}) has no prediction for {len(missing)} of the {len(self.rows)} {self.NAME} "
                f"{self.split} frames of {self.table.source} (e.g. frame index {missing[0]}): it must come from a run "
                "over the same labels and frames (multiview.retain_every_n_frames_in_test, with_damaged_actions, "
                "sequences)", path)  # fmt: skip
        pelvis = np.zeros((len(self.table.in_split), 3))
        pelvis[self.rows] = keypoints[[position[int(row)] for row in self.rows], self.PELVIS_INDEX]
        return pelvis

    # --- evaluation -------------------------------------------------------------------------------------------------
    @property
    def eval_extras(self) -> tuple[tuple[str, str, str], ...]:
        """The ground truth the tester passes to `evaluate` beside the predictions: (where, key, name there)."""
        return (("targets", "joints_world_mm", "joints_world_mm_target"), ("targets", "joints_valid", "joints_valid"),
                ("meta_info", "frame_index", "frame_index"))  # fmt: skip

    def _result_dir(self, output_dir: str | os.PathLike[str]) -> Path:
        return Path(output_dir) / "result" / self.NAME

    def evaluate(self, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> dict[str, list[float]]:
        """Relative and absolute MPJPE (mm) of each output; each prediction is saved for `report`.

        Args:
            outs: per sample, the model's 'joints_world_mm' (J, 3) with the `eval_extras` ground truth.
            indices: the dataset index of each output.

        Returns:
            {'mpjpe_relative': [...], 'mpjpe_absolute': [...]}, samples without a defined error left out.
        """
        result: dict[str, list[float]] = {"mpjpe_relative": [], "mpjpe_absolute": []}
        parts = self._result_dir(self.cfg.output_dir) / PARTS_DIR
        for out, index in zip(outs, indices, strict=True):
            pred = np.asarray(out["joints_world_mm"], np.float64)
            frame = int(round(float(out["frame_index"])))  # the tester hands every value over as float32
            save_part(parts, index, keypoints_3d=pred.astype(np.float32), frame_index=np.int64(frame))
            relative, absolute = joint_errors_mm(pred[None], np.asarray(out["joints_world_mm_target"])[None],
                                                 np.asarray(out["joints_valid"])[None], self.PELVIS_INDEX)  # fmt: skip
            for key, value in (("mpjpe_relative", relative[0]), ("mpjpe_absolute", absolute[0])):
                if np.isfinite(value):
                    result[key].append(float(value))
        return result

    def report(self, eval_result: Mapping[str, Sequence[float]], output_dir: str | os.PathLike[str]) -> tuple:
        """The metrics table, per-action relative and absolute MPJPE, results.pkl and metrics.json.

        Returns:
            (the text of the tables, the metrics.json path).
        """
        parts = load_parts(self._result_dir(output_dir) / PARTS_DIR, len(self), self.NAME)
        extra: dict[str, Any] = {"split": self.split}
        action_text = ""
        if parts is not None:
            frames = parts["frame_index"].astype(np.int64).reshape(-1)
            pred = parts["keypoints_3d"]
            tables = self._action_tables(pred, frames)
            action_text = format_action_tables(tables, notes=(
                f"{self.NAME} {self.split}: MPJPE over the valid joints, mm; relative: both skeletons minus their "
                f"joint {self.PELVIS_INDEX} ({self.JOINT_NAMES[self.PELVIS_INDEX]}); absolute: world coordinates; "
                "Avg(frames) is the seed's headline number",))  # fmt: skip
            extra["per_action"] = {label: {row.name: row.error_mm for row in table.rows if row.frames}
                                   for label, table in tables.items()}  # fmt: skip
            extra["results"] = str(write_results(self._result_dir(output_dir) / RESULTS_FILE, pred, frames, self.NAME))
        table, path = report_metrics(eval_result, self.NAME, output_dir, labels=self.METRIC_LABELS, **extra)
        return (f"{table}\n{action_text}" if action_text else table), path

    def _action_tables(self, pred: np.ndarray, frames: np.ndarray) -> dict[str, Any]:
        relative, absolute = joint_errors_mm(pred, self.table.joints_world_mm[frames], self.table.joints_valid[frames],
                                             self.PELVIS_INDEX)  # fmt: skip
        actions = self.table.action_index[frames]
        tables = {}
        for label, errors in (("MPJPE_relative", relative), ("MPJPE_absolute", absolute)):
            ok = np.isfinite(errors)
            tables[label] = per_action_table(errors[ok], actions[ok], self.table.action_names)
        return tables
