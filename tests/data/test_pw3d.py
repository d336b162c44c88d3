"""PW3D loader on a fixture in the parsed release's layout: 3DPW_test.json with two people (a male and a female
SMPL GT, 4 m in front of the camera) and imageFiles/<sequence>/<file>. The body-model tree is the stand-in plus
smpl/J_regressor_h36m_smpl.npy, a regressor the test builds from the stand-in SMPL's own joint regressor.

A "perfect" SMPL-X prediction is any SMPL-X mesh whose H36M joints equal the GT SMPL mesh's: the test makes one
by adding to a posed stand-in mesh the least-norm vertex offsets that move its regressed joints onto the GT's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from common.body_models import MissingBodyModelFileError, get_body_models
from common.body_models.joint_sets import SMPL_JOINTS
from common.geometry import rotmat_to_axis_angle
from common.utils.metrics import H36M_EVAL_JOINTS, H36M_JOINTS
from data.dataset import sample_shapes
from data.PW3D import PW3D
from data.PW3D.PW3D import SMPL_H36M_REGRESSOR
from tests.data.fixtures import (
    FOCAL,
    IMG_HW,
    PERSON_BOX,
    PRINCPT,
    UPRIGHT,
    check_sample_contract,
    empty_coco,
    make_cfg,
    smplx_world_fit,
    smplx_world_mesh,
    write_image,
    write_json,
)

SEQUENCE = "downtown_walking_00"
GENDERS = ("male", "female")


def smpl_h36m_regressor(body_models) -> np.ndarray:
    """(17, V_smpl): SMPL joint-regressor rows by name; Torso, Head and Head_top take the Spine_3/Head rows."""
    joint_regressor = body_models.smpl("neutral").J_regressor.numpy()
    stand_in = {"Torso": "Spine_3", "Head_top": "Head"}
    return np.stack([joint_regressor[SMPL_JOINTS.index(stand_in.get(n, n))] for n in H36M_JOINTS])


def smpl_mesh(body_models, param: dict) -> np.ndarray:
    pose = torch.tensor(param["pose"], dtype=torch.float32)[None]
    with torch.no_grad():
        out = body_models.smpl(param["gender"])(global_orient=pose[:, :3], body_pose=pose[:, 3:],
                                                betas=torch.tensor(param["shape"])[None].float(),
                                                transl=torch.tensor(param["trans"])[None].float())  # fmt: skip
    return out.vertices[0].numpy().astype(np.float64)


@pytest.fixture(scope="module")
def pw3d(tmp_path_factory, synthetic_body_model_dir):
    models = tmp_path_factory.mktemp("human_model_files")
    for folder in ("smplx", "mano", "flame"):
        (models / folder).symlink_to(synthetic_body_model_dir / folder)
    (models / "smpl").mkdir()
    for pkl in (synthetic_body_model_dir / "smpl").iterdir():
        (models / "smpl" / pkl.name).symlink_to(pkl)
    np.save(models / SMPL_H36M_REGRESSOR, smpl_h36m_regressor(get_body_models(synthetic_body_model_dir)))

    root = tmp_path_factory.mktemp("pw3d")
    coco, params = empty_coco(), []
    root_pose = rotmat_to_axis_angle(torch.as_tensor(UPRIGHT)).tolist()  # upright, facing the camera
    for k, gender in enumerate(GENDERS):
        rng = np.random.default_rng(k)
        body_pose, shape = 0.1 * rng.standard_normal(69), 0.5 * rng.standard_normal(10)
        param = {
            "pose": [*root_pose, *body_pose],
            "shape": shape.tolist(),
            "trans": [0.05 * k, 0.3, 4.0],
            "gender": gender,
        }
        file_name = f"image_{k:05d}.jpg"
        cam_param = {"focal": list(FOCAL), "princpt": list(PRINCPT)}
        coco["images"].append({"id": k, "file_name": file_name, "sequence": SEQUENCE, "width": IMG_HW[1],
                               "height": IMG_HW[0], "cam_param": cam_param})  # fmt: skip
        coco["annotations"].append({"id": 50 + k, "image_id": k, "category_id": 1, "bbox": PERSON_BOX,
                                    "smpl_param": param})  # fmt: skip
        write_image(root / "imageFiles" / SEQUENCE / file_name, seed=k)
        params.append(param)
    write_json(root / "3DPW_test.json", coco)
    return root, make_cfg(models, {"PW3D": root}), params


def test_test_samples_have_no_smplx_targets_and_the_gt_smpl_mesh_is_gendered(pw3d):
    root, cfg, params = pw3d
    ds = PW3D("test", cfg)
    assert len(ds) == 2 and ds.records[1].img_path == root / "imageFiles" / SEQUENCE / "image_00001.jpg"
    sample = check_sample_contract(ds[0], sample_shapes(ds.space, ds.body_models.vertex_count, "test"))
    assert sample["smplx_mesh_valid"] == 0 and sample["smplx_pose_valid"].sum() == 0 and sample["is_3D"] == 0
    gt = ds.gt_smpl_mesh([1, 0])
    for row, k in enumerate((1, 0)):
        np.testing.assert_allclose(gt[row], smpl_mesh(ds.body_models, params[k]), atol=1e-6)


def test_evaluate_perfect_and_scaled_predictions(pw3d):
    _, cfg, params = pw3d
    ds = PW3D("test", cfg)
    smpl_regressor = np.load(Path(cfg.human_model_path) / SMPL_H36M_REGRESSOR)
    smplx_regressor = ds.body_models.h36m_regressor()
    layer = ds.body_models.smplx("neutral")
    perfect, gt_joints = [], []
    for k, param in enumerate(params):
        joints = smpl_regressor @ smpl_mesh(ds.body_models, param)  # (17, 3) GT H36M joints
        mesh = smplx_world_mesh(layer, smplx_world_fit(k, np.eye(3), layer, pelvis_cam=(0.0, 0.3, 4.0)))
        offsets = np.linalg.lstsq(smplx_regressor.astype(np.float64), joints - smplx_regressor @ mesh, rcond=None)[0]
        perfect.append(mesh + offsets)
        gt_joints.append(joints)
    result = ds.evaluate([{"smplx_mesh_cam": m} for m in perfect], [0, 1])
    assert set(result) == {"mpjpe", "pa_mpjpe"} and max(result["mpjpe"] + result["pa_mpjpe"]) < 0.01

    scale, pelvis = 0.9, H36M_JOINTS.index("Pelvis")
    scaled = [smplx_regressor[pelvis] @ m + scale * (m - smplx_regressor[pelvis] @ m) for m in perfect]
    result = ds.evaluate([{"smplx_mesh_cam": m} for m in scaled], [0, 1])
    eval_rows = [H36M_JOINTS.index(n) for n in H36M_EVAL_JOINTS]
    for k, joints in enumerate(gt_joints):
        expected = (1 - scale) * np.linalg.norm(joints[eval_rows] - joints[pelvis], axis=1).mean() * 1000
        assert result["mpjpe"][k] == pytest.approx(expected, rel=1e-3)
        assert result["pa_mpjpe"][k] < 0.01


def test_smpl_topology_predictions_get_the_vertex_metrics_too(pw3d):
    # The Pose2Pose body model predicts SMPL meshes: 3DPW's MPVPE/PA-MPVPE compare them vertex by vertex.
    _, cfg, params = pw3d
    ds = PW3D("test", cfg)
    gt = [smpl_mesh(ds.body_models, param) for param in params]
    result = ds.evaluate([{"smpl_mesh_cam": mesh + [0.5, -0.2, 1.0]} for mesh in gt], [0, 1])  # translation only
    assert set(result) == {"mpjpe", "pa_mpjpe", "mpvpe", "pa_mpvpe"}
    assert max(max(values) for values in result.values()) < 0.01
    pelvis = np.load(Path(cfg.human_model_path) / SMPL_H36M_REGRESSOR)[H36M_JOINTS.index("Pelvis")]
    shifted = [mesh.copy() for mesh in gt]
    for mesh in shifted:
        mesh[:100] += [0.0, 0.03, 0.0]  # 100 vertices 30 mm off; the pelvis moves with them by its weights
    result = ds.evaluate([{"smpl_mesh_cam": mesh} for mesh in shifted], [0, 1])
    for k, mesh in enumerate(shifted):
        moved = mesh - pelvis @ mesh - (gt[k] - pelvis @ gt[k])
        assert result["mpvpe"][k] == pytest.approx(np.linalg.norm(moved, axis=1).mean() * 1000, rel=1e-4)


def test_missing_smpl_regressor_and_train_split_only_for_the_body_model(pw3d, synthetic_body_model_dir, tmp_path):
    root, cfg, _ = pw3d
    (tmp_path / "3DPW_train.json").write_bytes((root / "3DPW_test.json").read_bytes())
    with pytest.raises(ValueError, match="split 'train' serves the SMPL body model only"):
        PW3D("train", make_cfg(cfg.human_model_path, {"PW3D": tmp_path}))  # the whole-body family
    ds = PW3D("test", make_cfg(synthetic_body_model_dir, {"PW3D": root}))
    with pytest.raises(MissingBodyModelFileError, match="J_regressor_h36m_smpl.npy") as err:
        ds.evaluate([{"smplx_mesh_cam": np.zeros((ds.body_models.vertex_count, 3))}], [0])
    assert err.value.filename == str(synthetic_body_model_dir / SMPL_H36M_REGRESSOR)
    assert "Hand4Whole_RELEASE" in str(err.value)  # where the file comes from
