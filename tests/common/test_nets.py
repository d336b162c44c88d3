"""Tests of common/nets: module shapes and names, BoxNet/restore_bbox, RoI crops, V2V, the loss terms."""

from pathlib import Path

import pytest
import torch
import torchvision
from torch import Tensor
from torchvision.ops import roi_align

from common.body_models import joint_sets
from common.engine.checkpoint import StateDictMismatchError
from common.geometry import axis_angle_to_rotmat, mirror_axis_angle
from common.nets import (
    BACKBONES,
    LOSS_TERMS,
    Basic3DBlock,
    BodyRotationNet,
    BoxNet,
    FaceRegressor,
    FaceRoI,
    HandRoI,
    HandRotationNet,
    HeatmapShapes,
    Pool3DBlock,
    PositionNet,
    Res3DBlock,
    Upsample3DBlock,
    V2VEncoderDecoder,
    V2VPoseNet,
    V2VPositionNet,
    build_backbone,
    compute_losses,
    crop_boxes,
    from_hand_box_space,
    make_conv_layers,
    make_deconv_layers,
    make_linear_layers,
    restore_bbox,
    sample_features,
    to_hand_box_space,
)
from common.nets.loss import align_part_translation
from main.config import LossConfig, LossWeights


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# Layers and backbones ------------------------------------------------------------------------------------------------


def test_layer_helpers_give_hand4whole_parameter_names() -> None:
    def names(module: torch.nn.Module) -> list[str]:  # parameters and BN affine, without the BN statistics
        return [k for k in module.state_dict() if not k.endswith(("running_mean", "running_var", "tracked"))]

    linear = make_linear_layers([256, 256, 2], relu_final=False)
    assert names(linear) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    conv = make_conv_layers([2048, 512], kernel=1, padding=0)
    assert names(conv) == ["0.weight", "0.bias", "1.weight", "1.bias"] and isinstance(conv[2], torch.nn.ReLU)
    assert names(make_conv_layers([2048, 200], kernel=1, padding=0, bnrelu_final=False)) == ["0.weight", "0.bias"]
    deconv = make_deconv_layers([16, 8, 8, 8])
    assert [k for k in names(deconv) if k.endswith("weight")] == [f"{i}.weight" for i in (0, 1, 3, 4, 6, 7)]
    assert deconv[0].bias is None and deconv(torch.zeros(1, 16, 2, 3)).shape == (1, 8, 16, 24)


def test_sample_features_reads_cells_at_integer_positions() -> None:
    feat = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)  # (B, C, H, W)
    points = torch.tensor([[[0.0, 0.0], [3.0, 2.0], [1.5, 1.0]]])  # (B, J, 2) as (x, y)
    out = sample_features(feat, points)  # (1, 3, 2)
    torch.testing.assert_close(out[0, 0], feat[0, :, 0, 0])
    torch.testing.assert_close(out[0, 1], feat[0, :, 2, 3])
    torch.testing.assert_close(out[0, 2], (feat[0, :, 1, 1] + feat[0, :, 1, 2]) / 2)


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_backbone_keys_are_torchvisions_without_the_classifier(depth: int) -> None:
    backbone = build_backbone(depth)
    reference = getattr(torchvision.models, f"resnet{depth}")().state_dict()
    expected = {k: v.shape for k, v in reference.items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in backbone.state_dict().items()} == expected
    assert backbone.out_channels == (512 if depth < 50 else 2048) and f"resnet{depth}" in BACKBONES


@pytest.mark.parametrize(("depth", "channels"), [(18, 512), (50, 2048)])
def test_backbone_output_is_stride_32(depth: int, channels: int) -> None:
    assert build_backbone(depth)(torch.rand(2, 3, 64, 96)).shape == (2, channels, 2, 3)


def test_backbone_loads_local_imagenet_file_strictly(tmp_path: Path) -> None:
    source = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    state = source.state_dict()
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)  # as old files
    backbone = build_backbone(18)
    backbone.load_imagenet_weights(path)
    for key, value in backbone.state_dict().items():
        torch.testing.assert_close(value, state[key], msg=key)
    wrong = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), wrong)
    with pytest.raises(StateDictMismatchError, match=r"unexpected key\(s\): .*layer1\.2\.") as raised:
        backbone.load_imagenet_weights(wrong)
    assert "layer3.5.conv1.weight" in raised.value.unexpected and not raised.value.missing


