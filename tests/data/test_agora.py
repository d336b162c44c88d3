"""AGORA loader: a hand-written fixture in AGORA's parsed layout (720p images and 4K crops), and the synthetic set.

The server's format rules are tested in test_agora_server_format.py, the SMPL variant in test_agora_smpl.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from common.body_models import get_body_models
from common.body_models.joint_sets import JOINT_IDX, JOINTS
from common.utils.augmentation import apply_affine, crop_affine, process_bbox
from common.utils.image_io import ImageReadError
from common.utils.smplx_targets import smplx_in_camera
from data import build_dataset, build_testset
from data.AGORA.AGORA import AGORA
from data.AGORA.server_format import check_agora_prediction
from data.dataset import sample_shapes
from data.record import MissingAnnotationError
from main.config import Config, load_config
from tests.data.test_agora_server_format import load_server_file, pickle_globals

FOCAL_720P, PRINCPT_720P = 1000.0, (640.0, 360.0)
CROP_HW = (64, 48)  # tiny 4K crops, aspect 0.75
# person -> (image index, person_id, transl in metres, is_valid, betas count, crop-json affine key)
PEOPLE = [
    (0, 0, (-0.6, 0.1, 6.0), True, 10, "affine_mat"),
    (0, 1, (0.9, 0.0, 7.0), False, 10, "affine_mat"),  # is_valid false: left out
    (1, 0, (0.2, -0.1, 5.0), True, 11, "img2bb_trans"),  # a kid: 11 betas, the first 10 used
    (1, 1, (-1.0, 0.2, 8.0), True, 10, "bbox_orig"),  # crop json with bbox_orig only
]
LHAND_BOX_4K = [1200.0, 900.0, 60.0, 90.0]  # a hand-written box (xywh, 4K pixels), the same for everyone


def _smplx_output(body_models: Any, params: dict[str, list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) vertices and (137, 3) supervision joints of the neutral layer, straight from smplx."""
    names = ("global_orient", "body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose", "expression", "transl")
    inputs = {k: torch.tensor(params[k], dtype=torch.float32)[None] for k in names}
    inputs["betas"] = torch.tensor(params["betas"][:10], dtype=torch.float32)[None]
    with torch.no_grad():
        out = get_body_models(body_models).smplx("neutral")(
            **inputs, leye_pose=torch.zeros(1, 3), reye_pose=torch.zeros(1, 3)
        )
    return out.vertices[0].numpy().astype(np.float64), out.joints[0].numpy().astype(np.float64)


