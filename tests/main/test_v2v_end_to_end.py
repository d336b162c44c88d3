"""The V2V family end to end on a tiny synthetic MSRA set (data/Synthetic/msra_writer.py): train.py / test.py write
the upstream result files, whose numbers give the printed mean error again against tool/gen_gt.py's ground truth;
tool/show_acc.py plots them; tool/make_voxel_h5.py's files train and test the HDF5 path; and an overfit run on a few
frames reaches < 10 mm."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

import main.model
from common.engine.cli import UsageError, run_cli
from common.engine.snapshot import read_snapshot
from data import build_dataset
from data.MSRA.msra_files import MSRA_INTRINSICS, load_fold
from main.config import ConfigError, load_config
from main.test import main as evaluate_main
from main.train import main as train_main
from tool.gen_gt import write_gt_files
from tool.make_voxel_h5 import h5_name, make_voxel_h5
from tool.show_acc import frames_within_distance, mean_error_per_joint, read_joint_file, show_acc

TEST_SUBJECT = 1
TINY = ["v2v.grid_size=16", "v2v.output_size=8", "v2v.width_multiplier=0.25", "data.num_thread=0",
        "train.end_epoch=1", "train.train_batch_size=2", "train.vis_interval=1", "test.test_batch_size=4"]  # fmt: skip


@pytest.fixture(scope="module")
def msra_root(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> Path:
    from data.Synthetic.msra_writer import make_msra

    root = tmp_path_factory.mktemp("synthetic_msra")
    # P0 trains, P1 tests (fold 1): 3 gesture folders x 2 frames each; the train centre file has invalid lines
    make_msra(root, subjects=(0, TEST_SUBJECT), frames_per_gesture=2, gestures=("1", "5", "Y"), seed=0,
              human_model_path=synthetic_body_model_dir, progress=False)  # fmt: skip
    return root


def _overrides(root: Path, out: Path, *extra: str) -> list[str]:
    return [f"data.dataset_roots={{MSRA: {root}}}", f"data.msra_test_subject={TEST_SUBJECT}", *TINY,
            f"output_dir={out}", *extra]  # fmt: skip


def _printed_mean(text: str, label: str) -> float:
    match = re.search(rf"^{label}\s+([0-9.]+)( mm)?$", text, flags=re.MULTILINE)
    assert match, text
    return float(match.group(1))


def _errors(pred_path: Path, gt_path: Path) -> np.ndarray:
    """(N, J) joint errors of two result files, computed here from their numbers."""
    pred, gt = (np.loadtxt(path, ndmin=2).reshape(-1, 21, 3) for path in (pred_path, gt_path))
    assert pred.shape == gt.shape
    return np.linalg.norm(pred - gt, axis=-1)


def test_train_test_result_files_and_plots(msra_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    overrides = _overrides(msra_root, tmp_path, "train.optimizer=rmsprop", "train.lr=2.5e-4")
    assert run_cli(train_main, ["--cfg", "synthetic_v2v", *overrides], user_errors=(ConfigError,)) == 0
    snapshot = read_snapshot(tmp_path / "model_dump" / "snapshot_0.pth.tar")
    assert all("square_avg" in state for state in snapshot["optimizer"]["state"].values())  # RMSprop's, not Adam's
    gt_files = write_gt_files(msra_root, TEST_SUBJECT, tmp_path / "gt")
    result = tmp_path / "result" / "MSRA"
    for split, name in (("test", "test_res.txt"), ("train", "fit_res.txt")):
        capsys.readouterr()
        code = run_cli(evaluate_main, ["--cfg", "synthetic_v2v", "--test_epoch", "0", *overrides,
                                       f"data.test_split={split}"], user_errors=(ConfigError,))  # fmt: skip
        printed = capsys.readouterr().out
        assert code == 0
        metrics = json.loads((result / "metrics.json").read_text())
        fold = load_fold(msra_root, TEST_SUBJECT, split)
        assert metrics["samples"]["mean_joint_error"] == int(fold.valid.sum()) and metrics["split"] == split
        errors = _errors(result / name, gt_files[split])  # the result file against gen_gt.py's, both V2V's world
        assert errors.mean() == pytest.approx(metrics["metrics"]["mean_joint_error"], abs=1e-3)
        assert errors.max(axis=1).mean() == pytest.approx(metrics["metrics"]["max_joint_error"], abs=1e-3)
        assert _printed_mean(printed, "Mean joint error") == pytest.approx(errors.mean(), abs=0.006)
        assert _printed_mean(printed, "  Mean") == pytest.approx(errors.mean(), abs=0.006)  # the per-joint table's
        per_joint = metrics["mean_error_per_joint_mm"]
        assert list(per_joint)[:2] == ["Wrist", "Index_1"] and np.allclose(
            list(per_joint.values()), errors.mean(0), atol=1e-3
        )
        # the pixel file: (u, v, depth) of the same joints through MSRA's camera (pinhole written out here)
        world = np.loadtxt(result / name, ndmin=2).reshape(-1, 21, 3)
        uvd = np.loadtxt(result / name.replace(".txt", "_uvd.txt"), ndmin=2).reshape(-1, 21, 3)
        x = (uvd[..., 0] - MSRA_INTRINSICS.cx) * uvd[..., 2] / MSRA_INTRINSICS.fx
        y_up = (MSRA_INTRINSICS.cy - uvd[..., 1]) * uvd[..., 2] / MSRA_INTRINSICS.fy
        np.testing.assert_allclose(np.stack([x, y_up, uvd[..., 2]], axis=-1), world, atol=0.01)
    # two prediction files of the test frames on one plot: the model's, and the ground truth itself (0 mm)
    plots = show_acc(gt_files["test"], [result / "test_res.txt", gt_files["test"]], tmp_path / "plots",
                     labels=["model", "ground truth"])  # fmt: skip
    assert plots.curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plots.bars.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots.mean_mm["model"] == pytest.approx(_errors(result / "test_res.txt", gt_files["test"]).mean())
    assert plots.mean_mm["ground truth"] == 0.0


def test_show_acc_curve_and_bars_hand_computed(tmp_path: Path) -> None:
    gt = np.zeros((4, 2, 3))
    pred = gt.copy()
    pred[0, 0, 0], pred[1, 1, 1], pred[2, 0, 2], pred[3] = 5.0, 12.0, 3.0, [[0.0, 0.0, 30.0], [40.0, 0.0, 0.0]]
    # worst joints per frame: 5, 12, 3, 40 mm
    np.testing.assert_allclose(frames_within_distance(pred, gt, np.array([0, 3, 5, 11, 12, 39, 40])),
                               [0, 0.25, 0.5, 0.5, 0.75, 0.75, 1.0])  # fmt: skip
    np.testing.assert_allclose(mean_error_per_joint(pred, gt), [(5 + 3 + 30) / 4, (12 + 40) / 4])
    np.savetxt(tmp_path / "gt.txt", gt.reshape(4, -1))
    (tmp_path / "bad.txt").write_text("1 2 3 4\n")
    with pytest.raises(UsageError, match=r"bad.txt, line 1: 4 numbers"):
        read_joint_file(tmp_path / "bad.txt")
    np.savetxt(tmp_path / "short.txt", gt[:3].reshape(3, -1))
    with pytest.raises(UsageError, match="differ"):
        show_acc(tmp_path / "gt.txt", [tmp_path / "short.txt"], tmp_path / "out")


def test_voxel_h5_files_match_msra_and_train(msra_root: Path, tmp_path: Path) -> None:
    files = make_voxel_h5(msra_root, TEST_SUBJECT, tmp_path / "h5", grid_size=16)
    assert files == {split: tmp_path / "h5" / h5_name(split, TEST_SUBJECT) for split in ("train", "test")}
    h5 = [f"data.h5_train={files['train']}", f"data.h5_test={files['test']}"]
    cfg = load_config("v2v_h5", [*TINY, *h5, f"output_dir={tmp_path}"])
    msra_cfg = load_config("synthetic_v2v", _overrides(msra_root, tmp_path))
    voxel_set, msra_set = build_dataset("VoxelH5", "train", cfg), build_dataset("MSRA", "train", msra_cfg)
    assert len(voxel_set) == len(msra_set)
    model = main.model.get_model(msra_cfg, "test")
    msra_batch, voxel_batch = (
        default_collate([dataset[i] for i in range(len(dataset))]) for dataset in (msra_set, voxel_set)
    )
    torch.testing.assert_close(voxel_batch[1]["joints_mm"], msra_batch[1]["joints_mm"], atol=1e-3, rtol=0)
    torch.testing.assert_close(voxel_batch[0]["ref_point_mm"], msra_batch[0]["ref_point_mm"])
    expected = model.occupancy({k: v for k, v in msra_batch[0].items()})[:, 0] > 0.5  # the family's own input stage
    assert torch.equal(voxel_batch[0]["voxels"], expected) and expected.any()
    with pytest.raises(UsageError, match="data.h5_dev"):
        build_dataset("VoxelH5", "dev", cfg)
    overrides = [*TINY, *h5, f"output_dir={tmp_path / 'run'}"]
    assert run_cli(train_main, ["--cfg", "v2v_h5", *overrides], user_errors=(ConfigError,)) == 0
    assert run_cli(evaluate_main, ["--cfg", "v2v_h5", "--test_epoch", "0", *overrides], user_errors=(ConfigError,)) == 0
    metrics = json.loads((tmp_path / "run" / "result" / "VoxelH5" / "metrics.json").read_text())
    rows = np.loadtxt(tmp_path / "run" / "result" / "VoxelH5" / "test_res.txt", ndmin=2)  # camera mm, J x 3 a line
    gt_mm = load_fold(msra_root, TEST_SUBJECT, "test").joints_mm
    errors = np.linalg.norm(rows.reshape(-1, 21, 3) - gt_mm, axis=-1)  # every test centre is valid
    assert metrics["samples"]["mean_joint_error"] == len(gt_mm)
    assert errors.mean() == pytest.approx(metrics["metrics"]["mean_joint_error"], abs=1e-3)


@pytest.mark.slow
def test_overfits_a_few_frames_below_10_mm(msra_root: Path) -> None:
    # synthetic_v2v's geometry (32^3 grid, 16^3 heatmaps, 3/4 width), no augmentation
    cfg = load_config("synthetic_v2v", [f"data.dataset_roots={{MSRA: {msra_root}}}",
                                        f"data.msra_test_subject={TEST_SUBJECT}", "v2v.augment=false"])  # fmt: skip
    dataset = build_dataset("MSRA", "train", cfg)
    inputs, targets, meta = default_collate([dataset[i] for i in range(4)])
    torch.manual_seed(0)
    model = main.model.get_model(cfg, "train")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    errors = []
    for step in range(400):
        model.train()
        loss = model(inputs, targets, meta, "train")["heatmap"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 20 == 19:
            with torch.no_grad():
                joints_mm = model.eval()(inputs, mode="test")["joints_mm"]
            errors.append((joints_mm - targets["joints_mm"]).norm(dim=-1).mean().item())
            if errors[-1] < 10.0:
                break
    assert errors[-1] < 10.0, errors
