"""Composition root: builds a satellite from a mission config and runs it.

Everything is wired here and nowhere else: stores are loaded (the boot counted first), the
framework components are created, the subsystems registered in the ``flightsw.subsystems``
entry-point group add theirs and declare which typed ports (flightsw.core.ports) they provide
and use, the ports are wired in ``finalize``, the dictionary is assembled, then the
supervisor runs the rate groups, the health monitor and every service in one task group until a
stop is requested (SIGTERM/SIGINT or command), after which stores are flushed and the watchdog is
told we stop on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, TypeVar

from flightsw.components.executive import Executive
from flightsw.components.rate_group_monitor import rate_group_monitor
from flightsw.components.sequencer import Sequencer
from flightsw.components.tables import TableService
from flightsw.config import ConfigError, MissionConfig
from flightsw.core import timekeeping
from flightsw.core.clock import SpacecraftClock, loop_time
from flightsw.core.commands import CommandDispatcher
from flightsw.core.component import Component, Event
from flightsw.core.context import ComponentContext
from flightsw.core.dictionary import Dictionary, DictionaryError
from flightsw.core.enums import ResetReason
from flightsw.core.events import EventInfo, EventLog, EventRecord
from flightsw.core.health import HealthMonitor, Ping
from flightsw.core.params import ParameterStore
from flightsw.core.ports import COMMANDS, OVERFLIGHTS, REBOOT, STORED_COMMANDS, Ports
from flightsw.core.records import RecordLog
from flightsw.core.scheduler import RateGroup
from flightsw.core.state import StateStore
from flightsw.core.supervisor import Service, ServiceState, Supervisor
from flightsw.core.tables import TableRegistry
from flightsw.core.telemetry import PacketDef, TelemetryDB
from flightsw.core.workers import Workers
from hal.watchdog import CompositeWatchdog, DevWatchdog, NullWatchdog, SystemdWatchdog, Watchdog

log = logging.getLogger("flightsw.app")

STORAGE_RESOURCE = "storage"
SHUTDOWN_BUDGET = 2.0  # seconds from stop request to flushed stores


class StartupError(RuntimeError):
    """The flight software cannot start in this environment (named in the message)."""


def build_watchdog_and_bite(config: MissionConfig) -> tuple[Watchdog, Callable[[], bool] | None]:
    """The configured watchdog, and for the simulated one the test of whether it has bitten
    (a real one resets the board instead: nothing in the process ever sees it expire)."""
    try:
        return _build_watchdog(config)
    except (RuntimeError, OSError) as exc:
        raise StartupError(f"watchdog.backend = {config.watchdog.backend!r}: {exc}") from exc


def _build_watchdog(config: MissionConfig) -> tuple[Watchdog, Callable[[], bool] | None]:
    backend = config.watchdog.backend
    if backend == "none":
        return NullWatchdog(), None
    if backend == "sim":
        from sim.watchdog import SimWatchdog

        dog = SimWatchdog()
        return dog, dog.expired
    if backend == "systemd":
        return SystemdWatchdog(), None
    if backend == "device":
        return DevWatchdog(config.watchdog.device), None
    return CompositeWatchdog(SystemdWatchdog(), DevWatchdog(config.watchdog.device)), None


#: the entry-point group subsystems register in (pyproject.toml ``[project.entry-points."flightsw.subsystems"]``)
SUBSYSTEM_GROUP = "flightsw.subsystems"
C = TypeVar("C", bound=Component)


@dataclass(frozen=True)
class Subsystem:
    """A part of the satellite that adds its components (and ports) from the mission config.

    Registered as an entry point in the ``flightsw.subsystems`` group, so a team adds one by
    installing its package, without editing this module. ``order`` is the build order, which is
    also the order the components run within a rate-group cycle: producers of telemetry (the
    link 10, hardware 20, update 30, imaging 40) before the fault management that reads it
    (modes 90). A builder that finds nothing to build in the config adds nothing.
    """

    name: str
    build: Callable[[Satellite], None]
    order: int = 50

    def __call__(self, sat: Satellite) -> None:
        self.build(sat)


class Satellite:
    def __init__(
        self,
        config: MissionConfig,
        *,
        watchdog: Watchdog | None = None,
        monotonic: Callable[[], float] = loop_time,
        utc_source: Callable[[], float] | None = None,
        subsystems: list[Subsystem] | list[Callable[[Satellite], None]] | None = None,
        offline: bool = False,
        ports: Ports | None = None,
        watchdog_expired: Callable[[], bool] | None = None,
    ) -> None:
        """``ports``: ports a harness provides before the subsystems are built (the simulator's
        camera scene). ``watchdog_expired``: with a simulated ``watchdog``, tells when it bit."""
        self.config = config
        # Built only to inspect (dictionary export): subsystems must not need secrets or hardware.
        self.offline = offline
        data = config.data_dir
        data.mkdir(parents=True, exist_ok=True)
        fsync = config.storage.fsync
        self.state = StateStore(data / "state", fsync=fsync)
        self.state.load()
        self.state.boot()
        # MET continues and UTC is carried over (DEGRADED) from the last time checkpoint
        resumed = timekeeping.resume(timekeeping.TimeCheckpoint.from_dict(self.state.get(timekeeping.STATE_KEY)),
                                     self.state.boot_count)
        if utc_source is None and config.time.utc_source == "system":
            import time

            utc_source = time.time
        self.clock = SpacecraftClock(self.state.boot_count, monotonic, utc_source, resumed.correlation,
                                     met_at_boot=resumed.met_at_boot)
        self.events = EventLog(self.clock)
        self.telemetry = TelemetryDB(self.clock)
        self.workers = Workers()
        self.records = RecordLog(data / "records", config.storage.records_segment_bytes,
                                 config.storage.records_max_bytes)
        self.params = ParameterStore(data / "params", fsync=fsync)
        self.tables = TableRegistry(data / "tables", fsync=fsync)
        if watchdog is None:
            watchdog, watchdog_expired = build_watchdog_and_bite(config)
        self.watchdog = watchdog
        self._watchdog_expired = watchdog_expired
        self.health = HealthMonitor(self.watchdog, self.clock.monotonic, config.watchdog.check_period,
                                    on_stale=self._on_stale, on_critical=self._on_critical,
                                    grace=config.watchdog.critical_grace_s)
        self.supervisor = Supervisor(on_crash=self._on_crash, on_failed=self._on_failed)
        self.fault_hooks: list[Callable[[Service, BaseException], None]] = []
        self.rate_groups = {name: RateGroup(name, hz, on_overrun=self._on_overrun,
                                            on_member_error=self._on_member_error)
                            for name, hz in config.scheduler.rate_groups.items()}
        self.components: list[Component] = []
        # The topology: components reach each other only through these typed ports (core/ports.py).
        self.ports = ports if ports is not None else Ports()
        self.ctx = ComponentContext(config, self.clock, self.telemetry, self.events, self.params, self.state,
                                    self.records, self.workers, self.supervisor, self.health, self.rate_groups,
                                    lambda: list(self.components), self.tables)
        self.stop_event = asyncio.Event()
        self.started = asyncio.Event()  # set once every service is running
        self.dictionary: Dictionary | None = None
        self.packets: list[PacketDef] = []
        self._finalized = False

        self.executive = Executive()
        self.executive.stop_requested = self.stop_event
        self.commands = CommandDispatcher()
        self.add(self.executive)
        self.add(self.commands)
        self.ports.provide(COMMANDS, self.commands, by=self.commands.name)
        self.ports.provide(REBOOT, self.request_reboot, by=self.executive.name)
        self.add(rate_group_monitor(self.rate_groups))
        # Stored commands are a framework service (like the dispatcher): every satellite has one.
        self.sequencer = self.add(Sequencer(config.sequencer))
        self.ports.provide(STORED_COMMANDS, self.sequencer, by=self.sequencer.name)
        self.ports.connect(COMMANDS, self.sequencer.use_commands, required=True, by=self.sequencer.name)
        self.ports.connect(OVERFLIGHTS, self.sequencer.use_overflights, by=self.sequencer.name)
        self.add(TableService())
        for subsystem in subsystems if subsystems is not None else load_subsystems():
            subsystem(self)

    # -- assembly ---------------------------------------------------------------------------
    def add(self, component: C) -> C:
        if self._finalized:
            raise RuntimeError("components must be added before the satellite is finalized")
        component.attach(self.ctx)
        self.components.append(component)
        return component

    def component(self, name: str) -> Component:
        for comp in self.components:
            if comp.name == name:
                return comp
        raise KeyError(name)

    def finalize(self) -> Dictionary:
        """Assemble the dictionary, load parameters, run every component's setup (once)."""
        if self._finalized:
            assert self.dictionary is not None
            return self.dictionary
        self.ports.wire()  # the one place providers meet consumers, before any setup
        for port, provider, consumers in self.ports.topology():
            log.debug("port %s: %s -> %s", port, provider or "(none)", ", ".join(consumers) or "(no consumer)")
        d = Dictionary.build(self.components)
        self.dictionary = d
        for cid in d.channels:
            self.telemetry.declare(cid)
        for eid, item in d.events.items():
            decl: Event = item.decl  # type: ignore[assignment]
            self.events.declare(EventInfo(eid, item.name, decl.severity, decl.format, decl.throttle))
        self.params.declare(d.parameters)
        self._configure_packets(d)
        self.commands.use_dictionary(d)  # complete now (packets included): hashed once
        self._finalized = True
        self.executive.note_store_problems("state", self.state.load_problems)
        self.executive.note_store_problems("parameters", self.params.load())
        self.executive.note_store_problems("parameters", self.params.activate_all())
        for comp in self.components:
            comp.setup()
        return d

    def _configure_packets(self, d: Dictionary) -> None:
        configured = self.config.telemetry.packets
        for i, packet in enumerate(configured):
            for j, channel in enumerate(packet.channels):
                item = d.by_name.get(channel)
                if item is None or item.id not in d.channels:
                    raise ConfigError(f"{self.config.source}: telemetry.packets[{i}].channels[{j}]: "
                                      f"no telemetry channel named {channel!r}")
        specs = [(p.name, p.rate_hz, p.channels) for p in configured]
        if not specs:  # default: one packet per component with all its channels, every 10 s
            for comp in self.components:
                names = [i.name for i in d.channels.values() if i.component is comp]
                if names:
                    specs.append((f"hk_{comp.name}", 0.1, names))
        for name, rate, channels in specs:
            try:
                self.packets.append(d.add_packet(name, rate, channels))
            except DictionaryError as exc:
                raise ConfigError(f"{self.config.source}: telemetry.packets: {exc}") from None

    # -- framework hooks --------------------------------------------------------------------
    def _on_crash(self, svc: Service, exc: BaseException) -> None:
        self.executive.service_crashed.emit(service=svc.name, error=svc.last_error)

    def _on_failed(self, svc: Service, exc: BaseException) -> None:
        self.executive.service_failed.emit(service=svc.name, error=svc.last_error)
        if svc.critical:
            self.health.unregister(svc.name)
        for hook in self.fault_hooks:
            hook(svc, exc)

    async def _on_critical(self, critical: list[Ping]) -> None:
        """A critical service is dead past its grace time and the pets stop: record why first,
        as the reason of a stop, so the boot after the kill or board reset reads it (an empty
        list: it recovered before the watchdog bit, the run goes on)."""
        if critical:
            detail = "; ".join(f"{p.name}: {p.problem}" for p in critical)[:160]
            self.executive.critical_service.emit(detail=detail, grace_s=critical[0].grace)
            self.state.set("shutdown_reason", ResetReason.CRITICAL_SERVICE.value)
            self.state.set("critical_failure", detail)
        else:
            self.executive.critical_recovered.emit()
            self.state.set("shutdown_reason", None)
            self.state.set("critical_failure", None)
        await self.state.save()

    def request_reboot(self, reason: ResetReason, detail: str) -> None:
        """The REBOOT port: an orderly stop with ``reason`` recorded; the service manager
        (systemd ``Restart=always``, the simulator's runner) starts the flight software again."""
        self.executive.reboot_requested.emit(reason=reason.value, detail=detail[:100])
        self.state.set("pending_shutdown_reason", reason.value)
        self.stop_event.set()

    def _add_health_pings(self) -> None:
        """Every critical service gets a health ping: failed, or crashing and restarting."""
        for svc in self.supervisor.services.values():
            if svc.critical and svc.name not in self.health.pings:
                self.health.add_ping(svc.name, functools.partial(_service_problem, svc))

    def _on_stale(self, stale: list[Any]) -> None:
        self.executive.health_stale.emit(tasks=",".join(hb.name for hb in stale)[:100])

    def _on_overrun(self, group: RateGroup, cycle: float) -> None:
        self.executive.overrun.emit(group=group.name, cycle_ms=cycle * 1000.0)

    def _on_member_error(self, group: RateGroup, member: Any, exc: BaseException) -> None:
        self.executive.member_error.emit(group=group.name, member=member.name, error=f"{type(exc).__name__}: {exc}"[:80])

    def _record_event(self, record: EventRecord) -> None:
        self.records.append_numbered("evt", record.to_wire(), met=self.clock.met())

    def _record_packet(self, packet: PacketDef, body: bytes) -> None:
        self.records.append_numbered("tlm", body, met=self.clock.met())

    # -- time ---------------------------------------------------------------------------------
    def time_checkpoint(self) -> timekeeping.TimeCheckpoint:
        """MET and UTC now, put in the state store (the caller saves it)."""
        clock = self.clock
        point = timekeeping.checkpoint_of(clock.met(), clock.utc(), clock.quality)
        self.state.set(timekeeping.STATE_KEY, point.to_dict())
        return point

    async def _checkpoint_time(self) -> None:
        while True:
            await asyncio.sleep(self.config.time.checkpoint_s)
            self.time_checkpoint()
            await self.state.save()

    # -- running ----------------------------------------------------------------------------
    async def _storage_writer(self, fn: Callable[[], None]) -> None:
        await self.workers.run_io(STORAGE_RESOURCE, fn)

    async def _sync_records(self) -> None:
        while True:
            await asyncio.sleep(self.config.storage.records_sync_seconds)
            await self.workers.run_io(STORAGE_RESOURCE, self.records.sync)
            self._records_beat.beat()

    def _packet_groups(self) -> list[RateGroup]:
        groups: dict[float, RateGroup] = {}
        for packet in self.packets:
            group = groups.setdefault(packet.rate_hz, RateGroup(f"tlm_{packet.rate_hz:g}Hz", packet.rate_hz))
            group.add(packet.name, functools.partial(self.telemetry.emit_packet, packet))
        return list(groups.values())

    async def run(self, duration: float | None = None, install_signals: bool = False) -> ResetReason:
        """Run until stopped (signal, command, ``duration`` seconds); returns the stop reason."""
        self.finalize()
        loop = asyncio.get_running_loop()
        self.clock.restart_epoch()
        # Recovery reads the newest segment (up to its size limit): not on the loop.
        report = await self.workers.run_io(STORAGE_RESOURCE, self.records.open)
        last = report.last_record
        if isinstance(last, dict) and isinstance(last.get("m"), int | float):
            self.clock.raise_met_floor(float(last["m"]))  # MET continues from the newest record
        self.events.add_sink(self._record_event)
        self.telemetry.add_packet_sink(self._record_packet)
        self.state.use_writer(self._storage_writer)
        self.params.use_writer(self._storage_writer)
        if report.truncated_bytes:
            self.executive.records_recovered.emit(bytes=report.truncated_bytes)
        self.executive.booted.emit(boot=self.state.boot_count, reason=self.state.get("reset_reason"))
        failure = self.state.get("critical_failure")
        if failure:
            self.executive.previous_critical.emit(detail=str(failure)[:160])
            self.state.set("critical_failure", None)

        reason = ResetReason.COMMANDED
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._signal_stop, sig)
        for group in list(self.rate_groups.values()) + self._packet_groups():
            self.supervisor.add_service(f"rategroup.{group.name}", group.run)
            # A rate group that stops cycling (a member hung) stops the watchdog pets.
            beat = self.health.register(f"rategroup.{group.name}", deadline=max(5.0 * group.period, 10.0))
            group.add("health.beat", beat.beat)
        self.supervisor.add_service("health", self.health.run)
        if self._watchdog_expired is not None:  # a simulated watchdog: it can bite
            self.supervisor.add_service("sim.watchdog", self._watch_for_bite, critical=False)
        self.supervisor.add_service("records.sync", self._sync_records)
        # the recorder is critical: its heartbeat is the health ping of "records.sync"
        self._records_beat = self.health.register(
            "records.sync", deadline=3 * self.config.storage.records_sync_seconds + 10.0)
        self._add_health_pings()
        self.supervisor.add_service("time.checkpoint", self._checkpoint_time, critical=False)
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # collector, so full collections stay short and never stall the loop for long.
        gc.collect()
        gc.freeze()
        self.watchdog.ready()
        self.watchdog.status(f"boot {self.state.boot_count} running")
        supervisor_task = asyncio.create_task(self.supervisor.run(), name="supervisor")
        self.started.set()
        stop_task = asyncio.create_task(self.stop_event.wait(), name="stop-wait")
        try:
            done, _ = await asyncio.wait({supervisor_task, stop_task},
                                         timeout=duration, return_when=asyncio.FIRST_COMPLETED)
            if supervisor_task in done:
                try:
                    supervisor_task.result()  # re-raise a framework bug rather than hide it
                except BaseException:
                    reason = ResetReason.SOFTWARE_ERROR  # the next boot must not take this for a clean stop
                    raise
            if not done:
                reason = ResetReason.DURATION
            elif self._signal_name:
                reason = ResetReason(self._signal_name)
            elif self.watchdog_reset:
                reason = ResetReason.WATCHDOG
            else:  # a stop requested with its reason (REBOOT port, exec.RESTART)
                reason = ResetReason.parse(self.state.get("pending_shutdown_reason")) or reason
        finally:
            stop_task.cancel()
            supervisor_task.cancel()
            # its own error, if any, is already on its way out (above): still flush the stores
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await supervisor_task
            if self.watchdog_reset:
                self._hard_reset()
            else:
                await self._shutdown(reason)
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        return reason

    _signal_name = ""
    watchdog_reset = False

    async def _watch_for_bite(self) -> None:
        """The simulated watchdog bites like the hardware one: the board resets, nothing is flushed."""
        expired = self._watchdog_expired
        assert expired is not None
        while True:
            await asyncio.sleep(1.0)
            if expired():
                log.error("simulated watchdog expired: resetting the simulated satellite")
                self.watchdog_reset = True
                self.stop_event.set()
                return

    def _hard_reset(self) -> None:
        """A reset, not a stop: no component shutdown, no clean-stop record (the next boot reads
        UNEXPECTED); only what was already written survives, as on the board."""
        self.records.close()
        self.workers.shutdown()
        log.info("stopped: WATCHDOG reset")

    def _signal_stop(self, sig: signal.Signals) -> None:
        self._signal_name = sig.name
        self.stop_event.set()

    async def _shutdown(self, reason: ResetReason) -> None:
        """Flush everything that must survive, within the shutdown budget."""
        self.watchdog.stopping()
        # Recorded first, so components can tell a deliberate stop from a crash as they shut down
        # (persisted below; a death before that leaves the next boot an UNEXPECTED reset).
        pending = self.state.get("pending_shutdown_reason")
        self.state.set("shutdown_reason", str(pending or reason))
        self.state.set("pending_shutdown_reason", None)
        try:
            async with asyncio.timeout(SHUTDOWN_BUDGET):
                for comp in reversed(self.components):
                    try:
                        await comp.shutdown()
                    except Exception:
                        log.exception("shutdown of %s failed", comp.name)
        except TimeoutError:
            log.error("component shutdown exceeded %.1f s; flushing stores anyway", SHUTDOWN_BUDGET)
        self.time_checkpoint()
        self.state.save_blocking()
        self.params.save_blocking()
        self.records.close()
        self.workers.shutdown()
        log.info("stopped: %s", pending or reason)


