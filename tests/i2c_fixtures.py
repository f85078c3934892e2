"""Fixtures shared by the hardware-layer and simulated-part tests: the flight I2CBus running on a
SimI2CBus. Tests that drive them are async def (pytest-asyncio); the suite-wide conftest already
fails any test whose loop is blocked > 50 ms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hal.i2c import I2CBus
from sim.i2c_bus import SimI2CBus
from sim.parts.environment import ConstantEnvironment


@pytest.fixture
def env() -> ConstantEnvironment:
    return ConstantEnvironment()


@pytest.fixture
def sim_bus() -> SimI2CBus:
    return SimI2CBus(1, seed=1234)


@pytest.fixture
def make_bus(sim_bus: SimI2CBus) -> Callable[..., I2CBus]:
    """The flying I2CBus with the simulated adapter underneath (recovery = SCL pulses)."""

    def make(**kwargs: Any) -> I2CBus:
        kwargs.setdefault("recovery_hook", sim_bus.pulse_scl)
        kwargs.setdefault("backoff", 0.0005)
        return I2CBus("sim-1", lambda: sim_bus, **kwargs)

    return make
