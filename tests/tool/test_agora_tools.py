"""AGORA's tools: the camera model, the raw -> parsed conversions (SMPL-X and SMPL) and the 4K crops, read back
with the loader.

What needs the real release cannot be checked here: AGORA's pandas tables (the tool reads their json extraction)
and its fit files' exact content. Checked instead: the projection model against a hand-computed case, the rigid
solve against the closed-form composition of AGORA's steps, the folding of R, t into the SMPL-X parameters on the
synthetic SMPL-X stand-in (the converted camera-frame parameters pose R X + t), and a tiny raw tree converted,
cropped from drawn 4K images and read back by data/AGORA: the GT lands on a marker drawn at the GT position.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from common.body_models import get_body_models
from common.body_models.joint_sets import ROOT_IDX
from common.utils.augmentation import NO_AUGMENTATION, apply_affine, crop_affine, get_bbox, process_bbox
from data import build_dataset
from tests.data.fixtures import make_cfg
from tests.data.test_agora_smpl import body_cfg
from tool.AGORA.agora2coco_smpl import convert_agora as convert_smpl
from tool.AGORA.agora2coco_smpl import main as smpl_main
from tool.AGORA.agora2coco_smplx import convert_agora, fold_rigid_into_params, main, rigid_fit
from tool.AGORA.agora_projection import AgoraCamera, fit_to_camera, scene_camera, unreal_to_opencv
from tool.AGORA.crop_and_resize_4k_images import crop_and_resize_4k_images
from tool.AGORA.raw_inputs import FIT_KEYS, read_fit, read_scene_table, read_smpl_fit, table_columns

FIT_SIZES = {"global_orient": 3, "body_pose": 63, "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3, "left_hand_pose": 45,
             "right_hand_pose": 45, "betas": 10, "expression": 10, "transl": 3}  # fmt: skip


def _rot(axis: str, degrees: float) -> np.ndarray:
    return Rotation.from_euler(axis, degrees, degrees=True).as_matrix()


# --- the camera model ---------------------------------------------------------------------------------------
def test_projection_matches_a_hand_computed_case() -> None:
    # hdri scene: 50 mm lens, camera 1.7 m up at the origin, no yaw or pitch. A body 5 m ahead, yaw 90 (the
    # scans' front offset cancels), fit frame y up: its origin is 1.7 m below the camera, 5 m ahead.
    camera = scene_camera("ag_testset_hdri_50mm_00001.png", (0.0, 0.0, 0.0), 0.0)
    focal = 50 / 36 * 3840  # mm / sensor mm * pixels; the same vertically: 50 / 20.25 * 2160
    np.testing.assert_allclose(camera.focal_px, [focal, focal])
    np.testing.assert_allclose(camera.princpt_px, [1920.0, 1080.0])
    points_fit = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # origin, 1 m up, 1 m to its left
    points_cam = fit_to_camera(points_fit, 90.0, (500.0, 0.0, 0.0), camera)
    # y flips (up is -y in OpenCV); the fit's +x (the body's left, facing the camera after the flip) is +x
    np.testing.assert_allclose(points_cam, [[0.0, 1.7, 5.0], [0.0, 0.7, 5.0], [1.0, 1.7, 5.0]], atol=1e-12)
    np.testing.assert_allclose(camera.project(points_cam[:1]), [[1920.0, 1080.0 + focal * 1.7 / 5.0]])
    np.testing.assert_allclose(unreal_to_opencv([100.0, 200.0, 300.0]), [200.0, -300.0, 100.0])


def test_the_image_name_selects_the_camera_preset() -> None:
    cam01 = scene_camera("ag_trainset_renderpeople_bfh_archviz_5_10_cam01_00007.png", (1.0, 2.0, 3.0), 77.0)
    np.testing.assert_allclose(cam01.focal_px, [1920.0, 1920.0])  # 18 mm
    np.testing.assert_allclose(cam01.rotation, _rot("x", 30.0) @ _rot("y", 135.0), atol=1e-12)  # yaw -135, pitch 30
    np.testing.assert_allclose(cam01.position_m, [2.25, -2.65, 4.0])  # (400, 225, 265) cm in OpenCV axes
    table = scene_camera("ag_trainset_3dpeople_bfh_construction_0_5_00003.png", (100.0, 200.0, 300.0), 20.0)
    np.testing.assert_allclose(table.focal_px, [28 / 36 * 3840] * 2)
    np.testing.assert_allclose(table.rotation, _rot("y", -20.0), atol=1e-12)
    np.testing.assert_allclose(table.position_m, [2.0, -3.0 - 1.7, 1.0])  # the table's camera, 1.7 m ground offset


def _random_camera(rng: np.random.Generator) -> AgoraCamera:
    name = "ag_trainset_fixture_cam02_00000.png" if rng.random() < 0.5 else "ag_trainset_fixture_grass_00000.png"
    return scene_camera(name, rng.uniform(-500, 500, 3), rng.uniform(-180, 180))


def test_rigid_solve_recovers_the_closed_form_placement() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        camera = _random_camera(rng)
        yaw, position_cm = rng.uniform(-180, 180), rng.uniform(-800, 800, 3)
        points = rng.normal(size=(144, 3))
        # AGORA's steps composed by hand: flip y and z, turn by yaw - 90 about y, move, then the camera
        turn = _rot("y", yaw - 90.0) @ np.diag([1.0, -1.0, -1.0])
        rotation = camera.rotation @ turn
        translation = camera.rotation @ (unreal_to_opencv(position_cm / 100.0) - camera.position_m)
        points_cam = fit_to_camera(points, yaw, position_cm, camera)
        np.testing.assert_allclose(points_cam, points @ rotation.T + translation, atol=1e-9)
        solved_r, solved_t = rigid_fit(points, points_cam)
        np.testing.assert_allclose(solved_r, rotation, atol=1e-9)
        np.testing.assert_allclose(solved_t, translation, atol=1e-9)


# --- folding R, t into the parameters ---------------------------------------------------------------------
def random_fit(seed: int) -> dict[str, np.ndarray]:
    """An AGORA-like fit: upright in its y-up frame, a mild pose, AGORA's (1, n) array shapes."""
    rng = np.random.default_rng(seed)
    scale = {"global_orient": 0.2, "body_pose": 0.2, "jaw_pose": 0.1, "leye_pose": 0.0, "reye_pose": 0.0,
             "left_hand_pose": 0.3, "right_hand_pose": 0.3, "betas": 0.8, "expression": 0.5, "transl": 0.1}  # fmt: skip
    return {k: (scale[k] * rng.standard_normal(n)).reshape(1, n).astype(np.float32) for k, n in FIT_SIZES.items()}


