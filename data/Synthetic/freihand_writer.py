"""Synthetic right-hand crops in FreiHAND's layout, as Hand4Whole's Pose2Pose hand branch reads it.

Layout under ``out_dir`` (the FreiHAND folder: Hand4Whole reads ``<out_dir>/data`` and ``<out_dir>/rootnet_output``)::

    data/training/rgb/%08d.jpg          224x224 JPEG crops of split 'train' (FreiHAND's release names them so)
    data/evaluation/rgb/%08d.jpg        ... of split 'eval'
    data/freihand_{train,eval}_coco.json
        images: id, file_name (relative to data/), width, height, db_idx (the key into the data file)
        annotations: id, image_id, bbox [x, y, w, h] (the hand's projected vertices, clipped to the image,
            pixels of the 224x224 image), category_id, iscrowd
    data/freihand_{train,eval}_data.json
        {str(db_idx): {cam_param: {focal: [fx, fy], princpt: [cx, cy]} pixels,
                       mano_param: {pose: 48 axis-angle radians (root in the camera frame, then 15 finger joints
                                    relative to the mean hand: flat_hand_mean=False), shape: 10, trans: 3 metres},
                       joint_3d: (21, 3) metres, camera frame, FreiHAND's order (joint_sets.HAND_21),
                       scale: metres, the middle finger's first bone (Middle_1 to Middle_2), FreiHAND's reference}}
    rootnet_output/bbox_root_freihand_output.json   split 'eval' only, in image order:
        [{image_id, bbox [x, y, w, h] (the coco box made square and enlarged x1.25 about its centre, as RootNet's
          output boxes are), root_cam [x, y, z] (the wrist, metres, camera frame)}]
    synthetic_manifest_freihand_{split}.json        the settings of the finished run

The MANO layer is the right hand of the selected body-model tree (``BodyModels.mano('right')``: use_pca=False,
flat_hand_mean=False); posing it with ``global_orient=pose[:3], hand_pose=pose[3:], betas=shape, transl=trans``
gives the rendered mesh in the camera frame (OpenCV: x right, y down, z forward), with no extrinsics.
The eval split carries the ground truth too (the real release withheld it for its evaluation server).
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
from smplx.vertex_ids import vertex_ids

from common.body_models.joint_sets import HAND_21, MANO_JOINTS
from common.body_models.layers import get_body_models
from common.utils.atomic_io import write_json_atomic

from .dataset_writer import _resolve_human_model_path
from .generator import _torch_threads
from .hand_poses import sample_hand_pose
from .parts_writer import (
    CropRenderer,
    box_xywh,
    floats,
    manifest_matches,
    project,
    recentre,
    skin_albedo,
    translation_to_pixel,
    write_crop_dataset,
    write_jpeg,
)

SPLITS = ("train", "eval")
IMAGE_FOLDERS = {"train": "training", "eval": "evaluation"}
IMAGE_HW = (224, 224)  # FreiHAND's crops
FOCAL_RANGE_PX = (500.0, 700.0)
PRINCPT_JITTER_PX = 4.0  # about the image centre
DEPTH_RANGE_M = (0.4, 0.8)  # of the hand's centre
FILL_RANGE = (0.5, 0.9)  # the projected hand's longer side, as a fraction of the image side
CENTRE_JITTER = 0.06  # of the image side: the hand's box centre lands this close to the image centre
BETA_LIMIT = 2.0
GLOVE_PROBABILITY = 0.2  # otherwise a skin tone
JPEG_QUALITY = 95
ROOTNET_FILE = "rootnet_output/bbox_root_freihand_output.json"
ROOTNET_BOX_ENLARGEMENT = 1.25
MANIFEST_VERSION = 1  # bump when a change of the generator changes what a seed produces
STREAM_ID = 1  # keeps these crops' random streams apart from the other synthetic formats' for the same seed
CATEGORIES = [{"id": 1, "name": "hand", "supercategory": "person"}]
HAND_21_FROM_MANO = MANO_JOINTS.indices(HAND_21.names)  # (21,) rows of MANO's 16 joints + 5 tips, FreiHAND order
TIP_VERTEX_IDS = np.array(list(vertex_ids["mano"].values()), dtype=np.int64)  # thumb, index, middle, ring, pinky


@dataclass
class HandCrop:
    """One posed right hand and its camera.

    Attributes:
        pose: (48,) float32 axis-angle radians: root (camera frame), then 15 finger joints relative to the mean hand.
        shape: (10,) float32 MANO betas, within +-2.
        trans: (3,) float32 metres, MANO's ``transl``.
        vertices: (778, 3) float32 metres, camera frame: the MANO output for these parameters.
        joints: (21, 3) float32 metres, camera frame, ``HAND_21`` order (wrist, thumb 1-4, ..., pinky 1-4).
        focal: (fx, fy) pixels.
        princpt: (cx, cy) pixels, pixel centres at integer coordinates.
        gesture: the ``hand_poses.GESTURES`` name the fingers were drawn from.
    """

    pose: np.ndarray
    shape: np.ndarray
    trans: np.ndarray
    vertices: np.ndarray
    joints: np.ndarray
    focal: tuple[float, float]
    princpt: tuple[float, float]
    gesture: str


def _row(values: np.ndarray) -> torch.Tensor:
    """(1, N) float32 tensor of any array: the layer sees the float32 values that are written."""
    return torch.from_numpy(np.asarray(values, dtype=np.float32).reshape(1, -1))


def mano_forward(layer: Any, pose: np.ndarray, shape: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MANO vertices (778, 3) and ``HAND_21`` joints (21, 3), float32 metres, from (48,), (10,), (3,) parameters."""
    with torch.no_grad():
        output = layer(global_orient=_row(pose[:3]), hand_pose=_row(pose[3:]), betas=_row(shape), transl=_row(trans))
    vertices = output.vertices[0].numpy()
    joints = np.concatenate([output.joints[0].numpy(), vertices[TIP_VERTEX_IDS]])  # (21, 3) MANO_JOINTS order
    return vertices, joints[HAND_21_FROM_MANO]


