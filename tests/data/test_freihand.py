"""FreiHAND loader on a fixture in the parsed layout (freihand_{train,eval}_{coco,data}.json, RootNet's output).

Each hand is the synthetic stand-in's right MANO posed with parameters chosen here, its wrist placed at a chosen
camera point, so joint_3d, the MANO parameters and the images agree. Images are 32x32, intrinsics f = 50 px,
principal point (16, 16); the config is the hand model's at CPU size (64x64 input, heatmap 8x2x2, depth 0.3 m).

Crop boxes, worked by hand:
* 'train' annotation box (4, 4, 24, 24): sanitised to 23 x 23 about (15.5, 15.5), square already, x1.25 ->
  (1.125, 1.125, 28.75, 28.75); a pixel (u, v) lands at x_hm = (u - 1.125) / 28.75 * 2, likewise y.
* 'test' RootNet box (2, 3, 26, 26), already square and enlarged: used as is; x_hm = (u - 2) / 26 * 2.
Depth: z_hm = ((z - z_wrist) / 0.15 + 1) / 2 * 8, so the wrist sits at 4.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from common.body_models import get_body_models
from common.body_models.joint_sets import HAND_21
from common.body_models.part_joints import PART_JOINTS, gather_part_joints
from common.engine.tester import per_sample_outputs
from common.utils.augmentation import NO_AUGMENTATION
from common.utils.hand_metrics import read_freihand_pred
from data.FreiHAND import FreiHAND
from data.FreiHAND.FreiHAND import FREIHAND_JOINTS, PRED_PARTS, derive_mano_translation
from data.record import MissingAnnotationError
from main.config import load_config
from main.model import get_model
from tests.data.fixtures import write_image, write_json

IMG_HW = (32, 32)
FOCAL, PRINCPT = (50.0, 50.0), (16.0, 16.0)
TRAIN_BOX, TRAIN_CROP = [4.0, 4.0, 24.0, 24.0], (1.125, 1.125, 28.75, 28.75)
ROOTNET_BOX = [2.0, 3.0, 26.0, 26.0]
WRISTS_CAM = ((0.01, -0.02, 0.5), (-0.02, 0.01, 0.55))  # metres, where each sample's wrist is placed
SMALL_HAND = ["model.resnet_type=18", "model.input_img_shape=[64,64]", "model.output_hm_shape=[8,2,2]",
              "model.princpt=[32,32]"]  # fmt: skip


def pose_mano(layer: Any, pose: np.ndarray, shape: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(21, 3) HAND_21 joints (16 skeleton joints and 5 tips, as the hand targets gather them) and (778, 3)
    vertices, float64 metres, of a MANO layer posed with (48,), (10,), (3,) parameters."""
    row = lambda v: torch.as_tensor(np.asarray(v, np.float32).reshape(1, -1))  # noqa: E731
    spec = PART_JOINTS["hand"]
    with torch.no_grad():
        out = layer(global_orient=row(pose[:3]), hand_pose=row(pose[3:]), betas=row(shape), transl=row(trans))
        joints = gather_part_joints(out.joints, out.vertices, torch.from_numpy(spec.vertex_ids),
                                    torch.from_numpy(spec.gather))  # fmt: skip
    return joints[0].double().numpy(), out.vertices[0].double().numpy()


def placed_hand(layer: Any, seed: int, wrist_cam: tuple[float, float, float]) -> dict[str, np.ndarray]:
    """MANO parameters with the wrist at ``wrist_cam`` (the layer's frame), their joints and vertices."""
    rng = np.random.default_rng(seed)
    pose = np.concatenate([[0.3, -0.4, 0.2], 0.2 * rng.standard_normal(45)])
    shape = 0.5 * rng.standard_normal(10)
    joints0, _ = pose_mano(layer, pose, shape, np.zeros(3))
    trans = np.asarray(wrist_cam) - joints0[HAND_21.index("Wrist")]
    joints, verts = pose_mano(layer, pose, shape, trans)
    return {"pose": pose, "shape": shape, "trans": trans, "joints": joints, "verts": verts}


def project(points: np.ndarray) -> np.ndarray:
    return points[:, :2] / points[:, 2:] * np.asarray(FOCAL) + np.asarray(PRINCPT)


