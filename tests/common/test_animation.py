"""common.animation against independent oracles: the .glb is read back by this file's own accessor reader and
posed by its own linear blend skinning, and compared with the smplx package's mesh (pose-corrective blend shapes
zeroed); the BVH is read back and its Euler angles composed by hand, its forward kinematics compared with smplx's
joints. Results files are written here from the contract (np.savez), never by the code under test."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pygltflib
import pytest
import torch
from scipy.spatial.transform import Rotation

from common.animation.bvh_export import BVHFormatError, read_bvh, write_bvh
from common.animation.gltf_export import write_glb
from common.animation.results import ResultsFile, ResultsFileError, UnknownTrackError
from common.animation.rig import CAMERA_TO_Y_UP, SMPLXRig, rig_motion
from common.body_models import get_body_models

FPS = 30.0
SMPLX_KEYS = ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose", "shape", "expr", "cam_trans")


# --- a synthetic results file, written from the contract --------------------------------------------------------
def synthetic_results(frames_per_track: dict[int, list[int]], seed: int = 0, flat: bool = False) -> dict:
    """Rows of random plausible SMPL-X parameters for the given (track -> frames), rows shuffled.

    Poses are small random rotations (0.3 rad spread; the root turned upside down as a person seen by an OpenCV
    camera), shapes and expressions N(0, 1), the body about 3 m in front of the camera.
    """
    rng = np.random.default_rng(seed)
    keys = [(track, frame) for track, frames in frames_per_track.items() for frame in frames]
    order = rng.permutation(len(keys))
    count = len(keys)
    upside_down = Rotation.from_rotvec([np.pi, 0.0, 0.0])
    root = (upside_down * Rotation.from_rotvec(rng.normal(0, 0.3, (count, 3)))).as_rotvec()
    body_shape = (count, 63) if flat else (count, 21, 3)
    table = {
        "frame": np.array([keys[i][1] for i in order], dtype=np.int64),
        "track": np.array([keys[i][0] for i in order], dtype=np.int32),
        "root_pose": root[order].astype(np.float32),
        "body_pose": rng.normal(0, 0.3, body_shape).astype(np.float32),
        "lhand_pose": rng.normal(0, 0.3, (count, 15, 3)).astype(np.float32),
        "rhand_pose": rng.normal(0, 0.3, (count, 15, 3)).astype(np.float32),
        "jaw_pose": rng.normal(0, 0.15, (count, 3)).astype(np.float32),
        "shape": rng.normal(0, 1, (count, 10)).astype(np.float32),
        "expr": rng.normal(0, 1, (count, 10)).astype(np.float32),
        "cam_trans": (np.array([0.0, 0.2, 3.0]) + rng.normal(0, 0.3, (count, 3))).astype(np.float32),
    }
    return table


def track_rows(table: dict, track: int) -> dict[str, np.ndarray]:
    """The rows of one track sorted by frame, each parameter as float64 (T, ...) in the contract's first shape."""
    rows = np.flatnonzero(table["track"] == track)
    rows = rows[np.argsort(table["frame"][rows])]
    out = {"frame": table["frame"][rows]}
    for key in SMPLX_KEYS:
        if key in table:
            out[key] = table[key][rows].astype(np.float64)
    out["body_pose"] = out["body_pose"].reshape(len(rows), 21, 3)
    return out


# --- the oracle: smplx without pose correctives ----------------------------------------------------------------
@pytest.fixture(scope="module")
def smplx_layer(synthetic_body_model_dir: Path):
    return get_body_models(synthetic_body_model_dir).smplx("neutral")


