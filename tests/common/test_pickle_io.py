"""load_pickle reads pickles that reference chumpy classes, with chumpy absent and unimportable, and runs no code
from any file: load_pickle, load_npy and load_npz resolve only the globals the official files need."""

from __future__ import annotations

import os
import pickle
import re
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from common.body_models.files import MissingBodyModelFileError, UnreadableBodyModelFileError, UnsafePickleError
from common.body_models.pickle_io import load_npy, load_npz, load_pickle
from tests.common.hostile_payloads import ShellOnLoad, TouchOnLoad


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


# --- no code from files -------------------------------------------------------------------------------


# (payload, pickle protocol, the global a restricted loader meets first)
HOSTILE = [
    (TouchOnLoad, 2, "__builtin__.getattr"),  # protocols < 4 store Path.touch as getattr(Path, 'touch')
    (TouchOnLoad, 4, "pathlib.Path.touch"),
    (ShellOnLoad, 2, f"{os.system.__module__}.system"),
]


def assert_refused(error: pytest.ExceptionInfo, path: Path, refused: str | set[str], marker: Path) -> None:
    """``refused``: the global the loader must name (one of them, where the pickle protocol decides)."""
    accepted = {refused} if isinstance(refused, str) else refused
    assert isinstance(error.value, UnsafePickleError) and error.value.global_name in accepted
    assert isinstance(error.value, MissingBodyModelFileError)  # what the CLIs report in one line
    message = str(error.value)
    assert str(path) in message and error.value.global_name in message and "\n" not in message
    assert not marker.exists(), "the loader ran code from the file"


@pytest.mark.parametrize(("payload", "protocol", "refused"), HOSTILE)
def test_hostile_pickle_is_refused_naming_file_and_global(tmp_path: Path, payload, protocol, refused) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "MANO_RIGHT.pkl"
    with open(path, "wb") as f:
        pickle.dump({"v_template": np.zeros((2, 3)), "hands_mean": payload(marker)}, f, protocol=protocol)
    with pytest.raises(UnsafePickleError) as error:
        load_pickle(path)
    assert_refused(error, path, refused, marker)
    with open(path, "rb") as f:
        pickle.load(f)  # the file is hostile indeed: plain pickle calls what it names
    assert marker.exists()


# np.save picks the protocol: Path.touch may be named directly or through getattr
NPY_HOSTILE = [
    (TouchOnLoad, {"builtins.getattr", "pathlib.Path.touch"}),
    (ShellOnLoad, {f"{os.system.__module__}.system"}),
]


@pytest.mark.parametrize(("payload", "refused"), NPY_HOSTILE)
def test_hostile_npy_object_array_is_refused(tmp_path: Path, payload, refused) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "flame_dynamic_embedding.npy"
    np.save(path, np.array({"lmk_face_idx": np.zeros(3), "x": payload(marker)}, dtype=object), allow_pickle=True)
    with pytest.raises(UnsafePickleError) as error:
        load_npy(path)
    assert_refused(error, path, refused, marker)
    np.load(path, allow_pickle=True)  # what smplx.FLAME does with this file
    assert marker.exists()


