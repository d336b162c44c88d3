"""RotationNets ("Pose2Pose"): features sampled at the predicted joints -> joint rotations in 6D.

Each joint contributes [its feature sampled bilinearly from a 1x1-conv map (512), its (x, y, z) heatmap
coordinates (3)] = 515 numbers; the joints' vectors are concatenated and read by single Linear layers.
"""

import torch
from torch import Tensor, nn

from common.nets.layers import make_conv_layers, make_linear_layers, sample_features

__all__ = ["BodyRotationNet", "HandRotationNet", "PartRotationNet", "joint_features"]

_JOINT_FEAT = 512  # channels of the 1x1-conv map sampled at each joint


def joint_features(conv: nn.Module, feat: Tensor, joint_img: Tensor) -> Tensor:
    """Per-joint features: the conv'd map sampled at each joint, followed by the joint's coordinates.

    Args:
        conv: a 1x1 conv block mapping (B, C, H, W) to (B, 512, H, W).
        feat: (B, C, H, W) features whose cells are the heatmap's (x, y) grid.
        joint_img: (B, J, 3) joint (x, y, z) in that heatmap's units.

    Returns:
        (B, J, 515) features.
    """
    sampled = sample_features(conv(feat), joint_img[..., :2])  # (B, J, 512)
    return torch.cat((sampled, joint_img.to(sampled.dtype)), dim=-1)  # (B, J, 515)


