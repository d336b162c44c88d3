"""Write the stand-in's files in the official formats, byte-for-byte deterministic.

numpy's own ``np.savez`` stamps each zip member with the current time, so two runs would differ;
the npz writer here fixes the timestamp. Pickles use protocol 2, which the official files use and
which Python 2 era tools still read.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip file can hold


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but with fixed member timestamps, hence reproducible bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(value), allow_pickle=True)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue(), compresslevel=1)  # mostly zeros: fast level suffices


def write_pickle(path: Path, value: object) -> None:
    with open(path, "wb") as f:
        pickle.dump(value, f, protocol=2)


def write_npy(path: Path, value: object) -> None:
    """``np.save``; a dict is stored as a 0-d object array, as the official FLAME embedding is."""
    np.save(path, np.array(value, dtype=object) if isinstance(value, dict) else value, allow_pickle=True)