@torch.no_grad()
def smplx_without_pose_correctives(layer, rows: dict, betas: np.ndarray, with_expression: bool = True):
    """(T, V, 3) vertices and (T, 55, 3) skeleton joints of smplx's own forward pass, posedirs zeroed, in float64,
    plus cam_trans (metres)."""
    oracle = copy.deepcopy(layer).double()
    oracle.posedirs.zero_()
    count = len(rows["frame"])
    t = lambda a: torch.as_tensor(np.array(a, dtype=np.float64)).reshape(count, -1)  # noqa: E731
    expression = rows["expr"] if with_expression and "expr" in rows else np.zeros((count, 10))
    out = oracle(
        betas=t(np.broadcast_to(betas, (count, 10))), expression=t(expression), global_orient=t(rows["root_pose"]),
        body_pose=t(rows["body_pose"]), left_hand_pose=t(rows["lhand_pose"]), right_hand_pose=t(rows["rhand_pose"]),
        jaw_pose=t(rows["jaw_pose"]), leye_pose=t(np.zeros((count, 3))), reye_pose=t(np.zeros((count, 3))),
    )  # fmt: skip
    trans = rows["cam_trans"][:, None]
    return out.vertices.numpy() + trans, out.joints[:, :55].numpy() + trans


# --- our own reading of a .glb ----------------------------------------------------------------------------------
_COMPONENTS = {5121: "<u1", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def gltf_accessor(gltf: pygltflib.GLTF2, index: int) -> np.ndarray:
    """(count, width) values of an accessor, read from the binary chunk by the glTF 2.0 layout rules."""
    accessor = gltf.accessors[index]
    view = gltf.bufferViews[accessor.bufferView]
    dtype = np.dtype(_COMPONENTS[accessor.componentType])
    width = _WIDTHS[accessor.type]
    stride = view.byteStride or width * dtype.itemsize
    start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
    blob = gltf.binary_blob()
    assert start + (accessor.count - 1) * stride + width * dtype.itemsize <= (view.byteOffset or 0) + view.byteLength
    # element i starts at start + i * stride: a strided view over the bytes (stride = element size when packed)
    raw = np.frombuffer(blob, np.uint8, (accessor.count - 1) * stride + width * dtype.itemsize, start)
    rows = np.lib.stride_tricks.as_strided(raw, (accessor.count, width * dtype.itemsize), (stride, 1))
    return np.ascontiguousarray(rows).view(dtype)  # (count, width)


def gltf_channel_values(gltf: pygltflib.GLTF2, time_s: float) -> dict[tuple[int, str], np.ndarray]:
    """(node, path) -> the value of every animation channel at a keyframe time (glTF keyframes hold the exact
    value there, whatever the interpolation)."""
    values = {}
    for animation in gltf.animations:
        for channel in animation.channels:
            sampler = animation.samplers[channel.sampler]
            times = gltf_accessor(gltf, sampler.input)[:, 0]
            key = int(np.argmin(np.abs(times - time_s)))
            assert abs(times[key] - time_s) < 1e-5, f"no keyframe at {time_s} s"
            output = gltf_accessor(gltf, sampler.output)
            per_key = len(output) // len(times)
            values[(channel.target.node, channel.target.path)] = output[key * per_key : (key + 1) * per_key].reshape(
                -1 if per_key > 1 else output.shape[1]
            )
    return values


def target_position(target) -> int:
    """A morph target's POSITION accessor (pygltflib loads targets as plain dicts)."""
    return target["POSITION"] if isinstance(target, dict) else target.POSITION


def gltf_posed_vertices(path: Path, time_s: float) -> np.ndarray:
    """(V, 3) the skinned mesh at a keyframe: morph targets, node hierarchy (TRS), inverse bind matrices and
    JOINTS_0/WEIGHTS_0 linear blend skinning, computed here with numpy from the file's contents."""
    gltf = pygltflib.GLTF2().load(str(path))
    animated = gltf_channel_values(gltf, time_s)

    def local_matrix(index: int) -> np.ndarray:
        node = gltf.nodes[index]
        matrix = np.eye(4)
        quaternion = animated.get((index, "rotation"), node.rotation or [0.0, 0.0, 0.0, 1.0])
        matrix[:3, :3] = Rotation.from_quat(quaternion).as_matrix() * np.asarray(node.scale or [1.0, 1.0, 1.0])
        matrix[:3, 3] = animated.get((index, "translation"), node.translation or [0.0, 0.0, 0.0])
        return matrix

    world: dict[int, np.ndarray] = {}

    def visit(index: int, parent: np.ndarray) -> None:
        world[index] = parent @ local_matrix(index)
        for child in gltf.nodes[index].children or []:
            visit(child, world[index])

    for root in gltf.scenes[gltf.scene].nodes:
        visit(root, np.eye(4))
    mesh_node = next(i for i, node in enumerate(gltf.nodes) if node.mesh is not None)
    primitive = gltf.meshes[gltf.nodes[mesh_node].mesh].primitives[0]
    skin = gltf.skins[gltf.nodes[mesh_node].skin]
    positions = gltf_accessor(gltf, primitive.attributes.POSITION).astype(np.float64)
    weights = animated.get((mesh_node, "weights"), gltf.meshes[gltf.nodes[mesh_node].mesh].weights)
    for weight, target in zip(weights, primitive.targets or [], strict=True):
        positions = positions + weight * gltf_accessor(gltf, target_position(target))
    inverse_bind = gltf_accessor(gltf, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)  # col-major
    joint_matrices = np.stack([world[node] for node in skin.joints]) @ inverse_bind  # (J, 4, 4)
    joints = gltf_accessor(gltf, primitive.attributes.JOINTS_0).astype(np.int64)  # (V, 4)
    vertex_weights = gltf_accessor(gltf, primitive.attributes.WEIGHTS_0).astype(np.float64)  # (V, 4)
    blended = np.einsum("vk,vkab->vab", vertex_weights, joint_matrices[joints])  # (V, 4, 4)
    return np.einsum("vab,vb->va", blended[:, :3, :3], positions) + blended[:, :3, 3]


def write_results(path: Path, table: dict) -> Path:
    np.savez(path, **table)
    return path


# --- results file ------------------------------------------------------------------------------------------------
def test_results_file_reads_a_track_sorted_by_frame_and_flat_poses(tmp_path: Path) -> None:
    table = synthetic_results({3: [4, 0, 2], 7: [1, 2]}, flat=True)
    results = ResultsFile(write_results(tmp_path / "r.npz", table))
    assert results.tracks == [3, 7] and results.fps is None
    motion = results.track(3)
    expected = track_rows(table, 3)
    np.testing.assert_array_equal(motion.frames, [0, 2, 4])
    np.testing.assert_array_equal(motion.body_pose, expected["body_pose"])
    np.testing.assert_array_equal(motion.cam_trans, expected["cam_trans"])
    pose = motion.pose_axis_angle()
    assert pose.shape == (3, 55, 3)
    np.testing.assert_array_equal(pose[:, 22], expected["jaw_pose"])  # SMPL-X's order: root, 21 body, jaw
    np.testing.assert_array_equal(pose[:, 25:40], expected["lhand_pose"])
    np.testing.assert_array_equal(pose[:, 23:25], 0.0)  # eyes absent: zeros


def test_results_file_errors_name_the_key_or_list_the_tracks(tmp_path: Path) -> None:
    table = synthetic_results({0: [0, 1], 2: [0]})
    missing = {k: v for k, v in table.items() if k not in ("jaw_pose", "cam_trans")}
    with pytest.raises(ResultsFileError, match="missing key.*jaw_pose, cam_trans"):
        ResultsFile(write_results(tmp_path / "missing.npz", missing))
    with pytest.raises(UnknownTrackError, match="no track 1; the tracks in the file are 0, 2"):
        ResultsFile(write_results(tmp_path / "ok.npz", table)).track(1)
    with pytest.raises(ResultsFileError, match="'body_pose' must be .*shape"):
        ResultsFile(write_results(tmp_path / "shape.npz", table | {"body_pose": table["body_pose"][:, :20]}))
    with pytest.raises(ResultsFileError, match="'frame' must be a \\(N,\\) integer"):
        ResultsFile(write_results(tmp_path / "float.npz", table | {"frame": table["frame"].astype(np.float32)}))
    with pytest.raises(ResultsFileError, match="several rows for frame 1"):
        ResultsFile(
            write_results(tmp_path / "dup.npz", table | {"frame": np.array([1, 1, 0]), "track": np.array([0, 0, 2])})
        ).track(0)
    objects = np.empty(3, dtype=object)
    with pytest.raises(ResultsFileError, match="'shape' cannot be read"):
        ResultsFile(write_results(tmp_path / "object.npz", table | {"shape": objects}))
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ResultsFileError, match="not a readable .npz"):
        ResultsFile(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError):
        ResultsFile(tmp_path / "absent.npz")


