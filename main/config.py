"""Typed experiment configuration: Hand4Whole's defaults, yaml overlays and key=value overrides.

A config is built once with `load_config` and passed explicitly; modules receive their own section
(`cfg.model`, `cfg.train`) or keyword arguments. There is no global config object, and importing this
module has no side effects (no folders created, no `sys.path` edits).

Layers, later ones winning:
    1. the dataclass defaults below, which are Hand4Whole's values;
    2. a yaml file: a bare name (`agora_finetune`) is looked up in main/configs/, a path is used as given;
    3. `key=value` overrides with dotted keys (`train.lr=1e-5`, `train.lr_dec_epoch=[10,12]`).

Every layer is checked key by key against the dataclasses through OmegaConf's structured configs, so
an unknown key or a wrong type fails with a `ConfigError` naming the key and the file or override it
came from. The result is converted back to plain dataclasses: the rest of the code never sees
OmegaConf objects. Treat a loaded config as read-only.
"""

import dataclasses
import difflib
import math
import os
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from common.paths import resolve_repo_path
from common.utils.atomic_io import write_bytes_atomic
from main.config_checks import (
    ConfigError,
    _check_int,
    _float_tuple,
    _int_tuple,
    _is_int,
    _is_number,
    _require,
)
from main.config_multiview import MultiViewDataConfig
from main.config_triangulation import TriangulationConfig
from main.config_v2v import V2VConfig

CONFIG_DIR: Path = Path(__file__).resolve().parent / "configs"
RESNET_DEPTHS: tuple[int, ...] = (18, 34, 50, 101, 152)
# The model families (`model.arch`), as main/model.py's FAMILIES and data/targets' TARGETS name them; a test keeps
# the three in step (docs/extending.md: adding a family).
ARCHS: tuple[str, ...] = (
    "hand4whole", "pose2pose_body", "pose2pose_hand", "pose2pose_face", "integral", "v2v", "triangulation",
)  # fmt: skip
# Top-level fields holding paths; load_config makes them absolute (see common/paths.py for why).
PATH_KEYS: tuple[str, ...] = ("human_model_path", "data_dir", "output_dir")


