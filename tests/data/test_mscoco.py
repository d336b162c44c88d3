"""MSCOCO loader on a fixture in COCO-WholeBody's real layout: 64x48 images, four annotations (one crowd and one
without keypoints, both skipped), a NeuralAnnot fit for one person posed with the synthetic SMPL-X stand-in.
Expected heatmap coordinates come from the hand-computed crop box of tests/data/fixtures.py (`expected_hm`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from common.body_models import get_body_models
from common.body_models.joint_sets import JOINTS, ORIG_JOINTS
from common.utils.augmentation import AugParams
from common.utils.image_io import ImageReadError
from data.dataset import MissingAnnotationError, sample_shapes
from data.MSCOCO import MSCOCO
from tests.data.fixtures import (
    CROP_BOX,
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

# Pixels placed in the first person's annotation, by supervision-joint name.
PLACED = {"L_Shoulder": (26.0, 14.0), "R_Shoulder": (36.0, 15.0), "L_Hip": (28.0, 30.0), "R_Hip": (34.0, 32.0),
          "Nose": (31.0, 10.0), "L_Index_1": (41.0, 27.0), "Face_56": (29.0, 9.0), "L_Ankle": (5.0, 46.0)}  # fmt: skip
LHAND_BOX = [38.0, 24.0, 6.0, 5.0]  # xywh
FACE_BOX = [28.0, 6.0, 6.0, 7.0]
PELVIS_CAM = (0.05, 0.1, 4.0)  # metres: where the fit's pelvis sits in the camera frame
COCO_BODY = ("Nose", "L_Eye", "R_Eye", "L_Ear", "R_Ear", "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow", "L_Wrist",
             "R_Wrist", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle", "R_Ankle")  # fmt: skip


def wholebody_ann(ann_id: int, placed: dict[str, tuple[float, float]], **fields: Any) -> dict[str, Any]:
    """A COCO-WholeBody annotation with the given body/hand/face keypoints labelled (v = 2), the rest 0."""
    body, foot = np.zeros((17, 3)), np.zeros((6, 3))
    lhand, rhand, face = np.zeros((21, 3)), np.zeros((21, 3)), np.zeros((68, 3))
    for name, (u, v) in placed.items():
        if name in COCO_BODY:
            body[COCO_BODY.index(name)] = (u, v, 2)
        elif name == "L_Index_1":
            lhand[5] = (u, v, 2)  # wrist, thumb 1-4, then index 1
        elif name == "Face_56":
            face[0] = (u, v, 2)  # iBUG point 1: the first contour point
    ann = {"id": ann_id, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": PERSON_BOX, "area": 768.0,
           "num_keypoints": int((body[:, 2] > 0).sum()), "keypoints": body.reshape(-1).tolist(),
           "foot_kpts": foot.reshape(-1).tolist(), "lefthand_kpts": lhand.reshape(-1).tolist(),
           "righthand_kpts": rhand.reshape(-1).tolist(), "face_kpts": face.reshape(-1).tolist(),
           "lefthand_box": [0, 0, 0, 0], "righthand_box": [0, 0, 0, 0], "face_box": [0, 0, 0, 0],
           "lefthand_valid": False, "righthand_valid": False, "face_valid": False, "foot_valid": False}  # fmt: skip
    return ann | fields


def write_coco_fixture(root: Path, fit: dict[str, Any], write_images: bool = True) -> None:
    """MSCOCO's layout under ``root``: both splits hold the same four annotations; only 101 has a fit."""
    anns = [
        wholebody_ann(101, PLACED, lefthand_box=LHAND_BOX, lefthand_valid=True, face_box=FACE_BOX, face_valid=True),
        wholebody_ann(102, {"L_Hip": (28.0, 30.0), "L_Shoulder": (26.0, 14.0)}),  # right hip unlabelled
        wholebody_ann(103, PLACED, iscrowd=1),
        wholebody_ann(104, {}),
    ]
    image = {"id": 1, "file_name": "000000000001.png", "height": IMG_HW[0], "width": IMG_HW[1]}
    for split, folder in (("train", "train2017"), ("val", "val2017")):
        coco = empty_coco() | {"images": [image], "annotations": anns}
        write_json(root / "annotations" / f"coco_wholebody_{split}_v1.0.json", coco)
        if write_images:
            write_image(root / "images" / folder / image["file_name"])
    entry = {"smplx_param": fit, "cam_param": {"focal": list(FOCAL), "princpt": list(PRINCPT)}}
    write_json(root / "annotations" / "MSCOCO_train_SMPLX_all_NeuralAnnot.json", {"101": entry})


