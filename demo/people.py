"""Several people in one image: their boxes, one batch through the model, one shared camera, the written files.

`python demo/demo.py --bboxes boxes.json` (or `--detector-weights PATH` without `--bbox`) runs this instead of the
single-person path. Every person is cropped as the datasets crop (demo/camera.py), all crops go through the
model in one batch, each prediction is placed in the image camera (demo/full_image_camera.py), and the demo
writes one overlay with everyone ordered by depth, one side view of the group, and per person one OBJ and one
parameter file whose names carry the person's index and box.

A boxes file is a JSON list whose entries are [x, y, w, h] (original-image pixels) or objects with a "bbox" key
holding that list; a video's per-frame file (demo/video.py) maps frame indices to such lists.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from common.engine.cli import UsageError
from common.utils.atomic_io import write_bytes_atomic
from common.utils.augmentation import NO_AUGMENTATION, crop_image
from common.utils.errors import InputDataError
from common.utils.render import MeshRenderer
from demo.camera import PersonCrop, PinholeCamera, crop_camera, original_image_camera, person_crop
from demo.detector import COCO_PERSON_LABEL, Detector, PersonDetection, load_person_detector
from demo.full_image_camera import PersonInImage, drawn_vertices, place_in_image_camera
from demo.inference import PersonPrediction
from demo.outputs import obj_text, param_record
from demo.render_people import render_people_overlay, render_people_side_view
from main.config import Config, ModelConfig
from main.family import MeshView

__all__ = [
    "PEOPLE_FILES",
    "BoxesFileError",
    "PersonFiles",
    "detect_people",
    "parse_box_entries",
    "people_boxes",
    "person_file_stem",
    "place_people",
    "predict_people",
    "read_boxes_json",
    "run_people_demo",
    "select_people_boxes",
    "write_people_outputs",
]

PEOPLE_FILES: dict[str, str] = {
    "overlay": "render_people_img.jpg",  # everyone over the original image, image camera, nearest in front
    "side_view": "render_people_side_view.jpg",  # the group's rigid meshes turned 90 degrees, on white
}
_JPEG_QUALITY = 95
_OVERLAY_ALPHA = 0.85


class BoxesFileError(InputDataError, ValueError):
    """A boxes file that cannot be used; the message names the file and the entry at fault."""


def parse_box_entries(entries: Any, where: str) -> list[np.ndarray]:
    """Boxes from a JSON list of [x, y, w, h] or {"bbox": [x, y, w, h]} entries (original-image pixels).

    Args:
        entries: the decoded JSON value.
        where: the file (and key) it came from, for the error message.

    Returns:
        (4,) float32 xywh boxes, in the file's order.

    Raises:
        BoxesFileError: not a list, or an entry without four finite numbers and a positive width and height.
    """
    if not isinstance(entries, list):
        raise BoxesFileError(f"{where}: expected a list of boxes [x, y, w, h], found {type(entries).__name__}")
    boxes = []
    for index, entry in enumerate(entries):
        values = entry.get("bbox") if isinstance(entry, Mapping) else entry
        valid = (
            isinstance(values, list)
            and len(values) == 4
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)
        )
        if not valid:
            raise BoxesFileError(f"{where}: entry {index} is not [x, y, w, h] or {{'bbox': [x, y, w, h]}}: {entry!r}")
        if values[2] <= 0 or values[3] <= 0:
            raise BoxesFileError(f"{where}: entry {index} {values}: width and height must be positive")
        boxes.append(np.array(values, dtype=np.float32))
    return boxes


def read_boxes_json(path: str | os.PathLike[str]) -> Any:
    """The decoded content of a JSON boxes file.

    Raises:
        FileNotFoundError: no such file.
        BoxesFileError: not readable as JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"boxes file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BoxesFileError(f"{path}: not a readable JSON file ({exc})") from exc


def select_people_boxes(detections: Mapping[str, Tensor], min_score: float) -> list[PersonDetection]:
    """Every person among one image's detections scoring at least `min_score`, best first; other classes ignored.

    Args:
        detections: 'boxes' (N, 4) xyxy pixels, 'labels' (N,) COCO class ids, 'scores' (N,) in [0, 1].
        min_score: persons scoring below this are ignored.

    Returns:
        ((4,) float32 xywh box in image pixels, score) per person.
    """
    boxes = detections["boxes"].detach().cpu().double()
    labels, scores = detections["labels"].detach().cpu(), detections["scores"].detach().cpu().double()
    keep = torch.nonzero((labels == COCO_PERSON_LABEL) & (scores >= min_score)).flatten()
    keep = keep[torch.argsort(scores[keep], descending=True, stable=True)]
    people = []
    for index in keep.tolist():
        x1, y1, x2, y2 = boxes[index].tolist()
        people.append((np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float32), float(scores[index])))
    return people


def detect_people(
    detector: Detector, image_rgb: np.ndarray, device: torch.device, min_score: float
) -> list[PersonDetection]:
    """Runs a torchvision-style detector on one (H, W, 3) uint8 RGB image; its persons as `select_people_boxes`."""
    tensor = torch.from_numpy(np.ascontiguousarray(image_rgb)).permute(2, 0, 1).to(device, torch.float32) / 255.0
    with torch.inference_mode():
        (detections,) = detector([tensor])
    return select_people_boxes(detections, min_score)


