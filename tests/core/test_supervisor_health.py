"""Supervised services restart with back-off, escalate when they keep failing; the watchdog is
petted only while every critical task shows progress."""

import asyncio

import pytest

from flightsw.core.health import HealthMonitor
from flightsw.core.supervisor import ServiceState, Supervisor
from sim.watchdog import SimWatchdog

pytestmark = pytest.mark.virtual_time  # minutes of back-off and heartbeats, on the virtual clock


async def test_crashing_service_restarts_with_backoff_then_fails_others_keep_running() -> None:
    crashes: list[float] = []
    failed: list[str] = []
    ticks = {"healthy": 0}
    attempts: list[float] = []
    flaky_attempts: list[float] = []

    async def always_crashes() -> None:
        attempts.append(asyncio.get_running_loop().time())
        raise RuntimeError("sensor bus gone")

    async def flaky() -> None:
        flaky_attempts.append(asyncio.get_running_loop().time())
        if len(flaky_attempts) < 3:
            raise OSError("transient")
        await asyncio.sleep(1e9)

    async def healthy() -> None:
        while True:
            ticks["healthy"] += 1
            await asyncio.sleep(1.0)

    sup = Supervisor(on_crash=lambda s, e: crashes.append(asyncio.get_running_loop().time()),
                     on_failed=lambda s, e: failed.append(s.name))
    bad = sup.add_service("bad", always_crashes, max_failures=5, window=600, backoff_initial=1.0, backoff_max=60)
    flk = sup.add_service("flaky", flaky, backoff_initial=2.0)
    sup.add_service("healthy", healthy)

    task = asyncio.create_task(sup.run())
    await asyncio.sleep(100)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps == [1.0, 2.0, 4.0, 8.0]  # exponential back-off
    assert bad.state is ServiceState.FAILED and failed == ["bad"] and bad.last_error.startswith("RuntimeError")
    assert flk.state is ServiceState.RUNNING and flk.restarts == 2
    assert [b - a for a, b in zip(flaky_attempts, flaky_attempts[1:], strict=False)] == [2.0, 4.0]
    assert ticks["healthy"] in (100, 101)  # never disturbed by its neighbours' crashes
    assert len(crashes) == 4 + 2


async def test_backoff_is_capped_and_window_forgets_old_failures() -> None:
    attempts: list[float] = []

    async def crashes() -> None:
        attempts.append(asyncio.get_running_loop().time())
        raise ValueError("x")

    sup = Supervisor()
    svc = sup.add_service("svc", crashes, max_failures=3, window=10.0, backoff_initial=8.0, backoff_max=20.0)

    task = asyncio.create_task(sup.run())
    await asyncio.sleep(200)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[:3] == [8.0, 16.0, 20.0]  # capped at backoff_max; failures spread over >10 s windows
    assert svc.state is not ServiceState.FAILED


async def test_watchdog_is_petted_only_while_all_heartbeats_are_fresh() -> None:
    loop = asyncio.get_running_loop()
    dog = SimWatchdog(timeout=15.0)
    stale_reports: list[list[str]] = []
    health = HealthMonitor(dog, loop.time, period=1.0, on_stale=lambda s: stale_reports.append([h.name for h in s]))
    radio = health.register("radio", deadline=5.0)
    imaging = health.register("imaging", deadline=30.0)
    dog.ready()

    async def radio_loop(stop_after: float) -> None:
        while loop.time() < stop_after:
            radio.beat()
            await asyncio.sleep(1.0)

    async def imaging_loop() -> None:
        while True:
            imaging.beat()
            await asyncio.sleep(10.0)

    monitor = asyncio.create_task(health.run())
    workers = [asyncio.create_task(radio_loop(60.0)), asyncio.create_task(imaging_loop())]
    bitten_at = None
    for _ in range(120):
        await asyncio.sleep(1.0)
        if dog.expired() and bitten_at is None:
            bitten_at = loop.time()
    for t in [monitor, *workers]:
        t.cancel()
    await asyncio.gather(monitor, *workers, return_exceptions=True)
    assert bitten_at is not None and 75 <= bitten_at <= 82  # radio hung at 60 s, +5 s deadline, +15 s timeout
    stale = stale_reports
    assert all(t <= 66.0 for t in dog.pets)  # no pet once radio went stale
    assert health.withheld > 50
    assert stale == [["radio"]]  # reported once, not every period
