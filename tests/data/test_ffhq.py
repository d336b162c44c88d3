"""FFHQ loader on a fixture in the reference's layout (FFHQ.json, flame_param.json, images/): one 64x48 image with
three face annotations (1 with a FLAME fit posed with the synthetic stand-in, 2 without, 3 boxed off the image).
The face crop is worked out by hand in tests/data/test_mscoco_parts.py (`FACE_CROP`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from common.body_models import get_body_models
from common.body_models.joint_sets import FLAME_OUTPUT
from common.utils.augmentation import AugParams
from data.FFHQ import FFHQ
from data.FFHQ.FFHQ import FLAME_FIT_FILES, MissingFitFileError
from data.record import MissingAnnotationError
from tests.data.fixtures import FOCAL, IMG_HW, PRINCPT, check_sample_contract, empty_coco, write_image, write_json
from tests.data.test_mscoco_parts import (
    FACE_BOX,
    FACE_CROP,
    expected_hm,
    flame_fit_entry,
    flame_layer_joints,
    part_cfg,
)

PLACED = {"Face_56": (27.0, 9.0), "Face_18": (31.0, 11.0)}  # pixels of two labelled landmarks of annotation 1
FACE_ROOT_CAM = (0.02, 0.05, 1.2)  # metres: where the fit's root joint sits in the camera frame


def face_ann(ann_id: int, placed: dict[str, tuple[float, float]], bbox: list[float]) -> dict[str, Any]:
    """An FFHQ annotation: 73 (x, y) keypoints in FLAME's joint order with a separate validity list."""
    xy, valid = np.zeros((len(FLAME_OUTPUT), 2)), np.zeros(len(FLAME_OUTPUT))
    for name, uv in placed.items():
        xy[FLAME_OUTPUT.index(name)], valid[FLAME_OUTPUT.index(name)] = uv, 1.0
    return {"id": ann_id, "image_id": 1, "category_id": 1, "bbox": bbox, "keypoints": xy.reshape(-1).tolist(),
            "keypoints_valid": valid.tolist()}  # fmt: skip


def write_ffhq_fixture(root: Path, fits: dict[str, Any], fit_name: str = FLAME_FIT_FILES[0],
                       file_name: str = "00000/00000.png") -> None:  # fmt: skip
    anns = [face_ann(1, PLACED, FACE_BOX), face_ann(2, {"Face_56": (28.0, 9.0)}, FACE_BOX),
            face_ann(3, PLACED, [100.0, 100.0, 10.0, 10.0])]  # fmt: skip
    image = {"id": 1, "file_name": file_name, "height": IMG_HW[0], "width": IMG_HW[1]}
    write_json(root / "FFHQ.json", empty_coco() | {"images": [image], "annotations": anns})
    write_image(root / "images" / "00000" / "00000.png")
    write_json(root / fit_name, fits)


@pytest.fixture(scope="module")
def fits(synthetic_body_model_dir: Path) -> dict[str, Any]:
    return {"1": flame_fit_entry(get_body_models(synthetic_body_model_dir).flame(), 7, FACE_ROOT_CAM)}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, fits: dict, synthetic_body_model_dir: Path) -> FFHQ:
    root = tmp_path_factory.mktemp("ffhq")
    write_ffhq_fixture(root, fits)
    return FFHQ("train", part_cfg("face", synthetic_body_model_dir, {"FFHQ": root}))


def hm_hw(dataset: FFHQ) -> tuple[int, int]:
    return dataset.space.hm_dhw[1], dataset.space.hm_dhw[2]


def test_one_face_record_per_annotation_in_the_image(dataset: FFHQ) -> None:
    assert [r.info["ann_id"] for r in dataset.records] == [1, 2]
    record = dataset.records[0]
    assert record.img_path == dataset.root / "images" / "00000" / "00000.png"
    assert record.crop == "face" and not record.is_3D
    np.testing.assert_allclose(record.bbox_xywh_img, FACE_CROP, atol=1e-5)  # at the face input's aspect, 0.75


def test_sample_keys_and_shapes_are_the_face_contract(dataset: FFHQ) -> None:
    for idx in range(len(dataset)):
        _, targets, meta = sample = dataset[idx]
        check_sample_contract(sample, dataset.targets.sample_shapes("train"))
        assert float(meta["is_3D"]) == 0.0 and not targets["joint_cam"].any()


def test_keypoints_land_at_their_heatmap_coordinates(dataset: FFHQ) -> None:
    _, targets, meta = dataset.get_sample(0, aug=AugParams())
    for name, (u, v) in PLACED.items():
        j = FLAME_OUTPUT.index(name)
        np.testing.assert_allclose(targets["joint_img"][j, :2], expected_hm(u, v, FACE_CROP, hm_hw(dataset)), atol=1e-4)
    assert set(np.flatnonzero(meta["joint_valid"][:, 0])) == {FLAME_OUTPUT.index(n) for n in PLACED}


