"""Human3.6M: 3D joints and SMPL-X pseudo-GT (NeuralAnnot), evaluated by MPJPE / PA-MPJPE."""

from data.Human36M.Human36M import Human36M

__all__ = ["Human36M"]
