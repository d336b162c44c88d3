"""Pre-voxelised depth samples in hpoes_pytorch's HDF5 layout, for the V2V family.

The file layout, its writer and its lazy reader are in `data.VoxelH5.hpoes_h5`.
"""
