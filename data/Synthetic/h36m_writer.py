"""Synthetic people seen by 4 calibrated cameras, written in the upstream Integral Human3.6M layout.

The layout is the one of the Integral Human Pose Regression releases (JimmySuen/integral-human-pose and
mks0601/Integral-Human-Pose-Regression-for-3D-Human-Pose-Estimation, which read it with ``scipy.io.loadmat``)::

    data/s_XX_act_XX_subact_XX_ca_XX/                 subject 1..11, action 2..16, subaction 1..2, camera 1..4
        h36m_meta.mat                                 MATLAB 5 file (scipy.io.savemat), all values float64:
            pose3d_world  (N, 17, 3) millimetres, world frame, the 17 Human3.6M joints (H36M_JOINTS order:
                          Pelvis, R_Hip, R_Knee, R_Ankle, L_Hip, L_Knee, L_Ankle, Torso, Neck, Nose, Head,
                          L_Shoulder, L_Elbow, L_Wrist, R_Shoulder, R_Elbow, R_Wrist); no Thorax (readers add it)
            R             (3, 3) world -> camera rotation (rows: the camera's x right, y down, z forward axes)
            T             (1, 3) millimetres, the camera CENTRE in the world frame (not a translation):
                          p_cam = R @ (p_world - T), as upstream's ``process_world_coordinate``
            f             (1, 2) (fx, fy) pixels
            c             (1, 2) (cx, cy) pixels, pixel centres at integer coordinates
            img_width     (1, N) pixels, per frame (upstream reads ``img_widths[n]``)
            img_height    (1, N) pixels, per frame
        s_XX_act_XX_subact_XX_ca_XX_000001.jpg        frame n (0-based) is ``%06d`` of n + 1, as upstream names it
    synthetic_manifest_h36m.json                      the settings of the finished run

Projection (no distortion; the real release's k, p are not part of this layout): ``x = R (X - T)``, then
``u = fx x0 / x2 + cx``, ``v = fy x1 / x2 + cy``. 1-D values are MATLAB row vectors (scipy's default), so readers
reshape them (upstream does: ``np.reshape(data['T'], (3))``).

The world is Human3.6M's motion-capture frame: z up, the floor at z = 0, millimetres. A SMPL-X rest-frame point
(y up, metres) p maps to ``1000 * WORLD_FROM_SMPLX @ p``: (x, y, z) -> (x, -z, y), a proper rotation.

Images are rendered at ``IMAGE_HW`` = (501, 500) pixels by default, half of Human3.6M's 1002 x 1000 (height x
width), with the focal length and principal point scaled alike (fx ~ 1145 / 2); any size can be asked for, and the
file records it. Each subject is one SMPL-X person (the real subject's gender; random shape, hands, face and
clothing colours) seen by the same 4 cameras in all its sequences (Human3.6M calibrates per subject): at the
room's 4 corners, 3.5-5 m from the capture centre, 1.4-1.8 m high, aimed at the centre. Each action is a motion
between 2-3 library poses of ``body_poses`` (per-joint slerp) while the person turns and drifts a little; each
(subject, camera) has one static procedural background, as a fixed camera in a fixed room would. A folder is a
pure function of (seed, subject, action, subaction, camera) (torch single-threaded, unlit rendering, fixed .mat
header), so the bytes do not depend on ``workers``.
"""

from __future__ import annotations

import functools
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import torch
from scipy.spatial.transform import Rotation

from common.body_models.layers import get_body_models
from common.utils.atomic_io import write_bytes_atomic, write_json_atomic
from common.utils.render import MeshRenderer, MeshSpec

from .appearance import sample_albedo, sample_light, shade, vertex_regions
from .background import sample_background
from .body_poses import sample_body_pose
from .camera import Camera, look_at
from .dataset_writer import _resolve_human_model_path
from .generator import _torch_threads
from .parts_writer import check_request, generate_records, manifest_matches, manifest_path, render_over, write_jpeg
from .person import sample_person

