"""MSRA hand gestures (Sun et al., CVPR 2015) for the V2V family: depth maps, V2V-PoseNet's reference points, 21
hand joints; and the hand-joint evaluation and result files that the V2V family's datasets share.

Layout under the root (`data.dataset_roots={MSRA: DIR}`, default <data_dir>/MSRA/data): the release's P0..P8
folders and V2V-PoseNet's refined centre files in ``center/`` (data/MSRA/msra_files.py). The protocol is
leave-one-subject-out: `data.msra_test_subject` = k (0..8) holds subject k out; the 'train' split is the other eight
subjects' frames and reads ``center_train_{k}_refined.txt``, the 'test' split is subject k's and reads
``center_test_{k}_refined.txt``. Frames whose centre is 'invalid' are skipped, as upstream.

The sample (a `torch.utils.data.Dataset` item; the model voxelises and augments on its device, main/v2v_model.py):
    inputs['depth_mm']      (240, 320) float32 depth, mm; 0 = no depth
    inputs['ref_point_mm']  (3,) float32 the cube centre: the frame's refined centre, camera mm
    inputs['cube_mm']       (3,) float32 the cube's sides, mm (`v2v.cube_mm`, V2V's 200 mm)
    inputs['intrinsics']    (4,) float32 fx, fy, cx, cy pixels (MSRA's: 241.42, 241.42, 160, 120)
    targets['joints_mm']    (21, 3) float32 camera mm (x right, y down, z forward), `MSRA_JOINTS` order
    meta_info['frame_index'] () int64 the frame's line in its fold's centre file (upstream frame order)
    meta_info['aug_seed']   () int64 the sample's augmentation seed, from (train.seed, epoch, index)

Evaluation (`HandJointsDataset`): per frame the mean and the largest Euclidean joint error (mm); `report` prints
their means and each joint's mean error, writes result/<NAME>/metrics.json and the upstream result files: one line
per frame of J x 3 numbers, `test_res.txt` for the test split and `fit_res.txt` for the training split (the V2V port's
"fit result on training data"; `data.test_split=train`), in V2V's world axes (x right, y up, z forward, mm: the
frame of the port's files and of tool/gen_gt.py's ground truth, which tool/show_acc.py compares), and
`test_res_uvd.txt` / `fit_res_uvd.txt` with the joints as pixel (u, v) and depth (mm): the input of the hand-pose
evaluation tool that the paper's numbers come from (awesome-hand-pose-estimation).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import linear_sum_assignment
from torch.utils.data import Dataset

from common.paths import resolve_repo_path
from common.utils.atomic_io import write_atomic
from common.utils.metrics import report as report_metrics
from data.MSRA.msra_files import (
    DOWNLOAD_PAGE,
    MSRA_INTRINSICS,
    MSRA_JOINTS,
    camera_to_msra_world,
    load_fold,
    read_depth_bin,
)
from data.prediction_parts import load_parts, save_part
from data.record import AnnotationError

__all__ = ["JOINT_ERROR_LABELS", "MSRA", "MSRA_SKELETON", "HandJointsDataset", "match_unordered_joints"]

logger = logging.getLogger(__name__)

MSRA_SKELETON: tuple[tuple[int, int], ...] = tuple(
    (MSRA_JOINTS.names.index(parent), MSRA_JOINTS.names.index(f"{finger}_{k}"))
    for finger in ("Index", "Middle", "Ring", "Pinky", "Thumb")
    for k, parent in enumerate(("Wrist", *(f"{finger}_{k}" for k in (1, 2, 3))), start=1)
)
"""Bones of MSRA's hand: the wrist to each finger's MCP, then MCP -> PIP -> DIP -> TIP, as joint index pairs."""

JOINT_ERROR_LABELS: dict[str, str] = {
    "mean_joint_error": "Mean joint error",
    "max_joint_error": "Max joint error per frame",
}
"""The hand-joint metrics (mm) by key, as the printed table names them."""


def match_unordered_joints(pred_mm: np.ndarray, gt_mm: np.ndarray) -> np.ndarray:
    """Unordered predicted joints reordered to the ground truth's by the assignment of least total distance.

    Args:
        pred_mm: (J, 3) predictions in any order (a global heatmap's peaks). gt_mm: (J, 3).

    Returns:
        (J, 3) the predictions, row j the one assigned to ground-truth joint j (Hungarian algorithm, scipy).
    """
    cost = np.linalg.norm(gt_mm[:, None, :] - pred_mm[None, :, :], axis=-1)  # (J gt, J pred)
    rows, cols = linear_sum_assignment(cost)
    matched = np.empty_like(pred_mm)
    matched[rows] = pred_mm[cols]
    return matched


def _write_rows(path: Path, rows: np.ndarray) -> None:
    """(N, K) numbers as N text lines, atomically."""
    text = "\n".join(" ".join(f"{value:.4f}" for value in row) for row in rows) + "\n"
    write_atomic(path, lambda file: file.write(text.encode("ascii")))


class HandJointsDataset(Dataset):
    """What the V2V family's datasets share: the root, augmentation seeds, the joint-error evaluation and the report.

    A subclass sets the class attributes, fills `self.joint_names` and implements `__len__` and `__getitem__`
    (the sample of the module docstring, with meta_info 'frame_index' and 'aug_seed' from `aug_seed`).

    Args:
        split: one of ``SPLITS``.
        cfg: the whole config (main.config.Config).
        evaluation: the split is tested, not trained on (no augmentation), whatever its name.
    """

    NAME: ClassVar[str] = ""
    DEFAULT_SUBDIR: ClassVar[str] = "data"
    DOWNLOAD_PAGE: ClassVar[str] = ""
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "test")
    TEST_SPLIT: ClassVar[str] = "test"
    METRIC_LABELS: ClassVar[dict[str, str]] = JOINT_ERROR_LABELS
    # The result file of each evaluated split (the V2V port's names; 'fit' = the predictions on the training frames).
    RESULT_FILES: ClassVar[dict[str, str]] = {"test": "test_res.txt", "train": "fit_res.txt", "dev": "dev_res.txt"}
    PARTS_DIR: ClassVar[str] = "pred_parts"
    eval_extras: tuple[tuple[str, str, str], ...] = (
        ("targets", "joints_mm", "joints_mm_target"),
        ("meta_info", "frame_index", "frame_index"),
    )

    def __init__(self, split: str, cfg: Any, evaluation: bool = False) -> None:
        if split not in self.SPLITS:
            raise ValueError(f"{self.NAME}: unknown split {split!r}; accepted: {', '.join(self.SPLITS)}")
        self.split, self.cfg = split, cfg
        self.is_train = split == "train" and not evaluation
        self.seed, self.epoch = int(cfg.train.seed), 0
        self.unordered_joints = bool(cfg.v2v.global_heatmap)  # the peaks of one global heatmap: matched first
        self.joint_names: tuple[str, ...] = ()
        configured = cfg.data.dataset_roots.get(self.NAME)
        default_root = Path(cfg.data_dir) / self.NAME / self.DEFAULT_SUBDIR
        self.root = resolve_repo_path(configured) if configured else default_root

    # --- per-sample seeding -----------------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch that seeds augmentation."""
        self.epoch = int(epoch)

    def aug_seed(self, index: int) -> np.int64:
        """The augmentation seed of sample `index` in this epoch (63 bits of (train.seed, epoch, index) mixed)."""
        state = np.random.SeedSequence([self.seed, self.epoch, int(index)]).generate_state(2, dtype=np.uint32)
        return np.int64(int(state[0]) << 31 | int(state[1]) >> 1)

    # --- evaluation -------------------------------------------------------------------------------------------------
    def result_dir(self, output_dir: str | os.PathLike[str]) -> Path:
        return Path(output_dir) / "result" / self.NAME

    def evaluate(self, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> dict[str, list[float]]:
        """Per frame, the mean and the largest joint error (mm); each prediction is saved for `report`'s files.

        Args:
            outs: per sample, the model's 'joints_mm' (J, 3) with 'joints_mm_target' (J, 3) and 'frame_index'.
            indices: the samples' dataset indices.

        Returns:
            {'mean_joint_error': [...], 'max_joint_error': [...]}, mm, one value per sample.
        """
        if len(outs) != len(indices):
            raise ValueError(f"{self.NAME}.evaluate: {len(outs)} outputs for {len(indices)} indices")
        parts = self.result_dir(self.cfg.output_dir) / f"{self.PARTS_DIR}_{self.split}"
        result: dict[str, list[float]] = {key: [] for key in JOINT_ERROR_LABELS}
        for out, index in zip(outs, indices, strict=True):
            gt_mm = np.asarray(out["joints_mm_target"], dtype=np.float64)
            pred_mm = np.asarray(out["joints_mm"], dtype=np.float64)
            if self.unordered_joints:
                pred_mm = match_unordered_joints(pred_mm, gt_mm)
            errors = np.linalg.norm(pred_mm - gt_mm, axis=-1)  # (J,)
            result["mean_joint_error"].append(float(errors.mean()))
            result["max_joint_error"].append(float(errors.max()))
            save_part(parts, int(index), pred_mm=pred_mm, gt_mm=gt_mm, frame_index=np.int64(out["frame_index"]))
        return result

    def result_rows(self, pred_mm: np.ndarray) -> dict[str, np.ndarray]:
        """The result files' rows of (N, J, 3) camera-mm predictions, by file name; here camera mm as is."""
        return {self.RESULT_FILES[self.split]: pred_mm.reshape(len(pred_mm), -1)}

    def report(
        self, eval_result: Mapping[str, Sequence[float]], output_dir: str | os.PathLike[str]
    ) -> tuple[str, Path]:
        """The metric table and each joint's mean error (printed), metrics.json and the result files."""
        parts = load_parts(self.result_dir(output_dir) / f"{self.PARTS_DIR}_{self.split}", len(self), self.NAME)
        extra: dict[str, Any] = {"split": self.split, **self.report_facts()}
        per_joint_text = ""
        if parts is not None:
            per_joint = np.linalg.norm(parts["pred_mm"] - parts["gt_mm"], axis=-1).mean(axis=0)  # (J,)
            known = len(self.joint_names) == len(per_joint)
            names = self.joint_names if known else tuple(str(j) for j in range(len(per_joint)))
            extra["mean_error_per_joint_mm"] = {name: float(v) for name, v in zip(names, per_joint, strict=True)}
            rows = [f"  {name:12s} {value:8.2f}" for name, value in zip(names, per_joint, strict=True)]
            per_joint_text = "\n".join(["Mean error per joint (mm):", *rows, f"  {'Mean':12s} {per_joint.mean():8.2f}"])
            files = []
            for name, values in self.result_rows(parts["pred_mm"]).items():
                _write_rows(self.result_dir(output_dir) / name, values)
                files.append(name)
            extra["result_files"] = files
        table, path = report_metrics(eval_result, self.NAME, output_dir, labels=self.METRIC_LABELS, **extra)
        return (f"{table}\n{per_joint_text}" if per_joint_text else table), path

    def report_facts(self) -> dict[str, Any]:
        """Facts stored in metrics.json beside the metrics (the fold, the files read)."""
        return {}


class MSRA(HandJointsDataset):
    """MSRA hand gestures, one fold of the leave-one-subject-out protocol (module docstring)."""

    NAME = "MSRA"
    DOWNLOAD_PAGE = DOWNLOAD_PAGE
    SPLITS = ("train", "test")
    TEST_SPLIT = "test"

    def __init__(self, split: str, cfg: Any, evaluation: bool = False) -> None:
        super().__init__(split, cfg, evaluation)
        self.test_subject = int(cfg.data.msra_test_subject)
        if int(cfg.v2v.num_joints) != len(MSRA_JOINTS) and not cfg.v2v.global_heatmap:
            raise AnnotationError(f"MSRA has {len(MSRA_JOINTS)} joints, v2v.num_joints is {cfg.v2v.num_joints}")
        self.joint_names = MSRA_JOINTS.names
        self.fold = load_fold(self.root, self.test_subject, split)
        self.lines = np.flatnonzero(self.fold.valid)  # the frames with a centre, as upstream
        if len(self.lines) == 0:
            raise AnnotationError(f"{self.root}: no frame of fold {self.test_subject} ({split}) has a valid centre")
        self.cube_mm = np.asarray(cfg.v2v.cube_mm, dtype=np.float32)
        self.intrinsics = MSRA_INTRINSICS.as_array()
        logger.info("MSRA %s (test subject P%d): %d frames, %d skipped for an invalid centre, from %s", split,
                    self.test_subject, len(self.lines), len(self.fold.frames) - len(self.lines), self.root)  # fmt: skip

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, index: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        line = int(self.lines[index])
        frame = self.fold.frames[line]
        depth_mm = read_depth_bin(frame.depth_path, MSRA_INTRINSICS.width, MSRA_INTRINSICS.height)
        inputs = {"depth_mm": depth_mm, "ref_point_mm": self.fold.centers_mm[line].astype(np.float32),
                  "cube_mm": self.cube_mm, "intrinsics": self.intrinsics}  # fmt: skip
        targets = {"joints_mm": self.fold.joints_mm[line].astype(np.float32)}
        meta_info = {"frame_index": np.int64(line), "aug_seed": self.aug_seed(index)}
        return inputs, targets, meta_info

    def result_rows(self, pred_mm: np.ndarray) -> dict[str, np.ndarray]:
        """The V2V port's layout (V2V's world axes, mm) and the evaluation tool's (pixel u, v and depth mm)."""
        name = self.RESULT_FILES[self.split]
        uvd = np.concatenate((MSRA_INTRINSICS.project(pred_mm), pred_mm[..., 2:]), axis=-1)  # (N, J, 3)
        return {name: camera_to_msra_world(pred_mm).reshape(len(pred_mm), -1),
                name.replace(".txt", "_uvd.txt"): uvd.reshape(len(pred_mm), -1)}  # fmt: skip

    def report_facts(self) -> dict[str, Any]:
        return {"test_subject": self.test_subject, "root": str(self.root)}
