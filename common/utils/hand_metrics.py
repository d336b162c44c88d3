"""FreiHAND's evaluation (the benchmark's CodaLab script, lmb-freiburg/freihand ``eval.py``), per sample.

What the official script computes, and how this module reproduces it:

* Alignment: each sample's prediction is aligned to its GT on its own, joints and vertices separately, by the
  least-squares similarity fit (translation, uniform scale, orthogonal matrix) that ``scipy.linalg.
  orthogonal_procrustes`` gives. That matrix is *not* sign-corrected, so a mirrored prediction is aligned by a
  reflection. ``common.geometry.similarity_procrustes`` (Hand4Whole's ``rigid_align``) forces det +1; the two agree
  whenever the best orthogonal fit is a rotation, which it is for any prediction that resembles the hand. We follow
  the benchmark, because the published FreiHAND numbers come from it.
* PA-MPJPE / PA-MPVPE: mean Euclidean distance over the 21 joints / 778 MANO vertices after alignment.
* F-score at 5 mm and 15 mm on the aligned vertices: nearest-neighbour distances between the two point sets (not
  index-matched), strictly below the threshold as in the script. precision = fraction of predicted points near
  the GT set, recall = fraction of GT points near the prediction (the script swaps the two names; F is symmetric).
  F = 2PR / (P + R), and 0 when P + R = 0. The script reports F on vertices only; ``f*_joint`` are ours.
* AUC of the PCK curve: 100 thresholds ``linspace(0, 50 mm)``, a point counts when its error is <= the threshold,
  the trapezoidal area divided by 50 mm. The script averages over points the PCK over the whole set; every point
  is always visible, so that equals the mean over samples of the per-sample AUC returned here. The first
  threshold, 0, counts only errors that are exactly 0; the float noise of aligning a perfect prediction seldom is,
  so the script (and this module) give such a prediction ~0.995 (1 - 0.5 / 99), not 1.

Every metric is (B,) float64, one value per sample; a set's number is the mean over its samples, which reproduces
the script's set-level value for all of them. Inputs are metres, (B, N, 3), numpy arrays or tensors.

``pred.json`` is the file the CodaLab server takes: a JSON list ``[xyz_list, verts_list]``, ``xyz_list`` N x 21 x 3
joints and ``verts_list`` N x 778 x 3 MANO vertices, metres, camera frame, sample i being the evaluation set's image
``evaluation/rgb/%08d.jpg % i`` (N = 3960). Joint order: wrist, then thumb, index, middle, ring, little finger, 4 joints
each from the palm to the tip.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import torch
from scipy.spatial import cKDTree

from common.utils.atomic_io import write_atomic

__all__ = [
    "FREIHAND_EVAL_SAMPLES",
    "FREIHAND_F_THRESHOLDS_M",
    "FREIHAND_NUM_JOINTS",
    "MANO_NUM_VERTICES",
    "FScores",
    "f_scores",
    "freihand_metrics",
    "freihand_procrustes",
    "pck_auc",
    "read_freihand_pred",
    "write_freihand_pred",
]

FREIHAND_EVAL_SAMPLES = 3960
"""Samples in FreiHAND's evaluation set (the server rejects a pred.json of another length)."""
FREIHAND_NUM_JOINTS = 21
MANO_NUM_VERTICES = 778
FREIHAND_F_THRESHOLDS_M: tuple[float, float] = (0.005, 0.015)
"""The F-score distance thresholds of the benchmark, metres."""
_PCK_MAX_M, _PCK_STEPS = 0.05, 100  # the script's get_measures(0.0, 0.05, 100)


def _float64(values: Any) -> np.ndarray:
    # float64 as the script (numpy on json floats); a tensor may live on any device and carry grad.
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def _as_float64(points: Any, name: str) -> np.ndarray:
    array = _float64(points)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"{name}: expected (B, N, 3) points, got shape {array.shape}")
    return array