# --- rig ------------------------------------------------------------------------------------------------------------
def test_top_influences_keep_the_four_largest_renormalised(smplx_layer) -> None:
    rng = np.random.default_rng(1)
    rig = SMPLXRig.from_layer(smplx_layer, np.zeros(10))
    weights = rng.random((6, rig.num_joints)) * (rng.random((6, rig.num_joints)) < 0.1)
    weights[0] = 0.0
    weights[0, [5, 9]] = [0.25, 0.75]  # two influences only: two empty slots
    weights /= weights.sum(axis=1, keepdims=True)
    joints, kept = SMPLXRig(**{**rig.__dict__, "lbs_weights": weights}).top_influences(4)
    for v in range(len(weights)):
        largest = sorted(range(rig.num_joints), key=lambda j: -weights[v, j])[:4]  # brute force
        expected = {j: weights[v, j] for j in largest if weights[v, j] > 0}
        got = {int(j): w for j, w in zip(joints[v], kept[v], strict=True) if w > 0}
        assert got.keys() == expected.keys()
        total = sum(expected.values())
        assert all(abs(got[j] - expected[j] / total) < 1e-12 for j in got)
    np.testing.assert_array_equal(joints[0], [9, 5, 0, 0])
    np.testing.assert_array_equal(kept[0], [0.75, 0.25, 0.0, 0.0])


