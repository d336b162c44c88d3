"""Multi-view readers (data/multiview.py, Human36MMultiView, CMUPanoptic) against fixtures written from the layouts'
specifications (tests/data/multiview_fixtures.py: numpy, json, cv2.projectPoints), and the synthetic writers read back.

The oracles: OpenCV's projection of the fixture joints mapped into the crop by cv2.resize's pixel-centre rule; the
dot each fixture image has at the pelvis, found again in the crops; numpy's MPJPE of seeded predictions.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from common.body_models.pickle_io import load_npy, load_pickle
from common.engine.cli import run_cli
from common.geometry.multiview_camera import Camera
from common.utils.h36m_protocols import parse_action_tables
from data import build_dataset
from data.CMUPanoptic import CMUPanoptic
from data.Human36MMultiView import Human36MMultiView
from data.multiview import collate_multiview
from data.record import AnnotationError, MissingAnnotationError
from main.config import ConfigError, load_config
from tests.common.hostile_payloads import ShellOnLoad, TouchOnLoad
from tests.data.multiview_fixtures import (
    BACKGROUND,
    CMU_DIST,
    CMU_DOT_JOINT,
    CMU_HD,
    H36M_DIST,
    H36M_PELVIS,
    CMUFixture,
    H36MFixture,
    write_cmu,
    write_h36m,
)
from tests.data.multiview_fixtures import project as cv2_points

OUT_HW = (96, 96)
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def make_cfg(tmp_path: Path, roots: dict[str, Path], *overrides: str):
    mapping = json.dumps({name: str(path) for name, path in roots.items()})
    return load_config(None, [f"data.dataset_roots={mapping}", f"output_dir={tmp_path / 'out'}",
                              f"multiview.image_shape=[{OUT_HW[0]},{OUT_HW[1]}]", *overrides])  # fmt: skip


@pytest.fixture(scope="module")
def h36m(tmp_path_factory: pytest.TempPathFactory) -> H36MFixture:
    return write_h36m(tmp_path_factory.mktemp("h36m_multiview"))


@pytest.fixture(scope="module")
def cmu(tmp_path_factory: pytest.TempPathFactory) -> CMUFixture:
    return write_cmu(tmp_path_factory.mktemp("cmu"), {"seqA": (5, 6, 7), "seqB": (0, 1, 2)})


def camera_of(meta: dict, view: int) -> Camera:
    """The sample's camera of one view, from the meta_info tensors."""
    return Camera(*(meta[key][view].double().numpy() for key in ("camera_R", "camera_t", "camera_K", "camera_dist")))


def into_crop(points_px: np.ndarray, box_xyxy: np.ndarray) -> np.ndarray:
    """Image pixels -> crop pixels, for a box cut out and resized to OUT_HW by cv2.resize (u' = (u + .5) s - .5)."""
    scale = np.array([OUT_HW[1] / (box_xyxy[2] - box_xyxy[0]), OUT_HW[0] / (box_xyxy[3] - box_xyxy[1])])
    return (points_px - box_xyxy[:2] + 0.5) * scale - 0.5


def dot_centre(image_chw: torch.Tensor) -> np.ndarray:
    """(x, y) of the bright dot in a normalised crop: the weighted centroid of what exceeds the grey background."""
    grey = (image_chw[0].numpy() * STD[0] + MEAN[0]) * 255.0
    excess = np.clip(grey - BACKGROUND - 4.0, 0.0, None)
    y, x = np.unravel_index(np.argmax(excess), excess.shape)
    window = np.zeros_like(excess)
    window[max(y - 6, 0) : y + 7, max(x - 6, 0) : x + 7] = excess[max(y - 6, 0) : y + 7, max(x - 6, 0) : x + 7]
    rows, cols = np.mgrid[0 : excess.shape[0], 0 : excess.shape[1]]
    return np.array([(window * cols).sum(), (window * rows).sum()]) / window.sum()


