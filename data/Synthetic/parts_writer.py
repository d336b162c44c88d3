"""Shared machinery of the part-crop writers (FreiHAND hands, FFHQ faces): crop cameras, framing, skin, workers.

A crop is a pure function of its seed triple (seed, split, index), made as the AGORA generator makes its images:
a random generator seeded from the triple, torch single-threaded, unlit rendering (bit-exact). So any worker can
make any crop and a dataset is the same bytes whatever the number of workers. Each writer module supplies a
generator class with ``generate(index) -> record`` (a JSON-able dict) and ``close()``; `generate_records` runs it
in this process or in a pool of spawned processes and returns the records in index order.

A manifest (``synthetic_manifest_<name>.json``) records the settings of a finished run; it is removed first and
written last, so it exists only next to a complete dataset (as ``dataset_writer`` does for AGORA).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing import util
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from tqdm import tqdm

from common.utils.atomic_io import write_bytes_atomic, write_json_atomic
from common.utils.render import MeshRenderer, MeshSpec

from .appearance import sample_light, shade
from .background import sample_background
from .camera import Camera

# (R, G, B) in [0, 1], light to dark; a crop draws one and jitters it.
SKIN_TONES = np.array(
    [[0.96, 0.80, 0.69], [0.92, 0.71, 0.58], [0.84, 0.62, 0.47], [0.72, 0.51, 0.36], [0.55, 0.37, 0.25],
     [0.40, 0.27, 0.18]]
)  # fmt: skip


class CropGenerator(Protocol):
    """What `generate_records` drives: one per process, reused for every index it is handed."""

    def generate(self, index: int) -> dict[str, Any]: ...

    def close(self) -> None: ...


def crop_camera(focal: tuple[float, float], princpt: tuple[float, float]) -> Camera:
    """A pinhole crop camera in the AGORA generator's ``Camera`` type, at the origin of its own frame.

    A crop has no world: the camera frame is the world frame. The camera's position lies on the ground plane
    (y = 0), so ``background.sample_background`` draws no floor.
    """
    return Camera(focal=focal, princpt=princpt, rotation=np.eye(3), position=np.zeros(3))


def project(points_cam: np.ndarray, focal: Sequence[float], princpt: Sequence[float]) -> np.ndarray:
    """(N, 3) camera-frame metres, z > 0 -> (N, 2) float64 pixels (centres at integer coordinates)."""
    points = np.asarray(points_cam, dtype=np.float64)
    return points[:, :2] / points[:, 2:] * np.asarray(focal, dtype=np.float64) + np.asarray(princpt, dtype=np.float64)


def translation_to_pixel(
    anchor: np.ndarray, depth_m: float, focal: Sequence[float], princpt: Sequence[float], target_px: Sequence[float]
) -> np.ndarray:
    """(3,) translation that moves ``anchor`` (3,) metres to depth ``depth_m`` on the ray through ``target_px``."""
    ray = np.array([(target_px[0] - princpt[0]) / focal[0], (target_px[1] - princpt[1]) / focal[1], 1.0])
    return ray * depth_m - np.asarray(anchor, dtype=np.float64)


def recentre(centre_px: np.ndarray, target_px: Sequence[float], depth_m: float, focal: Sequence[float]) -> np.ndarray:
    """(3,) sideways shift, metres, that moves a projected centre ``centre_px`` (2,) onto ``target_px``.

    Exact for points at ``depth_m``; with the depth spread of a hand or a head (a few cm at 0.4-2 m) the centre
    lands within a pixel or two, which is all the framing needs.
    """
    delta_px = np.asarray(target_px, dtype=np.float64) - centre_px
    return np.array([delta_px[0] * depth_m / focal[0], delta_px[1] * depth_m / focal[1], 0.0])


def box_xywh(points_px: np.ndarray, image_hw: tuple[int, int]) -> list[float]:
    """The extent of (N, 2) pixels clipped to the image, as [x, y, w, h] float32 values (COCO's bbox)."""
    height, width = image_hw
    low = np.clip(points_px.min(axis=0), 0.0, (width - 1, height - 1))
    high = np.clip(points_px.max(axis=0), 0.0, (width - 1, height - 1))
    return [float(v) for v in np.concatenate([low, high - low]).astype(np.float32)]


def skin_albedo(rng: np.random.Generator, segments: np.ndarray, count: int) -> np.ndarray:
    """(V, 3) float32 vertex colours: one skin tone, each segment's brightness jittered by a few percent.

    Args:
        rng: the random generator.
        segments: (V,) segment index of every vertex (its dominant skinning joint), in [0, count).
        count: the number of segments.
    """
    tone = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.1, 3)
    per_segment = tone[None] * rng.uniform(0.93, 1.07, (count, 1))  # (count, 3): the segments read apart
    return np.clip(per_segment[segments], 0.0, 1.0).astype(np.float32)


