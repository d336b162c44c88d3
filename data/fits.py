"""Parametric (pseudo-)GT read from annotation dicts: SMPL-X, SMPL, MANO and FLAME parameters and their cameras.

One parser per body model serves every dataset; the layouts differ only in key names:

- NeuralAnnot's, in Hand4Whole's releases (MSCOCO, MPII, Human36M, MPI-INF-3DHP, FFHQ, InterHand2.6M, the parsed
  FreiHAND files, 3DPW's GT). SMPL-X ``{root_pose, body_pose, lhand_pose, rhand_pose, jaw_pose, shape, expr, trans}``
  (hands and face optional, with ``lhand_valid`` / ``rhand_valid`` / ``face_valid`` flags); SMPL ``{pose (72), shape,
  trans[, gender]}``; MANO ``{pose (48), shape, trans}``; FLAME ``{root_pose, jaw_pose, shape, expr[, trans]}``.
  A fit in the camera frame is wrapped as ``{'<model>_param': {...}, 'cam_param': {focal, princpt}}``
  (`neural_annot_fit`); a fit in a world frame is bare, and the image's camera R, t bring it in downstream.
- the smplx package's argument names (``layout='smplx_layer'``), in AGORA's per-person files: ``global_orient,
  body_pose, left_hand_pose, right_hand_pose, jaw_pose, betas, expression, transl`` (SMPL: ``global_orient,
  body_pose (69), betas, transl``), every part present.

Sizes: poses, translations and camera vectors hold exactly their size (another count is another format, e.g. a
SMPL body pose given as SMPL-X's); betas and expression hold at least `NUM_BETAS` / `NUM_EXPRESSION` values and the
rest is dropped, as Hand4Whole does with a kid's 11th (age) beta. Units: axis-angle radians, metres, pixels.
Every error is a `data.record.AnnotationError` naming ``where`` (the file and entry), the model and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from common.body_models.layers import NUM_BETAS, NUM_EXPRESSION
from data.annotation_io import brief, nested_entry, numbers, optional_entry
from data.record import AnnotationError, CameraParams, FLAMEParams, MANOParams, SMPLParams, SMPLXParams

__all__ = ["GENDERS", "calibrated_frame_fields", "camera_params", "fit_model", "flame_params", "gender_of",
           "mano_params", "neural_annot_fit", "param_vector", "smpl_params", "smplx_params",
           "world_fit_fields"]  # fmt: skip

GENDERS: Mapping[str, str] = {"m": "male", "male": "male", "f": "female", "female": "female", "neutral": "neutral"}
"""Gender spellings found in the releases (lower-cased) -> the body-model file's gender."""
_AT_LEAST = {"shape": NUM_BETAS, "betas": NUM_BETAS, "expr": NUM_EXPRESSION, "expression": NUM_EXPRESSION}
_SMPLX_KEYS: Mapping[str, Mapping[str, str]] = {  # SMPLXParams field -> key, per layout
    "neural_annot": {"root_pose": "root_pose", "body_pose": "body_pose", "lhand_pose": "lhand_pose",
                     "rhand_pose": "rhand_pose", "jaw_pose": "jaw_pose", "shape": "shape", "expr": "expr",
                     "trans": "trans"},
    "smplx_layer": {"root_pose": "global_orient", "body_pose": "body_pose", "lhand_pose": "left_hand_pose",
                    "rhand_pose": "right_hand_pose", "jaw_pose": "jaw_pose", "shape": "betas", "expr": "expression",
                    "trans": "transl"},
}  # fmt: skip
_SMPLX_SIZES = {"root_pose": 3, "body_pose": 63, "lhand_pose": 45, "rhand_pose": 45, "jaw_pose": 3,
                "shape": NUM_BETAS, "expr": NUM_EXPRESSION, "trans": 3}  # fmt: skip
_PARTS = {"lhand": ("lhand_pose",), "rhand": ("rhand_pose",), "face": ("jaw_pose", "expr")}


