"""Synthetic Human3.6M in the upstream Integral layout (data/Synthetic/h36m_writer.py, make_synthetic_dataset --format
h36m).

The files are read back with scipy.io.loadmat and cv2 only, and the projection is computed here from the layout's
published convention (p_cam = R (X - T), T the camera centre in mm; u = f x / z + c), not with the writer's code:
the layout is checked against the specification the upstream readers follow, not against the project's loaders.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from common.engine.cli import run_cli
from data.Synthetic import ensure_h36m, make_h36m
from data.Synthetic.h36m_writer import H36MGenerator
from tool.make_synthetic_dataset import main as cli_main

SUBJECTS, ACTIONS, FRAMES = (1, 9), (2, 14), 3
IMAGE_HW = (501, 500)
KEYS = ("pose3d_world", "R", "T", "f", "c", "img_width", "img_height")
L_HIP, R_HIP, PELVIS, HEAD = 4, 1, 0, 10  # Human3.6M's 17-joint order


def folder(subject: int, action: int, camera: int, subaction: int = 1) -> str:
    return f"s_{subject:02d}_act_{action:02d}_subact_{subaction:02d}_ca_{camera:02d}"


def load(root: Path, name: str) -> dict[str, np.ndarray]:
    """h36m_meta.mat as upstream reads it: T, f, c, image sizes reshaped flat."""
    data = scipy.io.loadmat(str(root / "data" / name / "h36m_meta.mat"))
    out = {key: data[key] for key in ("pose3d_world", "R")}
    out["T"] = np.reshape(data["T"], 3)
    for key in ("f", "c", "img_width", "img_height"):
        out[key] = np.reshape(data[key], -1)
    return out


def project(points_world: np.ndarray, meta: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) world mm -> (..., 2) pixels and (...,) depths mm, by the upstream formula."""
    cam = (points_world - meta["T"]) @ meta["R"].T
    return cam[..., :2] / cam[..., 2:] * meta["f"] + meta["c"], cam[..., 2]


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "data").rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def h36m_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("h36m")
    make_h36m(root, SUBJECTS, ACTIONS, FRAMES, seed=0, workers=1, human_model_path=synthetic_body_model_dir,
              progress=False)  # fmt: skip
    return root


def test_layout_keys_shapes_and_units(h36m_dir: Path) -> None:
    names = sorted(p.name for p in (h36m_dir / "data").iterdir())
    assert names == sorted(folder(s, a, c) for s in SUBJECTS for a in ACTIONS for c in (1, 2, 3, 4))
    for name in names:
        files = sorted(p.name for p in (h36m_dir / "data" / name).iterdir())
        assert files == ["h36m_meta.mat"] + [f"{name}_{n + 1:06d}.jpg" for n in range(FRAMES)]
        raw = scipy.io.loadmat(str(h36m_dir / "data" / name / "h36m_meta.mat"))
        assert set(KEYS) <= set(raw)
        meta = load(h36m_dir, name)
        assert meta["pose3d_world"].shape == (FRAMES, 17, 3) and meta["pose3d_world"].dtype == np.float64
        rotation = meta["R"]
        assert rotation.shape == (3, 3) and np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
        assert np.isclose(np.linalg.det(rotation), 1.0)
        image = cv2.imread(str(h36m_dir / "data" / name / f"{name}_000001.jpg"))
        assert image.shape[:2] == IMAGE_HW
        assert np.all(meta["img_width"] == IMAGE_HW[1]) and np.all(meta["img_height"] == IMAGE_HW[0])
        assert meta["img_width"].shape == (FRAMES,)
        # Human3.6M's focal length (~1145 px at 1000 px wide) scaled to the width, principal point near the centre.
        assert np.allclose(meta["f"], 1145.0 * IMAGE_HW[1] / 1000.0, rtol=0.01)
        assert np.all(np.abs(meta["c"] - (np.array(IMAGE_HW[::-1]) - 1) / 2.0) < 0.01 * IMAGE_HW[1])
        # Millimetres, z up, the floor at z = 0; the camera 3.5-5 m away horizontally, 1.4-1.8 m high.
        joints = meta["pose3d_world"]
        assert joints[..., 2].min() > -50.0 and 1200.0 < joints[:, HEAD, 2].max() < 2300.0
        assert 3000.0 < np.linalg.norm(meta["T"][:2]) < 5500.0 and 1400.0 <= meta["T"][2] <= 1800.0
    manifest = json.loads((h36m_dir / "synthetic_manifest_h36m.json").read_text())
    assert manifest["format"] == "h36m" and manifest["frames_per_sequence"] == FRAMES