def _depth_for_size(rng: np.random.Generator, size_m: float, focal_px: float) -> float:
    """A hand depth in DEPTH_RANGE_M at which a hand ``size_m`` wide spans a FILL_RANGE fraction of the image."""
    side = float(IMAGE_HW[1])
    near, far = focal_px * size_m / (FILL_RANGE[1] * side), focal_px * size_m / (FILL_RANGE[0] * side)
    low, high = max(DEPTH_RANGE_M[0], near), min(DEPTH_RANGE_M[1], far)
    if low <= high:
        return float(rng.uniform(low, high))
    # A fist seen end-on (a few cm) stays small even at the nearest depth; a long flat hand fills the crop at the
    # farthest: the depth range wins over the fill.
    return float(np.clip(np.sqrt(near * far), *DEPTH_RANGE_M))


def sample_hand_crop(rng: np.random.Generator, layer: Any) -> HandCrop:
    """Draws a right hand (shape, gesture, any root orientation) and a FreiHAND-like camera framing it.

    Args:
        rng: the random generator.
        layer: the right MANO layer (``BodyModels.mano('right')``).
    """
    shape = np.clip(rng.normal(size=10), -BETA_LIMIT, BETA_LIMIT).astype(np.float32)
    gesture, fingers = sample_hand_pose(rng, "right", layer.hand_mean.numpy())
    # A normalised 4D Gaussian is a uniform unit quaternion: any root orientation, so palm, back and sides show.
    root = Rotation.from_quat(rng.normal(size=4)).as_rotvec()
    pose = np.concatenate([root, fingers]).astype(np.float32)
    vertices, _ = mano_forward(layer, pose, shape, np.zeros(3))
    fx = float(rng.uniform(*FOCAL_RANGE_PX))
    focal = (fx, fx)
    centre = np.array([IMAGE_HW[1] - 1, IMAGE_HW[0] - 1]) / 2.0  # (x, y) pixels
    cx, cy = centre + rng.uniform(-PRINCPT_JITTER_PX, PRINCPT_JITTER_PX, 2)
    princpt = (float(cx), float(cy))
    low, high = vertices.min(axis=0).astype(np.float64), vertices.max(axis=0).astype(np.float64)
    depth = _depth_for_size(rng, float(max(high[:2] - low[:2])), fx)
    target = centre + rng.uniform(-CENTRE_JITTER, CENTRE_JITTER, 2) * IMAGE_HW[1]
    trans = translation_to_pixel((low + high) / 2.0, depth, focal, princpt, target)
    uv = project(vertices + trans, focal, princpt)
    trans += recentre((uv.min(axis=0) + uv.max(axis=0)) / 2.0, target, depth, focal)
    trans = trans.astype(np.float32)
    vertices, joints = mano_forward(layer, pose, shape, trans)  # the written parameters' own mesh
    return HandCrop(pose, shape, trans, vertices, joints, focal, princpt, gesture)


