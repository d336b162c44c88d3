"""Fixtures of the several-people and video demo tests: a tiny Hand4Whole config and a snapshot of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.engine.snapshot import write_snapshot
from main.config import Config, config_to_dict, load_config
from main.model import get_model

# Hand4Whole at a sixteenth of the quickstart's input area: fast on a CPU, every shape consistent.
TINY_GEOMETRY = [
    "model.input_img_shape=[128,96]", "model.input_body_shape=[64,48]", "model.output_hm_shape=[8,2,2]",
    "model.princpt=[24,32]", "model.input_hand_shape=[32,32]", "model.output_hand_hm_shape=[8,1,1]",
    "model.input_face_shape=[32,32]",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_cfg(synthetic_body_model_dir: Path) -> Config:
    return load_config("synthetic", [f"human_model_path={synthetic_body_model_dir}", *TINY_GEOMETRY])


@pytest.fixture(scope="module")
def snapshot_file(tiny_cfg: Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of the tiny config with random weights (test.py's layout); test_demo.py has its own."""
    torch.manual_seed(0)
    network = get_model(tiny_cfg, "test").state_dict()  # random weights; "test" skips the slower init
    path = tmp_path_factory.mktemp("ckpt") / "snapshot_1.pth.tar"
    return write_snapshot({"epoch": 1, "network": network, "config": config_to_dict(tiny_cfg)}, path)
