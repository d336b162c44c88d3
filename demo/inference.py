"""The demo's steps without the command line: device, config and model from a snapshot, one person's prediction."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from common.engine.checkpoint import load_network_state
from common.engine.cli import UsageError
from common.utils.augmentation import NO_AUGMENTATION, crop_image
from demo.camera import PersonCrop, PinholeCamera, crop_camera, original_image_camera
from main.config import Config, ModelConfig, load_config
from main.family import MeshView
from main.model import get_model

__all__ = ["PersonPrediction", "build_model", "demo_config", "predict_person", "select_device"]


def select_device(gpu_ids: Sequence[int]) -> tuple[torch.device, str | None]:
    """The device of a `--gpu` list: the GPU when CUDA has it, the CPU when there is no CUDA at all.

    Args:
        gpu_ids: parsed `--gpu` ids; the demo runs on one.

    Returns:
        (device, notice): the notice is a one-line message for the user when falling back to the CPU, else None.

    Raises:
        UsageError: more than one id, or an id that CUDA does not have.
    """
    if len(gpu_ids) != 1:
        raise UsageError(f"--gpu: the demo runs on one GPU, got {len(gpu_ids)} ids {list(gpu_ids)}")
    gpu_id = gpu_ids[0]
    if not torch.cuda.is_available():
        return torch.device("cpu"), f"no CUDA device available: running on the CPU instead of GPU {gpu_id}"
    count = torch.cuda.device_count()
    if gpu_id >= count:
        raise UsageError(f"--gpu {gpu_id}: no such GPU; this machine has {count} (ids 0-{count - 1})")
    return torch.device("cuda", gpu_id), None


def demo_config(cfg_path: str | None, overrides: Sequence[str], snapshot: Mapping[str, Any]) -> tuple[Config, str]:
    """The config to build the model with, and a few words saying where it came from.

    `--cfg` wins; without it, the config embedded in the snapshot (what it was trained with), so that a model
    trained with a non-default geometry loads without repeating its yaml; without either, the defaults. The
    key=value overrides apply on top in every case.

    Args:
        cfg_path: the --cfg value (a name in main/configs/ or a yaml path), or None.
        overrides: key=value strings.
        snapshot: a snapshot read by `common.engine.snapshot.read_snapshot`.

    Raises:
        main.config.ConfigError: a missing file, an unknown key or a bad value, named.
    """
    if cfg_path is not None:
        return load_config(cfg_path, overrides), f"config {cfg_path}"
    embedded = snapshot.get("config")
    if not isinstance(embedded, Mapping):
        return load_config(None, overrides), "the default config (the snapshot embeds none)"
    # load_config reads files only (so that every key is checked with its source named): go through one.
    with tempfile.TemporaryDirectory(prefix="demo_config_") as tmp:
        path = Path(tmp) / "snapshot_config.yaml"
        path.write_text(yaml.safe_dump(dict(embedded), sort_keys=False), encoding="utf-8")
        return load_config(path, overrides), "the config embedded in the snapshot"


def build_model(cfg: Config, network_state: Mapping[str, torch.Tensor], device: torch.device) -> nn.Module:
    """The config's model (its family, `model.arch`) in test mode with a snapshot's weights, loaded strictly.

    Raises:
        common.engine.checkpoint.StateDictMismatchError: the weights do not fit the config's architecture.
        common.body_models.files.MissingBodyModelFileError: the SMPL-X files of `cfg.human_model_path` are missing.
    """
    model = get_model(cfg, "test")
    load_network_state(model, network_state)
    return model.eval().to(device)


@dataclass
class PersonPrediction:
    """The network's output for one person and the geometry to show it.

    Attributes:
        crop: where the network input lies in the original image.
        crop_rgb: (H_crop, W_crop, 3) uint8 RGB, the network input.
        camera_crop: the virtual camera in crop pixels.
        camera_img: the virtual camera in original-image pixels (`demo.camera.original_image_camera`).
        outputs: the model's test-mode outputs without the batch dimension, float32 numpy (e.g. smplx_mesh_cam
            (V, 3) metres in the camera frame, smplx_root_pose (3,), ..., cam_trans (3,)).
    """

    crop: PersonCrop
    crop_rgb: np.ndarray
    camera_crop: PinholeCamera
    camera_img: PinholeCamera
    outputs: dict[str, np.ndarray]


def predict_person(
    model: nn.Module,
    image_rgb: np.ndarray,
    crop: PersonCrop,
    model_cfg: ModelConfig,
    view: MeshView,
    device: torch.device,
    is_left: bool = False,
) -> PersonPrediction:
    """Crops the person (or hand, or face) as the datasets do at test time and runs the model once.

    Args:
        model: the family's model in eval mode on `device`.
        image_rgb: (H, W, 3) uint8 RGB original image.
        crop: from `demo.camera.person_crop`, with crop_hw = model_cfg.input_img_shape.
        model_cfg: the model's geometry (virtual camera, input shapes).
        view: the family's mesh view (main.family.MeshView): the pixels its camera refers to.
        device: the model's device.
        is_left: the crop shows a left hand (read only by models with `view.takes_hand_side`).
    """
    crop_chw = crop_image(image_rgb, crop.img2crop, crop.crop_hw, NO_AUGMENTATION)  # (3, H, W) float32 in [0, 1]
    inputs = {"img": torch.from_numpy(crop_chw)[None].to(device)}
    if view.takes_hand_side:
        inputs["is_left"] = torch.tensor([is_left], device=device)
    with torch.inference_mode():
        out = model(inputs, {}, {}, "test")
    outputs = {key: value[0].float().cpu().numpy() for key, value in out.items()}
    crop_rgb = np.rint(crop_chw.transpose(1, 2, 0) * 255.0).astype(np.uint8)
    focal, princpt = model_cfg.focal, model_cfg.princpt
    return PersonPrediction(
        crop=crop,
        crop_rgb=crop_rgb,
        camera_crop=crop_camera(focal, princpt, view.camera_hw, crop.crop_hw),
        camera_img=original_image_camera(focal, princpt, view.camera_hw, crop),
        outputs=outputs,
    )
