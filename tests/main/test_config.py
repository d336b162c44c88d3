"""main/config.py: Hand4Whole's defaults, yaml overlays, overrides, errors, saving and path resolution."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.paths import REPO_ROOT, resolve_repo_path
from main import config as config_module
from main.config import (
    Config,
    ConfigError,
    ModelConfig,
    available_configs,
    config_to_dict,
    load_config,
    save_config,
)

ROOT = Path(__file__).resolve().parents[2]  # from this file, not from common.paths, to check REPO_ROOT too


def _error(path: str | Path | None = None, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(path, overrides)
    message = str(raised.value)
    assert "\n" not in message, "ConfigError messages are one line"
    return message


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_hand4whole_values() -> None:
    cfg = load_config()
    expected_model = {
        "input_img_shape": (512, 384),
        "input_body_shape": (256, 192),
        "output_hm_shape": (8, 8, 6),
        "input_hand_shape": (256, 256),
        "output_hand_hm_shape": (8, 8, 8),
        "input_face_shape": (192, 192),
        "focal": (5000.0, 5000.0),
        "princpt": (96.0, 128.0),
        "body_3d_size": 2.0,
        "hand_3d_size": 0.3,
        "face_3d_size": 0.3,
        "camera_3d_size": 2.5,
        "resnet_type": 50,
        "hand_resnet_type": 50,
        "face_resnet_type": 18,
        "backbone_weights": "",
        "hand_backbone_weights": "",
        "face_backbone_weights": "",
        "hand_box_extension": 2.0,
        "face_box_extension": 1.5,
        "hand_position_head": "pose2pose",
        # Hand4Whole's quirks, which its public weights depend on, are the defaults.
        "body_resize_mode": "nearest",
        "normalize_image": False,
        "roi_align_aligned": False,
        "left_hand_unflip": "heatmap",
        "arch": "hand4whole",
        # Hand4Whole switched these on when training on / testing on AGORA; here they are explicit keys.
        "proj_detach_joint_cam": False,
        "test_all_joints": False,
    }
    assert set(expected_model) == {f.name for f in dataclasses.fields(ModelConfig)}
    for name, value in expected_model.items():
        actual = getattr(cfg.model, name)
        assert actual == value and type(actual) is type(value), name
        if isinstance(value, tuple):
            assert all(type(a) is type(v) for a, v in zip(actual, value, strict=True)), name
    assert cfg.name == "hand4whole"
    assert (cfg.data.trainset_3d, cfg.data.trainset_2d, cfg.data.testset) == (["Human36M"], ["MSCOCO", "MPII"], "EHF")
    assert cfg.data.num_thread == 8
    assert (cfg.train.lr, cfg.train.lr_dec_factor, cfg.train.lr_dec_epoch) == (1e-4, 10, [4, 6])
    assert (cfg.train.end_epoch, cfg.train.train_batch_size, cfg.train.seed) == (7, 24, 0)
    assert cfg.test.test_batch_size == 64
    # Hand4Whole's loss: every term weighted 1, L1 on axis-angle.
    assert cfg.loss.pose_loss == "axis_angle"
    weights = dataclasses.asdict(cfg.loss.weights)
    assert len(weights) == 11 and set(weights.values()) == {1.0}
    assert all(type(w) is float for w in weights.values())
    # The principal point is the centre of the body input, in (x, y) order.
    height, width = cfg.model.input_body_shape
    assert cfg.model.princpt == (width / 2, height / 2)


def test_defaults_are_plain_dataclasses_not_omegaconf() -> None:
    cfg = load_config()
    assert type(cfg) is Config and type(cfg.model) is ModelConfig
    assert type(cfg.train.lr_dec_epoch) is list and type(cfg.model.input_img_shape) is tuple


AGORA_FILE = str(ROOT / "main/configs/agora_finetune.yaml")


@pytest.mark.parametrize("name", ["agora_finetune", "agora_finetune.yaml", AGORA_FILE])
def test_yaml_overlay(name: str) -> None:
    cfg = load_config(name)
    assert cfg.data.trainset_3d == ["AGORA"] and cfg.data.trainset_2d == [] and cfg.data.testset == "AGORA"
    assert cfg.train.lr_dec_epoch == [40, 60] and cfg.train.end_epoch == 70
    # keys the file does not set keep their defaults
    assert cfg.train.lr == 1e-4 and cfg.model == ModelConfig(proj_detach_joint_cam=True, test_all_joints=True)
    assert "agora_finetune" in available_configs()


def test_yaml_overlay_from_a_path_with_dotted_keys(tmp_path: Path) -> None:
    file = _write(tmp_path / "exp.yaml", "train:\n  lr: 1e-5\nmodel.focal: [1000, 1000]\n")
    cfg = load_config(file)
    assert cfg.train.lr == 1e-5 and cfg.model.focal == (1000.0, 1000.0)


def test_overrides_nested_top_level_lists_and_floats() -> None:
    cfg = load_config(
        "agora_finetune",
        [
            "train.lr=1e-5",
            "train.lr_dec_epoch=[10,12]",
            "train.end_epoch=80",
            "model.input_img_shape=[256,192]",
            "model.camera_3d_size=3",
            "data.trainset_2d=[MSCOCO]",
            "human_model_path=/tmp/x",
            "name=007",
        ],
    )
    assert cfg.train.lr == 1e-5 and isinstance(cfg.train.lr, float)
    assert cfg.train.lr_dec_epoch == [10, 12] and cfg.train.end_epoch == 80  # overrides beat the file
    assert cfg.model.input_img_shape == (256, 192)
    assert cfg.model.camera_3d_size == 3.0 and isinstance(cfg.model.camera_3d_size, float)
    assert cfg.data.trainset_2d == ["MSCOCO"] and cfg.data.trainset_3d == ["AGORA"]
    assert cfg.human_model_path == "/tmp/x"
    assert cfg.name == "007", "str fields take the override text verbatim, not yaml's int 7"


def test_later_overrides_win() -> None:
    assert load_config(overrides=["train.lr=1e-3", "train.lr=2e-3"]).train.lr == 2e-3


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.lrr=1", "train.lrr"),
        ("lrr=1", "lrr"),
        ("model.focal.x=1", "model.focal.x"),
        ("train={lrr: 1}", "train.lrr"),
    ],
)
def test_unknown_key_names_the_key_and_the_override(override: str, key: str) -> None:
    message = _error(overrides=(override,))
    assert f"'{key}'" in message and repr(override) in message and "unknown key" in message


def test_unknown_key_suggests_the_close_one() -> None:
    assert "did you mean 'train.lr'" in _error(overrides=("train.lrr=1",))


def test_unknown_key_in_yaml_names_the_key_and_the_file(tmp_path: Path) -> None:
    file = _write(tmp_path / "bad.yaml", "train:\n  lrr: 1\n")
    message = _error(file)
    assert "'train.lrr'" in message and str(file) in message


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.lr=abc", "train.lr"),
        ("train.end_epoch=7.5", "train.end_epoch"),
        ("train.lr_dec_epoch=5", "train.lr_dec_epoch"),
        ("data.trainset_2d=MPII", "data.trainset_2d"),
        ("model=5", "model"),
        ("model.resnet_type=true", "model.resnet_type"),
        # wrong length: checked by OmegaConf
        ("model.input_img_shape=[512,384,3]", "model.input_img_shape"),
        ("model.output_hm_shape=[8,8]", "model.output_hm_shape"),
        # wrong values: checked in __post_init__, still attributed to the override
        ("model.output_hm_shape=[8,0,6]", "model.output_hm_shape"),
        ("model.resnet_type=51", "model.resnet_type"),
        ("train.lr=-1", "train.lr"),
        ("train.lr_dec_epoch=[6,4]", "train.lr_dec_epoch"),
        ("data.num_thread=-1", "data.num_thread"),
        ("data.agora_resolution=720p", "data.agora_resolution"),
        ("data.agora_gender=male", "data.agora_gender"),
        ("output_dir=", "output_dir"),
        ("model.hand_position_head=v3v", "model.hand_position_head"),
        ("model.body_resize_mode=bicubic", "model.body_resize_mode"),
        ("model.left_hand_unflip=none", "model.left_hand_unflip"),
        ("model.hand_box_extension=0", "model.hand_box_extension"),
        ("loss.pose_loss=quaternion", "loss.pose_loss"),
        ("loss.weights.joint_img=-1", "loss.weights.joint_img"),
    ],
)
def test_wrong_type_or_value_names_the_key_and_the_override(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(overrides=[override])
    assert raised.value.key == key
    message = str(raised.value)
    assert f"{key}:" in message and repr(override) in message and "\n" not in message


def test_wrong_type_in_yaml_names_the_key_and_the_file(tmp_path: Path) -> None:
    file = _write(tmp_path / "bad.yaml", "model:\n  input_body_shape: [256, 192, 3]\n")
    message = _error(file)
    assert "model.input_body_shape" in message and str(file) in message


@pytest.mark.parametrize("override", ["train.lr", "=1", "train..lr=1", ".lr=1"])
def test_malformed_override(override: str) -> None:
    message = _error(overrides=(override,))
    assert "malformed" in message and repr(override) in message


def test_a_lone_string_of_overrides_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        load_config(None, "train.lr=1e-5")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["does_not_exist", "does_not_exist.yaml"])
def test_missing_named_config_lists_the_available_ones(name: str) -> None:
    message = _error(name)
    assert str(ROOT / "main/configs/does_not_exist.yaml") in message
    assert "agora_finetune" in message


def test_missing_config_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    message = _error(missing)
    assert str(missing) in message and "agora_finetune" in message


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "train: [1,\n", "train: {lr: 1}\ntrain: {lr: 2}\n"])
def test_yaml_that_is_not_a_config_mapping_names_the_file(tmp_path: Path, text: str) -> None:
    file = _write(tmp_path / "bad.yaml", text)
    assert str(file) in _error(file)


def test_save_load_round_trip(tmp_path: Path) -> None:
    cfg = load_config("agora_finetune", ["train.lr=3e-5", "model.focal=[1000,1100]", "data.trainset_2d=[]"])
    path = tmp_path / "run" / "config.yaml"  # the parent folder does not exist yet
    save_config(cfg, path)
    assert load_config(path) == cfg
    assert os.listdir(path.parent) == ["config.yaml"], "no temporary file left behind"
    assert yaml.safe_load(path.read_text()) == config_to_dict(cfg)


def test_config_to_dict_is_plain_python() -> None:
    def check(value: object) -> None:
        assert type(value) in (dict, list, str, int, float, bool), type(value)
        if isinstance(value, dict):
            for item in value.values():
                check(item)
        elif isinstance(value, list):
            for item in value:
                check(item)

    as_dict = config_to_dict(load_config())
    check(as_dict)
    assert as_dict["model"]["input_img_shape"] == [512, 384] and as_dict["train"]["lr"] == 1e-4


def test_save_is_atomic_when_the_rename_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yaml"
    save_config(load_config(), path)
    before = path.read_text()

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(config_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_config(load_config(overrides=["train.lr=1"]), path)
    assert path.read_text() == before and os.listdir(tmp_path) == ["config.yaml"]


def test_relative_paths_resolve_against_the_repo_root_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = load_config("agora_finetune", ["data_dir=datasets", "output_dir=~/runs", "human_model_path=/abs/models"])
    assert REPO_ROOT == ROOT
    assert cfg.data_dir == str(ROOT / "datasets")
    assert cfg.output_dir == str(tmp_path / "home" / "runs")
    assert cfg.human_model_path == "/abs/models"
    assert load_config().human_model_path == str(ROOT / "common/utils/human_model_files")
    assert load_config().output_dir == str(ROOT / "output")


def test_resolve_repo_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_repo_path("data/x") == ROOT / "data/x"
    assert resolve_repo_path(Path("/abs/x")) == Path("/abs/x")
    assert resolve_repo_path("~/x") == tmp_path / "home" / "x"
    assert resolve_repo_path("../x") == ROOT / ".." / "x"


def test_direct_construction_is_validated_and_normalised() -> None:
    model = ModelConfig(input_img_shape=[256, 192], focal=[1000, 1000])  # type: ignore[arg-type]
    assert model.input_img_shape == (256, 192) and model.focal == (1000.0, 1000.0)
    assert type(model.focal[0]) is float
    with pytest.raises(ConfigError, match=r"model\.input_img_shape"):
        ModelConfig(input_img_shape=(512,))  # type: ignore[arg-type]
    assert issubclass(ConfigError, ValueError)


def test_import_has_no_side_effects(tmp_path: Path) -> None:
    code = "import sys; before = list(sys.path); import main.config; assert sys.path == before, sys.path"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True)
    assert list(tmp_path.iterdir()) == [], "importing main.config created files"


def test_loss_section_overrides() -> None:
    cfg = load_config(overrides=["loss.weights.smplx_pose=2", "loss.pose_loss=rotmat", "model.hand_position_head=v2v"])
    assert cfg.loss.weights.smplx_pose == 2.0 and cfg.loss.weights.joint_img == 1.0
    assert cfg.loss.pose_loss == "rotmat" and cfg.model.hand_position_head == "v2v"
    assert "did you mean 'loss.weights.smplx_pose'" in _error(overrides=("loss.weights.smplx_pos=2",))


def test_train_speed_settings_default_off_and_override() -> None:
    train = load_config().train
    assert (train.precision, train.channels_last, train.compile, train.grad_clip_norm) == ("fp32", False, False, 0.0)
    overrides = ["train.precision=bf16", "train.channels_last=true", "train.compile=true", "train.grad_clip_norm=5"]
    train = load_config(overrides=overrides).train
    assert (train.precision, train.channels_last, train.compile, train.grad_clip_norm) == ("bf16", True, True, 5.0)
    assert type(train.grad_clip_norm) is float


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.precision=fp16", "train.precision"),
        ("train.channels_last=maybe", "train.channels_last"),
        ("train.compile=[1]", "train.compile"),
        ("train.grad_clip_norm=-1", "train.grad_clip_norm"),
        ("train.grad_clip_norm=inf", "train.grad_clip_norm"),
    ],
)
def test_train_speed_settings_reject_bad_values(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(overrides=[override])
    assert raised.value.key == key and repr(override) in str(raised.value)


@pytest.mark.parametrize("part", ["body", "hand", "face"])
def test_pose2pose_overlays_select_a_part_model_with_a_consistent_heatmap(part: str) -> None:
    assert load_config().model.arch == "hand4whole"
    model = load_config(f"pose2pose_{part}").model
    assert model.arch == f"pose2pose_{part}" and model.resnet_type == 50
    assert model.output_hm_shape[1:] == tuple(size // 32 for size in model.input_img_shape)
    assert model.princpt == (model.input_img_shape[1] / 2, model.input_img_shape[0] / 2)


def test_part_model_rejects_a_heatmap_that_does_not_match_its_input() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(overrides=["model.arch=pose2pose_hand"])  # Hand4Whole's 512x384 crop: 16x12 features, not 8x6
    assert raised.value.key == "model.output_hm_shape" and "(D, 16, 12)" in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        load_config(overrides=["model.arch=legs"])
    assert raised.value.key == "model.arch"


def test_agora_overlay_switches_the_agora_behaviours_by_explicit_keys() -> None:
    model = load_config("agora_finetune").model
    assert model.proj_detach_joint_cam and model.test_all_joints


def test_train_engine_settings_defaults_and_overrides() -> None:
    train = load_config().train
    assert (train.cpu_processes, train.batchnorm, train.skip_nonfinite) == (1, "batch", False)
    assert (train.log_interval, train.vis_interval, train.vis_images, train.keep_snapshots) == (50, 1000, 4, 0)
    overrides = ["train.cpu_processes=2", "train.batchnorm=frozen", "train.skip_nonfinite=true", "train.vis_interval=0"]
    train = load_config(overrides=overrides).train
    assert (train.cpu_processes, train.batchnorm, train.skip_nonfinite, train.vis_interval) == (2, "frozen", True, 0)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.cpu_processes=0", "train.cpu_processes"),
        ("train.batchnorm=group", "train.batchnorm"),
        ("train.skip_nonfinite=sometimes", "train.skip_nonfinite"),
        ("train.log_interval=0", "train.log_interval"),
        ("train.vis_interval=-1", "train.vis_interval"),
        ("train.vis_images=0", "train.vis_images"),
        ("train.keep_snapshots=-1", "train.keep_snapshots"),
    ],
)
def test_train_engine_settings_reject_bad_values(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(overrides=[override])
    assert raised.value.key == key and repr(override) in str(raised.value)