def _check_pair(pred: np.ndarray, gt: np.ndarray, what: str) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"{what}: prediction {pred.shape} and GT {gt.shape} differ in shape")


def freihand_procrustes(pred_points_m: Any, gt_points_m: Any) -> np.ndarray:
    """Each predicted point set aligned to its GT as FreiHAND's ``align_w_scale`` does (reflections allowed).

    Minimises sum_n || s * Q @ pred_n + t - gt_n ||^2 over s >= 0, t and an orthogonal Q (det +1 or -1).

    Args:
        pred_points_m: (B, N, 3) predicted points, metres (any frame).
        gt_points_m: (B, N, 3) corresponding GT points, metres.

    Returns:
        (B, N, 3) aligned prediction, metres, in the GT's frame. A prediction whose points all coincide maps to the
        GT centroid (s = 0), as in the script.
    """
    pred, gt = _as_float64(pred_points_m, "pred_points_m"), _as_float64(gt_points_m, "gt_points_m")
    _check_pair(pred, gt, "freihand_procrustes")
    pred_c = pred - pred.mean(-2, keepdims=True)  # (B, N, 3)
    gt_mean = gt.mean(-2, keepdims=True)  # (B, 1, 3)
    cov = np.einsum("bni,bnj->bij", pred_c, gt - gt_mean)  # (B, 3, 3) = pred_c^T gt_c
    u, sigma, vt = np.linalg.svd(cov)
    # Orthogonal Procrustes: pred_c @ (U V^T) is closest to gt_c; no det sign fix, as scipy's orthogonal_procrustes.
    orthogonal = u @ vt  # (B, 3, 3)
    # Least-squares scale s = tr(Sigma) / ||pred_c||^2; the clamp keeps a collapsed prediction at s = 0, not NaN.
    scale = sigma.sum(-1) / np.maximum((pred_c**2).sum((-2, -1)), np.finfo(np.float64).tiny)  # (B,)
    return scale[:, None, None] * (pred_c @ orthogonal) + gt_mean


class FScores(NamedTuple):
    """Per-sample F-scores and their parts at each threshold; all (B, T), unitless in [0, 1]."""

    f: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


def f_scores(pred_points_m: Any, gt_points_m: Any, thresholds_m: Sequence[float]) -> FScores:
    """Point-set F-scores from nearest-neighbour distances, as FreiHAND's ``calculate_fscore``.

    The two sets need not correspond index by index, nor have the same size.

    Args:
        pred_points_m: (B, P, 3) predicted points, metres.
        gt_points_m: (B, G, 3) GT points, metres, in the same frame (align first for the benchmark's values).
        thresholds_m: T distances, metres; a point matches when its nearest neighbour is strictly closer.

    Returns:
        precision (fraction of predicted points within the threshold of the GT set), recall (fraction of GT
        points within the threshold of the predicted set) and F = 2PR / (P + R) (0 if P + R = 0), each (B, T).
    """
    pred, gt = _as_float64(pred_points_m, "pred_points_m"), _as_float64(gt_points_m, "gt_points_m")
    if pred.shape[0] != gt.shape[0]:
        raise ValueError(f"f_scores: {pred.shape[0]} predicted and {gt.shape[0]} GT samples")
    thresholds = np.asarray(thresholds_m, dtype=np.float64)  # (T,)
    precision = np.empty((len(pred), len(thresholds)))
    recall = np.empty_like(precision)
    # A k-d tree per set and sample: exact distances (as open3d's), ~1 ms per 778-vertex pair, and no (B, P, G)
    # distance tensor (19 GB in float64 for the 3960-sample set).
    for b in range(len(pred)):
        pred_to_gt, _ = cKDTree(gt[b]).query(pred[b])  # (P,)
        gt_to_pred, _ = cKDTree(pred[b]).query(gt[b])  # (G,)
        precision[b] = (pred_to_gt[:, None] < thresholds).mean(0)
        recall[b] = (gt_to_pred[:, None] < thresholds).mean(0)
    total = precision + recall
    f = np.where(total > 0, 2.0 * precision * recall / np.where(total > 0, total, 1.0), 0.0)
    return FScores(f, precision, recall)


