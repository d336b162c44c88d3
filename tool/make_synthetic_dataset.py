"""Write a synthetic dataset in AGORA's layout (SMPL-X people), FreiHAND's (MANO hands) or FFHQ's (FLAME faces).

    python tool/make_synthetic_dataset.py --out DIR --num-images N [--format agora|freihand|ffhq]
        [--split train|validation (agora), train|eval (freihand)] [--seed S] [--workers W]
        [--human-model-path DIR] [--contact-sheet PNG (agora)]

then train or test on it with the config override ``data.dataset_roots={AGORA: DIR}`` (agora; DIR is AGORA's data
folder). For freihand and ffhq, DIR is the dataset's own folder (FreiHAND/, FFHQ/) and the annotations go to
DIR/data, as Hand4Whole's tree has them. The body models default to the synthetic stand-in (generated on first
use); ``--human-model-path`` selects another human_model_files tree, e.g. the licensed files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common` and `data`

from common.engine.cli import UsageError, run_cli
from data.Synthetic import freihand_writer as freihand
from data.Synthetic import make_dataset, make_ffhq, make_freihand
from data.Synthetic.annotations import SPLITS, annotation_file
from data.Synthetic.contact_sheet import contact_sheet

CONTACT_SHEET_IMAGES = 12
FORMATS = ("agora", "freihand", "ffhq")
FORMAT_SPLITS = {"agora": SPLITS, "freihand": freihand.SPLITS, "ffhq": ("train",)}  # FFHQ has one split
MODEL_FOLDER = {"agora": "smplx", "freihand": "mano", "ffhq": "flame"}  # the tree's folder each format poses with


def write_synthetic_dataset(
    out: Path,
    num_images: int,
    split: str = "train",
    seed: int = 0,
    workers: int = 1,
    human_model_path: Path | None = None,
    contact_sheet_png: Path | None = None,
    data_format: str = "agora",
) -> dict:
    """``data.Synthetic``'s writer of ``data_format`` with checked arguments, and optionally a contact sheet.

    Raises:
        UsageError: for a bad argument (its message names it).

    Returns:
        The summary of ``make_dataset``, ``make_freihand`` or ``make_ffhq``.
    """
    _check_arguments(out, num_images, split, seed, workers, human_model_path, data_format)
    if contact_sheet_png is not None and data_format != "agora":
        raise UsageError(f"--contact-sheet is written for --format agora only, not {data_format}")
    if data_format == "freihand":
        return make_freihand(out, num_images, split, seed, workers, human_model_path)
    if data_format == "ffhq":
        return make_ffhq(out, num_images, seed, workers, human_model_path)
    summary = make_dataset(out, split, num_images, seed, workers, human_model_path)
    if contact_sheet_png is not None:
        contact_sheet(out, split, min(CONTACT_SHEET_IMAGES, num_images), contact_sheet_png)
    return summary


def _check_arguments(
    out: Path, num_images: int, split: str, seed: int, workers: int, human_model_path: Path | None, data_format: str
) -> None:
    if data_format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {data_format!r}")
    if split not in FORMAT_SPLITS[data_format]:
        raise UsageError(f"--split {split} is not a {data_format} split ({', '.join(FORMAT_SPLITS[data_format])})")
    if num_images < 1:
        raise UsageError(f"--num-images must be at least 1, got {num_images}")
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    if seed < 0:
        raise UsageError(f"--seed must be non-negative, got {seed}")
    folder = MODEL_FOLDER[data_format]
    if human_model_path is not None and not (human_model_path / folder).is_dir():
        raise UsageError(f"--human-model-path {human_model_path} has no {folder}/ folder (a human_model_files tree)")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")


def _report(args: argparse.Namespace, summary: dict) -> str:
    """The one-line summary printed after a run."""
    workers = min(args.workers, args.num_images)
    speed = f"in {summary['seconds']:.1f} s: {summary['images_per_s']:.2f} images/s with {workers} worker(s)"
    if args.format == "agora":
        return (
            f"wrote {summary['images']} images, {summary['people']} people ({summary['valid']} valid) to {args.out} "
            f"({annotation_file(args.split)}) {speed}"
        )
    what = f"{args.split} hand crops" if args.format == "freihand" else "face crops"
    return f"wrote {summary['images']} {what} in {args.format}'s layout to {args.out / 'data'} {speed}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the dataset folder to write (see the docstring)")
    parser.add_argument("--num-images", type=int, required=True, help="number of images (or crops)")
    parser.add_argument("--format", choices=FORMATS, default="agora", help="the layout to write (default: agora)")
    splits = sorted({s for format_splits in FORMAT_SPLITS.values() for s in format_splits})
    parser.add_argument("--split", choices=splits, default="train", help="agora: train|validation, freihand: "
                        "train|eval, ffhq: train (default: train)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="generating processes")
    parser.add_argument("--human-model-path", type=Path, help="human_model_files tree (default: synthetic stand-in)")
    parser.add_argument(
        "--contact-sheet", type=Path, help=f"agora: also write a PNG of {CONTACT_SHEET_IMAGES} annotated images"
    )
    args = parser.parse_args(argv)
    summary = write_synthetic_dataset(
        args.out, args.num_images, args.split, args.seed, args.workers, args.human_model_path, args.contact_sheet,
        args.format,
    )  # fmt: skip
    print(_report(args, summary))
    if args.contact_sheet is not None:
        print(f"contact sheet: {args.contact_sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
