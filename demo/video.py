"""Meshes of the people of a video or a live camera, tracked over frames and smoothed over time.

    python demo/video.py --gpu 0 (--video in.mp4 | --camera 0) [--bboxes per-frame.json | --detector-weights PATH]
        [--out DIR] [--smooth one-euro|none] [--ckpt PATH] [--cfg YAML] [--focal PX | --fov DEG] [--max-frames N]
        [--hand-side right|left] [key=value ...]

Frames come from PyAV (a video file) or OpenCV (a camera index). Each frame's people are the per-frame boxes
file's ({"0": [[x,y,w,h], ...], "1": [...], ...} by frame index; entries as demo/people.py reads them), else every
person the detector finds, else the whole frame. demo/tracking.py gives each box a track id; all of a frame's
people go through the model in one batch and are placed in the image's camera (demo/full_image_camera.py); with
`--smooth one-euro` (the default) each track's parameters are filtered over the past frames (demo/smoothing.py)
and its mesh is posed again from them. The demo writes into --out (default <output_dir>/vis/video):

    overlay.mp4     the frames with every tracked mesh (one colour per track) and its box and id
    params.npz      one row per (frame, track): arrays `frame`, `track`, `time_s`, `bbox_xywh`, `residual_px`, the
                    family's parameters by name (smoothed; `raw_<name>` unsmoothed), and the camera `focal`,
                    `princpt`, `img_shape`, `fps`
    params.jsonl    the same rows, one JSON object per line, written as the frames go

`iterate_video_results` is the same pipeline as a Python generator over any iterable of frames.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`, `main`, `demo`

import av
import cv2
import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from common.engine.cli import UsageError, parse_gpu_ids, run_cli
from common.engine.run_log import check_output_folders
from common.engine.snapshot import read_snapshot
from common.paths import resolve_repo_path
from common.utils.atomic_io import write_atomic
from common.utils.draw import draw_boxes
from common.utils.errors import InputDataError
from common.utils.render import MeshRenderer, RenderingUnavailableError
from demo.camera import PinholeCamera, person_crop
from demo.demo import CliParser, checkpoint_path, mesh_view_and_model
from demo.detector import DEFAULT_MIN_SCORE, load_person_detector
from demo.full_image_camera import drawn_vertices, image_camera
from demo.inference import demo_config, select_device
from demo.people import BoxesFileError, detect_people, parse_box_entries, place_people, predict_people, read_boxes_json
from demo.render_people import person_colour, render_people_overlay
from demo.smoothing import SmoothingSettings, TrackSmoother
from demo.tracking import IoUTracker, TrackerOptions
from main.config import Config, ConfigError
from main.family import MeshView

__all__ = ["FrameResult", "TrackedPerson", "VideoPredictor", "iterate_video_results", "main", "per_frame_boxes"]

PROG = "video.py"
USER_ERRORS = (ConfigError, RenderingUnavailableError)
OUTPUT_FILES = {"video": "overlay.mp4", "npz": "params.npz", "jsonl": "params.jsonl"}
_CODECS = ("libx264", "mpeg4")  # the first the PyAV wheel can encode
_OVERLAY_ALPHA = 0.85
BoxSource = Callable[[int, np.ndarray], list[np.ndarray]]  # (frame index, (H, W, 3) RGB) -> (4,) xywh boxes


def _smplx_mesh(model: nn.Module, params: dict[str, Tensor]) -> Tensor:
    """(N, V, 3) Hand4Whole's SMPL-X mesh of (N, ...) parameters (test-output keys) plus `cam_trans`."""
    body = {key: value for key, value in params.items() if key != "cam_trans"}
    return model.smplx_head(body, params["cam_trans"])["mesh_cam"]


# Families whose mesh can be posed again from smoothed parameters: model.arch -> (model, params) -> mesh.
MESH_FROM_PARAMS: dict[str, Callable[[nn.Module, dict[str, Tensor]], Tensor]] = {"hand4whole": _smplx_mesh}


