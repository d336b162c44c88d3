"""What AGORA's two converters share (agora2coco_smplx.py, agora2coco_smpl.py): raw release -> parsed layout.

Per person, as Hand4Whole's tools do: pose the fit with the annotated gender's layer at zero translation, map its
joints into the camera with AGORA's projection (tool/AGORA/agora_projection.py), solve the rigid fit-frame ->
camera R, t from the joint pairs (Kabsch, common.geometry.procrustes_transform), fold R into global_orient and
transl' = R (J0 + transl) + t - J0 (J0: the pelvis at zero translation, the centre of the root rotation), and
draw the boxes around the projected joints. A `Conversion` says what differs between the variants: the scene
tables, the fit files, the layer and the boxes. The files written and the annotation keys are those of
data/AGORA/fits.py's `FIT_VARIANTS`; the camera files are the same for both variants.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from common.body_models import get_body_models
from common.body_models.files import GENDERS
from common.body_models.layers import NUM_BETAS, BodyModels
from common.geometry import axis_angle_to_rotmat, procrustes_transform, rotmat_to_axis_angle
from common.utils.atomic_io import write_json_atomic
from data.AGORA.fits import FIT_VARIANTS, FitVariant, checked_relpath
from tool.AGORA.agora_projection import AgoraCamera, fit_to_camera, scene_camera
from tool.AGORA.raw_inputs import read_scene_table

logger = logging.getLogger(__name__)

__all__ = ["Conversion", "convert_agora", "convert_person", "convert_split", "fold_rigid_into_params", "main",
           "rigid_fit"]  # fmt: skip

LABELS = {"kid": "kid", "occlusion": "occlusion", "is_valid": "isValid", "age": "age", "ethnicity": "ethnicity"}
"""Annotation key -> the scene table's per-person column."""


@dataclass(frozen=True)
class Conversion:
    """One fit variant's conversion.

    Attributes:
        variant: 'smplx' or 'smpl', the key of its files in data/AGORA/fits.py's `FIT_VARIANTS`.
        split_tables: split -> the folder of its scene tables (json), relative to the release.
        fit_column: the tables' column of per-person fit paths.
        snippet: how to extract the tables from AGORA's pandas pickles (named when none is found).
        read_fit: fit path -> {name: flat float64 array} with at least global_orient, betas and transl.
        pose_fit: (body models, fit, gender) -> (J, 3) float64 joints posed at zero translation (fit frame).
        boxes: (J, 2) projected joints, 3840x2160 pixels -> {annotation box key: [x, y, w, h]}.
    """

    variant: str
    split_tables: Mapping[str, str]
    fit_column: str
    snippet: str
    read_fit: Callable[[Path], dict[str, np.ndarray]]
    pose_fit: Callable[[BodyModels, Mapping[str, np.ndarray], str], np.ndarray]
    boxes: Callable[[np.ndarray], dict[str, list[float]]]

    @property
    def files(self) -> FitVariant:
        return FIT_VARIANTS[self.variant]


def fold_rigid_into_params(
    fit: Mapping[str, np.ndarray], rotation: np.ndarray, translation: np.ndarray, pelvis_rest: np.ndarray
) -> dict[str, np.ndarray]:
    """The fit's parameters that pose the mesh at ``rotation @ X + translation`` instead of X.

    SMPL and SMPL-X turn the body about the pelvis J0 (which depends on the betas only), so
    X = R_g (V - J0) + J0 + transl; R X + t is the same body with root R R_g and translation R (J0 + transl) + t - J0.

    Args:
        fit: name -> flat arrays (axis-angle radians, metres) with global_orient, transl and betas.
        rotation: (3, 3) fit frame -> camera. translation: (3,) metres.
        pelvis_rest: (3,) J0, the pelvis of the fit posed at zero translation.

    Returns:
        The same keys; global_orient and transl changed, betas cut to the first 10.
    """
    rotation = np.asarray(rotation, np.float64)
    root = axis_angle_to_rotmat(torch.as_tensor(fit["global_orient"][:3], dtype=torch.float64))
    root = rotmat_to_axis_angle(torch.as_tensor(rotation) @ root).numpy()
    transl = rotation @ (pelvis_rest + fit["transl"][:3]) + np.asarray(translation, np.float64) - pelvis_rest
    return {**fit, "global_orient": root, "transl": transl, "betas": fit["betas"][:NUM_BETAS]}


