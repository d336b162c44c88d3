"""Closed tube meshes: the one primitive the synthetic body is built from.

A tube is a stack of elliptical rings joined by triangles and closed by a pole at each end.
Rings may hold different vertex counts (they are "zipped" together by angle), which is what lets
every body part hit an exact vertex budget: the real SMPL-X, MANO and FLAME sizes are fixed, and
the stand-in must match them to the vertex.

Ring vertex k of n sits at angle ``pi/2 + 2*pi*k/n`` in the ring's (u, w) frame. With u = +x this
set of angles is closed under the mirror x -> -x (angle -> pi - angle) for any n, so a tube around
the body's mid-plane is mirror-symmetric vertex for vertex.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TubeMesh:
    """A closed tube.

    Attributes:
        vertices: (V, 3) float64 metres.
        faces: (F, 3) int64 indices into ``vertices``, outward-facing (counter-clockwise seen from outside).
        ring: (V,) int64 ring of each vertex; -1 for the start pole, R for the end pole.
        angle: (V,) float64 ring angle of each vertex in radians (0 for the poles).
        axis_point: (V, 3) float64 centre of the vertex's ring (the pole itself for poles): the point a
            girth change scales the vertex away from.
    """

    vertices: np.ndarray
    faces: np.ndarray
    ring: np.ndarray
    angle: np.ndarray
    axis_point: np.ndarray


def split_count(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` near-equal positive integers, the larger ones in the middle.

    Putting the extra vertices in the middle rings keeps the ends (which meet other parts) regular.
    """
    if parts <= 0 or total < 3 * parts:
        raise ValueError(f"cannot split {total} vertices into {parts} rings of at least 3")
    base, extra = divmod(total, parts)
    counts = [base] * parts
    order = sorted(range(parts), key=lambda i: abs(i - (parts - 1) / 2))
    for i in order[:extra]:
        counts[i] += 1
    return counts


def _zip_rings(ring_a: np.ndarray, ring_b: np.ndarray) -> list[tuple[int, int, int]]:
    """Triangulate the band between two rings, walking both by their fractional angle."""
    n_a, n_b = len(ring_a), len(ring_b)
    tris = []
    i = j = 0
    while i < n_a or j < n_b:
        advance_a = j == n_b or (i < n_a and (i + 1) / n_a <= (j + 1) / n_b)
        if advance_a:
            tris.append((ring_a[i % n_a], ring_a[(i + 1) % n_a], ring_b[j % n_b]))
            i += 1
        else:
            tris.append((ring_a[i % n_a], ring_b[(j + 1) % n_b], ring_b[j % n_b]))
            j += 1
    return tris


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume of a closed mesh (positive when faces point outwards), cubic metres."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def tube(
    centers: np.ndarray,
    axis_u: np.ndarray,
    axis_w: np.ndarray,
    radii_u: np.ndarray,
    radii_w: np.ndarray,
    counts: list[int],
    start_pole: np.ndarray,
    end_pole: np.ndarray,
) -> TubeMesh:
    """Build a closed tube from R rings and two poles.

    Args:
        centers: (R, 3) ring centres, metres, ordered from the start pole to the end pole.
        axis_u: (R, 3) or (3,) unit vector of each ring's first cross-section axis.
        axis_w: (R, 3) or (3,) unit vector of each ring's second cross-section axis.
        radii_u: (R,) semi-axis along u, metres.
        radii_w: (R,) semi-axis along w, metres.
        counts: R vertex counts, one per ring.
        start_pole: (3,) the vertex closing the tube before the first ring.
        end_pole: (3,) the vertex closing the tube after the last ring.

    Returns:
        The tube, start pole first, then the rings in order, then the end pole.
    """
    centers = np.asarray(centers, dtype=np.float64)
    num_rings = len(centers)
    axis_u = np.broadcast_to(np.asarray(axis_u, dtype=np.float64), (num_rings, 3))
    axis_w = np.broadcast_to(np.asarray(axis_w, dtype=np.float64), (num_rings, 3))
    verts = [np.asarray(start_pole, dtype=np.float64)[None]]
    ring_of = [np.array([-1])]
    angles = [np.zeros(1)]
    axis_pts = [verts[0]]
    ring_ids = []
    offset = 1
    for r in range(num_rings):
        n = counts[r]
        theta = np.pi / 2 + 2 * np.pi * np.arange(n) / n
        pts = (
            centers[r]
            + radii_u[r] * np.cos(theta)[:, None] * axis_u[r]
            + radii_w[r] * np.sin(theta)[:, None] * axis_w[r]
        )  # (n, 3)
        verts.append(pts)
        ring_of.append(np.full(n, r))
        angles.append(theta)
        axis_pts.append(np.repeat(centers[r][None], n, axis=0))
        ring_ids.append(np.arange(offset, offset + n))
        offset += n
    verts.append(np.asarray(end_pole, dtype=np.float64)[None])
    ring_of.append(np.array([num_rings]))
    angles.append(np.zeros(1))
    axis_pts.append(verts[-1])
    end_index = offset

    tris = []
    first = ring_ids[0]
    tris += [(0, first[(k + 1) % len(first)], first[k]) for k in range(len(first))]
    for r in range(num_rings - 1):
        tris += _zip_rings(ring_ids[r], ring_ids[r + 1])
    last = ring_ids[-1]
    tris += [(end_index, last[k], last[(k + 1) % len(last)]) for k in range(len(last))]

    vertices = np.concatenate(verts)
    faces = np.asarray(tris, dtype=np.int64)
    if signed_volume(vertices, faces) < 0:  # winding depends on the frame's handedness: make it outward
        faces = faces[:, ::-1].copy()
    return TubeMesh(vertices, faces, np.concatenate(ring_of), np.concatenate(angles), np.concatenate(axis_pts))


