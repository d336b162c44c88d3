"""Write a short synthetic video of stand-in people walking, with its ground truth (boxes, SMPL-X parameters).

    python tool/make_synthetic_video.py --out DIR [--frames N] [--people 1|2|3] [--size WxH] [--fps F] [--seed S]
        [--human-model-path DIR]

Each person is the selected body model (default: the synthetic SMPL-X stand-in,
common.body_models.synthetic.ensure_synthetic_body_models) in a gait cycle: its body pose blends smoothly between
the pose library's "walking" and its mirror image (data/Synthetic/body_poses.py), its heading sways, and it walks
sideways across a fixed camera at its own depth at 0.9 m/s, feet on the ground. Two people walk in opposite
directions, the second behind the first, so that they cross mid-clip (the tracking case); a third walks slowly
further back. Frames are rendered with pyrender (data/Synthetic's region colours, baked light and depth
compositing) over a fixed background. The tool writes into DIR:

    video.mp4        the frames (H.264 or MPEG-4 through PyAV)
    boxes.json       per-frame person boxes, demo/video.py's --bboxes format: {"0": [[x, y, w, h], ...], ...}
                     (each person's whole projected mesh, clipped to the image; people in index order)
    gt_params.npz    one row per (frame, person): `frame`, `person`, `bbox_xywh` and SMPL-X's `global_orient`,
                     `body_pose`, `left_hand_pose`, `right_hand_pose`, `jaw_pose` (axis-angle radians, camera frame),
                     `betas`, `expression`, `transl` (metres, camera frame); and `focal`, `princpt`, `img_shape`, `fps`
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`, `data`, `demo`

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from common.body_models.layers import get_body_models
from common.engine.cli import run_cli
from common.utils.atomic_io import write_atomic, write_bytes_atomic
from common.utils.render import MeshRenderer, MeshSpec
from data.Synthetic.appearance import Light, sample_albedo, shade, vertex_regions
from data.Synthetic.background import gradient
from data.Synthetic.body_poses import angles_to_axis_angle, clip_to_limits, mirror_angles, pose_angles
from data.Synthetic.camera import Camera
from data.Synthetic.compose import composite
from demo.video import Mp4Writer

__all__ = [
    "SyntheticPeople",
    "SyntheticVideo",
    "pose_synthetic_people",
    "render_synthetic_video",
    "write_synthetic_video",
]

GROUND_Y_M = 1.1  # the floor, 1.1 m below the camera (OpenCV y points down)
STRIDE_HZ = 0.9  # gait cycles per second
# Per person: x at mid-clip (m), walking speed along x (m/s), depth (m), heading (degrees, 0: facing the camera).
# The first two cross mid-clip; the third walks slowly further back.
PATHS = ((0.0, 0.9, 5.0, -35.0), (0.0, -0.9, 6.5, 40.0), (-0.1, 0.3, 9.0, 10.0))
_FOV_SCALE = 0.9  # focal = 0.9 x width: about 58 degrees across
_REST_TO_CAMERA = Rotation.from_euler("x", 180.0, degrees=True)  # SMPL-X y up, facing +z -> OpenCV y down, facing us
_LIGHT = Light(np.array([0.3, -0.6, -0.75]) / np.linalg.norm([0.3, -0.6, -0.75]), np.ones(3), 0.6, 0.5)  # upper left


@dataclass
class SyntheticPeople:
    """The posed people of a clip, before rendering.

    Attributes:
        vertices_m: (P, T, V, 3) float64 each person's mesh per frame, camera frame, metres.
        faces: (F, 3) int64 triangles.
        albedos: (P, V, 3) float32 each person's vertex colours before lighting, in [0, 1].
        boxes_xywh: (T, P, 4) float32 each person's box per frame (its whole projected mesh clipped to the image).
        params: SMPL-X parameter name -> (T, P, ...) float32 (camera frame).
        focal: (fx, fy) pixels.
        princpt: (cx, cy) pixels.
        size_hw: (H, W) pixels.
        fps: frames per second.
    """

    vertices_m: np.ndarray
    faces: np.ndarray
    albedos: np.ndarray
    boxes_xywh: np.ndarray
    params: dict[str, np.ndarray]
    focal: tuple[float, float]
    princpt: tuple[float, float]
    size_hw: tuple[int, int]
    fps: float


@dataclass
class SyntheticVideo:
    """A rendered clip and its ground truth.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB.
        people: the posed people (boxes, parameters, camera).
    """

    frames: np.ndarray
    people: SyntheticPeople


def _person_params(person: int, frames: int, fps: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """(T, ...) SMPL-X parameters of one person's walk, before it is set on the ground (transl zero)."""
    time_s = np.arange(frames) / fps
    phase = 2.0 * np.pi * STRIDE_HZ * time_s + rng.uniform(0.0, 2.0 * np.pi)
    stride, mirrored = pose_angles("walking"), mirror_angles(pose_angles("walking"))
    blend = 0.5 - 0.5 * np.cos(phase)  # (T,) 0 -> 1 -> 0 once per cycle: left leg forward, then right
    angles = clip_to_limits((1.0 - blend)[:, None, None] * stride + blend[:, None, None] * mirrored)  # (T, 22, 3)
    rotvecs = np.stack([angles_to_axis_angle(a) for a in angles])  # (T, 22, 3): root tilt, then body pose
    middle_x, speed, depth, heading_deg = PATHS[person]
    heading = np.radians(heading_deg + 8.0 * np.sin(2.0 * np.pi * 0.3 * time_s))  # (T,) a gentle sway
    orient = [
        (_REST_TO_CAMERA * Rotation.from_rotvec([0.0, h, 0.0]) * Rotation.from_rotvec(tilt)).as_rotvec()
        for h, tilt in zip(heading, rotvecs[:, 0], strict=True)
    ]
    path_x = middle_x + speed * (time_s - time_s[-1] / 2.0)  # (T,) metres
    return {
        "global_orient": np.array(orient),
        "body_pose": rotvecs[:, 1:].reshape(frames, -1),
        "left_hand_pose": np.zeros((frames, 45)),  # zero: SMPL-X's mean hand (flat_hand_mean=False)
        "right_hand_pose": np.zeros((frames, 45)),
        "jaw_pose": np.zeros((frames, 3)),
        "betas": np.repeat(np.clip(rng.normal(scale=0.8, size=(1, 10)), -2.0, 2.0), frames, axis=0),
        "expression": np.repeat(rng.normal(scale=0.3, size=(1, 10)), frames, axis=0),
        "path_xz": np.stack([path_x, np.full(frames, depth)], axis=-1),
    }


