"""V2V-PoseNet (Moon et al., CVPR 2018): the 'v2v' family's network, a depth map or voxel grid -> 3D hand joints.

The sample (data/MSRA/MSRA.py and data/VoxelH5/VoxelH5.py document it; B is the batch):
    inputs['depth_mm'] (B, H, W) depth in mm, 0 = none, with inputs['intrinsics'] (B, 4) fx, fy, cx, cy pixels
        (MSRA); or inputs['voxels'] (B, G, G, G) bool occupancy indexed [x, y, z] (HDF5 voxel files);
    inputs['ref_point_mm'] (B, 3) the cube centre and inputs['cube_mm'] (B, 3) its side, camera mm;
    targets['joints_mm'] (B, J, 3) camera mm ('train' mode);
    meta_info['aug_seed'] (B,) int64, optional: the samples' augmentation seeds (the datasets draw them from
        (train.seed, epoch, index)); without it the augmentation draws from torch's global generator.

The forward pass (docs/conventions.md, "Depth maps and voxels (V2V)"):
1. occupancy: depth -> camera points (`depth_to_points`) -> one scatter into a G^3 grid on the batch's device
   (`voxelize`), or the given voxels;
2. 'train' mode with `v2v.augment`: one random 4x4 transform of grid coordinates per sample (V2V's scale,
   rotation about z, translation; `augmentation_matrices`, from a generator seeded once per step from the batch's
   seeds), applied to the points before the scatter, or to a given volume by resampling it (nearest voxel), and
   to the joints;
3. V2VPoseNet (common/nets/v2v.py): J heatmaps of S^3 (S = G / 2, or G with hpoes' full-resolution variant);
4. 'train': `v2v.target` 'gaussian' -> {'heatmap': MSE against Gaussians of sigma `v2v.gaussian_sigma`} (V2V) or
   'integral' -> {'integral': 0.5 CE against one-hot trilinear targets + 0.5 L1 of soft-argmax coordinates}
   (the PyTorch port's); 'test': `v2v.decoder` ('argmax', 'argmax_centroid', 'soft_argmax') -> output-grid
   coordinates -> input grid -> camera mm: {'joints_mm': (B, J, 3)}.

With `v2v.global_heatmap` (hpoes' --global_joints) the network has one output volume, trained against the maximum
of the joints' Gaussians; its 'joints_mm' are the J strongest local maxima, strongest first (unordered joints: the
datasets match them to the ground truth before measuring).

The module names are the PyTorch port's (front_layers, encoder_decoder, back_layers, output_layer: the model is a
`V2VPoseNet`), so the port's state_dict loads without renaming.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from common.geometry.voxel import (
    augmentation_matrices,
    decode_argmax,
    decode_argmax_centroid,
    decode_soft_argmax,
    depth_to_points,
    gaussian_mse_loss,
    gaussian_targets,
    grid_to_points,
    integral_loss,
    points_to_grid,
    rescale_grid,
    voxelize,
)
from common.nets.v2v import V2VPoseNet
from common.utils.draw import draw_keypoints, draw_skeleton

__all__ = [
    "DECODERS",
    "MODES",
    "V2VModel",
    "VolumePicture",
    "get_v2v_model",
    "global_peaks",
    "resample_volume",
    "step_generator",
    "volume_picture",
]

MODES: tuple[str, ...] = ("train", "test")
DECODERS: dict[str, Callable[[Tensor], Tensor]] = {
    "argmax": decode_argmax,
    "argmax_centroid": decode_argmax_centroid,
    "soft_argmax": decode_soft_argmax,
}
"""`v2v.decoder` -> (..., S, S, S) heatmaps to (..., 3) output-grid coordinates (common/geometry/voxel_targets.py)."""


def step_generator(aug_seed: Tensor | None) -> torch.Generator | None:
    """A CPU generator seeded from one batch's per-sample seeds (None: draw from torch's global generator).

    The seeds are read on the host (one small copy per training step; on CUDA it waits for the queued work, a
    negligible cost next to a 3D convolution step). Mixing all of them through numpy's SeedSequence gives every
    batch of samples its own stream, whatever the batch order or the process.
    """
    if aug_seed is None:
        return None
    entropy = [int(seed) for seed in aug_seed.reshape(-1).cpu().tolist()]
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)  # 62 bits: a valid seed


def resample_volume(volume: Tensor, transform: Tensor) -> Tensor:
    """A voxel volume moved by a grid-coordinate transform: nearest-voxel resampling through its inverse.

    The output voxel with centre g' takes the input's value at ``transform^-1 g'`` (zero outside the grid), so the
    occupied voxels go where `voxelize` would have put their points under the same transform.

    Args:
        volume: (B, C, G, G, G) float volumes indexed [x, y, z].
        transform: (B, 4, 4) grid-coordinate transforms (`augmentation_matrices`).

    Returns:
        (B, C, G, G, G) the moved volumes, same dtype.
    """
    size = volume.shape[-1]
    # float64: exact voxel centres under bf16 autocast too (which would run a float32 matmul in bfloat16)
    centres = torch.arange(size, device=volume.device, dtype=torch.float64) + 0.5  # (G,)
    grid = torch.stack(torch.meshgrid(centres, centres, centres, indexing="ij"), dim=-1)  # (G, G, G, 3) x, y, z
    inverse = torch.linalg.inv(transform.to(device=volume.device, dtype=torch.float64))  # (B, 4, 4)
    source = grid.reshape(1, -1, 3) @ inverse[:, :3, :3].transpose(-1, -2) + inverse[:, None, :3, 3]  # (B, G^3, 3)
    # grid_sample's last coordinate indexes the first spatial axis (D = x here): (x, y, z) -> (z, y, x), and
    # align_corners=False maps [-1, 1] to the outer faces of the voxels, i.e. grid coordinates [0, G].
    normalized = (source / size * 2.0 - 1.0).flip(-1).reshape(-1, size, size, size, 3).float()
    return F.grid_sample(volume.float(), normalized, mode="nearest", padding_mode="zeros",
                         align_corners=False).to(volume.dtype)  # fmt: skip


def global_peaks(heatmap: Tensor, count: int) -> Tensor:
    """The `count` strongest local maxima (3x3x3 neighbourhoods) of one volume per sample, strongest first.

    Args:
        heatmap: (B, S, S, S) volumes indexed [x, y, z].
        count: how many peaks (J).

    Returns:
        (B, count, 3) output-grid coordinates of the peak voxels' centres (index + 0.5).
    """
    size = heatmap.shape[-1]
    pooled = F.max_pool3d(heatmap[:, None], kernel_size=3, stride=1, padding=1)[:, 0]  # (B, S, S, S)
    peaks = torch.where(heatmap >= pooled, heatmap, torch.full_like(heatmap, float("-inf")))
    flat = peaks.flatten(1).topk(count, dim=-1).indices  # (B, count)
    index = torch.stack((flat // (size * size), (flat // size) % size, flat % size), dim=-1)  # (B, count, 3)
    return index.to(torch.promote_types(heatmap.dtype, torch.float32)) + 0.5


class V2VModel(V2VPoseNet):
    """V2VPoseNet with the family's input stage (voxelisation, augmentation), losses and decoding.

    Args:
        v2v_cfg: the `v2v` config section (main/config_v2v.py).
    """

    def __init__(self, v2v_cfg: Any) -> None:
        self.num_joints = int(v2v_cfg.num_joints)
        self.global_heatmap = bool(v2v_cfg.global_heatmap)
        super().__init__(1, 1 if self.global_heatmap else self.num_joints, v2v_cfg.width_multiplier,
                         full_resolution=v2v_cfg.output_size == v2v_cfg.grid_size)  # fmt: skip
        self.grid_size, self.output_size = int(v2v_cfg.grid_size), int(v2v_cfg.output_size)
        self.target, self.decode = v2v_cfg.target, DECODERS[v2v_cfg.decoder]
        self.sigma = float(v2v_cfg.gaussian_sigma)
        self.ce_weight, self.l1_weight = float(v2v_cfg.integral_ce_weight), float(v2v_cfg.integral_l1_weight)
        self.augment = bool(v2v_cfg.augment)
        self.aug = {"scale": tuple(v2v_cfg.aug_scale), "rotation_deg": float(v2v_cfg.aug_rotation_deg),
                    "translation_voxels": float(v2v_cfg.aug_translation_voxels)}  # fmt: skip

    def occupancy(self, inputs: dict[str, Tensor], transform: Tensor | None = None) -> Tensor:
        """(B, 1, G, G, G) float occupancy of the inputs (depth maps or voxels) under a grid transform (or none)."""
        ref, cube = inputs["ref_point_mm"], inputs["cube_mm"]
        if "voxels" in inputs:
            volume = inputs["voxels"][:, None].float()  # (B, 1, G, G, G)
            if volume.shape[-3:] != (self.grid_size,) * 3:
                raise ValueError(f"inputs['voxels'] are {tuple(volume.shape[-3:])} volumes, v2v.grid_size is "
                                 f"{self.grid_size}")  # fmt: skip
            return volume if transform is None else resample_volume(volume, transform)
        points_mm, valid = depth_to_points(inputs["depth_mm"], inputs["intrinsics"])  # (B, H*W, 3), (B, H*W)
        return voxelize(points_mm, valid, ref, cube, self.grid_size, transform)

    def draw_transform(self, inputs: dict[str, Tensor], meta_info: dict[str, Tensor] | None) -> Tensor:
        """(B, 4, 4) random augmentation of one training batch, drawn from the batch's step generator."""
        batch = inputs["ref_point_mm"].shape[0]
        generator = step_generator(None if meta_info is None else meta_info.get("aug_seed"))
        return augmentation_matrices(batch, generator, grid_size=self.grid_size, device=inputs["ref_point_mm"].device,
                                     **self.aug)  # fmt: skip

    def forward(  # type: ignore[override]
        self,
        inputs: dict[str, Tensor],
        targets: dict[str, Tensor] | None = None,
        meta_info: dict[str, Tensor] | None = None,
        mode: str = "test",
    ) -> dict[str, Tensor]:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; accepted: {MODES}")
        transform = self.draw_transform(inputs, meta_info) if mode == "train" and self.augment else None
        heatmaps = super().forward(self.occupancy(inputs, transform))  # (B, J or 1, S, S, S)
        ref, cube = inputs["ref_point_mm"], inputs["cube_mm"]
        if mode == "train":
            if targets is None:
                raise ValueError("'train' mode needs targets['joints_mm']")
            joints_grid = points_to_grid(targets["joints_mm"], ref, cube, self.grid_size, transform)  # (B, J, 3)
            return self.loss(heatmaps, rescale_grid(joints_grid, self.grid_size, self.output_size))
        heatmaps = heatmaps.float()  # decoding in float32 (a bf16 argmax ties and a bf16 softmax loses voxels)
        if self.global_heatmap:
            coords = global_peaks(heatmaps[:, 0], self.num_joints)
        else:
            coords = self.decode(heatmaps)  # (B, J, 3) output grid
        joints_grid = rescale_grid(coords, self.output_size, self.grid_size)
        return {"joints_mm": grid_to_points(joints_grid, ref, cube, self.grid_size)}

    def loss(self, heatmaps: Tensor, joints_out: Tensor) -> dict[str, Tensor]:
        """The family's loss term from (B, J|1, S, S, S) heatmaps and (B, J, 3) output-grid joints."""
        if self.global_heatmap:  # one volume: the maximum of the joints' Gaussians (hpoes' global joints)
            target = gaussian_targets(joints_out.float(), self.output_size, self.sigma).amax(1, keepdim=True)
            return {"heatmap": (heatmaps.float() - target).square().mean()}
        if self.target == "integral":
            return {"integral": integral_loss(heatmaps, joints_out, None, self.ce_weight, self.l1_weight)}
        return {"heatmap": gaussian_mse_loss(heatmaps, joints_out, self.sigma)}


