"""Replace a file atomically: a power cut at any instant leaves the old or the new complete file.

Why one helper: every file the flight software (and its ground and simulator) replaces on disk
goes through the same steps, in this order: a temporary file in the same directory (a rename is
atomic only within one file system), write, flush, fsync, rename over the target, fsync of the
directory (the rename itself is only durable once the directory entry is). The temporary file has
a fixed name (``<name>.tmp``), so a crash mid-write leaves at most one stray file per target, which
the next write replaces: disk use stays bounded.

`flightsw/update.py` keeps its own copy of these steps on purpose: it is installed and run alone,
by the system Python, where no flightsw package is importable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

DEFAULT_MODE = 0o666  # as open() creates files: the process umask decides


def fsync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (a rename into it) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | Callable[[BinaryIO], object], *, fsync: bool = True,
                 mode: int = DEFAULT_MODE) -> None:
    """Replace ``path`` with ``data`` (bytes, or a function writing into the open binary file).

    ``fsync=False`` keeps the atomicity (old or new file) but not the durability; it is for
    simulations and tests, which need not wear the disk. ``mode`` is given to the new file at
    creation (0o600 for secrets), so it is never readable by others, even for an instant.
    Blocking: call from a worker thread, or at start-up.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a stray one from a crash: the new file gets ``mode``, not its mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes | bytearray | memoryview):
                handle.write(data)
            else:
                data(handle)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)
