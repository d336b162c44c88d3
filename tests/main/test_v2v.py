"""The V2V family's model (main/v2v_model.py): shapes, losses, decoders, the voxel-input path, augmentation seeding,
the global-heatmap variant, the optimizer choice and the registration; small grids (16^3 / 8^3) on the CPU.

Oracles: the contract's grid formula written out here (p = (g - G/2) / G * cube + ref), a numpy nearest-voxel
resampler, scipy's assignment, and hand-placed peaks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import data
import main.config
import main.model
from common.engine.acceleration import OPTIMIZERS, make_optimizer
from common.geometry.voxel import augmentation_matrices, depth_to_points, voxelize
from common.nets.v2v import V2VPoseNet
from data.hand_joints import match_unordered_joints
from data.MSRA.MSRA import MSRA_SKELETON
from main.config import ConfigError, load_config
from main.v2v_model import DECODERS, V2VModel, global_peaks, resample_volume, step_generator, volume_picture

GRID, OUT, CUBE = 16, 8, 200.0
SMALL = ["model.arch=v2v", f"v2v.grid_size={GRID}", f"v2v.output_size={OUT}", "v2v.width_multiplier=0.25",
         "v2v.num_joints=4"]  # fmt: skip
FX = FY = 60.0
CX, CY = 16.0, 12.0


def small_cfg(*overrides: str) -> main.config.Config:
    return load_config(None, [*SMALL, *overrides])


def plane_batch(batch: int = 2, seed: int = 0) -> tuple[dict, dict, dict]:
    """Depth maps of a tilted plane patch 300 mm away (32 x 24 pixels), reference point on it, 4 joints near it."""
    rng = np.random.default_rng(seed)
    depth = np.zeros((batch, 24, 32), np.float32)
    depth[:, 6:18, 8:24] = 300.0 + rng.uniform(-20, 20, (batch, 1, 1)) + np.arange(16)[None, None, :] * 2.0
    intrinsics = np.tile([FX, FY, CX, CY], (batch, 1)).astype(np.float32)
    ref = np.stack([np.zeros(batch), np.zeros(batch), depth[:, 12, 16]], axis=1).astype(np.float32)
    joints = ref[:, None, :] + rng.uniform(-60, 60, (batch, 4, 3)).astype(np.float32)
    inputs = {"depth_mm": torch.from_numpy(depth), "intrinsics": torch.from_numpy(intrinsics),
              "ref_point_mm": torch.from_numpy(ref), "cube_mm": torch.full((batch, 3), CUBE)}  # fmt: skip
    meta = {"aug_seed": torch.arange(batch, dtype=torch.int64) + 1000 * seed, "frame_index": torch.arange(batch)}
    return inputs, {"joints_mm": torch.from_numpy(joints)}, meta


def grid_to_mm(grid: np.ndarray, ref: np.ndarray, size: int) -> np.ndarray:
    """The contract's grid formula, inverted: p = (g - G / 2) / G * cube + ref."""
    return (grid - size / 2.0) / size * CUBE + ref


# --- shapes, losses, registration -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("output", "target", "loss_key"), [(OUT, "gaussian", "heatmap"), (GRID, "gaussian", "heatmap"),
                                                            (OUT, "integral", "integral")])  # fmt: skip
def test_train_loss_and_test_joints_shapes(output: int, target: str, loss_key: str) -> None:
    cfg = small_cfg(f"v2v.output_size={output}", f"v2v.target={target}")
    model = main.model.get_model(cfg, "train")
    assert isinstance(model, V2VPoseNet)
    inputs, targets, meta = plane_batch()
    losses = model(inputs, targets, meta, "train")
    assert list(losses) == [loss_key] and losses[loss_key].ndim == 0 and torch.isfinite(losses[loss_key])
    losses[loss_key].backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    model.eval()
    with torch.no_grad():
        out = model(inputs, mode="test")
    assert (
        list(out) == ["joints_mm"] and out["joints_mm"].shape == (2, 4, 3) and out["joints_mm"].dtype == torch.float32
    )
    # a prediction lies inside its cube (every decoder returns a position in the output grid)
    offset = (out["joints_mm"] - inputs["ref_point_mm"][:, None]).abs()
    assert (offset <= CUBE / 2).all()


