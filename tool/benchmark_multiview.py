"""Speed of the triangulation family: batched DLT and unprojection against the seed's per-sample Python loops.

    python tool/benchmark_multiview.py [--cfg synthetic_triangulation_vol] [--views 2 4 8] [--batch 4]
        [--device cpu|cuda] [--repeats 5] [--warmup 1] [--json output/benchmark_multiview.json] [key=value ...]
    python tool/benchmark_multiview.py --cfg triangulation_h36m_vol_softmax --device cuda --batch 5  (the seed's size)

For the algebraic and the volumetric model of the config (`triangulation.method` set to each) and each view count,
on random crops of `multiview.image_shape` seen by a ring of cameras around a random pelvis:
    forward: the test-mode forward pass per sample (ms), batched (common/geometry: one weighted DLT for every joint
        of the batch; one grid_sample for every view) and with the seed's loops instead (a DLT by SVD per sample and
        joint; a grid_sample per sample and view), the rest of the network unchanged;
    step: the DLT (algebraic) or unprojection (volumetric) alone per sample (ms), batched and looped, on the same
        tensors the forward pass feeds it, and the largest difference between the two results as a check that the
        loop computes the same thing (world mm for the DLT, on exact projections of points near the pelvis; feature
        units for the unprojection).
Each time is the median (--statistic min: the fastest) of --repeats runs after --warmup untimed ones (CUDA
synchronised); on a machine shared with other work the minimum is the steadier estimate of the unloaded time. The
backbone dominates the forward pass at the seed's sizes; the step columns show the part the batching changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common` and `main`

import argparse
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from common.engine.cli import UsageError, run_cli
from common.geometry.triangulation import triangulate_dlt
from common.geometry.unprojection import unproject_features
from common.utils.atomic_io import write_json_atomic
from main.config import ConfigError, load_config
from main.triangulation import NETWORKS
from main.triangulation.model import TriangulationNet, project_points

__all__ = ["benchmark", "looped_dlt", "looped_unprojection", "ring_batch", "use_loops"]

METHODS = ("algebraic", "volumetric")


def looped_dlt(proj_matrices: Tensor, points_2d: Tensor, weights: Tensor) -> Tensor:
    """The seed's DLT: a Python loop over samples and joints, each the SVD of its (2V, 4) weighted system.

    Args:
        proj_matrices: (B, V, 3, 4). points_2d: (B, V, J, 2) pixels. weights: (B, V, J).

    Returns:
        (B, J, 3) world points.
    """
    batch, _, joints = weights.shape
    out = points_2d.new_zeros(batch, joints, 3)
    for b in range(batch):
        for j in range(joints):
            u, v = points_2d[b, :, j, 0:1], points_2d[b, :, j, 1:2]  # (V, 1)
            proj = proj_matrices[b]  # (V, 3, 4)
            rows = torch.cat((u * proj[:, 2] - proj[:, 0], v * proj[:, 2] - proj[:, 1]), dim=0)  # (2V, 4)
            rows = rows * weights[b, :, j].repeat(2).unsqueeze(-1)
            _, _, vh = torch.linalg.svd(rows, full_matrices=False)
            homogeneous = vh[-1]
            out[b, j] = homogeneous[:3] / homogeneous[3]
    return out


def looped_unprojection(features: Tensor, proj_matrices: Tensor, grid_world: Tensor, view_mask: Tensor) -> Tensor:
    """The seed's unprojection: a Python loop over samples and views, one grid_sample each.

    Args:
        features: (B, V, C, h, w). proj_matrices: (B, V, 3, 4) to pixels of the h x w maps.
        grid_world: (B, G, G, G, 3). view_mask: (B, V) bool.

    Returns:
        (B, V, C, G, G, G); zeros behind a camera and for masked views.
    """
    batch, views, channels, height, width = features.shape
    grid_shape = grid_world.shape[1:4]
    out = features.new_zeros(batch, views, channels, *grid_shape)
    scale = torch.tensor([width - 1, height - 1], dtype=grid_world.dtype, device=grid_world.device)
    for b in range(batch):
        points = grid_world[b].reshape(-1, 3)  # (N, 3)
        homogeneous = torch.cat((points, torch.ones_like(points[:, :1])), dim=1)  # (N, 4)
        for v in range(views):
            if not bool(view_mask[b, v]):
                continue
            projected = homogeneous @ proj_matrices[b, v].T  # (N, 3)
            depth = projected[:, 2:]
            pixels = projected[:, :2] / torch.where(depth > 0, depth, torch.ones_like(depth))
            normalized = (2.0 * pixels / scale - 1.0).clamp(-3.0, 3.0)
            sampled = F.grid_sample(features[b, v][None], normalized.view(1, -1, 1, 2).to(features.dtype),
                                    align_corners=True)  # (1, C, N, 1)  # fmt: skip
            sampled = sampled.view(channels, -1) * (depth.view(1, -1) > 0)
            out[b, v] = sampled.view(channels, *grid_shape)
    return out


def use_loops(model: TriangulationNet) -> TriangulationNet:
    """The network with its batched DLT and unprojection swapped for the loops (instance attributes; `del
    model.triangulate, model.unproject` restores the batched ones)."""
    model.triangulate = looped_dlt  # type: ignore[method-assign]
    model.unproject = looped_unprojection  # type: ignore[method-assign]
    return model


def _look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    rotation = np.stack((right, np.cross(forward, right), forward))
    return np.concatenate((rotation, -(rotation @ position)[:, None]), axis=1)  # (3, 4) [R | t]


def ring_batch(batch: int, views: int, image_hw: tuple[int, int], vertical_axis: int, seed: int = 0):
    """Random crops, a ring of `views` cameras 3.5 m around a random pelvis per sample, and that pelvis.

    Returns:
        (inputs, meta_info) of the multi-view sample contract (data/multiview.py), batched.
    """
    rng = np.random.default_rng(seed)
    height, width = image_hw
    up = np.eye(3)[vertical_axis] * (-1.0 if vertical_axis == 1 else 1.0)
    horizontal = [axis for axis in range(3) if axis != vertical_axis]
    intrinsics = np.array([[1.4 * width, 0.0, width / 2], [0.0, 1.4 * height, height / 2], [0.0, 0.0, 1.0]])
    centers = rng.uniform(-500.0, 500.0, size=(batch, 3)) + 900.0 * up
    proj = np.zeros((batch, views, 3, 4))
    for b in range(batch):
        for v in range(views):
            angle = 2.0 * math.pi * v / views
            position = centers[b] + 300.0 * up
            position[horizontal[0]] += 3500.0 * math.cos(angle)
            position[horizontal[1]] += 3500.0 * math.sin(angle)
            proj[b, v] = intrinsics @ _look_at(position, centers[b], up)
    generator = torch.Generator().manual_seed(seed)
    inputs = {"images": torch.randn(batch, views, 3, height, width, generator=generator),
              "view_mask": torch.ones(batch, views, dtype=torch.bool)}  # fmt: skip
    meta_info = {"proj_matrices": torch.from_numpy(proj).float(),
                 "cuboid_center_world_mm": torch.from_numpy(centers).float()}  # fmt: skip
    return inputs, meta_info


STATISTICS: dict[str, Callable[[list[float]], float]] = {"median": statistics.median, "min": min}


def _time_s(run: Callable[[], object], device: torch.device, warmup: int, repeats: int, statistic: str) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return STATISTICS[statistic](times)


def _consistent_points(args: tuple[Tensor, ...], centers: Tensor) -> tuple[Tensor, ...]:
    """The DLT's arguments, in float64, with the 2D points replaced by exact projections of points near each pelvis:
    both DLTs then have one exact answer (the network's random detections have none, and least-squares answers of
    an inconsistent system depend on how its rows are scaled)."""
    proj_matrices, _, weights = args
    generator = torch.Generator().manual_seed(0)
    offsets = torch.rand(weights.shape[0], weights.shape[2], 3, generator=generator) * 1000.0 - 500.0
    points_world = centers[:, None] + offsets.to(centers.device)
    exact = project_points(proj_matrices.double(), points_world.double())  # float64: no rounding in either DLT
    return proj_matrices.double(), exact, weights.double()


class _Capture:
    """Records the arguments the model hands its DLT / unprojection step (to time the step alone on them)."""

    def __init__(self, model: TriangulationNet) -> None:
        self.args: tuple[Tensor, ...] = ()
        self.model = model
        original_dlt, original_unprojection = model.triangulate, model.unproject

        def dlt(*args: Tensor) -> Tensor:
            self.args = args
            return original_dlt(*args)

        def unprojection(*args: Tensor) -> Tensor:
            self.args = args
            return original_unprojection(*args)

        model.triangulate, model.unproject = dlt, unprojection  # type: ignore[method-assign]


def _measure(model: TriangulationNet, method: str, inputs: dict[str, Tensor], meta_info: dict[str, Tensor],
             device: torch.device, warmup: int, repeats: int, statistic: str) -> dict[str, float]:  # fmt: skip
    """Seconds per batch of the forward pass and of its step, batched and looped; the two steps' largest difference."""
    with torch.inference_mode():
        batched_forward = _time_s(lambda: model(inputs, None, meta_info, "test"), device, warmup, repeats, statistic)
        capture = _Capture(model)
        model(inputs, None, meta_info, "test")
        args = capture.args
        del model.triangulate, model.unproject  # back to the class's batched methods
        step, loop = (
            (triangulate_dlt, looped_dlt) if method == "algebraic" else (unproject_features, looped_unprojection)
        )
        batched_step = _time_s(lambda: step(*args), device, warmup, repeats, statistic)
        looped_step = _time_s(lambda: loop(*args), device, warmup, repeats, statistic)
        check = _consistent_points(args, meta_info["cuboid_center_world_mm"]) if method == "algebraic" else args
        difference = float((step(*check).double() - loop(*check).double()).abs().max())
        use_loops(model)
        looped_forward = _time_s(lambda: model(inputs, None, meta_info, "test"), device, warmup, repeats, statistic)
        del model.triangulate, model.unproject
    return {"forward_batched": batched_forward, "forward_looped": looped_forward, "step_batched": batched_step,
            "step_looped": looped_step, "difference": difference}  # fmt: skip


