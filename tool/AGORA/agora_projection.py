"""AGORA's camera and body placement, as agora_evaluation/projection.py defines them and Hand4Whole re-implemented.

AGORA renders in Unreal Engine: world coordinates in centimetres with x forward, y right, z up. Converted to
OpenCV axes (x right, y down, z forward) and metres, a point (x, y, z) cm becomes (y, -z, x) / 100 m
(`unreal_to_opencv`). A person's SMPL-X fit lives in its own frame (the "fit frame": the SMPL-X layer's
output plus the fit's ``transl``, y up); AGORA places it in the world by flipping y and z, turning it about
the vertical axis by (Yaw - 90) degrees (the scans face 90 degrees away from SMPL-X's front) and moving it to
the scene table's (X, Y, Z). The camera sits at a position of its scene (a preset, or the table's camX, camY,
camZ for the archviz scenes, raised by a 1.7 m ground plane offset), turned by -yaw about the vertical and
then by its pitch about x. Its sensor is 36 x 20.25 mm, so a focal length f mm is f / 36 * 3840 pixels
horizontally (and f / 20.25 * 2160 vertically: the same), with the principal point at the image centre.

Every step is rigid, so a fit-frame point X lands in the camera at R X + t; agora2coco_smplx.py recovers that
R, t from the mapped joints and folds it into the SMPL-X parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = ["CAMERA_PRESETS", "AgoraCamera", "CameraPreset", "fit_to_camera", "focal_mm_to_px", "scene_camera",
           "unreal_to_opencv"]  # fmt: skip

SENSOR_WH_MM = (36.0, 20.25)  # the simulated DSLR sensor (width, height)
IMAGE_WH_4K = (3840, 2160)  # pixels of AGORA's images, which the intrinsics refer to
BODY_YAW_OFFSET_DEG = -90.0  # the scans' front is 90 degrees from SMPL-X's (agora_evaluation's "yawSMPL - 90")
FIT_TO_OPENCV = np.diag([1.0, -1.0, -1.0])  # SMPL-X's y-up fit frame -> y down, z forward (a 180 deg turn about x)


@dataclass(frozen=True)
class CameraPreset:
    """A scene's camera as AGORA's projection code fixes it.

    Attributes:
        focal_mm: focal length in millimetres.
        position_cm: (3,) Unreal world position in centimetres, or None: the scene table's camX, camY, camZ.
        yaw_deg: turn about the vertical, degrees, or None: the table's camYaw.
        pitch_deg: downward tilt about the camera's x axis, degrees.
        ground_offset_m: (3,) added to the camera position after the axis change (OpenCV axes, metres).
    """

    focal_mm: float
    position_cm: tuple[float, float, float] | None
    yaw_deg: float | None
    pitch_deg: float
    ground_offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)


CAMERA_PRESETS: tuple[tuple[str, CameraPreset], ...] = (
    ("hdri", CameraPreset(50.0, (0.0, 0.0, 170.0), 0.0, 0.0)),
    ("cam00", CameraPreset(18.0, (400.0, -275.0, 265.0), 135.0, 30.0)),
    ("cam01", CameraPreset(18.0, (400.0, 225.0, 265.0), -135.0, 30.0)),
    ("cam02", CameraPreset(18.0, (-490.0, 170.0, 265.0), -45.0, 30.0)),
    ("cam03", CameraPreset(18.0, (-490.0, -275.0, 265.0), 45.0, 30.0)),
    ("ag2", CameraPreset(28.0, (0.0, 0.0, 170.0), 0.0, 15.0)),
)
"""(substring of the image name, preset), tried in this order; the first match wins."""
TABLE_CAMERA = CameraPreset(28.0, None, None, 0.0, (0.0, -1.7, 0.0))
"""The camera of every other scene (archviz): position and yaw from the scene table."""


def unreal_to_opencv(points: np.ndarray) -> np.ndarray:
    """(..., 3) Unreal axes (x forward, y right, z up) -> (..., 3) OpenCV axes (x right, y down, z forward)."""
    points = np.asarray(points, dtype=np.float64)
    return np.stack([points[..., 1], -points[..., 2], points[..., 0]], axis=-1)


def focal_mm_to_px(focal_mm: float, sensor_mm: float, image_px: float) -> float:
    """Focal length in pixels of an image ``image_px`` pixels across a sensor ``sensor_mm`` millimetres across."""
    return focal_mm / sensor_mm * image_px


def _rotation_about(axis: int, degrees: float) -> np.ndarray:
    rotvec = np.zeros(3)
    rotvec[axis] = np.deg2rad(degrees)
    return Rotation.from_rotvec(rotvec).as_matrix()  # the same matrix as cv2.Rodrigues(rotvec)


@dataclass(frozen=True)
class AgoraCamera:
    """One image's camera: intrinsics in 3840x2160 pixels and the world (OpenCV axes, metres) -> camera map.

    Attributes:
        focal_px: (2,) (fx, fy). princpt_px: (2,) (cx, cy).
        rotation: (3, 3) world -> camera rotation (pitch after yaw).
        position_m: (3,) camera centre in the world.
    """

    focal_px: np.ndarray
    princpt_px: np.ndarray
    rotation: np.ndarray
    position_m: np.ndarray

    def world_to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """(N, 3) world metres -> (N, 3) camera metres."""
        return (np.asarray(points_world, np.float64) - self.position_m) @ self.rotation.T

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """(N, 3) camera metres (z > 0) -> (N, 2) pixels of the 3840x2160 image."""
        return points_cam[:, :2] / points_cam[:, 2:] * self.focal_px + self.princpt_px


def scene_camera(image_name: str, table_position_cm: Sequence[float], table_yaw_deg: float) -> AgoraCamera:
    """The camera of an image, from the preset its name selects or from the scene table.

    Args:
        image_name: the image file name (``imgPath``), which names the scene and camera.
        table_position_cm: (3,) the table's camX, camY, camZ (Unreal centimetres); used by archviz scenes.
        table_yaw_deg: the table's camYaw in degrees; used by archviz scenes.
    """
    preset = next((p for key, p in CAMERA_PRESETS if key in image_name), TABLE_CAMERA)
    position_cm = table_position_cm if preset.position_cm is None else preset.position_cm
    yaw = float(table_yaw_deg if preset.yaw_deg is None else preset.yaw_deg)
    position_m = unreal_to_opencv(np.asarray(position_cm, np.float64) / 100.0) + np.asarray(preset.ground_offset_m)
    (width, height), (sensor_w, sensor_h) = IMAGE_WH_4K, SENSOR_WH_MM
    focal = np.array([focal_mm_to_px(preset.focal_mm, sensor_w, width),
                      focal_mm_to_px(preset.focal_mm, sensor_h, height)])  # fmt: skip
    rotation = _rotation_about(0, preset.pitch_deg) @ _rotation_about(1, -yaw)  # (3, 3) yaw first, then pitch
    return AgoraCamera(focal, np.array([width / 2.0, height / 2.0]), rotation, position_m)


def fit_to_camera(
    points_fit: np.ndarray, body_yaw_deg: float, body_position_cm: Sequence[float], camera: AgoraCamera
) -> np.ndarray:
    """Fit-frame points (SMPL-X output + transl, metres) -> camera metres, step by step as AGORA places them.

    Args:
        points_fit: (N, 3) metres in the fit frame.
        body_yaw_deg: the table's Yaw of the person, degrees.
        body_position_cm: (3,) the table's X, Y, Z of the person (Unreal centimetres).
        camera: the image's camera.

    Returns:
        (N, 3) camera metres.
    """
    turn = _rotation_about(1, body_yaw_deg + BODY_YAW_OFFSET_DEG) @ FIT_TO_OPENCV  # (3, 3) fit -> world
    position = unreal_to_opencv(np.asarray(body_position_cm, np.float64) / 100.0)  # (3,) world metres
    points_world = np.asarray(points_fit, np.float64) @ turn.T + position  # (N, 3)
    return camera.world_to_camera(points_world)
