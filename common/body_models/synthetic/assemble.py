"""Assemble the stand-in's parts into one mesh: exact vertex budget, exact mirror symmetry, joint
regressors, landmark embedding and the vertex order that puts anatomical points where smplx expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear
from scipy.spatial import cKDTree

from .body import left_arm, left_leg, torso
from .hand import left_hand
from .head import LandmarkRays, head_parts
from .parts import Part, mirrored
from .skeleton import SMPLX_JOINTS, joint_flip_permutation, mirror, rest_joints


@dataclass(frozen=True)
class Resolution:
    """Vertex budgets of one body model (the real models' sizes are the totals)."""

    total: int
    head_total: int
    neck: int
    eyeball: int  # 0: no eyeballs (SMPL)
    ear: int
    hand_total: int
    finger: int
    limb_scale: float


SMPLX_RESOLUTION = Resolution(10475, 5023, 400, 182, 122, 778, 98, 1.0)  # head = FLAME's 5023, hand = MANO's 778
SMPL_RESOLUTION = Resolution(6890, 1500, 150, 0, 62, 350, 50, 1.4)


@dataclass
class Mesh:
    """The assembled stand-in in its natural (part by part) order.

    Attributes:
        vertices: (V, 3) rest pose, metres, exactly mirror-symmetric.
        faces: (F, 3) int64.
        weights: (V, 55) skinning weights over SMPL-X's joints.
        axis_points: (V, 3) ring centres (see TubeMesh).
        group: (V,) 'head' | 'left_hand' | 'right_hand' | 'body'.
        part: (V,) part name.
        face_mask: (V,) in [0, 1], the face region that expressions move.
        markers: smplx vertex-joint name -> vertex index.
        mirror: (V,) index of each vertex's mirror image (an involution).
        skull_faces: indices of the faces on the skull (where landmarks live).
    """

    vertices: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    axis_points: np.ndarray
    group: np.ndarray
    part: np.ndarray
    face_mask: np.ndarray
    markers: dict[str, int]
    mirror: np.ndarray
    skull_faces: np.ndarray


def build_parts(res: Resolution) -> list[Part]:
    """All parts in natural order: head group, left hand, right hand, torso, left limbs, right limbs."""
    head = head_parts(res.head_total, res.neck, res.eyeball, res.ear)
    hand_l = left_hand(res.hand_total, res.finger)
    limbs_l = left_arm(res.limb_scale) + left_leg(res.limb_scale)
    limbs_r = [mirrored(p) for p in limbs_l]
    used = res.head_total + 2 * res.hand_total + 2 * sum(p.num_vertices for p in limbs_l)
    return head + hand_l + [mirrored(p) for p in hand_l] + [torso(res.total - used)] + limbs_l + limbs_r


def mirror_permutation(vertices: np.ndarray, tolerance: float = 1e-7) -> np.ndarray:
    """(V,) index of the vertex at each vertex's mirror position; raises if the mesh is not symmetric."""
    distance, index = cKDTree(vertices).query(mirror(vertices))
    if distance.max() > tolerance or not np.array_equal(index[index], np.arange(len(vertices))):
        raise RuntimeError(f"stand-in mesh is not mirror-symmetric (worst vertex off by {distance.max():.2e} m)")
    return index


def symmetrize_vertex_field(values: np.ndarray, perm: np.ndarray, odd_x: bool = True) -> np.ndarray:
    """Average a per-vertex (V, 3, ...) field with its mirror image, making it exactly symmetric."""
    flip = np.array([-1.0, 1.0, 1.0]) if odd_x else np.ones(3)
    flip = flip.reshape((1, 3) + (1,) * (values.ndim - 2))
    return 0.5 * (values + flip * values[perm])


def build_mesh(res: Resolution) -> Mesh:
    """Assemble, check and symmetrise the parts of one resolution."""
    parts = build_parts(res)
    offsets = np.cumsum([0] + [p.num_vertices for p in parts])
    if offsets[-1] != res.total:
        raise RuntimeError(f"stand-in has {offsets[-1]} vertices, expected {res.total}")
    faces, markers, skull_faces, face_count = [], {}, None, 0
    for part, offset in zip(parts, offsets[:-1], strict=True):
        if part.name == "skull":
            skull_faces = np.arange(face_count, face_count + len(part.mesh.faces))
        faces.append(part.mesh.faces + offset)
        face_count += len(part.mesh.faces)
        markers.update({k: int(v + offset) for k, v in part.markers.items()})
    vertices = np.concatenate([p.mesh.vertices for p in parts])
    perm = mirror_permutation(vertices)
    jflip = joint_flip_permutation(SMPLX_JOINTS)
    weights = np.concatenate([p.weights for p in parts])
    weights = 0.5 * (weights + weights[perm][:, jflip])
    face_mask = np.concatenate([p.face_mask if p.face_mask is not None else np.zeros(p.num_vertices) for p in parts])
    return Mesh(
        vertices=symmetrize_vertex_field(vertices, perm),
        faces=np.concatenate(faces),
        weights=weights / weights.sum(axis=1, keepdims=True),
        axis_points=symmetrize_vertex_field(np.concatenate([p.mesh.axis_point for p in parts]), perm),
        group=np.concatenate([np.full(p.num_vertices, p.group) for p in parts]),
        part=np.concatenate([np.full(p.num_vertices, p.name) for p in parts]),
        face_mask=0.5 * (face_mask + face_mask[perm]),
        markers=markers,
        mirror=perm,
        skull_faces=skull_faces,
    )


def regress_point(vertices: np.ndarray, target: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Non-negative weights (summing to 1) over ``candidates`` whose weighted mean is ``target``.

    The search radius grows until the target lies inside the candidates' hull; a small penalty on
    the weights' norm spreads them over many vertices, as real joint regressors do, so that the
    joint follows the surface smoothly when the shape changes.

    Returns:
        (V,) one regressor row.
    """
    distance = np.linalg.norm(vertices[candidates] - target, axis=1)
    for radius in (0.02, 0.03, 0.045, 0.07, 0.1, 0.15, 0.25, 0.4):
        chosen = candidates[distance < radius]
        if len(chosen) < 8:
            continue
        chosen = chosen[:: max(1, len(chosen) // 240)]  # an even subsample spreads as well and keeps bvls fast
        system = np.vstack([vertices[chosen].T * 100.0, np.full((1, len(chosen)), 10.0), 0.02 * np.eye(len(chosen))])
        rhs = np.concatenate([target * 100.0, [10.0], np.zeros(len(chosen))])
        solution = lsq_linear(system, rhs, bounds=(0.0, np.inf), method="bvls")
        w = solution.x / solution.x.sum()
        if np.linalg.norm(w @ vertices[chosen] - target) < 2e-3:
            row = np.zeros(len(vertices))
            row[chosen] = w
            return row
    raise RuntimeError(f"could not regress a joint at {target} from the stand-in's surface")


def joint_candidates(mesh: Mesh, joint: str) -> np.ndarray:
    """The vertices a joint may be regressed from: its own part group, so that MANO and FLAME can
    reuse SMPL-X's rows restricted to their vertices."""
    side = joint.split("_")[0]
    if joint.endswith("wrist") or any(f in joint for f in ("index", "middle", "pinky", "ring", "thumb")):
        return np.flatnonzero(mesh.group == f"{side}_hand")
    if joint.endswith("eye_smplhf"):
        own = np.flatnonzero(mesh.part == f"{side}_eyeball")
        return own if len(own) else np.flatnonzero(mesh.group == "head")
    if joint in ("neck", "head", "jaw"):
        return np.flatnonzero(mesh.group == "head")
    return np.arange(len(mesh.vertices))


def smplx_joint_regressor(mesh: Mesh) -> np.ndarray:
    """(55, V) SMPL-X joint regressor, exactly mirror-symmetric, rows summing to 1."""
    targets = rest_joints()
    rows = np.stack([regress_point(mesh.vertices, targets[j], joint_candidates(mesh, n))
                     for j, n in enumerate(SMPLX_JOINTS)])  # fmt: skip
    jflip = joint_flip_permutation(SMPLX_JOINTS)
    rows = 0.5 * (rows + rows[jflip][:, mesh.mirror])
    return rows / rows.sum(axis=1, keepdims=True)


def embed_rays(vertices: np.ndarray, faces: np.ndarray, face_subset: np.ndarray, rays: LandmarkRays):
    """Where each ray first hits the mesh (Moller-Trumbore), as face index and barycentric coordinates.

    Returns:
        face_index (...,) int64 into ``faces`` and barycentric (..., 3) float64.
    """
    origins = rays.origins.reshape(-1, 3)
    directions = rays.directions.reshape(-1, 3)
    tri = vertices[faces[face_subset]]  # (T, 3, 3)
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    face_index = np.zeros(len(origins), dtype=np.int64)
    bary = np.zeros((len(origins), 3))
    for i, (o, d) in enumerate(zip(origins, directions, strict=True)):
        p = np.cross(d, e2)
        det = np.einsum("ij,ij->i", e1, p)
        ok = np.abs(det) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = o - tri[:, 0]
        u = np.einsum("ij,ij->i", s, p) * inv
        q = np.cross(s, e1)
        v = (q @ d) * inv
        t = np.einsum("ij,ij->i", e2, q) * inv
        hit = ok & (u >= -1e-9) & (v >= -1e-9) & (u + v <= 1 + 1e-9) & (t > 0)
        if not hit.any():
            raise RuntimeError(f"landmark ray {i} misses the stand-in's face")
        best = np.flatnonzero(hit)[np.argmin(t[hit])]
        face_index[i] = face_subset[best]
        bary[i] = (1 - u[best] - v[best], u[best], v[best])
    shape = rays.origins.shape[:-1]
    return face_index.reshape(shape), bary.reshape(shape + (3,))


def vertex_order(num_vertices: int, required: dict[int, int], base_order: np.ndarray | None = None) -> np.ndarray:
    """A vertex order that puts given vertices at given slots and keeps the rest in ``base_order``.

    Args:
        num_vertices: V.
        required: vertex (index in base numbering) -> the slot it must occupy.
        base_order: (V,) the preferred order; identity when None.

    Returns:
        (V,) ``order`` with ``order[slot]`` = the vertex placed at that slot.
    """
    base = np.arange(num_vertices) if base_order is None else np.asarray(base_order)
    if len(set(required.values())) != len(required):
        raise ValueError("two vertices were asked for the same slot")
    order = np.full(num_vertices, -1)
    for vertex, slot in required.items():
        order[slot] = vertex
    rest = [v for v in base if v not in required]
    order[order < 0] = rest
    return order