def test_projected_joints_land_on_the_rendered_person(h36m_dir: Path, synthetic_body_model_dir: Path) -> None:
    """The upstream projection of pose3d_world falls on the person's pixels of the written frames."""
    subject, action = SUBJECTS[0], ACTIONS[1]
    generator = H36MGenerator(synthetic_body_model_dir, [], FRAMES, 0, h36m_dir, IMAGE_HW)
    try:
        for camera in (1, 2, 3, 4):
            name = folder(subject, action, camera)
            meta = load(h36m_dir, name)
            _, _, images, masks = generator.render_sequence(subject, action, 1, camera)
            for n in range(FRAMES):
                # The mask belongs to the written frame: its JPEG (quality 90) is the render's, byte for byte.
                ok, encoded = cv2.imencode(".jpg", images[n][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
                assert ok and encoded.tobytes() == (h36m_dir / "data" / name / f"{name}_{n + 1:06d}.jpg").read_bytes()
                uv, depth = project(meta["pose3d_world"][n], meta)
                assert np.all(depth > 2000.0)
                assert np.all((uv >= 0) & (uv <= np.array(IMAGE_HW[::-1]) - 1))
                grown = cv2.dilate(masks[n].astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # 2 px
                pixels = np.rint(uv).astype(int)
                on_person = grown[pixels[:, 1], pixels[:, 0]]
                assert on_person.all(), f"{name} frame {n}: joints {np.flatnonzero(~on_person)} off the person"
                # The silhouette spans the joints' extent (the Head joint sits near the top of the skull: 2 px).
                rows = np.flatnonzero(masks[n].any(axis=1))
                assert rows[0] <= uv[:, 1].min() + 2.0 and rows[-1] >= uv[:, 1].max() - 2.0
    finally:
        generator.close()


def test_four_cameras_see_the_person_from_different_sides(h36m_dir: Path) -> None:
    for subject, action in itertools.product(SUBJECTS, ACTIONS):
        metas = [load(h36m_dir, folder(subject, action, camera)) for camera in (1, 2, 3, 4)]
        pelvis = metas[0]["pose3d_world"][0, PELVIS]
        for meta in metas[1:]:
            assert np.array_equal(meta["pose3d_world"], metas[0]["pose3d_world"])  # one motion, 4 views
        directions = np.stack([m["T"][:2] - pelvis[:2] for m in metas])
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        for i, j in itertools.combinations(range(4), 2):
            assert np.degrees(np.arccos(np.clip(directions[i] @ directions[j], -1, 1))) > 45.0
        # Seen from the front the left hip is right of the right hip in the image; from the back, left of it.
        sides = []
        for meta in metas:
            uv, _ = project(meta["pose3d_world"][0], meta)
            sides.append(np.sign(uv[L_HIP, 0] - uv[R_HIP, 0]))
        assert {-1.0, 1.0} <= set(sides), sides
    # Human3.6M calibrates per subject: the cameras are the same in all of a subject's sequences.
    for subject, camera in itertools.product(SUBJECTS, (1, 2, 3, 4)):
        first, second = (load(h36m_dir, folder(subject, a, camera)) for a in ACTIONS)
        assert all(np.array_equal(first[k], second[k]) for k in ("R", "T", "f", "c"))


def test_same_seed_same_bytes_whatever_the_workers(
    h36m_dir: Path, tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    """A folder is a pure function of its ids: a smaller run with 2 workers writes the same bytes for it."""
    summary = make_h36m(tmp_path, SUBJECTS[:1], ACTIONS[:1], FRAMES, seed=0, workers=2,
                        human_model_path=synthetic_body_model_dir, progress=False)  # fmt: skip
    assert summary["folders"] == 4 and summary["images"] == 4 * FRAMES
    again = all_files(tmp_path)
    first = {
        k: v for k, v in all_files(h36m_dir).items() if k.startswith(f"data/s_{SUBJECTS[0]:02d}_act_{ACTIONS[0]:02d}")
    }
    assert again == first
    other = make_h36m(tmp_path / "seed1", SUBJECTS[:1], ACTIONS[:1], 1, seed=1, workers=1,
                      human_model_path=synthetic_body_model_dir, progress=False)  # fmt: skip
    assert other["images"] == 4
    name = folder(SUBJECTS[0], ACTIONS[0], 1)
    assert not np.array_equal(
        load(tmp_path / "seed1", name)["pose3d_world"][0], load(tmp_path, name)["pose3d_world"][0]
    )
    # ensure_h36m leaves a finished run with the same settings alone.
    stamp = (tmp_path / "data" / name / "h36m_meta.mat").stat().st_mtime_ns
    ensure_h36m(tmp_path, SUBJECTS[:1], ACTIONS[:1], FRAMES, seed=0, human_model_path=synthetic_body_model_dir)
    assert (tmp_path / "data" / name / "h36m_meta.mat").stat().st_mtime_ns == stamp


def test_cli_writes_h36m(tmp_path: Path, synthetic_body_model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["--out", str(tmp_path), "--num-images", "1", "--format", "h36m", "--subjects", "11", "--actions", "9",
            "--workers", "1", "--human-model-path", str(synthetic_body_model_dir)]  # fmt: skip
    assert cli_main(argv) == 0
    assert "4 sequence folders, 4 frames" in capsys.readouterr().out
    assert (tmp_path / "data" / folder(11, 9, 4) / f"{folder(11, 9, 4)}_000001.jpg").is_file()
    for bad in (["--subjects", "2"], ["--actions", "1"], ["--actions", "2,2"]):
        code = run_cli(cli_main, ["--out", str(tmp_path / "bad"), "--num-images", "1", "--format", "h36m", *bad],
                       prog="make_synthetic_dataset")  # fmt: skip
        assert code == 2
    with pytest.raises(SystemExit):  # argparse's own error (its usage and message), as for any bad option
        cli_main(["--out", str(tmp_path / "bad"), "--num-images", "1", "--format", "h36m", "--actions", "x"])
