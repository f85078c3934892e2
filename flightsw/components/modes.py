"""Mode manager with battery FDIR: SAFE, NOMINAL and DETUMBLE, persisted, with boot-loop protection.

The rules themselves (boot mode, dwell, hysteresis, the auto-recovery latch, the DETUMBLE timeout,
which commands the battery allows) are plain functions in ``flightsw.components.fdir``, tested
without an event loop. This component is the thin part around them: it reads the state store and
the battery telemetry, applies what the rules decide (persist, emit events, switch the SAFE-off
outputs, tell listeners) and offers the ground's commands.

* The mode lives in the state store (``state["mode"]``), the single source every other part reads
  (beacon, beacon period), and survives reboots. The payload gate and the mode listeners are
  offered on typed ports (``PAYLOAD_GATE``, ``MODES``); the SAFE-off outputs come from the
  hardware subsystem's ``OUTPUTS`` port.
* Boot-loop protection counts *boots*, not wall-clock times: ``modes.last_good_boot`` is the last
  boot that ran ``boot_loop_window_s`` or was followed by a deliberate stop, and the framework
  saves the boot count before anything else runs, so even a crash during start-up is counted.
* Automatic recovery (``auto_recover``) only leaves a SAFE that the battery FDIR itself entered:
  a SAFE commanded by the ground, caused by an unexpected reset or by a boot loop is the
  operators' to clear.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flightsw.app import Subsystem
from flightsw.components.fdir import (
    BOOT,
    CAUSE_BATTERY,
    CAUSE_BOOT_LOOP,
    CAUSE_COMMAND,
    CAUSE_RESET,
    CAUSE_WATCHPOINT,
    DETUMBLE,
    MODES,
    NO_BATTERY_CHANNEL,
    NOMINAL,
    SAFE,
    UNCLEAN_RESETS,
    BatteryFdir,
    BatteryReading,
    Response,
    WatchPoint,
    WatchState,
    WatchStep,
    WatchTable,
    assess_reading,
    counts_as_good_stop,
    decide_boot,
    detumble_timeout,
    mode_refusal,
    payload_refusal,
    validate_watch_table,
    watch_step,
)
from flightsw.config import ConfigError, MissionConfig, ModesSection
from flightsw.core.component import (
    Arg,
    BoundChannel,
    Channel,
    CommandFailure,
    Component,
    Counter,
    CounterSet,
    Event,
    command,
)
from flightsw.core.enums import ResetReason
from flightsw.core.events import Severity
from flightsw.core.ports import MODES as MODES_PORT
from flightsw.core.ports import (
    OUTPUTS,
    PAYLOAD_GATE,
    REBOOT,
    ModeListener,
    OutputBank,
    RebootRequest,
)
from flightsw.core.tables import Table, TableDef
from flightsw.core.types import BOOL, F32, STRING, U8, U16, U32

if TYPE_CHECKING:
    from flightsw.app import Satellite

log = logging.getLogger("flightsw.modes")

__all__ = ["BOOT", "CAUSE_BATTERY", "CAUSE_BOOT_LOOP", "CAUSE_COMMAND", "CAUSE_RESET", "DETUMBLE", "MODES",
           "NOMINAL", "SAFE", "UNCLEAN_RESETS", "BatteryReading", "ModeManager", "ModeSettings",
           "build_modes", "parse_settings"]

STATE_MODE = "mode"
STATE_CAUSE = "modes.safe_cause"
STATE_PREVIOUS = "modes.previous"  # the mode DETUMBLE returns to when it times out
STATE_LAST_GOOD_BOOT = "modes.last_good_boot"
STATE_SAFE_ENTRIES = "modes.safe_entries"
STATE_ISOLATED = "modes.isolated"  # watch-point name -> what it isolated (survives reboots)
WATCH_TABLE = "modes.watchpoints"
#: a POWER_CYCLE response holds the line off for at least this long (the next 1 s FDIR cycle
#: switches it on again), long enough for a part's supply capacitors to drain
POWER_OFF_S = 0.5


# --- configuration -----------------------------------------------------------------------------


#: The ``[modes]`` section of the config schema is the component's settings: declared, defaulted
#: and validated once (ranges, hysteresis, outputs) in flightsw/config.py.
ModeSettings = ModesSection


def parse_settings(config: MissionConfig) -> ModeSettings:
    """``[modes]`` as settings; the table (ranges, hysteresis, outputs) is validated with the config."""
    return config.modes


# --- the component ---------------------------------------------------------------------------

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

    watch_firings = Counter("Watch-point responses run since boot (isolations included)")
    watch_active = Channel(U8, doc="Watch-points of the active table that are enabled", update="on_change")
    watch_isolated = Channel(U8, doc="Watch-points whose part or service is isolated", update="on_change")
    isolated = Channel(STRING(60), doc="Isolated watch-points (name:output or name:service)", update="on_change")
    watch_yellow = Event(Severity.WARNING, "Watch-point {name}: {channel} yellow, {detail}", throttle=(5, 600.0))
    watch_fired = Event(Severity.ERROR, "Watch-point {name}: {channel} {level}, {detail}; response {response} "
                        "{target}", throttle=(10, 600.0))
    watch_cleared = Event(Severity.INFO, "Watch-point {name}: {channel} back in limits", throttle=(5, 600.0))
    part_isolated = Event(Severity.CRITICAL, "Watch-point {name}: {target} isolated after {cures} {response} "
                          "responses that did not hold; no further automatic responses", throttle=None)
    response_failed = Event(Severity.WARNING, "Watch-point {name}: response {response} failed: {error}",
                            throttle=(5, 600.0))
    isolation_cleared = Event(Severity.INFO, "Watch-point {name}: isolation cleared by command", throttle=None)

    def __init__(self, settings: ModeSettings, name: str = "modes") -> None:
        super().__init__(name, settings.base_id)
        self.settings = settings
        self.fdir = BatteryFdir(settings)
        self._listeners: list[ModeListener] = []
        self._battery_id: int | None = None
        self._battery_status: list[tuple[int, bool]] = []  # (channel id, value meaning "usable")
        self._gpio: OutputBank | None = None  # the OUTPUTS port (the hardware's GPIO bank), if any
        self._entered_at = 0.0
        self._boot_pending: tuple[str, str, str, str] | None = None  # old, new, reason, reset
        self._boot_proven = False
        self._dirty = False
        self._published: dict[int, Any] = {}
        self._last_reason = ""
        self._boot_loop_boots = 0  # > 0 when this boot tripped boot-loop protection
        self.watch_stats = CounterSet(self)
        self._reboot: RebootRequest | None = None  # the REBOOT port
        self.table: Table[WatchTable] | None = None
        # the active table's entries with their channel ids and states (by name across tables)
        self._watch: list[tuple[WatchPoint, int, WatchState]] = []
        self._power_on_at: dict[str, float] = {}  # output -> when a POWER_CYCLE switches it on

    # -- wiring -------------------------------------------------------------------------------
    def add_listener(self, listener: ModeListener) -> None:
        """Call ``listener(old, new, reason)`` on every change (the boot's first one has old "BOOT")."""
        self._listeners.append(listener)

    def use_outputs(self, outputs: OutputBank) -> None:
        """Consumer of the OUTPUTS port: the lines SAFE switches off and watch-points power-cycle."""
        self._gpio = outputs

    def use_reboot(self, reboot: RebootRequest) -> None:
        """Consumer of the REBOOT port: the watch-points' REBOOT response."""
        self._reboot = reboot

    def setup(self) -> None:
        self._find_battery()
        missing = [n for n in self.settings.safe_off_outputs if self._gpio is None or n not in self._gpio.outputs]
        if missing:
            raise ConfigError(f"modes.safe_off_outputs: output(s) {missing} not built by the hardware layer")
        self._decide_boot_mode()
        default = WatchTable(watchpoints=list(self.settings.watchpoints))
        try:
            self.validate_watch_table(default)
        except ValueError as exc:
            raise ConfigError(f"modes.{exc}") from None
        self.table = self.ctx.tables.register(TableDef(
            WATCH_TABLE, WatchTable, default,
            validate=self.validate_watch_table, on_activate=self._use_watch_table,
            doc="Watch-points: channel, check, persistence, response (docs/operations.md)"))
        self.ctx.rate_group("slow").add(f"{self.name}.fdir", self.cycle)
        # the mode manager is a critical service: its cycle is its health ping
        self._alive = self.ctx.health.register(f"{self.name}.fdir", deadline=10.0)

    def _find_battery(self) -> None:
        """The configured battery channel (by name, from the config) and its sensor's status channels."""
        name = self.settings.battery_channel_name
        if not name:
            return
        found = self.ctx.find_channel(name)
        if found is None:
            if self.settings.battery_channel_required:
                raise ConfigError(f"modes.battery_channel: no telemetry channel named {name!r}")
            log.warning("no channel %s: battery FDIR off", name)
            return
        comp, self._battery_id = found
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
        """The imaging payload gate (PAYLOAD_GATE port): captures run in NOMINAL only."""
        return payload_refusal(self.current)

    # -- boot ---------------------------------------------------------------------------------
    def _decide_boot_mode(self) -> None:
        state = self.ctx.state
        d = decide_boot(state.boot_count, str(state.get("reset_reason")), state.get(STATE_LAST_GOOD_BOOT),
                        state.get(STATE_MODE, SAFE), state.get(STATE_CAUSE), self.settings)
        state.set(STATE_LAST_GOOD_BOOT, d.last_good_boot)
        self._boot_loop_boots = d.boot_loop_boots
        state.set(STATE_MODE, d.mode)
        state.set(STATE_CAUSE, d.cause)
        # the time in mode starts on the first cycle, on the running loop's clock (a satellite
        # may be built before its loop runs, or on another thread)
        self._boot_pending = (d.stored, d.mode, d.reason, str(state.get("reset_reason")))
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
        if counts_as_good_stop(self.ctx.state.get("shutdown_reason")):
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
        self.fdir.mode_changed(cause)
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
            return BatteryReading(None, now, NO_BATTERY_CHANNEL)
        telemetry = self.ctx.telemetry
        sample = telemetry.latest(self._battery_id)
        vetoed = False
        for channel_id, usable in self._battery_status:
            status = telemetry.latest(channel_id)
            if status is not None and bool(status.value) != usable:
                vetoed = True
        return assess_reading(now, None if sample is None else (sample.value, sample.stamp.seconds), vetoed,
                              self.settings)

    async def cycle(self) -> None:
        """Once a second: boot bookkeeping, battery FDIR, DETUMBLE timeout, telemetry, persistence."""
        if self._boot_pending is not None:
            pending, self._boot_pending = self._boot_pending, None
            self._announce_boot(*pending)
        self._check_boot_proven()
        reading = self.read_battery()
        self._battery(reading)
        self._check_detumble_timeout()
        self._watchpoints()
        self._publish(reading)
        self._alive.beat()
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
        if self._battery_id is None:
            return
        step = self.fdir.step(reading, self.current, self.ctx.state.get(STATE_CAUSE))
        if step.unusable:
            self.battery_unusable.emit(why=step.unusable)
        if step.latched_after:
            self.auto_recover_latched.emit(recoveries=step.latched_after, window_s=self.settings.recovery_window_s)
        if step.transition is not None:
            self.enter(step.transition.mode, step.transition.reason, step.transition.cause)

    def _check_detumble_timeout(self) -> None:
        mode = self.current
        if mode != DETUMBLE:
            return
        change = detumble_timeout(mode, self.ctx.clock.monotonic() - self._entered_at,
                                  self.ctx.state.get(STATE_PREVIOUS), self.ctx.state.get(STATE_CAUSE),
                                  self.settings)
        if change is not None:
            self.enter(change.mode, change.reason, change.cause)

    # -- watch-points ---------------------------------------------------------------------------
    def _channel_id(self, name: str) -> int | None:
        owner, _, channel = name.partition(".")
        comp = next((c for c in self.ctx.components() if c.name == owner), None)
        decl = comp.declarations.get(channel) if comp is not None else None
        return comp.item_id(decl) if comp is not None and isinstance(decl, Channel) else None

    def validate_watch_table(self, table: WatchTable) -> None:
        """The table's own rules, then the names it uses must exist on this satellite."""
        validate_watch_table(table)
        outputs = self._gpio.outputs if self._gpio is not None else {}
        services = self.ctx.supervisor.services
        for i, wp in enumerate(table.watchpoints):
            where = f"watchpoints[{i}] ({wp.name})"
            if self._channel_id(wp.channel) is None:
                raise ValueError(f"{where}: no telemetry channel {wp.channel!r}")
            if wp.response is Response.POWER_CYCLE and wp.output not in outputs:
                raise ValueError(f"{where}: no gpio_output {wp.output!r} (have: {sorted(outputs)})")
            if wp.response is Response.RESTART_SERVICE and wp.service not in services:
                raise ValueError(f"{where}: no service {wp.service!r}")
            if wp.response is Response.REBOOT and self._reboot is None:
                raise ValueError(f"{where}: REBOOT needs the satellite's reboot port")

    def _use_watch_table(self, table: WatchTable) -> None:
        """A table became active: entries keep their state by name; isolation is persisted."""
        old = {wp.name: state for wp, _cid, state in self._watch}
        isolated = self.ctx.state.get(STATE_ISOLATED) or {}
        watch = []
        for wp in table.watchpoints:
            cid = self._channel_id(wp.channel)
            if cid is None:  # validated before: only a stored table of an older build gets here
                continue
            state = old.get(wp.name) or WatchState()
            state.isolated = wp.name in isolated
            watch.append((wp, cid, state))
        self._watch = watch

    def _watchpoints(self) -> None:
        now = self.ctx.clock.seconds_since_boot()
        mono = self.ctx.clock.monotonic()
        for output, due in list(self._power_on_at.items()):
            if mono >= due:
                del self._power_on_at[output]
                self._switch(output, True, "power cycle")
        telemetry = self.ctx.telemetry
        for wp, cid, state in self._watch:
            sample = telemetry.latest(cid)
            step = watch_step(wp, state, None if sample is None else (sample.value, sample.stamp.seconds), now)
            self._on_watch_step(wp, state, step)

    def _target(self, wp: WatchPoint) -> str:
        return {Response.MODE: wp.mode.upper(), Response.POWER_CYCLE: wp.output,
                Response.RESTART_SERVICE: wp.service}.get(wp.response, "")

    def _on_watch_step(self, wp: WatchPoint, state: WatchState, step: WatchStep) -> None:
        if step.yellow:
            self.watch_yellow.emit(name=wp.name, channel=wp.channel, detail=step.detail[:60])
        if step.cleared:
            self.watch_cleared.emit(name=wp.name, channel=wp.channel)
        if step.isolate:
            self.watch_stats.inc("watch_firings")
            isolated = dict(self.ctx.state.get(STATE_ISOLATED) or {})
            isolated[wp.name] = self._target(wp)
            self.ctx.state.set(STATE_ISOLATED, isolated)
            self._dirty = True
            self.part_isolated.emit(name=wp.name, target=self._target(wp), cures=state.cures,
                                    response=wp.response.value)
        if not step.fire:
            return
        self.watch_stats.inc("watch_firings")
        self.watch_fired.emit(name=wp.name, channel=wp.channel, level=step.level.value, detail=step.detail[:60],
                              response=wp.response.value, target=self._target(wp))
        try:
            self._respond(wp, step)
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            self.response_failed.emit(name=wp.name, response=wp.response.value, error=str(exc)[:80])

    def _respond(self, wp: WatchPoint, step: WatchStep) -> None:
        """Carry out a watch-point's response (none of them waits: the cycle goes on)."""
        if wp.response is Response.MODE:
            self.enter(wp.mode.upper(), f"watch-point {wp.name}: {step.detail}"[:60], CAUSE_WATCHPOINT)
        elif wp.response is Response.POWER_CYCLE:
            self._switch(wp.output, False, "power cycle")
            self._power_on_at[wp.output] = self.ctx.clock.monotonic() + POWER_OFF_S
        elif wp.response is Response.RESTART_SERVICE:
            self.ctx.supervisor.restart(wp.service)
        elif wp.response is Response.REBOOT:
            if self._reboot is None:
                raise RuntimeError("no reboot port")
            self._reboot(ResetReason.FDIR, f"watch-point {wp.name}: {step.detail}")

    def _switch(self, output: str, on: bool, why: str) -> None:
        if self._gpio is None:
            raise RuntimeError(f"no outputs to {why}")
        self._gpio.open()
        try:
            self._gpio.outputs[output].set(on)
        except (OSError, RuntimeError) as exc:
            self.output_failed.emit(output=output, state="on" if on else "off", error=str(exc)[:80])

    @command(args=[Arg("name", STRING(24), doc="Watch-point name")],
             doc="Clear a watch-point's isolation: its automatic responses resume.")
    async def clear_isolation(self, name: str) -> None:
        isolated = dict(self.ctx.state.get(STATE_ISOLATED) or {})
        if name not in isolated:
            raise CommandFailure(f"watch-point {name!r} is not isolated (isolated: {sorted(isolated) or 'none'})")
        del isolated[name]
        self.ctx.state.set(STATE_ISOLATED, isolated)
        for wp, _cid, state in self._watch:
            if wp.name == name:
                state.isolated, state.cures, state.violations = False, 0, 0
        self.isolation_cleared.emit(name=name)
        self._dirty = True
        await self._save_now()

    def _publish(self, reading: BatteryReading) -> None:
        state, now = self.ctx.state, self.ctx.clock.monotonic()
        at = reading.at
        self._set_if_changed(self.mode, self.current)
        self._set_if_changed(self.safe_cause, str(state.get(STATE_CAUSE) or ""))
        self._set_if_changed(self.last_reason, self._last_reason)
        self._set_if_changed(self.safe_entries, int(state.get(STATE_SAFE_ENTRIES, 0) or 0))
        self._set_if_changed(self.unproven_boots,
                             0 if self._boot_proven else min(state.boot_count - int(state.get(STATE_LAST_GOOD_BOOT)),
                                                             0xFFFF))
        self._set_if_changed(self.auto_recover, self.settings.auto_recover and not self.fdir.latched)
        self._set_if_changed(self.battery_usable, reading.volts is not None)
        if reading.volts is not None:
            self.battery_v.set(reading.volts)
        self.time_in_mode.set(now - self._entered_at)
        self.low_for_s.set(self.fdir.low_for(at))
        self.recover_for_s.set(self.fdir.recover_for(at))
        isolated = self.ctx.state.get(STATE_ISOLATED) or {}
        self.watch_active.set(min(sum(1 for wp, _c, _s in self._watch if wp.enabled), 0xFF))
        self.watch_isolated.set(min(len(isolated), 0xFF))
        self.isolated.set(",".join(f"{k}:{v}" for k, v in sorted(isolated.items()))[:60])
        self.watch_stats.publish()

    def _set_if_changed(self, channel: BoundChannel, value: Any) -> None:
        if self._published.get(channel.id, ...) != value:
            self._published[channel.id] = value
            channel.set(value)

    # -- commands -----------------------------------------------------------------------------
    def _refusal(self, target: str) -> str | None:
        """Why the ground may not enter ``target`` now (the battery must allow it), or None."""
        needs_battery = target in (NOMINAL, DETUMBLE) and self._battery_id is not None
        return mode_refusal(target, self.read_battery() if needs_battery else None, self.settings)

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
    """Subsystem builder (the ``modes`` entry point): the mode manager, configured by ``[modes]``;
    it offers the MODES and PAYLOAD_GATE ports and uses the hardware's OUTPUTS when there are any."""
    manager = sat.add(ModeManager(parse_settings(sat.config)))
    sat.ports.provide(MODES_PORT, manager, by=manager.name)
    sat.ports.provide(PAYLOAD_GATE, manager.payload_refusal, by=manager.name)
    sat.ports.connect(OUTPUTS, manager.use_outputs, by=manager.name)
    sat.ports.connect(REBOOT, manager.use_reboot, by=manager.name)


SUBSYSTEM = Subsystem("modes", build_modes, order=90)
