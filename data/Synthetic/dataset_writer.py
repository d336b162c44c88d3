"""A whole synthetic split in AGORA's layout: images made in parallel, one annotation file in index order.

Each worker process builds one :class:`ImageGenerator` (one body-model set, one OpenGL context) and makes
the indices the pool hands it. Every image is a pure function of (seed, split, index), so the written
files, the annotation file included, are the same bytes whatever the number of workers.

A small manifest per split (``synthetic_manifest_{split}.json``) records the settings of a finished run;
it is removed first and written last, so it exists only next to a complete dataset.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from multiprocessing import util
from pathlib import Path
from typing import Any

from tqdm import tqdm

from common.utils.atomic_io import write_json_atomic

from . import annotations as agora
from .generator import GeneratorOptions, ImageGenerator, ImageRecords, people_summary
from .parts_writer import check_request
from .smpl_variant import smpl_document

MANIFEST_VERSION = 1  # bump when a change of the generator changes what a seed produces
CATEGORIES = [{"id": 1, "name": "person", "supercategory": "person"}]

_worker_generator: ImageGenerator | None = None  # the generator of a worker process (set by _init_worker)


def manifest_path(out_dir: str | os.PathLike[str], split: str) -> Path:
    """The manifest of a split's finished run, e.g. DIR/synthetic_manifest_train.json."""
    return Path(out_dir) / f"synthetic_manifest_{split}.json"


def _settings(split: str, num_images: int, seed: int, human_model_path: Path) -> dict[str, Any]:
    """What decides a dataset's bytes (the worker count does not)."""
    return {
        "version": MANIFEST_VERSION,
        "split": split,
        "num_images": num_images,
        "seed": seed,
        "human_model_path": str(human_model_path),
    }


def _resolve_human_model_path(human_model_path: str | os.PathLike[str] | None) -> Path:
    if human_model_path is None:
        from common.body_models.synthetic import ensure_synthetic_body_models

        return ensure_synthetic_body_models().resolve()
    path = Path(human_model_path).resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"human_model_path {path} is not a folder (a human_model_files tree is expected)")
    return path


