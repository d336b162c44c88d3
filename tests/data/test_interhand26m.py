"""InterHand2.6M loader on a fixture in the release's layout (annotations/<split>/InterHand2.6M_<split>_*.json,
images/<split>/...). Each hand is the synthetic stand-in's MANO of its side, fitted in a world frame: parameters
chosen here, world joints (mm) from posing them, a camera (R, centre in mm) looking at them. So the file's
joints, MANO fits and cameras agree, and every unit and frame conversion of the loader is checked against them.

Split 'val' (4 annotations of one camera):
* ann 0, frame 10, 'interacting': both hands labelled -> a right and a left record;
* ann 1, frame 20, 'right': the left hand is labelled too but not named -> one right record, whose frame has no
  MANO fit (null);
* ann 2, frame 30, 'left': the left wrist is unlabelled -> the hand counts as unlabelled, no record;
* ann 3, frame 40, 'left', one finger unlabelled -> a left record with 17 labelled joints.
Split 'train': frame 10 'right' seen by 4 cameras, for the view subsampling.
Images 40x48 (H x W), f = 60 px, principal point (24, 20); config: the hand model at CPU size (64x64 input,
heatmap 8x2x2, depth 0.3 m).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from common.body_models import get_body_models
from common.body_models.joint_sets import HAND_21
from common.geometry import axis_angle_to_rotmat
from common.utils.augmentation import NO_AUGMENTATION, AugParams
from data.InterHand26M import InterHand26M
from data.InterHand26M.InterHand26M import INTERHAND_HAND_JOINTS
from data.record import MissingAnnotationError
from main.config import load_config
from tests.data.fixtures import write_image, write_json
from tests.data.test_freihand import SMALL_HAND, pose_mano

IMG_HW = (40, 48)
FOCAL, PRINCPT = (60.0, 60.0), (24.0, 20.0)
CAPTURE, SEQ = "0", "0051_dinosaur"
CAM_ROTATION = axis_angle_to_rotmat(torch.tensor([0.2, -0.3, 0.1], dtype=torch.float64)).numpy()  # world -> camera
CAM_CENTRE_MM = np.array([120.0, -80.0, -450.0])  # camera position in the world, mm
WRISTS_CAM = {"right": (-0.03, 0.01, 0.5), "left": (0.04, -0.01, 0.55)}  # metres, camera frame (camera 400002)
VAL_ANNS = (  # (frame, hand_type, unlabelled joints of the 42)
    (10, "interacting", ()),
    (20, "right", ()),
    (30, "left", (21 + INTERHAND_HAND_JOINTS.index("Wrist"),)),
    (40, "left", tuple(21 + INTERHAND_HAND_JOINTS.index(f"Ring_{k}") for k in range(1, 5))),
)
TRAIN_CAMERAS = ("400002", "400004", "400010", "400012")  # sorted as text: cam400002 < cam400004 < cam400010 < ...
INTERHAND_TO_HAND21 = HAND_21.indices(INTERHAND_HAND_JOINTS)  # (21,) HAND_21 rows in InterHand's order


def world_hand(layer: Any, seed: int, wrist_cam: tuple[float, float, float], camera_t: np.ndarray) -> dict:
    """A world-frame MANO fit whose wrist is at ``wrist_cam`` in the camera (R = CAM_ROTATION, t = camera_t m)."""
    rng = np.random.default_rng(seed)
    pose = np.concatenate([[0.5, 0.2, -0.3], 0.2 * rng.standard_normal(45)])
    shape = 0.5 * rng.standard_normal(10)
    joints0, _ = pose_mano(layer, pose, shape, np.zeros(3))
    wrist_world = CAM_ROTATION.T @ (np.asarray(wrist_cam) - camera_t)
    trans = wrist_world - joints0[HAND_21.index("Wrist")]
    joints_world, _ = pose_mano(layer, pose, shape, trans)
    joints_cam = joints_world @ CAM_ROTATION.T + camera_t
    return {"pose": pose, "shape": shape, "trans": trans, "world_mm": joints_world * 1000.0, "joints_cam": joints_cam}


def camera_table(cameras: tuple[str, ...]) -> dict:
    """One capture's cameras: all share R; camera k sits k x 50 mm to the side of the first."""
    table: dict[str, dict] = {"campos": {}, "camrot": {}, "focal": {}, "princpt": {}}
    for k, cam in enumerate(cameras):
        table["campos"][cam] = (CAM_CENTRE_MM + [50.0 * k, 0.0, 0.0]).tolist()
        table["camrot"][cam] = CAM_ROTATION.tolist()
        table["focal"][cam], table["princpt"][cam] = list(FOCAL), list(PRINCPT)
    return {CAPTURE: table}


