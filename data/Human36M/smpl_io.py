"""What the body datasets (Human36M, PW3D) share to evaluate SMPL and SMPL-X meshes on Human3.6M's joints.

- `MESH_KEYS`: the test output holding each topology's predicted mesh; `mesh_topology` picks the one the outputs
  hold, the family's own first.
- SMPL's Human3.6M joint regressor, ``<human_model_path>/smpl/J_regressor_h36m_smpl.npy``, which the Human36M and
  3DPW evaluations apply to SMPL meshes (SMPL-X meshes take the body models' own SMPL-X regressor).

It lives beside Human36M because the H36M regressors do (Hand4Whole ships them in data/Human36M/). The fits these
datasets read are parsed by data/fits.py, their paths checked by data/annotation_io.py.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common.body_models import files
from common.body_models.layers import BodyModels
from common.body_models.regressors import read_regressor

__all__ = ["MESH_KEYS", "h36m_regressor", "mesh_topology"]

MESH_KEYS: Mapping[str, str] = {"smpl": "smpl_mesh_cam", "smplx": "smplx_mesh_cam"}
"""The test output holding each topology's predicted mesh (camera frame, metres)."""


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
