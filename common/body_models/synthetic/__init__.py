"""A synthetic stand-in for the licensed SMPL-X, SMPL, MANO and FLAME files.

It writes the whole ``human_model_files`` tree in the official formats and with the real sizes
(10475 SMPL-X vertices with 144 output joints, 6890 SMPL, 778 MANO, 5023 FLAME), loadable by the
unmodified ``smplx`` package, so that every part of the framework runs and is tested on machines
without the licensed files. It is a mannequin, not a statistical model: human proportions,
SMPL-X's rest pose and kinematic tree, separate bending fingers, a jaw that opens, eyeballs, ears,
shape components that change height and girth, and expression components that move only the face;
pose-corrective blend shapes are zero. It is exactly mirror-symmetric, so flipping SMPL-X
parameters gives exactly the mirrored mesh.

The stand-in is only ever used when chosen explicitly: ``human_model_path`` pointing at a tree
written here, or the CLIs' ``--body-model synthetic``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .models import build_smplx, evaluation_regressors, flame_files, mano_files, smpl_files, smplx_file, smplx_pickle
from .writer import write_npy, write_npz, write_pickle

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 2  # bump when the generated files change, so that caches are rebuilt
_COMPLETE_MARKER = "SYNTHETIC_STAND_IN"
MIRROR_IDS_FILE = "SMPLX_mirror_vertex_ids.npy"


SMPLX_FORMATS = ("npz", "pkl")


def write_synthetic_body_models(out_dir: str | Path, seed: int = 0, smplx_format: str = "npz") -> Path:
    """Write the synthetic human_model_files tree into ``out_dir``.

    Args:
        out_dir: destination folder (created); existing files of the tree are overwritten.
        seed: chooses the hand pose PCA basis; the same seed gives the same bytes.
        smplx_format: ``"npz"`` writes ``smplx/SMPLX_{GENDER}.npz``; ``"pkl"`` writes the same models as
            ``SMPLX_{GENDER}.pkl`` instead, laid out as the official .pkl download is (see `smplx_pickle`);
            a pickle is not compressed, so these are about 230 MB each, as the official ones are large.

    Returns:
        ``out_dir`` as a Path, to be used as ``human_model_path``.
    """
    if smplx_format not in SMPLX_FORMATS:
        raise ValueError(f"unknown SMPL-X format {smplx_format!r}; accepted: {', '.join(SMPLX_FORMATS)}")
    out = Path(out_dir)
    for sub in ("smplx", "smpl", "mano", "flame"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    logger.info("building the SMPL-X stand-in")
    model = build_smplx(seed)
    for gender in ("NEUTRAL", "MALE", "FEMALE"):
        contents = smplx_file(model, gender.lower())
        if smplx_format == "npz":
            write_npz(out / "smplx" / f"SMPLX_{gender}.npz", contents)
        else:
            write_pickle(out / "smplx" / f"SMPLX_{gender}.pkl", smplx_pickle(contents))
    write_pickle(
        out / "smplx" / "MANO_SMPLX_vertex_ids.pkl", {k: v.astype(np.int64) for k, v in model["hand_ids"].items()}
    )
    write_npy(out / "smplx" / "SMPL-X__FLAME_vertex_ids.npy", model["flame_ids"].astype(np.int64))
    # not an official file: the left/right vertex correspondence that mirrors a mesh (SMPL's pkl has its own)
    write_npy(out / "smplx" / MIRROR_IDS_FILE, model["mesh"].mirror.astype(np.int64))
    regressors = evaluation_regressors(model)
    write_pickle(out / "smplx" / "SMPLX_to_J14.pkl", regressors["SMPLX_to_J14.pkl"])
    write_npy(out / "smplx" / "J_regressor_h36m_smplx.npy", regressors["J_regressor_h36m_smplx.npy"])
    for side, contents in mano_files(model).items():
        write_pickle(out / "mano" / f"MANO_{side}.pkl", contents)
    for name, contents in flame_files(model).items():
        (write_npy if name.endswith(".npy") else write_pickle)(out / "flame" / name, contents)
    logger.info("building the SMPL stand-in")
    for gender, contents in smpl_files(seed).items():
        write_pickle(out / "smpl" / f"SMPL_{gender}.pkl", contents)
    marker = f"synthetic stand-in, generator version {GENERATOR_VERSION}, seed {seed}\n"
    (out / _COMPLETE_MARKER).write_text(marker + ("SMPL-X models as .pkl\n" if smplx_format == "pkl" else ""))
    return out


def is_synthetic(human_model_path: str | Path) -> bool:
    """Whether a human_model_files tree was written by this generator."""
    return (Path(human_model_path) / _COMPLETE_MARKER).is_file()


def ensure_synthetic_body_models(cache_root: str | Path | None = None, seed: int = 0) -> Path:
    """The path of a cached stand-in tree, generating it on first use.

    The tree is written to a temporary folder and renamed into place, so concurrent processes and
    interrupted runs never leave a half-written tree behind.

    Args:
        cache_root: folder holding cached trees; default ``output/body_models_synthetic`` in the repository.
        seed: see ``write_synthetic_body_models``.
    """
    if cache_root is None:
        from common.paths import REPO_ROOT

        cache_root = REPO_ROOT / "output" / "body_models_synthetic"
    target = Path(cache_root) / f"v{GENERATOR_VERSION}_seed{seed}"
    if is_synthetic(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging_", dir=target.parent))
    try:
        write_synthetic_body_models(staging, seed)
        try:
            os.replace(staging, target)
        except OSError:  # another process finished first: keep its tree
            if not is_synthetic(target):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
