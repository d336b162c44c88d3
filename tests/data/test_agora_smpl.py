"""AGORA's SMPL variant for the Pose2Pose body model: a fixture in Hand4Whole's SMPL layout, and the synthetic set.

The fixture is test_agora.py's (720p images, 4K crops, cameras, AGORA_<split>_SMPLX.json) plus, for every person,
an SMPL fit whose pelvis sits on the SMPL-X fit's pelvis, in ``smpl_params_cam/`` with ``AGORA_<split>_SMPL.json``
as tool/AGORA/agora2coco_smpl.py writes them (no part boxes; a kid with 11 betas).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from common.body_models import get_body_models
from common.body_models.joint_sets import SMPLX_OUTPUT
from common.body_models.part_joints import POSE2POSE_BODY_JOINTS, SMPL_MCP_VERTICES
from common.utils.augmentation import NO_AUGMENTATION, apply_affine
from data import build_dataset
from data.Synthetic.readback import pose_annotation
from main.config import Config, load_config
from tests.data.fixtures import check_sample_contract
from tests.data.test_agora import _smplx_output, write_agora_fixture, write_test_split

SMALL_BODY = ("model.resnet_type=18", "model.input_img_shape=[64,48]", "model.output_hm_shape=[8,2,2]",
              "model.princpt=[24,32]")  # fmt: skip
FOCAL_4K, PRINCPT_4K = 3000.0, np.array([1920.0, 1080.0])  # test_agora's fixture cameras
PELVIS = POSE2POSE_BODY_JOINTS.index("Pelvis")
# The synthetic set's SMPL pseudo-GT against its SMPL-X bodies, by joint name (data/Synthetic/smpl_variant.py):
# measured over 83 people, skeleton joints 0.28 mm mean / 2.15 mm max, keypoint vertices 5.7 / 12.4 mm.
SKELETON_TOLERANCE_M, KEYPOINT_TOLERANCE_M = 0.003, 0.015
KEYPOINT_NAMES = ("Nose", "L_Eye", "R_Eye", "L_Ear", "R_Ear", "L_Big_toe", "L_Small_toe", "L_Heel", "R_Big_toe",
                  "R_Small_toe", "R_Heel")  # fmt: skip


def body_cfg(models: Path, root: Path, *overrides: str) -> Config:
    """The pose2pose_body config, reduced for the CPU, reading AGORA from ``root``."""
    return load_config("pose2pose_body", [f"human_model_path={models}", *SMALL_BODY,
                                          f"data.dataset_roots={{AGORA: {root}}}", f"output_dir={root / 'output'}",
                                          *overrides])  # fmt: skip


def _smpl_pelvis_rest(body_models: Any, betas: np.ndarray) -> np.ndarray:
    """(3,) J0 of the neutral SMPL layer for these betas: the pelvis at zero pose and translation."""
    with torch.no_grad():
        out = body_models.smpl("neutral")(global_orient=torch.zeros(1, 3), body_pose=torch.zeros(1, 69),
                                          betas=torch.tensor(betas[None, :10], dtype=torch.float32),
                                          transl=torch.zeros(1, 3))  # fmt: skip
    return out.joints[0, 0].numpy().astype(np.float64)


def write_smpl_variant(root: Path, split: str, models: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """AGORA_<split>_SMPL.json and smpl_params_cam/ for the persons of test_agora's fixture under ``root``.

    Returns:
        (image stem, person_id) -> {'params': the file's content, 'pelvis_cam': (3,) where the fit puts SMPL's pelvis}.
    """
    body_models = get_body_models(models)
    db = json.loads((root / f"AGORA_{split}_SMPLX.json").read_text())
    images = {image["id"]: image for image in db["images"]}
    annotations, truth = [], {}
    for ann in db["annotations"]:
        stem = Path(images[ann["image_id"]]["file_name_3840x2160"]).stem
        smplx_params = json.loads((root / ann["smplx_param_path"]).read_text())
        pelvis_cam = _smplx_output(models, smplx_params)[1][0]  # the SMPL-X fit's pelvis, camera metres
        rng = np.random.default_rng(ann["id"] + 100)
        betas = 0.5 * rng.standard_normal(11 if ann["kid"] else 10)
        transl = pelvis_cam - _smpl_pelvis_rest(body_models, betas)  # SMPL's pelvis is J0 + transl
        params = {"global_orient": [np.pi, 0.0, 0.0], "body_pose": (0.2 * rng.standard_normal(69)).tolist(),
                  "betas": betas.tolist(), "transl": transl.tolist()}  # fmt: skip
        param_rel = f"smpl_params_cam/{split}/{stem}/{ann['person_id']}.json"
        (root / param_rel).parent.mkdir(parents=True, exist_ok=True)
        (root / param_rel).write_text(json.dumps(params))
        keep = ("id", "image_id", "person_id", "cam_param_path", "gender", "kid", "occlusion", "is_valid", "bbox")
        annotations.append({**{k: ann[k] for k in keep}, "smpl_param_path": param_rel, "age": "31-50"})
        truth[stem, ann["person_id"]] = {"params": params, "pelvis_cam": pelvis_cam}
    (root / f"AGORA_{split}_SMPL.json").write_text(json.dumps({"images": db["images"], "annotations": annotations}))
    return truth


@pytest.fixture(scope="module")
def agora_smpl(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("agora_smpl")
    truth = {}
    for split in ("train", "validation"):
        write_agora_fixture(root, split, synthetic_body_model_dir)
        truth[split] = write_smpl_variant(root, split, synthetic_body_model_dir)
    return root, truth


def check_smpl_sample(sample: tuple[dict, dict, dict], shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """The body contract's keys and shapes, SMPL masks 1 (the two hand joints excepted), joints from the SMPL GT."""
    merged = check_sample_contract(sample, shapes)
    assert float(merged["smpl_pose_valid"].sum()) == 22 * 3, "all rotations but SMPL's two hand joints"
    assert float(merged["smpl_shape_valid"]) == 1.0 and merged["smpl_joint_valid"].all() and merged["is_3D"] == 1.0
    np.testing.assert_array_equal(merged["joint_img"], merged["smpl_joint_img"])  # JOINTS_FROM_PARAMS: the GT's
    np.testing.assert_array_equal(merged["joint_valid"], merged["smpl_joint_valid"])
    return merged


