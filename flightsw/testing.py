"""Helpers for testing components: a satellite on a scratch directory, driven on any loop.

Typical use in a component test::

    async def scenario(sat):
        sat.commands.submit(opcode, [args])
        await settle()
    run_with_satellite(tmp_path, scenario, components=[MyComponent("mine", 0x100)])
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from flightsw.app import Satellite
from flightsw.config import MissionConfig, loads
from flightsw.core.commands import CommandResponse
from flightsw.core.component import Component

T = TypeVar("T")

MINIMAL_TOML = """
[storage]
data_dir = "{data_dir}"
fsync = false
[watchdog]
backend = "sim"
"""


def mission_config(data_dir: Path, extra_toml: str = "") -> MissionConfig:
    """A minimal valid config on ``data_dir`` (fsync off: tests need not wear the disk)."""
    return loads(MINIMAL_TOML.format(data_dir=data_dir) + extra_toml)


def make_satellite(data_dir: Path, components: Sequence[Component] = (), extra_toml: str = "",
                   **kwargs: Any) -> Satellite:
    sat = Satellite(mission_config(data_dir, extra_toml), subsystems=[], **kwargs)
    for comp in components:
        sat.add(comp)
    return sat


class ResponseLog:
    """Collects command verdicts/completions so a test can wait for them."""

    def __init__(self, sat: Satellite) -> None:
        self.items: list[CommandResponse] = []
        self._done: dict[int, CommandResponse] = {}
        self._arrived = asyncio.Event()
        sat.commands.add_listener(self._on_response)

    def _on_response(self, response: CommandResponse) -> None:
        self.items.append(response)
        if response.completion is not None:
            self._done[response.seq] = response
        self._arrived.set()

    def completions(self) -> list[CommandResponse]:
        return [r for r in self.items if r.completion is not None]

    async def wait_completion(self, seq: int, limit: float = 5.0) -> CommandResponse:
        async with asyncio.timeout(limit):
            while seq not in self._done:
                self._arrived.clear()
                await self._arrived.wait()
            return self._done[seq]


async def with_running(sat: Satellite, body: Callable[[Satellite], Awaitable[T]]) -> T:
    """Run the satellite, run ``body`` against it, then stop it cleanly."""
    runner = asyncio.create_task(sat.run())
    try:
        await sat.started.wait()
        await asyncio.sleep(0)  # let the supervisor start its services
        return await body(sat)
    finally:
        sat.stop_event.set()
        await runner
