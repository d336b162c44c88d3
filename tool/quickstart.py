"""The whole job on the embedded default, no licensed files needed: data, training, testing and the demo.

    python tool/quickstart.py [--train-images 240] [--val-images 40] [--workers N] [--gpu IDS] [key=value ...]

1. the synthetic SMPL-X/SMPL/MANO/FLAME stand-in (output/body_models_synthetic/), if absent;
2. a synthetic AGORA-format dataset, 'train' and the held-out 'validation' split (output/data/Synthetic/), if
   absent or made with other settings;
3. training with main/configs/synthetic.yaml (python main/train.py; output/model_dump/, output/log/);
4. testing the last snapshot on the validation split (python main/test.py; output/result/AGORA/);
5. the demo on the validation image whose person is largest in view (python demo/demo.py; output/vis/demo/);
then it prints where each output is. Trailing key=value overrides go to training and testing (e.g.
train.end_epoch=2 for a shorter run). Each step runs the user-facing command as a new process, so the quickstart
exercises exactly what a user types.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`, `data`, `main`

from common.body_models.synthetic import ensure_synthetic_body_models
from common.engine.cli import UsageError, run_cli
from common.engine.snapshot import snapshot_path
from common.paths import REPO_ROOT
from data.Synthetic import ensure_dataset
from data.Synthetic.annotations import SCALE_TO_4K, annotation_file
from main.config import ConfigError, load_config

CONFIG = REPO_ROOT / "main" / "configs" / "synthetic.yaml"
DATA_ROOT = REPO_ROOT / "output" / "data" / "Synthetic"
SEED = 0
MAX_DEMO_OCCLUSION = 10.0  # percent: the demo person is hardly hidden by another


class StepFailedError(RuntimeError):
    """A step's command exited with a non-zero code (its own output says why)."""


def _run_step(name: str, command: list[str]) -> float:
    """Runs one user-facing command with this process's terminal; returns its wall time in seconds."""
    print(f"\n== {name}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    code = subprocess.call(command, cwd=REPO_ROOT)
    if code != 0:
        raise StepFailedError(f"{name} failed (exit code {code}): {' '.join(command)}")
    return time.perf_counter() - start


def demo_person(data_root: Path, split: str = "validation") -> tuple[Path, list[float]]:
    """The image and box (xywh, 1280x720 pixels) of the split's largest valid, hardly occluded person in full view.

    Args:
        data_root: a synthetic dataset root (AGORA layout; boxes in its json are at 3840x2160).
        split: the split to choose from.

    Raises:
        UsageError: no such person in the split.
    """
    document = json.loads((data_root / annotation_file(split)).read_text())
    images = {image["id"]: image for image in document["images"]}
    best: tuple[float, Path, list[float]] | None = None
    for annotation in document["annotations"]:
        image = images[annotation["image_id"]]
        x, y, w, h = (v / SCALE_TO_4K for v in annotation["bbox"])  # 1280x720 pixels
        in_view = x >= 0 and y >= 0 and x + w <= image["width"] and y + h <= image["height"]
        usable = annotation["is_valid"] and annotation["occlusion"] <= MAX_DEMO_OCCLUSION and in_view
        if usable and (best is None or h > best[0]):
            best = (h, data_root / image["file_name_1280x720"], [x, y, w, h])
    if best is None:
        raise UsageError(f"no fully visible, valid person in {data_root / annotation_file(split)}")
    return best[1], best[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quickstart.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-images", type=int, default=240, help="synthetic training images (default 240)")
    parser.add_argument("--val-images", type=int, default=40, help="held-out validation images (default 40)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="data generation processes")
    parser.add_argument("--gpu", help="GPU ids for training and testing ('0', '0-3'); the demo uses the first")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for training and testing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    start = time.perf_counter()
    timings: dict[str, float] = {}

    body_models = ensure_synthetic_body_models()
    timings["body models"] = time.perf_counter() - start
    print(f"synthetic body models: {body_models}", flush=True)
    for split, count in (("train", args.train_images), ("validation", args.val_images)):
        step_start = time.perf_counter()
        print(f"synthetic dataset, {split} split ({count} images, {args.workers} workers) ...", flush=True)
        ensure_dataset(DATA_ROOT, split, count, seed=SEED, workers=args.workers, human_model_path=body_models)
        timings[f"dataset {split}"] = time.perf_counter() - step_start

    overrides = [f"human_model_path={body_models}", f"data.dataset_roots={{AGORA: {DATA_ROOT}}}", *args.overrides]
    cfg = load_config(CONFIG, overrides)  # fails here, in one line, on a bad override
    gpu = ["--gpu", args.gpu] if args.gpu else []
    python = sys.executable
    timings["training"] = _run_step(
        "training", [python, str(REPO_ROOT / "main" / "train.py"), "--cfg", str(CONFIG), *gpu, *overrides]
    )
    last_epoch = cfg.train.end_epoch - 1
    snapshot = snapshot_path(Path(cfg.output_dir) / "model_dump", last_epoch)
    timings["testing"] = _run_step(
        "testing",
        [python, str(REPO_ROOT / "main" / "test.py"), "--cfg", str(CONFIG), "--test_epoch", str(last_epoch), *gpu,
         *overrides],
    )  # fmt: skip
    image, bbox = demo_person(DATA_ROOT)
    demo_out = Path(cfg.output_dir) / "vis" / "demo"
    demo_gpu = ["--gpu", args.gpu.replace("-", ",").split(",")[0]] if args.gpu else []
    timings["demo"] = _run_step(
        "demo",
        [python, str(REPO_ROOT / "demo" / "demo.py"), *demo_gpu, "--img", str(image),
         "--bbox", ",".join(f"{v:.1f}" for v in bbox), "--ckpt", str(snapshot), "--out", str(demo_out)],
    )  # fmt: skip
    _print_summary(cfg.output_dir, cfg.data.testset, snapshot, demo_out, timings, time.perf_counter() - start)
    return 0


def _print_summary(
    output_dir: str, testset: str, snapshot: Path, demo_out: Path, timings: dict[str, float], total_s: float
) -> None:
    output = Path(output_dir)
    metrics = sorted((output / "result" / testset).glob("*.json"))
    print("\n== quickstart done in " + f"{total_s / 60:.1f} min (" + ", ".join(
        f"{name} {seconds:.0f} s" for name, seconds in timings.items()) + ")")  # fmt: skip
    rows = [
        ("synthetic dataset", DATA_ROOT),
        ("last snapshot", snapshot),
        ("training log, TensorBoard", output / "log"),  # tensorboard --logdir output/log/tensorboard
        ("metrics (json)", ", ".join(str(m) for m in metrics) or output / "result" / testset),
        ("demo overlay", demo_out / "render_original_img.jpg"),
        ("demo crop overlay, side view", demo_out / "render_cropped_img.jpg"),
        ("demo mesh, parameters", demo_out / "output.obj"),
    ]
    for name, where in rows:
        print(f"  {name:30s} {where}")


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="quickstart.py", user_errors=(ConfigError, StepFailedError)))
