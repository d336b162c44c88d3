"""Tests of main/model.py: checkpoint layout, test/train forward, bf16 autocast, strict loading, the hand mirror."""

import ast
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision

from common.engine.checkpoint import StateDictMismatchError, load_network_state
from common.geometry import mirror_axis_angle
from common.nets import LOSS_TERMS, V2VPositionNet
from main.config import Config, load_config
from main.model import WholeBodyModel, get_model

REFERENCE_TSV = Path(__file__).resolve().parent / "checkpoint_layouts" / "hand4whole_state_dict.tsv"


@pytest.fixture(scope="module")
def default_model(default_cfg: Config) -> WholeBodyModel:
    torch.manual_seed(0)
    return get_model(default_cfg, "test").eval()


def test_state_dict_equals_the_reference_checkpoint_layout(default_model: WholeBodyModel) -> None:
    rows = [line.split("\t") for line in REFERENCE_TSV.read_text().splitlines()[1:]]
    assert len(rows) == 834
    expected = [(key, ast.literal_eval(shape), dtype) for key, shape, dtype in rows]
    state = default_model.state_dict()
    actual = [(key, list(value.shape), str(value.dtype).removeprefix("torch.")) for key, value in state.items()]
    assert actual == expected  # same keys, shapes, dtypes, even the same order
    assert not any("smplx" in key for key in state), "the SMPL-X layer's buffers are not in the checkpoint"


def test_test_mode_outputs(default_model: WholeBodyModel) -> None:
    img = torch.rand(2, 3, 512, 384, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = default_model({"img": img}, {}, {}, "test")
    vertices = default_model.smplx_head.layer.v_template.shape[0]
    expected = {
        "joint_img": (2, 65, 3),
        "joint_cam": (2, 137, 3),
        "smplx_joint_proj": (2, 137, 2),
        "smplx_mesh_cam": (2, vertices, 3),
        "smplx_root_pose": (2, 3),
        "smplx_body_pose": (2, 63),
        "smplx_lhand_pose": (2, 45),
        "smplx_rhand_pose": (2, 45),
        "smplx_jaw_pose": (2, 3),
        "smplx_shape": (2, 10),
        "smplx_expr": (2, 10),
        "cam_trans": (2, 3),
        "lhand_bbox_xyxy_crop": (2, 4),
        "rhand_bbox_xyxy_crop": (2, 4),
        "face_bbox_xyxy_crop": (2, 4),
    }  # fmt: skip  (predictions only: no echoed input)
    assert vertices == 10475
    assert {key: tuple(value.shape) for key, value in out.items()} == expected
    for key, value in out.items():
        assert value.dtype == torch.float32 and torch.isfinite(value).all(), key
    assert (out["cam_trans"][:, 2] > 0).all() and (out["cam_trans"][:, 2] < 56.4).all()  # t_z = k * sigmoid
    # The mesh is the SMPL-X output moved by cam_trans: in front of the camera, around t_z.
    assert ((out["smplx_mesh_cam"][..., 2] - out["cam_trans"][:, None, 2]).abs() < 1.0).all()


def test_train_forward_backward_gives_finite_gradients_everywhere(small_cfg: Config, make_wholebody_targets) -> None:
    torch.manual_seed(0)
    model = get_model(small_cfg, "train").train()
    inputs, targets, meta_info = make_wholebody_targets(small_cfg, batch=2)
    frozen = {key: value.clone() for key, value in {**targets, **meta_info}.items()}
    losses = model(inputs, targets, meta_info, "train")
    assert tuple(losses) == LOSS_TERMS
    for name, value in losses.items():
        assert value.ndim == 0 and torch.isfinite(value) and value > 0, name
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        assert param.requires_grad and param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), name
    for key, value in {**targets, **meta_info}.items():
        assert torch.equal(value, frozen[key]), f"the loss modified {key} in place"