def test_stand_in_skin_has_at_most_four_influences(smplx_layer) -> None:
    # why the glTF test below can be tight: the 4-weight truncation loses nothing on the stand-in
    assert ((smplx_layer.lbs_weights.numpy() > 0).sum(axis=1) <= 4).all()


# --- glTF -----------------------------------------------------------------------------------------------------------
def export_glb(tmp_path: Path, layer, table: dict, track: int, world_rotation=None) -> str:
    """Writes ``table`` as a results file and exports one track with the library functions; returns the .glb."""
    motion = ResultsFile(write_results(tmp_path / "results.npz", table)).track(track)
    rig = SMPLXRig.from_layer(layer, motion.shape.mean(axis=0))
    return write_glb(tmp_path / "out.glb", rig, rig_motion(rig, motion, world_rotation), FPS)


@pytest.mark.parametrize("camera_frame", [False, True], ids=["smplx_frame", "camera_frame"])
def test_glb_skin_reproduces_smplx_without_pose_correctives(tmp_path: Path, smplx_layer, camera_frame: bool) -> None:
    table = synthetic_results({0: [0, 1, 2, 3, 4], 1: [2, 3, 5, 6, 9]})
    path = export_glb(tmp_path, smplx_layer, table, 1, CAMERA_TO_Y_UP if camera_frame else None)
    rows = track_rows(table, 1)
    expected, _ = smplx_without_pose_correctives(smplx_layer, rows, rows["shape"].mean(axis=0))
    if camera_frame:
        expected = expected @ CAMERA_TO_Y_UP.T
    errors = [np.abs(gltf_posed_vertices(Path(path), frame / FPS) - expected[k]).max()
              for k, frame in enumerate(rows["frame"])]  # fmt: skip
    # The stand-in has <= 4 influences per vertex (test above), so the only loss is float32 storage (~1e-6 m);
    # the brief's bound is 1 mm.
    assert max(errors) < 1e-5, errors
    assert np.abs(expected).max() > 0.5  # the comparison is over a posed body, not a degenerate one


