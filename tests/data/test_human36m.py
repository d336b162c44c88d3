"""Human36M loader on a fixture in the parsed release's layout (per-subject data/camera/joint_3d/SMPL-X files).

Subject 1 (train) has frames 0, 3, 5 and 10 of camera 1: every 5th frame keeps 0, 5, 10. Subject 9 (test) has
frames 0, 32 and 64 of camera 4 and frame 64 of camera 2: every 64th frame of camera 4 keeps 0 and 64. The other
subjects' files are present and empty. Each frame's SMPL-X fit is posed with the stand-in in a world frame; the
camera (R, t in mm) puts it 4 m in front, and the GT joints are the H36M regressor applied to that world mesh,
so the pseudo-GT mesh is a perfect prediction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.body_models import get_body_models
from common.body_models.joint_sets import JOINTS, ORIG_JOINTS
from common.utils.augmentation import NO_AUGMENTATION
from common.utils.image_io import ImageReadError
from common.utils.metrics import H36M_EVAL_JOINTS, H36M_JOINTS
from data.dataset import MissingAnnotationError, sample_shapes
from data.Human36M import Human36M
from tests.data.fixtures import (
    IMG_HW,
    PERSON_BOX,
    check_sample_contract,
    empty_coco,
    expected_hm,
    make_cfg,
    project,
    rotation,
    smplx_world_fit,
    smplx_world_mesh,
    write_image,
    write_json,
)

CAM_R = rotation([0.05, 0.4, -0.03])  # world -> camera
CAM_T_MM = np.array([120.0, -60.0, 250.0])
FRAMES = {1: [(0, 1), (3, 1), (5, 1), (10, 1)], 9: [(0, 4), (32, 4), (64, 4), (64, 2)]}  # subject -> (frame, cam)
ACTION, SUBACTION = 2, 1
PELVIS_CAM = np.array([0.0, 0.05, 4.0])  # metres: where each fit's pelvis joint lands in the camera frame


def _write_subject(root: Path, subject: int, body_models, facts: dict) -> None:
    ann = root / "annotations"
    coco, joints, fits = empty_coco(), {}, {}
    layer = body_models.smplx("neutral")
    for k, (frame, cam) in enumerate(FRAMES.get(subject, [])):
        image_id = subject * 1000 + k
        name = f"s_{subject:02d}_act_{ACTION:02d}_subact_{SUBACTION:02d}_ca_{cam:02d}/frame_{frame:06d}.png"
        coco["images"].append({"id": image_id, "file_name": name, "width": IMG_HW[1], "height": IMG_HW[0],
                               "subject": subject, "action_idx": ACTION, "subaction_idx": SUBACTION,
                               "frame_idx": frame, "cam_idx": cam})  # fmt: skip
        coco["annotations"].append({"id": image_id, "image_id": image_id, "category_id": 1, "bbox": PERSON_BOX,
                                    "iscrowd": 0, "area": 768.0})  # fmt: skip
        write_image(root / "images" / name, seed=image_id)
        # a fit and the joints belong to a frame (world frame), shared by its cameras
        fit = smplx_world_fit(subject * 1000 + frame, CAM_R, layer, pelvis_cam=tuple(PELVIS_CAM - CAM_T_MM / 1000))
        world_mesh = smplx_world_mesh(layer, fit)
        joints_world_m = body_models.h36m_regressor() @ world_mesh  # (17, 3)
        joints.setdefault(str(ACTION), {}).setdefault(str(SUBACTION), {})[str(frame)] = (joints_world_m * 1000).tolist()
        fits.setdefault(str(ACTION), {}).setdefault(str(SUBACTION), {})[str(frame)] = fit
        facts[(subject, frame, cam)] = {"mesh_cam": world_mesh @ CAM_R.T + CAM_T_MM / 1000,
                                        "joints_cam": joints_world_m @ CAM_R.T + CAM_T_MM / 1000}  # fmt: skip
    cameras = {str(c): {"R": CAM_R.tolist(), "t": CAM_T_MM.tolist(), "f": [60.0, 60.0], "c": [32.0, 24.0]}
               for c in (1, 2, 3, 4)}  # fmt: skip
    prefix = ann / f"Human36M_subject{subject}"
    write_json(Path(f"{prefix}_data.json"), coco)
    write_json(Path(f"{prefix}_camera.json"), cameras)
    write_json(Path(f"{prefix}_joint_3d.json"), joints)
    write_json(Path(f"{prefix}_SMPLX_NeuralAnnot.json"), fits)


@pytest.fixture(scope="module")
def h36m(tmp_path_factory, synthetic_body_model_dir):
    root = tmp_path_factory.mktemp("h36m")
    body_models = get_body_models(synthetic_body_model_dir)
    facts: dict = {}
    for subject in (1, 5, 6, 7, 8, 9, 11):
        _write_subject(root, subject, body_models, facts)
    return root, make_cfg(synthetic_body_model_dir, {"Human36M": root}), facts


def test_train_split_every_5th_frame_with_targets_where_the_fixture_put_them(h36m):
    root, cfg, facts = h36m
    ds = Human36M("train", cfg)
    assert [(r.info["subject"], r.info["frame"]) for r in ds.records] == [(1, 0), (1, 5), (1, 10)]
    assert ds.records[0].img_path == root / "images" / "s_01_act_02_subact_01_ca_01/frame_000000.png"
    sample = check_sample_contract(ds.get_sample(0, aug=NO_AUGMENTATION),
                                   sample_shapes(ds.space, ds.body_models.vertex_count, "train"))  # fmt: skip

    joints_cam = facts[(1, 0, 1)]["joints_cam"]  # (17, 3) metres, H36M order
    pelvis = joints_cam[H36M_JOINTS.index("Pelvis")]
    mapped = [n for n in H36M_JOINTS if n in JOINTS.names]
    assert sample["joint_valid"][:, 0].sum() == len(mapped) == 14  # Torso, Head, Head_top have no supervision joint
    for name in mapped:
        j, h = JOINTS.index(name), H36M_JOINTS.index(name)
        np.testing.assert_allclose(sample["joint_img"][j, :2], expected_hm(*project(joints_cam[h : h + 1])[0], (8, 6)),
                                   atol=1e-4)  # fmt: skip
        depth_hm = ((joints_cam[h, 2] - pelvis[2]) / (ds.space.body_3d_size / 2) + 1) / 2 * ds.space.hm_dhw[0]
        assert sample["joint_img"][j, 2] == pytest.approx(depth_hm, abs=1e-4)
        np.testing.assert_allclose(sample["joint_cam"][j], joints_cam[h] - pelvis, atol=1e-5)
    assert sample["is_3D"] == 1.0
    # SMPL-X pseudo-GT present, NeuralAnnot's wrists/ankles rotations and feet joints masked
    assert sample["smplx_shape_valid"] == 1.0 and sample["smplx_expr_valid"] == 1.0
    pose_valid = sample["smplx_pose_valid"].reshape(-1, 3)[:, 0]
    for name in ("L_Ankle", "R_Ankle", "L_Wrist", "R_Wrist"):
        assert pose_valid[ORIG_JOINTS.index(name)] == 0.0
    assert pose_valid.sum() == len(ORIG_JOINTS) - 4
    for name in ("L_Big_toe", "R_Heel"):
        assert sample["smplx_joint_valid"][JOINTS.index(name), 0] == 0.0
    # the pseudo-GT's pelvis is where the fit and the camera (t in mm) put it
    smplx_pelvis_hm = sample["smplx_joint_img"][JOINTS.index("Pelvis"), :2]
    np.testing.assert_allclose(smplx_pelvis_hm, expected_hm(*project(PELVIS_CAM[None])[0], (8, 6)), atol=1e-4)
    assert all(sample[f"{p}_bbox_valid"] == 0.0 for p in ("lhand", "rhand", "face"))


def test_test_split_camera_4_every_64th_frame_and_mesh_in_camera_frame(h36m):
    _, cfg, facts = h36m
    ds = Human36M("test", cfg)
    assert [(r.info["subject"], r.info["frame"], r.info["cam_idx"]) for r in ds.records] == [(9, 0, 4), (9, 64, 4)]
    sample = check_sample_contract(ds[1], sample_shapes(ds.space, ds.body_models.vertex_count, "test"))
    assert sample["smplx_mesh_valid"] == 1.0
    np.testing.assert_allclose(sample["smplx_mesh_cam"], facts[(9, 64, 4)]["mesh_cam"], atol=1e-4)


def test_evaluate_perfect_scaled_and_shifted_predictions(h36m):
    _, cfg, facts = h36m
    ds = Human36M("test", cfg)
    meshes = [ds[i][1]["smplx_mesh_cam"] for i in range(len(ds))]
    perfect = ds.evaluate([{"smplx_mesh_cam": m} for m in meshes], [0, 1])
    assert set(perfect) == {"mpjpe", "pa_mpjpe"} and len(perfect["mpjpe"]) == 2
    assert max(perfect["mpjpe"] + perfect["pa_mpjpe"]) < 0.01  # mm

    shifted = ds.evaluate([{"smplx_mesh_cam": m + np.float32([0.1, -0.2, 0.3])} for m in meshes], [0, 1])
    assert max(shifted["mpjpe"]) < 0.01  # pelvis-relative: a translation costs nothing

    scale = 1.1  # about the pelvis: each relative joint grows by 10 %, so MPJPE is 10 % of its mean length
    pelvis_row = ds.body_models.h36m_regressor()[H36M_JOINTS.index("Pelvis")]
    scaled = [(pelvis_row @ m) + scale * (m - pelvis_row @ m) for m in meshes]
    result = ds.evaluate([{"smplx_mesh_cam": m} for m in scaled], [0, 1])
    eval_rows = [H36M_JOINTS.index(n) for n in H36M_EVAL_JOINTS]
    for k, key in enumerate([(9, 0, 4), (9, 64, 4)]):
        joints = facts[key]["joints_cam"]
        rel = joints[eval_rows] - joints[H36M_JOINTS.index("Pelvis")]
        assert result["mpjpe"][k] == pytest.approx((scale - 1) * np.linalg.norm(rel, axis=1).mean() * 1000, rel=1e-3)
        assert result["pa_mpjpe"][k] < 0.01


def test_missing_annotation_file_and_missing_image_name_the_file(h36m, tmp_path):
    root, cfg, _ = h36m
    cfg_missing = make_cfg(cfg.human_model_path, {"Human36M": tmp_path})
    with pytest.raises(MissingAnnotationError) as err:
        Human36M("test", cfg_missing)
    assert str(tmp_path / "annotations" / "Human36M_subject9_data.json") in str(err.value)
    assert Human36M.DOWNLOAD_PAGE in str(err.value)

    ds = Human36M("test", cfg)
    ds.records[0].img_path = root / "images" / "absent.png"
    with pytest.raises(ImageReadError, match="absent.png"):
        ds[0]


def test_json_layout_without_the_fits_file_for_a_family_that_reads_none(h36m, tmp_path):
    import shutil

    from data.targets import make_targets

    root, cfg, facts = h36m
    copy = tmp_path / "h36m_no_fits"
    shutil.copytree(root, copy)
    for fits_file in copy.glob("annotations/*_NeuralAnnot.json"):
        fits_file.unlink()
    cfg_copy = make_cfg(cfg.human_model_path, {"Human36M": copy})
    with pytest.raises(MissingAnnotationError, match="SMPLX_NeuralAnnot"):
        Human36M("train", cfg_copy)  # Hand4Whole reads the fits
    targets = make_targets(cfg_copy, get_body_models(cfg.human_model_path))
    targets.fits = None  # a skeleton family's target builder
    ds = Human36M("train", cfg_copy, targets=targets)
    assert ds.layout == "json" and ds.JOINT_NAMES == H36M_JOINTS
    assert [(r.info["subject"], r.info["frame"]) for r in ds.records] == [(1, 0), (1, 5), (1, 10)]
    assert all(r.smplx is None and r.smpl is None for r in ds.records)
    np.testing.assert_allclose(ds.records[0].joints_cam, facts[(1, 0, 1)]["joints_cam"], atol=1e-9)
