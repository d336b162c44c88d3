"""Training engine and main/train.py: DDP on CPU (gloo), exact resume, tool-made snapshot_0, NaN stop, bad input.

The engine runs the real whole-body model in the reduced test geometry (tests/main/conftest.py, SMALL_MODEL) on a
few in-memory contract samples (tests/main/engine_data.py), one or two steps per run.
"""

from __future__ import annotations

import functools
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from common.engine.cli import UsageError, run_cli
from common.engine.distributed import LaunchPlan, launch
from common.engine.nonfinite import NonFiniteLossError
from common.engine.seeding import seed_everything
from common.engine.snapshot import read_snapshot, snapshot_path, write_snapshot
from common.engine.trainer import TrainJob, run_training
from main.config import Config, ConfigError, config_to_dict
from main.model import get_model, mesh_picture
from main.train import main as train_main
from tests.main.engine_data import Sample, fail_in_last_rank, in_memory_dataset, split_batch

REPO_ROOT = Path(__file__).resolve().parents[2]
# Deterministic CPU runs: no loader workers, no images (rendering has its own test below).
BASE = ["data.num_thread=0", "train.vis_interval=0", "train.log_interval=1"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: these cores are shared, and oversubscribed OpenMP threads make every step crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_cli(argv: list[str]) -> int:
    """main/train.py as its __main__ block runs it, in this process."""
    return run_cli(train_main, argv, prog="train.py", user_errors=(ConfigError,))


def cpu_plan(processes: int = 1) -> LaunchPlan:
    return LaunchPlan("cpu", (), processes, "gloo")


def train(cfg: Config, samples: list[Sample], resume: bool = False, processes: int = 1) -> None:
    job = TrainJob(cfg, config_to_dict(cfg), functools.partial(get_model, mode="train"),
                   functools.partial(in_memory_dataset, samples), resume=resume,
                   make_picture=mesh_picture)  # fmt: skip
    run_training(job, cpu_plan(processes))


def initial_weights(cfg: Config) -> dict[str, torch.Tensor]:
    """The weights every run starts from: the trainer seeds with train.seed, then builds the model."""
    seed_everything(cfg.train.seed)
    return get_model(cfg, "train").state_dict()


def network(cfg: Config, epoch: int) -> dict[str, torch.Tensor]:
    return read_snapshot(snapshot_path(Path(cfg.output_dir) / "model_dump", epoch))["network"]


@pytest.fixture(scope="module")
def samples(make_small_cfg: Callable[..., Config], make_wholebody_targets) -> list[Sample]:
    return split_batch(*make_wholebody_targets(make_small_cfg(), 8, seed=1))


def test_two_cpu_processes_match_one_process_on_the_combined_batch(make_small_cfg, samples, tmp_path) -> None:
    """2 gloo processes x batch 2 for two steps end with the weights of 1 process x batch 4.

    Each step of the two processes covers the same 4 samples as the one process's step (DistributedSampler deals
    the same seeded permutation round-robin), the loss is a per-sample mean and DDP averages the gradients, so
    only BatchNorm differs: with batch statistics each process normalises its half batch alone. SyncBatchNorm
    would fix that but refuses CPU modules in this torch, so this test trains with train.batchnorm=frozen
    (running statistics, affine weights still trained), which makes the two computations the same up to float
    rounding of the gradient all-reduce. Adam turns each gradient into a step of about lr, so the tolerance is a
    small fraction of lr, while the weights move by about lr per step (checked as well).
    """
    common = [*BASE, "train.end_epoch=1", "train.batchnorm=frozen", "train.lr=1e-3"]
    one = make_small_cfg(*common, "train.train_batch_size=4", f"output_dir={tmp_path / 'one'}")
    two = make_small_cfg(*common, "train.train_batch_size=2", f"output_dir={tmp_path / 'two'}")
    train(one, samples)
    train(two, samples, processes=2)
    start, single, double = initial_weights(one), network(one, 0), network(two, 0)
    moved = max((single[k] - start[k]).abs().max().item() for k in start if start[k].is_floating_point())
    assert moved > 1e-3  # two Adam steps of lr 1e-3 moved some weight by about 2 lr
    for key in start:
        torch.testing.assert_close(double[key], single[key], rtol=0, atol=1e-4, msg=key)


def test_resume_after_an_interrupted_epoch_ends_with_the_uninterrupted_weights(make_small_cfg, samples, tmp_path):
    """end_epoch=1 then --continue to end_epoch=2 equals one run to end_epoch=2 (lr divided at epoch 1)."""
    common = [*BASE, "train.train_batch_size=2", "train.lr_dec_epoch=[1]"]
    data = samples[:2]  # one step per epoch
    straight = make_small_cfg(*common, "train.end_epoch=2", f"output_dir={tmp_path / 'straight'}")
    train(straight, data)
    train(make_small_cfg(*common, "train.end_epoch=1", f"output_dir={tmp_path / 'split'}"), data)
    resumed = make_small_cfg(*common, "train.end_epoch=2", f"output_dir={tmp_path / 'split'}")
    train(resumed, data, resume=True)

    expected, actual = network(straight, 1), network(resumed, 1)
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=key)
    snapshot = read_snapshot(snapshot_path(tmp_path / "split" / "model_dump", 1))
    assert {"epoch", "network", "optimizer", "scheduler", "scaler", "rng_states", "config"} <= snapshot.keys()
    assert snapshot["epoch"] == 1 and snapshot["scheduler"]["last_epoch"] == 2
    assert snapshot["optimizer"]["param_groups"][0]["lr"] == pytest.approx(resumed.train.lr / 10)
    assert snapshot["config"]["train"]["end_epoch"] == 2


