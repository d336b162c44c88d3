"""Human3.6M evaluation as the Integral Human Pose Regression code does it: protocols, per-action tables, result files.

Protocol numbering (the Integral paper's, Sun et al. ECCV 2018, also used by its reference code):

* **Protocol #1** = **PA-MPJPE** on **S11** (trained on S1, S5, S6, S7, S8, S9).
* **Protocol #2** = **MPJPE** on **S9 + S11** (trained on S1, S5, S6, S7, S8).

Many later papers (Martinez et al., VideoPose3D) swap the names: their "Protocol 1" is MPJPE and "Protocol 2" is
PA-MPJPE, both on S9 + S11. Every table this module prints states the split and the metric next to the number.

Conventions (from the upstream code, mks0601's ``data/Human36M/Human36M.py`` and JimmySuen's ``hm36.py``):

* Joints: the 17 Human3.6M joints, root (pelvis) = 0, plus an 18th "Thorax" (mean of the shoulders, index 17). The
  Procrustes fit uses every joint passed in (Thorax included, as upstream); the error is averaged over the 17
  evaluation joints ``EVAL_JOINTS`` (Thorax excluded).
* Both skeletons are root-aligned (root joint subtracted) before anything else. After the Procrustes fit the
  aligned prediction is *not* re-rooted (mks0601; JimmySuen's older ``evaluate`` re-roots it).
* Upstream's PA alignment is **rigid** (rotation + translation, no scale): ``align='rigid'``. The literature's usual
  PA-MPJPE includes scale: ``align='similarity'`` (an option here, not upstream's number).
* Per sample, the error is the mean over the evaluation joints of the Euclidean distance; per action, the mean over
  that action's frames; the "average" upstream reports is the mean over all frames (frame-weighted), which is not the
  mean of the 15 action means when actions have different frame counts. Both are given.
* Actions: upstream folders are ``s_XX_act_YY_subact_ZZ_ca_WW`` with YY = 2..16 (Human3.6M's action 1 is unused);
  the 0-based action index used here is ``YY - 2`` (``ACTION_NAMES[YY - 2]``), exactly as upstream.
* Result files: one sample per line, J*3 numbers (joint-major, x y z), each written ``'%.3f '`` in millimetres
  (root-relative camera coordinates), a trailing space before the newline, as upstream writes them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from common.geometry.alignment import procrustes_transform
from common.utils.atomic_io import write_bytes_atomic

__all__ = [
    "ACTION_NAMES",
    "ALIGN_MODES",
    "EVAL_JOINTS",
    "FLIP_PAIRS",
    "PROTOCOL_NOTE",
    "RESULT_FILES",
    "ROOT_INDEX",
    "THORAX_INDEX",
    "ActionRow",
    "ActionTable",
    "action_index_from_folder",
    "align_prediction",
    "flip_test_average",
    "format_action_tables",
    "mirror_joints_cam",
    "mirror_joints_hm",
    "parse_action_tables",
    "per_action_table",
    "protocol_errors",
    "read_kpt_file",
    "write_result_files",
]

ACTION_NAMES: tuple[str, ...] = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases", "Sitting", "SittingDown",
    "Smoking", "Photo", "Waiting", "Walking", "WalkDog", "WalkTogether",
)  # fmt: skip
"""The 15 actions by 0-based index = upstream folder action number - 2 ("Photo" is TakingPhoto)."""
FIRST_ACTION_FOLDER_NUMBER = 2
"""Upstream folder ``act_02`` is Directions, ``act_16`` WalkTogether."""
ROOT_INDEX = 0
THORAX_INDEX = 17
EVAL_JOINTS: tuple[int, ...] = tuple(range(17))
"""The 17 Human3.6M joints; Thorax (17) is excluded from evaluation."""
FLIP_PAIRS: tuple[tuple[int, int], ...] = ((1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13))
"""Left/right pairs of the 18-joint set (hips, knees, ankles, shoulders, elbows, wrists), as upstream."""
ALIGN_MODES = ("none", "rigid", "similarity")
RESULT_FILES = ("pred_3d_kpt.txt", "pred_3d_kpt_align.txt", "gt_3d_kpt.txt", "eval_result.txt")
PROTOCOL_NOTE = (
    "Integral-paper numbering: Protocol #1 = PA-MPJPE on S11 (trained on S1,5,6,7,8,9); "
    "Protocol #2 = MPJPE on S9+S11 (trained on S1,5,6,7,8). Later papers swap the names."
)


def action_index_from_folder(name: str) -> int:
    """0-based action index of an upstream folder or image name (``..._act_YY_...``): ``YY - 2``."""
    match = re.search(r"act_(\d+)", os.path.basename(os.fspath(name)))
    if match is None:
        raise ValueError(f"no 'act_YY' in {name!r}")
    index = int(match.group(1)) - FIRST_ACTION_FOLDER_NUMBER
    if not 0 <= index < len(ACTION_NAMES):
        raise ValueError(f"action number {match.group(1)} of {name!r} is outside 02..16")
    return index


def _float64(points: Any) -> torch.Tensor:
    if isinstance(points, torch.Tensor):
        return points.detach().to(torch.float64).cpu()
    return torch.from_numpy(np.array(points, dtype=np.float64))


def align_prediction(
    pred: Any, gt: Any, root_index: int = ROOT_INDEX, align: str = "rigid", fit_joints: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Root-aligns both skeletons, then fits the prediction onto the GT.

    Args:
        pred: (N, J, 3) predicted joints, any length unit (camera frame).
        gt: (N, J, 3) ground-truth joints, same unit.
        root_index: the joint subtracted from each skeleton first (pelvis, 0).
        align: 'none' (root alignment only, MPJPE), 'rigid' (rotation + translation, upstream's PA), or
            'similarity' (rotation + translation + scale).
        fit_joints: the joints the Procrustes fit uses; None for all J (upstream: all 18, Thorax included).

    Returns:
        (pred_aligned, gt_rooted), each (N, J, 3) float64 in the input unit: the root-relative prediction after the
        fit (not re-rooted afterwards, as upstream) and the root-relative GT.
    """
    if align not in ALIGN_MODES:
        raise ValueError(f"align must be one of {ALIGN_MODES}, got {align!r}")
    pred_t, gt_t = _float64(pred), _float64(gt)
    if pred_t.shape != gt_t.shape or pred_t.ndim != 3 or pred_t.shape[-1] != 3:
        raise ValueError(f"pred and gt must both be (N, J, 3); got {tuple(pred_t.shape)} and {tuple(gt_t.shape)}")
    pred_t = pred_t - pred_t[:, root_index : root_index + 1]
    gt_t = gt_t - gt_t[:, root_index : root_index + 1]
    if align != "none":
        weights = None
        if fit_joints is not None:
            weights = torch.zeros(pred_t.shape[:2], dtype=torch.float64)  # (N, J)
            weights[:, list(fit_joints)] = 1.0
        transform = procrustes_transform(pred_t, gt_t, weights, with_scale=align == "similarity")
        pred_t = transform.apply(pred_t)
    return pred_t.numpy(), gt_t.numpy()