# Heads ---------------------------------------------------------------------------------------------------------------


def test_position_nets_shapes_and_ranges() -> None:
    feat = torch.randn(2, 64, 4, 3)
    coords, hm = PositionNet(25, (8, 4, 3), 64)(feat)
    assert coords.shape == (2, 25, 3) and hm.shape == (2, 25, 8, 4, 3)
    assert (coords >= 0).all() and (coords <= torch.tensor([2.0, 3.0, 7.0])).all()
    torch.testing.assert_close(hm.sum((2, 3, 4)), torch.ones(2, 25))
    coords, hm = V2VPositionNet(20, (8, 4, 4), 64, volume_channels=8)(torch.randn(2, 64, 4, 4))
    assert coords.shape == (2, 20, 3) and hm.shape == (2, 20, 8, 4, 4)
    with pytest.raises(ValueError, match="divisible by 4"):
        V2VPositionNet(20, (8, 2, 2), 64)


def test_rotation_nets_and_face_regressor_shapes() -> None:
    body = BodyRotationNet(25, 4, in_channels=64, hand_in_channels=32, body_rot_joint_num=21, shape_dim=10)
    assert body.root_pose_out[0].in_features == 33 * 515
    joints = torch.rand(2, 25, 3) * 2
    mcp = torch.rand(2, 4, 3)
    root, pose, shape, cam = body(
        torch.randn(2, 64, 4, 3), joints, torch.randn(2, 32, 2, 2), mcp, torch.randn(2, 32, 2, 2), mcp
    )
    assert (root.shape, pose.shape, shape.shape, cam.shape) == ((2, 6), (2, 126), (2, 10), (2, 3))
    hand = HandRotationNet(20, in_channels=32, rot_joint_num=15)
    assert hand(torch.randn(2, 32, 2, 2), torch.rand(2, 20, 3)).shape == (2, 90)
    expr, jaw = FaceRegressor(16, expr_dim=10)(torch.randn(2, 16, 2, 2))
    assert expr.shape == (2, 10) and jaw.shape == (2, 6)


def test_box_net_shapes_and_units() -> None:
    net = BoxNet(joint_num=25, hm_depth=8, in_channels=64, hidden_channels=16)
    assert net.deconv[0].in_channels == 64 + 25 * 8
    boxes = net(torch.randn(2, 64, 8, 6), torch.rand(2, 25, 8, 8, 6))
    for name in ("lhand", "rhand", "face"):
        center, size = getattr(boxes, f"{name}_center"), getattr(boxes, f"{name}_size")
        assert center.shape == (2, 2) and size.shape == (2, 2)
        # Centres are soft-argmax positions on the 64 x 48 map, divided by 8: inside the 8 x 6 heatmap.
        assert (center >= 0).all() and (center <= torch.tensor([47 / 8, 63 / 8])).all()


def test_restore_bbox_hand_computed() -> None:
    # Centre (3, 4) and size (1, 0.5) cells of an 8 x 6 heatmap = (96, 128) and (32, 16) px of a 256 x 192 input.
    center, size = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.5]])
    hand = restore_bbox(center, size, (8, 6), (256, 192), aspect_ratio=1.0, extension_ratio=2.0)
    torch.testing.assert_close(hand, torch.tensor([[64.0, 96.0, 128.0, 160.0]]))  # 32 x 32 square, x2 -> 64
    # Aspect 0.5 (w / h): 32 x 16 is too wide, so h becomes 64; x1.5 -> 48 x 96 around (96, 128).
    tall = restore_bbox(center, size, (8, 6), (256, 192), aspect_ratio=0.5, extension_ratio=1.5)
    torch.testing.assert_close(tall, torch.tensor([[72.0, 80.0, 120.0, 176.0]]))
    # A too-tall box gets wider instead: 8 x 32 px at aspect 1 -> 32 x 32.
    narrow = restore_bbox(center, torch.tensor([[0.25, 1.0]]), (8, 6), (256, 192), 1.0, 1.0)
    torch.testing.assert_close(narrow, torch.tensor([[80.0, 112.0, 112.0, 144.0]]))


