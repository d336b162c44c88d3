"""The shared 2D backbone of the triangulation family: a simple-baseline pose ResNet with confidence heads.

`PoseResNet` (Xiao et al.'s simple baseline, the learnable-triangulation seed's `pose_resnet`): a torchvision ResNet
trunk (stride 32), `deconv_layers` = 3 x [ConvTranspose2d(256, k4, s2, p1, no bias), BN, ReLU] back to stride 4,
and `final_layer`, a 1x1 conv to J heatmaps. With a 384 x 384 crop the heatmaps and the 256-channel features are
96 x 96. Optional heads on the stride-32 trunk features (the seed's GlobalAveragePoolingHead): `alg_confidences`
(J per-joint confidences of the algebraic model) and `vol_confidences` (one per volume feature channel, for the
'conf' and 'conf_norm' aggregations). The trunk keeps torchvision's names (`conv1` ... `layer4`), so an ImageNet
file or a simple-baseline pose_resnet file loads key for key (`load_backbone_weights`).
"""

from __future__ import annotations

from os import PathLike

import torch
from torch import Tensor, nn

from common.engine.checkpoint import StateDictMismatchError, strip_module_prefix
from common.nets import ResNetBackbone, init_head_weights, make_deconv_layers

__all__ = ["DECONV_CHANNELS", "ConfidenceHead", "PoseResNet", "load_backbone_weights"]

DECONV_CHANNELS = 256
_HEAD_PREFIXES = ("deconv_layers.", "final_layer.")  # optional in a weights file: an ImageNet file has neither


class ConfidenceHead(nn.Module):
    """Stride-32 features -> n sigmoid confidences (the seed's GlobalAveragePoolingHead).

    features: Conv3 (-> 512), BN, MaxPool2, ReLU, Conv3 (-> 256), BN, MaxPool2, ReLU; then the spatial mean and
    head: FC 256 -> 512, ReLU, FC 512 -> 256, ReLU, FC 256 -> n; a sigmoid. The pools round up (ceil_mode) so that
    small crops (a 2 x 2 trunk map at 64 pixels) still leave one cell; even sizes pool as the seed's.

    Args:
        in_channels: trunk channels (512 for ResNet-18/34, 2048 for 50/101/152).
        num_outputs: n (J for the algebraic model, the volume feature channels for the volumetric one).
    """

    def __init__(self, in_channels: int, num_outputs: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 512, kernel_size=3, padding=1),
            nn.BatchNorm2d(512),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(512, 256, kernel_size=3, padding=1),
            nn.BatchNorm2d(256),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(
            nn.Linear(256, 512), nn.ReLU(inplace=True), nn.Linear(512, 256), nn.ReLU(inplace=True),
            nn.Linear(256, num_outputs),
        )  # fmt: skip

    def forward(self, trunk_features: Tensor) -> Tensor:
        """(N, C, h32, w32) -> (N, n) confidences in (0, 1)."""
        return torch.sigmoid(self.head(self.features(trunk_features).mean(dim=(-2, -1))))


class PoseResNet(ResNetBackbone):
    """ResNet trunk + deconvolutions + heatmap layer, and the optional confidence heads (module docstring).

    Args:
        depth: ResNet depth (18, 34, 50, 101, 152).
        num_joints: J heatmaps.
        alg_confidences: build `alg_confidences` (J outputs).
        vol_confidences: outputs of `vol_confidences`; 0 builds none.
    """

    def __init__(self, depth: int, num_joints: int, alg_confidences: bool = False, vol_confidences: int = 0) -> None:
        super().__init__(depth)
        self.num_joints = num_joints
        self.deconv_layers = make_deconv_layers([self.out_channels, DECONV_CHANNELS, DECONV_CHANNELS, DECONV_CHANNELS])
        self.final_layer = nn.Conv2d(DECONV_CHANNELS, num_joints, kernel_size=1)
        self.alg_confidences = ConfidenceHead(self.out_channels, num_joints) if alg_confidences else None
        self.vol_confidences = ConfidenceHead(self.out_channels, vol_confidences) if vol_confidences else None

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Trunk and deconvolution features of a batch of crops.

        Args:
            images: (N, 3, H, W) normalised RGB crops.

        Returns:
            trunk: (N, C, H / 32, W / 32) stride-32 features (what the confidence heads read).
            features: (N, 256, H / 4, W / 4) deconvolution features (what `final_layer` and the volumetric model's
                1x1 conv read).
        """
        trunk = super().forward(images)
        return trunk, self.deconv_layers(trunk)

    def init_heads(self) -> None:
        """The seed's init of everything past the trunk: convolutions N(0, 0.001), BN 1/0, Linear N(0, 0.01)."""
        for module in (self.deconv_layers, self.final_layer, self.alg_confidences, self.vol_confidences):
            if module is not None:
                module.apply(init_head_weights)


