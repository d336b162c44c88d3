"""Snapshot files: ``snapshot_{epoch}.pth.tar`` = {epoch, network, optimizer, scheduler, scaler, config, ...}.

Hand4Whole's file name and top-level keys, so its tools and ours read each other's files. Files are
written to a temporary file in the same folder and renamed into place: a crash or a full disk never
leaves a truncated snapshot where a good one was. A full disk (or any write the OS refuses) is one
`OutputWriteError` naming the file and the OS reason, and the temporary file is removed; a kill during
the write leaves the temporary file (``.snapshot_<epoch>.pth.tar.<random>.tmp``), which
`remove_partial_snapshots` deletes when training next starts. Reading names the file and the problem.

Reading uses ``torch.load(weights_only=True)``, which rebuilds tensors, containers and plain scalars
and calls nothing else, so a snapshot from anywhere cannot run code. Everything we store is of that
kind (the RNG states too, see `common.engine.seeding`), and so are Hand4Whole's public snapshots
(epoch, network and Adam state_dicts). A file that needs any other global is refused, naming it.
`load_tensor_file` is that loading for any torch file (weights of other projects, ImageNet backbones).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from common.engine.checkpoint import strip_module_prefix
from common.utils.atomic_io import is_temporary_of, write_atomic

SNAPSHOT_PATTERN = re.compile(r"^snapshot_(\d+)\.pth\.tar$")
_SNAPSHOT_NAME = r"snapshot_\d+\.pth\.tar"  # SNAPSHOT_PATTERN without its group and anchors


class SnapshotError(RuntimeError):
    """A snapshot file is missing, unreadable or not a snapshot."""


def snapshot_path(model_dir: str | os.PathLike[str], epoch: int) -> Path:
    return Path(model_dir) / f"snapshot_{epoch}.pth.tar"


def _snapshots_by_epoch(model_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """The ``snapshot_<epoch>.pth.tar`` files of ``model_dir`` as (epoch, path), lowest epoch first."""
    return sorted((int(m.group(1)), p) for p in Path(model_dir).glob("snapshot_*.pth.tar")
                  if (m := SNAPSHOT_PATTERN.match(p.name)))  # fmt: skip


def prune_snapshots(model_dir: str | os.PathLike[str], keep: int, current_epoch: int | None = None) -> list[Path]:
    """Deletes all but the ``keep`` highest-epoch ``snapshot_<epoch>.pth.tar`` files (keep 0: none deleted).

    Args:
        model_dir: the snapshot folder.
        keep: how many to keep.
        current_epoch: the epoch just written: only snapshots up to it count, so that higher epochs left by an
            earlier run in the same folder never make the new snapshot the one deleted (they are left alone).

    Returns:
        The deleted paths.
    """
    found = [(epoch, path) for epoch, path in _snapshots_by_epoch(model_dir)
             if current_epoch is None or epoch <= current_epoch]  # fmt: skip
    stale = [path for _, path in found[: max(len(found) - keep, 0)]] if keep > 0 else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def remove_partial_snapshots(model_dir: str | os.PathLike[str]) -> list[Path]:
    """Deletes the temporary files of snapshot writes that never finished (the process was killed mid-write).

    `write_snapshot` writes ``.snapshot_<epoch>.pth.tar.<random>.tmp`` and renames it into place; only a kill
    between the two leaves one, which nothing reads. Call it where no snapshot is being written (one run per
    output folder: at the start of training and after each snapshot, on the process that writes them).

    Returns:
        The deleted paths, sorted.
    """
    folder = Path(model_dir)
    partial = sorted(p for p in folder.glob(".snapshot_*.tmp") if is_temporary_of(p.name, _SNAPSHOT_NAME))
    for path in partial:
        path.unlink(missing_ok=True)
    return partial


def latest_snapshot(model_dir: str | os.PathLike[str]) -> Path | None:
    """The snapshot with the highest epoch number in ``model_dir`` (None when there is none).

    Only files named exactly ``snapshot_<int>.pth.tar`` count, so a renamed copy such as
    ``snapshot_6_all.pth.tar`` is never picked up by accident.
    """
    found = _snapshots_by_epoch(model_dir)
    return found[-1][1] if found else None


def newest_readable_snapshot(
    model_dir: str | os.PathLike[str], below_epoch: int | None = None
) -> tuple[Path, dict[str, Any]] | None:
    """The highest-epoch snapshot of ``model_dir`` that reads as a snapshot, and its content.

    Each candidate is read in full (newest first) until one loads, so this costs one `read_snapshot` per
    unreadable file plus one; `--continue` calls it only when the newest snapshot cannot be read.

    Args:
        model_dir: the run's model_dump folder.
        below_epoch: only snapshots of lower epochs are tried (None: all).
    """
    for epoch, path in reversed(_snapshots_by_epoch(model_dir)):
        if below_epoch is not None and epoch >= below_epoch:
            continue
        try:
            return path, read_snapshot(path)
        except SnapshotError:
            continue
    return None


def newer_snapshots(model_dir: str | os.PathLike[str], epoch: int | None) -> list[Path]:
    """The ``snapshot_<e>.pth.tar`` files of ``model_dir`` with e > epoch, highest first (all for None)."""
    return [path for e, path in reversed(_snapshots_by_epoch(model_dir)) if epoch is None or e > epoch]


def snapshot_epoch(path: str | os.PathLike[str]) -> int | None:
    """The epoch in a ``snapshot_<epoch>.pth.tar`` file name (None for any other name)."""
    match = SNAPSHOT_PATTERN.match(Path(path).name)
    return int(match.group(1)) if match else None


# torch's weights_only refusal names the global as "GLOBAL module.name" ("GLOBAL name" for builtins)
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
# the useful part of torch's other weights_only errors, e.g. "Unsupported operand 103" for a file that is no pickle
_UNPICKLER_DETAIL = re.compile(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)")
# torch's zip reader on a cut-short or damaged archive: the first sentence says what failed, the rest is advice
_ZIP_READER_FAILURE = re.compile(r"(PytorchStreamReader failed [^.]*)")


def _refused_global(error: pickle.UnpicklingError) -> str | None:
    """The ``module.name`` a weights_only load refused, from torch's message; None for other unpickling errors."""
    match = _REFUSED_GLOBAL.search(str(error))
    if match is None:
        return None
    name = match.group(1)
    return name if "." in name else f"builtins.{name}"