@pytest.fixture(scope="module")
def fit(synthetic_body_model_dir: Path) -> dict[str, Any]:
    """A SMPL-X fit in the camera frame (NeuralAnnot's MSCOCO fits have no R, t), all parts posed."""
    return smplx_world_fit(0, np.eye(3), get_body_models(synthetic_body_model_dir).smplx("neutral"), PELVIS_CAM)


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory: pytest.TempPathFactory, fit: dict[str, Any]) -> Path:
    root = tmp_path_factory.mktemp("mscoco")
    write_coco_fixture(root, fit)
    return root


@pytest.fixture(scope="module")
def train_set(coco_root: Path, synthetic_body_model_dir: Path) -> MSCOCO:
    return MSCOCO("train", make_cfg(synthetic_body_model_dir, {"MSCOCO": coco_root}))


@pytest.fixture(scope="module")
def test_set(coco_root: Path, synthetic_body_model_dir: Path) -> MSCOCO:
    return MSCOCO("test", make_cfg(synthetic_body_model_dir, {"MSCOCO": coco_root}))


def hm_hw(dataset: MSCOCO) -> tuple[int, int]:
    return dataset.space.hm_dhw[1], dataset.space.hm_dhw[2]


def test_crowd_and_unlabelled_annotations_are_skipped(train_set: MSCOCO, test_set: MSCOCO) -> None:
    assert [r.info["ann_id"] for r in train_set.records] == [101, 102]
    assert [r.info["ann_id"] for r in test_set.records] == [101, 102]
    assert train_set.records[0].img_path == train_set.root / "images" / "train2017" / "000000000001.png"
    assert test_set.records[0].img_path == test_set.root / "images" / "val2017" / "000000000001.png"


@pytest.mark.parametrize("split", ["train", "test"])
def test_sample_keys_shapes_and_dtypes(split: str, train_set: MSCOCO, test_set: MSCOCO) -> None:
    dataset = train_set if split == "train" else test_set
    inputs, targets, meta = sample = dataset[0]
    check_sample_contract(sample, sample_shapes(dataset.space, dataset.body_models.vertex_count, split))
    assert 0.0 <= float(inputs["img"].min()) and float(inputs["img"].max()) <= 1.0
    assert float(meta["is_3D"]) == 0.0 and not targets["joint_cam"].any()


def test_keypoints_land_at_their_heatmap_coordinates(test_set: MSCOCO) -> None:
    _, targets, meta = test_set[0]
    for name, (u, v) in PLACED.items():
        j = JOINTS.index(name)
        np.testing.assert_allclose(targets["joint_img"][j, :2], expected_hm(u, v, hm_hw(test_set)), atol=1e-4)
        assert meta["joint_valid"][j, 0] == 1.0, name
    inside = meta["joint_trunc"][:, 0]
    assert inside[JOINTS.index("L_Ankle")] == 0.0  # labelled but outside the crop
    assert inside[JOINTS.index("L_Shoulder")] == 1.0
    labelled = {JOINTS.index(n) for n in (*PLACED, "Pelvis", "Face_18")}  # with the two fill-ins
    assert set(np.flatnonzero(meta["joint_valid"][:, 0])) == labelled
    assert not targets["joint_img"][meta["joint_valid"][:, 0] == 0].any()


