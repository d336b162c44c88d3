"""Snapshot files: ``snapshot_{epoch}.pth.tar`` = {epoch, network, optimizer, scheduler, scaler, config, ...}.

Hand4Whole's file name and top-level keys, so its tools and ours read each other's files. Files are
written to a temporary file in the same folder and renamed into place: a crash or a full disk never
leaves a truncated snapshot where a good one was. Reading names the file and the problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from common.engine.checkpoint import strip_module_prefix
from common.utils.atomic_io import write_atomic

SNAPSHOT_PATTERN = re.compile(r"^snapshot_(\d+)\.pth\.tar$")


class SnapshotError(RuntimeError):
    """A snapshot file is missing, unreadable or not a snapshot."""


def snapshot_path(model_dir: str | os.PathLike[str], epoch: int) -> Path:
    return Path(model_dir) / f"snapshot_{epoch}.pth.tar"


def prune_snapshots(model_dir: str | os.PathLike[str], keep: int) -> list[Path]:
    """Deletes all but the ``keep`` highest-epoch ``snapshot_<epoch>.pth.tar`` files (keep 0: none deleted).

    Returns:
        The deleted paths.
    """
    found = sorted((int(m.group(1)), p) for p in Path(model_dir).glob("snapshot_*.pth.tar")
                   if (m := SNAPSHOT_PATTERN.match(p.name)))  # fmt: skip
    stale = [path for _, path in found[: max(len(found) - keep, 0)]] if keep > 0 else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def latest_snapshot(model_dir: str | os.PathLike[str]) -> Path | None:
    """The snapshot with the highest epoch number in ``model_dir`` (None when there is none).

    Only files named exactly ``snapshot_<int>.pth.tar`` count, so a renamed copy such as
    ``snapshot_6_all.pth.tar`` is never picked up by accident.
    """
    found = [
        (int(m.group(1)), p)
        for p in Path(model_dir).glob("snapshot_*.pth.tar")
        if (m := SNAPSHOT_PATTERN.match(p.name))
    ]
    return max(found)[1] if found else None


def read_snapshot(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a snapshot on the CPU; its ``network`` comes back without ``module.`` prefixes.

    Raises:
        SnapshotError: naming the file when it is missing, unreadable, or has no ``network`` dict.
    """
    path = Path(path)
    if not path.is_file():
        raise SnapshotError(f"snapshot not found: {path}")
    try:
        # weights_only=False: snapshots hold plain python config dicts next to tensors; only load files you trust
        snapshot = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for corrupt files (pickle, zip, EOF errors)
        raise SnapshotError(f"cannot read snapshot {path}: {exc}") from exc
    if not isinstance(snapshot, dict) or not isinstance(snapshot.get("network"), Mapping):
        keys = sorted(snapshot) if isinstance(snapshot, dict) else type(snapshot).__name__
        raise SnapshotError(f"{path} is not a snapshot: expected a dict with a 'network' state_dict, found {keys}")
    snapshot["network"] = strip_module_prefix(snapshot["network"])
    return snapshot


def write_snapshot(snapshot: Mapping[str, Any], path: str | os.PathLike[str], overwrite: bool = True) -> Path:
    """Atomically write a snapshot (temporary file in the same folder, then rename).

    Args:
        snapshot: at least ``epoch`` and ``network``.
        path: destination; its folder is created.
        overwrite: when False, an existing file is an error instead of being replaced.
    """
    path = Path(path)
    if "network" not in snapshot or "epoch" not in snapshot:
        raise SnapshotError(f"refusing to write {path}: a snapshot needs 'epoch' and 'network', got {sorted(snapshot)}")
    if not overwrite and path.exists():
        raise SnapshotError(f"{path} exists; pass overwrite (--force) to replace it")
    return write_atomic(path, lambda file: torch.save(dict(snapshot), file), durable=True)
