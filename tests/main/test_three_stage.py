"""Hand4Whole's three-stage recipe end to end on the synthetic stand-in, through the users' commands.

Stage 1 trains the whole-body model (synthetic AGORA), stage 2 the hand-only Pose2Pose model (synthetic FreiHAND),
`tool/merge_hand_to_all.py` puts stage 2's backbone into stage 1's snapshot, and stage 3 trains on from the merged
snapshot with --continue. Small geometry, one short epoch per stage.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from common.engine.cli import run_cli
from common.engine.snapshot import read_snapshot
from main.config import ConfigError
from main.train import main as train_main
from tests.main.conftest import SMALL_MODEL
from tool import merge_hand_to_all

HAND_PREFIX_WHOLEBODY = "hand_roi_net.backbone."
HAND_PREFIX_PART = "backbone."


def _train(args: list[str]) -> None:
    assert run_cli(train_main, ["--gpu", "0", *args], prog="train.py", user_errors=(ConfigError,)) == 0


@pytest.fixture(scope="module")
def freihand_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> Path:
    from data.Synthetic import make_freihand

    root = tmp_path_factory.mktemp("synthetic_freihand")
    make_freihand(root, 8, "train", seed=0, human_model_path=synthetic_body_model_dir, progress=False)
    return root


def test_three_stages_hand_backbone_travels_into_the_wholebody_model(
    synthetic_agora_dir: Path, freihand_dir: Path, synthetic_body_model_dir: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    common = [f"human_model_path={synthetic_body_model_dir}", "data.num_thread=0", "train.train_batch_size=4",
              "train.vis_interval=0", "train.log_interval=1"]  # fmt: skip
    wholebody = [*common, *SMALL_MODEL, "data.trainset_3d=[AGORA]", "data.trainset_2d=[]", "data.testset=AGORA",
                 f"data.dataset_roots={{AGORA: {synthetic_agora_dir}}}", "data.agora_gender=annotated"]  # fmt: skip
    stage1, stage2, stage3 = (tmp_path / name for name in ("stage1", "stage2", "stage3"))

    _train([*wholebody, "train.end_epoch=1", f"output_dir={stage1}"])
    hand = [*common, "model.resnet_type=18", "model.input_img_shape=[64,64]", "model.output_hm_shape=[8,2,2]",
            "model.princpt=[32,32]", "data.trainset_3d=[FreiHAND]", "data.trainset_2d=[]",
            f"data.dataset_roots={{FreiHAND: {freihand_dir / 'data'}}}", "train.end_epoch=1",
            "train.lr=1e-3"]  # fmt: skip
    _train(["--cfg", "pose2pose_hand", *hand, f"output_dir={stage2}"])

    merged_path = stage3 / "model_dump" / "snapshot_0.pth.tar"
    args = ["--wholebody", str(stage1 / "model_dump" / "snapshot_0.pth.tar"),
            "--hand", str(stage2 / "model_dump" / "snapshot_0.pth.tar"), "--out", str(merged_path)]  # fmt: skip
    assert run_cli(merge_hand_to_all.main, args) == 0

    hand_net = read_snapshot(stage2 / "model_dump" / "snapshot_0.pth.tar")["network"]
    stage1_net = read_snapshot(stage1 / "model_dump" / "snapshot_0.pth.tar")["network"]
    merged = read_snapshot(merged_path)
    hand_backbone = {k.removeprefix(HAND_PREFIX_PART): v for k, v in hand_net.items() if k.startswith(HAND_PREFIX_PART)}
    merged_backbone = {k.removeprefix(HAND_PREFIX_WHOLEBODY): v for k, v in merged["network"].items()
                       if k.startswith(HAND_PREFIX_WHOLEBODY)}  # fmt: skip
    assert hand_backbone and hand_backbone.keys() == merged_backbone.keys()
    for key, value in hand_backbone.items():
        assert torch.equal(merged_backbone[key], value), key  # tensor for tensor: the trained hand backbone
    assert any(not torch.equal(stage1_net[HAND_PREFIX_WHOLEBODY + k], v) for k, v in hand_backbone.items())
    assert merged["partial"] and not any(k.startswith("hand_position_net.") for k in merged["network"])
    for key, value in stage1_net.items():  # everything else is stage 1's
        if not key.startswith((HAND_PREFIX_WHOLEBODY, "hand_position_net.", "hand_rotation_net.")):
            assert torch.equal(merged["network"][key], value), key

    caplog.set_level(logging.INFO)
    _train(["--continue", *wholebody, "train.end_epoch=2", "train.lr=1e-6", f"output_dir={stage3}"])
    assert "Starting at epoch 1 from the weights of" in caplog.text
    stage3_net = read_snapshot(stage3 / "model_dump" / "snapshot_1.pth.tar")["network"]
    weights = [k for k in hand_backbone if k.endswith("weight") and hand_backbone[k].ndim == 4]  # conv kernels
    for key in weights:  # a tiny learning rate: stage 3 went on from the merged backbone, not from scratch
        torch.testing.assert_close(stage3_net[HAND_PREFIX_WHOLEBODY + key], hand_backbone[key], rtol=0, atol=1e-4)
    assert any(not torch.equal(stage3_net[HAND_PREFIX_WHOLEBODY + k], hand_backbone[k]) for k in weights)
