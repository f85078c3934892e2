"""The one atomic-write helper: old or new file, never a torn one, nothing left behind."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import BinaryIO

import pytest

from flightsw.core.atomic import atomic_write


def test_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "value.bin"
    atomic_write(target, b"one")
    atomic_write(target, b"two", fsync=False)
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["value.bin"]


def test_a_failing_writer_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.png"
    atomic_write(target, b"old")

    def half_then_fail(handle: BinaryIO) -> None:
        handle.write(b"half")
        raise RuntimeError("encoder failed")

    with pytest.raises(RuntimeError, match="encoder failed"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.png"]


def test_a_secret_is_never_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "uplink.keys"
    stray = tmp_path / "uplink.keys.tmp"
    stray.write_bytes(b"left by a crash")
    stray.chmod(0o644)
    atomic_write(target, b"0 00ff\n", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not stray.exists()
