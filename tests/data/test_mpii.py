"""MPII loader on a fixture in its real layout (annotations/train.json, the NeuralAnnot file, images/ under the
root): a 64x48 image, four annotations (one crowd and one without keypoints, both skipped) and a body-only fit
posed with the stand-in. Expected heatmap coordinates come from tests/data/fixtures.py (`expected_hm`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from common.body_models import get_body_models
from common.body_models.joint_sets import JOINTS, ORIG_JOINTS
from common.utils.augmentation import AugParams
from data.dataset import MissingAnnotationError, sample_shapes
from data.MPII import MPII
from data.MPII.MPII import MPII_JOINTS
from tests.data.fixtures import (
    FOCAL,
    IMG_HW,
    PERSON_BOX,
    PRINCPT,
    check_sample_contract,
    empty_coco,
    expected_hm,
    make_cfg,
    project,
    smplx_world_fit,
    write_image,
    write_json,
)

PLACED = {"R_Ankle": (27.0, 40.0), "L_Hip": (34.0, 28.0), "R_Hip": (29.0, 28.0), "Pelvis": (31.5, 28.0),
          "Head_top": (31.0, 6.0), "L_Wrist": (40.0, 26.0), "R_Shoulder": (27.0, 14.0)}  # fmt: skip
PELVIS_CAM = (0.0, 0.1, 4.0)  # metres: where the fit's pelvis sits in the camera frame
BODY_ONLY = ("root_pose", "body_pose", "shape", "trans")  # MPII's fits carry no hand or face parameters


def mpii_ann(ann_id: int, placed: dict[str, tuple[float, float]], **fields: Any) -> dict[str, Any]:
    kpts = np.zeros((len(MPII_JOINTS), 3))
    for name, (u, v) in placed.items():
        kpts[MPII_JOINTS.index(name)] = (u, v, 1)
    ann = {"id": ann_id, "image_id": 7, "category_id": 1, "iscrowd": 0, "bbox": PERSON_BOX, "area": 825.0,
           "num_keypoints": len(placed), "keypoints": kpts.reshape(-1).tolist()}  # fmt: skip
    return ann | fields


def write_mpii_fixture(root: Path, fit: dict[str, Any], with_fit_file: bool = True) -> None:
    """MPII's layout under ``root``: annotation 11 has a fit, 12 has none, 13 (crowd) and 14 (no keypoints) skip."""
    anns = [mpii_ann(11, PLACED), mpii_ann(12, {"L_Hip": (34.0, 28.0)}), mpii_ann(13, PLACED, iscrowd=1),
            mpii_ann(14, {})]  # fmt: skip
    image = {"id": 7, "file_name": "images/015601864.png", "height": IMG_HW[0], "width": IMG_HW[1]}
    write_json(root / "annotations" / "train.json", empty_coco() | {"images": [image], "annotations": anns})
    if with_fit_file:
        entry = {"smplx_param": fit, "cam_param": {"focal": list(FOCAL), "princpt": list(PRINCPT)}}
        write_json(root / "annotations" / "MPII_train_SMPLX_NeuralAnnot.json", {"11": entry})
    write_image(root / image["file_name"])


@pytest.fixture(scope="module")
def fit(synthetic_body_model_dir: Path) -> dict[str, Any]:
    """A body-only SMPL-X fit in the camera frame."""
    full = smplx_world_fit(1, np.eye(3), get_body_models(synthetic_body_model_dir).smplx("neutral"), PELVIS_CAM)
    return {key: full[key] for key in BODY_ONLY}


@pytest.fixture(scope="module")
def mpii(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path, fit: dict[str, Any]) -> MPII:
    data_dir = tmp_path_factory.mktemp("datasets")
    write_mpii_fixture(data_dir / "MPII" / "data", fit)  # the default root: <data_dir>/MPII/data
    return MPII("train", make_cfg(synthetic_body_model_dir, {}, f"data_dir={data_dir}"))


def hm_hw(dataset: MPII) -> tuple[int, int]:
    return dataset.space.hm_dhw[1], dataset.space.hm_dhw[2]


def test_records_skip_crowd_and_unlabelled_and_read_images_under_the_root(mpii: MPII) -> None:
    assert [r.info["ann_id"] for r in mpii.records] == [11, 12]
    assert mpii.records[0].img_path == mpii.root / "images" / "015601864.png"
    assert mpii.SPLITS == ("train",)


def test_sample_keys_shapes_dtypes_and_2d_supervision(mpii: MPII) -> None:
    sample = _, targets, meta = mpii.get_sample(0, aug=AugParams())
    check_sample_contract(sample, sample_shapes(mpii.space, mpii.body_models.vertex_count, "train"))
    assert float(meta["is_3D"]) == 0.0 and not targets["joint_cam"].any()
    assert [float(meta[f"{p}_bbox_valid"]) for p in ("lhand", "rhand", "face")] == [0.0, 0.0, 0.0]


def test_keypoints_land_at_their_heatmap_coordinates(mpii: MPII) -> None:
    _, targets, meta = mpii.get_sample(0, aug=AugParams())
    for name, (u, v) in PLACED.items():
        if name == "Head_top":  # no supervision joint of that name
            continue
        j = JOINTS.index(name)
        np.testing.assert_allclose(targets["joint_img"][j, :2], expected_hm(u, v, hm_hw(mpii)), atol=1e-4)
    labelled = {JOINTS.index(n) for n in PLACED if n != "Head_top"}
    assert set(np.flatnonzero(meta["joint_valid"][:, 0])) == labelled


