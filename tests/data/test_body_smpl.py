"""The body datasets for the Pose2Pose body model (model.arch pose2pose_body): SMPL fits instead of SMPL-X ones.

Fixtures in the real layouts, with SMPL fits posed by the stand-in's SMPL and a reduced pose2pose_body config:

- Human36M: subject 1 (train) frames 0, 5, 10 of camera 1 (frame 10 has no fit), subject 9 (test) frames 0 and 64
  of camera 4; only the *_SMPL_NeuralAnnot.json fits (world frame), camera R and t (mm). The GT joints are the
  one-hot rows of the test's SMPL H36M regressor (`H36M_VERTICES`) applied to the world mesh, so the GT SMPL mesh
  is a perfect prediction and moving one vertex moves exactly one evaluated joint.
- MPI_INF_3DHP: frames 0, 3, 6 (6 has no fit); the GT joints are the fit's own SMPL skeleton joints, so the dataset
  joints and the SMPL joints must agree.
- MPII: annotation 11 with a camera-frame fit and keypoints at its projected SMPL joints, 12 without a fit.
- 3DPW: a male and a female SMPL GT (test), one more person (train).

The body-model tree is the stand-in plus smpl/J_regressor_h36m_smpl.npy written here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from common.body_models import MissingBodyModelFileError, get_body_models
from common.body_models.files import J_REGRESSOR_H36M_SMPL
from common.body_models.joint_sets import SMPL_JOINTS
from common.body_models.part_joints import POSE2POSE_BODY_JOINTS
from common.engine.tester import per_sample_outputs
from common.geometry import rotmat_to_axis_angle
from common.utils.augmentation import NO_AUGMENTATION, AugParams
from common.utils.metrics import H36M_EVAL_JOINTS, H36M_JOINTS
from data.dataset import MissingAnnotationError
from data.Human36M import Human36M
from data.MPI_INF_3DHP import MPI_INF_3DHP
from data.MPII import MPII
from data.MPII.MPII import MPII_JOINTS
from data.PW3D import PW3D
from main.config import Config, load_config
from tests.data.fixtures import (
    FOCAL,
    IMG_HW,
    PERSON_BOX,
    PRINCPT,
    UPRIGHT,
    check_sample_contract,
    empty_coco,
    make_cfg,
    project,
    rotation,
    write_image,
    write_json,
)

SMALL_BODY = ("model.resnet_type=18", "model.input_img_shape=[64,48]", "model.output_hm_shape=[8,2,2]",
              "model.princpt=[24,32]")  # fmt: skip
H36M_VERTICES = np.random.default_rng(17).choice(6890, len(H36M_JOINTS), replace=False)
"""The one vertex each row of the test's SMPL H36M regressor takes, in `H36M_JOINTS` order."""
# SMPL's skeleton joint standing in for the dataset joints it has none of
SMPL_STAND_IN = {"Head_top": "Head", "Torso": "Spine_3", "Thorax": "Spine_3"}
SKELETON_NAMES = [n for n in POSE2POSE_BODY_JOINTS.names if n in SMPL_JOINTS.names]  # 14 of the 33 joints
PELVIS_CAM = np.array([0.0, 0.05, 4.0])  # metres: where each fit's pelvis lands in the camera frame


# --- helpers ---------------------------------------------------------------------------------------------------
def body_cfg(models: Path, roots: Mapping[str, Path], *overrides: str) -> Config:
    """The pose2pose_body config, reduced for the CPU, with these body models and dataset roots."""
    mapping = json.dumps({name: str(path) for name, path in roots.items()})
    return load_config("pose2pose_body", [f"human_model_path={models}", *SMALL_BODY,
                                          f"data.dataset_roots={mapping}", *overrides])  # fmt: skip


