"""Data-pipeline throughput: samples/s through the whole loader (read, decode, crop, augment, SMPL-X targets).

    python tool/benchmark_data.py [--cfg synthetic] [--body-model synthetic] [--num-samples 1000] [--workers 1,2]
        [--batch-size N] [--dataset synthetic|config] [--synthetic-dir output/data/Synthetic]
        [--synthetic-images 100] [key=value ...]

With ``--dataset synthetic`` (the default) the config's training set is replaced by the synthetic AGORA-format
set in ``--synthetic-dir``; when that folder holds no train split yet, data.Synthetic.ensure_dataset writes one
of ``--synthetic-images`` images first. Samples repeat when the set is smaller than ``--num-samples``. The first
batch of each run (worker start-up) is not timed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`

from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from common.engine.cli import UsageError, run_cli
from common.paths import REPO_ROOT
from main.config import Config, ConfigError, load_config

DEFAULT_SYNTHETIC_DIR = REPO_ROOT / "output" / "data" / "Synthetic"


def measure_data_pipeline(cfg: Config, num_samples: int, workers: Sequence[int], batch_size: int) -> list[dict]:
    """Load ``num_samples`` training samples of ``cfg`` (data.build_trainset) once per worker count.

    Args:
        cfg: the config; its training set, geometry and body models are used.
        num_samples: samples per run (the training set is cycled when smaller), at least two batches.
        workers: DataLoader worker counts to measure (0: in the main process).
        batch_size: samples per batch.

    Returns:
        One row per worker count: workers, images_per_s, images_per_s_per_worker (per process for 0 workers),
        samples and seconds timed (the first batch excluded).
    """
    from data import build_trainset
    from data.dataset import worker_init_fn

    if num_samples < 2 * batch_size:
        raise ValueError(f"num_samples={num_samples} must be at least two batches of {batch_size}")
    dataset = build_trainset(cfg)
    subset = Subset(dataset, [i % len(dataset) for i in range(num_samples)])
    rows = []
    # In-process loading (0) runs last: torch's OpenMP threads, once used in this process, can hang forked workers.
    for count in sorted(workers, key=lambda c: c == 0):
        loader = DataLoader(subset, batch_size=batch_size, num_workers=count, worker_init_fn=worker_init_fn)
        batches = iter(loader)
        next(batches)  # worker start-up and the first batch: not timed
        samples, start = 0, time.perf_counter()
        for inputs, _, _ in tqdm(batches, total=len(loader) - 1, desc=f"{count} workers", leave=False):
            samples += len(inputs["img"])
        seconds = time.perf_counter() - start
        rate = samples / seconds
        rows.append({"workers": count, "images_per_s": rate, "images_per_s_per_worker": rate / max(count, 1),
                     "samples": samples, "seconds": seconds})  # fmt: skip
    return sorted(rows, key=lambda row: list(workers).index(row["workers"]))


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of `measure_data_pipeline`'s rows."""
    lines = [f"{'workers':>7}  {'images/s':>9}  {'per worker':>10}  {'samples':>7}  {'seconds':>7}"]
    lines += [f"{r['workers']:>7}  {r['images_per_s']:>9.1f}  {r['images_per_s_per_worker']:>10.1f}  "
              f"{r['samples']:>7}  {r['seconds']:>7.1f}" for r in rows]  # fmt: skip
    return "\n".join(lines)


def parse_workers(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]: the --workers option of the benchmarks (UsageError otherwise)."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 0:
        raise UsageError(f"--workers {text!r}: expected comma-separated worker counts >= 0, e.g. 1,2")
    return counts


def _config(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if args.body_model == "synthetic":
        from common.body_models.synthetic import ensure_synthetic_body_models

        overrides.append(f"human_model_path={ensure_synthetic_body_models()}")
    if args.dataset == "synthetic":
        overrides += [f"data.dataset_roots={{AGORA: {args.synthetic_dir}}}", "data.trainset_3d=[AGORA]",
                      "data.trainset_2d=[]"]  # fmt: skip
    cfg = load_config(args.cfg, overrides)
    if args.dataset == "synthetic" and not (Path(args.synthetic_dir) / "AGORA_train_SMPLX.json").is_file():
        from data.Synthetic import ensure_dataset

        print(f"writing {args.synthetic_images} synthetic training images to {args.synthetic_dir}")
        ensure_dataset(args.synthetic_dir, "train", args.synthetic_images, human_model_path=cfg.human_model_path)
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cfg", default="synthetic", help="config yaml (a name in main/configs/ or a path)")
    parser.add_argument("--body-model", choices=("synthetic",), default=None, help="use the generated stand-in")
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--workers", default="1,2", help="comma-separated DataLoader worker counts")
    parser.add_argument("--batch-size", type=int, default=None, help="default: train.train_batch_size")
    parser.add_argument("--dataset", choices=("synthetic", "config"), default="synthetic")
    parser.add_argument("--synthetic-dir", default=str(DEFAULT_SYNTHETIC_DIR))
    parser.add_argument("--synthetic-images", type=int, default=100, help="images written when the set is absent")
    parser.add_argument("overrides", nargs="*", help="config key=value overrides")
    args = parser.parse_args(argv)
    workers = parse_workers(args.workers)
    cfg = _config(args)
    batch_size = args.batch_size or cfg.train.train_batch_size
    if args.num_samples < 2 * batch_size:
        raise UsageError(f"--num-samples {args.num_samples}: at least two batches of {batch_size} are needed")
    rows = measure_data_pipeline(cfg, args.num_samples, workers, batch_size)
    print(
        f"data pipeline, {args.num_samples} samples, batch {batch_size} ({cfg.data.trainset_3d + cfg.data.trainset_2d})"
    )
    print(format_rows(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, user_errors=(ConfigError,)))
