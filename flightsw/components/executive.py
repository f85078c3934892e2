"""The executive: boot and time bookkeeping, and the framework's own events.

It reports what the team will need to diagnose a satellite that rebooted (boot count, reset
reason, uptime, service crashes, stale heartbeats, store problems) and owns the commands that act
on the whole flight software: set spacecraft UTC, restart the flight software cleanly.
"""

from __future__ import annotations

import asyncio
from typing import Any

from flightsw.core.component import Arg, Channel, Component, Event, command
from flightsw.core.enums import ResetReason, TimeQuality
from flightsw.core.events import Severity
from flightsw.core.timekeeping import STATE_KEY as TIME_STATE_KEY
from flightsw.core.timekeeping import checkpoint_of
from flightsw.core.types import BOOL, F64, STRING, U8, U32


class Executive(Component):
    """Boot, time and framework health reporting."""

    boot_count = Channel(U32, doc="Boots since first power-on (persisted)", update="on_change")
    reset_reason = Channel(STRING(16), doc="Why the previous run ended", update="on_change")
    uptime = Channel(F64, unit="s", doc="Seconds since this boot")
    utc = Channel(F64, unit="s", doc="Spacecraft UTC (Unix seconds), 0 when unknown")
    utc_valid = Channel(BOOL, doc="True when spacecraft UTC is known", update="on_change")
    met = Channel(F64, unit="s", doc="Mission elapsed time: seconds run since the first boot, across boots")
    time_quality = Channel(U8, doc="UTC quality code: 0 UNKNOWN, 1 DEGRADED, 2 SYSTEM, 3 GROUND_SET, 4 GPS",
                           update="on_change")
    services_failed = Channel(U32, doc="Services marked failed after repeated crashes", update="on_change")
    service_restarts = Channel(U32, doc="Service restarts since boot", update="on_change")
    events_emitted = Channel(U32, doc="Events emitted since boot", update="on_change")
    events_suppressed = Channel(U32, doc="Events suppressed by throttles since boot", update="on_change")
    records_bytes = Channel(U32, unit="B", doc="Bytes held by the record log", update="on_change")
    watchdog_withheld = Channel(U32, doc="Health checks that withheld the watchdog pet", update="on_change")

    booted = Event(Severity.INFO, "Boot {boot} (reset reason {reason})", throttle=None)
    service_crashed = Event(Severity.WARNING, "Service {service} crashed: {error}; restarting", throttle=(10, 60.0))
    service_failed = Event(Severity.CRITICAL, "Service {service} failed permanently: {error}", throttle=None)
    health_stale = Event(Severity.ERROR, "Watchdog withheld: no progress from {tasks}", throttle=(3, 60.0))
    store_problem = Event(Severity.WARNING, "Store {store}: {detail}", throttle=(10, 60.0))
    records_recovered = Event(Severity.WARNING, "Record log: torn tail of {bytes} bytes dropped", throttle=None)
    time_set = Event(Severity.INFO, "Spacecraft UTC set to {utc:.3f} (was {previous}, step {step} s)",
                     throttle=(5, 60.0))
    overrun = Event(Severity.WARNING, "Rate group {group} overran: cycle {cycle_ms:.1f} ms", throttle=(5, 60.0))
    member_error = Event(Severity.WARNING, "Rate group {group} member {member} raised {error}", throttle=(5, 60.0))
    restart_requested = Event(Severity.WARNING, "Flight software restart commanded ({delay} s)", throttle=None)
    critical_service = Event(Severity.CRITICAL, "Critical service down for {grace_s:.0f} s, watchdog pets stopped: "
                             "{detail}", throttle=None)
    critical_recovered = Event(Severity.WARNING, "Critical services healthy again: watchdog pets resumed",
                               throttle=None)
    previous_critical = Event(Severity.WARNING, "Previous run was reset by the health monitor: {detail}",
                              throttle=None)
    reboot_requested = Event(Severity.CRITICAL, "Flight software restart requested ({reason}): {detail}",
                             throttle=None)

    def __init__(self, name: str = "exec", base_id: int = 0x0001) -> None:
        super().__init__(name, base_id)
        self.stop_requested: asyncio.Event | None = None

    def setup(self) -> None:
        self.ctx.rate_group("slow").add("exec.telemetry", self.publish)

    def publish(self) -> None:
        ctx = self.ctx
        self.boot_count.set(ctx.state.boot_count)
        self.reset_reason.set(str(ctx.state.get("reset_reason"))[:16])
        self.uptime.set(ctx.clock.seconds_since_boot())
        utc = ctx.clock.utc()
        self.utc.set(utc or 0.0)
        self.utc_valid.set(utc is not None)
        self.met.set(ctx.clock.met())
        self.time_quality.set(ctx.clock.quality.code)
        services = ctx.supervisor.services.values()
        self.services_failed.set(sum(1 for s in services if s.state.name == "FAILED"))
        self.service_restarts.set(sum(s.restarts for s in services))
        self.events_emitted.set(ctx.events.emitted)
        self.events_suppressed.set(ctx.events.suppressed)
        self.records_bytes.set(min(ctx.records.total_bytes(), 0xFFFFFFFF))
        self.watchdog_withheld.set(ctx.health.withheld)

    @command(args=[Arg("utc", F64, range=(946684800.0, 4102444800.0), doc="Unix seconds (2000..2100)")],
             doc="Set spacecraft UTC (quality GROUND_SET); carried over resets as DEGRADED until set again.")
    async def set_time(self, utc: float) -> None:
        clock = self.ctx.clock
        previous = clock.utc()
        clock.set_utc(utc, TimeQuality.GROUND_SET)
        point = checkpoint_of(clock.met(), clock.utc(), clock.quality)
        self.ctx.state.set(TIME_STATE_KEY, point.to_dict())
        await self.ctx.state.save()
        self.time_set.emit(utc=utc, previous="unknown" if previous is None else f"{previous:.3f}",
                           step="?" if previous is None else f"{utc - previous:+.3f}")

    @command(args=[Arg("delay", U8, range=(0, 60), doc="Seconds before the restart")],
             doc="Stop the flight software cleanly; the service manager starts it again.")
    async def restart(self, delay: int) -> None:
        self.restart_requested.emit(delay=delay)
        self.ctx.state.set("pending_shutdown_reason", ResetReason.COMMANDED.value)
        if self.stop_requested is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(delay, self.stop_requested.set)

    def note_store_problems(self, store: str, problems: list[str]) -> None:
        for p in problems:
            self.store_problem.emit(store=store, detail=p[:100])

    def describe(self) -> dict[str, Any]:
        return {"boot": self.ctx.state.boot_count, "reset_reason": self.ctx.state.get("reset_reason")}
