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


@pytest.fixture(scope="module")
def mpii_root(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> Path:
    from data.Synthetic import make_mpii

    root = tmp_path_factory.mktemp("synthetic_mpii")
    make_mpii(root, num_images=4, subjects=(6,), human_model_path=synthetic_body_model_dir, progress=False,
              image_hw=(128, 128))  # fmt: skip
    return root


def _overrides(root: Path, body_models: Path, out: Path, mpii: Path | None = None) -> list[str]:
    """The small test config; with `mpii`, the synthetic MPII set is the 2D training set (as upstream's mixture)."""
    roots = f"Human36M: {root}" + (f", MPII: {mpii}" if mpii else "")
    sets = [f"data.trainset_2d=[{'MPII' if mpii else ''}]", f"data.dataset_roots={{{roots}}}"]
    return [f"human_model_path={body_models}", *SMALL_INTEGRAL, "data.trainset_3d=[Human36M]", *sets,
            "data.testset=Human36M", "data.num_thread=0",
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
def test_integral_trains_and_tests_through_the_commands(
    h36m_root: Path, mpii_root: Path, synthetic_body_model_dir: Path, tmp_path: Path
) -> None:
    overrides = _overrides(h36m_root, synthetic_body_model_dir, tmp_path, mpii_root)  # Human3.6M + MPII: upstream's
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


def test_the_synthetic_mpii_set_is_a_2d_training_set_for_integral(mpii_root: Path, synthetic_body_model_dir: Path,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    """MPII's COCO layout as the writer's spec says (16 named keypoints, v = 2 inside the image), read by the MPII
    loader with no SMPL-X file: 2D samples (z masked) whose Thorax is the mean of the shoulders."""
    document = json.loads((mpii_root / "annotations" / "train.json").read_text())
    names = document["categories"][0]["keypoints"]
    assert len(names) == 16 and names[7] == "Thorax"
    cfg = load_config("integral_h36m", _overrides(mpii_root, synthetic_body_model_dir, tmp_path, mpii_root))
    dataset = build_dataset("MPII", "train", cfg)
    assert len(dataset) == len(document["annotations"]) == 4
    for annotation, record in zip(document["annotations"], dataset.records, strict=True):
        keypoints = np.asarray(annotation["keypoints"], np.float64).reshape(16, 3)
        x, y, w, h = annotation["bbox"]
        inside = keypoints[:, 2] == 2
        assert inside.sum() >= 12  # a whole person in view
        assert np.all((keypoints[inside, 0] >= x - 3) & (keypoints[inside, 0] <= x + w + 3))  # on the silhouette box
        np.testing.assert_allclose(keypoints[7, :2], keypoints[[12, 13], :2].mean(axis=0), atol=2e-3)
        np.testing.assert_allclose(np.asarray(record.joints_xy_img)[inside], keypoints[inside, :2], atol=1e-6)
    _, targets, meta = dataset[0]
    assert float(meta["is_3D"]) == 0.0 and targets["joint_img"].shape == (18, 3)


def test_the_crop_is_the_2m_box_at_the_root_and_evaluation_back_projects_as_upstream(
    h36m_root: Path, synthetic_body_model_dir: Path, tmp_path: Path
) -> None:
    """A 3D sample's crop is the 2000 mm box around the Pelvis in its depth plane (the root at the crop centre), and
    back-projecting the GT volume coordinates through the crop, the camera and the GT root depth (upstream's
    evaluation) gives the GT camera joints again: the prediction space and the evaluation agree exactly."""
    cfg = load_config("integral_h36m", _overrides(h36m_root, synthetic_body_model_dir, tmp_path))
    dataset = build_dataset("Human36M", "test", cfg)
    depth, height, width = cfg.model.output_hm_shape
    for index in range(len(dataset)):
        record = dataset.records[index]
        root_cam = np.asarray(record.joints_cam)[0]
        box = dataset.targets.crop_box(dataset, record)
        np.testing.assert_allclose(box[2:], 2.0 * np.asarray(record.cam.focal) / root_cam[2], rtol=1e-9)
        _, targets, meta = dataset[index]
        np.testing.assert_allclose(targets["joint_img"][0], [width / 2, height / 2, depth / 2], atol=1e-4)
        out = {key: np.asarray(value) for key, value in meta.items()} | {"joint_img": targets["joint_img"]}
        pred = dataset.targets.predicted_joint_cam(out)
        np.testing.assert_allclose(pred[:17], targets["joint_cam"][:17], atol=1e-4)  # metres: 0.1 mm


@pytest.mark.slow
def test_integral_overfits_a_few_training_frames_below_20_mm(h36m_root: Path, synthetic_body_model_dir: Path,
                                                             tmp_path: Path) -> None:  # fmt: skip
    """Adam on 4 fixed training frames of S1: the test-mode MPJPE (evaluated as upstream, BatchNorm in eval mode)
    falls below 20 mm within 400 steps."""
    import torch
    from torch.utils.data import default_collate

    from main.model import get_model

    cfg = load_config("integral_h36m", [*_overrides(h36m_root, synthetic_body_model_dir, tmp_path),
                                        "test.flip_test=false"])  # fmt: skip
    dataset = build_dataset("Human36M", "train", cfg, evaluation=True)  # the training frames, unaugmented
    inputs, targets, meta = default_collate([dataset[i] for i in range(4)])
    torch.manual_seed(0)
    model = get_model(cfg, "train")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    errors_mm = []
    for step in range(400):
        model.train()
        loss = sum(model(inputs, targets, meta, "train").values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 25 == 24:
            model.eval()
            with torch.no_grad():
                out = model(inputs, None, None, "test")
            samples = [{key: value[i].numpy() for key, value in (meta | out).items()} for i in range(4)]
            pred = np.stack([dataset.targets.predicted_joint_cam(sample) for sample in samples])
            errors_mm.append(float(np.linalg.norm(pred - targets["joint_cam"].numpy(), axis=-1)[:, :17].mean()) * 1e3)
            if errors_mm[-1] < 20.0:
                break
    assert errors_mm[-1] < 20.0, f"MPJPE every 25 steps (mm): {errors_mm}"