def protocol_errors(
    pred_m: Any,
    gt_m: Any,
    root_index: int = ROOT_INDEX,
    align: str = "none",
    eval_joints: Sequence[int] = EVAL_JOINTS,
    fit_joints: Sequence[int] | None = None,
) -> np.ndarray:
    """Per-sample joint error in millimetres: MPJPE ('none') or PA-MPJPE ('rigid' upstream, 'similarity').

    Args:
        pred_m: (N, J, 3) predicted joints, metres, camera frame (J = 18 with Thorax, or 17).
        gt_m: (N, J, 3) ground-truth joints, metres.
        root_index: root joint (pelvis, 0), subtracted from both skeletons first.
        align: see `align_prediction`.
        eval_joints: joints the error is averaged over (the 17 Human3.6M joints, Thorax excluded).
        fit_joints: joints the Procrustes fit uses; None for all J (as upstream).

    Returns:
        (N,) float64 millimetres: for each sample, the mean over ``eval_joints`` of the Euclidean distance.
    """
    pred_aligned, gt_rooted = align_prediction(pred_m, gt_m, root_index, align, fit_joints)
    idx = list(eval_joints)
    distances = np.linalg.norm(pred_aligned[:, idx] - gt_rooted[:, idx], axis=-1)  # (N, len(eval_joints))
    return distances.mean(-1) * 1000.0