def test_pelvis_is_the_mean_of_the_hips_when_both_are_labelled(test_set: MSCOCO) -> None:
    _, targets, meta = test_set[0]
    pelvis = JOINTS.index("Pelvis")
    hips = np.mean([PLACED["L_Hip"], PLACED["R_Hip"]], axis=0)
    np.testing.assert_allclose(targets["joint_img"][pelvis, :2], expected_hm(*hips, hm_hw(test_set)), atol=1e-4)
    assert meta["joint_valid"][pelvis, 0] == 1.0
    _, _, meta_one_hip = test_set[1]
    assert meta_one_hip["joint_valid"][JOINTS.index("L_Hip"), 0] == 1.0
    assert meta_one_hip["joint_valid"][pelvis, 0] == 0.0


def test_face_nose_tip_is_filled_from_the_body_nose(test_set: MSCOCO) -> None:
    _, targets, meta = test_set[0]
    nose, tip = JOINTS.index("Nose"), JOINTS.index("Face_18")
    assert meta["joint_valid"][tip, 0] == 1.0
    np.testing.assert_allclose(targets["joint_img"][tip], targets["joint_img"][nose])


def test_hand_and_face_boxes_land_where_placed(test_set: MSCOCO) -> None:
    _, targets, meta = test_set[0]
    size_scale = np.array([hm_hw(test_set)[1] / CROP_BOX[2], hm_hw(test_set)[0] / CROP_BOX[3]])
    for part, (x, y, w, h) in (("lhand", LHAND_BOX), ("face", FACE_BOX)):
        assert meta[f"{part}_bbox_valid"] == 1.0
        np.testing.assert_allclose(targets[f"{part}_bbox_center"], expected_hm(x + w / 2, y + h / 2, hm_hw(test_set)),
                                   atol=1e-4)  # fmt: skip
        np.testing.assert_allclose(targets[f"{part}_bbox_size"], np.array([w, h]) * size_scale, atol=1e-4)
    assert meta["rhand_bbox_valid"] == 0.0 and not targets["rhand_bbox_center"].any()
    _, _, meta_no_boxes = test_set[1]
    assert [float(meta_no_boxes[f"{p}_bbox_valid"]) for p in ("lhand", "rhand", "face")] == [0.0, 0.0, 0.0]


def test_flip_swaps_left_and_right(train_set: MSCOCO) -> None:
    _, plain, plain_meta = train_set.get_sample(0, aug=AugParams())
    _, flipped, flipped_meta = train_set.get_sample(0, aug=AugParams(flip=True))
    width = hm_hw(train_set)[1]

    def mirrored(xy: np.ndarray) -> np.ndarray:  # heatmap (x, y) of the mirror image of an un-augmented crop
        return np.array([width - xy[0], xy[1]])

    for left, right in (("L_Shoulder", "R_Shoulder"), ("L_Hip", "R_Hip"), ("L_Index_1", "R_Index_1")):
        for a, b in ((left, right), (right, left)):
            i, j = JOINTS.index(a), JOINTS.index(b)
            assert flipped_meta["joint_valid"][j, 0] == plain_meta["joint_valid"][i, 0]
            if plain_meta["joint_valid"][i, 0]:
                np.testing.assert_allclose(flipped["joint_img"][j, :2], mirrored(plain["joint_img"][i, :2]), atol=1e-4)
    assert flipped_meta["rhand_bbox_valid"] == 1.0 and flipped_meta["lhand_bbox_valid"] == 0.0
    np.testing.assert_allclose(flipped["rhand_bbox_center"], mirrored(plain["lhand_bbox_center"]), atol=1e-4)
    np.testing.assert_allclose(flipped["rhand_bbox_size"], plain["lhand_bbox_size"], atol=1e-4)
    left_hip, right_hip = (ORIG_JOINTS.index(n) for n in ("L_Hip", "R_Hip"))
    pose, pose_flipped = plain["smplx_pose"].reshape(-1, 3), flipped["smplx_pose"].reshape(-1, 3)
    np.testing.assert_allclose(pose_flipped[right_hip], pose[left_hip] * [1, -1, -1], atol=1e-5)
    np.testing.assert_allclose(pose_flipped[left_hip], pose[right_hip] * [1, -1, -1], atol=1e-5)
    assert flipped_meta["smplx_pose_valid"].reshape(-1, 3)[list(ORIG_JOINTS.parts["rhand"])].all()