@dataclass
class ModelConfig:
    """Network input/output geometry and backbones, as in Hand4Whole's config.py.

    Image shapes are (H, W) in pixels and heatmap shapes (D, H, W) in voxels, Hand4Whole's order. The
    `*_3d_size` values are the metric extent in metres that a heatmap's depth axis D spans. Sequences
    are tuples; a wrong length or a non-positive size raises `ConfigError` naming the key.
    """

    input_img_shape: tuple[int, int] = (512, 384)  # (H, W) crop around the person, aspect 0.75
    input_body_shape: tuple[int, int] = (256, 192)  # (H, W) body-backbone input, resized from the crop
    output_hm_shape: tuple[int, int, int] = (8, 8, 6)  # (D, H, W) body joint heatmap
    input_hand_shape: tuple[int, int] = (256, 256)  # (H, W) each hand RoI crop
    output_hand_hm_shape: tuple[int, int, int] = (8, 8, 8)  # (D, H, W) hand joint heatmap
    input_face_shape: tuple[int, int] = (192, 192)  # (H, W) face RoI crop
    # Virtual camera in pixels of the body input, in (x, y) order unlike the shapes above: the
    # principal point is the centre of input_body_shape, (W / 2, H / 2).
    focal: tuple[float, float] = (5000.0, 5000.0)
    princpt: tuple[float, float] = (96.0, 128.0)
    body_3d_size: float = 2.0
    hand_3d_size: float = 0.3
    face_3d_size: float = 0.3
    camera_3d_size: float = 2.5  # k in t_z = k * sigmoid(gamma), metres
    resnet_type: int = 50  # ResNet depth of the body backbone
    hand_resnet_type: int = 50  # one backbone shared by both hands (left mirrored to right)
    face_resnet_type: int = 18
    # Local torchvision ImageNet state_dict files (e.g. resnet50-11ad3fa6.pth) that get_model(cfg, 'train') loads
    # into the body, hand and face backbones; '' keeps the random init. Nothing is downloaded. Relative paths are
    # relative to the repository root.
    backbone_weights: str = ""
    hand_backbone_weights: str = ""
    face_backbone_weights: str = ""
    # Crop boxes: the predicted hand/face boxes are made square (the crops' aspect) and enlarged by these.
    hand_box_extension: float = 2.0
    face_box_extension: float = 1.5
    # 'pose2pose': Hand4Whole's 1x1-conv PositionNet for the hands; 'v2v': a V2V encoder-decoder over a feature
    # volume lifted from the hand features (its weights are not in the public checkpoints).
    hand_position_head: str = "pose2pose"
    # Hand4Whole quirks that its public weights depend on; the defaults reproduce them, the alternatives are the
    # corrected behaviour for new training (docs/conventions.md).
    body_resize_mode: str = "nearest"  # 512x384 -> 256x192 resize: 'nearest' (Hand4Whole), 'bilinear', 'area'
    normalize_image: bool = False  # True: ImageNet mean/std normalisation of the [0, 1] input
    roi_align_aligned: bool = False  # torchvision roi_align's `aligned` flag for the hand/face crops
    left_hand_unflip: str = "heatmap"  # 'heatmap': x' = W_hm - 1 - x (Hand4Whole); 'pixel': flip in crop pixels
    # The model family (main/model.py's FAMILIES): 'hand4whole' (SMPL-X whole body) or a Pose2Pose single-part model,
    # 'pose2pose_body' (SMPL), 'pose2pose_hand' (right-hand MANO), 'pose2pose_face' (FLAME), whose network input is
    # input_img_shape itself (no resize, no crops), whose heatmap is output_hm_shape and whose camera is
    # focal/princpt/camera_3d_size in input pixels; main/configs/pose2pose_{body,hand,face}.yaml hold their values.
    # 'integral' (Integral Human Pose Regression, main/integral_model.py): 3D joints from an output_hm_shape volume
    # over input_img_shape, depth and box spanning body_3d_size metres (main/configs/integral_h36m.yaml).
    # 'v2v' (V2V-PoseNet, main/v2v_model.py): a depth map or a voxel grid -> 3D hand joints; its settings are the
    # `v2v` section (main/config_v2v.py; main/configs/v2v_msra.yaml).
    # 'triangulation' (learnable triangulation, main/triangulation/): N calibrated views -> 3D joints; its settings are
    # the `triangulation` and `multiview` sections (main/configs/triangulation_*.yaml).
    arch: str = "hand4whole"
    # In 'train' mode project detached 3D joints, so that the 2D loss trains only the camera: what Hand4Whole does
    # when it trains on AGORA alone (main/configs/agora_finetune.yaml sets it).
    proj_detach_joint_cam: bool = False
    # In 'test' mode the whole-body model projects all 144 SMPL-X joints instead of the 137 supervision joints:
    # AGORA's evaluation server takes 144 (set with data.testset=AGORA, as in agora_finetune.yaml).
    test_all_joints: bool = False

    def __post_init__(self) -> None:
        # OmegaConf already checks lengths and element types when loading; this also covers direct
        # construction in Python and turns lists into tuples so readers always get one type.
        for name in ("input_img_shape", "input_body_shape", "input_hand_shape", "input_face_shape"):
            setattr(self, name, _int_tuple(f"model.{name}", getattr(self, name), 2))
        for name in ("output_hm_shape", "output_hand_hm_shape"):
            setattr(self, name, _int_tuple(f"model.{name}", getattr(self, name), 3))
        self.focal = _float_tuple("model.focal", self.focal, 2, positive=True)
        self.princpt = _float_tuple("model.princpt", self.princpt, 2, positive=False)
        for name in ("body_3d_size", "hand_3d_size", "face_3d_size", "camera_3d_size"):
            value = getattr(self, name)
            _require(_is_number(value) and value > 0, f"model.{name}", "a positive number of metres", value)
            setattr(self, name, float(value))
        for name in ("resnet_type", "hand_resnet_type", "face_resnet_type"):
            value = getattr(self, name)
            _require(_is_int(value) and value in RESNET_DEPTHS, f"model.{name}", f"one of {RESNET_DEPTHS}", value)
        for name in ("hand_box_extension", "face_box_extension"):
            value = getattr(self, name)
            _require(_is_number(value) and value > 0, f"model.{name}", "a positive number", value)
            setattr(self, name, float(value))
        for name, choices in _MODEL_CHOICES.items():
            value = getattr(self, name)
            _require(value in choices, f"model.{name}", f"one of {choices}", value)
        _require(self.arch in ARCHS, "model.arch", f"a model family, one of {ARCHS}", self.arch)
        for name in ("backbone_weights", "hand_backbone_weights", "face_backbone_weights"):
            _require(isinstance(getattr(self, name), str), f"model.{name}", "a path or ''", getattr(self, name))
        for name in ("normalize_image", "roi_align_aligned", "proj_detach_joint_cam", "test_all_joints"):
            _require(isinstance(getattr(self, name), bool), f"model.{name}", "true or false", getattr(self, name))
        if self.arch.startswith("pose2pose_"):
            # A part model's heatmap is read off its backbone's stride-32 feature map, cell for cell.
            feature_hw = tuple(math.ceil(size / 32) for size in self.input_img_shape)
            _require(
                self.output_hm_shape[1:] == feature_hw, "model.output_hm_shape",
                f"(D, {feature_hw[0]}, {feature_hw[1]}): the stride-32 features of model.input_img_shape "
                f"{self.input_img_shape} for model.arch={self.arch} (see main/configs/{self.arch}.yaml)",
                self.output_hm_shape,
            )  # fmt: skip
        if self.arch == "integral":
            # Integral's volume is its stride-32 features upsampled 8x by three stride-2 deconvolutions (64x64 for a
            # 256x256 crop); its depth D is free (the head's J * D channels).
            volume_hw = tuple(8 * math.ceil(size / 32) for size in self.input_img_shape)
            _require(
                self.output_hm_shape[1:] == volume_hw, "model.output_hm_shape",
                f"(D, {volume_hw[0]}, {volume_hw[1]}): 8x the stride-32 features of model.input_img_shape "
                f"{self.input_img_shape} for model.arch=integral (see main/configs/integral_h36m.yaml)",
                self.output_hm_shape,
            )  # fmt: skip


