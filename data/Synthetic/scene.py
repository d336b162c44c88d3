"""A scene: 1-3 people posed, set on the ground side by side, and a camera; SMPL-X in the camera frame.

Each person is posed once in SMPL-X's rest frame (y up), turned about the vertical, set on the ground
(y = 0) and seen by a camera; everything after the SMPL-X forward pass is a rigid motion, so the camera-frame
parameters follow in closed form (as AGORA's conversion does): for a rigid motion p -> A p + b of a mesh
posed with root rotation G about the root joint J0 (which depends on the shape only),
``global_orient = A G`` and ``transl = A J0 + b - J0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from common.body_models.layers import BodyModels

from .camera import Camera, sample_camera
from .person import PersonPose, sample_person

PEOPLE_COUNT_PROBS = (0.4, 0.35, 0.25)  # 1, 2 or 3 people per image
FRONTAL_PROBABILITY, FRONTAL_STD_DEG = 0.7, 45.0  # most people face the camera roughly; the others any way
MIN_DEPTH_M = 0.3  # every vertex at least this far in front of the camera
LATERAL_RANGE_M, DEPTH_RANGE_M = (-2.2, 2.2), (-2.5, 1.2)  # offsets of further people from the first one
SEPARATION = 0.85  # pelvis distance >= this x (sum of the two footprint radii): limbs may overlap, bodies not


@dataclass
class ScenePerson:
    """One person of a scene, in the camera frame.

    Attributes:
        pose: the sampled SMPL-X parameters without root rotation and translation.
        global_orient: (3,) float32 axis-angle, radians, camera frame.
        transl: (3,) float32 metres, camera frame.
        vertices: (V, 3) float32 mesh, metres, camera frame: the SMPL-X output for these parameters.
        joints: (J, 3) float32 SMPL-X output joints (144 with the face contour), metres, camera frame.
    """

    pose: PersonPose
    global_orient: np.ndarray
    transl: np.ndarray
    vertices: np.ndarray
    joints: np.ndarray

    def smplx_params(self) -> dict[str, list[float]]:
        """AGORA's ``smplx_params_cam`` record: flat lists of float32 values (leye/reye poses are zero)."""
        pose = self.pose
        arrays = {
            "global_orient": self.global_orient, "body_pose": pose.body_pose, "jaw_pose": pose.jaw_pose,
            "leye_pose": np.zeros(3), "reye_pose": np.zeros(3), "left_hand_pose": pose.left_hand_pose,
            "right_hand_pose": pose.right_hand_pose, "betas": pose.betas, "expression": pose.expression,
            "transl": self.transl,
        }  # fmt: skip
        return {k: [float(x) for x in np.asarray(v, dtype=np.float32).reshape(-1)] for k, v in arrays.items()}


@dataclass
class Scene:
    """People in the camera frame and the camera's intrinsics (``camera.rotation``/``position``: world pose)."""

    people: list[ScenePerson]
    camera: Camera


