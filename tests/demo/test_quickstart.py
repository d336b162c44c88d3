"""The quickstart's configs (main/configs/synthetic{,_body,_hand,_face}.yaml), its families and its choice of the
demo person."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.engine.cli import UsageError
from common.paths import resolve_repo_path
from data.Synthetic.annotations import SCALE_TO_4K, annotation_file
from main.config import load_config
from tool.quickstart_families import CONFIG_DIR, DATA_DIR, FAMILY_RUNS, demo_person

CONFIG = CONFIG_DIR / "synthetic.yaml"

STRIDE = 32  # of the ResNet feature maps the heatmap grids sit on


def test_synthetic_config_uses_the_stand_in_the_agora_loader_and_a_consistent_small_geometry(
    synthetic_body_model_dir: Path,
) -> None:
    cfg = load_config(CONFIG)
    assert Path(cfg.human_model_path) == synthetic_body_model_dir  # the path ensure_synthetic_body_models returns
    assert (cfg.data.trainset_3d, cfg.data.trainset_2d, cfg.data.testset) == (["AGORA"], [], "AGORA")
    assert resolve_repo_path(cfg.data.dataset_roots["AGORA"]) == DATA_DIR / "Synthetic"
    assert cfg.data.agora_gender == "annotated"  # the GT mesh is the rendered one (gendered layers), not neutral
    m = cfg.model
    body_h, body_w = m.input_body_shape
    assert m.princpt == (body_w / 2, body_h / 2)
    assert m.output_hm_shape[1:] == (body_h // STRIDE, body_w // STRIDE)
    assert m.output_hand_hm_shape[1:] == tuple(s // STRIDE for s in m.input_hand_shape)
    assert m.input_img_shape == (2 * body_h, 2 * body_w)  # Hand4Whole's crop : body-input ratio
    assert (m.resnet_type, m.hand_resnet_type, m.face_resnet_type) == (18, 18, 18)


def test_integral_quickstart_config_is_the_family_on_the_synthetic_h36m_layout(synthetic_body_model_dir: Path) -> None:
    cfg = load_config(CONFIG_DIR / "synthetic_integral.yaml")
    assert cfg.model.arch == "integral" and "integral" in FAMILY_RUNS
    assert Path(cfg.human_model_path) == synthetic_body_model_dir
    assert resolve_repo_path(cfg.data.dataset_roots["Human36M"]) == DATA_DIR / "SyntheticH36M"
    h, w = cfg.model.input_img_shape
    assert cfg.model.output_hm_shape[1:] == (h // STRIDE * 8, w // STRIDE * 8)  # three stride-2 deconvolutions


@pytest.mark.parametrize("family", ["pose2pose_body", "pose2pose_hand", "pose2pose_face"])
def test_part_quickstart_configs_select_their_family_on_the_stand_in(
    family: str, synthetic_body_model_dir: Path
) -> None:
    part = family.removeprefix("pose2pose_")
    cfg = load_config(CONFIG_DIR / f"synthetic_{part}.yaml")
    assert cfg.model.arch == family and family in FAMILY_RUNS
    assert Path(cfg.human_model_path) == synthetic_body_model_dir
    assert resolve_repo_path(cfg.output_dir) != resolve_repo_path(load_config(CONFIG).output_dir)  # no mixed snapshots
    h, w = cfg.model.input_img_shape
    assert cfg.model.output_hm_shape[1:] == (h // STRIDE, w // STRIDE) and cfg.model.princpt == (w / 2, h / 2)


def _write_annotations(root: Path, people: list[dict]) -> None:
    images = [{"id": i, "file_name_1280x720": f"1280x720/validation/img_{i}.png", "width": 1280, "height": 720}
              for i in range(3)]  # fmt: skip
    annotations = [{"id": k, **person} for k, person in enumerate(people)]
    (root / annotation_file("validation")).write_text(json.dumps({"images": images, "annotations": annotations}))


def _person(image_id: int, bbox_720: list[float], valid: bool = True, occlusion: float = 0.0) -> dict:
    bbox_4k = [v * SCALE_TO_4K for v in bbox_720]
    return {"image_id": image_id, "bbox": bbox_4k, "is_valid": valid, "occlusion": occlusion}


def test_demo_person_is_the_largest_valid_unoccluded_person_in_full_view(tmp_path: Path) -> None:
    _write_annotations(
        tmp_path,
        [
            _person(0, [100, 100, 100, 300]),  # the answer
            _person(1, [100, 50, 100, 400], valid=False),
            _person(1, [300, 50, 100, 500], occlusion=40.0),
            _person(2, [1200, 50, 100, 600]),  # leaves the image on the right
            _person(2, [10, 300, 60, 200]),
        ],
    )
    image, bbox = demo_person(tmp_path)
    assert image == tmp_path / "1280x720/validation/img_0.png"
    assert bbox == pytest.approx([100, 100, 100, 300])


def test_demo_person_missing_is_a_usage_error(tmp_path: Path) -> None:
    _write_annotations(tmp_path, [_person(0, [-10, 100, 100, 300])])
    with pytest.raises(UsageError, match="no fully visible"):
        demo_person(tmp_path)
