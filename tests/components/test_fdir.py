"""The mode and battery FDIR rules on their own: no loop, no satellite, times given explicitly.

tests/components/test_modes.py checks the same rules through a real satellite on virtual time;
these pin the edges (exact dwell boundaries, the hysteresis band, the latch count, boot-loop
arithmetic) that a scenario only passes through.
"""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from flightsw.components.fdir import (
    CAUSE_BATTERY,
    CAUSE_BOOT_LOOP,
    CAUSE_COMMAND,
    CAUSE_RESET,
    DETUMBLE,
    NO_READING_YET,
    NOMINAL,
    SAFE,
    BatteryFdir,
    BatteryReading,
    Transition,
    assess_reading,
    counts_as_good_stop,
    decide_boot,
    detumble_timeout,
    mode_refusal,
    payload_refusal,
)
from flightsw.components.modes import ModeSettings

S = ModeSettings(safe_enter_v=7.2, safe_exit_v=7.6, dwell_s=30.0, recover_dwell_s=600.0, auto_recover=True,
                 max_reading_age_s=10.0, safe_without_battery_s=600.0, max_auto_recoveries=3,
                 recovery_window_s=21600.0, boot_loop_count=4, boot_loop_window_s=600.0)


def ok(volts: float, at: float) -> BatteryReading:
    return BatteryReading(volts, at)


def feed(fdir: BatteryFdir, volts: float, start: float, end: float, mode: str,
         cause: str | None = CAUSE_BATTERY) -> list[tuple[float, Transition]]:
    """One reading a second from ``start`` to ``end`` inclusive; transitions with their times."""
    out = []
    t = start
    while t <= end:
        step = fdir.step(ok(volts, t), mode, cause)
        if step.transition is not None:
            out.append((t, step.transition))
            fdir.mode_changed(step.transition.cause)
            mode = step.transition.mode
        t += 1.0
    return out


# --- battery dwell and hysteresis ----------------------------------------------------------------

def test_safe_is_entered_exactly_when_the_low_dwell_completes() -> None:
    fdir = BatteryFdir(S)
    changes = feed(fdir, 7.1, 100.0, 200.0, NOMINAL)
    assert [(t, c.mode, c.cause) for t, c in changes] == [(130.0, SAFE, CAUSE_BATTERY)]
    assert changes[0][1].reason == "battery 7.10 V < 7.20 V for 30 s"


def test_a_single_good_reading_restarts_the_low_dwell() -> None:
    fdir = BatteryFdir(S)
    assert feed(fdir, 7.1, 0.0, 29.0, NOMINAL) == []
    assert fdir.low_for(29.0) == 29.0
    assert fdir.step(ok(7.3, 30.0), NOMINAL, None).transition is None  # above enter threshold
    assert fdir.low_for(30.0) == 0.0
    assert feed(fdir, 7.1, 31.0, 60.0, NOMINAL) == []  # 29 s since it fell again: not yet
    assert [t for t, _ in feed(fdir, 7.1, 61.0, 61.0, NOMINAL)] == [61.0]


def test_the_hysteresis_band_neither_enters_nor_leaves_safe() -> None:
    fdir = BatteryFdir(S)
    assert feed(fdir, 7.4, 0.0, 5000.0, NOMINAL) == []
    assert feed(fdir, 7.6, 5001.0, 9000.0, SAFE) == []  # exactly safe_exit_v is still in the band
    assert fdir.recover_for(9000.0) == 0.0


def test_automatic_recovery_needs_the_full_recover_dwell_and_a_battery_safe() -> None:
    fdir = BatteryFdir(S)
    changes = feed(fdir, 7.7, 0.0, 700.0, SAFE, CAUSE_BATTERY)
    assert [(t, c.mode) for t, c in changes] == [(600.0, NOMINAL)]
    for cause in (CAUSE_COMMAND, CAUSE_RESET, CAUSE_BOOT_LOOP):
        assert feed(BatteryFdir(S), 7.7, 0.0, 2000.0, SAFE, cause) == [], cause
    assert feed(BatteryFdir(replace(S, auto_recover=False)), 7.7, 0.0, 2000.0, SAFE) == []