def test_full_resolution_heatmaps_have_the_input_size() -> None:
    net = V2VPoseNet(1, 3, width_multiplier=0.25, full_resolution=True)
    assert net(torch.zeros(1, 1, GRID, GRID, GRID)).shape == (1, 3, GRID, GRID, GRID)
    assert V2VPoseNet(1, 3, width_multiplier=0.5).front_layers[0].block[0].out_channels == 8
    with pytest.raises(ValueError, match="width_multiplier"):
        V2VPoseNet(1, 3, width_multiplier=0.01)


def test_the_family_is_registered_with_its_configs_and_datasets() -> None:
    assert "v2v" in main.config.ARCHS and main.model.FAMILIES["v2v"].build_model is not None
    assert {"MSRA", "VoxelH5"} <= set(data.DATASETS)
    for overlay in main.model.FAMILIES["v2v"].default_configs:
        cfg = load_config(overlay)
        assert cfg.model.arch == "v2v" and cfg.v2v.output_size in (cfg.v2v.grid_size // 2, cfg.v2v.grid_size)
    upstream = load_config("v2v_msra")
    assert (upstream.train.optimizer, upstream.train.lr, upstream.train.train_batch_size) == ("rmsprop", 2.5e-4, 8)
    assert (upstream.v2v.grid_size, upstream.v2v.output_size, upstream.v2v.cube_mm) == (88, 44, (200.0,) * 3)
    assert load_config("v2v_msra_integral").v2v.target == "integral"


@pytest.mark.parametrize(("override", "key"), [("v2v.output_size=12", "v2v.output_size"),
                                               ("v2v.grid_size=20", "v2v.grid_size"),
                                               ("v2v.decoder=mean", "v2v.decoder"), ("v2v.target=l2", "v2v.target"),
                                               ("v2v.aug_scale=[1.2,0.8]", "v2v.aug_scale"),
                                               ("data.msra_test_subject=9", "data.msra_test_subject"),
                                               ("train.optimizer=sgd", "train.optimizer")])  # fmt: skip
def test_bad_settings_name_their_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        small_cfg(override)


def test_port_module_names() -> None:
    names = set(main.model.get_model(small_cfg(), "train").state_dict())
    assert {"front_layers.0.block.0.weight", "encoder_decoder.skip_res1.res_branch.0.weight",
            "back_layers.0.res_branch.0.weight", "output_layer.weight"} <= names  # fmt: skip


# --- decoders -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("decoder", sorted(DECODERS))
def test_each_decoder_maps_a_peak_to_its_mm_position(decoder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The network's output replaced by sharp peaks at known voxels: every decoder returns their centres, in mm."""
    cfg = small_cfg(f"v2v.decoder={decoder}")
    model = main.model.get_model(cfg, "test").eval()
    peaks = np.array([[1, 2, 3], [4, 4, 4], [6, 0, 7], [2, 5, 1]])  # (J, 3) output voxel indices (x, y, z)
    centres = np.arange(OUT) + 0.5
    grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), axis=-1)  # (S, S, S, 3)
    logits = -40.0 * ((grid[None] - (peaks[:, None, None, None] + 0.5)) ** 2).sum(-1)  # (J, S, S, S) log-Gaussians
    monkeypatch.setattr(
        V2VPoseNet, "forward", lambda self, voxels: torch.from_numpy(logits).float()[None].repeat(2, 1, 1, 1, 1)
    )
    inputs, _, _ = plane_batch()
    with torch.no_grad():
        joints_mm = model(inputs, mode="test")["joints_mm"].numpy()
    expected = grid_to_mm((peaks + 0.5) * GRID / OUT, inputs["ref_point_mm"].numpy()[:, None, :], GRID)
    np.testing.assert_allclose(joints_mm, expected, atol=1e-3)