def test_smplx_targets_and_masks_with_a_neural_annot_fit(train_set: MSCOCO, fit: dict[str, Any]) -> None:
    _, targets, meta = train_set.get_sample(0, aug=AugParams())
    assert meta["smplx_shape_valid"] == 1.0 and meta["smplx_expr_valid"] == 1.0
    np.testing.assert_allclose(targets["smplx_shape"], fit["shape"], atol=1e-6)
    pose_valid = meta["smplx_pose_valid"].reshape(-1, 3)[:, 0]
    assert pose_valid[list(ORIG_JOINTS.parts["body"])].all() and pose_valid[list(ORIG_JOINTS.parts["lhand"])].all()
    assert not pose_valid[list(ORIG_JOINTS.parts["rhand"])].any()  # the annotation's right hand is not valid
    joint_valid = meta["smplx_joint_valid"][:, 0]
    assert joint_valid[list(JOINTS.parts["body"])].all() and not joint_valid[list(JOINTS.parts["rhand"])].any()
    # The fit's pelvis, projected with the fit's camera, lands where the crop puts that pixel.
    pelvis_px = project(np.array([PELVIS_CAM]))[0]
    np.testing.assert_allclose(targets["smplx_joint_img"][JOINTS.index("Pelvis"), :2],
                               expected_hm(*pelvis_px, hm_hw(train_set)), atol=1e-3)  # fmt: skip


def test_smplx_masks_are_zero_without_a_fit(train_set: MSCOCO, test_set: MSCOCO) -> None:
    _, targets, meta = train_set.get_sample(1, aug=AugParams())
    for key in ("smplx_pose_valid", "smplx_shape_valid", "smplx_expr_valid", "smplx_joint_valid", "smplx_joint_trunc"):
        assert not np.any(meta[key]), key
    assert not targets["smplx_joint_img"].any() and not targets["smplx_pose"].any()
    assert meta["joint_valid"][JOINTS.index("L_Shoulder"), 0] == 1.0  # the keypoints are still supervised
    _, test_targets, test_meta = test_set[0]  # no fits for val2017
    assert test_meta["smplx_mesh_valid"] == 0.0 and not test_targets["smplx_mesh_cam"].any()
    assert test_meta["smplx_shape_valid"] == 0.0


def test_missing_annotation_files_are_named_with_the_download_page(
    tmp_path: Path, synthetic_body_model_dir: Path, fit: dict[str, Any]
) -> None:
    cfg = make_cfg(synthetic_body_model_dir, {}, f"data_dir={tmp_path}")  # the default root <data_dir>/MSCOCO
    root = tmp_path / "MSCOCO"
    with pytest.raises(MissingAnnotationError, match="COCO-WholeBody") as err:
        MSCOCO("test", cfg)
    assert Path(err.value.filename) == root / "annotations" / "coco_wholebody_val_v1.0.json"
    write_coco_fixture(root, fit)
    (root / "annotations" / "MSCOCO_train_SMPLX_all_NeuralAnnot.json").unlink()
    with pytest.raises(MissingAnnotationError, match="NeuralAnnot") as err:
        MSCOCO("train", cfg)
    assert Path(err.value.filename) == root / "annotations" / "MSCOCO_train_SMPLX_all_NeuralAnnot.json"


def test_missing_image_is_an_error_naming_the_file(
    tmp_path: Path, synthetic_body_model_dir: Path, fit: dict[str, Any]
) -> None:
    write_coco_fixture(tmp_path, fit, write_images=False)
    dataset = MSCOCO("test", make_cfg(synthetic_body_model_dir, {"MSCOCO": tmp_path}))
    with pytest.raises(ImageReadError, match="not found: .*000000000001.png") as err:
        dataset[0]
    assert Path(err.value.filename) == tmp_path / "images" / "val2017" / "000000000001.png"
