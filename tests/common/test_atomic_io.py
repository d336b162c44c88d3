"""Atomic writes: the destination holds the old content or the new one, never a part, and no temporary remains."""

import json
import stat
from pathlib import Path

import pytest

from common.utils.atomic_io import write_atomic, write_bytes_atomic, write_json_atomic


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