def _params(index: int, transl: tuple[float, ...], betas: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(index)
    values = {
        "global_orient": [np.pi, 0.0, 0.0],
        "body_pose": 0.2 * rng.standard_normal(63),
        "left_hand_pose": 0.2 * rng.standard_normal(45),
        "right_hand_pose": 0.2 * rng.standard_normal(45),
        "jaw_pose": [0.1, 0.0, 0.0],
        "leye_pose": [0.0] * 3,
        "reye_pose": [0.0] * 3,
        "expression": 0.5 * rng.standard_normal(10),
        "betas": 0.5 * rng.standard_normal(betas),
        "transl": transl,
    }
    return {k: [float(x) for x in np.asarray(v).reshape(-1)] for k, v in values.items()}


def write_agora_fixture(root: Path, split: str, body_models: Path) -> dict[tuple[int, int], dict[str, Any]]:
    """AGORA's parsed layout with 2 images and 4 persons (one invalid), both the 720p images and the 4K crops.

    Returns:
        (image index, person_id) -> {'params', 'mesh_cam', 'joint_cam', 'orig2crop'} for the checks.
    """
    focal_4k, princpt_4k = 3 * FOCAL_720P, [3 * c for c in PRINCPT_720P]
    images, annotations, truth = [], [], {}
    for image_index in (0, 1):
        name = f"ag_{split}set_fixture_{image_index:05d}"
        images.append(
            {
                "id": image_index,
                "file_name_1280x720": f"{split}/{name}_1280x720.png",
                "file_name_3840x2160": f"3840x2160/{split}/{name}.png",
                "width": 3840,
                "height": 2160,
            }
        )
        cam_path = root / "cam_params" / split / f"{name}.json"
        cam_path.parent.mkdir(parents=True, exist_ok=True)
        cam_path.write_text(json.dumps({"focal": [focal_4k, focal_4k], "princpt": princpt_4k}))
        image = np.full((720, 1280, 3), 40 + 60 * image_index, np.uint8)
        (root / split).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / split / f"{name}_1280x720.png"), image)
    for image_index, person_id, transl, is_valid, betas, key in PEOPLE:
        name = images[image_index]["file_name_3840x2160"].split("/")[-1][:-4]
        params = _params(10 * image_index + person_id, transl, betas)
        param_rel = f"smplx_params_cam/{split}/{name}/{person_id}.json"
        (root / param_rel).parent.mkdir(parents=True, exist_ok=True)
        (root / param_rel).write_text(json.dumps(params))
        mesh, all_joints = _smplx_output(body_models, params)
        joints = all_joints[JOINT_IDX]  # (137, 3) supervision joints
        proj_4k = joints[:, :2] / joints[:, 2:] * focal_4k + princpt_4k  # (137, 2)
        lo, hi = proj_4k.min(0), proj_4k.max(0)
        bbox = [*(lo - 0.1 * (hi - lo)), *((hi - lo) * 1.2)]
        annotations.append(
            {
                "id": len(annotations),
                "image_id": image_index,
                "person_id": person_id,
                "smplx_param_path": param_rel,
                "cam_param_path": f"cam_params/{split}/{name}.json",
                "gender": "female",
                "kid": betas == 11,
                "occlusion": 0.0,
                "is_valid": is_valid,
                "bbox": [float(v) for v in bbox],
                "lhand_bbox": LHAND_BOX_4K,
                "rhand_bbox": [float(v) for v in bbox],
                "face_bbox": [100.0, 100.0, 50.0, 50.0],
            }
        )
        # the 4K crop of this person, as Hand4Whole's crop tool writes it (aspect 0.75, x1.25)
        centre, size = np.array(bbox[:2]) + np.array(bbox[2:]) / 2, np.array(bbox[2:], dtype=np.float64)
        size = np.maximum(size, [size[1] * 0.75, size[0] / 0.75]) * 1.25
        scale = CROP_HW[1] / size[0]
        orig2crop = np.array(
            [[scale, 0, CROP_HW[1] / 2 - scale * centre[0]], [0, scale, CROP_HW[0] / 2 - scale * centre[1]]]
        )
        crop_dir = root / "images_3840x2160" / f"{split}_crop"
        crop_dir.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(crop_dir / f"{name}_person_id_{person_id}.png"), np.full((*CROP_HW, 3), 128, np.uint8))
        crop_info = {
            "bbox_orig": [*(centre - size / 2), *size],
            "resized_height": CROP_HW[0],
            "resized_width": CROP_HW[1],
        }
        if key != "bbox_orig":
            crop_info[key] = orig2crop.tolist()
        (crop_dir / f"{name}_person_id_{person_id}.json").write_text(json.dumps(crop_info))
        truth[image_index, person_id] = {
            "params": params,
            "mesh_cam": mesh,
            "joint_cam": joints,
            "all_joints_4k": all_joints[:, :2] / all_joints[:, 2:] * focal_4k + princpt_4k,
            "orig2crop": orig2crop,
        }
    categories = [{"id": 1, "name": "person"}]
    db = {"images": images, "annotations": annotations, "categories": categories}
    (root / f"AGORA_{split}_SMPLX.json").write_text(json.dumps(db))
    return truth


