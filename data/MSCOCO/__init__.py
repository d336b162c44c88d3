"""MSCOCO (COCO-WholeBody keypoints, NeuralAnnot SMPL-X fits)."""

from .MSCOCO import MSCOCO

__all__ = ["MSCOCO"]