def test_automatic_recovery_latches_off_after_max_recoveries_in_the_window() -> None:
    fdir = BatteryFdir(S)
    t = 0.0
    for _ in range(3):  # recover, sag back into SAFE, recover again...
        changes = feed(fdir, 7.7, t, t + 600.0, SAFE)
        assert [c.mode for _, c in changes] == [NOMINAL]
        t = changes[0][0] + 1.0
        changes = feed(fdir, 7.0, t, t + 30.0, NOMINAL)
        assert [c.mode for _, c in changes] == [SAFE]
        t = changes[0][0] + 1.0
    latched = []
    while t < 4000.0:
        step = fdir.step(ok(7.7, t), SAFE, CAUSE_BATTERY)
        assert step.transition is None
        if step.latched_after:
            latched.append((t, step.latched_after))
        t += 1.0
    assert [n for _, n in latched] == [3]  # reported once
    assert fdir.latched
    fdir.mode_changed(CAUSE_COMMAND)  # the operators take over: re-armed
    assert not fdir.latched and fdir.recoveries == []


def test_recoveries_older_than_the_window_do_not_count() -> None:
    fdir = BatteryFdir(replace(S, max_auto_recoveries=1, recovery_window_s=3600.0))
    fdir.recoveries = [0.0]
    assert feed(fdir, 7.7, 1000.0, 1600.0, SAFE) == []  # one recovery within the hour: latched
    assert fdir.latched
    fdir2 = BatteryFdir(replace(S, max_auto_recoveries=1, recovery_window_s=3600.0))
    fdir2.recoveries = [0.0]
    assert [c.mode for _, c in feed(fdir2, 7.7, 4000.0, 4600.0, SAFE)] == [NOMINAL]


def test_a_gap_in_usable_readings_restarts_a_dwell() -> None:
    fdir = BatteryFdir(S)
    assert feed(fdir, 7.1, 0.0, 20.0, NOMINAL) == []
    # 11 s without a usable reading (> max_reading_age_s): the 20 s seen so far do not count
    assert feed(fdir, 7.1, 32.0, 61.0, NOMINAL) == []
    assert [t for t, _ in feed(fdir, 7.1, 62.0, 62.0, NOMINAL)] == [62.0]


# --- unusable readings ---------------------------------------------------------------------------

def test_reading_assessment_order_and_messages() -> None:
    assert assess_reading(50.0, None, False, S).problem == NO_READING_YET
    assert assess_reading(50.0, (7.5, 39.0), False, S).problem == "stale: 11 s old"
    assert assess_reading(50.0, (7.5, 40.0), False, S) == BatteryReading(7.5, 40.0)
    assert assess_reading(50.0, (7.5, 45.0), True, S).problem == "flagged invalid by its sensor"
    assert assess_reading(50.0, (9.5, 45.0), False, S).problem == "implausible 9.5 V"
    assert assess_reading(50.0, ("x", 45.0), False, S).problem == "implausible 'x' V"
    assert assess_reading(50.0, (4.99, 45.0), False, S).volts is None


def test_unusable_readings_start_nothing_but_flying_blind_enters_safe() -> None:
    fdir = BatteryFdir(S)
    fdir.step(ok(7.5, 0.0), NOMINAL, None)
    step = fdir.step(BatteryReading(None, 599.0, "stale: 20 s old"), NOMINAL, None)
    assert step == fdir.step(BatteryReading(None, 599.0, "stale: 20 s old"), NOMINAL, None)
    assert step.transition is None and step.unusable == "stale: 20 s old"
    step = fdir.step(BatteryReading(None, 600.0, "stale: 21 s old"), NOMINAL, None)
    assert step.transition == Transition(SAFE, "no usable battery reading for 600 s (stale: 21 s old)",
                                         CAUSE_BATTERY)
    assert fdir.step(BatteryReading(None, 900.0, "x"), SAFE, CAUSE_BATTERY).transition is None
    quiet = fdir.step(BatteryReading(None, 1.0, NO_READING_YET), SAFE, None)
    assert quiet.unusable == ""  # "no reading yet" at start-up is not an event
    assert BatteryFdir(replace(S, safe_without_battery_s=0.0)).step(
        BatteryReading(None, 1e6, "x"), NOMINAL, None).transition is None


# --- boot ----------------------------------------------------------------------------------------

