"""Write the ground-truth files of one MSRA fold as V2V-PoseNet's PyTorch port names them: train_s{K}_gt.txt and
test_s{K}_gt.txt, the files its accuracy tools compare predictions with.

    python tool/gen_gt.py --root DIR --test-subject K --out DIR [--center-dir DIR]

One line per frame whose refined centre is valid (frames with an 'invalid' centre are skipped, as upstream), in
the release's order: 21 joints x (x y z) mm, '%.4f', in the upstream convention: V2V's world, x right, y up, z the
depth (positive), i.e. joint.txt with z negated; ours (x, y down) with y negated. The centre files default to
DIR/center (data/MSRA/msra_files.py documents the layout).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common` and `data`

from common.engine.cli import UsageError, run_cli
from common.utils.atomic_io import write_bytes_atomic
from data.MSRA.msra_files import SPLITS, SUBJECTS, camera_to_msra_world, load_fold


def gt_lines(joints_mm: np.ndarray) -> str:
    """(N, 21, 3) camera-frame joints (mm) as the text of a ``*_gt.txt`` file: one V2V-world line per frame."""
    world = camera_to_msra_world(joints_mm).reshape(len(joints_mm), -1)
    return "".join(" ".join(f"{v:.4f}" for v in row) + "\n" for row in world.astype(np.float64))


def write_gt_files(
    root: str | os.PathLike[str],
    test_subject: int,
    out_dir: str | os.PathLike[str],
    center_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """Writes ``train_s{K}_gt.txt`` and ``test_s{K}_gt.txt`` of fold ``test_subject`` into ``out_dir``.

    Args:
        root: the MSRA release folder (P0..P8).
        test_subject: K, 0..8.
        out_dir: where the two files go (created).
        center_dir: the refined centre files' folder; None: ``root/center``.

    Returns:
        {'train': path, 'test': path}.
    """
    if not 0 <= test_subject < SUBJECTS:
        raise UsageError(f"--test-subject must be 0..{SUBJECTS - 1}, got {test_subject}")
    written = {}
    for split in SPLITS:
        fold = load_fold(root, test_subject, split, center_dir)
        path = Path(out_dir) / f"{split}_s{test_subject}_gt.txt"
        written[split] = write_bytes_atomic(path, gt_lines(fold.joints_mm[fold.valid]).encode("ascii"))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="the MSRA release folder (P0..P8)")
    parser.add_argument("--test-subject", type=int, required=True, help=f"the held-out subject, 0..{SUBJECTS - 1}")
    parser.add_argument("--out", type=Path, required=True, help="the folder to write the two files to")
    parser.add_argument("--center-dir", type=Path, help="the refined centre files (default: ROOT/center)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        raise UsageError(f"--root {args.root} is not a folder")
    written = write_gt_files(args.root, args.test_subject, args.out, args.center_dir)
    for split, path in written.items():
        lines = path.read_text(encoding="ascii").count("\n")
        print(f"wrote {path}: {lines} {split} frames")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="gen_gt.py"))