def image_file(split: str, index: int) -> str:
    """The crop's path relative to ``data/``, e.g. 'training/rgb/00000042.jpg'."""
    return f"{IMAGE_FOLDERS[split]}/rgb/{index:08d}.jpg"


def coco_file(split: str) -> str:
    return f"data/freihand_{split}_coco.json"


def data_file(split: str) -> str:
    return f"data/freihand_{split}_data.json"


def rootnet_box(bbox_xywh: list[float]) -> list[float]:
    """RootNet's box of a hand: the square about the box's centre with side 1.25 x its longer side."""
    x, y, w, h = bbox_xywh
    side = max(w, h) * ROOTNET_BOX_ENLARGEMENT
    return [float(v) for v in np.array([x + w / 2 - side / 2, y + h / 2 - side / 2, side, side], dtype=np.float32)]


class FreiHANDGenerator(CropRenderer):
    """Makes and writes the crops of one split, with one renderer and one MANO layer reused for all.

    Args:
        human_model_path: the body-model tree (the synthetic stand-in or the licensed files).
        split: 'train' or 'eval'.
        seed: non-negative; with the split and the index it seeds every crop.
        out_dir: the FreiHAND folder; files go to the paths of the module docstring.
    """

    def __init__(self, human_model_path: str | os.PathLike[str], split: str, seed: int, out_dir: str | Path):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split, self.seed, self.out_dir = split, seed, Path(out_dir)
        self.layer = get_body_models(human_model_path).mano("right")
        super().__init__(self.layer.faces, IMAGE_HW)
        self.segments = self.layer.lbs_weights.numpy().argmax(axis=1)  # (778,) dominant joint: palm, finger bones

    def render(self, index: int) -> tuple[HandCrop, np.ndarray, np.ndarray]:
        """Draws and renders crop ``index`` without writing it.

        Returns:
            The hand, the (H, W, 3) uint8 RGB crop and the (H, W) bool mask of the hand.
        """
        rng = np.random.default_rng([self.seed, STREAM_ID, SPLITS.index(self.split), index])
        with _torch_threads(1):
            hand = sample_hand_crop(rng, self.layer)
        count = self.layer.lbs_weights.shape[1]
        if rng.random() < GLOVE_PROBABILITY:
            albedo = np.repeat(rng.uniform(0.05, 1.0, (1, 3)), len(self.segments), axis=0).astype(np.float32)
        else:
            albedo = skin_albedo(rng, self.segments, count)
        image, mask = self.render_mesh(rng, hand.vertices, albedo, hand.focal, hand.princpt)
        return hand, image, mask

    def generate(self, index: int) -> dict[str, Any]:
        """Makes crop ``index``, writes its JPEG and returns its records: image, annotation, data, rootnet."""
        hand, image, _ = self.render(index)
        file_name = image_file(self.split, index)
        write_jpeg(self.out_dir / "data" / file_name, image, JPEG_QUALITY)
        bbox = box_xywh(project(hand.vertices, hand.focal, hand.princpt), IMAGE_HW)
        middle_1, middle_2 = HAND_21.index("Middle_1"), HAND_21.index("Middle_2")
        data = {
            "cam_param": {"focal": list(hand.focal), "princpt": list(hand.princpt)},
            "mano_param": {"pose": floats(hand.pose), "shape": floats(hand.shape), "trans": floats(hand.trans)},
            "joint_3d": floats(hand.joints),
            "scale": float(np.linalg.norm(hand.joints[middle_1] - hand.joints[middle_2])),
        }
        image = {"id": index, "file_name": file_name, "width": IMAGE_HW[1], "height": IMAGE_HW[0], "db_idx": index}
        annotation = {"id": index, "image_id": index, "bbox": bbox, "category_id": 1, "iscrowd": 0,
                      "area": bbox[2] * bbox[3]}  # fmt: skip
        rootnet = {"image_id": index, "bbox": rootnet_box(bbox), "root_cam": floats(hand.joints[0])}
        return {"image": image, "annotation": annotation, "data": data, "rootnet": rootnet}