def render_over(
    renderer: MeshRenderer, mesh: MeshSpec, camera: Camera, background: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One mesh rendered unlit over a background of the same size.

    Unlit: the colours carry their baked-in light (``appearance.shade``), and unlit renders are bit-exact. One
    mesh needs none of ``compose.composite``'s per-person visibility, whose off-image render of a cut mesh would
    double the time of a crop.

    Returns:
        The (H, W, 3) uint8 RGB image and the (H, W) bool mask of the mesh.
    """
    height, width = background.shape[:2]
    output = renderer.render(mesh, camera.focal, camera.princpt, image_size=(height, width), lit=False)
    image = background.copy()
    image[output.mask] = np.rint(output.color[output.mask] * 255.0).astype(np.uint8)
    return image, output.mask


def write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    """(H, W, 3) uint8 RGB written as a baseline JPEG (libjpeg output is deterministic for one input)."""
    ok, encoded = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise OSError(f"could not encode {path}")
    write_bytes_atomic(path, encoded.tobytes())


# --- workers ---------------------------------------------------------------------------------------------------
_worker_generator: CropGenerator | None = None  # the generator of a worker process (set by _init_worker)


def _init_worker(factory: Callable[[], CropGenerator], workers: int) -> None:
    global _worker_generator
    # Mesa's software rasterizer starts a thread per core in every process; with one process per core those
    # threads only contend. Read when the OpenGL context is made, i.e. below; a user's setting wins.
    threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ.setdefault("LP_NUM_THREADS", str(threads))
    # Likewise OpenCV's and torch's pools: a crop's work items take a millisecond, far too little to share out.
    cv2.setNumThreads(threads)
    torch.set_num_threads(threads)
    _worker_generator = factory()
    util.Finalize(_worker_generator, _worker_generator.close, exitpriority=10)  # plain exit skips __del__


def _generate_in_worker(index: int) -> tuple[int, dict[str, Any]]:
    assert _worker_generator is not None, "_init_worker did not run in this process"
    return index, _worker_generator.generate(index)


def _stream(factory: Callable[[], CropGenerator], num_images: int, workers: int) -> Iterator[tuple[int, dict]]:
    if workers == 1:  # in this process: no start-up cost, and a debugger sees everything
        generator = factory()
        try:
            for index in range(num_images):
                yield index, generator.generate(index)
        finally:
            generator.close()
        return
    # spawn: a forked child would inherit the parent's OpenGL and OpenMP state, which neither survives.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, _init_worker, (factory, workers)) as pool:
        # Crops take tens of milliseconds: chunks of a few save round trips, while every worker still gets several.
        chunksize = max(1, min(8, num_images // (4 * workers)))
        yield from pool.imap_unordered(_generate_in_worker, range(num_images), chunksize=chunksize)
        pool.close()
        pool.join()


def generate_records(
    factory: Callable[[], CropGenerator], num_images: int, workers: int, desc: str, progress: bool
) -> list[dict[str, Any]]:
    """Runs ``factory()``'s generator over indices 0..num_images-1 and returns the records in index order.

    Args:
        factory: a picklable callable (e.g. a ``functools.partial`` of a generator class) making a generator.
        num_images: >= 1.
        workers: processes, >= 1 (no more than ``num_images`` are started).
        desc: the progress bar's label.
        progress: show a tqdm progress bar.
    """
    records: list[dict[str, Any] | None] = [None] * num_images
    stream = _stream(factory, num_images, min(workers, num_images))
    for index, record in tqdm(stream, total=num_images, desc=desc, unit="img", disable=not progress):
        records[index] = record
    missing = sum(r is None for r in records)
    if missing:  # would be a bug in the pool plumbing, not in the caller's input
        raise RuntimeError(f"{missing} of {num_images} crops are missing")
    return [r for r in records if r is not None]


# --- manifests -------------------------------------------------------------------------------------------------
def manifest_path(out_dir: str | os.PathLike[str], name: str) -> Path:
    """The manifest of a finished run, e.g. DIR/synthetic_manifest_freihand_train.json."""
    return Path(out_dir) / f"synthetic_manifest_{name}.json"


def manifest_matches(out_dir: Path, name: str, wanted: dict[str, Any], outputs: Sequence[str]) -> bool:
    """Whether ``out_dir`` holds a finished run with the settings ``wanted`` and its ``outputs`` (relative paths)."""
    manifest = manifest_path(out_dir, name)
    if not manifest.is_file() or not all((out_dir / rel).is_file() for rel in outputs):
        return False
    try:
        return json.loads(manifest.read_text(encoding="utf-8")) == wanted
    except json.JSONDecodeError:
        return False  # a corrupt manifest means an unknown dataset: make it again


def check_request(num_images: int, seed: int, workers: int, count_name: str = "num_images") -> None:
    """ValueError for a count (named ``count_name`` in the message), seed or worker number out of range: what every
    synthetic writer checks before it writes anything."""
    if num_images < 1:
        raise ValueError(f"{count_name} must be at least 1, got {num_images}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")


def write_crop_dataset(
    out_dir: Path,
    manifest_name: str,
    settings: dict[str, Any],
    factory: Callable[[], CropGenerator],
    workers: int,
    label: str,
    progress: bool,
    write_files: Callable[[list[dict[str, Any]]], None],
) -> dict[str, Any]:
    """Makes ``settings['num_images']`` crops and writes a dataset: the manifest is removed first and written last,
    so that it exists only beside complete files.

    Args:
        out_dir: the dataset folder (created).
        manifest_name: the manifest's name (`manifest_path`).
        settings: what decides the bytes (num_images, seed, ...), stored as the manifest.
        factory: makes a generator per process (`generate_records`).
        workers: processes, >= 1.
        label: the progress bar's text.
        progress: show a progress bar.
        write_files: writes the annotation files from the records, in index order.

    Returns:
        The settings plus images, seconds and images_per_s.
    """
    check_request(settings["num_images"], settings["seed"], workers)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path(out_dir, manifest_name).unlink(missing_ok=True)  # the old dataset is no longer complete
    start = time.perf_counter()
    write_files(generate_records(factory, settings["num_images"], workers, label, progress))
    seconds = time.perf_counter() - start
    write_json_atomic(manifest_path(out_dir, manifest_name), settings)
    count = settings["num_images"]
    return {**settings, "images": count, "seconds": seconds, "images_per_s": count / max(seconds, 1e-9)}


def floats(values: np.ndarray) -> list[Any]:
    """float32 values as (nested) lists of Python floats: the written numbers are the float32 ones."""
    return np.asarray(values, dtype=np.float32).astype(np.float64).tolist()


class CropRenderer:
    """What the part-crop generators share: one offscreen renderer reused for every crop, the layer's triangles,
    and the shading, camera and background of a crop (drawn from the crop's generator, in this order, so that a
    crop stays a pure function of its seed).

    Args:
        faces: (F, 3) triangles of the part's layer.
        image_hw: (H, W) of the crops, pixels.
    """

    def __init__(self, faces: np.ndarray, image_hw: tuple[int, int]) -> None:
        self.faces, self.image_hw = np.asarray(faces, dtype=np.int64), image_hw
        self.renderer = MeshRenderer(image_hw[1], image_hw[0])

    def render_mesh(
        self,
        rng: np.random.Generator,
        vertices: np.ndarray,
        albedo: np.ndarray,
        focal: tuple[float, float],
        princpt: tuple[float, float],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The (H, W, 3) uint8 RGB crop and (H, W) bool mask of a camera-frame mesh (metres) with (V, 3) albedo."""
        colours = shade(albedo, vertices, self.faces, sample_light(rng))
        camera = crop_camera(focal, princpt)
        background = sample_background(rng, self.image_hw, camera)
        return render_over(self.renderer, MeshSpec(vertices, self.faces, vertex_colors=colours), camera, background)

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self) -> CropRenderer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