def test_glb_morph_targets_are_the_expressions(tmp_path: Path, smplx_layer) -> None:
    table = synthetic_results({0: [0, 1, 2, 3, 4]})
    path = export_glb(tmp_path, smplx_layer, table, 0)
    gltf = pygltflib.GLTF2().load(path)
    mesh = gltf.meshes[0]
    primitive = mesh.primitives[0]
    exprdirs = smplx_layer.expr_dirs.numpy()  # (V, 3, 10)
    assert len(primitive.targets) == 10 and mesh.extras["targetNames"] == [f"expr_{k}" for k in range(10)]
    for k, target in enumerate(primitive.targets):
        np.testing.assert_allclose(gltf_accessor(gltf, target_position(target)), exprdirs[..., k], atol=1e-7)
    base = gltf_accessor(gltf, primitive.attributes.POSITION)
    betas = track_rows(table, 0)["shape"].mean(axis=0)
    shaped = smplx_layer.v_template.numpy() + smplx_layer.shapedirs.numpy() @ betas
    np.testing.assert_allclose(base, shaped, atol=1e-6)
    rows = track_rows(table, 0)
    for k, frame in enumerate(rows["frame"]):
        weights = gltf_channel_values(gltf, frame / FPS)[(0, "weights")]
        np.testing.assert_allclose(weights, rows["expr"][k], atol=1e-6)


def test_glb_without_expressions_has_no_morph_targets(tmp_path: Path, smplx_layer) -> None:
    table = {k: v for k, v in synthetic_results({0: [0, 1, 2]}).items() if k != "expr"}
    path = export_glb(tmp_path, smplx_layer, table, 0)
    gltf = pygltflib.GLTF2().load(path)
    assert not gltf.meshes[0].primitives[0].targets
    assert all(c.target.path != "weights" for c in gltf.animations[0].channels)
    rows = track_rows(table, 0)
    expected, _ = smplx_without_pose_correctives(smplx_layer, rows, rows["shape"].mean(axis=0), False)
    assert np.abs(gltf_posed_vertices(Path(path), 2 / FPS) - expected[2]).max() < 1e-5


def test_glb_skeleton_and_keyframe_times(tmp_path: Path, smplx_layer) -> None:
    table = synthetic_results({4: [10, 11, 15]})
    path = export_glb(tmp_path, smplx_layer, table, 4)
    gltf = pygltflib.GLTF2().load(path)
    skin = gltf.skins[0]
    names = [gltf.nodes[n].name for n in skin.joints]
    assert len(names) == 55 and names[:3] == ["pelvis", "left_hip", "right_hip"] and names[22] == "jaw"
    parents = smplx_layer.parents.numpy()
    for j, node in enumerate(skin.joints[1:], start=1):
        assert node in gltf.nodes[skin.joints[parents[j]]].children
    # rest translations: parent-relative joints regressed from the shaped template
    betas = track_rows(table, 4)["shape"].mean(axis=0)
    shaped = smplx_layer.v_template.numpy() + smplx_layer.shapedirs.numpy() @ betas
    rest = smplx_layer.J_regressor.numpy() @ shaped
    for j, node in enumerate(skin.joints):
        expected = rest[j] - (rest[parents[j]] if j else 0.0)
        np.testing.assert_allclose(gltf.nodes[node].translation, expected, atol=1e-6)
    for sampler in gltf.animations[0].samplers:
        assert sampler.interpolation == "LINEAR"
        np.testing.assert_allclose(gltf_accessor(gltf, sampler.input)[:, 0], np.array([10, 11, 15]) / FPS, rtol=1e-6)