class ActionRow(NamedTuple):
    """One action of a per-action table."""

    name: str
    frames: int
    error_mm: float  # mean over the action's frames; NaN for an action with no frames


class ActionTable(NamedTuple):
    """`per_action_table`'s result; a plain 3-tuple (rows, frame_weighted_average, action_mean)."""

    rows: tuple[ActionRow, ...]
    frame_weighted_average: float  # mean over all frames: the "average" upstream reports
    action_mean: float  # mean of the action means, over the actions that have frames


def per_action_table(errors_mm: Any, actions: Any, action_names: Sequence[str] = ACTION_NAMES) -> ActionTable:
    """Per-action means of per-sample errors, the frame-weighted average and the mean of the action means.

    Args:
        errors_mm: (N,) per-sample errors (e.g. `protocol_errors`), millimetres.
        actions: (N,) integer 0-based action index of each sample (see `action_index_from_folder`).
        action_names: the name of each action index (the 15 Human3.6M actions).

    Returns:
        ActionTable: one row per action in index order (frames 0 and error NaN for an absent action), the mean over
        all N frames, and the mean over the present actions of their means.
    """
    errors = np.asarray(errors_mm, dtype=np.float64).reshape(-1)
    labels = np.asarray(actions).reshape(-1)
    if errors.shape != labels.shape:
        raise ValueError(f"errors {errors.shape} and actions {labels.shape} must have the same length")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"actions must be integer indices, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(action_names)):
        raise ValueError(f"action indices must lie in [0, {len(action_names)}), got {labels.min()}..{labels.max()}")
    rows = []
    for index, name in enumerate(action_names):
        selected = errors[labels == index]
        rows.append(ActionRow(name, int(selected.size), float(selected.mean()) if selected.size else float("nan")))
    frame_average = float(errors.mean()) if errors.size else float("nan")
    present = [row.error_mm for row in rows if row.frames]
    action_mean = float(np.mean(present)) if present else float("nan")
    return ActionTable(tuple(rows), frame_average, action_mean)


AVERAGE_FRAMES_ROW = "Avg(frames)"
AVERAGE_ACTIONS_ROW = "Avg(actions)"