def _unwrap(state: object, path: str) -> dict[str, Tensor]:
    """The state_dict inside a loaded weights file: the file itself, or its 'state_dict' / 'network' entry."""
    if isinstance(state, dict):
        for key in ("state_dict", "network"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state_dict of tensors (nor a dict with one under 'state_dict' or 'network')")
    return dict(state)


@torch.no_grad()
def load_backbone_weights(backbone: PoseResNet, path: str | PathLike[str]) -> list[str]:
    """Loads a local weights file into the backbone: the trunk strictly, the deconvolutions and heatmap layer if
    the file has them.

    Accepted: a torchvision ImageNet ResNet state_dict (its `fc.*` ignored), a simple-baseline pose_resnet file
    (`deconv_layers.*`, `final_layer.*` too), either with `module.` or `backbone.` prefixes. A `final_layer` of
    another joint count (e.g. the 17 of the seed's Human3.6M file for CMU's 19) is copied for the joints both have;
    the others keep their init (the seed's rule). The confidence heads are never in such files and keep theirs.

    Args:
        backbone: the network to fill.
        path: the file (torch.save of a state_dict), read with weights_only=True.

    Returns:
        The groups loaded: 'trunk', and 'deconv_layers' / 'final_layer' when present.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds no state_dict of tensors.
        StateDictMismatchError: a trunk key is missing, a key is unknown, or a shape differs (listed).
    """
    state = _unwrap(torch.load(path, map_location="cpu", weights_only=True), str(path))
    state = dict(strip_module_prefix(state))
    if state and all(key.startswith("backbone.") for key in state):
        state = {key.removeprefix("backbone."): value for key, value in state.items()}
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    expected = backbone.state_dict()
    trunk_keys = {k for k in expected if not k.startswith((*_HEAD_PREFIXES, "alg_confidences.", "vol_confidences."))}
    missing = sorted(k for k in trunk_keys - set(state) if not k.endswith(".num_batches_tracked"))
    head_present = {prefix for prefix in _HEAD_PREFIXES if any(k.startswith(prefix) for k in state)}
    for prefix in head_present:
        missing += sorted(k for k in expected if k.startswith(prefix) and k not in state
                          and not k.endswith(".num_batches_tracked"))  # fmt: skip
    unexpected = sorted(k for k in state if k not in expected)
    final_keys = ("final_layer.weight", "final_layer.bias")
    shapes = [(k, tuple(state[k].shape), tuple(expected[k].shape)) for k in sorted(set(state) & set(expected))
              if state[k].shape != expected[k].shape and k not in final_keys]  # fmt: skip
    if missing or unexpected or shapes:
        raise StateDictMismatchError(f"{type(backbone).__name__} (weights file {path})", missing, unexpected, shapes)
    loadable = {k: v for k, v in state.items() if k not in final_keys}
    for key in final_keys:  # copy the joints both have (rows of the weight and bias)
        if key in state:
            count = min(state[key].shape[0], expected[key].shape[0])
            target = expected[key].clone()
            target[:count] = state[key][:count].to(target.dtype)
            loadable[key] = target
    # Strict over the whole state: the keys the file lacks (absent heads, the confidence heads) keep their init.
    backbone.load_state_dict({**expected, **loadable})
    return ["trunk", *sorted(prefix.rstrip(".") for prefix in head_present)]
