"""Learnable triangulation (Iskakov et al., ICCV 2019): the algebraic, volumetric and RANSAC networks.

Every network runs the shared 2D backbone (main/triangulation/backbone.py) on each valid view of a multi-view
sample (data/multiview.py documents it) and returns world joints. Called as every family:
`model(inputs, targets, meta_info, mode)` with

    inputs['images']  (B, V, 3, H, W) normalised RGB crops; inputs['view_mask'] (B, V) bool, False = no view;
    meta_info['proj_matrices'] (B, V, 3, 4) world mm -> pixels of the H x W crop;
    meta_info['cuboid_center_world_mm'] (B, 3) (volumetric);
    targets['joints_world_mm'] (B, J, 3), targets['joints_valid'] (B, J) (training).

The backbone sees only the valid views (gathered, then scattered back with zeros), so padding views change
neither the result nor the BatchNorm statistics. Heatmap cell (x, y) is crop pixel (x W / w, y H / h), the seed's
plain scaling; the projection matrices are rescaled the same way to heatmap pixels for the DLT and unprojection.

'train' returns the weighted loss terms (world mm x `keypoints_scale`, the seed's cm):
    algebraic: {'joints_mse_smooth'}; volumetric: {'joints_l1', 'volumetric_ce'}; RANSAC does not train.
'test' returns predictions only:
    joints_world_mm (B, J, 3) float32;
    joints_2d_px (B, V, J, 2): crop pixels per view, zeros for missing views: the soft-argmax (algebraic) or
        hard-argmax (RANSAC) detections, the projection of the 3D joints (volumetric);
    joint_confidences (B, V, J): the normalised DLT weights (algebraic with confidences).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from common.engine.cli import UsageError
from common.geometry import soft_argmax_2d
from common.geometry.triangulation import triangulate_dlt, triangulate_ransac
from common.geometry.unprojection import aggregate_volumes, cuboid_grid, unproject_features
from common.nets import full_precision
from main.triangulation.backbone import DECONV_CHANNELS, PoseResNet
from main.triangulation.losses import keypoints_l1, mse_smooth, volumetric_ce
from main.triangulation.volume_net import VolumeNet

__all__ = [
    "MODES",
    "AlgebraicTriangulationNet",
    "RansacTriangulationNet",
    "TriangulationNet",
    "VolumetricTriangulationNet",
    "normalized_view_weights",
    "project_points",
    "scale_projections",
]

MODES: tuple[str, ...] = ("train", "test")
CONFIDENCE_EPS = 1e-5  # added to the normalised confidences, as the seed (no joint loses every row)


def scale_projections(proj_matrices: Tensor, scale_x: float, scale_y: float) -> Tensor:
    """(..., 3, 4) world -> crop pixels to world -> pixels of a map scale_x, scale_y times the crop's size."""
    rows = proj_matrices.new_tensor([scale_x, scale_y, 1.0]).view(3, 1)
    return proj_matrices * rows


def project_points(proj_matrices: Tensor, points_world: Tensor) -> Tensor:
    """Pinhole projection of every point into every view.

    Args:
        proj_matrices: (B, V, 3, 4). points_world: (B, J, 3).

    Returns:
        (B, V, J, 2) pixels; points at or behind a camera (or a zero matrix) give zeros.
    """
    homogeneous = torch.cat((points_world, torch.ones_like(points_world[..., :1])), dim=-1)  # (B, J, 4)
    uvw = torch.einsum("bvrc,bjc->bvjr", proj_matrices, homogeneous)  # (B, V, J, 3)
    depth = uvw[..., 2:]
    ahead = depth > 1e-6
    return torch.where(ahead, uvw[..., :2] / torch.where(ahead, depth, torch.ones_like(depth)), 0.0)


def normalized_view_weights(confidences: Tensor | None, view_mask: Tensor, num_joints: int) -> Tensor:
    """DLT weights: the confidences normalised over the valid views per joint, + 1e-5 (the seed's rule); 1 per valid
    view without confidences. Missing views weigh exactly 0.

    Args:
        confidences: (B, V, J) in (0, 1), or None.
        view_mask: (B, V) bool.
        num_joints: J.

    Returns:
        (B, V, J) float weights.
    """
    mask = view_mask.unsqueeze(-1).float()  # (B, V, 1)
    if confidences is None:
        return mask.expand(*view_mask.shape, num_joints)
    masked = confidences.float() * mask
    return masked / masked.sum(dim=1, keepdim=True).clamp_min(1e-12) + CONFIDENCE_EPS * mask


