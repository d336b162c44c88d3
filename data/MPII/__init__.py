"""MPII (16 body keypoints, NeuralAnnot SMPL-X fits)."""

from .MPII import MPII

__all__ = ["MPII"]
