"""A flight Satellite flying through the simulated world: one scenario run, measured and reported.

Why one composition module: `flightsw sim --scenario` must exercise the code that flies (the real
components, drivers, serial link and ground protocol) while the orbit, power, thermal and contact
models of `sim.environment` decide what the sensors read and when the radio gets through. This
module is the only place that knows both sides:

- the World is built from the scenario (start, orbit, stations, battery, seed) and served to the
  simulated I2C parts through `WorldEnvironment` (given to the hardware builder as its
  environment source), so the INA219s, thermometers, magnetometer, gyro and sun sensors read it;
- the simulated transceiver's channel gets a `ContactGate` (frames pass only during passes, with
  the pass's bit error rate), and its radio power state feeds the World's power model;
- a world ticker, the scenario's fault timeline, a ground-side KISS client (counting beacons and
  data per contact, sending one no-op command per pass) and a metrics sampler run as supervised
  services of the satellite;
- spacecraft UTC comes from the World, so every stamp is the simulated epoch.

Time: the run uses a `VirtualTimeLoop` (``speed=None`` as fast as possible, ``N`` at most N times
real time). Bytes crossing the pseudo-terminal and the TCP socket arrive asynchronously in the
kernel, so the runner tells the loop while any are in flight and the clock waits for them; this
is what makes a run with a given seed repeat exactly.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import msgpack

from flightsw.app import Satellite, load_subsystems
from flightsw.components.hardware import HardwareBuilder, HardwareSet
from flightsw.components.housekeeping import add_hardware, build_hardware
from flightsw.config import ConfigError, MissionConfig
from flightsw.core.events import EventRecord, Severity
from flightsw.link import ax25
from flightsw.link.auth import KeyRing, build_command
from flightsw.link.packets import Apid, split_packets
from flightsw.link.settings import RADIO_KIND, load_link_settings
from hal import kiss
from sim.environment.adapters import (
    ContactGate,
    WorldEnvironment,
    radio_state_from_transceiver,
    run_world_ticker,
)
from sim.environment.contacts import StationGeometry
from sim.environment.world import World, WorldEvent
from sim.parts import NoisyEnvironment
from sim.report import ReportData, build_report
from sim.scenario import ExpectationResult, FaultApplier, Scenario
from sim.virtual_time import VirtualTimeLoop

log = logging.getLogger("flightsw.sim")

DEFAULT_TICKER_S = 10.0  # World step period (1 s ticks inside); 5-10 s keeps a day in minutes
SAMPLE_EVERY_S = 60.0  # data volume and mode sampling period for the report
MAX_EVENTS_KEPT = 20_000  # flight events kept for the report (counts cover all of them)
COMMAND_GAP_S = 900.0  # the ground sends at most one no-op per this many seconds (one per pass)
NOOP_COMMAND = "exec.NO_OP"
# A pass must peak at least this high to count as usable: near the horizon the link budget gives
# a bit error rate of ~3e-3, so a 150-byte frame survives with ~3 % probability and a short
# grazing pass may bring nothing down. Both counts are reported.
USABLE_ELEVATION_DEG = 5.0
# Report metrics that measure the host, not the simulation (excluded from determinism checks).
HOST_METRICS = frozenset({"run_wall_s", "run_speedup", "io_hold_expired"})


class SimulationError(RuntimeError):
    """The simulation could not be composed or run (bad config for a simulation, no sim radio)."""


@dataclass(frozen=True)
class SimOptions:
    """How to run a scenario; everything else comes from the scenario and the mission config."""

    speed: float | None = None  # None: as fast as possible; N: at most N x real time
    seed: int | None = None  # overrides the scenario's seed
    duration_s: float | None = None  # overrides the scenario's duration
    data_dir: Path | None = None  # flight storage; default a fresh temporary directory
    report_dir: Path | None = None  # write the report here
    ticker_period_s: float = DEFAULT_TICKER_S
    ground_commands: bool = True  # the ground sends one no-op per pass (exercises the uplink)
    fsync: bool = False  # flight stores fsync; off by default, a simulated power cut is not real
    threaded_buses: bool = False  # True: simulated I2C calls keep their worker thread (~4x slower)

    def __post_init__(self) -> None:
        if self.speed is not None and not self.speed > 0:
            raise ValueError(f"speed must be positive (or None for as fast as possible), got {self.speed}")
        if self.seed is not None and self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"duration must be positive, got {self.duration_s}")
        if not 0.1 <= self.ticker_period_s <= 60.0:
            raise ValueError(f"ticker period {self.ticker_period_s} s must be within [0.1, 60] s")


@dataclass
class ContactTally:
    """One pass over a station, with what the ground received during it."""

    station: str
    aos: float  # POSIX seconds
    los: float
    beacons: int = 0
    frames: int = 0
    max_elevation_deg: float = 0.0

    @property
    def usable(self) -> bool:
        return self.max_elevation_deg >= USABLE_ELEVATION_DEG


@dataclass
class SimResult:
    scenario: Scenario
    metrics: dict[str, float]
    expectations: list[ExpectationResult]
    contacts: list[ContactTally]
    events: list[tuple[float, str, str]]
    report_index: Path | None
    wall_s: float

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.expectations)


class GroundMonitor:
    """The ground side of the run: a KISS TCP client of the simulated transceiver.

    Counts what actually reaches the ground (frames, bytes, beacons with their simulated arrival
    time, verdicts) and, once per pass after the first beacon, sends an authenticated no-op so
    the uplink is exercised through the same channel.
    """

    def __init__(self, transceiver: Any, satellite: ax25.Address, ground: ax25.Address,
                 epoch_now: Callable[[], float], command: Callable[[int], bytes] | None) -> None:
        self.transceiver = transceiver
        self.satellite = satellite
        self.ground = ground
        self.epoch_now = epoch_now
        self.command = command  # counter -> complete telecommand packet
        self.frames = 0
        self.frames_foreign = 0
        self.frames_bad = 0
        self.bytes_down = 0
        self.beacon_times: list[float] = []
        self.frame_times: list[float] = []
        self.verdicts = 0
        self.commands_sent = 0
        self.bytes_read = 0  # raw KISS bytes from the socket
        self.bytes_written = 0
        self._counter = 0
        self._last_command = -float("inf")
        self._writer: asyncio.StreamWriter | None = None

    async def run(self) -> None:
        """Service: connect once the transceiver listens, then receive forever."""
        while not self.transceiver.listening:  # noqa: ASYNC110 (the transceiver has no ready event; virtual time makes the wait free)
            await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", self.transceiver.bound_port)
        self._writer = writer
        decoder = kiss.KissDecoder(max_frame=4096)
        try:
            while chunk := await reader.read(65536):
                self.bytes_read += len(chunk)
                for frame in decoder.feed(chunk):
                    if frame.command == kiss.KissCommand.DATA:
                        await self.handle_frame(frame.payload)
        finally:
            self._writer = None
            writer.close()

    async def handle_frame(self, raw: bytes) -> None:
        now = self.epoch_now()
        try:
            ui = ax25.decode(raw)
        except ax25.Ax25Error:
            self.frames_bad += 1
            return
        if ui.source.callsign != self.satellite.callsign:
            self.frames_foreign += 1
            return
        self.frames += 1
        self.bytes_down += len(raw)
        self.frame_times.append(now)
        packets, _errors = split_packets(ui.info)
        for packet in packets:
            if packet.apid == Apid.BEACON:
                self.beacon_times.append(now)
                await self._maybe_command(now)
            elif packet.apid == Apid.VERDICT:
                self.verdicts += 1

    async def _maybe_command(self, now: float) -> None:
        if self.command is None or self._writer is None or now - self._last_command < COMMAND_GAP_S:
            return
        self._last_command = now
        self._counter += 1
        frame = ax25.UiFrame(self.satellite, self.ground, self.command(self._counter)).encode()
        data = kiss.encode(frame)
        self._writer.write(data)
        self.bytes_written += len(data)
        self.commands_sent += 1
        await self._writer.drain()


class SimulationRun:
    """Builds the satellite on the simulated world for one scenario, runs it, measures it."""

    def __init__(self, config: MissionConfig, scenario: Scenario, options: SimOptions | None = None) -> None:
        self.options = options or SimOptions()
        opts = self.options
        if opts.seed is not None:
            scenario = replace(scenario, seed=opts.seed)
        if opts.duration_s is not None:
            scenario = replace(scenario, duration_s=opts.duration_s)
        self.scenario = scenario
        self.config = copy.deepcopy(config)  # the run adjusts storage and radio; the caller's stays
        self._scratch: str | None = None
        self.world: World = scenario.build_world()
        self.environment = WorldEnvironment(self.world)
        self.hardware: HardwareSet | None = None
        self.sat: Satellite | None = None
        self.transceiver: Any = None
        self.gate: ContactGate | None = None
        self.ground: GroundMonitor | None = None
        self.applier: FaultApplier | None = None
        self.loop: VirtualTimeLoop | None = None
        self.events: collections.deque[tuple[float, str, str]] = collections.deque(maxlen=MAX_EVENTS_KEPT)
        self.event_counts: collections.Counter[str] = collections.Counter()
        self.data_volume: list[tuple[float, float, float]] = []
        self.modes: list[tuple[float, str]] = []
        self._t0 = 0.0
        self._port: Any = None  # the flight side's serial port (AsyncSerialPort) of the radio

    # -- composition --------------------------------------------------------------------------
    def _prepare_config(self) -> None:
        cfg = self.config
        if self.options.data_dir is not None:
            data_dir = Path(self.options.data_dir)
            if data_dir.exists() and any(data_dir.iterdir()):
                raise SimulationError(f"data directory {data_dir} is not empty; a scenario starts from a fresh "
                                      "satellite (first boot), so give an empty or new directory")
        else:
            self._scratch = tempfile.mkdtemp(prefix=f"flightsw-sim-{self.scenario.name}-")
            data_dir = Path(self._scratch)
        cfg.storage.data_dir = str(data_dir)
        cfg.storage.fsync = self.options.fsync
        for dev in cfg.devices:
            if dev.kind == RADIO_KIND:
                if dev.backend != "sim":
                    raise SimulationError(f"devices.{dev.name}: a simulation needs backend = \"sim\" for the radio")
                dev.options["seed"] = self.scenario.seed  # channel losses repeat with the scenario
                dev.options["kiss_tcp_port"] = 0  # any free port: runs never collide
            elif dev.backend != "sim":
                raise SimulationError(f"devices.{dev.name}: backend {dev.backend!r}; a scenario runs every "
                                      "device simulated (backend = \"sim\")")

    def _build_hardware(self, sat: Satellite) -> None:
        noisy = NoisyEnvironment(self.environment, seed=self.scenario.seed)
        self.hardware = HardwareBuilder(sat.config, environment=noisy, seed=self.scenario.seed).build()
        hw = self.hardware
        if hw.sensors or hw.gpio.outputs or hw.gpio.inputs:
            add_hardware(sat, hw)

    def build(self) -> Satellite:
        """Compose the satellite (no loop needed yet); idempotent."""
        if self.sat is not None:
            return self.sat
        self._prepare_config()
        subsystems = [self._build_hardware if fn is build_hardware else fn for fn in load_subsystems()]
        # first of all: the simulated camera sees the World's sub-satellite point and daylight
        subsystems.insert(0, lambda sat: setattr(sat, "camera_scene", self.environment.camera_scene))
        sat = Satellite(self.config, utc_source=self.environment.epoch_now, subsystems=subsystems)
        self.sat = sat
        parts = {s.name: s.sim_part for s in (self.hardware.sensors if self.hardware else []) if s.sim_part is not None}
        buses = list(self.hardware.sim_buses.values()) if self.hardware else []
        self.transceiver = getattr(sat, "sim_transceiver", None)
        feeds: dict[str, Callable[[], str]] = {}
        if self.transceiver is not None:
            self.gate = ContactGate(self.environment, self.transceiver.channel).install()
            feeds["radio"] = radio_state_from_transceiver(self.transceiver, self._loop_time)
            self.ground = self._ground_monitor()
            sat.supervisor.add_service("sim.ground", self.ground.run, critical=False)
        self.applier = FaultApplier(parts, buses, self.transceiver.channel if self.transceiver else None, self.gate)
        period = self.options.ticker_period_s
        sat.supervisor.add_service("sim.world", lambda: run_world_ticker(self.environment, period, feeds))
        sat.supervisor.add_service("sim.faults", self._fault_timeline)
        sat.supervisor.add_service("sim.sampler", self._sampler, critical=False)
        sat.events.add_sink(self._on_event)
        return sat

    def _ground_monitor(self) -> GroundMonitor:
        assert self.sat is not None
        settings = load_link_settings(self.sat.config)
        command: Callable[[int], bytes] | None = None
        if self.options.ground_commands:
            dictionary = self.sat.finalize()
            opcode = dictionary.command(NOOP_COMMAND).id
            body = msgpack.packb([opcode, []], use_bin_type=True)
            ring = KeyRing.load(settings.key_file)  # written by the link subsystem at build time
            key_id = ring.ids[0]

            def command(counter: int) -> bytes:
                return build_command(ring.key(key_id), key_id, counter, body, seq_count=counter)

        return GroundMonitor(self.transceiver, settings.callsign, settings.ground, self.environment.epoch_now, command)

    def _loop_time(self) -> float:
        return self.loop.time() if self.loop is not None else 0.0

    # -- services -----------------------------------------------------------------------------
    async def _fault_timeline(self) -> None:
        assert self.applier is not None
        for at, injection, value in self.scenario.timeline():
            delay = self._t0 + at - self._loop_time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.applier.apply(at, injection, value)
            log.info("t+%.0fs fault %s.%s = %r", at, injection.target, injection.fault, value)
        await asyncio.Event().wait()

    async def _sampler(self) -> None:
        assert self.sat is not None
        while True:
            self._sample()
            await asyncio.sleep(SAMPLE_EVERY_S)

    def _sample(self) -> None:
        assert self.sat is not None
        now = self.environment.epoch_now()
        down = float(self.ground.bytes_down) if self.ground else 0.0
        up = float(self._bytes_up())
        self.data_volume.append((now, down, up))
        mode = self.sat.state.get("mode")
        if mode is not None and (not self.modes or self.modes[-1][1] != str(mode)):
            self.modes.append((now, str(mode)))

    def _bytes_up(self) -> int:
        return self._link().stats["bytes_received"] if self._link() is not None else 0

    def _link(self) -> Any:
        assert self.sat is not None
        try:
            return self.sat.component("link")
        except KeyError:
            return None

    def _on_event(self, record: EventRecord) -> None:
        assert self.sat is not None
        self.event_counts[record.severity.name] += 1
        if record.severity >= Severity.WARNING:
            text = record.text(self.sat.events.info(record.id).format)
            self.events.append((self.environment.epoch_now(), record.severity.name, f"{record.name}: {text}"))

    def _bytes_in_flight(self) -> object | None:
        """A token while bytes cross the pty or the TCP socket, None when both sides agree."""
        port, xcvr, ground = self._port, self.transceiver, self.ground
        if port is None or xcvr is None or ground is None:
            return None
        counters = (port.bytes_written, xcvr.pty_bytes_read, xcvr.pty_bytes_written, port.bytes_read,
                    xcvr.ground_bytes_written, ground.bytes_read, ground.bytes_written, xcvr.ground_bytes_read)
        if counters[0] > counters[1] or counters[2] > counters[3] or counters[4] > counters[5] or counters[6] > counters[7]:
            return counters
        return None

    def _inline_buses(self) -> list[Any]:
        """Simulated buses whose calls can run on the loop thread: none can sleep (no latency fault)."""
        if self.options.threaded_buses or self.hardware is None:
            return []
        configured = [s.sim_part.faults.latency_s for s in self.hardware.sensors if s.sim_part is not None]
        configured += [b.faults.latency_s for b in self.hardware.sim_buses.values()]
        scheduled = [f for f in self.scenario.faults if f.fault == "latency_s" and f.value]
        if any(configured) or scheduled:
            log.info("latency faults present: simulated buses keep their worker threads")
            return []
        return [bus for name, bus in self.hardware.buses.items() if name.startswith("sim-")]

    # -- running ------------------------------------------------------------------------------
    async def _main(self) -> str:
        sat = self.build()
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        self.loop = loop
        self._t0 = loop.time()
        self.environment.bind_clock(loop.time, self._t0)
        link = self._link()
        self._port = link.radio.serial if link is not None else None
        loop.add_io_pending_check(self._bytes_in_flight)
        for bus in self._inline_buses():
            loop.run_inline(bus.executor)
        try:
            return await sat.run(duration=self.scenario.duration_s)
        finally:
            loop.remove_io_pending_check(self._bytes_in_flight)
            self.environment.sync()

    def run(self) -> SimResult:
        """Run the scenario to its end on a virtual-time loop, then measure and report."""
        wall = time.monotonic()
        speed = self.options.speed
        try:
            with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(0.0, speed)) as runner:
                reason = runner.run(self._main())
            log.info("simulation stopped (%s) at %s", reason, self.world.state.utc.isoformat())
            wall_s = time.monotonic() - wall
            return self._result(wall_s)
        finally:
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)

    # -- measuring ----------------------------------------------------------------------------
    def contacts(self) -> list[ContactTally]:
        """Passes from the World's AOS/LOS events, with the beacons received in each."""
        tallies = list(_contact_windows(self.world))
        geometry = {s.name: StationGeometry(s) for s in self.world.config.stations}
        orbit = self.world.config.orbit
        for tally in tallies:
            samples = max(2, int((tally.los - tally.aos) / 10.0) + 1)
            step = (tally.los - tally.aos) / (samples - 1)
            tally.max_elevation_deg = max(
                geometry[tally.station].view(orbit.state(tally.aos + i * step).r_ecef_km).elevation_deg
                for i in range(samples))
        if self.ground is not None:
            for tally in tallies:
                # a beacon stamped by the ground a fraction of a tick after LOS still belongs to the pass
                end = tally.los + self.world.config.tick_s
                tally.beacons = sum(1 for t in self.ground.beacon_times if tally.aos <= t <= end)
                tally.frames = sum(1 for t in self.ground.frame_times if tally.aos <= t <= end)
        return tallies

    def metrics(self, contacts: list[ContactTally]) -> dict[str, float]:
        assert self.sat is not None
        m: dict[str, float] = dict(self.world.metrics())
        m["events_warning"] = float(self.event_counts["WARNING"])
        m["events_error"] = float(sum(self.event_counts[s] for s in ("ERROR", "CRITICAL", "FATAL")))
        m["commands_rejected"] = float(self.sat.commands.stats["rejected"])
        m["reboots"] = 0.0  # one flight process for the whole run; a restart would end the run
        if self.transceiver is not None and self.ground is not None:
            down, up = self.transceiver.downlink.stats, self.transceiver.uplink.stats
            # lost: dropped by the channel's loss process (the `frame_loss` fault); corrupted: hit
            # by bit errors and dropped by the receiving TNC's FCS check (range and elevation)
            lost = down.frames_lost + up.frames_lost
            corrupted = down.frames_corrupted + up.frames_corrupted
            in_contact = (down.frames_in - down.frames_out_of_contact) + (up.frames_in - up.frames_out_of_contact)
            m["beacons_received"] = float(len(self.ground.beacon_times))
            m["contacts_without_beacon"] = float(sum(1 for c in contacts if c.beacons == 0))
            m["usable_contacts"] = float(sum(1 for c in contacts if c.usable))
            m["usable_contacts_without_beacon"] = float(sum(1 for c in contacts if c.usable and c.beacons == 0))
            m["frames_down"] = float(self.ground.frames)
            m["frames_up"] = float(up.frames_delivered)
            m["frames_lost"] = float(lost)
            m["frame_loss_ratio"] = lost / in_contact if in_contact else 0.0
            m["bytes_down"] = float(self.ground.bytes_down)
            m["bytes_up"] = float(self._bytes_up())
            m["frames_out_of_contact"] = float(down.frames_out_of_contact + up.frames_out_of_contact)
            m["frames_corrupted"] = float(corrupted)
            m["frame_error_ratio"] = (lost + corrupted) / in_contact if in_contact else 0.0
            m["ground_commands_sent"] = float(self.ground.commands_sent)
            m["ground_verdicts_received"] = float(self.ground.verdicts)
        if self.loop is not None:
            m["io_hold_expired"] = float(self.loop.io_hold_expired)
        return m

    def _result(self, wall_s: float) -> SimResult:
        contacts = self.contacts()
        metrics = self.metrics(contacts)
        metrics["run_wall_s"] = round(wall_s, 3)
        simulated = self.world.time - self.world.start
        metrics["run_speedup"] = round(simulated / wall_s, 1) if wall_s > 0 else 0.0
        expectations = self.scenario.evaluate(metrics)
        index = None
        if self.options.report_dir is not None:
            self._sample()
            data = ReportData.from_world(
                f"{self.scenario.name} (seed {self.scenario.seed})", self.world, modes=self.modes,
                data_volume=self.data_volume, events=list(self.events), expectations=expectations,
                metrics=metrics)
            index = build_report(self.options.report_dir, data)
        return SimResult(self.scenario, metrics, expectations, contacts, list(self.events), index, wall_s)