def write_split(root: Path, name: str, folder: str, hands: list[dict | None], with_trans: list[bool]) -> None:
    """freihand_<name>_{coco,data}.json and the images of ``hands`` (None: an entry without GT)."""
    coco: dict[str, list] = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "hand"}]}
    data = {}
    for k, hand in enumerate(hands):
        file_name = f"{folder}/rgb/{k:08d}.jpg"
        coco["images"].append({"id": 100 + k, "file_name": file_name, "width": IMG_HW[1], "height": IMG_HW[0],
                               "db_idx": k})  # fmt: skip
        coco["annotations"].append({"id": 200 + k, "image_id": 100 + k, "bbox": TRAIN_BOX, "category_id": 1,
                                    "iscrowd": 0})  # fmt: skip
        entry: dict[str, Any] = {"cam_param": {"focal": list(FOCAL), "princpt": list(PRINCPT)}, "scale": 0.03}
        if hand is not None:
            mano = {"pose": hand["pose"].tolist(), "shape": hand["shape"].tolist()}
            if with_trans[k]:
                mano["trans"] = hand["trans"].tolist()
            # FreiHAND's order is wrist, thumb 1-4, ..., little 1-4: the names say where each joint goes
            entry |= {"mano_param": mano, "joint_3d": hand["joints"][HAND_21.indices(FREIHAND_JOINTS)].tolist()}
        data[str(k)] = entry
        write_image(root / file_name, seed=k, hw=IMG_HW)
    write_json(root / f"freihand_{name}_coco.json", coco)
    write_json(root / f"freihand_{name}_data.json", data)


@pytest.fixture(scope="module")
def freihand(tmp_path_factory, synthetic_body_model_dir):
    layer = get_body_models(synthetic_body_model_dir).mano("right")
    hands = [placed_hand(layer, k, wrist) for k, wrist in enumerate(WRISTS_CAM)]
    root = tmp_path_factory.mktemp("FreiHAND") / "data"
    write_split(root, "train", "training", hands, with_trans=[True, False])  # sample 1: trans derived
    write_split(root, "eval", "evaluation", [hands[0], None], with_trans=[True, True])  # sample 1: no GT
    rootnet = [{"image_id": 100 + k, "bbox": ROOTNET_BOX, "root_cam": [0.0, 0.0, 0.5]} for k in range(2)]
    write_json(root.parent / "rootnet_output" / "bbox_root_freihand_output.json", rootnet)
    return root, hands, synthetic_body_model_dir


def make_cfg(root: Path, models: Path, output_dir: Path | None = None):
    extra = [f"output_dir={output_dir}"] if output_dir is not None else []
    return load_config("pose2pose_hand", [f"human_model_path={models}", *SMALL_HAND,
                                          f"data.dataset_roots={{FreiHAND: {root}}}", *extra])  # fmt: skip


def check_contract(ds: FreiHAND, sample: tuple[dict, dict, dict]) -> dict[str, Any]:
    merged = {**sample[0], **sample[1], **sample[2]}
    shapes = ds.targets.sample_shapes(ds.split)
    assert set(merged) == set(shapes), set(merged) ^ set(shapes)
    for key, value in merged.items():
        assert tuple(value.shape) == shapes[key], key
        assert value.dtype == (np.bool_ if key == "is_left" else np.float32) or value.dtype == torch.float32, key
    return {key: np.asarray(value) for key, value in merged.items()}


def expected_hm(points_cam: np.ndarray, crop_xywh: tuple[float, ...]) -> np.ndarray:
    """(21, 3) heatmap coordinates of camera points in an un-augmented crop (see the module docstring)."""
    x0, y0, w, h = crop_xywh
    uv = project(points_cam)
    z = ((points_cam[:, 2] - points_cam[0, 2]) / 0.15 + 1.0) / 2.0 * 8.0
    return np.stack([(uv[:, 0] - x0) / w * 2.0, (uv[:, 1] - y0) / h * 2.0, z], axis=1)


def test_train_records_targets_and_the_derived_translation(freihand):
    root, hands, models = freihand
    ds = FreiHAND("train", make_cfg(root, models))
    assert len(ds) == 2 and ds.records[0].img_path == root / "training" / "rgb" / "00000000.jpg"
    record = ds.records[1]
    assert record.crop == "hand" and record.hand_side == "right" and record.mano.side == "right" and record.is_3D
    np.testing.assert_allclose(record.bbox_xywh_img, TRAIN_CROP, atol=1e-5)
    np.testing.assert_allclose(record.mano.trans, hands[1]["trans"], atol=1e-5)  # no 'trans' in the file
    for k in range(2):
        sample = check_contract(ds, ds.get_sample(k, aug=NO_AUGMENTATION))
        assert not sample["is_left"] and sample["is_3D"] == 1 and sample["joint_valid"].all()
        np.testing.assert_allclose(sample["joint_img"], expected_hm(hands[k]["joints"], TRAIN_CROP), atol=1e-4)
        rel = hands[k]["joints"] - hands[k]["joints"][0]
        np.testing.assert_allclose(sample["joint_cam"], rel, atol=1e-5)
        # joints and parameters agree: the MANO targets land on the dataset's joints
        np.testing.assert_allclose(sample["mano_joint_cam"], sample["joint_cam"], atol=2e-5)
        np.testing.assert_allclose(sample["mano_joint_img"], sample["joint_img"], atol=2e-4)
        np.testing.assert_allclose(sample["mano_pose"], hands[k]["pose"], atol=1e-5)
        assert sample["mano_pose_valid"].all() and sample["mano_shape_valid"] == 1


