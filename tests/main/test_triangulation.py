"""The triangulation family's networks (main/triangulation/): shapes, geometry against scenes built here, masked
views, losses against hand-computed values and per-sample loops, parameter groups, weights files, the config."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import Tensor

from common.engine.checkpoint import StateDictMismatchError
from common.engine.cli import UsageError
from common.nets import V2VEncoderDecoder
from main.config import ConfigError, load_config
from main.triangulation import get_triangulation_model, triangulation_param_groups, views_picture
from main.triangulation.backbone import PoseResNet, load_backbone_weights
from main.triangulation.losses import keypoints_l1, mse_smooth, volumetric_ce
from main.triangulation.model import AlgebraicTriangulationNet, normalized_view_weights

CROP = 64  # pixels: ResNet-18's stride-32 map is 2 x 2, the heatmaps 16 x 16
SMALL = [
    "triangulation.backbone_depth=18",
    "triangulation.num_joints=5",
    "triangulation.volume_size=8",
    "triangulation.volume_features=4",
    "triangulation.volume_net_channels=4",
    "triangulation.volume_net_levels=2",
    "triangulation.volume_net_max_channels=8",
]


def small_cfg(*overrides: str):
    return load_config(None, ["model.arch=triangulation", *SMALL, *overrides])


def look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) of an OpenCV camera (x right, y down, z forward) at `position` looking at `target`."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack((right, down, forward))  # rows: camera axes in world coordinates
    return rotation, -rotation @ position


def ring_projections(views: int, center_mm: np.ndarray, radius_mm: float = 3000.0, focal_px: float = 60.0,
                     crop_px: int = CROP) -> np.ndarray:  # fmt: skip
    """(V, 3, 4) world mm -> crop pixels of cameras on a horizontal ring (z up) around `center_mm`."""
    intrinsics = np.array([[focal_px, 0.0, crop_px / 2], [0.0, focal_px, crop_px / 2], [0.0, 0.0, 1.0]])
    matrices = []
    for view in range(views):
        angle = 2.0 * math.pi * view / views + 0.3
        position = center_mm + np.array([radius_mm * math.cos(angle), radius_mm * math.sin(angle), 400.0])
        rotation, translation = look_at(position, center_mm, np.array([0.0, 0.0, 1.0]))
        matrices.append(intrinsics @ np.concatenate((rotation, translation[:, None]), axis=1))
    return np.stack(matrices)


def project(proj: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(V, 3, 4), (J, 3) -> (V, J, 2) pixels, numpy."""
    uvw = np.einsum("vrc,jc->vjr", proj, np.concatenate((points, np.ones((len(points), 1))), axis=1))
    return uvw[..., :2] / uvw[..., 2:]