def predict_people(
    model: nn.Module,
    image_rgb: np.ndarray,
    crops: Sequence[PersonCrop],
    model_cfg: ModelConfig,
    view: MeshView,
    device: torch.device,
    is_left: bool = False,
) -> list[PersonPrediction]:
    """Every person's crop through the model in one batch (as `demo.inference.predict_person` does for one).

    Args:
        model: the family's model in eval mode on `device`.
        image_rgb: (H, W, 3) uint8 RGB original image.
        crops: the people's crops (`demo.camera.person_crop` with crop_hw = model_cfg.input_img_shape).
        model_cfg: the model's geometry (virtual camera, input shapes).
        view: the family's mesh view.
        device: the model's device.
        is_left: every crop shows a left hand (read only by models with `view.takes_hand_side`).
    """
    if not crops:
        return []
    crops_chw = np.stack([crop_image(image_rgb, c.img2crop, c.crop_hw, NO_AUGMENTATION) for c in crops])
    inputs = {"img": torch.from_numpy(crops_chw).to(device)}  # (N, 3, H, W) float32 in [0, 1]
    if view.takes_hand_side:
        inputs["is_left"] = torch.full((len(crops),), is_left, dtype=torch.bool, device=device)
    with torch.inference_mode():
        out = model(inputs, {}, {}, "test")
    outputs = {key: value.float().cpu().numpy() for key, value in out.items()}
    focal, princpt = model_cfg.focal, model_cfg.princpt
    predictions = []
    for index, crop in enumerate(crops):
        predictions.append(
            PersonPrediction(
                crop=crop,
                crop_rgb=np.rint(crops_chw[index].transpose(1, 2, 0) * 255.0).astype(np.uint8),
                camera_crop=crop_camera(focal, princpt, view.camera_hw, crop.crop_hw),
                camera_img=original_image_camera(focal, princpt, view.camera_hw, crop),
                outputs={key: value[index] for key, value in outputs.items()},
            )
        )
    return predictions


def place_people(
    predictions: Sequence[PersonPrediction], view: MeshView, camera_img: PinholeCamera
) -> list[PersonInImage]:
    """Each prediction's mesh moved into the image camera (`demo.full_image_camera.place_in_image_camera`)."""
    return [
        place_in_image_camera(p.outputs[view.mesh_key], p.outputs["cam_trans"], p.camera_img, camera_img)
        for p in predictions
    ]


def person_file_stem(index: int, bbox_xywh: Sequence[float]) -> str:
    """'person00_box_60_20_50_110': the person's index and its box (x, y, w, h rounded to pixels)."""
    return f"person{index:02d}_box_" + "_".join(str(int(round(float(v)))) for v in bbox_xywh)


@dataclass(frozen=True)
class PersonFiles:
    """The files of one person: its mesh and its parameter file."""

    mesh: Path
    params: Path


