"""Config section `triangulation`: the learnable-triangulation model (algebraic, RANSAC, volumetric).

Each field: a comment that says what it is, its unit and the seed's value; `__post_init__` checks every field
with main/config_checks.py's helpers so that a wrong value fails naming its dotted key (`triangulation.<field>`).
The seed is Iskakov et al.'s learnable triangulation (ICCV 2019); main/configs/triangulation_*.yaml hold its
settings per dataset and method.
"""

from dataclasses import dataclass

from main.config_checks import _check_int, _is_int, _is_number, _require

__all__ = ["TRIANGULATION_METHODS", "VOLUME_AGGREGATIONS", "TriangulationConfig"]

TRIANGULATION_METHODS: tuple[str, ...] = ("algebraic", "volumetric", "ransac")
VOLUME_AGGREGATIONS: tuple[str, ...] = ("sum", "max", "conf", "conf_norm", "softmax")
_RESNET_DEPTHS: tuple[int, ...] = (18, 34, 50, 101, 152)  # main/config.py's RESNET_DEPTHS (it imports this module)


@dataclass
class TriangulationConfig:
    """The triangulation family's model (main/triangulation/): a shared 2D backbone and one of three 3D readers.

    Units: world millimetres (the datasets convert CMU Panoptic's centimetres on load), pixels of each view's input
    crop (`multiview.image_shape`), heatmap cells at stride 4.
    """

    # 'algebraic': soft-argmax 2D joints per view, confidence-weighted DLT; 'volumetric': features unprojected into
    # a cuboid around the pelvis, a V2V network, 3D soft-argmax; 'ransac': hard-argmax 2D joints, RANSAC over view
    # pairs (not trainable: it tests an algebraic run's weights).
    method: str = "algebraic"
    backbone_depth: int = 152  # ResNet depth of the simple-baseline 2D backbone (the seed: 152)
    num_joints: int = 17  # J heatmaps and 3D joints (Human3.6M's 17; CMU Panoptic's COCO-19: 19)
    # A local file with the backbone's starting weights for training: a torchvision ImageNet ResNet state_dict, or
    # a simple-baseline pose_resnet file (the seed's pose_resnet_4.5_pixels_human36m.pth: deconvolutions and
    # heatmap layer too); '' keeps the random init. Nothing is downloaded. Relative to the repository root.
    backbone_weights: str = ""
    # Heatmap logits are multiplied by this before the 2D softmax (the seed: 100).
    heatmap_multiplier: float = 100.0
    # Algebraic: per-view, per-joint confidences from a head on the stride-32 features weight the DLT rows (the
    # seed's learnable weights: true); false weights every valid view 1.
    use_confidences: bool = True
    # RANSAC: inlier threshold on the reprojection distance, pixels of the input crop (the seed compares half the
    # distance with 15 px: 30 here), and the Huber least-squares refinement of each joint from its inliers after
    # their DLT (the seed's direct_optimization: true).
    ransac_threshold_px: float = 30.0
    ransac_direct_optimization: bool = True
    # Volumetric: how the views' feature volumes combine (the seed's best model: 'softmax').
    volume_aggregation: str = "softmax"
    cuboid_side_mm: float = 2500.0  # side of the cuboid around the pelvis, mm (the seed: 2500)
    volume_size: int = 64  # G, voxels per cuboid side (the seed: 64)
    volume_features: int = 32  # channels of the 1x1 conv on the 256 deconvolution features (the seed: 32)
    # The V2V network over the volume: its width, pooling levels and the most channels of any level (the seed: 32,
    # 5 and 128); volume_size must be a multiple of 2 ** volume_net_levels, at least twice it (64 = 2 x 32).
    volume_net_channels: int = 32
    volume_net_levels: int = 5
    volume_net_max_channels: int = 128
    volume_multiplier: float = 1.0  # volume logits are multiplied by this before the 3D softmax (the seed: 1)
    # Index of the world's vertical axis, about which the cuboid turns in training: 2 for Human3.6M (z up), 1 for
    # CMU Panoptic (y down).
    vertical_axis: int = 2
    rotate_cuboid_in_training: bool = True  # uniform random rotation about the vertical axis (the seed: on)
    # Losses: world mm are multiplied by keypoints_scale first (the seed: 0.1, mm -> cm); algebraic: MSESmooth with
    # this threshold on the squared error per coordinate (the seed: 400, i.e. 20 cm); volumetric: L1 + this weight x
    # the volumetric cross-entropy at the voxel nearest each GT joint (the seed: 0.01).
    keypoints_scale: float = 0.1
    mse_smooth_threshold: float = 400.0
    volumetric_ce_weight: float = 0.01
    # Adam learning rates of the parameter groups: the 2D backbone (with its confidence heads; the seed: 1e-5
    # algebraic, 1e-4 volumetric) and the volumetric part, 1x1 features conv and V2V (the seed: 1e-3). They replace
    # train.lr, whose step decay (train.lr_dec_epoch, lr_dec_factor) applies to both.
    backbone_lr: float = 1e-4
    volume_net_lr: float = 1e-3

    def __post_init__(self) -> None:
        _require(self.method in TRIANGULATION_METHODS, "triangulation.method", f"one of {TRIANGULATION_METHODS}",
                 self.method)  # fmt: skip
        _require(_is_int(self.backbone_depth) and self.backbone_depth in _RESNET_DEPTHS, "triangulation.backbone_depth",
                 f"one of {_RESNET_DEPTHS}", self.backbone_depth)  # fmt: skip
        _check_int("triangulation.num_joints", self.num_joints, 1)
        _require(isinstance(self.backbone_weights, str), "triangulation.backbone_weights", "a path or ''",
                 self.backbone_weights)  # fmt: skip
        for name in ("use_confidences", "ransac_direct_optimization", "rotate_cuboid_in_training"):
            value = getattr(self, name)
            _require(isinstance(value, bool), f"triangulation.{name}", "true or false", value)
        _require(self.volume_aggregation in VOLUME_AGGREGATIONS, "triangulation.volume_aggregation",
                 f"one of {VOLUME_AGGREGATIONS}", self.volume_aggregation)  # fmt: skip
        for name in ("heatmap_multiplier", "ransac_threshold_px", "cuboid_side_mm", "volume_multiplier",
                     "keypoints_scale", "mse_smooth_threshold", "backbone_lr", "volume_net_lr"):  # fmt: skip
            value = getattr(self, name)
            _require(_is_number(value) and value > 0, f"triangulation.{name}", "a positive number", value)
            setattr(self, name, float(value))
        weight = self.volumetric_ce_weight
        _require(_is_number(weight) and weight >= 0, "triangulation.volumetric_ce_weight", "a number >= 0", weight)
        self.volumetric_ce_weight = float(weight)
        _check_int("triangulation.volume_features", self.volume_features, 1)
        _check_int("triangulation.volume_net_channels", self.volume_net_channels, 2)
        _check_int("triangulation.volume_net_levels", self.volume_net_levels, 1)
        _check_int("triangulation.volume_net_max_channels", self.volume_net_max_channels, 1)
        _check_int("triangulation.volume_size", self.volume_size, 2)
        divisor = 2**self.volume_net_levels
        # at least 2 voxels per side at the bottom level: BatchNorm needs more than one value per channel in training
        _require(self.volume_size % divisor == 0 and self.volume_size >= 2 * divisor, "triangulation.volume_size",
                 f"a multiple of 2 ** triangulation.volume_net_levels = {divisor}, at least {2 * divisor}",
                 self.volume_size)  # fmt: skip
        _require(_is_int(self.vertical_axis) and self.vertical_axis in (0, 1, 2), "triangulation.vertical_axis",
                 "0, 1 or 2 (x, y, z of the world)", self.vertical_axis)  # fmt: skip