def _settings(split: str, num_images: int, seed: int, human_model_path: Path) -> dict[str, Any]:
    """What decides a split's bytes (the worker count does not)."""
    return {"version": MANIFEST_VERSION, "format": "freihand", "split": split, "num_images": num_images,
            "seed": seed, "human_model_path": str(human_model_path)}  # fmt: skip


def _outputs(split: str) -> list[str]:
    return [coco_file(split), data_file(split)] + ([ROOTNET_FILE] if split == "eval" else [])


def make_freihand(
    out_dir: str | os.PathLike[str],
    num_images: int,
    split: str = "train",
    seed: int = 0,
    workers: int = 1,
    human_model_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generates a split of synthetic right-hand crops in FreiHAND's layout under ``out_dir``.

    Args:
        out_dir: the FreiHAND folder (holding ``data/`` and ``rootnet_output/``); created if missing.
        num_images: number of 224x224 crops, >= 1.
        split: 'train' or 'eval' ('eval' also writes RootNet's box-and-root file).
        seed: non-negative; the same seed gives the same bytes, whatever ``workers``.
        workers: processes making crops, >= 1.
        human_model_path: the body-model tree; None uses the synthetic stand-in (generated if missing).
        progress: show a tqdm progress bar.

    Returns:
        The manifest's settings plus images, seconds and images_per_s.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    out_dir, model_path = Path(out_dir), _resolve_human_model_path(human_model_path)

    def write_files(records: list[dict[str, Any]]) -> None:
        coco = {"images": [r["image"] for r in records], "annotations": [r["annotation"] for r in records],
                "categories": CATEGORIES}  # fmt: skip
        write_json_atomic(out_dir / coco_file(split), coco)
        write_json_atomic(out_dir / data_file(split), {str(r["image"]["db_idx"]): r["data"] for r in records})
        if split == "eval":
            write_json_atomic(out_dir / ROOTNET_FILE, [r["rootnet"] for r in records])

    factory = functools.partial(FreiHANDGenerator, model_path, split, seed, out_dir)
    return write_crop_dataset(out_dir, f"freihand_{split}", _settings(split, num_images, seed, model_path), factory,
                              workers, f"FreiHAND {split}", progress, write_files)  # fmt: skip


def ensure_freihand(
    out_dir: str | os.PathLike[str],
    num_images: int,
    split: str = "train",
    seed: int = 0,
    workers: int = 1,
    human_model_path: str | os.PathLike[str] | None = None,
) -> Path:
    """``make_freihand`` unless ``out_dir`` already holds this split made with the same settings.

    Returns:
        ``out_dir`` as a Path.
    """
    out_dir = Path(out_dir)
    wanted = _settings(split, num_images, seed, _resolve_human_model_path(human_model_path))
    if not manifest_matches(out_dir, f"freihand_{split}", wanted, _outputs(split)):
        make_freihand(out_dir, num_images, split, seed, workers, human_model_path, progress=False)
    return out_dir