# --- the voxel-input path and augmentation ------------------------------------------------------------------------
def reference_resample(volume: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Per output voxel: its centre through the inverse transform, floored, looked up (0 outside)."""
    size = volume.shape[0]
    inverse = np.linalg.inv(matrix)
    out = np.zeros_like(volume)
    for index in np.ndindex(volume.shape):
        source = np.floor(inverse[:3, :3] @ (np.asarray(index) + 0.5) + inverse[:3, 3]).astype(int)
        if ((source >= 0) & (source < size)).all():
            out[index] = volume[tuple(source)]
    return out


def test_resample_volume_equals_the_per_voxel_reference() -> None:
    rng = np.random.default_rng(3)
    volumes = (rng.random((2, 1, 8, 8, 8)) > 0.7).astype(np.float32)
    matrices = augmentation_matrices(2, torch.Generator().manual_seed(5), grid_size=8, translation_voxels=2.0)
    moved = resample_volume(torch.from_numpy(volumes), matrices).numpy()
    for sample in range(2):
        np.testing.assert_array_equal(
            moved[sample, 0], reference_resample(volumes[sample, 0], matrices[sample].double().numpy())
        )
    shift = torch.eye(4).repeat(1, 1, 1)
    shift[0, :3, 3] = torch.tensor([1.0, 0.0, 2.0])  # whole voxels: the volume rolls (and empties the entering faces)
    rolled = resample_volume(torch.from_numpy(volumes[:1]), shift).numpy()[0, 0]
    np.testing.assert_array_equal(rolled[1:, :, 2:], volumes[0, 0, :-1, :, :-2])
    assert not rolled[0].any() and not rolled[:, :, :2].any()


def test_voxel_input_gives_the_depth_inputs_predictions() -> None:
    cfg = small_cfg("v2v.decoder=soft_argmax")
    model = main.model.get_model(cfg, "train").eval()
    inputs, _, _ = plane_batch()
    points, valid = depth_to_points(inputs["depth_mm"], inputs["intrinsics"])
    voxels = voxelize(points, valid, inputs["ref_point_mm"], inputs["cube_mm"], GRID)[:, 0] > 0.5  # (B, G, G, G) bool
    assert voxels.any()
    as_voxels = {"voxels": voxels, "ref_point_mm": inputs["ref_point_mm"], "cube_mm": inputs["cube_mm"]}
    with torch.no_grad():
        torch.testing.assert_close(model(as_voxels, mode="test")["joints_mm"], model(inputs, mode="test")["joints_mm"])
    with pytest.raises(ValueError, match="grid_size"):
        model({**as_voxels, "voxels": voxels[:, :8, :8, :8]}, mode="test")


def test_augmentation_depends_on_the_batch_seeds_and_moves_joints_with_points(monkeypatch: pytest.MonkeyPatch) -> None:
    model = main.model.get_model(small_cfg(), "train")
    inputs, targets, meta = plane_batch()
    first = model.draw_transform(inputs, meta)
    torch.testing.assert_close(first, model.draw_transform(inputs, meta))  # the same seeds, the same transforms
    changed = {**meta, "aug_seed": meta["aug_seed"] + torch.tensor([0, 1])}
    assert not torch.allclose(first, model.draw_transform(inputs, changed))  # every sample's seed counts
    assert step_generator(None) is None
    # The loss sees the voxels and the joints under one transform: a joint placed on a depth pixel's point lands
    # in an occupied voxel of the augmented grid.
    seen = {}
    monkeypatch.setattr(
        V2VModel, "loss", lambda self, heatmaps, joints_out: seen.update(joints=joints_out) or {"x": heatmaps.sum()}
    )
    monkeypatch.setattr(V2VPoseNet, "forward", lambda self, voxels: seen.update(voxels=voxels) or voxels)
    points, valid = depth_to_points(inputs["depth_mm"], inputs["intrinsics"])
    on_surface = points[:, valid[0].nonzero()[::37, 0]][:, :4]  # (B, 4, 3) points of the depth maps
    model({**inputs}, {"joints_mm": on_surface}, meta, "train")
    index = np.floor(seen["joints"].numpy() * GRID / OUT).astype(int)  # output grid -> input grid voxels
    for sample in range(2):
        inside = ((index[sample] >= 0) & (index[sample] < GRID)).all(-1)
        assert inside.any()
        for x, y, z in index[sample][inside]:
            assert seen["voxels"][sample, 0, x, y, z] == 1.0


def test_loss_decreases_on_a_tiny_batch() -> None:
    torch.manual_seed(0)
    model = main.model.get_model(small_cfg("v2v.augment=false"), "train")
    inputs, targets, meta = plane_batch()
    optimizer = make_optimizer(model.parameters(), 1e-3, "cpu")
    history = []
    for _ in range(30):
        loss = model(inputs, targets, meta, "train")["heatmap"]
        history.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert history[-1] < 0.7 * history[0], history[::5]


# --- global heatmap -------------------------------------------------------------------------------------------------
def test_global_peaks_are_the_strongest_local_maxima_first() -> None:
    volume = torch.zeros(1, OUT, OUT, OUT)
    volume[0, 1, 2, 3], volume[0, 6, 6, 1], volume[0, 3, 0, 7] = 0.5, 0.9, 0.7
    volume[0, 6, 5, 1] = 0.8  # next to the strongest: not a local maximum
    np.testing.assert_allclose(global_peaks(volume, 3)[0].numpy(), [[6.5, 6.5, 1.5], [3.5, 0.5, 7.5], [1.5, 2.5, 3.5]])


def test_global_heatmap_model_and_matched_evaluation() -> None:
    cfg = small_cfg("v2v.global_heatmap=true")
    model = main.model.get_model(cfg, "train")
    inputs, targets, meta = plane_batch()
    assert model.output_layer.out_channels == 1 and torch.isfinite(model(inputs, targets, meta, "train")["heatmap"])
    assert model.eval()(inputs, mode="test")["joints_mm"].shape == (2, 4, 3)
    gt = np.random.default_rng(0).normal(size=(5, 3)) * 30
    order = np.array([3, 0, 4, 1, 2])
    np.testing.assert_array_equal(match_unordered_joints(gt[order] + 0.1, gt), gt + 0.1)


# --- optimizer, picture -----------------------------------------------------------------------------------------------
def test_make_optimizer_builds_the_named_optimizer() -> None:
    params = [torch.nn.Parameter(torch.zeros(3))]
    rmsprop = make_optimizer(params, 2.5e-4, "cpu", "rmsprop")
    assert isinstance(rmsprop, torch.optim.RMSprop) and OPTIMIZERS == ("adam", "rmsprop")
    group = rmsprop.param_groups[0]
    assert (group["lr"], group["alpha"], group["eps"], group["momentum"], group["weight_decay"]) == (
        2.5e-4,
        0.99,
        1e-8,
        0,
        0,
    )
    assert isinstance(make_optimizer(params, 1e-3, "cpu"), torch.optim.Adam)
    with pytest.raises(ValueError, match="sgd"):
        make_optimizer(params, 1e-3, "cpu", "sgd")


def test_training_picture_draws_both_projections_per_sample() -> None:
    cfg = small_cfg()
    picture = volume_picture(load_config(None, ["model.arch=v2v", f"v2v.grid_size={GRID}", f"v2v.output_size={OUT}"]))
    assert picture.skeleton == MSRA_SKELETON and len(MSRA_SKELETON) == 20
    model = main.model.get_model(cfg, "train").eval()
    inputs, _, _ = plane_batch()
    with torch.no_grad():
        image = volume_picture(cfg).draw(model, inputs)
    zoom = 256 // GRID
    assert image.shape == (GRID * zoom, 2 * 2 * GRID * zoom, 3) and image.dtype == np.uint8 and image.any()