# The values each string option of ModelConfig accepts.
_MODEL_CHOICES: dict[str, tuple[str, ...]] = {
    "hand_position_head": ("pose2pose", "v2v"),
    "body_resize_mode": ("nearest", "bilinear", "area"),
    "left_hand_unflip": ("heatmap", "pixel"),
}


@dataclass
class LossWeights:
    """Weight of each of Hand4Whole's eleven loss terms; Hand4Whole summed them unweighted (all 1)."""

    smplx_pose: float = 1.0
    smplx_shape: float = 1.0
    smplx_expr: float = 1.0
    joint_cam: float = 1.0
    smplx_joint_cam: float = 1.0
    lhand_bbox: float = 1.0
    rhand_bbox: float = 1.0
    face_bbox: float = 1.0
    joint_proj: float = 1.0
    joint_img: float = 1.0
    smplx_joint_img: float = 1.0

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            _require(_is_number(value) and value >= 0, f"loss.weights.{item.name}", "a number >= 0", value)
            setattr(self, item.name, float(value))


@dataclass
class LossConfig:
    """Training loss (common/nets/loss.py): per-term weights and the pose-loss form."""

    weights: LossWeights = field(default_factory=LossWeights)
    # 'axis_angle': L1 on axis-angle parameters (Hand4Whole); 'rotmat': L1 on rotation matrices, which has no
    # 2*pi / antipodal ambiguity.
    pose_loss: str = "axis_angle"

    def __post_init__(self) -> None:
        choices = ("axis_angle", "rotmat")
        _require(self.pose_loss in choices, "loss.pose_loss", f"one of {choices}", self.pose_loss)