def scene_batch(batch: int = 2, views: int = 3, joints: int = 5, seed: int = 0, crop: int = CROP,
                focal_px: float = 60.0, radius_mm: float = 3000.0):  # fmt: skip
    """Random images, ring cameras and joints within 500 mm of a centre near (0, 0, 1000) mm."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-300, 300, size=(batch, 3)) + np.array([0.0, 0.0, 1000.0])
    joints_mm = centers[:, None] + rng.uniform(-500, 500, size=(batch, joints, 3))
    proj = np.stack([ring_projections(views, center, radius_mm, focal_px, crop) for center in centers])
    inputs = {
        "images": torch.from_numpy(rng.normal(size=(batch, views, 3, crop, crop)).astype(np.float32)),
        "view_mask": torch.ones(batch, views, dtype=torch.bool),
    }
    targets = {"joints_world_mm": torch.from_numpy(joints_mm).float(), "joints_valid": torch.ones(batch, joints)}
    meta_info = {"proj_matrices": torch.from_numpy(proj).float(),
                 "cuboid_center_world_mm": torch.from_numpy(centers).float()}  # fmt: skip
    return inputs, targets, meta_info


def with_padding_view(inputs, meta_info, rng_seed: int = 3):
    """The batch with one more view per sample: a random image and matrix, masked out."""
    generator = torch.Generator().manual_seed(rng_seed)
    images, mask = inputs["images"], inputs["view_mask"]
    extra = torch.randn(images.shape[0], 1, *images.shape[2:], generator=generator)
    padded_inputs = {"images": torch.cat((images, extra), 1),
                     "view_mask": torch.cat((mask, torch.zeros(mask.shape[0], 1, dtype=torch.bool)), 1)}  # fmt: skip
    proj = meta_info["proj_matrices"]
    padded_meta = dict(meta_info, proj_matrices=torch.cat((proj, torch.randn(proj.shape[0], 1, 3, 4) * 100), 1))
    return padded_inputs, padded_meta


# Config ---------------------------------------------------------------------------------------------------------------


def test_config_defaults_are_the_seeds_values() -> None:
    t = load_config(None).triangulation
    assert (t.method, t.backbone_depth, t.num_joints, t.heatmap_multiplier) == ("algebraic", 152, 17, 100.0)
    assert (t.cuboid_side_mm, t.volume_size, t.volume_features, t.volume_aggregation) == (2500.0, 64, 32, "softmax")
    assert (t.volume_net_channels, t.volume_net_levels, t.volume_net_max_channels) == (32, 5, 128)
    assert (t.keypoints_scale, t.mse_smooth_threshold, t.volumetric_ce_weight) == (0.1, 400.0, 0.01)
    assert (t.ransac_threshold_px, t.backbone_lr, t.volume_net_lr) == (30.0, 1e-4, 1e-3)  # Euclidean: the seed halves


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("triangulation.method=linear", "triangulation.method"),
        ("triangulation.backbone_depth=20", "triangulation.backbone_depth"),
        ("triangulation.volume_aggregation=mean", "triangulation.volume_aggregation"),
        ("triangulation.volume_size=48", "triangulation.volume_size"),  # 48 is not a multiple of 2 ** 5
        ("triangulation.vertical_axis=3", "triangulation.vertical_axis"),
        ("triangulation.cuboid_side_mm=0", "triangulation.cuboid_side_mm"),
        ("triangulation.volumetric_ce_weight=-1", "triangulation.volumetric_ce_weight"),
    ],
)
def test_config_rejects_bad_values_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


# Backbone and V2V -----------------------------------------------------------------------------------------------------


def test_pose_resnet_gives_stride_4_heatmaps_and_sigmoid_confidences() -> None:
    net = PoseResNet(18, num_joints=5, alg_confidences=True, vol_confidences=4).eval()
    trunk, features = net(torch.randn(3, 3, CROP, CROP))
    assert trunk.shape == (3, 512, 2, 2) and features.shape == (3, 256, 16, 16)
    assert net.final_layer(features).shape == (3, 5, 16, 16)
    for head, size in ((net.alg_confidences, 5), (net.vol_confidences, 4)):
        confidences = head(trunk)
        assert confidences.shape == (3, size) and bool(((confidences > 0) & (confidences < 1)).all())


def test_v2v_encoder_decoder_levels_keep_the_two_level_names_and_cap_the_widths() -> None:
    two = V2VEncoderDecoder(4)
    names = {name.split(".")[0] for name, _ in two.named_parameters()}
    assert names == {"encoder_res1", "encoder_res2", "mid_res", "decoder_res2", "decoder_upsample2", "decoder_res1",
                     "decoder_upsample1", "skip_res1", "skip_res2"}  # fmt: skip
    five = V2VEncoderDecoder(4, levels=5, max_channels=16).eval()
    widths = [five.get_submodule(f"skip_res{k}").res_branch[0].out_channels for k in range(1, 6)]
    assert widths == [4, 8, 16, 16, 16]  # 4 * 2**k capped at 16, as the seed's 32/64/128/128/128 at 32 and 128
    x = torch.randn(1, 4, 32, 32, 32)
    assert five(x).shape == x.shape


# Geometry of the networks ---------------------------------------------------------------------------------------------


def test_confidences_are_normalised_over_valid_views_only() -> None:
    confidences = torch.tensor([[[0.2, 0.9], [0.6, 0.1], [0.5, 0.5]]])  # (1, 3 views, 2 joints)
    mask = torch.tensor([[True, True, False]])
    weights = normalized_view_weights(confidences, mask, 2)
    expected = torch.tensor([[[0.25, 0.9], [0.75, 0.1], [0.0, 0.0]]]) + torch.tensor([[[1e-5], [1e-5], [0.0]]])
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(normalized_view_weights(None, mask, 2), torch.tensor([[[1.0, 1.0], [1.0, 1.0], [0, 0]]]))


class ExactDetections(AlgebraicTriangulationNet):
    """The algebraic network with its 2D detections replaced by the exact projections (in heatmap cells)."""

    exact_cells: Tensor

    def detect_2d(self, images, view_mask):
        _, trunk, index, heatmap_hw = super().detect_2d(images, view_mask)
        return self.exact_cells, trunk, index, heatmap_hw


def test_algebraic_network_triangulates_exact_detections_to_the_scene_joints() -> None:
    cfg = small_cfg()
    model = ExactDetections(cfg.triangulation).eval()
    inputs, targets, meta_info = scene_batch()
    cameras, joints = meta_info["proj_matrices"].double().numpy(), targets["joints_world_mm"].double().numpy()
    pixels = np.stack([project(p, j) for p, j in zip(cameras, joints, strict=True)])  # (B, V, J, 2)
    model.exact_cells = torch.from_numpy(pixels * (16 / CROP)).float()  # 16 x 16 heatmaps of a 64-pixel crop
    with torch.no_grad():
        out = model(inputs, targets, meta_info, "test")
    torch.testing.assert_close(out["joints_world_mm"], targets["joints_world_mm"], atol=0.5, rtol=0)
    torch.testing.assert_close(out["joints_2d_px"], torch.from_numpy(pixels).float(), atol=1e-3, rtol=0)


@pytest.mark.parametrize("method", ["algebraic", "volumetric", "ransac"])
def test_outputs_have_the_contracts_shapes(method: str) -> None:
    torch.manual_seed(0)
    model = get_triangulation_model(small_cfg(f"triangulation.method={method}"), "test").eval()
    inputs, targets, meta_info = scene_batch(batch=2, views=3, joints=5)
    with torch.no_grad():
        out = model(inputs, targets, meta_info, "test")
    assert out["joints_world_mm"].shape == (2, 5, 3) and out["joints_world_mm"].dtype == torch.float32
    assert out["joints_2d_px"].shape == (2, 3, 5, 2)
    assert bool(torch.isfinite(out["joints_world_mm"]).all())
    expected_keys = {"joints_world_mm", "joints_2d_px"} | ({"joint_confidences"} if method == "algebraic" else set())
    assert set(out) == expected_keys  # predictions only: no echoed input or ground truth
    if method == "algebraic":  # the DLT weights: normalised over the views, + 1e-5 each
        torch.testing.assert_close(out["joint_confidences"].sum(1), torch.full((2, 5), 1.0 + 3e-5))


@pytest.mark.parametrize("method", ["algebraic", "volumetric"])
def test_a_masked_view_changes_nothing_in_test_or_train_mode(method: str) -> None:
    torch.manual_seed(0)
    model = get_triangulation_model(small_cfg(f"triangulation.method={method}",
                                              "triangulation.rotate_cuboid_in_training=false"), "train")  # fmt: skip
    inputs, targets, meta_info = scene_batch(batch=2, views=3)
    padded_inputs, padded_meta = with_padding_view(inputs, meta_info)
    model.eval()
    with torch.no_grad():
        plain = model(inputs, targets, meta_info, "test")
        padded = model(padded_inputs, targets, padded_meta, "test")
    torch.testing.assert_close(padded["joints_world_mm"], plain["joints_world_mm"], atol=1e-2, rtol=1e-4)
    assert bool((padded["joints_2d_px"][:, 3] == 0).all())
    model.train()  # BatchNorm batch statistics: the padding view must not enter them either
    with torch.no_grad():
        plain_loss = sum(model(inputs, targets, meta_info, "train").values())
        padded_loss = sum(model(padded_inputs, targets, padded_meta, "train").values())
    torch.testing.assert_close(padded_loss, plain_loss, atol=1e-4, rtol=1e-4)


def test_volumetric_test_mode_is_deterministic_and_training_rotates_the_cuboid() -> None:
    torch.manual_seed(0)
    model = get_triangulation_model(small_cfg("triangulation.method=volumetric"), "train")
    inputs, targets, meta_info = scene_batch(batch=1, views=2)
    model.eval()
    with torch.no_grad():
        first, second = (model(inputs, targets, meta_info, "test")["joints_world_mm"] for _ in range(2))
        torch.testing.assert_close(first, second)
        # in train mode (BN in eval here) the loss differs between calls only through the random rotation
        losses = [model(inputs, targets, meta_info, "train")["joints_l1"] for _ in range(2)]
    assert losses[0] != losses[1]


# Losses -------------------------------------------------------------------------------------------------------------


def test_mse_smooth_matches_a_hand_computed_case() -> None:
    pred = torch.tensor([[[0.0, 0.0, 0.0], [30.0, 0.0, 0.0]]])
    target = torch.tensor([[[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]]])
    valid = torch.tensor([[1.0, 1.0]])
    # squared errors 1, 4, 0 and 900 (> 400: 900 ** 0.1 * 400 ** 0.9), 0, 0; / (3 * 2 valid joints)
    expected = (1 + 4 + 900**0.1 * 400**0.9) / 6
    assert mse_smooth(pred, target, valid, 400.0).item() == pytest.approx(expected, rel=1e-6)
    assert mse_smooth(pred, target, torch.tensor([[1.0, 0.0]]), 400.0).item() == pytest.approx(5 / 3, rel=1e-6)


def test_keypoints_l1_matches_a_hand_computed_case() -> None:
    pred = torch.tensor([[[1.0, -2.0, 3.0], [5.0, 5.0, 5.0]]])
    valid = torch.tensor([[1.0, 0.0]])
    assert keypoints_l1(pred, torch.zeros_like(pred), valid).item() == pytest.approx(6 / 3)


def test_volumetric_ce_matches_the_seeds_per_joint_loop() -> None:
    generator = torch.Generator().manual_seed(0)
    batch, joints, size = 2, 3, 4
    probabilities = torch.softmax(torch.randn(batch, joints, size**3, generator=generator), -1)
    probabilities = probabilities.view(batch, joints, size, size, size)
    grid = torch.randn(batch, size, size, size, 3, generator=generator) * 100
    target = torch.randn(batch, joints, 3, generator=generator) * 100
    valid = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    total, count = 0.0, 0
    for b in range(batch):  # the seed's loop: nearest voxel by Euclidean distance, -log(p + 1e-6)
        for j in range(joints):
            if valid[b, j] == 0:
                continue
            distances = ((grid[b] - target[b, j]) ** 2).sum(-1).sqrt()
            index = np.unravel_index(int(distances.argmin()), (size, size, size))
            total += -math.log(float(probabilities[b, j][index]) + 1e-6)
            count += 1
    assert volumetric_ce(probabilities, grid, target, valid).item() == pytest.approx(total / count, rel=1e-5)


@pytest.mark.parametrize(("method", "aggregation"), [("algebraic", "softmax"), ("volumetric", "softmax"),
                                                     ("volumetric", "conf_norm")])  # fmt: skip
def test_loss_is_finite_and_every_trainable_parameter_gets_a_finite_gradient(method: str, aggregation: str) -> None:
    torch.manual_seed(0)
    cfg = small_cfg(f"triangulation.method={method}", f"triangulation.volume_aggregation={aggregation}")
    model = get_triangulation_model(cfg, "train").train()
    inputs, targets, meta_info = scene_batch(batch=2, views=3)
    losses = model(inputs, targets, meta_info, "train")
    assert set(losses) == ({"joints_mse_smooth"} if method == "algebraic" else {"joints_l1", "volumetric_ce"})
    total = sum(losses.values())
    assert bool(torch.isfinite(total)) and total.item() > 0
    total.backward()
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            assert method == "volumetric" and name.startswith("backbone.final_layer.")
            continue
        assert parameter.grad is not None, name
        assert bool(torch.isfinite(parameter.grad).all()), name
    # the gradient reaches the first convolution through the triangulation (or the unprojection)
    assert model.backbone.conv1.weight.grad.abs().sum() > 0


def test_param_groups_give_the_backbone_and_the_volume_part_their_rates() -> None:
    cfg = small_cfg("triangulation.method=volumetric", "triangulation.volume_aggregation=conf",
                    "triangulation.backbone_lr=2e-4", "triangulation.volume_net_lr=3e-3")  # fmt: skip
    model = get_triangulation_model(cfg, "train")
    groups = triangulation_param_groups(model, cfg)
    assert [group["lr"] for group in groups] == [2e-4, 3e-3]
    by_id = {id(p): name for name, p in model.named_parameters()}
    backbone_names = {by_id[id(p)] for p in groups[0]["params"]}
    volume_names = {by_id[id(p)] for p in groups[1]["params"]}
    assert all(name.startswith("backbone.") for name in backbone_names)
    assert any(name.startswith("backbone.vol_confidences.") for name in backbone_names)
    assert {name.split(".")[0] for name in volume_names} == {"process_features", "volume_net"}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert backbone_names | volume_names == trainable and not backbone_names & volume_names
    assert not any(name.startswith("backbone.final_layer.") for name in trainable)  # frozen, as the seed
    optimizer = torch.optim.Adam(groups)
    assert [group["lr"] for group in optimizer.param_groups] == [2e-4, 3e-3]
    algebraic = small_cfg("triangulation.backbone_lr=1e-5")
    assert [g["lr"] for g in triangulation_param_groups(get_triangulation_model(algebraic, "train"), algebraic)] == [
        1e-5
    ]


def test_ransac_refuses_to_train() -> None:
    cfg = small_cfg("triangulation.method=ransac")
    with pytest.raises(UsageError, match="ransac"):
        get_triangulation_model(cfg, "train")
    model = get_triangulation_model(cfg, "test")
    inputs, targets, meta_info = scene_batch(batch=1, views=3)
    with pytest.raises(UsageError, match="nothing to train"):
        model(inputs, targets, meta_info, "train")


def test_ransac_loads_an_algebraic_networks_weights_strictly() -> None:
    algebraic = get_triangulation_model(small_cfg(), "train")
    ransac = get_triangulation_model(small_cfg("triangulation.method=ransac"), "test")
    ransac.load_state_dict(algebraic.state_dict(), strict=True)


# Weights files ------------------------------------------------------------------------------------------------------


def test_backbone_weights_load_from_an_imagenet_file_and_a_pose_resnet_file(tmp_path: Path) -> None:
    imagenet = torchvision.models.resnet18(weights=None).state_dict()  # an ImageNet-layout file (random values)
    torch.save(imagenet, tmp_path / "resnet18.pth")
    net = PoseResNet(18, num_joints=5)
    assert load_backbone_weights(net, tmp_path / "resnet18.pth") == ["trunk"]
    torch.testing.assert_close(net.layer3[1].conv2.weight, imagenet["layer3.1.conv2.weight"])
    # a simple-baseline file with 4 joints, saved from DataParallel ('module.' prefix) inside a 'state_dict' entry
    source = PoseResNet(18, num_joints=4)
    torch.nn.init.normal_(source.final_layer.weight)
    pose_file = {"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}
    torch.save(pose_file, tmp_path / "pose_resnet.pth")
    before = net.final_layer.weight[4].clone()
    assert load_backbone_weights(net, tmp_path / "pose_resnet.pth") == ["trunk", "deconv_layers", "final_layer"]
    torch.testing.assert_close(net.final_layer.weight[:4], source.final_layer.weight)
    torch.testing.assert_close(net.final_layer.weight[4], before)  # the fifth joint keeps its init
    torch.testing.assert_close(net.deconv_layers[0].weight, source.deconv_layers[0].weight)
    del imagenet["layer4.0.conv1.weight"]
    torch.save(imagenet, tmp_path / "broken.pth")
    with pytest.raises(StateDictMismatchError, match=r"layer4\.0\.conv1\.weight"):
        load_backbone_weights(net, tmp_path / "broken.pth")


def test_training_picture_tiles_views_per_sample() -> None:
    cfg = small_cfg()
    model = get_triangulation_model(cfg, "train").eval()
    inputs, _, _ = scene_batch(batch=2, views=3)
    inputs["view_mask"][1, 2] = False
    with torch.no_grad():
        picture = views_picture(cfg).draw(model, inputs)
    assert picture.shape == (2 * CROP, 3 * CROP, 3) and picture.dtype == np.uint8
    assert bool((picture[CROP:, 2 * CROP :] == 128).all())  # the missing view is a grey tile


# Configs and tools ----------------------------------------------------------------------------------------------------

TRIANGULATION_CONFIGS = ("triangulation_h36m_alg", "triangulation_h36m_vol_softmax", "triangulation_h36m_ransac",
                         "triangulation_cmu_alg", "triangulation_cmu_vol_softmax", "synthetic_triangulation_alg",
                         "synthetic_triangulation_vol")  # fmt: skip


@pytest.mark.parametrize("name", TRIANGULATION_CONFIGS)
def test_configs_match_their_datasets_joints_and_vertical_axis(name: str) -> None:
    import data

    cfg = load_config(name)
    dataset = data.DATASETS[cfg.data.testset]
    assert cfg.model.arch == "triangulation" and cfg.data.trainset_3d == [cfg.data.testset]
    assert cfg.triangulation.num_joints == len(dataset.JOINT_NAMES)
    assert cfg.triangulation.vertical_axis == dataset.VERTICAL_AXIS
    if cfg.triangulation.method == "volumetric":  # the cuboids sit on the algebraic run of the same dataset
        for path in (cfg.multiview.pelvis_results_train, cfg.multiview.pelvis_results_test):
            assert path.endswith(f"/result/{cfg.data.testset}/results.pkl") and "_alg/pelvis_" in path


def test_visualiser_projects_as_opencv_with_the_lens_distortion() -> None:
    import cv2

    from tool.visualise_results import project_views

    rng = np.random.default_rng(0)
    rotation, translation = look_at(np.array([2500.0, -1500.0, 1200.0]), np.zeros(3), np.array([0.0, 0.0, 1.0]))
    intrinsics = np.array([[300.0, 0.0, 64.0], [0.0, 310.0, 60.0], [0.0, 0.0, 1.0]])
    dist = np.array([-0.3, 0.1, 0.002, -0.001, 0.01])
    points = rng.uniform(-400, 400, size=(6, 3))
    meta_info = {"camera_R": rotation[None], "camera_t": translation[None], "camera_K": intrinsics[None],
                 "camera_dist": np.stack([dist])}  # fmt: skip
    expected, _ = cv2.projectPoints(points, cv2.Rodrigues(rotation)[0], translation, intrinsics, dist)
    np.testing.assert_allclose(project_views(points, meta_info)[0], expected.reshape(-1, 2), atol=1e-6)


def test_benchmark_loops_compute_what_the_batched_steps_compute(capsys: pytest.CaptureFixture) -> None:
    from tool.benchmark_multiview import main as benchmark_main

    overrides = [*SMALL, "multiview.image_shape=[64,64]"]
    assert benchmark_main(["--views", "2", "3", "--batch", "2", "--warmup", "0", "--repeats", "1", *overrides]) == 0
    table = capsys.readouterr().out
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| algebraic") or
            line.startswith("| volumetric")]  # fmt: skip
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [("algebraic", "2"), ("algebraic", "3"),
                                                            ("volumetric", "2"), ("volumetric", "3")]  # fmt: skip
    for row in rows:  # the loop (the seed's way) and the batched step agree: DLT in mm, unprojection in features
        assert float(row[-1]) < (0.05 if row[0].strip() == "algebraic" else 1e-5), row
