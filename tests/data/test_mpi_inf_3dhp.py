"""MPI_INF_3DHP loader on a fixture in the parsed release's layout: frames 0, 2, 3 and 6 of subject 1, sequence 2,
camera 5 (every 3rd frame keeps 0, 3, 6); the fits file under the README's name MPI-INF-3DHP_SMPL_NeuralAnnot.json.
Joints are the fixture's own numbers (world mm), placed so that each projects to a chosen depth and pixel.
"""

from __future__ import annotations

import numpy as np
import pytest

from common.body_models import get_body_models
from common.body_models.joint_sets import JOINTS, ORIG_JOINTS
from common.utils.augmentation import NO_AUGMENTATION
from data.dataset import MissingAnnotationError, sample_shapes
from data.MPI_INF_3DHP import MPI_INF_3DHP
from tests.data.fixtures import (
    FOCAL,
    IMG_HW,
    PERSON_BOX,
    PRINCPT,
    check_sample_contract,
    empty_coco,
    expected_hm,
    make_cfg,
    rotation,
    smplx_world_fit,
    write_image,
    write_json,
)

CAM_R = rotation([-0.02, -0.5, 0.04])  # world -> camera
CAM_T_MM = np.array([-80.0, 30.0, 150.0])
SUBJECT, SEQ, CAM = 1, 2, 5
FRAMES = (0, 2, 3, 6)
NAMES = MPI_INF_3DHP.JOINT_NAMES


def joints_cam(frame: int) -> np.ndarray:
    """(17, 3) metres: joint k at pixel (20 + 1.5 k + frame, 10 + k) and depth 4 + 0.01 k."""
    k = np.arange(len(NAMES), dtype=np.float64)
    u, v, z = 20 + 1.5 * k + frame, 10 + k, 4.0 + 0.01 * k
    return np.stack([(u - PRINCPT[0]) / FOCAL[0] * z, (v - PRINCPT[1]) / FOCAL[1] * z, z], axis=1)


@pytest.fixture(scope="module")
def mpi(tmp_path_factory, synthetic_body_model_dir):
    root = tmp_path_factory.mktemp("mpi_inf_3dhp")
    layer = get_body_models(synthetic_body_model_dir).smplx("neutral")
    coco, joints, fits = empty_coco(), {}, {}
    for frame in FRAMES:
        name = f"frame_{CAM}_{frame:06d}.jpg"
        coco["images"].append({"id": frame, "file_name": name, "width": IMG_HW[1], "height": IMG_HW[0],
                               "subject_idx": SUBJECT, "seq_idx": SEQ, "frame_idx": frame, "cam_idx": CAM})  # fmt: skip
        coco["annotations"].append({"id": 100 + frame, "image_id": frame, "category_id": 1, "bbox": PERSON_BOX})
        write_image(root / "images_1k" / f"S{SUBJECT}" / f"Seq{SEQ}" / "imageSequence" / name, seed=frame)
        world_mm = (joints_cam(frame) * 1000 - CAM_T_MM) @ CAM_R  # inverse of X_cam = R X_world + t
        joints.setdefault(str(SUBJECT), {}).setdefault(str(SEQ), {})[str(frame)] = world_mm.tolist()
        fit = smplx_world_fit(frame, CAM_R, layer, pelvis_cam=tuple(np.array([0.0, 0.0, 4.0]) - CAM_T_MM / 1000))
        fits.setdefault(str(SUBJECT), {}).setdefault(str(SEQ), {})[str(frame)] = fit
    cameras = {str(SUBJECT): {str(SEQ): {str(CAM): {"R": CAM_R.tolist(), "t": CAM_T_MM.tolist(), "focal": list(FOCAL),
                                                    "princpt": list(PRINCPT)}}}}  # fmt: skip
    write_json(root / "MPI-INF-3DHP_1k.json", coco)
    write_json(root / "MPI-INF-3DHP_camera_1k.json", cameras)
    write_json(root / "MPI-INF-3DHP_joint_3d.json", joints)
    write_json(root / "MPI-INF-3DHP_SMPL_NeuralAnnot.json", fits)
    return root, make_cfg(synthetic_body_model_dir, {"MPI_INF_3DHP": root})


def test_every_3rd_frame_and_joints_where_the_fixture_put_them(mpi):
    root, cfg = mpi
    ds = MPI_INF_3DHP("train", cfg)
    assert [r.info["frame"] for r in ds.records] == [0, 3, 6]
    assert ds.records[1].img_path == root / "images_1k/S1/Seq2/imageSequence/frame_5_000003.jpg"
    sample = check_sample_contract(ds.get_sample(1, aug=NO_AUGMENTATION),
                                   sample_shapes(ds.space, ds.body_models.vertex_count, "train"))  # fmt: skip
    cam = joints_cam(3)
    pelvis = cam[NAMES.index("Pelvis")]
    mapped = [n for n in NAMES if n in JOINTS.names]
    assert len(mapped) == 14 and sample["joint_valid"][:, 0].sum() == 14  # Head_top, Torso, Head: no target joint
    for name in mapped:
        j, k = JOINTS.index(name), NAMES.index(name)
        np.testing.assert_allclose(sample["joint_img"][j, :2], expected_hm(20 + 1.5 * k + 3, 10 + k, (8, 6)), atol=1e-4)
        assert sample["joint_img"][j, 2] == pytest.approx(((cam[k, 2] - pelvis[2]) / 1.0 + 1) / 2 * 8, abs=1e-4)
        np.testing.assert_allclose(sample["joint_cam"][j], cam[k] - pelvis, atol=1e-5)
    assert sample["is_3D"] == 1.0 and sample["smplx_shape_valid"] == 1.0
    pose_valid = sample["smplx_pose_valid"].reshape(-1, 3)[:, 0]
    assert pose_valid[ORIG_JOINTS.index("L_Wrist")] == 0.0 and pose_valid.sum() == len(ORIG_JOINTS) - 4
    np.testing.assert_allclose(sample["smplx_joint_cam"][JOINTS.index("Pelvis")], 0.0, atol=1e-6)


def test_train_only_and_missing_files_name_the_path(mpi, tmp_path):
    root, cfg = mpi
    with pytest.raises(ValueError, match="unknown split 'test'"):
        MPI_INF_3DHP("test", cfg)
    with pytest.raises(MissingAnnotationError) as err:
        MPI_INF_3DHP("train", make_cfg(cfg.human_model_path, {"MPI_INF_3DHP": tmp_path}))
    assert str(tmp_path / "MPI-INF-3DHP_1k.json") in str(err.value) and MPI_INF_3DHP.DOWNLOAD_PAGE in str(err.value)
    for name in ("MPI-INF-3DHP_1k.json", "MPI-INF-3DHP_camera_1k.json", "MPI-INF-3DHP_joint_3d.json"):
        (tmp_path / name).write_bytes((root / name).read_bytes())
    with pytest.raises(MissingAnnotationError, match="MPI-INF-3DHP_SMPLX_NeuralAnnot.json"):
        MPI_INF_3DHP("train", make_cfg(cfg.human_model_path, {"MPI_INF_3DHP": tmp_path}))