class BodyRotationNet(nn.Module):
    """Body rotations, shape and camera from the body features and the hands' MCP features.

    Root and the 21 body joints (SMPL-X joints 1..21, wrists included) come from the features at the body
    joints and at the four MCP joints of each hand (sampled on the un-mirrored hand feature maps), so the wrist
    rotations see the hands. Shape (betas) and the camera come from the globally pooled body feature.

    Args:
        joint_num: body heatmap joints (25).
        mcp_joint_num: MCP joints per hand (4).
        in_channels: channels of the body feature map (2048).
        hand_in_channels: channels of the hand feature maps (2048).
        body_rot_joint_num: rotations predicted besides the root (21).
        shape_dim: betas (10).
    """

    def __init__(
        self,
        joint_num: int,
        mcp_joint_num: int,
        in_channels: int,
        hand_in_channels: int,
        body_rot_joint_num: int,
        shape_dim: int,
    ) -> None:
        super().__init__()
        feat_dim = (joint_num + 2 * mcp_joint_num) * (_JOINT_FEAT + 3)
        self.body_conv = make_conv_layers([in_channels, _JOINT_FEAT], kernel=1, padding=0)
        self.lhand_conv = make_conv_layers([hand_in_channels, _JOINT_FEAT], kernel=1, padding=0)
        self.rhand_conv = make_conv_layers([hand_in_channels, _JOINT_FEAT], kernel=1, padding=0)
        self.root_pose_out = make_linear_layers([feat_dim, 6], relu_final=False)
        self.body_pose_out = make_linear_layers([feat_dim, body_rot_joint_num * 6], relu_final=False)
        self.shape_out = make_linear_layers([in_channels, shape_dim], relu_final=False)
        self.cam_out = make_linear_layers([in_channels, 3], relu_final=False)

    def forward(
        self,
        img_feat: Tensor,
        joint_img: Tensor,
        lhand_feat: Tensor,
        lhand_mcp_img: Tensor,
        rhand_feat: Tensor,
        rhand_mcp_img: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Body parameters.

        Args:
            img_feat: (B, C, H, W) body features.
            joint_img: (B, J, 3) body joints in body-heatmap units (detached by the caller).
            lhand_feat: (B, C_h, h, w) left-hand features, un-mirrored back to left-hand space.
            lhand_mcp_img: (B, 4, 3) left MCP joints in hand-heatmap units, left-hand space (detached).
            rhand_feat: (B, C_h, h, w) right-hand features.
            rhand_mcp_img: (B, 4, 3) right MCP joints in hand-heatmap units (detached).

        Returns:
            root_pose_6d: (B, 6); body_pose_6d: (B, 21 * 6); shape: (B, 10) betas; cam_param: (B, 3) as
            (t_x metres, t_y metres, gamma logit), see common.geometry.camera_translation.
        """
        pooled = img_feat.mean((2, 3))  # (B, C)
        feat = torch.cat(
            (
                joint_features(self.body_conv, img_feat, joint_img),
                joint_features(self.lhand_conv, lhand_feat, lhand_mcp_img),
                joint_features(self.rhand_conv, rhand_feat, rhand_mcp_img),
            ),
            dim=1,
        ).flatten(1)  # (B, (J + 8) * 515)
        return self.root_pose_out(feat), self.body_pose_out(feat), self.shape_out(pooled), self.cam_out(pooled)


class HandRotationNet(nn.Module):
    """Finger rotations of a right hand (left hands arrive mirrored) from its features at the 20 hand joints.

    Args:
        joint_num: hand heatmap joints (20).
        in_channels: channels of the hand feature map (2048).
        rot_joint_num: finger rotations (15).
    """

    def __init__(self, joint_num: int, in_channels: int, rot_joint_num: int) -> None:
        super().__init__()
        self.hand_conv = make_conv_layers([in_channels, _JOINT_FEAT], kernel=1, padding=0)
        self.hand_pose_out = make_linear_layers([joint_num * (_JOINT_FEAT + 3), rot_joint_num * 6], relu_final=False)

    def forward(self, hand_feat: Tensor, joint_img: Tensor) -> Tensor:
        """(B, C, h, w) hand features and (B, 20, 3) hand joints (hand-heatmap units, detached) -> (B, 15 * 6) 6D."""
        return self.hand_pose_out(joint_features(self.hand_conv, hand_feat, joint_img).flatten(1))


class PartRotationNet(nn.Module):
    """Pose2Pose's single-part RotationNet (body-only SMPL, hand-only MANO): root, pose, shape and camera.

    The root and the other rotations come from the features at the part's heatmap joints, as in the whole-body
    RotationNets; shape and camera from the globally pooled feature, as in BodyRotationNet. The attribute names
    are those of the Pose2Pose checkpoints (`rotation_net.conv`, `.root_pose_out`, `.pose_out`, `.shape_out`,
    `.cam_out`).

    Args:
        joint_num: heatmap joints the features are sampled at (body 25, hand 21).
        in_channels: channels of the feature map (2048 for ResNet-50).
        rot_joint_num: rotations predicted besides the root (SMPL body 21, MANO fingers 15).
        shape_dim: shape coefficients (10).
    """

    def __init__(self, joint_num: int, in_channels: int, rot_joint_num: int, shape_dim: int) -> None:
        super().__init__()
        feat_dim = joint_num * (_JOINT_FEAT + 3)
        self.conv = make_conv_layers([in_channels, _JOINT_FEAT], kernel=1, padding=0)
        self.root_pose_out = make_linear_layers([feat_dim, 6], relu_final=False)
        self.pose_out = make_linear_layers([feat_dim, rot_joint_num * 6], relu_final=False)
        self.shape_out = make_linear_layers([in_channels, shape_dim], relu_final=False)
        self.cam_out = make_linear_layers([in_channels, 3], relu_final=False)

    def forward(self, img_feat: Tensor, joint_img: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Part parameters.

        Args:
            img_feat: (B, C, H, W) features.
            joint_img: (B, J, 3) joints in heatmap units (detached by the caller).

        Returns:
            root_pose_6d: (B, 6); pose_6d: (B, rot_joint_num * 6); shape: (B, shape_dim); cam_param: (B, 3) as
            (t_x metres, t_y metres, gamma logit), see common.geometry.camera_translation.
        """
        pooled = img_feat.mean((2, 3))  # (B, C)
        feat = joint_features(self.conv, img_feat, joint_img).flatten(1)  # (B, J * 515)
        return self.root_pose_out(feat), self.pose_out(feat), self.shape_out(pooled), self.cam_out(pooled)
