"""The dataset dict: every dataset name builds (with a family whose crops it makes), and reports a missing data root
as a missing annotation file under that root (no fixture needed); an unknown name lists the known ones; a dataset
asked for crops it does not make says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.engine.cli import UsageError
from data import DATASETS, build_dataset
from data.dataset import MissingAnnotationError
from tests.data.fixtures import make_cfg

HAND4WHOLE_DATASETS = ("AGORA", "EHF", "Human36M", "MPII", "MSCOCO", "PW3D", "MPI_INF_3DHP")
# The Pose2Pose part sets, with a family that reads them (they make no whole-body crops).
PART_DATASETS = {"FFHQ": "pose2pose_face", "FreiHAND": "pose2pose_hand", "InterHand26M": "pose2pose_hand"}
# The other families' sets, with the overrides of a config that reads them (CMU names its sequences).
OTHER_FAMILY_DATASETS = {
    "MSRA": ["model.arch=v2v"],
    "Human36MMultiView": ["model.arch=triangulation"],
    "CMUPanoptic": [
        "model.arch=triangulation",
        "multiview.cmu_train_sequences=[a]",
        "multiview.cmu_test_sequences=[b]",
    ],  # fmt: skip
}
# Sets under a data root (data.dataset_roots or data/<NAME>/data); VoxelH5 reads files named by data.h5_*.
ROOTED_DATASETS = (*HAND4WHOLE_DATASETS, *PART_DATASETS, *OTHER_FAMILY_DATASETS)
ALL_DATASETS = (*ROOTED_DATASETS, "VoxelH5")


def test_every_dataset_name_is_registered() -> None:
    assert set(DATASETS) == set(ALL_DATASETS)


def test_a_dataset_without_the_familys_crops_says_so(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    cfg = make_cfg(synthetic_body_model_dir, {}, f"data_dir={tmp_path}")  # Hand4Whole: person crops
    with pytest.raises(ValueError, match="FFHQ has no body crops for model.arch=hand4whole"):
        build_dataset("FFHQ", "train", cfg)


def family_cfg(name: str, human_model_path: Path, roots: dict, *overrides: str):
    """The config of a family that reads dataset `name`: Hand4Whole's default, or the part family's overlay."""
    arch = PART_DATASETS.get(name)
    return make_cfg(human_model_path, roots, *overrides, *([f"model.arch={arch}"] if arch else []),
                    *(_PART_GEOMETRY[arch] if arch else []), *OTHER_FAMILY_DATASETS.get(name, []))  # fmt: skip


_PART_GEOMETRY = {
    "pose2pose_face": ["model.input_img_shape=[256,192]", "model.output_hm_shape=[8,8,6]", "model.princpt=[96,128]"],
    "pose2pose_hand": ["model.input_img_shape=[256,256]", "model.output_hm_shape=[8,8,8]", "model.princpt=[128,128]"],
}


def registered(name: str) -> type:
    """The class of ``name`` in DATASETS."""
    return DATASETS[name]


@pytest.mark.parametrize("name", ROOTED_DATASETS)
def test_missing_default_root_names_a_file_under_it(name: str, tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    cls = registered(name)
    cfg = family_cfg(name, synthetic_body_model_dir, {}, f"data_dir={tmp_path}")
    root = tmp_path / name / cls.DEFAULT_SUBDIR  # Hand4Whole's place: data/<NAME>/data, or data/<NAME> (H36M, COCO)
    for split in cls.SPLITS:
        with pytest.raises(MissingAnnotationError) as err:
            build_dataset(name, split, cfg)
        assert Path(err.value.filename).is_relative_to(root), (split, err.value.filename)
        assert str(root) in str(err.value) and cls.DOWNLOAD_PAGE in str(err.value)


@pytest.mark.parametrize("name", ROOTED_DATASETS)
def test_missing_configured_root_names_a_file_under_it(
    name: str, tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    cls = registered(name)
    root = tmp_path / "elsewhere"
    cfg = family_cfg(name, synthetic_body_model_dir, {name: root}, f"data_dir={tmp_path / 'unused'}")
    with pytest.raises(MissingAnnotationError) as err:
        build_dataset(name, cls.SPLITS[0], cfg)
    assert Path(err.value.filename).is_relative_to(root)


def test_voxel_h5_without_its_file_names_the_key(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    cfg = make_cfg(synthetic_body_model_dir, {}, "model.arch=v2v")
    with pytest.raises(UsageError, match="data.h5_train is not set"):
        build_dataset("VoxelH5", "train", cfg)
    cfg = make_cfg(synthetic_body_model_dir, {}, "model.arch=v2v", f"data.h5_train={tmp_path / 'none.h5'}")
    with pytest.raises(FileNotFoundError, match="none.h5"):
        build_dataset("VoxelH5", "train", cfg)


def test_unknown_name_lists_the_known_ones(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    cfg = make_cfg(synthetic_body_model_dir, {}, f"data_dir={tmp_path}")
    with pytest.raises(ValueError, match="'Nope'") as err:
        build_dataset("Nope", "train", cfg)
    assert DATASETS and all(name in str(err.value) for name in DATASETS)
    assert set(DATASETS) <= set(ALL_DATASETS)
