"""One synthetic image and its AGORA records, deterministic in (seed, split, index).

An image is a pure function of its seed triple: its random generator is seeded from it, torch runs
single-threaded while it is made (float sums then do not depend on the thread count), and nothing
carries over from the previous image, so any worker can make any image and get the same bytes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from common.body_models.files import GENDERS
from common.body_models.layers import get_body_models
from common.geometry import project_points
from common.utils.atomic_io import write_bytes_atomic, write_json_atomic
from common.utils.render import MeshRenderer, MeshSpec

from . import annotations as agora
from .appearance import sample_albedo, sample_light, shade, vertex_regions
from .background import sample_background
from .compose import Composite, composite
from .scene import Scene, sample_scene
from .smpl_variant import smpl_params

MAX_ATTEMPTS = 50  # scenes drawn until one has a valid person; a few percent of scenes have none


@dataclass(frozen=True)
class GeneratorOptions:
    """What to generate.

    Attributes:
        split: 'train' or 'validation'.
        seed: non-negative; with the split and the image index it seeds every image.
        genders: the layers people are drawn from, uniformly ('neutral', 'male', 'female').
        write_masks: also write a person-label PNG per image (``annotations.mask_path``).
        png_compression: zlib level 0-9 of the PNG files; 1 is about twice as fast as OpenCV's default 3.
    """

    split: str = "train"
    seed: int = 0
    genders: tuple[str, ...] = field(default=GENDERS)
    write_masks: bool = False
    png_compression: int = 1

    def __post_init__(self) -> None:
        if self.split not in agora.SPLITS:
            raise ValueError(f"split must be one of {agora.SPLITS}, got {self.split!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")
        if not self.genders or not set(self.genders) <= set(GENDERS):
            raise ValueError(f"genders must be a non-empty subset of {GENDERS}, got {self.genders}")


@dataclass
class ImageRecords:
    """The COCO records of one written image: ``image`` (with ``id``) and its annotations (without ids)."""

    image: dict[str, Any]
    annotations: list[dict[str, Any]]


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class ImageGenerator:
    """Makes and writes images of one split into a dataset root, with one renderer reused for all.

    Args:
        human_model_path: the body-model tree (the synthetic stand-in or the licensed SMPL-X files).
        options: what to generate.
        out_dir: the dataset root; files go to AGORA's paths below it.
    """

    def __init__(self, human_model_path: str | os.PathLike[str], options: GeneratorOptions, out_dir: str | Path):
        self.options, self.out_dir = options, Path(out_dir)
        self.body_models = get_body_models(human_model_path)
        self.faces = self.body_models.faces
        hands = self.body_models.hand_vertex_ids()
        self._part_vertex_ids = {
            "lhand_bbox": hands["left"], "rhand_bbox": hands["right"], "face_bbox": self.body_models.face_vertex_ids()
        }  # fmt: skip
        self._regions: dict[str, np.ndarray] = {}
        self.renderer = MeshRenderer(agora.IMAGE_HW[1], agora.IMAGE_HW[0])

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self) -> ImageGenerator:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _appearance(self, rng: np.random.Generator, scene: Scene) -> list[MeshSpec]:
        light = sample_light(rng)
        meshes = []
        for person in scene.people:
            layer = self.body_models.smplx(person.pose.gender)
            if person.pose.gender not in self._regions:
                self._regions[person.pose.gender] = vertex_regions(layer.lbs_weights.numpy())
            albedo = sample_albedo(rng, self._regions[person.pose.gender], layer.v_template.numpy())
            colours = shade(albedo, person.vertices, self.faces, light)
            meshes.append(MeshSpec(person.vertices, self.faces, vertex_colors=colours))
        return meshes

    def render(self, index: int) -> tuple[Scene, Composite, np.ndarray]:
        """Draws and renders image ``index`` without writing it.

        Returns:
            The scene, the composite and the (N,) bool validity of each person.
        """
        split_index = agora.SPLITS.index(self.options.split)
        rng = np.random.default_rng([self.options.seed, split_index, index])
        with _torch_threads(1):
            for _ in range(MAX_ATTEMPTS):
                scene = sample_scene(rng, self.body_models, self.options.genders, agora.IMAGE_HW)
                meshes = self._appearance(rng, scene)
                background = sample_background(rng, agora.IMAGE_HW, scene.camera)
                result = composite(self.renderer, meshes, scene.camera, background)
                valid = (result.occlusion < agora.MAX_OCCLUSION) & (result.visible_pixels >= agora.MIN_VISIBLE_PIXELS)
                if valid.any():
                    return scene, result, valid
        raise RuntimeError(f"no scene with a visible person in {MAX_ATTEMPTS} attempts (image {index})")

    def generate(self, index: int) -> ImageRecords:
        """Makes image ``index``, writes its PNG and parameter files (SMPL-X and SMPL), and returns its SMPL-X
        records (`smpl_variant.smpl_document` makes the SMPL ones from them)."""
        scene, result, valid = self.render(index)
        split, name = self.options.split, agora.image_name(self.options.split, index)
        root, level = self.out_dir, self.options.png_compression
        _write_png(root / agora.image_path(split, name), result.image[..., ::-1], level)  # RGB -> BGR for cv2
        if self.options.write_masks:
            _write_png(root / agora.mask_path(split, name), result.labels, level)
        camera = scene.camera
        focal_4k = [float(f * agora.SCALE_TO_4K) for f in camera.focal]
        princpt_4k = [float(c * agora.SCALE_TO_4K) for c in camera.princpt]
        write_json_atomic(root / agora.cam_param_path(split, name), {"focal": focal_4k, "princpt": princpt_4k})
        records = []
        for pid, person in enumerate(scene.people):
            smplx_record = person.smplx_params()
            write_json_atomic(root / agora.smplx_param_path(split, name, pid), smplx_record)
            write_json_atomic(root / agora.smpl_param_path(split, name, pid),
                              smpl_params(self.body_models, person.pose.gender, smplx_record))  # fmt: skip
            joints_4k = project_points(torch.from_numpy(person.joints.astype(np.float64)), focal_4k, princpt_4k)
            vertices_4k = project_points(torch.from_numpy(person.vertices.astype(np.float64)), focal_4k, princpt_4k)
            part_vertices_4k = {key: vertices_4k.numpy()[ids] for key, ids in self._part_vertex_ids.items()}
            boxes = agora.part_boxes(joints_4k.numpy(), part_vertices_4k)
            occlusion = float(result.occlusion[pid])
            records.append(
                agora.annotation_record(split, name, pid, person.pose.gender, occlusion, bool(valid[pid]), boxes)
            )
        return ImageRecords(agora.image_record(index, split, name, self.options.write_masks), records)


def _write_png(path: Path, image: np.ndarray, level: int) -> None:
    # The 'sub' row filter alone: a third faster than libpng's adaptive choice, files 2 % larger.
    params = [cv2.IMWRITE_PNG_COMPRESSION, int(level), cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]
    ok, encoded = cv2.imencode(".png", image, params)
    if not ok:
        raise OSError(f"could not encode {path}")
    write_bytes_atomic(path, encoded.tobytes())


def people_summary(results: Sequence[ImageRecords]) -> dict[str, int]:
    """Counts of images, people and valid people over some images' records."""
    annotations = [a for r in results for a in r.annotations]
    return {"images": len(results), "people": len(annotations), "valid": sum(a["is_valid"] for a in annotations)}
