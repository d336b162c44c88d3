"""The stand-in's body models as dictionaries with the keys, shapes and dtypes of the official files.

SMPL-X is built first; its right/left hand vertices become MANO's and its head group becomes
FLAME's, so that MANO_SMPLX_vertex_ids.pkl and SMPL-X__FLAME_vertex_ids.npy mean what they mean
with the real files. SMPL is built separately at its own resolution from the same parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from .assemble import (
    SMPL_RESOLUTION,
    SMPLX_RESOLUTION,
    Mesh,
    build_mesh,
    embed_rays,
    smplx_joint_regressor,
    vertex_order,
)
from .deformations import expression_fields, right_hand_mean_pose, shape_fields
from .head import landmark_rays
from .skeleton import SMPLX_JOINTS, SMPLX_PARENTS

SHAPE_SPACE = 300  # smplx reads expressions from component 300 on when a model has 400 components
EXPRESSION_SPACE = 100
ROOT_PARENT = 4294967295  # the official kintree tables store the root's parent as uint32(-1)
GENDER_BETAS = {
    "neutral": np.zeros(10),
    "male": np.array([0.8, 0.3, 0.6, 0.2, 0.0, -0.3, 0.1, 0.3, 0.3, 0.0]),
    "female": np.array([-0.9, 0.1, -0.6, 0.0, 0.0, 0.8, -0.1, -0.3, 0.0, 0.0]),
}
AA_MIRROR = np.tile([1.0, -1.0, -1.0], 15)  # mirrors 15 axis-angle triplets (negate y and z)
_FINGER_JOINTS = [n for n in SMPLX_JOINTS[25:40]]  # left hand, SMPL-X order


@dataclass
class Reordered:
    """A mesh in its final vertex order and the index maps that order implies."""

    mesh: Mesh
    new_index: np.ndarray  # (V,) natural index -> final index
    regressor: np.ndarray  # (55, V) in the final order


def kintree(parents: list[int] | tuple[int, ...]) -> np.ndarray:
    """(2, J) int64 kintree table as the official files store it."""
    table = np.stack([np.asarray(parents, dtype=np.int64), np.arange(len(parents), dtype=np.int64)])
    table[0, 0] = ROOT_PARENT
    return table


def reorder(mesh: Mesh, regressor: np.ndarray, required: dict[str, int], base_order: np.ndarray) -> Reordered:
    """Apply a vertex order that puts the named markers at the required indices."""
    order = vertex_order(len(mesh.vertices), {mesh.markers[k]: v for k, v in required.items()}, base_order)
    new_index = np.empty_like(order)
    new_index[order] = np.arange(len(order))
    out = Mesh(
        vertices=mesh.vertices[order],
        faces=new_index[mesh.faces],
        weights=mesh.weights[order],
        axis_points=mesh.axis_points[order],
        group=mesh.group[order],
        part=mesh.part[order],
        face_mask=mesh.face_mask[order],
        markers={k: int(new_index[v]) for k, v in mesh.markers.items()},
        mirror=new_index[mesh.mirror[order]],
        skull_faces=mesh.skull_faces,
    )
    return Reordered(out, new_index, regressor[:, order])


def symmetric(field: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Average a (V, 3, K) field with its mirror image."""
    return 0.5 * (field + field[perm] * np.array([-1.0, 1.0, 1.0])[None, :, None])


