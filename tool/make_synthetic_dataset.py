"""Write a synthetic dataset in AGORA's layout, rendered from SMPL-X parameters.

    python tool/make_synthetic_dataset.py --out DIR --num-images N [--split train|validation] [--seed S]
        [--workers W] [--human-model-path DIR] [--contact-sheet PNG]

then train or test on it with the config override ``data.dataset_roots={AGORA: DIR}``. The body models
default to the synthetic stand-in (generated on first use); ``--human-model-path`` selects another
human_model_files tree, e.g. the licensed SMPL-X files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common` and `data`

from common.engine.cli import UsageError, run_cli
from data.Synthetic import make_dataset
from data.Synthetic.annotations import SPLITS, annotation_file
from data.Synthetic.contact_sheet import contact_sheet

CONTACT_SHEET_IMAGES = 12


def write_synthetic_dataset(
    out: Path,
    num_images: int,
    split: str = "train",
    seed: int = 0,
    workers: int = 1,
    human_model_path: Path | None = None,
    contact_sheet_png: Path | None = None,
) -> dict:
    """``data.Synthetic.make_dataset`` with checked arguments, and optionally a contact sheet.

    Raises:
        UsageError: for a bad argument (its message names it).

    Returns:
        The summary of ``make_dataset``.
    """
    if num_images < 1:
        raise UsageError(f"--num-images must be at least 1, got {num_images}")
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    if seed < 0:
        raise UsageError(f"--seed must be non-negative, got {seed}")
    if human_model_path is not None and not (human_model_path / "smplx").is_dir():
        raise UsageError(f"--human-model-path {human_model_path} has no smplx/ folder (a human_model_files tree)")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    summary = make_dataset(out, split, num_images, seed, workers, human_model_path)
    if contact_sheet_png is not None:
        contact_sheet(out, split, min(CONTACT_SHEET_IMAGES, num_images), contact_sheet_png)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the dataset root to write (AGORA's data folder)")
    parser.add_argument("--num-images", type=int, required=True, help="number of 1280x720 images")
    parser.add_argument("--split", choices=SPLITS, default="train", help="default: train")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="generating processes")
    parser.add_argument("--human-model-path", type=Path, help="human_model_files tree (default: synthetic stand-in)")
    parser.add_argument(
        "--contact-sheet", type=Path, help=f"also write a PNG of {CONTACT_SHEET_IMAGES} annotated images"
    )
    args = parser.parse_args(argv)
    summary = write_synthetic_dataset(
        args.out, args.num_images, args.split, args.seed, args.workers, args.human_model_path, args.contact_sheet
    )
    print(
        f"wrote {summary['images']} images, {summary['people']} people ({summary['valid']} valid) to {args.out} "
        f"({annotation_file(args.split)}) in {summary['seconds']:.1f} s: {summary['images_per_s']:.2f} images/s "
        f"with {min(args.workers, args.num_images)} worker(s)"
    )
    if args.contact_sheet is not None:
        print(f"contact sheet: {args.contact_sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
