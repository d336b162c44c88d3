"""AGORA's two fit variants (SMPL-X and SMPL), their per-person files, and the check of paths read from annotations.

Hand4Whole's tools convert AGORA twice, with the same COCO layout and the same cameras:

=========  =========================  ==================  ============================================================
variant    annotation file            parameter-path key  per-person file (camera frame, axis-angle radians, metres)
=========  =========================  ==================  ============================================================
smplx      AGORA_{split}_SMPLX.json   smplx_param_path    smplx_params_cam/...: global_orient 3, body_pose 63,
                                                          jaw_pose 3, leye_pose 3, reye_pose 3, left_hand_pose 45,
                                                          right_hand_pose 45, betas 10 (kids 11), expression 10,
                                                          transl 3
smpl       AGORA_{split}_SMPL.json    smpl_param_path     smpl_params_cam/...: global_orient 3, body_pose 69,
                                                          betas 10 (kids 11), transl 3
=========  =========================  ==================  ============================================================

The family picks the variant: the Pose2Pose body model (its target builder's ``prefix`` is 'smpl') reads SMPL,
everything else SMPL-X (`FIT_VARIANTS`). Only the first 10 betas are used (a kid's 11th, age coefficient is
dropped, as Hand4Whole does).

Every path read from an annotation is relative to the dataset root; `checked_relpath` refuses an absolute one or
one whose '..' components leave the root, so an annotation file cannot make the loader read elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from common.body_models.layers import NUM_BETAS
from data.annotation_io import read_json
from data.record import SMPLParams, SMPLXParams

__all__ = ["FIT_VARIANTS", "PARAM_PATH_KEYS", "FitVariant", "checked_relpath", "fit_variant_name", "read_camera",
           "read_smpl_params", "read_smplx_params"]  # fmt: skip

_SMPLX_SIZES = {"global_orient": 3, "body_pose": 63, "left_hand_pose": 45, "right_hand_pose": 45, "jaw_pose": 3,
                "expression": 10, "transl": 3}  # fmt: skip
_SMPL_SIZES = {"global_orient": 3, "body_pose": 69, "transl": 3}


def checked_relpath(value: Any, source: Path, entry: str, key: str) -> str:
    """An annotation's path, checked to stay inside the dataset root it is relative to.

    Both '/' and '\\' count as separators and a drive ('C:') as absolute, so the check holds wherever the file
    was written.

    Args:
        value: the annotation's value, e.g. 'smplx_params_cam/train_0/<image>/0.json'.
        source: the annotation file, named in errors.
        entry: which entry of it, e.g. 'annotation 12', named in errors.
        key: the entry's key, named in errors.

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: naming the file, the entry, the key and the path, for a path that is empty, absolute or
            that climbs out of the root with '..'.
    """
    where = f"{source}: {entry}, {key} {value!r}"
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: expected a non-empty path relative to the dataset root")
    windows = PureWindowsPath(value)
    if PurePosixPath(value).is_absolute() or windows.drive or windows.root:
        raise ValueError(f"{where}: an absolute path; paths in an annotation are relative to the dataset root")
    depth = 0
    for part in windows.parts:  # pure paths keep '..' as written: count how deep each step goes
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            raise ValueError(f"{where}: leaves the dataset root ('..'); paths in an annotation stay inside it")
    return value


def _vectors(path: Path, sizes: Mapping[str, int]) -> dict[str, np.ndarray]:
    """The file's keys as flat float64 vectors of exactly ``sizes``, and its first `NUM_BETAS` betas."""
    params = read_json(path)
    if not isinstance(params, Mapping):
        raise ValueError(f"{path}: expected {{parameter name: values}}")
    values = {}
    for key, size in (*sizes.items(), ("betas", NUM_BETAS)):
        if key not in params:
            raise ValueError(f"{path}: missing key {key!r}")
        try:
            values[key] = np.asarray(params[key], np.float64).reshape(-1)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {key} is not numeric ({error})") from None
        count = values[key].size
        if key == "betas" and count < size:  # at least 10: a kid has 11
            raise ValueError(f"{path}: betas has {count} values, expected {size} or more")
        if key != "betas" and count != size:
            raise ValueError(f"{path}: {key} has {count} values, expected {size}")
    values["betas"] = values["betas"][:NUM_BETAS]
    return values


def read_smplx_params(path: Path, gender: str) -> SMPLXParams:
    """A ``smplx_params_cam`` file (camera frame) as SMPL-X parameters for the layer of ``gender``."""
    values = _vectors(path, _SMPLX_SIZES)
    return SMPLXParams(
        root_pose=values["global_orient"], body_pose=values["body_pose"], shape=values["betas"],
        trans=values["transl"], lhand_pose=values["left_hand_pose"], rhand_pose=values["right_hand_pose"],
        jaw_pose=values["jaw_pose"], expr=values["expression"], gender=gender,
    )  # fmt: skip


def read_smpl_params(path: Path, gender: str) -> SMPLParams:
    """A ``smpl_params_cam`` file (camera frame) as SMPL parameters: pose (72,) = global_orient + body_pose."""
    values = _vectors(path, _SMPL_SIZES)
    pose = np.concatenate([values["global_orient"], values["body_pose"]])
    return SMPLParams(pose=pose, shape=values["betas"], trans=values["transl"], gender=gender)


def read_camera(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A ``cam_params`` file: ((2,) focal, (2,) princpt) float64, pixels of the 3840x2160 image."""
    cam = read_json(path)
    try:
        focal, princpt = (np.asarray(cam[key], np.float64).reshape(2) for key in ("focal", "princpt"))
    except KeyError as error:
        raise ValueError(f"{path}: missing key {error}") from None
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: focal and princpt must hold two numbers each ({error})") from None
    return focal, princpt


@dataclass(frozen=True)
class FitVariant:
    """One of AGORA's fit variants.

    Attributes:
        annotation_file: the COCO file of a split, with '{split}' in it.
        path_key: the annotation key of the per-person parameter file.
        params_folder: the folder the converters write those files to (`params_path`).
        record_field: the `Record` field its parameters go to ('smplx' or 'smpl').
        read: (parameter file, gender) -> the parameters.
    """

    annotation_file: str
    path_key: str
    params_folder: str
    record_field: str
    read: Callable[[Path, str], SMPLXParams | SMPLParams]

    def params_path(self, folder: str, image_stem: str, person_id: int) -> str:
        """``<params_folder>/<folder>/<image>/<person_id>.json``, relative to the data root (as the tools write)."""
        return f"{self.params_folder}/{folder}/{image_stem}/{int(person_id)}.json"


FIT_VARIANTS: Mapping[str, FitVariant] = {
    "smplx": FitVariant("AGORA_{split}_SMPLX.json", "smplx_param_path", "smplx_params_cam", "smplx", read_smplx_params),
    "smpl": FitVariant("AGORA_{split}_SMPL.json", "smpl_param_path", "smpl_params_cam", "smpl", read_smpl_params),
}
"""Variant name -> its files; the name is the body model a family's targets are made of (`fit_variant_name`)."""
PARAM_PATH_KEYS = tuple(variant.path_key for variant in FIT_VARIANTS.values())


def fit_variant_name(targets: Any) -> str:
    """'smpl' for a family whose targets are SMPL's (its target builder's ``prefix``, pose2pose_body), else 'smplx'."""
    return "smpl" if getattr(targets, "prefix", None) == "smpl" else "smplx"
