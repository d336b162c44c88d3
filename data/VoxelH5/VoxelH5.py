"""Pre-voxelised hand samples in hpoes_pytorch's HDF5 layout (data/VoxelH5/hpoes_h5.py), for the V2V family.

The files are named by the config, one per split: `data.h5_train`, `data.h5_dev`, `data.h5_test` (relative paths
are relative to the repository root; '' = unset). tool/make_voxel_h5.py writes them from MSRA (or its synthetic
stand-in); the group of volumes and the cube key are `v2v.h5_voxels_key` and `v2v.h5_cubes_key` (hpoes'
--data_label and --cubes_label).

Axes: the volumes are indexed [x, y, z] over the cube around the reference point (docs/conventions.md, "Depth maps
and voxels (V2V)"), labels are (x, y, z) over the half-cube, the reference point (`com3D`) is camera mm. hpoes' own
files order their volumes (y, x, z): `v2v.h5_volume_axes=yxz` swaps the first two axes on read so that a volume and
its labels agree.

The sample (the model resamples the volume for augmentation, main/v2v_model.py):
    inputs['voxels']        (G, G, G) bool occupancy, G = v2v.grid_size
    inputs['ref_point_mm']  (3,) float32 the cube centre, camera mm (the file's com3D; zeros when it has none: the
                            joints are then relative to the cube centre)
    inputs['cube_mm']       (3,) float32 the sample's cube sides, mm
    targets['joints_mm']    (J, 3) float32 mm: labels * cube / 2 + com3D (hpoes' normalisation by the half-cube,
                            undone with the half-cube: its own accuracy code is a factor 2 off)
    meta_info['frame_index'] () int64 the sample's index in the file
    meta_info['aug_seed']   () int64 the sample's augmentation seed

Evaluated as MSRA (data/hand_joints.py, `HandJointsDataset`): mean and largest joint error per frame, each joint's mean
error, and the predictions in camera mm, one line per sample, in result/VoxelH5/{test,dev,fit}_res.txt.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from common.engine.cli import UsageError
from common.paths import resolve_repo_path
from data.hand_joints import HandJointsDataset
from data.record import AnnotationError
from data.VoxelH5.hpoes_h5 import H5Keys, labels_to_mm, read_voxel_h5

__all__ = ["VoxelH5"]

logger = logging.getLogger(__name__)


class VoxelH5(HandJointsDataset):
    """One HDF5 voxel file per split (module docstring)."""

    NAME = "VoxelH5"
    DOWNLOAD_PAGE = "tool/make_voxel_h5.py (from MSRA), or hpoes_pytorch's data preparation"
    SPLITS = ("train", "dev", "test")
    TEST_SPLIT = "test"

    def __init__(self, split: str, cfg: Any, evaluation: bool = False) -> None:
        super().__init__(split, cfg, evaluation)
        configured = getattr(cfg.data, f"h5_{split}")
        if not configured:
            raise UsageError(f"VoxelH5 {split} split: data.h5_{split} is not set; give the path of an HDF5 voxel "
                             f"file (tool/make_voxel_h5.py writes them): data.h5_{split}=PATH")  # fmt: skip
        self.path = resolve_repo_path(configured)
        self.file = read_voxel_h5(self.path, H5Keys(voxels=cfg.v2v.h5_voxels_key, cube=cfg.v2v.h5_cubes_key))
        self.swap_xy = cfg.v2v.h5_volume_axes == "yxz"
        if len(self.file) == 0:
            raise AnnotationError(f"{self.path}: no sample", self.path)
        if self.file.num_joints != cfg.v2v.num_joints and not cfg.v2v.global_heatmap:
            raise AnnotationError(f"{self.path}: {self.file.num_joints} joints per sample, v2v.num_joints is "
                                  f"{cfg.v2v.num_joints}", self.path)  # fmt: skip
        grid = self.file.voxels(0).shape[0]
        if grid != cfg.v2v.grid_size:
            raise AnnotationError(f"{self.path}: {grid}^3 volumes, v2v.grid_size is {cfg.v2v.grid_size}", self.path)
        self.joint_names = tuple(f"joint_{j}" for j in range(self.file.num_joints))
        logger.info("VoxelH5 %s: %d samples of %d joints from %s", split, len(self.file), self.file.num_joints,
                    self.path)  # fmt: skip

    def __len__(self) -> int:
        return len(self.file)

    def __getitem__(self, index: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        voxels = self.file.voxels(index)
        if voxels.shape != (self.cfg.v2v.grid_size,) * 3:
            raise AnnotationError(f"{self.path}: sample {index} is a {voxels.shape} volume, the file's first is "
                                  f"{(self.cfg.v2v.grid_size,) * 3}", self.path)  # fmt: skip
        if self.swap_xy:
            voxels = voxels.transpose(1, 0, 2)
        cube_mm = self.file.cube(index)
        ref_point_mm = self.file.com3d(index) if self.file.has_com3d else np.zeros(3, np.float32)
        inputs = {"voxels": np.ascontiguousarray(voxels), "ref_point_mm": ref_point_mm.astype(np.float32),
                  "cube_mm": cube_mm.astype(np.float32)}  # fmt: skip
        targets = {"joints_mm": labels_to_mm(self.file.labels(index), cube_mm, ref_point_mm)}
        meta_info = {"frame_index": np.int64(index), "aug_seed": self.aug_seed(index)}
        return inputs, targets, meta_info

    def report_facts(self) -> dict[str, Any]:
        return {"file": str(self.path)}
