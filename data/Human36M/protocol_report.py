"""Human3.6M's per-action Protocol tables and upstream result files for skeleton families (Integral regression).

`Human36M.evaluate` saves each test sample's predicted and GT root-relative joints (`data.prediction_parts`);
`Human36M.report` then builds, from all of them in index order, the 15-action tables of Protocol #1 (PA-MPJPE,
rigid Procrustes, on the S11 samples) and Protocol #2 (MPJPE on every test sample, S9 + S11 under the default
protocol) with the Integral paper's numbering (common/utils/h36m_protocols.py), and upstream's result files
(`pred_3d_kpt.txt`, `pred_3d_kpt_align.txt`, `gt_3d_kpt.txt`, `eval_result.txt`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.utils.h36m_protocols import (
    ActionTable,
    action_index_from_folder,
    align_prediction,
    format_action_tables,
    per_action_table,
    protocol_errors,
    write_result_files,
)
from data.prediction_parts import load_parts, save_part

if TYPE_CHECKING:
    from data.Human36M.Human36M import Human36M

__all__ = ["PARTS_DIR", "save_protocol_parts", "write_protocol_report"]

PARTS_DIR = "protocol_parts"
PROTOCOL_1_SUBJECT = 11


def _result_dir(dataset: Human36M, output_dir: str | Path) -> Path:
    return Path(output_dir) / "result" / dataset.NAME


def save_protocol_parts(dataset: Human36M, outs: Sequence[Mapping[str, np.ndarray]], indices: Sequence[int]) -> None:
    """Saves each sample's prediction (back-projected as upstream: the target builder's `predicted_joint_cam`) and
    its 'joint_cam_target' GT (J, 3), root-relative metres, for `report`."""
    parts = _result_dir(dataset, dataset.cfg.output_dir) / PARTS_DIR
    for out, index in zip(outs, indices, strict=True):
        save_part(parts, index, pred_m=dataset.targets.predicted_joint_cam(out),
                  gt_m=np.asarray(out["joint_cam_target"], np.float64))  # fmt: skip


def write_protocol_report(dataset: Human36M, output_dir: str | Path) -> str | None:
    """The per-action tables (text) and the result files from the saved parts; None without them."""
    parts = load_parts(_result_dir(dataset, output_dir) / PARTS_DIR, len(dataset), dataset.NAME)
    if parts is None:
        return None
    pred_m, gt_m = parts["pred_m"], parts["gt_m"]  # (N, 18, 3) root-relative metres
    info = [record.info for record in dataset.records]
    actions = np.array([action_index_from_folder(f"act_{item['action']:02d}") for item in info], dtype=np.int64)
    subjects = np.array([item["subject"] for item in info])
    tables: dict[str, ActionTable] = {}
    on_s11 = subjects == PROTOCOL_1_SUBJECT
    if on_s11.any():
        tables["P1_PA-MPJPE_S11"] = per_action_table(
            protocol_errors(pred_m[on_s11], gt_m[on_s11], align="rigid"), actions[on_s11]
        )
    names = "+".join(f"S{s}" for s in sorted(set(subjects.tolist())))
    tables[f"P2_MPJPE_{names}"] = per_action_table(protocol_errors(pred_m, gt_m, align="none"), actions)
    text = format_action_tables(tables)
    aligned_mm, gt_rooted_mm = align_prediction(pred_m * 1000.0, gt_m * 1000.0, align="rigid")
    pred_rooted_mm, _ = align_prediction(pred_m * 1000.0, gt_m * 1000.0, align="none")
    write_result_files(_result_dir(dataset, output_dir), pred_rooted_mm, aligned_mm, gt_rooted_mm, text)
    return text