def format_action_tables(tables: Mapping[str, ActionTable], notes: Sequence[str] = (PROTOCOL_NOTE,)) -> str:
    """Fixed-width text of one or more per-action tables side by side (e.g. Protocol #1 and Protocol #2).

    Args:
        tables: column label (no whitespace, e.g. ``"P1_PA-MPJPE_S11"``) -> its `ActionTable`; all tables must list
            the same actions in the same order.
        notes: lines printed first, each prefixed with ``# `` (by default the protocol numbering).

    Returns:
        The text, ending with a newline: a header, one line per action (mm with 2 decimals, then the frame count, for
        each table), then ``Avg(frames)`` (upstream's average) and ``Avg(actions)``. `parse_action_tables` reads it.
    """
    if not tables:
        raise ValueError("no tables to format")
    labels = list(tables)
    for label in labels:
        if not label or re.search(r"\s", label):
            raise ValueError(f"column labels must be non-empty without whitespace, got {label!r}")
    names = [row.name for row in next(iter(tables.values())).rows]
    for label, table in tables.items():
        if [row.name for row in table.rows] != names:
            raise ValueError(f"table {label!r} lists other actions than the first table")
    name_width = max(len(n) for n in [*names, AVERAGE_ACTIONS_ROW, "Action"]) + 2
    mm_width = max(10, *(len(label) + 5 for label in labels))
    lines = [f"# {note}" for note in notes]
    header = "Action".ljust(name_width) + "".join(f"{label + '_mm':>{mm_width}}{'frames':>8}" for label in labels)
    lines.append(header)
    for i, name in enumerate(names):
        cells = "".join(f"{tables[lb].rows[i].error_mm:>{mm_width}.2f}{tables[lb].rows[i].frames:>8d}" for lb in labels)
        lines.append(name.ljust(name_width) + cells)
    for row_name, field in ((AVERAGE_FRAMES_ROW, "frame_weighted_average"), (AVERAGE_ACTIONS_ROW, "action_mean")):
        cells = "".join(
            f"{getattr(tables[lb], field):>{mm_width}.2f}{sum(r.frames for r in tables[lb].rows):>8d}" for lb in labels
        )
        lines.append(row_name.ljust(name_width) + cells)
    return "\n".join(lines) + "\n"


