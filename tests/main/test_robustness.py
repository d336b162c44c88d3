"""Hostile environments for train.py and test.py: nothing is lost, every failure is one line.

An unwritable output folder (checked before any work), a full disk while a snapshot is written, an empty test set,
a kill during a snapshot write (a temporary file plus a truncated newest snapshot) and weights that explode. The
runs use the reduced whole-body model (tests/main/conftest.py) on in-memory samples, one step per epoch.

The unwritable folder is a path under a regular file: chmod does not stop root (CI runs tests as root), but no
one can create a folder inside a file.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import data
import main.test as test_script
import main.train as train_script
from common.engine import cli
from common.engine.cli import run_cli
from common.engine.nonfinite import WEIGHT_BOUND, DivergedWeightsError, check_weights
from common.engine.snapshot import read_snapshot, snapshot_path, write_snapshot
from common.utils import atomic_io
from main.config import Config, ConfigError
from main.model import get_model
from tests.main.conftest import SMALL_MODEL
from tests.main.engine_data import Sample, in_memory_dataset, split_batch

BASE = ["data.num_thread=0", "train.vis_interval=0", "train.log_interval=1", "train.train_batch_size=2"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: these cores are shared, and oversubscribed OpenMP threads make every step crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def samples(make_small_cfg: Callable[..., Config], make_wholebody_targets) -> list[Sample]:
    """Two samples: one step of batch 2 per epoch."""
    return split_batch(*make_wholebody_targets(make_small_cfg(), 2, seed=3))


def overrides(human_model_path: Path, output_dir: Path, end_epoch: int = 1) -> list[str]:
    return [f"human_model_path={human_model_path}", *SMALL_MODEL, *BASE, f"output_dir={output_dir}",
            f"train.end_epoch={end_epoch}"]  # fmt: skip


def train_cli(argv: list[str]) -> int:
    """main/train.py as its __main__ block runs it, in this process."""
    return run_cli(train_script.main, argv, prog="train.py", user_errors=(ConfigError,))


def evaluate_cli(argv: list[str]) -> int:
    """main/test.py as its __main__ block runs it, in this process."""
    return run_cli(test_script.main, argv, prog="test.py", user_errors=(ConfigError,))


def one_error_line(capsys: pytest.CaptureFixture[str], prog: str) -> str:
    """The one error line a failed command printed last on stderr, after its log (no traceback, nothing else)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and [line for line in lines if line.startswith(f"{prog}: ")] == lines[-1:], lines
    return lines[-1]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def snapshot_files(model_dir: Path) -> list[str]:
    return sorted(p.name for p in model_dir.iterdir()) if model_dir.is_dir() else []


@pytest.fixture
def train_data(samples: list[Sample], monkeypatch: pytest.MonkeyPatch) -> None:
    """train.py's training set is the in-memory samples (it imports data.build_trainset when it runs)."""
    monkeypatch.setattr(data, "build_trainset", functools.partial(in_memory_dataset, samples))


def must_not_build(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a model or dataset was built before the output folder was checked")


# --- an output folder that cannot be created --------------------------------------------------------------------


def test_train_with_an_unwritable_output_folder_stops_before_any_work(
    synthetic_body_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # fmt: skip
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"a regular file")
    monkeypatch.setattr(train_script, "get_family", must_not_build)
    monkeypatch.setattr(data, "build_trainset", must_not_build)
    assert train_cli(overrides(synthetic_body_model_dir, blocker / "sub")) == 2
    line = one_error_line(capsys, "train.py")
    assert f"output folder {blocker / 'sub' / 'model_dump'} cannot be created or written: Not a directory" in line
    assert f"({blocker} is a file)" in line
    assert files_under(tmp_path) == ["a_file"] and blocker.read_bytes() == b"a regular file"


def test_test_with_an_unwritable_output_folder_stops_before_any_work(
    synthetic_body_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # fmt: skip
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"a regular file")
    monkeypatch.setattr(test_script, "get_family", must_not_build)
    monkeypatch.setattr(data, "build_testset", must_not_build)
    argv = ["--test_epoch", "0", f"human_model_path={synthetic_body_model_dir}", f"output_dir={blocker / 'sub'}"]
    assert evaluate_cli(argv) == 2
    line = one_error_line(capsys, "test.py")
    assert f"output folder {blocker / 'sub' / 'log'} cannot be created or written: Not a directory" in line
    assert files_under(tmp_path) == ["a_file"]


def test_a_writable_output_folder_is_checked_without_a_trace(tmp_path: Path) -> None:
    """The probe leaves no file, and the folders it had to create are gone again (the writers make them)."""
    from common.engine.run_log import check_output_folders

    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "old.txt").write_text("old")
    check_output_folders([tmp_path / "new" / "deep" / "log", tmp_path / "kept"])
    assert files_under(tmp_path) == ["kept", "kept/old.txt"]