def fit_model(targets: Any) -> str | None:
    """The body model whose fits a family reads: 'smpl' where its target builder's ``prefix`` is 'smpl' (the Pose2Pose
    body model), None where the builder reads no fits (it declares ``fits = None``, or ``prefix = 'none'``: a skeleton
    family such as Integral regression, for which the datasets need no NeuralAnnot file), else 'smplx' (Hand4Whole)."""
    if getattr(targets, "fits", "") is None or getattr(targets, "prefix", None) == "none":
        return None
    return "smpl" if getattr(targets, "prefix", None) == "smpl" else "smplx"


def _mapping(value: Any, what: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise AnnotationError(f"{where}: expected {what} (a json object), got {brief(value)}")
    return value


def param_vector(param: Mapping[str, Any], key: str, size: int, where: str, model: str,
                 default: float | None = None) -> np.ndarray:  # fmt: skip
    """(size,) float64 of ``param[key]``: exactly ``size`` values, or at least for betas and expression (the rest
    dropped). ``default`` fills a missing key; without one a missing key is an error."""
    if key not in param:
        if default is None:
            raise AnnotationError(f"{where}: the {model} parameters lack {key!r}")
        return np.full(size, default, dtype=np.float64)
    value = param[key]
    if isinstance(value, str | bytes | Mapping) or value is None:
        raise AnnotationError(f"{where}: {model} {key!r} is {brief(value)}, not a list of numbers")
    try:
        vector = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):  # a ragged or non-numeric list
        raise AnnotationError(f"{where}: {model} {key!r} is {brief(value)}, not a list of numbers") from None
    at_least = key in _AT_LEAST
    if vector.size < size or (not at_least and vector.size != size):
        expected = f"{size} or more" if at_least else str(size)
        raise AnnotationError(f"{where}: {model} {key!r} has {vector.size} values, expected {expected}")
    return vector[:size]


def gender_of(value: Any, where: str) -> str:
    """'male', 'female' or 'neutral' of an annotated gender ('m', 'F', 'male', ...); AnnotationError otherwise."""
    gender = GENDERS.get(str(value).lower()) if isinstance(value, str) else None
    if gender is None:
        raise AnnotationError(f"{where}: unknown gender {value!r}; accepted: {', '.join(GENDERS)}")
    return gender


def camera_params(cam: Any, where: str, focal: str = "focal", princpt: str = "princpt", rotation: str | None = None,
                  translation: str | None = None, translation_unit_m: float = 1.0) -> CameraParams:  # fmt: skip
    """A camera entry: intrinsics (2,) focal and (2,) principal point in pixels, and optionally R (3, 3) and t (3,).

    Args:
        cam: the entry, e.g. ``{'focal': [fx, fy], 'princpt': [cx, cy]}``.
        where: the file and entry, for errors.
        focal, princpt, rotation, translation: the entry's keys (Human3.6M: 'f', 'c', 'R', 't').
        translation_unit_m: metres per unit of the stored translation (0.001 for millimetres).
    """
    cam = _mapping(cam, "a camera {focal, princpt}", where)
    for key in (focal, princpt, rotation, translation):
        if key is not None and key not in cam:
            raise AnnotationError(f"{where}: the camera lacks {key!r}")
    rotation_matrix = None if rotation is None else numbers(cam[rotation], (3, 3), f"{where}: camera {rotation!r}")
    shift = None if translation is None else numbers(cam[translation], (3,), f"{where}: camera {translation!r}")
    return CameraParams(
        focal=numbers(cam[focal], (2,), f"{where}: camera {focal!r}"),
        princpt=numbers(cam[princpt], (2,), f"{where}: camera {princpt!r}"),
        R=rotation_matrix,
        t=None if shift is None else shift * translation_unit_m,
    )


