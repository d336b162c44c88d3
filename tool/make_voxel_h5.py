"""Convert one MSRA fold (the release or its synthetic stand-in) into HDF5 voxel files in hpoes_pytorch's layout.

    python tool/make_voxel_h5.py --root MSRA_ROOT --test-subject K --out DIR [--grid 88] [--cube 200]
        [--center-dir DIR] [--max-frames N]

Writes DIR/msra_train_s{K}.h5 and DIR/msra_test_s{K}.h5 (data/VoxelH5/hpoes_h5.py's layout), for the VoxelH5
dataset: `python main/train.py --cfg v2v_h5 data.h5_train=DIR/msra_train_s{K}.h5` and `data.h5_test=...`. Per frame
whose refined centre is valid (as upstream):

    voxels      the depth map's occupancy grid of the cube around the centre: `--grid`^3, indexed [x, y, z], voxel i
                covering [i, i + 1) of g = (p - centre) / cube * grid + grid / 2, camera axes (x right, y down, z
                forward): common/geometry/voxel.py's `voxelize`, the V2V family's own input stage, without augmentation
    labels      (21, 3) (joints - centre) / (cube / 2): in [-1, 1] inside the cube (hpoes' normalisation)
    cube        (3,) the cube's sides, mm;   com3D (3,) the centre, camera mm;   gt3Dcrop (21, 3) joints - centre, mm
    file_name   P{s}/{gesture}/{frame:06d}_depth.bin

`--max-frames` keeps the first N valid frames of each split (a quick look at a large release).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`, `data`, `main`

import argparse
from collections.abc import Sequence

import numpy as np
import torch

from common.engine.cli import UsageError, run_cli
from common.geometry.voxel import depth_to_points, voxelize
from data.MSRA.msra_files import MSRA_INTRINSICS, SPLITS, SUBJECTS, MSRAFold, load_fold, read_depth_bin
from data.VoxelH5.hpoes_h5 import write_voxel_h5

__all__ = ["FoldVolumes", "h5_name", "make_voxel_h5"]


def h5_name(split: str, test_subject: int) -> str:
    """The file name of one split of a fold: msra_{split}_s{K}.h5."""
    return f"msra_{split}_s{test_subject}.h5"


class FoldVolumes(Sequence[np.ndarray]):
    """The occupancy volumes of a fold's chosen frames, computed one at a time when asked for (never all held).

    Args:
        fold: the fold (its frames, centres). lines: the fold lines (frames) to voxelise, in order.
        grid_size: G. cube_mm: (3,) the cube's sides.
    """

    def __init__(self, fold: MSRAFold, lines: np.ndarray, grid_size: int, cube_mm: np.ndarray) -> None:
        self.fold, self.lines, self.grid_size = fold, lines, grid_size
        self.cube_mm = torch.as_tensor(cube_mm, dtype=torch.float32)[None]  # (1, 3)
        self.intrinsics = torch.from_numpy(MSRA_INTRINSICS.as_array())[None]  # (1, 4)

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        line = int(self.lines[index])
        depth = read_depth_bin(self.fold.frames[line].depth_path, MSRA_INTRINSICS.width, MSRA_INTRINSICS.height)
        points_mm, valid = depth_to_points(torch.from_numpy(depth)[None], self.intrinsics)  # (1, H*W, 3), (1, H*W)
        ref = torch.from_numpy(self.fold.centers_mm[line].astype(np.float32))[None]  # (1, 3)
        volume = voxelize(points_mm, valid, ref, self.cube_mm, self.grid_size)  # (1, 1, G, G, G)
        return volume[0, 0].numpy() > 0.5


def make_voxel_h5(root: str | Path, test_subject: int, out_dir: str | Path, grid_size: int = 88,
                  cube_mm: float = 200.0, center_dir: str | Path | None = None,
                  max_frames: int | None = None) -> dict[str, Path]:  # fmt: skip
    """Writes the train and test HDF5 files of MSRA fold `test_subject` (module docstring).

    Args:
        root: the MSRA folder (P0..P8, and center/ unless center_dir is given).
        test_subject: K, 0..8.
        out_dir: where the files go (created).
        grid_size: voxels per axis (V2V: 88).
        cube_mm: the cube's side, mm (V2V's MSRA: 200).
        center_dir: the refined centre files; None: root/center.
        max_frames: keep at most this many valid frames per split; None keeps all.

    Returns:
        {'train': path, 'test': path}.

    Raises:
        UsageError: a subject out of 0..8, a grid size that is not a positive multiple of 8, a non-positive cube, or a
            split without a valid frame.
    """
    if not 0 <= test_subject < SUBJECTS:
        raise UsageError(f"--test-subject must be 0..{SUBJECTS - 1}, got {test_subject}")
    if grid_size < 8 or grid_size % 8:
        raise UsageError(f"--grid must be a positive multiple of 8 (V2V pools three times), got {grid_size}")
    if not cube_mm > 0:
        raise UsageError(f"--cube must be a positive number of mm, got {cube_mm}")
    cube = np.full(3, cube_mm, dtype=np.float32)
    written = {}
    for split in SPLITS:
        fold = load_fold(root, test_subject, split, center_dir)
        lines = np.flatnonzero(fold.valid)[:max_frames]
        if len(lines) == 0:
            raise UsageError(f"{root}: no {split} frame of fold {test_subject} has a valid centre")
        centers = fold.centers_mm[lines]  # (N, 3)
        offsets_mm = fold.joints_mm[lines] - centers[:, None, :]  # (N, 21, 3)
        names = [f"P{f.subject}/{f.gesture}/{f.depth_path.name}" for f in (fold.frames[i] for i in lines)]
        written[split] = write_voxel_h5(
            Path(out_dir) / h5_name(split, test_subject), FoldVolumes(fold, lines, grid_size, cube),
            labels=offsets_mm / (cube / 2.0), cube_mm=np.tile(cube, (len(lines), 1)), com3d=centers,
            gt3d_crop=offsets_mm, file_names=names,
        )  # fmt: skip
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make_voxel_h5.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="the MSRA folder (P0..P8 and center/)")
    parser.add_argument("--test-subject", type=int, required=True, help=f"the held-out subject, 0..{SUBJECTS - 1}")
    parser.add_argument("--out", type=Path, required=True, help="the folder of the two .h5 files")
    parser.add_argument("--grid", type=int, default=88, help="voxels per axis (default 88)")
    parser.add_argument("--cube", type=float, default=200.0, help="the cube's side, mm (default 200)")
    parser.add_argument("--center-dir", type=Path, help="the refined centre files (default: ROOT/center)")
    parser.add_argument("--max-frames", type=int, help="at most this many valid frames per split")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        raise UsageError(f"--root {args.root} is not a folder")
    written = make_voxel_h5(args.root, args.test_subject, args.out, args.grid, args.cube, args.center_dir,
                            args.max_frames)  # fmt: skip
    for split, path in written.items():
        print(f"wrote {path} ({split})")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="make_voxel_h5.py"))