def benchmark(cfg: Any, views_list: list[int], batch: int, device: torch.device, warmup: int, repeats: int,
              seed: int = 0, statistic: str = "median") -> list[dict[str, Any]]:  # fmt: skip
    """One row per (method, view count): ms per sample, batched and looped, of the forward pass and of the step."""
    rows = []
    for method in METHODS:
        torch.manual_seed(seed)
        cfg.triangulation.method = method
        model = NETWORKS[method](cfg.triangulation).to(device).eval()
        for views in views_list:
            inputs, meta_info = ring_batch(batch, views, tuple(cfg.multiview.image_shape),
                                           cfg.triangulation.vertical_axis, seed)  # fmt: skip
            inputs = {k: v.to(device) for k, v in inputs.items()}
            meta_info = {k: v.to(device) for k, v in meta_info.items()}
            times = _measure(model, method, inputs, meta_info, device, warmup, repeats, statistic)
            rows.append({
                "method": method, "views": views, "batch": batch,
                "forward_batched_ms": 1e3 * times["forward_batched"] / batch,
                "forward_looped_ms": 1e3 * times["forward_looped"] / batch,
                "step_batched_ms": 1e3 * times["step_batched"] / batch,
                "step_looped_ms": 1e3 * times["step_looped"] / batch,
                "step_max_difference": times["difference"],
            })  # fmt: skip
    return rows


