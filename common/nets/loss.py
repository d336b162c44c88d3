"""Hand4Whole's eleven training-loss terms as one function of (outputs, targets, meta_info).

Every term is an element-wise L1 distance times its validity mask, averaged over ALL elements (masked
entries count in the denominator, as in Hand4Whole), then multiplied by its weight from `LossConfig`.

Targets and masks follow the sample contract (data/dataset.py; Hand4Whole's names), B samples:

=====================  ===============  =========================================================
targets                shape            meaning
=====================  ===============  =========================================================
joint_img              (B, 137, 3)      dataset joints, body-heatmap units (x < 6, y < 8, z < 8)
smplx_joint_img        (B, 137, 3)      pseudo-GT SMPL-X joints, same space
joint_cam              (B, 137, 3)      dataset joints, metres, part-relative (pelvis/wrists/neck)
smplx_joint_cam        (B, 137, 3)      pseudo-GT SMPL-X joints, same space
smplx_pose             (B, 159)         53 rotation joints x axis-angle, radians
smplx_shape            (B, 10)          betas
smplx_expr             (B, 10)          expression coefficients
{lhand,rhand,face}_bbox_center / _size  (B, 2)  box centre (x, y) / size (w, h), body-heatmap units
=====================  ===============  =========================================================

meta_info: joint_valid, joint_trunc, smplx_joint_valid, smplx_joint_trunc (B, 137, 1); smplx_pose_valid
(B, 159); smplx_shape_valid, smplx_expr_valid, is_3D, {lhand,rhand,face}_bbox_valid (B,). Masks are 0/1 floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

from common.body_models import joint_sets
from common.geometry import axis_angle_to_rotmat
from common.nets.layers import xy_constant

if TYPE_CHECKING:  # common/ does not import main/ at run time; any object with these fields works
    from main.config import LossConfig

__all__ = [
    "HeatmapShapes",
    "LOSS_TERMS",
    "align_part_translation",
    "compute_losses",
    "coord_l1",
    "from_hand_box_space",
    "param_l1",
    "pose_l1",
    "to_hand_box_space",
]

LOSS_TERMS: tuple[str, ...] = (
    "smplx_pose", "smplx_shape", "smplx_expr", "joint_cam", "smplx_joint_cam", "lhand_bbox", "rhand_bbox",
    "face_bbox", "joint_proj", "joint_img", "smplx_joint_img",
)  # fmt: skip
_JOINTS = joint_sets.JOINTS


def _as_slice(indices: Sequence[int], what: str) -> slice:
    """Consecutive joint indices as a slice: slicing needs no index tensor, which on CUDA would be a host-to-device
    copy (a synchronisation) per use."""
    if list(indices) != list(range(indices[0], indices[-1] + 1)):
        raise ValueError(f"{what} must be consecutive joints of the 137-joint set, got {list(indices)}")
    return slice(indices[0], indices[-1] + 1)


# The 65 heatmap joints are the first 65 of the 137 (Hand4Whole's layout): its reduce_joint_set is this slice.
_POS_IN_JOINTS = _as_slice(_JOINTS.indices(joint_sets.POS_JOINTS.names).tolist(), "the heatmap joints")
_PART_SLICES = {part: _as_slice(_JOINTS.parts[part], part) for part in ("lhand", "rhand", "face")}


class HeatmapShapes(NamedTuple):
    """(D, H, W) of the body and hand heatmaps, the spaces of joint_img; Hand4Whole's by default."""

    body: tuple[int, int, int] = (8, 8, 6)
    hand: tuple[int, int, int] = (8, 8, 8)


def _replace_part(joints: Tensor, part: str, values: Tensor) -> Tensor:
    """joints (B, 137, C) with the part's rows replaced by values (B, K, C), out of place (autograd-safe)."""
    rows = _PART_SLICES[part]
    return torch.cat((joints[:, : rows.start], values, joints[:, rows.stop :]), dim=1)


def to_hand_box_space(
    joint_hm: Tensor, trunc: Tensor, bbox_xyxy_hm: Tensor, hm_shapes: HeatmapShapes
) -> tuple[Tensor, Tensor]:
    """Re-expresses body-heatmap coordinates in a hand box's heatmap (Hand4Whole's hand targets).

    x' = (x - x0) * W_hand / (x1 - x0), y' likewise with H_hand, z' = z * D_hand / D_body. A joint stays valid
    only if it falls inside the hand heatmap, [0, W_hand) x [0, H_hand).

    Args:
        joint_hm: (B, K, 2 or 3) joints in body-heatmap units.
        trunc: (B, K, 1) validity (truncation) mask.
        bbox_xyxy_hm: (B, 4) hand box in body-heatmap units (the predicted box, detached).
        hm_shapes: the body and hand heatmap shapes.

    Returns:
        (B, K, 2 or 3) joints in hand-heatmap units and the (B, K, 1) updated mask.
    """
    depth_h, height_h, width_h = hm_shapes.hand
    origin = bbox_xyxy_hm[:, None, :2]  # (B, 1, 2)
    size = bbox_xyxy_hm[:, None, 2:] - origin  # (B, 1, 2)
    size = size.where(size.abs() > 1e-6, 1e-6)  # a degenerate box: finite coordinates, all outside, no inf * 0
    xy = (joint_hm[..., :2] - origin) * (xy_constant(joint_hm, width_h, height_h) / size)  # (B, K, 2)
    inside = (xy[..., :1] >= 0) & (xy[..., :1] < width_h) & (xy[..., 1:] >= 0) & (xy[..., 1:] < height_h)
    coords = [xy, joint_hm[..., 2:] * (depth_h / hm_shapes.body[0])]  # z: empty when joint_hm is 2D
    return torch.cat(coords, dim=-1), trunc * inside.to(trunc.dtype)