def random_smpl_fit(seed: int, kid: bool) -> dict[str, np.ndarray]:
    """An AGORA-like SMPL fit under AGORA's keys (root_pose, body_pose, betas, translation), (1, n) arrays; a kid
    has 11 betas."""
    rng = np.random.default_rng(seed)
    sizes = {"root_pose": (3, 0.2), "body_pose": (69, 0.2), "betas": (11 if kid else 10, 0.8), "translation": (3, 0.1)}
    return {k: (scale * rng.standard_normal(n)).reshape(1, n).astype(np.float32) for k, (n, scale) in sizes.items()}


def pose(body_models: Any, gender: str, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) vertices and (144, 3) joints of parameters posed directly with the smplx layer (with transl)."""
    inputs = {k: torch.as_tensor(np.asarray(params[k], np.float32).reshape(1, -1)[:, :n]) for k, n in FIT_SIZES.items()}
    with torch.no_grad():
        out = body_models.smplx(gender)(**inputs)
    return out.vertices[0].numpy().astype(np.float64), out.joints[0].numpy().astype(np.float64)


@pytest.mark.parametrize("gender", ["neutral", "male", "female"])
def test_folded_parameters_pose_the_mesh_in_the_camera_frame(synthetic_body_model_dir: Path, gender: str) -> None:
    body_models = get_body_models(synthetic_body_model_dir)
    fit = {k: v.astype(np.float64).reshape(-1) for k, v in random_fit(3).items()}
    rotation = Rotation.from_rotvec([2.0, -1.5, 1.0]).as_matrix()  # a large turn: ~155 degrees
    translation = np.array([0.4, -1.2, 7.5])
    rest = {**fit, "transl": np.zeros(3)}
    pelvis_rest = pose(body_models, gender, rest)[1][0]
    folded = fold_rigid_into_params(fit, rotation, translation, pelvis_rest)
    verts_world, _ = pose(body_models, gender, fit)
    verts_cam, _ = pose(body_models, gender, folded)
    error = np.abs(verts_cam - (verts_world @ rotation.T + translation)).max()
    assert error < 1e-5, f"{error} m"
    assert np.abs(pelvis_rest).max() > 0.05, "a pelvis off the origin, or the J0 terms would go untested"


# --- a tiny raw release ---------------------------------------------------------------------------------------
# image name -> (camera table position cm, camera yaw, [(gender, camera-frame pelvis target in metres), ...])
RAW_IMAGES = {
    "train_0_withjv": {
        "ag_trainset_fixture_cam01_00000.png": ((0.0, 0.0, 0.0), 0.0, [("male", (-2.0, 0.3, 6.0)),
                                                                      ("female", (2.0, 0.1, 6.5))]),
        "ag_trainset_fixture_grass_00001.png": ((120.0, -40.0, 160.0), 25.0, [("neutral", (0.3, 0.2, 5.0))]),
    },
    "validation_withjv": {
        "ag_validationset_fixture_hdri_00000.png": ((0.0, 0.0, 0.0), 0.0, [("female", (-0.5, 0.6, 7.0))]),
    },
}  # fmt: skip
# Hand4Whole's joint ranges in SMPL-X's 127 output joints (its agora2coco_smplx.py), typed out as an oracle
HAND4WHOLE_BOX_JOINTS = {"bbox": list(range(127)), "lhand_bbox": [*range(25, 40), *range(66, 71)],
                         "rhand_bbox": [*range(40, 55), *range(71, 76)], "face_bbox": list(range(76, 127))}  # fmt: skip
TABLE_DIRS = {"train_0_withjv": "SMPLX", "validation_withjv": "validation_SMPLX/SMPLX"}
SMPL_TABLE_DIRS = {"train_0_withjv": "SMPL", "validation_withjv": "validation_SMPL/SMPL"}


def _placement(camera: AgoraCamera, point_cam: tuple[float, ...], yaw: float) -> tuple[float, list[float]]:
    """(Yaw, X, Y, Z cm) that put a body's fit-frame origin at ``point_cam`` (camera metres)."""
    world = camera.rotation.T @ np.asarray(point_cam) + camera.position_m  # OpenCV axes, metres
    return yaw, [100.0 * world[2], 100.0 * world[0], -100.0 * world[1]]  # Unreal (forward, right, up) cm


