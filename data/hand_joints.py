"""What the V2V family's hand-joint datasets share (data/MSRA/MSRA.py, data/VoxelH5/VoxelH5.py): the data root,
the per-sample augmentation seeds, the joint-error evaluation (mean and largest Euclidean joint error per frame, mm),
and the report: the means, each joint's mean error, metrics.json and the upstream result files (one line of J x 3
numbers per frame: `test_res.txt` for the test split, `fit_res.txt` for the training split).
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
from data.prediction_parts import load_parts, save_part

__all__ = ["JOINT_ERROR_LABELS", "HandJointsDataset", "match_unordered_joints"]

logger = logging.getLogger(__name__)

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
