"""Make demo/input.png: a held-out ('validation' split) synthetic image cut around one person in full view.

    python demo/make_sample_input.py [--human-model-path DIR] [--seed 0] [--out demo/input.png]

Renders validation images of the synthetic generator (data.Synthetic) with the stand-in body models by default,
takes the first person who is valid, hardly occluded, entirely inside the image, tall enough and alone in the
cut, and writes the image cut to that person's box (aspect 0.75, enlarged x1.1, clipped to the image), so that
the demo's whole-image default box is that person. Same seed and body models, same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`, `data`

import cv2
import numpy as np
import torch

from common.body_models.synthetic import ensure_synthetic_body_models
from common.geometry import project_points
from common.paths import REPO_ROOT, resolve_repo_path
from common.utils.augmentation import get_bbox
from data.Synthetic import GeneratorOptions, ImageGenerator

MAX_IMAGES = 50  # validation images tried before giving up
MAX_OCCLUSION = 5.0  # percent
MIN_HEIGHT_PX = 300  # of the person's box in the 1280x720 image
CUT_ENLARGE = 1.1  # the demo enlarges the whole-image box by 1.25 more, as the datasets do their boxes
CUT_ASPECT = 0.75  # width / height, the network input's


def _cut_box(joints_img: np.ndarray, img_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(x1, y1, x2, y2) integer cut around a person whose joints (J, 2) lie inside the image, else None."""
    height, width = img_hw
    box = get_bbox(joints_img, np.ones(len(joints_img)))  # xywh, x1.2 about the joints' extent
    x, y, w, h = (float(v) for v in box)
    if x < 0 or y < 0 or x + w > width or y + h > height or h < MIN_HEIGHT_PX:
        return None
    w, h = max(w, h * CUT_ASPECT) * CUT_ENLARGE, max(h, w / CUT_ASPECT) * CUT_ENLARGE
    cx, cy = x + box[2] / 2, y + box[3] / 2
    x1, y1 = max(0, round(cx - w / 2)), max(0, round(cy - h / 2))
    x2, y2 = min(width, round(cx + w / 2)), min(height, round(cy + h / 2))
    return x1, y1, x2, y2


def _overlaps(cut: tuple[int, int, int, int], joints_img: np.ndarray) -> bool:
    """Whether any of the (J, 2) joints falls inside the cut (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = cut
    inside = (joints_img[:, 0] >= x1) & (joints_img[:, 0] < x2) & (joints_img[:, 1] >= y1) & (joints_img[:, 1] < y2)
    return bool(inside.any())


def make_sample_input(human_model_path: Path, seed: int) -> tuple[np.ndarray, int]:
    """The cut image (H, W, 3) uint8 RGB and the index of the validation image it comes from."""
    options = GeneratorOptions(split="validation", seed=seed)
    with ImageGenerator(human_model_path, options, out_dir=REPO_ROOT / "output") as generator:
        for index in range(MAX_IMAGES):
            scene, result, valid = generator.render(index)
            joints_img = [
                project_points(
                    torch.from_numpy(p.joints.astype(np.float64)), scene.camera.focal, scene.camera.princpt
                ).numpy()
                for p in scene.people
            ]  # (J, 2) pixels per person
            for pid in range(len(scene.people)):
                if not valid[pid] or result.occlusion[pid] > MAX_OCCLUSION:
                    continue
                cut = _cut_box(joints_img[pid], result.image.shape[:2])
                others = [joints for other, joints in enumerate(joints_img) if other != pid]
                if cut is not None and not any(_overlaps(cut, joints) for joints in others):
                    x1, y1, x2, y2 = cut
                    return np.ascontiguousarray(result.image[y1:y2, x1:x2]), index
    raise RuntimeError(f"no person in full view in the first {MAX_IMAGES} validation images (seed {seed})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--human-model-path", help="body-model tree (default: the synthetic stand-in)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="demo/input.png", help="relative to the repository root")
    args = parser.parse_args(argv)
    models = resolve_repo_path(args.human_model_path) if args.human_model_path else ensure_synthetic_body_models()
    image, index = make_sample_input(models, args.seed)
    out = resolve_repo_path(args.out)
    if not cv2.imwrite(str(out), image[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"could not write {out}")
    print(f"wrote {out} ({image.shape[1]}x{image.shape[0]}, validation image {index}, {out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
