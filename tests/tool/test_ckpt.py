"""Checkpoint tools and snapshot I/O on toy state dicts: key remapping, dropping, atomic writes, errors."""

from __future__ import annotations

import errno
import importlib.util
import io
import os
from collections import OrderedDict
from pathlib import Path
from types import ModuleType

import pytest
import torch

from common.engine.cli import UsageError, run_cli
from common.engine.resume import read_resume_snapshot, set_aside
from common.engine.snapshot import (
    SnapshotError,
    latest_snapshot,
    prune_snapshots,
    read_snapshot,
    remove_partial_snapshots,
    snapshot_path,
    strip_module_prefix,
    write_snapshot,
)
from common.paths import REPO_ROOT
from common.utils import atomic_io
from common.utils.atomic_io import OutputWriteError


def load_tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tool" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def toy_wholebody() -> OrderedDict[str, torch.Tensor]:
    return OrderedDict(
        [
            ("backbone.conv1.weight", torch.zeros(4, 3, 1, 1)),
            ("hand_roi_net.backbone.conv1.weight", torch.zeros(4, 3, 1, 1)),
            ("hand_roi_net.backbone.layer1.0.bn1.running_mean", torch.zeros(4)),
            ("hand_position_net.conv.0.weight", torch.zeros(2, 4, 1, 1)),
            ("hand_rotation_net.hand_pose_out.0.weight", torch.zeros(6, 4)),
            ("face_regressor.expr_out.0.weight", torch.zeros(10, 4)),
        ]
    )


@pytest.mark.parametrize("prefix", ["module.hand_backbone.", "module.backbone.", "backbone."])
def test_merge_copies_the_hand_backbone_under_either_naming(prefix: str) -> None:
    merge = load_tool("merge_hand_to_all")
    hand = strip_module_prefix(
        {
            prefix + "conv1.weight": torch.ones(4, 3, 1, 1),
            prefix + "layer1.0.bn1.running_mean": torch.full((4,), 2.0),
            "module.position_net.conv.0.weight": torch.ones(21, 4, 1, 1),
        }  # fmt: skip
    )
    merged, copied, dropped = merge.merge_hand_into_wholebody(toy_wholebody(), hand)
    assert sorted(copied) == ["hand_roi_net.backbone.conv1.weight", "hand_roi_net.backbone.layer1.0.bn1.running_mean"]
    assert torch.equal(merged["hand_roi_net.backbone.conv1.weight"], torch.ones(4, 3, 1, 1))
    assert torch.equal(merged["backbone.conv1.weight"], torch.zeros(4, 3, 1, 1)), "the body backbone is untouched"
    assert sorted(dropped) == ["hand_position_net.conv.0.weight", "hand_rotation_net.hand_pose_out.0.weight"]
    assert not any(k.startswith(("hand_position_net", "hand_rotation_net")) for k in merged)
    assert "face_regressor.expr_out.0.weight" in merged


def test_merge_can_keep_the_hand_heads_and_reports_bad_inputs() -> None:
    merge = load_tool("merge_hand_to_all")
    hand = {"backbone.conv1.weight": torch.ones(4, 3, 1, 1)}
    merged, _, dropped = merge.merge_hand_into_wholebody(toy_wholebody(), hand, keep_hand_heads=True)
    assert dropped == [] and "hand_position_net.conv.0.weight" in merged
    with pytest.raises(SnapshotError, match="no hand backbone"):
        merge.merge_hand_into_wholebody(toy_wholebody(), {"position_net.conv.0.weight": torch.ones(1)})
    with pytest.raises(SnapshotError, match="backbone.conv1.weight"):
        merge.merge_hand_into_wholebody(toy_wholebody(), {"backbone.conv1.weight": torch.ones(8, 3, 1, 1)})


def test_merge_cli_writes_an_epoch_zero_snapshot_and_never_overwrites_silently(tmp_path: Path, capsys) -> None:
    merge = load_tool("merge_hand_to_all")
    torch.save({"epoch": 6, "network": {"module." + k: v for k, v in toy_wholebody().items()}}, tmp_path / "all.pth")
    torch.save(
        {"epoch": 12, "network": {"module.backbone.conv1.weight": torch.ones(4, 3, 1, 1)}}, tmp_path / "hand.pth"
    )
    args = [
        "--wholebody",
        str(tmp_path / "all.pth"),
        "--hand",
        str(tmp_path / "hand.pth"),
        "--out",
        str(tmp_path / "s0"),
    ]
    assert merge.main(args) == 0
    out = capsys.readouterr().out
    assert "copied 1 tensors" in out and "hand_position_net" in out and "hand_rotation_net" in out
    snapshot = read_snapshot(tmp_path / "s0")
    assert snapshot["epoch"] == 0 and snapshot["partial"] is True
    assert torch.equal(snapshot["network"]["hand_roi_net.backbone.conv1.weight"], torch.ones(4, 3, 1, 1))
    before = (tmp_path / "s0").read_bytes()
    assert run_cli(merge.main, args) == 2, "an existing output needs --force"
    assert "exists" in capsys.readouterr().err and (tmp_path / "s0").read_bytes() == before
    assert merge.main(args + ["--force"]) == 0
    assert (
        run_cli(merge.main, ["--wholebody", str(tmp_path / "missing.pth"), "--hand", str(tmp_path / "hand.pth")]) == 2
    )
    err = capsys.readouterr().err
    assert "missing.pth" in err and len(err.strip().splitlines()) == 1


