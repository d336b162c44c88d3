"""Config section `v2v`: The V2V-PoseNet family's model, voxelisation and decoding (depth maps).

Each field: a comment that says what it is, its unit and the seed's value; `__post_init__` checks every field
with main/config_checks.py's helpers so that a wrong value fails naming its dotted key (`v2v.<field>`).
"""

from dataclasses import dataclass

from main.config_checks import _check_int, _float_tuple, _is_number, _require

__all__ = ["V2V_DECODERS", "V2V_TARGETS", "V2VConfig"]

V2V_TARGETS: tuple[str, ...] = ("gaussian", "integral")
V2V_DECODERS: tuple[str, ...] = ("argmax", "argmax_centroid", "soft_argmax")


@dataclass
class V2VConfig:
    """The V2V-PoseNet family's model, voxelisation and decoding (depth maps).

    Grid conventions (docs/conventions.md, "Depth maps and voxels (V2V)"): a cube of side `cube_mm` centred on the
    frame's reference point, `grid_size` voxels per axis, volumes indexed [x, y, z]; the network's heatmaps have
    `output_size` voxels per axis over the same cube.
    """

    grid_size: int = 88  # input occupancy grid, voxels per axis (V2V: 88); a multiple of 8 (three 2x poolings)
    # Heatmap voxels per axis: grid_size / 2 (V2V's 44) or grid_size (hpoes' V2VModel88: one more upsampling).
    output_size: int = 44
    # Cube side per axis (x, y, z), mm, used where a sample has no cube of its own (MSRA: V2V's 200 mm; HDF5 files
    # store one per sample).
    cube_mm: tuple[float, float, float] = (200.0, 200.0, 200.0)
    num_joints: int = 21  # J heatmaps (MSRA's 21 hand joints; NYU 14)
    # Network width: channels 16 * m in the first block (V2V: 1; hpoes' width_multiplier); 16 * m >= 1.
    width_multiplier: float = 1.0
    # 'gaussian': MSE against unnormalised Gaussians (V2V); 'integral': the port's PoseFix-style loss, 0.5 *
    # softmax cross-entropy against one-hot trilinear targets + 0.5 * L1 of the soft-argmax coordinates.
    target: str = "gaussian"
    # Heatmap -> joint: 'argmax' (V2V, the voxel centre), 'argmax_centroid' (hpoes: weighted centroid of the
    # 3x3x3 neighbourhood of the argmax), 'soft_argmax' (the expectation of the softmax; the integral variant's).
    decoder: str = "argmax"
    gaussian_sigma: float = 1.7  # target Gaussian's sigma, voxels of the output grid (V2V: 1.7)
    # Weights of the integral target's two terms (the port: 0.5 and 0.5), heatmap CE and coordinate L1 (voxels).
    integral_ce_weight: float = 0.5
    integral_l1_weight: float = 0.5
    # Training augmentation, one 4x4 transform of grid coordinates per sample (V2V's): isotropic scale range,
    # rotation about the z axis (degrees, uniform in +-), translation (voxels of the input grid, uniform in +-).
    augment: bool = True
    aug_scale: tuple[float, float] = (0.8, 1.2)
    aug_rotation_deg: float = 40.0
    aug_translation_voxels: float = 8.0
    # hpoes' `--global_joints`: one heatmap, the maximum of the joints' Gaussians, for detecting unlabelled joints;
    # the J strongest peaks are the prediction and the evaluation matches them to the ground truth (Hungarian).
    global_heatmap: bool = False
    # HDF5 voxel files (data.h5_train/h5_dev/h5_test): the group of voxel volumes (hpoes' --data_label) and the
    # per-sample cube dataset (hpoes' --cubes_label).
    h5_voxels_key: str = "real_voxels"
    h5_cubes_key: str = "cube"
    # Axis order of the HDF5 volumes: 'xyz' (ours, tool/make_voxel_h5.py) or 'yxz' (hpoes' own files; swapped on read).
    h5_volume_axes: str = "xyz"

    def __post_init__(self) -> None:
        _check_int("v2v.grid_size", self.grid_size, 8)
        _require(self.grid_size % 8 == 0, "v2v.grid_size", "a multiple of 8 (the network pools three times)",
                 self.grid_size)  # fmt: skip
        _check_int("v2v.output_size", self.output_size, 1)
        sizes = (self.grid_size // 2, self.grid_size)
        _require(self.output_size in sizes, "v2v.output_size", f"grid_size / 2 or grid_size, one of {sizes}",
                 self.output_size)  # fmt: skip
        self.cube_mm = _float_tuple("v2v.cube_mm", self.cube_mm, 3, positive=True)  # type: ignore[assignment]
        _check_int("v2v.num_joints", self.num_joints, 1)
        width = self.width_multiplier
        _require(_is_number(width) and round(16 * width) >= 1, "v2v.width_multiplier", "a number with 16 * m >= 1",
                 width)  # fmt: skip
        self.width_multiplier = float(width)
        _require(self.target in V2V_TARGETS, "v2v.target", f"one of {V2V_TARGETS}", self.target)
        _require(self.decoder in V2V_DECODERS, "v2v.decoder", f"one of {V2V_DECODERS}", self.decoder)
        for name in ("gaussian_sigma", "integral_ce_weight", "integral_l1_weight", "aug_rotation_deg",
                     "aug_translation_voxels"):  # fmt: skip
            value = getattr(self, name)
            positive = name == "gaussian_sigma"
            ok = _is_number(value) and (value > 0 if positive else value >= 0)
            _require(ok, f"v2v.{name}", "a positive number" if positive else "a number >= 0", value)
            setattr(self, name, float(value))
        scale = _float_tuple("v2v.aug_scale", self.aug_scale, 2, positive=True)
        _require(scale[0] <= scale[1], "v2v.aug_scale", "(low, high) with low <= high", self.aug_scale)
        self.aug_scale = scale  # type: ignore[assignment]
        for name in ("augment", "global_heatmap"):
            _require(isinstance(getattr(self, name), bool), f"v2v.{name}", "true or false", getattr(self, name))
        if self.global_heatmap:
            _require(self.target == "gaussian", "v2v.target", "'gaussian' with v2v.global_heatmap (one heatmap of "
                     "all joints has no per-joint integral loss)", self.target)  # fmt: skip
        for name in ("h5_voxels_key", "h5_cubes_key"):
            value = getattr(self, name)
            _require(isinstance(value, str) and value != "", f"v2v.{name}", "a non-empty HDF5 key", value)
        axes = ("xyz", "yxz")
        _require(self.h5_volume_axes in axes, "v2v.h5_volume_axes", f"one of {axes}", self.h5_volume_axes)