def _init_worker(human_model_path: Path, options: GeneratorOptions, out_dir: Path, workers: int) -> None:
    global _worker_generator
    # Mesa's software rasterizer starts a thread per core in every process; with one process per core those
    # threads only contend. Read when the OpenGL context is made, i.e. below; a user's setting wins.
    os.environ.setdefault("LP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    _worker_generator = ImageGenerator(human_model_path, options, out_dir)
    # Free the OpenGL context when the pool shuts the worker down (plain exit skips __del__).
    util.Finalize(_worker_generator, _worker_generator.close, exitpriority=10)


def _generate_in_worker(index: int) -> ImageRecords:
    assert _worker_generator is not None, "_init_worker did not run in this process"
    return _worker_generator.generate(index)


def _generate_all(
    human_model_path: Path, options: GeneratorOptions, out_dir: Path, num_images: int, workers: int
) -> Iterator[ImageRecords]:
    """Yields the records of images 0..num_images-1, in any order."""
    if workers == 1:  # in this process: no start-up cost, and a debugger sees everything
        with ImageGenerator(human_model_path, options, out_dir) as generator:
            for index in range(num_images):
                yield generator.generate(index)
        return
    # spawn: a forked child would inherit the parent's OpenGL and OpenMP state, which neither survives.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, _init_worker, (human_model_path, options, out_dir, workers)) as pool:
        # One index per task: images take 0.1-1 s each, so balancing beats batching.
        yield from pool.imap_unordered(_generate_in_worker, range(num_images), chunksize=1)
        pool.close()
        pool.join()


def coco_document(records: list[ImageRecords]) -> dict[str, Any]:
    """AGORA's COCO-format annotation document of images given in index order; annotation ids count from 0."""
    images, annotations = [], []
    for record in records:
        images.append(record.image)
        for annotation in record.annotations:
            annotations.append({"id": len(annotations), "image_id": record.image["id"], **annotation})
    return {"images": images, "annotations": annotations, "categories": CATEGORIES}


def make_dataset(
    out_dir: str | os.PathLike[str],
    split: str,
    num_images: int,
    seed: int = 0,
    workers: int = 1,
    human_model_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generates a split of the synthetic dataset in AGORA's layout under ``out_dir``.

    Writes ``AGORA_{split}_SMPLX.json``, the 1280x720 images, ``smplx_params_cam/{split}/...`` and
    ``cam_params/{split}/...`` (see ``annotations``), the SMPL variant ``AGORA_{split}_SMPL.json`` and
    ``smpl_params_cam/{split}/...`` (``smpl_variant``), then the split's manifest.

    Args:
        out_dir: the dataset root (AGORA's ``data`` folder); created if missing.
        split: 'train' or 'validation'.
        num_images: number of images, >= 1.
        seed: non-negative; the same seed gives the same bytes.
        workers: processes generating images, >= 1 (more than ``num_images`` are not started).
        human_model_path: the body-model tree; None uses the synthetic stand-in (generated if missing).
        progress: show a tqdm progress bar.

    Returns:
        Summary: images, people, valid (people with ``is_valid``), seconds, images_per_s.
    """
    if split not in agora.SPLITS:
        raise ValueError(f"split must be one of {agora.SPLITS}, got {split!r}")
    check_request(num_images, seed, workers)
    out_dir = Path(out_dir)
    model_path = _resolve_human_model_path(human_model_path)
    options = GeneratorOptions(split=split, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path(out_dir, split).unlink(missing_ok=True)  # the old dataset is no longer complete

    start = time.perf_counter()
    records: list[ImageRecords | None] = [None] * num_images
    stream = _generate_all(model_path, options, out_dir, num_images, min(workers, num_images))
    for record in tqdm(stream, total=num_images, desc=f"synthetic {split}", unit="img", disable=not progress):
        records[record.image["id"]] = record
    ordered = [r for r in records if r is not None]
    if len(ordered) != num_images:  # would be a bug in the pool plumbing, not in the caller's input
        raise RuntimeError(f"{num_images - len(ordered)} of {num_images} images are missing")
    document = coco_document(ordered)
    write_json_atomic(out_dir / agora.annotation_file(split), document)
    write_json_atomic(out_dir / agora.smpl_annotation_file(split), smpl_document(document))
    seconds = time.perf_counter() - start
    write_json_atomic(manifest_path(out_dir, split), _settings(split, num_images, seed, model_path))
    return {**people_summary(ordered), "seconds": seconds, "images_per_s": num_images / max(seconds, 1e-9)}


def ensure_dataset(
    out_dir: str | os.PathLike[str],
    split: str,
    num_images: int,
    seed: int = 0,
    workers: int = 1,
    human_model_path: str | os.PathLike[str] | None = None,
) -> Path:
    """``make_dataset`` unless ``out_dir`` already holds this split made with the same settings.

    The settings are the split, number of images, seed, body-model path and generator version (not the
    worker count, which does not change the bytes). A dataset written before the SMPL variant existed (the same
    SMPL-X bytes, no AGORA_<split>_SMPL.json) is made again.

    Returns:
        ``out_dir`` as a Path.
    """
    out_dir = Path(out_dir)
    wanted = _settings(split, num_images, seed, _resolve_human_model_path(human_model_path))
    manifest = manifest_path(out_dir, split)
    annotation_files = (agora.annotation_file(split), agora.smpl_annotation_file(split))
    if manifest.is_file() and all((out_dir / name).is_file() for name in annotation_files):
        try:
            if json.loads(manifest.read_text()) == wanted:
                return out_dir
        except json.JSONDecodeError:
            pass  # a corrupt manifest means an unknown dataset: make it again
    make_dataset(out_dir, split, num_images, seed, workers, human_model_path, progress=False)
    return out_dir
