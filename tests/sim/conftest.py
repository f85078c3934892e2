"""Fixtures for the hardware-layer tests: the flight I2CBus running on a SimI2CBus."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from hal.i2c import I2CBus
from sim.i2c_bus import SimI2CBus
from sim.parts.environment import ConstantEnvironment


class _SlowCallbackGuard(logging.Handler):
    """asyncio debug mode logs 'Executing <...> took X seconds' for callbacks over the bound."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "took" in record.getMessage() and "Executing" in record.getMessage():
            self.messages.append(record.getMessage())


def run_strict(coro: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run in debug mode; fail if any callback held the loop more than 50 ms."""
    guard = _SlowCallbackGuard()
    logger = logging.getLogger("asyncio")
    logger.addHandler(guard)

    async def main() -> Any:
        asyncio.get_running_loop().slow_callback_duration = 0.05
        return await coro

    try:
        result = asyncio.run(main(), debug=True)
    finally:
        logger.removeHandler(guard)
    assert not guard.messages, f"event loop blocked: {guard.messages}"
    return result


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    return run_strict


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