def pck_auc(errors_m: Any, max_threshold_m: float = _PCK_MAX_M, steps: int = _PCK_STEPS) -> np.ndarray:
    """Normalised area under each sample's PCK curve, as FreiHAND's ``EvalUtil.get_measures(0, 0.05, 100)``.

    Args:
        errors_m: (B, N) per-point distances, metres.
        max_threshold_m: the curve spans thresholds ``linspace(0, max_threshold_m, steps)``, metres.
        steps: number of thresholds.

    Returns:
        (B,) area / max_threshold_m, unitless in [0, 1]; the mean over samples is the set's AUC.
    """
    errors = _float64(errors_m)
    if errors.ndim != 2:
        raise ValueError(f"errors_m: expected (B, N) distances, got shape {errors.shape}")
    thresholds = np.linspace(0.0, max_threshold_m, steps)  # (T,) the script's grid, metres
    # searchsorted(side='left') is the first threshold t with error <= t; the point counts from there on. A
    # histogram of those indices, accumulated, is the PCK curve without a (B, N, T) comparison tensor.
    first = np.searchsorted(thresholds, errors, side="left")  # (B, N) in [0, T]
    batch, count = errors.shape
    offsets = first + (steps + 1) * np.arange(batch)[:, None]  # (B, N) one histogram row per sample
    hist = np.bincount(offsets.ravel(), minlength=batch * (steps + 1)).reshape(batch, steps + 1)
    pck = np.cumsum(hist[:, :steps], axis=1) / count  # (B, T)
    return np.trapezoid(pck, thresholds, axis=1) / np.trapezoid(np.ones_like(thresholds), thresholds)


def freihand_metrics(pred_joints_m: Any, pred_verts_m: Any, gt_joints_m: Any, gt_verts_m: Any) -> dict[str, np.ndarray]:
    """FreiHAND's aligned metrics, per sample: joints and vertices each aligned to their GT on their own.

    Args:
        pred_joints_m: (B, J, 3) predicted joints, metres (J = 21 for the benchmark).
        pred_verts_m: (B, V, 3) predicted vertices, metres (V = 778 MANO vertices for the benchmark).
        gt_joints_m: (B, J, 3) GT joints, metres, same joint order.
        gt_verts_m: (B, V, 3) GT vertices, metres, same topology.

    Returns:
        (B,) float64 arrays: 'pa_mpjpe', 'pa_mpvpe' (mm); 'f5_mesh', 'f15_mesh', 'f5_joint', 'f15_joint' (F-score at
        5 / 15 mm, in [0, 1]); 'auc_joint', 'auc_mesh' (PCK AUC over 0-50 mm of the aligned errors, in [0, 1]).
    """
    out: dict[str, np.ndarray] = {}
    for part, pred_m, gt_m in (("joint", pred_joints_m, gt_joints_m), ("mesh", pred_verts_m, gt_verts_m)):
        pred, gt = _as_float64(pred_m, f"pred ({part})"), _as_float64(gt_m, f"gt ({part})")
        _check_pair(pred, gt, f"freihand_metrics ({part})")
        aligned = freihand_procrustes(pred, gt)  # (B, N, 3)
        errors_m = np.linalg.norm(aligned - gt, axis=-1)  # (B, N)
        out["pa_mpjpe" if part == "joint" else "pa_mpvpe"] = errors_m.mean(-1) * 1000.0
        out[f"auc_{part}"] = pck_auc(errors_m)
        f = f_scores(aligned, gt, FREIHAND_F_THRESHOLDS_M).f  # (B, 2)
        for k, threshold_m in enumerate(FREIHAND_F_THRESHOLDS_M):
            out[f"f{round(threshold_m * 1000)}_{part}"] = f[:, k]
    return out


