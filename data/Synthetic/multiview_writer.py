"""Synthetic people seen by calibrated cameras, in two multi-view layouts: Human3.6M's multi-view labels (learnable
triangulation) and CMU Panoptic's release.

**Human3.6M multi-view** (``make_h36m_multiview``; the layout of learnable triangulation's preprocessing: images
as h36m-fetch extracts them, labels as ``generate-labels-npy-multiview.py`` writes them)::

    processed/<S>/<Action>-<trial>/imageSequence/<camera>/img_<frame_idx + 1:06d>.jpg      distorted, as filmed
    processed/<S>/<Action>-<trial>/imageSequence-undistorted/<camera>/img_<frame_idx + 1:06d>.jpg
    extra/human36m-multiview-labels-GTbboxes.npy     np.save of a dict (a pickled 0-d object array):
        subject_names  ['S1', 'S5', ...]            the written subjects
        camera_names   ['54138969', '55011271', '58860488', '60457274']
        action_names   the 30 '<Action>-<trial>' of Human3.6M (15 actions x trials 1, 2)
        cameras        structured (n_subjects, 4): R f32 (3, 3) and t f32 (3, 1) mm with x_cam = R X + t,
                       K f32 (3, 3) pixels, dist f32 (5,) k1 k2 p1 p2 k3 (OpenCV's Brown-Conrady)
        table          structured (n_frames,): subject_idx i8, action_idx i8, frame_idx i16, keypoints f32 (17, 3)
                       world mm, bbox_by_camera_tlbr i16 (4, 4) (top, left, bottom, right) per camera, squared;
                       all zero for a camera without images (S11 Directions-2 has no 54138969 images, as filmed)
    synthetic_manifest_h36m_multiview.json

The world is Human3.6M's (z up, mm); the joints are the 17 of the labels file, in its order: Human3.6M's 32-joint
indices 3, 2, 1, 6, 7, 8, 0, 12, 13, 15, 27, 26, 25, 17, 18, 19, 14 (ankle, knee, hip right; hip, knee, ankle
left; pelvis, spine, neck, head top; wrist, elbow, shoulder right; shoulder, elbow, wrist left; nose), taken from
the 17-joint Human3.6M regressor (32-joint indices 0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27).
Images are 1002 x 1000 (height x width) times ``image_scale``; the people, motions and cameras are those of
``h36m_writer`` (its 4 cameras per subject), plus a small lens distortion per (subject, camera) like Human3.6M's.

**CMU Panoptic** (``make_cmu_panoptic``; the release's layout, HD cameras only)::

    <sequence>/calibration_<sequence>.json      {"calibDataSource", "cameras": [{"name": "PP_NN", "type": "hd" |
                                                "vga" | "kinect-color", "resolution": [W, H], "panel", "node",
                                                "K" 3x3, "distCoef" (5), "R" 3x3, "t" 3x1 cm}]}: x_cam = R X + t
    <sequence>/hdPose3d_stage1_coco19/body3DScene_<frame:08d>.json   {"version", "univTime", "fpsType",
                                                "bodies": [{"id", "joints19": [x, y, z, c] x 19}]}: cm, world
    <sequence>/hdImgs/<PP_NN>/<PP_NN>_<frame:08d>.jpg                 distorted HD frames, 1080 x 1920 x scale
    synthetic_manifest_cmu_panoptic.json

CMU's world is y down, centimetres; it is Human3.6M's rotated: (x, y, z)_cmu = 0.1 (x, -z, y)_h36m. The 19 joints
are COCO-19 in CMU's order (Neck, Nose, BodyCenter = mid-hip, left shoulder/elbow/wrist/hip/knee/ankle, right ones,
left eye/ear, right eye/ear), from the SMPL-X mesh: its skeleton regressor (applied to the posed mesh) for the
body joints and its vertex keypoints for the face. The calibration also lists one VGA and one Kinect camera
without images, as the release lists those of its other sensors.

Distortion: the person is rendered through a pinhole camera (pyrender); the distorted image is that render
resampled with ``cv2.remap`` at each distorted pixel's undistorted position (OpenCV's iterative undistortion), so
the distorted frames follow the written coefficients exactly; the undistorted Human3.6M frames are the pinhole
renders themselves.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from common.body_models.joint_sets import SMPLX_SKELETON_JOINTS
from common.utils.atomic_io import write_json_atomic
from common.utils.render import MeshSpec

from .appearance import sample_light, shade
from .background import sample_background
from .camera import look_at
from .dataset_writer import _resolve_human_model_path
from .h36m_writer import WORLD_FROM_SMPLX, H36MCamera, H36MGenerator, world_to_camera_mm
from .parts_writer import check_request, generate_records, manifest_path, render_over, write_jpeg

__all__ = ["make_cmu_panoptic", "make_h36m_multiview"]

# --- Human3.6M multi-view ---------------------------------------------------------------------------------------
H36M_IMAGE_HW = (1002, 1000)  # (height, width) of Human3.6M's frames
H36M_CAMERA_NAMES = ("54138969", "55011271", "58860488", "60457274")
H36M_SUBJECTS = (1, 5, 6, 7, 8, 9, 11)
H36M_ACTION_FOLDERS = {
    2: "Directions", 3: "Discussion", 4: "Eating", 5: "Greeting", 6: "Phoning", 7: "Posing", 8: "Purchases",
    9: "Sitting", 10: "SittingDown", 11: "Smoking", 12: "TakingPhoto", 13: "Waiting", 14: "Walking",
    15: "WalkingDog", 16: "WalkingTogether",
}  # fmt: skip
"""Action number (as h36m_writer's) -> h36m-fetch's folder name, before the trial suffix '-1' / '-2'."""
LABEL_ACTION_NAMES = tuple(f"{name}-{trial}" for name in H36M_ACTION_FOLDERS.values() for trial in (1, 2))
LABELS_FILE = "extra/human36m-multiview-labels-GTbboxes.npy"
# The labels file's joints, as Human3.6M 32-joint indices, and the 32-joint index of each row of the 17-joint
# regressor (Pelvis, R_Hip, R_Knee, R_Ankle, L_Hip, L_Knee, L_Ankle, Torso, Neck, Nose, Head, L_Shoulder, L_Elbow,
# L_Wrist, R_Shoulder, R_Elbow, R_Wrist).
LABEL_JOINTS_H36M32 = (3, 2, 1, 6, 7, 8, 0, 12, 13, 15, 27, 26, 25, 17, 18, 19, 14)
REGRESSOR_ROWS_H36M32 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
LABEL_FROM_REGRESSOR = tuple(REGRESSOR_ROWS_H36M32.index(i) for i in LABEL_JOINTS_H36M32)
MISSING_VIEWS = {(11, 2, 2): "54138969"}  # (subject, action, trial) -> camera without images, as in the release
# Brown-Conrady ranges around Human3.6M's own coefficients (k1 ~ -0.2, k2 ~ 0.24, |p| < 0.005).
H36M_DISTORTION = ((-0.22, -0.18), (0.20, 0.26), (-0.002, 0.002), (-0.002, 0.002), (-0.01, 0.01))

# --- CMU Panoptic -----------------------------------------------------------------------------------------------
CMU_IMAGE_HW = (1080, 1920)
CMU_JOINTS = (
    "Neck", "Nose", "BodyCenter", "lShoulder", "lElbow", "lWrist", "lHip", "lKnee", "lAnkle", "rShoulder", "rElbow",
    "rWrist", "rHip", "rKnee", "rAnkle", "lEye", "lEar", "rEye", "rEar",
)  # fmt: skip
# CMU joint -> SMPL-X skeleton joints (averaged) or a vertex keypoint of smplx's vertex_ids.
CMU_FROM_SMPLX_JOINTS = {
    "Neck": ("Neck",), "BodyCenter": ("L_Hip", "R_Hip"), "lShoulder": ("L_Shoulder",), "lElbow": ("L_Elbow",),
    "lWrist": ("L_Wrist",), "lHip": ("L_Hip",), "lKnee": ("L_Knee",), "lAnkle": ("L_Ankle",),
    "rShoulder": ("R_Shoulder",), "rElbow": ("R_Elbow",), "rWrist": ("R_Wrist",), "rHip": ("R_Hip",),
    "rKnee": ("R_Knee",), "rAnkle": ("R_Ankle",),
}  # fmt: skip
CMU_FROM_SMPLX_VERTEX = {"Nose": "nose", "lEye": "leye", "lEar": "lear", "rEye": "reye", "rEar": "rear"}
CMU_FROM_H36M_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # z up -> y down (rotation)
CMU_CM_PER_MM = 0.1
CMU_FIRST_FRAME = 100  # skeleton files of a real sequence start later than frame 0
CMU_SEQUENCE_ACTIONS = (14, 7, 5, 2)  # h36m_writer's motions, one per sequence in turn
CMU_SEQUENCE_SUBJECTS = (1, 9, 5, 11)  # h36m_writer's people
CMU_DISTANCE_M = (3.2, 3.8)  # horizontal, from the dome centre
CMU_HEIGHT_M = (0.6, 2.6)
CMU_FOCAL_PX = (1350.0, 1550.0)  # at 1920 pixels wide
CMU_DISTORTION = ((-0.25, -0.2), (0.1, 0.2), (-0.001, 0.001), (-0.001, 0.001), (-0.05, 0.0))
CMU_EXTRA_SENSORS = (("01_01", "vga", (640, 480)), ("50_01", "kinect-color", (1920, 1080)))

JPEG_QUALITY = 90
STREAM_ID = 11  # keeps these random streams apart from the other writers' for the same seed
MANIFEST_VERSION = 1


def _scaled_hw(image_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    hw = (int(round(image_hw[0] * scale)), int(round(image_hw[1] * scale)))
    if min(hw) < 64:
        raise ValueError(f"image_scale {scale} makes {hw[0]} x {hw[1]} images; at least 64 pixels are needed")
    return hw


def _uniform(rng: np.random.Generator, ranges: tuple[tuple[float, float], ...]) -> np.ndarray:
    return np.array([rng.uniform(low, high) for low, high in ranges])


def intrinsics(cam: H36MCamera) -> np.ndarray:
    """(3, 3) K of a camera, pixels."""
    return np.array([[cam.f[0], 0.0, cam.c[0]], [0.0, cam.f[1], cam.c[1]], [0.0, 0.0, 1.0]])


def distort_image(image: np.ndarray, K: np.ndarray, dist: np.ndarray, interpolation: int) -> np.ndarray:
    """The image a lens with ``dist`` makes of a pinhole (undistorted) ``image`` of the same K and size.

    Each output (distorted) pixel takes the pinhole image at its undistorted position (OpenCV's iterative undistortion,
    iterated to convergence); pixels whose position falls outside repeat the border (a real lens sees more).
    """
    height, width = image.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), axis=-1).reshape(-1, 1, 2).astype(np.float64)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    if hasattr(cv2, "undistortPointsIter"):  # OpenCV 4; OpenCV 5 folded the criteria into undistortPoints
        undistorted = cv2.undistortPointsIter(grid, K, dist, None, K, criteria)
    else:
        undistorted = cv2.undistortPoints(grid, K, dist, R=None, P=K, criteria=criteria)
    undistorted = undistorted.reshape(height, width, 2)
    maps = undistorted.astype(np.float32)
    return cv2.remap(image, maps[..., 0], maps[..., 1], interpolation, borderMode=cv2.BORDER_REPLICATE)


def square_box_tlbr(mask: np.ndarray) -> list[int]:
    """The square box (top, left, bottom, right) around a mask's extent, the longer side kept; zeros if empty."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return [0, 0, 0, 0]
    top, bottom, left, right = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    side = max(bottom - top, right - left)
    centre_y, centre_x = (top + bottom) // 2, (left + right) // 2
    return [centre_y - side // 2, centre_x - side // 2, centre_y - side // 2 + side, centre_x - side // 2 + side]


class _Renderer:
    """Renders h36m_writer's people through any H36MCamera list, with one SMPL-X set and one OpenGL context."""

    def __init__(self, human_model_path: Path, frames: int, seed: int, image_hw: tuple[int, int]) -> None:
        # No folders and no output folder: only its people, motions, cameras and renderer are used.
        self.gen = H36MGenerator(human_model_path, [], frames, seed, Path("."), image_hw)
        self.seed, self.image_hw = seed, image_hw

    def render(self, subject: int, action: int, trial: int, cam: H36MCamera, rng: np.random.Generator) -> tuple:
        """Per frame the (H, W, 3) uint8 RGB pinhole render and its (H, W) bool person mask."""
        person, albedo, _ = self.gen.subject(subject)
        vertices_mm, _ = self.gen.sequence_world(subject, action, trial)
        faces = np.asarray(self.gen.body_models.smplx(person.gender).faces, dtype=np.int64)
        render_cam = cam.render_camera()
        background, light = sample_background(rng, self.image_hw, render_cam), sample_light(rng)
        frames = []
        for vertices in vertices_mm:
            cam_vertices = world_to_camera_mm(vertices, cam.R, cam.T) / 1000.0  # metres, OpenCV frame
            colours = shade(albedo, cam_vertices, faces, light)
            frames.append(render_over(self.gen.renderer, MeshSpec(cam_vertices, faces, vertex_colors=colours),
                                      render_cam, background))  # fmt: skip
        return frames

    def close(self) -> None:
        self.gen.close()


class H36MMultiViewGenerator(_Renderer):
    """Work item i = one (subject, action, trial) sequence: its images in both folders, its label rows."""

    def __init__(self, human_model_path: Path, sequences: list[tuple[int, int, int]], frames: int, seed: int,
                 out_dir: Path, image_hw: tuple[int, int]) -> None:  # fmt: skip
        super().__init__(human_model_path, frames, seed, image_hw)
        self.sequences, self.out_dir = sequences, out_dir

    def cameras(self, subject: int) -> list[tuple[H36MCamera, np.ndarray]]:
        """The subject's 4 cameras (h36m_writer's) and each one's (5,) distortion."""
        _, _, cams = self.gen.subject(subject)
        rngs = [np.random.default_rng([self.seed, STREAM_ID, 0, subject, k]) for k in range(len(cams))]
        return [(cam, _uniform(rng, H36M_DISTORTION)) for cam, rng in zip(cams, rngs, strict=True)]

    def generate(self, index: int) -> dict[str, Any]:
        subject, action, trial = self.sequences[index]
        folder = self.out_dir / "processed" / f"S{subject}" / f"{H36M_ACTION_FOLDERS[action]}-{trial}"
        _, joints17_mm = self.gen.sequence_world(subject, action, trial)
        boxes = np.zeros((len(joints17_mm), len(H36M_CAMERA_NAMES), 4), dtype=np.int64)
        for k, (cam, dist) in enumerate(self.cameras(subject)):
            name = H36M_CAMERA_NAMES[k]
            if MISSING_VIEWS.get((subject, action, trial)) == name:
                continue
            rng = np.random.default_rng([self.seed, STREAM_ID, 1, subject, action, trial, k])
            K = intrinsics(cam)
            for n, (image, mask) in enumerate(self.render(subject, action, trial, cam, rng)):
                distorted = distort_image(image, K, dist, cv2.INTER_LINEAR)
                distorted_mask = distort_image(mask.astype(np.uint8), K, dist, cv2.INTER_NEAREST) > 0
                write_jpeg(folder / "imageSequence" / name / f"img_{n + 1:06d}.jpg", distorted, JPEG_QUALITY)
                write_jpeg(folder / "imageSequence-undistorted" / name / f"img_{n + 1:06d}.jpg", image, JPEG_QUALITY)
                boxes[n, k] = square_box_tlbr(distorted_mask)  # the GT boxes are the filmed (distorted) images'
        keypoints = joints17_mm[:, list(LABEL_FROM_REGRESSOR)]
        cameras = [{"R": cam.R.tolist(), "t": (-(cam.R @ cam.T)).tolist(), "K": intrinsics(cam).tolist(),
                    "dist": dist.tolist()} for cam, dist in self.cameras(subject)]  # fmt: skip
        return {"keypoints": keypoints.tolist(), "boxes": boxes.tolist(), "cameras": cameras}


def _labels(subjects: tuple[int, ...], sequences: list[tuple[int, int, int]], records: list[dict]) -> dict:
    """The labels dict of the written sequences, in the upstream layout (module docstring)."""
    camera_dtype = [("R", np.float32, (3, 3)), ("t", np.float32, (3, 1)), ("K", np.float32, (3, 3)),
                    ("dist", np.float32, (5,))]  # fmt: skip
    table_dtype = [("subject_idx", np.int8), ("action_idx", np.int8), ("frame_idx", np.int16),
                   ("keypoints", np.float32, (17, 3)),
                   ("bbox_by_camera_tlbr", np.int16, (len(H36M_CAMERA_NAMES), 4))]  # fmt: skip
    cameras = np.zeros((len(subjects), len(H36M_CAMERA_NAMES)), dtype=camera_dtype)
    rows = []
    for (subject, action, trial), record in zip(sequences, records, strict=True):
        s = subjects.index(subject)
        for k, cam in enumerate(record["cameras"]):
            cameras[s, k] = (cam["R"], np.reshape(cam["t"], (3, 1)), cam["K"], cam["dist"])
        action_idx = LABEL_ACTION_NAMES.index(f"{H36M_ACTION_FOLDERS[action]}-{trial}")
        for n, (keypoints, boxes) in enumerate(zip(record["keypoints"], record["boxes"], strict=True)):
            rows.append((s, action_idx, n, keypoints, boxes))
    return {"subject_names": [f"S{s}" for s in subjects], "camera_names": list(H36M_CAMERA_NAMES),
            "action_names": list(LABEL_ACTION_NAMES), "cameras": cameras,
            "table": np.array(rows, dtype=table_dtype)}  # fmt: skip


def make_h36m_multiview(
    out_dir: str | os.PathLike[str],
    subjects: tuple[int, ...] = (1, 5, 9, 11),
    actions: tuple[int, ...] = (2, 14),
    trials: tuple[int, ...] = (1,),
    frames_per_sequence: int = 4,
    seed: int = 0,
    workers: int = 1,
    human_model_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    image_scale: float = 1.0,
) -> dict[str, Any]:
    """Writes synthetic sequences in the Human3.6M multi-view layout under ``out_dir`` (see the module docstring).

    Args:
        out_dir: the dataset root (it gets processed/ and extra/).
        subjects: Human3.6M subject numbers (1, 5, 6, 7, 8, 9, 11).
        actions: action numbers 2 (Directions) .. 16 (WalkTogether).
        trials: 1 and/or 2 (the '-1' / '-2' suffix of the action folders).
        frames_per_sequence: frames per (subject, action, trial), >= 1.
        seed: non-negative; the same seed gives the same files, whatever ``workers``.
        workers: processes, >= 1.
        human_model_path: the body-model tree; None: the synthetic stand-in.
        progress: show a progress bar.
        image_scale: the frames are 1002 x 1000 times this (focal length and principal point alike).

    Returns:
        The settings plus sequences, frames, images, seconds and images_per_s.
    """
    subjects, actions, trials = tuple(subjects), tuple(actions), tuple(trials)
    for name, values, known in (("subjects", subjects, H36M_SUBJECTS), ("actions", actions,
                                tuple(H36M_ACTION_FOLDERS)), ("trials", trials, (1, 2))):  # fmt: skip
        if not values or not set(values) <= set(known) or len(set(values)) != len(values):
            raise ValueError(f"{name} must be distinct values of {known}, got {values}")
    check_request(frames_per_sequence, seed, workers, count_name="frames_per_sequence")
    image_hw = _scaled_hw(H36M_IMAGE_HW, image_scale)
    out_dir, model_path = Path(out_dir), _resolve_human_model_path(human_model_path)
    settings = {"version": MANIFEST_VERSION, "format": "h36m_multiview", "subjects": list(subjects),
                "actions": list(actions), "trials": list(trials), "frames_per_sequence": frames_per_sequence,
                "seed": seed, "image_hw": list(image_hw), "human_model_path": str(model_path)}  # fmt: skip
    sequences = [(s, a, t) for s in subjects for a in actions for t in trials]
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path(out_dir, "h36m_multiview").unlink(missing_ok=True)  # the old dataset is no longer complete
    start = time.perf_counter()
    factory = functools.partial(H36MMultiViewGenerator, model_path, sequences, frames_per_sequence, seed, out_dir,
                                image_hw)  # fmt: skip
    records = generate_records(factory, len(sequences), workers, "Human3.6M multi-view sequences", progress)
    labels = _labels(subjects, sequences, records)
    (out_dir / LABELS_FILE).parent.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / LABELS_FILE, labels, allow_pickle=True)  # upstream's format: a pickled dict
    seconds = time.perf_counter() - start
    write_json_atomic(manifest_path(out_dir, "h36m_multiview"), settings)
    frames = len(labels["table"])
    images = 2 * int((labels["table"]["bbox_by_camera_tlbr"].any(axis=-1)).sum())  # distorted + undistorted
    return {**settings, "sequences": len(sequences), "frames": frames, "images": images, "seconds": seconds,
            "images_per_s": images / max(seconds, 1e-9)}  # fmt: skip


# --- CMU Panoptic -----------------------------------------------------------------------------------------------
def cmu_joints_cm(vertices_mm: np.ndarray, regressor: np.ndarray) -> np.ndarray:
    """(N, 19, 3) COCO-19 joints in CMU's world (y down, cm) of (N, V, 3) posed meshes in Human3.6M's world (mm).

    Args:
        vertices_mm: the meshes, Human3.6M world (z up), millimetres.
        regressor: (55, V) SMPL-X skeleton regressor.
    """
    skeleton = np.einsum("jv,nvc->njc", regressor, vertices_mm)  # (N, 55, 3)
    joints = np.empty((len(vertices_mm), len(CMU_JOINTS), 3))
    for j, name in enumerate(CMU_JOINTS):
        if name in CMU_FROM_SMPLX_JOINTS:
            rows = [SMPLX_SKELETON_JOINTS.index(n) for n in CMU_FROM_SMPLX_JOINTS[name]]
            joints[:, j] = skeleton[:, rows].mean(axis=1)
        else:
            joints[:, j] = vertices_mm[:, SMPLX_VERTEX_IDS["smplx"][CMU_FROM_SMPLX_VERTEX[name]]]
    return joints @ CMU_FROM_H36M_WORLD.T * CMU_CM_PER_MM


def cmu_cameras(rng: np.random.Generator, count: int, image_hw: tuple[int, int]) -> list[H36MCamera]:
    """``count`` HD cameras around the dome (yaw spread evenly), in Human3.6M's world for the renderer."""
    height, width = image_hw
    scale = width / CMU_IMAGE_HW[1]
    cameras = []
    for k in range(count):
        yaw = 2.0 * np.pi * k / count + rng.uniform(-0.2, 0.2)
        distance, height_m = rng.uniform(*CMU_DISTANCE_M), rng.uniform(*CMU_HEIGHT_M)
        position = np.array([distance * np.cos(yaw), height_m, distance * np.sin(yaw)])  # SMPL-X rest world, y up
        target = np.array([rng.uniform(-0.1, 0.1), rng.uniform(0.8, 1.0), rng.uniform(-0.1, 0.1)])
        rotation_yup = look_at(position, target, roll_deg=float(rng.normal(scale=0.5)))
        focal = rng.uniform(*CMU_FOCAL_PX) * scale * (1.0 + rng.uniform(-0.003, 0.003, 2))
        princpt = np.array([width - 1, height - 1]) / 2.0 + rng.uniform(-0.005, 0.005, 2) * width
        cameras.append(H36MCamera(R=rotation_yup @ WORLD_FROM_SMPLX.T, T=WORLD_FROM_SMPLX @ position * 1000.0,
                                  f=focal, c=princpt))  # fmt: skip
    return cameras


def cmu_calibration_entry(name: str, cam: H36MCamera, dist: np.ndarray, image_hw: tuple[int, int]) -> dict:
    """One HD camera of a calibration file: x_cam_cm = R X_cmu_cm + t."""
    rotation = cam.R @ CMU_FROM_H36M_WORLD.T  # CMU world -> camera
    translation_cm = -(cam.R @ cam.T) * CMU_CM_PER_MM
    panel, node = (int(v) for v in name.split("_"))
    return {"name": name, "type": "hd", "resolution": [image_hw[1], image_hw[0]], "panel": panel, "node": node,
            "K": intrinsics(cam).tolist(), "distCoef": dist.tolist(), "R": rotation.tolist(),
            "t": translation_cm.reshape(3, 1).tolist()}  # fmt: skip


class CMUGenerator(_Renderer):
    """Work item i = one sequence: its calibration, skeleton files and distorted HD frames."""

    def __init__(self, human_model_path: Path, sequences: list[str], frames: int, num_cameras: int, seed: int,
                 out_dir: Path, image_hw: tuple[int, int]) -> None:  # fmt: skip
        super().__init__(human_model_path, frames, seed, image_hw)
        self.sequences, self.num_cameras, self.out_dir = sequences, num_cameras, out_dir
        self.regressor = np.asarray(self.gen.body_models.smplx_joint_regressor(), dtype=np.float64)

    def generate(self, index: int) -> dict[str, Any]:
        sequence = self.sequences[index]
        subject = CMU_SEQUENCE_SUBJECTS[index % len(CMU_SEQUENCE_SUBJECTS)]
        action = CMU_SEQUENCE_ACTIONS[index % len(CMU_SEQUENCE_ACTIONS)]
        trial = 1 + index  # distinct motions for every sequence
        folder = self.out_dir / sequence
        rng = np.random.default_rng([self.seed, STREAM_ID, 2, index])
        cams = cmu_cameras(rng, self.num_cameras, self.image_hw)
        names = [f"00_{k:02d}" for k in range(self.num_cameras)]
        entries = []
        for k, (name, cam) in enumerate(zip(names, cams, strict=True)):
            dist = _uniform(rng, CMU_DISTORTION)
            entries.append(cmu_calibration_entry(name, cam, dist, self.image_hw))
            view_rng = np.random.default_rng([self.seed, STREAM_ID, 3, index, k])
            for n, (image, _) in enumerate(self.render(subject, action, trial, cam, view_rng)):
                distorted = distort_image(image, intrinsics(cam), dist, cv2.INTER_LINEAR)
                path = folder / "hdImgs" / name / f"{name}_{CMU_FIRST_FRAME + n:08d}.jpg"
                write_jpeg(path, distorted, JPEG_QUALITY)
        for name, kind, (w, h) in CMU_EXTRA_SENSORS:  # other sensors of the dome: listed, never read
            entries.append({"name": name, "type": kind, "resolution": [w, h], "panel": int(name[:2]),
                            "node": int(name[3:]), "K": np.eye(3).tolist(), "distCoef": [0.0] * 5,
                            "R": np.eye(3).tolist(), "t": [[0.0], [0.0], [300.0]]})  # fmt: skip
        write_json_atomic(folder / f"calibration_{sequence}.json", {"calibDataSource": sequence, "cameras": entries})
        vertices_mm, _ = self.gen.sequence_world(subject, action, trial)
        joints_cm = cmu_joints_cm(vertices_mm, self.regressor)
        for n, joints in enumerate(joints_cm):
            confidence = np.full((len(CMU_JOINTS), 1), 0.9)
            body = {"id": 0, "joints19": np.concatenate([joints, confidence], axis=1).reshape(-1).tolist()}
            scene = {"version": 0.7, "univTime": 1000.0 + 33.367 * n, "fpsType": "hd_29_97", "bodies": [body]}
            write_json_atomic(folder / "hdPose3d_stage1_coco19" / f"body3DScene_{CMU_FIRST_FRAME + n:08d}.json", scene)
        return {"sequence": sequence, "frames": len(joints_cm), "images": len(joints_cm) * len(names)}


def make_cmu_panoptic(
    out_dir: str | os.PathLike[str],
    sequences: tuple[str, ...] = ("171204_synth1", "171204_synth2"),
    frames_per_sequence: int = 4,
    num_cameras: int = 5,
    seed: int = 0,
    workers: int = 1,
    human_model_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    image_scale: float = 1.0,
) -> dict[str, Any]:
    """Writes synthetic sequences in CMU Panoptic's release layout under ``out_dir`` (see the module docstring).

    Args:
        out_dir: the dataset root (one folder per sequence).
        sequences: the sequence folder names (e.g. one for training, one for testing).
        frames_per_sequence: skeleton files (and frames per camera) per sequence, >= 1.
        num_cameras: HD cameras per sequence, >= 5 ('00_00', '00_01', ...).
        seed, workers, human_model_path, progress: as `make_h36m_multiview`.
        image_scale: the frames are 1080 x 1920 times this.

    Returns:
        The settings plus frames, images, seconds and images_per_s.
    """
    sequences = tuple(sequences)
    if not sequences or len(set(sequences)) != len(sequences) or not all(s and "/" not in s for s in sequences):
        raise ValueError(f"sequences must be distinct folder names, got {sequences}")
    if num_cameras < 5 or num_cameras > 31:
        raise ValueError(f"num_cameras must be 5..31 (the dome's HD cameras), got {num_cameras}")
    check_request(frames_per_sequence, seed, workers, count_name="frames_per_sequence")
    image_hw = _scaled_hw(CMU_IMAGE_HW, image_scale)
    out_dir, model_path = Path(out_dir), _resolve_human_model_path(human_model_path)
    settings = {"version": MANIFEST_VERSION, "format": "cmu_panoptic", "sequences": list(sequences),
                "frames_per_sequence": frames_per_sequence, "num_cameras": num_cameras, "seed": seed,
                "image_hw": list(image_hw), "human_model_path": str(model_path)}  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path(out_dir, "cmu_panoptic").unlink(missing_ok=True)
    start = time.perf_counter()
    factory = functools.partial(CMUGenerator, model_path, list(sequences), frames_per_sequence, num_cameras, seed,
                                out_dir, image_hw)  # fmt: skip
    records = generate_records(factory, len(sequences), workers, "CMU Panoptic sequences", progress)
    seconds = time.perf_counter() - start
    write_json_atomic(manifest_path(out_dir, "cmu_panoptic"), settings)
    images = sum(r["images"] for r in records)
    return {**settings, "frames": sum(r["frames"] for r in records), "images": images, "seconds": seconds,
            "images_per_s": images / max(seconds, 1e-9)}  # fmt: skip
