"""BodyModels against the synthetic stand-in (real sizes, loaded by the unmodified smplx), the
official chumpy pickle format, SMPL-X as .npz or .pkl, missing, truncated and hostile files, and,
where installed, the licensed files."""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import smplx
import torch
from smplx.vertex_ids import vertex_ids as SMPLX_PACKAGE_VERTEX_IDS

from common.body_models import BodyModels, MissingBodyModelFileError, get_body_models, load_pickle
from common.body_models import files as model_files
from common.body_models.files import UnreadableBodyModelFileError, UnsafePickleError
from common.body_models.joint_sets import (
    FLAME_OUTPUT,
    HAND_21,
    MANO_SKELETON,
    SMPL_JOINTS,
    SMPLX_OUTPUT,
    SMPLX_SKELETON,
)
from common.body_models.pickle_io import load_npz
from common.body_models.synthetic.models import smplx_pickle
from common.body_models.synthetic.writer import write_pickle
from common.engine.cli import run_cli
from common.paths import REPO_ROOT
from tests.common.hostile_payloads import ShellOnLoad

REAL_DIR = REPO_ROOT / "common" / "utils" / "human_model_files"
MIRROR_X = torch.tensor([-1.0, 1.0, 1.0])


def mirror_aa(pose: torch.Tensor) -> torch.Tensor:
    """(B, 3K) axis-angle of the mirror image (x -> -x): negate y and z of every rotation."""
    return pose * torch.tensor([1.0, -1.0, -1.0]).repeat(pose.shape[-1] // 3)


@torch.no_grad()
def run_smplx(layer: smplx.SMPLX, batch: int = 1):
    z = lambda n: torch.zeros(batch, n)  # noqa: E731
    return layer(
        betas=z(layer.num_betas), expression=z(layer.num_expression_coeffs), global_orient=z(3),
        body_pose=z(3 * layer.NUM_BODY_JOINTS), left_hand_pose=z(45), right_hand_pose=z(45),
        jaw_pose=z(3), leye_pose=z(3), reye_pose=z(3),
    )  # fmt: skip


@torch.no_grad()
def run_smpl(layer: smplx.SMPL, betas: torch.Tensor | None = None):
    betas = torch.zeros(1, layer.num_betas) if betas is None else betas
    return layer(betas=betas, global_orient=torch.zeros(1, 3), body_pose=torch.zeros(1, 3 * layer.NUM_BODY_JOINTS))


@torch.no_grad()
def run_mano(layer: smplx.MANO, betas: torch.Tensor, pose: torch.Tensor):
    return layer(betas=betas, global_orient=pose[:, :3], hand_pose=pose[:, 3:])


@torch.no_grad()
def run_flame(layer: smplx.FLAME, betas: torch.Tensor | None = None):
    z = lambda n: torch.zeros(1, n)  # noqa: E731
    betas = z(layer.num_betas) if betas is None else betas
    poses = {k: z(3) for k in ("global_orient", "neck_pose", "jaw_pose", "leye_pose", "reye_pose")}
    return layer(betas=betas, expression=z(layer.num_expression_coeffs), **poses)


@pytest.fixture(scope="module")
def models(synthetic_body_model_dir: Path) -> BodyModels:
    return BodyModels(synthetic_body_model_dir)


@pytest.mark.parametrize("gender", ["neutral", "male", "female"])
def test_smplx_sizes_and_no_parameters(models: BodyModels, gender: str) -> None:
    layer = models.smplx(gender)
    out = run_smplx(layer, batch=2)
    assert out.vertices.shape == (2, 10475, 3) and out.joints.shape == (2, 144, 3) == (2, len(SMPLX_OUTPUT), 3)
    assert not list(layer.parameters()) and layer.use_face_contour and not layer.use_pca
    assert layer.num_betas == 10 and layer.num_expression_coeffs == 10
    if gender != "neutral":  # the gendered file, not the neutral one again
        assert not torch.allclose(out.vertices, run_smplx(models.smplx("neutral"), batch=2).vertices)


def test_mano_flame_smpl_sizes(models: BodyModels) -> None:
    betas, pose = torch.zeros(1, 10), torch.zeros(1, 48)
    for side in ("left", "right"):
        out = run_mano(models.mano(side), betas, pose)
        assert out.vertices.shape == (1, 778, 3) and out.joints.shape == (1, len(MANO_SKELETON), 3)
    out = run_flame(models.flame())
    assert out.vertices.shape == (1, 5023, 3) and out.joints.shape == (1, len(FLAME_OUTPUT), 3)
    out = run_smpl(models.smpl("neutral"))
    assert out.vertices.shape == (1, 6890, 3)
    assert out.joints.shape == (1, len(SMPL_JOINTS) + len(SMPLX_PACKAGE_VERTEX_IDS["smplh"]), 3)
    for layer in (models.mano("left"), models.flame(), models.smpl("female")):
        assert not list(layer.parameters())


def test_vertex_id_files(models: BodyModels) -> None:
    hands, face = models.hand_vertex_ids(), models.face_vertex_ids()
    assert {k: (v.shape, v.dtype) for k, v in hands.items()} == {s: ((778,), np.int64) for s in ("left", "right")}
    assert face.shape == (5023,) and face.dtype == np.int64
    for ids in (*hands.values(), face):
        assert 0 <= ids.min() and ids.max() < models.vertex_count and len(np.unique(ids)) == len(ids)
        assert not ids.flags.writeable
    assert not set(hands["left"]) & set(hands["right"])
    assert models.faces.shape[1] == 3 and models.faces.dtype == np.int64 and models.faces.max() < models.vertex_count


def test_regressors(models: BodyModels) -> None:
    num_vertices = models.vertex_count
    named = {"j14": models.j14_regressor(), "h36m": models.h36m_regressor(), **models.hand_regressors()}
    assert named["j14"].shape[0] == 14 and named["h36m"].shape[0] == 17
    for name, regressor in named.items():
        assert regressor.shape[1] == num_vertices, name
        np.testing.assert_allclose(regressor.sum(axis=1), 1.0, atol=1e-4, err_msg=name)
    out = run_smplx(models.smplx())
    vertices, joints = out.vertices[0].numpy(), out.joints[0].numpy()
    skeleton = models.smplx_joint_regressor()
    for side, prefix in (("left", "L_"), ("right", "R_")):
        regressor = models.hand_regressors()[side]
        for row, name in zip(regressor, HAND_21.names, strict=True):
            if name.endswith("_4"):  # fingertip: the vertex smplx outputs as that joint
                np.testing.assert_allclose(row @ vertices, joints[SMPLX_OUTPUT.index(prefix + name)], atol=1e-6)
                assert np.count_nonzero(row) == 1
            else:
                np.testing.assert_array_equal(row, skeleton[SMPLX_SKELETON.index(prefix + name)])


def test_left_mano_fix_gives_the_mirrored_right_hand(models: BodyModels, synthetic_body_model_dir: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    betas = 2.0 * torch.randn(3, 10, generator=generator)  # shape is where the left-hand bug shows
    pose = 0.4 * torch.randn(3, 48, generator=generator)
    right = run_mano(models.mano("right"), betas, pose).vertices
    left = run_mano(models.mano("left"), betas, mirror_aa(pose)).vertices
    torch.testing.assert_close(left, right * MIRROR_X, atol=1e-5, rtol=0)
    # the same check on smplx's own loading of MANO_LEFT.pkl fails: the fix is what makes it pass
    unfixed = smplx.MANO(str(synthetic_body_model_dir / "mano"), is_rhand=False, use_pca=False, flat_hand_mean=False)
    assert (run_mano(unfixed, betas, mirror_aa(pose)).vertices - right * MIRROR_X).abs().max() > 1e-3


def test_layers_and_instances_are_cached(models: BodyModels, synthetic_body_model_dir: Path) -> None:
    assert models.smplx() is models.smplx("neutral") and models.mano("left") is models.mano("left")
    assert models.flame() is models.flame() and models.hand_regressors() is models.hand_regressors()
    shared = get_body_models(synthetic_body_model_dir)
    assert get_body_models(str(synthetic_body_model_dir / "smplx" / "..")) is shared
    assert shared.smplx() is shared.smplx()
    clone = pickle.loads(pickle.dumps(shared))  # e.g. into a spawned DataLoader worker: path only
    assert isinstance(clone, BodyModels) and clone.root == shared.root and "loaded=[]" in repr(clone)


def test_unknown_gender_or_side(models: BodyModels) -> None:
    with pytest.raises(ValueError, match="accepted: neutral, male, female"):
        models.smplx("Neutral")
    with pytest.raises(ValueError, match="accepted: left, right"):
        models.mano("both")


def link_tree(source: Path, target: Path, skip: set[str] = frozenset()) -> Path:
    """A copy of a human_model_files tree made of symlinks, without the files in ``skip``."""
    for relpath in model_files.ALL_FILES:
        if relpath not in skip:
            (target / relpath).parent.mkdir(parents=True, exist_ok=True)
            (target / relpath).symlink_to(source / relpath)
    return target


@pytest.mark.parametrize(
    ("relpath", "source"),
    [
        (model_files.SMPLX_MODELS["neutral"], "smpl-x.is.tue.mpg.de"),
        (model_files.SMPLX_HAND_VERTEX_IDS, "MANO and FLAME vertex indices"),
        (model_files.SMPLX_TO_J14, "ExPose"),
        (model_files.J_REGRESSOR_H36M_SMPLX, "data/Human36M"),
        (model_files.SMPL_MODELS["male"], "smpl.is.tue.mpg.de"),
        (model_files.MANO_MODELS["left"], "mano.is.tue.mpg.de"),
        (model_files.FLAME_DYNAMIC_EMBEDDING, "flame.is.tue.mpg.de"),
    ],
)
def test_missing_file_error_names_file_source_and_synthetic_option(
    synthetic_body_model_dir: Path, tmp_path: Path, relpath: str, source: str
) -> None:
    models = BodyModels(link_tree(synthetic_body_model_dir, tmp_path, skip={relpath}))
    use = {
        model_files.SMPLX_MODELS["neutral"]: lambda: models.smplx(),
        model_files.SMPLX_HAND_VERTEX_IDS: models.hand_vertex_ids,
        model_files.SMPLX_TO_J14: models.j14_regressor,
        model_files.J_REGRESSOR_H36M_SMPLX: models.h36m_regressor,
        model_files.SMPL_MODELS["male"]: lambda: models.smpl("male"),
        model_files.MANO_MODELS["left"]: lambda: models.mano("left"),
        model_files.FLAME_DYNAMIC_EMBEDDING: models.flame,
    }[relpath]
    with pytest.raises(MissingBodyModelFileError) as error:
        use()
    message = str(error.value)
    assert isinstance(error.value, FileNotFoundError) and error.value.filename == str(tmp_path / relpath)
    assert error.value.errno == errno.ENOENT
    for fragment in (relpath, source, "make_synthetic_body_models.py --out DIR", "human_model_path=DIR", "synthetic"):
        assert fragment in message, fragment


def test_construction_reads_nothing(tmp_path: Path) -> None:
    models = BodyModels(tmp_path / "does_not_exist")  # no error until something is asked for
    with pytest.raises(MissingBodyModelFileError):
        models.face_vertex_ids()
    code = "import sys, common.body_models as m; assert 'torch' not in sys.modules and 'smplx' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def chumpy_tree(source: Path, target: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in with SMPL, MANO and FLAME pickled as the official files are: float arrays as chumpy Ch."""
    chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    Ch = type("Ch", (), {"__module__": "chumpy.ch"})  # pickles as chumpy's: class + instance dict with 'x'
    ch.Ch, chumpy.ch = Ch, ch
    rewrite = {model_files.SMPL_MODELS["neutral"], *model_files.MANO_MODELS.values(), model_files.FLAME_MODEL}
    link_tree(source, target, skip=rewrite)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "chumpy", chumpy)
        patch.setitem(sys.modules, "chumpy.ch", ch)
        for relpath in rewrite:
            contents = {}
            for key, value in load_pickle(source / relpath).items():
                if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                    contents[key] = Ch()
                    contents[key].x = value
                else:
                    contents[key] = value
            (target / relpath).parent.mkdir(parents=True, exist_ok=True)
            with open(target / relpath, "wb") as f:
                pickle.dump(contents, f, protocol=2)
    for name in ("chumpy", "chumpy.ch"):
        monkeypatch.setitem(sys.modules, name, None)  # now unimportable, as with numpy >= 1.24
    return target


def test_official_chumpy_pickles_load(
    models: BodyModels, synthetic_body_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    official = BodyModels(chumpy_tree(synthetic_body_model_dir, tmp_path, monkeypatch))
    with open(tmp_path / model_files.FLAME_MODEL, "rb") as f, pytest.raises(ImportError):
        pickle.load(f, encoding="latin1")  # what smplx.FLAME itself would do
    betas = torch.linspace(-1.0, 1.0, 10)[None]
    pose = 0.3 * torch.ones(1, 48)
    torch.testing.assert_close(run_smpl(official.smpl(), betas).vertices, run_smpl(models.smpl(), betas).vertices)
    for side in ("left", "right"):
        ours, theirs = (run_mano(m.mano(side), betas, pose).vertices for m in (official, models))
        torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(run_flame(official.flame(), betas).joints, run_flame(models.flame(), betas).joints)


@pytest.mark.needs_assets
def test_licensed_files_have_the_published_sizes() -> None:
    models = BodyModels(REAL_DIR)
    out = run_smplx(models.smplx())
    assert out.vertices.shape == (1, 10475, 3) and out.joints.shape == (1, 144, 3)
    assert [len(v) for v in models.hand_vertex_ids().values()] == [778, 778]
    assert models.face_vertex_ids().shape == (5023,)
    assert models.j14_regressor().shape == (14, 10475) and models.h36m_regressor().shape == (17, 10475)
    assert models.hand_regressors()["right"].shape == (21, 10475)
    # the other models are optional for the whole-body network: check those that are installed
    if (REAL_DIR / model_files.MANO_MODELS["right"]).is_file():
        assert run_mano(models.mano("left"), torch.zeros(1, 10), torch.zeros(1, 48)).vertices.shape == (1, 778, 3)
    if (REAL_DIR / model_files.FLAME_MODEL).is_file():
        assert run_flame(models.flame()).vertices.shape == (1, 5023, 3)
    if (REAL_DIR / model_files.SMPL_MODELS["neutral"]).is_file():
        assert run_smpl(models.smpl()).vertices.shape == (1, 6890, 3)


# --- SMPL-X as .pkl -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pkl_tree(synthetic_body_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The stand-in with SMPL-X as SMPLX_{GENDER}.pkl only (sparse J_regressor, dict joint2num), the other files
    linked: the generator's `smplx_pickle` layout (tests/common/test_synthetic_body_models.py checks the
    generator writes just this) of the cached .npz contents, without writing a whole second tree."""
    tree = link_tree(
        synthetic_body_model_dir, tmp_path_factory.mktemp("smplx_pkl"), skip=set(model_files.SMPLX_MODELS.values())
    )
    for gender, relpath in model_files.SMPLX_PKL_MODELS.items():
        write_pickle(
            tree / relpath, smplx_pickle(load_npz(synthetic_body_model_dir / model_files.SMPLX_MODELS[gender]))
        )
    yield tree
    shutil.rmtree(tree)  # about 700 MB: pytest would keep it among its last three temporary folders


def random_smplx_inputs(batch: int, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    sizes = {"betas": 10, "expression": 10, "global_orient": 3, "body_pose": 63, "left_hand_pose": 45,
             "right_hand_pose": 45, "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3}  # fmt: skip
    return {k: 0.5 * torch.randn(batch, n, generator=generator) for k, n in sizes.items()}


@pytest.mark.parametrize("gender", ["neutral", "male", "female"])
def test_smplx_pkl_gives_the_npz_layer(models: BodyModels, pkl_tree: Path, gender: str) -> None:
    assert (
        not list((pkl_tree / "smplx").glob("SMPLX_*.npz"))
        and (pkl_tree / "smplx" / f"SMPLX_{gender.upper()}.pkl").is_file()
    )
    inputs = random_smplx_inputs(batch=3, seed=len(gender))
    with torch.no_grad():
        from_pkl, from_npz = (m.smplx(gender)(**inputs) for m in (get_body_models(pkl_tree), models))
    assert torch.equal(from_pkl.vertices, from_npz.vertices) and torch.equal(from_pkl.joints, from_npz.joints)
    assert from_pkl.joints.shape == (3, 144, 3)


def test_npz_is_preferred_when_both_are_there(models: BodyModels, pkl_tree: Path, tmp_path: Path) -> None:
    source = models.root
    both = link_tree(source, tmp_path)
    (both / model_files.SMPLX_PKL_MODELS["neutral"]).symlink_to(pkl_tree / model_files.SMPLX_PKL_MODELS["male"])
    inputs = random_smplx_inputs(batch=1, seed=0)
    pairs = ((BodyModels(both), "neutral"), (models, "neutral"), (models, "male"))
    with torch.no_grad():
        chosen, npz, male = (m.smplx(gender)(**inputs).vertices for m, gender in pairs)
    assert torch.equal(chosen, npz) and not torch.equal(chosen, male)


def test_missing_smplx_names_both_accepted_files(tmp_path: Path) -> None:
    with pytest.raises(MissingBodyModelFileError) as error:
        BodyModels(tmp_path).smplx("female")
    message = str(error.value)
    assert error.value.filename == str(tmp_path / "smplx" / "SMPLX_FEMALE.npz")
    for fragment in ("smplx/SMPLX_FEMALE.npz", "smplx/SMPLX_FEMALE.pkl", "smpl-x.is.tue.mpg.de", "synthetic"):
        assert fragment in message, fragment


# --- no code from body-model files --------------------------------------------------------------------


def write_hostile(path: Path, marker: Path) -> None:
    """A file of ``path``'s format whose first pickled entry runs a shell command when a plain loader reads it."""
    payload = {"hands_mean": ShellOnLoad(marker), "v_template": np.zeros((2, 3))}
    if path.suffix == ".pkl":
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    elif path.suffix == ".npy":
        np.save(path, np.array(payload, dtype=object), allow_pickle=True)
    else:  # the official .npz holds its dicts (joint2num, part2num) as 0-d object arrays
        np.savez(path, joint2num=np.array(ShellOnLoad(marker), dtype=object), v_template=np.zeros((2, 3)))


@pytest.mark.parametrize(
    ("relpath", "use"),
    [
        (model_files.SMPLX_MODELS["neutral"], lambda m: m.smplx()),
        (model_files.SMPLX_PKL_MODELS["male"], lambda m: m.smplx("male")),
        (model_files.SMPL_MODELS["neutral"], lambda m: m.smpl()),
        (model_files.MANO_MODELS["right"], lambda m: m.mano("right")),
        (model_files.FLAME_MODEL, lambda m: m.flame()),
        (model_files.FLAME_STATIC_EMBEDDING, lambda m: m.flame()),
        (model_files.FLAME_DYNAMIC_EMBEDDING, lambda m: m.flame()),
        (model_files.SMPLX_HAND_VERTEX_IDS, lambda m: m.hand_vertex_ids()),
        (model_files.SMPLX_FACE_VERTEX_IDS, lambda m: m.face_vertex_ids()),
        (model_files.SMPLX_TO_J14, lambda m: m.j14_regressor()),
    ],
)
def test_hostile_body_model_files_are_refused_before_running_anything(
    synthetic_body_model_dir: Path, tmp_path: Path, relpath: str, use
) -> None:
    tree = link_tree(synthetic_body_model_dir, tmp_path / "tree", skip={relpath, model_files.SMPLX_MODELS["male"]})
    marker = tmp_path / "marker"
    write_hostile(tree / relpath, marker)
    with pytest.raises(UnsafePickleError) as error:
        use(BodyModels(tree))
    message = str(error.value)
    assert str(tree / relpath) in message and f"{os.system.__module__}.system" in message
    assert not marker.exists(), "a loader ran code from the file"


@pytest.mark.parametrize(
    ("relpath", "use"),
    [
        (model_files.SMPLX_MODELS["neutral"], lambda m: m.smplx()),
        (model_files.MANO_MODELS["left"], lambda m: m.mano("left")),
        (model_files.FLAME_DYNAMIC_EMBEDDING, lambda m: m.flame()),
    ],
)
def test_truncated_body_model_file_is_one_line_naming_it(
    synthetic_body_model_dir: Path, tmp_path: Path, relpath: str, use, capsys: pytest.CaptureFixture
) -> None:
    tree = link_tree(synthetic_body_model_dir, tmp_path, skip={relpath})
    data = (synthetic_body_model_dir / relpath).read_bytes()
    (tree / relpath).write_bytes(data[: len(data) // 3])
    with pytest.raises(UnreadableBodyModelFileError) as error:
        use(BodyModels(tree))
    assert str(tree / relpath) in str(error.value) and "\n" not in str(error.value)

    def cli(argv: list[str] | None) -> int:
        use(BodyModels(tree))
        return 0

    assert run_cli(cli, [], prog="tool") == 2  # a user error: one line, no traceback
    assert capsys.readouterr().err.strip().count("\n") == 0
