"""The 'integral' family (main/integral_model.py, data/targets/integral.py): network, loss, targets, registration."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from common.engine.checkpoint import load_network_state
from common.geometry import soft_argmax_3d
from common.nets import full_precision
from common.utils.augmentation import AugParams
from common.utils.metrics import H36M_JOINTS
from data.record import Record
from data.targets.integral import INTEGRAL_JOINTS, THORAX_IDX, IntegralTargets
from main.config import ConfigError, load_config
from main.integral_model import get_integral_model, heatmap_to_joint_cam, skeleton_picture

# Small geometry: ResNet-18 on a 64x64 crop -> 2x2 features -> a 16^3 volume per joint.
SMALL = ["model.resnet_type=18", "model.input_img_shape=[64,64]", "model.output_hm_shape=[16,16,16]"]
NAMES = INTEGRAL_JOINTS.names


def small_cfg(*extra: str):
    return load_config("integral_h36m", [*SMALL, *extra])


def test_config_geometry_and_schedule() -> None:
    cfg = load_config("integral_h36m")
    assert cfg.model.arch == "integral" and cfg.model.input_img_shape == (256, 256)
    assert cfg.model.output_hm_shape == (64, 64, 64) and cfg.model.resnet_type == 50 and cfg.model.body_3d_size == 2
    assert (cfg.train.lr, cfg.train.lr_dec_epoch, cfg.train.end_epoch) == (1e-3, [15, 17], 20)
    assert cfg.data.trainset_3d == ["Human36M"] and cfg.data.trainset_2d == ["MPII"]
    assert cfg.data.testset == "Human36M"
    with pytest.raises(ConfigError, match="output_hm_shape"):  # 256 / 32 * 8 = 64, not 32
        load_config("integral_h36m", ["model.output_hm_shape=[64,32,32]"])


def test_forward_backward_finite_on_every_parameter() -> None:
    torch.manual_seed(0)
    model = get_integral_model(small_cfg(), "train")
    batch = 2
    img = torch.rand(batch, 3, 64, 64)
    targets = {"joint_img": torch.rand(batch, len(NAMES), 3) * 15}
    meta = {"joint_vis": torch.ones(batch, len(NAMES), 1), "is_3D": torch.tensor([1.0, 0.0])}
    losses = model({"img": img}, targets, meta, "train")
    assert set(losses) == {"joint_img"} and torch.isfinite(losses["joint_img"])
    losses["joint_img"].backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    model.eval()
    with torch.no_grad():
        out = model({"img": img}, mode="test")
    assert set(out) == {"joint_img", "joint_cam"}
    assert out["joint_img"].shape == out["joint_cam"].shape == (batch, len(NAMES), 3)
    assert torch.all(out["joint_cam"][:, 0] == 0)  # root-relative
    picture = skeleton_picture(small_cfg())
    with torch.no_grad():
        assert picture.draw(model, {"img": img}).shape == (64, 128, 3)


def test_upstream_module_names() -> None:
    keys = get_integral_model(small_cfg(), "test").state_dict()
    assert "backbone.conv1.weight" in keys and "head.final_layer.bias" in keys
    assert keys["head.final_layer.weight"].shape == (len(NAMES) * 16, 256, 1, 1)
    # upstream's Sequential: deconv, BN, ReLU three times
    deconv = [k for k in keys if k.startswith("head.deconv_layers.") and k.endswith(".weight")]
    assert deconv == [f"head.deconv_layers.{i}.weight" for i in (0, 1, 3, 4, 6, 7)]


def test_state_dict_equals_the_upstream_layout_and_a_prefixed_snapshot_loads() -> None:
    """integral_h36m (ResNet-50, 18 joints x 64 depth bins) against the layout of upstream's ResPoseNet
    (mks0601 main/model.py: `backbone` = torchvision ResNet-50 without fc, `head.deconv_layers` 3 x [deconv, BN, ReLU],
    `head.final_layer` 1x1 conv to 18 * 64), written in checkpoint_layouts/ from that code, not from ours."""
    tsv = Path(__file__).resolve().parent / "checkpoint_layouts" / "integral_h36m_resnet50_state_dict.tsv"
    rows = [line.split("\t") for line in tsv.read_text().splitlines()[1:]]
    expected = [(key, [int(n) for n in shape.strip("[]").split(",") if n.strip()], dtype) for key, shape, dtype in rows]
    model = get_integral_model(load_config("integral_h36m"), "test")
    state = model.state_dict()
    assert [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()] == expected
    snapshot = {f"module.{key}": torch.randn_like(value.float()).to(value.dtype) for key, value in state.items()}
    load_network_state(model, snapshot)  # upstream's DataParallel `module.` prefix, loaded strictly
    assert all(torch.equal(model.state_dict()[key.removeprefix("module.")], v) for key, v in snapshot.items())


@pytest.mark.parametrize("voxel", [(0, 0, 0), (63, 63, 63), (5, 40, 17), (31, 32, 33)])
def test_soft_argmax_of_a_one_hot_volume_is_the_voxel_centre_exactly(voxel: tuple[int, int, int]) -> None:
    """Voxel centres sit at integer heatmap coordinates (docs/conventions.md); (z, y, x) indexing."""
    logits = torch.zeros(1, 1, 64, 64, 64, dtype=torch.bfloat16)
    logits[(0, 0, *voxel)] = 1e4  # every other voxel's probability underflows to exactly 0
    coords, _ = soft_argmax_3d(full_precision(logits))
    z, y, x = voxel
    assert coords.dtype == torch.float32 and torch.equal(coords[0, 0], torch.tensor([x, y, z], dtype=torch.float32))


def test_joint_cam_reading_of_the_box() -> None:
    """joint_cam = ((x/W, y/H, z/D) - 0.5) * 2 m, minus the root: the volume's centre is the root's place."""
    joint_img = torch.zeros(1, len(NAMES), 3)
    joint_img[0, :] = 32.0  # all at the centre
    joint_img[0, 1] = torch.tensor([48.0, 16.0, 0.0])
    cam = heatmap_to_joint_cam(joint_img, (64, 64, 64), 2.0)
    torch.testing.assert_close(cam[0, 1], torch.tensor([0.5, -0.5, -1.0]))
    assert torch.all(cam[0, 2:] == 0) and torch.all(cam[0, 0] == 0)


def _synthetic_batch(batch: int, hm: int, input_px: int, seed: int = 0):
    """Random 3D skeletons (root-relative, metres) read into the volume independently of the builder: the crop is
    the 2 m box around the root, z = (z_rel / 2 + 0.5) * D; each joint is drawn as a bright square in the image."""
    rng = np.random.default_rng(seed)
    rel = rng.uniform(-0.7, 0.7, (batch, len(NAMES), 3))
    rel[:, 0] = 0.0
    joint_img = (rel / 2.0 + 0.5) * hm  # (B, J, 3) heatmap units
    img = np.zeros((batch, 3, input_px, input_px), np.float32)
    px = joint_img[..., :2] * input_px / hm
    for b in range(batch):
        for j, (x, y) in enumerate(px[b]):
            xi, yi = int(x), int(y)
            img[b, j % 3, max(yi - 1, 0) : yi + 2, max(xi - 1, 0) : xi + 2] = 0.3 + 0.7 * joint_img[b, j, 2] / hm
    vis = np.ones((batch, len(NAMES), 1), np.float32)
    is_3d = np.ones(batch, np.float32)
    return (torch.from_numpy(img), torch.from_numpy(joint_img.astype(np.float32)), torch.from_numpy(vis),
            torch.from_numpy(is_3d))  # fmt: skip


@pytest.mark.slow
def test_overfits_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model = get_integral_model(small_cfg(), "train")
    img, joint_img, vis, is_3d = _synthetic_batch(4, 16, 64)
    inputs, targets, meta = {"img": img}, {"joint_img": joint_img}, {"joint_vis": vis, "is_3D": is_3d}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    first, loss = None, None
    for _ in range(300):
        loss = model(inputs, targets, meta, "train")["joint_img"]
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.2 * first:  # a step count, not a clock: the result must not depend on the machine's load
            break
    final = loss.item()
    assert final < 0.2 * first, (first, final)


class _Dataset:
    """What the builder reads of a dataset: joint names and the split."""

    def __init__(self, names, is_train: bool) -> None:
        self.JOINT_NAMES, self.is_train = tuple(names), is_train


def _record(is_3d: bool = True) -> Record:
    count = len(H36M_JOINTS)
    xy = np.stack([100.0 + 10.0 * np.arange(count), 200.0 + 4.0 * np.arange(count)], axis=1)  # (17, 2)
    cam = np.zeros((count, 3))
    cam[:, 2] = 5.0
    cam[H36M_JOINTS.index("L_Wrist")] = [0.3, -0.2, 5.5]
    cam[H36M_JOINTS.index("R_Wrist")] = [-0.4, 0.1, 4.75]
    cam[H36M_JOINTS.index("L_Shoulder")] = [0.2, -0.4, 5.1]
    cam[H36M_JOINTS.index("R_Shoulder")] = [-0.2, -0.4, 4.9]
    return Record(img_path="x.jpg", img_hw=(1000, 1000), bbox_xywh_img=np.array([0, 0, 512, 512], np.float32),
                  joints_xy_img=xy, joints_cam=cam if is_3d else None, joints_valid=np.ones(count),
                  is_3D=is_3d)  # fmt: skip


def test_targets_on_a_hand_made_record() -> None:
    cfg = load_config("integral_h36m")
    builder = IntegralTargets(cfg, None)
    img2crop = np.array([[0.5, 0.0, -10.0], [0.0, 0.5, -20.0]])  # crop px = img px / 2 - offset; hm = crop / 4
    _, targets, meta = builder.build(_Dataset(H36M_JOINTS, False), _record(), img2crop, AugParams())
    joint_img, idx = targets["joint_img"], NAMES.index
    assert joint_img.shape == (18, 3) and meta["joint_vis"].shape == (18, 1) and float(meta["is_3D"]) == 1.0
    # Pelvis: image (100, 200) -> crop (40, 80) -> heatmap (10, 20); depth relative 0 -> 32.
    np.testing.assert_allclose(joint_img[0], [10.0, 20.0, 32.0], atol=1e-5)
    # L_Wrist (index 13): image (230, 252) -> crop (105, 106) -> (26.25, 26.5); z 0.5 m -> (0.25 + 0.5) * 64 = 48.
    np.testing.assert_allclose(joint_img[idx("L_Wrist")], [26.25, 26.5, 48.0], atol=1e-5)
    # R_Wrist (16): image (260, 264) -> crop (120, 112) -> (30, 28); z -0.25 m -> 24.
    np.testing.assert_allclose(joint_img[idx("R_Wrist")], [30.0, 28.0, 24.0], atol=1e-5)
    # Thorax: mean of the shoulders (11: image (210, 244), 14: (240, 256)) -> image (225, 250) -> (25.625, 26.25);
    # depth mean 5.0 -> 32.
    np.testing.assert_allclose(joint_img[THORAX_IDX], [25.625, 26.25, 32.0], atol=1e-5)
    np.testing.assert_allclose(targets["joint_cam"][idx("L_Wrist")], [0.3, -0.2, 0.5], atol=1e-6)
    assert np.all(meta["joint_vis"] == 1)
    assert meta["img2bb_trans"].shape == meta["bb2img_trans"].shape == (2, 3)

    # A flip mirrors the crop (img2crop carries it) and swaps left/right by name; camera x is negated.
    flip2crop = np.array([[-0.5, 0.0, 255.0 + 10.0], [0.0, 0.5, -20.0]])
    _, flipped, _ = builder.build(_Dataset(H36M_JOINTS, False), _record(), flip2crop, AugParams(flip=True))
    # The new L_Wrist is the old R_Wrist: image (260, 264) -> crop (135, 112) -> (33.75, 28); z stays 24.
    np.testing.assert_allclose(flipped["joint_img"][idx("L_Wrist")], [33.75, 28.0, 24.0], atol=1e-5)
    np.testing.assert_allclose(flipped["joint_cam"][idx("L_Wrist")], [0.4, 0.1, -0.25], atol=1e-6)
    np.testing.assert_allclose(flipped["joint_img"][0], [(-50 + 265) / 4, 20.0, 32.0], atol=1e-5)  # Pelvis stays


def test_targets_of_2d_data_mask_depth_and_map_by_name() -> None:
    cfg = load_config("integral_h36m")
    builder = IntegralTargets(cfg, None)
    names = ("R_Ankle", "Pelvis", "Thorax", "Nose_unused")  # a 2D dataset with its own Thorax
    record = Record(img_path="x.jpg", img_hw=(300, 300), bbox_xywh_img=np.array([0, 0, 256, 256], np.float32),
                    joints_xy_img=np.array([[40.0, 80.0], [100.0, 120.0], [120.0, 60.0], [1.0, 1.0]]),
                    joints_valid=np.array([1.0, 1.0, 0.0, 1.0]), is_3D=False)  # fmt: skip
    _, targets, meta = builder.build(_Dataset(names, True), record, np.array([[1.0, 0, 0], [0, 1.0, 0]]), AugParams())
    assert float(meta["is_3D"]) == 0.0 and "joint_cam" not in targets
    vis = meta["joint_vis"][:, 0]
    assert vis[NAMES.index("R_Ankle")] == vis[NAMES.index("Pelvis")] == 1.0
    assert vis[THORAX_IDX] == 0.0 and vis.sum() == 2.0  # the dataset's Thorax is unlabelled here; no others exist
    np.testing.assert_allclose(targets["joint_img"][NAMES.index("R_Ankle"), :2], [10.0, 20.0])
    assert set(builder.sample_shapes("test")) == {"img", "joint_img", "joint_vis", "is_3D", "joint_cam",
                                                   "bb2img_trans", "img2bb_trans", "cam_focal", "cam_princpt",
                                                   "root_depth_m"}  # fmt: skip


def test_evaluate_root_aligned_on_17_joints() -> None:
    builder = IntegralTargets(SimpleNamespace(model=load_config("integral_h36m").model), None)
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(18, 3)) * 0.3
    pred = gt + 0.5  # a translation only: root alignment removes it
    pred[THORAX_IDX] += 10.0  # Thorax is not evaluated
    out = builder.evaluate(None, [{"joint_cam": pred, "joint_cam_target": gt, "is_3D": np.float32(1.0)},
                                  {"joint_cam": pred, "joint_cam_target": gt, "is_3D": np.float32(0.0)}])  # fmt: skip
    assert len(out["mpjpe_17j"]) == 1
    assert out["mpjpe_17j"][0] == pytest.approx(0.0, abs=1e-9) and out["pa_mpjpe_17j"][0] == pytest.approx(0, abs=1e-6)


def test_flip_test_averages_the_prediction_and_the_mirrored_prediction_of_the_mirrored_crop(
    synthetic_body_model_dir: Path,
) -> None:
    from main.model import get_model

    small = ["model.resnet_type=18", "model.input_img_shape=[64,64]", "model.output_hm_shape=[16,16,16]"]
    cfg = load_config("integral_h36m", [f"human_model_path={synthetic_body_model_dir}", *small])
    assert cfg.test.flip_test  # upstream's default
    torch.manual_seed(0)
    model = get_model(cfg, "train").eval()
    img = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        flipped_test = model({"img": img}, mode="test")["joint_img"]
        plain, of_mirror = model.predict(img), model.predict(img.flip(-1))
    # independently: the crop's pixel flip u' = 63 - u is x' = 63 * 16 / 64 - x in heatmap units; L_ <-> R_ by name
    names = list(INTEGRAL_JOINTS.names)
    swap = [names.index(n.replace("L_", "R_", 1) if n.startswith("L_") else n.replace("R_", "L_", 1)) for n in names]
    mirrored = of_mirror[:, swap].clone()
    mirrored[..., 0] = 63 * 16 / 64 - mirrored[..., 0]
    torch.testing.assert_close(flipped_test, (plain + mirrored) / 2)
    assert not torch.allclose(flipped_test, plain)  # the flip changes the prediction of an untrained network
