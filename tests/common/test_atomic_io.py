"""Atomic writes: the destination holds the old content or the new one, never a part, and no temporary remains."""

import errno
import io
import json
import os
import pickle
import stat
from pathlib import Path

import pytest

from common.utils import atomic_io
from common.utils.atomic_io import (
    OutputWriteError,
    is_temporary_of,
    write_atomic,
    write_bytes_atomic,
    write_json_atomic,
)


def test_writes_replace_the_file_and_leave_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "result.json"
    assert write_json_atomic(path, {"mpvpe_all": 1.5}, indent=2) == path
    assert json.loads(path.read_text()) == {"mpvpe_all": 1.5}
    write_bytes_atomic(path, b"replaced", durable=True)
    assert path.read_bytes() == b"replaced"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # an ordinary file, not mkstemp's 0600
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]


def test_a_failing_writer_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "snapshot_3.pth.tar"
    path.write_bytes(b"good snapshot")

    def crash_half_way(file) -> None:
        file.write(b"half a snap")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, crash_half_way)
    assert path.read_bytes() == b"good snapshot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot_3.pth.tar"]


def test_an_os_error_hidden_behind_the_writer_own_error_is_reported_with_the_path(tmp_path: Path) -> None:
    """torch.save into a full disk raises RuntimeError("... unexpected pos ...") with ENOSPC only in its context:
    the write is still reported as the OS error, naming the destination, and nothing of it remains."""
    path = tmp_path / "snapshot_3.pth.tar"
    path.write_bytes(b"good snapshot")

    class FullDiskFile(io.FileIO):
        def write(self, data) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def torch_like_save(file) -> None:
        try:
            file.write(b"zip header")
        except OSError:
            pass  # a C++ writer notices the short write later, and says so in its own words
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 768 vs 662")

    class OsOnAFullDisk:
        def fdopen(self, fd: int, mode: str) -> io.FileIO:
            return FullDiskFile(fd, mode.replace("b", ""))

        def __getattr__(self, name: str):
            return getattr(os, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(atomic_io, "os", OsOnAFullDisk())
        with pytest.raises(OutputWriteError) as error:
            write_atomic(path, torch_like_save)
    assert str(error.value) == f"cannot write {path}: No space left on device" and error.value.errno == errno.ENOSPC
    assert "unexpected pos" in str(error.value.__cause__)  # torch's own words are kept as the cause, not shown
    assert path.read_bytes() == b"good snapshot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot_3.pth.tar"]


def test_other_errors_of_the_writer_pass_unchanged(tmp_path: Path) -> None:
    def bad_value(file) -> None:
        raise ValueError("not json-serialisable")

    with pytest.raises(ValueError, match="not json-serialisable"):
        write_atomic(tmp_path / "x.json", bad_value)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_created_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputWriteError, match=f"^cannot write {blocker}/sub/metrics.json: ") as error:
        write_json_atomic(blocker / "sub" / "metrics.json", {})
    assert error.value.errno in (errno.ENOTDIR, errno.EEXIST)
    again = pickle.loads(pickle.dumps(error.value))  # it crosses process boundaries (spawned training processes)
    assert type(again) is OutputWriteError and str(again) == str(error.value)


def test_temporary_names_are_recognised(tmp_path: Path) -> None:
    """is_temporary_of knows the names write_atomic really gives its temporary files (seen from inside a write)."""
    seen = []
    write_atomic(
        tmp_path / "snapshot_12.pth.tar", lambda file: seen.append(os.readlink(f"/proc/self/fd/{file.fileno()}"))
    )
    name = Path(seen[0]).name
    assert is_temporary_of(name, r"snapshot_\d+\.pth\.tar"), name
    assert not is_temporary_of(name, r"metrics\.json")
    assert not is_temporary_of("snapshot_12.pth.tar", r"snapshot_\d+\.pth\.tar")
    assert not is_temporary_of(".snapshot_6_all.pth.tar.abc.tmp", r"snapshot_\d+\.pth\.tar")
