"""PositionNet heads: a 2D feature map -> per-joint 3D heatmap volumes -> soft-argmax joint coordinates."""

from collections.abc import Sequence

from torch import Tensor, nn

from common.geometry import soft_argmax_3d
from common.nets.layers import full_precision, make_conv_layers
from common.nets.v2v import Basic3DBlock, V2VEncoderDecoder

__all__ = ["PositionNet", "V2VPositionNet"]


class PositionNet(nn.Module):
    """Hand4Whole's PositionNet: one 1x1 convolution to J*D channels read as J volumes of D x H x W.

    Args:
        joint_num: J, joints predicted (25 body, 20 hand).
        hm_shape: (D, H, W) heatmap volume; H and W must equal the feature map's.
        in_channels: channels of the input feature map (2048 for ResNet-50).
    """

    def __init__(self, joint_num: int, hm_shape: Sequence[int], in_channels: int) -> None:
        super().__init__()
        self.joint_num = joint_num
        self.hm_shape = tuple(hm_shape)
        self.conv = make_conv_layers(
            [in_channels, joint_num * self.hm_shape[0]], kernel=1, padding=0, bnrelu_final=False
        )

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        """Joint coordinates and heatmaps.

        Args:
            feat: (B, C, H, W) backbone features.

        Returns:
            joint_img: (B, J, 3) expected (x, y, z) in heatmap units, x in [0, W-1], y in [0, H-1], z in [0, D-1].
            joint_hm: (B, J, D, H, W) softmax over each joint's whole volume.
            Both at least float32 (float32 under autocast).
        """
        logits = self.conv(feat).unflatten(1, (self.joint_num, self.hm_shape[0]))  # (B, J, D, H, W)
        return soft_argmax_3d(full_precision(logits))


class V2VPositionNet(nn.Module):
    """A volumetric position head: 2D features lifted to a feature volume, refined by a V2V encoder-decoder.

    A 1x1 convolution turns the C-channel map into F*D channels read as an F-channel D x H x W volume; a V2V
    encoder-decoder (two pooling levels) mixes it in 3D; a 1x1x1 convolution gives one logit volume per joint,
    decoded by soft-argmax like PositionNet. Same inputs and outputs as PositionNet.

    Args:
        joint_num: J, joints predicted.
        hm_shape: (D, H, W) heatmap volume; H and W must equal the feature map's, and each of D, H, W must be
            divisible by 4 (two 2x poolings).
        in_channels: channels of the input feature map.
        volume_channels: F, channels of the lifted volume.
    """

    def __init__(self, joint_num: int, hm_shape: Sequence[int], in_channels: int, volume_channels: int = 32) -> None:
        super().__init__()
        self.joint_num = joint_num
        self.hm_shape = tuple(hm_shape)
        if any(size % 4 for size in self.hm_shape):
            raise ValueError(f"V2VPositionNet needs a heatmap shape divisible by 4, got {self.hm_shape}")
        self.volume_channels = volume_channels
        self.lift = make_conv_layers([in_channels, volume_channels * self.hm_shape[0]], kernel=1, padding=0)
        self.front = Basic3DBlock(volume_channels, volume_channels, kernel=3)
        self.encoder_decoder = V2VEncoderDecoder(volume_channels)
        self.output_layer = nn.Conv3d(volume_channels, joint_num, kernel_size=1)

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        """See PositionNet.forward: (B, C, H, W) -> joint_img (B, J, 3), joint_hm (B, J, D, H, W)."""
        volume = self.lift(feat).unflatten(1, (self.volume_channels, self.hm_shape[0]))  # (B, F, D, H, W)
        logits = self.output_layer(self.encoder_decoder(self.front(volume)))  # (B, J, D, H, W)
        return soft_argmax_3d(full_precision(logits))
