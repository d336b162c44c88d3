"""The several-people demo: `demo.py --bboxes` (and the detector's people) on a rendered image of three stand-in
people, checked against the single-person pipeline run on each box, and its one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from common.engine.cli import USAGE_EXIT_CODE, run_cli
from common.engine.snapshot import read_snapshot
from common.utils.render import MeshRenderer, MeshSpec
from demo import demo as demo_script
from demo.camera import PinholeCamera, person_crop
from demo.detector import COCO_PERSON_LABEL
from demo.inference import build_model, predict_person
from demo.people import PEOPLE_FILES, detect_people, person_file_stem, select_people_boxes
from main.config import Config
from main.model import get_family
from tool.make_synthetic_video import pose_synthetic_people, render_synthetic_video

IMG_HW = (120, 160)


def _run(argv: list[str]) -> int:
    return run_cli(demo_script.main, argv, prog="demo.py", user_errors=demo_script.USER_ERRORS)


@pytest.fixture(scope="module")
def three_people(synthetic_body_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A rendered frame of three walking stand-in people (PNG) and their boxes (3, 4) xywh."""
    people = pose_synthetic_people(synthetic_body_model_dir, frames=1, people=3, size_hw=IMG_HW)
    frame = render_synthetic_video(people).frames[0]
    path = tmp_path_factory.mktemp("img") / "three_people.png"
    cv2.imwrite(str(path), frame[..., ::-1])
    return path, people.boxes_xywh[0]


def _obj_vertices(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    return np.array([[float(v) for v in line.split()[1:]] for line in lines if line.startswith("v ")])


def _project(points: np.ndarray, focal, princpt) -> np.ndarray:
    camera = PinholeCamera(tuple(focal), tuple(princpt))
    pixels, _ = cv2.projectPoints(points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), camera.matrix(), None)
    return pixels.reshape(-1, 2)


