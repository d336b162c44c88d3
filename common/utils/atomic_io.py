"""Atomic file writes: a reader never sees a half-written file, and an interrupted run leaves none behind.

Every file a run produces that another step reads (snapshots, configs, annotations, metrics, exports) goes
through `write_atomic`: the content goes to a temporary file in the destination's folder, which is then renamed
over the destination (os.replace is atomic within one file system). The temporary name is unique per call, so
parallel worker processes never share one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["write_atomic", "write_bytes_atomic", "write_json_atomic"]

_FILE_MODE = 0o644  # mkstemp creates 0600; results, configs and checkpoints are ordinary files


def write_atomic(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any], durable: bool = False) -> Path:
    """Writes a file through a temporary file next to it, renamed into place; parent folders are created.

    Args:
        path: the destination.
        write: called with the open binary temporary file (e.g. ``lambda f: torch.save(obj, f)``).
        durable: fsync before the rename, so that the file survives a power loss (checkpoints, configs).

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.chmod(temporary, _FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, durable: bool = False) -> Path:
    """``data`` written atomically (see `write_atomic`)."""
    return write_atomic(path, lambda file: file.write(data), durable)


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: int | None = None) -> Path:
    """``json.dumps(obj, indent=indent)`` written atomically as UTF-8 (see `write_atomic`)."""
    text = json.dumps(obj, indent=indent) + ("\n" if indent is not None else "")
    return write_bytes_atomic(path, text.encode("utf-8"))
