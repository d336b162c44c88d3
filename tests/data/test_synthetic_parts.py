"""Synthetic hand crops in FreiHAND's layout and face crops in FFHQ's (data/Synthetic/freihand_writer.py,
ffhq_writer.py, tool/make_synthetic_dataset.py --format).

The files are read here with json and the body-model layers only: the layout is checked against the format's
specification (Hand4Whole's Pose2Pose readers), not against the project's own loaders.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from scipy.spatial.transform import Rotation

from common.body_models.layers import get_body_models
from common.engine.cli import run_cli
from data.Synthetic import ensure_ffhq, ensure_freihand, make_freihand
from data.Synthetic.ffhq_writer import FFHQGenerator
from data.Synthetic.freihand_writer import FreiHANDGenerator
from tool.make_synthetic_dataset import main as cli_main

NUM_HANDS, NUM_FACES = 4, 3
# MANO's 16 joints in the layer's order, then smplx's fingertip vertices (thumb, index, middle, ring, pinky).
MANO_ORDER = ["Wrist"] + [f"{f}_{k}" for f in ("Index", "Middle", "Pinky", "Ring", "Thumb") for k in (1, 2, 3)]
MANO_ORDER += [f"{f}_4" for f in ("Thumb", "Index", "Middle", "Ring", "Pinky")]
FREIHAND_ORDER = ["Wrist"] + [f"{f}_{k}" for f in ("Thumb", "Index", "Middle", "Ring", "Pinky") for k in (1, 2, 3, 4)]
TIP_VERTICES = [744, 320, 443, 554, 671]  # smplx.vertex_ids['mano']


def read(path: Path) -> object:
    return json.loads(path.read_text())


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def pixels_on_mask(points_px: np.ndarray, mask: np.ndarray, dilate: int = 0) -> np.ndarray:
    """(N,) bool for the in-image points: whether the pixel nearest each lies on the mask dilated by ``dilate`` px."""
    if dilate:
        mask = cv2.dilate(mask.astype(np.uint8), np.ones((2 * dilate + 1,) * 2, np.uint8)) > 0
    height, width = mask.shape
    uv = np.rint(points_px).astype(int)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
    return mask[uv[inside, 1], uv[inside, 0]]


def check_silhouette(vertices_px: np.ndarray, mask: np.ndarray, min_vertices: int) -> None:
    """The projected vertices fall on the rendered silhouette, and their extent is the silhouette's.

    A vertex on the outline rounds to a pixel outside the mask about half the time (the thin fingers have many),
    so the exact mask holds most vertices and the mask grown by one pixel all of them. At a sharp fingertip the
    rasterised silhouette may stop short of the apex vertex by up to two pixels, hence the extent's tolerance; a
    misregistration of a few pixels or a wrong focal length fails the dilated count or the extent.
    """
    on_mask, near_mask = pixels_on_mask(vertices_px, mask), pixels_on_mask(vertices_px, mask, dilate=1)
    assert on_mask.size >= min_vertices and on_mask.mean() > 0.85 and near_mask.mean() > 0.995
    rows, cols = np.nonzero(mask)
    mask_low, mask_high = np.array([cols.min(), rows.min()]), np.array([cols.max(), rows.max()])
    height, width = mask.shape
    limit = np.array([width - 1, height - 1])
    seen = vertices_px[np.all((vertices_px >= 0) & (vertices_px <= limit), axis=1)]
    # The silhouette reaches the extent of the vertices in the image and stays within that of all of them.
    assert np.all(mask_low <= seen.min(axis=0) + 2.0) and np.all(mask_high >= seen.max(axis=0) - 2.0)
    assert np.all(mask_low >= np.clip(vertices_px.min(axis=0), 0, limit) - 2.0)
    assert np.all(mask_high <= np.clip(vertices_px.max(axis=0), 0, limit) + 2.0)


def projected(points_cam: np.ndarray, camera: dict) -> np.ndarray:
    points = np.asarray(points_cam, dtype=np.float64)
    return points[:, :2] / points[:, 2:] * np.asarray(camera["focal"]) + np.asarray(camera["princpt"])


def pose_mano(layer, mano_param: dict) -> tuple[np.ndarray, np.ndarray]:
    """The file's hand as Hand4Whole poses it: (778, 3) vertices and 21 joints in FreiHAND's order, metres."""
    row = {k: torch.tensor(v, dtype=torch.float32).reshape(1, -1) for k, v in mano_param.items()}
    with torch.no_grad():
        out = layer(global_orient=row["pose"][:, :3], hand_pose=row["pose"][:, 3:], betas=row["shape"],
                    transl=row["trans"])  # fmt: skip
    vertices = out.vertices[0].numpy()
    joints = np.concatenate([out.joints[0].numpy(), vertices[TIP_VERTICES]])
    return vertices, joints[[MANO_ORDER.index(n) for n in FREIHAND_ORDER]]


def pose_flame(layer, flame_param: dict) -> tuple[np.ndarray, np.ndarray]:
    """The file's face as Hand4Whole poses it (neck and eyes at rest): (5023, 3) vertices, (73, 3) joints."""
    row = {k: torch.tensor(v, dtype=torch.float32).reshape(1, -1) for k, v in flame_param.items()}
    rest = torch.zeros(1, 3)
    with torch.no_grad():
        out = layer(global_orient=row["root_pose"], jaw_pose=row["jaw_pose"], betas=row["shape"],
                    expression=row["expr"], transl=row["trans"], neck_pose=rest, leye_pose=rest,
                    reye_pose=rest)  # fmt: skip
    return out.vertices[0].numpy(), out.joints[0].numpy()


