"""Shared fixtures: one full reference day at 1 s ticks, computed once for the acceptance checks."""

from __future__ import annotations

import time

import pytest

from sim.environment import World


@pytest.fixture(scope="session")
def reference_day() -> tuple[World, float]:
    """The default world stepped through 24 h at 1 s ticks, and the wall-clock seconds it took."""
    world = World(seed=7)
    began = time.perf_counter()
    world.step(world.start + 86400.0)
    return world, time.perf_counter() - began
