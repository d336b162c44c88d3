"""Each Pose2Pose part model and its loss fit four real samples: the total loss falls by >= 80% under Adam.

The samples come through the whole data path (synthetic FreiHAND, FFHQ and AGORA-SMPL files -> loader -> the
family's targets), so a target built in another space than the model predicts in, or a detached branch, leaves
the loss flat. Tiny geometry: ResNet-18 on 64-pixel crops with 2 x 2 heatmaps.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import default_collate

from data import build_dataset
from main.config import load_config
from main.model import get_model
from tests.main.overfit import TARGET_RATIO, describe, overfit

TINY_PART = {
    "body": ["model.input_img_shape=[64,48]", "model.output_hm_shape=[8,2,2]", "model.princpt=[24,32]"],
    "hand": ["model.input_img_shape=[64,64]", "model.output_hm_shape=[8,2,2]", "model.princpt=[32,32]"],
    "face": ["model.input_img_shape=[64,48]", "model.output_hm_shape=[8,2,2]", "model.princpt=[24,32]"],
}
DATASET = {"body": "AGORA", "hand": "FreiHAND", "face": "FFHQ"}


@pytest.fixture(scope="module")
def part_roots(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path,
               synthetic_agora_dir: Path) -> dict[str, Path]:  # fmt: skip
    from data.Synthetic import make_ffhq, make_freihand

    hands, faces = tmp_path_factory.mktemp("freihand"), tmp_path_factory.mktemp("ffhq")
    make_freihand(hands, 4, "train", seed=3, human_model_path=synthetic_body_model_dir, progress=False)
    make_ffhq(faces, 4, seed=3, human_model_path=synthetic_body_model_dir, progress=False)
    return {"FreiHAND": hands / "data", "FFHQ": faces / "data", "AGORA": synthetic_agora_dir}


@pytest.mark.slow
@pytest.mark.parametrize("part", ["body", "hand", "face"])
def test_part_model_total_loss_falls_by_80_percent_on_four_samples(
    part: str, part_roots: dict[str, Path], synthetic_body_model_dir: Path
) -> None:
    name = DATASET[part]
    cfg = load_config(f"pose2pose_{part}", [f"human_model_path={synthetic_body_model_dir}", "model.resnet_type=18",
                                            *TINY_PART[part], f"data.dataset_roots={{{name}: {part_roots[name]}}}",
                                            "data.agora_gender=annotated"])  # fmt: skip
    dataset = build_dataset(name, "train", cfg)
    inputs, targets, meta_info = default_collate([dataset[i] for i in range(4)])
    torch.manual_seed(0)
    model = get_model(cfg, "train").train()
    history = overfit(model, inputs, targets, meta_info)
    assert all(torch.isfinite(torch.tensor(history)))
    assert history[-1] <= TARGET_RATIO * history[0], f"{part}: {describe(history)}"
