"""Shared fixtures and marker handling for the whole suite (CPU first; see pyproject.toml's markers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.paths import REPO_ROOT

REAL_BODY_MODEL_DIR = REPO_ROOT / "common" / "utils" / "human_model_files"


def real_body_models_present() -> bool:
    """Whether the licensed SMPL-X files (.npz or .pkl) are installed where the default config looks for them."""
    return any((REAL_BODY_MODEL_DIR / "smplx" / f"SMPLX_NEUTRAL.{suffix}").is_file() for suffix in ("npz", "pkl"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    skip_assets = pytest.mark.skip(reason=f"needs the licensed body-model files under {REAL_BODY_MODEL_DIR}")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "needs_assets" in item.keywords and not real_body_models_present():
            item.add_marker(skip_assets)


@pytest.fixture(scope="session")
def synthetic_body_model_dir() -> Path:
    """A synthetic human_model_files tree (generated once, then cached under output/)."""
    from common.body_models.synthetic import ensure_synthetic_body_models

    return ensure_synthetic_body_models()


@pytest.fixture(scope="session")
def synthetic_agora_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_body_model_dir: Path) -> Path:
    """A small synthetic dataset in AGORA's layout: 8 'train' and 4 'validation' images, seed 0 (built once)."""
    from data.Synthetic import make_dataset

    root = tmp_path_factory.mktemp("synthetic_agora")
    for split, num_images in (("train", 8), ("validation", 4)):
        make_dataset(root, split, num_images, seed=0, human_model_path=synthetic_body_model_dir, progress=False)
    return root
