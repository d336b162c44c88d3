"""Integral Human Pose Regression (Sun et al., ECCV 2018): the 'integral' family's network.

ResNet-{18..152} (`model.resnet_type`) -> `head.deconv_layers`: 3 x [ConvTranspose2d(256, k4, s2, p1, no bias), BN,
ReLU] -> `head.final_layer`: 1x1 conv to J * D channels, read as a (D, H, W) = `model.output_hm_shape` volume per
joint (64^3 upstream: 256x256 input, stride-32 features upsampled 8x; depth stacked in the channels). The joints are
the volume's soft-argmax (common.geometry.soft_argmax_3d, in float32 even under autocast): voxel centres at
integer positions 0 .. W-1 etc., the space of the targets' `joint_img` (data/targets/integral.py). Module names are
upstream's (`backbone`, `head.deconv_layers`, `head.final_layer`), so an upstream state_dict (without its
DataParallel `module.` prefix) has the same keys.

Called as every family: `model(inputs, targets, meta_info, mode)` with `inputs = {'img': (B, 3, H, W) float RGB in
[0, 1]}` (ImageNet mean/std applied inside when `model.normalize_image`, as upstream).

'train' returns {'joint_img': the integral L1 loss * loss.weights.joint_img}: the mean over the batch and the J
joints of (|dx| + |dy| + |dz| * is_3D) / 3 * joint_vis, in heatmap units (upstream mks0601's loss), with targets
`joint_img` (B, J, 3) and meta_info `joint_vis` (B, J, 1), `is_3D` (B,).

'test' returns predictions only:
    joint_img (B, J, 3): (x, y, z) heatmap units.
    joint_cam (B, J, 3): metres relative to the root joint (Pelvis, index 0), camera axes, the weak-perspective
        reading of the crop: a 3D sample's crop is the S x S box (S = `model.body_3d_size`, 2.0 m: upstream's
        2000 mm `rect_3d_width`) around the root in the root's depth plane (data/targets/integral.py `crop_box`),
        so crop pixels are metres in that plane:
            X = (x_hm / W_hm - 0.5) * S,  Y = (y_hm / H_hm - 0.5) * S,  Z = (z_hm / D - 0.5) * S,
        then the root's (X, Y, Z) is subtracted. Z is exact; X, Y hold at the root's depth only. The evaluation
        back-projects `joint_img` through the crop, the camera and the GT root depth instead, as upstream
        (`IntegralTargets.predicted_joint_cam`); this reading serves inputs without a camera.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from common.geometry import soft_argmax_3d
from common.nets import build_backbone, full_precision, init_head_weights, make_deconv_layers
from common.paths import resolve_repo_path
from common.utils.draw import draw_skeleton
from data.targets.integral import INTEGRAL_JOINTS, INTEGRAL_SKELETON, ROOT_IDX

__all__ = [
    "IntegralHead",
    "IntegralModel",
    "MODES",
    "SkeletonPicture",
    "get_integral_model",
    "heatmap_to_joint_cam",
    "integral_l1",
    "skeleton_picture",
]

MODES: tuple[str, ...] = ("train", "test")
DECONV_CHANNELS = 256
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class IntegralHead(nn.Module):
    """Upstream's deconvolution head: stride-32 features -> (B, J, D, 8h, 8w) logits.

    Args:
        in_channels: backbone feature channels (512 for ResNet-18/34, 2048 for 50/101/152).
        num_joints: J.
        depth: D, the volume's depth bins (64 upstream).
    """

    def __init__(self, in_channels: int, num_joints: int, depth: int) -> None:
        super().__init__()
        self.num_joints, self.depth = num_joints, depth
        self.deconv_layers = make_deconv_layers([in_channels, DECONV_CHANNELS, DECONV_CHANNELS, DECONV_CHANNELS])
        self.final_layer = nn.Conv2d(DECONV_CHANNELS, num_joints * depth, kernel_size=1)

    def forward(self, feat: Tensor) -> Tensor:
        out = self.final_layer(self.deconv_layers(feat))  # (B, J * D, H, W)
        return out.unflatten(1, (self.num_joints, self.depth))  # (B, J, D, H, W)


def integral_l1(pred: Tensor, target: Tensor, vis: Tensor, is_3d: Tensor) -> Tensor:
    """The integral L1 loss: mean over (B, J) of (|dx| + |dy| + |dz| * is_3D) / 3 * vis.

    Args:
        pred: (B, J, 3) predicted heatmap coordinates. target: (B, J, 3) the same space.
        vis: (B, J, 1) joint mask. is_3d: (B,) 1 where z is supervised.

    Returns:
        () the loss, heatmap units.
    """
    error = (pred - target).abs()  # (B, J, 3)
    z_mask = torch.ones_like(error)
    z_mask[..., 2] = is_3d.to(error.dtype).reshape(-1, 1)
    return (error * z_mask * vis).sum(-1).mean() / 3.0


def heatmap_to_joint_cam(joint_img: Tensor, hm_dhw: tuple[int, int, int], box_m: float) -> Tensor:
    """(B, J, 3) heatmap units -> (B, J, 3) root-relative metres (module docstring: the box reading)."""
    depth, height, width = hm_dhw
    scale = joint_img.new_tensor([width, height, depth])
    metric = (joint_img / scale - 0.5) * box_m
    return metric - metric[:, ROOT_IDX : ROOT_IDX + 1]


class IntegralModel(nn.Module):
    """Backbone + IntegralHead + soft-argmax (module docstring).

    Args:
        model_cfg: `cfg.model` (resnet_type, output_hm_shape, body_3d_size, normalize_image).
        joint_weight: the loss weight (`cfg.loss.weights.joint_img`).
    """

    def __init__(self, model_cfg: Any, joint_weight: float = 1.0, flip_test: bool = False) -> None:
        super().__init__()
        self.flip_test = flip_test
        self.hm_dhw = tuple(int(v) for v in model_cfg.output_hm_shape)
        # The crop's pixel flip u' = W_px - 1 - u in heatmap units (x_hm = u * W_hm / W_px, as the targets map):
        # x' = (W_px - 1) * W_hm / W_px - x.
        self.mirror_x_hm = (model_cfg.input_img_shape[1] - 1) * self.hm_dhw[2] / model_cfg.input_img_shape[1]
        self.register_buffer("flip_perm", torch.from_numpy(INTEGRAL_JOINTS.flip_permutation().copy()), persistent=False)
        self.box_m = float(model_cfg.body_3d_size)
        self.normalize_image = bool(model_cfg.normalize_image)
        self.joint_weight = float(joint_weight)
        self.backbone = build_backbone(model_cfg.resnet_type)
        self.head = IntegralHead(self.backbone.out_channels, len(INTEGRAL_JOINTS), self.hm_dhw[0])
        self.register_buffer("image_mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def predict(self, img: Tensor) -> Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, J, 3) float32 heatmap coordinates."""
        if self.normalize_image:
            img = (img - self.image_mean.to(img.dtype)) / self.image_std.to(img.dtype)
        logits = self.head(self.backbone(img))  # (B, J, D, H_hm, W_hm)
        if tuple(logits.shape[-3:]) != self.hm_dhw:
            raise ValueError(f"the head gives a {tuple(logits.shape[-3:])} volume, model.output_hm_shape says "
                             f"{self.hm_dhw}: the input is not 32 * output_hm_shape[1:] / 8")  # fmt: skip
        coords, _ = soft_argmax_3d(full_precision(logits))  # softmax and expectation in float32
        return coords

    def forward(
        self,
        inputs: dict[str, Tensor],
        targets: dict[str, Tensor] | None = None,
        meta_info: dict[str, Tensor] | None = None,
        mode: str = "test",
    ) -> dict[str, Tensor]:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; accepted: {MODES}")
        joint_img = self.predict(inputs["img"])
        if mode == "train":
            if targets is None or meta_info is None:
                raise ValueError("'train' mode needs targets and meta_info")
            loss = integral_l1(joint_img, targets["joint_img"].to(joint_img.dtype),
                               meta_info["joint_vis"].to(joint_img.dtype), meta_info["is_3D"])  # fmt: skip
            return {"joint_img": loss * self.joint_weight}
        if self.flip_test:
            joint_img = (joint_img + self.mirrored(self.predict(inputs["img"].flip(-1)))) / 2.0
        return {"joint_img": joint_img, "joint_cam": heatmap_to_joint_cam(joint_img, self.hm_dhw, self.box_m)}

    def mirrored(self, joint_img: Tensor) -> Tensor:
        """(B, J, 3) heatmap coordinates of a mirrored crop -> those of the crop itself: x mirrored, sides swapped."""
        x = self.mirror_x_hm - joint_img[..., :1]
        return torch.cat((x, joint_img[..., 1:]), dim=-1)[:, self.flip_perm]


