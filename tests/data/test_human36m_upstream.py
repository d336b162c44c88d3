"""Human3.6M in the upstream Integral layout (data/s_XX_act_XX_subact_XX_ca_XX/h36m_meta.mat + jpg frames).

The fixture is written here with scipy.io.savemat, independently of the reader: each video's joints are first made
in the camera frame (mm, ~4 m in front), their pixels computed from them with f, c, and only then moved to the world
frame with the inverse of ``X_cam = R (X_world - T)`` (``X_world = R^T X_cam + T``) for the file. Videos:

    s_01_act_02_subact_01_ca_01   12 frames    train: 0, 5, 10
    s_09_act_03_subact_02_ca_02   130 frames   test (protocol #2): 0, 64, 128; train (protocol #1): every 5th
    s_11_act_02_subact_01_ca_01   65 frames    test: 0, 64
    s_11_act_02_subact_02_ca_01   3 frames     the corrupt video: skipped
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.io

from common.body_models import get_body_models
from common.utils.augmentation import NO_AUGMENTATION
from common.utils.metrics import H36M_JOINTS
from data.dataset import sample_shapes
from data.fits import fit_model
from data.Human36M import Human36M, upstream
from data.targets import make_targets
from tests.data.fixtures import check_sample_contract, make_cfg, rotation

IMG_HW = (120, 160)
F, C = np.array([110.0, 105.0]), np.array([81.0, 59.5])
VIDEOS = {  # name -> (frames, R world -> camera, T camera centre mm, T's stored shape)
    "s_01_act_02_subact_01_ca_01": (12, rotation([0.1, 0.6, -0.05]), np.array([1500.0, -300.0, 1200.0]), (1, 3)),
    "s_09_act_03_subact_02_ca_02": (130, rotation([-0.2, -1.1, 0.1]), np.array([-2000.0, 800.0, 1400.0]), (3, 1)),
    "s_11_act_02_subact_01_ca_01": (65, rotation([0.05, 2.0, 0.0]), np.array([300.0, 2500.0, 1100.0]), (3,)),
    "s_11_act_02_subact_02_ca_01": (3, np.eye(3), np.zeros(3), (3,)),
}


def _camera_joints(rng: np.random.Generator, num: int) -> np.ndarray:
    """(num, 17, 3) mm in the camera frame: a pelvis ~4 m in front and joints within 0.5 m of it."""
    pelvis = np.array([0.0, 100.0, 4000.0]) + rng.uniform(-200, 200, (num, 1, 3))
    return pelvis + np.concatenate([np.zeros((num, 1, 3)), rng.uniform(-500, 500, (num, 16, 3))], axis=1)


@pytest.fixture(scope="module")
def h36m_upstream(tmp_path_factory):
    root = tmp_path_factory.mktemp("h36m_upstream")
    rng = np.random.default_rng(0)
    facts = {}
    for name, (num, R, T, t_shape) in VIDEOS.items():
        folder = root / "data" / name
        folder.mkdir(parents=True)
        joints_cam_mm = _camera_joints(rng, num)
        pixels = joints_cam_mm[..., :2] / joints_cam_mm[..., 2:] * F + C  # (N, 17, 2), computed before any R, T
        joints_world_mm = joints_cam_mm @ R + T  # row form of R^T X_cam + T
        scipy.io.savemat(str(folder / "h36m_meta.mat"), {
            "pose3d_world": joints_world_mm, "R": R, "T": T.reshape(t_shape), "f": F.reshape(1, 2),
            "c": C.reshape(1, 2), "img_width": np.full((num, 1), IMG_HW[1]), "img_height": np.full((num, 1), IMG_HW[0]),
        })  # fmt: skip
        for n in range(num):
            image = rng.integers(0, 256, (*IMG_HW, 3), dtype=np.uint8)
            assert cv2.imwrite(str(folder / f"{name}_{n + 1:06d}.jpg"), image)
        facts[name] = {"joints_cam_m": joints_cam_mm / 1000.0, "pixels": pixels}
    (root / "data" / "not_a_video").mkdir()  # ignored: not s_XX_act_XX_subact_XX_ca_XX
    return root, facts


@pytest.fixture(scope="module")
def cfg(h36m_upstream, synthetic_body_model_dir):
    return make_cfg(synthetic_body_model_dir, {"Human36M": h36m_upstream[0]})


def _keys(records):
    return [(r.info["subject"], r.info["action"], r.info["subaction"], r.info["camera"], r.info["frame"])
            for r in records]  # fmt: skip


def test_reader_projects_the_gt_joints_onto_the_pixels_computed_independently(h36m_upstream):
    root, facts = h36m_upstream
    records = upstream.upstream_records(root, (9,), step=64)
    assert _keys(records) == [(9, 3, 2, 2, 0), (9, 3, 2, 2, 64), (9, 3, 2, 2, 128)]
    for record in records:
        fact, frame = facts[record.info["video"]], record.info["frame"]
        assert record.joints_xy_img.shape == (18, 2) and record.joints_cam.shape == (18, 3)
        np.testing.assert_allclose(record.joints_xy_img[:17], fact["pixels"][frame], atol=1.0)  # within 1 px
        np.testing.assert_allclose(record.joints_xy_img[:17], fact["pixels"][frame], atol=1e-6)  # in fact exact
        np.testing.assert_allclose(record.joints_cam[:17], fact["joints_cam_m"][frame], atol=1e-9)
        # the record's camera (R, t = -R T in metres) agrees with the joints it carries
        world_m = (record.joints_cam[:17] - record.cam.t) @ record.cam.R
        np.testing.assert_allclose(world_m @ record.cam.R.T + record.cam.t, record.joints_cam[:17], atol=1e-12)
        np.testing.assert_allclose(record.cam.focal, F) and np.testing.assert_allclose(record.cam.princpt, C)
        assert record.is_3D and record.joints_valid.all() and record.img_hw == IMG_HW
        assert record.img_path == root / "data" / "s_09_act_03_subact_02_ca_02" / (
            f"s_09_act_03_subact_02_ca_02_{frame + 1:06d}.jpg")  # fmt: skip
        assert record.img_path.is_file()
        assert record.info["action_name"] == "Discussion"


def test_thorax_is_the_mean_of_the_shoulders(h36m_upstream):
    root, _ = h36m_upstream
    record = upstream.upstream_records(root, (1,), step=5)[1]
    assert upstream.UPSTREAM_JOINTS[-1] == "Thorax" and upstream.UPSTREAM_JOINTS[:17] == H36M_JOINTS
    shoulders = record.joints_cam[[H36M_JOINTS.index("L_Shoulder"), H36M_JOINTS.index("R_Shoulder")]]
    np.testing.assert_allclose(record.joints_cam[17], shoulders.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(record.joints_xy_img[17], record.cam.project(record.joints_cam[17:])[0], atol=1e-9)


def test_box_holds_the_projected_joints(h36m_upstream):
    root, _ = h36m_upstream
    for record in upstream.upstream_records(root, (1, 9, 11), step=5):
        x, y, w, h = record.bbox_xywh_img
        xy = record.joints_xy_img
        assert (xy >= [x, y]).all() and (xy <= [x + w, y + h]).all()


def test_corrupt_video_and_foreign_folders_are_skipped(h36m_upstream):
    root, _ = h36m_upstream
    names = [v.name for v in upstream.list_videos(root, (1, 5, 6, 7, 8, 9, 11))]
    assert names == ["s_01_act_02_subact_01_ca_01", "s_09_act_03_subact_02_ca_02", "s_11_act_02_subact_01_ca_01"]
    assert "s_11_act_02_subact_02_ca_01" in upstream.CORRUPT_VIDEOS
    assert len(upstream.list_videos(root, (11,), skip=())) == 2


def test_read_meta_accepts_the_stored_shapes_and_names_a_missing_key(h36m_upstream, tmp_path):
    root, _ = h36m_upstream
    meta = upstream.read_meta(root / "data" / "s_09_act_03_subact_02_ca_02" / "h36m_meta.mat")  # T stored (3, 1)
    np.testing.assert_allclose(meta.T, VIDEOS["s_09_act_03_subact_02_ca_02"][2])
    assert meta.joints_world_mm.shape == (130, 17, 3) and meta.img_hw.shape == (130, 2)
    no_t = {"pose3d_world": np.zeros((2, 17, 3)), "R": np.eye(3), "f": F, "c": C, "img_width": 160, "img_height": 120}
    scipy.io.savemat(str(tmp_path / "h36m_meta.mat"), no_t)
    with pytest.raises(upstream.AnnotationError, match="'T'"):
        upstream.read_meta(tmp_path / "h36m_meta.mat")


def test_dataset_reads_the_upstream_layout_with_both_protocols(h36m_upstream, cfg):
    root, _ = h36m_upstream
    train = Human36M("train", cfg)
    assert train.layout == "upstream" and train.JOINT_NAMES == upstream.UPSTREAM_JOINTS
    assert _keys(train.records) == [(1, 2, 1, 1, 0), (1, 2, 1, 1, 5), (1, 2, 1, 1, 10)]
    test = Human36M("test", cfg)  # protocol #2: S9 and S11, all cameras, every 64th frame
    assert _keys(test.records) == [(9, 3, 2, 2, 0), (9, 3, 2, 2, 64), (9, 3, 2, 2, 128), (11, 2, 1, 1, 0),
                                   (11, 2, 1, 1, 64)]  # fmt: skip

    class Protocol1(Human36M):
        PROTOCOL = 1

    train1, test1 = Protocol1("train", cfg), Protocol1("test", cfg)
    assert [k for k in _keys(train1.records) if k[0] == 9] == [(9, 3, 2, 2, n) for n in range(0, 130, 5)]
    assert _keys(test1.records) == [(11, 2, 1, 1, 0), (11, 2, 1, 1, 64)]


def test_upstream_samples_go_through_the_pipeline(cfg):
    ds = Human36M("train", cfg)
    sample = check_sample_contract(ds.get_sample(0, aug=NO_AUGMENTATION),
                                   sample_shapes(ds.space, ds.body_models.vertex_count, "train"))  # fmt: skip
    assert sample["is_3D"] == 1.0


def test_json_layout_forced_and_no_fits_needed_for_a_family_that_reads_none(h36m_upstream, cfg):
    class JsonOnly(Human36M):
        LAYOUT = "json"

    with pytest.raises(FileNotFoundError, match="Human36M_subject1_data.json"):
        JsonOnly("train", cfg)
    targets = make_targets(cfg, get_body_models(cfg.human_model_path))
    assert fit_model(targets) == "smplx"
    targets.fits = None  # what a skeleton family's target builder declares
    assert fit_model(targets) is None
    ds = Human36M("train", cfg, targets=targets)
    assert len(ds) == 3 and all(r.smplx is None and r.smpl is None for r in ds.records)
