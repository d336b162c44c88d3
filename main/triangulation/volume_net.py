"""The volumetric model's 3D network: the learnable-triangulation variant of V2V over the aggregated feature volume.

Unlike V2V-PoseNet's own model (common/nets/v2v.py, V2VPoseNet) the front block does not pool, so a G^3 input gives
G^3 joint volumes, and the encoder-decoder has five pooling levels whose widths stop growing at 128 channels. Module
names are the seed's (`front_layers`, `encoder_decoder`, `back_layers`, `output_layer`); Xavier-normal init as there.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from common.nets import Basic3DBlock, Res3DBlock, V2VEncoderDecoder

__all__ = ["VolumeNet"]


class VolumeNet(nn.Module):
    """(B, C_in, G, G, G) feature volume -> (B, J, G, G, G) joint logits.

    front: Basic3D(C_in -> W/2, k7), Res3D(W/2 -> W), Res3D(W, W) x 2; encoder-decoder (W channels, `levels`
    poolings, widths capped at `max_channels`); back: Res3D(W, W), Basic3D(W, W, k1) x 2; output: 1x1x1 conv to J.
    The seed: C_in = W = 32, levels 5, max_channels 128.

    Args:
        in_channels: C_in, the aggregated volume's channels.
        num_joints: J.
        channels: W.
        levels: pooling levels; G must be divisible by 2**levels.
        max_channels: the widest level.
    """

    def __init__(self, in_channels: int, num_joints: int, channels: int = 32, levels: int = 5,
                 max_channels: int = 128) -> None:  # fmt: skip
        super().__init__()
        half = max(channels // 2, 1)
        self.front_layers = nn.Sequential(
            Basic3DBlock(in_channels, half, kernel=7),
            Res3DBlock(half, channels),
            Res3DBlock(channels, channels),
            Res3DBlock(channels, channels),
        )
        self.encoder_decoder = V2VEncoderDecoder(channels, levels=levels, max_channels=max_channels)
        self.back_layers = nn.Sequential(
            Res3DBlock(channels, channels), Basic3DBlock(channels, channels, kernel=1),
            Basic3DBlock(channels, channels, kernel=1),
        )  # fmt: skip
        self.output_layer = nn.Conv3d(channels, num_joints, kernel_size=1)
        self.levels = levels
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The seed's init: 3D convolutions and transposed convolutions Xavier-normal with zero bias."""
        for module in self.modules():
            if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d)):
                nn.init.xavier_normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, volume: Tensor) -> Tensor:
        """(B, C_in, G, G, G) -> (B, J, G, G, G) unnormalised joint volumes."""
        if any(size % 2**self.levels for size in volume.shape[-3:]):
            raise ValueError(f"a {tuple(volume.shape[-3:])} volume: each side must be divisible by 2 ** {self.levels}")
        return self.output_layer(self.back_layers(self.encoder_decoder(self.front_layers(volume))))
