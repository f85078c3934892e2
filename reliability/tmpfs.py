"""A small tmpfs for storage-fault campaigns and tests: a real filesystem that really fills up
(ENOSPC) and really goes read-only (EROFS). Needs root (mount); ``why_not`` says why not."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


def why_not() -> str | None:
    """None when tmpfs can be mounted here, else the one-line reason."""
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root"
    if not Path("/bin/mount").exists() and not Path("/usr/bin/mount").exists():
        return "no mount command"
    return None


def _run(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode:
        raise OSError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")


@contextlib.contextmanager
def mounted(where: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of SIZE_KB at WHERE for the block; unmounted (lazily if still busy) after it."""
    where.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(where))
    try:
        yield where
    finally:
        try:
            _run("umount", str(where))
        except OSError:
            _run("umount", "-l", str(where))


def resize(where: Path, size_kb: int) -> None:
    _run("mount", "-o", f"remount,size={size_kb}k", str(where))


def read_only(where: Path, on: bool) -> None:
    _run("mount", "-o", "remount,ro" if on else "remount,rw", str(where))