def perpendicular_frame(direction: np.ndarray, hint: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal (d, u, w) with d along ``direction`` and u as close as possible to ``hint``."""
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    u = np.asarray(hint, dtype=np.float64) - np.dot(hint, d) * d
    u = u / np.linalg.norm(u)
    w = np.cross(d, u)
    return d, u, w


def limb(
    start: np.ndarray,
    end: np.ndarray,
    radii_start: tuple[float, float],
    radii_end: tuple[float, float],
    num_rings: int,
    num_vertices: int,
    hint: np.ndarray,
    extend: tuple[float, float] = (0.0, 0.0),
) -> tuple[TubeMesh, np.ndarray]:
    """A straight tube from ``start`` to ``end``, radii interpolated linearly, ends rounded off.

    Args:
        start: (3,) axis start, metres.
        end: (3,) axis end, metres.
        radii_start: (u, w) semi-axes at ``start``, metres.
        radii_end: (u, w) semi-axes at ``end``, metres.
        num_rings: number of rings between the poles.
        num_vertices: exact vertex count of the tube, poles included.
        hint: (3,) direction the u axis leans towards.
        extend: how far (metres) the poles reach beyond ``start`` and ``end``; the ends are rounded
            over that length, so an extension near the end radius gives a hemispherical cap.

    Returns:
        The tube and (V,) the position of each vertex along the axis, 0 at ``start`` and 1 at ``end``.
    """
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    d, u, w = perpendicular_frame(end - start, hint)
    length = float(np.linalg.norm(end - start))
    # ring positions along the axis in metres, the poles excluded
    s = np.linspace(-extend[0], length + extend[1], num_rings + 2)[1:-1]
    t = np.clip(s / length, 0.0, 1.0)
    r_u = (1 - t) * radii_start[0] + t * radii_end[0]
    r_w = (1 - t) * radii_start[1] + t * radii_end[1]
    rounding = np.ones_like(s)
    for dist, cap in ((s + extend[0], extend[0]), (length + extend[1] - s, extend[1])):
        inside = (cap > 0) & (dist < cap)
        rounding[inside] *= np.sqrt(np.clip(1 - (1 - dist[inside] / cap) ** 2, 0.05, 1.0))
    mesh = tube(
        start + s[:, None] * d,
        u,
        w,
        r_u * rounding,
        r_w * rounding,
        split_count(num_vertices - 2, num_rings),
        start - extend[0] * d,
        end + extend[1] * d,
    )
    along = np.dot(mesh.vertices - start, d) / length
    return mesh, along