def test_flip_swaps_left_and_right(mpii: MPII) -> None:
    _, plain, plain_meta = mpii.get_sample(0, aug=AugParams())
    _, flipped, flipped_meta = mpii.get_sample(0, aug=AugParams(flip=True))
    width = hm_hw(mpii)[1]
    for a, b in (("L_Hip", "R_Hip"), ("R_Hip", "L_Hip"), ("L_Wrist", "R_Wrist"), ("R_Wrist", "L_Wrist")):
        i, j = JOINTS.index(a), JOINTS.index(b)
        assert flipped_meta["joint_valid"][j, 0] == plain_meta["joint_valid"][i, 0]
        if plain_meta["joint_valid"][i, 0]:
            np.testing.assert_allclose(flipped["joint_img"][j, :2], [width - plain["joint_img"][i, 0],
                                                                    plain["joint_img"][i, 1]], atol=1e-4)  # fmt: skip
    pelvis = JOINTS.index("Pelvis")
    np.testing.assert_allclose(flipped["joint_img"][pelvis, 0], width - plain["joint_img"][pelvis, 0], atol=1e-4)


def test_smplx_masks_with_a_fit_follow_hand4whole(mpii: MPII, fit: dict[str, Any]) -> None:
    _, targets, meta = mpii.get_sample(0, aug=AugParams())
    assert meta["smplx_shape_valid"] == 1.0 and meta["smplx_expr_valid"] == 0.0
    pose_valid = meta["smplx_pose_valid"].reshape(-1, 3)[:, 0]
    untrusted = ORIG_JOINTS.indices(["L_Ankle", "R_Ankle", "L_Wrist", "R_Wrist"])
    assert not pose_valid[untrusted].any()
    trusted = np.setdiff1d(np.array(list(ORIG_JOINTS.parts["body"])), untrusted)
    assert pose_valid[trusted].all()
    assert not pose_valid[list(ORIG_JOINTS.parts["lhand"])].any() and not pose_valid[-1]  # no hands, no jaw
    joint_valid = meta["smplx_joint_valid"][:, 0]
    feet = JOINTS.indices(["L_Big_toe", "L_Small_toe", "L_Heel", "R_Big_toe", "R_Small_toe", "R_Heel"])
    assert not joint_valid[feet].any() and joint_valid[JOINTS.indices(["Pelvis", "L_Knee", "Neck"])].all()
    assert np.all(meta["smplx_joint_trunc"] <= meta["smplx_joint_valid"])
    np.testing.assert_allclose(targets["smplx_shape"], fit["shape"], atol=1e-6)
    pelvis_px = project(np.array([PELVIS_CAM]))[0]
    np.testing.assert_allclose(targets["smplx_joint_img"][JOINTS.index("Pelvis"), :2],
                               expected_hm(*pelvis_px, hm_hw(mpii)), atol=1e-3)  # fmt: skip


def test_smplx_masks_are_zero_without_a_fit(mpii: MPII) -> None:
    _, targets, meta = mpii.get_sample(1, aug=AugParams())
    for key in ("smplx_pose_valid", "smplx_shape_valid", "smplx_expr_valid", "smplx_joint_valid"):
        assert not np.any(meta[key]), key
    assert not targets["smplx_pose"].any()
    assert meta["joint_valid"][JOINTS.index("L_Hip"), 0] == 1.0


def test_missing_files_and_unknown_split(tmp_path: Path, synthetic_body_model_dir: Path, fit: dict[str, Any]) -> None:
    cfg = make_cfg(synthetic_body_model_dir, {}, f"data_dir={tmp_path}")
    root = tmp_path / "MPII" / "data"
    with pytest.raises(MissingAnnotationError, match="NeuralAnnot_RELEASE") as err:
        MPII("train", cfg)
    assert Path(err.value.filename) == root / "annotations" / "train.json"
    write_mpii_fixture(root, fit, with_fit_file=False)
    with pytest.raises(MissingAnnotationError) as err:
        MPII("train", cfg)
    assert Path(err.value.filename) == root / "annotations" / "MPII_train_SMPLX_NeuralAnnot.json"
    with pytest.raises(ValueError, match="unknown split 'test'"):
        MPII("test", cfg)


def test_no_fits_file_needed_for_a_family_that_reads_none_and_test_json_read_too(
    tmp_path: Path, synthetic_body_model_dir: Path, fit: dict[str, Any]
) -> None:
    from data.targets import make_targets

    cfg = make_cfg(synthetic_body_model_dir, {}, f"data_dir={tmp_path}")
    root = tmp_path / "MPII" / "data"
    write_mpii_fixture(root, fit, with_fit_file=False)
    targets = make_targets(cfg, get_body_models(synthetic_body_model_dir))
    targets.fits = None  # a skeleton family's target builder (data.fits.fit_model -> None)
    ds = MPII("train", cfg, targets=targets)
    assert [r.info["ann_id"] for r in ds.records] == [11, 12]
    assert all(r.smplx is None and r.cam is None for r in ds.records)
    # test.json, where present, adds its persons
    test_ann = mpii_ann(21, PLACED, image_id=8)
    image = {"id": 8, "file_name": "images/000000001.png", "height": IMG_HW[0], "width": IMG_HW[1]}
    write_json(root / "annotations" / "test.json", empty_coco() | {"images": [image], "annotations": [test_ann]})
    write_image(root / image["file_name"])
    ds = MPII("train", cfg, targets=targets)
    assert [(r.info["file"], r.info["ann_id"]) for r in ds.records] == [("train.json", 11), ("train.json", 12),
                                                                         ("test.json", 21)]  # fmt: skip
    assert ds.records[2].img_path == root / "images" / "000000001.png"
