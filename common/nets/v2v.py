"""V2V-PoseNet's volumetric blocks, its encoder-decoder and the V2V-PoseNet depth model (Moon et al., CVPR 2018).

Layer layout and module names follow the public PyTorch port of V2V-PoseNet, github.com/dragonbook/V2V-PoseNet-pytorch
(Basic3DBlock.block, Res3DBlock.res_branch/skip_con, Upsample3DBlock.block; encoder_pool1 .. decoder_upsample1,
skip_res1/2; front_layers, encoder_decoder, back_layers, output_layer).
"""

from torch import Tensor, nn
from torch.nn import functional as F

from common.nets.layers import init_head_weights

__all__ = ["Basic3DBlock", "Pool3DBlock", "Res3DBlock", "Upsample3DBlock", "V2VEncoderDecoder", "V2VPoseNet"]


class Basic3DBlock(nn.Module):
    """Conv3d (stride 1, "same" padding) + BatchNorm3d + ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel: odd cubic kernel size.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv3d(in_channels, out_channels, kernel_size=kernel, stride=1, padding=(kernel - 1) // 2),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, in, D, H, W) -> (B, out, D, H, W)."""
        return self.block(x)


class Res3DBlock(nn.Module):
    """Residual block: ReLU([Conv3 BN ReLU Conv3 BN](x) + skip(x)), skip = identity or [Conv1 BN] if channels change.

    Args:
        in_channels: input channels.
        out_channels: output channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.res_branch = nn.Sequential(
            nn.Conv3d(in_channels, out_channels, kernel_size=3, stride=1, padding=1),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(out_channels, out_channels, kernel_size=3, stride=1, padding=1),
            nn.BatchNorm3d(out_channels),
        )
        self.skip_con: nn.Module = nn.Sequential()  # identity, with the port's (parameter-free) module name
        if in_channels != out_channels:
            self.skip_con = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, kernel_size=1, stride=1, padding=0),
                nn.BatchNorm3d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        """(B, in, D, H, W) -> (B, out, D, H, W)."""
        return F.relu(self.res_branch(x) + self.skip_con(x), inplace=True)


class Pool3DBlock(nn.Module):
    """Max-pooling with kernel = stride = pool_size.

    Args:
        pool_size: pooling factor along each axis.
    """

    def __init__(self, pool_size: int) -> None:
        super().__init__()
        self.pool_size = pool_size

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, D, H, W) -> (B, C, D / s, H / s, W / s), rounded down."""
        return F.max_pool3d(x, kernel_size=self.pool_size, stride=self.pool_size)


class Upsample3DBlock(nn.Module):
    """ConvTranspose3d (kernel 2, stride 2, no padding) + BatchNorm3d + ReLU: doubles D, H and W.

    Args:
        in_channels: input channels.
        out_channels: output channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ConvTranspose3d(in_channels, out_channels, kernel_size=2, stride=2, padding=0, output_padding=0),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, in, D, H, W) -> (B, out, 2D, 2H, 2W)."""
        return self.block(x)


class V2VEncoderDecoder(nn.Module):
    """V2V's hourglass: two pooling levels (C -> 2C -> 4C channels) and back, with residual skip connections.

    With channels=32 this is V2V-PoseNet's encoder-decoder (32/64/128 channels). Spatial sizes must be divisible
    by 4; the output has the input's shape.

    Args:
        channels: C, input and output channels.
    """

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        c1, c2, c4 = channels, 2 * channels, 4 * channels
        self.encoder_pool1 = Pool3DBlock(2)
        self.encoder_res1 = Res3DBlock(c1, c2)
        self.encoder_pool2 = Pool3DBlock(2)
        self.encoder_res2 = Res3DBlock(c2, c4)
        self.mid_res = Res3DBlock(c4, c4)
        self.decoder_res2 = Res3DBlock(c4, c4)
        self.decoder_upsample2 = Upsample3DBlock(c4, c2)
        self.decoder_res1 = Res3DBlock(c2, c2)
        self.decoder_upsample1 = Upsample3DBlock(c2, c1)
        self.skip_res1 = Res3DBlock(c1, c1)
        self.skip_res2 = Res3DBlock(c2, c2)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, D, H, W) -> (B, C, D, H, W)."""
        skip1 = self.skip_res1(x)
        x = self.encoder_res1(self.encoder_pool1(x))  # (B, 2C, D/2, H/2, W/2)
        skip2 = self.skip_res2(x)
        x = self.mid_res(self.encoder_res2(self.encoder_pool2(x)))  # (B, 4C, D/4, H/4, W/4)
        x = self.decoder_upsample2(self.decoder_res2(x)) + skip2  # (B, 2C, D/2, H/2, W/2)
        return self.decoder_upsample1(self.decoder_res1(x)) + skip1  # (B, C, D, H, W)


class V2VPoseNet(nn.Module):
    """The V2V-PoseNet depth model: an occupancy voxel grid -> one 3D heatmap per joint at half resolution.

    Input 88^3 binary voxels (1 channel) -> front (7^3 conv, pool to 44^3, residual blocks to 32 channels) ->
    encoder-decoder -> back (residual + two 1^3 blocks) -> 1^3 convolution to J heatmaps of 44^3. The heatmaps
    are regressed against Gaussians (sigma 1.7 voxels) with MSE in the original; decode with argmax or
    `common.geometry.soft_argmax_3d`. Initialised as the original: convolutions N(0, 0.001), zero biases.

    Args:
        in_channels: input channels (1 for occupancy).
        joint_num: J, output heatmaps.
    """

    def __init__(self, in_channels: int, joint_num: int) -> None:
        super().__init__()
        self.front_layers = nn.Sequential(
            Basic3DBlock(in_channels, 16, kernel=7),
            Pool3DBlock(2),
            Res3DBlock(16, 32),
            Res3DBlock(32, 32),
            Res3DBlock(32, 32),
        )
        self.encoder_decoder = V2VEncoderDecoder(32)
        self.back_layers = nn.Sequential(
            Res3DBlock(32, 32), Basic3DBlock(32, 32, kernel=1), Basic3DBlock(32, 32, kernel=1)
        )
        self.output_layer = nn.Conv3d(32, joint_num, kernel_size=1, stride=1, padding=0)
        self.apply(init_head_weights)

    def forward(self, voxels: Tensor) -> Tensor:
        """Per-joint heatmaps.

        Args:
            voxels: (B, in_channels, 88, 88, 88) occupancy in {0, 1} (any size divisible by 8 works).

        Returns:
            (B, J, 44, 44, 44) heatmaps (unnormalised), half the input resolution.
        """
        return self.output_layer(self.back_layers(self.encoder_decoder(self.front_layers(voxels))))