def test_boot_after_a_clean_stop_restores_the_mode_and_forgives_earlier_boots() -> None:
    d = decide_boot(7, "SIGTERM", 2, "NOMINAL", None, S)
    assert (d.mode, d.reason, d.last_good_boot, d.boot_loop_boots) == (NOMINAL, "restored after SIGTERM", 6, 0)


def test_unexpected_resets_come_up_in_safe_and_keep_a_battery_cause() -> None:
    d = decide_boot(5, "UNEXPECTED", 4, "NOMINAL", None, S)
    assert (d.mode, d.cause, d.reason, d.stored) == (SAFE, CAUSE_RESET, "UNEXPECTED reset", NOMINAL)
    d = decide_boot(5, "UNEXPECTED", 4, "SAFE", CAUSE_BATTERY, S)
    assert (d.mode, d.cause) == (SAFE, CAUSE_BATTERY)


@pytest.mark.parametrize(("boot", "tripped"), [(4, False), (5, True), (9, True)])
def test_boot_loop_trips_on_the_nth_unproven_boot(boot: int, tripped: bool) -> None:
    d = decide_boot(boot, "UNEXPECTED", 1, "NOMINAL", None, S)  # boot 1 was the last good one
    assert (d.cause == CAUSE_BOOT_LOOP) is tripped
    assert d.boot_loop_boots == (boot - 1 if tripped else 0)
    if tripped:
        assert d.reason == f"boot loop: {boot - 1} boots without 600 s up"


def test_implausible_history_counts_as_a_clean_slate() -> None:
    for last_good in (None, "3", -1, 9, 10):
        assert decide_boot(9, "UNEXPECTED", last_good, "NOMINAL", None, S).last_good_boot == 8


def test_first_boot_and_unknown_stored_modes() -> None:
    assert decide_boot(1, "FIRST_BOOT", None, "SAFE", None, replace(S, first_boot_mode=NOMINAL)).mode == NOMINAL
    d = decide_boot(3, "COMMANDED", 2, "ORBIT", None, S)
    assert (d.mode, d.cause, d.reason) == (SAFE, CAUSE_RESET, "unknown stored mode 'ORBIT'")


def test_only_deliberate_stops_prove_a_boot() -> None:
    assert counts_as_good_stop("SIGTERM") and counts_as_good_stop("COMMANDED")
    assert not counts_as_good_stop("SOFTWARE_ERROR")


# --- DETUMBLE, commands, payload -----------------------------------------------------------------

def test_detumble_times_out_back_to_where_it_came_from() -> None:
    assert detumble_timeout(DETUMBLE, 5399.0, NOMINAL, None, S) is None
    assert detumble_timeout(DETUMBLE, 5400.0, NOMINAL, None, S) == Transition(
        NOMINAL, "detumble timeout after 5400 s", CAUSE_COMMAND)
    assert detumble_timeout(DETUMBLE, 6000.0, "DETUMBLE", CAUSE_BATTERY, S) == Transition(
        SAFE, "detumble timeout after 6000 s", CAUSE_BATTERY)
    assert detumble_timeout(NOMINAL, 1e9, SAFE, None, S) is None


def test_the_battery_decides_which_modes_the_ground_may_command() -> None:
    assert mode_refusal("SAFE", BatteryReading(None, 0.0, "x"), S) is None
    assert mode_refusal("NOMINAL", None, S) is None  # no battery FDIR configured
    assert mode_refusal("NOMINAL", ok(7.59, 0.0), S) == "battery 7.59 V below safe_exit_v 7.60 V"
    assert mode_refusal("NOMINAL", ok(7.6, 0.0), S) is None
    assert mode_refusal("DETUMBLE", ok(7.3, 0.0), S) is None
    assert mode_refusal("DETUMBLE", ok(7.1, 0.0), S) == "battery 7.10 V below safe_enter_v 7.20 V"
    assert mode_refusal("NOMINAL", BatteryReading(None, 0.0, "stale: 12 s old"), S) == (
        "no usable battery reading (stale: 12 s old); FORCE_MODE overrides")
    assert mode_refusal("ORBIT", None, S) == "unknown mode 'ORBIT' (modes: SAFE, NOMINAL, DETUMBLE)"
    assert payload_refusal(NOMINAL) is None and payload_refusal(SAFE) == "mode SAFE"
