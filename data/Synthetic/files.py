"""Atomic file writes: a reader never sees a half-written file, and an interrupted run leaves none behind."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes ``data`` to a temporary file next to ``path`` and renames it into place (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: workers never share one
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)  # atomic on POSIX and Windows within one file system
    finally:
        temporary.unlink(missing_ok=True)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """``json.dumps(obj)`` written atomically (see ``write_bytes_atomic``)."""
    write_bytes_atomic(path, json.dumps(obj).encode("utf-8"))