# --- Human3.6M multi-view -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("undistort", [True, False])
def test_h36m_cameras_project_joints_where_the_crops_show_them(h36m: H36MFixture, tmp_path: Path, undistort: bool):
    cfg = make_cfg(tmp_path, {"Human36MMultiView": h36m.root}, f"multiview.undistort_images={str(undistort).lower()}")
    dataset = Human36MMultiView("test", cfg, evaluation=True)
    checked, lens_px = 0, 0.0
    for index in range(len(dataset)):
        inputs, targets, meta = dataset[index]
        row = int(meta["frame_index"])
        joints = h36m.joints_mm[row]
        torch.testing.assert_close(targets["joints_world_mm"], torch.from_numpy(joints).float())
        for view in range(4):
            if (row, view) not in h36m.points_2d:  # S11 Directions-2 has no 54138969 images
                assert not inputs["view_mask"][view] and not inputs["images"][view].any()
                assert not meta["proj_matrices"][view].any()
                continue
            assert inputs["view_mask"][view]
            distorted, undistorted = h36m.points_2d[(row, view)]
            lens_px = max(lens_px, np.abs(distorted - undistorted).max())
            camera = camera_of(meta, view)
            expected = into_crop(undistorted if undistort else distorted, meta["bbox_xyxy_img"][view].double().numpy())
            np.testing.assert_allclose(camera.project(joints), expected, atol=1.0)
            np.testing.assert_allclose(dot_centre(inputs["images"][view]), camera.project(joints[H36M_PELVIS]),
                                       atol=1.0)  # fmt: skip
            dist = meta["camera_dist"][view].numpy()
            np.testing.assert_allclose(dist, 0.0 if undistort else H36M_DIST * (1.0 + 0.1 * view), rtol=1e-5)
            # The projection matrix is the pinhole projection of the same camera.
            homogeneous = np.concatenate([joints, np.ones((17, 1))], 1) @ meta["proj_matrices"][view].double().numpy().T
            np.testing.assert_allclose(homogeneous[:, :2] / homogeneous[:, 2:], camera.project(joints, distort=False),
                                       atol=0.05)  # fmt: skip
            checked += 1
    assert lens_px > 2.0  # the fixture's lens moves joints by more than the tolerance
    assert checked == sum(1 for (row, _) in h36m.points_2d if h36m.subjects[row] in ("S9", "S11"))


def test_h36m_boxes_are_square_and_scaled(h36m: H36MFixture, tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, {"Human36MMultiView": h36m.root}, "multiview.scale_bbox=1.25")
    dataset = Human36MMultiView("train", cfg)
    for index in range(len(dataset)):
        _, _, meta = dataset[index]
        row = int(meta["frame_index"])
        for view, (top, left, bottom, right) in enumerate(h36m.boxes_tlbr[row].astype(float)):
            left_c, top_c, right_c, bottom_c = meta["bbox_xyxy_img"][view].tolist()
            side = int(1.25 * max(bottom - top, right - left))
            assert right_c - left_c == bottom_c - top_c == side
            assert abs((left_c + right_c) / 2 - (left + right) / 2) <= 1.0
            assert abs((top_c + bottom_c) / 2 - (top + bottom) / 2) <= 1.0


@pytest.mark.parametrize(("damaged", "every"), [(True, 1), (False, 1), (False, 2), (True, 3)])
def test_h36m_splits_damaged_actions_and_subsampling(h36m: H36MFixture, tmp_path: Path, damaged: bool, every: int):
    cfg = make_cfg(tmp_path, {"Human36MMultiView": h36m.root}, f"multiview.with_damaged_actions={str(damaged).lower()}",
                   f"multiview.retain_every_n_frames_in_test={every}")  # fmt: skip
    rows = np.arange(len(h36m.subjects))
    subjects, actions = np.array(h36m.subjects), np.array(h36m.actions)
    is_damaged = (subjects == "S9") & np.isin(actions, ["Greeting-2", "SittingDown-2", "Waiting-1"])
    expected_test = rows[np.isin(subjects, ["S9", "S11"]) & (damaged | ~is_damaged)][::every]
    test = build_dataset("Human36MMultiView", "test", cfg, evaluation=True)
    train = build_dataset("Human36MMultiView", "train", cfg)
    assert [int(test[i][2]["frame_index"]) for i in range(len(test))] == expected_test.tolist()
    assert [int(train[i][2]["frame_index"]) for i in range(len(train))] == rows[subjects == "S1"].tolist()


