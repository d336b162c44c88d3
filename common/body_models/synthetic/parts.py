"""A body part of the stand-in (a tube with skinning weights and named anatomical vertices), and
the skinning rules shared by all parts.

Skinning follows the bones: a vertex along the segment of joint j (the joint whose rotation moves
the segment) belongs to j, and within a quarter of the segment of either end it blends towards the
neighbouring joint, reaching 50/50 exactly at the joint. Two parts meeting at a joint therefore
agree there, and the mesh bends smoothly instead of tearing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .primitives import TubeMesh
from .skeleton import SMPLX_JOINTS, mirror

NUM_JOINTS = len(SMPLX_JOINTS)
BLEND = 0.25  # fraction of a segment, at each end, over which weights blend into the neighbour


def joint_index(name: str) -> int:
    return SMPLX_JOINTS.index(name)


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass
class Part:
    """One closed piece of the stand-in mesh.

    Attributes:
        name: e.g. 'left_forearm'.
        group: 'head' (becomes FLAME), 'left_hand' / 'right_hand' (become MANO) or 'body'.
        mesh: the geometry, metres, SMPL-X rest pose.
        weights: (V, 55) skinning weights over the SMPL-X joints, rows sum to 1.
        markers: anatomical points (smplx's vertex-joint names, e.g. 'lthumb') -> local vertex index.
        face_mask: (V,) in [0, 1], how much a vertex belongs to the face (expressions move only these).
    """

    name: str
    group: str
    mesh: TubeMesh
    weights: np.ndarray
    markers: dict[str, int] = field(default_factory=dict)
    face_mask: np.ndarray | None = None

    @property
    def num_vertices(self) -> int:
        return len(self.mesh.vertices)


def chain_weights(
    coord: np.ndarray, chain: list[str], chain_coord: list[float], parent: str | None = None
) -> np.ndarray:
    """Skinning weights for vertices along a chain of joints.

    Args:
        coord: (V,) each vertex's position along the chain's axis (metres or any monotone unit).
        chain: joint names in order along the axis; segment k (from joint k to k+1) is moved by joint k.
        chain_coord: the joints' positions along the same axis, increasing.
        parent: the joint before the chain's first joint; vertices near the first joint blend into it.

    Returns:
        (V, 55) weights, rows summing to 1.
    """
    weights = np.zeros((len(coord), NUM_JOINTS))
    ids = [joint_index(n) for n in chain]
    ends = list(chain_coord) + [chain_coord[-1] + (chain_coord[-1] - chain_coord[-2] if len(chain) > 1 else 1.0)]
    seg = np.clip(np.searchsorted(np.asarray(chain_coord), coord, side="right") - 1, 0, len(chain) - 1)
    for k in range(len(chain)):
        sel = seg == k
        t = (coord[sel] - ends[k]) / (ends[k + 1] - ends[k])
        own = np.ones_like(t)
        before = ids[k - 1] if k > 0 else (joint_index(parent) if parent else None)
        if before is not None:
            blend_in = 0.5 - 0.5 * smoothstep(t / BLEND)  # 0.5 at the joint, 0 a quarter segment later
            weights[sel, before] += blend_in
            own -= blend_in
        if k + 1 < len(chain):
            blend_out = 0.5 * smoothstep((t - (1 - BLEND)) / BLEND)
            weights[sel, ids[k + 1]] += blend_out
            own -= blend_out
        weights[sel, ids[k]] += own
    return weights


def single_weights(num_vertices: int, joint: str) -> np.ndarray:
    """(V, 55) weights binding every vertex rigidly to one joint."""
    weights = np.zeros((num_vertices, NUM_JOINTS))
    weights[:, joint_index(joint)] = 1.0
    return weights


def blend_towards(weights: np.ndarray, amount: np.ndarray, joint: str) -> np.ndarray:
    """Move a fraction ``amount`` (V,) of every vertex's weight onto ``joint``."""
    target = np.zeros(NUM_JOINTS)
    target[joint_index(joint)] = 1.0
    return (1 - amount[:, None]) * weights + amount[:, None] * target


def mirrored(part: Part) -> Part:
    """The subject's-right copy of a left-side part: positions mirrored, joints swapped left <-> right."""
    from .skeleton import joint_flip_permutation

    flip = joint_flip_permutation(SMPLX_JOINTS)
    mesh = part.mesh
    mirrored_mesh = TubeMesh(
        mirror(mesh.vertices),
        mesh.faces[:, ::-1].copy(),  # a mirror turns the winding inside out: reverse it
        mesh.ring.copy(),
        mesh.angle.copy(),
        mirror(mesh.axis_point),
    )
    markers = {_swap_marker_side(k): v for k, v in part.markers.items()}
    return Part(
        part.name.replace("left", "right"),
        part.group.replace("left", "right"),
        mirrored_mesh,
        part.weights[:, flip],
        markers,
        None if part.face_mask is None else part.face_mask.copy(),
    )


def _swap_marker_side(name: str) -> str:
    """'lthumb' <-> 'rthumb', 'LHeel' <-> 'RHeel', 'leye' <-> 'reye'; mid-line names unchanged."""
    for a, b in (("l", "r"), ("r", "l"), ("L", "R"), ("R", "L")):
        if name.startswith(a) and name[1:2] not in ("", "o"):  # 'nose' stays 'nose'
            return b + name[1:]
    return name


def nearest_vertex(vertices: np.ndarray, target: np.ndarray, candidates: np.ndarray | None = None) -> int:
    """Index of the vertex closest to ``target`` (3,), optionally among ``candidates``."""
    idx = np.arange(len(vertices)) if candidates is None else np.asarray(candidates)
    return int(idx[np.argmin(np.linalg.norm(vertices[idx] - target, axis=1))])
