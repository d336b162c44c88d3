"""Face heads on the pooled face feature: the whole-body FaceRegressor (expression, jaw) and the face-only
FlameRegressor (FLAME root and jaw rotation, shape, expression, camera)."""

from torch import Tensor, nn

from common.nets.layers import make_linear_layers

__all__ = ["FaceRegressor", "FlameRegressor"]


class FaceRegressor(nn.Module):
    """Two Linear heads on the globally pooled face feature. No face shape (the body's betas are shared) and no
    head rotation (the body RotationNet predicts the neck and head).

    Args:
        in_channels: channels of the face feature map (512 for ResNet-18).
        expr_dim: SMPL-X expression coefficients (10).
    """

    def __init__(self, in_channels: int, expr_dim: int) -> None:
        super().__init__()
        self.expr_out = make_linear_layers([in_channels, expr_dim], relu_final=False)
        self.jaw_pose_out = make_linear_layers([in_channels, 6], relu_final=False)

    def forward(self, face_feat: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, h, w) face features -> expression (B, 10) and jaw rotation (B, 6) in Hand4Whole's 6D layout."""
        pooled = face_feat.mean((2, 3))  # (B, C)
        return self.expr_out(pooled), self.jaw_pose_out(pooled)


class FlameRegressor(nn.Module):
    """Pose2Pose's face-only regressor: four Linear heads on the globally pooled face feature.

    The attribute names are those of the Pose2Pose face checkpoint (`regressor.pose_out`, `.shape_out`,
    `.expr_out`, `.cam_out`).

    Args:
        in_channels: channels of the face feature map (2048 for ResNet-50).
        shape_dim: FLAME shape coefficients (10).
        expr_dim: FLAME expression coefficients (10).
    """

    def __init__(self, in_channels: int, shape_dim: int, expr_dim: int) -> None:
        super().__init__()
        self.pose_out = make_linear_layers([in_channels, 2 * 6], relu_final=False)  # root and jaw, 6D each
        self.shape_out = make_linear_layers([in_channels, shape_dim], relu_final=False)
        self.expr_out = make_linear_layers([in_channels, expr_dim], relu_final=False)
        self.cam_out = make_linear_layers([in_channels, 3], relu_final=False)

    def forward(self, face_feat: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(B, C, h, w) face features -> root 6D (B, 6), jaw 6D (B, 6), shape (B, 10), expression (B, 10) and
        camera parameters (B, 3), see common.geometry.camera_translation."""
        pooled = face_feat.mean((2, 3))  # (B, C)
        pose_6d = self.pose_out(pooled)  # (B, 12): root first, then jaw, as the checkpoint's rows are
        return pose_6d[:, :6], pose_6d[:, 6:], self.shape_out(pooled), self.expr_out(pooled), self.cam_out(pooled)
