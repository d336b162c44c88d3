"""read_snapshot runs no code from a file (torch.load weights_only=True): hostile snapshots are refused naming
the file and the global, while Hand4Whole's public layout and our own training snapshots (RNG states
included) still load, and a restored RNG state continues the exact streams."""

from __future__ import annotations

import io
import os
import pickle
import random
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from common.engine.schedule import make_scheduler
from common.engine.seeding import capture_rng_state, restore_rng_state, seed_everything
from common.engine.snapshot import SnapshotError, load_tensor_file, read_snapshot, snapshot_path, write_snapshot
from tests.common.hostile_payloads import ShellOnLoad, TouchOnLoad

# protocol 2 (torch.save's) stores Path.touch as getattr(Path, 'touch'): the first global named is getattr
HOSTILE = [(TouchOnLoad, "builtins.getattr"), (ShellOnLoad, f"{os.system.__module__}.system")]


def toy_network(prefix: str = "") -> OrderedDict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return OrderedDict((f"{prefix}{k}", torch.randn(shape, generator=generator))
                       for k, shape in (("backbone.conv1.weight", (4, 3, 1, 1)), ("head.bias", (4,))))  # fmt: skip


@pytest.mark.parametrize(("payload", "refused"), HOSTILE)
def test_hostile_snapshot_is_refused_naming_file_and_global(
    tmp_path: Path, payload: Callable[[Path], object], refused: str
) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "snapshot_3.pth.tar"
    torch.save({"extra": payload(marker), "epoch": 3, "network": toy_network()}, path)  # the payload first
    with pytest.raises(SnapshotError) as error:
        read_snapshot(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and refused in message
    assert not marker.exists(), "read_snapshot ran code from the file"
    # the file is hostile indeed: a plain unpickling of its pickle (tensor storages stubbed) creates the marker
    _plain_unpickle_of_snapshot(path)
    assert marker.exists()


def _plain_unpickle_of_snapshot(path: Path) -> None:
    """Unpickles the data.pkl of a torch zip snapshot with a plain, unrestricted unpickler (what an unsafe loader
    does), storages stubbed: only for proving in a test that a file is hostile."""

    class _StubStorages(pickle.Unpickler):
        def persistent_load(self, pid: object) -> None:
            return None

    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
        try:
            _StubStorages(io.BytesIO(archive.read(name))).load()
        except Exception:  # the stubbed storages break tensor rebuilding after the hostile call has run
            pass


def test_public_hand4whole_snapshot_layout_loads(tmp_path: Path) -> None:
    """{'epoch', 'network' ('module.' keys of DataParallel), 'optimizer' (Adam)}, in torch's zip and legacy formats."""
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()  # a state with exp_avg, exp_avg_sq and step
    network = toy_network("module.")
    for zipfile_format in (True, False):
        path = tmp_path / f"snapshot_6_{zipfile_format}.pth.tar"
        snapshot = {"epoch": 6, "network": network, "optimizer": optimizer.state_dict()}
        torch.save(snapshot, path, _use_new_zipfile_serialization=zipfile_format)
        loaded = read_snapshot(path)
        assert loaded["epoch"] == 6 and list(loaded["network"]) == [k.removeprefix("module.") for k in network]
        for key, value in network.items():
            assert torch.equal(loaded["network"][key.removeprefix("module.")], value)
        fresh = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=1e-4)
        fresh.load_state_dict(loaded["optimizer"])
        assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def draw_from_every_generator() -> tuple:
    return (
        [random.random() for _ in range(3)], random.gauss(0.0, 1.0),
        np.random.standard_normal(3), np.random.randint(0, 1000, 3),
        torch.rand(3), torch.randn(3),
    )  # fmt: skip


def test_training_snapshot_with_rng_states_loads_and_resumes_the_exact_streams(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = make_scheduler(optimizer, milestones=[4, 6], factor=10.0)
    seed_everything(7)
    random.gauss(0.0, 1.0)  # leaves gauss_next set
    np.random.standard_normal(1)  # leaves numpy's cached gaussian set (has_gauss = 1)
    state = capture_rng_state()
    expected = draw_from_every_generator()
    path = snapshot_path(tmp_path, 1)
    write_snapshot({"epoch": 1, "network": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": None, "rng_states": [state],
                    "config": {"train": {"lr": 1e-3, "lr_dec_epoch": [4, 6]}, "name": "toy"}}, path)  # fmt: skip
    loaded = read_snapshot(path)
    assert loaded["scheduler"] == scheduler.state_dict() and loaded["config"]["train"]["lr_dec_epoch"] == [4, 6]
    seed_everything(99)  # somewhere else entirely
    restore_rng_state(loaded["rng_states"][0])
    actual = draw_from_every_generator()
    for want, got in zip(expected, actual, strict=True):
        if isinstance(want, torch.Tensor):
            assert torch.equal(want, got)
        else:
            np.testing.assert_array_equal(want, got)  # bit-identical, not approximately equal


def test_rng_state_is_plain_data(tmp_path: Path) -> None:
    """What weights_only accepts: tensors, lists, ints, floats, strings and None; no numpy array or tuple."""

    def check(value: object, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                assert isinstance(key, str), where
                check(item, f"{where}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                check(item, f"{where}[{i}]")
        else:
            assert value is None or isinstance(value, torch.Tensor | int | float | str), f"{where}: {type(value)}"

    check(capture_rng_state(), "state")


def test_corrupt_and_truncated_snapshots_are_one_line_errors(tmp_path: Path) -> None:
    good = write_snapshot({"epoch": 0, "network": toy_network()}, tmp_path / "good.pth.tar")
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "text.pth.tar"
    text.write_text("not a checkpoint\n" * 3)
    for path in (truncated, text):
        with pytest.raises(SnapshotError) as error:
            read_snapshot(path)
        assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_plain_pickle_of_a_hostile_object_is_refused_too(tmp_path: Path) -> None:
    """torch.load reads legacy plain pickles as well; weights_only guards that path the same way."""
    marker = tmp_path / "marker"
    path = tmp_path / "snapshot_0.pth.tar"
    with open(path, "wb") as f:
        pickle.dump({"epoch": 0, "network": {}, "x": ShellOnLoad(marker)}, f, protocol=2)
    with pytest.raises(SnapshotError, match=rf"{os.system.__module__}\.system"):
        read_snapshot(path)
    assert not marker.exists()


def test_load_tensor_file_reads_plain_state_dicts_and_refuses_code(tmp_path: Path) -> None:
    """The shared weights_only loader, for files that are not snapshots (e.g. SimpleBaseline or ImageNet weights)."""
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": toy_network("module.")}, path)
    assert list(load_tensor_file(path, "SimpleBaseline weights")["state_dict"]) == list(toy_network("module."))
    marker = tmp_path / "marker"
    torch.save({"state_dict": ShellOnLoad(marker)}, path)
    with pytest.raises(SnapshotError, match=rf"refusing to load {path}: it needs the global {os.system.__module__}"):
        load_tensor_file(path, "SimpleBaseline weights")
    with pytest.raises(SnapshotError, match="SimpleBaseline weights not found"):
        load_tensor_file(tmp_path / "missing.pth", "SimpleBaseline weights")
    assert not marker.exists()