def test_flame_targets_come_from_the_fit_and_masks_follow_the_entries(
    dataset: FFHQ, fits: dict, synthetic_body_model_dir: Path
) -> None:
    _, targets, meta = dataset.get_sample(0, aug=AugParams())
    fit = fits["1"]["flame_param"]
    for key in ("root_pose", "jaw_pose", "shape", "expr"):
        np.testing.assert_allclose(targets[f"flame_{key}"], fit[key], atol=1e-5, err_msg=key)
        assert meta[f"flame_{key}_valid"] == 1.0, key
    assert meta["flame_joint_valid"].all()
    joints = flame_layer_joints(get_body_models(synthetic_body_model_dir).flame(), fit)  # (73, 3) camera metres
    np.testing.assert_allclose(joints[0], FACE_ROOT_CAM, atol=1e-5)
    np.testing.assert_allclose(targets["flame_joint_cam"], joints - joints[0], atol=1e-5)
    record = dataset.records[0]  # the translation and camera reach no training target (all root-relative)
    assert record.flame is not None and record.cam is not None
    np.testing.assert_allclose(record.flame.trans, fit["trans"])
    np.testing.assert_allclose(np.concatenate([record.cam.focal, record.cam.princpt]), [*FOCAL, *PRINCPT])
    _, no_fit_targets, no_fit_meta = dataset.get_sample(1, aug=AugParams())  # annotation 2: no entry
    assert not any(np.any(no_fit_meta[k]) for k in no_fit_meta if k.startswith("flame_"))
    assert not no_fit_targets["flame_joint_cam"].any() and not no_fit_targets["flame_expr"].any()
    assert no_fit_meta["joint_valid"].any()  # its keypoints are still supervised


def test_a_fit_without_translation_is_at_the_origin(tmp_path: Path, fits: dict,
                                                    synthetic_body_model_dir: Path) -> None:  # fmt: skip
    entry = {"flame_param": {k: v for k, v in fits["1"]["flame_param"].items() if k != "trans"},
             "cam_param": fits["1"]["cam_param"]}  # fmt: skip
    write_ffhq_fixture(tmp_path, {"1": entry})
    record = FFHQ("train", part_cfg("face", synthetic_body_model_dir, {"FFHQ": tmp_path})).records[0]
    assert record.flame is not None and not record.flame.trans.any()
    np.testing.assert_allclose(record.flame.expr, entry["flame_param"]["expr"])


def test_the_readme_name_of_the_fit_file_is_read_when_the_codes_is_absent(
    tmp_path: Path, fits: dict, synthetic_body_model_dir: Path
) -> None:
    cfg = part_cfg("face", synthetic_body_model_dir, {"FFHQ": tmp_path})
    write_ffhq_fixture(tmp_path, fits, fit_name=FLAME_FIT_FILES[1])
    assert [r.flame is not None for r in FFHQ("train", cfg).records] == [True, False]
    write_json(tmp_path / FLAME_FIT_FILES[0], {})  # both present: the code's name wins
    assert [r.flame is not None for r in FFHQ("train", cfg).records] == [False, False]


def test_missing_files_are_errors_naming_them(tmp_path: Path, fits: dict, synthetic_body_model_dir: Path) -> None:
    cfg = part_cfg("face", synthetic_body_model_dir, {}, f"data_dir={tmp_path}")  # default root <data_dir>/FFHQ/data
    root = tmp_path / "FFHQ" / "data"
    with pytest.raises(MissingAnnotationError, match="FFHQ.json") as err:
        FFHQ("train", cfg)
    assert Path(err.value.filename) == root / "FFHQ.json"
    write_ffhq_fixture(root, fits)
    (root / FLAME_FIT_FILES[0]).unlink()
    with pytest.raises(MissingFitFileError) as fit_err:
        FFHQ("train", cfg)
    assert isinstance(fit_err.value, MissingAnnotationError)
    assert all(str(root / name) in str(fit_err.value) for name in FLAME_FIT_FILES)


@pytest.mark.parametrize("file_name", ["../outside.png", "/tmp/outside.png", "images/../../outside.png"])
def test_image_paths_must_stay_under_the_image_folder(file_name: str, tmp_path: Path, fits: dict,
                                                       synthetic_body_model_dir: Path) -> None:  # fmt: skip
    write_ffhq_fixture(tmp_path, fits, file_name=file_name)
    with pytest.raises(ValueError, match="FFHQ.json: image 1, file_name ") as err:
        FFHQ("train", part_cfg("face", synthetic_body_model_dir, {"FFHQ": tmp_path}))
    assert file_name in str(err.value)


def test_keypoint_count_and_split_and_family_are_checked(tmp_path: Path, fits: dict,
                                                          synthetic_body_model_dir: Path) -> None:  # fmt: skip
    write_ffhq_fixture(tmp_path, fits)
    cfg = part_cfg("face", synthetic_body_model_dir, {"FFHQ": tmp_path})
    with pytest.raises(ValueError, match="unknown split 'test'"):
        FFHQ("test", cfg)
    with pytest.raises(ValueError, match="FFHQ has no hand crops"):
        FFHQ("train", part_cfg("hand", synthetic_body_model_dir, {"FFHQ": tmp_path}))
    coco = empty_coco() | {"images": [{"id": 1, "file_name": "00000/00000.png", "height": 48, "width": 64}],
                           "annotations": [face_ann(1, PLACED, FACE_BOX) | {"keypoints": [0.0] * 68 * 2}]}  # fmt: skip
    write_json(tmp_path / "FFHQ.json", coco)
    with pytest.raises(ValueError, match="FFHQ.json: annotation 1 holds 136 'keypoints' numbers"):
        FFHQ("train", cfg)