@pytest.mark.parametrize("payload", [TouchOnLoad, ShellOnLoad])
def test_h36m_refuses_a_hostile_labels_file(tmp_path: Path, payload: type) -> None:
    marker = tmp_path / "pwned"
    labels = tmp_path / "root" / "extra" / "human36m-multiview-labels-GTbboxes.npy"
    labels.parent.mkdir(parents=True)
    np.save(labels, {"subject_names": ["S1"], "table": payload(marker)}, allow_pickle=True)
    cfg = make_cfg(tmp_path, {"Human36MMultiView": tmp_path / "root"})
    with pytest.raises(AnnotationError, match="refused to unpickle") as err:
        Human36MMultiView("train", cfg)
    assert str(labels) in str(err.value)
    assert not marker.exists()


def test_h36m_missing_or_malformed_labels_name_the_file(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, {"Human36MMultiView": tmp_path / "root"})
    with pytest.raises(MissingAnnotationError) as missing:
        Human36MMultiView("test", cfg)
    assert Path(missing.value.filename).is_relative_to(tmp_path / "root")
    labels = tmp_path / "root" / "extra" / "human36m-multiview-labels-GTbboxes.npy"
    labels.parent.mkdir(parents=True)
    np.save(labels, {"subject_names": ["S1"], "camera_names": [], "action_names": []}, allow_pickle=True)
    with pytest.raises(AnnotationError, match="keys") as err:
        Human36MMultiView("test", cfg)
    assert str(labels) in str(err.value)


@pytest.mark.parametrize("key", ["camera_names", "action_names"])
def test_h36m_names_that_would_leave_the_root_are_refused(h36m: H36MFixture, tmp_path: Path, key: str) -> None:
    """Camera and action names become folders of the image paths: '../..' in one is an error naming the file."""
    from common.body_models.pickle_io import load_npy

    labels = load_npy(h36m.labels_path)[()]
    labels[key] = ["../../outside", *labels[key][1:]]
    root = tmp_path / "hostile"
    path = root / "extra" / h36m.labels_path.name
    path.parent.mkdir(parents=True)
    np.save(path, labels, allow_pickle=True)
    with pytest.raises(AnnotationError, match=f"{key}.*not plain folder names") as err:
        Human36MMultiView("test", make_cfg(tmp_path, {"Human36MMultiView": root}))
    assert str(path) in str(err.value)


def test_collate_pads_views_with_masked_zeros(h36m: H36MFixture, tmp_path: Path) -> None:
    dataset = Human36MMultiView("test", make_cfg(tmp_path, {"Human36MMultiView": h36m.root}), evaluation=True)
    full = dataset[0]
    inputs, targets, meta = dataset[1]
    keep = slice(1, 3)  # a two-view sample, as a random view subset makes
    short = ({k: v[keep] for k, v in inputs.items()}, targets,
             {k: v[keep] if v.ndim and v.shape[0] == 4 else v for k, v in meta.items()})  # fmt: skip
    batch_inputs, batch_targets, batch_meta = collate_multiview([full, short])
    assert batch_inputs["images"].shape == (2, 4, 3, *OUT_HW)
    assert batch_inputs["view_mask"].tolist() == [full[0]["view_mask"].tolist(), [True, True, False, False]]
    for key in ("images",):
        torch.testing.assert_close(batch_inputs[key][0], full[0][key])
        assert not batch_inputs[key][1, 2:].any()
    for key in ("proj_matrices", "camera_K", "camera_R", "camera_t", "camera_dist", "bbox_xyxy_img"):
        assert batch_meta[key].shape[:2] == (2, 4)
        torch.testing.assert_close(batch_meta[key][1, :2], short[2][key])
        assert not batch_meta[key][1, 2:].any()
    assert batch_meta["frame_index"].tolist() == [int(full[2]["frame_index"]), int(meta["frame_index"])]
    assert batch_targets["joints_world_mm"].shape == (2, 17, 3)