def _service_problem(svc: Service) -> str | None:
    """A critical service's health ping: what is wrong with it, or None."""
    if svc.state is ServiceState.FAILED:
        return f"failed: {svc.last_error}"[:120]
    if svc.state is ServiceState.BACKOFF:
        return f"restarting after {svc.last_error}"[:120]
    return None


def load_subsystems() -> list[Subsystem]:
    """Every subsystem registered in the ``flightsw.subsystems`` entry-point group, in build order."""
    found: dict[str, Subsystem] = {}
    for ep in entry_points(group=SUBSYSTEM_GROUP):
        try:
            subsystem = ep.load()
        except ImportError as exc:
            raise StartupError(f"subsystem {ep.name!r} ({ep.value}) cannot be imported: {exc}") from exc
        if not isinstance(subsystem, Subsystem):
            raise StartupError(f"entry point {ep.name!r} = {ep.value} in {SUBSYSTEM_GROUP} is not a "
                               "flightsw.app.Subsystem")
        if subsystem.name in found:
            raise StartupError(f"two subsystems are named {subsystem.name!r} ({ep.value})")
        found[subsystem.name] = subsystem
    if not found:
        raise StartupError(f"no subsystems registered in the {SUBSYSTEM_GROUP} entry-point group: "
                           "flightsw's package metadata is missing or stale (reinstall it: pip install -e .)")
    return sorted(found.values(), key=lambda s: (s.order, s.name))