def rigid_fit(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(3, 3) R and (3,) t minimising |R source + t - target| (Kabsch; Hand4Whole used PyTorch3D's alignment)."""
    solved = procrustes_transform(torch.as_tensor(source, dtype=torch.float64),
                                  torch.as_tensor(target, dtype=torch.float64), with_scale=False)  # fmt: skip
    return solved.rotation.numpy(), solved.translation.numpy()


def convert_person(
    conversion: Conversion,
    body_models: BodyModels,
    fit: Mapping[str, np.ndarray],
    gender: str,
    placement: tuple[float, Any],
    camera: AgoraCamera,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One person: camera-frame parameters and (J, 2) projected joints in 3840x2160 pixels.

    Args:
        placement: (Yaw in degrees, (X, Y, Z) in Unreal centimetres) from the scene table.
    """
    joints_rest = conversion.pose_fit(body_models, fit, gender)  # (J, 3)
    joints_fit = joints_rest + fit["transl"][:3]  # (J, 3) fit frame
    joints_cam = fit_to_camera(joints_fit, placement[0], placement[1], camera)  # (J, 3)
    rotation, translation = rigid_fit(joints_fit, joints_cam)
    params = fold_rigid_into_params(fit, rotation, translation, joints_rest[0])
    return params, camera.project(joints_cam)


@dataclass(frozen=True)
class _SceneTable:
    """A scene table (json) as read, with its path and the image folder of its rows (train_k or validation)."""

    path: Path
    columns: Mapping[str, list]
    folder: str


def _image_entries(table: Mapping[str, list], row: int, folder: str, image_id: int) -> tuple[dict, str]:
    name = str(table["imgPath"][row])
    stem = PurePosixPath(name).stem
    image = {"id": image_id, "file_name_3840x2160": f"3840x2160/{folder}/{name}",
             "file_name_1280x720": f"1280x720/{folder}/{stem}_1280x720.png", "width": 3840, "height": 2160}  # fmt: skip
    return image, stem


def _convert_image(
    conversion: Conversion,
    scene: _SceneTable,
    row: int,
    ids: tuple[int, int],
    paths: tuple[Path, Path],
    body_models: BodyModels,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One image's COCO entries, writing its camera file and its persons' parameter files under ``paths[1]``.

    Args:
        ids: (image id, id of its first annotation). paths: (the release, the output root).
    """
    (image_id, first_ann_id), (release, out), table = ids, paths, scene.columns
    image, stem = _image_entries(table, row, scene.folder, image_id)
    camera = scene_camera(str(table["imgPath"][row]), [float(table[c][row]) for c in ("camX", "camY", "camZ")],
                          float(table["camYaw"][row]))  # fmt: skip
    cam_rel = f"cam_params/{scene.folder}/{stem}.json"
    write_json_atomic(out / cam_rel, {"focal": camera.focal_px.tolist(), "princpt": camera.princpt_px.tolist()})
    annotations = []
    for person, fit_path in enumerate(table[conversion.fit_column][row]):
        where = f"image {table['imgPath'][row]}, person {person}"
        gender = str(table["gender"][row][person])
        if gender not in GENDERS:
            raise ValueError(f"{where}: gender {gender!r} not in {GENDERS}")
        fit = conversion.read_fit(release / checked_relpath(fit_path, scene.path, where, conversion.fit_column))
        placement = (float(table["Yaw"][row][person]), [float(table[c][row][person]) for c in ("X", "Y", "Z")])
        params, joints_img = convert_person(conversion, body_models, fit, gender, placement, camera)
        param_rel = conversion.files.params_path(scene.folder, stem, person)
        write_json_atomic(out / param_rel, {k: np.asarray(v).tolist() for k, v in params.items()})
        annotations.append({"id": first_ann_id + person, "image_id": image_id, "person_id": person,
                            conversion.files.path_key: param_rel, "cam_param_path": cam_rel, "gender": gender,
                            **{key: table[col][row][person] for key, col in LABELS.items()},
                            **conversion.boxes(joints_img)})  # fmt: skip
    return image, annotations


def convert_split(conversion: Conversion, dataset_path: Path, split: str, body_models: BodyModels, out: Path) -> Path:
    """Convert every scene table of a split; returns the annotation file written (e.g. AGORA_<split>_SMPLX.json).

    Raises:
        FileNotFoundError: the split has no json table (the pandas pickles must be extracted first).
    """
    table_dir = dataset_path / conversion.split_tables[split]
    tables = sorted(table_dir.glob("*.json"))
    if not tables:
        raise FileNotFoundError(f"no AGORA scene tables (*.json) in {table_dir}; extract them from AGORA's pandas "
                                f"pickles first:\n{conversion.snippet}")  # fmt: skip
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for table_path in tables:
        folder = table_path.stem.split("_withjv")[0] if split == "train" else "validation"
        scene = _SceneTable(table_path, read_scene_table(table_path, conversion.fit_column), folder)
        logger.info("%s: %d images from %s", split, len(scene.columns["imgPath"]), table_path)
        for row in range(len(scene.columns["imgPath"])):
            try:
                image, anns = _convert_image(conversion, scene, row, (len(images), len(annotations)),
                                             (dataset_path, out), body_models)  # fmt: skip
            except (ValueError, FileNotFoundError) as error:
                raise type(error)(f"{table_path}: {error}") from error
            images.append(image)
            annotations += anns
    db = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    return write_json_atomic(out / conversion.files.annotation_file.format(split=split), db)


def convert_agora(
    conversion: Conversion,
    dataset_path: str | Path,
    human_model_path: str | Path,
    out: str | Path | None = None,
    splits: Iterable[str] = ("train", "validation"),
) -> list[Path]:
    """Convert the given splits; returns the annotation files written."""
    dataset_path = Path(dataset_path)
    out = dataset_path if out is None else Path(out)
    body_models = get_body_models(human_model_path)
    return [convert_split(conversion, dataset_path, split, body_models, out) for split in splits]


def main(conversion: Conversion, argv: list[str] | None, description: str, prog: str) -> int:
    """The converters' command line: parse ``argv``, convert, print what was written; 1 on a data error."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The scene tables are read as json, never as pandas pickles. Extract them once with:\n\n"
        + conversion.snippet,
    )  # fmt: skip
    tables = ", ".join(f"{folder}/" for folder in conversion.split_tables.values())
    parser.add_argument("--dataset_path", type=Path, required=True, help=f"AGORA's release ({tables} ...)")
    parser.add_argument("--human_model_path", type=Path, required=True, help="the human_model_files tree")
    parser.add_argument("--out", type=Path, default=None, help="output root (default: --dataset_path)")
    parser.add_argument("--splits", nargs="+", default=["train", "validation"], choices=sorted(conversion.split_tables))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        written = convert_agora(conversion, args.dataset_path, args.human_model_path, args.out, args.splits)
    except (FileNotFoundError, ValueError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