IMAGE_HW = (501, 500)  # (height, width): half of Human3.6M's 1002 x 1000
H36M_WIDTH = 1000.0  # the real cameras' image width, pixels, for scaling the focal length
FOCAL_PX = 1145.0  # Human3.6M's focal length at 1000 pixels wide (its four cameras: 1143.8-1149.7)
FOCAL_JITTER = 0.005  # relative, per axis
PRINCPT_JITTER = 0.006  # of the image width, about the centre (Human3.6M's: 508-515 of 1000)
CAMERA_DISTANCE_M = (3.5, 5.0)  # horizontal, from the capture centre
CAMERA_HEIGHT_M = (1.4, 1.8)
CAMERA_YAW_JITTER_DEG = 12.0  # about the corners at 45, 135, 225, 315 degrees
AIM_HEIGHT_M = (0.8, 1.0)  # the cameras look at this height above the capture centre
AIM_JITTER_M = 0.1  # horizontal
START_RADIUS_M = 0.2  # the person starts this close to the capture centre
DRIFT_M = 0.4  # and moves at most this far during a sequence
TURN_DEG = 60.0  # and turns at most this much
JPEG_QUALITY = 90
NUM_JOINTS = 17
SUBJECTS = (1, 5, 6, 7, 8, 9, 11)
SUBJECT_GENDERS = {1: "female", 5: "female", 6: "male", 7: "female", 8: "male", 9: "male", 11: "male"}  # as filmed
SUBACTIONS = (1, 2)
CAMERAS = (1, 2, 3, 4)
ACTION_NAMES = {
    2: "Directions", 3: "Discussion", 4: "Eating", 5: "Greeting", 6: "Phoning", 7: "Posing", 8: "Purchases",
    9: "Sitting", 10: "SittingDown", 11: "Smoking", 12: "Photo", 13: "Waiting", 14: "Walking", 15: "WalkDog",
    16: "WalkTogether",
}  # fmt: skip
# The body_poses library poses each action's motion passes through, in order.
ACTION_KEY_POSES = {
    2: ("standing", "pointing", "reaching_forward"), 3: ("contrapposto", "waving", "arms_crossed"),
    4: ("sitting", "sitting_leaning_back"), 5: ("standing", "waving", "reaching_forward"), 6: ("standing", "phone"),
    7: ("hands_on_hips", "stretching_up", "contrapposto"), 8: ("standing", "bending_over", "reaching_forward"),
    9: ("sitting", "sitting_leaning_back", "sitting"), 10: ("standing", "crouching", "sitting_on_floor"),
    11: ("contrapposto", "phone"), 12: ("standing", "hands_behind_head", "pointing"),
    13: ("standing", "arms_crossed", "hands_on_hips"), 14: ("walking", "standing", "walking"),
    15: ("walking", "bending_over"), 16: ("walking", "contrapposto", "walking"),
}  # fmt: skip
WORLD_FROM_SMPLX = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # y-up -> z-up
MANIFEST_NAME = "h36m"
MANIFEST_VERSION = 1  # bump when a change of the generator changes what a seed produces
STREAM_ID = 3  # keeps these random streams apart from the other synthetic formats' for the same seed
MAT_DESCRIPTION = b"MATLAB 5.0 MAT-file, written by data/Synthetic/h36m_writer.py"  # no date: same seed, same bytes


def folder_name(subject: int, action: int, subaction: int, camera: int) -> str:
    """'s_01_act_02_subact_01_ca_01', as upstream's ``_H36FolderName``."""
    return f"s_{subject:02d}_act_{action:02d}_subact_{subaction:02d}_ca_{camera:02d}"


def image_name(folder: str, frame: int) -> str:
    """The JPEG of 0-based frame ``frame``: '<folder>_<frame + 1:06d>.jpg', as upstream's ``_H36ImageName``."""
    return f"{folder}_{frame + 1:06d}.jpg"


def world_to_camera_mm(points_world: np.ndarray, rotation: np.ndarray, centre_mm: np.ndarray) -> np.ndarray:
    """(..., 3) world millimetres -> (..., 3) camera-frame millimetres: R (X - T), T the camera centre."""
    return (np.asarray(points_world, dtype=np.float64) - centre_mm) @ np.asarray(rotation).T


def project_mm(points_world: np.ndarray, rotation: np.ndarray, centre_mm: np.ndarray, f: Any, c: Any) -> np.ndarray:
    """(..., 3) world millimetres -> (..., 2) pixels with this module's (R, T, f, c) convention."""
    cam = world_to_camera_mm(points_world, rotation, centre_mm)
    return cam[..., :2] / cam[..., 2:] * np.asarray(f, dtype=np.float64) + np.asarray(c, dtype=np.float64)


