"""Synthetic depth maps of a right hand in the MSRA hand gesture release's layout, with V2V-PoseNet's centre files.

Layout under ``out_dir`` (the MSRA folder, cvpr15_MSRAHandGestureDB; written from the format's description, not
through our reader)::

    P0 .. P8/<gesture>/joint.txt            all 9 subjects x 17 gesture folders; line 1 the frame count N, then N
                                            lines of 21 x (x y z) mm with MSRA's signs: y up, z negative
    P0 .. P8/<gesture>/{frame:06d}_depth.bin  6 little-endian uint32 (320, 240, left, top, right, bottom), then the
                                            float32 depth (mm) of the box [top, bottom) x [left, right), row-major
    center/center_{train,test}_{k}_refined.txt  for every fold k: one line per frame of the train subjects (all but
                                            k) / of subject k, in the release's order: 'x y z' (mm, y up, z the
                                            depth) or 'invalid' (train files only: all of V2V's test centres exist)
    synthetic_manifest_msra.json            the settings of the finished run

Only the chosen subjects (P0, P1, P2 by default) and gestures hold frames (``frames_per_gesture`` each); the other
folders exist with a frame count of 0, so the tree has the release's complete shape and a fold of an empty subject
is simply empty.

A frame is the right MANO hand of the selected body-model tree (a shape per subject) with the fingers of its
gesture folder (`GESTURE_CURLS`, jittered), facing the camera with the fingers up, turned by a random yaw, pitch and
roll, its palm centre 250-450 mm away, rendered (pyrender, depth) with MSRA's camera (fx = fy = 241.42, principal
point (160, 120), pixel centres at integer coordinates). Joints: MANO's 16 joints and its 5 fingertip vertices, in
MSRA's order (wrist; index, middle, ring, little, thumb: MCP, PIP, DIP, TIP). A centre is the palm centre (mean of
the wrist and the four finger MCPs) with about 5 mm of noise. Everything is a pure function of the seed.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from smplx.vertex_ids import vertex_ids
from tqdm import tqdm

from common.body_models.joint_sets import MANO_JOINTS
from common.body_models.layers import get_body_models
from common.utils.atomic_io import write_bytes_atomic, write_json_atomic
from common.utils.render import MeshRenderer, MeshSpec
from data.MSRA.msra_files import GESTURES, MSRA_INTRINSICS, MSRA_JOINTS, SUBJECTS

from .dataset_writer import _resolve_human_model_path
from .generator import _torch_threads
from .hand_poses import finger_rotations
from .parts_writer import manifest_matches, manifest_path

STREAM_ID = 14  # keeps these random streams apart from the other synthetic formats' for the same seed
MANIFEST_VERSION = 1  # bump when a change of the generator changes what a seed produces
MANIFEST_NAME = "msra"
DEFAULT_SUBJECTS = (0, 1, 2)
CENTER_FOLDER = "center"
PALM_DEPTH_RANGE_MM = (250.0, 450.0)
FARTHEST_DEPTH_MM = PALM_DEPTH_RANGE_MM[1]  # a hand too big for the image at its drawn depth moves back to fit
DEPTH_STEP_MM = 10.0
TARGET_JITTER_PX = (30.0, 20.0)  # the palm centre lands this close to the image centre, (u, v)
IMAGE_MARGIN_PX = 3  # the hand keeps this far from the image border
BOX_MARGIN_PX = 2  # background pixels around the hand in the written box, as the release's boxes have
YAW_DEG, PITCH_DEG, ROLL_DEG = (-40.0, 40.0), (-10.0, 60.0), (-25.0, 25.0)  # within MSRA's yaw and pitch ranges
BETA_LIMIT = 1.5
CURL_NOISE = 0.08
CENTER_NOISE_MM = 3.0  # per axis: about 5 mm in all
INVALID_FRACTION = 0.03  # of a train file's lines; each train file of two or more lines has at least one
TIP_VERTEX_IDS = np.array(list(vertex_ids["mano"].values()), dtype=np.int64)  # thumb, index, middle, ring, pinky
MSRA_FROM_MANO = MANO_JOINTS.indices(MSRA_JOINTS.names)  # (21,) rows of MANO's 16 joints + 5 tips, MSRA order
PALM_JOINTS = MSRA_JOINTS.indices(("Wrist", "Index_1", "Middle_1", "Ring_1", "Pinky_1"))
MSRA_SIGNS = np.array([1.0, -1.0, -1.0])  # our camera frame (y down, z forward) -> joint.txt (y up, z negative)
V2V_SIGNS = np.array([1.0, -1.0, 1.0])  # our camera frame -> V2V's centre files (y up, z the depth)

# gesture folder -> curls (0 straight .. 1 flexed) of (index, middle, pinky, ring, thumb), hand_poses.FINGER_ORDER
GESTURE_CURLS: dict[str, tuple[float, float, float, float, float]] = {
    "1": (0.0, 1.0, 1.0, 1.0, 0.9), "2": (0.0, 0.0, 1.0, 1.0, 0.9), "3": (0.0, 0.0, 1.0, 0.0, 0.9),
    "4": (0.0, 0.0, 0.0, 0.0, 1.0), "5": (0.0, 0.0, 0.0, 0.0, 0.0), "6": (1.0, 1.0, 0.0, 1.0, 0.0),
    "7": (0.45, 0.45, 1.0, 1.0, 0.6), "8": (0.0, 1.0, 1.0, 1.0, 0.0), "9": (0.6, 1.0, 1.0, 1.0, 0.9),
    "I": (1.0, 1.0, 0.0, 1.0, 0.9), "IP": (0.0, 1.0, 0.0, 1.0, 0.9), "L": (0.0, 0.85, 0.9, 0.85, 0.0),
    "MP": (1.0, 0.0, 0.0, 1.0, 0.9), "RP": (1.0, 1.0, 0.0, 0.0, 0.9), "T": (1.0, 1.0, 1.0, 1.0, 0.3),
    "TIP": (0.5, 1.0, 1.0, 1.0, 0.5), "Y": (1.0, 1.0, 0.1, 1.0, 0.1),
}  # fmt: skip


def _facing_camera(rest_joints: np.ndarray) -> np.ndarray:
    """(3, 3) rotation that turns the rest hand (MSRA order joints (21, 3)) palm to the camera, fingers up.

    Derived from the joints, so any MANO file works: the finger direction f (wrist to middle MCP), the thumb side t
    (little to index MCP, made orthogonal to f) and, for a right hand, the palm normal n = t x f. They go to up
    (0, -1, 0), image right (1, 0, 0) and towards the camera (0, 0, -1).
    """
    wrist, index, middle, pinky = (
        rest_joints[MSRA_JOINTS.index(n)] for n in ("Wrist", "Index_1", "Middle_1", "Pinky_1")
    )
    f = (middle - wrist) / np.linalg.norm(middle - wrist)
    t = (index - pinky) - np.dot(index - pinky, f) * f
    t /= np.linalg.norm(t)
    n = np.cross(t, f)
    source = np.stack([f, t, n], axis=1)  # (3, 3) columns
    target = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])  # columns: up, right, to the camera
    return target @ source.T


def write_depth_bin(path: Path, depth_mm: np.ndarray) -> tuple[int, int, int, int]:
    """Writes a (H, W) depth map as MSRA's ``_depth.bin``: the header, then the hand's box (plus a margin).

    Returns:
        The box (left, top, right, bottom), right and bottom exclusive.
    """
    height, width = depth_mm.shape
    rows, cols = np.nonzero(depth_mm)
    left, top = max(int(cols.min()) - BOX_MARGIN_PX, 0), max(int(rows.min()) - BOX_MARGIN_PX, 0)
    right, bottom = min(int(cols.max()) + 1 + BOX_MARGIN_PX, width), min(int(rows.max()) + 1 + BOX_MARGIN_PX, height)
    header = struct.pack("<6I", width, height, left, top, right, bottom)
    box = np.ascontiguousarray(depth_mm[top:bottom, left:right], dtype="<f4")
    write_bytes_atomic(path, header + box.tobytes())
    return left, top, right, bottom


def _number_line(values: np.ndarray) -> str:
    return " ".join(f"{v:.4f}" for v in np.asarray(values, dtype=np.float64).reshape(-1))


def write_joint_txt(path: Path, joints_mm: np.ndarray) -> None:
    """Writes (N, 21, 3) camera-frame joints (mm) as MSRA's ``joint.txt``: the count, then (x, -y, -z) per frame."""
    lines = [str(len(joints_mm))] + [_number_line(j * MSRA_SIGNS) for j in joints_mm]
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode("ascii"))


