"""A toy model family, dataset, evaluator and output format: docs/extending.md's four recipes, in code.

Not a test file (tests/main/test_extending.py registers these and runs train.py and test.py on them). The family
'toy_dot' finds one bright dot in a crop: `ToyDots` is a dataset in a layout of its own (one json of images and dot
positions), `DotTargets` its sample contract, `DotNet` the network, `DotTargets.evaluate` the evaluator (pixel
error) and `ToyDots.report` writes the output format (`predictions.json` beside the metrics).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from common.utils.atomic_io import write_json_atomic
from common.utils.augmentation import AugParams, apply_affine
from data.dataset import BaseDataset
from data.record import Record
from data.targets.base import TargetBuilder
from main.family import Family

ARCH = "toy_dot"
DOT_NAME = "Dot"  # the one joint of the toy dataset, by name


# --- recipe 1: a dataset -----------------------------------------------------------------------------
def write_toy_dots(root: Path, count: int, seed: int = 0, hw: tuple[int, int] = (64, 48)) -> None:
    """Writes `count` images with one white dot each and `dots.json` ({'images': [{file_name, dot_xy}]})."""
    rng = np.random.default_rng(seed)
    entries = []
    for index in range(count):
        image = np.zeros((*hw, 3), np.uint8)
        dot_xy = rng.uniform([8, 8], [hw[1] - 8, hw[0] - 8])
        cv2.circle(image, tuple(int(v) for v in np.rint(dot_xy)), 3, (255, 255, 255), -1)
        name = f"images/{index:04d}.png"
        (root / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), image)
        entries.append({"file_name": name, "dot_xy": dot_xy.tolist()})
    (root / "dots.json").write_text(json.dumps({"images": entries}), encoding="utf-8")


class ToyDots(BaseDataset):
    """One record per image: the whole image is the crop box, the dot is joint 'Dot' in pixels."""

    NAME = "ToyDots"
    SPLITS = ("train", "test")
    JOINT_NAMES = (DOT_NAME,)

    def load_records(self) -> list[Record]:
        path = self.annotation_file("dots.json")
        records = []
        for entry in json.loads(path.read_text(encoding="utf-8"))["images"]:
            image = cv2.imread(str(self.root / entry["file_name"]))
            height, width = image.shape[:2]
            records.append(Record(img_path=self.root / entry["file_name"], img_hw=(height, width),
                                  bbox_xywh_img=np.array([0.0, 0.0, width, height], np.float32),
                                  joints_xy_img=np.array([entry["dot_xy"]]), joints_valid=np.ones(1)))  # fmt: skip
        return records

    # --- recipe 4: an output format --------------------------------------------------------------------
    def report(self, eval_result: Mapping[str, Sequence[float]], output_dir: str) -> tuple[str, Path]:
        table, path = super().report(eval_result, output_dir)
        predictions = [{"index": i, "dot_error_px": e} for i, e in enumerate(eval_result["dot_error_px"])]
        write_json_atomic(path.parent / "predictions.json", predictions, indent=1)
        return table, path


# --- recipe 2: a family (targets, network, hooks) -------------------------------------------------------
class DotTargets(TargetBuilder):
    """inputs: img (3, H, W); targets: dot_crop (2,) crop pixels; meta_info: dot_valid ()."""

    crop = "body"
    eval_extras = (("targets", "dot_crop", "dot_crop_target"),)

    def build(self, dataset: BaseDataset, record: Record, img2crop: np.ndarray,
              aug: AugParams) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:  # fmt: skip
        dot_crop = apply_affine(img2crop, np.asarray(record.joints_xy_img, np.float64))[0]  # (2,)
        return {}, {"dot_crop": dot_crop.astype(np.float32)}, {"dot_valid": np.asarray(1.0, np.float32)}

    def sample_shapes(self, split: str) -> dict[str, tuple[int, ...]]:
        return {"img": (3, *self.space.input_hw), "dot_crop": (2,), "dot_valid": ()}

    # --- recipe 3: an evaluator --------------------------------------------------------------------------
    def evaluate(self, dataset: BaseDataset, outs: Sequence[Mapping[str, np.ndarray]]) -> dict[str, list[float]]:
        return {"dot_error_px": [float(np.linalg.norm(o["dot_crop"] - o["dot_crop_target"])) for o in outs]}


class DotNet(nn.Module):
    """A tiny CNN regressing the dot's crop pixels."""

    def __init__(self, input_hw: tuple[int, int]) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4))
        self.head = nn.Linear(8 * 16, 2)
        self.register_buffer("scale", torch.tensor([input_hw[1], input_hw[0]], dtype=torch.float32), persistent=False)

    def forward(self, inputs: dict[str, Tensor], targets: dict[str, Tensor] | None = None,
                meta_info: dict[str, Tensor] | None = None, mode: str = "test") -> dict[str, Tensor]:  # fmt: skip
        dot_crop = torch.sigmoid(self.head(self.features(inputs["img"]).flatten(1))) * self.scale  # (B, 2)
        if mode == "train":
            assert targets is not None and meta_info is not None
            error = (dot_crop - targets["dot_crop"]).abs().mean(-1)  # (B,)
            return {"dot": (error * meta_info["dot_valid"]).mean()}
        return {"dot_crop": dot_crop}


def build_dot_net(cfg: Any, mode: str) -> DotNet:
    return DotNet(tuple(cfg.model.input_img_shape))


class DotPicture:
    """The training picture: the predicted dot drawn on the crops, side by side."""

    def draw(self, model: nn.Module, inputs: dict[str, Tensor]) -> np.ndarray | None:
        dots = model(inputs, mode="test")["dot_crop"].cpu().numpy()
        crops = (inputs["img"].permute(0, 2, 3, 1).cpu().numpy() * 255).astype(np.uint8).copy()
        for crop, (x, y) in zip(crops, dots, strict=True):
            cv2.circle(crop, (int(x), int(y)), 2, (255, 0, 0), -1)
        return np.concatenate(list(crops), axis=1)

    def close(self) -> None:
        pass


def dot_picture(cfg: Any) -> DotPicture:
    return DotPicture()


TOY_FAMILY = Family(ARCH, "toy: one dot in a crop -> its pixel position", build_dot_net, dot_picture)