def test_partial_tool_snapshot_0_starts_at_epoch_1_and_keeps_fresh_heads(make_small_cfg, samples, tmp_path, caplog):
    """A merge_hand_to_all-style snapshot_0 (epoch 0, network only, hand heads dropped, partial): training starts
    at epoch 1, loads the backbone weights it holds and leaves the hand heads at their fresh initialisation."""
    cfg = make_small_cfg(*BASE, "train.train_batch_size=2", "train.end_epoch=2", "train.lr=1e-9",
                         "train.vis_interval=1", f"output_dir={tmp_path}")  # fmt: skip
    fresh = initial_weights(cfg)
    seed_everything(123)  # the snapshot's weights: another initialisation, so that they differ from the fresh one
    marked = get_model(cfg, "train").state_dict()
    heads = ("hand_position_net.", "hand_rotation_net.")  # what merge_hand_to_all drops by default
    kept = {f"module.{k}": v for k, v in marked.items() if not k.startswith(heads)}
    write_snapshot({"epoch": 0, "network": kept, "partial": True}, snapshot_path(tmp_path / "model_dump", 0))

    with caplog.at_level(logging.INFO):
        train(cfg, samples[:2], resume=True)

    assert not snapshot_path(tmp_path / "model_dump", 2).exists()
    trained = network(cfg, 1)  # epoch 1 only: snapshot_0 stays the tool's
    assert read_snapshot(snapshot_path(tmp_path / "model_dump", 0)).keys() == {"epoch", "network", "partial"}
    for key in ("backbone.layer1.0.conv1.weight", "box_net.deconv.0.weight"):  # lr 1e-9: weights stay within 1e-8
        assert not torch.allclose(marked[key], fresh[key], atol=1e-3)
        torch.testing.assert_close(trained[key], marked[key], rtol=0, atol=1e-6)
    for key in fresh:
        if key.startswith("hand_position_net.") and fresh[key].is_floating_point():
            torch.testing.assert_close(trained[key], fresh[key], rtol=0, atol=1e-6, msg=key)
    assert "keep their initialisation, in hand_position_net" in caplog.text
    images = list((tmp_path / "log" / "tensorboard").glob("events.out.tfevents.*"))
    assert images, "no TensorBoard file"
    rendered = b"predictions" in images[0].read_bytes()  # the family's training picture
    assert rendered or "Mesh images turned off" in caplog.text


def overrides_of(cfg: Config) -> list[str]:
    """The key=value list that rebuilds this small test config through main/train.py's command line."""
    from tests.main.conftest import SMALL_MODEL

    train = cfg.train
    return [f"human_model_path={cfg.human_model_path}", *SMALL_MODEL, *BASE, f"output_dir={cfg.output_dir}",
            f"train.train_batch_size={train.train_batch_size}", f"train.end_epoch={train.end_epoch}"]  # fmt: skip


