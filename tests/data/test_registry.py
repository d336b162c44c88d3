"""The dataset dict: every Hand4Whole dataset name builds, and reports a missing data root as a missing annotation
file under that root (no fixture needed); an unknown name lists the known ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from data import DATASETS, build_dataset
from data.dataset import MissingAnnotationError
from tests.data.fixtures import make_cfg

HAND4WHOLE_DATASETS = ("AGORA", "EHF", "Human36M", "MPII", "MSCOCO", "PW3D", "MPI_INF_3DHP")


def test_every_hand4whole_name_is_registered() -> None:
    assert set(DATASETS) == set(HAND4WHOLE_DATASETS)


def registered(name: str) -> type:
    """The class of ``name`` in DATASETS."""
    return DATASETS[name]


@pytest.mark.parametrize("name", HAND4WHOLE_DATASETS)
def test_missing_default_root_names_a_file_under_it(name: str, tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    cls = registered(name)
    cfg = make_cfg(synthetic_body_model_dir, {}, f"data_dir={tmp_path}")
    root = tmp_path / name / cls.DEFAULT_SUBDIR  # Hand4Whole's place: data/<NAME>/data, or data/<NAME> (H36M, COCO)
    for split in cls.SPLITS:
        with pytest.raises(MissingAnnotationError) as err:
            build_dataset(name, split, cfg)
        assert Path(err.value.filename).is_relative_to(root), (split, err.value.filename)
        assert str(root) in str(err.value) and cls.DOWNLOAD_PAGE in str(err.value)


@pytest.mark.parametrize("name", HAND4WHOLE_DATASETS)
def test_missing_configured_root_names_a_file_under_it(
    name: str, tmp_path: Path, synthetic_body_model_dir: Path
) -> None:
    cls = registered(name)
    root = tmp_path / "elsewhere"
    cfg = make_cfg(synthetic_body_model_dir, {name: root}, f"data_dir={tmp_path / 'unused'}")
    with pytest.raises(MissingAnnotationError) as err:
        build_dataset(name, cls.SPLITS[0], cfg)
    assert Path(err.value.filename).is_relative_to(root)


def test_unknown_name_lists_the_known_ones(tmp_path: Path, synthetic_body_model_dir: Path) -> None:
    cfg = make_cfg(synthetic_body_model_dir, {}, f"data_dir={tmp_path}")
    with pytest.raises(ValueError, match="'Nope'") as err:
        build_dataset("Nope", "train", cfg)
    assert DATASETS and all(name in str(err.value) for name in DATASETS)
    assert set(DATASETS) <= set(HAND4WHOLE_DATASETS)
