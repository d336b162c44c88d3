"""EHF loader on a fixture in the release's layout: EHF.json, two 64x48 images NN_img.png and their GT meshes
NN_align.ply, each a stand-in SMPL-X mesh posed 4 m in front of the camera and stored in EHF's capture frame
(rotated back by the inverse of the fixed camera rotation), as the real files are.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from common.body_models import get_body_models
from common.utils.image_io import ImageReadError
from data.dataset import MissingAnnotationError, sample_shapes
from data.EHF import EHF
from data.EHF.EHF import EHF_WORLD_TO_CAMERA_AXIS_ANGLE
from tests.data.fixtures import (
    CROP_BOX,
    IMG_HW,
    PERSON_BOX,
    check_sample_contract,
    empty_coco,
    expected_hm,
    make_cfg,
    rotation,
    smplx_world_fit,
    smplx_world_mesh,
    write_image,
    write_json,
)

LHAND_BOX, RHAND_BOX, FACE_BOX = [38.0, 24.0, 6.0, 5.0], [18.0, 25.0, 5.0, 6.0], [28.0, 6.0, 6.0, 7.0]  # xywh


@pytest.fixture(scope="module")
def ehf(tmp_path_factory, synthetic_body_model_dir):
    root = tmp_path_factory.mktemp("ehf")
    body_models = get_body_models(synthetic_body_model_dir)
    world_to_camera = rotation(EHF_WORLD_TO_CAMERA_AXIS_ANGLE)
    coco, meshes_cam = empty_coco(), []
    for k in (1, 2):
        coco["images"].append({"id": k, "file_name": f"{k:02d}_img.png", "width": IMG_HW[1], "height": IMG_HW[0]})
        boxes = {
            "body_bbox": PERSON_BOX,
            "lefthand_bbox": LHAND_BOX,
            "righthand_bbox": RHAND_BOX,
            "face_bbox": FACE_BOX,
        }
        coco["annotations"].append({"id": 10 + k, "image_id": k, "category_id": 1, **boxes})
        write_image(root / f"{k:02d}_img.png", seed=k)
        layer = body_models.smplx("neutral")
        mesh_cam = smplx_world_mesh(layer, smplx_world_fit(k, np.eye(3), layer, pelvis_cam=(0.0, 0.1, 4.0)))
        mesh_world = mesh_cam @ world_to_camera  # (R^T X^T)^T: the capture frame the .ply files use
        trimesh.Trimesh(mesh_world, body_models.faces, process=False).export(root / f"{k:02d}_align.ply")
        meshes_cam.append(mesh_cam)
    write_json(root / "EHF.json", coco)
    return root, make_cfg(synthetic_body_model_dir, {"EHF": root}), meshes_cam


def test_samples_carry_boxes_and_the_gt_mesh_in_the_camera_frame(ehf):
    root, cfg, meshes_cam = ehf
    ds = EHF("test", cfg)
    assert len(ds) == 2 and ds.records[1].img_path == root / "02_img.png"
    sample = check_sample_contract(ds[1], sample_shapes(ds.space, ds.body_models.vertex_count, "test"))
    assert sample["smplx_mesh_valid"] == 1.0
    np.testing.assert_allclose(sample["smplx_mesh_cam"], meshes_cam[1], atol=1e-5)
    for part, (x, y, w, h) in (("lhand", LHAND_BOX), ("rhand", RHAND_BOX), ("face", FACE_BOX)):
        assert sample[f"{part}_bbox_valid"] == 1.0
        np.testing.assert_allclose(sample[f"{part}_bbox_center"], expected_hm(x + w / 2, y + h / 2, (8, 6)), atol=1e-4)
        size_hm = np.array([w / CROP_BOX[2] * 6, h / CROP_BOX[3] * 8])
        np.testing.assert_allclose(sample[f"{part}_bbox_size"], size_hm, atol=1e-4)
    # no parameters or joints are annotated: every other label is masked
    assert sample["joint_valid"].sum() == 0 and sample["smplx_joint_valid"].sum() == 0
    assert sample["smplx_pose_valid"].sum() == 0 and sample["smplx_shape_valid"] == 0 and sample["is_3D"] == 0


def test_evaluate_perfect_shifted_and_scaled_predictions(ehf):
    _, cfg, meshes_cam = ehf
    ds = EHF("test", cfg)

    def run(preds):
        outs = [{"smplx_mesh_cam": p.astype(np.float32), "smplx_mesh_cam_target": g.astype(np.float32),
                 "smplx_mesh_valid": np.float32(1)} for p, g in zip(preds, meshes_cam, strict=True)]  # fmt: skip
        return ds.evaluate(outs, [0, 1])

    keys = {"mpvpe_all", "mpvpe_hand", "mpvpe_face", "pa_mpvpe_all", "pa_mpvpe_hand", "pa_mpvpe_face",
            "pa_mpjpe_body", "pa_mpjpe_hand"}  # fmt: skip
    perfect = run(meshes_cam)
    assert set(perfect) == keys and all(len(v) == 2 and max(v) < 0.01 for v in perfect.values())
    shifted = run([m + np.array([0.2, -0.1, 0.5]) for m in meshes_cam])
    assert all(max(v) < 0.01 for v in shifted.values())  # every metric aligns a root joint or a similarity first

    scale = 1.05  # about the GT pelvis: each vertex moves by 5 % of its distance from the pelvis
    pelvis = [ds.body_models.smplx_joint_regressor()[0] @ m for m in meshes_cam]
    scaled = run([p + scale * (m - p) for p, m in zip(pelvis, meshes_cam, strict=True)])
    for k, (p, m) in enumerate(zip(pelvis, meshes_cam, strict=True)):
        expected = (scale - 1) * np.linalg.norm(m - p, axis=1).mean() * 1000
        assert scaled["mpvpe_all"][k] == pytest.approx(expected, rel=1e-3)
    assert all(max(scaled[k]) < 0.01 for k in keys if k.startswith("pa_"))


def test_test_split_only_and_missing_files_name_the_path(ehf, tmp_path):
    root, cfg, _ = ehf
    with pytest.raises(ValueError, match="unknown split 'train'"):
        EHF("train", cfg)
    with pytest.raises(MissingAnnotationError) as err:
        EHF("test", make_cfg(cfg.human_model_path, {"EHF": tmp_path}))
    assert str(tmp_path / "EHF.json") in str(err.value) and EHF.DOWNLOAD_PAGE in str(err.value)
    (tmp_path / "EHF.json").write_bytes((root / "EHF.json").read_bytes())
    write_image(tmp_path / "01_img.png")
    ds = EHF("test", make_cfg(cfg.human_model_path, {"EHF": tmp_path}))
    with pytest.raises(FileNotFoundError, match="01_align.ply"):
        ds[0]
    with pytest.raises(ImageReadError, match="02_img.png"):
        ds[1]
