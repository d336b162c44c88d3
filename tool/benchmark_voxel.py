"""V2V-PoseNet's input stage and network speed: batched voxelisation + augmentation vs the per-sample CPU path.

    python tool/benchmark_voxel.py [--batch 8] [--batches 3] [--workers 1,2] [--net-batch 1] [--repeats 2]
        [--device cpu|cuda] [--grid-size 88] [--skip-net]

Measures, on synthetic 320x240 depth maps (a hand-sized blob at ~400 mm in a background box, MSRA's camera):
    (a) per-sample path, as the ports do it in their data loaders: numpy back-projection of the whole depth map,
        voxelisation into an 88^3 volume, then scipy.ndimage zoom (scale 0.8-1.2, centre crop/pad), rotate
        (about z, +-40 degrees) and shift (+-8 voxels), all order 0 and all applied to every sample; through a
        DataLoader with each of --workers worker processes (the first batch, worker start-up, is not timed);
    (b) batched path (common/geometry/voxel.py): depth_to_points + augmentation_matrices + voxelize for the
        whole batch, in the main process on --device;
    (c) V2VPoseNet (common/nets/v2v.py, 21 joints) forward (no autograd) and forward + backward of the
        Gaussian MSE loss at --net-batch, on --device;
    (d) its multiply-accumulates per sample (torch.utils.flop_counter.FlopCounterMode: convolutions; GMAC =
        FLOP / 2), forward and forward + backward.
Each timing of (b) and (c) is the median of --repeats runs after one untimed run, synchronised on CUDA. Rates are
samples/s. Figures on a machine shared with other work are indicative only; the load average is printed.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from common.engine.cli import UsageError, run_cli
from common.geometry.voxel import (
    augmentation_matrices,
    depth_to_points,
    gaussian_mse_loss,
    voxelize,
)
from common.nets.v2v import V2VPoseNet
from tool.benchmark import time_runs
from tool.benchmark_data import parse_workers

WIDTH, HEIGHT = 320, 240
INTRINSICS = (241.42, 241.42, 160.0, 120.0)  # MSRA's fx, fy, cx, cy
CUBE_MM = 200.0
JOINTS = 21


def synthetic_depth_maps(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(count, 240, 320) float32 depth mm (a blob ~110 px across at ~400 mm in a 900 mm box, zeros elsewhere,
    as MSRA's cropped depth) and (count, 3) reference points mm (the blob's front)."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    depths, refs = [], []
    for _ in range(count):
        cu, cv = rng.uniform(120, 200), rng.uniform(90, 150)
        r2 = ((u - cu) ** 2 + (v - cv) ** 2) / 55.0**2
        depth = np.where(r2 < 1, 400.0 - 50.0 * np.sqrt(np.clip(1 - r2, 0, 1)), 900.0)
        depth[(np.abs(u - cu) > 80) | (np.abs(v - cv) > 80)] = 0.0  # outside the box: no depth
        depths.append((depth + rng.uniform(-2, 2, depth.shape)).astype(np.float32))
        fx, fy, cx, cy = INTRINSICS
        refs.append(((cu - cx) * 380.0 / fx, (cv - cy) * 380.0 / fy, 380.0))
    return np.stack(depths), np.asarray(refs, dtype=np.float32)


def _centre_fit(volume: np.ndarray, size: int) -> np.ndarray:
    """Crop or zero-pad each axis of a cubic volume symmetrically to ``size``."""
    out = np.zeros((size,) * 3, dtype=volume.dtype)
    n = volume.shape[0]
    src = slice(max(0, (n - size) // 2), max(0, (n - size) // 2) + min(n, size))
    dst = slice(max(0, (size - n) // 2), max(0, (size - n) // 2) + min(n, size))
    out[dst, dst, dst] = volume[src, src, src]
    return out


class PerSampleVoxels(Dataset):
    """The ports' per-sample CPU path: numpy voxelisation, then scipy.ndimage augmentation of the 88^3 volume."""

    def __init__(self, depths: np.ndarray, refs: np.ndarray, length: int, grid_size: int) -> None:
        self.depths, self.refs, self.length, self.grid_size = depths, refs, length, grid_size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        grid = self.grid_size
        depth, ref = self.depths[index % len(self.depths)], self.refs[index % len(self.refs)]
        fx, fy, cx, cy = INTRINSICS
        v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
        points = np.stack(((u - cx) * depth / fx, (v - cy) * depth / fy, depth), -1).reshape(-1, 3)  # (H*W, 3)
        coords = np.floor((points[depth.reshape(-1) > 0] - ref) / CUBE_MM * grid + grid / 2).astype(np.int64)
        coords = coords[np.all((coords >= 0) & (coords < grid), axis=1)]
        volume = np.zeros((grid,) * 3, dtype=np.float32)
        volume[coords[:, 0], coords[:, 1], coords[:, 2]] = 1.0
        rng = np.random.default_rng(index)
        volume = _centre_fit(ndimage.zoom(volume, rng.uniform(0.8, 1.2), order=0), grid)
        volume = ndimage.rotate(volume, rng.uniform(-40, 40), axes=(0, 1), reshape=False, order=0)
        volume = ndimage.shift(volume, rng.uniform(-8, 8, 3), order=0)
        return torch.from_numpy(volume)[None]  # (1, G, G, G)


