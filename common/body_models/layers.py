"""SMPL-X, SMPL, MANO and FLAME layers over the unmodified ``smplx`` package, built on request.

Nothing is read when this module is imported or a `BodyModels` is constructed; each layer or array
is loaded on first use and cached. Layers have no parameters, only buffers (every ``create_*`` flag
is off, as in Hand4Whole), so a forward call must pass every input: betas, expression and all
poses, as (B, ...) tensors in axis-angle radians. Outputs are in the files' units (metres).

No file is handed to a loader that could run code from it: every pickle (``.pkl``, and the object
arrays of ``.npy``/``.npz`` files) goes through `pickle_io`'s allow-list first, and smplx, which
opens SMPL-X and FLAME files itself with plain pickle, gets copies of the checked contents.

The returned layers are shared by every caller of one `BodyModels`: do not modify them in place
(``.to(device)`` on a module is in place); ``copy.deepcopy(layer).to(device)`` gives a private copy.

smplx prints (it does not log) ``WARNING: You are using a MANO model, with only 10 shape
coefficients.`` for every MANO file, and the same for SMPL and SMPL-X files with fewer than 300
shape components (SMPL 1.0, SMPL-X 1.0). MANO has exactly 10, and 10 is all this framework uses,
so the message is expected there; it is left visible because for other files it is real news.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import scipy.sparse
import smplx
import torch
from smplx.utils import Struct

from common.paths import resolve_repo_path

from . import files
from .pickle_io import load_npy, load_npz, load_pickle
from .regressors import make_hand_regressors, read_regressor

logger = logging.getLogger(__name__)

NUM_BETAS = 10  # Hand4Whole's shape_param_dim
NUM_EXPRESSION = 10  # Hand4Whole's expr_code_dim
_NO_PARAMETERS = {f"create_{p}": False for p in ("global_orient", "body_pose", "betas", "transl")}
_T = TypeVar("_T")


def _check_choice(value: str, accepted: tuple[str, ...], what: str) -> None:
    if value not in accepted:
        raise ValueError(f"unknown {what} {value!r}; accepted: {', '.join(accepted)}")


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)  # cached and shared: a caller's in-place edit would change everyone's copy
    return array


def _densified(data: dict[str, Any]) -> dict[str, Any]:
    """A model dict with its scipy.sparse matrices (e.g. ``J_regressor``) as dense arrays; smplx densifies them too."""
    return {key: value.toarray() if scipy.sparse.issparse(value) else value for key, value in data.items()}


def _smplx_arrays(path: Path) -> dict[str, np.ndarray]:
    """The numeric arrays of an SMPL-X model file, ``.npz`` or ``.pkl``, read without running code.

    Returns:
        name -> array as stored (``v_template`` (V, 3), ``shapedirs`` (V, 3, S), ``J_regressor`` (55, V)
        dense, ...). Entries that are not numeric arrays (``joint2num``, ``part2num``: dicts smplx
        does not read) are checked while loading, then left out.

    Raises:
        UnreadableBodyModelFileError: the file is not an archive/pickle of a dict, or is unsafe.
    """
    data = load_npz(path) if path.suffix == ".npz" else load_pickle(path)
    if not isinstance(data, dict):
        raise files.UnreadableBodyModelFileError(path, f"expected a dict of arrays, found {type(data).__name__}")
    arrays = {}
    for key, value in _densified(data).items():
        if isinstance(value, list | tuple):
            try:
                value = np.asarray(value)
            except ValueError:  # ragged: not an array smplx reads
                continue
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            arrays[str(key)] = value
    logger.debug("%s: left out the non-array entries %s", path.name, sorted(set(map(str, data)) - set(arrays)))
    return arrays


class BodyModels:
    """The body models and vertex/joint files of one ``human_model_path`` tree, loaded lazily.

    Args:
        human_model_path: root of Hand4Whole's ``human_model_files`` tree (see `files`); a relative
            path is relative to the repository root.

    Every accessor raises `MissingBodyModelFileError` when a file it needs is absent (naming the
    file, its source and the synthetic option), its subclass `UnreadableBodyModelFileError` when
    the file is truncated, in another format or a pickle naming code outside the official files'
    needs (`pickle_io`), and ValueError for an unknown gender or side.
    Arrays are returned read-only because they are cached and shared.
    """

    def __init__(self, human_model_path: str | os.PathLike[str]) -> None:
        self.root = resolve_repo_path(human_model_path)
        self._cache: dict[tuple[str, ...], Any] = {}
        self._lock = threading.RLock()  # RLock: building the left MANO builds the right one inside

    def __repr__(self) -> str:
        return f"BodyModels({str(self.root)!r}, loaded={sorted('/'.join(k) for k in self._cache)})"

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root}  # e.g. into spawned DataLoader workers: the path only, each reloads

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"])

    def _cached(self, key: tuple[str, ...], build: Callable[[], _T]) -> _T:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]

    def _file(self, relpath: str) -> Path:
        return files.require_model_file(self.root, relpath)

    # --- layers ------------------------------------------------------------------------------------
    def smplx(self, gender: str = "neutral") -> smplx.SMPLX:
        """SMPL-X with 10 betas, 10 expressions, full 45-D hand poses added to the mean hand pose
        (flat_hand_mean=False) and face contour: 10475 vertices and 144 joints with the real files
        (`joint_sets.SMPLX_OUTPUT`)."""
        _check_choice(gender, files.GENDERS, "gender")
        return self._cached(("smplx", gender), lambda: self._build_smplx(gender))

    def _build_smplx(self, gender: str) -> smplx.SMPLX:
        path = self._file(files.SMPLX_MODELS[gender])  # the .npz, or the .pkl where only that is there
        logger.info("loading SMPL-X (%s) from %s", gender, path)
        arrays = _smplx_arrays(path)
        flags = {f"create_{p}": False for p in ("left_hand_pose", "right_hand_pose", "expression", "jaw_pose")}
        flags |= {"create_leye_pose": False, "create_reye_pose": False, **_NO_PARAMETERS}
        # smplx.SMPLX takes no data_struct: it opens the file itself, a .npz with allow_pickle=True and a .pkl
        # with plain pickle, either of which would run code a hostile file holds. So it reads a copy holding
        # only the checked numeric arrays (no pickle inside), written here and gone once the layer exists.
        with tempfile.TemporaryDirectory(prefix="smplx_checked_") as tmp:
            checked = Path(tmp) / f"SMPLX_{gender.upper()}.npz"
            np.savez(checked, **arrays)  # uncompressed: written and read once, at disk speed
            return smplx.SMPLX(
                str(checked), gender=gender, ext="npz", num_betas=NUM_BETAS, num_expression_coeffs=NUM_EXPRESSION,
                use_pca=False, flat_hand_mean=False, use_face_contour=True, **flags,
            )  # fmt: skip

    def smpl(self, gender: str = "neutral") -> smplx.SMPL:
        """SMPL with 10 betas (6890 vertices, 24 joints + smplx's 21 vertex keypoints with the real files)."""
        _check_choice(gender, files.GENDERS, "gender")
        return self._cached(("smpl", gender), lambda: self._build_smpl(gender))

    def _build_smpl(self, gender: str) -> smplx.SMPL:
        path = self._file(files.SMPL_MODELS[gender])
        logger.info("loading SMPL (%s) from %s", gender, path)
        data = self._model_pickle(path)
        # data_struct: smplx would pickle.load the file itself, which needs chumpy for the official files
        # and runs whatever code a file names
        return smplx.SMPL(str(path), data_struct=Struct(**data), gender=gender, num_betas=NUM_BETAS, **_NO_PARAMETERS)

    def mano(self, side: str) -> smplx.MANO:
        """MANO for one hand, full 45-D pose added to the mean pose (778 vertices, 16 joints)."""
        _check_choice(side, files.SIDES, "side")
        return self._cached(("mano", side), lambda: self._build_mano(side))

    def _build_mano(self, side: str) -> smplx.MANO:
        path = self._file(files.MANO_MODELS[side])
        logger.info("loading MANO (%s) from %s", side, path)
        layer = smplx.MANO(
            str(path), is_rhand=side == "right", data_struct=Struct(**self._model_pickle(path)), use_pca=False,
            flat_hand_mean=False, create_hand_pose=False, **_NO_PARAMETERS,
        )  # fmt: skip
        if side == "left":
            right = self.mano("right")
            # The official MANO_LEFT.pkl carries the right hand's x component of shapedirs, where a left
            # hand (the mirror image, x -> -x) needs its negation: shape would otherwise widen one hand
            # and narrow the other. Hand4Whole's test, kept as is: the fix applies only to such files.
            with torch.no_grad():
                if torch.sum(torch.abs(layer.shapedirs[:, 0, :] - right.shapedirs[:, 0, :])) < 1:
                    layer.shapedirs[:, 0, :] *= -1
                    logger.info("negated the x component of the left MANO shapedirs (known MANO_LEFT.pkl issue)")
        return layer

    def flame(self) -> smplx.FLAME:
        """FLAME with 10 shape and 10 expression components and the face contour (5023 vertices,
        5 joints + 68 landmarks = 73 with the real files, `joint_sets.FLAME_OUTPUT`)."""
        return self._cached(("flame",), self._build_flame)

    def _build_flame(self) -> smplx.FLAME:
        model_path = self._file(files.FLAME_MODEL)
        static_path = self._file(files.FLAME_STATIC_EMBEDDING)
        dynamic_path = self._file(files.FLAME_DYNAMIC_EMBEDDING)
        logger.info("loading FLAME from %s", model_path)
        pickles = {
            files.FLAME_MODEL: _densified(load_pickle(model_path)),
            files.FLAME_STATIC_EMBEDDING: load_pickle(static_path),
        }
        dynamic = load_npy(dynamic_path)  # a 0-d object array holding a dict
        flags = {f"create_{p}": False for p in ("expression", "neck_pose", "jaw_pose", "leye_pose", "reye_pose")}
        kwargs = dict(num_betas=NUM_BETAS, num_expression_coeffs=NUM_EXPRESSION, use_face_contour=True, **flags)
        # smplx.FLAME takes no data_struct: it opens FLAME_NEUTRAL.pkl and both embeddings by fixed names in one
        # folder, with plain pickle and allow_pickle=True. So it reads copies written here from the checked
        # contents (numpy arrays and builtins only, chumpy-free), gone once the layer exists.
        with tempfile.TemporaryDirectory(prefix="flame_checked_") as tmp:
            for relpath, contents in pickles.items():
                with open(Path(tmp) / Path(relpath).name, "wb") as f:
                    pickle.dump(contents, f, protocol=pickle.HIGHEST_PROTOCOL)
            np.save(Path(tmp) / Path(files.FLAME_DYNAMIC_EMBEDDING).name, dynamic, allow_pickle=True)
            return smplx.FLAME(tmp, **kwargs, **_NO_PARAMETERS)

    @staticmethod
    def _model_pickle(path: Path) -> dict[str, Any]:
        data = load_pickle(path)
        components = np.shape(data["shapedirs"])[-1]
        if components < smplx.SMPL.SHAPE_SPACE_DIM:
            logger.info("%s: %d shape components, smplx's 'only 10 shape' print is expected", path.name, components)
        return data

    # --- arrays ------------------------------------------------------------------------------------
    @property
    def vertex_count(self) -> int:
        """V of SMPL-X (10475 with the real files), from the neutral model."""
        return int(self.smplx("neutral").v_template.shape[0])

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) int64 SMPL-X triangles (vertex indices), read-only."""
        return self._cached(("faces",), lambda: _read_only(np.asarray(self.smplx("neutral").faces, dtype=np.int64)))

    def smplx_joint_regressor(self) -> np.ndarray:
        """(55, V) float32 skeleton regressor of the neutral SMPL-X (Hand4Whole's ``J_regressor``), read-only."""
        return self._cached(("J_regressor",), lambda: _read_only(self.smplx("neutral").J_regressor.numpy().copy()))

    def hand_vertex_ids(self) -> dict[str, np.ndarray]:
        """{'left', 'right'} -> (778,) int64 SMPL-X vertex ids of the MANO hands, read-only."""
        return self._cached(("hand_vertex_ids",), self._load_hand_vertex_ids)

    def _load_hand_vertex_ids(self) -> dict[str, np.ndarray]:
        path = self._file(files.SMPLX_HAND_VERTEX_IDS)
        data = load_pickle(path)
        if not isinstance(data, dict) or not {"left_hand", "right_hand"} <= set(data):
            found = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{path}: expected the keys 'left_hand' and 'right_hand', found {found}")
        return {side: self._vertex_ids(path, data[f"{side}_hand"]) for side in files.SIDES}

    def face_vertex_ids(self) -> np.ndarray:
        """(5023,) int64 SMPL-X vertex ids of the FLAME face, read-only."""
        path = self._file(files.SMPLX_FACE_VERTEX_IDS)
        return self._cached(("face_vertex_ids",), lambda: self._vertex_ids(path, load_npy(path)))

    def _vertex_ids(self, path: Path, ids: Any) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or len(np.unique(ids)) != len(ids):
            raise ValueError(f"{path}: expected distinct integer vertex ids, got {ids.dtype} of shape {ids.shape}")
        if ids.min() < 0 or ids.max() >= self.vertex_count:
            raise ValueError(f"{path}: vertex ids outside [0, {self.vertex_count})")
        return _read_only(ids.astype(np.int64))

    def j14_regressor(self) -> np.ndarray:
        """(14, V) float32 ExPose/LSP regressor for body PA-MPJPE on EHF, read-only."""
        path = self._file(files.SMPLX_TO_J14)
        return self._cached(("j14",), lambda: read_regressor(path, self.vertex_count))

    def h36m_regressor(self) -> np.ndarray:
        """(17, V) float32 Human3.6M joint regressor over SMPL-X vertices, read-only."""
        path = self._file(files.J_REGRESSOR_H36M_SMPLX)
        return self._cached(("h36m",), lambda: read_regressor(path, self.vertex_count))

    def hand_regressors(self) -> dict[str, np.ndarray]:
        """{'left', 'right'} -> (21, V) float32 hand regressors in `joint_sets.HAND_21` order, read-only."""
        return self._cached(("hand_regressors",), lambda: make_hand_regressors(self.smplx_joint_regressor()))


def get_body_models(human_model_path: str | os.PathLike[str]) -> BodyModels:
    """The process-wide `BodyModels` of a tree: one instance per resolved path, so layers load once."""
    return _shared_body_models(resolve_repo_path(human_model_path).resolve())


@functools.cache  # lru_cache without a size bound: one instance per tree for the process
def _shared_body_models(root: Path) -> BodyModels:
    return BodyModels(root)
