"""What `--continue` restores from a snapshot, by the kind of snapshot.

* A training snapshot (written by the trainer after an epoch): network, optimizer, schedule and every process's
  RNG state; training goes on at the next epoch exactly as if it had not stopped.
* A weights-only snapshot (made by a tool: convert_simple_to_pose2pose, merge_hand_to_all, reset_epoch, or a
  public Hand4Whole snapshot): the network alone, loaded strictly; training starts at its epoch + 1 with a fresh
  optimizer and the schedule at that epoch, as Hand4Whole's `--continue` from a tool-made snapshot_0 does.
* A `partial` weights-only snapshot (the tool dropped or never had some modules, e.g. the whole-body hand heads):
  the keys it has are loaded, the modules it lacks keep their fresh initialisation and are listed. This is the
  one place where not every model key must be in the file; unexpected keys and shape differences are still
  errors.

Which snapshot: the highest epoch in model_dump (`read_resume_snapshot`). When that file cannot be read (a
truncated copy, a disk error), `--continue` stops with one line naming it and the newest snapshot that does read;
`--continue-from-last-good` resumes from that one instead, and the unreadable newer files are renamed to
`<name>.unreadable` (kept for inspection, no longer taken for the newest snapshot by `--continue` or by the pruning
of train.keep_snapshots, which would otherwise keep them and delete the good ones).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from common.engine.checkpoint import StateDictMismatchError, load_network_state, strip_module_prefix
from common.engine.cli import UsageError
from common.engine.snapshot import (
    SnapshotError,
    latest_snapshot,
    newer_snapshots,
    newest_readable_snapshot,
    read_snapshot,
    snapshot_epoch,
)

__all__ = [
    "LAST_GOOD_FLAG",
    "UNREADABLE_SUFFIX",
    "ResumePoint",
    "is_training_snapshot",
    "load_partial_network_state",
    "load_weights",
    "read_resume_snapshot",
    "set_aside",
]

logger = logging.getLogger(__name__)

_LISTED_MODULES = 30
LAST_GOOD_FLAG = "--continue-from-last-good"  # main/train.py's flag, named in the messages
UNREADABLE_SUFFIX = ".unreadable"  # appended to a snapshot passed over by --continue-from-last-good


def is_training_snapshot(snapshot: Mapping[str, Any]) -> bool:
    """Whether a snapshot holds a resumable training state whose schedule matches its epoch.

    A tool that resets the epoch of a training snapshot (reset_epoch.py: epoch 6 -> 0) leaves a schedule that no
    longer matches; such a file counts as weights only, so fine-tuning starts with a fresh optimizer.
    """
    scheduler = snapshot.get("scheduler")
    return (
        snapshot.get("optimizer") is not None
        and isinstance(scheduler, Mapping)
        and snapshot.get("rng_states") is not None
        and scheduler.get("last_epoch") == int(snapshot["epoch"]) + 1
    )


def load_partial_network_state(model: nn.Module, state_dict: Mapping[str, Tensor]) -> list[str]:
    """Loads the keys a partial snapshot has; the model's other keys keep their current (initial) values.

    Implemented as a strict load of the model's own state overlaid with the file's tensors, so any key of the
    file the model does not have, and any shape difference, is still an error.

    Args:
        model: the freshly initialised network (not wrapped in DDP).
        state_dict: the snapshot's network, with or without `module.` prefixes.

    Returns:
        The model keys left at their initial values, sorted.

    Raises:
        StateDictMismatchError: unexpected keys or shape differences.
    """
    state = strip_module_prefix(state_dict)
    current = model.state_dict()
    unexpected = sorted(set(state) - set(current))
    shape_mismatch = [(key, tuple(state[key].shape), tuple(current[key].shape)) for key in sorted(set(state) & set(
        current)) if tuple(state[key].shape) != tuple(current[key].shape)]  # fmt: skip
    if unexpected or shape_mismatch:
        raise StateDictMismatchError(type(model).__name__, [], unexpected, shape_mismatch)
    left_at_init = sorted(set(current) - set(state))
    load_network_state(model, {**current, **state})
    return left_at_init


def _modules_of(keys: list[str]) -> str:
    modules = sorted({key.rsplit(".", 1)[0] for key in keys})
    shown = ", ".join(modules[:_LISTED_MODULES])
    return shown + (f", ... and {len(modules) - _LISTED_MODULES} more" if len(modules) > _LISTED_MODULES else "")


def load_weights(model: nn.Module, snapshot: Mapping[str, Any], path: str) -> None:
    """Loads a weights-only snapshot: strictly, or, when it says `partial`, the keys it has (listing the rest)."""
    if snapshot.get("partial"):
        left = load_partial_network_state(model, snapshot["network"])
        logger.info("%s is partial: %d tensor(s) keep their initialisation, in %s", path, len(left),
                    _modules_of(left) or "no module")  # fmt: skip
    else:
        load_network_state(model, snapshot["network"])


@dataclass(frozen=True)
class ResumePoint:
    """The snapshot `--continue` resumes from (path and content), and the newer unreadable ones it passed over."""

    path: Path
    snapshot: dict[str, Any]
    # When resuming from the last good one: the unreadable snapshots of higher epochs (newest first), which the
    # trainer sets aside so that neither `--continue` nor train.keep_snapshots's pruning counts them as newest.
    skipped: tuple[Path, ...] = ()
    problem: str = ""  # why the newest could not be read


def read_resume_snapshot(model_dir: str | os.PathLike[str], from_last_good: bool = False) -> ResumePoint:
    """Reads the highest-epoch snapshot of ``model_dir``; when it is unreadable, finds the newest one that reads.

    Args:
        model_dir: the run's model_dump folder.
        from_last_good: resume from the newest readable snapshot when the newest one cannot be read
            (`--continue-from-last-good`); otherwise that is an error.

    Raises:
        UsageError: ``model_dir`` has no snapshot.
        SnapshotError: one line: the newest snapshot cannot be read (the message names it, the reason, and the
            newest good snapshot with the flag that resumes from it), or no snapshot there reads at all.
    """
    newest = latest_snapshot(model_dir)
    if newest is None:
        raise UsageError(f"--continue: no snapshot_<epoch>.pth.tar in {model_dir}")
    try:
        return ResumePoint(newest, read_snapshot(newest))
    except SnapshotError as exc:
        problem = str(exc)
    found = newest_readable_snapshot(model_dir, below_epoch=snapshot_epoch(newest))
    if found is None:
        raise SnapshotError(f"--continue: {problem}; no older snapshot in {model_dir} can be read either")
    good, snapshot = found
    if not from_last_good:
        raise SnapshotError(f"--continue: the newest snapshot is unreadable ({problem}); the newest good snapshot "
                            f"is {good}: resume from it with {LAST_GOOD_FLAG}")  # fmt: skip
    return ResumePoint(good, snapshot, skipped=tuple(newer_snapshots(model_dir, snapshot_epoch(good))), problem=problem)


def set_aside(paths: tuple[Path, ...]) -> list[Path]:
    """Renames each unreadable snapshot ``snapshot_<epoch>.pth.tar`` to ``snapshot_<epoch>.pth.tar.unreadable``.

    Returns:
        The new paths (a file already gone, e.g. renamed by another run, is left out).
    """
    moved = []
    for path in paths:
        target = path.with_name(path.name + UNREADABLE_SUFFIX)
        try:
            os.replace(path, target)
        except FileNotFoundError:
            continue
        moved.append(target)
    return moved