@pytest.fixture(scope="module")
def agora_root(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("agora")
    truth = {split: write_agora_fixture(root, split, synthetic_body_model_dir) for split in ("train", "validation")}
    return root, truth


def make_cfg(body_models: Path, root: Path, *overrides: str) -> Config:
    return load_config(
        None,
        [
            f"human_model_path={body_models}",
            f"data.dataset_roots={{AGORA: {root}}}",
            f"output_dir={root / 'output'}",
            "data.testset=AGORA",
            *overrides,
        ],
    )


def _check_contract(sample: tuple[dict, dict, dict], split: str, num_vertices: int, ds: AGORA) -> None:
    inputs, targets, meta = sample
    flat = {**inputs, **targets, **meta}
    shapes = sample_shapes(ds.space, num_vertices, split)
    assert set(flat) == set(shapes)
    for key, value in flat.items():
        assert tuple(value.shape) == shapes[key], key
        assert value.dtype in (np.float32, torch.float32), key
        assert np.all(np.isfinite(np.asarray(value))), key
    for key in (
        "joint_valid",
        "joint_trunc",
        "smplx_joint_valid",
        "smplx_joint_trunc",
        "smplx_pose_valid",
        "smplx_shape_valid",
        "smplx_expr_valid",
        "is_3D",
        "lhand_bbox_valid",
        "rhand_bbox_valid",
        "face_bbox_valid",
    ):
        assert set(np.unique(meta[key])) <= {0.0, 1.0}, key
    # AGORA: every joint, rotation and box is annotated, and the joint targets are the SMPL-X GT's
    assert meta["smplx_joint_valid"].all() and meta["smplx_pose_valid"].all() and meta["is_3D"] == 1
    assert meta["lhand_bbox_valid"] == 1 and meta["face_bbox_valid"] == 1 and meta["rhand_bbox_valid"] == 1
    np.testing.assert_array_equal(targets["joint_img"], targets["smplx_joint_img"])
    np.testing.assert_array_equal(meta["joint_trunc"], meta["smplx_joint_trunc"])
    assert 0.0 <= float(inputs["img"].min()) and float(inputs["img"].max()) <= 1.0


@pytest.mark.parametrize("resolution", ["1280x720", "3840x2160"])
def test_train_samples_follow_the_contract(agora_root, synthetic_body_model_dir: Path, resolution: str) -> None:
    root, _ = agora_root
    ds = build_dataset(
        "AGORA", "train", make_cfg(synthetic_body_model_dir, root, f"data.agora_resolution={resolution}")
    )
    assert len(ds) == 3, "the is_valid=false person is left out"
    for index in range(len(ds)):
        _check_contract(ds[index], "train", ds.body_models.vertex_count, ds)


def _expected_in_crop(point_orig: np.ndarray, meta: dict, ds: AGORA) -> np.ndarray:
    """Original-image pixels -> heatmap units through the sample's img2bb_trans."""
    return apply_affine(meta["img2bb_trans"].astype(np.float64), point_orig) * ds.space.crop_to_heatmap()


@pytest.mark.parametrize("resolution", ["1280x720", "3840x2160"])
def test_targets_land_where_the_fixture_put_them(agora_root, synthetic_body_model_dir: Path, resolution: str) -> None:
    root, truth = agora_root
    cfg = make_cfg(synthetic_body_model_dir, root, f"data.agora_resolution={resolution}")
    ds = build_testset(cfg)
    assert ds.split == "validation" and len(ds) == 3
    to_orig = 1 / 3 if resolution == "1280x720" else 1.0  # the eval transforms refer to the original image
    for index, record in enumerate(ds.records):
        inputs, targets, meta = ds[index]
        _check_contract((inputs, targets, meta), "validation", ds.body_models.vertex_count, ds)
        gt = truth["validation"][int(record.info["image_name"][-1]), record.info["person_id"]]
        params = gt["params"]
        # mesh and parameters: the neutral layer, the first 10 betas, the root pose as given (no augmentation)
        np.testing.assert_allclose(targets["smplx_mesh_cam"], gt["mesh_cam"], atol=1e-5)
        np.testing.assert_allclose(targets["smplx_shape"], params["betas"][:10], atol=1e-6)
        np.testing.assert_allclose(targets["smplx_pose"][:3], params["global_orient"], atol=1e-5)
        np.testing.assert_allclose(targets["smplx_expr"], params["expression"], atol=1e-6)
        # joints: the GT joints projected with AGORA's 4K camera, brought to the original image, then the crop
        joint_4k = gt["joint_cam"][:, :2] / gt["joint_cam"][:, 2:] * 3 * FOCAL_720P + 3 * np.array(PRINCPT_720P)
        expected = _expected_in_crop(joint_4k * to_orig, meta, ds)
        np.testing.assert_allclose(targets["joint_img"][:, :2], expected, atol=2e-3)
        # hand box: the fixture's box, corner for corner; Hand4Whole's sanitize_bbox keeps w - 1 and h - 1 pixels
        x, y, w, h = np.array(LHAND_BOX_4K) * to_orig
        corners = _expected_in_crop(np.array([[x, y], [x + w - 1, y + h - 1]]) / to_orig * to_orig, meta, ds)
        np.testing.assert_allclose(targets["lhand_bbox_center"], corners.mean(0), atol=1e-3)
        np.testing.assert_allclose(targets["lhand_bbox_size"], corners[1] - corners[0], atol=1e-3)
        if resolution == "3840x2160":  # all three spellings of the crop json give the tool's affine
            expected_trans = np.linalg.inv(np.vstack([gt["orig2crop"], [0, 0, 1]]))[:2]
            crop2net = np.linalg.inv(np.vstack([meta["bb2img_trans"], [0, 0, 1]]))[:2] @ np.vstack(
                [expected_trans, [0, 0, 1]]
            )  # net crop <- crop file
            np.testing.assert_allclose(crop2net[:, :2], np.eye(2) * 384 / CROP_HW[1], rtol=1e-4)


def test_gender_follows_the_config(agora_root, synthetic_body_model_dir: Path) -> None:
    root, _ = agora_root
    neutral = build_dataset("AGORA", "validation", make_cfg(synthetic_body_model_dir, root))
    annotated = build_dataset(
        "AGORA", "validation", make_cfg(synthetic_body_model_dir, root, "data.agora_gender=annotated")
    )
    assert neutral.load_labels(neutral.records[0]).smplx.gender == "neutral"
    assert annotated.load_labels(annotated.records[0]).smplx.gender == "female"


def test_missing_annotation_file_names_path_and_download_page(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    with pytest.raises(MissingAnnotationError) as raised:
        build_dataset("AGORA", "train", make_cfg(synthetic_body_model_dir, tmp_path))
    message = str(raised.value)
    assert str(tmp_path / "AGORA_train_SMPLX.json") in message and "agora.is.tue.mpg.de" in message


def test_missing_parameter_file_is_named(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    write_agora_fixture(tmp_path, "train", synthetic_body_model_dir)
    ds = build_dataset("AGORA", "train", make_cfg(synthetic_body_model_dir, tmp_path))
    missing = tmp_path / ds.records[0].info["smplx_param_path"]
    missing.unlink()
    with pytest.raises(MissingAnnotationError, match=str(missing)):
        ds[0]


@pytest.mark.parametrize("resolution", ["1280x720", "3840x2160"])
def test_missing_image_is_an_error_or_skipped_and_counted(
    tmp_path: Path, synthetic_body_model_dir: Path, resolution: str
) -> None:
    write_agora_fixture(tmp_path, "train", synthetic_body_model_dir)
    cfg = make_cfg(synthetic_body_model_dir, tmp_path, f"data.agora_resolution={resolution}")
    ds = build_dataset("AGORA", "train", cfg)
    missing = ds.records[1].img_path
    missing.unlink()
    with pytest.raises(ImageReadError, match=str(missing)):
        ds[1]
    skipping = build_dataset(
        "AGORA",
        "train",
        make_cfg(
            synthetic_body_model_dir, tmp_path, f"data.agora_resolution={resolution}", "data.skip_bad_images=true"
        ),
    )
    dropped = [r.img_path for r in ds.records if r.img_path == missing]  # 720p: every person of that image
    assert len(skipping) == len(ds) - len(dropped) and skipping.skipped_missing == dropped
    if resolution == "3840x2160":  # a crop without its json: an error naming it, or skipped
        missing.with_suffix(".json").unlink()
        with pytest.raises(FileNotFoundError, match=str(missing.with_suffix(".json"))):
            build_dataset("AGORA", "train", cfg)


@pytest.mark.parametrize("resolution", ["1280x720", "3840x2160"])
def test_evaluate_scores_and_writes_server_files(agora_root, synthetic_body_model_dir: Path, resolution: str) -> None:
    root, truth = agora_root
    cfg = make_cfg(
        synthetic_body_model_dir, root, f"data.agora_resolution={resolution}", f"output_dir={root / resolution}"
    )
    ds = build_testset(cfg)
    outs, offset = [], np.array([0.003, -0.004, 0.0])  # 5 mm
    to_orig = 1 / 3 if resolution == "1280x720" else 1.0
    for index in range(len(ds)):
        _, targets, meta = ds[index]
        gt = truth["validation"][int(ds.records[index].info["image_name"][-1]), ds.records[index].info["person_id"]]
        # a "prediction": the GT mesh moved by 5 mm, and all 144 GT joints projected into the body heatmap
        joint_proj = _expected_in_crop(gt["all_joints_4k"] * to_orig, meta, ds)  # (144, 2)
        out = {
            "smplx_mesh_cam": targets["smplx_mesh_cam"] + offset,
            "smplx_mesh_cam_target": targets["smplx_mesh_cam"],
            "smplx_mesh_valid": meta["smplx_mesh_valid"],
            "bb2img_trans": meta["bb2img_trans"],
            "smplx_joint_proj": joint_proj,
            "cam_trans": np.zeros(3, np.float32),
            "smplx_root_pose": targets["smplx_pose"][:3],
            "smplx_body_pose": targets["smplx_pose"][3:66],
            "smplx_lhand_pose": np.zeros(45),
            "smplx_rhand_pose": np.zeros(45),
            "smplx_jaw_pose": np.zeros(3),
            "smplx_shape": targets["smplx_shape"],
            "smplx_expr": targets["smplx_expr"],
        }
        outs.append(out)
    result = ds.evaluate(outs, list(range(len(ds))))
    for key in ("mpvpe_all", "mpvpe_hand", "mpvpe_face", "pa_mpvpe_all", "pa_mpvpe_hand", "pa_mpvpe_face"):
        np.testing.assert_allclose(result[key], 0.0, atol=1e-3, err_msg=f"{key}: a shift is aligned away")
    folder = root / resolution / "result" / "AGORA" / "predictions"  # a folder of their own: the checker reads all
    assert ds.predictions_dir == folder
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [
        "ag_validationset_fixture_00000_personId_0.pkl",
        "ag_validationset_fixture_00001_personId_0.pkl",
        "ag_validationset_fixture_00001_personId_1.pkl",
    ]
    saved = load_server_file(files[2])
    check_agora_prediction(saved)
    assert saved["params"]["body_pose"].shape == (1, 63) and saved["params"]["betas"].shape == (1, 10)
    assert saved["joints"].shape == (144, 2), "two dimensions: the server's checker does not squeeze joints"
    np.testing.assert_allclose(saved["joints"], truth["validation"][1, 1]["all_joints_4k"], atol=0.05)  # 4K pixels
    table, path = ds.report(result, cfg.output_dir)
    assert "MPVPE (All)" in table and json.loads(path.read_text())["samples"]["mpvpe_all"] == len(ds)


# --- the test split: Hand4Whole's detections, no ground truth ------------------------------------------------
# image file name -> detection boxes (xywh, 4K pixels); the second image's first box lies past its bottom right
TEST_DETECTIONS = {
    "ag_testset_fixture_00000.png": [[1500.0, 600.0, 400.0, 900.0], [2500.0, 700.0, 300.0, 800.0]],
    "ag_testset_fixture_00001.png": [[4000.0, 2300.0, 100.0, 100.0], [1800.0, 500.0, 350.0, 1000.0]],
}


def write_test_split(root: Path) -> None:
    """AGORA_test_bbox.json, the 720p test images and the 4K crops of the boxes that lie in the image."""
    (root / "AGORA_test_bbox.json").write_text(
        json.dumps({name: [{"bbox": box} for box in boxes] for name, boxes in TEST_DETECTIONS.items()})
    )
    for name, boxes in TEST_DETECTIONS.items():
        stem = name[:-4]
        (root / "1280x720" / "test").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "1280x720" / "test" / f"{stem}_1280x720.png"), np.full((720, 1280, 3), 90, np.uint8))
        crop_dir = root / "images_3840x2160" / "test_crop"
        crop_dir.mkdir(parents=True, exist_ok=True)
        for k, box in enumerate(boxes):
            crop_box = process_bbox(box, 3840, 2160)
            if crop_box is None:
                continue
            cv2.imwrite(str(crop_dir / f"{stem}_person_id_{k}.png"), np.full((*CROP_HW, 3), 128, np.uint8))
            crop_info = {"bbox_orig": crop_box.tolist(), "affine_mat": crop_affine(crop_box, CROP_HW).tolist(),
                         "resized_height": CROP_HW[0], "resized_width": CROP_HW[1]}  # fmt: skip
            (crop_dir / f"{stem}_person_id_{k}.json").write_text(json.dumps(crop_info))


def _test_output(meta: dict, seed: int) -> dict[str, np.ndarray]:
    """A made-up test-mode output of the model for one sample."""
    rng = np.random.default_rng(seed)
    out = {"smplx_joint_proj": rng.uniform(0, 6, (144, 2)), "bb2img_trans": meta["bb2img_trans"],
           "cam_trans": rng.normal(size=3), "smplx_root_pose": rng.normal(size=3),
           "smplx_body_pose": rng.normal(size=63), "smplx_lhand_pose": rng.normal(size=45),
           "smplx_rhand_pose": rng.normal(size=45), "smplx_jaw_pose": rng.normal(size=3),
           "smplx_shape": rng.normal(size=10), "smplx_expr": rng.normal(size=10)}  # fmt: skip
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


@pytest.mark.parametrize("resolution", ["1280x720", "3840x2160"])
def test_test_split_has_one_record_per_detection_and_no_labels(
    tmp_path: Path, synthetic_body_model_dir: Path, resolution: str
) -> None:
    write_test_split(tmp_path)
    cfg = make_cfg(synthetic_body_model_dir, tmp_path, f"data.agora_resolution={resolution}")
    ds = build_dataset("AGORA", "test", cfg)
    # the box outside the image is left out; the others keep their detection index as person id
    assert [(r.info["image_name"], r.info["person_id"]) for r in ds.records] == [
        ("ag_testset_fixture_00000", 0), ("ag_testset_fixture_00000", 1), ("ag_testset_fixture_00001", 1)
    ]  # fmt: skip
    boxes = [TEST_DETECTIONS[f"{r.info['image_name']}.png"][r.info["person_id"]] for r in ds.records]
    to_orig = 1 / 3 if resolution == "1280x720" else 1.0
    for index, (record, box) in enumerate(zip(ds.records, boxes, strict=True)):
        assert ds.load_labels(record).smplx is None
        sample = ds[index]
        flat = {**sample[0], **sample[1], **sample[2]}
        assert set(flat) == set(sample_shapes(ds.space, ds.body_models.vertex_count, "test"))
        for key, value in flat.items():
            assert tuple(value.shape) == sample_shapes(ds.space, ds.body_models.vertex_count, "test")[key], key
            if key.endswith("_valid") or key == "is_3D":
                assert float(np.max(value)) == 0.0, f"{key}: the test split has no labels"
        # the network crop is the detection's crop box: its centre maps back onto the box centre in the image
        crop_box = process_bbox(np.asarray(box) * to_orig, 3840 * to_orig, 2160 * to_orig)
        centre = apply_affine(sample[2]["bb2img_trans"].astype(np.float64), np.array([192.0, 256.0]))
        np.testing.assert_allclose(centre, crop_box[:2] + crop_box[2:] / 2, atol=1e-3)
        expected_dir = "test_crop" if resolution == "3840x2160" else "test"
        assert record.img_path.parent.name == expected_dir


@pytest.mark.parametrize("resolution", ["1280x720", "3840x2160"])
def test_test_split_evaluate_writes_server_files_only(
    tmp_path: Path, synthetic_body_model_dir: Path, resolution: str
) -> None:
    write_test_split(tmp_path)
    cfg = make_cfg(synthetic_body_model_dir, tmp_path, f"data.agora_resolution={resolution}")
    ds = build_dataset("AGORA", "test", cfg)
    outs = [_test_output(ds[index][2], index) for index in range(len(ds))]
    assert ds.evaluate(outs, list(range(len(ds)))) == {}, "no ground truth, no metrics"
    files = sorted(ds.predictions_dir.iterdir())
    assert [f.name for f in files] == ["ag_testset_fixture_00000_personId_0.pkl",
                                       "ag_testset_fixture_00000_personId_1.pkl",
                                       "ag_testset_fixture_00001_personId_1.pkl"]  # fmt: skip
    for path, out in zip(files, outs, strict=True):
        data = path.read_bytes()
        assert not any(g.startswith("numpy._core") for g in pickle_globals(data)), "numpy 1.x cannot import numpy._core"
        assert "numpy.core.multiarray _reconstruct" in pickle_globals(data)
        saved = load_server_file(path)
        check_agora_prediction(saved)
        expected = ds.server_prediction(out)
        np.testing.assert_array_equal(saved["joints"], expected["joints"])
        for key, value in expected["params"].items():
            assert saved["params"][key].dtype == np.float32
            np.testing.assert_array_equal(saved["params"][key], value, err_msg=key)
        # the joints are the projected joints in the 4K image, whatever resolution the network saw
        hm_to_crop = 1.0 / ds.space.crop_to_heatmap()
        joint_orig = apply_affine(out["bb2img_trans"].astype(np.float64), out["smplx_joint_proj"] * hm_to_crop)
        np.testing.assert_allclose(saved["joints"], joint_orig * (3.0 if resolution == "1280x720" else 1.0),
                                   rtol=1e-5, atol=1e-3)  # fmt: skip
    table, _ = ds.report({}, cfg.output_dir)
    assert "3 prediction files" in table and str(ds.predictions_dir) in table


def test_a_prediction_the_server_would_reject_is_logged_not_written(
    tmp_path: Path, synthetic_body_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_test_split(tmp_path)
    ds = build_dataset("AGORA", "test", make_cfg(synthetic_body_model_dir, tmp_path))
    outs = [_test_output(ds[index][2], index) for index in range(2)]
    outs[1]["smplx_body_pose"][5] = np.nan
    with caplog.at_level("ERROR", logger="data.AGORA.AGORA"):
        ds.evaluate(outs, [0, 1])
    assert [f.name for f in ds.predictions_dir.iterdir()] == ["ag_testset_fixture_00000_personId_0.pkl"]
    assert "ag_testset_fixture_00000_personId_1.pkl not written" in caplog.text and "body_pose" in caplog.text


def test_build_testset_still_evaluates_the_validation_split(agora_root, synthetic_body_model_dir: Path) -> None:
    root, _ = agora_root
    assert build_testset(make_cfg(synthetic_body_model_dir, root)).split == "validation"


# --- the synthetic dataset (data/Synthetic), read unchanged ----------------------------------------------------
def _synthetic_cfg(body_models: Path, root: Path, *overrides: str) -> Config:
    return load_config(
        None,
        [f"human_model_path={body_models}", f"data.dataset_roots={{AGORA: {root}}}", "data.testset=AGORA", *overrides],
    )


def test_synthetic_dataset_is_read_unchanged(synthetic_agora_dir: Path, synthetic_body_model_dir: Path) -> None:
    for split in ("train", "validation"):
        ds = build_dataset("AGORA", split, _synthetic_cfg(synthetic_body_model_dir, synthetic_agora_dir))
        db = json.loads((synthetic_agora_dir / f"AGORA_{split}_SMPLX.json").read_text())
        assert len(ds) == sum(bool(a["is_valid"]) for a in db["annotations"]) > 0
        _check_contract(ds[0], split, ds.body_models.vertex_count, ds)


def _person_labels(root: Path, body_models: Path, record: Any) -> np.ndarray:
    """(720, 1280) uint8 person labels of a synthetic image (0 background, k + 1 person k): the mask file when the
    dataset has one, else the image rendered again (the generator is deterministic in seed, split and index)."""
    name = record.info["image_name"]  # synthetic_<split>_<index>
    split, index = name.split("_")[1], int(name.split("_")[2])
    mask_path = root / "masks_1280x720" / split / f"{name}_1280x720.png"
    if mask_path.is_file():
        return cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
    from data.Synthetic import GeneratorOptions, ImageGenerator

    manifest = json.loads((root / f"synthetic_manifest_{split}.json").read_text())
    seed = int(manifest.get("seed", 0)) if isinstance(manifest, dict) else 0
    with ImageGenerator(body_models, GeneratorOptions(split=split, seed=seed), root / "unused") as generator:
        _, composite, _ = generator.render(index)
    return composite.labels


def test_projected_gt_mesh_lies_on_the_person_in_the_training_crop(
    synthetic_agora_dir: Path, synthetic_body_model_dir: Path
) -> None:
    cfg = _synthetic_cfg(synthetic_body_model_dir, synthetic_agora_dir, "data.agora_gender=annotated")
    ds = build_dataset("AGORA", "train", cfg)
    hm_to_crop = 1.0 / ds.space.crop_to_heatmap()
    first_of_image = {r.info["image_name"]: i for i, r in reversed(list(enumerate(ds.records)))}
    indices = sorted(first_of_image.values())[:2]  # two images: each may be rendered again, which takes a second
    for index in indices:
        record = ds.load_labels(ds.records[index])
        aug = ds.augmentation(index)  # the training augmentation of this sample (scale, rotation, flip)
        labels = _person_labels(synthetic_agora_dir, synthetic_body_model_dir, record)
        # the label image cropped exactly as the sample's image (no colour change, nearest-neighbour values)
        label_img = np.repeat(labels[..., None], 3, axis=2)
        img2crop = crop_affine(record.bbox_xywh_img, ds.space.input_hw, aug, img_width=record.img_hw[1])
        label_crop = cv2.warpAffine(
            label_img, img2crop.astype(np.float32), ds.space.input_hw[::-1], flags=cv2.INTER_NEAREST
        )[..., 0]
        _, targets, meta = ds.get_sample(index)
        own, people = label_crop == record.info["person_id"] + 1, label_crop > 0
        people = cv2.dilate(people.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # 2 px of rasterisation slack
        # 1. the SMPL-X GT mesh, projected with AGORA's camera into the crop, covers the person
        gt = smplx_in_camera(record.smplx, record.cam, ds.body_models)
        verts = apply_affine(img2crop, record.cam.project(gt.mesh_cam.astype(np.float64)))  # (V, 2) crop pixels
        inside = np.all((verts >= 0) & (verts < np.array(ds.space.input_hw[::-1]) - 1), axis=1)
        px = np.round(verts[inside]).astype(int)
        assert people[px[:, 1], px[:, 0]].mean() > 0.97, "projected vertices fall on people in the crop"
        assert own[px[:, 1], px[:, 0]].mean() > 0.5, "and mostly on this person"
        # 2. the sample's own joint targets agree with that projection and lie on the person
        joints_crop = targets["smplx_joint_img"][:, :2] * hm_to_crop  # (137, 2)
        expected = apply_affine(img2crop, record.cam.project(gt.joint_cam))
        if aug.flip:
            expected = expected[JOINTS.flip_permutation()]
        trunc = meta["smplx_joint_trunc"][:, 0] > 0
        np.testing.assert_allclose(joints_crop[trunc], expected[trunc], atol=0.05)
        body = np.zeros(len(JOINTS), bool)
        body[list(JOINTS.parts["body"])] = True
        jx = np.round(joints_crop[trunc & body]).astype(int).clip(0, np.array(ds.space.input_hw[::-1]) - 1)
        assert people[jx[:, 1], jx[:, 0]].mean() > 0.9
