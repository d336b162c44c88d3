"""EHF: the whole-body test set with SMPL-X GT meshes."""

from data.EHF.EHF import EHF

__all__ = ["EHF"]
