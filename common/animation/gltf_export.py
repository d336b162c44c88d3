"""A track's SMPL-X motion as a rigged, animated glTF 2.0 binary (.glb), written with pygltflib.

What the file holds (coordinates: SMPL-X's own, y up, right-handed, metres, which is glTF's convention; see
`rig` for the optional world rotation):

* one mesh: the SMPL-X template with the subject's shape baked in (``v_template + shapedirs @ betas``), its
  normals, and, where the track has expressions, 10 morph targets (``exprdirs[..., k]``, metres per unit
  coefficient) named ``expr_0`` .. ``expr_9``;
* the skeleton: one node per SMPL-X joint (smplx's names), nested as SMPL-X's kinematic tree, the rest position
  of each the joint regressed from the shaped mesh, stored as the translation from its parent;
* a skin: inverse bind matrices (the inverse of each joint's rest placement), per vertex the 4 largest
  skinning weights renormalised to sum 1 (JOINTS_0 unsigned short, WEIGHTS_0 float);
* one animation, LINEAR, keyframes at ``frame / fps`` seconds (absolute, so that tracks exported separately
  stay in step; a gap in a track is interpolated): per joint a rotation channel (unit quaternions, x y z w),
  the root's translation (``rest position + cam_trans``), the morph target weights (the expression
  coefficients), and a translation channel for the few joints that SMPL-X's regressor moves with the
  expression (see `joint_translations`).

Posing the skin at a keyframe reproduces SMPL-X's mesh (+ ``cam_trans``) without pose-corrective blend
shapes, up to the float32 storage and the truncation to 4 weights per vertex.
"""

from __future__ import annotations

import os

import numpy as np
import pygltflib
from scipy.spatial.transform import Rotation

from common.utils.atomic_io import write_atomic

from .rig import RigMotion, SMPLXRig

__all__ = ["joint_translations", "unit_quaternions_xyzw", "write_glb"]

_FLOAT, _UNSIGNED_SHORT, _UNSIGNED_INT = 5126, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_TYPES = {1: "SCALAR", 3: "VEC3", 4: "VEC4", 16: "MAT4"}
_INFLUENCES = 4  # JOINTS_0 / WEIGHTS_0 hold 4 per vertex


class _BinaryBuffer:
    """The glb's one binary chunk: arrays appended 4-byte aligned, each with its buffer view and accessor."""

    def __init__(self, gltf: pygltflib.GLTF2) -> None:
        self.gltf = gltf
        self.chunks: list[bytes] = []
        self.length = 0

    def add(self, array: np.ndarray, component_type: int, target: int | None = None, bounds: bool = False) -> int:
        """Appends ``array`` (rows, width) or (rows,) and returns its accessor index.

        ``bounds``: store min/max per component (required for POSITION and animation inputs).
        """
        dtype = {_FLOAT: np.float32, _UNSIGNED_SHORT: np.uint16, _UNSIGNED_INT: np.uint32}[component_type]
        data = np.ascontiguousarray(array, dtype=dtype)
        rows = data.reshape(len(data), -1)  # (count, width)
        blob = data.tobytes()
        self.gltf.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=self.length, byteLength=len(blob),
                                                          target=target))  # fmt: skip
        padding = -len(blob) % 4  # every accessor's offset a multiple of its component size
        self.chunks.append(blob + b"\0" * padding)
        self.length += len(blob) + padding
        accessor = pygltflib.Accessor(bufferView=len(self.gltf.bufferViews) - 1, componentType=component_type,
                                      count=len(rows), type=_TYPES[rows.shape[1]])  # fmt: skip
        if bounds:
            accessor.min, accessor.max = rows.min(axis=0).tolist(), rows.max(axis=0).tolist()
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1

    def finish(self) -> None:
        blob = b"".join(self.chunks)
        self.gltf.buffers = [pygltflib.Buffer(byteLength=len(blob))]
        self.gltf.set_binary_blob(blob)


