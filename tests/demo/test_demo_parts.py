"""The demo draws every mesh family: `--cfg pose2pose_{body,hand,face} --ckpt ...` writes the part's mesh, its
parameters under the part's file name and the overlays; the camera maps the part's input crop to the image."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from common.body_models import get_body_models
from common.engine.cli import run_cli
from common.engine.snapshot import write_snapshot
from common.utils.augmentation import process_bbox
from main.config import config_to_dict, load_config
from main.model import get_model

REPO_ROOT = Path(__file__).resolve().parents[2]
SMALL_PART = {  # the part geometry of tests/main/test_pose2pose.py: stride-32 features of 2 x 2 cells
    "body": ["model.input_img_shape=[64,48]", "model.output_hm_shape=[8,2,2]", "model.princpt=[24,32]"],
    "hand": ["model.input_img_shape=[64,64]", "model.output_hm_shape=[8,2,2]", "model.princpt=[32,32]"],
    "face": ["model.input_img_shape=[64,48]", "model.output_hm_shape=[8,2,2]", "model.princpt=[24,32]"],
}
EXPECTED = {  # parameter file, its keys and sizes, mesh vertex count getter
    "body": ("smpl_param.json", {"pose": 72, "shape": 10, "cam_trans": 3}),
    "hand": ("mano_param.json", {"pose": 48, "shape": 10, "cam_trans": 3}),
    "face": ("flame_param.json", {"root_pose": 3, "jaw_pose": 3, "shape": 10, "expr": 10, "cam_trans": 3}),
}


def _demo_main():
    spec = importlib.util.spec_from_file_location("demo_script_parts", REPO_ROOT / "demo" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize("part", ["body", "hand", "face"])
def test_demo_draws_the_part_model(part: str, synthetic_body_model_dir: Path, tmp_path: Path, capsys) -> None:
    overrides = [f"human_model_path={synthetic_body_model_dir}", "model.resnet_type=18", *SMALL_PART[part]]
    cfg = load_config(f"pose2pose_{part}", overrides)
    torch.manual_seed(0)
    snapshot = write_snapshot({"epoch": 0, "network": get_model(cfg, "train").state_dict(),
                               "config": config_to_dict(cfg)}, tmp_path / "snapshot_0.pth.tar")  # fmt: skip
    image_path = tmp_path / "image.png"
    cv2.imwrite(str(image_path), np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8))
    box = [50.0, 30.0, 40.0, 44.0]
    out = tmp_path / "out"
    argv = ["--img", str(image_path), "--ckpt", str(snapshot), "--bbox", ",".join(map(str, box)), "--out", str(out)]
    assert run_cli(_demo_main(), [*argv, "--hand-side", "left"] if part == "hand" else argv) == 0, capsys.readouterr()

    params_file, sizes = EXPECTED[part]
    params = json.loads((out / params_file).read_text())
    assert {key: len(params[key]) for key in sizes} == sizes
    # The part's crop: the box at the part input's aspect (a square for the hand), enlarged x1.25.
    (crop_h, crop_w) = cfg.model.input_img_shape
    crop_box = process_bbox(box, 160, 120, aspect_ratio=crop_w / crop_h)
    np.testing.assert_allclose(params["crop_bbox_xywh"], crop_box, rtol=1e-6)
    # Its camera: the part model's focal (in its input pixels) scaled to the crop box.
    np.testing.assert_allclose(params["focal"], np.array(cfg.model.focal) * crop_box[2:] / [crop_w, crop_h], rtol=1e-5)
    layers = get_body_models(synthetic_body_model_dir)
    layer = {"body": lambda: layers.smpl("neutral"), "hand": lambda: layers.mano("right"), "face": layers.flame}[part]()
    vertices = [line for line in (out / "output.obj").read_text().splitlines() if line.startswith("v ")]
    assert len(vertices) == layer.v_template.shape[0]
    for name in ("render_original_img.jpg", "render_cropped_img.jpg", "render_side_view.jpg"):
        assert cv2.imread(str(out / name)) is not None, name
