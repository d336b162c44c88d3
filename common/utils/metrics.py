"""Evaluation metrics of the published protocols (Hand4Whole, ExPose, Pose2Pose), and their report.

Inputs are meshes or joints in metres, (B, N, 3) numpy arrays or tensors; every metric returns (B,)
float64 millimetres, one value per sample (a set's number is the mean over samples, as published).
Alignments: MPVPE translates the prediction so that a root joint (regressed from the mesh by the
SMPL-X joint regressor) meets the GT's: the pelvis for all vertices, each wrist for that hand's MANO
vertices, the neck for the FLAME face vertices. PA-* aligns by a similarity Procrustes fit (scale,
rotation, translation; `common.geometry.similarity_procrustes`) of each part on its own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.body_models.joint_sets import SMPLX_SKELETON
from common.geometry import similarity_procrustes
from common.utils.atomic_io import write_json_atomic

logger = logging.getLogger(__name__)

__all__ = [
    "H36M_EVAL_JOINTS",
    "H36M_JOINTS",
    "METRIC_LABELS",
    "MeshEvalSets",
    "ehf_joint_metrics",
    "format_table",
    "h36m_joint_metrics",
    "mean_point_error",
    "metric_unit",
    "mpvpe_metrics",
    "pa_point_error",
    "report",
    "summarize",
]

H36M_JOINTS: tuple[str, ...] = (
    "Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso", "Neck", "Head", "Head_top",
    "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist",
)  # fmt: skip
"""Rows of the Human3.6M joint regressors (J_regressor_h36m_smpl[x].npy)."""
H36M_EVAL_JOINTS: tuple[str, ...] = tuple(n for n in H36M_JOINTS if n not in ("Pelvis", "Torso", "Head"))
"""The 14 joints of H36M/3DPW MPJPE and PA-MPJPE (the LSP-style set without pelvis, torso and head)."""

METRIC_LABELS: dict[str, str] = {
    "mpvpe_all": "MPVPE (All)", "mpvpe_hand": "MPVPE (Hands)", "mpvpe_face": "MPVPE (Face)",
    "pa_mpvpe_all": "PA-MPVPE (All)", "pa_mpvpe_hand": "PA-MPVPE (Hands)", "pa_mpvpe_face": "PA-MPVPE (Face)",
    "pa_mpjpe_body": "PA-MPJPE (Body)", "pa_mpjpe_hand": "PA-MPJPE (Hands)",
    "mpjpe": "MPJPE (14 H36M joints)", "pa_mpjpe": "PA-MPJPE (14 H36M joints)",
    "mpvpe": "MPVPE", "pa_mpvpe": "PA-MPVPE",
    "mpjpe_17j": "MPJPE (17 H36M joints)", "pa_mpjpe_17j": "PA-MPJPE (17 H36M joints, with scale)",
    "f5_mesh": "F@5mm (mesh)", "f15_mesh": "F@15mm (mesh)", "f5_joint": "F@5mm (joints)",
    "f15_joint": "F@15mm (joints)", "auc_mesh": "AUC 0-50mm (mesh)", "auc_joint": "AUC 0-50mm (joints)",
}  # fmt: skip
"""Metric key -> the name the papers' tables use; a dataset may name its own (`report`'s labels)."""
_FRACTION_PREFIXES = ("f5_", "f15_", "auc_")  # F-scores and AUCs are fractions in [0, 1]; every other metric is mm


def metric_unit(key: str) -> str:
    """'mm' for distances, '' for F-scores and AUCs (fractions)."""
    return "" if key.startswith(_FRACTION_PREFIXES) else "mm"


def _as_tensor(points: Any) -> torch.Tensor:
    # float64: Procrustes on 10k vertices in float32 loses ~0.01 mm, more than the tests' tolerance. np.array
    # copies, so read-only inputs (the cached regressors) never reach torch.as_tensor, which warns on them.
    if isinstance(points, torch.Tensor):
        return points.to(torch.float64)
    return torch.from_numpy(np.array(points, dtype=np.float64))


def mean_point_error(pred: Any, gt: Any) -> np.ndarray:
    """Mean Euclidean distance per sample.

    Args:
        pred: (B, N, 3) metres. gt: (B, N, 3) metres.

    Returns:
        (B,) millimetres.
    """
    return ((_as_tensor(pred) - _as_tensor(gt)).norm(dim=-1).mean(-1) * 1000.0).cpu().numpy()


def pa_point_error(pred: Any, gt: Any) -> np.ndarray:
    """Mean distance after aligning each predicted point set to its GT by a similarity transform.

    Args:
        pred: (B, N, 3) metres. gt: (B, N, 3) metres.

    Returns:
        (B,) millimetres.
    """
    pred_t, gt_t = _as_tensor(pred), _as_tensor(gt)
    return mean_point_error(similarity_procrustes(pred_t, gt_t), gt_t)


def _regress(regressor: Any, mesh: torch.Tensor) -> torch.Tensor:
    return torch.einsum("jv,bvc->bjc", _as_tensor(regressor), mesh)  # (B, J, 3)


@dataclass(frozen=True)
class MeshEvalSets:
    """The SMPL-X vertex subsets and joints the MPVPE family uses.

    Attributes:
        joint_regressor: (55, V) SMPL-X skeleton regressor (pelvis, wrists and neck rows are used).
        hand_vertex_ids: {'left', 'right'} -> (778,) MANO vertex ids in the SMPL-X mesh.
        face_vertex_ids: (5023,) FLAME vertex ids in the SMPL-X mesh.
    """

    joint_regressor: np.ndarray
    hand_vertex_ids: Mapping[str, np.ndarray]
    face_vertex_ids: np.ndarray

    @classmethod
    def from_body_models(cls, body_models: Any) -> MeshEvalSets:
        """From a `common.body_models.BodyModels`."""
        return cls(body_models.smplx_joint_regressor(), body_models.hand_vertex_ids(), body_models.face_vertex_ids())


def mpvpe_metrics(pred_mesh: Any, gt_mesh: Any, sets: MeshEvalSets) -> dict[str, np.ndarray]:
    """MPVPE and PA-MPVPE for all vertices, the hands (mean of left and right) and the face.

    Args:
        pred_mesh: (B, V, 3) predicted SMPL-X vertices, metres. gt_mesh: (B, V, 3) GT vertices, metres.
        sets: vertex subsets and the joint regressor.

    Returns:
        'mpvpe_all', 'mpvpe_hand', 'mpvpe_face', 'pa_mpvpe_all', 'pa_mpvpe_hand', 'pa_mpvpe_face' -> (B,) mm.
    """
    pred, gt = _as_tensor(pred_mesh), _as_tensor(gt_mesh)
    root = SMPLX_SKELETON.indices(["Pelvis", "L_Wrist", "R_Wrist", "Neck"])
    offset = _regress(sets.joint_regressor[root], gt) - _regress(sets.joint_regressor[root], pred)  # (B, 4, 3)

    def part(ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        index = torch.from_numpy(np.array(ids, dtype=np.int64))  # a copy: the cached id arrays are read-only
        sub_pred, sub_gt = pred[:, index], gt[:, index]
        return mean_point_error(sub_pred + offset[:, k, None], sub_gt), pa_point_error(sub_pred, sub_gt)

    out = {}
    out["mpvpe_all"], out["pa_mpvpe_all"] = part(np.arange(pred.shape[1]), 0)
    left, right = part(sets.hand_vertex_ids["left"], 1), part(sets.hand_vertex_ids["right"], 2)
    out["mpvpe_hand"], out["pa_mpvpe_hand"] = (left[0] + right[0]) / 2.0, (left[1] + right[1]) / 2.0
    out["mpvpe_face"], out["pa_mpvpe_face"] = part(sets.face_vertex_ids, 3)
    return out


def ehf_joint_metrics(
    pred_mesh: Any, gt_mesh: Any, j14_regressor: np.ndarray, hand_regressors: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """EHF's PA-MPJPE of the body (14 joints, ExPose's SMPLX_to_J14) and of the hands (21 joints each).

    Args:
        pred_mesh, gt_mesh: (B, V, 3) SMPL-X vertices, metres.
        j14_regressor: (14, V). hand_regressors: {'left', 'right'} -> (21, V).

    Returns:
        'pa_mpjpe_body', 'pa_mpjpe_hand' (mean of left and right, each aligned on its own) -> (B,) mm.
    """
    pred, gt = _as_tensor(pred_mesh), _as_tensor(gt_mesh)
    body = pa_point_error(_regress(j14_regressor, pred), _regress(j14_regressor, gt))
    hands = [
        pa_point_error(_regress(hand_regressors[s], pred), _regress(hand_regressors[s], gt)) for s in ("left", "right")
    ]
    return {"pa_mpjpe_body": body, "pa_mpjpe_hand": (hands[0] + hands[1]) / 2.0}


def h36m_joint_metrics(
    pred_mesh: Any, gt_mesh: Any, pred_regressor: np.ndarray, gt_regressor: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """MPJPE and PA-MPJPE on the 14 H36M evaluation joints regressed from meshes (Human3.6M, 3DPW).

    MPJPE is pelvis-relative (each set minus its own regressed pelvis); PA-MPJPE aligns the 14 joints.
    When both meshes share a topology (no ``gt_regressor``), 'mpvpe' (both meshes minus their regressed
    pelvis) and 'pa_mpvpe' are added, 3DPW's mesh metrics.

    Args:
        pred_mesh: (B, V, 3) metres. gt_mesh: (B, V', 3) metres.
        pred_regressor: (17, V) H36M regressor of the prediction's mesh (rows in `H36M_JOINTS` order).
        gt_regressor: (17, V') of the GT mesh when its topology differs (SMPL GT, SMPL-X prediction).

    Returns:
        'mpjpe', 'pa_mpjpe' (and 'mpvpe', 'pa_mpvpe') -> (B,) mm.
    """
    pred, gt = _as_tensor(pred_mesh), _as_tensor(gt_mesh)
    pred_j = _regress(pred_regressor, pred)  # (B, 17, 3)
    gt_j = _regress(pred_regressor if gt_regressor is None else gt_regressor, gt)
    pelvis, keep = H36M_JOINTS.index("Pelvis"), [H36M_JOINTS.index(n) for n in H36M_EVAL_JOINTS]
    pred_rel, gt_rel = pred_j - pred_j[:, pelvis : pelvis + 1], gt_j - gt_j[:, pelvis : pelvis + 1]
    out = {
        "mpjpe": mean_point_error(pred_rel[:, keep], gt_rel[:, keep]),
        "pa_mpjpe": pa_point_error(pred_j[:, keep], gt_j[:, keep]),
    }
    if gt_regressor is None:
        out["mpvpe"] = mean_point_error(pred - pred_j[:, pelvis : pelvis + 1], gt - gt_j[:, pelvis : pelvis + 1])
        out["pa_mpvpe"] = pa_point_error(pred, gt)
    return out


def summarize(eval_result: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Mean of each metric over its samples (metrics without samples are left out)."""
    return {k: float(np.mean(v)) for k, v in eval_result.items() if len(v) > 0}


def format_table(summary: Mapping[str, float], title: str, labels: Mapping[str, str] | None = None) -> str:
    """A plain-text table: one line per metric, its paper name, value and unit (mm, or none for fractions)."""
    names = {**METRIC_LABELS, **(labels or {})}
    rows = [(names.get(k, k), f"{v:.2f}" if metric_unit(k) else f"{v:.4f}", metric_unit(k)) for k, v in summary.items()]
    width = max([len(r[0]) for r in rows] + [len("metric")])
    lines = [title, f"{'metric':<{width}}  {'value':>8}", "-" * (width + 13)]
    return "\n".join(lines + [f"{name:<{width}}  {value:>8} {unit}".rstrip() for name, value, unit in rows])


def report(
    eval_result: Mapping[str, Sequence[float]],
    dataset: str,
    output_dir: str | os.PathLike[str],
    labels: Mapping[str, str] | None = None,
    **extra: Any,
) -> tuple[str, Path]:
    """Summarise per-sample results, log the table and write ``<output_dir>/result/<dataset>/metrics.json``.

    The json is written atomically (common.utils.atomic_io): a reader, or a run killed mid-write, sees the previous
    file or the new one, never a part; a refused write (full disk) is an OutputWriteError naming the file.

    Args:
        eval_result: metric key -> per-sample values (mm, or fractions for F-scores and AUCs: `metric_unit`).
        dataset: the dataset's name, used for the folder and the title.
        output_dir: the run's output folder (cfg.output_dir).
        labels: names for metric keys that `METRIC_LABELS` names otherwise (or not at all), for this dataset.
        **extra: json-serialisable facts stored next to the metrics (split, sample count, ...).

    Returns:
        The table text and the json path.
    """
    summary = summarize(eval_result)
    counts = {k: len(v) for k, v in eval_result.items()}
    table = format_table(summary, f"{dataset} ({max(counts.values(), default=0)} samples)", labels)
    path = Path(output_dir) / "result" / dataset / "metrics.json"  # write_atomic creates the folder
    names = {**METRIC_LABELS, **(labels or {})}
    payload = {"dataset": dataset, "metrics": summary, "units": {k: metric_unit(k) for k in summary},
               "labels": {k: names.get(k, k) for k in summary}, "samples": counts}  # fmt: skip
    write_json_atomic(path, payload | extra, indent=2)
    logger.debug("%s\nwritten to %s", table, path)  # the caller shows the table (test.py prints it)
    return table, path
