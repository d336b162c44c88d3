"""Per-sample predictions saved by a dataset's `evaluate` and assembled by its `report` in dataset index order.

`evaluate` runs per batch in every process and only per-sample metric values travel to rank 0; result files that
need the predictions themselves (FreiHAND's pred.json, Human3.6M's result files and per-action tables) are built
from one small .npz per sample (arrays only, written atomically), which rank 0's `report` reads back and removes.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from common.utils.atomic_io import write_atomic

__all__ = ["load_parts", "save_part"]

logger = logging.getLogger(__name__)


def save_part(parts_dir: Path, index: int, **arrays: np.ndarray) -> None:
    """Writes one sample's arrays as ``<parts_dir>/<index>.npz`` (atomically: `report` may read it from another
    process)."""
    write_atomic(parts_dir / f"{int(index)}.npz", lambda file: np.savez(file, **arrays))


def load_parts(parts_dir: Path, count: int, name: str) -> dict[str, np.ndarray] | None:
    """The saved arrays of samples 0..count-1 stacked per key (N, ...), and the folder removed; None (with a
    warning naming the dataset `name`) when a sample has no saved part."""
    paths = [parts_dir / f"{index}.npz" for index in range(count)]
    missing = [path for path in paths if not path.is_file()]
    if missing:
        logger.warning("%s: %d of %d samples have no saved prediction in %s (e.g. %s): no result files", name,
                       len(missing), len(paths), parts_dir, missing[0].name)  # fmt: skip
        shutil.rmtree(parts_dir, ignore_errors=True)
        return None
    stacked: dict[str, list[np.ndarray]] = {}
    for path in paths:
        with np.load(path) as part:  # allow_pickle stays False: arrays only
            for key in part.files:
                stacked.setdefault(key, []).append(part[key])
    shutil.rmtree(parts_dir)
    return {key: np.stack(values) for key, values in stacked.items()}
