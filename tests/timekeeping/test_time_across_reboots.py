"""Time across reboots: the checkpoint rules (pure), the clock's quality and steps, MET and the
record order across two boots of a satellite, and a backward clock step."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flightsw.core.clock import SpacecraftClock, TimeCorrelation
from flightsw.core.enums import TimeQuality
from flightsw.core.records import RecordLog
from flightsw.core.timekeeping import STATE_KEY, TimeCheckpoint, checkpoint_of, resume

T0 = 1_780_000_000.0


# -- pure rules -------------------------------------------------------------------------------
def test_a_first_boot_starts_at_met_zero_with_unknown_utc() -> None:
    resumed = resume(None, boot=1)
    assert resumed.met_at_boot == 0.0 and resumed.correlation is None


def test_a_known_utc_is_carried_over_as_degraded_from_the_boots_second_zero() -> None:
    resumed = resume(TimeCheckpoint(met=5000.0, utc=T0, quality=TimeQuality.GPS), boot=7)
    assert resumed.met_at_boot == 5000.0
    assert resumed.correlation == TimeCorrelation(7, 0.0, T0, TimeQuality.DEGRADED)
    # degraded stays degraded over further resets (it is never promoted by a reboot)
    again = resume(TimeCheckpoint(6000.0, T0 + 1000.0, TimeQuality.DEGRADED), boot=8)
    assert again.correlation is not None and again.correlation.quality is TimeQuality.DEGRADED


def test_an_unknown_utc_carries_met_only() -> None:
    resumed = resume(checkpoint_of(42.0, None, TimeQuality.GROUND_SET), boot=2)
    assert resumed.met_at_boot == 42.0 and resumed.correlation is None


@pytest.mark.parametrize("raw", [None, 3, {}, {"met": "x"}, {"met": -1.0}, {"met": float("nan")},
                                 {"met": 1.0, "quality": "SUNDIAL"}])
def test_an_unreadable_checkpoint_is_a_first_boot(raw: object) -> None:
    assert TimeCheckpoint.from_dict(raw) is None


def test_checkpoint_round_trip() -> None:
    point = TimeCheckpoint(12.5, T0, TimeQuality.GROUND_SET)
    assert TimeCheckpoint.from_dict(point.to_dict()) == point


# -- the clock ------------------------------------------------------------------------------------
def test_quality_order_of_sources() -> None:
    now = [100.0]
    clock = SpacecraftClock(3, lambda: now[0], correlation=TimeCorrelation(3, 0.0, T0, TimeQuality.DEGRADED))
    assert clock.quality is TimeQuality.DEGRADED and clock.utc() == T0
    now[0] += 10.0
    assert clock.utc() == T0 + 10.0
    # a system clock beats a degraded carry-over; a ground-set time beats the system clock
    clock.utc_source = lambda: T0 + 500.0
    assert clock.quality is TimeQuality.SYSTEM and clock.utc() == T0 + 500.0
    clock.set_utc(T0 + 20.0)
    assert clock.quality is TimeQuality.GROUND_SET and clock.utc() == T0 + 20.0


def test_a_step_moves_utc_only_and_tells_listeners() -> None:
    now = [50.0]
    clock = SpacecraftClock(1, lambda: now[0], met_at_boot=1000.0)
    steps: list[tuple[float | None, float, TimeQuality]] = []
    clock.add_step_listener(lambda old, new, q: steps.append((old, new, q)))
    now[0] += 5.0
    met, seconds = clock.met(), clock.seconds_since_boot()
    clock.set_utc(T0, TimeQuality.GPS)
    clock.set_utc(T0 - 3600.0)  # the ground corrects a clock an hour fast: a backward step
    assert clock.met() == met == 1005.0 and clock.seconds_since_boot() == seconds
    assert steps == [(None, T0, TimeQuality.GPS), (T0, T0 - 3600.0, TimeQuality.GROUND_SET)]


def test_met_never_runs_below_a_recorded_met() -> None:
    clock = SpacecraftClock(1, lambda: 0.0, met_at_boot=100.0)
    clock.raise_met_floor(250.0)
    assert clock.met() == 250.0
    clock.raise_met_floor(10.0)
    assert clock.met() == 250.0


# -- a satellite across two boots ----------------------------------------------------------------
@pytest.mark.virtual_time
async def test_met_and_degraded_utc_survive_a_reboot(new_satellite, sat_runner) -> None:  # type: ignore[no-untyped-def]
    sat = await sat_runner.start(new_satellite())
    assert sat.clock.quality is TimeQuality.UNKNOWN
    await asyncio.sleep(30.0)
    assert sat.dictionary is not None
    sat.commands.submit(sat.dictionary.command("exec.SET_TIME").id, [T0])
    await asyncio.sleep(600.0)
    assert sat.clock.quality is TimeQuality.GROUND_SET
    await sat_runner.stop(sat)

    sat2 = new_satellite()
    assert sat2.state.boot_count == 2
    assert sat2.clock.met_at_boot == pytest.approx(630.0, abs=0.5)
    assert sat2.clock.quality is TimeQuality.DEGRADED
    sat2 = await sat_runner.start(sat2)
    await asyncio.sleep(100.0)
    utc = sat2.clock.utc()
    # last known UTC (at the clean stop) + this boot's uptime; the time off is not counted
    assert utc is not None and utc == pytest.approx(T0 + 600.0 + 100.0, abs=1.0)
    assert sat2.clock.met() == pytest.approx(730.0, abs=1.0)
    sat2.commands.submit(sat2.dictionary.command("exec.SET_TIME").id, [T0 + 900.0])  # type: ignore[union-attr]
    await asyncio.sleep(1.0)
    assert sat2.clock.quality is TimeQuality.GROUND_SET
    await sat_runner.stop(sat2)


@pytest.mark.virtual_time
async def test_a_crash_after_the_checkpoint_never_moves_met_backward(tmp_path: Path, new_satellite,  # type: ignore[no-untyped-def]
                                                                     sat_runner) -> None:
    sat = await sat_runner.start(new_satellite(extra_toml="[time]\ncheckpoint_s = 3600\n"))
    await asyncio.sleep(300.0)
    await sat_runner.stop(sat)
    # as if the process died with an old checkpoint on disk: rewrite it
    from flightsw.core.state import StateStore

    store = StateStore(tmp_path / "state", fsync=False)
    store.load()
    store.set(STATE_KEY, checkpoint_of(10.0, None, TimeQuality.UNKNOWN).to_dict())
    store.save_blocking()
    sat2 = await sat_runner.start(new_satellite(extra_toml="[time]\ncheckpoint_s = 3600\n"))
    await asyncio.sleep(1.0)
    # the newest record's MET (~300 s) is the floor, not the stale checkpoint's 10 s
    assert sat2.clock.met() >= 300.0
    await sat_runner.stop(sat2)


@pytest.mark.virtual_time
async def test_a_backward_clock_step_keeps_records_in_sequence_and_met_order(tmp_path: Path, new_satellite,  # type: ignore[no-untyped-def]
                                                                              sat_runner) -> None:
    sat = await sat_runner.start(new_satellite())
    assert sat.dictionary is not None
    set_time = sat.dictionary.command("exec.SET_TIME").id
    sat.commands.submit(set_time, [T0 + 86400.0])  # a wrong day
    await asyncio.sleep(60.0)
    sat.commands.submit(set_time, [T0])  # corrected: a step of one day backward
    await asyncio.sleep(60.0)
    await sat_runner.stop(sat)
    sat2 = await sat_runner.start(new_satellite())  # a second boot appends to the same log
    await asyncio.sleep(20.0)
    await sat_runner.stop(sat2)

    records = list(RecordLog(tmp_path / "records").read_all())
    seqs = [r["n"] for r in records]
    mets = [r["m"] for r in records]
    assert seqs == list(range(len(records)))  # one sequence across both boots, no gap, no repeat
    assert mets == sorted(mets) and mets[-1] >= 139.0
    utcs = [r["v"][4] for r in records if r["k"] == "evt" and r["v"][4] is not None]
    assert any(b < a - 80000.0 for a, b in zip(utcs, utcs[1:], strict=False))  # UTC did step back