def pose_synthetic_people(
    human_model_path: str | os.PathLike[str],
    frames: int = 48,
    people: int = 2,
    size_hw: tuple[int, int] = (240, 320),
    fps: float = 15.0,
    seed: int = 0,
) -> SyntheticPeople:
    """Poses and places the people of the clip (module docstring); deterministic in its arguments.

    Args:
        human_model_path: the body-model tree.
        frames: number of frames, >= 1.
        people: 1, 2 or 3.
        size_hw: (H, W) pixels.
        fps: frames per second of the clip (the walk's speed in seconds).
        seed: seeds shapes, faces, gait phases and colours.
    """
    if not 1 <= people <= len(PATHS) or frames < 1:
        raise ValueError(f"need 1 to {len(PATHS)} people and at least one frame, got {people} and {frames}")
    rng = np.random.default_rng(seed)
    layer = get_body_models(human_model_path).smplx("neutral")
    height, width = size_hw
    focal, princpt = (_FOV_SCALE * width, _FOV_SCALE * width), (width / 2.0, height / 2.0)
    regions = vertex_regions(layer.lbs_weights.numpy())
    names = ("global_orient", "body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose", "betas", "expression")
    params, vertices, albedos = [], [], []
    for person in range(people):
        p = _person_params(person, frames, fps, rng)
        tensors = {k: torch.from_numpy(p[k].astype(np.float32)) for k in names}
        with torch.no_grad():
            eyes = torch.zeros(frames, 3)  # the layer has no default eye poses
            verts = layer(**tensors, leye_pose=eyes, reye_pose=eyes, transl=eyes).vertices.double().numpy()
        # transl: the path in x and z, and the feet on the floor (the lowest vertex, largest y, at GROUND_Y_M).
        p["transl"] = np.stack([p["path_xz"][:, 0], GROUND_Y_M - verts[..., 1].max(axis=1), p["path_xz"][:, 1]], -1)
        vertices.append(verts + p["transl"][:, None])  # (T, V, 3)
        params.append({k: v.astype(np.float32) for k, v in p.items() if k != "path_xz"})
        albedos.append(sample_albedo(rng, regions, layer.v_template.numpy()))
    boxes = [[_box(v[t], focal, princpt, size_hw) for v in vertices] for t in range(frames)]
    return SyntheticPeople(
        vertices_m=np.stack(vertices),
        faces=np.asarray(layer.faces, dtype=np.int64),
        albedos=np.stack(albedos),
        boxes_xywh=np.array(boxes, dtype=np.float32),
        params={k: np.stack([p[k] for p in params], axis=1) for k in params[0]},  # (T, P, ...)
        focal=focal,
        princpt=princpt,
        size_hw=(int(height), int(width)),
        fps=float(fps),
    )


