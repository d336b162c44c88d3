"""tool/export_animation.py end to end on small synthetic results files (written here from the contract): the .glb
it writes, posed by the test's own reader, is smplx's mesh; the .bvh parses back with the asked frame rate and
units; bad input ends with one line naming the key or listing the tracks, and exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib
import pytest

from common.animation.bvh_export import read_bvh
from common.engine.cli import run_cli
from tests.common.test_animation import (
    gltf_posed_vertices,
    smplx_without_pose_correctives,
    synthetic_results,
    track_rows,
    write_results,
)
from tool.export_animation import main

PROG = "export_animation.py"


@pytest.fixture(scope="module")
def smplx_layer(synthetic_body_model_dir: Path):
    from common.body_models import get_body_models

    return get_body_models(synthetic_body_model_dir).smplx("neutral")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_cli(main, [str(a) for a in argv], prog=PROG)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_glb_of_one_of_two_tracks_is_smplx_mesh(tmp_path: Path, capsys, smplx_layer) -> None:
    table = synthetic_results({0: [0, 1, 2, 3, 4], 1: [0, 1, 2, 4, 5]}, seed=7)
    results = write_results(tmp_path / "results.npz", table | {"fps": np.array(25.0)})
    out = tmp_path / "anim" / "track1.glb"
    code, stdout, stderr = run([results, "--track", 1, "--out", out, "--body-model", "synthetic", "--no-camera-frame"],
                               capsys)  # fmt: skip
    assert code == 0, stderr
    assert f"wrote {out}: track 1, 5 frames (0..5) at 25 fps" in stdout
    rows = track_rows(table, 1)
    expected, _ = smplx_without_pose_correctives(smplx_layer, rows, rows["shape"].mean(axis=0))
    for k in (0, 3):  # the file's fps (25) sets the keyframe times
        assert np.abs(gltf_posed_vertices(out, rows["frame"][k] / 25.0) - expected[k]).max() < 1e-5
    gltf = pygltflib.GLTF2().load(str(out))
    assert gltf.meshes[0].name == "smplx_track_1"


def test_camera_frame_glb_stands_up(tmp_path: Path, capsys, smplx_layer) -> None:
    table = synthetic_results({0: [0, 1, 2]}, seed=8)  # roots turned upside down, as an OpenCV camera sees people
    results = write_results(tmp_path / "results.npz", table)
    out = tmp_path / "up.glb"
    assert run([results, "--out", out, "--body-model", "synthetic"], capsys)[0] == 0  # the camera frame: the default
    vertices = gltf_posed_vertices(out, 1 / 30.0)  # one track: --track optional; fps default 30
    rows = track_rows(table, 0)
    expected, _ = smplx_without_pose_correctives(smplx_layer, rows, rows["shape"].mean(axis=0))
    np.testing.assert_allclose(vertices, expected[1] * [1, -1, -1], atol=1e-5)
    head, feet = smplx_layer.J_regressor.numpy()[[15, 10]] @ vertices  # head above the left foot: +y is up
    assert head[1] > feet[1]


def test_bvh_frame_rate_units_and_frames(tmp_path: Path, capsys) -> None:
    table = synthetic_results({3: [2, 3, 4, 5, 6], 4: [0, 1]}, seed=9)
    results = write_results(tmp_path / "results.npz", table)
    out = tmp_path / "track3.bvh"
    argv = [
        results,
        "--track",
        3,
        "--out",
        out,
        "--fps",
        60,
        "--bvh-units",
        "m",
        "--body-model",
        "synthetic",
        "--no-camera-frame",
    ]  # the parameters' own frame: the pelvis moves as cam_trans
    assert run(argv, capsys)[0] == 0
    bvh = read_bvh(out)
    assert len(bvh.values) == 5 and bvh.frame_time == pytest.approx(1 / 60, rel=1e-8)
    assert bvh.joint_names[0] == "pelvis" and len(bvh.joint_names) == 55
    rows = track_rows(table, 3)
    root = bvh.channel_values(0)[:, :3]  # metres: the pelvis moves as cam_trans does
    np.testing.assert_allclose(root - root[0], rows["cam_trans"] - rows["cam_trans"][0], atol=1e-6)


def test_missing_keys_are_named(tmp_path: Path, capsys) -> None:
    table = {k: v for k, v in synthetic_results({0: [0, 1]}).items() if k not in ("cam_trans", "body_pose")}
    results = write_results(tmp_path / "results.npz", table)
    code, _, stderr = run([results, "--out", tmp_path / "a.glb", "--body-model", "synthetic"], capsys)
    assert code == 2
    assert "missing key(s) body_pose, cam_trans" in stderr and str(results) in stderr
    assert not (tmp_path / "a.glb").exists()


def test_unknown_track_lists_the_tracks(tmp_path: Path, capsys) -> None:
    results = write_results(tmp_path / "results.npz", synthetic_results({0: [0], 5: [0, 1]}))
    code, _, stderr = run([results, "--track", 2, "--out", tmp_path / "a.bvh", "--body-model", "synthetic"], capsys)
    assert code == 2 and "no track 2; the tracks in the file are 0, 5" in stderr
    code, _, stderr = run([results, "--out", tmp_path / "a.bvh", "--body-model", "synthetic"], capsys)
    assert code == 2 and "2 tracks; choose one with --track (0, 5)" in stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "x.fbx"], "cannot tell the format from the suffix"),
        (["--out", "x.glb", "--fps", "0"], "--fps must be a positive number"),
        (["--out", "x.glb", "--human-model-path", "/nonexistent/models"], "is not a folder"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    results = write_results(tmp_path / "results.npz", synthetic_results({0: [0]}))
    extra = [str(tmp_path / a) if a.startswith("x.") else a for a in extra]
    code, _, stderr = run([results, *extra], capsys)
    assert code == 2 and message in stderr, stderr


def test_missing_results_file_exits_2(tmp_path: Path, capsys) -> None:
    code, _, stderr = run([tmp_path / "absent.npz", "--out", tmp_path / "a.glb"], capsys)
    assert code == 2 and "absent.npz" in stderr