# RoI crops -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("aligned", [False, True])
def test_hand_roi_left_crop_is_the_flipped_crop(aligned: bool) -> None:
    img = torch.rand(2, 3, 64, 48)
    lbox = torch.tensor([[2.0, 3.0, 14.0, 15.0], [5.0, 1.0, 21.0, 17.0]])  # body-input pixels (32 x 24)
    rbox = torch.tensor([[10.0, 4.0, 18.0, 12.0], [0.0, 0.0, 24.0, 24.0]])
    roi = HandRoI(torch.nn.Identity(), box_scale_xy=(2.0, 2.0), output_shape_hw=(16, 16), aligned=aligned)
    crops = roi.crop(img, lbox, rbox)  # (4, 3, 16, 16)
    index = torch.arange(2, dtype=torch.float32)[:, None]
    left = roi_align(img, torch.cat((index, lbox * 2), 1), (16, 16), aligned=aligned)
    right = roi_align(img, torch.cat((index, rbox * 2), 1), (16, 16), aligned=aligned)
    torch.testing.assert_close(crops[:2], left.flip(-1))
    torch.testing.assert_close(crops[2:], right)
    torch.testing.assert_close(roi(img, lbox, rbox), crops)  # Identity backbone: forward = crop


def test_crop_of_the_whole_image_is_the_image() -> None:
    img = torch.rand(2, 3, 8, 6)
    box = torch.tensor([[0.0, 0.0, 3.0, 4.0]]).repeat(2, 1)  # the whole image in half-resolution box space
    torch.testing.assert_close(crop_boxes(img, box, (2.0, 2.0), (8, 6), aligned=True), img)
    face = FaceRoI(torch.nn.Identity(), (2.0, 2.0), (4, 4))
    assert face(img, box).shape == (2, 3, 4, 4)


# V2V -----------------------------------------------------------------------------------------------------------------


def test_v2v_blocks_shapes() -> None:
    x = torch.randn(1, 4, 8, 8, 8)
    assert Basic3DBlock(4, 6, kernel=3)(x).shape == (1, 6, 8, 8, 8)
    assert Res3DBlock(4, 6)(x).shape == (1, 6, 8, 8, 8) and len(Res3DBlock(4, 4).skip_con) == 0
    assert Pool3DBlock(2)(x).shape == (1, 4, 4, 4, 4)
    assert Upsample3DBlock(4, 2)(x).shape == (1, 2, 16, 16, 16)
    assert V2VEncoderDecoder(4)(x).shape == x.shape


def test_v2v_posenet_on_random_voxels() -> None:
    net = V2VPoseNet(in_channels=1, joint_num=3)
    voxels = (torch.rand(1, 1, 88, 88, 88) > 0.9).float()
    heatmaps = net(voxels)
    assert heatmaps.shape == (1, 3, 44, 44, 44) and torch.isfinite(heatmaps).all()
    heatmaps.square().mean().backward()
    for name, param in net.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert "encoder_decoder.skip_res1.res_branch.0.weight" in dict(net.named_parameters())


# Loss ----------------------------------------------------------------------------------------------------------------

HM = HeatmapShapes()  # body (8, 8, 6), hand (8, 8, 8)
_PARTS = joint_sets.JOINTS.parts
_POS_IDX = joint_sets.JOINTS.indices(joint_sets.POS_JOINTS.names)