def _write_jpeg(path: Path, image_rgb: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".jpg", image_rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise OSError(f"could not encode {path}")
    write_bytes_atomic(path, encoded.tobytes())


def _person_record(
    index: int, prediction: PersonPrediction, placed: PersonInImage, view: MeshView, img_hw: tuple[int, int],
    bbox_xywh: np.ndarray, camera_img: PinholeCamera,
) -> dict[str, Any]:  # fmt: skip
    """The single demo's parameter record with the shared camera: `cam_trans`, `focal` and `princpt` place the OBJ
    in the image camera; the crop_* keys keep the person's own camera (the single demo's values)."""
    record = {"person_index": index, **param_record(prediction, view, img_hw, bbox_xywh)}
    record["crop_cam_trans"] = record.pop("cam_trans")
    record["crop_focal"], record["crop_princpt"] = record.pop("focal"), record.pop("princpt")
    record["cam_trans"] = placed.cam_trans_m.tolist()
    record["focal"], record["princpt"] = list(camera_img.focal), list(camera_img.princpt)
    record["residual_px"] = placed.residual_px
    return record


def write_people_outputs(
    out_dir: Path,
    image_rgb: np.ndarray,
    predictions: Sequence[PersonPrediction],
    placements: Sequence[PersonInImage],
    view: MeshView,
    boxes_xywh: Sequence[np.ndarray],
    camera_img: PinholeCamera,
    renderer: MeshRenderer,
) -> tuple[dict[str, Path], list[PersonFiles]]:
    """Writes the overlay, the side view and each person's OBJ and parameter file into `out_dir` (created).

    Args:
        out_dir: output folder.
        image_rgb: (H, W, 3) uint8 RGB original image.
        predictions: per person, the network's prediction.
        placements: per person, its placement in the image camera.
        view: the family's mesh view.
        boxes_xywh: per person, the box its crop was made from, original pixels.
        camera_img: the image camera.
        renderer: a renderer reused for both pictures.

    Returns:
        PEOPLE_FILES key -> path, and per person its files.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in PEOPLE_FILES.items()}
    meshes = [placed.mesh_m for placed in placements]
    img_hw = (int(image_rgb.shape[0]), int(image_rgb.shape[1]))
    drawn = [drawn_vertices(p.mesh_m, p.depth_ratio, p.virtual_slope) for p in placements]
    _write_jpeg(
        paths["overlay"],
        render_people_overlay(image_rgb, drawn, view.faces, camera_img, renderer, None, _OVERLAY_ALPHA),
    )
    _write_jpeg(paths["side_view"], render_people_side_view(meshes, view.faces, camera_img, img_hw, renderer))
    files = []
    for index, (prediction, placed, box) in enumerate(zip(predictions, placements, boxes_xywh, strict=True)):
        stem = person_file_stem(index, box)
        person = PersonFiles(out_dir / f"{stem}.obj", out_dir / f"{stem}_{view.params_file}")
        write_bytes_atomic(person.mesh, obj_text(placed.mesh_m, view.faces).encode("ascii"))
        record = _person_record(index, prediction, placed, view, img_hw, box, camera_img)
        # One key per line, each value on one line, as the single demo writes its file.
        text = "{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in record.items()) + "\n}\n"
        write_bytes_atomic(person.params, text.encode("utf-8"))
        files.append(person)
    return paths, files


def people_boxes(
    bboxes_file: Path | None, detector_weights: Path | None, min_score: float, image_rgb: np.ndarray,
    device: torch.device,
) -> tuple[list[np.ndarray], str]:  # fmt: skip
    """The people's boxes: a boxes file's, else every person the detector finds (the whole image if none).

    Args:
        bboxes_file: a JSON boxes file (module docstring), or None to detect.
        detector_weights: torchvision's fasterrcnn_resnet50_fpn COCO state_dict file, used without `bboxes_file`.
        min_score: detected persons scoring below this are ignored.
        image_rgb: (H, W, 3) uint8 RGB.
        device: where the detector runs.

    Returns:
        (4,) float32 xywh boxes in image pixels, and a few words saying where they came from.
    """
    if bboxes_file is not None:
        boxes = parse_box_entries(read_boxes_json(bboxes_file), str(bboxes_file))
        if not boxes:
            raise BoxesFileError(f"{bboxes_file}: the list holds no box")
        return boxes, str(bboxes_file)
    if detector_weights is None:
        raise UsageError("several people need a boxes file or detector weights")
    found = detect_people(load_person_detector(detector_weights, device), image_rgb, device, min_score)
    if not found:
        height, width = image_rgb.shape[:2]
        whole = np.array([0.0, 0.0, width, height], dtype=np.float32)
        return [whole], f"the whole image (no person scored >= {min_score})"
    scores = ", ".join(f"{score:.2f}" for _, score in found)
    return [box for box, _ in found], f"the detector ({len(found)} people, scores {scores})"


def run_people_demo(
    image_rgb: np.ndarray, boxes_xywh: Sequence[np.ndarray], box_source: str, cfg: Config,
    build: Callable[[], tuple[MeshView, nn.Module]], device: torch.device, out_dir: Path, camera_img: PinholeCamera,
    is_left: bool = False,
) -> list[str]:  # fmt: skip
    """Crops, predicts (one batch), places and writes everyone; returns the lines to print.

    Args:
        image_rgb: (H, W, 3) uint8 RGB original image.
        boxes_xywh: the people's boxes, original pixels.
        box_source: where the boxes came from, for the printed summary.
        cfg: the model's config.
        build: makes the family's mesh view and the model, called once every box is known to be usable.
        device: the model's device.
        out_dir: output folder.
        camera_img: the image camera everyone shares (`demo.full_image_camera.image_camera`).
        is_left: the crops show left hands (hand models only).

    Raises:
        UsageError: a box lies outside the image (named by its index).
    """
    height, width = image_rgb.shape[:2]
    crops = [person_crop(box, (height, width), cfg.model.input_img_shape) for box in boxes_xywh]
    for index, crop in enumerate(crops):
        if crop is None:
            box = [round(float(v), 1) for v in boxes_xywh[index]]
            raise UsageError(f"box {index} {box} (x,y,w,h) lies outside the {width}x{height} image")
    view, model = build()
    predictions = predict_people(model, image_rgb, crops, cfg.model, view, device, is_left)
    placements = place_people(predictions, view, camera_img)
    with MeshRenderer(width, height) as renderer:
        paths, files = write_people_outputs(
            out_dir, image_rgb, predictions, placements, view, boxes_xywh, camera_img, renderer
        )
    lines = [f"{len(crops)} people from {box_source}; image camera focal {camera_img.focal[0]:.1f} px"]
    for index, (box, placed) in enumerate(zip(boxes_xywh, placements, strict=True)):
        lines.append(
            f"  person {index}: box {np.round(box, 1).tolist()}, depth {placed.pivot_m[2]:.2f} m, "
            f"rigid-mesh residual {placed.residual_px:.2f} px"
        )
    lines += [f"  wrote {path}" for path in paths.values()]
    lines += [f"  wrote {path}" for person in files for path in (person.mesh, person.params)]
    return lines