def test_test_records_use_rootnet_boxes_and_keep_images_without_gt(freihand):
    root, hands, models = freihand
    ds = FreiHAND("test", make_cfg(root, models))
    assert [r.info["db_idx"] for r in ds.records] == [0, 1]
    assert ds.records[0].img_path == root / "evaluation" / "rgb" / "00000000.jpg"
    for record in ds.records:
        np.testing.assert_allclose(record.bbox_xywh_img, ROOTNET_BOX)
        assert record.info["root_depth_m"] == 0.5
    with_gt, without_gt = check_contract(ds, ds[0]), check_contract(ds, ds[1])
    np.testing.assert_allclose(with_gt["joint_img"], expected_hm(hands[0]["joints"], tuple(ROOTNET_BOX)), atol=1e-4)
    np.testing.assert_allclose(with_gt["mano_mesh_cam"], hands[0]["verts"], atol=1e-5)
    assert with_gt["mano_mesh_valid"] == 1 and without_gt["mano_mesh_valid"] == 0
    assert without_gt["joint_valid"].sum() == 0 and without_gt["mano_pose_valid"].sum() == 0


def test_evaluate_and_report_write_pred_json_in_sample_order(freihand, tmp_path):
    root, hands, models = freihand
    ds = FreiHAND("test", make_cfg(root, models, output_dir=tmp_path))
    samples = [ds[k] for k in range(2)]
    shift = np.array([0.1, -0.2, 0.3])  # the benchmark aligns: an offset prediction is still perfect
    outs = []
    for k, (_, targets, meta) in enumerate(samples):
        mesh = (hands[0]["verts"] if k == 0 else hands[1]["verts"]) + shift
        joints = hands[0]["joints"] if k == 0 else hands[1]["joints"]
        outs.append(
            {
                "mano_mesh_cam": mesh,
                "mano_joint_cam": joints - joints[0],
                "mano_mesh_cam_target": targets["mano_mesh_cam"],
                "mano_mesh_valid": meta["mano_mesh_valid"],
            }
        )
    result = ds.evaluate(outs[::-1], [1, 0])  # one batch, out of order
    assert {k: len(v) for k, v in result.items()} == {"pa_mpjpe": 1, "pa_mpvpe": 1, "f5_mesh": 1, "f15_mesh": 1}
    assert result["pa_mpjpe"][0] < 1e-3 and result["pa_mpvpe"][0] < 1e-3
    assert result["f5_mesh"] == [1.0] and result["f15_mesh"] == [1.0]

    noise_m = 0.01 * np.random.default_rng(0).normal(size=(778, 3))
    noisy = dict(outs[0], mano_mesh_cam=outs[0]["mano_mesh_cam"] + noise_m)
    bad = ds.evaluate([noisy], [0])
    assert bad["pa_mpvpe"][0] > 5.0 and bad["f5_mesh"][0] < 0.5

    ds.evaluate(outs[:1], [0])  # the last prediction of a sample is the one kept
    table, metrics_path = ds.report(result, tmp_path)
    assert metrics_path == tmp_path / "result" / "FreiHAND" / "metrics.json" and metrics_path.is_file()
    pred_path = tmp_path / "result" / "FreiHAND" / "pred.json"
    assert str(pred_path) in table and not (tmp_path / "result" / "FreiHAND" / PRED_PARTS).exists()
    joints, verts = read_freihand_pred(pred_path, expected_samples=2)
    assert joints.shape == (2, 21, 3) and verts.shape == (2, 778, 3)
    np.testing.assert_allclose(verts[0], outs[0]["mano_mesh_cam"], atol=1e-9)
    np.testing.assert_allclose(verts[1], outs[1]["mano_mesh_cam"], atol=1e-9)
    # joints are written in the mesh's frame: the wrist regressed from the mesh, the rest relative to it
    wrist = ds.body_models.mano("right").J_regressor[0].double().numpy() @ outs[1]["mano_mesh_cam"]
    np.testing.assert_allclose(joints[1], hands[1]["joints"] - hands[1]["joints"][0] + wrist, atol=1e-9)


