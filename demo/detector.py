"""The person box of the demo from torchvision's COCO Faster R-CNN, when the user has its weights file.

Hand4Whole's demo took the highest-scoring box of any class, so a detected chair or dog could become the
"person". Here only COCO's person class counts. Nothing is downloaded: the weights come from a local file
(torchvision's `fasterrcnn_resnet50_fpn_coco-258fb6c6.pth` or any state_dict of the same architecture).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from common.engine.checkpoint import load_network_state
from common.engine.cli import UsageError

__all__ = ["COCO_PERSON_LABEL", "PersonDetection", "detect_person", "load_person_detector", "select_person_box"]

COCO_PERSON_LABEL = 1  # torchvision's COCO category list: 0 '__background__', 1 'person'
DEFAULT_MIN_SCORE = 0.5

# A detector maps a list of (3, H, W) float RGB images in [0, 1] to one dict per image with 'boxes' (N, 4) xyxy
# pixels, 'labels' (N,) int64 and 'scores' (N,) float, as torchvision's detection models do in eval mode.
Detector = Callable[[list[Tensor]], list[Mapping[str, Tensor]]]
PersonDetection = tuple[np.ndarray, float]  # ((4,) float32 xywh box in image pixels, score)


def load_person_detector(weights_path: str | os.PathLike[str], device: torch.device) -> nn.Module:
    """torchvision's Faster R-CNN (ResNet-50 FPN, COCO's 91 classes) with weights from a local file, in eval mode.

    Args:
        weights_path: a state_dict file of `torchvision.models.detection.fasterrcnn_resnet50_fpn`.
        device: where to put the detector.

    Raises:
        FileNotFoundError: the file does not exist.
        UsageError: the file cannot be read as a state_dict.
        StateDictMismatchError: its keys or shapes do not match the architecture (listed).
    """
    from torchvision.models.detection import fasterrcnn_resnet50_fpn  # lazily: only this path needs detection

    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"detector weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise UsageError(f"cannot read detector weights {path}: {exc}") from exc
    if not isinstance(state, Mapping):
        raise UsageError(f"detector weights {path}: expected a state_dict, found {type(state).__name__}")
    # weights=None, weights_backbone=None: build the bare architecture, download nothing.
    detector = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    load_network_state(detector, state)
    return detector.eval().to(device)


def select_person_box(
    detections: Mapping[str, Tensor], min_score: float = DEFAULT_MIN_SCORE, person_label: int = COCO_PERSON_LABEL
) -> PersonDetection | None:
    """The highest-scoring person among one image's detections; other classes are ignored.

    Args:
        detections: 'boxes' (N, 4) xyxy pixels, 'labels' (N,) class ids, 'scores' (N,) in [0, 1].
        min_score: persons scoring below this are ignored.
        person_label: the class id of a person.

    Returns:
        ((4,) float32 xywh box in image pixels, score), or None when no person scores at least `min_score`.
    """
    boxes = detections["boxes"].detach().cpu().double()
    labels, scores = detections["labels"].detach().cpu(), detections["scores"].detach().cpu().double()
    candidates = torch.nonzero((labels == person_label) & (scores >= min_score)).flatten()
    if len(candidates) == 0:
        return None
    best = int(candidates[torch.argmax(scores[candidates])])
    x1, y1, x2, y2 = boxes[best].tolist()
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float32), float(scores[best])


def detect_person(
    detector: Detector, image_rgb: np.ndarray, device: torch.device, min_score: float = DEFAULT_MIN_SCORE
) -> PersonDetection | None:
    """Runs a detector on one image and returns its best person (see `select_person_box`).

    Args:
        detector: a torchvision-style detection model in eval mode (or anything called the same way).
        image_rgb: (H, W, 3) uint8 RGB.
        device: the detector's device.
        min_score: persons scoring below this are ignored.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(image_rgb)).permute(2, 0, 1).to(device, torch.float32) / 255.0
    with torch.inference_mode():
        (detections,) = detector([tensor])
    return select_person_box(detections, min_score)