def load_tensor_file(path: str | os.PathLike[str], what: str = "snapshot") -> Any:
    """``torch.load`` on the CPU with ``weights_only=True``: tensors, containers and plain scalars, no code run.

    Args:
        path: a file written by ``torch.save`` (zip or legacy format).
        what: what the file is, for the messages ("snapshot", "SimpleBaseline weights", ...).

    Raises:
        SnapshotError: one line naming the file when it is missing, not a torch file, truncated, or needs a
            global that weights_only loading refuses (that global is named).
    """
    path = Path(path)
    if not path.is_file():
        raise SnapshotError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _refused_global(exc)
        if refused is None:
            text = " ".join(str(exc).split())  # one line
            detail = match.group(1) if (match := _UNPICKLER_DETAIL.search(text)) else text
            raise SnapshotError(f"cannot read {what} {path}: not a torch checkpoint or truncated ({detail})") from exc
        raise SnapshotError(
            f"refusing to load {path}: it needs the global {refused}, which tensor-only loading "
            f"(torch.load weights_only=True) does not allow because it could run code"
        ) from exc
    except Exception as exc:  # torch raises many types for corrupt files (zip, EOF, runtime errors)
        text = " ".join(str(exc).split())  # one line
        if match := _ZIP_READER_FAILURE.search(text):
            raise SnapshotError(f"cannot read {what} {path}: truncated or corrupt ({match.group(1)})") from exc
        raise SnapshotError(f"cannot read {what} {path}: {text}") from exc


def read_snapshot(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a snapshot on the CPU without running code from it; ``network`` comes back without ``module.`` prefixes.

    Raises:
        SnapshotError: naming the file when it is missing, unreadable, has no ``network`` dict, or
            needs a global that weights_only loading refuses (named in the one-line message).
    """
    path = Path(path)
    snapshot = load_tensor_file(path)
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

    Raises:
        SnapshotError: the snapshot lacks ``epoch`` or ``network``, or ``path`` exists and overwrite is False.
        common.utils.atomic_io.OutputWriteError: the OS refused the write (e.g. ENOSPC: "cannot write <path>: No
            space left on device", not torch's "unexpected pos"); no temporary file remains and a previous file
            at ``path`` is intact.
    """
    path = Path(path)
    if "network" not in snapshot or "epoch" not in snapshot:
        raise SnapshotError(f"refusing to write {path}: a snapshot needs 'epoch' and 'network', got {sorted(snapshot)}")
    if not overwrite and path.exists():
        raise SnapshotError(f"{path} exists; pass overwrite (--force) to replace it")
    return write_atomic(path, lambda file: torch.save(dict(snapshot), file), durable=True)
