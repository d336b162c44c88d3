"""Mesh of one person (or hand, or face) in one image: renders, mesh and parameters, for any mesh family.

    python demo/demo.py --gpu 0 [--img PATH] [--bbox x,y,w,h | --bboxes JSON | --detector-weights PATH]
        [--ckpt PATH] [--cfg YAML] [--out DIR] [--hand-side right|left] [--focal PX | --fov DEG] [key=value ...]

The family is the config's `model.arch` (Hand4Whole's SMPL-X by default; `--cfg pose2pose_hand --ckpt ...` draws a
MANO hand in the --bbox hand box, and likewise pose2pose_body and pose2pose_face).

The person box is --bbox when given, else the whole image. Several people: --bboxes (a JSON list of [x,y,w,h] or
{"bbox": [x,y,w,h]} entries) or, without --bbox, every person that torchvision's Faster R-CNN finds with its weights
file (--detector-weights) go through the model in one batch and share the image's camera (--focal or --fov, default
a 60-degree view): demo/people.py writes one overlay ordered by depth, a side view, and one OBJ and one parameter
file per person. The checkpoint defaults to the highest <output_dir>/model_dump/snapshot_*.pth.tar, the config to
the one embedded in it. Relative paths are relative to the repository root. Bad input (an unreadable image, a box
or boxes file that cannot be used, a missing checkpoint or config, weights that do not fit the model, an unknown
GPU, an output folder that cannot be created or written) ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`, `main`, `demo`

import numpy as np
import torch

from common.engine.cli import UsageError, parse_gpu_ids, run_cli
from common.engine.run_log import check_output_folders
from common.engine.snapshot import latest_snapshot, read_snapshot
from common.paths import REPO_ROOT, resolve_repo_path
from common.utils.image_io import ImageReadError, read_image
from common.utils.render import MeshRenderer, RenderingUnavailableError
from demo.camera import person_crop
from demo.detector import DEFAULT_MIN_SCORE
from demo.full_image_camera import image_camera
from demo.inference import build_model, demo_config, predict_person, select_device
from demo.outputs import write_demo_outputs
from demo.people import people_boxes, run_people_demo
from main.config import Config, ConfigError, load_config
from main.family import MeshView
from main.model import get_family

DEFAULT_IMAGE = REPO_ROOT / "demo" / "input.png"
PROG = "demo.py"
# Besides run_cli's own (UsageError, FileNotFoundError, SnapshotError, StateDictMismatchError, ...): errors whose
# message already names the file or key at fault, reported in one line with exit code 2.
USER_ERRORS = (ConfigError, ImageReadError, RenderingUnavailableError)


class CliParser(argparse.ArgumentParser):
    """argparse whose errors become one line (UsageError, exit code 2 through run_cli) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see --help)")


def parse_bbox(text: str) -> np.ndarray:
    """'x,y,w,h' (original-image pixels, width and height > 0) -> (4,) float32; usable as an argparse type."""
    parts = text.split(",")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(parts) != 4 or len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"invalid box {text!r}: expected four numbers x,y,w,h in pixels")
    if values[2] <= 0 or values[3] <= 0:
        raise argparse.ArgumentTypeError(f"invalid box {text!r}: width and height must be positive")
    return np.array(values, dtype=np.float32)


def _parser() -> argparse.ArgumentParser:
    parser = CliParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", type=parse_gpu_ids, default=[0], help="one GPU id (default 0); CPU without CUDA")
    parser.add_argument("--img", default=str(DEFAULT_IMAGE), help="input image (default demo/input.png)")
    boxes = parser.add_mutually_exclusive_group()
    boxes.add_argument("--bbox", type=parse_bbox, help="person box x,y,w,h in pixels of --img")
    boxes.add_argument("--bboxes", help="several people: a JSON list of [x,y,w,h] or {'bbox': [x,y,w,h]} entries")
    parser.add_argument("--detector-weights", help="without --bbox: every person found by torchvision's "
                        "fasterrcnn_resnet50_fpn with this COCO state_dict file")  # fmt: skip
    parser.add_argument("--detector-min-score", type=float, default=DEFAULT_MIN_SCORE, help="(default %(default)s)")
    parser.add_argument("--ckpt", help="snapshot file (default: the highest <output_dir>/model_dump/snapshot_N)")
    parser.add_argument("--cfg", help="config yaml or name in main/configs/ (default: the one in the snapshot)")
    parser.add_argument("--out", help="output folder (default <output_dir>/vis/demo)")
    parser.add_argument(
        "--hand-side",
        choices=("right", "left"),
        default="right",
        help="pose2pose_hand: the side of the hand in the box (default right)",
    )
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument("--focal", type=float, help="several people: the image's focal length, pixels")
    camera.add_argument("--fov", type=float, help="several people: the image's field of view across its longer side, "
                        "degrees (default 60)")  # fmt: skip
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. human_model_path=DIR")
    return parser


