"""Layer-stack helpers, feature sampling and weight init shared by the heads.

The helpers build `nn.Sequential` stacks in Hand4Whole's order (layer, then BatchNorm, then ReLU), so the
Sequential indices, and with them the parameter names (`conv.0.weight`, `deconv.1.running_mean`,
`lhand_size.2.bias`), are those of the public checkpoints.
"""

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "full_precision",
    "init_head_weights",
    "make_conv_layers",
    "make_deconv_layers",
    "make_linear_layers",
    "sample_features",
    "xy_constant",
]


def full_precision(x: Tensor) -> Tensor:
    """x in float32 if it is float16/bfloat16 (e.g. under autocast), else unchanged (float32 and float64 stay).

    Heatmap coordinates, rotations, the camera and SMPL-X use it: bf16's 8-bit mantissa would cost a quarter
    heatmap cell on a coordinate and centimetres on a mesh tens of metres from the virtual camera.
    """
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def xy_constant(like: Tensor, x: float, y: float, pairs: int = 1) -> Tensor:
    """(2 * pairs,) tensor (x, y, x, y, ...) on like's device and dtype, made there without a host copy.

    `like.new_tensor([x, y])` copies a host list to the device; on CUDA that copy waits for all queued GPU work
    (a synchronisation) on every call. Filling on the device keeps the step free of synchronisations and gives
    the same values.

    Args:
        like: any tensor; its device and dtype are used.
        x: the value at even positions.
        y: the value at odd positions.
        pairs: how many (x, y) pairs, e.g. 2 for an xyxy box.
    """
    values = like.new_full((2 * pairs,), x)
    values[1::2] = y
    return values


def _is_hidden(index: int, num_layers: int, activate_final: bool) -> bool:
    # The last layer of a prediction head stays linear (no BN/ReLU) unless asked otherwise.
    return index < num_layers - 1 or activate_final


def make_linear_layers(feat_dims: Sequence[int], relu_final: bool = True, use_bn: bool = False) -> nn.Sequential:
    """Linear layers with optional BatchNorm1d, each followed by ReLU except possibly the last.

    Args:
        feat_dims: feature sizes [in, hidden..., out].
        relu_final: whether the last Linear is followed by (BN and) ReLU.
        use_bn: whether to put a BatchNorm1d between each Linear and its ReLU.

    Returns:
        The stack; `make_linear_layers([256, 256, 2], relu_final=False)` has Linear at 0 and 2, ReLU at 1.
    """
    layers: list[nn.Module] = []
    num_layers = len(feat_dims) - 1
    for i in range(num_layers):
        layers.append(nn.Linear(feat_dims[i], feat_dims[i + 1]))
        if _is_hidden(i, num_layers, relu_final):
            if use_bn:
                layers.append(nn.BatchNorm1d(feat_dims[i + 1]))
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def make_conv_layers(
    feat_dims: Sequence[int], kernel: int = 3, stride: int = 1, padding: int = 1, bnrelu_final: bool = True
) -> nn.Sequential:
    """Conv2d (with bias) + BatchNorm2d + ReLU blocks.

    Args:
        feat_dims: channel counts [in, hidden..., out].
        kernel: square kernel size.
        stride: stride of every convolution.
        padding: zero padding of every convolution.
        bnrelu_final: whether the last convolution is followed by BN and ReLU.

    Returns:
        The stack; with bnrelu_final the indices are conv 0, BN 1, ReLU 2, conv 3, ...
    """
    layers: list[nn.Module] = []
    num_layers = len(feat_dims) - 1
    for i in range(num_layers):
        layers.append(nn.Conv2d(feat_dims[i], feat_dims[i + 1], kernel_size=kernel, stride=stride, padding=padding))
        if _is_hidden(i, num_layers, bnrelu_final):
            layers.extend((nn.BatchNorm2d(feat_dims[i + 1]), nn.ReLU(inplace=True)))
    return nn.Sequential(*layers)


def make_deconv_layers(feat_dims: Sequence[int], bnrelu_final: bool = True) -> nn.Sequential:
    """Stride-2 transposed convolutions (kernel 4, padding 1, no bias) + BatchNorm2d + ReLU; each doubles H and W.

    Args:
        feat_dims: channel counts [in, hidden..., out].
        bnrelu_final: whether the last deconvolution is followed by BN and ReLU.

    Returns:
        The stack; `make_deconv_layers([2248, 256, 256, 256])` has deconvolutions at 0, 3, 6 and BN at 1, 4, 7.
    """
    layers: list[nn.Module] = []
    num_layers = len(feat_dims) - 1
    for i in range(num_layers):
        # No bias: the BatchNorm that follows has its own shift.
        layers.append(
            nn.ConvTranspose2d(feat_dims[i], feat_dims[i + 1], kernel_size=4, stride=2, padding=1, bias=False)
        )
        if _is_hidden(i, num_layers, bnrelu_final):
            layers.extend((nn.BatchNorm2d(feat_dims[i + 1]), nn.ReLU(inplace=True)))
    return nn.Sequential(*layers)


def sample_features(feat: Tensor, points_xy: Tensor) -> Tensor:
    """Bilinear sampling of a feature map at points given in its own cell units.

    Cell centres sit at integer positions (0 .. W-1, 0 .. H-1), the convention of the heatmaps' soft-argmax,
    hence `align_corners=True`. Points outside the map read zeros.

    Args:
        feat: (B, C, H, W) feature map.
        points_xy: (B, J, 2) (x, y) positions in feature-map cells.

    Returns:
        (B, J, C) features at the points.
    """
    height, width = feat.shape[-2:]
    scale = xy_constant(points_xy, max(width - 1, 1), max(height - 1, 1))  # a 1-cell axis keeps its only cell
    grid = (points_xy / scale * 2 - 1).unsqueeze(2).to(feat.dtype)  # (B, J, 1, 2) in [-1, 1]
    sampled = F.grid_sample(feat, grid, mode="bilinear", align_corners=True)  # (B, C, J, 1)
    return sampled.squeeze(-1).transpose(1, 2)  # (B, J, C)


@torch.no_grad()
def init_head_weights(module: nn.Module) -> None:
    """Hand4Whole's head initialisation, for `module.apply(init_head_weights)`.

    Conv2d/Conv3d and transposed convolutions N(0, 0.001) with zero bias, BatchNorm (weight 1, bias 0), Linear
    N(0, 0.01) with zero bias. Small weights start every head near a constant output (near-uniform heatmaps,
    near-zero regressed parameters), so early training is not dominated by random head outputs.
    """
    if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        nn.init.normal_(module.weight, std=0.001)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.01)
        nn.init.zeros_(module.bias)
