"""Helpers for the dataset-loader tests: tiny images, a config pointing at a fixture, SMPL-X fits posed with the
synthetic stand-in, and the hand-computed crop geometry they share.

Every fixture image is 64x48 (W x H) with one person box (20, 8, 24, 32) xywh. Hand4Whole's sanitising makes
it 23 x 31 pixels (x2 = x1 + w - 1) about the centre (31.5, 23.5); growing the short side to aspect 0.75 gives
23.25 x 31, and x1.25 gives the crop box (16.96875, 4.125, 29.0625, 38.75). Without augmentation a pixel (u, v)
lands at x_hm = (u - 16.96875) / 29.0625 * W_hm, y_hm = (v - 4.125) / 38.75 * H_hm.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from common.geometry import axis_angle_to_rotmat, rotmat_to_axis_angle
from main.config import Config, load_config

IMG_HW = (48, 64)
PERSON_BOX = [20.0, 8.0, 24.0, 32.0]  # xywh
CROP_BOX = (16.96875, 4.125, 29.0625, 38.75)  # worked out in the module docstring
FOCAL, PRINCPT = (60.0, 60.0), (32.0, 24.0)  # pixels; a 1.7 m person 4 m away is ~25 px tall


def expected_hm(u: float, v: float, hm_hw: tuple[int, int]) -> np.ndarray:
    """(2,) heatmap (x, y) of image pixel (u, v) in an un-augmented sample of a fixture's person box."""
    x0, y0, w, h = CROP_BOX
    return np.array([(u - x0) / w * hm_hw[1], (v - y0) / h * hm_hw[0]])


def write_image(path: Path, seed: int = 0, hw: tuple[int, int] = IMG_HW) -> None:
    """A random RGB PNG of size hw (H, W) at ``path`` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (*hw, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)


def write_json(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content), encoding="utf-8")


def make_cfg(human_model_path: Path, roots: Mapping[str, Path], *overrides: str) -> Config:
    """The default config with the given body models and dataset roots (yaml flow mapping, as a user types it)."""
    mapping = json.dumps({name: str(path) for name, path in roots.items()})  # json is yaml
    return load_config(None, [f"human_model_path={human_model_path}", f"data.dataset_roots={mapping}", *overrides])


def project(points_cam: np.ndarray) -> np.ndarray:
    """(N, 3) camera metres -> (N, 2) pixels with the fixtures' intrinsics."""
    return points_cam[:, :2] / points_cam[:, 2:] * np.asarray(FOCAL) + np.asarray(PRINCPT)


def rotation(axis_angle: Any) -> np.ndarray:
    """(3, 3) float64 rotation matrix of an axis-angle vector."""
    return axis_angle_to_rotmat(torch.as_tensor(axis_angle, dtype=torch.float64)).numpy()


UPRIGHT = rotation([np.pi, 0.0, 0.0])  # SMPL-X's y-up model frame -> upright in the y-down camera frame


def smplx_world_fit(seed: int, cam_rotation: np.ndarray, layer: Any, pelvis_cam: tuple[float, float, float]) -> dict:
    """A bare NeuralAnnot SMPL-X fit in a world frame: upright and facing a camera of rotation ``cam_rotation``
    (world -> camera) and zero translation, with its pelvis at ``pelvis_cam`` metres in that camera's frame
    before the camera's own translation is added (so callers add t themselves)."""
    rng = np.random.default_rng(seed)
    root = rotmat_to_axis_angle(torch.as_tensor(cam_rotation.T @ UPRIGHT)).numpy()
    fit = {"root_pose": root.tolist(), "body_pose": (0.1 * rng.standard_normal(63)).tolist(),
           "shape": (0.5 * rng.standard_normal(10)).tolist(), "trans": [0.0, 0.0, 0.0],
           "lhand_pose": (0.1 * rng.standard_normal(45)).tolist(),
           "rhand_pose": (0.1 * rng.standard_normal(45)).tolist(),
           "jaw_pose": [0.1, 0.0, 0.0], "expr": (0.3 * rng.standard_normal(10)).tolist()}  # fmt: skip
    pelvis_world = smplx_world_mesh(layer, fit, joints=True)[0]
    fit["trans"] = (cam_rotation.T @ np.asarray(pelvis_cam) - pelvis_world).tolist()
    return fit


def smplx_world_mesh(layer: Any, fit: Mapping[str, Any], joints: bool = False) -> np.ndarray:
    """(V, 3) float64 vertices (or the layer's joints) of a bare fit, posed directly with the SMPL-X layer."""

    def arg(key: str, size: int) -> torch.Tensor:
        return torch.as_tensor(np.asarray(fit.get(key, np.zeros(size)), np.float32).reshape(1, size))

    with torch.no_grad():
        out = layer(global_orient=arg("root_pose", 3), body_pose=arg("body_pose", 63), betas=arg("shape", 10),
                    transl=arg("trans", 3), left_hand_pose=arg("lhand_pose", 45), right_hand_pose=arg("rhand_pose", 45),
                    jaw_pose=arg("jaw_pose", 3), expression=arg("expr", 10), leye_pose=arg("leye", 3),
                    reye_pose=arg("reye", 3))  # fmt: skip
    return (out.joints if joints else out.vertices)[0].numpy().astype(np.float64)


def empty_coco() -> dict[str, list]:
    return {"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}


def check_sample_contract(sample: tuple[dict, dict, dict], shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """Assert that a sample has exactly the contract's keys, shapes and float32 dtypes; returns them merged."""
    inputs, targets, meta = sample
    merged = {**inputs, **targets, **meta}
    assert len(merged) == len(inputs) + len(targets) + len(meta), "a key appears in two of the three dicts"
    assert set(merged) == set(shapes), set(merged) ^ set(shapes)
    for key, value in merged.items():
        assert tuple(value.shape) == shapes[key], (key, tuple(value.shape), shapes[key])
        assert value.dtype in (np.float32, torch.float32), (key, value.dtype)
        assert np.isfinite(np.asarray(value)).all(), key
    for key in merged:
        if key.endswith(("_valid", "_trunc")) or key == "is_3D":
            assert set(np.unique(np.asarray(merged[key]))) <= {0.0, 1.0}, key
    return merged
