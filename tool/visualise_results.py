"""Draw a multi-view run's predictions: each view's crop with the predicted and GT skeletons, and a 3D plot.

    python tool/visualise_results.py output/triangulation_h36m_alg/result/Human36MMultiView/results.pkl \\
        --cfg triangulation_h36m_alg [--split test] [--out DIR] [--max 10] [key=value ...]

results.pkl is what main/test.py writes for a multi-view dataset ({'keypoints_3d': (N, J, 3) world mm, 'indexes':
(N,) frame indices, 'dataset': NAME}); it is read with the restricted unpickler (data.multiview.read_results over
common/body_models/pickle_io.py), so the file cannot run code. The frames are read from the config's dataset and
split (by default the config's test split; --split train for a results.pkl of the train split) exactly as the model
saw them: one PNG per frame, `frame_<index>.png` in --out (default: a `vis/` folder beside results.pkl), with the
first --max frames of the file. Predicted joints are green, GT red; each is projected with the view's camera of the
crop (its lens distortion too when the crop keeps it). The 3D plot puts the dataset's vertical axis up.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`, `data`, `main`

import argparse
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np

from common.engine.cli import UsageError, run_cli
from common.geometry.distortion import distort_points
from main.config import ConfigError, load_config
from main.triangulation.picture import denormalize, skeleton_edges

__all__ = ["project_views", "visualise_results"]

PRED_COLOR, GT_COLOR = (0.1, 0.85, 0.2), (0.9, 0.15, 0.1)


def project_views(points_world_mm: np.ndarray, meta_info: dict[str, Any]) -> np.ndarray:
    """Projects world points into every view of a sample, with each view's crop camera and lens distortion.

    Args:
        points_world_mm: (J, 3) world mm.
        meta_info: a multi-view sample's meta_info (camera_K, camera_R, camera_t, camera_dist: per view).

    Returns:
        (V, J, 2) pixels of the crops; NaN for points at or behind a camera.
    """
    rotation = np.asarray(meta_info["camera_R"], np.float64)  # (V, 3, 3)
    translation = np.asarray(meta_info["camera_t"], np.float64)  # (V, 3)
    intrinsics = np.asarray(meta_info["camera_K"], np.float64)  # (V, 3, 3)
    dist = np.asarray(meta_info["camera_dist"], np.float64)  # (V, 5)
    camera = np.einsum("vij,nj->vni", rotation, np.asarray(points_world_mm, np.float64)) + translation[:, None]
    depth = camera[..., 2:]
    normalized = camera[..., :2] / np.where(depth > 0, depth, np.nan)  # (V, J, 2)
    distorted = np.stack([distort_points(xy, d) if np.any(d) else xy for xy, d in zip(normalized, dist, strict=True)])
    return np.einsum("vij,vnj->vni", intrinsics[:, :2, :2], distorted) + intrinsics[:, None, :2, 2]


def _draw_2d(axis: Any, points: np.ndarray, edges: Sequence[tuple[int, int]], color: tuple, label: str) -> None:
    for i, j in edges:
        axis.plot(points[[i, j], 0], points[[i, j], 1], color=color, linewidth=1.2)
    axis.scatter(points[:, 0], points[:, 1], s=6, color=color, label=label)


def _draw_3d(axis: Any, points: np.ndarray, edges: Sequence[tuple[int, int]], color: tuple, label: str,
             vertical_axis: int) -> None:  # fmt: skip
    # matplotlib's z is up: the dataset's vertical axis goes there (negated for a y-down world like CMU's)
    horizontal = [axis_index for axis_index in range(3) if axis_index != vertical_axis]
    up = points[:, vertical_axis] * (-1.0 if vertical_axis == 1 else 1.0)
    xyz = np.stack((points[:, horizontal[0]], points[:, horizontal[1]], up), axis=1)
    for i, j in edges:
        axis.plot(xyz[[i, j], 0], xyz[[i, j], 1], xyz[[i, j], 2], color=color, linewidth=1.5)
    axis.scatter(xyz[:, 0], xyz[:, 1], xyz[:, 2], s=8, color=color, label=label)


def draw_frame(sample: tuple[dict, dict, dict], pred_world_mm: np.ndarray, vertical_axis: int, title: str,
               path: Path) -> Path:  # fmt: skip
    """One PNG: the sample's views with the predicted and GT skeletons, and both in 3D."""
    inputs, targets, meta_info = sample
    mask = np.asarray(inputs["view_mask"], bool)
    crops = denormalize(np.asarray(inputs["images"], np.float32))  # (V, H, W, 3) uint8
    gt_world_mm = np.asarray(targets["joints_world_mm"], np.float64)
    valid = np.asarray(targets["joints_valid"]) > 0
    edges = [(i, j) for i, j in skeleton_edges(len(pred_world_mm)) if valid[i] and valid[j]]
    pred_px, gt_px = project_views(pred_world_mm, meta_info), project_views(gt_world_mm, meta_info)
    views = len(crops)
    figure = plt.figure(figsize=(3.2 * (views + 1), 3.6))
    for view in range(views):
        axis = figure.add_subplot(1, views + 1, view + 1)
        axis.imshow(crops[view] if mask[view] else np.full_like(crops[view], 128))
        if mask[view]:
            _draw_2d(axis, np.where(valid[:, None], gt_px[view], np.nan), edges, GT_COLOR, "GT")
            _draw_2d(axis, pred_px[view], skeleton_edges(len(pred_world_mm)), PRED_COLOR, "prediction")
        axis.set_xlim(0, crops.shape[2])
        axis.set_ylim(crops.shape[1], 0)
        axis.set_title(f"view {view}" + ("" if mask[view] else " (missing)"), fontsize=8)
        axis.axis("off")
    axis3d = figure.add_subplot(1, views + 1, views + 1, projection="3d")
    _draw_3d(axis3d, np.where(valid[:, None], gt_world_mm, np.nan), edges, GT_COLOR, "GT", vertical_axis)
    _draw_3d(axis3d, pred_world_mm, skeleton_edges(len(pred_world_mm)), PRED_COLOR, "prediction", vertical_axis)
    extent = np.nanmax(np.abs(np.concatenate((pred_world_mm, gt_world_mm)) - pred_world_mm.mean(0)), initial=1.0)
    center = pred_world_mm.mean(0)[[i for i in range(3) if i != vertical_axis] + [vertical_axis]]
    center[2] *= -1.0 if vertical_axis == 1 else 1.0
    for setter, middle in zip((axis3d.set_xlim, axis3d.set_ylim, axis3d.set_zlim), center, strict=True):
        setter(middle - extent, middle + extent)  # equal scales on the three axes
    axis3d.set_box_aspect((1, 1, 1))
    axis3d.set_title("world, mm", fontsize=8)
    axis3d.legend(fontsize=7, loc="upper right")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def visualise_results(results_path: Path, cfg: Any, split: str, out_dir: Path, max_frames: int) -> list[Path]:
    """Draws the first `max_frames` frames of a results.pkl (module docstring); returns the PNGs written.

    Raises:
        data.record.AnnotationError: an unreadable results file.
        UsageError: the file is of another dataset than the config's, or a frame is not in the split.
    """
    from data import build_dataset  # the datasets are heavy to import: not for --help
    from data.multiview import read_results

    results = read_results(results_path)
    name = cfg.data.testset
    if results["dataset"] and results["dataset"] != name:
        raise UsageError(f"{results_path} holds {results['dataset']} results; the config tests {name} "
                         f"(data.testset={results['dataset']} to draw them)")  # fmt: skip
    dataset = build_dataset(name, split, cfg, evaluation=True)
    position = {int(row): index for index, row in enumerate(dataset.rows)}
    written = []
    for keypoints, frame in list(zip(results["keypoints_3d"], results["indexes"], strict=True))[:max_frames]:
        if int(frame) not in position:
            raise UsageError(f"{results_path}: frame {int(frame)} is not in {name}'s {split} split (--split?)")
        sample = dataset[position[int(frame)]]
        title = f"{name} {split}, frame {int(frame)}"
        written.append(draw_frame(sample, keypoints, dataset.VERTICAL_AXIS, title, out_dir / f"frame_{int(frame)}.png"))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="visualise_results.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a results.pkl written by main/test.py")
    parser.add_argument("--cfg", required=True, help="the run's yaml overlay: a name in main/configs/ or a path")
    parser.add_argument("--split", help="the split the results are of (default: the config's test split)")
    parser.add_argument("--out", type=Path, help="folder of the PNGs (default: vis/ beside results.pkl)")
    parser.add_argument("--max", type=int, default=10, dest="max_frames", help="frames to draw (default 10)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    args = parser.parse_intermixed_args(argv)  # the results file and the overrides on either side of the options
    if args.max_frames < 1:
        raise UsageError(f"--max must be >= 1, got {args.max_frames}")
    cfg = load_config(args.cfg, args.overrides)
    from data import DATASETS

    split = args.split or cfg.data.test_split or DATASETS[cfg.data.testset].TEST_SPLIT
    out_dir = args.out if args.out is not None else args.results.parent / "vis"
    written = visualise_results(args.results, cfg, split, out_dir, args.max_frames)
    print(f"wrote {len(written)} picture(s) to {out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="visualise_results.py", user_errors=(ConfigError,)))