# --- BVH ------------------------------------------------------------------------------------------------------------
def euler_by_hand(order: str, angles_deg: np.ndarray) -> np.ndarray:
    """(F, 3, 3) the product of elementary rotations in the channel order (R = R_first R_second R_third)."""

    def elementary(axis: str, angle: np.ndarray) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        one, zero = np.ones_like(angle), np.zeros_like(angle)
        rows = {"X": [[one, zero, zero], [zero, c, -s], [zero, s, c]],
                "Y": [[c, zero, s], [zero, one, zero], [-s, zero, c]],
                "Z": [[c, -s, zero], [s, c, zero], [zero, zero, one]]}[axis]  # fmt: skip
        return np.moveaxis(np.array(rows), (0, 1), (-2, -1))

    matrix = np.broadcast_to(np.eye(3), (len(angles_deg), 3, 3))
    for axis, column in zip(order, np.radians(angles_deg).T, strict=True):
        matrix = matrix @ elementary(axis, column)
    return matrix


def geodesic_rad(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cosine = (np.trace(np.swapaxes(a, -1, -2) @ b, axis1=-2, axis2=-1) - 1) / 2
    return np.arccos(np.clip(cosine, -1.0, 1.0))


def bvh_local_rotations_by_hand(bvh) -> np.ndarray:
    """(F, J, 3, 3) from the parsed channels, composing the rotation channels by hand in file order."""
    out = np.empty((len(bvh.values), len(bvh.joint_names), 3, 3))
    for j, channels in enumerate(bvh.channels):
        columns = [k for k, name in enumerate(channels) if name.endswith("rotation")]
        order = "".join(channels[k][0] for k in columns)
        out[:, j] = euler_by_hand(order, bvh.channel_values(j)[:, columns])
    return out


def export_bvh(tmp_path: Path, layer, table: dict, track: int, units: str = "cm") -> tuple[str, SMPLXRig]:
    motion = ResultsFile(write_results(tmp_path / "results.npz", table)).track(track)
    rig = SMPLXRig.from_layer(layer, motion.shape.mean(axis=0))
    return write_bvh(tmp_path / "out.bvh", rig, rig_motion(rig, motion), FPS, units=units), rig


def test_bvh_round_trip_rotations_offsets_and_forward_kinematics(tmp_path: Path, smplx_layer) -> None:
    table = synthetic_results({0: [0, 1, 2, 3, 4]}, seed=3)
    path, rig = export_bvh(tmp_path, smplx_layer, table, 0)
    bvh = read_bvh(path)
    rows = track_rows(table, 0)
    names = list(rig.joint_names)
    index = [names.index(name) for name in bvh.joint_names]  # file order -> SMPL-X order
    assert sorted(index) == list(range(55)) and bvh.frame_time == pytest.approx(1 / FPS, rel=1e-8)
    assert bvh.channels[0] == ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
    parents = smplx_layer.parents.numpy()
    assert all(p == -1 if j == 0 else index[p] == parents[index[j]] for j, p in enumerate(bvh.parents))
    # offsets: centimetres, parent-relative, of the joints regressed from the shaped template; root 0
    shaped = smplx_layer.v_template.numpy().astype(np.float64) + smplx_layer.shapedirs.numpy() @ rows["shape"].mean(0)
    rest = smplx_layer.J_regressor.numpy().astype(np.float64) @ shaped
    for j, smplx_j in enumerate(index):
        expected = 0.0 if j == 0 else 100 * (rest[smplx_j] - rest[parents[smplx_j]])
        np.testing.assert_allclose(bvh.offsets[j], expected, atol=1e-5)
    # rotations: SMPL-X's full pose (parameters + the mean hand pose), within 1e-6 rad
    pose = np.concatenate([rows["root_pose"][:, None], rows["body_pose"], rows["jaw_pose"][:, None],
                           np.zeros((5, 2, 3)), rows["lhand_pose"], rows["rhand_pose"]], axis=1)  # fmt: skip
    pose = pose + smplx_layer.pose_mean.numpy().reshape(55, 3)
    expected_rot = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(5, 55, 3, 3)
    read_rot = bvh_local_rotations_by_hand(bvh)
    assert geodesic_rad(read_rot, expected_rot[:, index]).max() < 1e-6
    assert geodesic_rad(bvh.local_rotations(), read_rot).max() < 1e-6
    # forward kinematics of the file == smplx's joints (+ cam_trans), expression 0 (a BVH carries none)
    _, joints = smplx_without_pose_correctives(smplx_layer, rows, rows["shape"].mean(0), with_expression=False)
    world_rot = np.empty_like(read_rot)
    world_pos = np.empty((5, 55, 3))
    root_position = bvh.channel_values(0)[:, :3] / 100
    for j, parent in enumerate(bvh.parents):
        if parent < 0:
            world_rot[:, j], world_pos[:, j] = read_rot[:, j], root_position + bvh.offsets[j] / 100
        else:
            world_rot[:, j] = world_rot[:, parent] @ read_rot[:, j]
            world_pos[:, j] = world_pos[:, parent] + np.einsum("fab,b->fa", world_rot[:, parent], bvh.offsets[j] / 100)
    assert np.abs(world_pos - joints[:, index]).max() < 1e-6


def test_bvh_fills_a_gap_by_interpolation_and_writes_metres(tmp_path: Path, smplx_layer) -> None:
    table = synthetic_results({2: [5, 7, 8]}, seed=4)
    path, _ = export_bvh(tmp_path, smplx_layer, table, 2, units="m")
    bvh = read_bvh(path)
    assert len(bvh.values) == 4  # frames 5..8
    rows = track_rows(table, 2)
    root = bvh.channel_values(0)
    np.testing.assert_allclose(root[[0, 2, 3], :3] - root[0, :3], rows["cam_trans"] - rows["cam_trans"][0], atol=1e-6)
    np.testing.assert_allclose(root[1, :3], (root[0, :3] + root[2, :3]) / 2, atol=1e-6)
    rotations = bvh_local_rotations_by_hand(bvh)[:, 0]  # the root's
    halfway = Rotation.from_matrix(rotations[0].T @ rotations[2]).as_rotvec() / 2
    expected = rotations[0] @ Rotation.from_rotvec(halfway).as_matrix()
    assert geodesic_rad(rotations[1], expected) < 1e-6


def test_read_bvh_of_another_tool_and_its_errors(tmp_path: Path) -> None:
    text = """HIERARCHY
ROOT Hips
{
  OFFSET 1 2 3
  CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 3 Yrotation Xrotation Zrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
0 0 0 90 0 0 0 0 0
1 2 3 0 0 90 30 90 0
"""
    (tmp_path / "a.bvh").write_text(text)
    bvh = read_bvh(tmp_path / "a.bvh")
    assert bvh.joint_names == ("Hips", "Spine") and list(bvh.parents) == [-1, 0]
    np.testing.assert_array_equal(bvh.end_sites[1], [0, 5, 0])
    rotations = bvh.local_rotations()
    np.testing.assert_allclose(rotations[0, 0], [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)  # Rx(90)
    np.testing.assert_allclose(rotations[1, 0], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)  # Rz(90)
    np.testing.assert_allclose(rotations[1, 1], euler_by_hand("YXZ", np.array([[30.0, 90.0, 0.0]]))[0], atol=1e-12)
    (tmp_path / "short.bvh").write_text(text.rsplit("\n", 2)[0] + "\n")
    with pytest.raises(BVHFormatError, match="expected 2 frames x 9 channels = 18 values"):
        read_bvh(tmp_path / "short.bvh")
    (tmp_path / "bad.bvh").write_text(text.replace("OFFSET 0 10 0", "OFFSET 0 ten 0"))
    with pytest.raises(BVHFormatError, match="line 8: expected a number, found 'ten'"):
        read_bvh(tmp_path / "bad.bvh")
    (tmp_path / "channel.bvh").write_text(text.replace("Yrotation Xrotation Zrotation", "Yrotation Xrot Zrotation"))
    with pytest.raises(BVHFormatError, match="bad channels"):
        read_bvh(tmp_path / "channel.bvh")
