"""Accuracy plots of 3D hand-pose result files: the fraction of frames within a distance, and the mean error per joint.

    python tool/show_acc.py --gt output/result/MSRA/test_s3_gt.txt --pred output/result/MSRA/test_res.txt \
        [more_res.txt ...] [--labels gaussian integral] [--max-mm 80] --out output/vis/show_acc

Every file holds one line per frame with J x 3 numbers (x1 y1 z1 x2 y2 z2 ..., mm): the layout of V2V-PoseNet's
PyTorch port's `test_res.txt` / `fit_res.txt` and of its `gen_gt.py` files (tool/gen_gt.py; data/MSRA/MSRA.py
writes the predictions). Errors are Euclidean distances per joint, so any common frame of the files works.

The curve is the evaluation standard of the hand-pose papers (awesome-hand-pose-estimation's 'max-frame'): a frame
counts at distance T when its worst joint is within T mm. The bars are each joint's error averaged over the frames,
with the mean over the joints last. Several prediction files share one plot (a legend entry each). Writes
`frames_within_distance.png` and `mean_error_per_joint.png` into --out and prints the mean errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`, `data`, `main`

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.engine.cli import UsageError, run_cli

__all__ = ["AccuracyPlots", "frames_within_distance", "mean_error_per_joint", "read_joint_file", "show_acc"]

CURVE_FILE, BARS_FILE = "frames_within_distance.png", "mean_error_per_joint.png"
# Short tick labels of MSRA's 21 joints (data/MSRA/MSRA.py's JOINT_NAMES order).
_MSRA_TICKS = ("W", *(f"{finger}{part}" for finger in "IMRLT" for part in ("1", "2", "3", "T")))


@dataclass(frozen=True)
class AccuracyPlots:
    """What `show_acc` wrote: the two PNGs, and each prediction file's mean joint error (mm) by its label."""

    curve: Path
    bars: Path
    mean_mm: dict[str, float]


def read_joint_file(path: str | Path) -> np.ndarray:
    """(N, J, 3) float64 mm from a file of one line per frame with J x 3 numbers.

    Raises:
        UsageError: a missing file, a non-numeric entry, lines of different lengths or a length not a multiple of 3
            (naming the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"joint file not found: {path}")
    rows: list[list[float]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = [float(value) for value in line.split()]
        except ValueError as error:
            raise UsageError(f"{path}, line {number}: not a list of numbers ({error})") from None
        if len(values) % 3 or (rows and len(values) != len(rows[0])):
            expected = f"{len(rows[0])}, as line 1" if rows else "a multiple of 3"
            raise UsageError(f"{path}, line {number}: {len(values)} numbers, expected {expected}")
        rows.append(values)
    if not rows:
        raise UsageError(f"{path}: no frame")
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1, 3)


def _joint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    if pred.shape != gt.shape:
        raise UsageError(f"predictions {pred.shape} and ground truth {gt.shape} differ (frames, joints, 3)")
    return np.linalg.norm(pred - gt, axis=-1)  # (N, J)


def frames_within_distance(pred: np.ndarray, gt: np.ndarray, thresholds_mm: np.ndarray) -> np.ndarray:
    """Fraction of frames whose largest joint error is <= each threshold.

    Args:
        pred, gt: (N, J, 3) mm.
        thresholds_mm: (T,) distances, mm.

    Returns:
        (T,) fractions in [0, 1].
    """
    worst = _joint_errors(pred, gt).max(axis=1)  # (N,)
    return (worst[None, :] <= np.asarray(thresholds_mm, dtype=np.float64)[:, None]).mean(axis=1)


def mean_error_per_joint(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(J,) each joint's Euclidean error averaged over the frames, mm (their mean is the papers' mean error)."""
    return _joint_errors(pred, gt).mean(axis=0)


def show_acc(gt_path: str | Path, pred_paths: Sequence[str | Path], out_dir: str | Path,
             labels: Sequence[str] | None = None, max_mm: float = 80.0) -> AccuracyPlots:  # fmt: skip
    """Plots the frames-within-distance curves and the per-joint mean errors of prediction files against one GT file.

    Args:
        gt_path: the ground-truth file. pred_paths: one or more prediction files of the same frames.
        out_dir: where the two PNGs go (created).
        labels: a legend name per prediction file (default: the file names).
        max_mm: the curve's largest distance (0 .. max_mm in 1 mm steps).

    Raises:
        UsageError: unreadable files, files of different shapes, or a label count that is not the file count.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    from matplotlib import pyplot as plt

    labels = list(labels) if labels else [Path(path).name for path in pred_paths]
    if len(labels) != len(pred_paths):
        raise UsageError(f"{len(labels)} labels for {len(pred_paths)} prediction files")
    gt = read_joint_file(gt_path)
    preds = [read_joint_file(path) for path in pred_paths]
    thresholds = np.arange(0.0, max_mm + 0.5, 1.0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curve_fig, curve_ax = plt.subplots(figsize=(6, 4.5))
    bars_fig, bars_ax = plt.subplots(figsize=(max(6.0, 0.4 * (gt.shape[1] + 1) + 1.5), 4.5))
    width = 0.8 / len(preds)
    means: dict[str, float] = {}
    for rank, (label, pred) in enumerate(zip(labels, preds, strict=True)):
        fractions = frames_within_distance(pred, gt, thresholds)
        curve_ax.plot(thresholds, 100.0 * fractions, label=label)
        per_joint = mean_error_per_joint(pred, gt)
        means[label] = float(per_joint.mean())
        positions = np.arange(len(per_joint) + 1) + (rank - (len(preds) - 1) / 2) * width
        bars_ax.bar(positions, [*per_joint, per_joint.mean()], width=width, label=f"{label} ({means[label]:.2f} mm)")
    curve_ax.set(xlabel="Maximum allowed distance to GT (mm)", ylabel="Fraction of frames within distance (%)",
                 xlim=(0, max_mm), ylim=(0, 100))  # fmt: skip
    curve_ax.grid(True, alpha=0.3)
    curve_ax.legend(loc="lower right")
    ticks = list(_MSRA_TICKS) if gt.shape[1] == len(_MSRA_TICKS) else [str(j) for j in range(gt.shape[1])]
    bars_ax.set_xticks(np.arange(gt.shape[1] + 1), [*ticks, "Mean"])
    bars_ax.set(ylabel="Mean error (mm)")
    bars_ax.grid(True, axis="y", alpha=0.3)
    bars_ax.legend(loc="upper left")
    result = AccuracyPlots(out / CURVE_FILE, out / BARS_FILE, means)
    for figure, path in ((curve_fig, result.curve), (bars_fig, result.bars)):
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="show_acc.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gt", required=True, help="ground-truth joint file (one frame per line, J x 3 mm)")
    parser.add_argument("--pred", required=True, nargs="+", help="one or more prediction files of the same frames")
    parser.add_argument("--labels", nargs="+", help="a legend label per prediction file (default: file names)")
    parser.add_argument("--max-mm", type=float, default=80.0, help="the curve's largest distance, mm (default 80)")
    parser.add_argument("--out", required=True, help="output folder of the two PNGs")
    args = parser.parse_args(argv)
    result = show_acc(args.gt, args.pred, args.out, args.labels, args.max_mm)
    for label, mean in result.mean_mm.items():
        print(f"{label}: mean joint error {mean:.2f} mm")
    print(f"wrote {result.curve} and {result.bars}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="show_acc.py"))