def _hand_pca(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(45, 45) right-hand PCA basis (orthonormal rows) and its mirror for the left hand."""
    basis, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((45, 45)))
    return basis, basis * AA_MIRROR[None]


def build_smplx(seed: int) -> dict:
    """SMPL-X stand-in: arrays shared by the three genders plus index maps for MANO/FLAME/regressors."""
    natural = build_mesh(SMPLX_RESOLUTION)
    regressor = smplx_joint_regressor(natural)
    # MANO's fingertip indices must hold inside each hand block; the left block mirrors the right one
    right = np.flatnonzero(natural.group == "right_hand")
    left = np.flatnonzero(natural.group == "left_hand")
    assert np.array_equal(natural.mirror[left], right), "hand blocks must correspond vertex for vertex"
    tips = {natural.markers["r" + name] - right[0]: slot for name, slot in SMPLX_VERTEX_IDS["mano"].items()}
    hand_order = vertex_order(len(right), tips)
    head = np.flatnonzero(natural.group == "head")
    body = np.flatnonzero(natural.group == "body")
    base = np.concatenate([head, left[hand_order], right[hand_order], body])
    final = reorder(natural, regressor, SMPLX_VERTEX_IDS["smplx"], base)
    mesh = final.mesh

    axis_group_part = (mesh.axis_points, mesh.group, mesh.part)
    shapes = symmetric(shape_fields(mesh.vertices, *axis_group_part), mesh.mirror)
    expressions = symmetric(expression_fields(mesh.vertices, mesh.face_mask), mesh.mirror)
    static, dynamic = landmark_rays()
    lmk_faces, lmk_bary = embed_rays(mesh.vertices, mesh.faces, mesh.skull_faces, static)
    dyn_faces, dyn_bary = embed_rays(mesh.vertices, mesh.faces, mesh.skull_faces, dynamic)
    pca_right, pca_left = _hand_pca(seed)
    mean_right = right_hand_mean_pose()
    return {
        "mesh": mesh,
        "regressor": final.regressor,
        "shapes": shapes,
        "expressions": expressions,
        "landmarks": (lmk_faces, lmk_bary, dyn_faces, dyn_bary),
        "hand_pca": (pca_left, pca_right),
        "hand_mean": (mean_right * AA_MIRROR, mean_right),
        "hand_ids": {"left_hand": final.new_index[left[hand_order]], "right_hand": final.new_index[right[hand_order]]},
        "flame_ids": final.new_index[head],
        "seed": seed,
    }


def smplx_file(model: dict, gender: str) -> dict[str, np.ndarray]:
    """The contents of SMPLX_{GENDER}.npz."""
    mesh = model["mesh"]
    num_vertices = len(mesh.vertices)
    shapedirs = np.zeros((num_vertices, 3, SHAPE_SPACE + EXPRESSION_SPACE))
    shapedirs[:, :, : model["shapes"].shape[2]] = model["shapes"]
    shapedirs[:, :, SHAPE_SPACE : SHAPE_SPACE + model["expressions"].shape[2]] = model["expressions"]
    template = mesh.vertices + model["shapes"] @ GENDER_BETAS[gender]
    lmk_faces, lmk_bary, dyn_faces, dyn_bary = model["landmarks"]
    pca_left, pca_right = model["hand_pca"]
    mean_left, mean_right = model["hand_mean"]
    rng = np.random.default_rng(model["seed"] + 1)
    uv = np.stack([0.5 + np.arctan2(mesh.vertices[:, 0], mesh.vertices[:, 2]) / (2 * np.pi),
                   (mesh.vertices[:, 1] + 1.4) / 1.9], axis=1)  # fmt: skip
    return {
        "v_template": template,
        "f": mesh.faces.astype(np.uint32),
        "shapedirs": shapedirs,
        "posedirs": np.zeros((num_vertices, 3, 9 * (len(SMPLX_JOINTS) - 1))),
        "J_regressor": model["regressor"],
        "weights": mesh.weights,
        "kintree_table": kintree(SMPLX_PARENTS),
        "hands_componentsl": pca_left,
        "hands_componentsr": pca_right,
        "hands_meanl": mean_left,
        "hands_meanr": mean_right,
        "hands_coeffsl": rng.standard_normal((64, 45)) * 0.3,
        "hands_coeffsr": rng.standard_normal((64, 45)) * 0.3,
        "lmk_faces_idx": lmk_faces.astype(np.int64),
        "lmk_bary_coords": lmk_bary,
        "dynamic_lmk_faces_idx": dyn_faces.astype(np.int64),
        "dynamic_lmk_bary_coords": dyn_bary,
        "vt": uv,
        "ft": mesh.faces.astype(np.uint32),
        "joint2num": np.array({name: i for i, name in enumerate(SMPLX_JOINTS)}, dtype=object),
        "part2num": np.array({g: i for i, g in enumerate(np.unique(mesh.group))}, dtype=object),
    }


def smplx_pickle(contents: dict[str, np.ndarray]) -> dict[str, object]:
    """The contents of SMPLX_{GENDER}.pkl from those of the .npz (`smplx_file`): the same arrays, laid out
    as the official .pkl download is: ``J_regressor`` as a scipy.sparse matrix and ``joint2num`` and
    ``part2num`` as plain dicts (the .npz can only hold them as 0-d object arrays)."""
    layout = dict(contents)
    layout["J_regressor"] = scipy.sparse.csc_matrix(contents["J_regressor"])  # exact: only zeros are dropped
    for key in ("joint2num", "part2num"):
        layout[key] = contents[key].item()
    return layout


def _sub_mesh(mesh: Mesh, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, faces (re-indexed) and the global face indices of the part of ``mesh`` on ``ids``."""
    local = np.full(len(mesh.vertices), -1)
    local[ids] = np.arange(len(ids))
    inside = np.flatnonzero((local[mesh.faces] >= 0).all(axis=1))
    return mesh.vertices[ids], local[mesh.faces[inside]], inside


def _sparse(rows: np.ndarray) -> scipy.sparse.csc_matrix:
    rows = np.where(np.abs(rows) < 1e-12, 0.0, rows)
    return scipy.sparse.csc_matrix(rows / rows.sum(axis=1, keepdims=True))


def mano_files(model: dict) -> dict[str, dict]:
    """The contents of MANO_LEFT.pkl and MANO_RIGHT.pkl (16 joints: wrist + 15 finger joints)."""
    mesh = model["mesh"]
    files = {}
    for side, key, pca, mean in (
        ("LEFT", "left_hand", *(m[0] for m in (model["hand_pca"], model["hand_mean"]))),
        ("RIGHT", "right_hand", *(m[1] for m in (model["hand_pca"], model["hand_mean"]))),
    ):
        ids = model["hand_ids"][key]
        vertices, faces, _ = _sub_mesh(mesh, ids)
        prefix = side.lower() + "_"
        joints = [SMPLX_JOINTS.index(prefix + "wrist")] + [SMPLX_JOINTS.index(prefix + n[5:]) for n in _FINGER_JOINTS]
        weights = mesh.weights[ids][:, joints]
        weights[:, 0] += mesh.weights[ids][
            :, SMPLX_JOINTS.index(prefix + "elbow")
        ]  # the forearm end moves with the root
        shapes = model["shapes"][ids] - model["shapes"][ids].mean(axis=0, keepdims=True)  # hand-local shape only
        if side == "LEFT":
            # The official MANO_LEFT.pkl carries the right hand's x-component of shapedirs unflipped; the
            # stand-in reproduces that so the well-known fix (negate it when it equals the right's) applies.
            shapes[:, 0, :] = -shapes[:, 0, :]
        files[side] = {
            "v_template": vertices,
            "f": faces.astype(np.uint32),
            "J_regressor": _sparse(model["regressor"][joints][:, ids]),
            "kintree_table": kintree([-1] + [0 if k % 3 == 0 else k for k in range(15)]),
            "weights": weights / weights.sum(axis=1, keepdims=True),
            "posedirs": np.zeros((len(ids), 3, 9 * 15)),
            "shapedirs": shapes,
            "hands_components": pca,
            "hands_mean": mean,
            "hands_coeffs": np.zeros((1, 45)),
            "J": model["regressor"][joints][:, ids] @ vertices,
            "bs_style": "lbs",
            "bs_type": "lrotmin",
        }
    return files


FLAME_FROM_SMPLX = {"spine3": 0, "neck": 0, "head": 1, "jaw": 2, "left_eye_smplhf": 3, "right_eye_smplhf": 4}


def flame_files(model: dict) -> dict[str, object]:
    """The contents of FLAME_NEUTRAL.pkl and its two landmark embeddings (5 joints: global, neck, jaw, eyes)."""
    mesh = model["mesh"]
    ids = model["flame_ids"]
    vertices, faces, global_faces = _sub_mesh(mesh, ids)
    local_face = np.full(len(mesh.faces), -1)
    local_face[global_faces] = np.arange(len(global_faces))
    weights = np.zeros((len(ids), 5))
    for name, column in FLAME_FROM_SMPLX.items():
        weights[:, column] += mesh.weights[ids][:, SMPLX_JOINTS.index(name)]
    rows = [SMPLX_JOINTS.index(n) for n in ("neck", "head", "jaw", "left_eye_smplhf", "right_eye_smplhf")]
    shapedirs = np.zeros((len(ids), 3, SHAPE_SPACE + EXPRESSION_SPACE))
    head_shapes = model["shapes"][ids] - model["shapes"][ids].mean(axis=0, keepdims=True)  # head-local shape only
    shapedirs[:, :, : head_shapes.shape[2]] = head_shapes
    shapedirs[:, :, SHAPE_SPACE : SHAPE_SPACE + model["expressions"].shape[2]] = model["expressions"][ids]
    lmk_faces, lmk_bary, dyn_faces, dyn_bary = model["landmarks"]
    return {
        "FLAME_NEUTRAL.pkl": {
            "v_template": vertices,
            "f": faces.astype(np.uint32),
            "J_regressor": _sparse(model["regressor"][rows][:, ids]),
            "kintree_table": kintree([-1, 0, 1, 1, 1]),
            "weights": weights / weights.sum(axis=1, keepdims=True),
            "posedirs": np.zeros((len(ids), 3, 9 * 4)),
            "shapedirs": shapedirs,
            "J": model["regressor"][rows][:, ids] @ vertices,
            "bs_style": "lbs",
            "bs_type": "lrotmin",
        },
        "flame_static_embedding.pkl": {
            "lmk_face_idx": local_face[lmk_faces].astype(np.uint32),
            "lmk_b_coords": lmk_bary,
        },
        "flame_dynamic_embedding.npy": {
            "lmk_face_idx": local_face[dyn_faces].astype(np.int64),
            "lmk_b_coords": dyn_bary,
        },
    }


def _top_of_head(mesh: Mesh) -> int:
    head = np.flatnonzero(mesh.group == "head")
    return int(head[np.argmax(mesh.vertices[head, 1])])


def _one_hot(num_vertices: int, index: int) -> np.ndarray:
    row = np.zeros(num_vertices)
    row[index] = 1.0
    return row


def evaluation_regressors(model: dict) -> dict[str, np.ndarray]:
    """SMPLX_to_J14 (14, V), LSP's joint order, and J_regressor_h36m_smplx (17, V), Human3.6M's order."""
    mesh, reg = model["mesh"], model["regressor"]
    num_vertices = len(mesh.vertices)
    row = {name: reg[SMPLX_JOINTS.index(name)] for name in SMPLX_JOINTS}
    head_top = _one_hot(num_vertices, _top_of_head(mesh))
    lsp = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
           "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "neck"]  # fmt: skip
    h36m = ["pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "spine2",
            "neck", "nose", "head_top", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow",
            "right_wrist"]  # fmt: skip
    extra = {"nose": _one_hot(num_vertices, mesh.markers["nose"]), "head_top": head_top}
    return {
        "SMPLX_to_J14.pkl": np.stack([row[n] for n in lsp] + [head_top]),
        "J_regressor_h36m_smplx.npy": np.stack([extra[n] if n in extra else row[n] for n in h36m]),
    }


SMPL_FROM_SMPLX_EXTRA = {"jaw": "head", "left_eye_smplhf": "head", "right_eye_smplhf": "head"}


def smpl_files(seed: int) -> dict[str, dict]:
    """The contents of SMPL_{NEUTRAL,MALE,FEMALE}.pkl (24 joints: SMPL-X's 22 body joints and two hand joints)."""
    natural = build_mesh(SMPL_RESOLUTION)
    regressor = smplx_joint_regressor(natural)
    final = reorder(natural, regressor, SMPLX_VERTEX_IDS["smplh"], np.arange(len(natural.vertices)))
    mesh = final.mesh
    # SMPL's hand joint sits at the knuckles of the middle finger; every finger joint collapses onto it
    column_of = {name: i for i, name in enumerate(SMPLX_JOINTS[:22])}
    column_of.update({n: column_of[t] for n, t in SMPL_FROM_SMPLX_EXTRA.items()})
    column_of.update({n: 22 if n.startswith("left") else 23 for n in SMPLX_JOINTS[25:]})
    weights = np.zeros((len(mesh.vertices), 24))
    for name, column in column_of.items():
        weights[:, column] += mesh.weights[:, SMPLX_JOINTS.index(name)]
    rows = np.concatenate(
        [
            final.regressor[:22],
            final.regressor[[SMPLX_JOINTS.index("left_middle1"), SMPLX_JOINTS.index("right_middle1")]],
        ]
    )
    shapes = symmetric(shape_fields(mesh.vertices, mesh.axis_points, mesh.group, mesh.part), mesh.mirror)
    parents = list(SMPLX_PARENTS[:22]) + [SMPLX_JOINTS.index("left_wrist"), SMPLX_JOINTS.index("right_wrist")]
    files = {}
    for gender, betas in GENDER_BETAS.items():
        template = mesh.vertices + shapes @ betas
        files[gender.upper()] = {
            "v_template": template,
            "f": mesh.faces.astype(np.uint32),
            "J_regressor": _sparse(rows),
            "kintree_table": kintree(parents),
            "weights": weights,
            "posedirs": np.zeros((len(mesh.vertices), 3, 9 * 23)),
            "shapedirs": shapes,
            "J": rows @ template,
            "vert_sym_idxs": mesh.mirror.astype(np.int64),
            "bs_style": "lbs",
            "bs_type": "lrotmin",
        }
    return files