@dataclass
class H36MCamera:
    """One calibrated camera in the layout's convention.

    Attributes:
        R: (3, 3) world -> OpenCV camera rotation.
        T: (3,) camera centre, world millimetres (z up).
        f: (fx, fy) pixels.
        c: (cx, cy) pixels, pixel centres at integer coordinates.
    """

    R: np.ndarray
    T: np.ndarray
    f: np.ndarray
    c: np.ndarray

    def render_camera(self) -> Camera:
        """The same camera in the SMPL-X rest world (y up, metres), as the renderer and background expect."""
        # p_cam = R (W p - T / 1000) = (R W) (p - W^T T / 1000) with W = WORLD_FROM_SMPLX, metres.
        return Camera(focal=(float(self.f[0]), float(self.f[1])), princpt=(float(self.c[0]), float(self.c[1])),
                      rotation=self.R @ WORLD_FROM_SMPLX, position=WORLD_FROM_SMPLX.T @ self.T / 1000.0)  # fmt: skip


def sample_cameras(rng: np.random.Generator, image_hw: tuple[int, int]) -> list[H36MCamera]:
    """The 4 cameras of a subject: one per room corner, looking at the capture centre.

    Args:
        rng: the subject's camera generator.
        image_hw: (H, W) pixels; the focal length and principal point scale with the width.
    """
    height, width = image_hw
    scale = width / H36M_WIDTH
    cameras = []
    for k in range(len(CAMERAS)):
        yaw = np.radians(45.0 + 90.0 * k + rng.uniform(-CAMERA_YAW_JITTER_DEG, CAMERA_YAW_JITTER_DEG))
        distance, height_m = rng.uniform(*CAMERA_DISTANCE_M), rng.uniform(*CAMERA_HEIGHT_M)
        # SMPL-X rest world (y up): the camera on the circle, the aim point near the centre.
        position = np.array([distance * np.cos(yaw), height_m, distance * np.sin(yaw)])
        target = np.array([rng.uniform(-AIM_JITTER_M, AIM_JITTER_M), rng.uniform(*AIM_HEIGHT_M),
                           rng.uniform(-AIM_JITTER_M, AIM_JITTER_M)])  # fmt: skip
        rotation_yup = look_at(position, target, roll_deg=float(rng.normal(scale=0.5)))
        focal = FOCAL_PX * scale * (1.0 + rng.uniform(-FOCAL_JITTER, FOCAL_JITTER, 2))
        princpt = np.array([width - 1, height - 1]) / 2.0 + rng.uniform(-PRINCPT_JITTER, PRINCPT_JITTER, 2) * width
        cameras.append(H36MCamera(R=rotation_yup @ WORLD_FROM_SMPLX.T, T=WORLD_FROM_SMPLX @ position * 1000.0,
                                  f=focal, c=princpt))  # fmt: skip
    return cameras


