"""Helpers for testing components: a satellite on a scratch directory, driven on any loop.

Typical use in a pytest-asyncio test (the suite's ``new_satellite`` and ``sat_runner`` fixtures
wrap ``make_satellite`` and ``SatelliteRunner`` and always tear down)::

    async def test_capture(new_satellite, sat_runner):
        sat = await sat_runner.start(new_satellite([MyComponent("mine", 0x100)]))
        log = ResponseLog(sat)
        sat.commands.submit(sat.dictionary.command("mine.CAPTURE").id, [], seq=1)
        assert (await log.wait_completion(1)).completion is Completion.SUCCESS
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
from flightsw.ground.decoder import GroundDecoder
from flightsw.ground.dictionary import GroundDictionary

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


def ground_decoder(sat: Satellite) -> GroundDecoder:
    """The ground's decoder for a finalized satellite, built from its exported dictionary as the
    ground station loads it (frames from any source)."""
    assert sat.dictionary is not None, "finalize the satellite first"
    return GroundDecoder(GroundDictionary.from_json(sat.dictionary.to_json()))


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


class SatelliteRunner:
    """Satellites running as tasks on the current loop, stopped cleanly on request or at ``close``."""

    def __init__(self) -> None:
        self._tasks: dict[int, tuple[Satellite, asyncio.Task[str]]] = {}

    async def start(self, sat: Satellite) -> Satellite:
        """Run ``sat`` until stopped; returns once it has started (raises if it stopped first)."""
        task = asyncio.create_task(sat.run(), name="satellite")
        self._tasks[id(sat)] = (sat, task)
        started = asyncio.create_task(sat.started.wait())
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            started.cancel()
            raise RuntimeError(f"the satellite stopped before it started: {task.result()}")
        await asyncio.sleep(0)  # let the supervisor start its services
        return sat

    async def stop(self, sat: Satellite) -> str:
        """Stop ``sat`` cleanly; returns its stop reason (re-raises a framework error)."""
        _, task = self._tasks.pop(id(sat))
        sat.stop_event.set()
        try:
            return await task
        finally:
            sat.workers.shutdown()

    async def close(self) -> None:
        """Stop every satellite still running (all are stopped even if one raises)."""
        errors: list[BaseException] = []
        for sat, _ in list(self._tasks.values()):
            sat.stop_event.set()
        for sat, _ in list(self._tasks.values()):
            try:
                await self.stop(sat)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


async def wait_until(predicate: Callable[[], object], limit: float = 10.0, poll: float = 0.01) -> None:
    """Wait for ``predicate()`` to hold, checking every ``poll`` s of loop time (TimeoutError after
    ``limit``): for outcomes that have no event of their own to await."""
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110 - polling a condition is the point
            await asyncio.sleep(poll)


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
