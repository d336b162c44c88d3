"""hpoes_pytorch's HDF5 layout (data/VoxelH5/hpoes_h5.py): round trips, a file written here with h5py from the
layout's description (notes §4.3), custom key names, malformed files, and reads from DataLoader workers."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from data.record import AnnotationError
from data.VoxelH5.hpoes_h5 import H5Keys, VoxelH5File, labels_to_mm, read_voxel_h5, write_voxel_h5

N, J, G = 4, 21, 8


def random_samples(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.uniform(-1.0, 1.0, (N, J, 3)).astype(np.float32)
    cube = rng.uniform(150.0, 300.0, (N, 3)).astype(np.float32)
    com = rng.uniform(-100.0, 400.0, (N, 3)).astype(np.float32)
    return {
        "voxels": rng.random((N, G, G, G)) < 0.3,
        "labels": labels,
        "cube_mm": cube,
        "com3d": com,
        "gt3d_crop": (labels * cube[:, None] / 2).astype(np.float32),
    }


def npz_bytes(volume: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, volume)
    return buffer.getvalue()


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    samples = random_samples()
    names = [f"P0/5/{i:06d}_depth.bin" for i in range(N)]
    path = write_voxel_h5(tmp_path / "train.h5", **samples, file_names=names)
    with read_voxel_h5(path) as f:
        assert len(f) == N and f.num_joints == J
        assert f.has_com3d and f.has_gt3d_crop and f.has_file_names
        for i in range(N):
            volume = f.voxels(i)
            assert volume.dtype == np.bool_ and volume.shape == (G, G, G)
            np.testing.assert_array_equal(volume, samples["voxels"][i])
            for got, key in ((f.labels(i), "labels"), (f.cube(i), "cube_mm"), (f.com3d(i), "com3d"),
                             (f.gt3d_crop(i), "gt3d_crop")):  # fmt: skip
                assert got.dtype == np.float32
                assert got.tobytes() == samples[key][i].tobytes(), key  # bit for bit
            assert f.file_name(i) == names[i]
        np.testing.assert_array_equal(f.voxels(-1), samples["voxels"][-1])
        with pytest.raises(IndexError):
            f.voxels(N)


def test_layout_in_the_file(tmp_path: Path) -> None:
    """What hpoes's training script reads: group members '0'..'N-1' holding savez_compressed bytes, float32 labels."""
    samples = random_samples(1)
    path = write_voxel_h5(tmp_path / "a.h5", samples["voxels"], samples["labels"], samples["cube_mm"])
    with h5py.File(path, "r") as f:
        assert sorted(f["real_voxels"].keys(), key=int) == [str(i) for i in range(N)]
        assert f["labels"].dtype == np.float32 and f["labels"].shape == (N, J, 3)
        assert f["cube"].dtype == np.float32 and f["cube"].shape == (N, 3)
        assert "com3D" not in f and "gt3Dcrop" not in f and "file_name" not in f
        raw = f["real_voxels"]["2"][()].tobytes()
    np.testing.assert_array_equal(np.load(io.BytesIO(raw), allow_pickle=False)["arr_0"], samples["voxels"][2])


def test_reads_a_file_written_by_hand_in_hpoes_layout(tmp_path: Path) -> None:
    samples = random_samples(2)
    path = tmp_path / "hpoes.h5"
    with h5py.File(path, "w") as f:
        group = f.create_group("real_voxels")
        for i, volume in enumerate(samples["voxels"]):
            data = npz_bytes(volume)
            if i % 2:  # as hpoes's saveH5 does: a (1,) opaque record of the archive's bytes
                group.create_dataset(str(i), data=np.array([np.void(data)]))
            else:  # as a plain byte array
                group.create_dataset(str(i), data=np.frombuffer(data, dtype=np.uint8))
        f["labels"] = samples["labels"].astype(np.float64)  # any float type reads as float32
        f["cube"] = samples["cube_mm"]
        f["com3D"] = samples["com3d"]
        names = f.create_group("file_name")  # hpoes: one member of bytes per sample
        for i in range(N):
            names.create_dataset(str(i), data=np.array([f"frame_{i}".encode()]))
    f = read_voxel_h5(path)
    assert len(f) == N and not f.has_gt3d_crop
    for i in range(N):
        np.testing.assert_array_equal(f.voxels(i), samples["voxels"][i])
        np.testing.assert_array_equal(f.labels(i), samples["labels"][i])
        assert f.file_name(i) == f"frame_{i}"
        # joints in mm: labels over the half-cube, plus the reference point (hand-computed per joint)
        joints = labels_to_mm(f.labels(i), f.cube(i), f.com3d(i))
        for j in (0, 7, 20):
            expected = samples["labels"][i, j] * samples["cube_mm"][i] / 2 + samples["com3d"][i]
            np.testing.assert_allclose(joints[j], expected, rtol=1e-6)
    with pytest.raises(AnnotationError, match=r"hpoes\.h5: no 'gt3Dcrop'"):
        f.gt3d_crop(0)
    f.close()