@pytest.fixture(scope="module")
def freihand_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("FreiHAND")
    make_freihand(root, NUM_HANDS, "eval", seed=0, human_model_path=synthetic_body_model_dir, progress=False)
    return root


@pytest.fixture(scope="module")
def ffhq_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("FFHQ")  # through the command line, which calls make_ffhq
    argv = ["--out", str(root), "--num-images", str(NUM_FACES), "--format", "ffhq", "--workers", "1",
            "--human-model-path", str(synthetic_body_model_dir)]  # fmt: skip
    assert run_cli(cli_main, argv) == 0
    return root


def test_freihand_files_have_the_keys_of_the_layout(freihand_dir: Path) -> None:
    data_dir = freihand_dir / "data"
    coco = COCO(str(data_dir / "freihand_eval_coco.json"))
    params = read(data_dir / "freihand_eval_data.json")
    rootnet = {r["image_id"]: r for r in read(freihand_dir / "rootnet_output" / "bbox_root_freihand_output.json")}
    assert sorted(coco.getImgIds()) == list(range(NUM_HANDS)) == sorted(rootnet)
    for ann in coco.loadAnns(coco.getAnnIds()):
        image = coco.loadImgs(ann["image_id"])[0]
        assert image["file_name"] == f"evaluation/rgb/{ann['image_id']:08d}.jpg"
        assert cv2.imread(str(data_dir / image["file_name"])).shape == (image["height"], image["width"], 3)
        assert (image["height"], image["width"]) == (224, 224)
        entry = params[str(image["db_idx"])]
        assert set(entry) >= {"cam_param", "mano_param", "joint_3d", "scale"}
        assert {k: len(v) for k, v in entry["cam_param"].items()} == {"focal": 2, "princpt": 2}
        assert {k: len(v) for k, v in entry["mano_param"].items()} == {"pose": 48, "shape": 10, "trans": 3}
        assert 500 <= entry["cam_param"]["focal"][0] <= 700 and np.abs(entry["mano_param"]["shape"]).max() <= 2
        joints = np.asarray(entry["joint_3d"])
        assert joints.shape == (21, 3) and 0.3 < joints[0, 2] < 0.95  # metres: the wrist 0.4-0.8 m away
        assert entry["scale"] == pytest.approx(np.linalg.norm(joints[9] - joints[10]))  # Middle_1 -> Middle_2
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 224 and y + h <= 224 and min(w, h) > 20
        root = rootnet[ann["image_id"]]
        np.testing.assert_allclose(root["root_cam"], joints[0], atol=1e-6)  # RootNet's root: the wrist
        rx, ry, rw, rh = root["bbox"]  # square, 1.25 x the longer side, about the same centre
        np.testing.assert_allclose([rw, rh, rx + rw / 2, ry + rh / 2], [1.25 * max(w, h)] * 2 + [x + w / 2, y + h / 2],
                                   atol=1e-3)  # fmt: skip
    manifest = read(freihand_dir / "synthetic_manifest_freihand_eval.json")
    assert manifest["num_images"] == NUM_HANDS and manifest["format"] == "freihand"


