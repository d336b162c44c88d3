"""What the body datasets (Human36M, MPII, MPI_INF_3DHP, PW3D) share for the Pose2Pose body model (SMPL).

- Which fits a dataset reads: `fit_model` is 'smpl' for the family whose target builder has ``prefix`` 'smpl'
  (model.arch pose2pose_body), else 'smplx' (Hand4Whole); each dataset keeps one table fit model -> file name.
- SMPL parameters as the releases store them, ``{'pose' (72), 'shape' (10), 'trans' (3)[, 'gender']}`` in
  axis-angle radians and metres: wrapped with the camera as ``{'smpl_param', 'cam_param': {'focal', 'princpt'}}``
  and in the camera frame (MPII's NeuralAnnot), bare in a world frame that the camera's R, t bring into the
  camera (Human36M's, MPI-INF-3DHP's NeuralAnnot), or per annotation in the camera frame (3DPW's GT).
- SMPL's Human3.6M joint regressor, ``<human_model_path>/smpl/J_regressor_h36m_smpl.npy``, which the Human36M and
  3DPW evaluations apply to SMPL meshes (SMPL-X meshes take the body models' own SMPL-X regressor).
- Image paths read from annotations, which must stay inside the dataset root.

It lives beside Human36M because the H36M regressors do (Hand4Whole ships them in data/Human36M/).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from common.body_models import files
from common.body_models.layers import NUM_BETAS, BodyModels
from common.body_models.regressors import read_regressor
from data.annotation_io import neural_annot_params
from data.record import CameraParams, SMPLParams, SMPLXParams

__all__ = ["MESH_KEYS", "annotated_path", "fit_model", "h36m_regressor", "mesh_topology", "neural_annot_smpl",
           "smpl_params", "world_fit_fields"]  # fmt: skip

MESH_KEYS: Mapping[str, str] = {"smpl": "smpl_mesh_cam", "smplx": "smplx_mesh_cam"}
"""The test output holding each topology's predicted mesh (camera frame, metres)."""
_GENDERS = {"m": "male", "male": "male", "f": "female", "female": "female", "neutral": "neutral"}


def fit_model(targets: Any) -> str:
    """'smpl' when the family's targets are SMPL's (its builder's ``prefix``, pose2pose_body), else 'smplx'."""
    return "smpl" if getattr(targets, "prefix", None) == "smpl" else "smplx"


def _vector(param: Mapping[str, Any], key: str, size: int, where: str, exact: bool = True) -> np.ndarray:
    if key not in param:
        raise ValueError(f"{where}: the SMPL parameters lack {key!r}")
    value = np.asarray(param[key], dtype=np.float64).reshape(-1)
    if value.size < size or (exact and value.size != size):
        raise ValueError(f"{where}: SMPL {key!r} has {value.size} values, expected {size}")
    return value[:size]  # betas beyond the first 10 (kids' 11th) are dropped, as the reference does


def smpl_params(param: Any, where: str) -> SMPLParams:
    """One person's SMPL parameters.

    Args:
        param: ``{'pose': 72 axis-angle radians (root first), 'shape': >= 10 betas, 'trans': 3 metres[, 'gender':
            'male' | 'female' | 'm' | 'f' | 'neutral']}``; without a gender the neutral model.
        where: annotation file and entry, for error messages.

    Raises:
        ValueError: naming ``where`` and the key that is missing, of the wrong size, or an unknown gender.
    """
    if not isinstance(param, Mapping):
        raise ValueError(f"{where}: expected SMPL parameters {{pose, shape, trans}}, got {type(param).__name__}")
    gender = str(param.get("gender", "neutral")).lower()
    if gender not in _GENDERS:
        raise ValueError(f"{where}: unknown SMPL gender {param['gender']!r}; accepted: {', '.join(_GENDERS)}")
    return SMPLParams(pose=_vector(param, "pose", 72, where), shape=_vector(param, "shape", NUM_BETAS, where, False),
                      trans=_vector(param, "trans", 3, where), gender=_GENDERS[gender])  # fmt: skip


