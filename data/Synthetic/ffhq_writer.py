"""Synthetic face crops in FFHQ's layout, as Hand4Whole's Pose2Pose face branch reads it.

Layout under ``out_dir`` (the FFHQ folder; Hand4Whole reads ``<out_dir>/data``)::

    data/images/%05d.png                256x256 PNG crops (FFHQ's are 1024x1024; the files carry their size, and the
                                        face branch crops and resizes every image to its 256x192 input anyway)
    data/FFHQ.json                      COCO format, one face per image.
        images: id, file_name (relative to data/images/), width, height
        annotations: id, image_id, bbox [x, y, w, h] (the projected FLAME vertices clipped to the image, as the
            AGORA writer's face boxes), keypoints (73 x 2 flat, pixels: the FLAME output joints, 5 joints then the
            68 landmarks, joint_sets.FLAME_OUTPUT), keypoints_valid (73: 1 inside the image), category_id, iscrowd
    data/flame_param.json               {str(annotation id): {
        flame_param: {root_pose: 3, jaw_pose: 3 (axis-angle radians, camera frame for the root), shape: 10,
                      expr: 10, trans: 3 metres},
        cam_param: {focal: [fx, fy], princpt: [cx, cy]} pixels}}
    synthetic_manifest_ffhq.json        the settings of the finished run

The FLAME layer is ``BodyModels.flame()`` (10 shape, 10 expression, face contour); posing it with
``global_orient=root_pose, jaw_pose, betas=shape, expression=expr, transl=trans`` and zero neck and eye poses (as
the reader does) gives the rendered mesh in the camera frame (OpenCV: x right, y down, z forward). Faces are
framed as FFHQ's aligned crops are: the box of the 68 projected landmarks spans 50-62 % of the image side, its
centre a little below the image's (FFHQ centres a crop between the eyes and the mouth), so the whole face shows, with
the forehead, ears and part of the neck around it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from common.body_models.joint_sets import FLAME_OUTPUT, FLAME_SKELETON, IBUG68_NAMES
from common.body_models.layers import get_body_models
from common.utils.atomic_io import write_json_atomic

from .dataset_writer import _resolve_human_model_path
from .generator import _torch_threads, _write_png
from .parts_writer import (
    SKIN_TONES,
    CropRenderer,
    box_xywh,
    floats,
    manifest_matches,
    project,
    recentre,
    translation_to_pixel,
    write_crop_dataset,
)

IMAGE_HW = (256, 256)
FOCAL_RANGE_PX = (900.0, 1600.0)  # a portrait lens: 9-16 degrees across the 256-pixel crop
PRINCPT_JITTER_PX = 3.0
YAW_LIMIT_DEG, PITCH_LIMIT_DEG, ROLL_LIMIT_DEG = 40.0, 20.0, 10.0  # FFHQ's crops are rolled upright
LANDMARK_FILL_RANGE = (0.5, 0.62)  # the landmarks' box's longer side, as a fraction of the image side
LANDMARK_DROP, CENTRE_JITTER = 0.07, 0.03  # the box centre's offset below the image centre, its jitter: of the side
BETA_LIMIT, EXPRESSION_LIMIT = 2.0, 2.0
JAW_OPEN_MAX_RAD = 0.35  # about 20 degrees: a wide-open mouth
HAIR_PROBABILITY = 0.85
PNG_COMPRESSION = 1
MANIFEST_VERSION = 1  # bump when a change of the generator changes what a seed produces
STREAM_ID = 2  # keeps these crops' random streams apart from the other synthetic formats' for the same seed
MANIFEST_NAME = "ffhq"
ANNOTATION_FILE, PARAM_FILE = "data/FFHQ.json", "data/flame_param.json"
CATEGORIES = [{"id": 1, "name": "face", "supercategory": "person"}]
# FLAME's rest frame has y up and the face towards +z; the OpenCV camera looks along +z with y down, so a face
# turned by this (180 degrees about x) looks into the camera, upright.
_FACING_CAMERA = np.diag([1.0, -1.0, -1.0])
_IBUG = FLAME_OUTPUT.indices(IBUG68_NAMES)  # (68,) rows of the FLAME output joints, iBUG order
_EYE_LEFT, _MOUTH_CORNERS, _BROWS, _OUTER_LIPS = _IBUG[42:48], _IBUG[[48, 54]], _IBUG[17:27], _IBUG[48:60]


@dataclass
class FaceCrop:
    """One posed FLAME head and its camera.

    Attributes:
        root_pose: (3,) float32 axis-angle radians, camera frame.
        jaw_pose: (3,) float32 axis-angle radians.
        shape: (10,) float32, within +-2.
        expr: (10,) float32, within +-2.
        trans: (3,) float32 metres, FLAME's ``transl``.
        vertices: (5023, 3) float32 metres, camera frame: the FLAME output for these parameters.
        joints: (73, 3) float32 metres, camera frame, ``joint_sets.FLAME_OUTPUT`` order.
        focal: (fx, fy) pixels.
        princpt: (cx, cy) pixels, pixel centres at integer coordinates.
    """

    root_pose: np.ndarray
    jaw_pose: np.ndarray
    shape: np.ndarray
    expr: np.ndarray
    trans: np.ndarray
    vertices: np.ndarray
    joints: np.ndarray
    focal: tuple[float, float]
    princpt: tuple[float, float]


def flame_forward(layer: Any, params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """FLAME vertices (5023, 3) and output joints (73, 3), float32 metres, from a ``flame_param`` record's arrays
    (root_pose, jaw_pose, shape, expr, trans); neck and eyes at rest, as Hand4Whole's reader poses them."""
    row = {k: torch.from_numpy(np.asarray(v, dtype=np.float32).reshape(1, -1)) for k, v in params.items()}
    rest = torch.zeros(1, 3)
    with torch.no_grad():
        output = layer(global_orient=row["root_pose"], jaw_pose=row["jaw_pose"], betas=row["shape"],
                       expression=row["expr"], transl=row["trans"], neck_pose=rest, leye_pose=rest,
                       reye_pose=rest)  # fmt: skip
    return output.vertices[0].numpy(), output.joints[0].numpy()