def _check_pred_arrays(joints: np.ndarray, verts: np.ndarray, where: str) -> None:
    expected = {"joints (xyz_list)": (joints, FREIHAND_NUM_JOINTS), "vertices (verts_list)": (verts, MANO_NUM_VERTICES)}
    for what, (array, points) in expected.items():
        if array.ndim != 3 or array.shape[1:] != (points, 3):
            raise ValueError(f"{where}: {what} have shape {array.shape}, expected (N, {points}, 3)")
        if not np.isfinite(array).all():
            raise ValueError(f"{where}: {what} contain NaN or infinite values")
    if len(joints) != len(verts):
        raise ValueError(f"{where}: {len(joints)} joint sets but {len(verts)} vertex sets")
    if len(joints) == 0:
        raise ValueError(f"{where}: no samples")


def write_freihand_pred(path: str | os.PathLike[str], joints_m: Any, verts_m: Any) -> Path:
    """Writes a CodaLab ``pred.json`` (``[xyz_list, verts_list]``, see the module docstring) atomically.

    Args:
        path: the destination, e.g. ``<output_dir>/result/FreiHAND/pred.json``.
        joints_m: (N, 21, 3) joints, metres, camera frame, FreiHAND joint order, evaluation-set sample order.
        verts_m: (N, 778, 3) MANO vertices, metres, camera frame, same sample order.

    Returns:
        The destination path.
    """
    joints, verts = _as_float64(joints_m, "joints_m"), _as_float64(verts_m, "verts_m")
    _check_pred_arrays(joints, verts, f"write_freihand_pred({os.fspath(path)!r})")

    def dump(file: IO[bytes]) -> None:
        # One sample at a time: the set's file is ~200 MB of text. json.dump of the whole list would stream too, but
        # through the pure-Python encoder (~4x slower); json.dumps per sample keeps the C encoder and little memory.
        file.write(b"[")
        for k, array in enumerate((joints, verts)):
            file.write(b"[" if k == 0 else b", [")
            for i, sample in enumerate(array):
                file.write((", " if i else "").encode() + json.dumps(sample.tolist()).encode())
            file.write(b"]")
        file.write(b"]")

    return write_atomic(path, dump)


def read_freihand_pred(
    path: str | os.PathLike[str], expected_samples: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reads and validates a CodaLab ``pred.json``.

    Args:
        path: the file.
        expected_samples: the number of samples it must hold (``FREIHAND_EVAL_SAMPLES`` for a submission); None
            accepts any.

    Returns:
        joints (N, 21, 3) and vertices (N, 778, 3), float64 metres.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not JSON, not ``[xyz_list, verts_list]``, holds ragged or non-numeric lists, shapes
            other than (N, 21, 3) / (N, 778, 3), non-finite values, or not ``expected_samples`` samples. The message
            names the file and the problem.
    """
    where = f"FreiHAND prediction file {os.fspath(path)!r}"
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not valid JSON ({error})") from error
    if not isinstance(content, list) or len(content) != 2:
        kind = f"a list of {len(content)}" if isinstance(content, list) else type(content).__name__
        raise ValueError(f"{where}: expected a JSON list [xyz_list, verts_list], got {kind}")
    arrays = []
    for what, value in (("joints (xyz_list)", content[0]), ("vertices (verts_list)", content[1])):
        try:
            arrays.append(np.array(value, dtype=np.float64))
        except (TypeError, ValueError) as error:  # ragged nesting or non-numbers
            raise ValueError(f"{where}: {what} are not an (N, points, 3) array of numbers ({error})") from error
    joints, verts = arrays
    _check_pred_arrays(joints, verts, where)
    if expected_samples is not None and len(joints) != expected_samples:
        raise ValueError(f"{where}: {len(joints)} samples, expected {expected_samples}")
    return joints, verts
