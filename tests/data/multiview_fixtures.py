"""Tiny multi-view fixtures written straight from the layouts' specifications (numpy, json, cv2), not with the
project's writers or readers: a Human3.6M multi-view labels file with its image folders, and CMU Panoptic sequences.

Every image is a flat grey frame with one bright Gaussian dot at the projection of one joint (Human3.6M: the pelvis;
CMU: the right ankle; the distorted projection in distorted images), so a test can find in a crop where the image
shows that joint. The 2D joints of
every view are computed here with cv2.projectPoints and kept for the tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

IMAGE_HW = (120, 160)  # (H, W) pixels of every fixture image
FOCAL_PX = 150.0
BACKGROUND = 90
DOT_SIGMA_PX, DOT_PEAK = 1.6, 160.0

H36M_CAMERAS = ("54138969", "55011271", "58860488", "60457274")
H36M_ACTIONS = ("Directions-1", "Directions-2", "Greeting-1", "Greeting-2", "Waiting-1")
H36M_SUBJECTS = ("S1", "S9", "S11")
# (subject, action, frames): S9 has the damaged Greeting-2 and Waiting-1; S11 Directions-2 lacks camera 54138969.
H36M_ROWS = (("S1", "Directions-1", 2), ("S1", "Greeting-1", 1), ("S9", "Greeting-1", 1), ("S9", "Greeting-2", 2),
             ("S9", "Waiting-1", 1), ("S11", "Directions-2", 2), ("S11", "Waiting-1", 1))  # fmt: skip
H36M_MISSING = {("S11", "Directions-2"): 0}  # camera index without images
H36M_PELVIS = 6
H36M_DIST = np.array([-0.45, 0.25, 0.003, -0.002, 0.01])  # strong: a few pixels at this small focal length

CMU_PELVIS = 2
CMU_IMAGE_HW = (200, 240)  # larger than Human3.6M's fixture: the people fill more of the lens, far from its centre
CMU_DOT_JOINT = 14  # rAnkle, at the floor: far from the image centre, where the lens moves it by pixels
CMU_HD = ("00_00", "00_01", "00_02", "00_03", "00_04", "00_05")
CMU_DIST = np.array([-0.4, 0.2, 0.002, 0.0015, -0.01])


def look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) of a camera at ``position`` looking at ``target``: rows of R are its x right, y down, z forward."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    rotation = np.stack([right, np.cross(forward, right), forward])
    assert np.isclose(np.linalg.det(rotation), 1.0)
    return rotation, -rotation @ position


def intrinsics(dx: float = 0.0, image_hw: tuple[int, int] = IMAGE_HW) -> np.ndarray:
    return np.array([[FOCAL_PX + dx, 0.0, image_hw[1] / 2 - 0.5 + dx], [0.0, FOCAL_PX - dx, image_hw[0] / 2 + 0.3],
                     [0.0, 0.0, 1.0]])  # fmt: skip


def project(points: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray, dist: np.ndarray | None) -> np.ndarray:
    """(N, 3) world points -> (N, 2) pixels with OpenCV (distortion when ``dist`` is given)."""
    rvec, _ = cv2.Rodrigues(np.asarray(R, np.float64))
    coefficients = np.zeros(5) if dist is None else np.asarray(dist, np.float64)
    pixels, _ = cv2.projectPoints(np.ascontiguousarray(points, np.float64), rvec, np.asarray(t, np.float64).reshape(3),
                                  np.asarray(K, np.float64), coefficients)  # fmt: skip
    return pixels.reshape(-1, 2)


def dot_image(centre_xy: np.ndarray, image_hw: tuple[int, int] = IMAGE_HW) -> np.ndarray:
    """(H, W, 3) uint8 grey frame with a Gaussian dot centred at ``centre_xy`` (pixel centres at integers)."""
    y, x = np.mgrid[0 : image_hw[0], 0 : image_hw[1]].astype(np.float64)
    dot = DOT_PEAK * np.exp(-((x - centre_xy[0]) ** 2 + (y - centre_xy[1]) ** 2) / (2 * DOT_SIGMA_PX**2))
    grey = np.clip(BACKGROUND + dot, 0, 255).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def write_jpg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 100])


def body_joints(rng: np.random.Generator, count: int, pelvis_index: int, pelvis: np.ndarray, height_axis: int,
                height_sign: float) -> np.ndarray:  # fmt: skip
    """(count, 3) joints scattered in a person-sized box around ``pelvis`` (the pelvis exactly there)."""
    joints = pelvis + rng.uniform(-250.0, 250.0, (count, 3))
    joints[:, height_axis] = pelvis[height_axis] + height_sign * rng.uniform(-850.0, 800.0, count)
    joints[pelvis_index] = pelvis
    return joints


@dataclass
class H36MFixture:
    """What the Human3.6M fixture wrote; ``points_2d[(row, camera)]`` = (distorted (17, 2), undistorted (17, 2))."""

    root: Path
    labels_path: Path
    joints_mm: np.ndarray
    subjects: list[str]
    actions: list[str]
    boxes_tlbr: np.ndarray
    cameras: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    points_2d: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def write_h36m(root: Path, seed: int = 0) -> H36MFixture:
    """The labels file (extra/human36m-multiview-labels-GTbboxes.npy) and processed/ images of `H36M_ROWS`."""
    rng = np.random.default_rng(seed)
    cam_dtype = [("R", np.float32, (3, 3)), ("t", np.float32, (3, 1)), ("K", np.float32, (3, 3)),
                 ("dist", np.float32, (5,))]  # fmt: skip
    cameras = np.zeros((len(H36M_SUBJECTS), len(H36M_CAMERAS)), dtype=cam_dtype)
    fixture = H36MFixture(root, root / "extra" / "human36m-multiview-labels-GTbboxes.npy", np.zeros(0), [], [],
                          np.zeros(0))  # fmt: skip
    for s in range(len(H36M_SUBJECTS)):
        for k in range(len(H36M_CAMERAS)):
            yaw = np.radians(40.0 + 90.0 * k + 10.0 * s)
            position = np.array([3000.0 * np.cos(yaw), 3000.0 * np.sin(yaw), 1500.0 + 100.0 * k])
            R, t = look_at(position, np.array([0.0, 0.0, 900.0]), np.array([0.0, 0.0, 1.0]))
            K, dist = intrinsics(dx=3.0 * k), H36M_DIST * (1.0 + 0.1 * k)
            cameras[s, k] = (R, t.reshape(3, 1), K, dist)
            fixture.cameras[(s, k)] = (R.astype(np.float32), t.astype(np.float32), K.astype(np.float32),
                                       dist.astype(np.float32))  # fmt: skip
    table_dtype = [("subject_idx", np.int8), ("action_idx", np.int8), ("frame_idx", np.int16),
                   ("keypoints", np.float32, (17, 3)),
                   ("bbox_by_camera_tlbr", np.int16, (len(H36M_CAMERAS), 4))]  # fmt: skip
    rows = []
    for subject, action, frames in H36M_ROWS:
        s, a = H36M_SUBJECTS.index(subject), H36M_ACTIONS.index(action)
        for frame in range(frames):
            # Off the cameras' aim point, so that the lens distortion moves the joints by pixels.
            pelvis = np.array([rng.uniform(-500, 500), rng.uniform(-500, 500), 950.0])
            joints = body_joints(rng, 17, H36M_PELVIS, pelvis, 2, 1.0).astype(np.float32)
            boxes = np.zeros((len(H36M_CAMERAS), 4), dtype=np.int64)
            row = len(rows)
            for k, name in enumerate(H36M_CAMERAS):
                if H36M_MISSING.get((subject, action)) == k:
                    continue
                R, t, K, dist = fixture.cameras[(s, k)]
                distorted, undistorted = project(joints, R, t, K, dist), project(joints, R, t, K, None)
                fixture.points_2d[(row, k)] = (distorted, undistorted)
                low, high = np.floor(distorted.min(0)) - 6, np.ceil(distorted.max(0)) + 6
                boxes[k] = (low[1], low[0], high[1], high[0])  # top, left, bottom, right
                folder = root / "processed" / subject / action
                image_name = f"img_{frame + 1:06d}.jpg"  # files count from 1
                write_jpg(folder / "imageSequence" / name / image_name, dot_image(distorted[H36M_PELVIS]))
                write_jpg(folder / "imageSequence-undistorted" / name / image_name,
                          dot_image(undistorted[H36M_PELVIS]))  # fmt: skip
            rows.append((s, a, frame, joints, boxes))
    table = np.array(rows, dtype=table_dtype)
    labels = {"subject_names": list(H36M_SUBJECTS), "camera_names": list(H36M_CAMERAS),
              "action_names": list(H36M_ACTIONS), "cameras": cameras, "table": table}  # fmt: skip
    fixture.labels_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(fixture.labels_path, labels, allow_pickle=True)  # the upstream way: a pickled dict
    fixture.joints_mm, fixture.boxes_tlbr = table["keypoints"].astype(np.float64), table["bbox_by_camera_tlbr"]
    fixture.subjects = [H36M_SUBJECTS[i] for i in table["subject_idx"]]
    fixture.actions = [H36M_ACTIONS[i] for i in table["action_idx"]]
    return fixture


@dataclass
class CMUFixture:
    """What the CMU fixture wrote, in the release's units (cm): per sequence its cameras (name -> R, t cm, K, dist),
    and per kept frame (sequence, frame, joints (19, 3) cm, confidences (19,))."""

    root: Path
    cameras: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = field(default_factory=dict)
    frames: list[tuple[str, int, np.ndarray, np.ndarray]] = field(default_factory=list)


def write_cmu(root: Path, sequences: dict[str, tuple[int, ...]], seed: int = 0) -> CMUFixture:
    """Calibration, skeleton files and HD frames of ``sequences`` (name -> frame numbers).

    The second frame of every sequence has no body (not a sample); the third has two (the first one is the sample).
    """
    rng = np.random.default_rng(seed)
    fixture = CMUFixture(root)
    up = np.array([0.0, -1.0, 0.0])  # CMU's world is y down
    for sequence, frames in sequences.items():
        folder = root / sequence
        entries, cams = [], {}
        for k, name in enumerate(CMU_HD):
            yaw = np.radians(60.0 * k + 15.0)
            position = np.array([220.0 * np.cos(yaw), -140.0 - 10.0 * k, 220.0 * np.sin(yaw)])  # cm
            R, t = look_at(position, np.array([0.0, -90.0, 0.0]), up)
            K, dist = intrinsics(2.0 * k, CMU_IMAGE_HW), CMU_DIST * (1.0 + 0.1 * k)
            cams[name] = (R, t, K, dist)
            entries.append({"name": name, "type": "hd", "resolution": [CMU_IMAGE_HW[1], CMU_IMAGE_HW[0]], "panel": 0,
                            "node": k, "K": K.tolist(), "distCoef": dist.tolist(), "R": R.tolist(),
                            "t": t.reshape(3, 1).tolist()})  # fmt: skip
        entries.insert(2, {"name": "01_01", "type": "vga", "resolution": [640, 480], "K": np.eye(3).tolist(),
                           "distCoef": [0.0] * 5, "R": np.eye(3).tolist(), "t": [[0.0], [0.0], [0.0]]})  # fmt: skip
        fixture.cameras[sequence] = cams
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"calibration_{sequence}.json").write_text(json.dumps({"calibDataSource": sequence,
                                                                         "cameras": entries}))  # fmt: skip
        for n, frame in enumerate(frames):
            bodies = []
            for _ in range(0 if n == 1 else 2 if n == 2 else 1):
                pelvis = np.array([rng.uniform(-40, 40), -95.0, rng.uniform(-40, 40)])
                joints = body_joints(rng, 19, CMU_PELVIS, pelvis * 10.0, 1, -1.0) / 10.0  # mm scale, then cm
                joints[CMU_DOT_JOINT, 1] = -5.0  # on the floor
                confidence = rng.uniform(0.2, 1.0, 19)
                if n == 0:
                    confidence[5] = -1.0  # not seen
                bodies.append((joints, confidence))
            scene = {"version": 0.7, "univTime": 1.0 * frame, "fpsType": "hd_29_97",
                     "bodies": [{"id": i, "joints19": np.concatenate([j, c[:, None]], 1).reshape(-1).tolist()}
                                for i, (j, c) in enumerate(bodies)]}  # fmt: skip
            pose = folder / "hdPose3d_stage1_coco19" / f"body3DScene_{frame:08d}.json"
            pose.parent.mkdir(parents=True, exist_ok=True)
            pose.write_text(json.dumps(scene))
            if not bodies:
                continue
            joints, confidence = bodies[0]
            fixture.frames.append((sequence, frame, joints, confidence))
            for name, (R, t, K, dist) in cams.items():
                dot = project(joints[CMU_DOT_JOINT : CMU_DOT_JOINT + 1], R, t, K, dist)[0]
                write_jpg(folder / "hdImgs" / name / f"{name}_{frame:08d}.jpg", dot_image(dot, CMU_IMAGE_HW))
    return fixture
