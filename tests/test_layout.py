"""The repository layout of DESIGN.md, the packages' origin, and the CI/README/tool-settings contract."""

import importlib
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

REQUIRED_FILES = [
    "README.md",
    "requirements.txt",
    "pyproject.toml",
    "setup.sh",
    ".ci/run",
    "common/paths.py",
    "common/engine/cli.py",
    "main/config.py",
    "main/configs/agora_finetune.yaml",
]
OUTPUT_DIRS = ["output/log", "output/model_dump", "output/result", "output/vis"]
REQUIRED_DIRS = ["main", "main/configs", "common", "data", "demo", "tool", "tests", *OUTPUT_DIRS]
PACKAGES = [
    "main",
    "common",
    "common.geometry",
    "common.body_models",
    "common.engine",
    "common.nets",
    "common.utils",
    "data",
    "demo",
    "tool",
]


@pytest.mark.parametrize("name", REQUIRED_FILES)
def test_required_file_exists(name: str) -> None:
    assert (ROOT / name).is_file(), name


@pytest.mark.parametrize("name", REQUIRED_DIRS)
def test_required_folder_exists(name: str) -> None:
    assert (ROOT / name).is_dir(), name


@pytest.mark.parametrize("name", PACKAGES)
def test_packages_are_regular_and_come_from_this_checkout(name: str) -> None:
    # `common`, `data` and `main` are generic names: an installed package of the same name must not win.
    module = importlib.import_module(name)
    assert module.__file__ is not None, f"{name} is a namespace package; it needs an __init__.py"
    assert Path(module.__file__).resolve() == ROOT / name.replace(".", "/") / "__init__.py"


def test_repo_root_constant_is_this_checkout() -> None:
    from common.paths import REPO_ROOT

    assert REPO_ROOT == ROOT


def test_ci_run_is_executable() -> None:
    ci_run = ROOT / ".ci/run"
    assert os.access(ci_run, os.X_OK)
    assert ci_run.read_text().startswith("#!")


def test_ci_runs_the_readme_commands() -> None:
    readme, ci_run = (ROOT / "README.md").read_text(), (ROOT / ".ci/run").read_text()
    for command in ("bash setup.sh", "python -m pytest"):
        assert command in readme, command
        assert re.search(rf"^{re.escape(command)}\b", ci_run, re.MULTILINE), command


def test_scripts_parse() -> None:
    for script in ("setup.sh", ".ci/run"):
        subprocess.run(["bash", "-n", str(ROOT / script)], check=True)


def test_requirements_are_exact_pins() -> None:
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][^\s=]*", line), line
            names.add(line.split("==")[0].lower())
    assert {"torch", "torchvision", "smplx", "omegaconf", "pytest", "ruff"} <= names


def test_pytest_settings() -> None:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert settings["testpaths"] == ["tests"] and settings["pythonpath"] == ["."]
    assert {marker.split(":")[0] for marker in settings["markers"]} == {"gpu", "slow", "needs_assets"}


def test_same_named_test_files_in_different_folders_do_not_collide(tmp_path: Path) -> None:
    # tests/ mirrors the packages, so tests/main/test_io.py and tests/data/test_io.py can both exist.
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    for folder in ("a", "b"):
        (tmp_path / "tests" / folder).mkdir(parents=True)
        (tmp_path / "tests" / folder / "test_same.py").write_text(f"def test_{folder}():\n    pass\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout + result.stderr