def test_report_without_every_prediction_writes_no_pred_json(freihand, tmp_path):
    root, hands, models = freihand
    ds = FreiHAND("test", make_cfg(root, models, output_dir=tmp_path))
    out = {"mano_mesh_cam": hands[0]["verts"], "mano_joint_cam": hands[0]["joints"] - hands[0]["joints"][0]}
    ds.evaluate([out], [0])  # sample 1 never evaluated
    ds.report({"pa_mpjpe": []}, tmp_path)
    assert not (tmp_path / "result" / "FreiHAND" / "pred.json").exists()


@pytest.mark.parametrize("missing", ["data/freihand_train_data.json", "rootnet_output/bbox_root_freihand_output.json"])
def test_missing_annotation_file_is_named(freihand, tmp_path, missing):
    root, _, models = freihand
    copy = tmp_path / "FreiHAND"
    shutil.copytree(root.parent, copy)
    (copy / missing).unlink()
    split = "test" if missing.startswith("rootnet") else "train"
    with pytest.raises(MissingAnnotationError, match=Path(missing).name.replace(".", r"\.")):
        FreiHAND(split, make_cfg(copy / "data", models))


def test_image_paths_may_not_leave_the_root(freihand, tmp_path):
    root, _, models = freihand
    copy = tmp_path / "FreiHAND"
    shutil.copytree(root.parent, copy)
    coco_path = copy / "data" / "freihand_train_coco.json"
    coco_path.write_text(coco_path.read_text().replace('"training/rgb/00000001.jpg"', '"../../outside.jpg"'))
    with pytest.raises(ValueError, match=r"freihand_train_coco\.json: image 101, file_name '\.\./\.\./outside\.jpg'"):
        FreiHAND("train", make_cfg(copy / "data", models))


def test_joint_3d_in_millimetres_is_refused(freihand, tmp_path):
    root, _, models = freihand
    copy = tmp_path / "FreiHAND"
    shutil.copytree(root.parent, copy)
    data_path = copy / "data" / "freihand_train_data.json"
    data = json.loads(data_path.read_text())
    for entry in data.values():
        entry["joint_3d"] = (np.asarray(entry["joint_3d"]) * 1000.0).tolist()
    data_path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not a distance in metres"):
        FreiHAND("train", make_cfg(copy / "data", models))


def test_freihand_joint_order_is_hand21_by_name():
    # the hand model's joint_cam (HAND_21 order) is written to pred.json in FreiHAND's order through the names
    assert set(FREIHAND_JOINTS) == set(HAND_21.names) and len(FREIHAND_JOINTS) == 21
    assert FREIHAND_JOINTS == HAND_21.names  # the two orders agree, so pred.json joints need no reordering


def test_derived_translation_is_the_least_squares_fit(synthetic_body_model_dir):
    layer = get_body_models(synthetic_body_model_dir).mano("right")
    hands = [placed_hand(layer, k, wrist) for k, wrist in enumerate(WRISTS_CAM)]
    noise_m = 0.003 * np.random.default_rng(1).standard_normal((2, 21, 3))  # joints a little off the MANO fit
    trans = derive_mano_translation(layer, np.stack([h["pose"] for h in hands]), np.stack([h["shape"] for h in hands]),
                                    np.stack([h["joints"] for h in hands]) + noise_m)  # fmt: skip
    # the translation minimising the summed squared joint distances moves the hand by the mean offset
    np.testing.assert_allclose(trans, np.stack([h["trans"] for h in hands]) + noise_m.mean(axis=1), atol=1e-6)


def test_the_hand_model_output_flows_through_evaluate_and_report(freihand, tmp_path):
    root, _, models = freihand
    cfg = make_cfg(root, models, output_dir=tmp_path)
    ds = FreiHAND("test", cfg)
    torch.manual_seed(0)
    model = get_model(cfg, "test").eval()
    inputs, targets, meta = next(iter(DataLoader(ds, batch_size=2)))
    with torch.no_grad():
        outs = per_sample_outputs(model(inputs, targets, meta, "test"), targets, meta, ds.eval_extras)
    result = ds.evaluate(outs, [0, 1])
    assert {k: len(v) for k, v in result.items()} == {"pa_mpjpe": 1, "pa_mpvpe": 1, "f5_mesh": 1, "f15_mesh": 1}
    assert all(np.isfinite(v).all() for v in result.values())
    ds.report(result, tmp_path)
    joints, verts = read_freihand_pred(tmp_path / "result" / "FreiHAND" / "pred.json", expected_samples=2)
    np.testing.assert_allclose(verts, np.stack([o["mano_mesh_cam"] for o in outs]), atol=1e-6)
