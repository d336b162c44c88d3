"""MPI-INF-3DHP: 3D joints and SMPL-X pseudo-GT (NeuralAnnot), training only."""

from data.MPI_INF_3DHP.MPI_INF_3DHP import MPI_INF_3DHP

__all__ = ["MPI_INF_3DHP"]