def unit_quaternions_xyzw(rotations: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotation matrices as (T, 4) unit quaternions (x, y, z, w), each of the sign nearest the
    previous one, so that LINEAR (spherical) interpolation between keyframes takes the short way round."""
    quaternions = Rotation.from_matrix(rotations).as_quat()  # (T, 4) xyzw, scipy's scalar-last order
    signs = np.where(np.sum(quaternions[1:] * quaternions[:-1], axis=1) < 0, -1.0, 1.0)
    quaternions[1:] *= np.cumprod(signs)[:, None]
    return quaternions


def joint_translations(rig: SMPLXRig, motion: RigMotion) -> np.ndarray:
    """(T, J, 3) each joint node's local translation per frame, metres.

    SMPL-X regresses its joints from the shaped mesh *with* the expression, so an expression e moves joint j by
    ``d_j = expression_joint_dirs[j] @ e`` (the head, jaw and eyes), while a glTF skeleton's inverse bind
    matrices are fixed. With the rest offset o_j (`SMPLXRig.joint_offsets`) and local rotation R_j, the local
    translation ``o_j + (I - R_j) d_j`` makes the joint's world transform times its fixed inverse bind matrix
    equal SMPL-X's skinning transform exactly. For the root, o_0 is its world position ``F (rest + cam_trans)``
    and I is the world rotation F (which R_0 includes): ``+ (F - R_0) d_0``.
    """
    translations = np.broadcast_to(rig.joint_offsets(), motion.local_rotations.shape[:-1]).copy()  # (T, J, 3)
    translations[:, 0] = motion.root_position
    if motion.expression is None:
        return translations
    shift = np.einsum("jce,te->tjc", rig.expression_joint_dirs, motion.expression)  # (T, J, 3) d_j
    unturned = np.broadcast_to(np.eye(3), motion.local_rotations.shape).copy()  # (T, J, 3, 3) I, F for the root
    unturned[:, 0] = motion.world_rotation
    return translations + np.einsum("tjab,tjb->tja", unturned - motion.local_rotations, shift)


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit normals: the area-weighted sum of the adjacent faces' normals ((0, 1, 0) for a lone vertex)."""
    corners = vertices[faces]  # (F, 3, 3)
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])  # (F, 3), |n| = 2 area
    normals = np.zeros_like(vertices)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], face_normals)
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.where(lengths > 0, normals / np.maximum(lengths, 1e-30), [0.0, 1.0, 0.0])


def _add_mesh(gltf: pygltflib.GLTF2, buffer: _BinaryBuffer, rig: SMPLXRig, with_expression: bool, name: str) -> None:
    joints, weights = rig.top_influences(_INFLUENCES)  # (V, 4) each
    attributes = pygltflib.Attributes(
        POSITION=buffer.add(rig.vertices_rest, _FLOAT, _ARRAY_BUFFER, bounds=True),
        NORMAL=buffer.add(_vertex_normals(rig.vertices_rest, rig.faces), _FLOAT, _ARRAY_BUFFER),
        JOINTS_0=buffer.add(joints, _UNSIGNED_SHORT, _ARRAY_BUFFER),
        WEIGHTS_0=buffer.add(weights, _FLOAT, _ARRAY_BUFFER),
    )
    # 65535 is the primitive-restart value in some graphics APIs, so unsigned short indices stop below it
    index_type = _UNSIGNED_SHORT if len(rig.vertices_rest) < np.iinfo(np.uint16).max else _UNSIGNED_INT
    indices = buffer.add(rig.faces.reshape(-1), index_type, _ELEMENT_ARRAY_BUFFER)
    primitive = pygltflib.Primitive(attributes=attributes, indices=indices, material=0)
    mesh = pygltflib.Mesh(name=name, primitives=[primitive])
    if with_expression:
        count = rig.expression_dirs.shape[-1]
        primitive.targets = [
            pygltflib.Attributes(POSITION=buffer.add(rig.expression_dirs[..., k], _FLOAT, _ARRAY_BUFFER, bounds=True))
            for k in range(count)
        ]
        mesh.weights = [0.0] * count
        mesh.extras = {"targetNames": [f"expr_{k}" for k in range(count)]}  # the name Blender gives the shape keys
    gltf.meshes.append(mesh)
    gltf.materials.append(pygltflib.Material(name="skin", pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
        baseColorFactor=[0.75, 0.75, 0.78, 1.0], metallicFactor=0.0, roughnessFactor=0.8)))  # fmt: skip


