"""Reading AGORA's raw release without pandas and without running code from its pickles.

AGORA ships two kinds of pickle, for each of its two fit variants (SMPL-X and SMPL):

* per-scene tables, ``SMPLX/<scene>_withjv.pkl`` (train) and ``validation_SMPLX/SMPLX/*.pkl`` (``SMPL/`` and
  ``validation_SMPL/SMPL/`` for SMPL): pandas DataFrames with one row per image. Unpickling a DataFrame needs
  pandas and executes pandas code named by the file, so this tool does not read them. It reads the same tables
  as json, ``<scene>_withjv.json`` next to each pickle: ``{column: [one value per image]}`` with the columns
  `table_columns` (per-person columns hold one list per image). Write them once, where pandas is installed,
  from files you trust, with `extract_tables_snippet` (`EXTRACT_TABLES_SNIPPET` for SMPL-X).
* per-person fits (the table's ``gt_path_smplx`` / ``gt_path_smpl``, with ``.pkl`` for ``.obj``): dicts of arrays,
  numpy arrays for SMPL-X and torch tensors for SMPL. These are read with an unpickler that can build only numpy
  arrays, torch tensors (their storage through ``torch.load(weights_only=True)``), plain containers and strings
  (`read_fit`, `read_smpl_fit`); anything else is refused with an error naming the file and the refused global.
  A ``.npz`` with the same stem (keys `FIT_KEYS`, or `SMPL_FIT_KEYS`' AGORA names) is read instead when present.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.annotation_io import read_json

__all__ = ["EXTRACT_TABLES_SNIPPET", "FIT_KEYS", "SMPL_FIT_KEYS", "TABLE_COLUMNS", "extract_tables_snippet",
           "read_fit", "read_scene_table", "read_smpl_fit", "table_columns"]  # fmt: skip

IMAGE_COLUMNS = ("imgPath", "camX", "camY", "camZ", "camYaw")  # one value per image
LABEL_COLUMNS = ("gender", "kid", "occlusion", "isValid", "age", "ethnicity", "X", "Y", "Z", "Yaw")  # per person
SMPLX_FIT_COLUMN, SMPL_FIT_COLUMN = "gt_path_smplx", "gt_path_smpl"
FIT_KEYS = ("global_orient", "body_pose", "jaw_pose", "leye_pose", "reye_pose", "left_hand_pose", "right_hand_pose",
            "betas", "expression", "transl")  # fmt: skip
SMPL_FIT_KEYS: Mapping[str, str] = {"global_orient": "root_pose", "body_pose": "body_pose", "betas": "betas",
                                    "transl": "translation"}  # fmt: skip
"""Our name of each SMPL fit value -> AGORA's key for it in the SMPL fit files (as Hand4Whole reads them)."""


def table_columns(fit_column: str = SMPLX_FIT_COLUMN) -> tuple[str, ...]:
    """The columns read from a scene table whose per-person fit paths are in ``fit_column``."""
    return (*IMAGE_COLUMNS, fit_column, *LABEL_COLUMNS)


TABLE_COLUMNS = table_columns()  # the SMPL-X tables'


def extract_tables_snippet(table_globs: Iterable[str], fit_column: str) -> str:
    """Python to run once where pandas is installed: each scene table pickle -> the json this tool reads."""
    return f"""\
# where pandas is installed, on AGORA's own tables only (unpickling runs code the file names):
import json, pathlib, pandas
root = pathlib.Path('AGORA_DATASET_PATH')
for table in [{", ".join(f"*root.glob({pattern!r})" for pattern in table_globs)}]:
    frame = pandas.read_pickle(table)
    columns = {{c: frame[c].tolist() for c in {list(table_columns(fit_column))!r}}}
    table.with_suffix('.json').write_text(json.dumps(columns, default=lambda v: v.tolist()))
"""