def landmark_box(landmarks_px: np.ndarray) -> tuple[np.ndarray, float]:
    """The centre (2,) and longer side of the box of (68, 2) landmark pixels."""
    low, high = landmarks_px.min(axis=0), landmarks_px.max(axis=0)
    return (low + high) / 2.0, float(max(high - low))


def _sample_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Head orientation (camera frame), jaw, shape and expression; ``trans`` zero until the face is framed."""
    yaw, pitch, roll = (rng.uniform(-lim, lim) for lim in (YAW_LIMIT_DEG, PITCH_LIMIT_DEG, ROLL_LIMIT_DEG))
    turn = Rotation.from_euler("yxz", [yaw, pitch, roll], degrees=True).as_matrix()  # about the camera's axes
    jaw_open = rng.uniform(0.0, JAW_OPEN_MAX_RAD) if rng.random() < 0.5 else rng.uniform(0.0, 0.05)
    return {
        "root_pose": Rotation.from_matrix(turn @ _FACING_CAMERA).as_rotvec(),
        "jaw_pose": np.array([jaw_open, rng.normal(scale=0.03), rng.normal(scale=0.03)]),  # x > 0 opens the mouth
        "shape": np.clip(rng.normal(size=10), -BETA_LIMIT, BETA_LIMIT),
        # Most faces are near neutral; some are strongly expressive.
        "expr": np.clip(rng.normal(size=10) * rng.uniform(0.2, 1.2), -EXPRESSION_LIMIT, EXPRESSION_LIMIT),
        "trans": np.zeros(3),
    }


def sample_face_crop(rng: np.random.Generator, layer: Any) -> FaceCrop:
    """Draws a FLAME face and a portrait camera that frames it as FFHQ's aligned crops are framed.

    Args:
        rng: the random generator.
        layer: the FLAME layer (``BodyModels.flame()``).
    """
    params = {k: v.astype(np.float32) for k, v in _sample_params(rng).items()}
    _, joints = flame_forward(layer, params)
    fx = float(rng.uniform(*FOCAL_RANGE_PX))
    focal = (fx, fx)
    centre = np.array([IMAGE_HW[1] - 1, IMAGE_HW[0] - 1]) / 2.0  # (x, y) pixels
    cx, cy = centre + rng.uniform(-PRINCPT_JITTER_PX, PRINCPT_JITTER_PX, 2)
    princpt = (float(cx), float(cy))
    anchor = joints[_IBUG].mean(axis=0).astype(np.float64)
    offset = np.array([0.0, LANDMARK_DROP]) + rng.uniform(-CENTRE_JITTER, CENTRE_JITTER, 2)  # of the image side
    target = centre + offset * IMAGE_HW[1]
    # The face's size in the image scales as 1 / depth: measure it at 1 m, then move it to the depth that fits.
    probe = translation_to_pixel(anchor, 1.0, focal, princpt, target)
    _, side_px_at_1m = landmark_box(project(joints[_IBUG] + probe, focal, princpt))
    depth = side_px_at_1m / (IMAGE_HW[1] * rng.uniform(*LANDMARK_FILL_RANGE))
    trans = translation_to_pixel(anchor, depth, focal, princpt, target)
    box_centre, _ = landmark_box(project(joints[_IBUG] + trans, focal, princpt))
    params["trans"] = (trans + recentre(box_centre, target, depth, focal)).astype(np.float32)
    vertices, joints = flame_forward(layer, params)  # the written parameters' own mesh
    return FaceCrop(params["root_pose"], params["jaw_pose"], params["shape"], params["expr"], params["trans"],
                    vertices, joints, focal, princpt)  # fmt: skip


def face_regions(rest_vertices: np.ndarray, rest_joints: np.ndarray, lbs_weights: np.ndarray) -> dict[str, np.ndarray]:
    """(V,) bool masks of the eyeballs, lips and hair of the rest mesh (FLAME's rest frame: y up, face towards +z).

    Args:
        rest_vertices: (V, 3) metres.
        rest_joints: (73, 3) the output joints of the rest mesh, metres.
        lbs_weights: (V, 5) skinning weights over ``FLAME_SKELETON``.
    """
    dominant = lbs_weights.argmax(axis=1)
    eyes = np.isin(dominant, FLAME_SKELETON.indices(["L_Eyeball", "R_Eyeball"]))
    to_lips = np.linalg.norm(rest_vertices[:, None] - rest_joints[_OUTER_LIPS][None], axis=-1).min(axis=1)  # (V,)
    brow_y, eye_z = rest_joints[_BROWS, 1].mean(), rest_joints[_EYE_LEFT, 2].mean()
    # A hairline 4 cm above the brows, and the back of the head above the mouth.
    above_mouth = rest_vertices[:, 1] > rest_joints[_MOUTH_CORNERS, 1].mean()
    hair = (rest_vertices[:, 1] > brow_y + 0.04) | (above_mouth & (rest_vertices[:, 2] < eye_z - 0.08))
    return {"eyes": eyes, "lips": (to_lips < 0.006) & ~eyes, "hair": hair & ~eyes}


def sample_face_albedo(rng: np.random.Generator, regions: dict[str, np.ndarray]) -> np.ndarray:
    """(V, 3) float32 vertex colours in [0, 1]: one skin tone, darker eyes, tinted lips, often hair."""
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.1, 3)
    albedo = np.repeat(skin[None], len(regions["eyes"]), axis=0)
    albedo[regions["lips"]] = skin * np.array([0.95, 0.65, 0.65])
    if rng.random() < HAIR_PROBABILITY:
        albedo[regions["hair"]] = rng.uniform(0.05, 0.8) * np.array([1.0, rng.uniform(0.6, 0.9), rng.uniform(0.3, 0.7)])
    albedo[regions["eyes"]] = rng.uniform(0.0, 0.25, 3)
    return np.clip(albedo, 0.0, 1.0).astype(np.float32)


def image_file(index: int) -> str:
    """The crop's path relative to ``data/images/``, e.g. '00042.png'."""
    return f"{index:05d}.png"


class FFHQGenerator(CropRenderer):
    """Makes and writes face crops, with one renderer and one FLAME layer reused for all.

    Args:
        human_model_path: the body-model tree (the synthetic stand-in or the licensed files).
        seed: non-negative; with the index it seeds every crop.
        out_dir: the FFHQ folder; files go to the paths of the module docstring.
    """

    def __init__(self, human_model_path: str | os.PathLike[str], seed: int, out_dir: str | Path):
        self.seed, self.out_dir = seed, Path(out_dir)
        self.layer = get_body_models(human_model_path).flame()
        super().__init__(self.layer.faces, IMAGE_HW)
        rest = {k: np.zeros(n) for k, n in (("root_pose", 3), ("jaw_pose", 3), ("shape", 10), ("expr", 10),
                                            ("trans", 3))}  # fmt: skip
        rest_vertices, rest_joints = flame_forward(self.layer, rest)
        self.regions = face_regions(rest_vertices, rest_joints, self.layer.lbs_weights.numpy())

    def render(self, index: int) -> tuple[FaceCrop, np.ndarray, np.ndarray]:
        """Draws and renders crop ``index`` without writing it.

        Returns:
            The face, the (H, W, 3) uint8 RGB crop and the (H, W) bool mask of the head.
        """
        rng = np.random.default_rng([self.seed, STREAM_ID, 0, index])
        with _torch_threads(1):
            face = sample_face_crop(rng, self.layer)
        image, mask = self.render_mesh(rng, face.vertices, sample_face_albedo(rng, self.regions), face.focal,
                                       face.princpt)  # fmt: skip
        return face, image, mask

    def generate(self, index: int) -> dict[str, Any]:
        """Makes crop ``index``, writes its PNG and returns its records: image, annotation, flame_param."""
        face, image, _ = self.render(index)
        file_name = image_file(index)
        _write_png(self.out_dir / "data" / "images" / file_name, image[..., ::-1], PNG_COMPRESSION)
        keypoints_px = project(face.joints, face.focal, face.princpt).astype(np.float32)  # (73, 2)
        inside = np.all((keypoints_px >= 0) & (keypoints_px <= (IMAGE_HW[1] - 1, IMAGE_HW[0] - 1)), axis=1)
        bbox = box_xywh(project(face.vertices, face.focal, face.princpt), IMAGE_HW)
        image = {"id": index, "file_name": file_name, "width": IMAGE_HW[1], "height": IMAGE_HW[0]}
        annotation = {
            "id": index, "image_id": index, "bbox": bbox, "keypoints": floats(keypoints_px.reshape(-1)),
            "keypoints_valid": inside.astype(np.float64).tolist(), "category_id": 1, "iscrowd": 0,
            "area": bbox[2] * bbox[3],
        }  # fmt: skip
        flame_param = {
            "flame_param": {"root_pose": floats(face.root_pose), "jaw_pose": floats(face.jaw_pose),
                            "shape": floats(face.shape), "expr": floats(face.expr), "trans": floats(face.trans)},
            "cam_param": {"focal": list(face.focal), "princpt": list(face.princpt)},
        }  # fmt: skip
        return {"image": image, "annotation": annotation, "flame_param": flame_param}


def _settings(num_images: int, seed: int, human_model_path: Path) -> dict[str, Any]:
    """What decides the dataset's bytes (the worker count does not)."""
    return {"version": MANIFEST_VERSION, "format": "ffhq", "num_images": num_images, "seed": seed,
            "human_model_path": str(human_model_path)}  # fmt: skip


def make_ffhq(
    out_dir: str | os.PathLike[str],
    num_images: int,
    seed: int = 0,
    workers: int = 1,
    human_model_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generates synthetic face crops in FFHQ's layout under ``out_dir`` (FFHQ has one split, read for training).

    Args:
        out_dir: the FFHQ folder (holding ``data/``); created if missing.
        num_images: number of 256x256 crops, >= 1.
        seed: non-negative; the same seed gives the same bytes, whatever ``workers``.
        workers: processes making crops, >= 1.
        human_model_path: the body-model tree; None uses the synthetic stand-in (generated if missing).
        progress: show a tqdm progress bar.

    Returns:
        The manifest's settings plus images, seconds and images_per_s.
    """
    out_dir, model_path = Path(out_dir), _resolve_human_model_path(human_model_path)

    def write_files(records: list[dict[str, Any]]) -> None:
        coco = {"images": [r["image"] for r in records], "annotations": [r["annotation"] for r in records],
                "categories": CATEGORIES}  # fmt: skip
        write_json_atomic(out_dir / ANNOTATION_FILE, coco)
        write_json_atomic(out_dir / PARAM_FILE, {str(r["annotation"]["id"]): r["flame_param"] for r in records})

    factory = functools.partial(FFHQGenerator, model_path, seed, out_dir)
    return write_crop_dataset(out_dir, MANIFEST_NAME, _settings(num_images, seed, model_path), factory, workers,
                              "FFHQ", progress, write_files)  # fmt: skip


def ensure_ffhq(
    out_dir: str | os.PathLike[str],
    num_images: int,
    seed: int = 0,
    workers: int = 1,
    human_model_path: str | os.PathLike[str] | None = None,
) -> Path:
    """``make_ffhq`` unless ``out_dir`` already holds crops made with the same settings.

    Returns:
        ``out_dir`` as a Path.
    """
    out_dir = Path(out_dir)
    wanted = _settings(num_images, seed, _resolve_human_model_path(human_model_path))
    if not manifest_matches(out_dir, MANIFEST_NAME, wanted, [ANNOTATION_FILE, PARAM_FILE]):
        make_ffhq(out_dir, num_images, seed, workers, human_model_path, progress=False)
    return out_dir