def _slerp(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    """(J, 3) axis-angle rotations a -> b at fraction s in [0, 1], per joint along the shortest arc."""
    ra, rb = Rotation.from_rotvec(a), Rotation.from_rotvec(b)
    return (ra * Rotation.from_rotvec((ra.inv() * rb).as_rotvec() * s)).as_rotvec()


def motion_poses(rng: np.random.Generator, action: int, num_frames: int) -> np.ndarray:
    """(num_frames, 22, 3) axis-angle radians (root tilt, then body_pose) of an action's motion.

    The action's key poses (each perturbed by ``sample_body_pose``) are passed through at even intervals, with a
    smooth (cosine) ease between them.
    """
    keys = []
    for name in ACTION_KEY_POSES[action]:
        _, tilt, body = sample_body_pose(rng, name)
        keys.append(np.concatenate([tilt[None], body]))
    poses = np.empty((num_frames, len(keys[0]), 3))
    for n in range(num_frames):
        t = n / max(num_frames - 1, 1) * (len(keys) - 1)  # position along the key poses
        k = min(int(t), len(keys) - 2)
        s = 0.5 - 0.5 * np.cos(np.pi * (t - k))
        poses[n] = _slerp(keys[k], keys[k + 1], s)
    return poses


class H36MGenerator:
    """Makes and writes sequence folders, with one renderer and the SMPL-X layers reused for all.

    Args:
        human_model_path: the body-model tree (the synthetic stand-in or the licensed files).
        folders: (subject, action, subaction, camera) of every work item, by index.
        frames_per_sequence: N, frames of every folder.
        seed: non-negative; with a folder's ids it seeds everything in it.
        out_dir: the Human3.6M folder; folders go to ``<out_dir>/data``.
        image_hw: (H, W) pixels.
    """

    def __init__(
        self,
        human_model_path: str | os.PathLike[str],
        folders: list[tuple[int, int, int, int]],
        frames_per_sequence: int,
        seed: int,
        out_dir: str | Path,
        image_hw: tuple[int, int] = IMAGE_HW,
    ) -> None:
        self.folders, self.frames, self.seed = folders, frames_per_sequence, seed
        self.out_dir, self.image_hw = Path(out_dir), tuple(image_hw)
        self.body_models = get_body_models(human_model_path)
        self.regressor = np.asarray(self.body_models.h36m_regressor(), dtype=np.float64)  # (17, V)
        self.renderer = MeshRenderer(self.image_hw[1], self.image_hw[0])
        self._subjects: dict[int, tuple[Any, np.ndarray, list[H36MCamera]]] = {}
        self._sequence: tuple[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] | None = None

    def _rng(self, *ids: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, STREAM_ID, *ids])

    def subject(self, subject: int) -> tuple[Any, np.ndarray, list[H36MCamera]]:
        """A subject's person (``PersonPose``; its body pose is replaced per frame), albedo (V, 3), cameras."""
        if subject not in self._subjects:
            self._subjects[subject] = self._make_subject(subject)
        return self._subjects[subject]

    def _make_subject(self, subject: int) -> tuple[Any, np.ndarray, list[H36MCamera]]:
        gender = SUBJECT_GENDERS[subject]
        layer = self.body_models.smplx(gender)
        hand_means = {gender: (layer.left_hand_mean.numpy(), layer.right_hand_mean.numpy())}
        rng = self._rng(0, subject)
        person = sample_person(rng, (gender,), hand_means)
        regions = vertex_regions(layer.lbs_weights.numpy())
        albedo = sample_albedo(rng, regions, layer.v_template.numpy().astype(np.float64))
        return person, albedo, sample_cameras(self._rng(1, subject), self.image_hw)

    def sequence_world(self, subject: int, action: int, subaction: int) -> tuple[np.ndarray, np.ndarray]:
        """The posed person of a sequence, the same for its 4 cameras.

        Returns:
            Vertices (N, V, 3) and the 17 Human3.6M joints (N, 17, 3), float64 world millimetres (z up).
        """
        key = (subject, action, subaction)
        if self._sequence is None or self._sequence[0] != key:  # a worker's folders come camera after camera
            self._sequence = (key, self._make_sequence(subject, action, subaction))
        return self._sequence[1]

    def _make_sequence(self, subject: int, action: int, subaction: int) -> tuple[np.ndarray, np.ndarray]:
        person, _, _ = self.subject(subject)
        rng = self._rng(2, subject, action, subaction)
        poses = motion_poses(rng, action, self.frames)
        start = rng.uniform(-1.0, 1.0, 2) * START_RADIUS_M / np.sqrt(2.0)  # (x, z) in the rest world
        drift_angle = rng.uniform(0.0, 2.0 * np.pi)
        drift = rng.uniform(0.0, DRIFT_M) * np.array([np.cos(drift_angle), np.sin(drift_angle)])
        heading0, turn = rng.uniform(0.0, 2.0 * np.pi), np.radians(rng.uniform(-TURN_DEG, TURN_DEG))
        count = self.frames

        def repeat(values: np.ndarray) -> torch.Tensor:
            row = np.asarray(values, dtype=np.float32).reshape(1, -1)
            return torch.from_numpy(np.repeat(row, count, axis=0))

        with torch.no_grad(), _torch_threads(1):
            output = self.body_models.smplx(person.gender)(
                betas=repeat(person.betas), expression=repeat(person.expression),
                body_pose=torch.from_numpy(poses[:, 1:].reshape(count, -1).astype(np.float32)),
                global_orient=torch.from_numpy(poses[:, 0].astype(np.float32)), jaw_pose=repeat(person.jaw_pose),
                left_hand_pose=repeat(person.left_hand_pose), right_hand_pose=repeat(person.right_hand_pose),
                leye_pose=repeat(np.zeros(3)), reye_pose=repeat(np.zeros(3)), transl=repeat(np.zeros(3)),
            )  # fmt: skip
        rest = output.vertices.double().numpy()  # (N, V, 3) metres, y up
        root = output.joints[:, 0].double().numpy()  # (N, 3)
        vertices = np.empty_like(rest)
        for n in range(count):
            s = n / max(count - 1, 1)
            turn_n = Rotation.from_rotvec([0.0, heading0 + turn * s, 0.0]).as_matrix()
            turned = (rest[n] - root[n]) @ turn_n.T
            position = start + drift * s
            vertices[n] = turned + np.array([position[0], -turned[:, 1].min(), position[1]])  # feet on the floor
        vertices_mm = vertices @ WORLD_FROM_SMPLX.T * 1000.0
        return vertices_mm, np.einsum("jv,nvc->njc", self.regressor, vertices_mm)

    def render_sequence(
        self, subject: int, action: int, subaction: int, camera: int
    ) -> tuple[np.ndarray, H36MCamera, list[np.ndarray], list[np.ndarray]]:
        """A folder's frames without writing them.

        Returns:
            The joints (N, 17, 3) world millimetres, the camera, and per frame the (H, W, 3) uint8 RGB image and
            the (H, W) bool mask of the person.
        """
        person, albedo, cameras = self.subject(subject)
        vertices_mm, joints_mm = self.sequence_world(subject, action, subaction)
        cam = cameras[CAMERAS.index(camera)]
        render_cam = cam.render_camera()
        faces = np.asarray(self.body_models.smplx(person.gender).faces, dtype=np.int64)
        background = sample_background(self._rng(3, subject, camera), self.image_hw, render_cam)  # a fixed room
        light = sample_light(self._rng(4, subject, action, subaction, camera))
        images, masks = [], []
        for n in range(len(vertices_mm)):
            cam_vertices = world_to_camera_mm(vertices_mm[n], cam.R, cam.T) / 1000.0  # metres, OpenCV frame
            colours = shade(albedo, cam_vertices, faces, light)
            image, mask = render_over(self.renderer, MeshSpec(cam_vertices, faces, vertex_colors=colours),
                                      render_cam, background)  # fmt: skip
            images.append(image)
            masks.append(mask)
        return joints_mm, cam, images, masks

    def generate(self, index: int) -> dict[str, Any]:
        """Makes folder ``index``: its JPEGs and h36m_meta.mat; returns its name and frame count."""
        subject, action, subaction, camera = self.folders[index]
        folder = folder_name(subject, action, subaction, camera)
        joints_mm, cam, images, _ = self.render_sequence(subject, action, subaction, camera)
        folder_dir = self.out_dir / "data" / folder
        for n, image in enumerate(images):
            write_jpeg(folder_dir / image_name(folder, n), image, JPEG_QUALITY)
        count = len(images)
        meta = {
            "pose3d_world": joints_mm.astype(np.float64), "R": cam.R.astype(np.float64),
            "T": cam.T.astype(np.float64), "f": np.asarray(cam.f, dtype=np.float64),
            "c": np.asarray(cam.c, dtype=np.float64),
            "img_width": np.full(count, float(self.image_hw[1])), "img_height": np.full(count, float(self.image_hw[0])),
        }  # fmt: skip
        write_bytes_atomic(folder_dir / "h36m_meta.mat", mat_bytes(meta))
        return {"folder": folder, "frames": count}

    def close(self) -> None:
        self.renderer.close()