def format_table(rows: list[dict[str, Any]], title: str, statistic: str = "median") -> str:
    header = ("| method | views | forward batched | forward looped | step batched | step looped | step speed-up | "
              "max diff |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    lines = [title, "", f"ms per sample ({statistic} of the repeats)", "", header]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['views']} | {r['forward_batched_ms']:.2f} | {r['forward_looped_ms']:.2f} | "
            f"{r['step_batched_ms']:.3f} | {r['step_looped_ms']:.3f} | "
            f"{r['step_looped_ms'] / max(r['step_batched_ms'], 1e-9):.1f}x | {r['step_max_difference']:.2e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmark_multiview.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cfg", default="synthetic_triangulation_vol", help="yaml overlay (its sizes are used)")
    parser.add_argument("--views", type=int, nargs="+", default=[2, 4, 8], help="view counts (default 2 4 8)")
    parser.add_argument("--batch", type=int, default=4, help="samples per batch (default 4)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument(
        "--statistic",
        choices=tuple(STATISTICS),
        default="median",
        help="of the repeats: median (default), or min on a machine shared with other work",
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this json file")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    args = parser.parse_intermixed_args(argv)
    if args.batch < 1 or args.repeats < 1 or args.warmup < 0 or min(args.views) < 2:
        raise UsageError("--batch and --repeats must be >= 1, --warmup >= 0 and every --views >= 2")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device here")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.cfg, args.overrides)
    rows = benchmark(cfg, args.views, args.batch, device, args.warmup, args.repeats, cfg.train.seed, args.statistic)
    t = cfg.triangulation
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    title = (f"{args.cfg}: ResNet-{t.backbone_depth}, {tuple(cfg.multiview.image_shape)} crops, {t.num_joints} joints, "
             f"{t.volume_size}^3 volume, batch {args.batch}, {where}")  # fmt: skip
    print(format_table(rows, title, args.statistic))
    if args.json is not None:
        write_json_atomic(args.json, {"title": title, "rows": rows})
        print(f"rows written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="benchmark_multiview.py", user_errors=(ConfigError,)))
