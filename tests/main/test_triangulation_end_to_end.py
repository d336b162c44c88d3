"""The triangulation family through the commands on a tiny Human3.6M multi-view set written from the layout's
specification (tests/data/multiview_fixtures.py): train and test the algebraic model, test it on both splits for
the pelvis hand-off, train and test the volumetric model on that pelvis, RANSAC on the algebraic weights, the
results.pkl round trip and the visualiser; and an overfit run on a few frames."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from common.body_models.pickle_io import load_pickle
from common.engine.cli import run_cli
from main.config import ConfigError
from main.test import main as evaluate_main
from main.train import main as train_main
from tests.data.multiview_fixtures import H36M_PELVIS, write_h36m
from tool.visualise_results import main as visualise_main

NAME = "Human36MMultiView"
SMALL = ["multiview.image_shape=[64,64]", "triangulation.backbone_depth=18", "data.num_thread=0",
         "train.end_epoch=1", "train.train_batch_size=2", "train.vis_interval=1", "test.test_batch_size=4"]  # fmt: skip
SMALL_VOLUME = ["triangulation.volume_size=8", "triangulation.volume_features=4", "triangulation.volume_net_channels=4",
                "triangulation.volume_net_levels=2", "triangulation.volume_net_max_channels=8"]  # fmt: skip


@pytest.fixture(scope="module")
def h36m(tmp_path_factory: pytest.TempPathFactory):
    """S1: 3 training frames; S9, S11: 7 test frames (S11 Directions-2 without camera 54138969)."""
    return write_h36m(tmp_path_factory.mktemp("h36m_multiview"))


def _run(main, *args: str) -> int:
    return run_cli(main, list(args), user_errors=(ConfigError,))


def _results(path: Path) -> dict:
    content = load_pickle(path)  # the restricted unpickler: plain arrays and containers only
    assert set(content) == {"keypoints_3d", "indexes", "dataset"} and content["dataset"] == NAME
    return content


def _relative_mpjpe_mm(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean over frames and joints of |(pred - pred_pelvis) - (gt - gt_pelvis)|, computed here."""
    pred_rel = pred - pred[:, H36M_PELVIS : H36M_PELVIS + 1]
    gt_rel = gt - gt[:, H36M_PELVIS : H36M_PELVIS + 1]
    return float(np.linalg.norm(pred_rel - gt_rel, axis=-1).mean())