def test_training_draws_seeded_view_subsets(h36m: H36MFixture, tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, {"Human36MMultiView": h36m.root}, "multiview.min_views=2", "multiview.max_views=3")
    train, full = Human36MMultiView("train", cfg), Human36MMultiView("train", cfg, evaluation=True)
    counts = set()
    for epoch in range(4):
        train.set_epoch(epoch)
        for index in range(len(train)):
            inputs, _, meta = train[index]
            assert 2 <= len(inputs["view_mask"]) <= 3 and inputs["view_mask"].all()
            all_proj = full[index][2]["proj_matrices"]
            assert all(any(torch.equal(p, q) for q in all_proj) for p in meta["proj_matrices"])  # a subset
            torch.testing.assert_close(train[index][2]["proj_matrices"], meta["proj_matrices"])  # seeded
            counts.add(len(inputs["view_mask"]))
    assert counts == {2, 3}
    assert len(full[0][0]["view_mask"]) == 4  # evaluation keeps every view


# --- pelvis results, evaluation and result files --------------------------------------------------------------------
def write_pickle(path: Path, keypoints: np.ndarray, indexes: np.ndarray, dataset: str) -> Path:
    with open(path, "wb") as f:
        pickle.dump({"keypoints_3d": keypoints.astype(np.float32), "indexes": indexes.astype(np.int64),
                     "dataset": dataset}, f)  # fmt: skip
    return path


def test_pelvis_results_place_the_cuboid_and_must_cover_every_frame(h36m: H36MFixture, tmp_path: Path) -> None:
    test_rows = np.flatnonzero(np.isin(h36m.subjects, ["S9", "S11"]))
    predicted = h36m.joints_mm[test_rows] + np.random.default_rng(3).normal(0, 30, (len(test_rows), 17, 3))
    good = write_pickle(tmp_path / "good.pkl", predicted, test_rows, "Human36MMultiView")
    cfg = make_cfg(tmp_path, {"Human36MMultiView": h36m.root}, f"multiview.pelvis_results_test={good}")
    dataset = Human36MMultiView("test", cfg, evaluation=True)
    for index in range(len(dataset)):
        meta = dataset[index][2]
        position = test_rows.tolist().index(int(meta["frame_index"]))
        np.testing.assert_allclose(meta["cuboid_center_world_mm"], predicted[position, H36M_PELVIS], atol=1e-3)
    gt_cfg = make_cfg(tmp_path, {"Human36MMultiView": h36m.root})
    meta = Human36MMultiView("test", gt_cfg, evaluation=True)[0][2]
    np.testing.assert_allclose(meta["cuboid_center_world_mm"], h36m.joints_mm[int(meta["frame_index"]), H36M_PELVIS])
    short = write_pickle(tmp_path / "short.pkl", predicted[1:], test_rows[1:], "Human36MMultiView")
    cfg = make_cfg(tmp_path, {"Human36MMultiView": h36m.root}, f"multiview.pelvis_results_test={short}")
    with pytest.raises(AnnotationError) as err:
        Human36MMultiView("test", cfg, evaluation=True)
    assert str(short) in str(err.value) and str(h36m.labels_path) in str(err.value)
    assert f"frame index {test_rows[0]}" in str(err.value)
    other = write_pickle(tmp_path / "other.pkl", predicted, test_rows, "CMUPanoptic")
    cfg = make_cfg(tmp_path, {"Human36MMultiView": h36m.root}, f"multiview.pelvis_results_test={other}")
    with pytest.raises(AnnotationError, match="CMUPanoptic"):
        Human36MMultiView("test", cfg, evaluation=True)