def test_people_demo_matches_the_single_person_pipeline_on_each_box(
    tiny_cfg: Config, snapshot_file: Path, three_people: tuple[Path, np.ndarray], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    image_path, boxes = three_people
    entries = [boxes[0].tolist(), {"bbox": boxes[1].tolist()}, {"bbox": boxes[2].tolist(), "score": 1.0}]
    boxes_file = tmp_path / "boxes.json"
    boxes_file.write_text(json.dumps(entries))
    out = tmp_path / "out"
    argv = ["--img", str(image_path), "--ckpt", str(snapshot_file), "--bboxes", str(boxes_file), "--out", str(out)]
    assert _run(argv) == 0, capsys.readouterr().err
    assert "3 people from" in capsys.readouterr().out

    stems = [person_file_stem(k, box) for k, box in enumerate(boxes)]
    expected = {*PEOPLE_FILES.values(), *(f"{s}.obj" for s in stems), *(f"{s}_smplx_param.json" for s in stems)}
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    assert stems[0] == "person00_box_" + "_".join(str(round(float(v))) for v in boxes[0])

    # The oracle: the single-person pipeline on each box, model loaded separately.
    image = cv2.imread(str(image_path))[..., ::-1].copy()
    view = get_family(tiny_cfg).mesh_view(tiny_cfg)
    model = build_model(tiny_cfg, read_snapshot(snapshot_file)["network"], torch.device("cpu"))
    shared_focal = 0.5 * IMG_HW[1] / math.tan(math.radians(30.0))  # the default 60-degree view across 160 px
    union = np.zeros(IMG_HW, dtype=bool)
    with MeshRenderer(IMG_HW[1], IMG_HW[0]) as renderer:
        for k, (stem, box) in enumerate(zip(stems, boxes, strict=True)):
            crop = person_crop(box, IMG_HW, tiny_cfg.model.input_img_shape)
            single = predict_person(model, image, crop, tiny_cfg.model, view, torch.device("cpu"))
            params = json.loads((out / f"{stem}_smplx_param.json").read_text())
            assert params["person_index"] == k and params["person_bbox_xywh"] == pytest.approx(box.tolist())
            for name, key in view.param_keys.items():
                target = "crop_cam_trans" if name == "cam_trans" else name  # the crop's: the single demo's value
                np.testing.assert_allclose(params[target], single.outputs[key], atol=2e-4, err_msg=name)
            np.testing.assert_allclose(params["crop_focal"], single.camera_img.focal, rtol=1e-6)
            np.testing.assert_allclose(params["crop_princpt"], single.camera_img.princpt, rtol=1e-6)
            np.testing.assert_allclose(params["focal"], [shared_focal] * 2, rtol=1e-6)  # everyone shares it
            assert params["princpt"] == [79.5, 59.5]
            # The OBJ is the single mesh moved by one translation: the cam_trans change.
            single_mesh = single.outputs[view.mesh_key].astype(np.float64)
            mesh = _obj_vertices(out / f"{stem}.obj")
            shift = np.subtract(params["cam_trans"], params["crop_cam_trans"])
            np.testing.assert_allclose(mesh - single_mesh, np.broadcast_to(shift, mesh.shape), atol=2e-3)
            # Its bounding-box centre lands where the single demo's camera shows it; the rest within residual_px.
            pivot, single_pivot = (mesh.min(0) + mesh.max(0)) / 2, (single_mesh.min(0) + single_mesh.max(0)) / 2
            shared_px = _project(pivot, params["focal"], params["princpt"])
            np.testing.assert_allclose(
                shared_px, _project(single_pivot, single.camera_img.focal, single.camera_img.princpt), atol=0.05
            )
            error = _project(mesh, params["focal"], params["princpt"]) - _project(
                single_mesh, single.camera_img.focal, single.camera_img.princpt
            )
            assert params["residual_px"] == pytest.approx(np.linalg.norm(error, axis=1).max(), abs=0.05)
            spec = MeshSpec(single_mesh, view.faces)
            union |= renderer.render(spec, single.camera_img.focal, single.camera_img.princpt).mask

    # The overlay changes the pixels the single demo's renders cover, and only those: elsewhere it is the image
    # through the same JPEG encoding, but for the 8x8 JPEG blocks that hold some mesh.
    overlay = cv2.imread(str(out / PEOPLE_FILES["overlay"])).astype(np.float32)
    _, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    changed = np.abs(overlay - cv2.imdecode(encoded, cv2.IMREAD_COLOR).astype(np.float32)).max(-1) > 30
    inside = cv2.erode(union.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    near = cv2.dilate(union.astype(np.uint8), np.ones((17, 17), np.uint8)).astype(bool)
    assert inside.sum() > 100 and changed[inside].mean() > 0.9 and changed[~near].mean() < 0.01
    side = cv2.imread(str(out / PEOPLE_FILES["side_view"]))
    assert side.shape == (*IMG_HW, 3) and (side.min(-1) < 200).mean() > 0.005


def test_the_detector_path_takes_every_person(
    snapshot_file: Path, three_people: tuple[Path, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import demo.people

    image_path, boxes = three_people
    xyxy = np.concatenate([boxes[:2, :2], boxes[:2, :2] + boxes[:2, 2:]], axis=1).tolist()
    detections = {
        "boxes": torch.tensor([*xyxy, [0.0, 0.0, 50.0, 50.0]]),
        "labels": torch.tensor([1, 1, 18]),
        "scores": torch.tensor([0.7, 0.9, 0.99]),
    }  # fmt: skip  (two people and a dog)
    monkeypatch.setattr(demo.people, "load_person_detector", lambda path, device: lambda images: [detections])
    out = tmp_path / "out"
    argv = ["--img", str(image_path), "--ckpt", str(snapshot_file), "--detector-weights", "any.pth", "--out", str(out)]
    assert _run([*argv, "--focal", "300"]) == 0, capsys.readouterr().err
    assert "2 people from the detector (2 people, scores 0.90, 0.70)" in capsys.readouterr().out
    names = sorted(p.name for p in out.glob("*.obj"))
    assert names == sorted(f"{person_file_stem(k, boxes[1 - k])}.obj" for k in range(2))  # best first
    params = json.loads(next(out.glob("person00_*.json")).read_text())
    assert params["focal"] == [300.0, 300.0]


def test_select_people_boxes_keeps_every_person_above_the_score() -> None:
    detections = {
        "boxes": torch.tensor([[0, 0, 10, 20], [5, 5, 15, 45], [1, 1, 2, 2], [0, 0, 99, 99]], dtype=torch.float32),
        "labels": torch.tensor([COCO_PERSON_LABEL, COCO_PERSON_LABEL, COCO_PERSON_LABEL, 62]),
        "scores": torch.tensor([0.6, 0.8, 0.3, 0.99]),
    }
    found = select_people_boxes(detections, min_score=0.5)
    assert [score for _, score in found] == pytest.approx([0.8, 0.6])
    np.testing.assert_allclose([box for box, _ in found], [[5, 5, 10, 40], [0, 0, 10, 20]])  # xyxy -> xywh
    image = np.zeros((30, 40, 3), dtype=np.uint8)
    assert len(detect_people(lambda images: [detections], image, torch.device("cpu"), 0.2)) == 3


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("[[1, 2, 3, 4], [1, 2, 3]]", ["boxes.json: entry 1 is not [x, y, w, h]"]),
        ('{"bbox": [1, 2, 3, 4]}', ["boxes.json: expected a list of boxes"]),
        ('[[1, 2, 3, 4], {"bbox": [0, 0, -3, 4]}]', ["entry 1", "width and height must be positive"]),
        ("[[1, 2", ["boxes.json: not a readable JSON file"]),
        ("[]", ["boxes.json: the list holds no box"]),
        ("[[10, 10, 20, 20], [500, 10, 20, 20]]", ["box 1 [500.0, 10.0, 20.0, 20.0] (x,y,w,h) lies outside"]),
    ],
)
def test_bad_boxes_files_end_with_one_line(
    content: str, fragments: list[str], snapshot_file: Path, three_people: tuple[Path, np.ndarray], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    boxes_file = tmp_path / "boxes.json"
    boxes_file.write_text(content)
    argv = ["--img", str(three_people[0]), "--ckpt", str(snapshot_file), "--bboxes", str(boxes_file)]
    assert _run([*argv, "--out", str(tmp_path / "out")]) == USAGE_EXIT_CODE
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("demo.py: error: ") and all(f in err[-1] for f in fragments), err
    assert not (tmp_path / "out").exists()


def test_people_flags_do_not_mix_with_one_person(
    snapshot_file: Path, three_people: tuple[Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--img", str(three_people[0]), "--ckpt", str(snapshot_file), "--out", str(tmp_path / "out")]
    assert _run([*argv, "--bbox", "1,2,3,4", "--focal", "500"]) == USAGE_EXIT_CODE
    assert "--focal and --fov set the camera several people share" in capsys.readouterr().err
    assert _run([*argv, "--bbox", "1,2,3,4", "--bboxes", "b.json"]) == USAGE_EXIT_CODE
    assert "not allowed with argument" in capsys.readouterr().err
    assert _run([*argv, "--bboxes", str(tmp_path / "none.json")]) == USAGE_EXIT_CODE
    assert "boxes file not found" in capsys.readouterr().err
