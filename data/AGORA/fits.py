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

The per-person files use the smplx package's argument names; data/fits.py parses them (its 'smplx_layer' layout).
Every path read from an annotation goes through `data.annotation_io.path_in_root`; `checked_relpath` is the same
check for the AGORA tools, which join the paths themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.annotation_io import read_json, relative_path
from data.fits import camera_params, smpl_params, smplx_params
from data.record import CameraParams, SMPLParams, SMPLXParams

__all__ = ["FIT_VARIANTS", "PARAM_PATH_KEYS", "FitVariant", "checked_relpath", "read_camera", "read_smpl_params",
           "read_smplx_params"]  # fmt: skip


def checked_relpath(value: Any, source: Path, entry: str, key: str) -> str:
    """An annotation's path, checked by `data.annotation_io.relative_path` to stay inside the root it is relative to.

    Args:
        value: the annotation's value, e.g. 'smplx_params_cam/train_0/<image>/0.json'.
        source: the annotation file; entry: which entry of it, e.g. 'annotation 12'; key: the entry's key; all
            named in errors.

    Returns:
        The path as '/'-separated components ('.' dropped), relative to that root.

    Raises:
        AnnotationError: naming the file, the entry, the key and the path (see `path_in_root`).
    """
    return relative_path(value, source, f"{entry}, {key}").as_posix()


def read_smplx_params(path: Path, gender: str) -> SMPLXParams:
    """A ``smplx_params_cam`` file (camera frame) as SMPL-X parameters for the layer of ``gender``."""
    return smplx_params(read_json(path), str(path), layout="smplx_layer", gender=gender)


def read_smpl_params(path: Path, gender: str) -> SMPLParams:
    """A ``smpl_params_cam`` file (camera frame) as SMPL parameters: pose (72,) = global_orient + body_pose."""
    return smpl_params(read_json(path), str(path), layout="smplx_layer", gender=gender)


def read_camera(path: Path) -> CameraParams:
    """A ``cam_params`` file: (2,) focal and (2,) princpt, pixels of the 3840x2160 image (no R, t)."""
    return camera_params(read_json(path), str(path))


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
"""Variant name -> its files; the name is the body model a family's targets are made of (`data.fits.fit_model`)."""
PARAM_PATH_KEYS = tuple(variant.path_key for variant in FIT_VARIANTS.values())