def _write_fit(root: Path, relative: str, fit: dict[str, np.ndarray], agora_pickle: bool, smpl: bool) -> None:
    """A raw fit as AGORA ships it (.pkl: numpy arrays for SMPL-X, torch tensors for SMPL), or as .npz."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if not agora_pickle:
        np.savez(path.with_suffix(".npz"), **fit)
    elif smpl:  # tensors, the root one still attached to a graph, as AGORA's fitting code left them
        tensors = {k: torch.tensor(v, requires_grad=k == "root_pose") for k, v in fit.items()}
        path.with_suffix(".pkl").write_bytes(pickle.dumps(tensors, protocol=2))
    else:
        path.with_suffix(".pkl").write_bytes(pickle.dumps(fit, protocol=4))


def write_raw_release(root: Path, smpl: bool = False) -> dict[str, dict[int, dict[str, Any]]]:
    """Scene tables (json) and fits (.npz or AGORA's .pkl) of the SMPL-X release, or of the SMPL one (``smpl``);
    returns image name -> person -> the truth (the fit under AGORA's keys)."""
    truth: dict[str, dict[int, dict[str, Any]]] = {}
    column = "gt_path_smpl" if smpl else "gt_path_smplx"
    for table_name, images in RAW_IMAGES.items():
        table: dict[str, list] = {c: [] for c in table_columns(column)}
        for image_index, (name, (cam_pos, cam_yaw, people)) in enumerate(images.items()):
            camera = scene_camera(name, cam_pos, cam_yaw)
            rows = {column: [], "gender": [], "X": [], "Y": [], "Z": [], "Yaw": []}
            truth[name] = {}
            for k, (gender, point_cam) in enumerate(people):
                seed = 10 * image_index + k + len(truth)
                fit = random_smpl_fit(seed, kid=bool(k % 2)) if smpl else random_fit(seed)
                relative = f"{column[3:]}/{name[:-4]}/{k}.obj"
                _write_fit(root, relative, fit, agora_pickle=bool(k % 2), smpl=smpl)
                yaw, xyz = _placement(camera, point_cam, yaw=30.0 * k + 90.0)
                for key, value in zip((column, "gender", "Yaw", "X", "Y", "Z"), (relative, gender, yaw, *xyz),
                                      strict=True):  # fmt: skip
                    rows[key].append(value)
                truth[name][k] = {"fit": fit, "gender": gender, "placement": (yaw, xyz), "camera": camera}
            table["imgPath"].append(name)
            for key, value in zip(("camX", "camY", "camZ", "camYaw"), (*cam_pos, cam_yaw), strict=True):
                table[key].append(value)
            count = len(people)
            rows |= {"kid": [False] * count, "occlusion": [5.0] * count, "isValid": [True] * count,
                     "age": ["31-50"] * count, "ethnicity": ["asian"] * count}  # fmt: skip
            for key, value in rows.items():
                table[key].append(value)
        path = root / (SMPL_TABLE_DIRS if smpl else TABLE_DIRS)[table_name] / f"{table_name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(table))
    return truth


def expected_in_camera(body_models: Any, person: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) vertices and (144, 3) joints of the raw fit, placed by AGORA's steps into its camera (metres)."""
    verts, joints = pose(body_models, person["gender"], person["fit"])
    yaw, xyz = person["placement"]
    return (fit_to_camera(verts, yaw, xyz, person["camera"]), fit_to_camera(joints, yaw, xyz, person["camera"]))


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("agora_raw")
    truth = write_raw_release(root)
    assert main(["--dataset_path", str(root), "--human_model_path", str(synthetic_body_model_dir)]) == 0
    return root, truth


def test_conversion_writes_hand4whole_layout(converted: tuple[Path, dict], synthetic_body_model_dir: Path) -> None:
    root, truth = converted
    body_models = get_body_models(synthetic_body_model_dir)
    folders = {"train": {"cam01": "train_0", "grass": "train_0"}, "validation": {"hdri": "validation"}}
    for split, folder_of in folders.items():
        db = json.loads((root / f"AGORA_{split}_SMPLX.json").read_text())
        images = {image["id"]: image for image in db["images"]}
        assert len(db["annotations"]) == sum(len(truth[Path(i["file_name_3840x2160"]).name]) for i in db["images"])
        for ann in db["annotations"]:
            image = images[ann["image_id"]]
            name = Path(image["file_name_3840x2160"]).name
            folder = next(f for key, f in folder_of.items() if key in name)
            assert image["file_name_3840x2160"] == f"3840x2160/{folder}/{name}"
            assert image["file_name_1280x720"] == f"1280x720/{folder}/{name[:-4]}_1280x720.png"
            assert ann["smplx_param_path"] == f"smplx_params_cam/{folder}/{name[:-4]}/{ann['person_id']}.json"
            person = truth[name][ann["person_id"]]
            assert (ann["gender"], ann["is_valid"], ann["kid"]) == (person["gender"], True, False)
            cam = json.loads((root / ann["cam_param_path"]).read_text())
            np.testing.assert_allclose(cam["focal"], person["camera"].focal_px)
            params = json.loads((root / ann["smplx_param_path"]).read_text())
            assert sorted(params) == sorted(FIT_KEYS) and len(params["betas"]) == 10
            # the camera-frame parameters pose exactly AGORA's placement of the raw fit: R X_world + t
            verts_cam, joints_cam = pose(body_models, person["gender"], params)
            expected_verts, expected_joints = expected_in_camera(body_models, person)
            assert np.abs(verts_cam - expected_verts).max() < 1e-5
            # boxes: the projected joints x1.2 (body: 127 joints; the projection by AGORA's camera directly)
            joints_img = person["camera"].project(expected_joints)
            for key, rows in HAND4WHOLE_BOX_JOINTS.items():
                expected_box = get_bbox(joints_img[rows], np.ones(len(rows)), 1.2)
                np.testing.assert_allclose(ann[key], expected_box, atol=1e-3, err_msg=key)


def test_missing_tables_and_unsafe_pickles_are_refused(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="pandas"):
        convert_agora(tmp_path, synthetic_body_model_dir, splits=["train"])
    table = tmp_path / "table.json"
    table.write_text(json.dumps({"imgPath": ["a.png"]}))
    with pytest.raises(ValueError, match="missing columns"):
        read_scene_table(table)

    class Payload:  # unpickling this would call os.system
        def __reduce__(self) -> tuple:
            import os

            return (os.system, ("echo unsafe",))

    (tmp_path / "fit.pkl").write_bytes(pickle.dumps({"global_orient": Payload()}))
    with pytest.raises(ValueError, match=r"fit\.pkl.*refused global (posix|os|nt)\.system"):
        read_fit(tmp_path / "fit.obj")
    fit = random_fit(1)
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps(fit, protocol=5))  # numpy 2, protocol 5: _frombuffer
    assert all(np.array_equal(read_fit(tmp_path / "ok.obj")[k], fit[k].reshape(-1)) for k in FIT_KEYS)


# --- the 4K crops, read back by the loader ------------------------------------------------------------------
MARKER_SIGMA_PX = 8.0  # a red Gaussian blob in the 4K image; its centroid survives resampling


def _draw_marker(image: np.ndarray, centre: np.ndarray) -> None:
    """Add a red Gaussian blob centred at ``centre`` (x, y; pixel centres at integers) to an RGB image."""
    x0, y0 = (int(round(c)) - 50 for c in centre)
    ys, xs = np.mgrid[y0 : y0 + 101, x0 : x0 + 101]
    blob = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * MARKER_SIGMA_PX**2))
    image[y0 : y0 + 101, x0 : x0 + 101, 0] = np.round(100 + 155 * blob).astype(np.uint8)


