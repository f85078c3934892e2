"""Fixtures for file-transfer tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def payload_file(tmp_path: Path) -> Callable[[int, str], Path]:
    def make(size: int, name: str = "image.bin") -> Path:
        path = tmp_path / "outbox" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        return path

    return make