@dataclass
class DataConfig:
    """Datasets by the names of data/'s dataset dict, and data loading."""

    trainset_3d: list[str] = field(default_factory=lambda: ["Human36M"])
    trainset_2d: list[str] = field(default_factory=lambda: ["MSCOCO", "MPII"])
    testset: str = "EHF"
    # The split test.py evaluates: '' for the test set's own (its TEST_SPLIT: AGORA 'validation', as Hand4Whole),
    # or a split name, e.g. 'test' for AGORA's test split (detections, no GT: one .pkl per person for the server).
    test_split: str = ""
    num_thread: int = 8  # DataLoader worker processes
    # Dataset folders by dataset name, e.g. {AGORA: /datasets/agora}; a dataset not listed reads
    # <data_dir>/<NAME>/data as Hand4Whole did. Relative paths are relative to the repository root.
    dataset_roots: dict[str, str] = field(default_factory=dict)
    # AGORA's images: '1280x720' (the released 720p images) or '3840x2160' (per-person crops of the 4K images).
    agora_resolution: str = "1280x720"
    # The SMPL-X layer AGORA's fits are posed with: 'neutral' for everyone (Hand4Whole), or 'annotated' (each
    # person's gender; reproduces exactly a mesh rendered with that layer, as data/Synthetic's are).
    agora_gender: str = "neutral"
    # False: a missing or undecodable image is an error naming the file. True: samples whose image file is
    # missing are dropped at start-up and undecodable ones replaced by the next sample, each counted and logged.
    skip_bad_images: bool = False
    # MSRA hand (V2V): the held-out subject of the leave-one-subject-out protocol, P0..P8 (the V2V port: 3).
    msra_test_subject: int = 3
    # HDF5 voxel files (hpoes' layout, data/VoxelH5) of the VoxelH5 dataset's train, dev and test splits; '' = unset.
    h5_train: str = ""
    h5_dev: str = ""
    h5_test: str = ""

    def __post_init__(self) -> None:
        _check_int("data.num_thread", self.num_thread, 0)
        _require(_is_int(self.msra_test_subject) and 0 <= self.msra_test_subject <= 8, "data.msra_test_subject",
                 "a subject 0..8", self.msra_test_subject)  # fmt: skip
        resolutions = ("1280x720", "3840x2160")
        _require(self.agora_resolution in resolutions, "data.agora_resolution", f"one of {resolutions}",
                 self.agora_resolution)  # fmt: skip
        genders = ("neutral", "annotated")
        _require(self.agora_gender in genders, "data.agora_gender", f"one of {genders}", self.agora_gender)
        _require(isinstance(self.skip_bad_images, bool), "data.skip_bad_images", "true or false", self.skip_bad_images)


