"""Tests of main/pose2pose_model.py: the Pose2Pose body/hand/face checkpoint layouts, both modes, left hands."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from common.engine.checkpoint import load_network_state
from common.geometry import mirror_axis_angle
from main.config import Config, load_config
from main.model import get_model
from main.pose2pose_model import BODY_JOINTS, PART_MODELS, PartModel

REFERENCE_DIR = Path(__file__).resolve().parent / "checkpoint_layouts"
# Reduced part geometry for CPU tests: ResNet-18, inputs whose stride-32 features are 2 x 2 heatmap cells.
SMALL_PART = {
    "body": ["model.input_img_shape=[64,48]", "model.output_hm_shape=[8,2,2]", "model.princpt=[24,32]"],
    "hand": ["model.input_img_shape=[64,64]", "model.output_hm_shape=[8,2,2]", "model.princpt=[32,32]"],
    "face": ["model.input_img_shape=[64,48]", "model.output_hm_shape=[8,2,2]", "model.princpt=[24,32]"],
}


@pytest.fixture(scope="module")
def make_part_cfg(synthetic_body_model_dir: Path) -> Callable[..., Config]:
    def make(part: str, *overrides: str) -> Config:
        base = [f"human_model_path={synthetic_body_model_dir}", "model.resnet_type=18", *SMALL_PART[part]]
        return load_config(f"pose2pose_{part}", [*base, *overrides])

    return make


def _read_layout(part: str) -> list[tuple[str, list[int], str]]:
    tsv = REFERENCE_DIR / f"pose2pose_{part}_state_dict.tsv"
    rows = [line.split("\t") for line in tsv.read_text().splitlines()[1:]]
    return [(key, [int(n) for n in shape.strip("[]").split(",") if n.strip()], dtype) for key, shape, dtype in rows]


@pytest.mark.parametrize("part", ["body", "hand", "face"])
def test_state_dict_equals_the_reference_layout_and_a_prefixed_snapshot_loads(
    part: str, synthetic_body_model_dir: Path
) -> None:
    expected = _read_layout(part)
    cfg = load_config(f"pose2pose_{part}", [f"human_model_path={synthetic_body_model_dir}"])
    torch.manual_seed(0)
    model = get_model(cfg, "test")
    assert type(model) is PART_MODELS[part]
    state = model.state_dict()
    actual = [(key, list(value.shape), str(value.dtype).removeprefix("torch.")) for key, value in state.items()]
    assert actual == expected  # same keys, shapes, dtypes and order
    # A public snapshot is DataParallel-prefixed; it loads strictly after the prefix is stripped.
    snapshot = {f"module.{key}": torch.randn_like(value.float()).to(value.dtype) for key, value in state.items()}
    load_network_state(model, snapshot)
    assert all(torch.equal(model.state_dict()[key.removeprefix("module.")], v) for key, v in snapshot.items())


def _part_targets(model: PartModel, batch: int, seed: int = 0) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Random targets and 0/1 masks with the part's contract shapes (main/pose2pose_model.py's docstring)."""
    g = torch.Generator().manual_seed(seed)
    joints = len(model.joint_set)
    depth, height, width = model.cfg.output_hm_shape
    prefix = model.prefix

    def rand(*shape: int, scale: float = 1.0) -> Tensor:
        return torch.rand(*shape, generator=g) * scale

    def mask(*shape: int) -> Tensor:
        return (torch.rand(*shape, generator=g) > 0.2).float()

    joint_img = rand(batch, joints, 3) * torch.tensor([width, height, depth])
    joint_cam = rand(batch, joints, 3, scale=0.2) - 0.1
    targets = {"joint_img": joint_img, "joint_cam": joint_cam, f"{prefix}_joint_cam": joint_cam.flip(0)}
    meta_info = {
        "joint_valid": mask(batch, joints, 1), "joint_trunc": mask(batch, joints, 1),
        f"{prefix}_joint_valid": mask(batch, joints, 1), f"{prefix}_joint_trunc": mask(batch, joints, 1),
        "is_3D": torch.tensor([1.0, 0.0] * (batch // 2) + [1.0] * (batch % 2)),
    }  # fmt: skip
    if prefix == "flame":
        for name in ("root_pose", "jaw_pose"):
            targets[f"flame_{name}"], meta_info[f"flame_{name}_valid"] = rand(batch, 3) - 0.5, mask(batch)
        for name in ("shape", "expr"):
            targets[f"flame_{name}"], meta_info[f"flame_{name}_valid"] = rand(batch, 10) - 0.5, mask(batch)
    else:
        targets[f"{prefix}_joint_img"] = joint_img.flip(0)
        pose_dim = {"smpl": 72, "mano": 48}[prefix]
        targets[f"{prefix}_pose"], meta_info[f"{prefix}_pose_valid"] = (
            rand(batch, pose_dim) - 0.5,
            mask(batch, pose_dim),
        )
        targets[f"{prefix}_shape"], meta_info[f"{prefix}_shape_valid"] = rand(batch, 10) - 0.5, mask(batch)
    return targets, meta_info


_OUTPUT_SHAPES = {
    "body": {"smpl_mesh_cam": (6890, 3), "smpl_joint_cam": (33, 3), "smpl_joint_proj": (33, 2), "smpl_pose": (72,),
             "smpl_shape": (10,), "joint_img": (25, 3)},
    "hand": {"mano_mesh_cam": (778, 3), "mano_joint_cam": (21, 3), "mano_joint_proj": (21, 2), "mano_pose": (48,),
             "mano_shape": (10,), "joint_img": (21, 3)},
    "face": {"flame_mesh_cam": (5023, 3), "flame_joint_cam": (73, 3), "flame_joint_proj": (73, 2),
             "flame_root_pose": (3,), "flame_jaw_pose": (3,), "flame_shape": (10,), "flame_expr": (10,)},
}  # fmt: skip


@pytest.mark.parametrize("part", ["body", "hand", "face"])
def test_test_mode_outputs(part: str, make_part_cfg: Callable[..., Config]) -> None:
    cfg = make_part_cfg(part)
    torch.manual_seed(0)
    model = get_model(cfg, "train").eval()
    img = torch.rand(2, 3, *cfg.model.input_img_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model({"img": img}, {}, {"bb2img_trans": torch.zeros(2, 2, 3)}, "test")
    expected = {key: (2, *shape) for key, shape in _OUTPUT_SHAPES[part].items()}
    expected |= {"cam_trans": (2, 3)}  # predictions only: no echoed input or ground truth
    assert {key: tuple(value.shape) for key, value in out.items()} == expected
    for key, value in out.items():
        assert value.dtype == torch.float32 and torch.isfinite(value).all(), key
    mesh = out[f"{model.prefix}_mesh_cam"]
    k_max = (cfg.model.focal[0] * cfg.model.focal[1] / img.shape[-1] / img.shape[-2]) ** 0.5 * cfg.model.camera_3d_size
    assert (out["cam_trans"][:, 2] > 0).all() and (out["cam_trans"][:, 2] < k_max).all()  # t_z = k * sigmoid
    assert (mesh[..., 2] > 0).all()  # in front of the camera
    root = out[f"{model.prefix}_joint_cam"][:, model.root_idx]
    torch.testing.assert_close(root, torch.zeros_like(root))  # root-relative


@pytest.mark.parametrize("part", ["body", "hand", "face"])
def test_train_forward_backward_gives_finite_gradients_everywhere(
    part: str, make_part_cfg: Callable[..., Config]
) -> None:
    cfg = make_part_cfg(part)
    torch.manual_seed(0)
    model = get_model(cfg, "train").train()
    targets, meta_info = _part_targets(model, batch=2)
    frozen = {key: value.clone() for key, value in {**targets, **meta_info}.items()}
    img = torch.rand(2, 3, *cfg.model.input_img_shape, generator=torch.Generator().manual_seed(2))
    losses = model({"img": img}, targets, meta_info, "train")
    assert tuple(losses) == model.loss_terms and len(losses) == 7
    for name, value in losses.items():
        assert value.ndim == 0 and torch.isfinite(value) and value > 0, name
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), name
    for key, value in {**targets, **meta_info}.items():
        assert torch.equal(value, frozen[key]), f"the loss modified {key} in place"


def test_loss_weights_follow_the_whole_body_term_of_the_same_role(make_part_cfg: Callable[..., Config]) -> None:
    cfg = make_part_cfg("body")
    weighted = make_part_cfg("body", "loss.weights.smplx_pose=0", "loss.weights.joint_proj=2")
    torch.manual_seed(0)
    model = get_model(cfg, "train").eval()  # eval: BatchNorm statistics stay put between the two passes
    other = get_model(weighted, "train").eval()
    load_network_state(other, model.state_dict())
    targets, meta_info = _part_targets(model, batch=2)
    img = torch.rand(2, 3, *cfg.model.input_img_shape)
    with torch.no_grad():
        plain, changed = (
            model({"img": img}, targets, meta_info, "train"),
            other({"img": img}, targets, meta_info, "train"),
        )
    assert changed["smpl_pose"] == 0 and plain["smpl_pose"] > 0
    torch.testing.assert_close(changed["joint_proj"], 2 * plain["joint_proj"])
    torch.testing.assert_close(changed["smpl_joint_cam"], plain["smpl_joint_cam"])


@pytest.mark.parametrize("unflip", ["heatmap", "pixel"])
def test_mirrored_left_hand_crop_gives_the_mirrored_right_hand(
    make_part_cfg: Callable[..., Config], unflip: str
) -> None:
    cfg = make_part_cfg("hand", f"model.left_hand_unflip={unflip}")
    torch.manual_seed(0)
    model = get_model(cfg, "train").eval()
    img = torch.rand(1, 3, *cfg.model.input_img_shape, generator=torch.Generator().manual_seed(3))
    batch = torch.cat((img, img.flip(-1)))  # sample 0: a right hand; sample 1: its mirror image, a left hand
    with torch.no_grad():
        out = model({"img": batch, "is_left": torch.tensor([False, True])})
    pose = out["mano_pose"].unflatten(-1, (16, 3))
    torch.testing.assert_close(pose[1], mirror_axis_angle(pose[0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(out["mano_shape"][1], out["mano_shape"][0])
    x_mirror = torch.tensor([-1.0, 1.0, 1.0])
    for key in ("mano_mesh_cam", "mano_joint_cam", "cam_trans"):
        torch.testing.assert_close(out[key][1], out[key][0] * x_mirror, atol=1e-5, rtol=1e-5, msg=key)
    width_hm, width_px = cfg.model.output_hm_shape[2], cfg.model.input_img_shape[1]
    mirror = width_hm - 1 if unflip == "heatmap" else (width_px - 1) * width_hm / width_px
    right, left = out["joint_img"]
    torch.testing.assert_close(left[:, 0], mirror - right[:, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(left[:, 1:], right[:, 1:], atol=1e-5, rtol=0)
    # No flag: every crop is a right hand, and is_left=False changes nothing.
    with torch.no_grad():
        plain = model({"img": batch})
    assert all(torch.equal(plain[key][0], out[key][0]) for key in plain if key != "img")


def test_left_hand_mesh_is_the_left_mano_of_the_mirrored_parameters(make_part_cfg: Callable[..., Config]) -> None:
    """The hand model mirrors the right MANO mesh for left hands; that equals the left MANO layer's mesh of the
    mirrored parameters when the left model is the right one's mirror image (the stand-in is built so)."""
    from common.body_models import get_body_models

    cfg = make_part_cfg("hand")
    body_models = get_body_models(cfg.human_model_path)
    g = torch.Generator().manual_seed(4)
    root, fingers, shape = (
        torch.randn(2, 3, generator=g) * 0.5,
        torch.randn(2, 45, generator=g) * 0.3,
        torch.randn(2, 10, generator=g),
    )
    with torch.no_grad():
        right = body_models.mano("right")(betas=shape, global_orient=root, hand_pose=fingers).vertices
        left = body_models.mano("left")(
            betas=shape, global_orient=mirror_axis_angle(root),
            hand_pose=mirror_axis_angle(fingers.unflatten(-1, (15, 3))).flatten(1),
        ).vertices  # fmt: skip
    torch.testing.assert_close(left, right * torch.tensor([-1.0, 1.0, 1.0]), atol=1e-5, rtol=0)


def test_body_joint_set_is_pose2poses() -> None:
    assert len(BODY_JOINTS) == 33
    assert BODY_JOINTS.names[:3] == ("Pelvis", "L_Hip", "R_Hip") and BODY_JOINTS.names[14] == "L_Index_1"
    assert BODY_JOINTS.names[22:27] == ("Nose", "L_Eye", "R_Eye", "L_Ear", "R_Ear")
    assert len(BODY_JOINTS.flip_pairs) == 15  # every L_/R_ joint has its partner


@pytest.mark.parametrize("part", ["body", "hand", "face"])
def test_training_picture_draws_the_part_mesh_over_its_crops(part: str, make_part_cfg: Callable[..., Config]) -> None:
    """The family's picture hook renders the test-mode mesh it names, with the part's triangles and camera: a stub
    model puts the part's rest mesh at the depth where it fills 80% of the crop, in front of the camera."""
    from main.model import get_family, mesh_picture

    cfg = make_part_cfg(part)
    view = get_family(cfg).mesh_view(cfg)
    template = get_model(cfg, "test").layer.v_template.double()  # (V, 3) rest mesh, metres
    template = template - template.mean(0)
    height, width = cfg.model.input_img_shape
    depth = cfg.model.focal[0] * float((template.max(0).values - template.min(0).values)[:2].max()) / (0.8 * width)
    mesh = (template + torch.tensor([0.0, 0.0, depth], dtype=torch.float64)).float()

    def stub_model(inputs: dict, mode: str) -> dict:
        return {view.mesh_key: mesh.expand(len(inputs["img"]), -1, -1)}

    picture = mesh_picture(cfg)
    try:
        grid = picture.draw(stub_model, {"img": torch.zeros(2, 3, height, width)})  # black crops
    finally:
        picture.close()
    assert grid is not None and grid.dtype == np.uint8 and grid.shape[0] >= height and grid.shape[1] >= 2 * width
    pixels = grid.reshape(-1, 3)
    drawn = ~np.all(pixels == 0, axis=1) & ~np.all(pixels == 255, axis=1)  # neither a black crop nor the white frame
    assert drawn.mean() > 0.05
