"""Fixtures for the whole-body model tests: small configs and Hand4Whole-contract targets from SMPL-X.

The targets are built here independently of main/model.py (the body-model layer, joint sets and geometry only),
the way a dataset builds them (notes section 3.3): SMPL-X parameters -> joints -> the virtual camera -> heatmap
units with depth discretised around each part's root, boxes around the projected hands and face, every mask.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor

from common.body_models import get_body_models, joint_sets
from common.geometry import project_points
from main.config import Config, load_config

# A reduced geometry for fast CPU tests: ResNet-18 everywhere, inputs a quarter of Hand4Whole's area, heatmap
# grids matching the stride-32 features (body 4 x 3, hands 2 x 2, face crop 64 x 64).
SMALL_MODEL = [
    "model.input_img_shape=[256,192]",
    "model.input_body_shape=[128,96]",
    "model.output_hm_shape=[8,4,3]",
    "model.input_hand_shape=[64,64]",
    "model.output_hand_hm_shape=[8,2,2]",
    "model.input_face_shape=[64,64]",
    "model.princpt=[48,64]",
    "model.resnet_type=18",
    "model.hand_resnet_type=18",
    "model.face_resnet_type=18",
]

TargetMaker = Callable[..., tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]]


@pytest.fixture(scope="session")
def default_cfg(synthetic_body_model_dir: Path) -> Config:
    """Hand4Whole's default config with the synthetic SMPL-X stand-in."""
    return load_config(None, [f"human_model_path={synthetic_body_model_dir}"])


@pytest.fixture(scope="session")
def make_small_cfg(synthetic_body_model_dir: Path) -> Callable[..., Config]:
    """`make_small_cfg(*overrides)`: the reduced config (ResNet-18s, small inputs) with the synthetic stand-in,
    and further key=value overrides."""

    def make(*overrides: str) -> Config:
        return load_config(None, [f"human_model_path={synthetic_body_model_dir}", *SMALL_MODEL, *overrides])

    return make


@pytest.fixture(scope="session")
def small_cfg(make_small_cfg: Callable[..., Config]) -> Config:
    """The reduced config (ResNet-18s, small inputs) with the synthetic SMPL-X stand-in."""
    return make_small_cfg()


def _random_params(batch: int, generator: torch.Generator) -> dict[str, Tensor]:
    def noise(*shape: int, std: float) -> Tensor:
        return torch.randn(*shape, generator=generator) * std

    # Root: SMPL-X's y-up body turned 180 degrees about x into the OpenCV camera frame (y down), facing the camera.
    root = torch.tensor([torch.pi, 0.0, 0.0]) + noise(batch, 3, std=0.1)
    return {
        "root_pose": root,
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
    """Tight box (centre, size) of (B, K, 2) joints, enlarged x1.2 as dataset boxes are."""
    low, high = joint_hm.amin(1), joint_hm.amax(1)  # (B, 2)
    return (low + high) / 2, (high - low) * 1.2


def make_targets(
    cfg: Config, batch: int, seed: int = 0
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """Hand4Whole-contract (inputs, targets, meta_info) for random SMPL-X parameters seen by the virtual camera.

    Every mask is present; a few entries of each per-joint or per-parameter mask are 0, and one sample is 2D-only
    (is_3D = 0) when batch > 1, so the masking paths run.

    Args:
        cfg: the config whose geometry (cfg.model) and body-model files (cfg.human_model_path) to use.
        batch: B.
        seed: seed of the parameters, the masks and the (random) image.

    Returns:
        inputs {'img': (B, 3, H, W) in [0, 1]}, targets and meta_info as documented in common/nets/loss.py.
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
    # Centre the person in the body input, ~1.7 m over ~80% of its height, as a dataset's crop does.
    depth = m.focal[1] * 1.7 / (0.8 * m.input_body_shape[0])
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


@pytest.fixture(scope="session")
def make_wholebody_targets() -> TargetMaker:
    """`make_targets(cfg, batch, seed=0) -> (inputs, targets, meta_info)`, see its docstring."""
    return make_targets