def _contact_windows(world: World) -> Iterator[ContactTally]:
    """(station, AOS, LOS) from the World's events; a pass open at the start or end is cut there."""
    open_at: dict[str, float] = {}
    initial = world.recording.columns
    for station in (s.name for s in world.config.stations):
        elevations = initial.get(f"elevation_{station}", [])
        min_el = next(s.min_elevation_deg for s in world.config.stations if s.name == station)
        if elevations and elevations[0] >= min_el:
            open_at[station] = world.start
    events: list[WorldEvent] = [e for e in world.events if e.kind in ("aos", "los")]
    for event in events:
        if event.kind == "aos":
            open_at[event.detail] = event.t
        elif event.detail in open_at:
            yield ContactTally(event.detail, open_at.pop(event.detail), event.t)
    for station, aos in open_at.items():
        yield ContactTally(station, aos, world.time)


def run_scenario(config: MissionConfig, scenario: Scenario, options: SimOptions | None = None) -> SimResult:
    """Compose, run, measure and (with options.report_dir) report one scenario."""
    try:
        return SimulationRun(config, scenario, options).run()
    except ConfigError:
        raise
    except (OSError, ValueError) as exc:
        with contextlib.suppress(Exception):
            log.debug("simulation failed", exc_info=True)
        raise SimulationError(str(exc)) from exc


def as_seconds(value: str) -> float:
    """Parse a --duration value ("86400", "24h", "1h30m") for the command line."""
    from sim.scenario import ScenarioError, parse_duration

    try:
        seconds = parse_duration(float(value) if _is_number(value) else value, "--duration")
    except ScenarioError as exc:
        raise ValueError(str(exc)) from None
    if seconds <= 0:
        raise ValueError(f"--duration must be positive, got {value!r}")
    return seconds


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


__all__ = ["GroundMonitor", "SimOptions", "SimResult", "SimulationError", "SimulationRun", "run_scenario",
           "ContactTally", "HOST_METRICS"]