def test_custom_key_names(tmp_path: Path) -> None:
    samples = random_samples(3)
    keys = H5Keys(voxels="vox", labels="joints", cube="cubes", com3d="com")
    path = write_voxel_h5(tmp_path / "custom.h5", samples["voxels"], samples["labels"], samples["cube_mm"],
                          com3d=samples["com3d"], keys=keys)  # fmt: skip
    with h5py.File(path, "r") as f:
        assert {"vox", "joints", "cubes", "com"} == set(f.keys())
    f = read_voxel_h5(path, keys)
    np.testing.assert_array_equal(f.voxels(3), samples["voxels"][3])
    np.testing.assert_array_equal(f.cube(1), samples["cube_mm"][1])
    np.testing.assert_array_equal(f.com3d(2), samples["com3d"][2])
    with pytest.raises(AnnotationError, match=r"custom\.h5: missing key 'real_voxels'"):
        read_voxel_h5(path)


def test_malformed_files_name_the_file_and_key(tmp_path: Path) -> None:
    samples = random_samples(4)
    path = write_voxel_h5(tmp_path / "bad.h5", samples["voxels"], samples["labels"], samples["cube_mm"])
    with h5py.File(path, "a") as f:
        del f["real_voxels"]["1"]
        f["real_voxels"]["1"] = np.frombuffer(b"not an archive", dtype=np.uint8)
    with pytest.raises(AnnotationError, match=r"bad\.h5: 'real_voxels/1' is not an \.npz archive"):
        read_voxel_h5(path).voxels(1)
    with h5py.File(path, "a") as f:
        del f["cube"]
        f["cube"] = np.ones((N - 1, 3), np.float32)
    with pytest.raises(AnnotationError, match=r"bad\.h5: 'cube' must be \(4, 3\)"):
        read_voxel_h5(path)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(AnnotationError, match=r"text\.h5: not a readable HDF5 file"):
        read_voxel_h5(tmp_path / "text.h5")
    with pytest.raises(FileNotFoundError, match=r"missing\.h5"):
        read_voxel_h5(tmp_path / "missing.h5")
    with pytest.raises(ValueError, match=r"voxels\[0\] must be a bool"):
        write_voxel_h5(tmp_path / "x.h5", samples["voxels"].astype(np.uint8), samples["labels"], samples["cube_mm"])
    with pytest.raises(ValueError, match=r"cube_mm must have shape \(4, 3\)"):
        write_voxel_h5(tmp_path / "x.h5", samples["voxels"], samples["labels"], samples["cube_mm"][:2])


class _Volumes(Dataset):
    def __init__(self, file: VoxelH5File) -> None:
        self.file = file

    def __len__(self) -> int:
        return len(self.file)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.file.voxels(index)), torch.from_numpy(self.file.labels(index))


def test_reads_from_dataloader_workers_and_after_pickling(tmp_path: Path) -> None:
    samples = random_samples(5)
    path = write_voxel_h5(tmp_path / "w.h5", samples["voxels"], samples["labels"], samples["cube_mm"])
    file = read_voxel_h5(path)
    file.voxels(0)  # the parent holds an open handle before the workers start
    clone = pickle.loads(pickle.dumps(file))
    np.testing.assert_array_equal(clone.voxels(2), samples["voxels"][2])
    loader = DataLoader(_Volumes(file), batch_size=1, num_workers=2)
    for index, (volume, labels) in enumerate(loader):
        np.testing.assert_array_equal(volume[0].numpy(), samples["voxels"][index])
        np.testing.assert_array_equal(labels[0].numpy(), samples["labels"][index])
    assert index == N - 1
