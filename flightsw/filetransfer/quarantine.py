"""Where received files go: a quarantine directory, under a clean name, never over another file.

Why: an uplinked file must never land where it will be used, nor replace anything; whatever
uses it (config reload, sequence runner, software update) takes it from quarantine after its own
checks. The SHA-256 and size written beside it let that user check it did not change since.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path, PurePosixPath

from flightsw.filetransfer.interface import ReceivedFile
from flightsw.filetransfer.journal import atomic_write_json


def safe_file_name(name: str) -> str:
    """Reduce an uplinked name to a plain file name: no directories, no traversal, no oddities."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    if not cleaned:
        raise ValueError(f"unusable file name {name!r}")
    return cleaned[:100]


def move_to_quarantine(staging: Path, quarantine_dir: Path, name: str, key: str,
                       source_id: int, seq: int) -> ReceivedFile:
    """Move a verified staging file into quarantine without ever replacing an existing file."""
    digest = hashlib.sha256()
    with open(staging, "rb") as data:
        for block in iter(lambda: data.read(1 << 16), b""):
            digest.update(block)
    target = quarantine_dir / name
    if target.exists() or target.with_name(target.name + ".meta.json").exists():
        target = target.with_name(f"{target.stem}.{key}{target.suffix}")
    os.link(staging, target)  # fails rather than overwrite
    staging.unlink()
    size = target.stat().st_size
    received = ReceivedFile(target, name, size, digest.hexdigest(), source_id, seq)
    atomic_write_json(
        target.with_name(target.name + ".meta.json"),
        {"name": name, "size": size, "sha256": received.sha256,
         "source_id": received.source_id, "seq": received.seq},
    )
    return received