def marker_centroid(rgb: np.ndarray) -> np.ndarray:
    """(x, y) centroid of the red blobs of an (H, W, 3) RGB image in [0, 255] or [0, 1] (one blob expected)."""
    rgb = rgb.astype(np.float64)
    weight = np.clip(rgb[..., 0] - 0.5 * (rgb[..., 1] + rgb[..., 2]), 0, None)
    ys, xs = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


def _write_4k_images(root: Path, truth: dict, body_models: Any) -> dict[str, list[np.ndarray]]:
    """Grey 4K images with a marker on each person's projected GT pelvis; the test split reuses the cam01 image."""
    markers = {}
    for folder, images in (("train_0", RAW_IMAGES["train_0_withjv"]), ("validation", RAW_IMAGES["validation_withjv"])):
        for name in images:
            image = np.full((2160, 3840, 3), 100, np.uint8)
            markers[name] = []
            for person in truth[name].values():
                pelvis = person["camera"].project(expected_in_camera(body_models, person)[1][:1])[0]
                _draw_marker(image, pelvis)
                markers[name].append(pelvis)
            for target in [root / "3840x2160" / folder / name] + ([root / "3840x2160" / "test" / name]
                                                                   if "cam01" in name else []):  # fmt: skip
                target.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(target), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return markers