def from_hand_box_space(joint_hand: Tensor, bbox_xyxy_hm: Tensor, hm_shapes: HeatmapShapes) -> Tensor:
    """The inverse of `to_hand_box_space`: hand-heatmap coordinates back to body-heatmap units.

    Args:
        joint_hand: (B, K, 3) joints in a hand box's heatmap units.
        bbox_xyxy_hm: (B, 4) the hand box, xyxy body-heatmap units.
        hm_shapes: the body and hand heatmap shapes.

    Returns:
        (B, K, 3) joints in body-heatmap units.
    """
    depth_h, height_h, width_h = hm_shapes.hand
    origin = bbox_xyxy_hm[:, None, :2]  # (B, 1, 2)
    hand_cells = xy_constant(joint_hand, width_h, height_h)  # (2,)
    cells = (bbox_xyxy_hm[:, None, 2:] - origin) / hand_cells  # (B, 1, 2) body cells per hand cell
    z = joint_hand[..., 2:] * (hm_shapes.body[0] / depth_h)
    return torch.cat((joint_hand[..., :2] * cells + origin, z), dim=-1)


def align_part_translation(pred_xy: Tensor, target_xy: Tensor, mask: Tensor) -> Tensor:
    """Shifts each sample's predicted 2D joints by their mean offset to the targets over valid joints.

    The shift is not detached (as in Hand4Whole): the loss then supervises only the layout of the part's joints,
    not where the part sits. A sample without valid joints is not shifted.

    Args:
        pred_xy: (B, K, 2) predicted joints.
        target_xy: (B, K, 2) target joints, same units.
        mask: (B, K, 1) 0/1 validity.

    Returns:
        (B, K, 2) shifted predictions.
    """
    offset = ((target_xy - pred_xy) * mask).sum(1, keepdim=True)  # (B, 1, 2)
    return pred_xy + offset / mask.sum(1, keepdim=True).clamp_min(1)