def get_v2v_model(cfg: Any, mode: str) -> V2VModel:
    """The V2V network of a config, on the CPU, with V2V's initialisation (convolutions N(0, 0.001), zero bias) in
    both modes (in 'test' mode a checkpoint replaces it)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; accepted: {MODES}")
    return V2VModel(cfg.v2v)


class VolumePicture:
    """The training picture: per sample, the input volume's front (x-y) and side (z-y) maximum projections with the
    predicted joints (and the hand skeleton when the joints are MSRA's 21), side by side.

    Args:
        skeleton: (E, 2) joint index pairs to draw as bones, or () for points only.
    """

    def __init__(self, skeleton: tuple[tuple[int, int], ...] = ()) -> None:
        self.skeleton = skeleton

    def draw(self, model: nn.Module, inputs: dict[str, Tensor]) -> np.ndarray | None:
        joints_mm = model(inputs, mode="test")["joints_mm"]
        volume = model.occupancy(inputs)[:, 0].float()  # (B, G, G, G) [x, y, z]
        size = volume.shape[-1]
        grid = points_to_grid(joints_mm, inputs["ref_point_mm"], inputs["cube_mm"], size).cpu().numpy()  # (B, J, 3)
        zoom = max(1, 256 // size)
        front = volume.amax(-1).transpose(-1, -2).cpu().numpy()  # (B, y, x): rows y, columns x
        side = volume.amax(-3).cpu().numpy()  # (B, y, z): rows y, columns z
        panels = []
        for sample in range(volume.shape[0]):
            for image, columns in ((front[sample], 0), (side[sample], 2)):
                canvas = np.repeat(np.kron(image, np.ones((zoom, zoom)))[..., None], 3, axis=-1) * 0.6  # (H, W, 3)
                points = grid[sample][:, (columns, 1)] * zoom  # grid units -> pixels (voxel i spans [i, i + 1))
                if self.skeleton and len(points) == 1 + max(max(edge) for edge in self.skeleton):
                    canvas = draw_skeleton(canvas, points - 0.5, self.skeleton, thickness=1)
                panels.append(draw_keypoints(canvas, points - 0.5, radius=2))
        return (np.clip(np.concatenate(panels, axis=1), 0.0, 1.0) * 255).astype(np.uint8)

    def close(self) -> None:
        pass


def volume_picture(cfg: Any) -> VolumePicture:
    """The family's `make_picture` hook (the MSRA hand skeleton when the joints are its 21)."""
    from data.MSRA.MSRA import MSRA_SKELETON  # lazy: the datasets are not needed to build the network

    return VolumePicture(MSRA_SKELETON if cfg.v2v.num_joints == 21 and not cfg.v2v.global_heatmap else ())
