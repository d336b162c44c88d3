"""The 'triangulation' family (learnable triangulation, Iskakov et al. ICCV 2019): N calibrated views -> 3D joints.

`get_triangulation_model(cfg, mode)` builds the network `triangulation.method` names (main/triangulation/model.py:
algebraic, volumetric, RANSAC); `triangulation_param_groups` gives the backbone and the volumetric part their own
Adam learning rates; `views_picture` is the training picture. Batches are data/multiview.py's `collate_multiview`
(views padded to the batch's largest count, masked).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from common.engine.cli import UsageError
from common.paths import resolve_repo_path
from main.triangulation.backbone import load_backbone_weights
from main.triangulation.model import (
    MODES,
    AlgebraicTriangulationNet,
    RansacTriangulationNet,
    TriangulationNet,
    VolumetricTriangulationNet,
)
from main.triangulation.picture import views_picture

__all__ = [
    "NETWORKS",
    "get_triangulation_model",
    "triangulation_param_groups",
    "views_picture",
]

NETWORKS: dict[str, type[TriangulationNet]] = {
    "algebraic": AlgebraicTriangulationNet,
    "volumetric": VolumetricTriangulationNet,
    "ransac": RansacTriangulationNet,
}
"""The network of each `triangulation.method`."""


def get_triangulation_model(cfg: Any, mode: str) -> TriangulationNet:
    """The network of `cfg.triangulation.method`, on the CPU.

    'train' applies the seed's init past the trunk (common.nets.init_head_weights; the V2V network its own
    Xavier init) and loads `triangulation.backbone_weights` when set; 'test' leaves the weights for a snapshot.

    Raises:
        UsageError: 'train' with method 'ransac' (nothing to train).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; accepted: {MODES}")
    tcfg = cfg.triangulation
    if mode == "train" and tcfg.method == "ransac":
        raise UsageError("triangulation.method='ransac' has nothing to train (hard argmax 2D joints, RANSAC over "
                         "view pairs): train triangulation_*_alg and test its snapshot with the ransac config "
                         "(main/test.py --cfg triangulation_h36m_ransac --ckpt <algebraic snapshot>)")  # fmt: skip
    model = NETWORKS[tcfg.method](tcfg)
    if mode == "train":
        model.backbone.init_heads()
        if tcfg.backbone_weights:
            load_backbone_weights(model.backbone, resolve_repo_path(tcfg.backbone_weights))
    return model


def triangulation_param_groups(model: nn.Module, cfg: Any) -> list[dict[str, Any]]:
    """Adam groups: the backbone (trunk, deconvolutions, heatmap layer, confidence heads) at
    `triangulation.backbone_lr`; everything else (the volumetric 1x1 features conv and V2V network) at
    `triangulation.volume_net_lr`. Frozen parameters (the volumetric model's heatmap layer) are left out."""
    tcfg = cfg.triangulation
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]  # type: ignore[union-attr]
    volume = [p for name, p in model.named_parameters() if p.requires_grad and not name.startswith("backbone.")]
    groups: list[dict[str, Any]] = [{"params": backbone, "lr": tcfg.backbone_lr}]
    if volume:
        groups.append({"params": volume, "lr": tcfg.volume_net_lr})
    return groups