def test_reset_epoch_reports_a_missing_input_in_one_line_with_exit_code_2(tmp_path: Path, capsys) -> None:
    reset = load_tool("reset_epoch")
    assert run_cli(reset.main, ["--src", str(tmp_path / "snapshot_6.pth.tar"), "--out", str(tmp_path / "s0")]) == 2
    err = capsys.readouterr().err
    assert "snapshot_6.pth.tar" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "s0").exists()


def test_reset_epoch_drops_the_training_state_unless_kept() -> None:
    reset = load_tool("reset_epoch")
    snapshot = {
        "epoch": 6,
        "network": toy_wholebody(),
        "optimizer": {"state": {}},
        "scheduler": {},
        "config": {"a": 1},
        "rng_states": [{"torch": torch.zeros(3)}],
    }  # fmt: skip  (the keys common/engine/trainer.py saves)
    fresh = reset.reset_epoch(snapshot)
    assert fresh["epoch"] == 0 and fresh["config"] == {"a": 1}
    assert not {"optimizer", "scheduler", "rng_states"} & set(fresh)
    assert snapshot["epoch"] == 6, "the input is not modified"
    assert reset.reset_epoch(snapshot, keep_optimizer=True)["optimizer"] == {"state": {}}


def test_convert_simple_baseline_keeps_the_resnet_and_drops_the_head(tmp_path: Path) -> None:
    convert = load_tool("convert_simple_to_pose2pose")
    simple = {"module.conv1.weight": torch.ones(64, 3, 7, 7), "module.layer4.2.bn3.bias": torch.ones(2048),
              "module.deconv_layers.0.weight": torch.ones(2), "module.final_layer.weight": torch.ones(2)}  # fmt: skip
    network, dropped = convert.simplebaseline_to_backbone(simple)
    assert list(network) == ["backbone.conv1.weight", "backbone.layer4.2.bn3.bias"]
    assert sorted(dropped) == ["deconv_layers.0.weight", "final_layer.weight"]
    torch.save({"state_dict": simple}, tmp_path / "simple.pth.tar")
    assert convert.main(["--src", str(tmp_path / "simple.pth.tar"), "--out", str(tmp_path / "s0")]) == 0
    assert read_snapshot(tmp_path / "s0")["partial"] is True
    with pytest.raises(SnapshotError, match="no ResNet keys"):
        convert.simplebaseline_to_backbone({"final_layer.weight": torch.ones(1)})


def test_snapshot_io_errors_and_latest(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="not found"):
        read_snapshot(tmp_path / "nope.pth.tar")
    (tmp_path / "garbage.pth.tar").write_bytes(b"not a checkpoint")
    with pytest.raises(SnapshotError, match="garbage.pth.tar"):
        read_snapshot(tmp_path / "garbage.pth.tar")
    torch.save({"weights": 1}, tmp_path / "plain.pth.tar")
    with pytest.raises(SnapshotError, match="'network'"):
        read_snapshot(tmp_path / "plain.pth.tar")
    assert latest_snapshot(tmp_path) is None
    for epoch in (2, 10, 6):
        write_snapshot({"epoch": epoch, "network": {}}, snapshot_path(tmp_path, epoch))
    torch.save({"epoch": 99, "network": {}}, tmp_path / "snapshot_99_all.pth.tar")
    assert latest_snapshot(tmp_path) == snapshot_path(tmp_path, 10), "numeric order; renamed copies ignored"


def test_write_snapshot_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_snapshot({"epoch": 1, "network": {"w": torch.ones(2)}}, tmp_path / "snapshot_1.pth.tar")
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_snapshot({"epoch": 2, "network": {"w": torch.zeros(2)}}, path)
    assert path.read_bytes() == before, "a failed write leaves the old snapshot intact"
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "and no temporary file behind"


def test_pruning_after_a_new_epoch_never_deletes_it_for_an_earlier_runs_higher_epochs(tmp_path: Path) -> None:
    for epoch in (8, 9):  # an earlier run's last snapshots, left in the folder
        write_snapshot({"epoch": epoch, "network": {}}, snapshot_path(tmp_path, epoch))
    for epoch in (0, 1, 2):  # a new run from epoch 0 into the same folder
        write_snapshot({"epoch": epoch, "network": {}}, snapshot_path(tmp_path, epoch))
        prune_snapshots(tmp_path, keep=2, current_epoch=epoch)
        assert snapshot_path(tmp_path, epoch).is_file(), epoch
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"snapshot_{e}.pth.tar" for e in (1, 2, 8, 9)]


