"""docs/extending.md's recipes work as written: a toy family, dataset, evaluator and output format registered in the
places the page names train with main/train.py and test with main/test.py; and the registries stay in step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import data
import data.targets
import main.config
import main.model
from common.engine.cli import run_cli
from common.paths import REPO_ROOT
from main.config import ConfigError
from main.test import main as evaluate_main
from main.train import main as train_main
from tests.main import toy_family


def test_families_targets_and_config_name_the_same_archs() -> None:
    assert tuple(main.model.FAMILIES) == main.config.ARCHS
    # The image-crop families build samples through data/targets; the depth (v2v) and multi-view (triangulation)
    # families' datasets build their own, so TARGETS names a subset, in the same order.
    assert [arch for arch in main.config.ARCHS if arch in data.targets.TARGETS] == list(data.targets.TARGETS)
    for name, family in main.model.FAMILIES.items():
        assert family.name == name
        for overlay in family.default_configs:
            assert main.config.load_config(overlay).model.arch == name, overlay


def test_every_recipe_of_the_extending_page_names_files_that_exist() -> None:
    text = (REPO_ROOT / "docs" / "extending.md").read_text(encoding="utf-8")
    for heading in ("Add a dataset", "Add a model family", "Add an evaluator", "Add an output format"):
        assert f"## {heading}" in text
    for path in (
        "main/config.py",
        "main/model.py",
        "main/family.py",
        "data/__init__.py",
        "data/targets/__init__.py",
        "data/targets/base.py",
        "data/dataset.py",
        "data/record.py",
        "common/utils/metrics.py",
    ):
        assert path in text and (REPO_ROOT / path).is_file(), path


@pytest.fixture
def toy_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The four registrations docs/extending.md asks for, undone after the test."""
    monkeypatch.setattr(main.config, "ARCHS", (*main.config.ARCHS, toy_family.ARCH))
    monkeypatch.setitem(main.model.FAMILIES, toy_family.ARCH, toy_family.TOY_FAMILY)
    monkeypatch.setitem(data.targets.TARGETS, toy_family.ARCH, toy_family.DotTargets)
    monkeypatch.setitem(data.DATASETS, toy_family.ToyDots.NAME, toy_family.ToyDots)


def test_a_toy_family_trains_and_tests_through_the_commands(toy_registered: None, tmp_path: Path) -> None:
    root = tmp_path / "toy"
    toy_family.write_toy_dots(root, count=8)
    overrides = [
        f"model.arch={toy_family.ARCH}", "model.input_img_shape=[32,24]", "data.trainset_3d=[ToyDots]",
        "data.trainset_2d=[]", "data.testset=ToyDots", f"data.dataset_roots={{ToyDots: {root}}}", "data.num_thread=0",
        "train.end_epoch=2", "train.train_batch_size=4", "train.lr=1e-2", "train.vis_interval=1",
        "test.test_batch_size=4", f"output_dir={tmp_path / 'out'}",
    ]  # fmt: skip
    assert run_cli(train_main, ["--gpu", "0", *overrides], prog="train.py", user_errors=(ConfigError,)) == 0
    assert (tmp_path / "out" / "model_dump" / "snapshot_1.pth.tar").is_file()
    assert any((tmp_path / "out" / "log" / "tensorboard").iterdir())  # the family's picture and the losses
    assert run_cli(evaluate_main, ["--gpu", "0", "--test_epoch", "1", *overrides], prog="test.py",
                   user_errors=(ConfigError,)) == 0  # fmt: skip
    result = tmp_path / "out" / "result" / "ToyDots"
    metrics = json.loads((result / "metrics.json").read_text())["metrics"]
    predictions = json.loads((result / "predictions.json").read_text())
    assert len(predictions) == 8 and metrics["dot_error_px"] == pytest.approx(
        sum(p["dot_error_px"] for p in predictions) / 8
    )


def test_an_unregistered_family_is_a_config_error_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="toy_dot") as raised:
        main.config.load_config(overrides=[f"model.arch={toy_family.ARCH}"])
    assert "hand4whole" in str(raised.value) and raised.value.key == "model.arch"