@dataclass
class TrainConfig:
    """Optimisation schedule: the learning rate is divided by lr_dec_factor at each epoch of lr_dec_epoch."""

    lr: float = 1e-4
    lr_dec_factor: float = 10.0
    lr_dec_epoch: list[int] = field(default_factory=lambda: [4, 6])
    end_epoch: int = 7  # epochs 0 .. end_epoch - 1 are trained
    train_batch_size: int = 24  # per GPU process
    seed: int = 0
    # Speed settings (common/engine/acceleration.py); the defaults are Hand4Whole's fp32 eager training.
    precision: str = "fp32"  # 'fp32' or 'bf16' (autocast of the forward pass and the loss)
    channels_last: bool = False  # NHWC weights for the 2D convolutions
    compile: bool = False  # torch.compile the model (inductor); eager when it cannot run, with a warning
    grad_clip_norm: float = 0.0  # clip the global gradient L2 norm to this value; 0 turns clipping off
    # Processes (gloo) on a machine without CUDA; each takes train_batch_size samples per step, like a GPU would.
    cpu_processes: int = 1
    # BatchNorm during training: 'batch' (per-process batch statistics, Hand4Whole), 'sync' (statistics over all
    # processes, SyncBatchNorm, CUDA only) or 'frozen' (running statistics kept fixed, affine weights trained).
    batchnorm: str = "batch"
    # A NaN or inf loss stops training naming the term and the step; True skips that step instead (one host
    # synchronisation per step, to decide before the optimizer step).
    skip_nonfinite: bool = False
    log_interval: int = 50  # steps between loss/throughput readings (log file, TensorBoard, progress bar)
    vis_interval: int = 1000  # steps between rendered mesh grids in TensorBoard; 0 turns them off
    vis_images: int = 4  # crops per rendered grid
    # Snapshots kept in model_dump: the newest N epochs (older snapshot_<epoch> files are deleted after each new one
    # is written); 0 keeps every epoch, as Hand4Whole did. A snapshot of a small model with Adam state is ~0.5 GB.
    keep_snapshots: int = 0
    # 'adam' (Hand4Whole, the V2V PyTorch port) or 'rmsprop' (V2V-PoseNet's original and hpoes: alpha 0.99, eps 1e-8).
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        _require(_is_number(self.lr) and self.lr > 0, "train.lr", "a positive number", self.lr)
        optimizers = ("adam", "rmsprop")
        _require(self.optimizer in optimizers, "train.optimizer", f"one of {optimizers}", self.optimizer)
        factor = self.lr_dec_factor
        _require(_is_number(factor) and factor > 0, "train.lr_dec_factor", "a positive number", factor)
        self.lr, self.lr_dec_factor = float(self.lr), float(factor)
        epochs = self.lr_dec_epoch
        ok = isinstance(epochs, list) and all(_is_int(e) and e >= 0 for e in epochs) and epochs == sorted(epochs)
        _require(ok, "train.lr_dec_epoch", "an ascending list of epochs >= 0", epochs)
        _check_int("train.end_epoch", self.end_epoch, 1)
        _check_int("train.train_batch_size", self.train_batch_size, 1)
        _check_int("train.seed", self.seed, 0)
        precisions = ("fp32", "bf16")
        _require(self.precision in precisions, "train.precision", f"one of {precisions}", self.precision)
        for name in ("channels_last", "compile"):
            _require(isinstance(getattr(self, name), bool), f"train.{name}", "true or false", getattr(self, name))
        clip = self.grad_clip_norm
        _require(_is_number(clip) and clip >= 0, "train.grad_clip_norm", "a number >= 0 (0: off)", clip)
        self.grad_clip_norm = float(clip)
        _check_int("train.cpu_processes", self.cpu_processes, 1)
        modes = ("batch", "sync", "frozen")
        _require(self.batchnorm in modes, "train.batchnorm", f"one of {modes}", self.batchnorm)
        _require(isinstance(self.skip_nonfinite, bool), "train.skip_nonfinite", "true or false", self.skip_nonfinite)
        _check_int("train.log_interval", self.log_interval, 1)
        _check_int("train.vis_interval", self.vis_interval, 0)
        _check_int("train.vis_images", self.vis_images, 1)
        _check_int("train.keep_snapshots", self.keep_snapshots, 0)


@dataclass
class TestConfig:
    """Evaluation settings."""

    __test__ = False  # not a pytest test class, despite its name (not a field: it has no annotation)

    test_batch_size: int = 64  # per GPU process
    # Flip test of the skeleton family (integral): the prediction averaged with the mirrored prediction of the
    # mirrored crop, as upstream (on by default there); the mesh families do not read it.
    flip_test: bool = True

    def __post_init__(self) -> None:
        _check_int("test.test_batch_size", self.test_batch_size, 1)
        _require(isinstance(self.flip_test, bool), "test.flip_test", "true or false", self.flip_test)


@dataclass
class Config:
    """One experiment. The path fields are absolute after `load_config`; as given when constructed directly."""

    name: str = "hand4whole"  # run name, saved with the config and checkpoints
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    # Family-specific sections, each in its own module (the lineage's other systems).
    multiview: MultiViewDataConfig = field(default_factory=MultiViewDataConfig)
    triangulation: TriangulationConfig = field(default_factory=TriangulationConfig)
    v2v: V2VConfig = field(default_factory=V2VConfig)
    # Relative paths are relative to the repository root, never the current directory.
    human_model_path: str = "common/utils/human_model_files"  # body-model files (README: Body-model files)
    data_dir: str = "data"
    output_dir: str = "output"

    def __post_init__(self) -> None:
        for name in ("name", *PATH_KEYS):
            value = getattr(self, name)
            _require(isinstance(value, str) and value != "", name, "a non-empty string", value)


def available_configs() -> list[str]:
    """Returns the names of the yaml overlays in main/configs/, without the suffix, sorted."""
    return sorted(file.stem for file in CONFIG_DIR.glob("*.yaml"))