def test_hostile_npz_object_entry_is_refused_naming_the_entry(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "SMPLX_NEUTRAL.npz"
    np.savez(path, v_template=np.zeros((4, 3)), joint2num=np.array(ShellOnLoad(marker), dtype=object))
    with pytest.raises(UnsafePickleError) as error:
        load_npz(path)
    assert_refused(error, path, f"{os.system.__module__}.system", marker)
    assert "'joint2num'" in str(error.value)
    np.load(path, allow_pickle=True)["joint2num"]  # what smplx.SMPLX does with this file
    assert marker.exists()


def raw_global_call(module: str, name: str) -> bytes:
    """A protocol-0 pickle of ``module.name('true')``: the smallest file that calls a global."""
    return f"c{module}\n{name}\n(S'true'\ntR.".encode()


@pytest.mark.parametrize(
    "qualified",
    ["builtins.eval", "builtins.exec", "builtins.getattr", "builtins.__import__", "__builtin__.eval", "os.system",
     "posix.system", "subprocess.Popen", "pathlib.Path", "numpy.load", "numpy.lib.npyio.load", "torch.load",
     "scipy.sparse.load_npz", "pickle.loads", "copyreg.__newobj__", "functools.partial", "chumpy_not.Ch"],
)  # fmt: skip
def test_globals_outside_the_allow_list_are_refused(tmp_path: Path, qualified: str) -> None:
    module, name = qualified.rsplit(".", 1)
    path = tmp_path / "model.pkl"
    path.write_bytes(raw_global_call(module, name))
    with pytest.raises(UnsafePickleError, match=re.escape(qualified)):
        load_pickle(path)


def test_only_latin1_codecs_decode_bytes(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"c_codecs\nencode\n(Vabc\nVrot13\ntR.")  # _codecs.encode('abc', 'rot13')
    with pytest.raises(UnreadableBodyModelFileError, match="rot13"):
        load_pickle(path)
    path.write_bytes(b"c_codecs\nencode\n(Vabc\nVlatin1\ntR.")
    assert load_pickle(path) == b"abc"


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_what_python_and_numpy_write_is_allowed(tmp_path: Path, protocol: int) -> None:
    """Every protocol's form of arrays, numpy scalars, dtypes, sparse matrices, sets and bytes loads."""
    rng = np.random.default_rng(2)
    dense = rng.random((3, 4)) * (rng.random((3, 4)) > 0.5)
    value = {
        "f64": rng.random((2, 3)), "u32": np.arange(4, dtype=np.uint32), "fortran": np.asfortranarray(dense),
        "scalar": np.float64(1.5), "int": np.int64(7), "dtype": np.dtype("<f4"), "set": {1, 2},
        "bytes": b"\x00\xffab", "empty_bytes": b"", "tuple": (1, "a", None, True, 2.5, 3j), "frozen": frozenset({3}),
        **{kind: getattr(scipy.sparse, f"{kind}_matrix")(dense) for kind in ("csc", "csr", "coo")},
    }  # fmt: skip
    path = tmp_path / "all.pkl"
    with open(path, "wb") as f:
        pickle.dump(value, f, protocol=protocol)
    loaded = load_pickle(path)
    assert loaded.keys() == value.keys()
    for key, want in value.items():
        got = loaded[key]
        if scipy.sparse.issparse(want):
            assert type(got) is type(want)
            np.testing.assert_array_equal(got.toarray(), dense)
        elif isinstance(want, np.ndarray):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
        else:
            assert got == want and type(got) is type(want), key


def test_numpy_1_module_names_load_without_warnings(tmp_path: Path) -> None:
    """numpy 1 wrote numpy.core.multiarray._reconstruct; numpy 2 only warns about that deprecated alias."""
    data = pickle.dumps({"a": np.arange(3.0), "s": np.float32(2)}, protocol=2)
    assert b"numpy._core" in data
    path = tmp_path / "numpy1.pkl"
    path.write_bytes(data.replace(b"numpy._core", b"numpy.core"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_pickle(path)
    np.testing.assert_array_equal(loaded["a"], np.arange(3.0))
    assert loaded["s"] == np.float32(2)


def test_npy_and_npz_arrays_load_with_their_object_entries(tmp_path: Path) -> None:
    ids = np.arange(5, dtype=np.int64)
    np.save(tmp_path / "ids.npy", ids)
    np.testing.assert_array_equal(load_npy(tmp_path / "ids.npy"), ids)
    embedding = {"lmk_face_idx": np.arange(3), "lmk_b_coords": np.ones((3, 3))}
    np.save(tmp_path / "embedding.npy", np.array(embedding, dtype=object), allow_pickle=True)
    loaded = load_npy(tmp_path / "embedding.npy")[()]
    assert loaded.keys() == embedding.keys() and np.array_equal(loaded["lmk_b_coords"], np.ones((3, 3)))
    np.savez_compressed(tmp_path / "m.npz", f=np.ones((2, 3), np.uint32), joint2num=np.array({"pelvis": 0}))
    entries = load_npz(tmp_path / "m.npz")
    assert entries["f"].dtype == np.uint32 and entries["joint2num"][()] == {"pelvis": 0}


def test_truncated_and_foreign_files_are_one_clear_error(tmp_path: Path) -> None:
    with open(tmp_path / "good.pkl", "wb") as f:
        pickle.dump({"v_template": np.ones((100, 3))}, f, protocol=2)
    np.save(tmp_path / "good.npy", np.ones((100, 3)))
    np.save(tmp_path / "good_object.npy", np.array({"a": np.ones(100)}, dtype=object), allow_pickle=True)
    np.savez_compressed(tmp_path / "good.npz", v_template=np.random.default_rng(0).random((100, 3)))
    broken = {}
    for name in ("good.pkl", "good.npy", "good_object.npy", "good.npz"):
        data = (tmp_path / name).read_bytes()
        broken[tmp_path / f"truncated_{name}"] = data[: len(data) // 2]
        broken[tmp_path / f"text_{name}"] = b"<html>404 Not Found</html>\n"
    loaders = {".pkl": load_pickle, ".npy": load_npy, ".npz": load_npz}
    for path, data in broken.items():
        path.write_bytes(data)
        with pytest.raises(UnreadableBodyModelFileError) as error:
            loaders[path.suffix](path)
        message = str(error.value)
        assert str(path) in message and "\n" not in message and not isinstance(error.value, UnsafePickleError), message
        assert isinstance(error.value, FileNotFoundError)  # the CLIs' one-line report covers it
