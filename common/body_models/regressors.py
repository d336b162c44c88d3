"""Joint regressors over SMPL-X vertices: reading the evaluation regressors and building the hand ones.

A regressor is a (R, V) matrix; ``joints = regressor @ vertices`` maps (V, 3) vertices to (R, 3)
joints in the vertices' units. Each row sums to 1 (a weighted mean of vertices).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from smplx.vertex_ids import vertex_ids as SMPLX_PACKAGE_VERTEX_IDS

from .joint_sets import HAND_21, SMPLX_SKELETON, SMPLX_VERTEX_KEYPOINTS
from .pickle_io import load_npy, load_pickle


def read_regressor(path: Path, num_vertices: int) -> np.ndarray:
    """Read a (R, V) regressor from a ``.npy`` file or a (latin1, possibly chumpy) ``.pkl`` file.

    Args:
        path: the file.
        num_vertices: V of the mesh it applies to, taken from the loaded model.

    Returns:
        (R, V) float32, dense, read-only.

    Raises:
        ValueError: the file does not hold a 2-D matrix with ``num_vertices`` columns.
    """
    value = load_pickle(path) if path.suffix == ".pkl" else load_npy(path)  # both refuse code-running content
    if hasattr(value, "toarray"):  # a scipy.sparse matrix
        value = value.toarray()
    regressor = np.asarray(value, dtype=np.float32)
    if regressor.ndim != 2 or regressor.shape[1] != num_vertices:
        raise ValueError(f"{path}: expected a (R, {num_vertices}) regressor, got shape {regressor.shape}")
    regressor.setflags(write=False)
    return regressor


def make_hand_regressors(joint_regressor: np.ndarray) -> dict[str, np.ndarray]:
    """Hand4Whole's 21-joint hand regressors over SMPL-X vertices (its ``make_hand_regressor``).

    Rows follow `HAND_21` (Wrist, Thumb_1..4, Index_1..4, Middle_1..4, Ring_1..4, Pinky_1..4): the
    wrist and finger joints are rows of SMPL-X's skeleton regressor, looked up by name; the
    fingertips (``*_4``) are one-hot rows at the fingertip vertices smplx itself uses
    (``smplx.vertex_ids.vertex_ids['smplx']``).

    Args:
        joint_regressor: (55, V) SMPL-X skeleton regressor, rows in `SMPLX_SKELETON` order.

    Returns:
        {'left', 'right'} -> (21, V) float32, read-only.
    """
    tip_vertex = SMPLX_PACKAGE_VERTEX_IDS["smplx"]
    num_vertices = joint_regressor.shape[1]
    out = {}
    for side, prefix in (("left", "L_"), ("right", "R_")):
        rows = np.zeros((len(HAND_21), num_vertices), dtype=np.float32)
        for row, name in zip(rows, HAND_21.names, strict=True):
            joint = prefix + name
            if joint in SMPLX_VERTEX_KEYPOINTS:
                row[tip_vertex[SMPLX_VERTEX_KEYPOINTS[joint]]] = 1.0
            else:
                row[:] = joint_regressor[SMPLX_SKELETON.index(joint)]
        rows.setflags(write=False)
        out[side] = rows
    return out
