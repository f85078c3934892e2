"""The station's uplink counters: one store for every process, frames in counter order, floors
learnt from the satellite (real SQLite archives, real file locks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flightsw.ground.archive import Archive
from flightsw.ground.uplink import CounterKind, UplinkCounters


@pytest.fixture
async def two_archives(tmp_path: Path) -> AsyncIterator[tuple[Archive, Archive]]:
    """Two connections to one station archive, as two ground processes have."""
    path = tmp_path / "station.sqlite3"
    first = await asyncio.to_thread(Archive, path)
    second = await asyncio.to_thread(Archive, path)
    yield first, second
    await asyncio.to_thread(first.close)
    await asyncio.to_thread(second.close)


@pytest.mark.parametrize("kind", list(CounterKind))
async def test_two_stations_on_one_archive_hand_frames_over_in_counter_order(
        two_archives: tuple[Archive, Archive], kind: CounterKind) -> None:
    wire: list[int] = []  # what the TNC receives, in order

    async def station(archive: Archive, tnc_turns: int) -> None:
        counters = UplinkCounters(archive)
        for _ in range(15):
            async with counters.reserve(kind) as counter:
                await archive.call(lambda: None)  # the archive write of the frame, off the loop
                for _ in range(tnc_turns):  # the TNC write, slower on one side: others run meanwhile
                    await asyncio.sleep(0)
                wire.append(counter)

    await asyncio.gather(station(two_archives[0], 5), station(two_archives[1], 0))
    assert wire == list(range(1, 31))


async def test_floors_learnt_from_telemetry_and_refusals(two_archives: tuple[Archive, Archive]) -> None:
    counters = UplinkCounters(two_archives[0])
    counters.on_channels({"link.uplink_counter": 40, "files.uplink_counter": 7, "other": 900}, key_id=1)
    counters.on_event("files.pdu_rejected", {"reason": "replay", "detail": "x", "last": 9})
    counters.on_event("link.counter_refused", {"counter": 3, "key_id": 1, "detail": "replay", "last": 41})
    assert counters.refused(1, 3) and not counters.refused(0, 3) and not counters.refused(1, 4)
    async with counters.reserve(CounterKind.COMMAND, key_id=1) as command:
        pass
    async with counters.reserve(CounterKind.COMMAND, key_id=0) as other_key:
        pass
    async with counters.reserve(CounterKind.FILE) as file_pdu:
        pass
    assert (command, other_key, file_pdu) == (42, 1, 10)
    # a lower report never lowers a counter
    counters.on_channels({"link.uplink_counter": 2}, key_id=1)
    async with counters.reserve(CounterKind.COMMAND, key_id=1) as command:
        pass
    assert command == 43


async def test_a_refused_limit_reserves_nothing(two_archives: tuple[Archive, Archive]) -> None:
    counters = UplinkCounters(two_archives[0])
    async with counters.reserve(CounterKind.COMMAND, limit=1) as first:
        assert first == 1
    with pytest.raises(ValueError, match="above 1"):
        async with counters.reserve(CounterKind.COMMAND, limit=1):
            pass
    async with counters.reserve(CounterKind.COMMAND) as after:
        assert after == 2