EXTRACT_TABLES_SNIPPET = extract_tables_snippet(("SMPLX/*.pkl", "validation_SMPLX/SMPLX/*.pkl"), SMPLX_FIT_COLUMN)
# Globals a pickle of numpy arrays or torch tensors names (numpy 1 and 2 spellings, protocols 2 to 5, Python 2
# strings); none of them can run anything but array construction. A tensor's storage comes as bytes of a
# torch.save file, which `_tensor_storage` reads with torch's own weights-only unpickler.
_ARRAY_GLOBALS = frozenset(
    [(f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")]
    + [(f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")]
    + [("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("collections", "OrderedDict")]
    + [("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter")]
)
_TORCH_STORAGE = ("torch.storage", "_load_from_bytes")  # torch's own would unpickle without restriction: replaced


def read_scene_table(path: Path, fit_column: str = SMPLX_FIT_COLUMN) -> dict[str, list[Any]]:
    """One scene table (json, module docstring): column -> one value per image, all columns equally long.

    Args:
        path: the table's json.
        fit_column: the column of the per-person fit paths ('gt_path_smplx', or 'gt_path_smpl' in SMPL tables).

    Raises:
        ValueError: naming the file and the missing or misshapen column.
    """
    columns = table_columns(fit_column)
    table = read_json(path)
    if not isinstance(table, Mapping):
        raise ValueError(f"{path}: expected {{column: [one value per image]}}")
    missing = [c for c in columns if c not in table]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; write the tables as EXTRACT_TABLES_SNIPPET shows")
    count = len(table["imgPath"])
    for column in columns:
        if not isinstance(table[column], list) or len(table[column]) != count:
            raise ValueError(f"{path}: column {column!r} must be a list with one value per image ({count})")
    for column in (fit_column, *LABEL_COLUMNS):
        for row, (values, paths) in enumerate(zip(table[column], table[fit_column], strict=True)):
            if not isinstance(values, list) or len(values) != len(paths):
                raise ValueError(f"{path}: column {column!r}, image {row}: needs one value per person")
    return {c: table[c] for c in columns}


def _tensor_storage(data: bytes) -> Any:
    """A pickled tensor's storage (a torch.save file in bytes), read weights-only onto the CPU."""
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays, torch tensors and plain Python values only (Python's "restricting globals" recipe)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == _TORCH_STORAGE:
            return _tensor_storage
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: only numpy arrays and tensors are read")
        return super().find_class(module, name)


def _read_arrays(path: Path, keys: Iterable[str], what: str) -> dict[str, np.ndarray]:
    """``keys`` of ``<stem>.npz`` if present, else of ``<stem>.pkl``, as flat float64 arrays.

    Raises:
        FileNotFoundError: neither file exists. ValueError: a refused or unreadable pickle, or a missing key.
    """
    keys = tuple(keys)
    npz, pkl = path.with_suffix(".npz"), path.with_suffix(".pkl")
    if npz.is_file():
        with np.load(npz, allow_pickle=False) as arrays:
            content, source = {k: arrays[k] for k in arrays.files}, npz
    elif pkl.is_file():
        try:
            with open(pkl, "rb") as file:
                content = _ArrayOnlyUnpickler(file, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, RuntimeError) as error:
            raise ValueError(f"{pkl}: cannot be read as a dict of arrays ({error}); save it as "
                             f"{npz.name} with the keys {', '.join(keys)}") from None  # fmt: skip
        source = pkl
    else:
        raise FileNotFoundError(f"AGORA {what} fit not found: {pkl} (or {npz.name})")
    if not isinstance(content, Mapping):
        raise ValueError(f"{source}: expected a dict of arrays, got {type(content).__name__}")
    missing = [k for k in keys if k not in content]
    if missing:
        raise ValueError(f"{source}: missing keys {missing}")
    try:
        return {k: _flat(content[k]) for k in keys}
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: a fit value is not numeric ({error})") from None


def _flat(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):  # AGORA's SMPL fits: tensors, some with requires_grad
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64).reshape(-1)


def read_fit(path: Path) -> dict[str, np.ndarray]:
    """One person's SMPL-X fit: `FIT_KEYS` -> float64 arrays, from ``<stem>.npz`` if present, else ``<stem>.pkl``.

    Args:
        path: the fit's path with any suffix (the table's ``.obj`` path works).

    Raises:
        FileNotFoundError: neither file exists. ValueError: a refused or unreadable pickle, or a missing key.
    """
    return _read_arrays(path, FIT_KEYS, "SMPL-X")


def read_smpl_fit(path: Path) -> dict[str, np.ndarray]:
    """One person's SMPL fit under our names (global_orient 3, body_pose 69, betas 10 or 11, transl 3), flat float64.

    The file has AGORA's keys (`SMPL_FIT_KEYS`: root_pose, body_pose, betas, translation), as ``<stem>.npz`` or
    as AGORA's ``<stem>.pkl`` of torch tensors.

    Raises:
        FileNotFoundError: neither file exists. ValueError: a refused or unreadable pickle, a missing key, or a
            value of the wrong size.
    """
    arrays = _read_arrays(path, SMPL_FIT_KEYS.values(), "SMPL")
    fit = {ours: arrays[theirs] for ours, theirs in SMPL_FIT_KEYS.items()}
    for key, size in (("global_orient", 3), ("body_pose", 69), ("transl", 3)):
        if fit[key].size != size:
            raise ValueError(f"{path.with_suffix('')}: {SMPL_FIT_KEYS[key]} has {fit[key].size} values, "
                             f"expected {size}")  # fmt: skip
    return fit