def nan_samples(samples: list[Sample]) -> list[Sample]:
    """The samples with a NaN shape target: only the smplx_shape loss term becomes NaN."""
    return [(i, {**t, "smplx_shape": torch.full_like(t["smplx_shape"], float("nan"))}, m) for i, t, m in samples]


def test_nan_loss_stops_training_naming_the_term_and_the_step(make_small_cfg, samples, tmp_path) -> None:
    cfg = make_small_cfg(*BASE, "train.train_batch_size=2", f"output_dir={tmp_path}")
    with pytest.raises(NonFiniteLossError, match=r"step 0 \(epoch 0, iteration 0\): smplx_shape = nan$"):
        train(cfg, nan_samples(samples[:2]))
    assert not snapshot_path(tmp_path / "model_dump", 0).exists()


# Every step is skipped, so the schedule steps without an optimizer step, which torch warns about.
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
def test_nan_loss_step_is_skipped_when_configured(make_small_cfg, samples, tmp_path, caplog) -> None:
    cfg = make_small_cfg(*BASE, "train.train_batch_size=2", "train.end_epoch=1", "train.skip_nonfinite=true",
                         "train.batchnorm=frozen", f"output_dir={tmp_path}")  # fmt: skip
    with caplog.at_level(logging.WARNING):
        train(cfg, nan_samples(samples[:2]))
    assert "Skipped step 0 (epoch 0, iteration 0): non-finite loss: smplx_shape = nan" in caplog.text
    start, after = initial_weights(cfg), network(cfg, 0)
    for key in start:  # no optimizer step ran, and frozen BatchNorm kept its statistics
        torch.testing.assert_close(after[key], start[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gpu", "abc"], "invalid GPU ids 'abc'"),
        (["--gpu", "0-3"], "GPU id(s) [2, 3] do not exist: this machine has 2 CUDA device(s)"),
        (["--cfg", "no_such_config"], "config file not found"),
        (["--continue"], "--continue: no snapshot_<epoch>.pth.tar in"),
        (["--continue-from-last-good"], "--continue: no snapshot_<epoch>.pth.tar in"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(argv, message, tmp_path, monkeypatch, capsys) -> None:
    # A machine with two GPUs, for the id check; nothing here gets as far as using one.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert train_cli([*argv, f"output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("train.py: error: ") and err.count("\n") == 1


def test_mismatched_snapshot_lists_missing_and_unexpected_keys(make_small_cfg, tmp_path, capsys) -> None:
    cfg = make_small_cfg(*BASE, "train.train_batch_size=2", f"output_dir={tmp_path}")
    state = initial_weights(cfg)
    state["face_regressor.renamed.0.weight"] = state.pop("face_regressor.expr_out.0.weight")
    write_snapshot({"epoch": 0, "network": state}, snapshot_path(tmp_path / "model_dump", 0))
    assert train_cli(["--continue", *overrides_of(cfg)]) == 2
    err = capsys.readouterr().err
    assert "1 missing key(s): face_regressor.expr_out.0.weight" in err
    assert "1 unexpected key(s): face_regressor.renamed.0.weight" in err and err.count("\n") == 1


def test_errors_in_a_spawned_process_come_back_as_one_line(capfd) -> None:
    """Bad input met by one of several spawned processes is a UsageError here (exit code 2 from run_cli), without
    the child's traceback or torch's warnings about terminating the other processes."""
    with pytest.raises(UsageError, match=r"1 missing key\(s\): box_net.weight; 1 unexpected key\(s\): box_net.renamed"):
        launch(fail_in_last_rank, cpu_plan(2))
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Terminating process" not in err


def test_train_script_runs_from_main_folder_and_reports_bad_gpu_ids() -> None:
    result = subprocess.run([sys.executable, "train.py", "--gpu", "0,,1", "--lr", "1e-4", "--continue"],
                            cwd=REPO_ROOT / "main", capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "train.py: error: invalid GPU ids '0,,1': not a GPU id list; expected one id '0', a list '0,1,2,3' or an "
        "inclusive range '0-3'"
    ]
