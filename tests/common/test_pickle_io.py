"""load_pickle reads pickles that reference chumpy classes, with chumpy absent and unimportable."""

from __future__ import annotations

import pickle
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from common.body_models.pickle_io import load_pickle, pickle_references_chumpy


def fake_chumpy_module(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Installs modules ``chumpy``, ``chumpy.ch`` and ``chumpy.ch_ops`` whose classes pickle like chumpy's.

    chumpy's Ch pickles by the default object reduction: its class ``chumpy.ch.Ch`` plus an instance
    dict holding the value under 'x' (and bookkeeping); an operator such as ``ch_ops.add`` holds its
    operands instead of a value.
    """
    package, ch, ch_ops = (types.ModuleType(n) for n in ("chumpy", "chumpy.ch", "chumpy.ch_ops"))

    class Ch:
        def __init__(self, x: object) -> None:
            self.x = x
            self._dirty_vars = set()  # like chumpy's own bookkeeping entries

    class add:  # chumpy's operator class name
        def __init__(self, a: object, b: object) -> None:
            self.a, self.b = a, b

    for cls, module in ((Ch, ch), (add, ch_ops)):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
    package.ch, package.ch_ops = ch, ch_ops
    for module in (package, ch, ch_ops):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return types.SimpleNamespace(Ch=Ch, add=add)


def block_chumpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Removes the fake modules; None in sys.modules makes any `import chumpy` fail, installed or not."""
    for name in ("chumpy", "chumpy.ch", "chumpy.ch_ops"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def chumpy_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """Writes a SMPL-like dict with chumpy arrays and a sparse regressor; yields (path, originals)."""
    fake = fake_chumpy_module(monkeypatch)
    rng = np.random.default_rng(0)
    originals = {
        "v_template": rng.standard_normal((6, 3)),
        "shapedirs": rng.standard_normal((6, 3, 4)),
        "f": np.array([[0, 1, 2], [3, 4, 5]], dtype=np.uint32),
        "J_regressor": scipy.sparse.csc_matrix(rng.random((2, 6)) * (rng.random((2, 6)) > 0.5)),
        "bs_style": "lbs",
    }
    contents = dict(originals, v_template=fake.Ch(originals["v_template"]), shapedirs=fake.Ch(originals["shapedirs"]))
    contents["posedirs_list"] = [fake.Ch(np.arange(3.0))]
    originals["posedirs_list"] = [np.arange(3.0)]
    path = tmp_path / "model.pkl"
    with open(path, "wb") as f:
        pickle.dump(contents, f, protocol=getattr(request, "param", 2))  # 2: what the official files use
    block_chumpy(monkeypatch)
    return path, originals


@pytest.mark.parametrize("chumpy_pickle", [0, 2, 4], indirect=True)
def test_chumpy_arrays_load_as_numpy(chumpy_pickle) -> None:
    path, originals = chumpy_pickle
    with open(path, "rb") as f, pytest.raises(ImportError):
        pickle.load(f, encoding="latin1")  # what smplx does: needs chumpy
    loaded = load_pickle(path)
    assert set(loaded) == set(originals)
    for key in ("v_template", "shapedirs", "f"):
        assert type(loaded[key]) is np.ndarray
        np.testing.assert_array_equal(loaded[key], originals[key])
    assert type(loaded["posedirs_list"][0]) is np.ndarray
    np.testing.assert_array_equal(loaded["posedirs_list"][0], originals["posedirs_list"][0])
    assert scipy.sparse.issparse(loaded["J_regressor"])  # stays sparse: smplx densifies it
    np.testing.assert_array_equal(loaded["J_regressor"].toarray(), originals["J_regressor"].toarray())
    assert loaded["bs_style"] == "lbs"
    assert pickle_references_chumpy(path)


def test_chumpy_expression_is_an_error_naming_file_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_chumpy_module(monkeypatch)
    path = tmp_path / "lazy.pkl"
    with open(path, "wb") as f:
        pickle.dump({"ok": fake.Ch(np.zeros(2)), "weights": fake.add(np.ones(2), np.ones(2))}, f, protocol=2)
    block_chumpy(monkeypatch)
    with pytest.raises(ValueError, match=r"lazy\.pkl.*'weights'.*chumpy\.ch_ops\.add"):
        load_pickle(path)


def test_plain_pickles_and_arrays(tmp_path: Path) -> None:
    regressor = np.random.default_rng(1).random((14, 9))
    path = tmp_path / "SMPLX_to_J14.pkl"
    with open(path, "wb") as f:
        pickle.dump(regressor, f, protocol=2)
    np.testing.assert_array_equal(load_pickle(path), regressor)  # not every official pickle is a dict
    assert not pickle_references_chumpy(path)


def test_old_scipy_module_paths_load_without_deprecation(tmp_path: Path) -> None:
    matrix = scipy.sparse.csc_matrix(np.eye(3))
    data = pickle.dumps({"J_regressor": matrix}, protocol=2)
    modern = f"{type(matrix).__module__}\n".encode()  # e.g. scipy.sparse._csc
    assert modern in data
    path = tmp_path / "old_scipy.pkl"
    path.write_bytes(data.replace(modern, b"scipy.sparse.csc\n"))  # the path the official files name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_pickle(path)
    np.testing.assert_array_equal(loaded["J_regressor"].toarray(), np.eye(3))
