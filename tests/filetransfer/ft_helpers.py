"""Helpers for file-transfer tests: a flight/ground pair of entities on a link.

The tests are async def (pytest-asyncio); the suite's conftest fails any whose loop is blocked.
Everything here waits on the loop's clock: on the virtual-time loop (all of this area's tests but
the LibreCube interop ones, whose peer runs wall-clock threads) a wait costs no real time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flightsw.filetransfer import CfdpEntity, EntityConfig, ReceivedFile, TransferOutcome
from flightsw.filetransfer.memory_link import MemoryLink

FLIGHT_ID = 2
GROUND_ID = 1


def fast_config(local: int, remote: int, work_dir: Path, **overrides: Any) -> EntityConfig:
    """Short timers so loss recovery takes a fraction of a second in tests."""
    settings: dict[str, Any] = dict(
        ack_interval_s=0.3, nak_interval_s=0.3, tick_s=0.05, inactivity_s=5.0,
        retry_backoff_s=0.2, max_pdu_len=1024,
    )
    settings.update(overrides)
    return EntityConfig(local, remote, work_dir, **settings)


@dataclass
class Station:
    """One running entity with what it reported."""

    entity: CfdpEntity
    task: asyncio.Task[None]
    received: list[ReceivedFile] = field(default_factory=list)
    outcomes: list[TransferOutcome] = field(default_factory=list)

    async def stop(self) -> None:
        self.entity.stop()
        await self.task


def start_station(config: EntityConfig, sink: Any, **kwargs: Any) -> Station:
    station_holder: list[Station] = []
    entity = CfdpEntity(
        config, sink,
        on_file_received=lambda f: station_holder[0].received.append(f),
        on_transfer_done=lambda o: station_holder[0].outcomes.append(o),
        **kwargs,
    )
    station = Station(entity, asyncio.get_running_loop().create_task(entity.run()))
    station_holder.append(station)
    return station


async def wait_for(predicate: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Poll ``predicate`` on the loop's clock (virtual under ``virtual_time``), up to ``limit_s``."""
    async def poll() -> None:
        while not predicate():  # noqa: ASYNC110 - polling callbacks' results is the point
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), limit_s)


@dataclass
class Pair:
    link: MemoryLink
    flight: Station
    ground: Station
    root: Path

    def attach(self) -> None:
        self.link.attach(self.flight.entity.receive_pdu, self.ground.entity.receive_pdu)


async def start_pair(root: Path, loss: float = 0.0, seed: int = 7, **overrides: Any) -> Pair:
    link = MemoryLink(loss=loss, seed=seed)
    flight = start_station(fast_config(FLIGHT_ID, GROUND_ID, root / "flight", **overrides), link.a)
    ground = start_station(fast_config(GROUND_ID, FLIGHT_ID, root / "ground", **overrides), link.b)
    pair = Pair(link, flight, ground, root)
    pair.attach()
    return pair
