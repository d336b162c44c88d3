"""Per-person crops of AGORA's 4K images, what data.agora_resolution=3840x2160 reads (Hand4Whole's tool).

    python tool/AGORA/crop_and_resize_4k_images.py --dataset_path DATA/AGORA/data [--out_height 512]
        [--out_width 384] [--workers N]

For every annotation of AGORA_train_SMPLX.json and AGORA_validation_SMPLX.json (all of them, as Hand4Whole; a
split with only the SMPL variant, AGORA_<split>_SMPL.json, takes its boxes from that) and every detection of
AGORA_test_bbox.json (whichever files exist), the person box is made a crop box
with common.utils.augmentation.process_bbox (clipped to the image, grown to aspect 0.75, x1.25: the box the
720p mode crops) and cut out of the 4K image with cv2.warpAffine (bilinear, black outside) at the output size.
Written next to each other:

    images_3840x2160/<folder>_crop/<image>_person_id_<k>.png   the crop
    images_3840x2160/<folder>_crop/<image>_person_id_<k>.json  bbox_orig (the crop box, xywh 4K pixels),
        affine_mat ((2, 3) 4K pixels -> crop pixels), resized_height, resized_width

<folder> is that of file_name_3840x2160 (train_0, ..., validation), and 'test' for the detections, whose images
are read from 3840x2160/test/<file name>. Hand4Whole grew the box without clipping it first; the two differ
only for boxes that reach past the image border. A box entirely outside the image gets no crop (the loader
drops that person). Each 4K image is read once for all its persons.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.utils.atomic_io import write_bytes_atomic, write_json_atomic
from common.utils.augmentation import ASPECT_RATIO, crop_affine, process_bbox
from common.utils.image_io import read_image
from data.AGORA.AGORA import IMAGE_HW_4K, TEST_BBOX_FILE, crop_file_stem, read_test_detections
from data.AGORA.fits import FIT_VARIANTS, checked_relpath
from data.annotation_io import read_json

logger = logging.getLogger(__name__)

__all__ = ["ImageCrops", "crop_and_resize_4k_images", "crop_image_people", "crop_jobs", "main"]

CROP_ROOT = "images_3840x2160"


def _single_thread_opencv() -> None:
    # OpenCV's thread pool is not fork-safe (a forked worker can wait forever on the parent's pool threads);
    # with one thread there is no pool to inherit, and each worker cuts whole images on its own anyway.
    cv2.setNumThreads(1)


@dataclass(frozen=True)
class ImageCrops:
    """The crops to cut from one 4K image.

    Attributes:
        source: the 4K image file.
        boxes_xywh: per person, (4,) person box in 4K pixels (before process_bbox).
        targets: per person, the crop's .png path (its .json sits next to it).
    """

    source: Path
    boxes_xywh: tuple[np.ndarray, ...]
    targets: tuple[Path, ...]


def _annotation_file(dataset_path: Path, split: str) -> Path | None:
    """The split's SMPL-X annotation file, else its SMPL one (the same persons and crops), else None."""
    for variant in FIT_VARIANTS.values():  # SMPL-X first, as Hand4Whole cropped from it
        path = dataset_path / variant.annotation_file.format(split=split)
        if path.is_file():
            return path
    return None


def _annotated_images(dataset_path: Path, path: Path) -> list[ImageCrops]:
    db = read_json(path)
    try:
        people: dict[int, list] = {image["id"]: [] for image in db["images"]}
        for ann in db["annotations"]:
            people[ann["image_id"]].append((np.asarray(ann["bbox"], np.float64).reshape(4), int(ann["person_id"])))
        jobs = []
        for image in db["images"]:
            name = PurePosixPath(checked_relpath(image["file_name_3840x2160"], path, f"image {image['id']}",
                                                 "file_name_3840x2160"))  # fmt: skip
            folder = dataset_path / CROP_ROOT / f"{name.parent.name}_crop"
            boxes, ids = zip(*people[image["id"]], strict=True) if people[image["id"]] else ((), ())
            targets = tuple(folder / f"{crop_file_stem(name.stem, k)}.png" for k in ids)
            jobs.append(ImageCrops(dataset_path / image["file_name_3840x2160"], tuple(boxes), targets))
    except KeyError as error:
        raise ValueError(f"{path}: missing key {error} in an image or annotation entry") from None
    return jobs


