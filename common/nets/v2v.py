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
    """V2V's hourglass: `levels` pooling levels (channels doubling from C, capped at `max_channels`) and back, with
    a residual skip connection around each level.

    With channels=32 and the defaults this is V2V-PoseNet's encoder-decoder (two levels, 32/64/128 channels); the
    learnable-triangulation variant is channels=32, levels=5, max_channels=128 (32/64/128/128/128/128). Module
    names at level k (1-based): encoder_pool{k}, encoder_res{k}, skip_res{k}, decoder_res{k}, decoder_upsample{k},
    and mid_res at the bottom. Spatial sizes must be divisible by 2**levels; the output has the input's shape.

    Args:
        channels: C, input and output channels.
        levels: pooling levels (>= 1).
        max_channels: the most channels of any level; None for no cap (C * 2**levels at the bottom).
    """

    def __init__(self, channels: int = 32, levels: int = 2, max_channels: int | None = None) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"V2VEncoderDecoder needs levels >= 1, got {levels}")
        cap = max_channels if max_channels is not None else channels * 2**levels
        widths = [min(channels * 2**level, max(cap, channels)) for level in range(levels + 1)]  # level 0 is C
        self.levels = levels
        for k in range(1, levels + 1):  # registered in the order of the two-level original's attributes
            self.add_module(f"encoder_pool{k}", Pool3DBlock(2))
            self.add_module(f"encoder_res{k}", Res3DBlock(widths[k - 1], widths[k]))
        self.mid_res = Res3DBlock(widths[levels], widths[levels])
        for k in range(levels, 0, -1):
            self.add_module(f"decoder_res{k}", Res3DBlock(widths[k], widths[k]))
            self.add_module(f"decoder_upsample{k}", Upsample3DBlock(widths[k], widths[k - 1]))
        for k in range(1, levels + 1):
            self.add_module(f"skip_res{k}", Res3DBlock(widths[k - 1], widths[k - 1]))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, D, H, W) -> (B, C, D, H, W)."""
        skips = []
        for k in range(1, self.levels + 1):
            skips.append(getattr(self, f"skip_res{k}")(x))  # at level k - 1's resolution and width
            x = getattr(self, f"encoder_res{k}")(getattr(self, f"encoder_pool{k}")(x))
        x = self.mid_res(x)  # (B, widths[levels], D / 2**levels, ...)
        for k in range(self.levels, 0, -1):
            x = getattr(self, f"decoder_upsample{k}")(getattr(self, f"decoder_res{k}")(x)) + skips[k - 1]
        return x


class V2VPoseNet(nn.Module):
    """The V2V-PoseNet depth model: an occupancy voxel grid -> one 3D heatmap per joint at half resolution.

    Input 88^3 binary voxels (1 channel) -> front (7^3 conv, pool to 44^3, residual blocks to 32 channels) ->
    encoder-decoder -> back (residual + two 1^3 blocks) -> 1^3 convolution to J heatmaps of 44^3. The heatmaps
    are regressed against Gaussians (sigma 1.7 voxels) with MSE in the original; decode with argmax or
    `common.geometry.soft_argmax_3d`. Initialised as the original: convolutions N(0, 0.001), zero biases.

    Args:
        in_channels: input channels (1 for occupancy).
        joint_num: J, output heatmaps.
        width_multiplier: m, channels 16m in the first block and 32m, 64m, 128m after it (hpoes' option; 1 is
            V2V's), rounded; 16m must round to >= 1.
        full_resolution: one more Upsample3DBlock in the back layers (after its residual block), so that the
            heatmaps have the input's resolution (hpoes' V2VModel88: 88^3 out of 88^3).
    """

    def __init__(self, in_channels: int, joint_num: int, width_multiplier: float = 1.0,
                 full_resolution: bool = False) -> None:  # fmt: skip
        super().__init__()
        c16, c32 = round(16 * width_multiplier), round(32 * width_multiplier)
        if c16 < 1:
            raise ValueError(f"width_multiplier {width_multiplier} leaves no channel (16 * m < 0.5)")
        self.front_layers = nn.Sequential(
            Basic3DBlock(in_channels, c16, kernel=7),
            Pool3DBlock(2),
            Res3DBlock(c16, c32),
            Res3DBlock(c32, c32),
            Res3DBlock(c32, c32),
        )
        self.encoder_decoder = V2VEncoderDecoder(c32)
        upsample = [Upsample3DBlock(c32, c32)] if full_resolution else []
        self.back_layers = nn.Sequential(
            Res3DBlock(c32, c32), *upsample, Basic3DBlock(c32, c32, kernel=1), Basic3DBlock(c32, c32, kernel=1)
        )
        self.output_layer = nn.Conv3d(c32, joint_num, kernel_size=1, stride=1, padding=0)
        self.apply(init_head_weights)

    def forward(self, voxels: Tensor) -> Tensor:
        """Per-joint heatmaps.

        Args:
            voxels: (B, in_channels, 88, 88, 88) occupancy in {0, 1} (any size divisible by 8 works).

        Returns:
            (B, J, 44, 44, 44) heatmaps (unnormalised), half the input resolution (the input's with
            full_resolution).
        """
        return self.output_layer(self.back_layers(self.encoder_decoder(self.front_layers(voxels))))