def smpl_posed(layer: Any, fit: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(45, 3) joints and (V, 3) vertices, float64, of a fit posed directly with the SMPL layer."""
    pose = torch.tensor(fit["pose"], dtype=torch.float32)[None]
    with torch.no_grad():
        out = layer(global_orient=pose[:, :3], body_pose=pose[:, 3:], betas=torch.tensor([fit["shape"]]).float(),
                    transl=torch.tensor([fit["trans"]]).float())  # fmt: skip
    return out.joints[0].numpy().astype(np.float64), out.vertices[0].numpy().astype(np.float64)


def smpl_world_fit(seed: int, cam_rotation: np.ndarray, layer: Any, pelvis_cam: np.ndarray) -> dict[str, list]:
    """A bare SMPL fit in a world frame, upright facing a camera of rotation ``cam_rotation`` (world -> camera), its
    pelvis at ``pelvis_cam`` in that camera's frame before the camera's own translation is added."""
    rng = np.random.default_rng(seed)
    root = rotmat_to_axis_angle(torch.as_tensor(cam_rotation.T @ UPRIGHT)).tolist()
    fit = {"pose": [*root, *(0.1 * rng.standard_normal(69))], "shape": (0.5 * rng.standard_normal(10)).tolist(),
           "trans": [0.0, 0.0, 0.0]}  # fmt: skip
    pelvis_world = smpl_posed(layer, fit)[0][0]
    fit["trans"] = (cam_rotation.T @ pelvis_cam - pelvis_world).tolist()
    return fit


def skeleton(joints45: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(len(names), 3) the SMPL skeleton joints standing for a dataset's joint names."""
    return np.stack([joints45[SMPL_JOINTS.index(SMPL_STAND_IN.get(n, n))] for n in names])


def one_hot_h36m_regressor(num_vertices: int) -> np.ndarray:
    regressor = np.zeros((len(H36M_JOINTS), num_vertices), np.float32)
    regressor[np.arange(len(H36M_JOINTS)), H36M_VERTICES] = 1.0
    return regressor


def outputs_as_the_tester_hands_them(dataset: Any, predictions: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """What the tester hands `evaluate`: the predictions plus the eval extras of the collated test samples."""
    samples = [dataset[i] for i in range(len(predictions))]
    targets, meta = default_collate([s[1] for s in samples]), default_collate([s[2] for s in samples])
    out = {"smpl_mesh_cam": torch.as_tensor(np.stack(predictions), dtype=torch.float32)}
    return per_sample_outputs(out, targets, meta, dataset.eval_extras)


def check_smpl_masks(sample: Mapping[str, Any], fitted: bool) -> None:
    """SMPL masks all 1 with a fit (SMPL's two hand joints excepted: the body model does not estimate them), else 0."""
    expected_pose = (len(SMPL_JOINTS) - 2) * 3 if fitted else 0
    assert float(np.sum(sample["smpl_pose_valid"])) == expected_pose
    assert float(sample["smpl_shape_valid"]) == float(fitted)
    assert np.all(np.asarray(sample["smpl_joint_valid"]) == float(fitted))


@pytest.fixture(scope="module")
def smpl_models(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> Path:
    """The stand-in tree plus a one-hot SMPL H36M regressor (`H36M_VERTICES`)."""
    models = tmp_path_factory.mktemp("human_model_files")
    for folder in ("smplx", "mano", "flame"):
        (models / folder).symlink_to(synthetic_body_model_dir / folder)
    (models / "smpl").mkdir()
    for path in (synthetic_body_model_dir / "smpl").iterdir():
        (models / "smpl" / path.name).symlink_to(path)
    num_vertices = get_body_models(synthetic_body_model_dir).smpl("neutral").v_template.shape[0]
    np.save(models / J_REGRESSOR_H36M_SMPL, one_hot_h36m_regressor(num_vertices))
    return models


# --- Human36M ----------------------------------------------------------------------------------------------------
H36M_CAM_R, H36M_CAM_T_MM = rotation([0.05, 0.4, -0.03]), np.array([120.0, -60.0, 250.0])
H36M_FRAMES = {1: [(0, 1), (5, 1), (10, 1)], 9: [(0, 4), (64, 4)]}  # subject -> (frame, camera)
H36M_UNFITTED = {(1, 10)}


def write_h36m_subject(root: Path, subject: int, layer: Any, facts: dict) -> None:
    """One subject's files, with SMPL fits only (the body model needs no SMPL-X file)."""
    coco, joints, fits = empty_coco(), {}, {}
    cam_t = H36M_CAM_T_MM / 1000
    for k, (frame, cam) in enumerate(H36M_FRAMES.get(subject, [])):
        image_id = subject * 1000 + k
        name = f"s_{subject:02d}_act_02_subact_01_ca_{cam:02d}/frame_{frame:06d}.png"
        coco["images"].append({"id": image_id, "file_name": name, "width": IMG_HW[1], "height": IMG_HW[0],
                               "subject": subject, "action_idx": 2, "subaction_idx": 1, "frame_idx": frame,
                               "cam_idx": cam})  # fmt: skip
        coco["annotations"].append({"id": image_id, "image_id": image_id, "category_id": 1, "bbox": PERSON_BOX})
        write_image(root / "images" / name, seed=image_id)
        fit = smpl_world_fit(subject * 100 + frame, H36M_CAM_R, layer, PELVIS_CAM - cam_t)
        joints45_world, mesh_world = smpl_posed(layer, fit)
        joints.setdefault("2", {}).setdefault("1", {})[str(frame)] = (mesh_world[H36M_VERTICES] * 1000).tolist()
        if (subject, frame) not in H36M_UNFITTED:
            fits.setdefault("2", {}).setdefault("1", {})[str(frame)] = fit
        facts[(subject, frame)] = {"mesh_cam": mesh_world @ H36M_CAM_R.T + cam_t,
                                   "smpl_joints_cam": joints45_world @ H36M_CAM_R.T + cam_t,
                                   "h36m_cam": mesh_world[H36M_VERTICES] @ H36M_CAM_R.T + cam_t}  # fmt: skip
    cameras = {str(c): {"R": H36M_CAM_R.tolist(), "t": H36M_CAM_T_MM.tolist(), "f": list(FOCAL), "c": list(PRINCPT)}
               for c in (1, 2, 3, 4)}  # fmt: skip
    prefix = root / "annotations" / f"Human36M_subject{subject}"
    for part, content in (("data", coco), ("camera", cameras), ("joint_3d", joints), ("SMPL_NeuralAnnot", fits)):
        write_json(Path(f"{prefix}_{part}.json"), content)


@pytest.fixture(scope="module")
def h36m(tmp_path_factory: pytest.TempPathFactory, smpl_models: Path) -> tuple[Path, Config, dict]:
    root = tmp_path_factory.mktemp("h36m_smpl")
    layer, facts = get_body_models(smpl_models).smpl("neutral"), {}
    for subject in (1, 5, 6, 7, 8, 9, 11):
        write_h36m_subject(root, subject, layer, facts)
    return root, body_cfg(smpl_models, {"Human36M": root}), facts


def test_h36m_reads_the_smpl_fits_with_the_camera_and_masks_frames_without_one(h36m) -> None:
    _, cfg, facts = h36m
    ds = Human36M("train", cfg)
    assert [r.info["frame"] for r in ds.records] == [0, 5, 10]
    assert all(r.smplx is None for r in ds.records) and [r.smpl is not None for r in ds.records] == [1, 1, 0]
    sample = check_sample_contract(ds.get_sample(1, aug=NO_AUGMENTATION), ds.targets.sample_shapes("train"))
    check_smpl_masks(sample, fitted=True)
    # the fit's SMPL joints, brought into the camera by R and t (mm -> m), pelvis-relative
    expected = facts[(1, 5)]["smpl_joints_cam"]
    for name in SKELETON_NAMES:
        j, s = POSE2POSE_BODY_JOINTS.index(name), SMPL_JOINTS.index(name)
        np.testing.assert_allclose(sample["smpl_joint_cam"][j], expected[s] - expected[0], atol=2e-5)
    # the dataset's 17 joints, by name, on the 33 joints: the 14 names the two sets share
    h36m_cam = facts[(1, 5)]["h36m_cam"]
    shared = [n for n in H36M_JOINTS if n in POSE2POSE_BODY_JOINTS.names]
    assert len(shared) == 14 and float(sample["joint_valid"].sum()) == 14 and sample["is_3D"] == 1.0
    for name in shared:
        j, h = POSE2POSE_BODY_JOINTS.index(name), H36M_JOINTS.index(name)
        np.testing.assert_allclose(sample["joint_cam"][j], h36m_cam[h] - h36m_cam[0], atol=1e-5)
    check_smpl_masks(check_sample_contract(ds.get_sample(2, aug=NO_AUGMENTATION), ds.targets.sample_shapes("train")),
                     fitted=False)  # fmt: skip


def test_h36m_file_table_whole_body_family_asks_for_the_smplx_fits(h36m, smpl_models: Path) -> None:
    root, _, _ = h36m
    assert Human36M.FIT_FILES == {"smplx": "SMPLX_NeuralAnnot", "smpl": "SMPL_NeuralAnnot"}
    with pytest.raises(MissingAnnotationError) as err:
        Human36M("train", make_cfg(smpl_models, {"Human36M": root}))
    assert Path(err.value.filename) == root / "annotations" / "Human36M_subject1_SMPLX_NeuralAnnot.json"


def test_h36m_evaluate_smpl_meshes_perfect_and_with_known_offsets(h36m) -> None:
    _, cfg, facts = h36m
    ds = Human36M("test", cfg)
    assert [(r.info["subject"], r.info["frame"]) for r in ds.records] == [(9, 0), (9, 64)]
    sample = check_sample_contract(ds[1], ds.targets.sample_shapes("test"))
    assert sample["smpl_mesh_valid"] == 1.0
    np.testing.assert_allclose(sample["smpl_mesh_cam"], facts[(9, 64)]["mesh_cam"], atol=1e-4)
    meshes = [facts[(9, frame)]["mesh_cam"] for frame in (0, 64)]

    perfect = ds.evaluate(outputs_as_the_tester_hands_them(ds, meshes), [0, 1])
    assert set(perfect) == {"mpjpe", "pa_mpjpe"} and max(perfect["mpjpe"] + perfect["pa_mpjpe"]) < 0.01  # mm

    pelvis_shift = np.array([0.01, 0.02, -0.02])  # 30 mm: every pelvis-relative joint moves by its opposite
    moved = [m.copy() for m in meshes]
    for m in moved:
        m[H36M_VERTICES[H36M_JOINTS.index("Pelvis")]] += pelvis_shift
    result = ds.evaluate([{"smpl_mesh_cam": m} for m in moved], [0, 1])
    assert result["mpjpe"] == pytest.approx([30.0, 30.0], rel=1e-4) and max(result["pa_mpjpe"]) < 0.01

    moved = [m.copy() for m in meshes]
    for m in moved:
        m[H36M_VERTICES[H36M_JOINTS.index("R_Wrist")]] += [0.0, 0.03, 0.0]  # one of the 14 joints 30 mm off
    result = ds.evaluate([{"smpl_mesh_cam": m} for m in moved], [0, 1])
    assert result["mpjpe"] == pytest.approx([30.0 / len(H36M_EVAL_JOINTS)] * 2, rel=1e-4)
    assert min(result["pa_mpjpe"]) > 0.1


def test_h36m_evaluate_names_the_missing_smpl_regressor(h36m, synthetic_body_model_dir: Path) -> None:
    root, _, facts = h36m
    ds = Human36M("test", body_cfg(synthetic_body_model_dir, {"Human36M": root}))
    with pytest.raises(MissingBodyModelFileError) as err:
        ds.evaluate([{"smpl_mesh_cam": facts[(9, 0)]["mesh_cam"]}], [0])
    assert err.value.filename == str(synthetic_body_model_dir / J_REGRESSOR_H36M_SMPL)
    with pytest.raises(ValueError, match="'smpl_mesh_cam' or 'smplx_mesh_cam'"):
        ds.evaluate([{"smpl_joint_cam": np.zeros((33, 3))}], [0])


# --- MPI_INF_3DHP ------------------------------------------------------------------------------------------------
MPI_CAM_R, MPI_CAM_T_MM = rotation([-0.02, -0.5, 0.04]), np.array([-80.0, 30.0, 150.0])


@pytest.fixture(scope="module")
def mpi(tmp_path_factory: pytest.TempPathFactory, smpl_models: Path) -> tuple[Path, Config]:
    """GT joints = the fit's SMPL skeleton joints; frame 6 has no fit; only the SMPL fits file."""
    root = tmp_path_factory.mktemp("mpi_smpl")
    layer = get_body_models(smpl_models).smpl("neutral")
    coco, joints, fits = empty_coco(), {}, {}
    for frame in (0, 3, 6):
        name = f"frame_5_{frame:06d}.jpg"
        coco["images"].append({"id": frame, "file_name": name, "width": IMG_HW[1], "height": IMG_HW[0],
                               "subject_idx": 1, "seq_idx": 2, "frame_idx": frame, "cam_idx": 5})  # fmt: skip
        coco["annotations"].append({"id": 100 + frame, "image_id": frame, "category_id": 1, "bbox": PERSON_BOX})
        write_image(root / "images_1k" / "S1" / "Seq2" / "imageSequence" / name, seed=frame)
        fit = smpl_world_fit(frame, MPI_CAM_R, layer, PELVIS_CAM - MPI_CAM_T_MM / 1000)
        world_mm = skeleton(smpl_posed(layer, fit)[0], MPI_INF_3DHP.JOINT_NAMES) * 1000
        joints.setdefault("1", {}).setdefault("2", {})[str(frame)] = world_mm.tolist()
        if frame != 6:
            fits.setdefault("1", {}).setdefault("2", {})[str(frame)] = fit
    cameras = {"1": {"2": {"5": {"R": MPI_CAM_R.tolist(), "t": MPI_CAM_T_MM.tolist(), "focal": list(FOCAL),
                                 "princpt": list(PRINCPT)}}}}  # fmt: skip
    write_json(root / "MPI-INF-3DHP_1k.json", coco)
    write_json(root / "MPI-INF-3DHP_camera_1k.json", cameras)
    write_json(root / "MPI-INF-3DHP_joint_3d.json", joints)
    write_json(root / "MPI-INF-3DHP_SMPL_NeuralAnnot.json", fits)
    return root, body_cfg(smpl_models, {"MPI_INF_3DHP": root})


@pytest.mark.parametrize("aug", [NO_AUGMENTATION, AugParams(scale=1.1, rot=25.0, flip=True)])
def test_mpi_smpl_joints_agree_with_the_gt_joints(mpi, aug: AugParams) -> None:
    _, cfg = mpi
    ds = MPI_INF_3DHP("train", cfg)
    assert [r.info["frame"] for r in ds.records] == [0, 3, 6] and all(r.smplx is None for r in ds.records)
    _, targets, meta = sample = ds.get_sample(1, aug=aug)
    merged = check_sample_contract(sample, ds.targets.sample_shapes("train"))
    check_smpl_masks(merged, fitted=True)
    shared = [POSE2POSE_BODY_JOINTS.index(n) for n in MPI_INF_3DHP.JOINT_NAMES if n in POSE2POSE_BODY_JOINTS.names]
    assert len(shared) == 14 and np.all(meta["joint_valid"][shared] == 1.0)
    np.testing.assert_allclose(targets["joint_cam"][shared], targets["smpl_joint_cam"][shared], atol=2e-5)
    np.testing.assert_allclose(targets["joint_img"][shared], targets["smpl_joint_img"][shared], atol=1e-3)
    check_smpl_masks(check_sample_contract(ds.get_sample(2, aug=aug), ds.targets.sample_shapes("train")), False)


def test_mpi_body_model_reads_only_the_smpl_file(mpi, tmp_path: Path, smpl_models: Path) -> None:
    root, _ = mpi
    assert MPI_INF_3DHP.FIT_FILES["smpl"] == ("MPI-INF-3DHP_SMPL_NeuralAnnot.json",)
    for name in ("MPI-INF-3DHP_1k.json", "MPI-INF-3DHP_camera_1k.json", "MPI-INF-3DHP_joint_3d.json"):
        (tmp_path / name).write_bytes((root / name).read_bytes())
    # an SMPL-X fits file is not a SMPL one: the body model asks for its own file
    (tmp_path / "MPI-INF-3DHP_SMPLX_NeuralAnnot.json").write_text("{}")
    with pytest.raises(MissingAnnotationError, match="MPI-INF-3DHP_SMPL_NeuralAnnot.json"):
        MPI_INF_3DHP("train", body_cfg(smpl_models, {"MPI_INF_3DHP": tmp_path}))


# --- MPII --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mpii(tmp_path_factory: pytest.TempPathFactory, smpl_models: Path) -> tuple[MPII, dict]:
    """Annotation 11: keypoints at the projected SMPL joints of its camera-frame fit; 12: one keypoint, no fit."""
    root = tmp_path_factory.mktemp("mpii_smpl")
    layer = get_body_models(smpl_models).smpl("neutral")
    fit = smpl_world_fit(3, np.eye(3), layer, PELVIS_CAM)  # camera frame: the identity camera
    keypoints = np.concatenate([project(skeleton(smpl_posed(layer, fit)[0], MPII_JOINTS)), np.ones((16, 1))], 1)
    lone = np.zeros((16, 3))
    lone[MPII_JOINTS.index("L_Hip")] = (34.0, 28.0, 1.0)
    anns = [{"id": ann_id, "image_id": 7, "category_id": 1, "iscrowd": 0, "bbox": PERSON_BOX,
             "keypoints": kpts.reshape(-1).tolist()} for ann_id, kpts in ((11, keypoints), (12, lone))]  # fmt: skip
    image = {"id": 7, "file_name": "images/015601864.png", "height": IMG_HW[0], "width": IMG_HW[1]}
    write_json(root / "annotations" / "train.json", empty_coco() | {"images": [image], "annotations": anns})
    entry = {"smpl_param": fit, "cam_param": {"focal": list(FOCAL), "princpt": list(PRINCPT)}}
    write_json(root / "annotations" / "MPII_train_SMPL_NeuralAnnot.json", {"11": entry})
    write_image(root / image["file_name"])
    return MPII("train", body_cfg(smpl_models, {"MPII": root})), fit


def test_mpii_smpl_fit_masks_and_keypoints_agree_with_its_joints(mpii) -> None:
    ds, fit = mpii
    assert [r.info["ann_id"] for r in ds.records] == [11, 12]
    assert ds.records[0].smplx is None and ds.records[1].smpl is None
    np.testing.assert_allclose(ds.records[0].smpl.shape, fit["shape"])
    _, targets, meta = sample = ds.get_sample(0, aug=NO_AUGMENTATION)
    check_smpl_masks(check_sample_contract(sample, ds.targets.sample_shapes("train")), fitted=True)
    assert meta["is_3D"] == 0.0 and not targets["joint_cam"].any()
    shared = [POSE2POSE_BODY_JOINTS.index(n) for n in MPII_JOINTS if n in POSE2POSE_BODY_JOINTS.names]
    assert len(shared) == 14 and np.all(meta["joint_valid"][shared] == 1.0)
    np.testing.assert_allclose(targets["joint_img"][shared, :2], targets["smpl_joint_img"][shared, :2], atol=1e-4)
    np.testing.assert_allclose(targets["smpl_shape"], fit["shape"], atol=1e-6)
    check_smpl_masks(check_sample_contract(ds.get_sample(1, aug=NO_AUGMENTATION), ds.targets.sample_shapes("train")),
                     fitted=False)  # fmt: skip


# --- 3DPW --------------------------------------------------------------------------------------------------------
def pw3d_param(k: int, gender: str) -> dict[str, Any]:
    rng = np.random.default_rng(k)
    root = rotmat_to_axis_angle(torch.as_tensor(UPRIGHT)).tolist()
    return {"pose": [*root, *(0.1 * rng.standard_normal(69))], "shape": (0.5 * rng.standard_normal(10)).tolist(),
            "trans": [0.05 * k, 0.3, 4.0], "gender": gender}  # fmt: skip


def write_pw3d(root: Path, split: str, genders: tuple[str, ...], sequence: str = "downtown_walking_00") -> list:
    coco, params = empty_coco(), []
    for k, gender in enumerate(genders):
        file_name = f"image_{k:05d}.jpg"
        cam_param = {"focal": list(FOCAL), "princpt": list(PRINCPT)}
        coco["images"].append({"id": k, "file_name": file_name, "sequence": sequence, "width": IMG_HW[1],
                               "height": IMG_HW[0], "cam_param": cam_param})  # fmt: skip
        params.append(pw3d_param(k, gender))
        coco["annotations"].append({"id": 50 + k, "image_id": k, "category_id": 1, "bbox": PERSON_BOX,
                                    "smpl_param": params[-1]})  # fmt: skip
        write_image(root / "imageFiles" / sequence / file_name, seed=k)
    write_json(root / f"3DPW_{split}.json", coco)
    return params


@pytest.fixture(scope="module")
def pw3d(tmp_path_factory: pytest.TempPathFactory, smpl_models: Path) -> tuple[Config, list]:
    root = tmp_path_factory.mktemp("pw3d_smpl")
    params = write_pw3d(root, "test", ("male", "female"))
    write_pw3d(root, "train", ("female",))
    return body_cfg(smpl_models, {"PW3D": root}), params


def test_pw3d_trains_the_body_model_on_its_gendered_smpl_gt(pw3d) -> None:
    cfg, _ = pw3d
    ds = PW3D("train", cfg)
    assert len(ds) == 1 and ds.records[0].smpl.gender == "female"
    _, targets, meta = sample = ds.get_sample(0, aug=AugParams(rot=20.0, flip=True))
    check_smpl_masks(check_sample_contract(sample, ds.targets.sample_shapes("train")), fitted=True)
    # the SMPL GT is 3DPW's 3D label: the joint targets are its joints
    assert meta["is_3D"] == 1.0 and np.all(meta["joint_valid"] == 1.0)
    np.testing.assert_allclose(targets["joint_cam"], targets["smpl_joint_cam"], atol=1e-6)


def test_pw3d_test_targets_are_the_gendered_gt_mesh_and_evaluation_uses_them(pw3d, smpl_models: Path) -> None:
    cfg, params = pw3d
    ds = PW3D("test", cfg)
    sample = check_sample_contract(ds[0], ds.targets.sample_shapes("test"))
    models = get_body_models(smpl_models)
    male, neutral = (smpl_posed(models.smpl(g), params[0])[1] for g in ("male", "neutral"))
    assert np.abs(male - neutral).max() > 0.005  # the gender matters on the stand-in too
    np.testing.assert_allclose(sample["smpl_mesh_cam"], male, atol=1e-5)
    gt = ds.gt_smpl_mesh([0, 1])

    handed = outputs_as_the_tester_hands_them(ds, list(gt))
    assert "smpl_mesh_cam_target" in handed[0] and "smpl_mesh_valid" in handed[0]
    perfect = ds.evaluate(handed, [0, 1])
    assert set(perfect) == {"mpjpe", "pa_mpjpe", "mpvpe", "pa_mpvpe"}
    assert max(max(values) for values in perfect.values()) < 0.01  # mm

    shift = np.array([0.0, 0.03, -0.04])  # 50 mm on the vertex of the pelvis row
    moved = [mesh.copy() for mesh in gt]
    for mesh in moved:
        mesh[H36M_VERTICES[H36M_JOINTS.index("Pelvis")]] += shift
    handed, plain = outputs_as_the_tester_hands_them(ds, moved), [{"smpl_mesh_cam": mesh} for mesh in moved]
    for result in (ds.evaluate(handed, [0, 1]), ds.evaluate(plain, [0, 1])):  # the handed-in GT = the records'
        num_vertices = gt.shape[1]
        assert result["mpjpe"] == pytest.approx([50.0, 50.0], rel=1e-4) and max(result["pa_mpjpe"]) < 0.01
        # both meshes minus their pelvis: every vertex but the moved one is 50 mm off
        assert result["mpvpe"] == pytest.approx([50.0 * (num_vertices - 1) / num_vertices] * 2, rel=1e-4)
        assert min(result["pa_mpvpe"]) > 0.0


def test_pw3d_image_paths_stay_under_the_root(tmp_path: Path, smpl_models: Path) -> None:
    write_pw3d(tmp_path, "test", ("male",), sequence="../outside")
    with pytest.raises(ValueError, match="3DPW_test.json") as err:
        PW3D("test", body_cfg(smpl_models, {"PW3D": tmp_path}))
    assert "image 0" in str(err.value) and "'../outside/image_00000.jpg'" in str(err.value)
