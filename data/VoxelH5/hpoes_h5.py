"""Pre-voxelised hand samples in hpoes_pytorch's HDF5 layout: a writer and a lazy, per-process reader.

Layout (key names are options, `H5Keys`; the defaults are hpoes's)::

    /real_voxels/0, /real_voxels/1, ...   a group with one member per sample, named by its index: a uint8 dataset
                                          holding the bytes of an ``np.savez_compressed`` archive whose one array
                                          (``arr_0``) is the sample's bool (G, G, G) occupancy volume (hpoes itself
                                          stores the same bytes as a (1,) opaque ``np.void`` dataset; both are read)
    /labels      (N, J, 3) float32        joints relative to the reference point, divided by the half-cube: [-1, 1]
                                          inside the cube
    /cube        (N, 3) float32 mm        the cube's side per axis
    /com3D       (N, 3) float32 mm        optional: the reference point (centre of mass), camera frame
    /gt3Dcrop    (N, J, 3) float32 mm     optional: joints relative to com3D (labels x cube / 2)
    /file_name   (N,) strings             optional: the source of each sample (hpoes writes a group of per-sample
                                          byte strings named by index; both are read)

So joints in mm are ``labels * cube / 2 + com3D`` (`labels_to_mm`): hpoes normalises by the half-cube, and its
accuracy code multiplies by the full cube, a factor 2 off. The axes are the writer's: hpoes's own NYU files negate
y (``isOPENGLcoord``) and order their volumes (y, x, z); this module stores and returns arrays as given.

The reader opens the file lazily in the process that first reads a sample, and again after a fork or when
unpickled in a DataLoader worker: an h5py handle must not cross processes.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from data.record import AnnotationError

__all__ = ["H5Keys", "VoxelH5File", "labels_to_mm", "read_voxel_h5", "write_voxel_h5"]


@dataclass(frozen=True)
class H5Keys:
    """The HDF5 names of each field (hpoes's defaults; its ``--data_label`` and ``--cubes_label`` set the first two).

    Attributes:
        voxels: the group of per-sample compressed volumes.
        labels: (N, J, 3) [-1, 1] joints.
        cube: (N, 3) mm cube sides.
        com3d: (N, 3) mm reference points (optional in a file).
        gt3d_crop: (N, J, 3) mm joints relative to com3d (optional).
        file_name: (N,) sample names (optional).
    """

    voxels: str = "real_voxels"
    labels: str = "labels"
    cube: str = "cube"
    com3d: str = "com3D"
    gt3d_crop: str = "gt3Dcrop"
    file_name: str = "file_name"


def labels_to_mm(labels: np.ndarray, cube_mm: np.ndarray, com_mm: np.ndarray | None = None) -> np.ndarray:
    """Joints in mm from hpoes labels: ``labels * cube / 2 (+ com)``.

    Args:
        labels: (..., J, 3) in [-1, 1] of the half-cube.
        cube_mm: (..., 3) cube sides, mm.
        com_mm: (..., 3) reference points, mm; None gives joints relative to the reference point.

    Returns:
        (..., J, 3) float32 mm.
    """
    joints = np.asarray(labels, dtype=np.float32) * (np.asarray(cube_mm, dtype=np.float32)[..., None, :] / 2.0)
    return joints if com_mm is None else joints + np.asarray(com_mm, dtype=np.float32)[..., None, :]


def _compressed_volume(volume: np.ndarray) -> np.ndarray:
    """The bytes of an ``np.savez_compressed`` archive of one bool volume, as a uint8 array."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, volume)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def _float_array(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float32)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array


def write_voxel_h5(
    path: str | os.PathLike[str],
    voxels: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray,
    cube_mm: np.ndarray,
    com3d: np.ndarray | None = None,
    gt3d_crop: np.ndarray | None = None,
    file_names: Sequence[str] | None = None,
    keys: H5Keys = H5Keys(),
) -> Path:
    """Writes samples in hpoes's layout (module docstring); the file appears complete or not at all.

    Args:
        path: the .h5 file (replaced if it exists).
        voxels: (N, G, G, G) bool occupancy (or N such arrays), stored as given (x, y, z axis order is the caller's).
        labels: (N, J, 3) joints relative to the reference point over the half-cube, normally in [-1, 1].
        cube_mm: (N, 3) cube sides, mm.
        com3d: (N, 3) reference points, mm, or None.
        gt3d_crop: (N, J, 3) joints relative to com3d, mm, or None.
        file_names: N names, or None.
        keys: the HDF5 names.

    Returns:
        ``path`` as a Path. Floats are stored as float32; the volumes' bytes are exactly the given booleans.

    Raises:
        ValueError: naming the argument of the wrong shape, dtype or length.
    """
    path = Path(path)
    count = len(voxels)
    volumes = [np.asarray(v) for v in voxels]
    for index, volume in enumerate(volumes):
        if volume.dtype != np.bool_ or volume.ndim != 3 or len(set(volume.shape)) != 1:
            raise ValueError(f"voxels[{index}] must be a bool (G, G, G) volume, got {volume.dtype} {volume.shape}")
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be (N, J, 3), got shape {labels.shape}")
    num_joints = labels.shape[1]
    fields = {keys.labels: _float_array(labels, (count, num_joints, 3), "labels"),
              keys.cube: _float_array(cube_mm, (count, 3), "cube_mm")}  # fmt: skip
    if com3d is not None:
        fields[keys.com3d] = _float_array(com3d, (count, 3), "com3d")
    if gt3d_crop is not None:
        fields[keys.gt3d_crop] = _float_array(gt3d_crop, (count, num_joints, 3), "gt3d_crop")
    if file_names is not None and len(file_names) != count:
        raise ValueError(f"file_names has {len(file_names)} names for {count} samples")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(temporary, "w") as f:
            group = f.create_group(keys.voxels)
            for index, volume in enumerate(volumes):
                group.create_dataset(str(index), data=_compressed_volume(volume))
            for key, array in fields.items():
                f.create_dataset(key, data=array)
            if file_names is not None:
                f.create_dataset(keys.file_name, data=[str(n) for n in file_names], dtype=h5py.string_dtype())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


class VoxelH5File:
    """Lazy per-sample access to an hpoes HDF5 file, safe to hand to DataLoader workers.

    The constructor checks the layout (keys, shapes, counts) and closes the file again; each process then opens it
    on its first read (`_handle`), and pickling drops the handle.

    Args:
        path: the .h5 file.
        keys: the HDF5 names.

    Raises:
        FileNotFoundError: no such file.
        AnnotationError: naming the file and the key: not HDF5, a missing key, or shapes that do not agree.
    """

    def __init__(self, path: str | os.PathLike[str], keys: H5Keys = H5Keys()) -> None:
        self.path, self.keys = Path(path), keys
        self._file: h5py.File | None = None
        self._pid: int | None = None
        if not self.path.is_file():
            raise FileNotFoundError(f"voxel HDF5 file not found: {self.path}")
        try:
            with h5py.File(self.path, "r") as f:
                self._check_layout(f)
        except OSError as exc:
            raise AnnotationError(f"{self.path}: not a readable HDF5 file ({exc})", self.path) from None

    def _error(self, message: str) -> AnnotationError:
        return AnnotationError(f"{self.path}: {message}", self.path)

    def _check_layout(self, f: h5py.File) -> None:
        keys = self.keys
        for key in (keys.voxels, keys.labels, keys.cube):
            if key not in f:
                raise self._error(f"missing key {key!r} (found {sorted(f.keys())}; key names are H5Keys options)")
        if not isinstance(f[keys.voxels], h5py.Group):
            raise self._error(f"{keys.voxels!r} must be a group of per-sample volumes")
        labels_shape, cube_shape = f[keys.labels].shape, f[keys.cube].shape
        if len(labels_shape) != 3 or labels_shape[2] != 3:
            raise self._error(f"{keys.labels!r} must be (N, J, 3), got {labels_shape}")
        self.num_samples, self.num_joints = labels_shape[0], labels_shape[1]
        expected = {keys.cube: (self.num_samples, 3), keys.com3d: (self.num_samples, 3),
                    keys.gt3d_crop: (self.num_samples, self.num_joints, 3)}  # fmt: skip
        for key, shape in expected.items():
            if key in f and f[key].shape != shape:
                raise self._error(f"{key!r} must be {shape} for {self.num_samples} samples, got {f[key].shape}")
        if cube_shape != expected[keys.cube]:
            raise self._error(f"{keys.cube!r} must be {expected[keys.cube]}, got {cube_shape}")
        if len(f[keys.voxels]) != self.num_samples:
            raise self._error(f"{keys.voxels!r} has {len(f[keys.voxels])} volumes for {self.num_samples} labels")
        if keys.file_name in f and len(f[keys.file_name]) != self.num_samples:
            raise self._error(f"{keys.file_name!r} has {len(f[keys.file_name])} names for {self.num_samples} samples")
        self.has_com3d = keys.com3d in f
        self.has_gt3d_crop = keys.gt3d_crop in f
        self.has_file_names = keys.file_name in f

    def _handle(self) -> h5py.File:
        """This process's open file: opened on first use, and anew in a forked or spawned worker."""
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._file

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_pid": None}  # the handle stays in its process

    def __len__(self) -> int:
        return self.num_samples

    def _index(self, index: int) -> int:
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"sample {index} out of range for {self.num_samples} samples in {self.path}")
        return index % self.num_samples

    def voxels(self, index: int) -> np.ndarray:
        """(G, G, G) bool occupancy volume of sample ``index``, as stored.

        Raises:
            AnnotationError: naming the file and member when it is missing or not an archive of one cubic volume.
        """
        index = self._index(index)
        where = f"{self.keys.voxels}/{index}"
        member = self._handle()[self.keys.voxels].get(str(index))
        if not isinstance(member, h5py.Dataset):
            raise self._error(f"missing volume {where!r}")
        raw = member[()]
        data = raw.tobytes() if raw.dtype.kind in "uVS" else None  # uint8, hpoes's (1,) np.void, or fixed bytes
        if data is None:
            raise self._error(f"{where!r} holds {raw.dtype}, expected the bytes of an .npz archive")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                names = archive.files
                volume = archive["arr_0" if "arr_0" in names else names[0]] if len(names) == 1 else None
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise self._error(f"{where!r} is not an .npz archive ({exc})") from None
        if volume is None or volume.ndim != 3 or len(set(volume.shape)) != 1 or volume.dtype.kind not in "biu":
            raise self._error(f"{where!r} must hold one (G, G, G) occupancy volume")
        return volume if volume.dtype == np.bool_ else volume != 0

    def _row(self, key: str, index: int, present: bool = True) -> np.ndarray:
        if not present:
            raise self._error(f"no {key!r} in this file")
        return np.asarray(self._handle()[key][self._index(index)], dtype=np.float32)

    def labels(self, index: int) -> np.ndarray:
        """(J, 3) float32 joints of sample ``index`` relative to its reference point, over the half-cube."""
        return self._row(self.keys.labels, index)

    def cube(self, index: int) -> np.ndarray:
        """(3,) float32 cube sides, mm."""
        return self._row(self.keys.cube, index)

    def com3d(self, index: int) -> np.ndarray:
        """(3,) float32 reference point, mm (AnnotationError when the file has none: see ``has_com3d``)."""
        return self._row(self.keys.com3d, index, self.has_com3d)

    def gt3d_crop(self, index: int) -> np.ndarray:
        """(J, 3) float32 joints relative to com3d, mm (AnnotationError when absent: ``has_gt3d_crop``)."""
        return self._row(self.keys.gt3d_crop, index, self.has_gt3d_crop)

    def file_name(self, index: int) -> str:
        """The sample's name (AnnotationError when the file has none: ``has_file_names``)."""
        if not self.has_file_names:
            raise self._error(f"no {self.keys.file_name!r} in this file")
        index = self._index(index)
        node = self._handle()[self.keys.file_name]
        value = node[index] if isinstance(node, h5py.Dataset) else node[str(index)][()]
        value = np.asarray(value).reshape(-1)[0] if np.ndim(value) else value  # hpoes: a (1,) array per member
        return value.decode("utf-8") if isinstance(value, bytes | np.bytes_) else str(value)

    def close(self) -> None:
        """Closes this process's handle (the next read opens it again)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = self._pid = None

    def __enter__(self) -> VoxelH5File:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def read_voxel_h5(path: str | os.PathLike[str], keys: H5Keys = H5Keys()) -> VoxelH5File:
    """Opens an hpoes HDF5 file for lazy per-sample reads (`VoxelH5File`): ``len()``, ``voxels(i)``, ``labels(i)``,
    ``cube(i)``, ``com3d(i)``, ``gt3d_crop(i)``, ``file_name(i)``."""
    return VoxelH5File(path, keys)
