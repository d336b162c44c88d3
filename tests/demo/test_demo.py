"""The demo: box -> crop -> original-image camera, the person detector's box choice, the written outputs and the
one-line errors for bad input."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from common.engine.cli import USAGE_EXIT_CODE, run_cli
from common.engine.snapshot import read_snapshot, write_snapshot
from common.geometry import project_points
from common.utils.augmentation import apply_affine, process_bbox
from demo.camera import PinholeCamera, camera_through_affine, crop_camera, original_image_camera, person_crop
from demo.detector import COCO_PERSON_LABEL, detect_person, load_person_detector, select_person_box
from demo.outputs import OUTPUT_FILES
from main.config import Config, config_to_dict, load_config
from main.model import get_model

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_HW = (150, 200)  # the test image, (H, W)


def _load_demo_script():
    """demo/demo.py as a module (it is a script: `python demo/demo.py`)."""
    spec = importlib.util.spec_from_file_location("demo_script", REPO_ROOT / "demo" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo_script = _load_demo_script()


# --- geometry -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bbox", [(40.0, 30.0, 90.0, 300.0), (-50.0, 100.0, 400.0, 120.0), (600.0, 5.0, 25.0, 33.0)])
def test_original_camera_projects_where_the_crop_projection_maps_back(bbox: tuple[float, ...]) -> None:
    cfg = load_config("synthetic")
    m = cfg.model
    crop = person_crop(bbox, (480, 640), m.input_img_shape)
    camera_img = original_image_camera(m.focal, m.princpt, m.input_body_shape, crop)
    camera_crop = crop_camera(m.focal, m.princpt, m.input_body_shape, m.input_img_shape)
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(50, 3, generator=generator, dtype=torch.float64) * 0.5 + torch.tensor([0.1, -0.2, 8.0])
    in_crop = project_points(points, camera_crop.focal, camera_crop.princpt).numpy()
    in_img = project_points(points, camera_img.focal, camera_img.princpt).numpy()
    np.testing.assert_allclose(apply_affine(crop.crop2img, in_crop), in_img, atol=1e-6)
    # and the crop camera is the body-input camera scaled by the crop / body-input size
    body_px = project_points(points, m.focal, m.princpt).numpy()
    scale = np.array([m.input_img_shape[1] / m.input_body_shape[1], m.input_img_shape[0] / m.input_body_shape[0]])
    np.testing.assert_allclose(body_px * scale, in_crop, atol=1e-6)


def test_original_camera_is_hand4whole_demo_formula_for_the_default_geometry() -> None:
    m = load_config(None).model  # focal 5000, princpt (96, 128), body 256x192, crop 512x384
    crop = person_crop((193.0, 120.0, 323.0, 275.0), (720, 1280), m.input_img_shape)
    x, y, w, h = (float(v) for v in crop.bbox_xywh_img)
    camera = original_image_camera(m.focal, m.princpt, m.input_body_shape, crop)
    np.testing.assert_allclose(camera.focal, (5000 / 192 * w, 5000 / 256 * h), rtol=1e-9)
    np.testing.assert_allclose(camera.princpt, (96 / 192 * w + x, 128 / 256 * h + y), rtol=1e-9)
    assert crop_camera(m.focal, m.princpt, m.input_body_shape, m.input_img_shape) == PinholeCamera(
        (10000.0, 10000.0), (192.0, 256.0)
    )


def test_person_crop_processes_the_box_as_the_datasets_do() -> None:
    crop = person_crop((100.0, 50.0, 60.0, 200.0), (480, 640), (256, 192))
    np.testing.assert_array_equal(crop.bbox_xywh_img, process_bbox((100.0, 50.0, 60.0, 200.0), 640, 480))
    assert crop.bbox_xywh_img[2] / crop.bbox_xywh_img[3] == pytest.approx(0.75)
    assert person_crop((700.0, 10.0, 50.0, 50.0), (480, 640), (256, 192)) is None  # right of the image


def test_camera_through_affine_rejects_rotation() -> None:
    angle = np.deg2rad(10.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0]])
    with pytest.raises(ValueError, match="scale and a shift"):
        camera_through_affine(PinholeCamera((100.0, 100.0), (50.0, 50.0)), rotation)


# --- detector -------------------------------------------------------------------------------------------------

DOG, CHAIR = 18, 62  # COCO labels of other classes


def _detections(boxes: list[list[float]], labels: list[int], scores: list[float]) -> dict[str, torch.Tensor]:
    return {"boxes": torch.tensor(boxes), "labels": torch.tensor(labels), "scores": torch.tensor(scores)}


def test_select_person_box_takes_the_best_person_and_ignores_other_classes() -> None:
    detections = _detections(
        [[0, 0, 50, 50], [10, 20, 110, 220], [30, 40, 60, 100], [5, 5, 300, 300]],
        [COCO_PERSON_LABEL, COCO_PERSON_LABEL, COCO_PERSON_LABEL, DOG],
        [0.6, 0.9, 0.7, 0.99],
    )
    box, score = select_person_box(detections)
    np.testing.assert_allclose(box, [10, 20, 100, 200])  # xyxy -> xywh
    assert score == pytest.approx(0.9)
    assert select_person_box(_detections([[0, 0, 9, 9], [1, 1, 5, 5]], [DOG, CHAIR], [0.99, 0.98])) is None
    assert select_person_box(_detections([[0, 0, 9, 9]], [COCO_PERSON_LABEL], [0.3]), min_score=0.5) is None


def test_detect_person_feeds_the_image_and_returns_the_best_person() -> None:
    seen = []

    def stub_detector(images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        seen.append(images)
        return [_detections([[1, 2, 11, 22], [0, 0, 90, 90]], [COCO_PERSON_LABEL, CHAIR], [0.8, 0.95])]

    image = np.full((30, 40, 3), 255, dtype=np.uint8)
    box, score = detect_person(stub_detector, image, torch.device("cpu"))
    np.testing.assert_allclose(box, [1, 2, 10, 20])
    assert score == pytest.approx(0.8)
    (images,) = seen
    assert len(images) == 1 and images[0].shape == (3, 30, 40) and float(images[0].max()) == 1.0


def test_detector_weights_missing_or_mismatched(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="detector weights not found"):
        load_person_detector(tmp_path / "absent.pth", torch.device("cpu"))
    wrong = tmp_path / "wrong.pth"
    torch.save({"not.a.detector.weight": torch.zeros(1)}, wrong)
    from common.engine.checkpoint import StateDictMismatchError

    with pytest.raises(StateDictMismatchError, match="unexpected key"):
        load_person_detector(wrong, torch.device("cpu"))


# --- end to end -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_cfg(synthetic_body_model_dir: Path) -> Config:
    return load_config("synthetic", [f"human_model_path={synthetic_body_model_dir}"])


@pytest.fixture(scope="module")
def snapshot_file(demo_cfg: Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight snapshot of the quickstart config, embedding that config."""
    torch.manual_seed(0)
    model = get_model(demo_cfg, "train")
    path = tmp_path_factory.mktemp("ckpt") / "snapshot_3.pth.tar"
    return write_snapshot({"epoch": 3, "network": model.state_dict(), "config": config_to_dict(demo_cfg)}, path)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smooth colour gradient: JPEG keeps it within a few levels, so rendered pixels stand out."""
    path = tmp_path_factory.mktemp("img") / "person.png"
    y, x = np.mgrid[0 : IMAGE_HW[0], 0 : IMAGE_HW[1]]
    image = np.stack([x * 255 // IMAGE_HW[1], y * 255 // IMAGE_HW[0], np.full_like(x, 40)], axis=-1)
    cv2.imwrite(str(path), image.astype(np.uint8))
    return path


def _run(argv: list[str]) -> int:
    return run_cli(demo_script.main, argv, prog="demo.py", user_errors=demo_script.USER_ERRORS)


def _read_outputs(out: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES.values())
    params = json.loads((out / OUTPUT_FILES["params"]).read_text())
    lines = (out / OUTPUT_FILES["mesh"]).read_text().splitlines()
    vertices = np.array([[float(v) for v in line.split()[1:]] for line in lines if line.startswith("v ")])
    faces = np.array([[int(i) for i in line.split()[1:]] for line in lines if line.startswith("f ")])
    return params, vertices, faces


@pytest.mark.parametrize("bbox", [None, "60,20,50,110"])
def test_demo_writes_every_output(
    bbox: str | None, demo_cfg: Config, snapshot_file: Path, image_file: Path, tmp_path: Path,
    synthetic_body_model_dir: Path, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "out"
    argv = ["--gpu", "0", "--img", str(image_file), "--out", str(out)]
    if bbox:
        argv += ["--bbox", bbox, "--ckpt", str(snapshot_file)]
    else:  # the default checkpoint: the highest-numbered snapshot of <output_dir>/model_dump
        model_dir = tmp_path / "run" / "model_dump"
        model_dir.mkdir(parents=True)
        (model_dir / "snapshot_10.pth.tar").symlink_to(snapshot_file)
        (model_dir / "snapshot_2.pth.tar").write_bytes(b"not a snapshot: picking it would fail")
        argv += [f"output_dir={tmp_path / 'run'}"]
    assert _run(argv) == 0
    stdout = capsys.readouterr().out
    assert f"checkpoint {snapshot_file if bbox else model_dir / 'snapshot_10.pth.tar'} (epoch 3)" in stdout
    params, vertices, faces = _read_outputs(out)

    crop_hw, img_hw = demo_cfg.model.input_img_shape, IMAGE_HW
    for key, shape in (("overlay_original", img_hw), ("overlay_crop", crop_hw), ("side_view", crop_hw)):
        assert cv2.imread(str(out / OUTPUT_FILES[key])).shape == (*shape, 3), key
    sizes = {"root_pose": 3, "body_pose": 63, "lhand_pose": 45, "rhand_pose": 45, "jaw_pose": 3, "shape": 10,
             "expr": 10, "cam_trans": 3, "focal": 2, "princpt": 2}  # fmt: skip
    assert {key: len(params[key]) for key in sizes} == sizes
    assert params["img_shape"] == list(img_hw)

    # The box: as given, else the whole image; processed as the datasets do; the camera follows it.
    expected_box = [60.0, 20.0, 50.0, 110.0] if bbox else [0.0, 0.0, img_hw[1], img_hw[0]]
    np.testing.assert_allclose(params["person_bbox_xywh"], expected_box)
    crop_box = process_bbox(expected_box, img_hw[1], img_hw[0])
    np.testing.assert_allclose(params["crop_bbox_xywh"], crop_box, rtol=1e-6)
    m = demo_cfg.model
    np.testing.assert_allclose(params["focal"], np.array(m.focal) * crop_box[2:] / m.input_body_shape[::-1], rtol=1e-5)

    # The obj is the camera-frame mesh: SMPL-X's vertex and face counts, in front of the camera.
    body_faces = get_model_faces(synthetic_body_model_dir)
    assert vertices.shape == (int(body_faces.max()) + 1, 3) and faces.shape == body_faces.shape
    np.testing.assert_array_equal(faces - 1, body_faces)
    assert (vertices[:, 2] > 0).all()

    # The overlay shows the mesh where the json camera projects the obj's vertices, and only there; the side view
    # is not blank.
    image = cv2.imread(str(image_file)).astype(np.float32)
    overlay = cv2.imread(str(out / OUTPUT_FILES["overlay_original"])).astype(np.float32)
    uv = np.rint(vertices[:, :2] / vertices[:, 2:] * params["focal"] + params["princpt"]).astype(int)
    uv = uv[(uv[:, 0] >= 0) & (uv[:, 0] < img_hw[1]) & (uv[:, 1] >= 0) & (uv[:, 1] < img_hw[0])]
    on_mesh = np.zeros(img_hw, dtype=np.uint8)
    on_mesh[uv[:, 1], uv[:, 0]] = 1
    near_mesh = cv2.dilate(on_mesh, np.ones((7, 7), np.uint8)).astype(bool)  # vertex pixels leave small gaps
    changed = np.abs(overlay - image).max(-1) > 40  # (H, W); JPEG moves the smooth image by a few levels
    assert on_mesh.sum() > 50 and changed[on_mesh.astype(bool)].mean() > 0.9
    assert changed[~near_mesh].mean() < 0.01
    side = cv2.imread(str(out / OUTPUT_FILES["side_view"]))
    assert (side.min(-1) < 200).mean() > 0.01


def get_model_faces(human_model_path: Path) -> np.ndarray:
    from common.body_models import get_body_models

    return get_body_models(human_model_path).faces


# --- bad input: one line, exit code 2 ---------------------------------------------------------------------------


def _expect_one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], *fragments: str) -> None:
    assert _run(argv) == USAGE_EXIT_CODE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 or (len(err) == 2 and "running on the CPU" in err[0]), err  # the CPU notice may precede
    assert err[-1].startswith("demo.py: error: "), err
    for fragment in fragments:
        assert fragment in err[-1], err


def test_bad_images(snapshot_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = ["--ckpt", str(snapshot_file), "--out", str(tmp_path / "out")]
    _expect_one_line_error(["--img", str(tmp_path / "absent.png"), *ckpt], capsys, "not found", "absent.png")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG but not really")
    _expect_one_line_error(["--img", str(garbage), *ckpt], capsys, "cannot be decoded", "garbage.png")


@pytest.mark.parametrize(
    ("bbox", "fragment"),
    [
        ("300,10,20,20", "outside the 200x150 image"),
        ("-100,-100,50,50", "outside the 200x150 image"),
        ("1,2,3", "invalid box '1,2,3'"),
        ("a,b,c,d", "invalid box 'a,b,c,d'"),
        ("0,0,-5,10", "width and height must be positive"),
        ("0,0,nan,10", "invalid box"),
    ],
)
def test_bad_boxes(
    bbox: str, fragment: str, snapshot_file: Path, image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--img", str(image_file), "--ckpt", str(snapshot_file), f"--bbox={bbox}", "--out", str(tmp_path)]
    _expect_one_line_error(argv, capsys, fragment)


def test_missing_checkpoint_or_config(
    snapshot_file: Path, image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = ["--img", str(image_file), "--out", str(tmp_path / "out")]
    _expect_one_line_error([*img, "--ckpt", str(tmp_path / "none.pth.tar")], capsys, "snapshot not found", "none.pth")
    empty = tmp_path / "empty_run"
    _expect_one_line_error([*img, f"output_dir={empty}"], capsys, "no checkpoint", "model_dump", "--ckpt")
    _expect_one_line_error(
        [*img, "--ckpt", str(snapshot_file), "--cfg", str(tmp_path / "nope.yaml")], capsys, "config file not found"
    )
    _expect_one_line_error([*img, "--ckpt", str(snapshot_file), "model.no_such_key=1"], capsys, "no_such_key")


def test_checkpoint_of_another_architecture(
    demo_cfg: Config, snapshot_file: Path, image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network = dict(read_snapshot(snapshot_file)["network"])
    network["module.extra_head.weight"] = torch.zeros(2)
    del network["face_regressor.expr_out.0.weight"]
    path = write_snapshot({"epoch": 1, "network": network, "config": config_to_dict(demo_cfg)}, tmp_path / "s.pth")
    argv = ["--img", str(image_file), "--ckpt", str(path), "--out", str(tmp_path / "out")]
    _expect_one_line_error(argv, capsys, "missing key(s): face_regressor.expr_out.0.weight", "extra_head.weight")
    assert not (tmp_path / "out").exists()


def test_bad_gpu(
    snapshot_file: Path,
    image_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--img", str(image_file), "--ckpt", str(snapshot_file), "--out", str(tmp_path / "out")]
    _expect_one_line_error([*argv, "--gpu", "x"], capsys, "argument --gpu: invalid GPU ids 'x'")
    _expect_one_line_error([*argv, "--gpu", "0,1"], capsys, "the demo runs on one GPU")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    _expect_one_line_error([*argv, "--gpu", "5"], capsys, "--gpu 5: no such GPU", "has 2")


def test_unwritable_output_folder(
    snapshot_file: Path, image_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """--out under a regular file (unwritable for root too): one line naming the folder, before the model is built,
    and nothing written."""
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"a regular file")

    def must_not_build(*args, **kwargs):
        raise AssertionError("the model was built before the output folder was checked")

    monkeypatch.setattr(demo_script, "build_model", must_not_build)
    argv = ["--img", str(image_file), "--ckpt", str(snapshot_file), "--out", str(blocker / "sub")]
    expected = f"output folder {blocker / 'sub'} cannot be created or written: Not a directory ({blocker} is a file)"
    _expect_one_line_error(argv, capsys, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"] and blocker.read_bytes() == b"a regular file"
