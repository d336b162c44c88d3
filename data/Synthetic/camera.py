"""Pinhole cameras looking at a group of people: intrinsics, look-at pose, distance, yaw, pitch and roll.

The world frame is SMPL-X's rest frame with a ground plane: y up, people stand on y = 0. Cameras map
world points into the OpenCV camera frame (x right, y down, z forward, metres): p_cam = R (p_world - C).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

# 720p focal lengths of AGORA's lenses: 18 mm (90 degrees horizontal field of view) to 50 mm (40 degrees)
# on a 36 mm sensor, i.e. 640 to 1778 pixels for a 1280-pixel-wide image.
FOCAL_RANGE_PX = (640.0, 1800.0)
PITCH_RANGE_DEG = (-10.0, 35.0)  # positive: the camera above the people, looking down
ROLL_STD_DEG, ROLL_MAX_DEG = 4.0, 12.0
PERSON_HEIGHT_RANGE_PX = (160.0, 640.0)  # the tallest person's height in the image, before framing offsets
OFF_CENTRE_PROBABILITY = 0.3  # the group framed off-centre, so that people are often cut by the border


@dataclass
class Camera:
    """A pinhole camera without distortion.

    Attributes:
        focal: (fx, fy) pixels, for the rendered image size.
        princpt: (cx, cy) pixels, pixel centres at integer coordinates.
        rotation: (3, 3) world -> OpenCV camera rotation.
        position: (3,) camera centre in the world frame, metres.
    """

    focal: tuple[float, float]
    princpt: tuple[float, float]
    rotation: np.ndarray
    position: np.ndarray

    def world_to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """(..., 3) world metres -> (..., 3) camera-frame metres."""
        return (np.asarray(points_world) - self.position) @ self.rotation.T


def look_at(position: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
    """World -> OpenCV camera rotation of a camera at ``position`` looking at ``target``, world y up.

    Args:
        position: (3,) camera centre, metres.
        target: (3,) point that projects to the principal point, metres.
        roll_deg: rotation of the camera about its viewing axis, degrees (positive: clockwise in the image).

    Returns:
        (3, 3) rotation whose rows are the camera's x (right), y (down) and z (forward) axes in the world.
    """
    forward = np.asarray(target, dtype=np.float64) - np.asarray(position, dtype=np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, (0.0, 1.0, 0.0))  # with y up, forward x up points to the image's right
    if np.linalg.norm(right) < 1e-8:
        raise ValueError("the camera looks straight up or down; the roll is undefined")
    right /= np.linalg.norm(right)
    rotation = np.stack([right, np.cross(forward, right), forward])  # x right, y down, z forward
    return Rotation.from_euler("z", roll_deg, degrees=True).as_matrix() @ rotation


def aim_offset(focal: tuple[float, float], offset_px: tuple[float, float]) -> np.ndarray:
    """(3, 3) camera-frame rotation that moves what was at the principal point by ``offset_px`` pixels."""
    direction = np.array([offset_px[0] / focal[0], offset_px[1] / focal[1], 1.0])
    direction /= np.linalg.norm(direction)
    axis = np.cross((0.0, 0.0, 1.0), direction)
    angle = np.arctan2(np.linalg.norm(axis), direction[2])
    if angle < 1e-12:
        return np.eye(3)
    return Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle).as_matrix()


def sample_camera(
    rng: np.random.Generator,
    target: np.ndarray,
    group_height_m: float,
    yaw_deg: float,
    image_size: tuple[int, int],
) -> Camera:
    """A camera framing a group of people.

    Args:
        rng: the random generator.
        target: (3,) world point the camera is aimed at (the group's centre), metres.
        group_height_m: the tallest person's height, metres; sets the distance for the sampled image height.
        yaw_deg: the camera's direction seen from the target, degrees about the world's y axis (0: on +z,
            where a person with zero heading faces).
        image_size: (height, width) pixels.

    Returns:
        The camera, with square pixels and the principal point at the image centre, as AGORA's.
    """
    height, width = image_size
    fx = float(np.exp(rng.uniform(*np.log(FOCAL_RANGE_PX)))) * width / 1280.0
    person_px = float(np.exp(rng.uniform(*np.log(PERSON_HEIGHT_RANGE_PX)))) * height / 720.0
    distance = fx * group_height_m / person_px
    pitch, yaw = np.radians(rng.uniform(*PITCH_RANGE_DEG)), np.radians(yaw_deg)
    roll = float(np.clip(rng.normal(scale=ROLL_STD_DEG), -ROLL_MAX_DEG, ROLL_MAX_DEG))
    direction = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    position = np.asarray(target, dtype=np.float64) + distance * direction
    rotation = look_at(position, target, roll)
    if rng.random() < OFF_CENTRE_PROBABILITY:
        offset = (rng.choice((-1.0, 1.0)) * rng.uniform(0.3, 0.7) * width / 2, rng.uniform(-0.4, 0.4) * height / 2)
    else:
        offset = (rng.uniform(-0.15, 0.15) * width / 2, rng.uniform(-0.1, 0.1) * height / 2)
    focal = (fx, fx)
    # Q maps the viewing axis onto the ray through the offset pixel, so Q R puts the target at that pixel.
    rotation = aim_offset(focal, offset) @ rotation
    return Camera(focal=focal, princpt=(width / 2.0, height / 2.0), rotation=rotation, position=position)
