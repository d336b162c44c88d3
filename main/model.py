"""The family registry: every model family by its `model.arch` name, in one explicit dict, and `get_model`.

| `model.arch`     | network                                      | targets (data/targets/)     |
|------------------|----------------------------------------------|-----------------------------|
| hand4whole       | main/hand4whole_model.py (SMPL-X whole body) | hand4whole.py               |
| pose2pose_body   | main/pose2pose_model.py, SMPL                | pose2pose.py (body)         |
| pose2pose_hand   | main/pose2pose_model.py, right-hand MANO     | pose2pose.py (hand)         |
| pose2pose_face   | main/pose2pose_model.py, FLAME               | pose2pose.py (face)         |
| integral         | main/integral_model.py (3D skeleton, 18 j.)  | integral.py                 |
| v2v              | main/v2v_model.py (depth/voxels -> hand j.)  | none: MSRA, VoxelH5 build it|
| triangulation    | main/triangulation/ (N views -> 3D skeleton) | none: data/multiview.py     |

A family's hooks are a `main.family.Family`; docs/extending.md says how to add one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from common.body_models import get_body_models
from common.engine.visualize import MeshPicture
from data.multiview import collate_multiview
from main.config import Config
from main.family import Family, MeshView
from main.hand4whole_model import MODES, WholeBodyModel, get_wholebody_model
from main.integral_model import get_integral_model, skeleton_picture
from main.pose2pose_model import get_part_model
from main.triangulation import get_triangulation_model, triangulation_param_groups, views_picture
from main.v2v_model import get_v2v_model, volume_picture

__all__ = ["FAMILIES", "MODES", "WholeBodyModel", "get_family", "get_model", "mesh_picture"]


_PART_PREFIX = {"body": "smpl", "hand": "mano", "face": "flame"}


def _wholebody_view(cfg: Config) -> MeshView:
    """SMPL-X; the virtual camera lives in body-input pixels (the 512x384 crop is larger)."""
    names = ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose", "shape", "expr")
    return MeshView(
        "smplx_mesh_cam",
        get_body_models(cfg.human_model_path).faces,
        cfg.model.input_body_shape,
        {**{name: f"smplx_{name}" for name in names}, "cam_trans": "cam_trans"},
        "smplx_param.json",
    )


def _part_view(cfg: Config) -> MeshView:
    """SMPL, right-hand MANO or FLAME; a part model's camera lives in its input crop's pixels."""
    body_models = get_body_models(cfg.human_model_path)
    part = cfg.model.arch.removeprefix("pose2pose_")
    prefix = _PART_PREFIX[part]
    layer = {"body": lambda: body_models.smpl("neutral"), "hand": lambda: body_models.mano("right"),
             "face": body_models.flame}[part]()  # fmt: skip
    names = {"body": ("pose", "shape"), "hand": ("pose", "shape"),
             "face": ("root_pose", "jaw_pose", "shape", "expr")}[part]  # fmt: skip
    return MeshView(f"{prefix}_mesh_cam", np.asarray(layer.faces, dtype=np.int64), cfg.model.input_img_shape,
                    {**{name: f"{prefix}_{name}" for name in names}, "cam_trans": "cam_trans"},
                    f"{prefix}_param.json", takes_hand_side=part == "hand")  # fmt: skip


def mesh_picture(cfg: Config) -> MeshPicture:
    """The training picture of a mesh family: its mesh over the input crops (from the family's `MeshView`)."""
    view = get_family(cfg).mesh_view(cfg)  # type: ignore[misc]
    focal, princpt = view.crop_camera(cfg.model.focal, cfg.model.princpt, cfg.model.input_img_shape)
    return MeshPicture(view.faces, focal, princpt, view.mesh_key)


FAMILIES: dict[str, Family] = {
    "hand4whole": Family(
        "hand4whole", "Hand4Whole: RGB person crop -> SMPL-X body, hands and face", get_wholebody_model,
        mesh_picture, _wholebody_view, default_configs=("agora_finetune", "synthetic"),
    ),
    "pose2pose_body": Family(
        "pose2pose_body", "Pose2Pose body-only: RGB person crop -> SMPL", get_part_model, mesh_picture, _part_view,
        default_configs=("pose2pose_body",),
    ),
    "pose2pose_hand": Family(
        "pose2pose_hand", "Pose2Pose hand-only: RGB hand crop -> right-hand MANO (left hands mirrored)",
        get_part_model, mesh_picture, _part_view, default_configs=("pose2pose_hand",),
    ),
    "pose2pose_face": Family(
        "pose2pose_face", "Pose2Pose face-only: RGB face crop -> FLAME", get_part_model, mesh_picture, _part_view,
        default_configs=("pose2pose_face",),
    ),
    "integral": Family(
        "integral", "Integral regression: RGB person crop -> 3D skeleton (Human3.6M 17 + Thorax) by soft-argmax",
        get_integral_model, skeleton_picture, None, default_configs=("integral_h36m",),
    ),
    "v2v": Family(
        "v2v", "V2V-PoseNet: depth map or voxel grid -> 3D hand joints (21 MSRA joints) by per-joint 3D heatmaps",
        get_v2v_model, volume_picture, None,
        default_configs=("v2v_msra", "v2v_msra_integral", "v2v_h5", "synthetic_v2v"),
    ),
    "triangulation": Family(
        "triangulation", "Learnable triangulation: calibrated RGB views -> 3D skeleton (algebraic, volumetric, RANSAC)",
        get_triangulation_model, views_picture, None, triangulation_param_groups, collate_multiview,
        default_configs=("triangulation_h36m_alg", "triangulation_h36m_vol_softmax", "triangulation_h36m_ransac",
                         "triangulation_cmu_alg", "triangulation_cmu_vol_softmax", "synthetic_triangulation_alg",
                         "synthetic_triangulation_vol"),
    ),
}  # fmt: skip
"""Model families by `model.arch`."""


def get_family(cfg: Any) -> Family:
    """The family `cfg.model.arch` names; ValueError listing the known ones otherwise."""
    arch = cfg.model.arch
    if arch not in FAMILIES:
        raise ValueError(f"model.arch={arch!r} is not a model family; known: {', '.join(FAMILIES)}")
    return FAMILIES[arch]


def get_model(cfg: Config, mode: str) -> nn.Module:
    """Builds the network of the config's family (`model.arch`).

    Args:
        cfg: the experiment config.
        mode: 'train' (the family's initialisation) or 'test' (weights left for a checkpoint).

    Returns:
        The model, on the CPU, in training mode.
    """
    return get_family(cfg).build_model(cfg, mode)
