"""Testing engine and main/test.py: strict loading of public-style snapshots, evaluation over 1 or 2 processes
(each sample once), the printed table and metrics json, and bad input (one line, exit code 2)."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

import data
from common.engine.cli import run_cli
from common.engine.distributed import LaunchPlan
from common.engine.snapshot import snapshot_path, write_snapshot
from common.engine.tester import TestJob, run_test
from main.config import Config, ConfigError
from main.model import get_model
from main.test import main as script_main
from tests.main.conftest import SMALL_MODEL
from tests.main.engine_data import Sample, in_memory_dataset, split_batch, with_eval_keys

BASE = ["data.num_thread=0", "test.test_batch_size=2"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: these cores are shared, and oversubscribed OpenMP threads make every step crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cfg(make_small_cfg: Callable[..., Config], tmp_path_factory: pytest.TempPathFactory) -> Config:
    return make_small_cfg(*BASE, f"output_dir={tmp_path_factory.mktemp('run')}")


@pytest.fixture(scope="module")
def checkpoint(cfg: Config) -> tuple[Path, dict[str, torch.Tensor]]:
    """snapshot_3 as the public Hand4Whole files are: DataParallel's `module.` prefixes, network and epoch only."""
    torch.manual_seed(0)
    network = get_model(cfg, "train").state_dict()
    path = write_snapshot({"epoch": 3, "network": {f"module.{k}": v for k, v in network.items()}},
                          snapshot_path(Path(cfg.output_dir) / "model_dump", 3))  # fmt: skip
    return path, network


@pytest.fixture(scope="module")
def samples(cfg: Config, make_wholebody_targets) -> list[Sample]:
    """Five test samples: an odd count, so two processes get 3 and 2 (no padding duplicate allowed)."""
    from common.body_models import get_body_models

    vertices = get_body_models(cfg.human_model_path).vertex_count
    return with_eval_keys(split_batch(*make_wholebody_targets(cfg, 5, seed=2)), vertices)


def metrics_of(output_dir: Path) -> dict:
    return json.loads((output_dir / "result" / "InMemory" / "metrics.json").read_text())


def expected_mpvpe(cfg: Config, network: dict[str, torch.Tensor], samples: list[Sample]) -> list[float]:
    model = get_model(cfg, "test").eval()
    model.load_state_dict(network)
    errors = []
    with torch.inference_mode():
        for inputs, targets, meta in samples:
            batch = [{key: value[None] for key, value in d.items()} for d in (inputs, targets, meta)]  # B = 1
            mesh = model(*batch, "test")["smplx_mesh_cam"][0]
            errors.append(float((mesh - targets["smplx_mesh_cam"]).norm(dim=-1).mean() * 1000))
    return errors


def test_two_processes_evaluate_every_sample_once_as_one_process_does(cfg, checkpoint, samples, tmp_path) -> None:
    path, network = checkpoint
    for processes in (1, 2):
        run_cfg = dataclasses.replace(cfg, output_dir=str(tmp_path / str(processes)))
        job = TestJob(run_cfg, path, functools.partial(get_model, mode="test"),
                      functools.partial(in_memory_dataset, samples))  # fmt: skip
        run_test(job, LaunchPlan("cpu", (), processes, "gloo"))
    single, double = metrics_of(tmp_path / "1"), metrics_of(tmp_path / "2")
    assert single["samples"] == double["samples"] == {"mpvpe_all": 5}
    expected = sum(expected_mpvpe(cfg, network, samples)) / 5
    assert single["metrics"]["mpvpe_all"] == pytest.approx(expected, rel=1e-4)
    assert double["metrics"]["mpvpe_all"] == pytest.approx(expected, rel=1e-4)


def test_script_loads_a_prefixed_snapshot_and_prints_the_table(cfg, checkpoint, samples, monkeypatch, capsys) -> None:
    monkeypatch.setattr(data, "build_testset", functools.partial(in_memory_dataset, samples))
    argv = ["--test_epoch", "3", f"human_model_path={cfg.human_model_path}", *SMALL_MODEL, *BASE,
            f"output_dir={cfg.output_dir}"]  # fmt: skip
    assert run_cli(script_main, argv, prog="test.py", user_errors=(ConfigError,)) == 0
    out = capsys.readouterr().out
    json_path = Path(cfg.output_dir) / "result" / "InMemory" / "metrics.json"
    assert "InMemory (5 samples)" in out and "MPVPE (All)" in out
    assert f"metrics written to {json_path}" in out and json_path.is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--test_epoch", "9"], "--test_epoch 9: snapshot not found: {output}/model_dump/snapshot_9.pth.tar"),
        (["--ckpt", "{output}/none.pth.tar"], "--ckpt: snapshot not found: {output}/none.pth.tar"),
        (["--test_epoch", "3", "--gpu", "a-b"], "invalid GPU ids 'a-b'"),
        (["--test_epoch", "3", "--cfg", "missing.yaml"], "config file not found"),
        (["--test_epoch", "3", "--gpu", "1"], "GPU id(s) [1] do not exist: this machine has 1 CUDA device(s)"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(argv, message, cfg, checkpoint, monkeypatch, capsys) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a one-GPU machine, for the id check
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    argv = [arg.format(output=cfg.output_dir) for arg in argv]
    code = run_cli(script_main, [*argv, f"output_dir={cfg.output_dir}"], prog="test.py", user_errors=(ConfigError,))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("test.py: error: ") and err.count("\n") == 1
    assert message.format(output=cfg.output_dir) in err


def test_mismatched_checkpoint_lists_missing_and_unexpected_keys(cfg, checkpoint, tmp_path, capsys) -> None:
    _, network = checkpoint
    state = dict(network)
    state["hand_roi_net.extra.weight"] = state.pop("hand_rotation_net.hand_pose_out.0.weight")
    path = write_snapshot({"epoch": 0, "network": state}, tmp_path / "snapshot_0.pth.tar")
    argv = ["--ckpt", str(path), f"human_model_path={cfg.human_model_path}", *SMALL_MODEL, *BASE,
            f"output_dir={tmp_path}"]  # fmt: skip
    assert run_cli(script_main, argv, prog="test.py", user_errors=(ConfigError,)) == 2
    err = capsys.readouterr().err
    assert "1 missing key(s): hand_rotation_net.hand_pose_out.0.weight" in err
    assert "1 unexpected key(s): hand_roi_net.extra.weight" in err and err.count("\n") == 1
