"""ResNet backbones from torchvision, without the classifier: image -> stride-32 feature map.

The module names are torchvision's (`conv1`, `bn1`, `layer1` .. `layer4`), so torchvision ImageNet weights and
Hand4Whole's `backbone.*` / `hand_roi_net.backbone.*` / `face_roi_net.backbone.*` entries load key for key.
"""

from os import PathLike

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

__all__ = ["RESNET_SPECS", "ResNetBackbone"]

# depth -> (block, blocks per stage); the output channels are 512 * block.expansion (512 or 2048).
RESNET_SPECS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


class ResNetBackbone(ResNet):
    """torchvision ResNet-{18,34,50,101,152} trunk: conv1/bn1/relu/maxpool and layer1..layer4, no avgpool or fc.

    Initialised as Hand4Whole's constructor does (convolutions N(0, 0.001), BatchNorm weight 1 and bias 0).
    ImageNet weights come only from a local file (`load_imagenet_weights`); nothing is downloaded.

    Args:
        depth: one of RESNET_SPECS (18, 34, 50, 101, 152).

    Attributes:
        out_channels: channels of the output feature map (512 for 18/34, 2048 for 50/101/152).
    """

    def __init__(self, depth: int) -> None:
        if depth not in RESNET_SPECS:
            raise ValueError(f"unknown ResNet depth {depth}; known: {sorted(RESNET_SPECS)}")
        block, layers = RESNET_SPECS[depth]
        super().__init__(block, layers)
        # The classifier is not part of the backbone: deleting it keeps its keys out of state_dict().
        del self.avgpool, self.fc
        self.depth = depth
        self.out_channels = 512 * block.expansion
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, mean=0.0, std=0.001)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Feature map of an image batch.

        Args:
            x: (B, 3, H, W) images.

        Returns:
            (B, out_channels, H / 32, W / 32) features (sizes rounded up by the strided convolutions).
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def load_imagenet_weights(self, path: str | PathLike[str]) -> None:
        """Loads torchvision ImageNet weights from a local file, strictly, ignoring the classifier (`fc.*`).

        Args:
            path: a file holding a torchvision ResNet state_dict of the same depth, e.g. the file
                `torchvision.models.ResNet50_Weights.IMAGENET1K_V2` downloads (`resnet50-11ad3fa6.pth`).

        Raises:
            FileNotFoundError: the file does not exist.
            common.engine.checkpoint.StateDictMismatchError: keys other than fc.* are missing or unexpected,
                or shapes differ (e.g. a ResNet-18 file for a ResNet-50); the message lists them.
        """
        # Imported here: common.engine builds models from common.nets, so a module-level import could cycle.
        from common.engine.checkpoint import load_network_state

        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {key: value for key, value in state.items() if not key.startswith("fc.")}
        load_network_state(self, state)
