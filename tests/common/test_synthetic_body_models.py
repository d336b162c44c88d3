"""The synthetic stand-in: official formats and sizes through the unmodified smplx package,
determinism, SMPL-X as .npz or .pkl, anatomy at smplx's fixed vertex indices, mirror symmetry, shape
and expression."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import smplx
import torch
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from common.body_models.synthetic import MIRROR_IDS_FILE, is_synthetic, write_synthetic_body_models
from common.body_models.synthetic.skeleton import SMPLX_JOINTS, joint_flip_permutation

AA_MIRROR = torch.tensor([1.0, -1.0, -1.0])


@pytest.fixture(scope="module")
def smplx_layer(synthetic_body_model_dir: Path) -> smplx.SMPLX:
    return smplx.create(str(synthetic_body_model_dir), "smplx", gender="neutral", use_pca=False,
                        use_face_contour=True)  # fmt: skip


def run_smplx(layer: smplx.SMPLX, **params: torch.Tensor) -> smplx.utils.SMPLXOutput:
    with torch.no_grad():
        return layer(**{k: v[None] if v.dim() == 1 else v for k, v in params.items()})


def test_unmodified_smplx_loads_every_model_with_the_real_sizes(synthetic_body_model_dir: Path) -> None:
    root = str(synthetic_body_model_dir)
    for gender in ("neutral", "male", "female"):
        out = smplx.create(root, "smplx", gender=gender, use_pca=False, use_face_contour=True)()
        assert out.vertices.shape == (1, 10475, 3) and out.joints.shape == (1, 144, 3)
        assert smplx.create(root, "smpl", gender=gender)().vertices.shape == (1, 6890, 3)
    for is_rhand in (True, False):
        assert smplx.create(root, "mano", is_rhand=is_rhand, use_pca=False)().vertices.shape == (1, 778, 3)
    assert smplx.create(root, "flame", use_face_contour=True)().vertices.shape == (1, 5023, 3)
    assert is_synthetic(synthetic_body_model_dir)


def test_auxiliary_files_have_the_official_shapes(synthetic_body_model_dir: Path) -> None:
    smplx_dir = synthetic_body_model_dir / "smplx"
    with open(smplx_dir / "MANO_SMPLX_vertex_ids.pkl", "rb") as f:
        hand_ids = pickle.load(f)
    assert {k: v.shape for k, v in hand_ids.items()} == {"left_hand": (778,), "right_hand": (778,)}
    assert not set(hand_ids["left_hand"]) & set(hand_ids["right_hand"])
    face_ids = np.load(smplx_dir / "SMPL-X__FLAME_vertex_ids.npy")
    assert face_ids.shape == (5023,) and len(np.unique(face_ids)) == 5023
    with open(smplx_dir / "SMPLX_to_J14.pkl", "rb") as f:
        assert pickle.load(f, encoding="latin1").shape == (14, 10475)
    assert np.load(smplx_dir / "J_regressor_h36m_smplx.npy").shape == (17, 10475)


def test_same_seed_gives_the_same_bytes(synthetic_body_model_dir: Path, tmp_path: Path) -> None:
    fresh = write_synthetic_body_models(tmp_path / "again", seed=0)
    files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert len(files) == 17
    for rel in files:
        assert (fresh / rel).read_bytes() == (synthetic_body_model_dir / rel).read_bytes(), rel


def test_mano_and_flame_are_the_smplx_hands_and_head(synthetic_body_model_dir: Path, smplx_layer) -> None:
    root = str(synthetic_body_model_dir)
    with open(synthetic_body_model_dir / "smplx" / "MANO_SMPLX_vertex_ids.pkl", "rb") as f:
        hand_ids = pickle.load(f)
    template = smplx_layer.v_template.numpy()
    right = smplx.create(root, "mano", is_rhand=True, use_pca=False)
    np.testing.assert_allclose(right.v_template.numpy(), template[hand_ids["right_hand"]], atol=1e-6)
    # MANO's fingertip vertices are SMPL-X's fingertip vertices
    for tip, mano_index in SMPLX_VERTEX_IDS["mano"].items():
        assert hand_ids["right_hand"][mano_index] == SMPLX_VERTEX_IDS["smplx"]["r" + tip]
    face_ids = np.load(synthetic_body_model_dir / "smplx" / "SMPL-X__FLAME_vertex_ids.npy")
    flame = smplx.create(root, "flame", use_face_contour=True)
    np.testing.assert_allclose(flame.v_template.numpy(), template[face_ids], atol=1e-6)


def test_anatomy_sits_at_smplx_vertex_indices(smplx_layer) -> None:
    out = run_smplx(smplx_layer)
    vertices, joints = out.vertices[0].numpy(), out.joints[0].numpy()
    ids = SMPLX_VERTEX_IDS["smplx"]
    joint = {name: joints[i] for i, name in enumerate(SMPLX_JOINTS)}
    nose = vertices[ids["nose"]]
    head_ids = np.flatnonzero(np.linalg.norm(vertices - joint["head"] - [0, 0.1, 0], axis=1) < 0.15)
    assert nose[2] >= vertices[head_ids, 2].max() - 1e-6, "the nose is the front-most point of the head"
    assert nose[2] > joint["head"][2] + 0.08
    assert vertices[ids["leye"], 0] > 0 > vertices[ids["reye"], 0], "the subject's left is +x"
    assert vertices[ids["lear"], 0] > vertices[ids["leye"], 0] and vertices[ids["rear"], 0] < vertices[ids["reye"], 0]
    for side, sign in (("l", 1.0), ("r", -1.0)):
        wrist = joint[("left" if side == "l" else "right") + "_wrist"]
        for finger in ("index", "middle", "ring", "pinky"):
            tip = vertices[ids[side + finger]]
            last_joint = joint[f"{'left' if side == 'l' else 'right'}_{finger}3"]
            assert sign * tip[0] > sign * last_joint[0] > sign * wrist[0], f"{side}{finger} tip at the end"
        side_name = "L" if side == "l" else "R"
        ankle = joint[("left" if side == "l" else "right") + "_ankle"]
        for toe in ("BigToe", "SmallToe", "Heel"):
            assert vertices[ids[side_name + toe], 1] < ankle[1] - 0.03, f"{side_name}{toe} below the ankle"
        assert vertices[ids[side_name + "BigToe"], 2] > ankle[2] + 0.1 > vertices[ids[side_name + "Heel"], 2] + 0.1
        big, small = vertices[ids[side_name + "BigToe"]], vertices[ids[side_name + "SmallToe"]]
        assert abs(big[0]) < abs(small[0]), "the big toe is on the inside of the foot"
    # the 144 output joints start with the 55 skeleton joints, then smplx's vertex joints
    np.testing.assert_allclose(joints[55], nose, atol=1e-6)


def flip_smplx_params(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Hand4Whole's flip of SMPL-X parameters: swap left/right joints, negate axis-angle y and z."""
    order = ("global_orient", "body_pose", "jaw_pose", "leye_pose", "reye_pose", "left_hand_pose", "right_hand_pose")
    pose = torch.cat([params[k] for k in order]).view(55, 3)  # SMPL-X's 55 joints in order
    pose = pose[joint_flip_permutation(SMPLX_JOINTS)] * AA_MIRROR  # (55, 3)
    flat = pose.reshape(-1)
    return {
        "global_orient": flat[:3], "body_pose": flat[3:66], "jaw_pose": flat[66:69], "leye_pose": flat[69:72],
        "reye_pose": flat[72:75], "left_hand_pose": flat[75:120], "right_hand_pose": flat[120:165],
        "betas": params["betas"], "expression": params["expression"],
    }  # fmt: skip