def _write_test_detections(root: Path, image_name: str) -> None:
    """AGORA_test_bbox.json for one image: its annotated person boxes, then a box outside the image."""
    db = json.loads((root / "AGORA_train_SMPLX.json").read_text())
    image_id = next(i["id"] for i in db["images"] if image_name in i["file_name_3840x2160"])
    boxes = [a["bbox"] for a in db["annotations"] if a["image_id"] == image_id] + [[4000.0, 3000.0, 50.0, 50.0]]
    (root / "AGORA_test_bbox.json").write_text(json.dumps({image_name: [{"bbox": box} for box in boxes]}))


def _check_crop_files(root: Path, split: str, record: Any) -> None:
    """The crop json holds process_bbox of the annotated box and the crop_affine of that box."""
    annotations = json.loads((root / f"AGORA_{split}_SMPLX.json").read_text())["annotations"]
    ann_box = next(a["bbox"] for a in annotations if a["person_id"] == record.info["person_id"]
                   and record.info["image_name"] in a["smplx_param_path"])  # fmt: skip
    crop_json = json.loads(record.img_path.with_suffix(".json").read_text())
    np.testing.assert_allclose(crop_json["bbox_orig"], process_bbox(ann_box, 3840, 2160), rtol=1e-6)
    expected_affine = crop_affine(np.array(crop_json["bbox_orig"]), (512, 384))
    np.testing.assert_allclose(crop_json["affine_mat"], expected_affine)


