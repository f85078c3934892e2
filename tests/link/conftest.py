"""Fixtures of the link tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flightsw.app import Satellite

from .harness import Probe, build_satellite


@pytest.fixture
def link_sat(tmp_path: Path) -> Iterator[tuple[Satellite, Probe]]:
    """The harness satellite (link and probe) with its probe, built before the test's loop runs
    (start-up file I/O); its worker threads end with the test, pass or fail."""
    sat, probe = build_satellite(tmp_path)
    yield sat, probe
    sat.workers.shutdown()
