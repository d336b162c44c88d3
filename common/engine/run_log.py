"""Where a run writes: its output folders, checked before any work, the text log (output/log/train_logs.txt,
test_logs.txt) and TensorBoard."""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from common.utils.atomic_io import OutputWriteError

__all__ = [
    "OutputFolderError",
    "RunPaths",
    "attach_log_file",
    "check_output_folders",
    "detach_log_file",
    "open_tensorboard",
]


class RunPaths:
    """The output folders of a run under cfg.output_dir (Hand4Whole's layout)."""

    def __init__(self, output_dir: str | Path) -> None:
        self.output_dir = Path(output_dir)
        self.model_dir = self.output_dir / "model_dump"  # snapshot_{epoch}.pth.tar
        self.log_dir = self.output_dir / "log"  # train_logs.txt, test_logs.txt, tensorboard/
        self.vis_dir = self.output_dir / "vis"
        self.result_dir = self.output_dir / "result"
        self.tensorboard_dir = self.log_dir / "tensorboard"


class OutputFolderError(OutputWriteError):
    """An output folder cannot be created or written; ``str`` names it and the OS reason (an OSError: exit 2)."""

    def __str__(self) -> str:
        return f"output folder {self.filename} cannot be created or written: {self.strerror}"


def _blocking_file(folder: Path) -> Path | None:
    """The nearest existing ancestor of ``folder`` (or itself) when that is a file, not a folder; else None."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def _probe(folder: Path) -> None:
    """Creates ``folder`` and writes, then removes, a small file in it (an OSError when either is refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".write_probe.{os.getpid()}"
    descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, b"probe")
    finally:
        os.close(descriptor)
        probe.unlink(missing_ok=True)


def check_output_folders(folders: Iterable[str | os.PathLike[str]]) -> None:
    """Checks, before any work, that each folder can be created and written: create it, write and remove a file.

    Folders the check had to create are removed again (when still empty), so a run that stops on a later error
    leaves nothing behind; the writers create them when they write. A folder that exists keeps its content.

    Raises:
        OutputFolderError: the first folder that cannot be created or written, with the OS reason (e.g. "Not a
            directory (/runs/a_file is a file)", "Permission denied", "Read-only file system").
    """
    for folder in map(Path, folders):
        missing = [p for p in (folder, *folder.parents) if not p.exists() and not p.is_symlink()]
        try:
            blocking = _blocking_file(folder)
            if blocking is not None:
                raise NotADirectoryError(errno.ENOTDIR, f"{os.strerror(errno.ENOTDIR)} ({blocking} is a file)")
            _probe(folder)
        except OSError as exc:
            reason = exc.strerror or " ".join(str(exc).split())
            raise OutputFolderError(exc.errno, reason, str(folder)) from exc
        finally:
            for created in missing:  # the deepest first
                try:
                    created.rmdir()
                except OSError:  # not created after all, or no longer empty
                    break


def attach_log_file(path: Path, is_main: bool) -> logging.Handler | None:
    """Sends log records to the console (every process) and, on the main process, appended to `path`.

    Rank 0 logs from INFO up; the other ranks only warnings, so a multi-process run prints each line once.
    Returns the file handler, to be given to `detach_log_file` when the run ends (None on the other ranks).
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO if is_main else logging.WARNING)
    if not root.handlers:  # a spawned process; the entry script's own process has its console handler already
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(console)
    # PyOpenGL announces at INFO that an optional accelerator module is absent; not the run's business.
    logging.getLogger("OpenGL").setLevel(logging.WARNING)
    if not is_main:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    return handler


def detach_log_file(handler: logging.Handler | None) -> None:
    """Closes what `attach_log_file` opened."""
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.close()


def open_tensorboard(log_dir: Path) -> Any:
    """A TensorBoard SummaryWriter writing under `log_dir` (imported here: only rank 0 needs tensorboard)."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))
