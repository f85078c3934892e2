"""The watch-point rules (flightsw.components.fdir), without a loop: persistence, yellow and red,
frozen and stale checks, one response per excursion, cures re-armed and isolation after N."""

from __future__ import annotations

import msgspec
import pytest

from flightsw.components.fdir import (
    Check,
    Level,
    Response,
    WatchPoint,
    WatchState,
    WatchTable,
    validate_watch_table,
    watch_step,
)

HOT = WatchPoint(name="payload_hot", channel="temp_payload.temperature", yellow_high=45.0, red_high=60.0,
                 persistence=3, response=Response.MODE)
FROZEN = WatchPoint(name="mag_frozen", channel="mag.mag_x", check=Check.FROZEN, samples=4, persistence=1,
                    response=Response.POWER_CYCLE, output="adcs_sensor_power", isolate_after=2)
STALE = WatchPoint(name="batt_stale", channel="temp_battery.temperature", check=Check.STALE, seconds=10.0,
                   persistence=1)


def feed(wp: WatchPoint, st: WatchState, values: list[float], t0: float = 0.0) -> list:
    """One new sample per second; the steps it produced."""
    return [watch_step(wp, st, (v, t0 + i), t0 + i) for i, v in enumerate(values)]


def test_red_fires_once_after_persistence_and_clears_after_persistence_in_limits() -> None:
    st = WatchState()
    steps = feed(HOT, st, [20, 61, 62, 63, 64, 65, 20, 20, 20, 61, 62, 63])
    assert [s.fire for s in steps] == [False, False, False, True, False, False,
                                       False, False, False, False, False, True]
    assert steps[3].level is Level.RED and "63 > red_high 60" in steps[3].detail
    assert [i for i, s in enumerate(steps) if s.cleared] == [8]
    assert st.firings == 2


def test_an_interrupted_excursion_does_not_fire() -> None:
    st = WatchState()
    steps = feed(HOT, st, [61, 62, 20, 61, 62, 20])
    assert not any(s.fire for s in steps)


def test_yellow_is_reported_once_per_excursion() -> None:
    st = WatchState()
    steps = feed(HOT, st, [50, 50, 50, 50, 50, 20, 20, 20, 50, 50, 50])
    assert [i for i, s in enumerate(steps) if s.yellow] == [2, 10]
    assert not any(s.fire for s in steps)


def test_a_repeated_sample_is_not_counted_twice() -> None:
    """LIMITS counts new samples: a sensor that stopped updating neither fires nor clears."""
    st = WatchState()
    steps = [watch_step(HOT, st, (65.0, 1.0), now) for now in range(1, 10)]
    assert not any(s.fire for s in steps)
    assert st.violations == 1


def test_frozen_power_cycles_then_isolates_a_part_that_keeps_freezing() -> None:
    st = WatchState()
    steps = feed(FROZEN, st, [1.0, 2.0, 3.0, 3.0, 3.0, 3.0])
    assert [s.fire for s in steps] == [False, False, False, False, False, True]
    assert steps[-1].level is Level.FROZEN
    # the cure is judged by what follows: the same value four more times fires again
    again = feed(FROZEN, st, [3.0, 3.0, 3.0, 3.0], t0=10)
    assert [s.fire for s in again] == [False, False, False, True]
    assert st.cures == 2
    third = feed(FROZEN, st, [3.0] * 4, t0=20)
    assert third[-1].isolate and not third[-1].fire and st.isolated
    assert not any(s.fire or s.isolate for s in feed(FROZEN, st, [3.0] * 20, t0=30))


def test_a_changing_value_is_not_frozen() -> None:
    st = WatchState()
    assert not any(s.fire for s in feed(FROZEN, st, [1.0, 1.0, 1.0, 1.1, 1.1, 1.1, 1.2, 1.2]))


def test_stale_counts_seconds_without_a_new_sample() -> None:
    st = WatchState()
    assert not watch_step(STALE, st, (20.0, 5.0), 14.0).fire
    step = watch_step(STALE, st, (20.0, 5.0), 15.0)
    assert step.fire and step.level is Level.STALE and "10 s" in step.detail
    assert not watch_step(STALE, st, (20.0, 5.0), 16.0).fire  # once per excursion
    assert watch_step(STALE, st, (20.0, 16.0), 16.0).cleared
    # never any sample: stale counted from boot
    assert watch_step(STALE, WatchState(), None, 10.0).fire


def test_disabled_entries_never_respond() -> None:
    st = WatchState()
    off = msgspec.structs.replace(HOT, enabled=False)
    assert not any(s.fire for s in feed(off, st, [70] * 10))


@pytest.mark.parametrize(("entry", "message"), [
    (dict(name="a", channel="x.y"), "needs at least one threshold"),
    (dict(name="a", channel="x.y", red_high=10.0, yellow_high=20.0), "thresholds must be ordered"),
    (dict(name="a", channel="x.y", check="FROZEN", samples=1), "samples >= 2"),
    (dict(name="a", channel="x.y", check="STALE"), "seconds > 0"),
    (dict(name="a", channel="x.y", red_high=1.0, response="POWER_CYCLE"), "needs an output"),
    (dict(name="a", channel="x.y", red_high=1.0, response="RESTART_SERVICE"), "needs a service name"),
    (dict(name="a", channel="x.y", red_high=1.0, response="MODE", mode="PARTY"), "is not one of"),
])
def test_a_bad_entry_is_refused_naming_it(entry: dict, message: str) -> None:
    table = msgspec.convert({"watchpoints": [entry]}, WatchTable)
    with pytest.raises(ValueError, match=message) as err:
        validate_watch_table(table)
    assert str(err.value).startswith("watchpoints[0] (a):")


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate name"):
        validate_watch_table(WatchTable(watchpoints=[HOT, HOT]))
