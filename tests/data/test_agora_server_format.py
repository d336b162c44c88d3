"""AGORA's evaluation-server files: the format rules of its checker (data/AGORA/server_format.py) and
numpy-1-readable pickles. The loader's export of these files is tested in test_agora.py, which reads them with
`load_server_file` and `pickle_globals`."""

from __future__ import annotations

import pickle
import pickletools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from data.AGORA.server_format import check_agora_prediction, dumps_for_numpy1


# --- reading the files as the evaluation kit does ---------------------------------------------------------------
def load_server_file(path: Path) -> dict[str, Any]:
    """A prediction file read as the evaluation kit reads it (latin1), failing on any warning but numpy.core's."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=r".*numpy\.core", category=DeprecationWarning)
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")


def pickle_globals(data: bytes) -> list[str]:
    """The module and name of every global a pickle imports (GLOBAL opcodes; protocol 2 has no STACK_GLOBAL)."""
    names = [arg for opcode, arg, _ in pickletools.genops(data) if opcode.name == "GLOBAL"]
    assert not any(opcode.name == "STACK_GLOBAL" for opcode, _, _ in pickletools.genops(data))
    return names


# --- the server's format rules -----------------------------------------------------------------------------
def _valid_prediction() -> dict[str, Any]:
    params = {"transl": (1, 3), "global_orient": (1, 3), "body_pose": (1, 63), "left_hand_pose": (1, 45),
              "right_hand_pose": (1, 45), "leye_pose": (1, 3), "reye_pose": (1, 3), "jaw_pose": (1, 3),
              "expression": (1, 10), "betas": (1, 10)}  # fmt: skip
    return {"params": {k: np.zeros(shape, np.float32) for k, shape in params.items()},
            "joints": np.zeros((144, 2), np.float32)}  # fmt: skip


def _rotmat_prediction() -> dict[str, Any]:
    pred = _valid_prediction()
    shapes = {"global_orient": (1, 1, 3, 3), "body_pose": (1, 21, 3, 3), "left_hand_pose": (1, 15, 3, 3),
              "right_hand_pose": (1, 15, 3, 3), "leye_pose": (1, 1, 3, 3), "reye_pose": (1, 1, 3, 3),
              "jaw_pose": (1, 1, 3, 3)}  # fmt: skip
    pred["params"] |= {k: np.zeros(shape) for k, shape in shapes.items()}
    return pred | {"pose2rot": False}


def _kid_prediction() -> dict[str, Any]:
    pred = _valid_prediction()
    pred["params"]["betas"] = np.zeros((1, 11))
    return pred | {"kid_flag": True, "num_betas": 11, "gender": "female"}


def _vertex_prediction() -> dict[str, Any]:
    return {"verts": np.zeros((1, 10475, 3)), "allSmplJoints3d": np.zeros((1, 144, 3)), "joints": np.zeros((24, 3))}


@pytest.mark.parametrize("make", [_valid_prediction, _rotmat_prediction, _kid_prediction, _vertex_prediction])
def test_check_agora_prediction_accepts_what_the_server_accepts(make: Any) -> None:
    check_agora_prediction(make())


def _set(path: str, value: Any) -> Any:
    def change(pred: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        target = pred
        for parent in parents:
            target = target[parent]
        if value is KeyError:
            del target[key]
        else:
            target[key] = value

    return change


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_set("joints", np.zeros((1, 144, 2), np.float32)), "joints"),  # Hand4Whole's shape: not squeezed
        (_set("joints", np.zeros((23, 2), np.float32)), "joints"),  # fewer than the 24 matching joints
        (_set("joints", np.zeros((30, 144, 2), np.float32)), "joints"),  # enough rows, but three dimensions
        (_set("joints", np.zeros((144, 2)).tolist()), "joints"),  # not an ndarray
        (_set("joints", KeyError), "joints"),
        (_set("params.body_pose", KeyError), "body_pose"),
        (_set("params.body_pose", np.zeros((1, 21, 3))), "body_pose"),
        (_set("params.betas", np.zeros((1, 11))), "betas"),  # 11 betas need num_betas 11
        (_set("params.expression", np.zeros((1, 10), object)), "expression"),  # object dtype
        (_set("params.transl", np.array([[0.0, np.nan, 0.0]])), "transl"),
        (_set("gender", "other"), "gender"),
        (_set("kid_flag", "yes"), "kid_flag"),
        (_set("kid_flag", True), "kid_flag"),  # a kid without 11 betas
        (_set("num_betas", 5), "num_betas"),
        (_set("pose2rot", False), "global_orient"),  # vectors where matrices are announced
        (_set("params", KeyError), "params"),
    ],
)
def test_check_agora_prediction_names_the_offending_key(change: Any, named: str) -> None:
    pred = _valid_prediction()
    change(pred)
    with pytest.raises(ValueError, match=named):
        check_agora_prediction(pred)


def test_numpy1_pickles_name_only_numpy_core_and_round_trip() -> None:
    # uint8 data that spells a GLOBAL opcode naming numpy._core: the rewrite must leave array bytes alone
    decoy = np.frombuffer(b"cnumpy._core.multiarray\n_reconstruct\n", np.uint8)
    obj = {"a": np.arange(6, dtype=np.float64).reshape(2, 3), "b": np.ones((1, 10), np.float32), "decoy": decoy,
           "nested": {"i": np.array([[1, 2]], np.int64), "f": np.asfortranarray(np.eye(3))}, "s": "x"}  # fmt: skip
    data = dumps_for_numpy1(obj)
    modules = {g.split(" ")[0] for g in pickle_globals(data)}
    assert not {m for m in modules if m.startswith("numpy._core")} and "numpy.core.multiarray" in modules
    assert data[:2] == b"\x80\x02", "protocol 2: readable by the evaluation kit's older Pythons"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=r".*numpy\.core", category=DeprecationWarning)
        loaded = pickle.loads(data, encoding="latin1")
    for key in ("a", "b", "decoy"):
        assert loaded[key].dtype == obj[key].dtype
        np.testing.assert_array_equal(loaded[key], obj[key])
    np.testing.assert_array_equal(loaded["nested"]["i"], obj["nested"]["i"])
    np.testing.assert_array_equal(loaded["nested"]["f"], obj["nested"]["f"])
    assert loaded["s"] == "x"
