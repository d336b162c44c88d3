"""The integral family end to end on the synthetic Human3.6M set in the upstream layout: the writer's files read by
the independent reader agree with the upstream projection computed here, and train.py / test.py run on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from common.engine.cli import run_cli
from common.utils.h36m_protocols import parse_action_tables, read_kpt_file
from data import build_dataset
from main.config import ConfigError, load_config
from main.test import main as evaluate_main
from main.train import main as train_main

SMALL_INTEGRAL = ["model.resnet_type=18", "model.input_img_shape=[64,64]", "model.output_hm_shape=[16,16,16]"]


@pytest.fixture(scope="module")
def h36m_root(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> Path:
    from data.Synthetic import make_h36m

    root = tmp_path_factory.mktemp("synthetic_h36m")
    # S1 trains and S9 tests under Protocol #2; 10 frames per folder: train frames 0 and 5, test frame 0
    make_h36m(root, subjects=(1, 9), actions=(2,), frames_per_sequence=10, seed=0,
              human_model_path=synthetic_body_model_dir, progress=False)  # fmt: skip
    return root


def _overrides(root: Path, body_models: Path, out: Path) -> list[str]:
    return [f"human_model_path={body_models}", *SMALL_INTEGRAL, "data.trainset_3d=[Human36M]", "data.trainset_2d=[]",
            "data.testset=Human36M", f"data.dataset_roots={{Human36M: {root}}}", "data.num_thread=0",
            "train.end_epoch=1", "train.train_batch_size=4", "train.vis_interval=1", "test.test_batch_size=4",
            f"output_dir={out}"]  # fmt: skip


def test_the_reader_projects_the_writers_joints_as_upstream_does(h36m_root: Path, synthetic_body_model_dir: Path,
                                                                tmp_path: Path) -> None:  # fmt: skip
    cfg = load_config("integral_h36m", _overrides(h36m_root, synthetic_body_model_dir, tmp_path))
    dataset = build_dataset("Human36M", "train", cfg)
    assert len(dataset) == 2 * 4  # frames 0 and 5 of S1's one sequence, 4 cameras
    for record in dataset.records:
        folder = record.img_path.parent
        meta = scipy.io.loadmat(folder / "h36m_meta.mat")
        frame = int(record.img_path.stem.rsplit("_", 1)[1]) - 1  # upstream numbers frames from 1
        world_mm = meta["pose3d_world"][frame]  # (17, 3)
        cam_mm = (np.asarray(meta["R"]) @ (world_mm - np.asarray(meta["T"]).reshape(1, 3)).T).T  # R (X - T)
        pixels = cam_mm[:, :2] / cam_mm[:, 2:] * np.asarray(meta["f"]).reshape(2) + np.asarray(meta["c"]).reshape(2)
        np.testing.assert_allclose(np.asarray(record.joints_xy_img)[:17], pixels, atol=1.0)
        np.testing.assert_allclose(np.asarray(record.joints_cam)[:17] * 1000.0, cam_mm, atol=1e-3)
    _, targets, meta = dataset[0]
    assert targets["joint_img"].shape == (18, 3) and float(meta["is_3D"]) == 1.0


@pytest.mark.slow
def test_integral_trains_and_tests_through_the_commands(h36m_root: Path, synthetic_body_model_dir: Path,
                                                        tmp_path: Path) -> None:  # fmt: skip
    overrides = _overrides(h36m_root, synthetic_body_model_dir, tmp_path)
    assert run_cli(train_main, ["--gpu", "0", "--cfg", "integral_h36m", *overrides], user_errors=(ConfigError,)) == 0
    assert (tmp_path / "model_dump" / "snapshot_0.pth.tar").is_file()
    assert run_cli(evaluate_main, ["--gpu", "0", "--cfg", "integral_h36m", "--test_epoch", "0", *overrides],
                   user_errors=(ConfigError,)) == 0  # fmt: skip
    result = tmp_path / "result" / "Human36M"
    metrics = json.loads((result / "metrics.json").read_text())
    assert metrics["samples"]["mpjpe_17j"] == 4  # S9's frame 0 from 4 cameras
    assert 0.0 < metrics["metrics"]["pa_mpjpe_17j"] <= metrics["metrics"]["mpjpe_17j"]
    # Protocol #2's per-action table (S9 only here: no S11, so no Protocol #1 column) and upstream's result files,
    # whose numbers give the printed average again
    tables = parse_action_tables((result / "eval_result.txt").read_text())
    assert list(tables) == ["P2_MPJPE_S9"]
    pred, gt = read_kpt_file(result / "pred_3d_kpt.txt"), read_kpt_file(result / "gt_3d_kpt.txt")
    assert pred.shape == gt.shape == (4, 18, 3)
    errors_mm = np.linalg.norm(pred[:, :17] - gt[:, :17], axis=-1).mean()
    assert tables["P2_MPJPE_S9"]["Avg(frames)"] == pytest.approx(errors_mm, abs=0.01)
    assert tables["P2_MPJPE_S9"]["Directions"] == pytest.approx(errors_mm, abs=0.01)  # the one action written
