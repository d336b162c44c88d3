"""Render SMPL-X in a few poses and shapes to one PNG, for a person to look at.

    python tool/render_body_model_gallery.py [--human-model-path DIR] [--out docs/synthetic_body_models.png]

Without --human-model-path the synthetic stand-in is generated (cached) and shown; with the licensed
files the same script shows the real model. Rendering is headless (pyrender through EGL).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`

import cv2
import numpy as np
import torch

from common.paths import REPO_ROOT

# SMPL-X's model frame (y up, facing +z) seen from the front by an OpenCV camera (y down, z away).
MODEL_TO_CAMERA = np.diag([1.0, -1.0, -1.0])
TILE_HW = (480, 360)


# every SMPL-X input with its size: the layers hold no default parameters, so each call passes all
SMPLX_INPUTS = {"global_orient": 3, "body_pose": 63, "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3,
                "left_hand_pose": 45, "right_hand_pose": 45, "betas": 10, "expression": 10}  # fmt: skip


def _pose(**params: list[float] | np.ndarray) -> dict[str, torch.Tensor]:
    """A batch of one SMPL-X parameter set: the given values, zeros for the rest."""
    full = {k: np.asarray(params.get(k, np.zeros(n)), dtype=np.float32) for k, n in SMPLX_INPUTS.items()}
    return {k: torch.from_numpy(v)[None] for k, v in full.items()}


def gallery_poses() -> list[tuple[str, dict[str, torch.Tensor], str]]:
    """(title, SMPL-X parameters, framing) per tile: framing is 'body', 'left_hand' or 'head'."""
    arms_up = np.zeros(63)
    arms_up[3 * 15 + 2], arms_up[3 * 16 + 2] = 1.1, -1.1  # shoulders (joints 16, 17) about z
    arms_up[3 * 17 + 1], arms_up[3 * 18 + 1] = -0.5, 0.5  # elbows
    walking = np.zeros(63)
    walking[3 * 0], walking[3 * 1], walking[3 * 3], walking[3 * 4] = -0.5, 0.4, 0.6, 0.2  # hips and knees
    walking[3 * 15 + 2], walking[3 * 16 + 2] = -1.2, 1.2  # arms down
    fist = np.tile([0.0, 0.0, -1.3], 15)
    return [
        ("rest pose", _pose(), "body"),
        ("arms raised", _pose(body_pose=arms_up), "body"),
        ("walking", _pose(body_pose=walking), "body"),
        ("shape +2, +2", _pose(betas=[2.0, 2.0] + [0.0] * 8, body_pose=walking), "body"),
        ("shape -2, -2", _pose(betas=[-2.0, -2.0] + [0.0] * 8, body_pose=walking), "body"),
        ("mean hand", _pose(), "left_hand"),
        ("fist", _pose(left_hand_pose=fist), "left_hand"),
        ("jaw open, smile", _pose(jaw_pose=[0.35, 0.0, 0.0], expression=[0, 2.5] + [0.0] * 8), "head"),
    ]


def render_tile(renderer, vertices: np.ndarray, faces: np.ndarray, focus: np.ndarray, extent: float) -> np.ndarray:
    """Render vertices (model frame) with the camera centred on ``focus``, ``extent`` metres tall in view.

    Returns:
        (H, W, 3) uint8 RGB on a white background.
    """
    from common.utils.render import MeshSpec

    height, width = TILE_HW
    distance = 3.0 * extent
    cam = (vertices - focus) @ MODEL_TO_CAMERA.T + [0.0, 0.0, distance]
    focal = height * distance / extent
    princpt = ((width - 1) / 2, (height - 1) / 2)  # the image centre, pixel centres at integers
    out = renderer.render(MeshSpec(cam, faces, color=(0.82, 0.68, 0.58)), (focal, focal), princpt)
    return (np.where(out.mask[..., None], out.color, 1.0) * 255).round().astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--human-model-path", type=Path, default=None, help="default: the synthetic stand-in")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "synthetic_body_models.png")
    args = parser.parse_args(argv)

    from common.body_models import get_body_models
    from common.body_models.synthetic import ensure_synthetic_body_models
    from common.utils.draw import make_grid
    from common.utils.render import MeshRenderer

    model_path = args.human_model_path or ensure_synthetic_body_models()
    layer = get_body_models(model_path).smplx("neutral")
    faces = np.asarray(layer.faces, dtype=np.int64)
    tiles = []
    with MeshRenderer(TILE_HW[1], TILE_HW[0]) as renderer, torch.no_grad():
        for title, params, framing in gallery_poses():
            out = layer(**params)
            vertices, joints = out.vertices[0].numpy(), out.joints[0].numpy()
            if framing == "body":
                focus, extent = 0.5 * (vertices.min(0) + vertices.max(0)), 1.25 * np.ptp(vertices[:, 1])
            elif framing == "left_hand":
                focus, extent = joints[20] + [0.08, -0.04, 0.0], 0.3
            else:
                focus, extent = joints[15] + [0.0, 0.11, 0.0], 0.3
            tile = render_tile(renderer, vertices, faces, focus, extent)
            tile = cv2.putText(tile, title, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2)
            tiles.append(tile)
    grid = make_grid(tiles, ncols=4)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out} ({len(tiles)} views of {model_path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
