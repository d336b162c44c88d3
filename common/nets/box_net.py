"""BoxNet: hand and face boxes regressed from the body feature, and their conversion to square crop boxes."""

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from common.geometry import soft_argmax_2d
from common.nets.layers import (
    full_precision,
    make_conv_layers,
    make_deconv_layers,
    make_linear_layers,
    sample_features,
    xy_constant,
)

__all__ = ["BoxNet", "BoxPrediction", "restore_bbox"]

_UPSAMPLING = 8  # three stride-2 deconvolutions


class BoxPrediction(NamedTuple):
    """Box centres and sizes, each (B, 2) as (x, y) and (width, height) in body-heatmap units (8 x 6 grid)."""

    lhand_center: Tensor
    lhand_size: Tensor
    rhand_center: Tensor
    rhand_size: Tensor
    face_center: Tensor
    face_size: Tensor


class BoxNet(nn.Module):
    """Hand4Whole's BoxNet.

    [body features, body heatmaps flattened over depth] -> three stride-2 deconvolutions (x8 resolution) -> a
    1x1 convolution to three centre heatmaps (left hand, right hand, face) -> 2D soft-argmax centres. Each
    box's size comes from an MLP on the deconvolved feature sampled at its (detached) centre.

    Args:
        joint_num: body joints of the heatmaps (25).
        hm_depth: D of the body heatmap volume (8).
        in_channels: channels of the body feature map (2048).
        hidden_channels: deconvolution and size-MLP width (256).
    """

    def __init__(self, joint_num: int, hm_depth: int, in_channels: int, hidden_channels: int = 256) -> None:
        super().__init__()
        width = hidden_channels
        self.deconv = make_deconv_layers([in_channels + joint_num * hm_depth, width, width, width])
        self.bbox_center = make_conv_layers([width, 3], kernel=1, padding=0, bnrelu_final=False)
        self.lhand_size = make_linear_layers([width, width, 2], relu_final=False)
        self.rhand_size = make_linear_layers([width, width, 2], relu_final=False)
        self.face_size = make_linear_layers([width, width, 2], relu_final=False)

    def forward(self, img_feat: Tensor, joint_hm: Tensor) -> BoxPrediction:
        """Boxes of both hands and the face.

        Args:
            img_feat: (B, C, H, W) body features.
            joint_hm: (B, J, D, H, W) body heatmaps (probabilities); the caller detaches them (Hand4Whole's
                gradient stop, so the box loss does not train the body PositionNet).

        Returns:
            BoxPrediction in body-heatmap units; centres at least float32, sizes in the autocast dtype.
        """
        feat = torch.cat((img_feat, joint_hm.flatten(1, 2).to(img_feat.dtype)), dim=1)  # (B, C + J*D, H, W)
        feat = self.deconv(feat)  # (B, 256, 8H, 8W)
        centers, _ = soft_argmax_2d(full_precision(self.bbox_center(feat)))  # (B, 3, 2) in deconvolved pixels
        # Sizes see the feature at the centre but do not move it: the centre is trained by its own loss only.
        center_feat = sample_features(feat, centers.detach())  # (B, 3, 256)
        sizes = (
            self.lhand_size(center_feat[:, 0]),
            self.rhand_size(center_feat[:, 1]),
            self.face_size(center_feat[:, 2]),
        )
        centers = centers / _UPSAMPLING  # (B, 3, 2) body-heatmap units
        return BoxPrediction(centers[:, 0], sizes[0], centers[:, 1], sizes[1], centers[:, 2], sizes[2])


def restore_bbox(
    center_hm: Tensor,
    size_hm: Tensor,
    hm_shape_hw: Sequence[int],
    input_shape_hw: Sequence[int],
    aspect_ratio: float,
    extension_ratio: float,
) -> Tensor:
    """A predicted box made into a crop box: to input pixels, widened to the crop's aspect ratio, enlarged.

    The shorter side (relative to the aspect ratio) is lengthened so that width / height == aspect_ratio, then
    both sides are multiplied by extension_ratio around the centre (Hand4Whole: hands 1.0 and x2.0, face 1.0 and
    x1.5).

    Args:
        center_hm: (..., 2) box centre (x, y) in heatmap units.
        size_hm: (..., 2) box (width, height) in heatmap units.
        hm_shape_hw: (H, W) of the heatmap grid (8, 6).
        input_shape_hw: (H, W) of the image the box is for, pixels (256, 192).
        aspect_ratio: width / height of the crop (input_hand_shape W / H).
        extension_ratio: enlargement factor of both sides.

    Returns:
        (..., 4) xyxy box in input pixels.
    """
    scale = xy_constant(center_hm, input_shape_hw[1] / hm_shape_hw[1], input_shape_hw[0] / hm_shape_hw[0])
    center = center_hm * scale  # (..., 2) pixels
    width, height = (size_hm * scale).unbind(-1)  # (...) pixels
    # Exactly one of the two applies unless the box already has the aspect ratio.
    new_height = torch.where(width > aspect_ratio * height, width / aspect_ratio, height)
    new_width = torch.where(width < aspect_ratio * height, height * aspect_ratio, width)
    half = torch.stack((new_width, new_height), dim=-1) * (extension_ratio / 2)  # (..., 2)
    return torch.cat((center - half, center + half), dim=-1)  # (..., 4)
