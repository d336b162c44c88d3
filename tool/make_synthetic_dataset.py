"""Write a synthetic dataset in AGORA's layout (SMPL-X people), FreiHAND's (MANO hands), FFHQ's (FLAME faces) or
the upstream Integral Human3.6M layout (SMPL-X people seen by 4 calibrated cameras), or MPII's COCO-format release.

    python tool/make_synthetic_dataset.py --out DIR --num-images N [--format agora|freihand|ffhq|h36m|mpii]
        [--split train|validation (agora), train|eval (freihand)] [--seed S] [--workers W]
        [--human-model-path DIR] [--contact-sheet PNG (agora)] [--subjects 1,5,9,11 --actions 2,14 (h36m)]

then train or test on it with the config override ``data.dataset_roots={AGORA: DIR}`` (agora; DIR is AGORA's data
folder). For freihand and ffhq, DIR is the dataset's own folder (FreiHAND/, FFHQ/) and the annotations go to
DIR/data, as Hand4Whole's tree has them. For h36m, DIR is the Human3.6M folder: one folder per (subject, action,
subaction 1, camera 1-4) goes to DIR/data/s_XX_act_XX_subact_XX_ca_XX/ with N frames each (``--num-images`` counts
the frames of one folder) and its h36m_meta.mat (data/Synthetic/h36m_writer.py documents the keys and conventions).
For mpii, DIR is MPII's folder (annotations/train.json, images/): N single-person frames of the synthetic Human3.6M
people S6, S7, S8 (at most 360), read with ``data.dataset_roots={MPII: DIR}`` (data/Synthetic/mpii_writer.py).
For h36m_multiview (learnable triangulation's Human3.6M layout: processed/ images, distorted and undistorted, and
extra/human36m-multiview-labels-GTbboxes.npy) and cmu (CMU Panoptic's release layout, 5 HD cameras, 2 sequences),
DIR is the dataset root and N the frames per sequence; ``--image-scale`` shrinks the frames
(data/Synthetic/multiview_writer.py).
For msra, DIR is the MSRA folder (P0..P8/<gesture>/, center/): depth maps of the MANO right hand, N frames per
gesture folder of the subjects ``--subjects`` (MSRA's 0..8, default 0,1,2) and the gestures ``--gestures`` (default
all 17), with V2V-PoseNet's centre files (data/Synthetic/msra_writer.py).
The body models default to the synthetic stand-in (generated on first use); ``--human-model-path`` selects another
human_model_files tree, e.g. the licensed files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common` and `data`

from common.engine.cli import UsageError, run_cli
from data.Synthetic import freihand_writer as freihand
from data.Synthetic import h36m_writer as h36m
from data.Synthetic import make_dataset, make_ffhq, make_freihand, make_h36m, make_mpii
from data.Synthetic import msra_writer as msra
from data.Synthetic.annotations import SPLITS, annotation_file
from data.Synthetic.contact_sheet import contact_sheet
from data.Synthetic.multiview_writer import make_cmu_panoptic, make_h36m_multiview

CONTACT_SHEET_IMAGES = 12
FORMATS = ("agora", "freihand", "ffhq", "h36m", "mpii")
# FFHQ has one split; Human3.6M's splits are sets of subjects (--subjects)
FORMAT_SPLITS = {"agora": SPLITS, "freihand": freihand.SPLITS, "ffhq": ("train",), "h36m": ("train",),
                 "mpii": ("train",)}  # fmt: skip
# the body-model folder each format poses with
MODEL_FOLDER = {"agora": "smplx", "freihand": "mano", "ffhq": "flame", "h36m": "smplx", "mpii": "smplx"}
FORMATS += ("h36m_multiview", "cmu")  # multi-view: splits are sets of subjects (--subjects) or sequences
FORMAT_SPLITS |= {"h36m_multiview": ("train",), "cmu": ("train",)}
MODEL_FOLDER |= {"h36m_multiview": "smplx", "cmu": "smplx"}
FORMATS += ("msra",)  # MSRA hand gestures: depth maps; one split, the folds are sets of subjects
FORMAT_SPLITS |= {"msra": ("train",)}
MODEL_FOLDER |= {"msra": "mano"}
H36M_SUBJECTS = (1, 5, 9, 11)
H36M_ACTIONS = (2, 14)  # Directions, Walking


def write_synthetic_dataset(
    out: Path,
    num_images: int,
    split: str = "train",
    seed: int = 0,
    workers: int = 1,
    human_model_path: Path | None = None,
    contact_sheet_png: Path | None = None,
    data_format: str = "agora",
    subjects: tuple[int, ...] = H36M_SUBJECTS,
    actions: tuple[int, ...] = H36M_ACTIONS,
    image_scale: float = 1.0,
    gestures: tuple[str, ...] | None = None,
) -> dict:
    """``data.Synthetic``'s writer of ``data_format`` with checked arguments, and optionally a contact sheet.

    Raises:
        UsageError: for a bad argument (its message names it).

    Returns:
        The summary of ``make_dataset``, ``make_freihand``, ``make_ffhq`` or ``make_h36m`` (``subjects`` and
        ``actions`` are h36m's; ``num_images`` is then the frame count of each sequence folder).
    """
    _check_arguments(out, num_images, split, seed, workers, human_model_path, data_format)
    if contact_sheet_png is not None and data_format != "agora":
        raise UsageError(f"--contact-sheet is written for --format agora only, not {data_format}")
    if data_format == "freihand":
        return make_freihand(out, num_images, split, seed, workers, human_model_path)
    if data_format == "ffhq":
        return make_ffhq(out, num_images, seed, workers, human_model_path)
    if data_format == "h36m":
        _check_h36m(subjects, actions)
        return make_h36m(out, subjects, actions, num_images, seed, workers, human_model_path)
    if data_format == "mpii":  # the people of the synthetic Human3.6M subjects S6, S7, S8
        return make_mpii(out, num_images, seed=seed, workers=workers, human_model_path=human_model_path)
    if data_format in ("h36m_multiview", "cmu"):
        return _write_multiview(out, num_images, seed, workers, human_model_path, data_format, subjects, actions,
                                image_scale)  # fmt: skip
    if data_format == "msra":  # num_images: the frames of each gesture folder
        return _write_msra(out, num_images, seed, human_model_path, subjects, gestures)
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


def _write_multiview(
    out: Path, frames: int, seed: int, workers: int, human_model_path: Path | None, data_format: str,
    subjects: tuple[int, ...], actions: tuple[int, ...], image_scale: float,
) -> dict:  # fmt: skip
    """``make_h36m_multiview`` or ``make_cmu_panoptic``; a size the writer refuses is a UsageError."""
    if not image_scale > 0:
        raise UsageError(f"--image-scale must be positive, got {image_scale}")
    options = {"frames_per_sequence": frames, "seed": seed, "workers": workers, "human_model_path": human_model_path,
               "image_scale": image_scale}  # fmt: skip
    try:
        if data_format == "cmu":
            return make_cmu_panoptic(out, **options)
        _check_h36m(subjects, actions)
        return make_h36m_multiview(out, subjects, actions, **options)
    except ValueError as err:  # e.g. a scale that leaves fewer than 64 pixels
        raise UsageError(str(err)) from err


def _write_msra(
    out: Path, frames: int, seed: int, human_model_path: Path | None, subjects: tuple[int, ...],
    gestures: tuple[str, ...] | None,
) -> dict:  # fmt: skip
    """``make_msra`` (one process); --subjects at its h36m default means MSRA's default subjects."""
    subjects = msra.DEFAULT_SUBJECTS if subjects == H36M_SUBJECTS else subjects
    gestures = msra.GESTURES if gestures is None else gestures
    try:
        msra.check_request(subjects, frames, gestures, seed)
    except ValueError as err:
        raise UsageError(f"--format msra: {err}") from err
    return msra.make_msra(out, subjects, frames, gestures, seed, human_model_path)


def _check_h36m(subjects: tuple[int, ...], actions: tuple[int, ...]) -> None:
    for flag, values, known in (("--subjects", subjects, h36m.SUBJECTS), ("--actions", actions, h36m.ACTION_NAMES)):
        if not values or not set(values) <= set(known) or len(set(values)) != len(values):
            raise UsageError(f"{flag} must be distinct values of {', '.join(map(str, known))}, got {values}")


def _int_list(text: str) -> tuple[int, ...]:
    """'1,5,9' -> (1, 5, 9)."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _report(args: argparse.Namespace, summary: dict) -> str:
    """The one-line summary printed after a run."""
    workers = min(args.workers, summary.get("folders", args.num_images))
    speed = f"in {summary['seconds']:.1f} s: {summary['images_per_s']:.2f} images/s with {workers} worker(s)"
    if args.format == "agora":
        return (
            f"wrote {summary['images']} images, {summary['people']} people ({summary['valid']} valid) to {args.out} "
            f"({annotation_file(args.split)}) {speed}"
        )
    if args.format == "h36m":
        return (
            f"wrote {summary['folders']} sequence folders, {summary['images']} frames in the upstream Human3.6M "
            f"layout to {args.out / 'data'} {speed}"
        )
    if args.format in ("h36m_multiview", "cmu"):
        return f"wrote {summary['frames']} multi-view frames ({summary['images']} images) to {args.out} {speed}"
    if args.format == "mpii":
        return f"wrote {summary['images']} images in MPII's COCO-format layout to {args.out} {speed}"
    if args.format == "msra":
        return f"wrote {summary['images']} depth frames and V2V's centre files in MSRA's layout to {args.out} {speed}"
    what = f"{args.split} hand crops" if args.format == "freihand" else "face crops"
    return f"wrote {summary['images']} {what} in {args.format}'s layout to {args.out / 'data'} {speed}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the dataset folder to write (see the docstring)")
    parser.add_argument("--num-images", type=int, required=True, help="number of images (or crops; h36m: frames "
                        "per sequence folder)")  # fmt: skip
    parser.add_argument("--format", choices=FORMATS, default="agora", help="the layout to write (default: agora)")
    splits = sorted({s for format_splits in FORMAT_SPLITS.values() for s in format_splits})
    parser.add_argument("--split", choices=splits, default="train", help="agora: train|validation, freihand: "
                        "train|eval, ffhq and h36m: train (default: train)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="generating processes")
    parser.add_argument("--human-model-path", type=Path, help="human_model_files tree (default: synthetic stand-in)")
    parser.add_argument(
        "--contact-sheet", type=Path, help=f"agora: also write a PNG of {CONTACT_SHEET_IMAGES} annotated images"
    )
    parser.add_argument("--subjects", type=_int_list, default=H36M_SUBJECTS, help="h36m: comma-separated subject "
                        "numbers (default: 1,5,9,11)")  # fmt: skip
    parser.add_argument("--actions", type=_int_list, default=H36M_ACTIONS, help="h36m: comma-separated action "
                        "numbers, 2 (Directions) .. 16 (WalkTogether) (default: 2,14)")  # fmt: skip
    parser.add_argument("--gestures", type=lambda text: tuple(v for v in text.split(",") if v), help="msra: "
                        "comma-separated gesture folders, e.g. 1,5,T (default: all 17)")  # fmt: skip
    parser.add_argument("--image-scale", type=float, default=1.0, help="h36m_multiview and cmu: frame size factor "
                        "(1: 1002x1000 and 1080x1920 pixels)")  # fmt: skip
    args = parser.parse_args(argv)
    summary = write_synthetic_dataset(
        args.out, args.num_images, args.split, args.seed, args.workers, args.human_model_path, args.contact_sheet,
        args.format, args.subjects, args.actions, args.image_scale, args.gestures,
    )  # fmt: skip
    print(_report(args, summary))
    if args.contact_sheet is not None:
        print(f"contact sheet: {args.contact_sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