@dataclass
class VideoPredictor:
    """What runs on each frame: the model, its geometry and how to pose its mesh from parameters.

    Attributes:
        model: the family's model in eval mode on `device`.
        cfg: its config.
        view: its mesh view (mesh key, faces, parameter names).
        device: where it runs.
        mesh_from_params: the family's `MESH_FROM_PARAMS` entry, None when it has none (no smoothing then).
        is_left: the crops show left hands (hand models only).
    """

    model: nn.Module
    cfg: Config
    view: MeshView
    device: torch.device
    mesh_from_params: Callable[[nn.Module, dict[str, Tensor]], Tensor] | None
    is_left: bool = False

    def meshes(self, params: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        """Per person (V, 3) float32 mesh of its parameters (test-output keys, cam_trans in the image camera)."""
        if not params or self.mesh_from_params is None:
            raise ValueError("no parameters, or this family cannot pose its mesh from parameters")
        batch = {key: torch.from_numpy(np.stack([p[key] for p in params])).to(self.device) for key in params[0]}
        with torch.inference_mode():
            meshes = self.mesh_from_params(self.model, batch).float().cpu().numpy()
        return list(meshes)


@dataclass
class TrackedPerson:
    """One person of one frame.

    Attributes:
        track_id: its track (demo/tracking.py).
        bbox_xywh: (4,) float32 its box, image pixels.
        params: the family's parameters by test-output key (e.g. smplx_root_pose (3,) axis-angle radians, ...,
            cam_trans (3,) metres in the image camera), smoothed when smoothing is on.
        raw_params: the same, unsmoothed.
        mesh_m: (V, 3) float32 the mesh of `params` in the image camera, metres.
        residual_px: the rigid placement's residual against the person's own camera (demo/full_image_camera.py).
        depth_ratio: this frame's f / F (`PersonInImage.depth_ratio`), for `drawn_vertices`.
        virtual_slope: (2,) this frame's pivot slope in the virtual camera (`PersonInImage.virtual_slope`).
    """

    track_id: int
    bbox_xywh: np.ndarray
    params: dict[str, np.ndarray]
    raw_params: dict[str, np.ndarray]
    mesh_m: np.ndarray
    residual_px: float
    depth_ratio: float
    virtual_slope: np.ndarray

    def drawn_mesh(self) -> np.ndarray:
        """(V, 3) the mesh as the overlay draws it (`demo.full_image_camera.drawn_vertices`)."""
        return drawn_vertices(self.mesh_m, self.depth_ratio, self.virtual_slope)


@dataclass
class FrameResult:
    """One frame's people. `time_s` is index / fps; `camera` is the image camera everyone shares."""

    index: int
    time_s: float
    image_rgb: np.ndarray
    camera: PinholeCamera
    people: list[TrackedPerson]
    ended_tracks: list[int]


def iterate_video_results(
    frames: Iterable[np.ndarray],
    predictor: VideoPredictor,
    boxes_for_frame: BoxSource | None = None,
    *,
    fps: float = 30.0,
    focal_px: float | None = None,
    fov_deg: float | None = None,
    smoothing: SmoothingSettings | None = None,
    tracker_options: TrackerOptions | None = None,
) -> Iterator[FrameResult]:
    """Tracks, predicts, places and (optionally) smooths the people of each frame, one frame at a time.

    Causal: a frame's result is yielded before the next frame is read, and depends on no later frame.
    The arguments are checked when it is called, before any frame is read.

    Args:
        frames: (H, W, 3) uint8 RGB frames, in order.
        predictor: the model and its geometry (`VideoPredictor`).
        boxes_for_frame: the boxes (xywh image pixels) of frame i; None: the whole frame is one person.
        fps: frames per second (the smoothing filters' time base).
        focal_px: the image camera's focal, pixels; else `fov_deg` (default 60 degrees), as `image_camera`.
        fov_deg: the image camera's field of view across the longer side, degrees.
        smoothing: One-Euro settings, or None for the raw per-frame parameters.
        tracker_options: the tracker's settings (defaults of `TrackerOptions`).

    Returns:
        An iterator of one `FrameResult` per frame.

    Raises:
        UsageError: smoothing was asked of a family that cannot pose its mesh from parameters
            (`MESH_FROM_PARAMS`).
        ValueError: a focal or a field of view that no camera has.
    """
    image_camera((1, 1), focal_px, fov_deg)  # checks the values before any frame is read
    if smoothing is not None and predictor.mesh_from_params is None:
        raise UsageError(f"smoothing poses the mesh again from parameters, which model.arch="
                         f"{predictor.cfg.model.arch} cannot do here; use --smooth none")  # fmt: skip
    camera_choice = (focal_px, fov_deg)
    return _frame_results(iter(frames), predictor, boxes_for_frame, fps, camera_choice, smoothing, tracker_options)


def _frame_results(
    frames: Iterator[np.ndarray], predictor: VideoPredictor, boxes_for_frame: BoxSource | None, fps: float,
    camera_choice: tuple[float | None, float | None], smoothing: SmoothingSettings | None,
    tracker_options: TrackerOptions | None,
) -> Iterator[FrameResult]:  # fmt: skip
    """The generator behind `iterate_video_results`."""
    view, cfg = predictor.view, predictor.cfg
    keys = list(view.param_keys.values())
    rotation_keys = [key for key in keys if "pose" in key]  # MeshView: poses are axis-angle, the rest coefficients
    tracker = IoUTracker(tracker_options)
    smoother = None if smoothing is None else TrackSmoother(smoothing, rotation_keys, "cam_trans")
    camera = None
    for index, frame in enumerate(frames):
        time_s = index / fps
        img_hw = frame.shape[:2]
        camera = camera or image_camera(img_hw, *camera_choice)
        whole = [np.array([0.0, 0.0, img_hw[1], img_hw[0]], dtype=np.float32)]
        boxes = whole if boxes_for_frame is None else boxes_for_frame(index, frame)
        crops = [person_crop(box, img_hw, cfg.model.input_img_shape) for box in boxes]
        boxes = [box for box, crop in zip(boxes, crops, strict=True) if crop is not None]  # outside: no person
        crops = [crop for crop in crops if crop is not None]
        update = tracker.update(boxes)
        if smoother is not None:
            for track_id in update.ended:
                smoother.end(track_id)
        predictions = predict_people(predictor.model, frame, crops, cfg.model, view, predictor.device,
                                     predictor.is_left)  # fmt: skip
        placements = place_people(predictions, view, camera)
        raw = [
            {key: p.outputs[key] for key in keys} | {"cam_trans": placed.cam_trans_m}
            for p, placed in zip(predictions, placements, strict=True)
        ]
        if smoother is None or not raw:
            params, meshes = raw, [placed.mesh_m for placed in placements]
        else:
            params = [smoother.smooth(t, r, time_s) for t, r in zip(update.track_ids, raw, strict=True)]
            meshes = predictor.meshes(params)
        people = [
            TrackedPerson(track_id, box, p, r, mesh, placed.residual_px, placed.depth_ratio, placed.virtual_slope)
            for track_id, box, p, r, mesh, placed in zip(
                update.track_ids, boxes, params, raw, meshes, placements, strict=True
            )
        ]
        yield FrameResult(index, time_s, frame, camera, people, update.ended)


def per_frame_boxes(path: Path) -> BoxSource:
    """The box source of a per-frame boxes file ({"frame index": [boxes], ...}); frames it omits have none.

    Raises:
        BoxesFileError: not an object of frame indices, or a bad box (named by frame key and entry).
    """
    content = read_boxes_json(path)
    if not isinstance(content, dict):
        raise BoxesFileError(f"{path}: expected an object mapping frame indices to box lists")
    by_frame = {}
    for key, entries in content.items():
        if not (key.isascii() and key.isdigit()):
            raise BoxesFileError(f"{path}: key {key!r} is not a frame index (0, 1, 2, ...)")
        by_frame[int(key)] = parse_box_entries(entries, f"{path} frame {key}")
    return lambda index, frame: by_frame.get(index, [])


def _detector_boxes(weights: Path, device: torch.device, min_score: float) -> BoxSource:
    detector = load_person_detector(weights, device)
    return lambda index, frame: [box for box, _ in detect_people(detector, frame, device, min_score)]


def _video_frames(path: Path) -> tuple[Iterator[np.ndarray], float, int | None]:
    """PyAV's frames of a video file as (H, W, 3) uint8 RGB, its frame rate and its frame count (None: unknown)."""
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    try:
        container = av.open(str(path))
        stream = container.streams.video[0]
    except (av.FFmpegError, IndexError) as exc:
        raise InputDataError(f"{path}: not a readable video ({exc})") from exc
    fps = float(stream.average_rate or stream.guessed_rate or 30)

    def frames() -> Iterator[np.ndarray]:
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise InputDataError(f"{path}: decoding failed ({exc})") from exc
        finally:
            container.close()

    return frames(), fps, stream.frames or None


def _camera_frames(index: int) -> tuple[Iterator[np.ndarray], float]:
    """OpenCV's frames of a camera, RGB, until it stops delivering, and its frame rate (30 when it does not say)."""
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise UsageError(f"--camera {index}: cannot open the camera")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    return
                yield np.ascontiguousarray(bgr[..., ::-1])
        finally:
            capture.release()

    return frames(), float(fps)


class Mp4Writer:
    """An H.264 (else MPEG-4 part 2) mp4 through PyAV, written to a temporary file and renamed when closed.

    yuv420p needs even sizes: odd frames are padded by one black row or column.
    """

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self._tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
        self._container: Any = None
        self._stream: Any = None
        self.codec = next((name for name in _CODECS if name in av.codecs_available), None)
        if self.codec is None:
            raise RuntimeError(f"this PyAV build encodes none of {_CODECS}")

    def write(self, frame_rgb: np.ndarray) -> None:
        height, width = frame_rgb.shape[:2]
        if self._container is None:
            self._container = av.open(str(self._tmp), mode="w")
            self._stream = self._container.add_stream(self.codec, rate=Fraction(self.fps).limit_denominator(1001))
            self._stream.width, self._stream.height = width + width % 2, height + height % 2
            self._stream.pix_fmt = "yuv420p"
        padded = np.zeros((self._stream.height, self._stream.width, 3), dtype=np.uint8)
        padded[:height, :width] = frame_rgb
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")):
            self._container.mux(packet)

    def close(self) -> None:
        """Flushes the encoder and renames the file into place (nothing is written without a frame)."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        os.replace(self._tmp, self.path)


class ParamsWriter:
    """Rows of (frame, track, parameters): JSON lines as they come, the npz table at the end."""

    def __init__(self, out_dir: Path, view: MeshView, smoothing: bool) -> None:
        self.view, self.smoothing = view, smoothing
        self.jsonl_path, self.npz_path = out_dir / OUTPUT_FILES["jsonl"], out_dir / OUTPUT_FILES["npz"]
        self._jsonl = self.jsonl_path.open("w", encoding="utf-8")
        self._rows: list[dict[str, Any]] = []
        self._camera: dict[str, Any] = {}

    def add(self, result: FrameResult, fps: float) -> None:
        camera = result.camera
        self._camera = {"focal": np.array(camera.focal), "princpt": np.array(camera.princpt),
                        "img_shape": np.array(result.image_rgb.shape[:2]), "fps": np.array(fps)}  # fmt: skip
        for person in result.people:
            row: dict[str, Any] = {"frame": result.index, "track": person.track_id, "time_s": result.time_s,
                                   "bbox_xywh": person.bbox_xywh, "residual_px": person.residual_px}  # fmt: skip
            row |= {name: person.params[key] for name, key in self.view.param_keys.items()}
            if self.smoothing:
                row |= {f"raw_{name}": person.raw_params[key] for name, key in self.view.param_keys.items()}
            self._rows.append(row)
            line = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in row.items()}
            line |= {"focal": list(camera.focal), "princpt": list(camera.princpt)}
            self._jsonl.write(json.dumps(line) + "\n")
        self._jsonl.flush()

    def close(self) -> None:
        self._jsonl.close()
        names = ["frame", "track", "time_s", "bbox_xywh", "residual_px", *self.view.param_keys]
        names += [f"raw_{name}" for name in self.view.param_keys] if self.smoothing else []
        table = {name: np.array([row[name] for row in self._rows]) for name in names} if self._rows else {}
        write_atomic(self.npz_path, lambda f: np.savez(f, **table, **self._camera))


def _parser() -> argparse.ArgumentParser:
    parser = CliParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", type=parse_gpu_ids, default=[0], help="one GPU id (default 0); CPU without CUDA")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", help="a video file (read with PyAV)")
    source.add_argument("--camera", type=int, help="a camera index (read with OpenCV)")
    parser.add_argument("--bboxes", help="per-frame boxes: JSON {'0': [[x,y,w,h], ...], ...}")
    parser.add_argument("--detector-weights", help="without --bboxes: torchvision's fasterrcnn_resnet50_fpn weights")
    parser.add_argument("--detector-min-score", type=float, default=DEFAULT_MIN_SCORE, help="(default %(default)s)")
    parser.add_argument("--smooth", choices=("one-euro", "none"), default="one-euro", help="(default %(default)s)")
    parser.add_argument("--ckpt", help="snapshot file (default: the highest <output_dir>/model_dump/snapshot_N)")
    parser.add_argument("--cfg", help="config yaml or name in main/configs/ (default: the one in the snapshot)")
    parser.add_argument("--out", help="output folder (default <output_dir>/vis/video)")
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument("--focal", type=float, help="the image's focal length, pixels")
    camera.add_argument("--fov", type=float, help="the image's field of view across its longer side (default 60)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames (a live camera runs until ^C)")
    parser.add_argument("--hand-side", choices=("right", "left"), default="right", help="hand models: (right)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. human_model_path=DIR")
    return parser


def _draw(result: FrameResult, faces: np.ndarray, renderer: MeshRenderer) -> np.ndarray:
    """(H, W, 3) uint8 the frame with every mesh in its track's colour, its box and its id."""
    ids = [person.track_id for person in result.people]
    image = render_people_overlay(result.image_rgb, [p.drawn_mesh() for p in result.people], faces, result.camera,
                                  renderer, ids, _OVERLAY_ALPHA)  # fmt: skip
    if not ids:
        return image
    boxes = np.array([p.bbox_xywh for p in result.people], dtype=np.float64)
    boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
    return draw_boxes(image, boxes, np.array([person_colour(i) for i in ids]), [f"id {i}" for i in ids], 1)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        image_camera((1, 1), args.focal, args.fov)  # a bad value ends here, before any work
    except ValueError as exc:
        raise UsageError(f"--focal/--fov: {exc}") from None
    device, notice = select_device(args.gpu)
    print(f"{PROG}: device {device}" + (f" ({notice})" if notice else ""), file=sys.stderr)
    if args.video is not None:
        frames, fps, total = _video_frames(resolve_repo_path(args.video))
    else:
        (frames, fps), total = _camera_frames(args.camera), None
    snapshot_file = checkpoint_path(args)
    snapshot = read_snapshot(snapshot_file)
    cfg, cfg_source = demo_config(args.cfg, args.overrides, snapshot)
    out_dir = resolve_repo_path(args.out) if args.out else Path(cfg.output_dir) / "vis" / "video"
    check_output_folders([out_dir])
    boxes = None
    if args.bboxes is not None:
        boxes = per_frame_boxes(resolve_repo_path(args.bboxes))
    elif args.detector_weights is not None:
        boxes = _detector_boxes(resolve_repo_path(args.detector_weights), device, args.detector_min_score)
    view, model = mesh_view_and_model(cfg, snapshot, device)
    predictor = VideoPredictor(model, cfg, view, device, MESH_FROM_PARAMS.get(cfg.model.arch), args.hand_side == "left")
    smoothing = SmoothingSettings() if args.smooth == "one-euro" else None
    print(f"checkpoint {snapshot_file} (epoch {snapshot.get('epoch')}); {cfg_source}; device {device}; {fps:.2f} fps")
    results = iterate_video_results(
        frames, predictor, boxes, fps=fps, focal_px=args.focal, fov_deg=args.fov, smoothing=smoothing
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    video, table = Mp4Writer(out_dir / OUTPUT_FILES["video"], fps), ParamsWriter(out_dir, view, smoothing is not None)
    limit = args.max_frames if args.max_frames is not None else total
    progress = tqdm(total=limit, unit="frame", desc=PROG, dynamic_ncols=True)
    renderer = None
    try:
        for result in results:
            renderer = renderer or MeshRenderer(result.image_rgb.shape[1], result.image_rgb.shape[0])
            video.write(_draw(result, view.faces, renderer))
            table.add(result, fps)
            progress.update(1)
            if args.max_frames is not None and result.index + 1 >= args.max_frames:
                break
    except KeyboardInterrupt:  # a live camera stops with ^C: keep what was processed
        print(f"{PROG}: interrupted; writing the frames processed so far", file=sys.stderr)
    finally:
        progress.close()
        if renderer is not None:
            renderer.close()
    video.close()
    table.close()
    if progress.n == 0:
        raise InputDataError(f"no frame could be read from {args.video or f'camera {args.camera}'}")
    print(f"{progress.n} frames, codec {video.codec}; wrote {video.path}, {table.npz_path}, {table.jsonl_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog=PROG, user_errors=USER_ERRORS))
