"""Fixtures for the whole-body model tests: small configs and Hand4Whole-contract targets from SMPL-X.

The targets come from common/utils/fake_batch.py (built independently of main/model.py, as a dataset builds them),
which tool/benchmark.py shares.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from torch import Tensor

from common.utils.fake_batch import make_wholebody_batch
from main.config import Config, load_config

# A reduced geometry for fast CPU tests: ResNet-18 everywhere, inputs a quarter of Hand4Whole's area, heatmap
# grids matching the stride-32 features (body 4 x 3, hands 2 x 2, face crop 64 x 64).
SMALL_MODEL = [
    "model.input_img_shape=[256,192]",
    "model.input_body_shape=[128,96]",
    "model.output_hm_shape=[8,4,3]",
    "model.input_hand_shape=[64,64]",
    "model.output_hand_hm_shape=[8,2,2]",
    "model.input_face_shape=[64,64]",
    "model.princpt=[48,64]",
    "model.resnet_type=18",
    "model.hand_resnet_type=18",
    "model.face_resnet_type=18",
]

TargetMaker = Callable[..., tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]]


@pytest.fixture(scope="session")
def default_cfg(synthetic_body_model_dir: Path) -> Config:
    """Hand4Whole's default config with the synthetic SMPL-X stand-in."""
    return load_config(None, [f"human_model_path={synthetic_body_model_dir}"])


@pytest.fixture(scope="session")
def make_small_cfg(synthetic_body_model_dir: Path) -> Callable[..., Config]:
    """`make_small_cfg(*overrides)`: the reduced config (ResNet-18s, small inputs) with the synthetic stand-in,
    and further key=value overrides."""

    def make(*overrides: str) -> Config:
        return load_config(None, [f"human_model_path={synthetic_body_model_dir}", *SMALL_MODEL, *overrides])

    return make


@pytest.fixture(scope="session")
def small_cfg(make_small_cfg: Callable[..., Config]) -> Config:
    """The reduced config (ResNet-18s, small inputs) with the synthetic SMPL-X stand-in."""
    return make_small_cfg()


@pytest.fixture(scope="session")
def make_wholebody_targets() -> TargetMaker:
    """`make(cfg, batch, seed=0) -> (inputs, targets, meta_info)`: common.utils.fake_batch.make_wholebody_batch,
    the builder tool/benchmark.py also uses."""
    return make_wholebody_batch
