"""FaceRegressor: expression coefficients and jaw rotation from the pooled face feature."""

from torch import Tensor, nn

from common.nets.layers import make_linear_layers

__all__ = ["FaceRegressor"]


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