def test_evaluate_and_report_match_numpy(h36m: H36MFixture, tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, {"Human36MMultiView": h36m.root})
    dataset = Human36MMultiView("test", cfg, evaluation=True)
    rng = np.random.default_rng(7)
    frames = np.array([int(dataset[i][2]["frame_index"]) for i in range(len(dataset))])
    gt = h36m.joints_mm[frames]
    pred = (gt + rng.normal(0.0, 40.0, gt.shape) + rng.normal(0.0, 60.0, (len(gt), 1, 3))).astype(np.float32)
    # As the tester hands them over: float32 numpy per sample, the ground truth named by eval_extras.
    outs = [{"joints_world_mm": pred[i], "joints_world_mm_target": gt[i].astype(np.float32),
             "joints_valid": np.ones(17, np.float32), "frame_index": np.float32(frames[i])}
            for i in range(len(gt))]  # fmt: skip
    assert [name for _, _, name in dataset.eval_extras] == ["joints_world_mm_target", "joints_valid", "frame_index"]
    result: dict[str, list[float]] = {}
    for batch in (range(0, 3), range(3, len(outs))):
        for key, values in dataset.evaluate([outs[i] for i in batch], list(batch)).items():
            result.setdefault(key, []).extend(values)
    p, g = pred.astype(np.float64), gt
    absolute = np.linalg.norm(p - g, axis=-1).mean(-1)
    relative = np.linalg.norm((p - p[:, 6:7]) - (g - g[:, 6:7]), axis=-1).mean(-1)
    np.testing.assert_allclose(result["mpjpe_absolute"], absolute, rtol=1e-5)
    np.testing.assert_allclose(result["mpjpe_relative"], relative, rtol=1e-5)
    text, json_path = dataset.report(result, cfg.output_dir)
    metrics = json.loads(Path(json_path).read_text())["metrics"]
    assert metrics["mpjpe_relative"] == pytest.approx(relative.mean()) and metrics["mpjpe_absolute"] == pytest.approx(
        absolute.mean()
    )
    tables = parse_action_tables(text[text.index("# ") :])
    merged = np.array([a.rsplit("-", 1)[0] for a in np.array(h36m.actions)[frames]])
    for action in set(merged):
        assert tables["MPJPE_relative"][action] == pytest.approx(relative[merged == action].mean(), abs=0.006)
        assert tables["MPJPE_absolute"][action] == pytest.approx(absolute[merged == action].mean(), abs=0.006)
    assert tables["MPJPE_absolute"]["Avg(frames)"] == pytest.approx(absolute.mean(), abs=0.006)
    results = load_pickle(Path(cfg.output_dir) / "result" / "Human36MMultiView" / "results.pkl")  # restricted loader
    assert set(results) == {"keypoints_3d", "indexes", "dataset"} and results["dataset"] == "Human36MMultiView"
    np.testing.assert_array_equal(results["keypoints_3d"], pred)
    assert results["keypoints_3d"].dtype == np.float32 and results["indexes"].dtype == np.int64
    np.testing.assert_array_equal(results["indexes"], frames)
    # The file places the cuboids of a volumetric run over the same frames.
    results_path = Path(cfg.output_dir) / "result" / "Human36MMultiView" / "results.pkl"
    cfg2 = make_cfg(tmp_path, {"Human36MMultiView": h36m.root}, f"multiview.pelvis_results_test={results_path}")
    center = Human36MMultiView("test", cfg2, evaluation=True)[2][2]["cuboid_center_world_mm"]
    np.testing.assert_allclose(center, pred[2, H36M_PELVIS], atol=1e-3)


# --- CMU Panoptic ---------------------------------------------------------------------------------------------------
def cmu_cfg(tmp_path: Path, cmu: CMUFixture, *overrides: str):
    return make_cfg(tmp_path, {"CMUPanoptic": cmu.root}, "multiview.cmu_train_sequences=[seqA]",
                    "multiview.cmu_test_sequences=[seqB]", *overrides)  # fmt: skip


