"""FFHQ faces with FLAME fits (the Pose2Pose face model's training set)."""

from .FFHQ import FFHQ

__all__ = ["FFHQ"]
