"""The whole-body model and its loss can fit a tiny fixed batch: the total loss falls by >= 80% under Adam.

An end-to-end check that every part of the forward/loss chain carries a useful gradient (a detached or
mis-wired branch leaves its terms flat). Kept cheap: 4 samples, ResNet-18s, a 128x96 crop, 2x2 heatmaps.
"""

from collections.abc import Callable

import pytest
import torch

from main.config import Config
from main.model import get_model
from tests.main.overfit import TARGET_RATIO, describe, overfit

# Smaller still than conftest's SMALL_MODEL: every backbone sees a 64-pixel input, the heatmaps are 2 x 2 cells.
TINY_MODEL = (
    "model.input_img_shape=[128,96]",
    "model.input_body_shape=[64,48]",
    "model.output_hm_shape=[8,2,2]",
    "model.input_hand_shape=[64,64]",
    "model.output_hand_hm_shape=[8,2,2]",
    "model.input_face_shape=[32,32]",
    "model.princpt=[24,32]",
)


def test_smplx_layer_runs_once_per_batch(make_small_cfg: Callable[..., Config], make_wholebody_targets) -> None:
    cfg = make_small_cfg(*TINY_MODEL)
    model = get_model(cfg, "train")
    calls = []
    model.smplx_head.layer.register_forward_hook(lambda module, args, output: calls.append(output.vertices.shape[0]))
    inputs, targets, meta_info = make_wholebody_targets(cfg, batch=4)
    model(inputs, targets, meta_info, "train")
    assert calls == [4]


@pytest.mark.slow
def test_total_loss_falls_by_80_percent_on_four_samples(
    make_small_cfg: Callable[..., Config], make_wholebody_targets
) -> None:
    cfg = make_small_cfg(*TINY_MODEL)
    torch.manual_seed(0)
    model = get_model(cfg, "train").train()
    inputs, targets, meta_info = make_wholebody_targets(cfg, batch=4, seed=5)  # fixed random images as inputs
    history = overfit(model, inputs, targets, meta_info)
    assert all(torch.isfinite(torch.tensor(history)))
    assert history[-1] <= TARGET_RATIO * history[0], describe(history)