def measure_per_sample(depths: np.ndarray, refs: np.ndarray, args: argparse.Namespace) -> list[dict]:
    """Samples/s of the per-sample path through a DataLoader, once per worker count."""
    rows = []
    for workers in args.workers:
        dataset = PerSampleVoxels(depths, refs, (args.batches + 1) * args.batch, args.grid_size)
        batches = iter(DataLoader(dataset, batch_size=args.batch, num_workers=workers))
        next(batches)  # worker start-up: not timed
        start = time.perf_counter()
        samples = sum(len(batch) for batch in batches)
        rows.append(
            {"path": f"per-sample numpy+scipy, {workers} workers", "rate": samples / (time.perf_counter() - start)}
        )
    return rows


def median_seconds(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one untimed call; synchronised on CUDA (tool/benchmark.py)."""
    return statistics.median(time_runs(run, device, warmup=1, repeats=repeats))


def measure_batched(depths: np.ndarray, refs: np.ndarray, args: argparse.Namespace) -> dict:
    """Samples/s of depth_to_points + augmentation_matrices + voxelize for a batch of --batch depth maps."""
    device = args.device
    index = np.arange(args.batch) % len(depths)
    depth = torch.from_numpy(depths[index]).to(device)
    ref = torch.from_numpy(refs[index]).to(device)
    cube = torch.full((args.batch, 3), CUBE_MM, device=device)
    intrinsics = torch.tensor(INTRINSICS, device=device).expand(args.batch, 4)
    generator = torch.Generator().manual_seed(0)

    def run() -> torch.Tensor:
        points, valid = depth_to_points(depth, intrinsics)
        matrices = augmentation_matrices(args.batch, generator, grid_size=args.grid_size, device=device)
        return voxelize(points, valid, ref, cube, args.grid_size, matrices)

    seconds = median_seconds(run, device, args.repeats)
    return {"path": f"batched voxel.py on {device.type}, batch {args.batch}", "rate": args.batch / seconds}


def measure_net(args: argparse.Namespace) -> tuple[list[dict], dict[str, float]]:
    """V2VPoseNet forward and forward + backward samples/s at --net-batch, and GMAC per sample."""
    device, batch, grid = args.device, args.net_batch, args.grid_size
    torch.manual_seed(0)
    model = V2VPoseNet(1, JOINTS).to(device)
    voxels = (torch.rand(batch, 1, grid, grid, grid, device=device) < 0.02).float()
    joints_out = torch.rand(batch, JOINTS, 3, device=device) * (grid // 2 - 8) + 4

    def forward() -> None:
        with torch.no_grad():
            model(voxels)

    def train_step() -> None:
        model.zero_grad(set_to_none=True)
        gaussian_mse_loss(model(voxels), joints_out).backward()

    model.train()
    forward_rate = batch / median_seconds(forward, device, args.repeats)
    train_rate = batch / median_seconds(train_step, device, args.repeats)
    rows = [
        {"path": f"V2VPoseNet forward, {device.type}, batch {batch}", "rate": forward_rate},
        {"path": f"V2VPoseNet forward+backward, {device.type}, batch {batch}", "rate": train_rate},
    ]
    with FlopCounterMode(display=False) as counter:
        forward()
    forward_flops = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        train_step()
    macs = {"forward_gmac": forward_flops / 2 / batch / 1e9, "train_gmac": counter.get_total_flops() / 2 / batch / 1e9}
    return rows, macs


def format_table(rows: Sequence[dict], macs: dict[str, float] | None) -> str:
    """A plain-text table of the measured rates and the network's GMAC per sample."""
    width = max(len(row["path"]) for row in rows)
    lines = [f"{'path':<{width}}  {'samples/s':>10}"] + [
        f"{row['path']:<{width}}  {row['rate']:>10.2f}" for row in rows
    ]
    if macs is not None:
        lines.append(f"V2VPoseNet GMAC per sample: forward {macs['forward_gmac']:.2f}, "
                     f"forward+backward {macs['train_gmac']:.2f} (FLOP / 2; convolutions)")  # fmt: skip
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="depth maps per batch for (a) and (b)")
    parser.add_argument("--batches", type=int, default=3, help="timed batches per worker count in (a)")
    parser.add_argument("--workers", default="1,2", help="comma-separated DataLoader worker counts for (a)")
    parser.add_argument("--net-batch", type=int, default=1, help="network batch for (c) and (d)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of (b) and (c), after one untimed run")
    parser.add_argument("--device", default="cpu", help="device of (b), (c), (d): cpu or cuda[:i]")
    parser.add_argument("--grid-size", type=int, default=88, help="input voxels per axis (divisible by 8)")
    parser.add_argument("--skip-net", action="store_true", help="measure (a) and (b) only")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.workers = parse_workers(args.workers)
    if min(args.batch, args.batches, args.net_batch, args.repeats) < 1:
        raise UsageError("--batch, --batches, --net-batch and --repeats must be at least 1")
    if args.grid_size < 8 or args.grid_size % 8:
        raise UsageError(f"--grid-size {args.grid_size}: V2VPoseNet needs a multiple of 8")
    args.device = torch.device(args.device)
    if args.device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    depths, refs = synthetic_depth_maps(min(args.batch, 8))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
          f"load average {load:.2f} before the run", flush=True)  # fmt: skip
    # The forked loader workers run first: once torch's OpenMP threads have run in this process, forked workers
    # can hang.
    rows = measure_per_sample(depths, refs, args)
    rows.append(measure_batched(depths, refs, args))
    macs = None
    if not args.skip_net:
        net_rows, macs = measure_net(args)
        rows += net_rows
    print(format_table(rows, macs))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
