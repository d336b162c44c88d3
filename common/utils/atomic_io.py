"""Atomic file writes: a reader never sees a half-written file, and an interrupted run leaves none behind.

Every file a run produces that another step reads (snapshots, configs, annotations, metrics, exports) goes
through `write_atomic`: the content goes to a temporary file in the destination's folder, which is then renamed
over the destination (os.replace is atomic within one file system). The temporary name is unique per call, so
parallel worker processes never share one. A write the operating system refuses (a full disk, a quota, an
unwritable folder) becomes one `OutputWriteError` naming the destination and the OS reason, and removes the
temporary file; the destination keeps its previous content.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["OutputWriteError", "is_temporary_of", "write_atomic", "write_bytes_atomic", "write_json_atomic"]

_FILE_MODE = 0o644  # mkstemp creates 0600; results, configs and checkpoints are ordinary files
# mkstemp's random part: letters, digits and underscores (tempfile._RandomNameSequence)
_TEMPORARY_SUFFIX = r"\.[A-Za-z0-9_]+\.tmp"


class OutputWriteError(OSError):
    """The operating system refused to write an output file: ``str`` names the file and the OS reason.

    Built like any OSError, ``OutputWriteError(errno, strerror, filename)``, so it pickles and carries the errno
    (e.g. errno.ENOSPC) for callers that tell the causes apart.
    """

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"

    @classmethod
    def from_os_error(cls, path: str | os.PathLike[str], error: OSError) -> OutputWriteError:
        """The error for ``path`` with ``error``'s errno and reason (its message when it has no strerror)."""
        reason = error.strerror or " ".join(str(error).split()) or type(error).__name__
        return cls(error.errno, reason, str(path))


def is_temporary_of(name: str, destination_pattern: str) -> bool:
    """Whether a file name is a `write_atomic` temporary of a destination whose name matches a regex.

    `write_atomic` names its temporary ``.<destination name>.<random>.tmp``; a kill between creating and renaming
    it leaves that file behind, which a later run can recognise (and remove) with this test.

    Args:
        name: a file name (no folder).
        destination_pattern: a regex for the destination file name, no anchors, e.g. r"snapshot_\\d+\\.pth\\.tar".
    """
    return re.fullmatch(rf"\.(?:{destination_pattern}){_TEMPORARY_SUFFIX}", name) is not None


class _RecordingFile:
    """The temporary file as ``write`` sees it, remembering the first OSError its ``write`` or ``flush`` raised.

    Writers may hide the OS error behind their own: torch.save into a full disk raises a RuntimeError of its own
    ("PytorchStreamWriter failed writing file" or "unexpected pos ..."), with ENOSPC only in its __context__.
    Everything else is the file's own (``tell``, ``seek``, ``fileno``, ...).
    """

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._file.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as exc:
            self.error = self.error or exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def write_atomic(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any], durable: bool = False) -> Path:
    """Writes a file through a temporary file next to it, renamed into place; parent folders are created.

    Args:
        path: the destination.
        write: called with the open binary temporary file (e.g. ``lambda f: torch.save(obj, f)``); it only writes,
            so an OSError it raises is taken for a failed write of ``path``.
        durable: fsync before the rename, so that the file survives a power loss (checkpoints, configs).

    Returns:
        The destination path.

    Raises:
        OutputWriteError: the operating system refused the folder, the file, a write (also when ``write`` hides it
            behind an error of its own), the fsync or the rename (ENOSPC, EDQUOT, EIO, EACCES, ...); it names
            ``path`` and the OS reason. The temporary file is removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputWriteError.from_os_error(path, exc) from exc
    raw = os.fdopen(fd, "wb")
    file = _RecordingFile(raw)
    try:
        with raw:  # closing flushes: a full disk may only show here, or at the fsync
            write(file)  # type: ignore[arg-type]  # a file in all but its type
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.chmod(temporary, _FILE_MODE)
        os.replace(temporary, path)
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        cause = file.error or (exc if isinstance(exc, OSError) else None)
        if cause is None or isinstance(exc, OutputWriteError) or not isinstance(exc, Exception):
            raise  # not a refused write, already reported, or an interrupt (Ctrl-C) that must stay one
        raise OutputWriteError.from_os_error(path, cause) from exc
    return path


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, durable: bool = False) -> Path:
    """``data`` written atomically (see `write_atomic`)."""
    return write_atomic(path, lambda file: file.write(data), durable)


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: int | None = None) -> Path:
    """``json.dumps(obj, indent=indent)`` written atomically as UTF-8 (see `write_atomic`)."""
    text = json.dumps(obj, indent=indent) + ("\n" if indent is not None else "")
    return write_bytes_atomic(path, text.encode("utf-8"))