def write_split(root: Path, split: str, anns: tuple, cameras: tuple[str, ...], body_models: Any) -> dict:
    """The split's four files and images; returns frame -> side -> the fixture hand."""
    camera_t = -CAM_ROTATION @ CAM_CENTRE_MM / 1000.0  # camera 0's t, metres
    coco: dict[str, list] = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "hand"}]}
    joint_3d, mano, hands = {CAPTURE: {}}, {CAPTURE: {}}, {}
    for k, (frame, hand_type, unlabelled) in enumerate(anns):
        sides = {s: world_hand(body_models.mano(s), 10 * k + i, WRISTS_CAM[s], camera_t)
                 for i, s in enumerate(("right", "left"))}  # fmt: skip
        hands[frame] = sides
        world = np.concatenate([sides[s]["world_mm"][INTERHAND_TO_HAND21] for s in ("right", "left")])  # (42, 3)
        joint_3d[CAPTURE][str(frame)] = {"world_coord": world.tolist(), "hand_type": hand_type}
        fits = {s: {key: sides[s][key].tolist() for key in ("pose", "shape", "trans")} for s in sides}
        mano[CAPTURE][str(frame)] = {"right": None, "left": fits["left"]} if frame == 20 else fits
        valid = np.ones(42)
        valid[list(unlabelled)] = 0
        for c, cam in enumerate(cameras):
            image_id = 100 * k + c
            file_name = f"Capture{CAPTURE}/{SEQ}/cam{cam}/image{frame:05d}.jpg"
            coco["images"].append({"id": image_id, "file_name": file_name, "width": IMG_HW[1],
                                   "height": IMG_HW[0], "capture": int(CAPTURE), "seq_name": SEQ, "camera": cam,
                                   "frame_idx": frame})  # fmt: skip
            coco["annotations"].append({"id": image_id, "image_id": image_id, "category_id": 1, "bbox": [0, 0, 1, 1],
                                        "joint_valid": valid.tolist(), "hand_type": hand_type,
                                        "hand_type_valid": 1})  # fmt: skip
            write_image(root / "images" / split / file_name, seed=image_id, hw=IMG_HW)
    tables = {"data": coco, "camera": camera_table(cameras), "joint_3d": joint_3d, "MANO_NeuralAnnot": mano}
    for kind, content in tables.items():
        write_json(root / "annotations" / split / f"InterHand2.6M_{split}_{kind}.json", content)
    return hands


@pytest.fixture(scope="module")
def interhand(tmp_path_factory, synthetic_body_model_dir):
    body_models = get_body_models(synthetic_body_model_dir)
    root = tmp_path_factory.mktemp("InterHand26M")
    hands = write_split(root, "val", VAL_ANNS, ("400002",), body_models)
    write_split(root, "train", ((10, "right", ()),), TRAIN_CAMERAS, body_models)
    return root, hands, synthetic_body_model_dir


def make_cfg(root: Path, models: Path):
    return load_config("pose2pose_hand", [f"human_model_path={models}", *SMALL_HAND,
                                          f"data.dataset_roots={{InterHand26M: {root}}}"])  # fmt: skip


def crop_box(uv: np.ndarray) -> np.ndarray:
    """The hand crop of labelled pixels, worked out step by step: their box x1.5 about its centre, clipped to the
    image (x2 = x1 + w - 1), squared on its longer side, x1.25."""
    lo, hi = uv.min(0), uv.max(0)
    centre, size = (lo + hi) / 2, (hi - lo) * 1.5
    x1, y1 = max(0.0, centre[0] - size[0] / 2), max(0.0, centre[1] - size[1] / 2)
    x2, y2 = min(IMG_HW[1] - 1.0, x1 + size[0] - 1), min(IMG_HW[0] - 1.0, y1 + size[1] - 1)
    side = max(x2 - x1, y2 - y1) * 1.25
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([cx - side / 2, cy - side / 2, side, side])