def get_integral_model(cfg: Any, mode: str) -> IntegralModel:
    """The Integral network of a config, on the CPU.

    In 'train' mode the head gets upstream's init (deconvolutions and final conv N(0, 0.001), zero bias, BN 1/0)
    and the backbone the local ImageNet file `model.backbone_weights` ('' keeps the random init; nothing is
    downloaded); in 'test' mode the weights are left for a checkpoint.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; accepted: {MODES}")
    model = IntegralModel(cfg.model, cfg.loss.weights.joint_img, flip_test=cfg.test.flip_test)
    if mode == "train":
        model.head.apply(init_head_weights)
        if cfg.model.backbone_weights:
            model.backbone.load_imagenet_weights(resolve_repo_path(cfg.model.backbone_weights))
    return model


class SkeletonPicture:
    """The training picture: the predicted 2D skeleton (x, y of `joint_img`) over the input crops, side by side.

    Args:
        hm_dhw: (D, H, W) of the volume. input_hw: (H, W) of the crops.
    """

    def __init__(self, hm_dhw: tuple[int, int, int], input_hw: tuple[int, int]) -> None:
        self.px_per_hm = (input_hw[1] / hm_dhw[2], input_hw[0] / hm_dhw[1])  # (x, y)

    def draw(self, model: nn.Module, inputs: dict[str, Tensor]) -> np.ndarray | None:
        joints = model(inputs, mode="test")["joint_img"][..., :2].float().cpu().numpy()  # (B, J, 2) heatmap units
        joints = joints * np.asarray(self.px_per_hm)  # crop pixels
        crops = (inputs["img"].float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).astype(np.uint8)
        drawn = [draw_skeleton(crop, points, INTEGRAL_SKELETON) for crop, points in zip(crops, joints, strict=True)]
        return np.concatenate(drawn, axis=1)

    def close(self) -> None:
        pass


def skeleton_picture(cfg: Any) -> SkeletonPicture:
    """The family's `make_picture` hook."""
    return SkeletonPicture(tuple(cfg.model.output_hm_shape), tuple(cfg.model.input_img_shape))