class TriangulationNet(nn.Module):
    """What the three networks share: the backbone over the valid views and the config's geometry.

    Args:
        tcfg: `cfg.triangulation`.
        alg_confidences: build the backbone's per-joint confidence head.
        vol_confidences: outputs of its per-channel volume confidence head (0: none).
    """

    def __init__(self, tcfg: Any, alg_confidences: bool = False, vol_confidences: int = 0) -> None:
        super().__init__()
        self.num_joints = int(tcfg.num_joints)
        self.heatmap_multiplier = float(tcfg.heatmap_multiplier)
        self.keypoints_scale = float(tcfg.keypoints_scale)
        self.backbone = PoseResNet(tcfg.backbone_depth, self.num_joints, alg_confidences, vol_confidences)

    @staticmethod
    def _inputs(inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        images, view_mask = inputs["images"], inputs["view_mask"].bool()
        if images.dim() != 5 or view_mask.shape != images.shape[:2]:
            raise ValueError(f"inputs['images'] must be (B, V, 3, H, W) and inputs['view_mask'] (B, V); got "
                             f"{tuple(images.shape)} and {tuple(view_mask.shape)}")  # fmt: skip
        return images, view_mask

    def run_backbone(self, images: Tensor, view_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The backbone on the valid views only.

        Args:
            images: (B, V, 3, H, W). view_mask: (B, V) bool.

        Returns:
            trunk: (N, C, H / 32, W / 32) and features: (N, 256, H / 4, W / 4) of the N valid views, in (b, v)
            order; index: (N,) their positions in the flattened (B * V) views (for `scatter_views`).
        """
        index = view_mask.flatten().nonzero().squeeze(1)  # (N,)
        trunk, features = self.backbone(images.flatten(0, 1).index_select(0, index))
        return trunk, features, index

    @staticmethod
    def scatter_views(values: Tensor, index: Tensor, view_mask: Tensor) -> Tensor:
        """(N, ...) per valid view -> (B, V, ...) with zeros at the missing views (differentiable)."""
        batch, views = view_mask.shape
        full = values.new_zeros((batch * views, *values.shape[1:]))
        return full.index_copy(0, index, values).unflatten(0, (batch, views))

    def detect_2d(self, images: Tensor, view_mask: Tensor) -> tuple[Tensor, Tensor, Tensor, tuple[int, int]]:
        """Soft-argmax 2D joints per view (what the training picture draws).

        Returns:
            points_hm: (B, V, J, 2) heatmap cells (zeros for missing views); trunk: (N, C, h32, w32) of the valid
            views; index: (N,); the heatmaps' (h, w).
        """
        trunk, features, index = self.run_backbone(images, view_mask)
        heatmaps = full_precision(self.backbone.final_layer(features))  # (N, J, h, w)
        points, _ = soft_argmax_2d(heatmaps * self.heatmap_multiplier)  # (N, J, 2) cells
        return self.scatter_views(points, index, view_mask), trunk, index, tuple(heatmaps.shape[-2:])

    @staticmethod
    def heatmap_scale(images: Tensor, heatmap_hw: tuple[int, int]) -> tuple[float, float]:
        """(x, y) heatmap cells per crop pixel."""
        return heatmap_hw[1] / images.shape[-1], heatmap_hw[0] / images.shape[-2]

    def triangulate(self, proj_matrices: Tensor, points_2d: Tensor, weights: Tensor) -> Tensor:
        """Batched weighted DLT (common.geometry.triangulation); tool/benchmark_multiview.py times a loop instead."""
        return triangulate_dlt(proj_matrices, points_2d, weights)

    def unproject(self, features: Tensor, proj_matrices: Tensor, grid_world: Tensor, view_mask: Tensor) -> Tensor:
        """Batched unprojection (common.geometry.unprojection); tool/benchmark_multiview.py times a loop instead."""
        return unproject_features(features, proj_matrices, grid_world, view_mask)


def _require(meta_info: dict[str, Tensor] | None, keys: tuple[str, ...], what: str) -> dict[str, Tensor]:
    if meta_info is None or any(key not in meta_info for key in keys):
        raise ValueError(f"{what} needs {', '.join(keys)}")
    return meta_info


class AlgebraicTriangulationNet(TriangulationNet):
    """Soft-argmax 2D joints per view, confidence-weighted DLT (module docstring).

    Args:
        tcfg: `cfg.triangulation` (num_joints, backbone_depth, heatmap_multiplier, use_confidences,
            keypoints_scale, mse_smooth_threshold).
    """

    def __init__(self, tcfg: Any) -> None:
        super().__init__(tcfg, alg_confidences=bool(tcfg.use_confidences))
        self.mse_smooth_threshold = float(tcfg.mse_smooth_threshold)

    def forward(self, inputs: dict[str, Tensor], targets: dict[str, Tensor] | None = None,
                meta_info: dict[str, Tensor] | None = None, mode: str = "test") -> dict[str, Tensor]:  # fmt: skip
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; accepted: {MODES}")
        images, view_mask = self._inputs(inputs)
        meta_info = _require(meta_info, ("proj_matrices",), "the algebraic model")
        points_hm, trunk, index, heatmap_hw = self.detect_2d(images, view_mask)
        confidences = None
        if self.backbone.alg_confidences is not None:
            confidences = self.scatter_views(self.backbone.alg_confidences(trunk).float(), index, view_mask)
        weights = normalized_view_weights(confidences, view_mask, self.num_joints)  # (B, V, J)
        scale_x, scale_y = self.heatmap_scale(images, heatmap_hw)
        proj_hm = scale_projections(meta_info["proj_matrices"].float(), scale_x, scale_y)
        joints = self.triangulate(proj_hm, points_hm.float(), weights).float()  # (B, J, 3) world mm
        if mode == "train":
            targets = _require(targets, ("joints_world_mm", "joints_valid"), "'train' mode")
            scale = self.keypoints_scale
            loss = mse_smooth(joints * scale, targets["joints_world_mm"].float() * scale,
                              targets["joints_valid"].float(), self.mse_smooth_threshold)  # fmt: skip
            return {"joints_mse_smooth": loss}
        points_px = points_hm / points_hm.new_tensor([scale_x, scale_y])
        out = {"joints_world_mm": joints, "joints_2d_px": points_px}
        if confidences is not None:
            out["joint_confidences"] = weights
        return out


class RansacTriangulationNet(TriangulationNet):
    """Hard-argmax 2D joints per view, RANSAC over view pairs (common.geometry.triangulation), per sample; test only.

    Its parameters are the algebraic network's (the confidence head included when `use_confidences`, unused
    here), so `main/test.py --ckpt <an algebraic snapshot>` loads strictly.

    Args:
        tcfg: `cfg.triangulation` (num_joints, backbone_depth, use_confidences, ransac_threshold_px,
            ransac_direct_optimization).
    """

    def __init__(self, tcfg: Any) -> None:
        super().__init__(tcfg, alg_confidences=bool(tcfg.use_confidences))
        self.threshold_px = float(tcfg.ransac_threshold_px)
        self.direct_optimization = bool(tcfg.ransac_direct_optimization)

    def forward(self, inputs: dict[str, Tensor], targets: dict[str, Tensor] | None = None,
                meta_info: dict[str, Tensor] | None = None, mode: str = "test") -> dict[str, Tensor]:  # fmt: skip
        if mode == "train":
            raise UsageError("triangulation.method='ransac' has nothing to train (hard argmax, RANSAC); train the "
                             "algebraic model and test its snapshot with the ransac config")  # fmt: skip
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; accepted: {MODES}")
        images, view_mask = self._inputs(inputs)
        proj_matrices = _require(meta_info, ("proj_matrices",), "the RANSAC model")["proj_matrices"].float()
        _, features, index = self.run_backbone(images, view_mask)
        heatmaps = self.backbone.final_layer(features)  # (N, J, h, w)
        height, width = heatmaps.shape[-2:]
        best = heatmaps.flatten(-2).argmax(dim=-1)  # (N, J)
        cells = torch.stack((best % width, best // width), dim=-1).float()  # (N, J, 2) (x, y)
        scale_x, scale_y = self.heatmap_scale(images, (height, width))
        points_px = self.scatter_views(cells / cells.new_tensor([scale_x, scale_y]), index, view_mask)
        joints = []
        for sample in range(images.shape[0]):  # views differ per sample; the RANSAC itself is per sample
            valid = view_mask[sample]
            points, _ = triangulate_ransac(proj_matrices[sample, valid], points_px[sample, valid],
                                           threshold_px=self.threshold_px, refine=True,
                                           direct_optimization=self.direct_optimization)  # fmt: skip
            joints.append(torch.as_tensor(points, dtype=torch.float32, device=images.device))
        return {"joints_world_mm": torch.stack(joints), "joints_2d_px": points_px}


class VolumetricTriangulationNet(TriangulationNet):
    """Features unprojected into a cuboid around the pelvis, aggregated over views, V2V, 3D soft-argmax.

    Modules (the seed's names): `backbone` (its `final_layer` frozen: the heatmaps are not used),
    `process_features` (1x1 conv 256 -> C), `volume_net` (main/triangulation/volume_net.py); `backbone.
    vol_confidences` for the 'conf' and 'conf_norm' aggregations.

    Args:
        tcfg: `cfg.triangulation` (volume_* fields, cuboid_side_mm, vertical_axis, rotate_cuboid_in_training,
            volume_aggregation, keypoints_scale, volumetric_ce_weight).
    """

    def __init__(self, tcfg: Any) -> None:
        self.aggregation = str(tcfg.volume_aggregation)
        confidences = int(tcfg.volume_features) if self.aggregation in ("conf", "conf_norm") else 0
        super().__init__(tcfg, vol_confidences=confidences)
        self.backbone.final_layer.requires_grad_(False)
        self.process_features = nn.Sequential(nn.Conv2d(DECONV_CHANNELS, tcfg.volume_features, kernel_size=1))
        self.volume_net = VolumeNet(tcfg.volume_features, self.num_joints, tcfg.volume_net_channels,
                                    tcfg.volume_net_levels, tcfg.volume_net_max_channels)  # fmt: skip
        self.cuboid_side_mm = float(tcfg.cuboid_side_mm)
        self.volume_size = int(tcfg.volume_size)
        self.volume_multiplier = float(tcfg.volume_multiplier)
        self.vertical_axis = int(tcfg.vertical_axis)
        self.rotate_in_training = bool(tcfg.rotate_cuboid_in_training)
        self.ce_weight = float(tcfg.volumetric_ce_weight)

    def forward(self, inputs: dict[str, Tensor], targets: dict[str, Tensor] | None = None,
                meta_info: dict[str, Tensor] | None = None, mode: str = "test") -> dict[str, Tensor]:  # fmt: skip
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; accepted: {MODES}")
        images, view_mask = self._inputs(inputs)
        meta_info = _require(meta_info, ("proj_matrices", "cuboid_center_world_mm"), "the volumetric model")
        trunk, features, index = self.run_backbone(images, view_mask)
        view_features = self.scatter_views(full_precision(self.process_features(features)), index, view_mask)
        confidences = None
        if self.backbone.vol_confidences is not None:
            confidences = self.scatter_views(self.backbone.vol_confidences(trunk).float(), index, view_mask)
        center = meta_info["cuboid_center_world_mm"].float()  # (B, 3)
        rotation = None
        if mode == "train" and self.rotate_in_training:  # augmentation of the 3D network's input
            rotation = torch.rand(center.shape[0], device=center.device) * (2.0 * math.pi)
        grid = cuboid_grid(center, self.cuboid_side_mm, self.volume_size, rotation, self.vertical_axis)
        scale_x, scale_y = self.heatmap_scale(images, tuple(features.shape[-2:]))
        proj_matrices = meta_info["proj_matrices"].float()
        volumes = self.unproject(view_features, scale_projections(proj_matrices, scale_x, scale_y), grid, view_mask)
        aggregated = aggregate_volumes(volumes, self.aggregation, confidences, view_mask)  # (B, C, G, G, G)
        logits = full_precision(self.volume_net(aggregated)) * self.volume_multiplier  # (B, J, G, G, G)
        probabilities = torch.softmax(logits.flatten(2), dim=-1)  # (B, J, G^3)
        joints = torch.einsum("bjn,bnc->bjc", probabilities, grid.flatten(1, 3).to(probabilities.dtype))
        if mode == "train":
            targets = _require(targets, ("joints_world_mm", "joints_valid"), "'train' mode")
            target, valid = targets["joints_world_mm"].float(), targets["joints_valid"].float()
            scale = self.keypoints_scale
            return {
                "joints_l1": keypoints_l1(joints * scale, target * scale, valid),
                "volumetric_ce": self.ce_weight * volumetric_ce(probabilities.unflatten(-1, grid.shape[1:4]), grid,
                                                                target, valid),
            }  # fmt: skip
        points_px = project_points(proj_matrices, joints) * view_mask[..., None, None]
        return {"joints_world_mm": joints, "joints_2d_px": points_px}