def expected_joint_img(joints_cam: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(21, 3) heatmap coordinates of HAND_21 camera joints (8x2x2 heatmap over a 0.3 m depth), 0 where unlabelled."""
    uv = joints_cam[:, :2] / joints_cam[:, 2:] * np.asarray(FOCAL) + np.asarray(PRINCPT)
    x0, y0, w, h = crop_box(uv[valid > 0])
    z = ((joints_cam[:, 2] - joints_cam[0, 2]) / 0.15 + 1) / 2 * 8
    return np.stack([(uv[:, 0] - x0) / w * 2, (uv[:, 1] - y0) / h * 2, z], axis=1) * valid[:, None]


def check_contract(ds: InterHand26M, sample: tuple[dict, dict, dict]) -> dict[str, np.ndarray]:
    merged = {**sample[0], **sample[1], **sample[2]}
    shapes = ds.targets.sample_shapes(ds.split)
    assert set(merged) == set(shapes), set(merged) ^ set(shapes)
    for key, value in merged.items():
        assert tuple(value.shape) == shapes[key], key
        assert value.dtype == (np.bool_ if key == "is_left" else np.float32) or value.dtype == torch.float32, key
    return {key: np.asarray(value) for key, value in merged.items()}


def test_one_record_per_named_labelled_hand(interhand):
    root, _, models = interhand
    ds = InterHand26M("val", make_cfg(root, models))
    assert [(r.info["frame_idx"], r.hand_side) for r in ds.records] == [("10", "right"), ("10", "left"),
                                                                       ("20", "right"), ("40", "left")]  # fmt: skip
    assert ds.records[0].img_path == root / "images" / "val" / f"Capture0/{SEQ}/cam400002/image00010.jpg"
    assert all(r.crop == "hand" and r.is_3D for r in ds.records)
    assert ds.records[2].mano is None and ds.records[1].mano.side == "left"
    assert ds.records[3].joints_valid.sum() == 17


def test_joints_boxes_and_mano_targets_agree(interhand):
    root, hands, models = interhand
    ds = InterHand26M("val", make_cfg(root, models))
    for index, (frame, side) in enumerate(((10, "right"), (10, "left"), (20, "right"), (40, "left"))):
        record, hand = ds.records[index], hands[frame][side]
        # mm world joints -> metres in the camera frame, InterHand's order kept in the record
        np.testing.assert_allclose(record.joints_cam, hand["joints_cam"][INTERHAND_TO_HAND21], atol=1e-6)
        valid = record.joints_valid[np.argsort(INTERHAND_TO_HAND21)]  # HAND_21 order
        sample = check_contract(ds, ds[index])
        assert bool(sample["is_left"]) == (side == "left")
        np.testing.assert_allclose(sample["joint_valid"][:, 0], valid)
        np.testing.assert_allclose(sample["joint_img"], expected_joint_img(hand["joints_cam"], valid), atol=1e-4)
        rel = (hand["joints_cam"] - hand["joints_cam"][0]) * valid[:, None]
        np.testing.assert_allclose(sample["joint_cam"], rel, atol=1e-5)
        if record.mano is None:
            assert sample["mano_joint_valid"].sum() == 0 and sample["mano_mesh_valid"] == 0
            continue
        # the world-frame fit, moved by the camera's R and t, lands on the dataset's joints
        np.testing.assert_allclose(sample["mano_joint_cam"] * valid[:, None], sample["joint_cam"], atol=2e-5)
        mano_joint_img = sample["mano_joint_img"] * valid[:, None]
        np.testing.assert_allclose(mano_joint_img, sample["joint_img"], atol=2e-4)
        mesh_wrist = ds.body_models.mano(side).J_regressor[0].double().numpy() @ sample["mano_mesh_cam"]
        assert np.linalg.norm(mesh_wrist - hand["joints_cam"][0]) < 0.01  # the GT mesh sits where the joints do


def test_a_flip_turns_a_left_hand_into_a_right_one(interhand):
    root, _, models = interhand
    ds = InterHand26M("val", make_cfg(root, models))
    plain, flipped = ds.get_sample(1, aug=NO_AUGMENTATION), ds.get_sample(1, aug=AugParams(flip=True))
    assert bool(plain[0]["is_left"]) and not bool(flipped[0]["is_left"])
    np.testing.assert_allclose(flipped[1]["joint_cam"][:, 0], -plain[1]["joint_cam"][:, 0], atol=1e-6)


def test_camera_views_are_all_kept_unless_subsampled(interhand):
    root, _, models = interhand
    cfg = make_cfg(root, models)
    assert [r.info["camera"] for r in InterHand26M("train", cfg).records] == list(TRAIN_CAMERAS)

    class TenthOfViews(InterHand26M):
        TRAIN_VIEWS = 2  # 4 cameras // 2: every second of the sorted names, as the reference's 1/10

    assert [r.info["camera"] for r in TenthOfViews("train", cfg).records] == ["400002", "400010"]
    # each camera's own t: the same world hand lands elsewhere in each view
    records = InterHand26M("train", cfg).records
    np.testing.assert_allclose(records[1].joints_cam - records[0].joints_cam,
                               np.tile(-CAM_ROTATION @ [0.05, 0, 0], (21, 1)), atol=1e-9)  # fmt: skip


def test_missing_annotation_file_is_named(interhand, tmp_path):
    root, _, models = interhand
    copy = tmp_path / "InterHand26M"
    shutil.copytree(root / "annotations", copy / "annotations")
    (copy / "annotations" / "val" / "InterHand2.6M_val_MANO_NeuralAnnot.json").unlink()
    with pytest.raises(MissingAnnotationError, match=r"InterHand2\.6M_val_MANO_NeuralAnnot\.json"):
        InterHand26M("val", make_cfg(copy, models))


def test_image_paths_may_not_leave_the_root(interhand, tmp_path):
    root, _, models = interhand
    copy = tmp_path / "InterHand26M"
    shutil.copytree(root / "annotations", copy / "annotations")
    data = copy / "annotations" / "val" / "InterHand2.6M_val_data.json"
    data.write_text(data.read_text().replace(f'"Capture0/{SEQ}/cam400002/image00020.jpg"', '"/etc/passwd"'))
    with pytest.raises(ValueError, match=r"InterHand2\.6M_val_data\.json: image 100, file_name '/etc/passwd'"):
        InterHand26M("val", make_cfg(copy, models))
