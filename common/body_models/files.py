"""The body-model files of a ``human_model_path`` tree (Hand4Whole's ``human_model_files`` layout).

Every path is relative to ``human_model_path`` and uses ``/``. Every file the framework reads is
looked up through `require_model_file`, so a missing file is always the same readable error: which
file, where it comes from, and how to run without the licensed files (the synthetic stand-in).
A file that is there but cannot be used (truncated, another format, or a pickle that would run code)
is `UnreadableBodyModelFileError`, a subclass, so that the command-line tools report it in one line too.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

GENDERS: tuple[str, ...] = ("neutral", "male", "female")
SIDES: tuple[str, ...] = ("left", "right")

SMPLX_MODELS: Mapping[str, str] = MappingProxyType({g: f"smplx/SMPLX_{g.upper()}.npz" for g in GENDERS})
# The same models as the SMPL-X download's .pkl files (Hand4Whole's README draws these): the same arrays,
# accepted wherever the .npz is; the .npz is preferred when both are there.
SMPLX_PKL_MODELS: Mapping[str, str] = MappingProxyType({g: f"smplx/SMPLX_{g.upper()}.pkl" for g in GENDERS})
SMPLX_HAND_VERTEX_IDS = "smplx/MANO_SMPLX_vertex_ids.pkl"  # {'left_hand', 'right_hand'} -> (778,) SMPL-X vertex ids
SMPLX_FACE_VERTEX_IDS = "smplx/SMPL-X__FLAME_vertex_ids.npy"  # (5023,) SMPL-X vertex ids of the FLAME mesh
SMPLX_TO_J14 = "smplx/SMPLX_to_J14.pkl"  # (14, V) regressor, latin1 pickle
J_REGRESSOR_H36M_SMPLX = "smplx/J_regressor_h36m_smplx.npy"  # (17, V) regressor
SMPL_MODELS: Mapping[str, str] = MappingProxyType({g: f"smpl/SMPL_{g.upper()}.pkl" for g in GENDERS})
J_REGRESSOR_H36M_SMPL = "smpl/J_regressor_h36m_smpl.npy"  # (17, 6890) regressor over SMPL vertices
MANO_MODELS: Mapping[str, str] = MappingProxyType({s: f"mano/MANO_{s.upper()}.pkl" for s in SIDES})
FLAME_MODEL = "flame/FLAME_NEUTRAL.pkl"
FLAME_STATIC_EMBEDDING = "flame/flame_static_embedding.pkl"  # the 51 static landmarks
FLAME_DYNAMIC_EMBEDDING = "flame/flame_dynamic_embedding.npy"  # the 17 pose-dependent contour landmarks

ALTERNATIVES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {SMPLX_MODELS[g]: (SMPLX_PKL_MODELS[g],) for g in GENDERS}
)
"""Files of the tree that may be replaced by another name, in order of preference after the key."""

ALL_FILES: tuple[str, ...] = (
    *SMPLX_MODELS.values(),
    SMPLX_HAND_VERTEX_IDS,
    SMPLX_FACE_VERTEX_IDS,
    SMPLX_TO_J14,
    J_REGRESSOR_H36M_SMPLX,
    *SMPL_MODELS.values(),
    *MANO_MODELS.values(),
    FLAME_MODEL,
    FLAME_STATIC_EMBEDDING,
    FLAME_DYNAMIC_EMBEDDING,
)
"""Every file of the tree, in the order above (each under its preferred name)."""

SYNTHETIC_HINT = (
    "To run without the licensed files, use the synthetic stand-in (same names, formats and sizes): "
    "`python tool/make_synthetic_body_models.py --out DIR` and then the config override "
    "`human_model_path=DIR`, or pass `--body-model synthetic` to the command-line tools."
)

# Where each file comes from; the SMPL-X vertex-id files are what Hand4Whole's issues #1 and #60 ask about.
_SOURCES: Mapping[str, str] = MappingProxyType(
    {
        SMPLX_HAND_VERTEX_IDS: 'the SMPL-X download page https://smpl-x.is.tue.mpg.de, "MANO and FLAME vertex indices"',
        SMPLX_FACE_VERTEX_IDS: 'the SMPL-X download page https://smpl-x.is.tue.mpg.de, "MANO and FLAME vertex indices"',
        SMPLX_TO_J14: "the ExPose data (https://expose.is.tue.mpg.de, download page; Hand4Whole issue #29)",
        J_REGRESSOR_H36M_SMPLX: "the Hand4Whole release (github.com/mks0601/Hand4Whole_RELEASE, data/Human36M/)",
        J_REGRESSOR_H36M_SMPL: "the Hand4Whole release (github.com/mks0601/Hand4Whole_RELEASE, data/Human36M/)",
    }
)
_FOLDER_SOURCES: Mapping[str, str] = MappingProxyType(
    {
        "smplx": "the SMPL-X download page https://smpl-x.is.tue.mpg.de (SMPL-X model, .npz or .pkl files)",
        "smpl": "the SMPL download page https://smpl.is.tue.mpg.de (the .pkl files, renamed to "
        "SMPL_{NEUTRAL,MALE,FEMALE}.pkl)",
        "mano": "the MANO download page https://mano.is.tue.mpg.de (models/MANO_LEFT.pkl, MANO_RIGHT.pkl)",
        "flame": "the FLAME download page https://flame.is.tue.mpg.de (generic model saved as FLAME_NEUTRAL.pkl, "
        "and the landmark embeddings)",
    }
)


class MissingBodyModelFileError(FileNotFoundError):
    """A body-model file is not where the configured ``human_model_path`` says it is.

    Attributes:
        path: the absolute path that was looked up (the preferred name where several are accepted).
        relpath: the path relative to ``human_model_path`` (one of this module's constants).
    """

    def __init__(self, path: Path, relpath: str) -> None:
        self.path = path
        self.relpath = relpath
        others = ALTERNATIVES.get(relpath, ())
        accepted = " or ".join(f"<human_model_path>/{rel}" for rel in (relpath, *others))
        self.message = (
            f"Body-model file not found: {path}" + "".join(f" (nor {path.parent / Path(o).name})" for o in others)
            + f"\n  It comes from {source_of(relpath)}; put it at {accepted}.\n  {SYNTHETIC_HINT}"
        )  # fmt: skip
        super().__init__(errno.ENOENT, self.message, str(path))  # errno and filename, as handlers expect

    def __str__(self) -> str:
        return self.message  # OSError's own "[Errno 2] ...: 'path'" would repeat the path


class UnreadableBodyModelFileError(MissingBodyModelFileError):
    """A body-model file is there but cannot be used: truncated, not in its format, or refused as unsafe.

    A subclass of `MissingBodyModelFileError` (hence of FileNotFoundError) so that every handler of a
    missing file, the command-line tools' one-line report included, handles it; the remedy is the same:
    put the right file there.

    Attributes:
        path: the file.
        relpath: the file's name (its place in the tree is not known where pickles are read).
        problem: what is wrong, in words.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.relpath = self.path.name
        self.problem = problem
        self.message = f"Body-model file unusable: {self.path}: {problem}"
        # EINVAL, not ENOENT: the file exists; the OSError bases still get the file name
        super(MissingBodyModelFileError, self).__init__(errno.EINVAL, self.message, str(self.path))


class UnsafePickleError(UnreadableBodyModelFileError):
    """A body-model pickle names a class or function outside the allow-list of the official files.

    Loading it could run code, so it is refused before anything from it is called.

    Attributes:
        global_name: the refused ``module.name``.
    """

    def __init__(self, path: str | os.PathLike[str], global_name: str, where: str = "") -> None:
        self.global_name = global_name
        super().__init__(
            path,
            f"refused to unpickle{where}: it names {global_name}, which no official body-model file needs "
            "(loading it could run code)",
        )


def source_of(relpath: str) -> str:
    """Where a file of the tree is downloaded from, in words (for error messages and docs)."""
    if relpath in _SOURCES:
        return _SOURCES[relpath]
    folder = relpath.split("/", 1)[0]
    return _FOLDER_SOURCES.get(folder, "the body-model download pages (see README)")


def require_model_file(human_model_path: str | os.PathLike[str], relpath: str) -> Path:
    """The absolute path of one file of the tree, which must exist.

    Args:
        human_model_path: root of the tree (already resolved by the caller's config rules).
        relpath: path relative to the root, e.g. `SMPLX_MODELS['neutral']`; where `ALTERNATIVES`
            lists other accepted names (``SMPLX_NEUTRAL.pkl``), the first one present is taken.

    Returns:
        ``human_model_path / relpath``, or ``human_model_path / alternative``.

    Raises:
        MissingBodyModelFileError: none of the accepted paths is a file; the message names them,
            where the file comes from and the synthetic option.
    """
    root = Path(human_model_path)
    for candidate in (relpath, *ALTERNATIVES.get(relpath, ())):
        if (root / candidate).is_file():
            return root / candidate
    raise MissingBodyModelFileError(root / relpath, relpath)