def _find_config_file(path: str | os.PathLike[str]) -> Path:
    text = os.fspath(path)
    if Path(text).name == text:  # a bare name: one of main/configs/
        file = CONFIG_DIR / (text if text.endswith((".yaml", ".yml")) else f"{text}.yaml")
    else:  # a path, as the user typed it
        file = Path(text).expanduser()
    if not file.is_file():
        names = ", ".join(available_configs()) or "none"
        raise ConfigError(f"config file not found: {file}; available in {CONFIG_DIR}: {names}")
    return file


def _read_yaml(file: Path) -> dict[str, Any]:
    source = f"file '{file}'"
    try:
        # OmegaConf's loader, unlike yaml.safe_load, reads 1e-5 as a float and rejects duplicate keys.
        loaded = OmegaConf.load(file)
    except (yaml.YAMLError, OSError) as error:
        raise ConfigError(f"{source}: not a yaml mapping: {' '.join(str(error).split())}") from error
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"{source}: expected a mapping of config keys at the top level")
    return typing.cast(dict[str, Any], OmegaConf.to_container(loaded, resolve=False))


def _field_type(key: str, source: str) -> Any:
    """Returns the declared type of a dotted key; raises ConfigError naming an unknown key."""
    node: Any = Config
    parts = key.split(".")
    for depth, part in enumerate(parts):
        section = ".".join(parts[:depth])
        if not dataclasses.is_dataclass(node):
            raise ConfigError(f"{source}: unknown key '{key}' ('{section}' is a value, not a section)", key)
        hints = typing.get_type_hints(node)
        if part not in hints:
            close = difflib.get_close_matches(part, hints, n=1)
            hint = f"; did you mean '{'.'.join([*parts[:depth], close[0]])}'?" if close else ""
            where = f"'{section}'" if section else "the top level"
            raise ConfigError(f"{source}: unknown key '{key}'{hint} (keys of {where}: {', '.join(hints)})", key)
        node = hints[part]
    return node


def _type_name(hint: Any) -> str:
    if dataclasses.is_dataclass(hint):
        return f"a mapping ({hint.__name__})"
    return hint.__name__ if typing.get_origin(hint) is None else str(hint)


def _leaves(key: str, value: Any, source: str) -> Iterator[tuple[str, Any]]:
    """Splits a value for `key` ("" for the whole config) into (dotted key, value) pairs, one per field."""
    node = _field_type(key, source) if key else Config
    if isinstance(value, dict) and dataclasses.is_dataclass(node):
        for name, item in value.items():
            yield from _leaves(f"{key}.{name}" if key else str(name), item, source)
    else:
        yield key, value


def _merge(merged: DictConfig, origins: dict[str, str], key: str, value: Any, source: str) -> None:
    # One key at a time, so that an error names exactly the key and the layer it came from.
    nested = value
    for part in reversed(key.split(".")):
        nested = {part: nested}
    try:
        merged.merge_with(nested)
    except OmegaConfBaseException as error:
        hint = _type_name(_field_type(key, source))
        raise ConfigError(f"{source}: {key}: expected {hint}, got {value!r}", key) from error
    origins[key] = source