def crop_jobs(dataset_path: Path) -> list[ImageCrops]:
    """The crops of every annotation file present under ``dataset_path``, one entry per 4K image with people."""
    jobs = []
    for split in ("train", "validation"):
        path = _annotation_file(dataset_path, split)
        if path is not None:
            jobs += _annotated_images(dataset_path, path)
        else:
            logger.info("no AGORA_%s_SMPLX.json or _SMPL.json under %s: no %s crops", split, dataset_path, split)
    if (dataset_path / TEST_BBOX_FILE).is_file():
        for file_name, boxes in read_test_detections(dataset_path / TEST_BBOX_FILE).items():
            stem = PurePosixPath(file_name).stem
            targets = tuple(dataset_path / CROP_ROOT / "test_crop" / f"{crop_file_stem(stem, k)}.png"
                            for k in range(len(boxes)))  # fmt: skip
            jobs.append(ImageCrops(dataset_path / "3840x2160" / "test" / file_name, tuple(boxes), targets))
    else:
        logger.info("no %s under %s: no test crops", TEST_BBOX_FILE, dataset_path)
    return [job for job in jobs if job.targets]


def crop_image_people(job: ImageCrops, out_hw: tuple[int, int]) -> int:
    """Cut and write the crops of one image (module docstring); returns how many were written.

    Raises:
        ImageReadError: the 4K image is missing or unreadable. ValueError: it is not 3840x2160.
    """
    image = None  # read only if some box lies in the image
    written = 0
    for bbox_xywh, target in zip(job.boxes_xywh, job.targets, strict=True):
        crop_box = process_bbox(bbox_xywh, IMAGE_HW_4K[1], IMAGE_HW_4K[0])
        if crop_box is None:
            logger.warning("%s: box %s lies outside the image, no crop %s", job.source, bbox_xywh.tolist(), target.name)
            continue
        image = read_image(job.source, IMAGE_HW_4K) if image is None else image  # (2160, 3840, 3) RGB
        img2crop = crop_affine(crop_box, out_hw)  # (2, 3) float64
        patch = cv2.warpAffine(image, img2crop, (out_hw[1], out_hw[0]), flags=cv2.INTER_LINEAR)
        ok, png = cv2.imencode(".png", cv2.cvtColor(patch, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError(f"{target}: PNG encoding failed")
        write_bytes_atomic(target, png.tobytes())
        write_json_atomic(target.with_suffix(".json"), {"bbox_orig": crop_box.astype(float).tolist(),
                                                        "affine_mat": img2crop.tolist(), "resized_height": out_hw[0],
                                                        "resized_width": out_hw[1]})  # fmt: skip
        written += 1
    return written


def crop_and_resize_4k_images(dataset_path: str | Path, out_hw: Sequence[int] = (512, 384), workers: int = 1) -> int:
    """Write every crop (module docstring); returns the number written.

    Args:
        dataset_path: AGORA's data root (the folder with AGORA_*_SMPLX.json and 3840x2160/).
        out_hw: (H, W) of the crops in pixels; W / H must be 0.75, the aspect of the crop box and of the network
            input (the loader stretches the whole crop file onto the input).
        workers: processes cutting images in parallel (1: this process).
    """
    out_hw = (int(out_hw[0]), int(out_hw[1]))
    if abs(out_hw[1] / out_hw[0] - ASPECT_RATIO) > 1e-9:
        raise ValueError(f"crop size {out_hw[0]}x{out_hw[1]} (HxW): width / height must be {ASPECT_RATIO}")
    jobs = crop_jobs(Path(dataset_path))
    logger.info("cropping %d persons from %d images", sum(len(j.targets) for j in jobs), len(jobs))
    crop = partial(crop_image_people, out_hw=out_hw)
    if workers <= 1:
        return sum(crop(job) for job in jobs)
    _single_thread_opencv()  # before the workers fork from this process
    with ProcessPoolExecutor(max_workers=workers, initializer=_single_thread_opencv) as pool:
        return sum(pool.map(crop, jobs, chunksize=4))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset_path", type=Path, required=True, help="AGORA's data root")
    parser.add_argument("--out_height", type=int, default=512, help="crop height, pixels")
    parser.add_argument("--out_width", type=int, default=384, help="crop width, pixels (0.75 x height)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        written = crop_and_resize_4k_images(args.dataset_path, (args.out_height, args.out_width), args.workers)
    except (OSError, ValueError) as error:
        print(f"crop_and_resize_4k_images: {error}", file=sys.stderr)
        return 1
    print(f"wrote {written} crops under {args.dataset_path / CROP_ROOT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
