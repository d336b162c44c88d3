"""MSCOCO for the Pose2Pose part families (person/SMPL, hand/MANO, face/FLAME crops) on a fixture in COCO-WholeBody's
and NeuralAnnot's real layouts: one 64x48 image, three annotations (201 with both hands and the face labelled and
fitted except its right hand, 202 with a left hand and a face but no fits, 203 a crowd), fits posed with the
synthetic stand-in.

Crop boxes are worked out by hand from Hand4Whole's `process_bbox` (clip to x2 = x + w - 1, grow the short side to
the input's aspect, x1.25 about the centre); without augmentation pixel (u, v) lands at
((u - x0) / w * W_hm, (v - y0) / h * H_hm) of the crop box (x0, y0, w, h).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from common.body_models import get_body_models
from common.body_models.joint_sets import FLAME_OUTPUT, HAND_21, SMPL_JOINTS
from common.body_models.part_joints import POSE2POSE_BODY_JOINTS
from common.utils.augmentation import AugParams
from data.MSCOCO import MSCOCO
from data.MSCOCO.MSCOCO import NEURAL_ANNOT_FILES
from data.record import MissingAnnotationError
from main.config import Config, load_config
from tests.data.fixtures import (
    CROP_BOX,
    FOCAL,
    IMG_HW,
    PRINCPT,
    check_sample_contract,
    empty_coco,
    project,
    write_image,
    write_json,
)
from tests.data.test_mscoco import wholebody_ann

LHAND_BOX, RHAND_BOX, FACE_BOX = [36.0, 22.0, 8.0, 8.0], [14.0, 24.0, 6.0, 8.0], [26.0, 4.0, 10.0, 12.0]  # xywh
# LHAND_BOX clips to 7 x 7 about (39.5, 25.5), x1.25 = 8.75; RHAND_BOX to 5 x 7 about (16.5, 27.5), squared to 7 x 7.
LHAND_CROP, RHAND_CROP = (35.125, 21.125, 8.75, 8.75), (12.125, 23.125, 8.75, 8.75)
# FACE_BOX clips to 9 x 11 about (30.5, 9.5); at aspect 0.75 the height grows to 12, x1.25 gives 11.25 x 15.
FACE_CROP = (24.875, 2.0, 11.25, 15.0)
L_INDEX_PX, R_INDEX_PX, R_WRIST_PX = (40.0, 26.0), (17.0, 28.0), (16.0, 27.0)  # hand keypoints placed
CONTOUR_PX, NOSE_TIP_PX, BODY_NOSE_PX = (27.0, 9.0), (31.0, 11.0), (31.0, 10.0)  # iBUG 1 and 31, COCO's nose
PELVIS_CAM = (0.05, 0.1, 4.0)  # metres, camera frame: where each fit's root joint sits
WRIST_CAM = (0.05, 0.0, 0.5)  # -> pixel (38, 24), inside the left-hand crop
FACE_ROOT_CAM = (0.0, 0.1, 1.0)
UPRIGHT = [np.pi, 0.0, 0.0]  # axis-angle: the layers' y-up model frame -> upright in the y-down camera frame

POSE2POSE_HAND_JOINTS_OF_SMPL = np.isin(SMPL_JOINTS.names, ("L_Hand", "R_Hand")).astype(np.float64)  # (24,)


def expected_hm(u: float, v: float, crop: tuple[float, ...], hm_hw: tuple[int, int]) -> np.ndarray:
    """(2,) heatmap (x, y) of image pixel (u, v) in an un-augmented sample of the crop box ``crop``."""
    x0, y0, w, h = crop
    return np.array([(u - x0) / w * hm_hw[1], (v - y0) / h * hm_hw[0]])


def part_cfg(part: str, human_model_path: Path, roots: dict[str, Path], *overrides: str) -> Config:
    """The Pose2Pose part family's config (its own geometry: only crops are made here, no network runs) with the
    given dataset roots: 256x192 person and face inputs on 8x6 heatmaps, 256x256 hand inputs on 8x8."""
    mapping = json.dumps({name: str(path) for name, path in roots.items()})
    return load_config(f"pose2pose_{part}", [f"human_model_path={human_model_path}", f"data.dataset_roots={mapping}",
                                             *overrides])  # fmt: skip


def _layer_root(layer: Any, **params: np.ndarray) -> np.ndarray:
    """(3,) float64 joint 0 of a layer posed with ``params`` (all of the layer's inputs)."""
    tensors = {k: torch.as_tensor(np.asarray(v, np.float32).reshape(1, -1)) for k, v in params.items()}
    with torch.no_grad():
        return layer(**tensors).joints[0, 0].numpy().astype(np.float64)


def flame_layer_joints(layer: Any, fit: dict[str, Any]) -> np.ndarray:
    """(73, 3) float64 camera metres of a FLAME fit, posed directly with the layer (neck and eyes at zero)."""
    args = {"global_orient": fit["root_pose"], "jaw_pose": fit["jaw_pose"], "betas": fit["shape"],
            "expression": fit["expr"], "transl": fit["trans"], "neck_pose": np.zeros(3), "leye_pose": np.zeros(3),
            "reye_pose": np.zeros(3)}  # fmt: skip
    tensors = {k: torch.as_tensor(np.asarray(v, np.float32).reshape(1, -1)) for k, v in args.items()}
    with torch.no_grad():
        return layer(**tensors).joints[0].numpy().astype(np.float64)


def flame_fit_entry(layer: Any, seed: int, root_cam: tuple[float, float, float]) -> dict[str, Any]:
    """A NeuralAnnot FLAME entry, upright, its root joint at ``root_cam`` metres, with the fixtures' camera."""
    rng = np.random.default_rng(seed)
    fit = {"root_pose": UPRIGHT, "jaw_pose": [0.2, 0.0, 0.0], "shape": (0.5 * rng.standard_normal(10)).tolist(),
           "expr": (0.3 * rng.standard_normal(10)).tolist()}  # fmt: skip
    root = flame_layer_joints(layer, fit | {"trans": np.zeros(3)})[0]
    fit["trans"] = (np.asarray(root_cam) - root).tolist()
    return {"flame_param": fit, "cam_param": {"focal": list(FOCAL), "princpt": list(PRINCPT)}}


def _mano_fit_entry(layer: Any, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    pose = np.concatenate([[0.0, 0.3, 0.0], 0.1 * rng.standard_normal(45)])
    shape = 0.3 * rng.standard_normal(10)
    wrist = _layer_root(layer, global_orient=pose[:3], hand_pose=pose[3:], betas=shape, transl=np.zeros(3))
    fit = {"pose": pose.tolist(), "shape": shape.tolist(), "trans": (np.asarray(WRIST_CAM) - wrist).tolist()}
    return {"mano_param": fit, "cam_param": {"focal": list(FOCAL), "princpt": list(PRINCPT)}}


def _smpl_fit_entry(layer: Any, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    pose = np.concatenate([UPRIGHT, 0.1 * rng.standard_normal(69)])
    shape = 0.5 * rng.standard_normal(10)
    pelvis = _layer_root(layer, global_orient=pose[:3], body_pose=pose[3:], betas=shape, transl=np.zeros(3))
    fit = {"pose": pose.tolist(), "shape": shape.tolist(), "trans": (np.asarray(PELVIS_CAM) - pelvis).tolist()}
    return {"smpl_param": fit, "cam_param": {"focal": list(FOCAL), "princpt": list(PRINCPT)}}


@pytest.fixture(scope="module")
def fits(synthetic_body_model_dir: Path) -> dict[str, dict[str, Any]]:
    """The three part fit tables by prefix: 201's person, left hand (its right hand null) and face; nothing of 202."""
    body_models = get_body_models(synthetic_body_model_dir)
    return {
        "smpl": {"201": _smpl_fit_entry(body_models.smpl("neutral"), 1)},
        "mano": {"201": {"left": _mano_fit_entry(body_models.mano("left"), 2), "right": None}},
        "flame": {"201": flame_fit_entry(body_models.flame(), 3, FACE_ROOT_CAM)},
    }


def _lhand(placed: dict[int, tuple[float, float]]) -> list[float]:
    kpts = np.zeros((21, 3))
    for index, (u, v) in placed.items():
        kpts[index] = (u, v, 2)
    return kpts.reshape(-1).tolist()


def _face(placed: dict[int, tuple[float, float]]) -> list[float]:
    kpts = np.zeros((68, 3))
    for ibug, (u, v) in placed.items():
        kpts[ibug - 1] = (u, v, 2)
    return kpts.reshape(-1).tolist()


def write_parts_fixture(root: Path, tables: dict[str, Any], file_name: str = "000000000001.png") -> None:
    """MSCOCO's layout under ``root``: both splits hold annotations 201-203; one fit file per prefix in ``tables``."""
    body = {"L_Shoulder": (26.0, 14.0), "R_Shoulder": (36.0, 15.0), "L_Hip": (28.0, 30.0), "R_Hip": (34.0, 32.0),
            "L_Wrist": (38.0, 25.0), "Nose": BODY_NOSE_PX}  # fmt: skip
    hands = {"lefthand_box": LHAND_BOX, "lefthand_valid": True, "righthand_box": RHAND_BOX, "righthand_valid": True}
    anns = [
        # 201: the left hand's wrist is unlabelled (the body's L_Wrist is): part crops must not fill it in
        wholebody_ann(201, body, **hands, face_box=FACE_BOX, face_valid=True, lefthand_kpts=_lhand({5: L_INDEX_PX}),
                      righthand_kpts=_lhand({0: R_WRIST_PX, 5: R_INDEX_PX}),
                      face_kpts=_face({1: CONTOUR_PX, 31: NOSE_TIP_PX})),
        # 202: its face has no keypoints, while the body's nose is labelled
        wholebody_ann(202, {"L_Shoulder": (26.0, 14.0), "Nose": BODY_NOSE_PX}, lefthand_box=LHAND_BOX,
                      lefthand_valid=True, face_box=FACE_BOX, face_valid=True),
        wholebody_ann(203, body, **hands, iscrowd=1),
    ]  # fmt: skip
    image = {"id": 1, "file_name": file_name, "height": IMG_HW[0], "width": IMG_HW[1]}
    for split, folder in (("train", "train2017"), ("val", "val2017")):
        write_json(root / "annotations" / f"coco_wholebody_{split}_v1.0.json",
                   empty_coco() | {"images": [image], "annotations": anns})  # fmt: skip
        write_image(root / "images" / folder / "000000000001.png")
    for prefix, table in tables.items():
        write_json(root / "annotations" / NEURAL_ANNOT_FILES[prefix], table)


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory: pytest.TempPathFactory, fits: dict[str, Any]) -> Path:
    root = tmp_path_factory.mktemp("mscoco_parts")
    write_parts_fixture(root, fits)
    return root


@pytest.fixture(scope="module")
def datasets(coco_root: Path, synthetic_body_model_dir: Path) -> dict[tuple[str, str], MSCOCO]:
    """(part, split) -> MSCOCO for that part family."""
    return {(part, split): MSCOCO(split, part_cfg(part, synthetic_body_model_dir, {"MSCOCO": coco_root}))
            for part in ("body", "hand", "face") for split in ("train", "test")}  # fmt: skip


def hm_hw(dataset: MSCOCO) -> tuple[int, int]:
    return dataset.space.hm_dhw[1], dataset.space.hm_dhw[2]


def test_one_record_per_labelled_part_and_the_crop_the_family_asks_for(datasets: dict) -> None:
    for split in ("train", "test"):
        hands = datasets["hand", split].records
        assert [(r.info["ann_id"], r.hand_side, r.crop) for r in hands] == [
            (201, "left", "hand"), (201, "right", "hand"), (202, "left", "hand")]  # fmt: skip
        assert [(r.info["ann_id"], r.crop) for r in datasets["face", split].records] == [(201, "face"), (202, "face")]
        assert [(r.info["ann_id"], r.crop) for r in datasets["body", split].records] == [(201, "body"), (202, "body")]
    records = datasets["hand", "train"].records
    np.testing.assert_allclose(records[0].bbox_xywh_img, LHAND_CROP, atol=1e-5)
    np.testing.assert_allclose(records[1].bbox_xywh_img, RHAND_CROP, atol=1e-5)
    np.testing.assert_allclose(datasets["face", "train"].records[0].bbox_xywh_img, FACE_CROP, atol=1e-5)
    np.testing.assert_allclose(datasets["body", "train"].records[0].bbox_xywh_img, CROP_BOX, atol=1e-5)
    assert all(not r.is_3D for dataset in datasets.values() for r in dataset.records)


@pytest.mark.parametrize("part", ["body", "hand", "face"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_sample_keys_and_shapes_are_the_familys_contract(part: str, split: str, datasets: dict) -> None:
    dataset = datasets[part, split]
    shapes = dataset.targets.sample_shapes(split)
    is_left_shape = shapes.pop("is_left") if part == "hand" else None  # the one bool of the contract
    for idx in range(len(dataset)):
        inputs, targets, meta = dataset[idx]
        if is_left_shape is not None:
            assert inputs["is_left"].dtype == np.bool_ and inputs["is_left"].shape == is_left_shape
            inputs = {k: v for k, v in inputs.items() if k != "is_left"}
        check_sample_contract((inputs, targets, meta), shapes)
        assert float(meta["is_3D"]) == 0.0 and not targets["joint_cam"].any()


def test_hand_crops_take_their_own_sides_keypoints(datasets: dict) -> None:
    dataset = datasets["hand", "test"]
    index, wrist = HAND_21.index("Index_1"), HAND_21.index("Wrist")
    left_inputs, left, left_meta = dataset[0]
    right_inputs, right, right_meta = dataset[1]
    assert bool(left_inputs["is_left"]) and not bool(right_inputs["is_left"])
    np.testing.assert_allclose(left["joint_img"][index, :2], expected_hm(*L_INDEX_PX, LHAND_CROP, hm_hw(dataset)),
                               atol=1e-4)  # fmt: skip
    np.testing.assert_allclose(right["joint_img"][index, :2], expected_hm(*R_INDEX_PX, RHAND_CROP, hm_hw(dataset)),
                               atol=1e-4)  # fmt: skip
    np.testing.assert_allclose(right["joint_img"][wrist, :2], expected_hm(*R_WRIST_PX, RHAND_CROP, hm_hw(dataset)),
                               atol=1e-4)  # fmt: skip
    assert left_meta["joint_valid"][:, 0].tolist() == [float(j == index) for j in range(len(HAND_21))]
    assert set(np.flatnonzero(right_meta["joint_valid"][:, 0])) == {index, wrist}
    flipped_inputs, _, _ = dataset.get_sample(0, aug=AugParams(flip=True))
    assert not bool(flipped_inputs["is_left"])  # the mirrored left hand is a right one


def test_face_crops_take_the_face_keypoints_by_flame_name(datasets: dict) -> None:
    dataset = datasets["face", "test"]
    _, targets, meta = dataset[0]
    contour, tip = FLAME_OUTPUT.index("Face_56"), FLAME_OUTPUT.index("Face_18")  # iBUG 1 and 31
    np.testing.assert_allclose(targets["joint_img"][contour, :2], expected_hm(*CONTOUR_PX, FACE_CROP, hm_hw(dataset)),
                               atol=1e-4)  # fmt: skip
    np.testing.assert_allclose(targets["joint_img"][tip, :2], expected_hm(*NOSE_TIP_PX, FACE_CROP, hm_hw(dataset)),
                               atol=1e-4)  # fmt: skip
    assert set(np.flatnonzero(meta["joint_valid"][:, 0])) == {contour, tip}
    _, _, meta_no_face_kpts = dataset[1]
    assert not meta_no_face_kpts["joint_valid"].any()  # the body's nose does not stand in for the nose tip


def test_mano_fit_of_the_left_hand_lands_in_its_crop(datasets: dict, fits: dict) -> None:
    dataset = datasets["hand", "train"]
    _, targets, meta = dataset.get_sample(0, aug=AugParams())
    assert dataset.records[0].mano is not None and dataset.records[0].mano.side == "left"
    assert meta["mano_shape_valid"] == 1.0 and meta["mano_pose_valid"].all() and meta["mano_joint_valid"].all()
    np.testing.assert_allclose(targets["mano_pose"], fits["mano"]["201"]["left"]["mano_param"]["pose"], atol=1e-5)
    wrist_px = project(np.array([WRIST_CAM]))[0]  # (38, 24)
    np.testing.assert_allclose(targets["mano_joint_img"][HAND_21.index("Wrist"), :2],
                               expected_hm(*wrist_px, LHAND_CROP, hm_hw(dataset)), atol=1e-3)  # fmt: skip


def test_smpl_fit_of_the_person_lands_in_its_crop(datasets: dict, fits: dict) -> None:
    dataset = datasets["body", "train"]
    _, targets, meta = dataset.get_sample(0, aug=AugParams())
    fit = fits["smpl"]["201"]["smpl_param"]
    assert meta["smpl_shape_valid"] == 1.0 and meta["smpl_joint_valid"].all()
    np.testing.assert_allclose(targets["smpl_pose"], fit["pose"], atol=1e-5)
    np.testing.assert_allclose(targets["smpl_shape"], fit["shape"], atol=1e-6)
    pelvis_px = project(np.array([PELVIS_CAM]))[0]
    np.testing.assert_allclose(targets["smpl_joint_img"][POSE2POSE_BODY_JOINTS.index("Pelvis"), :2],
                               expected_hm(*pelvis_px, CROP_BOX, hm_hw(dataset)), atol=1e-3)  # fmt: skip
    shoulder = POSE2POSE_BODY_JOINTS.index("L_Shoulder")  # a COCO keypoint, by name
    np.testing.assert_allclose(targets["joint_img"][shoulder, :2], expected_hm(26.0, 14.0, CROP_BOX, hm_hw(dataset)),
                               atol=1e-4)  # fmt: skip


def test_flame_fit_of_the_face(datasets: dict, fits: dict, synthetic_body_model_dir: Path) -> None:
    dataset = datasets["face", "train"]
    _, targets, meta = dataset.get_sample(0, aug=AugParams())
    fit = fits["flame"]["201"]["flame_param"]
    for key in ("root_pose", "jaw_pose", "shape", "expr"):
        np.testing.assert_allclose(targets[f"flame_{key}"], fit[key], atol=1e-5, err_msg=key)
        assert meta[f"flame_{key}_valid"] == 1.0, key
    joints = flame_layer_joints(get_body_models(synthetic_body_model_dir).flame(), fit)  # (73, 3)
    np.testing.assert_allclose(joints[0], FACE_ROOT_CAM, atol=1e-5)
    np.testing.assert_allclose(targets["flame_joint_cam"], joints - joints[0], atol=1e-5)
    record = dataset.records[0]  # the translation and camera reach no face target but the test split's mesh
    assert record.flame is not None and record.cam is not None
    np.testing.assert_allclose(record.flame.trans, fit["trans"])
    np.testing.assert_allclose(np.concatenate([record.cam.focal, record.cam.princpt]), [*FOCAL, *PRINCPT])


@pytest.mark.parametrize(("part", "prefix", "fitted"), [
    ("body", "smpl", [True, False]), ("hand", "mano", [True, False, False]), ("face", "flame", [True, False]),
])  # fmt: skip
def test_masks_are_one_exactly_where_the_fit_file_has_an_entry(part: str, prefix: str, fitted: list[bool],
                                                                datasets: dict) -> None:  # fmt: skip
    dataset = datasets[part, "train"]
    assert [getattr(r, prefix) is not None for r in dataset.records] == fitted  # 201's right hand is null
    for idx, has_fit in enumerate(fitted):
        _, targets, meta = dataset.get_sample(idx, aug=AugParams())
        masks = {key: np.asarray(meta[key]) for key in meta if key.startswith(prefix) and key.endswith("_valid")}
        assert masks
        if not has_fit:
            assert not any(mask.any() for mask in masks.values()), (idx, masks)
            assert not targets[f"{prefix}_joint_cam"].any()
            continue
        hand_joints = np.repeat(POSE2POSE_HAND_JOINTS_OF_SMPL, 3) if prefix == "smpl" else None
        for key, mask in masks.items():  # SMPL's two hand joints are not the body model's to estimate
            expected = 1.0 - hand_joints if key == "smpl_pose_valid" else np.ones_like(mask)
            np.testing.assert_array_equal(mask.reshape(expected.shape), expected, err_msg=key)
    for split in ("test",):  # no fits for val2017
        assert all(getattr(r, prefix) is None for r in datasets[part, split].records)


@pytest.mark.parametrize(("part", "prefix"), [("body", "smpl"), ("hand", "mano"), ("face", "flame")])
def test_each_family_reads_only_its_own_fit_file_and_a_missing_one_is_named(
    part: str, prefix: str, tmp_path: Path, fits: dict, synthetic_body_model_dir: Path
) -> None:
    write_parts_fixture(tmp_path, {prefix: fits[prefix]})  # the other part files and SMPL-X's are absent
    cfg = part_cfg(part, synthetic_body_model_dir, {"MSCOCO": tmp_path})
    assert len(MSCOCO("train", cfg)) > 0
    (tmp_path / "annotations" / NEURAL_ANNOT_FILES[prefix]).unlink()
    with pytest.raises(MissingAnnotationError, match=NEURAL_ANNOT_FILES[prefix]) as err:
        MSCOCO("train", cfg)
    assert Path(err.value.filename) == tmp_path / "annotations" / NEURAL_ANNOT_FILES[prefix]
    assert len(MSCOCO("test", cfg)) > 0  # val2017 has no fits to read


@pytest.mark.parametrize("file_name", ["../../outside.png", "/etc/outside.png", "sub/../../../outside.png"])
def test_image_paths_must_stay_under_the_image_folder(file_name: str, tmp_path: Path,
                                                       synthetic_body_model_dir: Path) -> None:  # fmt: skip
    write_parts_fixture(tmp_path, {}, file_name=file_name)
    with pytest.raises(ValueError, match="coco_wholebody_val_v1.0.json: image 1, file_name ") as err:
        MSCOCO("test", part_cfg("face", synthetic_body_model_dir, {"MSCOCO": tmp_path}))
    assert file_name in str(err.value)


def test_malformed_fit_entries_are_errors_naming_file_and_key(tmp_path: Path, fits: dict,
                                                              synthetic_body_model_dir: Path) -> None:  # fmt: skip
    broken = json.loads(json.dumps(fits["mano"]))
    del broken["201"]["left"]["mano_param"]["shape"]
    write_parts_fixture(tmp_path, {"mano": broken})
    with pytest.raises(ValueError, match=r"MSCOCO_train_MANO_NeuralAnnot.json \['201'\]\['left'\]: .*'shape'"):
        MSCOCO("train", part_cfg("hand", synthetic_body_model_dir, {"MSCOCO": tmp_path}))