def param_l1(pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """Hand4Whole's ParamLoss, reduced: mean over all elements of |pred - target| * valid (broadcast)."""
    return ((pred - target).abs() * valid).mean()


def coord_l1(pred: Tensor, target: Tensor, valid: Tensor, is_3d: Tensor | None = None) -> Tensor:
    """Hand4Whole's CoordLoss, reduced: |pred - target| * valid, the z column also times is_3D per sample."""
    loss = (pred - target).abs() * valid  # (B, K, C)
    if is_3d is not None:
        loss = torch.cat((loss[..., :2], loss[..., 2:] * is_3d[:, None, None]), dim=-1)
    return loss.mean()


def pose_l1(pose: Tensor, target: Tensor, valid: Tensor, form: str) -> Tensor:
    """Pose loss over (B, 3K) axis-angle vectors with a (B, 3K) mask: 'axis_angle' L1 or 'rotmat' L1 on the K
    rotation matrices (a joint counts where all three of its mask entries are set)."""
    if form == "axis_angle":
        return param_l1(pose, target, valid)
    # Rotation matrices: no ambiguity between a rotation vector and its 2*pi-shifted or antipodal twin.
    valid = valid.unflatten(-1, (-1, 3)).amin(-1)[..., None, None]  # (B, K, 1, 1)
    return param_l1(
        axis_angle_to_rotmat(pose.unflatten(-1, (-1, 3))), axis_angle_to_rotmat(target.unflatten(-1, (-1, 3))), valid
    )


def _hand_box_targets(
    targets: dict[str, Tensor], meta_info: dict[str, Tensor], boxes: dict[str, Tensor], hm_shapes: HeatmapShapes
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """joint_img / smplx_joint_img and their truncation masks with the hand joints in the predicted hand boxes."""
    coords, truncs = {}, {}
    for coord_name, trunc_name in (("joint_img", "joint_trunc"), ("smplx_joint_img", "smplx_joint_trunc")):
        coord, trunc = targets[coord_name], meta_info[trunc_name]
        for part, bbox in boxes.items():
            rows = _PART_SLICES[part]
            part_coord, part_trunc = to_hand_box_space(coord[:, rows], trunc[:, rows], bbox, hm_shapes)
            coord, trunc = _replace_part(coord, part, part_coord), _replace_part(trunc, part, part_trunc)
        coords[coord_name], truncs[trunc_name] = coord, trunc
    return coords, truncs


def _joint_proj(
    outputs: dict[str, Tensor],
    joint_img: Tensor,
    joint_trunc: Tensor,
    boxes: dict[str, Tensor],
    hm_shapes: HeatmapShapes,
) -> Tensor:
    """Predicted 2D joints: hands moved into their boxes, then hands and face aligned by translation."""
    proj = outputs["joint_proj"]  # (B, 137, 2)
    for part, bbox in boxes.items():
        rows = _PART_SLICES[part]
        part_proj, _ = to_hand_box_space(proj[:, rows], joint_trunc[:, rows], bbox, hm_shapes)
        proj = _replace_part(proj, part, part_proj)
    for part in ("lhand", "rhand", "face"):
        rows = _PART_SLICES[part]
        aligned = align_part_translation(proj[:, rows], joint_img[:, rows, :2], joint_trunc[:, rows])
        proj = _replace_part(proj, part, aligned)
    return proj


def compute_losses(
    outputs: dict[str, Tensor],
    targets: dict[str, Tensor],
    meta_info: dict[str, Tensor],
    cfg: LossConfig,
    hm_shapes: HeatmapShapes | None = None,
) -> dict[str, Tensor]:
    """Hand4Whole's eleven weighted loss terms.

    Args:
        outputs: the model's predictions: smplx_pose (B, 159) axis-angle; smplx_shape, smplx_expr (B, 10);
            joint_cam (B, 137, 3) part-relative metres; joint_proj (B, 137, 2) body-heatmap units; joint_img
            (B, 65, 3), body joints in body-heatmap units and hand joints in their hand boxes' heatmaps;
            {lhand,rhand,face}_bbox_center / _size (B, 2); lhand_bbox_hm, rhand_bbox_hm (B, 4) the predicted
            (detached) hand boxes, xyxy in body-heatmap units.
        targets: see the module docstring; not modified.
        meta_info: see the module docstring; not modified.
        cfg: weights and the pose-loss form.
        hm_shapes: the model's heatmap shapes (its config's output_hm_shape / output_hand_hm_shape); None for
            Hand4Whole's.

    Returns:
        LOSS_TERMS -> weighted scalar; the training loss is their sum.
    """
    hm_shapes = hm_shapes or HeatmapShapes()
    outputs = {k: v.float() for k, v in outputs.items()}  # reduce in float32 under autocast
    boxes = {"lhand": outputs["lhand_bbox_hm"], "rhand": outputs["rhand_bbox_hm"]}
    coords, truncs = _hand_box_targets(targets, meta_info, boxes, hm_shapes)
    reduce = _POS_IN_JOINTS
    is_3d = meta_info["is_3D"]

    losses = {
        "smplx_pose": pose_l1(
            outputs["smplx_pose"], targets["smplx_pose"], meta_info["smplx_pose_valid"], cfg.pose_loss
        ),
        "smplx_shape": param_l1(
            outputs["smplx_shape"], targets["smplx_shape"], meta_info["smplx_shape_valid"][:, None]
        ),
        "smplx_expr": param_l1(outputs["smplx_expr"], targets["smplx_expr"], meta_info["smplx_expr_valid"][:, None]),
        "joint_cam": coord_l1(
            outputs["joint_cam"], targets["joint_cam"], meta_info["joint_valid"] * is_3d[:, None, None]
        ),
        "smplx_joint_cam": coord_l1(outputs["joint_cam"], targets["smplx_joint_cam"], meta_info["smplx_joint_valid"]),
    }
    for part in ("lhand", "rhand", "face"):
        valid = meta_info[f"{part}_bbox_valid"][:, None]  # (B, 1)
        center = param_l1(outputs[f"{part}_bbox_center"], targets[f"{part}_bbox_center"], valid)
        losses[f"{part}_bbox"] = center + param_l1(outputs[f"{part}_bbox_size"], targets[f"{part}_bbox_size"], valid)
    proj = _joint_proj(outputs, coords["joint_img"], truncs["joint_trunc"], boxes, hm_shapes)
    losses["joint_proj"] = coord_l1(proj, coords["joint_img"][..., :2], truncs["joint_trunc"])
    joint_img = outputs["joint_img"]
    losses["joint_img"] = coord_l1(joint_img, coords["joint_img"][:, reduce], truncs["joint_trunc"][:, reduce], is_3d)
    losses["smplx_joint_img"] = coord_l1(
        joint_img, coords["smplx_joint_img"][:, reduce], truncs["smplx_joint_trunc"][:, reduce]
    )
    return {name: losses[name] * getattr(cfg.weights, name) for name in LOSS_TERMS}
