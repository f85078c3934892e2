"""Mode and battery FDIR decisions, as plain functions and one small state machine.

Why separate from the mode manager component: these are the rules a review board reads and a
test must pin down (thresholds, dwell, hysteresis, the auto-recovery latch, boot-loop protection),
and they are easier to trust without an event loop, a state store or telemetry around them.
Nothing here does I/O, awaits, or knows about components: the component (``modes.py``) reads
the state and telemetry, asks these functions what to do, and does it (persist, emit, switch
outputs). Times are seconds since boot of the readings, so the rules run the same on virtual time.
The watch-points (fault protection on any channel, end of this module) follow the same split:
their table's type and rules here, the responses in the mode manager.

The rules (lessons from flown missions, see docs/modes.md):

* boot: SAFE after an unexpected reset or when ``boot_loop_count`` boots in a row never ran
  ``boot_loop_window_s`` (latched until commanded); otherwise the mode the satellite had;
* battery: separate enter and exit thresholds (hysteresis) and a dwell on each side; a stale,
  implausible or sensor-flagged reading neither starts, advances nor clears a dwell, but flying
  blind for ``safe_without_battery_s`` is itself a reason for SAFE;
* automatic recovery leaves only a SAFE the battery FDIR entered, at most
  ``max_auto_recoveries`` times per ``recovery_window_s``, then latches off until commanded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import msgspec

from flightsw.core.enums import FAILED_RUNS, OPERATING_MODES, UNCLEAN_RESETS, Mode

SAFE, NOMINAL, DETUMBLE = Mode.SAFE, Mode.NOMINAL, Mode.DETUMBLE
MODES = OPERATING_MODES
#: reported to listeners as the "old" mode of the first transition of a boot
BOOT = Mode.BOOT

# Why SAFE was entered; only a "battery" SAFE may be left automatically.
CAUSE_BATTERY, CAUSE_COMMAND, CAUSE_RESET, CAUSE_BOOT_LOOP = "battery", "command", "reset", "boot_loop"
CAUSE_WATCHPOINT = "watchpoint"  # a watch-point's MODE response (the operators' to clear)
SAFE_CAUSES = (CAUSE_BATTERY, CAUSE_COMMAND, CAUSE_RESET, CAUSE_BOOT_LOOP, CAUSE_WATCHPOINT)

NO_BATTERY_CHANNEL = "no battery channel"
NO_READING_YET = "no reading yet"


class FdirSettings(Protocol):
    """The thresholds these rules read (``modes.ModeSettings`` provides them)."""

    @property
    def safe_enter_v(self) -> float: ...
    @property
    def safe_exit_v(self) -> float: ...
    @property
    def dwell_s(self) -> float: ...
    @property
    def recover_dwell_s(self) -> float: ...
    @property
    def auto_recover(self) -> bool: ...
    @property
    def max_reading_age_s(self) -> float: ...
    @property
    def plausible_v(self) -> tuple[float, float]: ...
    @property
    def detumble_timeout_s(self) -> float: ...
    @property
    def boot_loop_count(self) -> int: ...
    @property
    def boot_loop_window_s(self) -> float: ...
    @property
    def first_boot_mode(self) -> str: ...
    @property
    def safe_without_battery_s(self) -> float: ...
    @property
    def max_auto_recoveries(self) -> int: ...
    @property
    def recovery_window_s(self) -> float: ...


@dataclass(frozen=True)
class Transition:
    """A mode change the rules ask for."""

    mode: str
    reason: str
    cause: str


# --- boot ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootDecision:
    """The mode a boot comes up in, and the bookkeeping that goes with it."""

    mode: str
    cause: str | None
    reason: str
    stored: str          # the persisted mode as read (the boot's "old" mode)
    last_good_boot: int  # to persist: the last boot that proved itself
    boot_loop_boots: int = 0  # > 0 when this boot tripped boot-loop protection


def decide_boot(boot: int, reset: str, last_good: Any, stored_mode: Any, stored_cause: Any,
                settings: FdirSettings) -> BootDecision:
    """Which mode boot number ``boot`` starts in after ``reset``, from what the last boots left
    (``stored_mode``: the persisted mode, SAFE when none was stored).

    Boots count, not wall-clock time (the Pi has no RTC): a boot is "good" once it ran
    ``boot_loop_window_s`` or ended in a deliberate stop. A deliberate stop (or no history) makes
    every earlier boot count as good.
    """
    if reset not in FAILED_RUNS or not isinstance(last_good, int) or not 0 <= last_good < boot:
        last_good = boot - 1
    unproven = boot - last_good
    stored = str(stored_mode).upper()
    persisted = Mode(stored) if stored in MODES else SAFE
    cause = stored_cause
    loop_boots = 0
    if unproven >= settings.boot_loop_count:
        mode, cause = SAFE, CAUSE_BOOT_LOOP
        loop_boots = unproven
        reason = f"boot loop: {unproven} boots without {settings.boot_loop_window_s:g} s up"
    elif reset in UNCLEAN_RESETS:
        mode = SAFE
        # a brown-out while in a battery SAFE is still a battery SAFE (it may recover by itself)
        if not (persisted == SAFE and cause == CAUSE_BATTERY):
            cause = CAUSE_RESET
        reason = f"{reset} reset"
    elif reset == "FIRST_BOOT":
        mode, cause = Mode(settings.first_boot_mode), CAUSE_RESET
        reason = "first boot"
    else:
        mode = persisted
        reason = f"unknown stored mode {stored!r}" if stored not in MODES else f"restored after {reset}"
    if mode == SAFE and cause not in SAFE_CAUSES:
        cause = CAUSE_RESET
    return BootDecision(mode, cause, reason, stored, last_good, loop_boots)


def counts_as_good_stop(shutdown_reason: Any) -> bool:
    """A deliberate stop ends a boot well; a stop after a software error does not (a crash loop
    must trip the protection, and so must a loop of watch-point reboots)."""
    return shutdown_reason not in FAILED_RUNS


# --- battery readings ----------------------------------------------------------------------------


@dataclass
class BatteryReading:
    """What FDIR saw this cycle: a usable voltage and its time, or why there is none."""

    volts: float | None
    at: float  # seconds since boot of the sample
    problem: str = ""


def assess_reading(now: float, sample: tuple[Any, float] | None, vetoed: bool,
                   settings: FdirSettings) -> BatteryReading:
    """Whether FDIR may act on the latest battery sample ``(value, seconds since boot)``.

    ``vetoed``: the sensor's own status flags the reading invalid or stale. Checked in order:
    missing, too old, vetoed, implausible.
    """
    if sample is None:
        return BatteryReading(None, now, NO_READING_YET)
    value, at = sample
    age = now - at
    if age > settings.max_reading_age_s:
        return BatteryReading(None, now, f"stale: {age:.0f} s old")
    if vetoed:
        return BatteryReading(None, now, "flagged invalid by its sensor")
    low, high = settings.plausible_v
    if not isinstance(value, int | float) or not low <= value <= high:
        return BatteryReading(None, now, f"implausible {value!r} V")
    return BatteryReading(float(value), at)


# --- battery FDIR --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FdirStep:
    """What one reading asks of the component: report it unusable, report the latch, change mode."""

    transition: Transition | None = None
    unusable: str = ""    # a reading problem worth an event ("" when none)
    latched_after: int = 0  # > 0: the auto-recovery latch closed now, after this many recoveries


@dataclass
class BatteryFdir:
    """Dwell, hysteresis and the auto-recovery latch over the stream of battery readings."""

    settings: FdirSettings
    low_since: float | None = None
    recover_since: float | None = None
    last_usable_at: float | None = None
    recoveries: list[float] = field(default_factory=list)  # times of this boot's automatic recoveries
    latched: bool = False

    def mode_changed(self, cause: str) -> None:
        """Any mode change restarts both dwells; one commanded by the operators also re-arms
        automatic recovery (they took over)."""
        self.low_since = self.recover_since = None
        if cause == CAUSE_COMMAND:
            self.recoveries.clear()
            self.latched = False

    def step(self, reading: BatteryReading, mode: str, safe_cause: Any) -> FdirStep:
        """One FDIR cycle on ``reading`` in ``mode`` (``safe_cause``: why SAFE was entered)."""
        s = self.settings
        if reading.volts is None:
            unusable = reading.problem if reading.problem != NO_READING_YET else ""
            # stale/invalid: neither starts nor ends a dwell (a long gap restarts it, below); but
            # flying blind on power for long is itself a reason for SAFE
            blind_for = reading.at - (self.last_usable_at or 0.0)
            limit = s.safe_without_battery_s
            if limit and mode != SAFE and blind_for >= limit:
                reason = f"no usable battery reading for {blind_for:.0f} s ({reading.problem})"[:60]
                return FdirStep(Transition(SAFE, reason, CAUSE_BATTERY), unusable)
            return FdirStep(None, unusable)
        volts, at = reading.volts, reading.at
        if self.last_usable_at is not None and at - self.last_usable_at > s.max_reading_age_s:
            # the condition was not observed for a while: a dwell must be seen again in full
            self.low_since = self.recover_since = None
        self.last_usable_at = at
        if volts < s.safe_enter_v:
            self.recover_since = None
            if self.low_since is None:
                self.low_since = at
            if mode != SAFE and at - self.low_since >= s.dwell_s:
                return FdirStep(Transition(SAFE, f"battery {volts:.2f} V < {s.safe_enter_v:.2f} V for "
                                                 f"{at - self.low_since:.0f} s", CAUSE_BATTERY))
            return FdirStep()
        self.low_since = None
        if volts <= s.safe_exit_v:
            self.recover_since = None  # the hysteresis band: nothing changes here
            return FdirStep()
        if not (mode == SAFE and s.auto_recover and safe_cause == CAUSE_BATTERY):
            self.recover_since = None
            return FdirStep()
        if self.recover_since is None:
            self.recover_since = at
        if at - self.recover_since < s.recover_dwell_s:
            return FdirStep()
        # a pack that recovers at rest and sags under load would cycle for ever: latch off
        self.recoveries = [t for t in self.recoveries if at - t < s.recovery_window_s]
        if len(self.recoveries) >= s.max_auto_recoveries:
            if self.latched:
                return FdirStep()
            self.latched = True
            return FdirStep(latched_after=len(self.recoveries))
        self.recoveries.append(at)
        return FdirStep(Transition(NOMINAL, f"battery {volts:.2f} V > {s.safe_exit_v:.2f} V for "
                                            f"{at - self.recover_since:.0f} s", CAUSE_BATTERY))

    def low_for(self, at: float) -> float:
        return 0.0 if self.low_since is None else max(0.0, at - self.low_since)

    def recover_for(self, at: float) -> float:
        return 0.0 if self.recover_since is None else max(0.0, at - self.recover_since)


# --- DETUMBLE and commands -----------------------------------------------------------------------


def detumble_timeout(mode: str, elapsed: float, previous: Any, cause: Any,
                     settings: FdirSettings) -> Transition | None:
    """DETUMBLE ends after ``detumble_timeout_s``, back to the mode it came from (SAFE or
    NOMINAL), keeping the SAFE cause it had."""
    if mode != DETUMBLE or elapsed < settings.detumble_timeout_s:
        return None
    back = str(previous or SAFE)
    return Transition(back if back in (SAFE, NOMINAL) else SAFE, f"detumble timeout after {elapsed:.0f} s",
                      str(cause or CAUSE_COMMAND))


def mode_refusal(target: str, reading: BatteryReading | None, settings: FdirSettings) -> str | None:
    """Why the ground may not enter ``target`` now, or None. ``reading``: the battery as FDIR sees
    it, None without battery FDIR. NOMINAL needs the battery above safe_exit_v, DETUMBLE above
    safe_enter_v; SAFE is always allowed."""
    if target not in MODES:
        return f"unknown mode {target!r} (modes: {', '.join(MODES)})"
    if target == SAFE or reading is None:
        return None
    need = settings.safe_exit_v if target == NOMINAL else settings.safe_enter_v
    which = "safe_exit_v" if target == NOMINAL else "safe_enter_v"
    if reading.volts is None:
        return f"no usable battery reading ({reading.problem}); FORCE_MODE overrides"
    if reading.volts < need:
        return f"battery {reading.volts:.2f} V below {which} {need:.2f} V"
    return None


def payload_refusal(mode: str) -> str | None:
    """The imaging payload gate: captures run in NOMINAL only."""
    return None if mode == NOMINAL else f"mode {mode}"


# --- watch-points: fault protection on any channel --------------------------------------------------
#
# A watch-point names a telemetry channel, a check (limits, stale, frozen), how long the condition
# must persist, and the response. The table of them is a ``flightsw.core.tables`` table
# (``modes.watchpoints``): changed by command as a whole, validated, persisted atomically. These
# are its type and rules; the mode manager reads the channels and carries out the responses.


class Check(enum.StrEnum):
    """What a watch-point looks for in its channel."""

    LIMITS = "LIMITS"  # outside yellow/red thresholds
    STALE = "STALE"    # no new sample for ``seconds``
    FROZEN = "FROZEN"  # ``samples`` new samples in a row with exactly the same value


class Response(enum.StrEnum):
    """What a watch-point does once its (red) condition has persisted."""

    EVENT = "EVENT"                      # report only
    MODE = "MODE"                        # enter ``mode`` (SAFE switches the SAFE-off outputs off)
    POWER_CYCLE = "POWER_CYCLE"          # cycle the GPIO power line ``output``
    RESTART_SERVICE = "RESTART_SERVICE"  # restart the supervised service ``service``
    REBOOT = "REBOOT"                    # orderly restart of the flight software (reset reason FDIR)


class Level(enum.StrEnum):
    """A watch-point's verdict on its channel this cycle."""

    OK = "OK"
    NO_DATA = "NO_DATA"
    YELLOW = "YELLOW"
    RED = "RED"
    STALE = "STALE"
    FROZEN = "FROZEN"