def test_freihand_files_reproduce_the_rendered_hand(freihand_dir: Path, synthetic_body_model_dir: Path) -> None:
    layer = get_body_models(synthetic_body_model_dir).mano("right")
    params = read(freihand_dir / "data" / "freihand_eval_data.json")
    with FreiHANDGenerator(synthetic_body_model_dir, "eval", 0, "/unused") as generator:
        for index in range(NUM_HANDS):
            hand, image, mask = generator.render(index)
            written = cv2.imread(str(freihand_dir / "data" / f"evaluation/rgb/{index:08d}.jpg"))[..., ::-1]
            assert np.abs(written.astype(float) - image).mean() < 4.0  # the same crop, up to JPEG's loss
            entry = params[str(index)]
            vertices, joints = pose_mano(layer, entry["mano_param"])
            np.testing.assert_allclose(vertices, hand.vertices, atol=1e-4)
            np.testing.assert_allclose(joints, np.asarray(entry["joint_3d"]), atol=1e-4)
            check_silhouette(projected(vertices, entry["cam_param"]), mask, min_vertices=700)
            joints_on_hand = pixels_on_mask(projected(np.asarray(entry["joint_3d"]), entry["cam_param"]), mask, 2)
            assert joints_on_hand.size >= 18 and joints_on_hand.all(), f"crop {index}"


def test_freihand_hands_are_seen_from_all_sides(synthetic_body_model_dir: Path) -> None:
    # The palm's normal (the root rotation's image of the rest palm normal, -y) in the camera frame: over a few
    # crops it points both towards the camera (palm seen) and away from it (back of the hand seen).
    palm_towards_camera = []
    with FreiHANDGenerator(synthetic_body_model_dir, "train", 7, "/unused") as generator:
        for index in range(12):
            hand, _, _ = generator.render(index)
            normal = Rotation.from_rotvec(hand.pose[:3]).apply([0.0, -1.0, 0.0])
            palm_towards_camera.append(normal[2] < 0)
    assert any(palm_towards_camera) and not all(palm_towards_camera)


def test_ffhq_files_have_the_keys_of_the_layout(ffhq_dir: Path) -> None:
    data_dir = ffhq_dir / "data"
    coco = COCO(str(data_dir / "FFHQ.json"))
    params = read(data_dir / "flame_param.json")
    assert sorted(coco.getAnnIds()) == list(range(NUM_FACES)) and sorted(params, key=int) == [
        str(i) for i in range(NUM_FACES)
    ]
    for ann in coco.loadAnns(coco.getAnnIds()):
        image = coco.loadImgs(ann["image_id"])[0]
        pixels = cv2.imread(str(data_dir / "images" / image["file_name"]))
        assert pixels.shape == (image["height"], image["width"], 3) == (256, 256, 3)
        assert len(ann["keypoints"]) == 73 * 2 and len(ann["keypoints_valid"]) == 73 and len(ann["bbox"]) == 4
        assert sum(ann["keypoints_valid"][5:]) == 68  # the face's landmarks are all in the crop
        entry = params[str(ann["id"])]
        assert {k: len(v) for k, v in entry["flame_param"].items()} == {
            "root_pose": 3, "jaw_pose": 3, "shape": 10, "expr": 10, "trans": 3
        }  # fmt: skip
        assert {k: len(v) for k, v in entry["cam_param"].items()} == {"focal": 2, "princpt": 2}
        assert np.abs(entry["flame_param"]["shape"]).max() <= 2 and np.abs(entry["flame_param"]["expr"]).max() <= 2
        # FLAME's face looks along +z of its rest frame; turned into the camera frame it looks back at the camera
        # (-z), within the yaw (40 degrees) and pitch (20) drawn.
        facing = Rotation.from_rotvec(entry["flame_param"]["root_pose"]).apply([0.0, 0.0, 1.0])
        assert np.degrees(np.arccos(-facing[2])) < 45.0
    assert read(ffhq_dir / "synthetic_manifest_ffhq.json")["num_images"] == NUM_FACES