def _add_skeleton(gltf: pygltflib.GLTF2, buffer: _BinaryBuffer, rig: SMPLXRig) -> list[int]:
    """Joint nodes after the mesh node (node 1 + j for joint j), nested as the kinematic tree; returns their ids."""
    nodes = [1 + j for j in range(rig.num_joints)]
    offsets = rig.joint_offsets()
    for j, name in enumerate(rig.joint_names):
        children = [nodes[c] for c in np.flatnonzero(rig.parents == j)]
        gltf.nodes.append(pygltflib.Node(name=name, translation=offsets[j].tolist(), children=children))
    # A joint at rest has no rotation, so its bind placement is a translation to its rest position; glTF stores
    # matrices column-major, i.e. the transpose of numpy's row-major layout.
    inverse_bind = np.broadcast_to(np.eye(4), (rig.num_joints, 4, 4)).copy()  # (J, 4, 4)
    inverse_bind[:, :3, 3] = -rig.joints_rest
    matrices = buffer.add(inverse_bind.transpose(0, 2, 1).reshape(rig.num_joints, 16), _FLOAT)
    gltf.skins.append(pygltflib.Skin(name="smplx", inverseBindMatrices=matrices, joints=nodes, skeleton=nodes[0]))
    return nodes


def _add_animation(gltf: pygltflib.GLTF2, buffer: _BinaryBuffer, rig: SMPLXRig, motion: RigMotion,
                   joint_nodes: list[int], fps: float) -> None:  # fmt: skip
    times = buffer.add(motion.frames / fps, _FLOAT, bounds=True)  # seconds
    animation = pygltflib.Animation(name="motion")

    def channel(node: int, path: str, values: np.ndarray) -> None:
        animation.samplers.append(pygltflib.AnimationSampler(input=times, output=buffer.add(values, _FLOAT),
                                                             interpolation="LINEAR"))  # fmt: skip
        target = pygltflib.AnimationChannelTarget(node=node, path=path)
        animation.channels.append(pygltflib.AnimationChannel(sampler=len(animation.samplers) - 1, target=target))

    for j, node in enumerate(joint_nodes):
        channel(node, "rotation", unit_quaternions_xyzw(motion.local_rotations[:, j]))
    translations = joint_translations(rig, motion)  # (T, J, 3)
    moved = np.zeros(rig.num_joints, dtype=bool)
    moved[0] = True  # the root always carries cam_trans
    if motion.expression is not None:
        moved |= np.abs(rig.expression_joint_dirs).max(axis=(1, 2)) > 0
        channel(0, "weights", motion.expression.reshape(-1))  # (T * E,): keyframe-major, as glTF lays them out
    for j in np.flatnonzero(moved):
        channel(joint_nodes[j], "translation", translations[:, j])
    gltf.animations.append(animation)


def write_glb(path: str | os.PathLike[str], rig: SMPLXRig, motion: RigMotion, fps: float, name: str = "smplx") -> str:
    """Writes the rigged, animated mesh of one track as a .glb (see the module docstring for its contents).

    Args:
        path: the output file (written atomically; parent folders created).
        rig: the shaped SMPL-X rig.
        motion: the track's motion on it (T >= 1 frames).
        fps: frames per second; keyframe k is at ``motion.frames[k] / fps`` seconds.
        name: the mesh and mesh node's name.

    Returns:
        The path written, as a string.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if len(motion.frames) == 0:
        raise ValueError("the motion has no frames")
    if rig.num_joints > np.iinfo(np.uint16).max:
        raise ValueError(f"{rig.num_joints} joints do not fit JOINTS_0's unsigned short")
    gltf = pygltflib.GLTF2(asset=pygltflib.Asset(generator="common.animation.gltf_export (pygltflib)"))
    buffer = _BinaryBuffer(gltf)
    _add_mesh(gltf, buffer, rig, motion.expression is not None, name)
    gltf.nodes.append(pygltflib.Node(name=name, mesh=0, skin=0))  # node 0; a skinned mesh's own transform is unused
    joint_nodes = _add_skeleton(gltf, buffer, rig)
    _add_animation(gltf, buffer, rig, motion, joint_nodes, fps)
    gltf.scenes.append(pygltflib.Scene(name=name, nodes=[0, joint_nodes[0]]))
    gltf.scene = 0
    buffer.finish()
    written = write_atomic(path, lambda file: file.write(b"".join(gltf.save_to_bytes())))
    return str(written)