@pytest.mark.parametrize("resolution", ["1280x720", "3840x2160"])
def test_body_family_reads_the_smpl_variant(agora_smpl, synthetic_body_model_dir: Path, resolution: str) -> None:
    root, truth = agora_smpl
    cfg = body_cfg(synthetic_body_model_dir, root, f"data.agora_resolution={resolution}")
    for split in ("train", "validation"):
        ds = build_dataset("AGORA", split, cfg)
        assert len(ds) == 3, "the is_valid=false person is left out"
        for index, record in enumerate(ds.records):
            assert "smplx_param_path" not in record.info and record.is_3D
            labelled = ds.load_labels(record)
            assert labelled.smplx is None and labelled.smpl.gender == "neutral"
            params = truth[split][record.info["image_name"], record.info["person_id"]]["params"]
            np.testing.assert_array_equal(labelled.smpl.pose, params["global_orient"] + params["body_pose"])
            np.testing.assert_array_equal(labelled.smpl.shape, params["betas"][:10])  # a kid's 11th beta dropped
            check_smpl_sample(ds.get_sample(index, aug=NO_AUGMENTATION), ds.targets.sample_shapes(split))


@pytest.mark.parametrize("resolution", ["1280x720", "3840x2160"])
def test_projected_smpl_pelvis_lands_where_the_fixture_put_it(
    agora_smpl, synthetic_body_model_dir: Path, resolution: str
) -> None:
    root, truth = agora_smpl
    ds = build_dataset("AGORA", "validation", body_cfg(synthetic_body_model_dir, root,
                                                       f"data.agora_resolution={resolution}"))  # fmt: skip
    to_orig = 1 / 3 if resolution == "1280x720" else 1.0  # img2bb_trans starts in the original image's pixels
    for index, record in enumerate(ds.records):
        sample = ds[index]
        check_smpl_sample(sample, ds.targets.sample_shapes("validation"))
        _, targets, meta = sample
        pelvis_cam = truth["validation"][record.info["image_name"], record.info["person_id"]]["pelvis_cam"]
        pelvis_4k = pelvis_cam[:2] / pelvis_cam[2] * FOCAL_4K + PRINCPT_4K
        expected = apply_affine(meta["img2bb_trans"].astype(np.float64), pelvis_4k[None] * to_orig)[0]
        np.testing.assert_allclose(targets["smpl_joint_img"][PELVIS, :2] / ds.space.crop_to_heatmap(), expected,
                                   atol=1e-3)  # fmt: skip
        assert float(meta["smpl_mesh_valid"]) == 1.0