def write_center_file(path: Path, centers_mm: np.ndarray, invalid: np.ndarray) -> None:
    """Writes (N, 3) camera-frame centres (mm) as V2V's centre file: (x, -y, z) or 'invalid' per line."""
    lines = ["invalid" if bad else _number_line(c * V2V_SIGNS) for c, bad in zip(centers_mm, invalid, strict=True)]
    write_bytes_atomic(path, "".join(line + "\n" for line in lines).encode("ascii"))


class MSRAGenerator:
    """Poses and renders the frames, with one MANO layer and one offscreen renderer reused for all.

    Args:
        human_model_path: the body-model tree (the synthetic stand-in or the licensed files).
        seed: non-negative; with (subject, gesture, frame) it seeds every frame.
    """

    def __init__(self, human_model_path: str | os.PathLike[str], seed: int) -> None:
        self.seed = seed
        self.layer = get_body_models(human_model_path).mano("right")
        self.faces = self.layer.faces.astype(np.int64)
        self.hand_mean = self.layer.hand_mean.numpy().astype(np.float64)
        self.renderer = MeshRenderer(MSRA_INTRINSICS.width, MSRA_INTRINSICS.height)
        _, rest_joints = self._mano(np.zeros(48), np.zeros(10), flat=True)
        self.facing = _facing_camera(rest_joints)

    def _mano(self, pose: np.ndarray, shape: np.ndarray, flat: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Vertices (778, 3) and MSRA-order joints (21, 3), float64 mm, MANO's frame; ``flat``: fingers straight."""
        hand_pose = pose[3:] - (self.hand_mean if flat else 0.0)
        with torch.no_grad(), _torch_threads(1):
            out = self.layer(
                global_orient=torch.tensor(pose[None, :3], dtype=torch.float32),
                hand_pose=torch.tensor(hand_pose[None], dtype=torch.float32),
                betas=torch.tensor(shape[None], dtype=torch.float32),
            )
        vertices = out.vertices[0].numpy().astype(np.float64) * 1000.0
        joints = np.concatenate([out.joints[0].numpy().astype(np.float64) * 1000.0, vertices[TIP_VERTEX_IDS]])
        return vertices, joints[MSRA_FROM_MANO]

    def subject_shape(self, subject: int) -> np.ndarray:
        """(10,) MANO betas of one subject."""
        rng = np.random.default_rng([self.seed, STREAM_ID, subject])
        return np.clip(rng.normal(size=10), -BETA_LIMIT, BETA_LIMIT)

    def _pose(self, rng: np.random.Generator, gesture: str) -> np.ndarray:
        """(48,) axis-angle radians: the facing-the-camera root turned by a random view, then the gesture's fingers."""
        curls = np.clip(np.array(GESTURE_CURLS[gesture]) + rng.normal(scale=CURL_NOISE, size=5), 0.0, 1.0)
        fingers = finger_rotations(curls, spread_deg=rng.uniform(-5.0, 15.0)) * (1.0, -1.0, -1.0)  # right hand
        view = Rotation.from_euler(
            "yxz", [rng.uniform(*YAW_DEG), rng.uniform(*PITCH_DEG), rng.uniform(*ROLL_DEG)], degrees=True
        )
        root = (view * Rotation.from_matrix(self.facing)).as_rotvec()
        return np.concatenate([root, fingers.reshape(45) - self.hand_mean])

    def frame(self, subject: int, gesture: str, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """One frame: (21, 3) float64 camera-frame joints (mm, MSRA order) and its (240, 320) float32 depth (mm)."""
        rng = np.random.default_rng([self.seed, STREAM_ID, subject, GESTURES.index(gesture), frame])
        vertices, joints = self._mano(self._pose(rng, gesture), self.subject_shape(subject))
        palm = joints[PALM_JOINTS].mean(axis=0)
        centre_px = np.array([MSRA_INTRINSICS.cx, MSRA_INTRINSICS.cy])
        target_px = centre_px + rng.uniform(-1.0, 1.0, 2) * TARGET_JITTER_PX
        ray = np.array([(target_px[0] - MSRA_INTRINSICS.cx) / MSRA_INTRINSICS.fx,
                        (target_px[1] - MSRA_INTRINSICS.cy) / MSRA_INTRINSICS.fy, 1.0])  # fmt: skip
        size = np.array([MSRA_INTRINSICS.width, MSRA_INTRINSICS.height])
        depth = rng.uniform(*PALM_DEPTH_RANGE_MM)
        while True:  # back off until the whole hand is in the image (a hand seen at 250 mm spans most of it)
            shift = ray * depth - palm
            uv = MSRA_INTRINSICS.project(vertices + shift)
            inside = (uv >= IMAGE_MARGIN_PX).all() and (uv <= size - 1 - IMAGE_MARGIN_PX).all()
            if inside or depth >= FARTHEST_DEPTH_MM:
                break
            depth = min(depth + DEPTH_STEP_MM, FARTHEST_DEPTH_MM)
        vertices_mm, joints_mm = vertices + shift, joints + shift
        output = self.renderer.render(
            MeshSpec(vertices_mm / 1000.0, self.faces), (MSRA_INTRINSICS.fx, MSRA_INTRINSICS.fy),
            (MSRA_INTRINSICS.cx, MSRA_INTRINSICS.cy), lit=False,
        )  # fmt: skip
        return joints_mm, (output.depth * 1000.0).astype(np.float32)

    def close(self) -> None:
        self.renderer.close()


def _center_lines(seed: int, test_subject: int, split: str, palms_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noisy centres (N, 3) mm and the 'invalid' mask (N,) of one centre file, from the frames' palm centres."""
    rng = np.random.default_rng([seed, STREAM_ID, SUBJECTS + 1, test_subject, 0 if split == "train" else 1])
    centers = palms_mm + rng.normal(scale=CENTER_NOISE_MM, size=palms_mm.shape)
    invalid = np.zeros(len(palms_mm), dtype=bool)
    if split == "train" and len(palms_mm) >= 2:
        invalid = rng.random(len(palms_mm)) < INVALID_FRACTION
        invalid[rng.integers(len(palms_mm))] = True
    return centers, invalid


def _settings(
    subjects: Sequence[int], frames_per_gesture: int, gestures: Sequence[str], seed: int, human_model_path: Path
) -> dict[str, Any]:
    """What decides the bytes."""
    return {"version": MANIFEST_VERSION, "format": "msra", "subjects": sorted(subjects),
            "frames_per_gesture": frames_per_gesture, "gestures": list(gestures), "seed": seed,
            "human_model_path": str(human_model_path)}  # fmt: skip


def check_request(subjects: Sequence[int], frames_per_gesture: int, gestures: Sequence[str], seed: int) -> None:
    """ValueError naming the argument out of range (what `make_msra` checks before it writes anything)."""
    if not subjects or not set(subjects) <= set(range(SUBJECTS)) or len(set(subjects)) != len(subjects):
        raise ValueError(f"subjects must be distinct numbers of 0..{SUBJECTS - 1}, got {list(subjects)}")
    if frames_per_gesture < 1:
        raise ValueError(f"frames_per_gesture must be at least 1, got {frames_per_gesture}")
    unknown = [g for g in gestures if g not in GESTURES]
    if not gestures or unknown or len(set(gestures)) != len(gestures):
        raise ValueError(f"gestures must be distinct names of {', '.join(GESTURES)}, got {list(gestures)}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")


def make_msra(
    out_dir: str | os.PathLike[str],
    subjects: Sequence[int] = DEFAULT_SUBJECTS,
    frames_per_gesture: int = 3,
    gestures: Sequence[str] = GESTURES,
    seed: int = 0,
    human_model_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Writes synthetic depth frames in MSRA's layout under ``out_dir`` (module docstring), in one process.

    Args:
        out_dir: the MSRA folder; created if missing.
        subjects: the subjects (0..8) whose chosen gesture folders hold frames; the others hold none.
        frames_per_gesture: frames in each chosen gesture folder of those subjects, >= 1.
        gestures: the gesture folders that hold frames (a subset of `GESTURES`); the others hold 0 frames.
        seed: non-negative; the same seed gives the same bytes.
        human_model_path: the body-model tree; None uses the synthetic stand-in (generated if missing).
        progress: show a tqdm progress bar.

    Returns:
        The manifest's settings plus images (the frame count), centre_files, seconds and images_per_s.
    """
    check_request(subjects, frames_per_gesture, gestures, seed)
    gestures = [g for g in GESTURES if g in gestures]  # the release's order, whatever order was asked
    out_dir, model_path = Path(out_dir), _resolve_human_model_path(human_model_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path(out_dir, MANIFEST_NAME).unlink(missing_ok=True)  # the old dataset is no longer complete
    start = time.perf_counter()
    generator = MSRAGenerator(model_path, seed)
    palms: dict[int, list[np.ndarray]] = {s: [] for s in range(SUBJECTS)}  # per subject, in the release's order
    bar = tqdm(total=len(subjects) * len(gestures) * frames_per_gesture, desc="MSRA", unit="img", disable=not progress)
    try:
        for subject in range(SUBJECTS):
            for gesture in GESTURES:
                count = frames_per_gesture if subject in subjects and gesture in gestures else 0
                folder = out_dir / f"P{subject}" / gesture
                folder.mkdir(parents=True, exist_ok=True)
                joints = []
                for frame in range(count):
                    joints_mm, depth_mm = generator.frame(subject, gesture, frame)
                    write_depth_bin(folder / f"{frame:06d}_depth.bin", depth_mm)
                    joints.append(joints_mm)
                    bar.update()
                joints_mm = np.array(joints).reshape(count, len(MSRA_JOINTS.names), 3)
                write_joint_txt(folder / "joint.txt", joints_mm)
                palms[subject] += list(joints_mm[:, PALM_JOINTS].mean(axis=1))
    finally:
        bar.close()
        generator.close()
    for k in range(SUBJECTS):
        for split, members in (("train", [s for s in range(SUBJECTS) if s != k]), ("test", [k])):
            palms_mm = np.array([p for s in members for p in palms[s]]).reshape(-1, 3)
            centers, invalid = _center_lines(seed, k, split, palms_mm)
            write_center_file(out_dir / CENTER_FOLDER / f"center_{split}_{k}_refined.txt", centers, invalid)
    settings = _settings(subjects, frames_per_gesture, gestures, seed, model_path)
    write_json_atomic(manifest_path(out_dir, MANIFEST_NAME), settings)
    images, seconds = len(subjects) * len(gestures) * frames_per_gesture, time.perf_counter() - start
    return {**settings, "images": images, "centre_files": 2 * SUBJECTS, "seconds": seconds,
            "images_per_s": images / max(seconds, 1e-9)}  # fmt: skip


def ensure_msra(
    out_dir: str | os.PathLike[str],
    subjects: Sequence[int] = DEFAULT_SUBJECTS,
    frames_per_gesture: int = 3,
    gestures: Sequence[str] = GESTURES,
    seed: int = 0,
    human_model_path: str | os.PathLike[str] | None = None,
) -> Path:
    """``make_msra`` unless ``out_dir`` already holds a run with the same settings; returns ``out_dir``."""
    out_dir = Path(out_dir)
    ordered = [g for g in GESTURES if g in gestures]
    wanted = _settings(subjects, frames_per_gesture, ordered, seed, _resolve_human_model_path(human_model_path))
    outputs = [
        f"{CENTER_FOLDER}/center_{split}_{k}_refined.txt" for k in range(SUBJECTS) for split in ("train", "test")
    ]
    if not manifest_matches(out_dir, MANIFEST_NAME, wanted, outputs):
        make_msra(out_dir, subjects, frames_per_gesture, gestures, seed, human_model_path, progress=False)
    return out_dir