#: responses that try to cure the fault: re-armed at once, and counted towards isolation
CURES = frozenset({Response.POWER_CYCLE, Response.RESTART_SERVICE})
#: a watch-point in limits this long forgets its earlier cure attempts
CURE_MEMORY_S = 3600.0
WATCH_NAME = r"^[a-z][a-z0-9_]{0,23}$"


class WatchPoint(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One entry of the watch-point table."""

    name: Annotated[str, msgspec.Meta(pattern=WATCH_NAME)]
    channel: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")]
    check: Check = Check.LIMITS
    red_low: float | None = None
    yellow_low: float | None = None
    yellow_high: float | None = None
    red_high: float | None = None
    #: FROZEN: identical new samples in a row that mean a frozen sensor
    samples: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0
    #: STALE: seconds without a new sample
    seconds: Annotated[float, msgspec.Meta(ge=0.0, le=86_400.0)] = 0.0
    #: LIMITS: new samples in a row beyond a threshold; STALE/FROZEN: 1 s checks in a row
    persistence: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 3
    response: Response = Response.EVENT
    mode: str = "SAFE"       # MODE
    output: str = ""         # POWER_CYCLE: a gpio_output name
    service: str = ""        # RESTART_SERVICE: a supervised service name
    #: POWER_CYCLE/RESTART_SERVICE: cures that did not hold before the part is isolated
    isolate_after: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    enabled: bool = True


class WatchTable(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The whole table (the file format of ``tbl.LOAD modes.watchpoints``)."""

    watchpoints: list[WatchPoint] = []


def validate_watch_table(table: WatchTable) -> None:
    """Rules within the table (names unique, thresholds ordered, each response's target given);
    raises ValueError naming the entry. Names that must exist on the satellite are the mode
    manager's check."""
    seen: set[str] = set()
    for i, wp in enumerate(table.watchpoints):
        where = f"watchpoints[{i}] ({wp.name})"
        if wp.name in seen:
            raise ValueError(f"{where}: duplicate name")
        seen.add(wp.name)
        if wp.check is Check.LIMITS:
            bounds = [b for b in (wp.red_low, wp.yellow_low, wp.yellow_high, wp.red_high) if b is not None]
            if wp.red_low is None and wp.red_high is None and wp.yellow_low is None and wp.yellow_high is None:
                raise ValueError(f"{where}: a LIMITS check needs at least one threshold")
            if bounds != sorted(bounds):
                raise ValueError(f"{where}: thresholds must be ordered red_low <= yellow_low <= yellow_high <= red_high")
        elif wp.check is Check.FROZEN and wp.samples < 2:
            raise ValueError(f"{where}: a FROZEN check needs samples >= 2")
        elif wp.check is Check.STALE and wp.seconds <= 0:
            raise ValueError(f"{where}: a STALE check needs seconds > 0")
        if wp.response is Response.MODE and wp.mode.upper() not in MODES:
            raise ValueError(f"{where}: mode {wp.mode!r} is not one of {', '.join(MODES)}")
        if wp.response is Response.POWER_CYCLE and not wp.output:
            raise ValueError(f"{where}: POWER_CYCLE needs an output (a gpio_output name)")
        if wp.response is Response.RESTART_SERVICE and not wp.service:
            raise ValueError(f"{where}: RESTART_SERVICE needs a service name")


@dataclass
class WatchState:
    """What one watch-point remembers between cycles (this boot; isolation is persisted)."""

    violations: int = 0      # consecutive counted steps in violation
    oks: int = 0             # consecutive counted steps in limits
    fired: bool = False      # the response ran; re-armed when the condition clears
    yellow: bool = False     # the yellow event was sent; re-armed when back in limits
    yellows: int = 0         # consecutive counted steps in the yellow band
    last_stamp: float | None = None
    last_value: Any = None
    same: int = 0            # new samples in a row equal to the one before
    ok_since: float | None = None
    cures: int = 0           # cure attempts since the last long clean period
    firings: int = 0
    isolated: bool = False


@dataclass(frozen=True)
class WatchStep:
    """What one cycle asks of the mode manager."""

    level: Level
    fire: bool = False       # run the response now
    isolate: bool = False    # the cures did not hold: isolate (event, status) instead
    yellow: bool = False     # report a yellow excursion
    cleared: bool = False    # the condition that fired has cleared
    detail: str = ""


def _limit_level(wp: WatchPoint, value: float) -> tuple[Level, str]:
    if wp.red_high is not None and value > wp.red_high:
        return Level.RED, f"{value:.4g} > red_high {wp.red_high:g}"
    if wp.red_low is not None and value < wp.red_low:
        return Level.RED, f"{value:.4g} < red_low {wp.red_low:g}"
    if wp.yellow_high is not None and value > wp.yellow_high:
        return Level.YELLOW, f"{value:.4g} > yellow_high {wp.yellow_high:g}"
    if wp.yellow_low is not None and value < wp.yellow_low:
        return Level.YELLOW, f"{value:.4g} < yellow_low {wp.yellow_low:g}"
    return Level.OK, ""


def watch_step(wp: WatchPoint, st: WatchState, sample: tuple[Any, float] | None, now: float) -> WatchStep:
    """One check of ``wp`` on its channel's latest ``sample`` (value, seconds since boot) at
    ``now`` (seconds since boot); updates ``st``.

    LIMITS and FROZEN count new samples only (a sensor that stops updating neither advances nor
    clears them; a STALE watch-point catches that); STALE counts checks.
    """
    fresh = sample is not None and sample[1] != st.last_stamp
    if sample is not None and fresh:
        st.last_stamp = sample[1]
    counted = fresh
    detail = ""
    if wp.check is Check.STALE:
        counted = True
        age = now - sample[1] if sample is not None else now
        level = Level.STALE if age >= wp.seconds else Level.OK
        detail = f"no new sample for {age:.0f} s" if level is Level.STALE else ""
    elif sample is None:
        return WatchStep(Level.NO_DATA)
    else:
        value = sample[0]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return WatchStep(Level.NO_DATA)
        if wp.check is Check.FROZEN:
            if fresh:
                st.same = st.same + 1 if value == st.last_value else 0
                st.last_value = value
            level = Level.FROZEN if st.same + 1 >= wp.samples else Level.OK
            detail = f"{st.same + 1} samples in a row at {value:.6g}" if level is Level.FROZEN else ""
        else:
            level, detail = _limit_level(wp, float(value))
    if not counted:
        return WatchStep(level)
    bad = level in (Level.RED, Level.STALE, Level.FROZEN)
    yellow = level is Level.YELLOW
    st.yellows = st.yellows + 1 if yellow else 0
    if bad:
        st.violations += 1
        st.oks = 0
        st.ok_since = None
    elif yellow:
        st.violations = 0
        st.oks = 0
        st.ok_since = None
    else:
        st.violations = 0
        st.oks += 1
        if st.ok_since is None:
            st.ok_since = now
        if st.cures and now - st.ok_since >= CURE_MEMORY_S:
            st.cures = 0
    report_yellow = False
    if yellow and not st.yellow and st.yellows >= wp.persistence:
        st.yellow = report_yellow = True
    elif st.oks >= wp.persistence:
        st.yellow = False
    if st.isolated or not wp.enabled:
        return WatchStep(level, yellow=report_yellow and wp.enabled, detail=detail)
    if bad and not st.fired and st.violations >= wp.persistence:
        st.firings += 1
        if wp.response in CURES:
            if st.cures >= wp.isolate_after:
                st.isolated = True
                return WatchStep(level, isolate=True, detail=detail)
            st.cures += 1
            # a cure is judged by what follows it: the condition must persist in full again
            st.violations = st.same = 0
            st.last_value = None
        else:
            st.fired = True
        return WatchStep(level, fire=True, detail=detail)
    if st.fired and st.oks >= wp.persistence:
        st.fired = False
        return WatchStep(level, cleared=True, yellow=report_yellow)
    return WatchStep(level, yellow=report_yellow, detail=detail)

