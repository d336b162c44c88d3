"""Objects whose unpickling would run code, for the tests that check no loader of ours does (not a test file).

Each creates a marker file when a plain unpickler calls what the pickle names; the tests assert the marker never
appears after our loaders refused the file.
"""

from __future__ import annotations

import os
import pathlib
import shlex
from pathlib import Path

__all__ = ["ShellOnLoad", "TouchOnLoad"]


class TouchOnLoad:
    """Unpickles as ``Path.touch(marker)``: creates ``marker`` when a loader calls what the file names."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class ShellOnLoad:
    """Unpickles as ``os.system('touch marker')``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))