# --- a full disk when the snapshot is written -------------------------------------------------------------------


class FullDiskFile:
    """A binary file whose writes fail with ENOSPC once `budget_bytes` have been written, as on a full disk."""

    def __init__(self, file: Any, budget_bytes: int) -> None:
        self._file, self.budget_bytes, self.written_bytes = file, budget_bytes, 0

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if self.written_bytes + size > self.budget_bytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written_bytes += size
        return self._file.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> FullDiskFile:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._file.close()


class OsWithFullDisk:
    """The `os` module as common.utils.atomic_io sees it, with a disk that fills up after `budget_bytes` for every
    temporary file whose name contains `name_part` (other files are written normally)."""

    def __init__(self, name_part: str, budget_bytes: int) -> None:
        self.name_part, self.budget_bytes = name_part, budget_bytes

    def fdopen(self, fd: int, *args: Any, **kwargs: Any) -> Any:
        file = os.fdopen(fd, *args, **kwargs)
        if self.name_part in os.readlink(f"/proc/self/fd/{fd}"):
            return FullDiskFile(file, self.budget_bytes)
        return file

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def test_full_disk_at_snapshot_time_is_one_line_with_the_os_error_and_keeps_the_previous_snapshot(
    synthetic_body_model_dir: Path, tmp_path: Path, train_data: None, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # fmt: skip
    model_dir = tmp_path / "model_dump"
    assert train_cli(overrides(synthetic_body_model_dir, tmp_path, end_epoch=1)) == 0
    first = snapshot_path(model_dir, 0).read_bytes()
    capsys.readouterr()
    # The disk fills up 64 KiB into snapshot_1: torch.save itself then raises "unexpected pos ..." (a RuntimeError)
    monkeypatch.setattr(atomic_io, "os", OsWithFullDisk(".snapshot_1.pth.tar.", 64 * 1024))
    assert train_cli(["--continue", *overrides(synthetic_body_model_dir, tmp_path, end_epoch=2)]) == 2
    line = one_error_line(capsys, "train.py")
    assert line == f"train.py: error: cannot write {snapshot_path(model_dir, 1)}: No space left on device"
    assert snapshot_path(model_dir, 0).read_bytes() == first, "the previous snapshot is intact"
    assert snapshot_files(model_dir) == ["snapshot_0.pth.tar"], "no temporary file, no partial snapshot_1"


# --- an empty test set ------------------------------------------------------------------------------------------


def test_empty_test_set_is_an_error_and_keeps_the_earlier_metrics(
    make_small_cfg: Callable[..., Config], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # fmt: skip
    cfg = make_small_cfg("data.num_thread=0", f"output_dir={tmp_path}")
    torch.manual_seed(0)
    network = get_model(cfg, "train").state_dict()
    write_snapshot({"epoch": 0, "network": network}, snapshot_path(tmp_path / "model_dump", 0))
    earlier = tmp_path / "result" / "InMemory" / "metrics.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b'{"dataset": "InMemory", "metrics": {"mpvpe_all": 51.25}}\n')
    monkeypatch.setattr(data, "build_testset", functools.partial(in_memory_dataset, []))
    argv = ["--test_epoch", "0", f"human_model_path={cfg.human_model_path}", *SMALL_MODEL, "data.num_thread=0",
            f"output_dir={tmp_path}"]  # fmt: skip
    assert evaluate_cli(argv) == 2
    line = one_error_line(capsys, "test.py")
    assert "the test set InMemory (test split) has no samples" in line and f"{earlier} is left as it was" in line
    assert earlier.read_bytes() == b'{"dataset": "InMemory", "metrics": {"mpvpe_all": 51.25}}\n'
    assert files_under(earlier.parent) == ["metrics.json"]


# --- a kill during a snapshot write, then --continue ------------------------------------------------------------


def leave_partial_write(model_dir: Path, epoch: int) -> Path:
    """What a kill between write_snapshot's temporary file and its rename leaves: a file named as
    common.utils.atomic_io.write_atomic's mkstemp names it, `.snapshot_<epoch>.pth.tar.<random>.tmp`, holding the
    first bytes of a snapshot."""
    partial = model_dir / f".{snapshot_path(model_dir, epoch).name}.k1ll3d_x.tmp"
    partial.write_bytes(snapshot_path(model_dir, epoch - 1).read_bytes()[:4096])
    return partial


def test_continue_after_a_kill_names_the_truncated_snapshot_and_resumes_from_the_last_good_one_with_the_flag(
    synthetic_body_model_dir: Path, tmp_path: Path, train_data: None, capsys, caplog
) -> None:  # fmt: skip
    model_dir = tmp_path / "model_dump"
    assert train_cli(overrides(synthetic_body_model_dir, tmp_path, end_epoch=2)) == 0  # snapshots 0 and 1
    newest = snapshot_path(model_dir, 1)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated, as a copy cut short leaves it
    partial = leave_partial_write(model_dir, 2)
    capsys.readouterr()

    resume = overrides(synthetic_body_model_dir, tmp_path, end_epoch=3)
    assert train_cli(["--continue", *resume]) == 2
    line = one_error_line(capsys, "train.py")
    assert f"cannot read snapshot {newest}" in line and "truncated" in line
    good = snapshot_path(model_dir, 0)
    assert f"the newest good snapshot is {good}: resume from it with --continue-from-last-good" in line
    assert not partial.exists(), "the interrupted write's temporary file is removed when training starts"

    partial = leave_partial_write(model_dir, 2)
    with caplog.at_level(logging.INFO):
        assert train_cli(["--continue-from-last-good", *resume]) == 0
    assert f"Skipping the unreadable newest snapshot (cannot read snapshot {newest}" in caplog.text
    assert f"resuming from the newest good one, {snapshot_path(model_dir, 0)}" in caplog.text
    assert f"Deleted {partial}: the temporary file of a snapshot write that was interrupted" in caplog.text
    kept = ["snapshot_0.pth.tar", "snapshot_1.pth.tar", "snapshot_1.pth.tar.unreadable", "snapshot_2.pth.tar"]
    assert snapshot_files(model_dir) == kept, "the truncated file is set aside, not deleted"
    assert read_snapshot(newest)["epoch"] == 1, "epoch 1 trained again from snapshot_0 and written whole"


def test_an_unreadable_newer_snapshot_does_not_make_keep_snapshots_delete_the_good_ones(
    synthetic_body_model_dir: Path, tmp_path: Path, train_data: None
) -> None:  # fmt: skip
    """keep_snapshots=1 keeps the highest epoch: were the unreadable snapshot_7 still counted, resuming from
    snapshot_0 and writing snapshot_1 would delete both good snapshots and keep the broken one."""
    model_dir = tmp_path / "model_dump"
    assert train_cli(overrides(synthetic_body_model_dir, tmp_path, end_epoch=1)) == 0
    snapshot_path(model_dir, 7).write_bytes(snapshot_path(model_dir, 0).read_bytes()[:1000])
    resume = [*overrides(synthetic_body_model_dir, tmp_path, end_epoch=2), "train.keep_snapshots=1"]
    assert train_cli(["--continue-from-last-good", *resume]) == 0
    assert snapshot_files(model_dir) == ["snapshot_1.pth.tar", "snapshot_7.pth.tar.unreadable"]
    assert read_snapshot(snapshot_path(model_dir, 1))["epoch"] == 1


# --- exploded weights ---------------------------------------------------------------------------------------------


def test_exploded_weights_stop_training_before_the_snapshot(
    make_small_cfg: Callable[..., Config], synthetic_body_model_dir: Path, tmp_path: Path, train_data: None, capsys
) -> None:  # fmt: skip
    """Adam moves every weight with a gradient by about lr: lr 1e30 leaves a finite loss and weights of 1e30."""
    assert train_cli(["--lr", "1e30", *overrides(synthetic_body_model_dir, tmp_path, end_epoch=1)]) == 1
    line = one_error_line(capsys, "train.py")
    prefix = "train.py: training stopped: weights diverged at the end of epoch 0, before writing snapshot_0.pth.tar: "
    assert line.startswith(prefix) and "max |w| = 1e+30" in line and "(bound 1e+20)" in line
    named = line[len(prefix) :].split(" max |w|")[0]
    assert named in get_model(make_small_cfg(), "train").state_dict(), named
    assert snapshot_files(tmp_path / "model_dump") == [], "no snapshot holds the exploded weights"


@pytest.mark.parametrize(
    ("value", "shown"), [(float("nan"), "max |w| = nan"), (float("inf"), "max |w| = inf"), (-1e30, "max |w| = 1e+30")]
)
def test_check_weights_names_nan_inf_and_huge_tensors(value: float, shown: str) -> None:
    state = {"conv.weight": torch.ones(3, 3), "head.bias": torch.tensor([0.5, value, 2.0]),
             "bn.num_batches_tracked": torch.tensor(10**18), "empty": torch.zeros(0)}  # fmt: skip
    expected = "^" + re.escape(f"weights diverged before saving: head.bias {shown} (bound 1e+20)")
    with pytest.raises(DivergedWeightsError, match=expected):  # the integer counter and the empty tensor: skipped
        check_weights(state, when="before saving")
    state["head.bias"] = torch.tensor([0.5, WEIGHT_BOUND / 10, -2.0])  # large but within the bound: accepted
    check_weights(state)


def test_output_write_errors_are_user_errors_of_the_commands() -> None:
    """An unwritable folder or a full disk ends with one line and exit code 2, not a traceback."""
    assert issubclass(atomic_io.OutputWriteError, cli.USER_ERRORS)