def _random_case(batch: int = 2) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """Random targets and masks, and the outputs that equal them (hands expressed in their predicted boxes)."""
    joints = len(joint_sets.JOINTS)
    joint_img = torch.rand(batch, joints, 3) * torch.tensor([6.0, 8.0, 8.0])
    for part in ("lhand", "rhand"):  # each hand's joints in a ~1.4 x 1.4 cell area inside its box
        joint_img[:, list(_PARTS[part]), :2] = torch.rand(batch, 20, 2) * 1.4 + 2.3
    targets = {
        "joint_img": joint_img, "smplx_joint_img": joint_img + 0.01, "joint_cam": torch.randn(batch, joints, 3),
        "smplx_joint_cam": torch.randn(batch, joints, 3), "smplx_pose": torch.randn(batch, 159),
        "smplx_shape": torch.randn(batch, 10), "smplx_expr": torch.randn(batch, 10),
    }  # fmt: skip
    meta = {
        "joint_valid": torch.ones(batch, joints, 1), "joint_trunc": torch.ones(batch, joints, 1),
        "smplx_joint_valid": torch.ones(batch, joints, 1), "smplx_joint_trunc": torch.ones(batch, joints, 1),
        "smplx_pose_valid": torch.ones(batch, 159), "smplx_shape_valid": torch.ones(batch),
        "smplx_expr_valid": torch.ones(batch), "is_3D": torch.ones(batch),
    }  # fmt: skip
    box = torch.tensor([[2.0, 2.0, 4.0, 4.0]]).repeat(batch, 1)  # xyxy body-heatmap units
    outputs = {"lhand_bbox_hm": box, "rhand_bbox_hm": box.clone()}
    for part in ("lhand", "rhand", "face"):
        targets[f"{part}_bbox_center"], targets[f"{part}_bbox_size"] = torch.rand(batch, 2), torch.rand(batch, 2)
        meta[f"{part}_bbox_valid"] = torch.ones(batch)
        outputs[f"{part}_bbox_center"] = targets[f"{part}_bbox_center"].clone()
        outputs[f"{part}_bbox_size"] = targets[f"{part}_bbox_size"].clone()
    pos = joint_img[:, _POS_IDX].clone()  # (B, 65, 3)
    smplx_pos = targets["smplx_joint_img"][:, _POS_IDX].clone()
    for part in ("lhand", "rhand"):
        index = list(joint_sets.POS_JOINTS.parts[part])
        pos[:, index], _ = to_hand_box_space(pos[:, index], torch.ones(batch, 20, 1), box, HM)
        smplx_pos[:, index], _ = to_hand_box_space(smplx_pos[:, index], torch.ones(batch, 20, 1), box, HM)
    outputs |= {
        "smplx_pose": targets["smplx_pose"].clone(), "smplx_shape": targets["smplx_shape"].clone(),
        "smplx_expr": targets["smplx_expr"].clone(), "joint_cam": targets["joint_cam"].clone(),
        "joint_proj": joint_img[..., :2].clone(), "joint_img": pos,
    }  # fmt: skip
    return outputs, targets, meta


@pytest.mark.parametrize("pose_loss", ["axis_angle", "rotmat"])
def test_each_term_is_zero_at_its_target(pose_loss: str) -> None:
    outputs, targets, meta = _random_case()
    cfg = LossConfig(pose_loss=pose_loss)
    smplx_terms = ("smplx_joint_cam", "smplx_joint_img")  # their targets differ from the dataset ones here
    losses = compute_losses(outputs, targets, meta, cfg)
    assert tuple(losses) == LOSS_TERMS
    for name in LOSS_TERMS:
        if name not in smplx_terms:
            assert losses[name].item() == pytest.approx(0.0, abs=1e-6), name
    outputs["joint_cam"] = targets["smplx_joint_cam"].clone()
    outputs["joint_img"][:, list(joint_sets.POS_JOINTS.parts["body"])] = targets["smplx_joint_img"][:, :25]
    meta["smplx_joint_trunc"][:, 25:65] = 0  # hands: the smplx targets sit 0.01 off, mask them
    losses = compute_losses(outputs, targets, meta, cfg)
    for name in smplx_terms:
        assert losses[name].item() == pytest.approx(0.0, abs=1e-6), name