def neural_annot_smpl(entry: Any, where: str) -> tuple[SMPLParams, CameraParams]:
    """SMPL parameters (camera frame) and intrinsics of a NeuralAnnot entry ``{'smpl_param', 'cam_param'}``.

    Raises:
        ValueError: naming ``where`` when a part is missing or malformed.
    """
    if not isinstance(entry, Mapping) or not isinstance(entry.get("cam_param"), Mapping):
        raise ValueError(f"{where}: a NeuralAnnot SMPL entry needs 'smpl_param' and 'cam_param'")
    cam = entry["cam_param"]
    try:
        camera = CameraParams(focal=np.asarray(cam["focal"], np.float64).reshape(2),
                              princpt=np.asarray(cam["princpt"], np.float64).reshape(2))  # fmt: skip
    except (KeyError, ValueError) as err:
        raise ValueError(f"{where}: 'cam_param' needs focal and princpt, 2 values each ({err!r})") from None
    return smpl_params(entry.get("smpl_param"), where), camera


def world_fit_fields(model: str, fit: Any, cam: CameraParams, where: str) -> dict[str, SMPLParams | SMPLXParams]:
    """The record field of a bare world-frame NeuralAnnot fit (Human36M, MPI-INF-3DHP), whose camera has R, t.

    Args:
        model: 'smpl' or 'smplx' (`fit_model`).
        fit: the fit's parameter dict, or None when the frame has none.
        cam: the image's camera (R, t bring the world-frame fit into it downstream).
        where: annotation file and entry, for error messages.

    Returns:
        {} without a fit, else {'smpl': SMPLParams} or {'smplx': SMPLXParams}.
    """
    if fit is None:
        return {}
    if model == "smpl":
        return {"smpl": smpl_params(fit, where)}
    entry = {"smplx_param": fit, "cam_param": {"focal": cam.focal, "princpt": cam.princpt}}
    return {"smplx": neural_annot_params(entry, where)[0]}


def annotated_path(base: Path, parts: Sequence[Any], source: Path, entry: str) -> Path:
    """``base / parts...`` for path parts read from an annotation (file names, sequence folders).

    Args:
        base: the folder inside the dataset root that the parts are relative to.
        parts: the annotation's values ('/' or '\\' separators allowed).
        source: the annotation file, and entry: the record holding the parts there, for the error message.

    Raises:
        ValueError: naming the file, the entry and the path when it is empty, absolute or climbs out with '..'.
    """
    texts = [str(part) for part in parts]
    relpath = "/".join(texts)
    pieces = PurePosixPath(relpath.replace("\\", "/")).parts
    if any(not t or t.startswith(("/", "\\")) or PureWindowsPath(t).drive for t in texts) or ".." in pieces:
        raise ValueError(f"{source}: {entry} has the path {relpath!r}; annotation paths must be relative and stay "
                         f"under {base}")  # fmt: skip
    return base.joinpath(*pieces)


@functools.lru_cache(maxsize=8)
def _read_cached(path: Path, stamp: tuple[int, int], num_vertices: int) -> np.ndarray:
    return read_regressor(path, num_vertices)  # stamp (mtime, size): a replaced file is read again


def h36m_regressor(body_models: BodyModels, topology: str) -> np.ndarray:
    """(17, V) Human3.6M joint regressor of a mesh topology, rows in `common.utils.metrics.H36M_JOINTS` order.

    Args:
        body_models: the body models (the tree and the meshes' vertex counts).
        topology: 'smpl' (``smpl/J_regressor_h36m_smpl.npy``, 6890 vertices with the real files) or 'smplx'.

    Raises:
        MissingBodyModelFileError: the regressor file is missing (the message names it and where it comes from).
        ValueError: the file's matrix does not fit the mesh.
    """
    if topology == "smplx":
        return body_models.h36m_regressor()
    if topology != "smpl":
        raise ValueError(f"unknown mesh topology {topology!r}; accepted: {', '.join(MESH_KEYS)}")
    path = files.require_model_file(body_models.root, files.J_REGRESSOR_H36M_SMPL)
    stat = path.stat()
    return _read_cached(path, (stat.st_mtime_ns, stat.st_size), int(body_models.smpl("neutral").v_template.shape[0]))


def mesh_topology(outs: Sequence[Mapping[str, Any]], preferred: str, dataset: str) -> str:
    """The topology ('smpl' or 'smplx') whose mesh every output holds, the family's own (``preferred``) first.

    Raises:
        ValueError: naming the dataset, the keys it accepts and those the first output has.
    """
    for topology in (preferred, *(t for t in MESH_KEYS if t != preferred)):
        if all(MESH_KEYS[topology] in out for out in outs):
            return topology
    raise ValueError(f"{dataset}.evaluate: every output needs {' or '.join(map(repr, MESH_KEYS.values()))}; "
                     f"the first has {sorted(outs[0]) if outs else []}")  # fmt: skip