def smplx_params(param: Any, where: str, part_valid: Mapping[str, bool] | None = None, layout: str = "neural_annot",
                 gender: str | None = None) -> SMPLXParams:  # fmt: skip
    """One person's SMPL-X parameters.

    Args:
        param: the parameter dict, in ``layout``'s key names (module docstring).
        where: the file and entry, for errors.
        part_valid: NeuralAnnot only: the fallback validity of 'lhand', 'rhand', 'face' where the fit has no
            ``<part>_valid`` flag (e.g. COCO-WholeBody's flags); a part not valid or absent is None (masked
            downstream).
        layout: 'neural_annot' or 'smplx_layer' (every part required).
        gender: the layer's gender; None: the fit's 'gender' key, else neutral.
    """
    param = _mapping(param, "SMPL-X parameters", where)
    keys = _SMPLX_KEYS[layout]
    values: dict[str, np.ndarray | None] = {}
    for field in ("root_pose", "body_pose", "shape", "trans"):
        values[field] = param_vector(param, keys[field], _SMPLX_SIZES[field], where, "SMPL-X")
    for part, fields in _PARTS.items():
        valid = layout == "smplx_layer" or (
            bool(param.get(f"{part}_valid", (part_valid or {}).get(part, True)))
            and all(keys[f] in param for f in fields)
        )
        for field in fields:
            values[field] = param_vector(param, keys[field], _SMPLX_SIZES[field], where, "SMPL-X") if valid else None
    if gender is None:
        gender = gender_of(param.get("gender", "neutral"), where)
    return SMPLXParams(**values, gender=gender)  # type: ignore[arg-type]


def smpl_params(param: Any, where: str, layout: str = "neural_annot", gender: str | None = None) -> SMPLParams:
    """One person's SMPL parameters: pose (72,) root first, shape (10,), trans (3,).

    Args:
        param: ``{'pose' 72, 'shape', 'trans'[, 'gender']}`` (NeuralAnnot, 3DPW) or, with layout 'smplx_layer',
            ``{'global_orient' 3, 'body_pose' 69, 'betas', 'transl'}`` (AGORA).
        where: the file and entry, for errors.
        gender: the layer's gender; None: the fit's 'gender' key ('m', 'f', ... accepted), else neutral.
    """
    param = _mapping(param, "SMPL parameters {pose, shape, trans}", where)
    if layout == "smplx_layer":
        pose = np.concatenate([param_vector(param, "global_orient", 3, where, "SMPL"),
                               param_vector(param, "body_pose", 69, where, "SMPL")])  # fmt: skip
        shape, trans = param_vector(param, "betas", NUM_BETAS, where, "SMPL"), param_vector(param, "transl", 3, where,
                                                                                            "SMPL")  # fmt: skip
    else:
        pose = param_vector(param, "pose", 72, where, "SMPL")
        shape, trans = param_vector(param, "shape", NUM_BETAS, where, "SMPL"), param_vector(param, "trans", 3, where,
                                                                                            "SMPL")  # fmt: skip
    if gender is None:
        gender = gender_of(param.get("gender", "neutral"), where)
    return SMPLParams(pose=pose, shape=shape, trans=trans, gender=gender)


def mano_params(param: Any, side: str, where: str, default_trans: float | None = None) -> MANOParams:
    """One hand's MANO parameters ``{pose (48) root + 15 joints, shape, trans}`` for the layer of ``side``;
    ``default_trans`` fills a missing trans (FreiHAND: NaN, derived later), else it is required."""
    param = _mapping(param, "MANO parameters {pose, shape, trans}", where)
    trans = param_vector(param, "trans", 3, where, "MANO", default=default_trans)
    return MANOParams(pose=param_vector(param, "pose", 48, where, "MANO"),
                      shape=param_vector(param, "shape", NUM_BETAS, where, "MANO"), trans=trans, side=side)  # fmt: skip


def flame_params(param: Any, where: str) -> FLAMEParams:
    """One face's FLAME parameters ``{root_pose (3), jaw_pose (3), shape, expr[, trans (3)]}``; a missing trans is
    zero, as the reference reads it."""
    param = _mapping(param, "FLAME parameters {root_pose, jaw_pose, shape, expr}", where)
    return FLAMEParams(root_pose=param_vector(param, "root_pose", 3, where, "FLAME"),
                       jaw_pose=param_vector(param, "jaw_pose", 3, where, "FLAME"),
                       shape=param_vector(param, "shape", NUM_BETAS, where, "FLAME"),
                       expr=param_vector(param, "expr", NUM_EXPRESSION, where, "FLAME"),
                       trans=param_vector(param, "trans", 3, where, "FLAME", default=0.0))  # fmt: skip