def test_prune_snapshots_keeps_the_newest_epochs_and_only_snapshot_files(tmp_path: Path) -> None:
    for epoch in (0, 1, 2, 10):
        write_snapshot({"epoch": epoch, "network": {}}, snapshot_path(tmp_path, epoch))
    other = tmp_path / "snapshot_6_all.pth.tar"  # a tool input with a similar name is never touched
    other.write_bytes(b"x")
    assert prune_snapshots(tmp_path, keep=0) == []
    assert prune_snapshots(tmp_path, keep=2) == [snapshot_path(tmp_path, 0), snapshot_path(tmp_path, 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot_10.pth.tar", "snapshot_2.pth.tar",
                                                          "snapshot_6_all.pth.tar"]  # fmt: skip
    assert latest_snapshot(tmp_path) == snapshot_path(tmp_path, 10)


class _FullDiskFileIO(io.FileIO):
    """A file on a disk with no space left: every write fails with ENOSPC, as os.write does there."""

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _OsOnAFullDisk:
    """`os` as common.utils.atomic_io sees it, with every file it opens on a full disk."""

    def fdopen(self, fd: int, mode: str) -> io.FileIO:
        return _FullDiskFileIO(fd, mode.replace("b", ""))

    def __getattr__(self, name: str):
        return getattr(os, name)


def test_write_snapshot_on_a_full_disk_reports_the_os_error_not_torch_s(tmp_path: Path, monkeypatch) -> None:
    """torch.save meets ENOSPC and raises its own RuntimeError ('unexpected pos ...'); the message is the OS's."""
    path = write_snapshot({"epoch": 1, "network": {"w": torch.ones(2)}}, tmp_path / "snapshot_1.pth.tar")
    before = path.read_bytes()
    monkeypatch.setattr(atomic_io, "os", _OsOnAFullDisk())
    with pytest.raises(OutputWriteError) as error:
        write_snapshot({"epoch": 2, "network": {"w": torch.zeros(1000)}}, path)
    assert str(error.value) == f"cannot write {path}: No space left on device"
    assert error.value.errno == errno.ENOSPC and isinstance(error.value, OSError)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_remove_partial_snapshots_deletes_only_interrupted_snapshot_writes(tmp_path: Path) -> None:
    for epoch in (0, 1):
        write_snapshot({"epoch": epoch, "network": {}}, snapshot_path(tmp_path, epoch))
    partial = [tmp_path / ".snapshot_2.pth.tar.a1b2_c3d.tmp", tmp_path / ".snapshot_10.pth.tar.zzzzzzzz.tmp"]
    kept = [tmp_path / ".train_config.yaml.a1b2c3d4.tmp", tmp_path / ".snapshot_6_all.pth.tar.a1b2c3d4.tmp",
            tmp_path / "snapshot_3.pth.tar.tmp", tmp_path / "notes.tmp"]  # fmt: skip
    for path in partial + kept:
        path.write_bytes(b"partial")
    assert remove_partial_snapshots(tmp_path) == sorted(partial)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.name for p in kept] + ["snapshot_0.pth.tar", "snapshot_1.pth.tar"]
    )
    assert remove_partial_snapshots(tmp_path / "absent") == []


def test_resume_point_names_the_unreadable_newest_snapshot_and_the_newest_good_one(tmp_path: Path) -> None:
    for epoch in (0, 1, 2, 3):
        write_snapshot(
            {"epoch": epoch, "network": {"w": torch.full((64,), float(epoch))}}, snapshot_path(tmp_path, epoch)
        )
    newest, older = snapshot_path(tmp_path, 3), snapshot_path(tmp_path, 2)
    newest.write_bytes(newest.read_bytes()[:300])  # truncated
    older.write_bytes(b"")  # and an empty one below it
    with pytest.raises(SnapshotError) as error:
        read_resume_snapshot(tmp_path)
    message = str(error.value)
    assert message.startswith(f"--continue: the newest snapshot is unreadable (cannot read snapshot {newest}: ")
    assert message.endswith(f"the newest good snapshot is {snapshot_path(tmp_path, 1)}: resume from it with "
                            "--continue-from-last-good") and "\n" not in message  # fmt: skip
    point = read_resume_snapshot(tmp_path, from_last_good=True)
    assert (point.path, point.skipped, point.snapshot["epoch"]) == (snapshot_path(tmp_path, 1), (newest, older), 1)
    assert str(newest) in point.problem
    assert set_aside(point.skipped) == [
        tmp_path / "snapshot_3.pth.tar.unreadable",
        tmp_path / "snapshot_2.pth.tar.unreadable",
    ]
    assert latest_snapshot(tmp_path) == snapshot_path(tmp_path, 1), "no longer taken for the newest"
    for epoch in (0, 1):
        snapshot_path(tmp_path, epoch).write_bytes(b"garbage")
    with pytest.raises(SnapshotError, match=r"no older snapshot in .* can be read either$"):
        read_resume_snapshot(tmp_path, from_last_good=True)
    with pytest.raises(UsageError, match="--continue: no snapshot_<epoch>.pth.tar in"):
        read_resume_snapshot(tmp_path / "empty")
