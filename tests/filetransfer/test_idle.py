"""An idle entity costs (almost) nothing: no worker-thread steps while no transaction is open.

Why it matters: the entity runs for the whole mission, and almost all of the time it has nothing
to send or receive. Stepping its handlers every ``tick_s`` anyway cost a thread hand-off four
times a second, the largest single cost of an accelerated simulated day.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from flightsw.filetransfer import EntityConfig

from .ft_helpers import FLIGHT_ID, GROUND_ID, start_pair, wait_for

HOUR = 3600.0


@pytest.mark.virtual_time(start=1000.0, debug=True)
async def test_idle_entities_hardly_step_and_wake_at_once_for_work(tmp_path: Path, payload_file) -> None:
    source = payload_file(20_000)

    pair = await start_pair(tmp_path)  # tick_s = 0.05: 72 000 ticks in an hour
    await asyncio.sleep(HOUR)  # virtual: jumps from timer to timer
    idle_tick = pair.flight.entity.config.idle_tick_s
    for station in (pair.flight, pair.ground):
        assert station.entity.stats.steps <= HOUR / idle_tick + 3
    # a queued file wakes the sender at once, and the receiver wakes on its first PDU
    began = asyncio.get_running_loop().time()
    await pair.flight.entity.put(source, "after-idle.bin")
    await wait_for(lambda: bool(pair.flight.outcomes and pair.ground.received), limit_s=60)
    assert asyncio.get_running_loop().time() - began < 10.0  # not one idle_tick_s late
    assert pair.flight.outcomes[0].success
    assert pair.ground.received[0].path.read_bytes() == source.read_bytes()
    # idle again: back to (almost) no steps
    steps = pair.flight.entity.stats.steps
    await asyncio.sleep(HOUR)
    assert pair.flight.entity.stats.steps - steps <= HOUR / idle_tick + 3
    await pair.flight.stop()
    await pair.ground.stop()


@pytest.mark.virtual_time(start=1000.0, debug=True)
async def test_a_backed_off_transfer_retries_on_time_while_otherwise_idle(tmp_path: Path,
                                                                   payload_file) -> None:
    """The retry of a failed transfer is a timer of its own: the idle sleep must end for it."""
    source = payload_file(5_000)

    # ground absent: the transfer runs into the inactivity limit, then waits its back-off
    pair = await start_pair(tmp_path, inactivity_s=20.0, retry_backoff_s=300.0,
                            ack_interval_s=5.0, ack_limit=100)
    pair.link.attach(pair.flight.entity.receive_pdu, None)
    await pair.flight.entity.put(source, "late.bin")
    await wait_for(lambda: bool(pair.flight.outcomes), limit_s=HOUR)
    assert not pair.flight.outcomes[0].success
    failed_at = asyncio.get_running_loop().time()
    pair.attach()  # the ground is back
    await wait_for(lambda: bool(pair.ground.received), limit_s=HOUR)
    waited = asyncio.get_running_loop().time() - failed_at
    assert 300.0 <= waited < 300.0 + 30.0
    await pair.flight.stop()
    await pair.ground.stop()


def test_idle_tick_must_not_be_shorter_than_the_tick(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="idle_tick_s"):
        EntityConfig(FLIGHT_ID, GROUND_ID, tmp_path, tick_s=1.0, idle_tick_s=0.5)


@pytest.mark.virtual_time(start=1000.0, debug=True)
async def test_a_file_queued_while_a_step_runs_is_not_left_waiting_an_idle_tick(tmp_path: Path,
                                                                          payload_file) -> None:
    """The wake-up of a put that lands during a step (after the step read the queue) counts."""
    import functools

    from flightsw.filetransfer.memory_link import MemoryLink

    from .ft_helpers import fast_config, start_station

    source = payload_file(2_000)

    held = asyncio.Event()
    release = asyncio.Event()
    holder: list[Any] = []

    async def run_io(fn: Any) -> Any:
        result = fn()
        step = isinstance(fn, functools.partial) and fn.func == holder[0].entity._step
        if step and not release.is_set():
            held.set()
            await release.wait()  # the step "is still running" while the test queues a file
        return result

    link = MemoryLink()
    sent: list[float] = []
    link.attach(None, lambda raw: sent.append(asyncio.get_running_loop().time()))
    holder.append(start_station(fast_config(FLIGHT_ID, GROUND_ID, tmp_path / "flight"),
                                link.a, run_io=run_io))
    await asyncio.sleep(HOUR)  # idle: the steps now sleep idle_tick_s
    await asyncio.wait_for(held.wait(), 2 * holder[0].entity.config.idle_tick_s)
    queued_at = asyncio.get_running_loop().time()
    await holder[0].entity.put(source, "during-step.bin")
    release.set()
    await wait_for(lambda: bool(sent), limit_s=HOUR)
    assert sent[0] - queued_at < 1.0  # not one idle_tick_s later
    await holder[0].stop()