def test_bf16_autocast_on_cpu_matches_fp32(small_cfg: Config) -> None:
    torch.manual_seed(0)
    model = get_model(small_cfg, "train").eval()
    img = torch.rand(2, 3, *small_cfg.model.input_img_shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model({"img": img}, mode="test")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model({"img": img}, mode="test")
    # Stated tolerances (bf16 keeps ~3 significant digits in the backbones; heatmap coordinates, rotations, camera
    # and SMPL-X run in float32): heatmap units 0.05 cells, rotations 0.1 rad, metres 3 cm, box pixels 1 px.
    tolerance = {
        "joint_img": 0.05,
        "smplx_joint_proj": 0.05,
        "joint_cam": 0.03,
        "smplx_mesh_cam": 0.03,
        "cam_trans": 0.03,
    }
    tolerance |= {k: 0.1 for k in ref if k.endswith("_pose")} | {"smplx_shape": 0.01, "smplx_expr": 0.01}
    tolerance |= {f"{part}_bbox_xyxy_crop": 1.0 for part in ("lhand", "rhand", "face")}
    assert set(tolerance) == set(ref)
    for key, value in low.items():
        assert value.dtype == torch.float32 and torch.isfinite(value).all(), key
        torch.testing.assert_close(value, ref[key], atol=tolerance[key], rtol=0, msg=key)


def test_checkpoint_of_another_architecture_fails_with_the_keys_listed(
    default_model: WholeBodyModel, default_cfg: Config
) -> None:
    other = get_model(
        load_config(None, [f"human_model_path={default_cfg.human_model_path}", "model.resnet_type=18"]), "test"
    )
    with pytest.raises(StateDictMismatchError) as raised:
        load_network_state(default_model, other.state_dict())
    error = raised.value
    assert "backbone.layer1.0.conv3.weight" in error.missing  # ResNet-50 Bottleneck vs ResNet-18 BasicBlock
    assert not error.unexpected  # every ResNet-18 key name also exists in ResNet-50
    assert ("body_position_net.conv.0.weight", (200, 512, 1, 1), (200, 2048, 1, 1)) in error.shape_mismatch
    message = str(error)
    assert "missing key(s): backbone.layer1.0.bn3.bias" in message and "shape mismatch" in message
    assert "\n" not in message
    with pytest.raises(StateDictMismatchError, match=r"unexpected key\(s\): extra\.weight"):
        load_network_state(default_model, {**default_model.state_dict(), "extra.weight": torch.zeros(1)})


def test_module_prefixed_checkpoint_loads_strictly(small_cfg: Config) -> None:
    source, target = get_model(small_cfg, "train"), get_model(small_cfg, "test")
    load_network_state(target, {f"module.{key}": value for key, value in source.state_dict().items()})
    for key, value in target.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key


@pytest.mark.parametrize("unflip", ["heatmap", "pixel"])
@pytest.mark.parametrize("aligned", [False, True])
def test_mirrored_right_hand_crop_gives_the_mirrored_left_hand(
    make_small_cfg: Callable[..., Config], aligned: bool, unflip: str
) -> None:
    cfg = make_small_cfg(f"model.roi_align_aligned={aligned}", f"model.left_hand_unflip={unflip}")
    torch.manual_seed(0)
    model = get_model(cfg, "train").eval()
    img_h, img_w = cfg.model.input_img_shape
    img = torch.rand(1, 3, img_h, img_w, generator=torch.Generator().manual_seed(3))
    rbox = torch.tensor([[30.0, 20.0, 62.0, 52.0]])  # body-input pixels (the image is 2x larger)
    # The mirror image of pixel u is W-1-u (Hand4Whole's pixel convention) for roi_align(aligned=False); W-u under
    # the continuous convention of aligned=True. The left box covers the mirror of the right box.
    edge = (img_w if aligned else img_w - 1) / 2  # in body-input pixels
    lbox = torch.stack((edge - rbox[:, 2], rbox[:, 1], edge - rbox[:, 0], rbox[:, 3]), dim=1)
    batch = torch.cat((img, img.flip(-1)))  # sample 0: the image, sample 1: its mirror
    with torch.no_grad():
        hands = model.predict_hands(batch, torch.cat((rbox, lbox)), torch.cat((rbox, rbox)))
    torch.testing.assert_close(hands["lhand_feat"][1], hands["rhand_feat"][0].flip(-1), atol=1e-5, rtol=1e-4)
    right_pose = hands["rhand_pose"][0].unflatten(-1, (15, 3))
    torch.testing.assert_close(
        hands["lhand_pose"][1].unflatten(-1, (15, 3)), mirror_axis_angle(right_pose), atol=1e-4, rtol=0
    )
    right, left = hands["rhand_joint_img"][0], hands["lhand_joint_img"][1]
    width_hm, width_px = cfg.model.output_hand_hm_shape[2], cfg.model.input_hand_shape[1]
    mirror = width_hm - 1 if unflip == "heatmap" else (width_px - 1) * width_hm / width_px
    torch.testing.assert_close(left[:, 0], mirror - right[:, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(left[:, 1:], right[:, 1:], atol=1e-5, rtol=0)


def test_v2v_hand_position_head(make_small_cfg: Callable[..., Config], make_wholebody_targets) -> None:
    cfg = make_small_cfg(
        "model.hand_position_head=v2v", "model.input_hand_shape=[128,128]", "model.output_hand_hm_shape=[8,4,4]"
    )
    torch.manual_seed(0)
    model = get_model(cfg, "train")
    assert isinstance(model.hand_position_net, V2VPositionNet)
    assert any(key.startswith("hand_position_net.encoder_decoder.") for key in model.state_dict())
    inputs, targets, meta_info = make_wholebody_targets(cfg, batch=2)
    losses = model(inputs, targets, meta_info, "train")
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.hand_position_net.parameters())
    with torch.no_grad():
        out = model.eval()(inputs, mode="test")
    assert out["joint_img"].shape == (2, 65, 3) and torch.isfinite(out["smplx_mesh_cam"]).all()


def test_corrected_quirk_options_run(
    small_cfg: Config, make_small_cfg: Callable[..., Config], make_wholebody_targets
) -> None:
    corrected = (
        "body_resize_mode=bilinear",
        "left_hand_unflip=pixel",
        "normalize_image=true",
        "roi_align_aligned=true",
    )
    cfg = make_small_cfg(*(f"model.{option}" for option in corrected))
    torch.manual_seed(0)
    model = get_model(cfg, "train")
    inputs, targets, meta_info = make_wholebody_targets(cfg, batch=2)
    losses = model(inputs, targets, meta_info, "train")
    assert all(torch.isfinite(v) for v in losses.values())
    with torch.no_grad():
        default = get_model(small_cfg, "test")
        load_network_state(default, model.state_dict())  # same architecture, same keys
        assert not torch.equal(default.eval()(inputs)["joint_img"], model.eval()(inputs)["joint_img"])


def test_agora_settings_and_imagenet_init(make_small_cfg: Callable[..., Config], tmp_path: Path) -> None:
    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    cfg = make_small_cfg(f"model.face_backbone_weights={weights}")
    assert not get_model(cfg, "test").proj_detach_joint_cam  # explicit keys, whatever the datasets are
    agora = ("model.proj_detach_joint_cam=true", "model.test_all_joints=true")
    cfg = make_small_cfg(*agora, f"model.face_backbone_weights={weights}")
    model = get_model(cfg, "train")
    assert model.proj_detach_joint_cam and model.test_all_joints
    torch.testing.assert_close(
        model.face_roi_net.backbone.conv1.weight, torch.load(weights, weights_only=True)["conv1.weight"]
    )
    with torch.no_grad():
        out = model.eval()({"img": torch.rand(1, 3, *cfg.model.input_img_shape)}, mode="test")
    assert out["smplx_joint_proj"].shape == (1, 144, 2) and out["joint_cam"].shape == (1, 137, 3)


def test_smplx_buffers_follow_to_and_modes_are_checked(small_cfg: Config) -> None:
    model = get_model(small_cfg, "test").to(torch.float64)
    assert model.smplx_head.layer.shapedirs.dtype == torch.float64
    with torch.no_grad():
        out = model({"img": torch.rand(1, 3, *small_cfg.model.input_img_shape, dtype=torch.float64)})
    assert out["smplx_mesh_cam"].dtype == torch.float64 and torch.isfinite(out["smplx_mesh_cam"]).all()
    model.to("meta")
    assert all(buffer.is_meta for buffer in model.buffers()) and model.smplx_head.layer.shapedirs.is_meta
    with pytest.raises(ValueError, match="unknown mode"):
        get_model(small_cfg, "eval")