def neural_annot_fit(entry: Any, model: str, where: str, **options: Any) -> tuple[Any, CameraParams]:
    """(parameters, camera) of a NeuralAnnot entry in the camera frame: ``{'<model>_param': {...}, 'cam_param':
    {focal, princpt}}``, the camera without R, t.

    Args:
        entry: the entry.
        model: 'smplx', 'smpl', 'mano' or 'flame'.
        where: the file and entry, for errors.
        options: passed to the model's parser (``part_valid`` for SMPL-X, ``side`` for MANO).
    """
    entry = _mapping(entry, f"a NeuralAnnot entry {{'{model}_param', 'cam_param'}}", where)
    for key in (f"{model}_param", "cam_param"):
        if key not in entry:
            raise AnnotationError(f"{where}: the NeuralAnnot entry lacks {key!r}")
    camera = camera_params(entry["cam_param"], f"{where}['cam_param']")
    param = entry[f"{model}_param"]
    if model == "smplx":
        return smplx_params(param, where, **options), camera
    if model == "smpl":
        return smpl_params(param, where), camera
    if model == "mano":
        return mano_params(param, options["side"], where), camera
    if model == "flame":
        return flame_params(param, where), camera
    raise ValueError(f"unknown body model {model!r}; accepted: smplx, smpl, mano, flame")


def world_fit_fields(model: str, fit: Any, where: str) -> dict[str, SMPLParams | SMPLXParams]:
    """The record field of a bare world-frame NeuralAnnot fit (Human36M, MPI-INF-3DHP), whose camera has R, t.

    Args:
        model: 'smpl' or 'smplx' (`fit_model`).
        fit: the fit's parameter dict, or None when the frame has none.
        where: the file and entry, for errors.

    Returns:
        {} without a fit, else {'smpl': SMPLParams} or {'smplx': SMPLXParams}.
    """
    if fit is None:
        return {}
    return {"smpl": smpl_params(fit, where)} if model == "smpl" else {"smplx": smplx_params(fit, where)}


def calibrated_frame_fields(
    cam: CameraParams, key: tuple[str, ...], tables: Mapping[str, Mapping[str, Any]], paths: Mapping[str, Path],
    num_joints: int, model: str,
) -> dict[str, Any]:  # fmt: skip
    """The `Record` fields of one frame of a calibrated capture (Human3.6M, MPI-INF-3DHP): its GT joints and its fit.

    Args:
        cam: the image's camera, R (world -> camera) and t in metres.
        key: the frame's key in both tables, e.g. (action, subaction, frame).
        tables: 'joint_3d' (key -> (num_joints, 3) world millimetres) and 'fits' (key -> a bare world-frame
            NeuralAnnot fit, or nothing for a frame without one).
        paths: the files of the two tables, for errors.
        num_joints: the joints each frame holds.
        model: the fit's body model, 'smpl' or 'smplx' (`fit_model`).

    Returns:
        cam, joints_cam (camera metres), joints_xy_img (their projection), joints_valid, is_3D, and 'smpl' or 'smplx'
        when the frame has a fit (the camera's R, t bring it into the camera frame downstream).
    """
    where = f"[{']['.join(key)}]"
    joints_world_m = numbers(nested_entry(tables["joint_3d"], key, paths["joint_3d"]), (num_joints, 3),
                             f"{paths['joint_3d']} {where}") / 1000.0  # fmt: skip
    joints_cam_m = joints_world_m @ cam.R.T + cam.t  # (J, 3) camera frame, metres
    fit = optional_entry(tables["fits"], key, paths["fits"])
    return {"cam": cam, "joints_cam": joints_cam_m, "joints_xy_img": cam.project(joints_cam_m),
            "joints_valid": np.ones(num_joints), "is_3D": True,
            **world_fit_fields(model, fit, f"{paths['fits']} {where}")}  # fmt: skip