def _loader_pelvis_in_crop_file(body_models: Any, record: Any) -> np.ndarray:
    """(2,) the GT pelvis in crop-file pixels: the loader's parameters posed, projected with its camera."""
    smplx = record.smplx
    params = {"global_orient": smplx.root_pose, "body_pose": smplx.body_pose, "left_hand_pose": smplx.lhand_pose,
              "right_hand_pose": smplx.rhand_pose, "jaw_pose": smplx.jaw_pose, "leye_pose": np.zeros(3),
              "reye_pose": np.zeros(3), "betas": smplx.shape, "expression": smplx.expr,
              "transl": smplx.trans}  # fmt: skip
    _, joints_cam = pose(body_models, smplx.gender, params)
    return record.cam.project(joints_cam[:1])[0]


def test_crops_put_the_ground_truth_on_the_marker(converted: tuple[Path, dict], synthetic_body_model_dir: Path) -> None:
    root, truth = converted
    body_models = get_body_models(synthetic_body_model_dir)
    markers = _write_4k_images(root, truth, body_models)
    test_name = next(name for name in markers if "cam01" in name)
    _write_test_detections(root, test_name)
    assert crop_and_resize_4k_images(root, (512, 384), workers=2) == 3 + 1 + 2  # train, validation, test in image

    cfg = make_cfg(synthetic_body_model_dir, {"AGORA": root}, "data.agora_resolution=3840x2160",
                   "data.agora_gender=annotated")  # fmt: skip
    for split, count in (("train", 3), ("validation", 1)):
        ds = build_dataset("AGORA", split, cfg)
        assert len(ds) == count
        for index, record in enumerate(ds.records):
            _check_crop_files(root, split, record)
            # 1. in the written crop file: the loader's camera projects the GT pelvis onto the drawn marker
            crop_rgb = cv2.cvtColor(cv2.imread(str(record.img_path)), cv2.COLOR_BGR2RGB)
            pelvis = _loader_pelvis_in_crop_file(body_models, ds.load_labels(record))
            np.testing.assert_allclose(pelvis, marker_centroid(crop_rgb), atol=1.0)
            # 2. in the network input: the sample's pelvis target lies on the marker
            inputs, targets, _ = ds.get_sample(index, aug=NO_AUGMENTATION)
            pelvis_crop = targets["smplx_joint_img"][ROOT_IDX, :2] / ds.space.crop_to_heatmap()
            np.testing.assert_allclose(pelvis_crop, marker_centroid(inputs["img"].numpy().transpose(1, 2, 0)), atol=1.0)

    test = build_dataset("AGORA", "test", cfg)
    assert [r.info["person_id"] for r in test.records] == [0, 1], "the detection outside the image has no crop"
    for index, record in enumerate(test.records):
        inputs, _, meta = test[index]
        expected = apply_affine(meta["img2bb_trans"].astype(np.float64), markers[test_name][record.info["person_id"]])
        np.testing.assert_allclose(marker_centroid(inputs["img"].numpy().transpose(1, 2, 0)), expected, atol=1.0)


def test_crop_size_must_have_the_network_aspect(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="0.75"):
        crop_and_resize_4k_images(tmp_path, (512, 512))


# --- the SMPL variant (agora2coco_smpl.py): AGORA's SMPL fits, torch tensors in their pickles ---------------------
def pose_smpl(body_models: Any, gender: str, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) vertices and (45, 3) joints of SMPL parameters under our names, posed directly with the smplx layer."""
    sizes = {"global_orient": 3, "body_pose": 69, "betas": 10, "transl": 3}
    inputs = {k: torch.as_tensor(np.asarray(params[k], np.float32).reshape(1, -1)[:, :n]) for k, n in sizes.items()}
    with torch.no_grad():
        out = body_models.smpl(gender)(**inputs)
    return out.vertices[0].numpy().astype(np.float64), out.joints[0].numpy().astype(np.float64)


def raw_smpl_in_camera(body_models: Any, person: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) vertices and (45, 3) joints of a raw SMPL fit (AGORA's keys), placed by AGORA's steps (metres)."""
    fit = person["fit"]
    ours = {"global_orient": fit["root_pose"], "body_pose": fit["body_pose"], "betas": fit["betas"],
            "transl": fit["translation"]}  # fmt: skip
    verts, joints = pose_smpl(body_models, person["gender"], ours)
    yaw, xyz = person["placement"]
    return fit_to_camera(verts, yaw, xyz, person["camera"]), fit_to_camera(joints, yaw, xyz, person["camera"])


