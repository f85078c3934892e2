"""Rate groups: absolute deadlines (no drift), execution times, overruns and slips."""

import asyncio

import pytest

from flightsw.core.scheduler import RateGroup


async def run_for(groups: list[RateGroup], seconds: float) -> None:
    tasks = [asyncio.create_task(g.run()) for g in groups]
    await asyncio.sleep(seconds)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def collect_starts(group: RateGroup) -> list[float]:
    starts: list[float] = []
    group.add("probe", lambda: starts.append(asyncio.get_running_loop().time()))
    return starts


async def test_no_drift_over_five_real_seconds() -> None:
    group = RateGroup("fast", 10.0)
    starts = collect_starts(group)
    group.add("work", lambda: sum(range(2000)))

    async def takes_a_fifth_of_the_period() -> None:
        await asyncio.sleep(0.02)

    # Members take real time (20 ms of each 100 ms cycle): deadlines measured from the end of a
    # cycle instead of the absolute grid would have slid a whole second by the end.
    group.add("slow_io", takes_a_fifth_of_the_period)
    loop = asyncio.get_running_loop()
    group.start_time = loop.time() + 0.05
    await run_for([group], 5.1)
    t0 = group.start_time

    n = len(starts)
    assert 50 <= n + group.stats.slips <= 52
    # The last cycle started within one period of its ideal absolute deadline: no accumulated drift.
    last_index = n - 1 + group.stats.slips
    assert abs(starts[-1] - (t0 + last_index * 0.1)) < 0.1


@pytest.mark.virtual_time
async def test_no_drift_over_six_simulated_hours() -> None:
    fast, slow = RateGroup("fast", 10.0), RateGroup("slow", 1.0)
    fast_starts, slow_starts = collect_starts(fast), collect_starts(slow)
    fast.add("work", lambda: None)

    fast.start_time = slow.start_time = asyncio.get_running_loop().time()
    await run_for([fast, slow], 6 * 3600 + 0.05)
    assert len(fast_starts) == 6 * 3600 * 10 + 1
    assert len(slow_starts) == 6 * 3600 + 1
    assert fast_starts[-1] == pytest.approx(6 * 3600, abs=1e-6)
    assert fast.stats.overruns == slow.stats.overruns == 0
    assert fast.members[1].max_time == 0.0  # virtual time stands still inside sync members


@pytest.mark.virtual_time
async def test_slow_member_is_counted_as_overrun_with_slips() -> None:
    group = RateGroup("slow", 1.0)
    starts = collect_starts(group)
    calls = {"n": 0}
    overruns: list[float] = []
    group.on_overrun = lambda g, cycle: overruns.append(cycle)

    async def sometimes_slow() -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            await asyncio.sleep(2.5)  # made slow on purpose: misses deadlines 3 and 4... (2 slips)

    group.add("payload", sometimes_slow)

    group.start_time = asyncio.get_running_loop().time()
    await run_for([group], 10.05)
    assert group.stats.overruns == 1 and overruns == [pytest.approx(2.5)]
    assert group.stats.slips == 2
    assert group.members[1].max_time == pytest.approx(2.5)
    # after the overrun it re-aligns with the original grid instead of bursting to catch up
    assert all(abs(t - round(t)) < 1e-9 for t in starts)
    assert starts == [0.0, 1.0, 2.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]


@pytest.mark.virtual_time
async def test_member_exception_is_counted_and_the_group_keeps_running() -> None:
    group = RateGroup("slow", 1.0)
    starts = collect_starts(group)
    errors: list[str] = []
    group.on_member_error = lambda g, m, exc: errors.append(f"{m.name}:{exc}")
    group.add("broken", lambda: 1 / 0)

    await run_for([group], 4.5)
    assert len(starts) == 5 and group.members[1].errors == 5 and errors[0].startswith("broken:")


@pytest.mark.virtual_time
async def test_each_cycle_reports_its_start_lateness() -> None:
    group = RateGroup("fast", 10.0)
    seen: list[tuple[str, float]] = []
    group.on_cycle_start = lambda g, lateness: seen.append((g.name, lateness))
    loop = asyncio.get_running_loop()
    group.start_time = loop.time() - 0.25  # started late: the first cycle is 0.25 s behind its deadline

    await run_for([group], 0.3)
    # the late cycle runs at once; the deadlines already past are slips; then on the grid again
    assert group.stats.slips == 2
    assert len(seen) == group.stats.cycles == 4  # at 0.0 (deadline -0.25), 0.05, 0.15, 0.25
    assert seen[0] == ("fast", pytest.approx(0.25))
    assert group.stats.start_lateness_max == pytest.approx(0.25)
    assert [lateness for _, lateness in seen[1:]] == [pytest.approx(0.0, abs=1e-9)] * 3


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateGroup("bad", 0)
