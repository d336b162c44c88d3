"""3DPW: SMPL GT, evaluated by MPJPE / PA-MPJPE on the 14 H36M joints."""

from data.PW3D.PW3D import PW3D

__all__ = ["PW3D"]
