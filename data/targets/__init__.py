"""Each model family's sample contract and target builder, by `model.arch` (one explicit dict).

The shared per-sample pipeline (data/dataset.py: records, image reading, crop, augmentation, seeding) hands each
cropped record to the builder of the config's family, which makes that family's inputs, targets and masks, written
once: data/targets/hand4whole.py documents Hand4Whole's contract, data/targets/pose2pose.py the part models',
data/targets/integral.py Integral's.
A family's name here equals its name in main/model.py's FAMILIES (a test keeps the two in step). The families
whose datasets build their own samples (v2v: depth maps, data/MSRA; triangulation: multi-view, data/multiview.py)
have no entry.
"""

from __future__ import annotations

from typing import Any

from common.body_models.layers import BodyModels
from data.targets.base import EvalExtra, TargetBuilder
from data.targets.hand4whole import WholeBodyTargets
from data.targets.integral import IntegralTargets
from data.targets.pose2pose import BodyTargets, FaceTargets, HandTargets

__all__ = ["TARGETS", "EvalExtra", "TargetBuilder", "make_targets"]

TARGETS: dict[str, type[TargetBuilder]] = {
    "hand4whole": WholeBodyTargets,
    "pose2pose_body": BodyTargets,
    "pose2pose_hand": HandTargets,
    "pose2pose_face": FaceTargets,
    "integral": IntegralTargets,
}
"""Target builders by `model.arch`."""


def make_targets(cfg: Any, body_models: BodyModels) -> TargetBuilder:
    """The target builder of the config's family; ValueError naming the known families otherwise."""
    arch = cfg.model.arch
    if arch not in TARGETS:
        raise ValueError(f"model.arch={arch!r} has no target builder in data/targets; known: {', '.join(TARGETS)}")
    return TARGETS[arch](cfg, body_models)