def test_the_smplx_families_still_read_the_smplx_variant(agora_smpl, synthetic_body_model_dir: Path) -> None:
    root, _ = agora_smpl
    cfg = load_config(None, [f"human_model_path={synthetic_body_model_dir}", f"data.dataset_roots={{AGORA: {root}}}"])
    ds = build_dataset("AGORA", "train", cfg)
    record = ds.load_labels(ds.records[0])
    assert "smpl_param_path" not in record.info and record.smpl is None and record.smplx is not None


def test_gender_follows_the_config(agora_smpl, synthetic_body_model_dir: Path) -> None:
    root, _ = agora_smpl
    ds = build_dataset("AGORA", "train", body_cfg(synthetic_body_model_dir, root, "data.agora_gender=annotated"))
    assert ds.load_labels(ds.records[0]).smpl.gender == "female"


def test_validation_scores_smpl_meshes_and_writes_no_server_files(agora_smpl, synthetic_body_model_dir: Path) -> None:
    root, _ = agora_smpl
    ds = build_dataset("AGORA", "validation", body_cfg(synthetic_body_model_dir, root))
    outs = []
    for index in range(len(ds)):
        _, targets, meta = ds[index]
        outs.append(
            {
                "smpl_mesh_cam": targets["smpl_mesh_cam"] + np.array([0.003, -0.004, 0.0], np.float32),
                "smpl_mesh_cam_target": targets["smpl_mesh_cam"],
                "smpl_mesh_valid": meta["smpl_mesh_valid"],
            }
        )
    result = ds.evaluate(outs, list(range(len(ds))))
    np.testing.assert_allclose(result["mpvpe"], 0.0, atol=1e-3)  # a 5 mm shift: taken out by the pelvis
    np.testing.assert_allclose(result["pa_mpvpe"], 0.0, atol=1e-3)
    assert not ds.predictions_dir.exists(), "the server's files are SMPL-X predictions"