def _posed(body_models: BodyModels, people: Sequence[PersonPose], tilts: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """SMPL-X forward pass in the rest frame with the root tilt and no translation, batched per gender.

    Returns:
        Per person: vertices (V, 3) and joints (J, 3), float64 metres, and the root joint J0 (3,).
    """
    results: list[tuple[np.ndarray, ...]] = [()] * len(people)
    for gender in sorted({p.gender for p in people}):
        index = [i for i, p in enumerate(people) if p.gender == gender]

        def stack(values: list[np.ndarray]) -> torch.Tensor:
            # float32 first: the same values as the written parameters, so readers reproduce this mesh.
            return torch.from_numpy(np.stack([np.asarray(v, dtype=np.float32).reshape(-1) for v in values]))

        batch = {
            "betas": [people[i].betas for i in index], "expression": [people[i].expression for i in index],
            "body_pose": [people[i].body_pose for i in index], "jaw_pose": [people[i].jaw_pose for i in index],
            "left_hand_pose": [people[i].left_hand_pose for i in index],
            "right_hand_pose": [people[i].right_hand_pose for i in index],
            "global_orient": [tilts[i] for i in index], "leye_pose": [np.zeros(3)] * len(index),
            "reye_pose": [np.zeros(3)] * len(index), "transl": [np.zeros(3)] * len(index),
        }  # fmt: skip
        with torch.no_grad():
            output = body_models.smplx(gender)(**{k: stack(v) for k, v in batch.items()})
        for n, i in enumerate(index):
            joints = output.joints[n].double().numpy()
            results[i] = (output.vertices[n].double().numpy(), joints, joints[0].copy())
    return results


def _place(rng: np.random.Generator, radii: np.ndarray, yaw: float) -> np.ndarray | None:
    """(N, 2) ground positions (x, z) of the pelvises, first at the origin; None if they do not fit."""
    toward_camera, lateral = np.array([np.sin(yaw), np.cos(yaw)]), np.array([np.cos(yaw), -np.sin(yaw)])
    positions = [np.zeros(2)]
    for i in range(1, len(radii)):
        for _ in range(30):
            candidate = rng.uniform(*LATERAL_RANGE_M) * lateral + rng.uniform(*DEPTH_RANGE_M) * toward_camera
            gaps = [np.linalg.norm(candidate - p) - SEPARATION * (radii[i] + radii[j]) for j, p in enumerate(positions)]
            if min(gaps) >= 0:
                positions.append(candidate)
                break
        else:
            return None
    return np.stack(positions)


def sample_scene(
    rng: np.random.Generator, body_models: BodyModels, genders: Sequence[str], image_size: tuple[int, int]
) -> Scene:
    """Draws people, places them on the ground and frames them with a camera.

    Args:
        rng: the random generator.
        body_models: the SMPL-X layers people are posed with (each person's gender picks the layer).
        genders: genders to draw from.
        image_size: (height, width) pixels.
    """
    hand_means = {
        g: (body_models.smplx(g).left_hand_mean.numpy(), body_models.smplx(g).right_hand_mean.numpy()) for g in genders
    }
    while True:
        count = 1 + int(rng.choice(len(PEOPLE_COUNT_PROBS), p=PEOPLE_COUNT_PROBS))
        people = [sample_person(rng, genders, hand_means) for _ in range(count)]
        tilts = np.stack([p.root_tilt for p in people])
        posed = _posed(body_models, people, tilts)
        yaw = rng.uniform(0.0, 2.0 * np.pi)
        radii = np.array([np.linalg.norm((v - j0)[:, [0, 2]], axis=1).max() for v, _, j0 in posed])
        positions = _place(rng, radii, yaw)
        if positions is not None:
            break
    frontal = rng.random(count) < FRONTAL_PROBABILITY
    headings = yaw + np.where(frontal, np.radians(rng.normal(scale=FRONTAL_STD_DEG, size=count)),
                              rng.uniform(-np.pi, np.pi, size=count))  # fmt: skip
    # World motion per person: turn about the vertical through the root joint, then move onto the ground.
    motions = []
    for (vertices, _, j0), heading, position in zip(posed, headings, positions, strict=True):
        turn = Rotation.from_rotvec([0.0, heading, 0.0]).as_matrix()
        turned = (vertices - j0) @ turn.T + j0
        shift = np.array([position[0] - j0[0], -turned[:, 1].min(), position[1] - j0[2]])
        motions.append((turn, j0 - turn @ j0 + shift))  # p -> turn p + offset
    world = np.concatenate([v @ a.T + b for (v, _, _), (a, b) in zip(posed, motions, strict=True)])
    target = (world.min(axis=0) + world.max(axis=0)) / 2.0
    height = max(float(np.ptp(v @ a.T, axis=0)[1]) for (v, _, _), (a, _) in zip(posed, motions, strict=True))
    for _ in range(100):
        camera = sample_camera(rng, target, height, np.degrees(yaw), image_size)
        if camera.world_to_camera(world)[:, 2].min() >= MIN_DEPTH_M:
            break
    else:  # 1 in 5 cameras is close enough to cut someone, so 100 failures mean a bug, not bad luck
        raise RuntimeError("no camera keeps the people in front of it")
    scene_people = []
    for person, tilt, (vertices, joints, j0), (turn, offset) in zip(people, tilts, posed, motions, strict=True):
        rotation = camera.rotation @ turn  # the whole rigid motion, rest frame -> camera: p -> A p + b
        translation = camera.rotation @ (offset - camera.position)
        global_orient = Rotation.from_matrix(rotation @ Rotation.from_rotvec(tilt).as_matrix()).as_rotvec()
        scene_people.append(
            ScenePerson(
                pose=person,
                global_orient=global_orient.astype(np.float32),
                transl=(rotation @ j0 + translation - j0).astype(np.float32),
                vertices=(vertices @ rotation.T + translation).astype(np.float32),
                joints=(joints @ rotation.T + translation).astype(np.float32),
            )  # fmt: skip
        )
    return Scene(people=scene_people, camera=camera)