@pytest.mark.slow
def test_algebraic_then_volumetric_through_the_commands(h36m, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = [f"data.dataset_roots={{{NAME}: {h36m.root}}}", *SMALL]
    alg_out = tmp_path / "alg"
    alg = ["--cfg", "synthetic_triangulation_alg"]  # options first: the key=value overrides must come together
    assert _run(train_main, *alg, *root, f"output_dir={alg_out}") == 0
    snapshot = alg_out / "model_dump" / "snapshot_0.pth.tar"
    assert snapshot.is_file()

    # the pelvis hand-off: the algebraic snapshot tested on the train and the test split, each into its own folder
    for split in ("train", "test"):
        assert _run(evaluate_main, *alg, "--ckpt", str(snapshot), *root, f"data.test_split={split}",
                    f"output_dir={alg_out / f'pelvis_{split}'}") == 0  # fmt: skip
    train_results = _results(alg_out / "pelvis_train" / "result" / NAME / "results.pkl")
    test_dir = alg_out / "pelvis_test" / "result" / NAME
    test_results = _results(test_dir / "results.pkl")
    assert train_results["indexes"].tolist() == [0, 1, 2]  # S1's rows of the labels table
    assert test_results["indexes"].tolist() == [3, 4, 5, 6, 7, 8, 9]
    assert test_results["keypoints_3d"].shape == (7, 17, 3) and test_results["keypoints_3d"].dtype == np.float32
    metrics = json.loads((test_dir / "metrics.json").read_text())
    expected = _relative_mpjpe_mm(test_results["keypoints_3d"], h36m.joints_mm[3:])
    assert metrics["metrics"]["mpjpe_relative"] == pytest.approx(expected, rel=1e-4)

    # the volumetric model's cuboids on the algebraic pelvis
    vol_out = tmp_path / "vol"
    vol = [*root, *SMALL_VOLUME, f"output_dir={vol_out}",
           f"multiview.pelvis_results_train={alg_out / 'pelvis_train' / 'result' / NAME / 'results.pkl'}",
           f"multiview.pelvis_results_test={test_dir / 'results.pkl'}"]  # fmt: skip
    assert _run(train_main, "--cfg", "synthetic_triangulation_vol", *vol) == 0
    assert _run(evaluate_main, "--cfg", "synthetic_triangulation_vol", "--test_epoch", "0", *vol) == 0
    vol_results = _results(vol_out / "result" / NAME / "results.pkl")
    assert vol_results["keypoints_3d"].shape == (7, 17, 3) and np.isfinite(vol_results["keypoints_3d"]).all()
    # a soft-argmax over the cuboid stays inside it: within half the side (x sqrt(3)) of the algebraic pelvis
    pelvis = test_results["keypoints_3d"][:, H36M_PELVIS : H36M_PELVIS + 1]
    assert np.linalg.norm(vol_results["keypoints_3d"] - pelvis, axis=-1).max() <= 1250.0 * 3**0.5 + 1e-3

    # RANSAC tests the algebraic weights; it refuses to train
    ransac_out = tmp_path / "ransac"
    assert _run(evaluate_main, *alg, "--ckpt", str(snapshot), *root, "triangulation.method=ransac",
                f"output_dir={ransac_out}") == 0  # fmt: skip
    assert _results(ransac_out / "result" / NAME / "results.pkl")["keypoints_3d"].shape == (7, 17, 3)
    capsys.readouterr()
    assert _run(train_main, *alg, *root, "triangulation.method=ransac", f"output_dir={tmp_path / 'none'}") == 2
    assert "nothing to train" in capsys.readouterr().err

    # the visualiser draws the first frames of the test results
    vis_dir = tmp_path / "vis"
    assert _run(visualise_main, str(test_dir / "results.pkl"), "--cfg", "synthetic_triangulation_alg", "--out",
                str(vis_dir), "--max", "2", *root) == 0  # fmt: skip
    pictures = sorted(vis_dir.glob("*.png"))
    assert [p.name for p in pictures] == ["frame_3.png", "frame_4.png"]
    image = cv2.imread(str(pictures[0]))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 4 * image.shape[0] / 2


def test_visualiser_refuses_a_results_file_of_another_split(h36m, tmp_path: Path, capsys) -> None:
    from data.multiview import write_results

    path = write_results(tmp_path / "results.pkl", np.zeros((1, 17, 3)), np.array([0]), NAME)  # S1: a train frame
    root = [f"data.dataset_roots={{{NAME}: {h36m.root}}}", *SMALL]
    assert _run(visualise_main, str(path), "--cfg", "synthetic_triangulation_alg", "--out", str(tmp_path / "vis"),
                *root) == 2  # fmt: skip
    assert "frame 0 is not in Human36MMultiView's test split" in capsys.readouterr().err
    assert _run(visualise_main, str(path), "--cfg", "synthetic_triangulation_alg", "--split", "train", "--out",
                str(tmp_path / "vis"), *root) == 0  # fmt: skip
    assert (tmp_path / "vis" / "frame_0.png").is_file()


@pytest.mark.slow
def test_algebraic_model_fits_two_frames_to_under_15_mm() -> None:
    """Adam on one fixed batch (2 frames x 4 views of random 32-pixel crops, 17 joints) until the relative MPJPE of
    the test-mode output is under 15 mm. From-scratch settings: heatmap multiplier 10 (the seed's 100 suits a
    pretrained backbone's heatmaps; on random ones it makes near-argmax softmaxes whose gradients vanish) and a
    plain MSE (threshold far above every error). BatchNorm stays on the batch's statistics (the frames fitted)."""
    from main.triangulation import get_triangulation_model
    from tests.main.test_triangulation import scene_batch, small_cfg

    torch.manual_seed(0)
    cfg = small_cfg("triangulation.num_joints=17", "triangulation.heatmap_multiplier=10",
                    "triangulation.mse_smooth_threshold=1e9", "triangulation.use_confidences=false")  # fmt: skip
    model = get_triangulation_model(cfg, "train").train()
    inputs, targets, meta_info = scene_batch(batch=2, views=4, joints=17, seed=1, crop=32, focal_px=40.0,
                                             radius_mm=2500.0)  # fmt: skip
    gt = targets["joints_world_mm"]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = []
    for _ in range(300):
        loss = sum(model(inputs, targets, meta_info, "train").values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            pred = model(inputs, targets, meta_info, "test")["joints_world_mm"]
        history.append(_relative_mpjpe_mm(pred.numpy(), gt.numpy()))
        if history[-1] < 15.0:
            break
    assert history[-1] < 15.0, f"relative MPJPE {history[0]:.1f} -> {history[-1]:.1f} mm after {len(history)} steps"