def test_cmu_converts_cm_to_mm_and_chooses_cameras(cmu: CMUFixture, tmp_path: Path) -> None:
    cfg = cmu_cfg(
        tmp_path, cmu, "multiview.cmu_cameras=['00_01','00_03','00_04']", "multiview.ignore_cameras=['00_03']"
    )
    dataset = build_dataset("CMUPanoptic", "train", cfg)
    expected = [(frame, joints, confidence) for sequence, frame, joints, confidence in cmu.frames if sequence == "seqA"]
    assert len(dataset) == len(expected) == 2  # the frame without a body is no sample
    for index, (_, joints_cm, confidence) in enumerate(expected):
        inputs, targets, meta = dataset[index]
        assert int(meta["frame_index"]) == index
        np.testing.assert_allclose(targets["joints_world_mm"], joints_cm * 10.0, rtol=1e-6)
        np.testing.assert_array_equal(targets["joints_valid"], (confidence > 0).astype(np.float32))
        assert inputs["view_mask"].tolist() == [True, True]
        for view, name in enumerate(("00_01", "00_04")):
            R, t_cm, _, _ = cmu.cameras["seqA"][name]
            np.testing.assert_allclose(meta["camera_R"][view], R, atol=1e-6)
            np.testing.assert_allclose(meta["camera_t"][view], t_cm * 10.0, rtol=1e-6)
    assert expected[0][2][5] < 0 and dataset[0][1]["joints_valid"][5] == 0


@pytest.mark.parametrize("undistort", [True, False])
def test_cmu_cameras_project_joints_where_the_crops_show_them(cmu: CMUFixture, tmp_path: Path, undistort: bool):
    cfg = cmu_cfg(tmp_path, cmu, f"multiview.undistort_images={str(undistort).lower()}")
    dataset = CMUPanoptic("test", cfg, evaluation=True)
    expected_frames = [(joints, conf) for sequence, _, joints, conf in cmu.frames if sequence == "seqB"]
    assert len(dataset) == len(expected_frames)
    lens_px = 0.0
    for index, (joints_cm, _) in enumerate(expected_frames):
        inputs, targets, meta = dataset[index]
        assert inputs["view_mask"].all() and len(inputs["view_mask"]) == len(CMU_HD)
        joints_mm = targets["joints_world_mm"].double().numpy()
        for view, name in enumerate(CMU_HD):
            R, t, K, dist = cmu.cameras["seqB"][name]
            pixels = into_crop(cv2_points(joints_cm, R, t, K, None if undistort else dist),
                               meta["bbox_xyxy_img"][view].double().numpy())  # fmt: skip
            camera = camera_of(meta, view)
            np.testing.assert_allclose(camera.project(joints_mm), pixels, atol=1.0)
            np.testing.assert_allclose(dot_centre(inputs["images"][view]), camera.project(joints_mm[CMU_DOT_JOINT]),
                                       atol=1.0)  # fmt: skip
            dot_cm = joints_cm[CMU_DOT_JOINT : CMU_DOT_JOINT + 1]
            lens_px = max(lens_px, np.abs(cv2_points(dot_cm, R, t, K, dist) - cv2_points(dot_cm, R, t, K, None)).max())
            np.testing.assert_allclose(meta["camera_dist"][view], 0.0 if undistort else CMU_DIST * (1 + 0.1 * view),
                                       rtol=1e-5)  # fmt: skip
    assert lens_px > 2.5  # the lens moves the dot by more than the tolerance: undistortion is tested


def test_cmu_configuration_errors_name_the_key_or_file(cmu: CMUFixture, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="multiview.cmu_train_sequences"):
        CMUPanoptic("train", make_cfg(tmp_path, {"CMUPanoptic": cmu.root}))
    with pytest.raises(AnnotationError, match="00_09") as err:
        CMUPanoptic("train", cmu_cfg(tmp_path, cmu, "multiview.cmu_cameras=['00_01','00_09']"))
    assert str(cmu.root / "seqA" / "calibration_seqA.json") in str(err.value)
    with pytest.raises(MissingAnnotationError) as missing:
        CMUPanoptic("train", cmu_cfg(tmp_path, cmu, "multiview.cmu_train_sequences=[seqZ]"))
    assert Path(missing.value.filename).is_relative_to(cmu.root / "seqZ")
    calibration = cmu.root / "seqA" / "calibration_seqA.json"
    original = calibration.read_text()
    content = json.loads(original)
    hd = next(entry for entry in content["cameras"] if entry["type"] == "hd")
    hd["name"] = "../../outside"  # a camera name is a folder of the image paths
    calibration.write_text(json.dumps(content))
    try:
        with pytest.raises(AnnotationError, match="not a panel_node name") as err:
            CMUPanoptic("train", cmu_cfg(tmp_path, cmu))
        assert str(calibration) in str(err.value)
    finally:
        calibration.write_text(original)  # the fixture is shared by the module's tests