def render_synthetic_video(people: SyntheticPeople, seed: int = 0) -> SyntheticVideo:
    """Renders the posed people over a fixed background (seeded by `seed`), nearest surface in front."""
    height, width = people.size_hw
    camera = Camera(focal=people.focal, princpt=people.princpt, rotation=np.eye(3), position=np.zeros(3))
    background = np.clip(gradient(np.random.default_rng([seed, 1]), people.size_hw), 0, 255).astype(np.uint8)
    images = []
    with MeshRenderer(width, height) as renderer:
        for t in range(people.vertices_m.shape[1]):
            meshes = [
                MeshSpec(v[t], people.faces, vertex_colors=shade(a, v[t], people.faces, _LIGHT))
                for v, a in zip(people.vertices_m, people.albedos, strict=True)
            ]
            images.append(composite(renderer, meshes, camera, background).image)
    return SyntheticVideo(np.stack(images), people)


def _box(vertices_m: np.ndarray, focal: tuple[float, float], princpt: tuple[float, float], size_hw) -> np.ndarray:
    """(4,) xywh box of a mesh's projection, clipped to the image."""
    uv = vertices_m[:, :2] / vertices_m[:, 2:] * np.asarray(focal) + np.asarray(princpt)  # (V, 2)
    low = np.clip(uv.min(axis=0), 0.0, [size_hw[1] - 1, size_hw[0] - 1])
    high = np.clip(uv.max(axis=0), 0.0, [size_hw[1] - 1, size_hw[0] - 1])
    return np.concatenate([low, high - low])


def write_synthetic_video(video: SyntheticVideo, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Writes video.mp4, boxes.json and gt_params.npz (module docstring) into `out_dir` (created)."""
    out, people = Path(out_dir), video.people
    out.mkdir(parents=True, exist_ok=True)
    paths = {"video": out / "video.mp4", "boxes": out / "boxes.json", "params": out / "gt_params.npz"}
    writer = Mp4Writer(paths["video"], people.fps)
    for frame in video.frames:
        writer.write(frame)
    writer.close()
    boxes = people.boxes_xywh
    per_frame = {str(t): [[round(float(v), 2) for v in box] for box in frame] for t, frame in enumerate(boxes)}
    write_bytes_atomic(paths["boxes"], (json.dumps(per_frame) + "\n").encode("utf-8"))
    frames, count = boxes.shape[:2]
    rows = {
        "frame": np.repeat(np.arange(frames), count),
        "person": np.tile(np.arange(count), frames),
        "bbox_xywh": boxes.reshape(frames * count, 4),
        **{k: v.reshape(frames * count, *v.shape[2:]) for k, v in people.params.items()},
    }
    camera = {"focal": np.array(people.focal), "princpt": np.array(people.princpt),
              "img_shape": np.array(people.size_hw), "fps": np.array(people.fps)}  # fmt: skip
    write_atomic(paths["params"], lambda f: np.savez(f, **rows, **camera))
    return paths


def _size(text: str) -> tuple[int, int]:
    """'WxH' -> (H, W)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: expected WxH, e.g. 320x240") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: at least 16x16")
    return height, width


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--frames", type=int, default=48, help="number of frames (default %(default)s)")
    parser.add_argument("--people", type=int, choices=(1, 2, 3), default=2, help="(default %(default)s)")
    parser.add_argument("--size", type=_size, default=(240, 320), help="WxH pixels (default 320x240)")
    parser.add_argument("--fps", type=float, default=15.0, help="(default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="(default %(default)s)")
    parser.add_argument("--human-model-path", help="body-model tree (default: the synthetic stand-in)")
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error("--frames must be at least 1")
    human_model_path = args.human_model_path
    if human_model_path is None:
        from common.body_models.synthetic import ensure_synthetic_body_models

        human_model_path = ensure_synthetic_body_models()
    people = pose_synthetic_people(human_model_path, args.frames, args.people, args.size, args.fps, args.seed)
    video = render_synthetic_video(people, args.seed)
    for name, path in write_synthetic_video(video, args.out).items():
        print(f"wrote {name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