def parse_action_tables(text: str) -> dict[str, dict[str, float]]:
    """Reads `format_action_tables` text back: column label -> row name (actions, averages) -> mm as printed."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        raise ValueError("no table in the text")
    header = lines[0].split()
    if header[0] != "Action" or len(header) % 2 != 1:
        raise ValueError(f"not an action-table header: {lines[0]!r}")
    labels = [header[k][: -len("_mm")] for k in range(1, len(header), 2)]
    result: dict[str, dict[str, float]] = {label: {} for label in labels}
    for line in lines[1:]:
        cells = line.split()
        if len(cells) != len(header):
            raise ValueError(f"expected {len(header)} cells, got {len(cells)}: {line!r}")
        for k, label in enumerate(labels):
            result[label][cells[0]] = float(cells[1 + 2 * k])
    return result


def _kpt_text(points_mm: Any) -> str:
    points = np.asarray(points_mm, dtype=np.float64)
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"keypoints must be (N, J, 3), got {points.shape}")
    flat = points.reshape(points.shape[0], -1)
    return "".join("".join(f"{value:.3f} " for value in sample) + "\n" for sample in flat)


def write_result_files(
    folder: str | os.PathLike[str], pred_mm: Any, pred_aligned_mm: Any, gt_mm: Any, table_text: str
) -> dict[str, Path]:
    """Writes upstream's four result files into ``folder``, each atomically (parent folders are created).

    Args:
        folder: the result folder.
        pred_mm: (N, J, 3) root-relative predictions, millimetres -> ``pred_3d_kpt.txt``.
        pred_aligned_mm: (N, J, 3) the predictions after the Procrustes fit -> ``pred_3d_kpt_align.txt``.
        gt_mm: (N, J, 3) root-relative ground truth -> ``gt_3d_kpt.txt``.
        table_text: the printed tables (`format_action_tables`) -> ``eval_result.txt``, as given.

    Returns:
        file name -> written path, for the four names of ``RESULT_FILES``.
    """
    folder = Path(folder)
    arrays = (pred_mm, pred_aligned_mm, gt_mm)
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"pred, aligned pred and gt must have one shape, got {sorted(shapes)}")
    texts = [_kpt_text(a) for a in arrays] + [table_text]
    return {
        name: write_bytes_atomic(folder / name, text.encode("utf-8"))
        for name, text in zip(RESULT_FILES, texts, strict=True)
    }


def read_kpt_file(path: str | os.PathLike[str]) -> np.ndarray:
    """Parses a ``*_3d_kpt*.txt`` file (one sample a line, J*3 numbers) into (N, J, 3) float64 millimetres."""
    samples = [line.split() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not samples:
        return np.zeros((0, 0, 3))
    counts = {len(s) for s in samples}
    if len(counts) != 1 or next(iter(counts)) % 3:
        raise ValueError(f"{path}: every line must hold the same multiple of 3 numbers, got counts {sorted(counts)}")
    return np.array(samples, dtype=np.float64).reshape(len(samples), -1, 3)


def _swap_pairs(joints: Any, flip_pairs: Sequence[tuple[int, int]]) -> Any:
    left = [i for i, _ in flip_pairs]
    right = [j for _, j in flip_pairs]
    if not isinstance(joints, torch.Tensor):
        joints = np.asarray(joints, dtype=np.float64)
    swapped = joints.clone() if isinstance(joints, torch.Tensor) else joints.copy()
    swapped[..., left + right, :] = joints[..., right + left, :]
    return swapped


def mirror_joints_cam(joints: Any, flip_pairs: Sequence[tuple[int, int]] = FLIP_PAIRS) -> Any:
    """The skeleton of the horizontally mirrored image, in root-relative camera coordinates: x -> -x, pairs swapped.

    Exact for root-relative joints when the mirror plane is the camera's y-z plane through the root, i.e. for a
    crop centred on the root whose virtual camera looks at it (the Integral setting); y and z are unchanged.

    Args:
        joints: (..., J, 3) root-relative joints (numpy or torch), any unit.
        flip_pairs: left/right index pairs swapped by the mirror.

    Returns:
        (..., J, 3), same type (numpy float64 for array-likes); applying it twice returns ``joints``.
    """
    mirrored = _swap_pairs(joints, flip_pairs)
    mirrored[..., 0] = -mirrored[..., 0]
    return mirrored


def mirror_joints_hm(
    joints: Any, flip_pairs: Sequence[tuple[int, int]], img_width_hm: float, index_centres: bool = True
) -> Any:
    """The skeleton of the horizontally mirrored image, in heatmap (or pixel) units: x -> W - 1 - x, pairs swapped.

    Args:
        joints: (..., J, D) joints with x first (D = 2 or 3; y and depth unchanged), numpy or torch.
        flip_pairs: left/right index pairs.
        img_width_hm: W, the heatmap width in cells.
        index_centres: True when cell i has its centre at x = i (upstream's convention: x -> W - 1 - x); False when
            it is at i + 0.5 (continuous coordinates over [0, W]: x -> W - x).

    Returns:
        (..., J, D), same type; applying it twice returns ``joints``.
    """
    mirrored = _swap_pairs(joints, flip_pairs)
    mirrored[..., 0] = (img_width_hm - 1.0 if index_centres else img_width_hm) - mirrored[..., 0]
    return mirrored


def flip_test_average(
    pred: Any,
    pred_of_flipped_image: Any,
    flip_pairs: Sequence[tuple[int, int]] = FLIP_PAIRS,
    img_width_hm: float | None = None,
    index_centres: bool = True,
) -> Any:
    """Flip test: the mean of a prediction and the mirrored prediction of the mirrored image.

    Args:
        pred: (..., J, D) prediction for the image.
        pred_of_flipped_image: (..., J, D) prediction for the horizontally mirrored image, same space.
        flip_pairs: left/right index pairs.
        img_width_hm: None for root-relative camera coordinates (`mirror_joints_cam`, x -> -x); the heatmap width W
            for heatmap units (`mirror_joints_hm`, x -> W - 1 - x, or W - x if not ``index_centres``).
        index_centres: see `mirror_joints_hm`.

    Returns:
        (..., J, D) the average, same type as ``pred``.
    """
    if img_width_hm is None:
        back = mirror_joints_cam(pred_of_flipped_image, flip_pairs)
    else:
        back = mirror_joints_hm(pred_of_flipped_image, flip_pairs, img_width_hm, index_centres)
    if isinstance(pred, torch.Tensor):
        back = torch.as_tensor(back, dtype=pred.dtype, device=pred.device)
    return (pred + back) / 2