# --- the synthetic writers, read back -------------------------------------------------------------------------------
def test_synthetic_multiview_writers_read_back(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    from data.Synthetic.multiview_writer import make_h36m_multiview
    from tool.make_synthetic_dataset import main as cli_main

    h36m_root = tmp_path / "h36m"
    make_h36m_multiview(h36m_root, subjects=(1, 9), actions=(2,), frames_per_sequence=1, image_scale=0.1,
                        human_model_path=synthetic_body_model_dir, progress=False)  # fmt: skip
    labels = load_npy(h36m_root / "extra" / "human36m-multiview-labels-GTbboxes.npy")[()]
    table, cameras = labels["table"], labels["cameras"]
    assert labels["subject_names"] == ["S1", "S9"] and len(table) == 2 and cameras.shape == (2, 4)
    for row in table:
        subject, action = labels["subject_names"][row["subject_idx"]], labels["action_names"][row["action_idx"]]
        for k, name in enumerate(labels["camera_names"]):
            cam = cameras[row["subject_idx"], k]
            K, dist = cam["K"].astype(np.float64), cam["dist"].astype(np.float64)
            assert np.any(dist != 0)
            folder = h36m_root / "processed" / subject / action
            distorted = cv2.imread(str(folder / "imageSequence" / name / "img_000001.jpg"), cv2.IMREAD_GRAYSCALE)
            pinhole = cv2.imread(str(folder / "imageSequence-undistorted" / name / "img_000001.jpg"),
                                 cv2.IMREAD_GRAYSCALE)  # fmt: skip
            # OpenCV's undistortion of the filmed image gives the undistorted one (away from the borders).
            undone = cv2.undistort(distorted, K, dist)
            inner = (slice(15, -15), slice(15, -15))
            assert np.abs(undone[inner].astype(float) - pinhole[inner]).mean() < 6.0
            pixels = cv2_points(row["keypoints"].astype(np.float64), cam["R"], cam["t"], K, dist)
            top, left, bottom, right = row["bbox_by_camera_tlbr"][k]
            inside = (pixels[:, 0] >= left - 2) & (pixels[:, 0] <= right + 2) & (pixels[:, 1] >= top - 2)
            assert (inside & (pixels[:, 1] <= bottom + 2)).mean() > 0.9
    cmu_root = tmp_path / "cmu"
    assert run_cli(cli_main, ["--out", str(cmu_root), "--num-images", "1", "--format", "cmu", "--image-scale", "0.06",
                              "--workers", "1", "--human-model-path", str(synthetic_body_model_dir)]) == 0  # fmt: skip
    sequences = ("multiview.cmu_train_sequences=[171204_synth1]", "multiview.cmu_test_sequences=[171204_synth2]")
    cfg = make_cfg(tmp_path, {"Human36MMultiView": h36m_root, "CMUPanoptic": cmu_root}, *sequences)
    for name, split, views in (("Human36MMultiView", "train", 4), ("Human36MMultiView", "test", 4),
                               ("CMUPanoptic", "train", 5), ("CMUPanoptic", "test", 5)):  # fmt: skip
        inputs, targets, meta = build_dataset(name, split, cfg, evaluation=True)[0]
        assert inputs["view_mask"].tolist() == [True] * views
        for view in range(views):  # the person's joints project into its crops
            pixels = camera_of(meta, view).project(targets["joints_world_mm"].double().numpy())
            assert ((pixels >= -2) & (pixels <= OUT_HW[0] + 2)).all(axis=1).mean() > 0.9
        if name == "CMUPanoptic":  # y down, millimetres: the nose above the body centre above the ankles
            y = targets["joints_world_mm"][:, 1]
            assert y[1] < y[2] - 300 < y[8] - 600 and -1300 < y[2] < -600
