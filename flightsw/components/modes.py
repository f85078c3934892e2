"""Mode manager with battery FDIR: SAFE, NOMINAL and DETUMBLE, persisted, with boot-loop protection.

Why it is built this way (lessons from flown missions, see FIELD_NOTES):

* The mode lives in the state store (``state["mode"]``), the single source every other part reads
  (beacon, beacon period, payload gate), and survives reboots.
* On boot the satellite comes up in SAFE after an unexpected reset (watchdog, power cut, crash)
  or when boot-loop protection trips; otherwise in the mode it had. The Pi has no real-time clock
  and ground UTC is only valid for the boot it was set in, so boot-loop protection counts *boots*,
  not wall-clock times: ``modes.last_good_boot`` is the last boot that ran ``boot_loop_window_s``
  or was followed by a deliberate stop, and the framework saves the boot count before anything
  else runs, so even a crash during start-up is counted. ``boot_loop_count`` boots in a row that
  never proved themselves trip the protection: SAFE, latched until the ground commands a mode.
* Battery FDIR has separate enter and exit thresholds and a dwell on each side: a safe mode
  without hysteresis let one satellite reboot up to 150 times an orbit. Only fresh, plausible
  readings flagged valid by their sensor count; a stale or invalid reading neither starts,
  advances nor clears anything.
* Automatic recovery (``auto_recover``) only leaves a SAFE that the battery FDIR itself entered:
  a SAFE commanded by the ground, caused by an unexpected reset or by a boot loop is the
  operators' to clear.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from flightsw.config import ConfigError, MissionConfig
from flightsw.core.component import Arg, Channel, CommandFailure, Component, Event, command
from flightsw.core.enums import OPERATING_MODES, UNCLEAN_RESETS, Mode, ResetReason
from flightsw.core.events import Severity
from flightsw.core.types import BOOL, F32, STRING, U16, U32

if TYPE_CHECKING:
    from flightsw.app import Satellite

log = logging.getLogger("flightsw.modes")

SAFE, NOMINAL, DETUMBLE = Mode.SAFE, Mode.NOMINAL, Mode.DETUMBLE
MODES = OPERATING_MODES
#: reported to listeners as the "old" mode of the first transition of a boot
BOOT = Mode.BOOT

# Why SAFE was entered; only a "battery" SAFE may be left automatically.
CAUSE_BATTERY, CAUSE_COMMAND, CAUSE_RESET, CAUSE_BOOT_LOOP = "battery", "command", "reset", "boot_loop"

STATE_MODE = "mode"
STATE_CAUSE = "modes.safe_cause"
STATE_PREVIOUS = "modes.previous"  # the mode DETUMBLE returns to when it times out
STATE_LAST_GOOD_BOOT = "modes.last_good_boot"
STATE_SAFE_ENTRIES = "modes.safe_entries"

ModeListener = Callable[[str, str, str], None]


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModeSettings:
    """The ``[modes]`` section, validated. Defaults suit the reference 2S Li-ion pack (docs/modes.md)."""

    base_id: int = 0x0020
    battery_channel: str = "eps_battery.bus_voltage"
    battery_channel_required: bool = False  # set when the config names the channel explicitly
    safe_enter_v: float = 7.2   # 3.60 V/cell, ~20 % SoC on the pack's OCV curve
    safe_exit_v: float = 7.6    # 3.80 V/cell, ~45 % SoC while charging, ~55 % at rest
    dwell_s: float = 30.0
    recover_dwell_s: float = 600.0
    auto_recover: bool = False
    max_reading_age_s: float = 10.0
    plausible_v: tuple[float, float] = (5.0, 9.0)
    detumble_timeout_s: float = 5400.0
    boot_loop_count: int = 4
    boot_loop_window_s: float = 600.0
    safe_off_outputs: tuple[str, ...] = ()
    first_boot_mode: str = SAFE  # a laptop simulation's first boot is not a deployment
    safe_without_battery_s: float = 600.0  # outside SAFE, no usable reading this long -> SAFE (0: off)
    max_auto_recoveries: int = 3  # automatic recoveries within recovery_window_s before latching off
    recovery_window_s: float = 21600.0


def parse_settings(config: MissionConfig) -> ModeSettings:
    """``[modes]`` as settings; the table (ranges, hysteresis, outputs) is validated with the config."""
    section = config.modes
    d = ModeSettings()
    channel = d.battery_channel if section.battery_channel is UNSET else str(section.battery_channel)
    return ModeSettings(
        first_boot_mode=section.first_boot_mode,
        base_id=section.base_id,
        battery_channel=channel,
        battery_channel_required=section.battery_channel is not UNSET and channel != "",
        safe_enter_v=section.safe_enter_v,
        safe_exit_v=section.safe_exit_v,
        dwell_s=section.dwell_s,
        recover_dwell_s=section.recover_dwell_s,
        auto_recover=section.auto_recover,
        max_reading_age_s=section.max_reading_age_s,
        plausible_v=section.plausible_v,
        detumble_timeout_s=section.detumble_timeout_s,
        boot_loop_count=section.boot_loop_count,
        boot_loop_window_s=section.boot_loop_window_s,
        safe_off_outputs=tuple(section.safe_off_outputs),
        safe_without_battery_s=section.safe_without_battery_s,
        max_auto_recoveries=section.max_auto_recoveries,
        recovery_window_s=section.recovery_window_s,
    )


# --- the component -----------------------------------------------------------------------------


@dataclass
class BatteryReading:
    """What FDIR saw this cycle: a usable voltage and its time, or why there is none."""

    volts: float | None
    at: float  # seconds since boot of the sample
    problem: str = ""


class ModeManager(Component):
    """Operating mode, battery fault detection and recovery, boot-loop protection."""

    mode = Channel(STRING(12), doc="Operating mode: SAFE, NOMINAL or DETUMBLE")
    time_in_mode = Channel(F32, unit="s", doc="Time since the mode was entered (this boot)")
    safe_entries = Channel(U32, doc="Entries into SAFE over the mission (persisted)")
    safe_cause = Channel(STRING(12), doc="Why SAFE was last entered: battery, command, reset, boot_loop")
    last_reason = Channel(STRING(60), doc="Reason of the last mode change")
    battery_v = Channel(F32, unit="V", doc="Last battery voltage FDIR accepted")
    battery_usable = Channel(BOOL, doc="The battery reading is fresh, plausible and valid")
    low_for_s = Channel(F32, unit="s", doc="How long the battery has been below safe_enter_v")
    recover_for_s = Channel(F32, unit="s", doc="How long the battery has been above safe_exit_v in SAFE")
    unproven_boots = Channel(U16, doc="Boots in a row that have not yet run boot_loop_window_s")
    auto_recover = Channel(BOOL, doc="Automatic recovery from a battery SAFE is enabled")

    mode_changed = Event(Severity.WARNING, "Mode {old} -> {new}: {reason}", throttle=None)
    boot_mode = Event(Severity.INFO, "Booted in {mode} (reset {reset}): {reason}", throttle=None)
    boot_loop = Event(Severity.CRITICAL, "Boot loop: {boots} boots in a row without {window_s} s of uptime; "
                      "SAFE until commanded", throttle=None)
    battery_unusable = Event(Severity.WARNING, "Battery reading ignored by FDIR: {why}", throttle=(1, 600.0))
    auto_recover_latched = Event(Severity.WARNING, "Automatic recovery latched off: {recoveries} recoveries "
                                 "within {window_s} s; SAFE until commanded", throttle=None)
    output_failed = Event(Severity.WARNING, "Output {output} not switched {state}: {error}", throttle=(5, 600.0))

    def __init__(self, settings: ModeSettings, name: str = "modes") -> None:
        super().__init__(name, settings.base_id)
        self.settings = settings
        self._listeners: list[ModeListener] = []
        self._battery_id: int | None = None
        self._battery_status: list[tuple[int, bool]] = []  # (channel id, value meaning "usable")
        self._gpio: Any = None  # hal.gpio.GpioBank of the hardware manager, if any
        self._entered_at = 0.0
        self._low_since: float | None = None
        self._recover_since: float | None = None
        self._last_usable_at: float | None = None
        self._recoveries: list[float] = []  # times of this boot's automatic recoveries
        self._recovery_latched = False
        self._boot_pending: tuple[str, str, str, str] | None = None  # old, new, reason, reset
        self._boot_proven = False
        self._dirty = False
        self._published: dict[str, Any] = {}
        self._last_reason = ""
        self._boot_loop_boots = 0  # > 0 when this boot tripped boot-loop protection

    # -- wiring -------------------------------------------------------------------------------
    def add_listener(self, listener: ModeListener) -> None:
        """Call ``listener(old, new, reason)`` on every change (the boot's first one has old "BOOT")."""
        self._listeners.append(listener)

    def setup(self) -> None:
        self._find_battery()
        for comp in self.ctx.components():
            if hasattr(comp, "set_payload_gate"):
                comp.set_payload_gate(self.payload_refusal)
            hardware = getattr(comp, "hardware", None)
            if hardware is not None and hasattr(hardware, "gpio"):
                self._gpio = hardware.gpio
        missing = [n for n in self.settings.safe_off_outputs if self._gpio is None or n not in self._gpio.outputs]
        if missing:
            raise ConfigError(f"modes.safe_off_outputs: output(s) {missing} not built by the hardware layer")
        self._decide_boot_mode()
        self.ctx.rate_group("slow").add(f"{self.name}.fdir", self.cycle)

    def _find_battery(self) -> None:
        name = self.settings.battery_channel
        if not name:
            return
        owner, _, channel = name.partition(".")
        comp = next((c for c in self.ctx.components() if c.name == owner), None)
        decl = comp.declarations.get(channel) if comp is not None else None
        if comp is None or not isinstance(decl, Channel):
            if self.settings.battery_channel_required:
                raise ConfigError(f"modes.battery_channel: no telemetry channel named {name!r}")
            log.warning("no channel %s: battery FDIR off", name)
            return
        self._battery_id = comp.item_id(decl)
        # The sensor's own verdicts (housekeeping monitors publish these) veto its readings.
        for status, usable in (("valid", True), ("stale", False)):
            sdecl = comp.declarations.get(status)
            if isinstance(sdecl, Channel):
                self._battery_status.append((comp.item_id(sdecl), usable))

    # -- mode queries -------------------------------------------------------------------------
    @property
    def current(self) -> str:
        mode = str(self.ctx.state.get(STATE_MODE, SAFE)).upper()
        return mode if mode in MODES else SAFE

    def payload_refusal(self) -> str | None:
        """The imaging payload gate: captures run in NOMINAL only."""
        mode = self.current
        return None if mode == NOMINAL else f"mode {mode}"

    # -- boot ---------------------------------------------------------------------------------
    def _decide_boot_mode(self) -> None:
        state = self.ctx.state
        boot = state.boot_count
        reset = str(state.get("reset_reason"))
        last_good = state.get(STATE_LAST_GOOD_BOOT)
        if reset not in UNCLEAN_RESETS or not isinstance(last_good, int) or not 0 <= last_good < boot:
            last_good = boot - 1  # a deliberate stop (or no history): earlier boots do not count
        state.set(STATE_LAST_GOOD_BOOT, last_good)
        unproven = boot - last_good
        stored = str(state.get(STATE_MODE, SAFE)).upper()
        persisted = Mode.parse(stored) if stored in MODES else SAFE
        assert persisted is not None
        cause = state.get(STATE_CAUSE)
        if unproven >= self.settings.boot_loop_count:
            mode, cause = SAFE, CAUSE_BOOT_LOOP
            self._boot_loop_boots = unproven
            reason = f"boot loop: {unproven} boots without {self.settings.boot_loop_window_s:g} s up"
        elif reset in UNCLEAN_RESETS:
            mode = SAFE
            # a brown-out while in a battery SAFE is still a battery SAFE (it may recover by itself)
            if not (persisted == SAFE and cause == CAUSE_BATTERY):
                cause = CAUSE_RESET
            reason = f"{reset} reset"
        elif reset == ResetReason.FIRST_BOOT:
            mode, cause = Mode(self.settings.first_boot_mode), CAUSE_RESET
            reason = "first boot"
        else:
            mode = persisted
            reason = (f"unknown stored mode {stored!r}" if stored not in MODES else f"restored after {reset}")
        if mode == SAFE and cause not in (CAUSE_BATTERY, CAUSE_COMMAND, CAUSE_RESET, CAUSE_BOOT_LOOP):
            cause = CAUSE_RESET
        state.set(STATE_MODE, mode)
        state.set(STATE_CAUSE, cause)
        # the time in mode starts on the first cycle, on the running loop's clock (a satellite
        # may be built before its loop runs, or on another thread)
        self._boot_pending = (stored, mode, reason, reset)
        self._dirty = True

    def _announce_boot(self, old: str, new: str, reason: str, reset: str) -> None:
        """First cycle: the event sinks are attached now, so the boot decision is recorded."""
        self._entered_at = self.ctx.clock.monotonic()
        self._set_last_reason(reason)
        self.boot_mode.emit(mode=new, reset=reset, reason=reason)
        if self._boot_loop_boots:
            self.boot_loop.emit(boots=self._boot_loop_boots, window_s=self.settings.boot_loop_window_s)
        if old != new:
            self.mode_changed.emit(old=old, new=new, reason=reason)
            if new == SAFE:
                self._count_safe_entry()
        self._apply_outputs(new, entering=True)
        self._notify(BOOT, new, reason)

    async def shutdown(self) -> None:
        """A deliberate stop ends this boot well: it does not count towards a boot loop (a stop
        after a software error does: a crash loop must trip the protection)."""
        if self.ctx.state.get("shutdown_reason") not in UNCLEAN_RESETS:
            self.ctx.state.set(STATE_LAST_GOOD_BOOT, self.ctx.state.boot_count)

    # -- transitions --------------------------------------------------------------------------
    def enter(self, new: str, reason: str, cause: str = CAUSE_COMMAND) -> bool:
        """Change mode now (persisted on the next save); False when already in ``new``."""
        old = self.current
        if new not in MODES:
            raise ValueError(f"unknown mode {new!r} (modes: {', '.join(MODES)})")
        if new == old:
            return False
        state = self.ctx.state
        state.set(STATE_MODE, new)
        if new == SAFE:
            state.set(STATE_CAUSE, cause)
            self._count_safe_entry()
        if new == DETUMBLE:
            state.set(STATE_PREVIOUS, old)
        self._entered_at = self.ctx.clock.monotonic()
        self._low_since = self._recover_since = None
        if cause == CAUSE_COMMAND:  # the operators took over: automatic recovery starts afresh
            self._recoveries.clear()
            self._recovery_latched = False
        self._set_last_reason(reason)
        self.mode_changed.emit(old=old, new=new, reason=reason)
        if old == SAFE:
            self._apply_outputs(SAFE, entering=False)
        if new == SAFE:
            self._apply_outputs(SAFE, entering=True)
        self._notify(old, new, reason)
        self._dirty = True
        return True

    def _count_safe_entry(self) -> None:
        count = int(self.ctx.state.get(STATE_SAFE_ENTRIES, 0) or 0) + 1
        self.ctx.state.set(STATE_SAFE_ENTRIES, count)

    def _set_last_reason(self, reason: str) -> None:
        self._last_reason = reason[:60]

    def _notify(self, old: str, new: str, reason: str) -> None:
        for listener in self._listeners:
            try:
                listener(old, new, reason)
            except Exception:  # a listener's bug must not stop the mode change
                log.exception("mode listener %r failed", listener)

    def _apply_outputs(self, mode: str, entering: bool) -> None:
        """SAFE switches the configured outputs off; leaving SAFE puts them back to their initial level."""
        if mode != SAFE or not self.settings.safe_off_outputs or self._gpio is None:
            return
        self._gpio.open()  # idempotent; lines are requested lazily on the loop
        for name in self.settings.safe_off_outputs:
            line = self._gpio.outputs[name]
            level = False if entering else bool(line.initial)
            try:
                line.set(level)
            except (OSError, RuntimeError) as exc:
                self.output_failed.emit(output=name, state="on" if level else "off", error=str(exc)[:80])

    # -- the periodic FDIR cycle ----------------------------------------------------------------
    def read_battery(self) -> BatteryReading:
        """The latest battery voltage if FDIR may act on it, else why not."""
        now = self.ctx.clock.seconds_since_boot()
        if self._battery_id is None:
            return BatteryReading(None, now, "no battery channel")
        telemetry = self.ctx.telemetry
        sample = telemetry.latest(self._battery_id)
        if sample is None:
            return BatteryReading(None, now, "no reading yet")
        age = now - sample.stamp.seconds
        if age > self.settings.max_reading_age_s:
            return BatteryReading(None, now, f"stale: {age:.0f} s old")
        for channel_id, usable in self._battery_status:
            status = telemetry.latest(channel_id)
            if status is not None and bool(status.value) != usable:
                return BatteryReading(None, now, "flagged invalid by its sensor")
        volts = sample.value
        low, high = self.settings.plausible_v
        if not isinstance(volts, int | float) or not low <= volts <= high:
            return BatteryReading(None, now, f"implausible {volts!r} V")
        return BatteryReading(float(volts), sample.stamp.seconds)

    async def cycle(self) -> None:
        """Once a second: boot bookkeeping, battery FDIR, DETUMBLE timeout, telemetry, persistence."""
        if self._boot_pending is not None:
            pending, self._boot_pending = self._boot_pending, None
            self._announce_boot(*pending)
        self._check_boot_proven()
        reading = self.read_battery()
        self._battery(reading)
        self._check_detumble_timeout()
        self._publish(reading)
        if self._dirty:
            self._dirty = False
            await self.ctx.state.save()

    def _check_boot_proven(self) -> None:
        if self._boot_proven or self.ctx.clock.seconds_since_boot() < self.settings.boot_loop_window_s:
            return
        self._boot_proven = True
        self.ctx.state.set(STATE_LAST_GOOD_BOOT, self.ctx.state.boot_count)
        self._dirty = True

    def _battery(self, reading: BatteryReading) -> None:
        if reading.volts is None:
            if self._battery_id is None:
                return
            if reading.problem != "no reading yet":
                self.battery_unusable.emit(why=reading.problem)
            # stale/invalid: neither starts nor ends a dwell (a long gap restarts it, below); but
            # flying blind on power for long is itself a reason for SAFE
            blind_for = reading.at - (self._last_usable_at or 0.0)
            limit = self.settings.safe_without_battery_s
            if limit and self.current != SAFE and blind_for >= limit:
                self.enter(SAFE, f"no usable battery reading for {blind_for:.0f} s ({reading.problem})"[:60],
                           CAUSE_BATTERY)
            return
        volts, at, s = reading.volts, reading.at, self.settings
        if self._last_usable_at is not None and at - self._last_usable_at > s.max_reading_age_s:
            # the condition was not observed for a while: a dwell must be seen again in full
            self._low_since = self._recover_since = None
        self._last_usable_at = at
        mode = self.current
        if volts < s.safe_enter_v:
            self._recover_since = None
            if self._low_since is None:
                self._low_since = at
            if mode != SAFE and at - self._low_since >= s.dwell_s:
                self.enter(SAFE, f"battery {volts:.2f} V < {s.safe_enter_v:.2f} V for "
                                 f"{at - self._low_since:.0f} s", CAUSE_BATTERY)
            return
        self._low_since = None
        if volts <= s.safe_exit_v:
            self._recover_since = None  # the hysteresis band: nothing changes here
            return
        if not (mode == SAFE and s.auto_recover and self.ctx.state.get(STATE_CAUSE) == CAUSE_BATTERY):
            self._recover_since = None
            return
        if self._recover_since is None:
            self._recover_since = at
        if at - self._recover_since >= s.recover_dwell_s:
            # a pack that recovers at rest and sags under load would cycle for ever: latch off
            self._recoveries = [t for t in self._recoveries if at - t < s.recovery_window_s]
            if len(self._recoveries) >= s.max_auto_recoveries:
                if not self._recovery_latched:
                    self._recovery_latched = True
                    self.auto_recover_latched.emit(recoveries=len(self._recoveries),
                                                   window_s=s.recovery_window_s)
                return
            self._recoveries.append(at)
            self.enter(NOMINAL, f"battery {volts:.2f} V > {s.safe_exit_v:.2f} V for "
                                f"{at - self._recover_since:.0f} s", CAUSE_BATTERY)

    def _check_detumble_timeout(self) -> None:
        if self.current != DETUMBLE:
            return
        elapsed = self.ctx.clock.monotonic() - self._entered_at
        if elapsed >= self.settings.detumble_timeout_s:
            back = str(self.ctx.state.get(STATE_PREVIOUS) or SAFE)
            self.enter(back if back in (SAFE, NOMINAL) else SAFE, f"detumble timeout after {elapsed:.0f} s",
                       str(self.ctx.state.get(STATE_CAUSE) or CAUSE_COMMAND))

    def _publish(self, reading: BatteryReading) -> None:
        state, now = self.ctx.state, self.ctx.clock.monotonic()
        at = reading.at
        self._set_if_changed("mode", self.current)
        self._set_if_changed("safe_cause", str(state.get(STATE_CAUSE) or ""))
        self._set_if_changed("last_reason", self._last_reason)
        self._set_if_changed("safe_entries", int(state.get(STATE_SAFE_ENTRIES, 0) or 0))
        self._set_if_changed("unproven_boots",
                             0 if self._boot_proven else min(state.boot_count - int(state.get(STATE_LAST_GOOD_BOOT)),
                                                             0xFFFF))
        self._set_if_changed("auto_recover", self.settings.auto_recover and not self._recovery_latched)
        self._set_if_changed("battery_usable", reading.volts is not None)
        if reading.volts is not None:
            self.battery_v.set(reading.volts)
        self.time_in_mode.set(now - self._entered_at)
        self.low_for_s.set(0.0 if self._low_since is None else max(0.0, at - self._low_since))
        self.recover_for_s.set(0.0 if self._recover_since is None else max(0.0, at - self._recover_since))

    def _set_if_changed(self, channel: str, value: Any) -> None:
        if self._published.get(channel, ...) != value:
            self._published[channel] = value
            getattr(self, channel).set(value)

    # -- commands -----------------------------------------------------------------------------
    def _refusal(self, target: str) -> str | None:
        """Why the ground may not enter ``target`` now (the battery must allow it), or None."""
        if target not in MODES:
            return f"unknown mode {target!r} (modes: {', '.join(MODES)})"
        if target == SAFE or self._battery_id is None:
            return None
        reading = self.read_battery()
        need = self.settings.safe_exit_v if target == NOMINAL else self.settings.safe_enter_v
        which = "safe_exit_v" if target == NOMINAL else "safe_enter_v"
        if reading.volts is None:
            return f"no usable battery reading ({reading.problem}); FORCE_MODE overrides"
        if reading.volts < need:
            return f"battery {reading.volts:.2f} V below {which} {need:.2f} V"
        return None

    def check_command(self, name: str, args: list[Any]) -> str | None:
        if name == "SET_MODE":
            return self._refusal(str(args[0]).strip().upper())
        if name == "FORCE_MODE" and str(args[0]).strip().upper() not in MODES:
            return f"unknown mode {args[0]!r} (modes: {', '.join(MODES)})"
        return None

    @command(args=[Arg("mode", STRING(12), doc="SAFE, NOMINAL or DETUMBLE")],
             doc="Change the operating mode; NOMINAL needs the battery above safe_exit_v, DETUMBLE above "
                 "safe_enter_v. Also clears a boot-loop or reset SAFE.")
    async def set_mode(self, mode: str) -> None:
        target = mode.strip().upper()
        why = self._refusal(target)  # the battery may have changed since the verdict
        if why:
            raise CommandFailure(why)
        if not self.enter(target, "commanded", CAUSE_COMMAND) and target == SAFE:
            # SAFE acknowledged by the ground: now the operators' SAFE (no automatic recovery)
            self.ctx.state.set(STATE_CAUSE, CAUSE_COMMAND)
            self._dirty = True
        await self._save_now()

    @command(args=[Arg("mode", STRING(12), doc="SAFE, NOMINAL or DETUMBLE")],
             doc="Change the mode without the battery check (failed battery sensor); FDIR stays armed.")
    async def force_mode(self, mode: str) -> None:
        self.enter(mode.strip().upper(), "forced by command", CAUSE_COMMAND)
        await self._save_now()

    async def _save_now(self) -> None:
        self._publish(self.read_battery())
        if self._dirty:
            self._dirty = False
            await self.ctx.state.save()


def build_modes(sat: Satellite) -> None:
    """Subsystem entry point (flightsw.app.SUBSYSTEMS): the mode manager, configured by ``[modes]``."""
    sat.add(ModeManager(parse_settings(sat.config)))