def test_test_split_is_unchanged_for_the_body_family(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    write_test_split(tmp_path)
    ds = build_dataset("AGORA", "test", body_cfg(synthetic_body_model_dir, tmp_path))
    assert len(ds) == 3 and all(not r.is_3D for r in ds.records)
    sample = check_sample_contract(ds[0], ds.targets.sample_shapes("test"))
    assert float(sample["smpl_pose_valid"].max()) == 0.0 and float(sample["smpl_mesh_valid"]) == 0.0
    assert ds.evaluate([{}], [0]) == {} and not ds.predictions_dir.exists()
    assert "no server files" in ds.report({}, tmp_path / "output")[0]


@pytest.mark.parametrize(
    ("arch", "entry", "key", "path"),
    [
        ("pose2pose_body", "annotations", "smpl_param_path", "/etc/passwd"),
        ("pose2pose_body", "annotations", "smpl_param_path", "smpl_params_cam/../../outside.json"),
        ("pose2pose_body", "annotations", "cam_param_path", "..\\cam.json"),
        ("hand4whole", "annotations", "smplx_param_path", "C:/data/0.json"),
        ("hand4whole", "annotations", "smplx_param_path", "../smplx_params_cam/0.json"),
        ("hand4whole", "images", "file_name_1280x720", "/images/a_1280x720.png"),
    ],
)
def test_paths_leaving_the_root_are_refused(
    agora_smpl, synthetic_body_model_dir: Path, tmp_path: Path, arch: str, entry: str, key: str, path: str
) -> None:
    source, _ = agora_smpl
    name = "AGORA_train_SMPL.json" if arch == "pose2pose_body" else "AGORA_train_SMPLX.json"
    db = json.loads((source / name).read_text())
    db[entry][0][key] = path
    (tmp_path / name).write_text(json.dumps(db))
    overrides = [f"human_model_path={synthetic_body_model_dir}", f"data.dataset_roots={{AGORA: {tmp_path}}}"]
    cfg = body_cfg(synthetic_body_model_dir, tmp_path) if arch == "pose2pose_body" else load_config(None, overrides)
    with pytest.raises(ValueError) as raised:
        build_dataset("AGORA", "train", cfg)
    message = str(raised.value)
    assert str(tmp_path / name) in message and key in message and repr(path) in message
    assert f"{'annotation' if entry == 'annotations' else 'image'} 0" in message


# --- the synthetic set: its SMPL pseudo-GT read back through the loader ---------------------------------------------
def test_synthetic_smpl_joints_lie_on_the_rendered_smplx_joints(
    synthetic_agora_dir: Path, synthetic_body_model_dir: Path
) -> None:
    body_models = get_body_models(synthetic_body_model_dir)
    cfg = body_cfg(synthetic_body_model_dir, synthetic_agora_dir, "data.agora_gender=annotated")
    smplx_db = json.loads((synthetic_agora_dir / "AGORA_validation_SMPLX.json").read_text())
    smplx_of = {(a["smplx_param_path"].split("/")[2], a["person_id"]): a for a in smplx_db["annotations"]}
    ds = build_dataset("AGORA", "validation", cfg)
    # the 33 supervision joints but SMPL's MCP vertices, which the stand-in does not place anatomically
    names = [n for n in POSE2POSE_BODY_JOINTS.names if n not in SMPL_MCP_VERTICES]
    rows, smplx_rows = POSE2POSE_BODY_JOINTS.indices(names), SMPLX_OUTPUT.indices(names)
    keypoint = np.isin(names, KEYPOINT_NAMES)
    assert len(ds) >= 4 and keypoint.sum() == len(KEYPOINT_NAMES)
    for record in ds.records:
        gt = ds.targets.pseudo_gt(ds.load_labels(record))  # the SMPL joints the body model's targets are made of
        smplx = pose_annotation(synthetic_agora_dir, smplx_of[record.info["image_name"], record.info["person_id"]],
                                body_models)  # fmt: skip
        gaps = np.linalg.norm(gt.joint_cam[rows] - smplx.joints[smplx_rows], axis=1)  # (25,) metres
        assert gaps[0] < 1e-4, "transl puts SMPL's pelvis on SMPL-X's"
        assert gaps[~keypoint].max() < SKELETON_TOLERANCE_M, dict(zip(names, gaps, strict=True))
        assert gaps[keypoint].max() < KEYPOINT_TOLERANCE_M, dict(zip(names, gaps, strict=True))


def test_a_missing_smpl_annotation_file_names_it_and_the_tool(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    write_agora_fixture(tmp_path, "train", synthetic_body_model_dir)  # the SMPL-X variant only
    with pytest.raises(FileNotFoundError) as raised:
        build_dataset("AGORA", "train", body_cfg(synthetic_body_model_dir, tmp_path))
    assert str(tmp_path / "AGORA_train_SMPL.json") in str(raised.value) and "agora2coco_smpl.py" in str(raised.value)
