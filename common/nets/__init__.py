"""Network building blocks of the whole-body model: backbones, heads, crops, V2V blocks and the loss.

Selection is by explicit dicts (STYLE.md): `BACKBONES` by name, `POSITION_HEADS` by `model.hand_position_head`.
"""

from collections.abc import Callable
from functools import partial

from common.nets.backbone import RESNET_SPECS, ResNetBackbone
from common.nets.box_net import BoxNet, BoxPrediction, restore_bbox
from common.nets.face_regressor import FaceRegressor, FlameRegressor
from common.nets.layers import (
    full_precision,
    init_head_weights,
    make_conv_layers,
    make_deconv_layers,
    make_linear_layers,
    sample_features,
)
from common.nets.loss import (
    LOSS_TERMS,
    HeatmapShapes,
    compute_losses,
    coord_l1,
    from_hand_box_space,
    param_l1,
    pose_l1,
    to_hand_box_space,
)
from common.nets.position_net import PositionNet, V2VPositionNet
from common.nets.roi import FaceRoI, HandRoI, crop_boxes
from common.nets.rotation_net import BodyRotationNet, HandRotationNet, PartRotationNet
from common.nets.smplx_head import SMPLXHead, private_layer_copy
from common.nets.v2v import Basic3DBlock, Pool3DBlock, Res3DBlock, Upsample3DBlock, V2VEncoderDecoder, V2VPoseNet

BACKBONES: dict[str, Callable[[], ResNetBackbone]] = {
    "resnet18": partial(ResNetBackbone, 18),
    "resnet34": partial(ResNetBackbone, 34),
    "resnet50": partial(ResNetBackbone, 50),
    "resnet101": partial(ResNetBackbone, 101),
    "resnet152": partial(ResNetBackbone, 152),
}
"""Backbone constructors by name; config's `resnet_type` N selects 'resnetN'."""

POSITION_HEADS: dict[str, type[PositionNet] | type[V2VPositionNet]] = {
    "pose2pose": PositionNet,
    "v2v": V2VPositionNet,
}
"""Hand position heads by `model.hand_position_head`; both take (joint_num, hm_shape, in_channels)."""


def build_backbone(resnet_type: int) -> ResNetBackbone:
    """The backbone of a config's `resnet_type` (18, 34, 50, 101, 152); KeyError naming the known ones."""
    name = f"resnet{resnet_type}"
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; known: {sorted(BACKBONES)}")
    return BACKBONES[name]()


__all__ = [
    "BACKBONES",
    "Basic3DBlock",
    "BodyRotationNet",
    "BoxNet",
    "BoxPrediction",
    "FaceRegressor",
    "FaceRoI",
    "FlameRegressor",
    "HandRoI",
    "HandRotationNet",
    "HeatmapShapes",
    "LOSS_TERMS",
    "PartRotationNet",
    "POSITION_HEADS",
    "Pool3DBlock",
    "PositionNet",
    "RESNET_SPECS",
    "Res3DBlock",
    "SMPLXHead",
    "ResNetBackbone",
    "Upsample3DBlock",
    "V2VEncoderDecoder",
    "V2VPoseNet",
    "V2VPositionNet",
    "build_backbone",
    "compute_losses",
    "coord_l1",
    "from_hand_box_space",
    "full_precision",
    "crop_boxes",
    "init_head_weights",
    "make_conv_layers",
    "make_deconv_layers",
    "make_linear_layers",
    "param_l1",
    "pose_l1",
    "private_layer_copy",
    "restore_bbox",
    "sample_features",
    "to_hand_box_space",
]