def _parse_override(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or "" in key.split("."):
        raise ConfigError(f"override {text!r}: malformed, expected key=value with a dotted key, e.g. train.lr=1e-5")
    source = f"override {text!r}"
    if _field_type(key, source) is str:
        # Verbatim: yaml would read name=007 as the int 7 and so store '7', and strip quotes or comments.
        return key, raw
    try:
        return key, yaml.safe_load(raw)  # lists, numbers, mappings: train.lr_dec_epoch=[10,12]
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: {key}: cannot parse {raw!r} as a yaml value", key) from error


def _to_dataclasses(merged: DictConfig, origins: dict[str, str]) -> Config:
    try:
        return typing.cast(Config, OmegaConf.to_object(merged))
    except ConfigError as error:  # raised by a __post_init__ check, which knows the key but not its source
        source = origins.get(error.key or "")
        raise ConfigError(f"{source}: {error}" if source else str(error), error.key) from error
    except OmegaConfBaseException as error:  # e.g. an interpolation ${...} that does not resolve
        key = getattr(error, "full_key", None) or None
        source = origins.get(key or "")
        message = str(error).splitlines()[0]
        raise ConfigError(f"{source + ': ' if source else ''}{key}: {message}", key) from error


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Builds a config from Hand4Whole's defaults, an optional yaml overlay and key=value overrides.

    Args:
        path: None for the defaults only; a bare name such as 'agora_finetune' or 'agora_finetune.yaml',
            looked up in main/configs/; or a path to a yaml file (for example a saved run config), used
            as given. The yaml holds a nested mapping of the keys to change; dotted keys also work.
        overrides: strings 'key=value' applied in order after the file. Keys are dotted for nested
            fields ('train.lr=1e-5'); values are parsed as yaml ('train.lr_dec_epoch=[10,12]'), except
            for str fields, which take the text after '=' verbatim ('human_model_path=/tmp/smplx').

    Returns:
        A plain `Config` whose `human_model_path`, `data_dir` and `output_dir` are absolute, relative
        ones having been resolved against the repository root (not the current directory).

    Raises:
        ConfigError: a missing config file (the message lists the available ones), an unknown key, a
            value of the wrong type or length, an override without '=', or a dataset name that data.DATASETS
            does not know (the message lists the known ones); the one-line message names the key and the file
            or override it came from.
    """
    if isinstance(overrides, str):  # a lone string is a Sequence[str] of characters: catch the slip
        raise TypeError(f"overrides must be a sequence of 'key=value' strings, got the string {overrides!r}")
    merged = OmegaConf.structured(Config)
    origins: dict[str, str] = {}
    if path is not None:
        file = _find_config_file(path)
        source = f"file '{file}'"
        for key, value in _leaves("", _read_yaml(file), source):
            _merge(merged, origins, key, value, source)
    for text in overrides:
        key, value = _parse_override(text)
        for leaf, item in _leaves(key, value, f"override {text!r}"):
            _merge(merged, origins, leaf, item, f"override {text!r}")
    cfg = _to_dataclasses(merged, origins)
    for name in PATH_KEYS:
        setattr(cfg, name, str(resolve_repo_path(getattr(cfg, name))))
    _check_dataset_names(cfg.data, origins)
    return cfg


def _check_dataset_names(data_cfg: DataConfig, origins: dict[str, str]) -> None:
    """Every name in data.trainset_3d, data.trainset_2d and data.testset is a key of data.DATASETS.

    Checked when the config loads, so that a typo stops a run before any dataset is read or any folder written.
    ``data`` is imported here, not at the top: it imports torch and every loader, which the rest of this module
    (and a tool that only reads configs) does not need; its DATASETS is read at call time, so a registration
    made after import (docs/extending.md) counts.
    """
    import data  # lazy: see the docstring

    known = sorted(data.DATASETS)
    for key, names in (("data.trainset_3d", data_cfg.trainset_3d), ("data.trainset_2d", data_cfg.trainset_2d),
                       ("data.testset", [data_cfg.testset])):  # fmt: skip
        for name in names:
            if name not in data.DATASETS:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                source = origins.get(key) or next((o for k, o in origins.items() if k.startswith(key + ".")), "")
                raise ConfigError(f"{source + ': ' if source else ''}{key}: unknown dataset {name!r}{hint} (known "
                                  f"datasets: {', '.join(known)})", key)  # fmt: skip


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Returns the config as nested dicts of plain Python values (tuples as lists).

    The result is what `save_config` writes and what checkpoints embed: yaml.safe_dump and
    torch.load(weights_only=True) both accept it.
    """
    return _plain(dataclasses.asdict(cfg))


def save_config(cfg: Config, path: str | os.PathLike[str]) -> None:
    """Writes the config as yaml; `load_config(path)` reads it back into an equal `Config`.

    The file is written to a temporary file in the same folder and renamed over `path`, so that a crash
    never leaves a truncated config next to a run's checkpoints (os.replace is atomic within a file
    system). The parent folder is created if needed.

    Args:
        cfg: the config to save.
        path: the yaml file to write, used as given (callers build it from `cfg.output_dir`).
    """
    target = Path(path).expanduser()
    text = "# main.config.save_config; read back with main.config.load_config(path)\n"
    text += yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)  # [512, 384] on one line
    write_bytes_atomic(target, text.encode("utf-8"), durable=True)