@pytest.fixture(scope="module")
def converted_smpl(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("agora_raw_smpl")
    truth = write_raw_release(root, smpl=True)
    assert smpl_main(["--dataset_path", str(root), "--human_model_path", str(synthetic_body_model_dir)]) == 0
    return root, truth


def test_smpl_conversion_places_the_fit(converted_smpl: tuple[Path, dict], synthetic_body_model_dir: Path) -> None:
    root, truth = converted_smpl
    body_models = get_body_models(synthetic_body_model_dir)
    for split, count in (("train", 3), ("validation", 1)):
        db = json.loads((root / f"AGORA_{split}_SMPL.json").read_text())
        images = {image["id"]: image for image in db["images"]}
        assert len(db["annotations"]) == count
        for ann in db["annotations"]:
            name = Path(images[ann["image_id"]]["file_name_3840x2160"]).name
            folder = Path(images[ann["image_id"]]["file_name_3840x2160"]).parent.name
            person = truth[name][ann["person_id"]]
            assert ann["smpl_param_path"] == f"smpl_params_cam/{folder}/{name[:-4]}/{ann['person_id']}.json"
            assert "smplx_param_path" not in ann and "lhand_bbox" not in ann and ann["gender"] == person["gender"]
            cam = json.loads((root / ann["cam_param_path"]).read_text())
            np.testing.assert_allclose(cam["focal"], person["camera"].focal_px)
            params = json.loads((root / ann["smpl_param_path"]).read_text())
            assert sorted(params) == ["betas", "body_pose", "global_orient", "transl"] and len(params["betas"]) == 10
            verts_cam, _ = pose_smpl(body_models, person["gender"], params)
            expected_verts, expected_joints = raw_smpl_in_camera(body_models, person)
            assert np.abs(verts_cam - expected_verts).max() < 1e-5
            # the body box: SMPL's 45 projected joints x1.2, as Hand4Whole drew it from gt_joints_2d
            expected_box = get_bbox(person["camera"].project(expected_joints), np.ones(45), 1.2)
            np.testing.assert_allclose(ann["bbox"], expected_box, atol=1e-3)


def test_body_family_reads_the_converted_smpl_fits(
    converted_smpl: tuple[Path, dict], synthetic_body_model_dir: Path
) -> None:
    root, truth = converted_smpl
    body_models = get_body_models(synthetic_body_model_dir)
    ds = build_dataset("AGORA", "train", body_cfg(synthetic_body_model_dir, root, "data.agora_gender=annotated"))
    assert len(ds) == 3
    for record in ds.records:
        labelled = ds.load_labels(record)
        person = truth[f"{record.info['image_name']}.png"][record.info["person_id"]]
        assert labelled.smpl.gender == person["gender"]
        np.testing.assert_allclose(labelled.smpl.shape, person["fit"]["betas"].reshape(-1)[:10], atol=1e-6)
        pelvis = ds.targets.pseudo_gt(labelled).joint_cam[0]  # camera metres, posed through the body targets
        np.testing.assert_allclose(pelvis, raw_smpl_in_camera(body_models, person)[1][0], atol=1e-5)


def test_smpl_fits_refuse_code_and_tables_refuse_paths_out_of_the_release(
    tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    class Payload:  # unpickling this would call os.system
        def __reduce__(self) -> tuple:
            import os

            return (os.system, ("echo unsafe",))

    (tmp_path / "fit.pkl").write_bytes(pickle.dumps({"root_pose": Payload()}, protocol=2))
    with pytest.raises(ValueError, match=r"fit\.pkl.*refused global (posix|os|nt)\.system"):
        read_smpl_fit(tmp_path / "fit.obj")
    write_raw_release(tmp_path, smpl=True)
    table_path = tmp_path / "validation_SMPL" / "SMPL" / "validation_withjv.json"
    table = json.loads(table_path.read_text())
    table["gt_path_smpl"][0][0] = "../elsewhere/0.obj"
    table_path.write_text(json.dumps(table))
    with pytest.raises(ValueError, match=r"validation_withjv\.json.*person 0.*gt_path_smpl '\.\./elsewhere/0\.obj'"):
        convert_smpl(tmp_path, synthetic_body_model_dir, splits=["validation"])
