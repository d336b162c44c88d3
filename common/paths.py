"""The repository root and the one rule for turning configured paths into absolute ones."""

import os
from pathlib import Path

# common/paths.py -> common/ -> repository root. resolve() first so that a symlinked checkout or a
# relative __file__ (python -m from the root) still gives one absolute, canonical root.
REPO_ROOT: Path = Path(__file__).resolve().parents[1]


def resolve_repo_path(path: str | os.PathLike[str]) -> Path:
    """Makes a configured path absolute, anchored at the repository root.

    Hand4Whole built its paths from the current directory, so `cd main && python train.py` and
    `python main/train.py` read and wrote different folders. Here a relative path in a config or on
    the command line always means the same place: relative to the repository root, never to the
    current working directory.

    Args:
        path: an absolute path (returned unchanged), a path starting with `~` (expanded to the
            user's home) or a path relative to the repository root.

    Returns:
        The absolute path. It is not required to exist and symlinks are not resolved.
    """
    expanded = Path(path).expanduser()
    if expanded.is_absolute():
        return expanded
    return REPO_ROOT / expanded