def mat_bytes(values: dict[str, np.ndarray]) -> bytes:
    """``scipy.io.savemat``'s MATLAB 5 file of ``values``, with a fixed header text instead of the date."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, values, format="5", do_compression=False)
    data = bytearray(buffer.getvalue())
    data[:116] = MAT_DESCRIPTION.ljust(116, b" ")  # the 116-byte description field; the rest is untouched
    return bytes(data)


def _folders(
    subjects: tuple[int, ...], actions: tuple[int, ...], subactions: tuple[int, ...]
) -> list[tuple[int, int, int, int]]:
    return [(s, a, sa, c) for s in subjects for a in actions for sa in subactions for c in CAMERAS]


def _settings(
    subjects: tuple[int, ...],
    actions: tuple[int, ...],
    subactions: tuple[int, ...],
    frames_per_sequence: int,
    seed: int,
    image_hw: tuple[int, int],
    human_model_path: Path,
) -> dict[str, Any]:
    """What decides the bytes (the worker count does not)."""
    return {"version": MANIFEST_VERSION, "format": "h36m", "subjects": list(subjects), "actions": list(actions),
            "subactions": list(subactions), "frames_per_sequence": frames_per_sequence, "seed": seed,
            "image_hw": list(image_hw), "human_model_path": str(human_model_path)}  # fmt: skip


def _check(
    subjects: tuple[int, ...], actions: tuple[int, ...], subactions: tuple[int, ...], frames: int, seed: int,
    workers: int, image_hw: tuple[int, int],
) -> None:  # fmt: skip
    for name, values, known in (("subjects", subjects, SUBJECTS), ("actions", actions, tuple(ACTION_NAMES)),
                                ("subactions", subactions, SUBACTIONS)):  # fmt: skip
        if not values or not set(values) <= set(known) or len(set(values)) != len(values):
            raise ValueError(f"{name} must be distinct values of {known}, got {values}")
    check_request(frames, seed, workers, count_name="frames_per_sequence")
    if len(image_hw) != 2 or min(image_hw) < 64:
        raise ValueError(f"image_hw must be (H, W) of at least 64 pixels, got {image_hw}")


def make_h36m(
    out_dir: str | os.PathLike[str],
    subjects: tuple[int, ...] = (1, 5, 9, 11),
    actions: tuple[int, ...] = (2, 14),
    frames_per_sequence: int = 10,
    seed: int = 0,
    workers: int = 1,
    human_model_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    subactions: tuple[int, ...] = (1,),
    image_hw: tuple[int, int] = IMAGE_HW,
) -> dict[str, Any]:
    """Writes synthetic sequences in the upstream Integral Human3.6M layout under ``out_dir`` (see the docstring).

    Args:
        out_dir: the Human3.6M folder (sequences go to ``out_dir/data``); created if missing.
        subjects: Human3.6M subject numbers (1, 5, 6, 7, 8, 9, 11).
        actions: Human3.6M action numbers, 2 (Directions) .. 16 (WalkTogether).
        frames_per_sequence: frames per folder, >= 1.
        seed: non-negative; the same seed gives the same bytes, whatever ``workers``.
        workers: processes making folders, >= 1.
        human_model_path: the body-model tree; None uses the synthetic stand-in (generated if missing).
        progress: show a tqdm progress bar.
        subactions: 1 and/or 2.
        image_hw: (H, W) pixels of the frames.

    Returns:
        The manifest's settings plus folders, images, seconds and images_per_s.
    """
    subjects, actions, subactions = tuple(subjects), tuple(actions), tuple(subactions)
    image_hw = (int(image_hw[0]), int(image_hw[1]))
    _check(subjects, actions, subactions, frames_per_sequence, seed, workers, image_hw)
    out_dir, model_path = Path(out_dir), _resolve_human_model_path(human_model_path)
    settings = _settings(subjects, actions, subactions, frames_per_sequence, seed, image_hw, model_path)
    folders = _folders(subjects, actions, subactions)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path(out_dir, MANIFEST_NAME).unlink(missing_ok=True)  # the old dataset is no longer complete
    start = time.perf_counter()
    factory = functools.partial(H36MGenerator, model_path, folders, frames_per_sequence, seed, out_dir, image_hw)
    records = generate_records(factory, len(folders), workers, "Human3.6M folders", progress)
    seconds = time.perf_counter() - start
    write_json_atomic(manifest_path(out_dir, MANIFEST_NAME), settings)
    images = sum(r["frames"] for r in records)
    return {**settings, "folders": len(records), "images": images, "seconds": seconds,
            "images_per_s": images / max(seconds, 1e-9)}  # fmt: skip


def ensure_h36m(
    out_dir: str | os.PathLike[str],
    subjects: tuple[int, ...] = (1, 5, 9, 11),
    actions: tuple[int, ...] = (2, 14),
    frames_per_sequence: int = 10,
    seed: int = 0,
    workers: int = 1,
    human_model_path: str | os.PathLike[str] | None = None,
    subactions: tuple[int, ...] = (1,),
    image_hw: tuple[int, int] = IMAGE_HW,
) -> Path:
    """``make_h36m`` unless ``out_dir`` already holds a finished run with the same settings.

    Returns:
        ``out_dir`` as a Path.
    """
    out_dir = Path(out_dir)
    image_hw = (int(image_hw[0]), int(image_hw[1]))
    wanted = _settings(tuple(subjects), tuple(actions), tuple(subactions), frames_per_sequence, seed, image_hw,
                       _resolve_human_model_path(human_model_path))  # fmt: skip
    outputs = [f"data/{folder_name(*f)}/h36m_meta.mat" for f in _folders(tuple(subjects), tuple(actions),
                                                                          tuple(subactions))]  # fmt: skip
    if not manifest_matches(out_dir, MANIFEST_NAME, wanted, outputs):
        make_h36m(out_dir, subjects, actions, frames_per_sequence, seed, workers, human_model_path, False,
                  subactions, image_hw)  # fmt: skip
    return out_dir