def test_masked_entries_do_not_contribute() -> None:
    outputs, targets, meta = _random_case()
    for key in ("joint_valid", "smplx_joint_valid", "joint_trunc", "smplx_joint_trunc"):
        meta[key][:, ::3] = 0
    meta["smplx_pose_valid"][:, 3:9] = 0
    meta["smplx_expr_valid"][0] = meta["smplx_shape_valid"][1] = meta["rhand_bbox_valid"][0] = 0
    meta["lhand_bbox_valid"][1] = meta["face_bbox_valid"][0] = 0
    meta["is_3D"][1] = meta["smplx_joint_valid"][1] = meta["smplx_joint_trunc"][1] = 0
    before = compute_losses(outputs, targets, meta, LossConfig())
    noisy = {k: v.clone() for k, v in outputs.items()}
    noisy["joint_cam"][:, ::3] += 5.0
    noisy["joint_cam"][1] += 5.0  # is_3D = 0: dataset 3D joints do not supervise this sample
    noisy["joint_proj"][:, ::3] += 5.0
    noisy["smplx_pose"][:, 3:9] += 5.0
    noisy["smplx_expr"][0] += 5.0
    noisy["smplx_shape"][1] += 5.0
    noisy["rhand_bbox_center"][0] += 5.0
    noisy["lhand_bbox_size"][1] += 5.0
    noisy["face_bbox_center"][0] += 5.0
    noisy["joint_img"][:, ::3] += 5.0  # the 65 heatmap joints are the first 65 of the 137
    noisy["joint_img"][1, 1::3, 2] += 5.0  # depth of the 2D-only sample (smplx_joint_trunc is 0 there)
    noisy_targets = {k: v.clone() for k, v in targets.items()}
    noisy_targets["smplx_joint_cam"][:, ::3] += 5.0
    after = compute_losses(noisy, noisy_targets, meta, LossConfig())
    for name in LOSS_TERMS:
        assert after[name].item() == pytest.approx(before[name].item(), abs=1e-6), name
    noisy["joint_img"][0, 1, 2] += 5.0  # an unmasked depth: seen
    assert compute_losses(noisy, noisy_targets, meta, LossConfig())["joint_img"] > after["joint_img"]


def test_weights_scale_the_terms_and_rotmat_loss_ignores_2pi() -> None:
    outputs, targets, meta = _random_case()
    outputs["smplx_shape"] = outputs["smplx_shape"] + 1.0
    base = compute_losses(outputs, targets, meta, LossConfig())
    weighted = compute_losses(outputs, targets, meta, LossConfig(weights=LossWeights(smplx_shape=3.0, joint_img=0.0)))
    assert weighted["smplx_shape"].item() == pytest.approx(3 * base["smplx_shape"].item())
    assert weighted["joint_img"].item() == 0.0
    # The same rotations written with 2*pi added to the angle: axis-angle L1 sees a difference, matrices do not.
    pose = targets["smplx_pose"].unflatten(-1, (-1, 3))
    twin = pose * (1 + 2 * torch.pi / pose.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(axis_angle_to_rotmat(twin), axis_angle_to_rotmat(pose), atol=1e-4, rtol=0)
    outputs["smplx_pose"] = twin.flatten(1)
    assert compute_losses(outputs, targets, meta, LossConfig())["smplx_pose"] > 1
    assert compute_losses(outputs, targets, meta, LossConfig(pose_loss="rotmat"))["smplx_pose"] < 1e-4
    assert torch.equal(mirror_axis_angle(mirror_axis_angle(pose)), pose)


def test_hand_box_space_round_trip_and_truncation() -> None:
    box = torch.tensor([[1.0, 2.0, 3.0, 6.0]])  # 2 x 4 cells of the body heatmap
    joints = torch.tensor([[[2.0, 4.0, 4.0], [1.0, 2.0, 0.0], [3.0, 3.0, 1.0], [0.5, 3.0, 1.0]]])
    hand, trunc = to_hand_box_space(joints, torch.ones(1, 4, 1), box, HeatmapShapes((8, 8, 6), (16, 8, 8)))
    torch.testing.assert_close(hand[0, 0], torch.tensor([4.0, 4.0, 8.0]))  # the box centre, z x 16/8
    torch.testing.assert_close(hand[0, 1], torch.tensor([0.0, 0.0, 0.0]))  # the box corner
    assert trunc[0, :, 0].tolist() == [1.0, 1.0, 0.0, 0.0]  # x = 8 is outside [0, 8); x < 0 too
    back = from_hand_box_space(hand, box, HeatmapShapes((8, 8, 6), (16, 8, 8)))
    torch.testing.assert_close(back, joints)


def test_align_part_translation_hand_computed() -> None:
    pred = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [9.0, 9.0]]])
    target = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [0.0, 0.0]]])
    mask = torch.tensor([[[1.0], [1.0], [0.0]]])
    shifted = align_part_translation(pred, target, mask)  # mean offset over the valid two = (1, 2)
    torch.testing.assert_close(shifted, pred + torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(align_part_translation(pred, target, torch.zeros(1, 3, 1)), pred)
