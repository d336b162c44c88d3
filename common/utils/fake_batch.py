"""Synthetic whole-body batches in the sample contract: random SMPL-X people seen by the virtual camera.

Shared by the model tests (tests/main/conftest.py's `make_wholebody_targets` fixture) and tool/benchmark.py, so
that both run the model and its loss on the same kind of batch. The targets are built independently of
main/model.py (the body-model layer, joint sets and geometry only), the way a dataset builds them (notes section
3.3): SMPL-X parameters -> joints -> the virtual camera -> heatmap units with depth discretised around each part's
root, boxes around the projected hands and face, every mask. The image is noise: the batch exercises the
computation, not what the model learns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from common.body_models import get_body_models, joint_sets
from common.geometry import project_points

if TYPE_CHECKING:  # common/ does not import main/ at run time; any object with these fields works
    from main.config import Config

__all__ = ["make_wholebody_batch"]

# Root: SMPL-X's y-up body turned 180 degrees about x into the OpenCV camera frame (y down), facing the camera.
_ROOT_FACING_CAMERA = (torch.pi, 0.0, 0.0)
_PERSON_HEIGHT_M = 1.7
_PERSON_FILL = 0.8  # fraction of the body input's height the person spans, as a dataset's crop gives
_BOX_ENLARGEMENT = 1.2  # dataset boxes around projected part joints


def _random_params(batch: int, generator: torch.Generator) -> dict[str, Tensor]:
    def noise(*shape: int, std: float) -> Tensor:
        return torch.randn(*shape, generator=generator) * std

    return {
        "root_pose": torch.tensor(_ROOT_FACING_CAMERA) + noise(batch, 3, std=0.1),
        "body_pose": noise(batch, 63, std=0.2),
        "lhand_pose": noise(batch, 45, std=0.3),
        "rhand_pose": noise(batch, 45, std=0.3),
        "jaw_pose": noise(batch, 3, std=0.1),
        "shape": noise(batch, 10, std=0.5),
        "expr": noise(batch, 10, std=0.5),
    }


def _part_relative(joint_cam: Tensor) -> Tensor:
    """(B, 137, 3) camera joints -> pelvis-relative body, wrist-relative hands, neck-relative face."""
    rel = joint_cam - joint_cam[:, joint_sets.ROOT_IDX, None]
    rel = rel.clone()
    for part, anchor in (
        ("lhand", joint_sets.LWRIST_IDX),
        ("rhand", joint_sets.RWRIST_IDX),
        ("face", joint_sets.NECK_IDX),
    ):
        index = list(joint_sets.JOINTS.parts[part])
        rel[:, index] = rel[:, index] - rel[:, anchor, None]
    return rel


def _box_center_size(joint_hm: Tensor) -> tuple[Tensor, Tensor]:
    """Tight box (centre, size) of (B, K, 2) joints, enlarged as dataset boxes are."""
    low, high = joint_hm.amin(1), joint_hm.amax(1)  # (B, 2)
    return (low + high) / 2, (high - low) * _BOX_ENLARGEMENT


def make_wholebody_batch(
    cfg: Config, batch: int, seed: int = 0
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """Hand4Whole-contract (inputs, targets, meta_info) for random SMPL-X parameters seen by the virtual camera.

    Every mask is present; a few entries of each per-joint or per-parameter mask are 0, and every other sample
    is 2D-only (is_3D = 0) when batch > 1, so the masking paths run. Deterministic for a seed; CPU float32.

    Args:
        cfg: the config whose geometry (cfg.model) and body-model files (cfg.human_model_path) to use.
        batch: B.
        seed: seed of the parameters, the masks and the (random) image.

    Returns:
        inputs {'img': (B, 3, H, W) in [0, 1], (H, W) = input_img_shape}, targets and meta_info as documented in
        common/nets/loss.py.
    """
    generator = torch.Generator().manual_seed(seed)
    m = cfg.model
    params = _random_params(batch, generator)
    layer = get_body_models(cfg.human_model_path).smplx("neutral")
    zeros = torch.zeros(batch, 3)
    with torch.no_grad():
        output = layer(
            betas=params["shape"], expression=params["expr"], global_orient=params["root_pose"],
            body_pose=params["body_pose"], left_hand_pose=params["lhand_pose"], right_hand_pose=params["rhand_pose"],
            jaw_pose=params["jaw_pose"], leye_pose=zeros, reye_pose=zeros,
        )  # fmt: skip
    joints = output.joints[:, torch.from_numpy(joint_sets.JOINT_IDX.copy())]  # (B, 137, 3) SMPL-X frame
    # Centre the person in the body input, _PERSON_HEIGHT_M over _PERSON_FILL of its height.
    depth = m.focal[1] * _PERSON_HEIGHT_M / (_PERSON_FILL * m.input_body_shape[0])
    centre = (joints[..., :2].amin(1) + joints[..., :2].amax(1)) / 2  # (B, 2)
    principal_offset = (
        (torch.tensor(m.princpt) - torch.tensor(m.input_body_shape[::-1]) / 2) * depth / torch.tensor(m.focal)
    )
    cam_trans = torch.cat((principal_offset - centre, torch.full((batch, 1), depth)), dim=1)  # (B, 3)
    joint_world = joints + cam_trans[:, None]  # (B, 137, 3) camera frame
    depth_hm, height_hm, width_hm = m.output_hm_shape
    px = project_points(joint_world, m.focal, m.princpt)  # (B, 137, 2) body-input pixels
    xy = px * torch.tensor([width_hm / m.input_body_shape[1], height_hm / m.input_body_shape[0]])
    joint_cam = _part_relative(joints)
    extent = torch.full((len(joint_sets.JOINTS),), m.body_3d_size)
    extent[list(joint_sets.JOINTS.parts["hand"])] = m.hand_3d_size
    extent[list(joint_sets.JOINTS.parts["face"])] = m.face_3d_size
    z = (joint_cam[..., 2] / (extent / 2) + 1) / 2 * depth_hm  # (B, 137) metres around each part root -> cells
    joint_img = torch.cat((xy, z[..., None]), dim=-1)  # (B, 137, 3)
    inside = (joint_img >= 0) & (joint_img < torch.tensor([width_hm, height_hm, depth_hm]))
    joint_trunc = inside.all(-1, keepdim=True).float()  # (B, 137, 1)

    def mask(*shape: int) -> Tensor:  # mostly ones, a few zeros
        return (torch.rand(*shape, generator=generator) > 0.1).float()

    pose = torch.cat([params[k] for k in ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose")], dim=1)
    joint_valid = mask(batch, len(joint_sets.JOINTS), 1)
    targets = {
        "joint_img": joint_img, "smplx_joint_img": joint_img.clone(), "joint_cam": joint_cam,
        "smplx_joint_cam": joint_cam.clone(), "smplx_pose": pose, "smplx_shape": params["shape"],
        "smplx_expr": params["expr"],
    }  # fmt: skip
    meta_info = {
        "joint_valid": joint_valid, "joint_trunc": joint_trunc * joint_valid,
        "smplx_joint_valid": mask(batch, len(joint_sets.JOINTS), 1), "smplx_joint_trunc": joint_trunc.clone(),
        "smplx_pose_valid": mask(batch, len(joint_sets.ORIG_JOINTS)).repeat_interleave(3, dim=1),
        "smplx_shape_valid": torch.ones(batch), "smplx_expr_valid": mask(batch),
        "is_3D": torch.tensor([float(i % 2 == 0 or batch == 1) for i in range(batch)]),
    }  # fmt: skip
    for part in ("lhand", "rhand", "face"):
        center, size = _box_center_size(xy[:, list(joint_sets.JOINTS.parts[part])])
        targets[f"{part}_bbox_center"], targets[f"{part}_bbox_size"] = center, size
        meta_info[f"{part}_bbox_valid"] = torch.ones(batch)
    inputs = {"img": torch.rand(batch, 3, *m.input_img_shape, generator=generator)}
    return inputs, targets, meta_info