def test_ffhq_files_reproduce_the_rendered_face(ffhq_dir: Path, synthetic_body_model_dir: Path) -> None:
    layer = get_body_models(synthetic_body_model_dir).flame()
    document, params = read(ffhq_dir / "data" / "FFHQ.json"), read(ffhq_dir / "data" / "flame_param.json")
    with FFHQGenerator(synthetic_body_model_dir, 0, "/unused") as generator:
        for ann in document["annotations"]:
            face, image, mask = generator.render(ann["image_id"])
            written = cv2.imread(str(ffhq_dir / "data" / "images" / f"{ann['image_id']:05d}.png"))[..., ::-1]
            assert np.array_equal(written, image)
            entry = params[str(ann["id"])]
            vertices, joints = pose_flame(layer, entry["flame_param"])
            np.testing.assert_allclose(vertices, face.vertices, atol=1e-4)
            keypoints = projected(joints, entry["cam_param"])
            np.testing.assert_allclose(np.reshape(ann["keypoints"], (73, 2)), keypoints, atol=1e-3)
            check_silhouette(projected(vertices, entry["cam_param"]), mask, min_vertices=3000)
            assert pixels_on_mask(keypoints[5:], mask, 2).all()  # the 68 landmarks lie on the rendered face


def test_a_crop_depends_on_its_seed_and_index_only(
    freihand_dir: Path, ffhq_dir: Path, synthetic_body_model_dir: Path
) -> None:
    # A fresh generator making one crop alone writes the bytes of the run that made all of them in order: what
    # lets any worker make any crop. Another seed gives another crop.
    with FreiHANDGenerator(synthetic_body_model_dir, "eval", 0, freihand_dir / "again") as generator:
        generator.generate(2)
    with FreiHANDGenerator(synthetic_body_model_dir, "eval", 1, "/unused") as generator:
        _, other, _ = generator.render(2)
    name = "data/evaluation/rgb/00000002.jpg"
    assert (freihand_dir / "again" / name).read_bytes() == (freihand_dir / name).read_bytes()
    assert not np.array_equal(other, cv2.imread(str(freihand_dir / name))[..., ::-1])
    with FFHQGenerator(synthetic_body_model_dir, 0, ffhq_dir / "again") as generator:
        generator.generate(1)
    name = "data/images/00001.png"
    assert (ffhq_dir / "again" / name).read_bytes() == (ffhq_dir / name).read_bytes()


@pytest.mark.slow
def test_freihand_same_bytes_for_one_and_two_workers(
    freihand_dir: Path, synthetic_body_model_dir: Path, tmp_path: Path
) -> None:
    summary = make_freihand(tmp_path, NUM_HANDS, "eval", seed=0, workers=2, human_model_path=synthetic_body_model_dir,
                            progress=False)  # fmt: skip
    assert summary["images"] == NUM_HANDS
    reference = {k: v for k, v in all_files(freihand_dir).items() if not k.startswith("again")}
    assert all_files(tmp_path) == reference


def test_ensure_reuses_a_complete_dataset(
    freihand_dir: Path, ffhq_dir: Path, synthetic_body_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*args, **kwargs):
        raise AssertionError("the writer ran although the dataset is complete")

    monkeypatch.setattr("data.Synthetic.freihand_writer.make_freihand", must_not_run)
    monkeypatch.setattr("data.Synthetic.ffhq_writer.make_ffhq", must_not_run)
    models = synthetic_body_model_dir
    assert ensure_freihand(freihand_dir, NUM_HANDS, "eval", human_model_path=models) == freihand_dir
    assert ensure_ffhq(ffhq_dir, NUM_FACES, human_model_path=models) == ffhq_dir
    with pytest.raises(AssertionError, match="the writer ran"):  # another seed is another dataset
        ensure_freihand(freihand_dir, NUM_HANDS, "eval", seed=1, human_model_path=models)
    with pytest.raises(AssertionError, match="the writer ran"):  # the train split was never made
        ensure_freihand(freihand_dir, NUM_HANDS, "train", human_model_path=models)
    with pytest.raises(AssertionError, match="the writer ran"):
        ensure_ffhq(ffhq_dir, NUM_FACES + 1, human_model_path=models)


def test_cli_rejects_options_of_another_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    for argv in (["--format", "freihand", "--split", "validation"], ["--format", "ffhq", "--split", "eval"],
                 ["--format", "ffhq", "--contact-sheet", str(tmp_path / "sheet.png")]):  # fmt: skip
        assert run_cli(cli_main, ["--out", str(out), "--num-images", "2", *argv], prog="make_synthetic_dataset") == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("make_synthetic_dataset: error: --")
    assert not out.exists()