def test_flipped_parameters_give_exactly_the_mirrored_mesh(synthetic_body_model_dir: Path, smplx_layer) -> None:
    generator = torch.Generator().manual_seed(0)
    sizes = {"global_orient": 3, "body_pose": 63, "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3,
             "left_hand_pose": 45, "right_hand_pose": 45, "betas": 10, "expression": 10}  # fmt: skip
    params = {k: 0.4 * torch.randn(n, generator=generator) for k, n in sizes.items()}
    mirror_ids = np.load(synthetic_body_model_dir / "smplx" / MIRROR_IDS_FILE)
    assert np.array_equal(mirror_ids[mirror_ids], np.arange(10475)), "the mirror correspondence is an involution"
    vertices = run_smplx(smplx_layer, **params).vertices[0].numpy()
    flipped = run_smplx(smplx_layer, **flip_smplx_params(params)).vertices[0].numpy()
    np.testing.assert_allclose(flipped, vertices[mirror_ids] * [-1.0, 1.0, 1.0], atol=1e-5)


def test_flipped_smpl_parameters_give_the_mirrored_smpl_mesh(synthetic_body_model_dir: Path) -> None:
    smpl = smplx.create(str(synthetic_body_model_dir), "smpl", gender="neutral")
    with open(synthetic_body_model_dir / "smpl" / "SMPL_NEUTRAL.pkl", "rb") as f:
        mirror_ids = pickle.load(f, encoding="latin1")["vert_sym_idxs"]
    names = SMPLX_JOINTS[:22] + ("left_hand", "right_hand")
    pose = 0.4 * torch.randn(24, 3, generator=torch.Generator().manual_seed(1))
    flipped = pose[joint_flip_permutation(names)] * AA_MIRROR
    betas = torch.randn(1, 10, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = smpl(global_orient=pose[None, 0], body_pose=pose[None, 1:].reshape(1, -1), betas=betas).vertices[0]
        b = smpl(global_orient=flipped[None, 0], body_pose=flipped[None, 1:].reshape(1, -1), betas=betas).vertices[0]
    np.testing.assert_allclose(b.numpy(), a.numpy()[mirror_ids] * [-1.0, 1.0, 1.0], atol=1e-5)


def test_shape_changes_height_and_girth(smplx_layer) -> None:
    def measure(betas: torch.Tensor) -> tuple[float, float]:
        v = run_smplx(smplx_layer, betas=betas).vertices[0].numpy()
        waist = v[np.abs(v[:, 1] - (-0.25)) < 0.01]
        return float(v[:, 1].max() - v[:, 1].min()), float(np.abs(waist[np.abs(waist[:, 0]) < 0.3, 0]).max())

    height0, girth0 = measure(torch.zeros(10))
    height_up, girth_same = measure(torch.tensor([2.0] + [0.0] * 9))
    height_same, girth_up = measure(torch.tensor([0.0, 2.0] + [0.0] * 8))
    assert 1.6 < height0 < 1.85, "an adult's height in metres"
    assert height_up > height0 + 0.05 and abs(girth_same - girth0) < 0.01
    assert girth_up > girth0 * 1.15 and abs(height_same - height0) < 0.02


def test_expressions_move_only_the_face(synthetic_body_model_dir: Path, smplx_layer) -> None:
    face_ids = np.load(synthetic_body_model_dir / "smplx" / "SMPL-X__FLAME_vertex_ids.npy")
    rest = run_smplx(smplx_layer).vertices[0].numpy()
    for k in range(10):
        expression = torch.zeros(10)
        expression[k] = 2.0
        moved = np.linalg.norm(run_smplx(smplx_layer, expression=expression).vertices[0].numpy() - rest, axis=1)
        assert moved.max() > 2e-3, f"expression {k} does something"
        off_face = np.setdiff1d(np.arange(len(rest)), face_ids)
        assert moved[off_face].max() < 1e-7, f"expression {k} moves only FLAME's vertices"
        assert (rest[moved > 1e-4, 2] > smplx_layer.v_template[:, 2].mean().item()).all(), "... on the front"


def test_jaw_opens_and_fingers_bend(smplx_layer) -> None:
    rest = run_smplx(smplx_layer)
    opened = run_smplx(smplx_layer, jaw_pose=torch.tensor([0.4, 0.0, 0.0]))
    upper_lip, lower_lip = 55 + 21 + 34, 55 + 21 + 40  # iBUG 51 and 57 among the 51 static landmarks
    gap = lambda out: (out.joints[0, upper_lip, 1] - out.joints[0, lower_lip, 1]).item()  # noqa: E731
    assert gap(opened) > gap(rest) + 0.01, "the mouth opens by more than a centimetre"
    top = SMPLX_VERTEX_IDS["smplx"]["nose"]
    assert torch.allclose(opened.vertices[0, top], rest.vertices[0, top]), "the upper face stays"
    fist = run_smplx(smplx_layer, left_hand_pose=torch.tensor([0.0, 0.0, -1.2]).repeat(15))
    tip, other = SMPLX_VERTEX_IDS["smplx"]["lindex"], SMPLX_VERTEX_IDS["smplx"]["rindex"]
    assert (rest.vertices[0, tip] - fist.vertices[0, tip]).norm() > 0.04, "a curled finger's tip moves"
    wrist = SMPLX_JOINTS.index("left_wrist")
    reach = lambda out: (out.vertices[0, tip] - out.joints[0, wrist]).norm().item()  # noqa: E731
    assert reach(fist) < reach(rest) - 0.04, "... curling back towards the wrist"
    assert torch.allclose(fist.vertices[0, other], rest.vertices[0, other]), "the other hand stays"


def test_smplx_pkl_format_holds_the_npz_models(synthetic_body_model_dir: Path, tmp_path: Path) -> None:
    """--smplx-format pkl: SMPLX_{GENDER}.pkl instead of .npz, the same arrays in the official .pkl layout
    (J_regressor sparse, joint2num and part2num plain dicts), every other file byte-identical."""
    fresh = write_synthetic_body_models(tmp_path / "pkl", seed=0, smplx_format="pkl")
    assert not list((fresh / "smplx").glob("SMPLX_*.npz")) and is_synthetic(fresh)
    for rel in sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()):
        if rel.name in ("SMPLX_NEUTRAL.pkl", "SMPLX_MALE.pkl", "SMPLX_FEMALE.pkl"):
            npz = np.load(synthetic_body_model_dir / rel.with_suffix(".npz"), allow_pickle=True)  # our own file
            with open(fresh / rel, "rb") as f:
                contents = pickle.load(f, encoding="latin1")
            assert set(contents) == set(npz.files), rel
            assert scipy.sparse.issparse(contents["J_regressor"]) and isinstance(contents["joint2num"], dict)
            for key in npz.files:
                value = contents[key].toarray() if key == "J_regressor" else contents[key]
                expected = npz[key].item() if npz[key].dtype == object else npz[key]
                if isinstance(expected, dict):
                    assert value == expected, key
                else:
                    assert value.dtype == expected.dtype and np.array_equal(value, expected), key
        elif rel.name != "SYNTHETIC_STAND_IN":
            assert (fresh / rel).read_bytes() == (synthetic_body_model_dir / rel).read_bytes(), rel
    shutil.rmtree(fresh)  # about 700 MB: pytest would keep it among its last three temporary folders
    with pytest.raises(ValueError, match="accepted: npz, pkl"):
        write_synthetic_body_models(tmp_path / "none", smplx_format="zip")
    assert not (tmp_path / "none").exists(), "nothing is written for an unknown format"
