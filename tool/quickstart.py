"""The whole job on the embedded default, no licensed files needed: data, training, testing and the demo.

    python tool/quickstart.py [--family hand4whole|pose2pose_body|pose2pose_hand|pose2pose_face|integral|v2v|
        triangulation]
        [--train-images N] [--val-images N] [--workers N] [--gpu IDS] [key=value ...]

1. the synthetic SMPL-X/SMPL/MANO/FLAME stand-in (output/body_models_synthetic/), if absent;
2. the family's synthetic sets, training and held-out (output/data/: AGORA's layout for Hand4Whole and the body
   model, FreiHAND's for the hand model, FFHQ's for the face model, Human3.6M's upstream layout + MPII's for Integral,
   MSRA's for V2V, the multi-view labels layout for triangulation), if absent or made with other settings;
3. training with the family's config (main/configs/synthetic*.yaml; python main/train.py; triangulation trains and
   tests its algebraic model while preparing, for the volumetric model's pelvis);
4. testing the last snapshot on the held-out set (python main/test.py; <output_dir>/result/);
5. the demo on a held-out image with its annotated box (python demo/demo.py; <output_dir>/vis/demo/), for the mesh
   families;
then it prints where each output is. Trailing key=value overrides go to training and testing (e.g.
train.end_epoch=2 for a shorter run). Each step runs the user-facing command as a new process, so the quickstart
exercises exactly what a user types.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`, `data`, `main`

from common.body_models.synthetic import ensure_synthetic_body_models
from common.engine.cli import run_cli
from common.engine.snapshot import snapshot_path
from common.paths import REPO_ROOT
from main.config import ConfigError, load_config
from tool.quickstart_families import FAMILY_RUNS


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quickstart.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--family",
        choices=tuple(FAMILY_RUNS),
        default="hand4whole",
        help="the model family to run (default hand4whole)",
    )
    parser.add_argument("--train-images", type=int, help="synthetic training images (default: the family's)")
    parser.add_argument("--val-images", type=int, help="held-out images (default: the family's)")
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
    prepare, default_train, default_val = FAMILY_RUNS[args.family]
    step_start = time.perf_counter()
    run = prepare(body_models, args.train_images or default_train, args.val_images or default_val, args.workers)
    timings["datasets"] = time.perf_counter() - step_start

    train_overrides, test_overrides = [*run.train_overrides, *args.overrides], [*run.test_overrides, *args.overrides]
    cfg = load_config(run.config, train_overrides)  # fails here, in one line, on a bad override
    gpu = ["--gpu", args.gpu] if args.gpu else []
    python, config = sys.executable, ["--cfg", str(run.config)]
    timings["training"] = _run_step(
        "training", [python, str(REPO_ROOT / "main" / "train.py"), *config, *gpu, *train_overrides]
    )
    last_epoch = cfg.train.end_epoch - 1
    snapshot = snapshot_path(Path(cfg.output_dir) / "model_dump", last_epoch)
    timings["testing"] = _run_step(
        "testing",
        [python, str(REPO_ROOT / "main" / "test.py"), *config, "--test_epoch", str(last_epoch), *gpu,
         *test_overrides],
    )  # fmt: skip
    for name, command in run.after_test(cfg) if run.after_test is not None else []:  # e.g. V2V's accuracy plots
        timings[name] = _run_step(name, [python, *command])
    demo_out = Path(cfg.output_dir) / "vis" / "demo"
    if run.demo_image is not None:
        demo_gpu = ["--gpu", args.gpu.replace("-", ",").split(",")[0]] if args.gpu else []
        timings["demo"] = _run_step(
            "demo",
            [python, str(REPO_ROOT / "demo" / "demo.py"), *demo_gpu, "--img", str(run.demo_image),
             "--bbox", ",".join(f"{v:.1f}" for v in run.demo_bbox), "--ckpt", str(snapshot), "--out", str(demo_out),
             *run.demo_args],
        )  # fmt: skip
    _print_summary(cfg.output_dir, cfg.data.testset, run.data_roots, snapshot,
                   demo_out if run.demo_image is not None else None, timings,
                   time.perf_counter() - start)  # fmt: skip
    return 0


def _print_summary(
    output_dir: str, testset: str, data_roots: list[Path], snapshot: Path, demo_out: Path | None,
    timings: dict[str, float],
    total_s: float,
) -> None:  # fmt: skip
    output = Path(output_dir)
    metrics = sorted((output / "result" / testset).glob("*.json"))
    print("\n== quickstart done in " + f"{total_s / 60:.1f} min (" + ", ".join(
        f"{name} {seconds:.0f} s" for name, seconds in timings.items()) + ")")  # fmt: skip
    rows = [
        ("synthetic datasets", ", ".join(str(root) for root in data_roots)),
        ("last snapshot", snapshot),
        ("training log, TensorBoard", output / "log"),  # tensorboard --logdir output/log/tensorboard
        ("metrics (json)", ", ".join(str(m) for m in metrics) or output / "result" / testset),
    ]
    if demo_out is not None:
        rows += [
            ("demo overlay", demo_out / "render_original_img.jpg"),
            ("demo crop overlay, side view", demo_out / "render_cropped_img.jpg"),
            ("demo mesh (and the parameters' json)", demo_out / "output.obj"),
        ]
    for name, where in rows:
        print(f"  {name:30s} {where}")


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="quickstart.py", user_errors=(ConfigError, StepFailedError)))
