"""The synthetic dataset in AGORA's layout (data/Synthetic, tool/make_synthetic_dataset.py).

Most tests read the session's ``synthetic_agora_dir`` (8 train + 4 validation images, seed 0, one worker).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from common.body_models.layers import get_body_models
from common.engine.cli import run_cli
from common.geometry import project_points
from common.utils.render import MeshRenderer, MeshSpec
from data.Synthetic import GeneratorOptions, ImageGenerator, ensure_dataset, make_dataset
from data.Synthetic import annotations as agora
from data.Synthetic.contact_sheet import contact_sheet
from data.Synthetic.dataset_writer import manifest_path
from data.Synthetic.readback import PARAM_SHAPES, pose_annotation
from data.Synthetic.smpl_variant import GAP_GROUPS, joint_gaps
from tool.make_synthetic_dataset import main as cli_main

SPLIT_SIZES = {"train": 8, "validation": 4}
BOX_KEYS = ("bbox", "lhand_bbox", "rhand_bbox", "face_bbox")


def load(root: Path, split: str) -> dict:
    return json.loads((root / agora.annotation_file(split)).read_text())


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def in_image_4k(points_4k: np.ndarray) -> np.ndarray:
    """(N,) bool: 4K pixel coordinates that fall inside the image."""
    height, width = (s * agora.SCALE_TO_4K for s in agora.IMAGE_HW)
    return (
        (points_4k[:, 0] >= 0)
        & (points_4k[:, 0] <= width - 1)
        & (points_4k[:, 1] >= 0)
        & (points_4k[:, 1] <= height - 1)
    )


@pytest.mark.parametrize("split", SPLIT_SIZES)
def test_layout_and_pycocotools(synthetic_agora_dir: Path, split: str) -> None:
    coco = COCO(str(synthetic_agora_dir / agora.annotation_file(split)))
    assert sorted(coco.getImgIds()) == list(range(SPLIT_SIZES[split]))
    ann_ids = coco.getAnnIds()
    assert len(ann_ids) >= SPLIT_SIZES[split] and len(set(ann_ids)) == len(ann_ids)
    assert coco.loadCats(coco.getCatIds())[0]["name"] == "person"
    for image in coco.loadImgs(coco.getImgIds()):
        pixels = cv2.imread(str(synthetic_agora_dir / image["file_name_1280x720"]))
        assert pixels.shape == (image["height"], image["width"], 3) == (720, 1280, 3)
        people = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        assert 1 <= len(people) <= 3 and any(a["is_valid"] for a in people)
        assert [a["person_id"] for a in people] == list(range(len(people)))
        for ann in people:
            params = json.loads((synthetic_agora_dir / ann["smplx_param_path"]).read_text())
            assert {k: np.asarray(v).size for k, v in params.items()} == {
                k: int(np.prod(s)) for k, s in PARAM_SHAPES.items()
            }
            camera = json.loads((synthetic_agora_dir / ann["cam_param_path"]).read_text())
            assert len(camera["focal"]) == len(camera["princpt"]) == 2
            assert ann["gender"] in ("neutral", "male", "female") and 0.0 <= ann["occlusion"] <= 100.0
            assert all(len(ann[k]) == 4 and ann[k][2] > 0 and ann[k][3] > 0 for k in BOX_KEYS)
    manifest = json.loads(manifest_path(synthetic_agora_dir, split).read_text())
    assert manifest["num_images"] == SPLIT_SIZES[split] and manifest["seed"] == 0


def test_same_bytes_for_one_and_two_workers(
    synthetic_agora_dir: Path, synthetic_body_model_dir: Path, tmp_path: Path
) -> None:
    # The session dataset was made by one worker; two processes make the same split again.
    summary = make_dataset(tmp_path, "validation", 4, seed=0, workers=2, human_model_path=synthetic_body_model_dir)
    assert summary["images"] == 4 and summary["images_per_s"] > 0
    reference = {k: v for k, v in all_files(synthetic_agora_dir).items() if "validation" in k}
    assert all_files(tmp_path) == reference


def test_another_seed_gives_other_images(synthetic_agora_dir: Path, synthetic_body_model_dir: Path) -> None:
    with ImageGenerator(synthetic_body_model_dir, GeneratorOptions(split="validation", seed=1), "/unused") as gen:
        _, result, _ = gen.render(0)
    written = cv2.imread(str(synthetic_agora_dir / agora.image_path("validation", agora.image_name("validation", 0))))
    assert not np.array_equal(result.image[..., ::-1], written)


def test_ensure_dataset_reuses_a_complete_dataset(
    synthetic_agora_dir: Path, synthetic_body_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*args, **kwargs):
        raise AssertionError("make_dataset ran although the dataset is complete")

    monkeypatch.setattr("data.Synthetic.dataset_writer.make_dataset", must_not_run)
    assert ensure_dataset(synthetic_agora_dir, "train", 8, human_model_path=synthetic_body_model_dir) == (
        synthetic_agora_dir
    )
    with pytest.raises(AssertionError, match="make_dataset ran"):  # another size is another dataset
        ensure_dataset(synthetic_agora_dir, "train", 9, human_model_path=synthetic_body_model_dir)


def test_part_boxes_hold_their_vertices_and_are_enlarged_like_agora(
    synthetic_agora_dir: Path, synthetic_body_model_dir: Path
) -> None:
    body_models = get_body_models(synthetic_body_model_dir)
    hands = body_models.hand_vertex_ids()
    part_vertex_ids = {
        "lhand_bbox": hands["left"],
        "rhand_bbox": hands["right"],
        "face_bbox": body_models.face_vertex_ids(),
    }
    checked = 0
    for split in SPLIT_SIZES:
        for ann in load(synthetic_agora_dir, split)["annotations"]:
            person = pose_annotation(synthetic_agora_dir, ann, body_models)
            camera = json.loads((synthetic_agora_dir / ann["cam_param_path"]).read_text())  # 4K intrinsics
            vertices_4k = project_points(torch.from_numpy(person.vertices).double(), camera["focal"], camera["princpt"])
            joints_4k = project_points(torch.from_numpy(person.joints).double(), camera["focal"], camera["princpt"])
            for key in BOX_KEYS:
                x, y, w, h = ann[key]
                points = joints_4k[agora.PART_JOINT_IDX[key]].numpy()
                if key in part_vertex_ids:
                    part = vertices_4k.numpy()[part_vertex_ids[key]]
                    seen = part[in_image_4k(part)]
                    inside = (seen[:, 0] >= x) & (seen[:, 0] <= x + w) & (seen[:, 1] >= y) & (seen[:, 1] <= y + h)
                    assert inside.all(), f"{ann['smplx_param_path']}: {key} misses {np.sum(~inside)} vertices"
                    checked += len(seen)
                    points = np.concatenate([points, part])
                # AGORA's rule: the points' extent, enlarged x1.2 about its centre.
                low, high = points.min(axis=0), points.max(axis=0)
                np.testing.assert_allclose([x + w / 2, y + h / 2], (low + high) / 2, rtol=1e-5, atol=0.05)
                np.testing.assert_allclose([w, h], 1.2 * (high - low), rtol=1e-4, atol=0.05)
    assert checked > 10_000


def test_parameter_files_reproduce_the_rendered_people(
    synthetic_agora_dir: Path, synthetic_body_model_dir: Path
) -> None:
    body_models = get_body_models(synthetic_body_model_dir)
    document = load(synthetic_agora_dir, "validation")
    with ImageGenerator(synthetic_body_model_dir, GeneratorOptions(split="validation", seed=0), "/unused") as gen:
        renderer = MeshRenderer(*agora.IMAGE_HW[::-1])
        for index in (0, 1):
            scene, result, _ = gen.render(index)
            # The scene the generator rendered is the one written: same image bytes.
            written = cv2.imread(str(synthetic_agora_dir / document["images"][index]["file_name_1280x720"]))
            assert np.array_equal(written, result.image[..., ::-1])
            people = [a for a in document["annotations"] if a["image_id"] == index]
            assert len(people) == len(scene.people)
            # Silhouettes of the meshes posed from the files, composited by depth like the generator's.
            nearest = np.full(agora.IMAGE_HW, np.inf, dtype=np.float32)
            labels = np.zeros(agora.IMAGE_HW, dtype=np.uint8)
            for k, (ann, rendered) in enumerate(zip(people, scene.people, strict=True)):
                person = pose_annotation(synthetic_agora_dir, ann, body_models)
                np.testing.assert_allclose(person.vertices, rendered.vertices, atol=1e-4)
                assert person.focal == pytest.approx(scene.camera.focal) and person.princpt == pytest.approx(
                    scene.camera.princpt
                )
                out = renderer.render(
                    MeshSpec(person.vertices, body_models.faces), person.focal, person.princpt, lit=False
                )
                front = out.mask & (out.depth < nearest)
                nearest[front], labels[front] = out.depth[front], k + 1
            for k in range(len(people)):
                ours, theirs = labels == k + 1, result.labels == k + 1
                union = np.sum(ours | theirs)
                assert union == 0 or np.sum(ours & theirs) / union > 0.99
        renderer.close()


def test_contact_sheet(synthetic_agora_dir: Path, tmp_path: Path) -> None:
    out = contact_sheet(synthetic_agora_dir, "validation", 3, tmp_path / "sheet.png", columns=2, tile_width=320)
    sheet = cv2.imread(str(out))
    assert sheet.shape == (2 * 180 + 3 * 4, 2 * 320 + 3 * 4, 3)


def test_cli_rejects_bad_input_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--num-images", "0"], ["--num-images", "2", "--workers", "0"], ["--num-images", "2", "--seed", "-1"]):
        assert run_cli(cli_main, ["--out", str(tmp_path / "out"), *argv], prog="make_synthetic_dataset") == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("make_synthetic_dataset: error: --")
    missing = tmp_path / "no_models"
    assert run_cli(cli_main, ["--out", str(tmp_path), "--num-images", "1", "--human-model-path", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse's own errors exit with 2 as well
        cli_main(["--out", str(tmp_path), "--num-images", "1", "--split", "test"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "out").exists()


# --- the SMPL variant (data/Synthetic/smpl_variant.py) --------------------------------------------------------------
SMPL_SKELETON_TOLERANCE_M, SMPL_KEYPOINT_TOLERANCE_M = 0.003, 0.015  # measured: 2.15 mm and 12.4 mm at most


@pytest.mark.parametrize("split", SPLIT_SIZES)
def test_smpl_variant_mirrors_the_smplx_annotations(synthetic_agora_dir: Path, split: str) -> None:
    smplx_doc = load(synthetic_agora_dir, split)
    smpl_doc = json.loads((synthetic_agora_dir / agora.smpl_annotation_file(split)).read_text())
    assert smpl_doc["images"] == smplx_doc["images"] and len(smpl_doc["annotations"]) == len(smplx_doc["annotations"])
    for smpl_ann, smplx_ann in zip(smpl_doc["annotations"], smplx_doc["annotations"], strict=True):
        path = smpl_ann.pop("smpl_param_path")
        assert path == smplx_ann.pop("smplx_param_path").replace("smplx_params_cam/", "smpl_params_cam/", 1)
        assert smpl_ann == smplx_ann, "the same person, boxes and labels"


def test_smpl_parameters_put_the_smpl_body_on_the_rendered_one(
    synthetic_agora_dir: Path, synthetic_body_model_dir: Path
) -> None:
    body_models = get_body_models(synthetic_body_model_dir)
    gaps: dict[str, list[np.ndarray]] = {group: [] for group in GAP_GROUPS}
    for split in SPLIT_SIZES:
        for ann in load(synthetic_agora_dir, split)["annotations"]:
            smplx = json.loads((synthetic_agora_dir / ann["smplx_param_path"]).read_text())
            smpl_path = synthetic_agora_dir / ann["smplx_param_path"].replace("smplx_params_cam", "smpl_params_cam", 1)
            smpl = json.loads(smpl_path.read_text())
            assert {k: len(v) for k, v in smpl.items()} == {"global_orient": 3, "body_pose": 69, "betas": 10,
                                                             "transl": 3}  # fmt: skip
            assert smpl["global_orient"] == smplx["global_orient"] and smpl["betas"] == smplx["betas"]
            assert smpl["body_pose"] == smplx["body_pose"] + [0.0] * 6, "21 body joints as rendered, flat hands"
            for group, gap in joint_gaps(body_models, ann["gender"], smplx, smpl).items():
                gaps[group].append(gap)
            # readback poses either variant: the SMPL person's pelvis is the rendered one's
            smpl_ann = {k: v for k, v in ann.items() if k != "smplx_param_path"}
            smpl_ann["smpl_param_path"] = str(smpl_path.relative_to(synthetic_agora_dir))
            posed_smpl = pose_annotation(synthetic_agora_dir, smpl_ann, body_models)
            assert posed_smpl.joints.shape == (45, 3)
            rendered_pelvis = pose_annotation(synthetic_agora_dir, ann, body_models).joints[0]
            np.testing.assert_allclose(posed_smpl.joints[0], rendered_pelvis, atol=1e-4)
    skeleton, keypoints = np.stack(gaps["skeleton"]), np.stack(gaps["keypoints"])  # (people, 24), (people, 11)
    assert len(skeleton) >= 12
    assert skeleton[:, 0].max() < 1e-4, "SMPL's pelvis on SMPL-X's"
    assert skeleton.max() < SMPL_SKELETON_TOLERANCE_M and keypoints.max() < SMPL_KEYPOINT_TOLERANCE_M
    assert skeleton.mean() < 0.001, "most joints coincide: the skeletons and shape spaces agree"


def test_ensure_dataset_remakes_a_dataset_without_the_smpl_variant(
    synthetic_agora_dir: Path, synthetic_body_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (manifest_path(".", "train"), agora.annotation_file("train"), agora.smpl_annotation_file("train")):
        (tmp_path / name).write_bytes((synthetic_agora_dir / name).read_bytes())

    def must_not_run(*args, **kwargs):
        raise AssertionError("make_dataset ran")

    monkeypatch.setattr("data.Synthetic.dataset_writer.make_dataset", must_not_run)
    assert ensure_dataset(tmp_path, "train", 8, human_model_path=synthetic_body_model_dir) == tmp_path
    (tmp_path / agora.smpl_annotation_file("train")).unlink()  # as written before the SMPL variant existed
    with pytest.raises(AssertionError, match="make_dataset ran"):
        ensure_dataset(tmp_path, "train", 8, human_model_path=synthetic_body_model_dir)