def checkpoint_path(args: argparse.Namespace) -> Path:
    """--ckpt, else the highest snapshot_N.pth.tar of the config's <output_dir>/model_dump (also for video.py)."""
    if args.ckpt is not None:
        return resolve_repo_path(args.ckpt)
    model_dir = Path(load_config(args.cfg, args.overrides).output_dir) / "model_dump"
    found = latest_snapshot(model_dir)
    if found is None:
        raise UsageError(
            f"no checkpoint: {model_dir} has no snapshot_N.pth.tar; train one (python tool/quickstart.py, or "
            "python main/train.py --cfg ...) or pass --ckpt PATH"
        )
    return found


def _person_box(args: argparse.Namespace, image: np.ndarray) -> tuple[np.ndarray, str]:
    """The person box (4,) xywh original pixels and a few words saying where it came from."""
    if args.bbox is not None:
        return args.bbox, "--bbox"
    height, width = image.shape[:2]
    return np.array([0.0, 0.0, width, height], dtype=np.float32), "the whole image (no --bbox, no --detector-weights)"


def mesh_view_and_model(cfg: Config, snapshot: dict, device: torch.device) -> tuple[MeshView, torch.nn.Module]:
    """The family's mesh view and its model with the snapshot's weights (also for video.py)."""
    family = get_family(cfg)
    if family.mesh_view is None:
        raise UsageError(f"model.arch={family.name} predicts no mesh; this demo draws mesh families")
    return family.mesh_view(cfg), build_model(cfg, snapshot["network"], device)


def _main_people(args: argparse.Namespace, image: np.ndarray, cfg: Config, snapshot: dict, device: torch.device,
                 out_dir: Path) -> list[str]:  # fmt: skip
    """The several-people path (demo/people.py); returns the lines to print."""
    bboxes = None if args.bboxes is None else resolve_repo_path(args.bboxes)
    weights = None if bboxes is not None else resolve_repo_path(args.detector_weights)
    boxes, box_source = people_boxes(bboxes, weights, args.detector_min_score, image, device)
    try:
        camera = image_camera(image.shape[:2], args.focal, args.fov)
    except ValueError as exc:
        raise UsageError(f"--focal/--fov: {exc}") from None
    return run_people_demo(image, boxes, box_source, cfg, lambda: mesh_view_and_model(cfg, snapshot, device),
                           device, out_dir, camera, is_left=args.hand_side == "left")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    several_people = args.bboxes is not None or (args.bbox is None and args.detector_weights is not None)
    if not several_people and (args.focal is not None or args.fov is not None):
        raise UsageError("--focal and --fov set the camera several people share: use them with --bboxes or "
                         "--detector-weights")  # fmt: skip
    device, notice = select_device(args.gpu)
    if notice:
        print(f"{PROG}: {notice}", file=sys.stderr)
    image_path = resolve_repo_path(args.img)
    image = read_image(image_path)  # (H, W, 3) uint8 RGB
    snapshot_file = checkpoint_path(args)
    snapshot = read_snapshot(snapshot_file)
    cfg, cfg_source = demo_config(args.cfg, args.overrides, snapshot)
    out_dir = resolve_repo_path(args.out) if args.out else Path(cfg.output_dir) / "vis" / "demo"
    check_output_folders([out_dir])  # before the detector and the model are built
    if several_people:
        lines = _main_people(args, image, cfg, snapshot, device, out_dir)
        print(f"image {image_path}; checkpoint {snapshot_file} (epoch {snapshot.get('epoch')}); {cfg_source}; "
              f"device {device}")  # fmt: skip
        print("\n".join(lines))
        return 0
    bbox, box_source = _person_box(args, image)
    crop = person_crop(bbox, image.shape[:2], cfg.model.input_img_shape)
    if crop is None:
        height, width = image.shape[:2]
        raise UsageError(f"box {bbox.tolist()} (x,y,w,h) lies outside the {width}x{height} image {image_path}")
    view, model = mesh_view_and_model(cfg, snapshot, device)
    prediction = predict_person(model, image, crop, cfg.model, view, device, is_left=args.hand_side == "left")
    with MeshRenderer(image.shape[1], image.shape[0]) as renderer:
        paths = write_demo_outputs(out_dir, image, prediction, view, bbox, renderer)
    print(f"image {image_path}; box {np.round(bbox, 1).tolist()} from {box_source}")
    print(f"checkpoint {snapshot_file} (epoch {snapshot.get('epoch')}); {cfg_source}; device {device}")
    for path in paths.values():
        print(f"  wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog=PROG, user_errors=USER_ERRORS))
