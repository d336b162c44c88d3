"""What the demo writes: renders over the original image and the crop, a side view, the mesh and the parameters.

Every file is written to a temporary file in the output folder and renamed into place, so an interrupted
run never leaves a truncated file where a complete one was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from common.utils.atomic_io import write_bytes_atomic
from common.utils.render import MeshRenderer, MeshSpec, render_overlay, side_view
from demo.inference import PersonPrediction
from main.family import MeshView

__all__ = ["OUTPUT_FILES", "obj_text", "param_record", "write_demo_outputs"]

OUTPUT_FILES: dict[str, str] = {
    "overlay_original": "render_original_img.jpg",  # the mesh over the original image (Hand4Whole's name)
    "overlay_crop": "render_cropped_img.jpg",  # the mesh over the network's input crop (Hand4Whole's name)
    "side_view": "render_side_view.jpg",  # the mesh turned 90 degrees about the vertical axis, crop camera
    "mesh": "output.obj",  # camera-frame mesh, metres (Hand4Whole's name)
    # The parameters, cam_trans and the original image's intrinsics: the family's file (MeshView.params_file),
    # Hand4Whole's smplx_param.json or a part model's smpl_/mano_/flame_param.json.
    "params": "smplx_param.json",
}
_JPEG_QUALITY = 95
_OVERLAY_ALPHA = 0.85
_SIDE_VIEW_BACKGROUND = 255  # white


def _write_image(path: Path, image_rgb: np.ndarray) -> None:
    ok, encoded = cv2.imencode(path.suffix, image_rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise OSError(f"could not encode {path}")
    write_bytes_atomic(path, encoded.tobytes())


def obj_text(vertices: np.ndarray, faces: np.ndarray) -> str:
    """Wavefront OBJ text of a triangle mesh.

    Args:
        vertices: (V, 3) float, metres.
        faces: (F, 3) int, 0-based vertex indices (written 1-based, as OBJ counts).
    """
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices, dtype=np.float64)]
    lines += [f"f {a} {b} {c}" for a, b, c in np.asarray(faces, dtype=np.int64) + 1]
    return "\n".join(lines) + "\n"


def param_record(
    prediction: PersonPrediction, view: MeshView, img_hw: tuple[int, int], person_bbox_xywh: np.ndarray
) -> dict:
    """The content of the parameter file (plain lists of floats), `view.param_keys` in order.

    Poses are axis-angle in radians (Hand4Whole: root 3, body 21 x 3, each hand 15 x 3 added to SMPL-X's mean hand
    pose as flat_hand_mean=False does, jaw 3), shape and expression 10 coefficients each, cam_trans (3,) metres
    added to the layer's output in the camera frame. focal and princpt are the camera of the original image in
    pixels, so that projecting the mesh of output.obj with them lands on the person. The boxes are xywh original
    pixels.
    """
    record: dict[str, Any] = {name: prediction.outputs[key].tolist() for name, key in view.param_keys.items()}
    record["focal"] = list(prediction.camera_img.focal)
    record["princpt"] = list(prediction.camera_img.princpt)
    record["img_shape"] = [int(img_hw[0]), int(img_hw[1])]  # (H, W) of the original image
    record["person_bbox_xywh"] = [float(v) for v in person_bbox_xywh]
    record["crop_bbox_xywh"] = [float(v) for v in prediction.crop.bbox_xywh_img]
    return record


def write_demo_outputs(
    out_dir: Path,
    image_rgb: np.ndarray,
    prediction: PersonPrediction,
    view: MeshView,
    person_bbox_xywh: np.ndarray,
    renderer: MeshRenderer,
) -> dict[str, Path]:
    """Renders and writes every demo output (OUTPUT_FILES) into `out_dir` (created).

    Args:
        out_dir: output folder.
        image_rgb: (H, W, 3) uint8 RGB original image.
        prediction: the person's prediction.
        view: the family's mesh view (mesh key, triangles, parameter keys and file).
        person_bbox_xywh: (4,) the person box the crop was made from, original pixels.
        renderer: a renderer reused for the three images.

    Returns:
        OUTPUT_FILES key -> written path.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in OUTPUT_FILES.items()} | {"params": out_dir / view.params_file}
    vertices, faces = prediction.outputs[view.mesh_key], view.faces  # (V, 3) metres, camera frame
    mesh = MeshSpec(vertices, faces)
    cam_img, cam_crop = prediction.camera_img, prediction.camera_crop
    _write_image(
        paths["overlay_original"],
        render_overlay(image_rgb, mesh, cam_img.focal, cam_img.princpt, _OVERLAY_ALPHA, renderer),
    )
    _write_image(
        paths["overlay_crop"],
        render_overlay(prediction.crop_rgb, mesh, cam_crop.focal, cam_crop.princpt, _OVERLAY_ALPHA, renderer),
    )
    background = np.full_like(prediction.crop_rgb, _SIDE_VIEW_BACKGROUND)
    turned = MeshSpec(side_view(vertices, 90.0), faces)
    _write_image(
        paths["side_view"], render_overlay(background, turned, cam_crop.focal, cam_crop.princpt, 1.0, renderer)
    )
    write_bytes_atomic(paths["mesh"], obj_text(vertices, faces).encode("ascii"))
    record = param_record(prediction, view, image_rgb.shape[:2], person_bbox_xywh)
    # One key per line, each value on one line: readable, and still plain json.
    text = "{\n" + ",\n".join(f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in record.items()) + "\n}\n"
    write_bytes_atomic(paths["params"], text.encode("utf-8"))
    return paths
