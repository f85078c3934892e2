"""The composition of one scenario run: the satellite on the simulated world, its reboots, the
I/O accounting of the virtual-time loop, the measurements and the report (see the package's
docstring for the design)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import hashlib
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgpack

from flightsw.app import Satellite, load_subsystems
from flightsw.components.adcs import add_adcs
from flightsw.components.hardware import HardwareBuilder, HardwareSet
from flightsw.components.housekeeping import add_hardware, build_hardware
from flightsw.config import (
    ADCS_KIND,
    CAMERA_KIND,
    ConfigError,
    ContactSection,
    ContactStationSection,
    DeviceConfig,
    MissionConfig,
)
from flightsw.core.events import EventRecord, Severity
from flightsw.core.ports import CAMERA_SCENE, MODES, Ports
from flightsw.core.supervisor import Service, Supervisor
from flightsw.filetransfer.settings import entity_config_from
from flightsw.ground.archive import Archive
from flightsw.ground.dictionary import GroundDictionary
from flightsw.ground.records import RecordIngest
from flightsw.link.auth import KeyRing, build_command
from flightsw.link.packets import Apid
from flightsw.link.settings import RADIO_KIND, find_radio, load_link_settings
from flightsw.link.subsystem import SIM_TRANSCEIVER
from flightsw.sim_runner.ground import (
    NOOP_COMMAND,
    PLAYBACK_COMMAND,
    GroundFileReceiver,
    GroundMonitor,
)
from flightsw.sim_runner.imaging import ImagingLog
from flightsw.sim_runner.io_accounting import bytes_not_yet_readable, inline_buses
from flightsw.sim_runner.metrics import link_metrics, measure_contacts, store_and_forward_metrics
from flightsw.sim_runner.options import SimOptions, SimulationError
from flightsw.sim_runner.reboots import BootTasks, collect_frozen_garbage, coroutine_name
from flightsw.sim_runner.results import BootRecord, ContactTally, SimResult
from sim.environment.adapters import (
    ContactGate,
    WorldEnvironment,
    radio_state_from_transceiver,
    run_world_ticker,
)
from sim.environment.world import World
from sim.parts import NoisyEnvironment
from sim.report import ReportData, build_report
from sim.scenario import (
    SOFTWARE_TARGET_PREFIX,
    FaultApplier,
    RateGroupHangs,
    Scenario,
)
from sim.virtual_time import VirtualTimeLoop

log = logging.getLogger("flightsw.sim")

SAMPLE_EVERY_S = 60.0  # data volume and mode sampling period for the report
MAX_EVENTS_KEPT = 20_000  # flight events kept for the report (counts cover all of them)
SAFE_MODE, DETUMBLE_MODE = "SAFE", "DETUMBLE"
BOOT_MODE = "BOOT"  # the "old" mode a ModeManager reports for the first change of a boot
TRANSCEIVER_SERVICE = "sim.transceiver"  # added by the link subsystem; the runner owns it instead
RESET_SEVERITY = "RESET"  # the report's marker for a watchdog reset in the event list
# events of the loss-of-contact ladder, counted as the scenario metrics of the same name
LADDER_EVENTS = {"loc.radio_reset": "loss_of_contact_radio_resets",
                 "loc.rebooting": "loss_of_contact_reboots",
                 "loc.defaults_restored": "loss_of_contact_safe_defaults"}
SIM_KEY_COUNT, SIM_KEY_LEN = 4, 32  # as KeyRing.generate writes them
UART_MISSING = "uart_missing"
#: a run that ended for these reasons is started again on the same data directory, as the
#: board's watchdog (WATCHDOG) or the service manager does after an orderly restart the flight
#: software asked for (FDIR: a watch-point's response; LOSS_OF_CONTACT: the ladder's last rung)
REBOOTING = frozenset({"WATCHDOG", "FDIR", "LOSS_OF_CONTACT"})
#: flight events counted as metrics of the run (fault protection: docs/operations.md)
FDIR_EVENTS = {
    "modes.watch_fired": "watchpoint_responses",
    "modes.watch_yellow": "watchpoint_yellows",
    "modes.part_isolated": "parts_isolated",
    "exec.critical_service": "critical_service_alarms",
}



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
        self._ground_scratch: str | None = None
        self.world: World = scenario.build_world()
        self.environment = WorldEnvironment(self.world)
        self.hardware: HardwareSet | None = None
        self.imaging = ImagingLog()  # targets planned, pointed, refused (imaging scenarios)
        self.sat: Satellite | None = None  # the satellite of the current (or last) boot
        self.transceiver: Any = None
        self.gate: ContactGate | None = None
        self.ground: GroundMonitor | None = None
        self.applier: FaultApplier | None = None
        self.loop: VirtualTimeLoop | None = None
        # The runner's own services: they outlive every boot of the flight software.
        self.services = Supervisor(on_crash=self._on_service_crash, on_failed=self._on_service_crash)
        self.events: collections.deque[tuple[float, str, str]] = collections.deque(maxlen=MAX_EVENTS_KEPT)
        self.event_counts: collections.Counter[str] = collections.Counter()
        self.fdir_counts: collections.Counter[str] = collections.Counter()  # FDIR_EVENTS' metrics
        self.data_volume: list[tuple[float, float, float]] = []
        self.modes: list[tuple[float, str]] = []
        self.boots: list[BootRecord] = []
        self.resets: list[float] = []  # simulated UTC of each reset: watchdog, or a restart asked for
        self.commanded_reboots: list[float] = []  # simulated UTC of each reboot the software asked for
        self.ladder_events: collections.Counter[str] = collections.Counter()
        self.last_safe_defaults: float | None = None  # simulated UTC of the last fall back to defaults
        self.leaked_tasks: list[str] = []  # tasks of a reset satellite still alive afterwards (a bug)
        self.modes_measured = False  # a ModeManager was found in (at least one) boot
        self.safe_mode_entries = 0
        self._detumbling = False
        self._hang_groups = sorted({f.target.removeprefix(SOFTWARE_TARGET_PREFIX)
                                    for f in scenario.faults if f.software})
        self._finished = collections.Counter[str]()  # counters of boots that ended
        self._t0 = 0.0
        self._port: Any = None  # the flight side's serial port (AsyncSerialPort) of the radio
        self._port_written_before = 0  # bytes the radio ports of boots that ended wrote / read
        self._port_read_before = 0
        self._boot_tasks = BootTasks()
        # the deployment sequence ([launch]): the hardware outlives the computer's reboots
        self._burn_wires: dict[str, Any] = {}
        self._powered_s = 0.0  # flight software running time of the boots that ended
        self._boot_at: float | None = None  # loop time the running boot started
        self._silence_end: tuple[float, int] | None = None  # (run time, downlink frames before it)
        self._boot_frames: list[tuple[float, float | None]] = []  # per boot: (start, first downlink frame)
        self.archive: Archive | None = None  # the scripted ground's archive ([ground] playback)
        self.budget: list[tuple[float, float, float]] = []  # (t, bytes recorded, stored bytes down)

    # -- composition --------------------------------------------------------------------------
    def _prepare_config(self) -> None:
        cfg = self.config
        if self.options.data_dir is not None:
            data_dir = Path(self.options.data_dir)
            if not self.options.resume and data_dir.exists() and any(data_dir.iterdir()):
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
        self._seed_uplink_keys()
        self._prepare_launch()
        self._prepare_adcs()
        if self.scenario.ground.contact_aware:
            self._configure_contact()
        groups = set(cfg.scheduler.rate_groups)
        for i, fault in enumerate(self.scenario.faults):
            group = fault.target.removeprefix(SOFTWARE_TARGET_PREFIX)
            if fault.software and group not in groups:
                raise SimulationError(f"{self.scenario.source}: faults[{i}].target: no rate group {group!r} in "
                                      f"the mission config; rate groups: {sorted(groups)}")

    def _prepare_adcs(self) -> None:
        """``[adcs]``: a simulated ADCS unit joins the config (imaging then plans pointed captures)."""
        adcs = self.scenario.adcs
        if adcs is None or self.config.devices_of(ADCS_KIND):
            return
        if not self.config.devices_of(CAMERA_KIND):
            raise SimulationError(f"{self.scenario.source}: [adcs] needs a camera device in the mission config")
        self.config.devices.append(DeviceConfig(name="adcs", kind=ADCS_KIND, backend="sim", options={
            "slew_rate_deg_s": adcs.slew_rate_deg_s, "settle_s": adcs.settle_s}))

    def _prepare_launch(self) -> None:
        """``[launch]``: the first boot is the first after separation (silence, then deployment)."""
        launch = self.scenario.launch
        if launch is None:
            return
        cfg = self.config
        if cfg.deployment is None:
            raise SimulationError(f"{self.scenario.source}: [launch] needs a [deployment] section in the mission config")
        cfg.deployment.first_boot = "stowed"
        if launch.silence_s is not None:
            cfg.deployment.silence_s = launch.silence_s
        for name, failures in launch.failed_burns.items():
            dev = next((d for d in cfg.devices if d.name == name), None)
            wire = dev.options.get("burn_wire") if dev is not None and dev.kind == "gpio_output" else None
            if not isinstance(wire, dict):
                raise SimulationError(f"{self.scenario.source}: launch.failed_burns.{name}: not a gpio_output "
                                      "with a simulated burn_wire")
            wire["fail_first"] = failures

    def _configure_contact(self) -> None:
        """Contact-aware downlink for the scenario's stations; the World's orbit is the TLE the
        satellite was loaded with before launch (a mission config's own [contact] is kept)."""
        if self.config.contact is not None:
            return
        stations = [ContactStationSection(name=re.sub(r"[^A-Za-z0-9_]", "_", s.name), lat_deg=s.lat_deg,
                                          lon_deg=s.lon_deg, alt_m=s.alt_m, min_elevation_deg=s.min_elevation_deg)
                    for s in self.scenario.stations]
        for station in stations:  # the flight's pass mask: the ground's, or the scenario's when higher
            station.min_elevation_deg = max(station.min_elevation_deg, self.scenario.ground.contact_min_elevation_deg)
        self.config.contact = ContactSection(stations=stations, tle=list(self.scenario.orbit.tle))

    def _seed_uplink_keys(self) -> None:
        """Where the link would generate a random uplink key file, write one derived from the seed.

        Why: the key is in every command frame's HMAC, and a frame's airtime (bit stuffing) and so
        the ground's pacing of file PDUs depend on its bytes; a random key made runs with the same
        seed drift apart. A simulation key, in the run's fresh data directory: never a flight key.
        """
        if find_radio(self.config) is None:
            return
        settings = load_link_settings(self.config)
        path = settings.key_file
        if not settings.generate_key or path.exists():
            return
        keys = []
        for key_id in range(SIM_KEY_COUNT):
            digest = hashlib.sha256(f"flightsw simulation uplink key {self.scenario.seed}/{key_id}".encode())
            keys.append(f"{key_id} {digest.hexdigest()[:SIM_KEY_LEN * 2]}")
        KeyRing.write(path, "Simulation keys derived from the scenario seed.", keys, fsync=False)

    def _build_hardware(self, sat: Satellite) -> None:
        noisy = NoisyEnvironment(self.environment, seed=self.scenario.seed)
        self.hardware = HardwareBuilder(sat.config, environment=noisy, seed=self.scenario.seed,
                                        scene=self.environment.camera_scene).build()
        hw = self.hardware
        for name, wire in hw.burn_wires.items():  # a burnt wire stays burnt, a parted line parted
            if name in self._burn_wires:
                wire.carry_over(self._burn_wires[name])
            wire.listeners.append(self._burn_load_changed)
        if hw.burn_wires:
            self._burn_wires = dict(hw.burn_wires)
            self._burn_load_changed()  # a reset mid-burn released the gate: the wire draws nothing now
        if hw.sensors or hw.gpio.outputs or hw.gpio.inputs or hw.adcs:
            add_hardware(sat, hw)
        add_adcs(sat, hw)

    def _compose(self) -> Satellite:
        """A new flight software process on the simulated board: same config, same data directory."""
        self.hardware = None
        subsystems: list[Callable[[Satellite], None]] = [
            self._build_hardware if s.build is build_hardware else s for s in load_subsystems()]
        # the simulated camera sees the World's sub-satellite point and daylight
        ports = Ports()
        ports.provide(CAMERA_SCENE, self.environment.camera_scene, by="simulator")
        sat = Satellite(self.config, utc_source=self.environment.epoch_now, subsystems=subsystems, ports=ports)
        if sat.ports.get(SIM_TRANSCEIVER) is not None:
            # The radio is another board: it lives through the computer's resets, so the runner
            # runs the one transceiver of the run (self.transceiver, from the first boot); a
            # rebuilt link opens its pty path again.
            sat.supervisor.services.pop(TRANSCEIVER_SERVICE, None)
        self.sat = sat
        return sat

    def _compose_finalized(self) -> Satellite:
        sat = self._compose()
        sat.finalize()
        return sat

    def build(self) -> Satellite:
        """Compose the first boot's satellite and the runner's services (no loop needed yet); idempotent."""
        if self.sat is not None:
            return self.sat
        self._prepare_config()
        sat = self._compose()
        self.transceiver = sat.ports.get(SIM_TRANSCEIVER)
        feeds: dict[str, Callable[[], str]] = {}
        if self.transceiver is not None:
            self.gate = ContactGate(self.environment, self.transceiver.channel).install()
            feeds["radio"] = radio_state_from_transceiver(self.transceiver, self._loop_time)
            self.ground = self._ground_monitor(sat)
            self.services.add_service(TRANSCEIVER_SERVICE, self._run_transceiver, critical=False)
            self.services.add_service("sim.ground", self.ground.run, critical=False)
        self.applier = FaultApplier(channel=self.transceiver.channel if self.transceiver else None, gate=self.gate,
                                    transceiver=self.transceiver)
        period = self.options.ticker_period_s
        self.services.add_service("sim.world", lambda: run_world_ticker(self.environment, period, feeds))
        self.services.add_service("sim.faults", self._fault_timeline)
        self.services.add_service("sim.sampler", self._sampler, critical=False)
        if self.scenario.launch is not None and self.transceiver is not None:
            self.services.add_service("sim.silence", self._silence_watch, critical=False)
            self.transceiver.downlink.on_submit = self._on_downlink_frame
        self._attach(sat)
        # A serial device missing at boot must be missing before the transceiver and the flight
        # link start: applied now, not by the fault timeline that runs beside them.
        for at, injection, value in self.scenario.timeline():
            if at == 0 and injection.fault == UART_MISSING:
                self.applier.apply(at, injection, value)
        return sat

    def _attach(self, sat: Satellite) -> None:
        """Connect one boot's satellite to the run: faults, events, modes; note the boot."""
        self.boots.append(BootRecord(self.environment.epoch_now(), sat.state.boot_count,
                                     str(sat.state.get("reset_reason"))))
        parts = {s.name: s.sim_part for s in (self.hardware.sensors if self.hardware else []) if s.sim_part is not None}
        buses = list(self.hardware.sim_buses.values()) if self.hardware else []
        hangs = RateGroupHangs({g: sat.rate_groups[g] for g in self._hang_groups}) if self._hang_groups else None
        assert self.applier is not None
        self.applier.rebind(parts, buses, hangs)
        sat.events.add_sink(self._on_event)
        self._attach_modes(sat)

    def _attach_modes(self, sat: Satellite) -> None:
        modes = sat.ports.get(MODES)
        if modes is None:
            return  # no mode manager in this build: safe_mode_entries stays "not measured"
        self.modes_measured = True
        modes.add_listener(self._on_mode_changed)

    def _ground_monitor(self, sat: Satellite) -> GroundMonitor:
        settings = load_link_settings(sat.config)
        sign: Callable[[int, int, bytes, int], bytes] | None = None
        noop: bytes | None = None
        scheduled: list[tuple[float, str, bytes]] = []
        dictionary = sat.finalize()
        # the ground decodes with the dictionary it would load: the flight side's export
        ground_dictionary = GroundDictionary.from_json(dictionary.to_json(indent=None))
        script = self.scenario.ground
        request_opcode: int | None = None
        if script.playback:
            request_opcode = dictionary.command(PLAYBACK_COMMAND).id
        if self.options.ground_commands or self.scenario.commands or script.playback:
            ring = KeyRing.load(settings.key_file)  # written by the link subsystem at build time
            def sign(key_id: int, counter: int, body: bytes, apid: int) -> bytes:
                return build_command(ring.key(key_id), key_id, counter, body, seq_count=counter, apid=apid)

            if self.options.ground_commands:
                noop = msgpack.packb([dictionary.command(NOOP_COMMAND).id, []], use_bin_type=True)
            for i, cmd in enumerate(self.scenario.commands):
                try:
                    opcode = dictionary.command(cmd.command).id
                except KeyError:
                    raise SimulationError(f"{self.scenario.source}: commands[{i}].command: no command "
                                          f"{cmd.command!r} in this satellite's dictionary") from None
                body = msgpack.packb([opcode, list(cmd.args)], use_bin_type=True)
                scheduled.append((self.scenario.start_epoch + cmd.at, cmd.command, body))
        default_key = KeyRing.load(settings.key_file).ids[0] if sign is not None else 0
        ground = GroundMonitor(self.transceiver, settings.callsign, ground_dictionary, settings.ground,
                               self.environment.epoch_now, sign, noop, scheduled, settings.bit_rate,
                               default_key=default_key)
        if script.playback:
            self._ground_scratch = self._ground_scratch or tempfile.mkdtemp(prefix=f"flightsw-sim-ground-{self.scenario.name}-")
            self.archive = Archive(Path(self._ground_scratch) / "archive.sqlite3")
            ground.records = RecordIngest(self.archive, self.environment.epoch_now)
            ground.requests_per_pass = script.requests_per_pass
            ground.request_tail = not script.contact_aware  # no automatic playback to bring new records
            if request_opcode is not None:
                opcode = request_opcode
                ground.request_body = lambda ranges: msgpack.packb([opcode, [0, ranges]], use_bin_type=True)
        flight_files = entity_config_from(sat.config)
        if flight_files is not None and sign is not None:
            self._ground_scratch = self._ground_scratch or tempfile.mkdtemp(prefix=f"flightsw-sim-ground-{self.scenario.name}-")
            ground.files = GroundFileReceiver(flight_files, Path(self._ground_scratch), ground.send_file_pdu,
                                              self.environment.epoch_now)
        return ground

    def _loop_time(self) -> float:
        return self.loop.time() if self.loop is not None else 0.0

    # -- services -----------------------------------------------------------------------------
    async def _run_transceiver(self) -> None:
        await self.transceiver.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.transceiver.stop()

    async def _fault_timeline(self) -> None:
        assert self.applier is not None
        for at, injection, value in self.scenario.timeline():
            if at == 0 and injection.fault == UART_MISSING:
                continue  # applied before the boot (build)
            delay = self._t0 + at - self._loop_time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.applier.apply(at, injection, value)
            log.info("t+%.0fs fault %s.%s = %r", at, injection.target, injection.fault, value)
        await asyncio.Event().wait()

    def _burn_load_changed(self) -> None:
        """A burn wire switched: the World's power budget books it from this instant (a burn of a
        few seconds would fall between the ticker's samples)."""
        self.environment.sync()
        burning = any(w.burning for w in self._burn_wires.values())
        self.environment.set_load_state("burn_wire", "on" if burning else "off")

    def _powered(self) -> float:
        running = self._loop_time() - self._boot_at if self._boot_at is not None else 0.0
        return self._powered_s + running

    def _on_downlink_frame(self, at: float) -> None:
        if self._boot_frames and self._boot_frames[-1][1] is None:
            self._boot_frames[-1] = (self._boot_frames[-1][0], at)

    async def _silence_watch(self) -> None:
        """Note the downlink frames the transceiver had taken when the flight software had run the
        configured silence (its running time summed over boots: time off does not count)."""
        assert self.config.deployment is not None
        silence = self.config.deployment.silence_s
        while (left := silence - self._powered()) > 0:  # noqa: ASYNC110 - sleeps the time left; time off does not count
            await asyncio.sleep(max(left, 0.5))
        self._silence_end = (self._loop_time() - self._t0, self.transceiver.downlink.stats.frames_in)
        await asyncio.Event().wait()

    async def _sampler(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(SAMPLE_EVERY_S)

    def _sample(self) -> None:
        now = self.environment.epoch_now()
        down = float(self.ground.bytes_down) if self.ground else 0.0
        up = float(self._bytes_up())
        self.data_volume.append((now, down, up))
        if self.ground is not None and self.ground.records is not None:
            self.budget.append((now, float(self._bytes_recorded()), float(self.ground.bytes_by_apid[Apid.STORED])))
        if not self.modes_measured and self.sat is not None and self._port is not None:
            # no mode manager: the persisted mode, as the beacon reports it, while software runs
            mode = self.sat.state.get("mode")
            if mode is not None:
                self._record_mode(now, _mode_name(mode))

    def _record_mode(self, epoch: float, mode: str) -> None:
        if not self.modes or self.modes[-1][1] != mode:
            self.modes.append((epoch, mode))

    def _on_mode_changed(self, old: Any, new: Any, reason: Any) -> None:
        """ModeManager listener: the exact time of the change, SAFE entries, detumbling in the World.

        A boot's first call has old = "BOOT": the mode before it is the one the last boot ended
        in (none on the first boot, which starts from the stored default, SAFE)."""
        mode, before = _mode_name(new), _mode_name(old)
        if before == BOOT_MODE:
            before = self.modes[-1][1] if self.modes else mode
        if mode == SAFE_MODE and before != SAFE_MODE:
            self.safe_mode_entries += 1
        self._record_mode(self.environment.epoch_now(), mode)
        log.info("mode %s -> %s (%s)", _mode_name(old), mode, reason)
        self._set_detumbling(mode == DETUMBLE_MODE)

    def _set_detumbling(self, active: bool) -> None:
        if active == self._detumbling:
            return
        self._detumbling = active
        self.environment.sync()  # the command applies from now on, not from the last world tick
        self.environment.set_detumbling(active)
        self.environment.set_load_state("adcs", "detumble" if active else "idle")

    def _bytes_recorded(self) -> int:
        running = self.sat is not None and self._port is not None  # after a boot ended: in _finished
        live = self.sat.records.bytes_written if running and self.sat is not None else 0
        return self._finished["bytes_recorded"] + int(live)

    def _link_figure(self, name: str) -> float:
        """A link counter summed over every boot (the contact-aware downlink's figures)."""
        link = self._link() if self._port is not None else None  # after a boot ended: in _finished
        return self._finished[name] + (_link_figures(link).get(name, 0.0) if link is not None else 0.0)

    def _bytes_up(self) -> int:
        link = self._link()
        live = link.stats["bytes_received"] if link is not None and self._port is not None else 0
        return self._finished["bytes_up"] + int(live)

    def _link(self) -> Any:
        if self.sat is None:
            return None
        try:
            return self.sat.component("link")
        except KeyError:
            return None

    def _on_event(self, record: EventRecord) -> None:
        assert self.sat is not None
        self.event_counts[record.severity.name] += 1
        if record.name in FDIR_EVENTS:
            self.fdir_counts[FDIR_EVENTS[record.name]] += 1
        if record.name.startswith("imaging."):
            self.imaging.on_event(self.environment.epoch_now(), record.name, record.args)
        metric = LADDER_EVENTS.get(record.name)
        if metric is not None:
            self.ladder_events[metric] += 1
            if metric == "loss_of_contact_safe_defaults":
                self.last_safe_defaults = self.environment.epoch_now()
        if record.severity >= Severity.WARNING:
            text = record.text(self.sat.events.info(record.id).format)
            self.events.append((self.environment.epoch_now(), record.severity.name, f"{record.name}: {text}"))

    def _on_service_crash(self, svc: Service, exc: BaseException) -> None:
        log.warning("simulation service %s crashed: %s", svc.name, svc.last_error)

    def _bytes_not_yet_readable(self) -> int:
        """The loop's I/O arrival check (see io_accounting); 0 without a radio."""
        port, xcvr, ground = self._port, self.transceiver, self.ground
        if xcvr is None or ground is None:
            return 0
        flight_written = self._port_written_before + (port.bytes_written if port is not None else 0)
        flight_read = self._port_read_before + (port.bytes_read if port is not None else 0)
        return bytes_not_yet_readable(flight_written, flight_read, xcvr, ground)

    # -- running ------------------------------------------------------------------------------
    async def _main(self) -> str:
        self.build()  # held as self.sat only: a reset satellite must become garbage
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        self.loop = loop
        self._t0 = loop.time()
        self.environment.bind_clock(loop.time, self._t0)
        loop.add_io_arrival_check(self._bytes_not_yet_readable)
        try:
            async with asyncio.TaskGroup() as group:
                services = group.create_task(self.services.run(), name="sim.runner")
                try:
                    return await self._fly(self._t0 + self.scenario.duration_s)
                finally:
                    services.cancel()
        finally:
            loop.remove_io_arrival_check(self._bytes_not_yet_readable)
            self.environment.sync()

    async def _fly(self, end: float) -> str:
        """Boot, run until the end; after a watchdog reset boot again on the same data directory."""
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        loop.set_task_factory(self._boot_tasks.task_factory)
        try:
            return await self._boots(end, loop)
        finally:
            loop.set_task_factory(None)

    async def _boots(self, end: float, loop: VirtualTimeLoop) -> str:
        assert self.sat is not None
        sat = self.sat
        while True:
            self._boot_started(sat, loop)
            boot = len(self.boots)
            with self._boot_tasks.running(boot):
                reason = await sat.run(duration=end - loop.time())
            await self._power_off(sat, reason)
            await self._check_nothing_left(boot)
            if reason not in REBOOTING:
                return reason
            now = self.environment.epoch_now()
            if reason == "WATCHDOG":
                self.resets.append(now)
                what = "watchdog reset"
            else:  # an orderly restart the flight software asked for (FDIR, loss of contact)
                self.resets.append(now)
                self.commanded_reboots.append(now)
                what = f"restart ({reason})"
            self.events.append((now, RESET_SEVERITY, f"{what}: boot {sat.state.boot_count} ended, "
                                "the flight software starts again"))
            log.warning("simulated %s at t+%.0f s; booting again", what, loop.time() - self._t0)
            delay = min(self.options.boot_delay_s, end - loop.time())
            if delay > 0:
                await asyncio.sleep(delay)
            if loop.time() >= end:
                return reason
            # Building a satellite reads its stores and sets every component up (~150 ms): on
            # a worker thread, as a real boot happens before the flight loop exists.
            sat = await loop.run_in_executor(None, self._compose_finalized)
            self._attach(sat)
            # The reset satellite is unreferenced now, but each boot froze its heap out of the
            # cyclic collector: thaw, collect and freeze again (on a worker: the loop waits, in
            # no callback), or every reset would keep a whole satellite and its open files alive.
            await loop.run_in_executor(None, collect_frozen_garbage)

    def _boot_started(self, sat: Satellite, loop: VirtualTimeLoop) -> None:
        link = self._link()
        self._port = link.radio.serial if link is not None else None
        self._boot_at = loop.time()
        self._boot_frames.append((loop.time(), None))
        for bus in inline_buses(self.hardware, self.scenario, self.options.threaded_buses):
            loop.run_inline(bus.executor)

    async def _power_off(self, sat: Satellite, reason: str) -> None:
        """The boot ended: keep its counters; after a reset also what the board's reset takes away
        and `Satellite._hard_reset` leaves to the operating system (open device files, buses)."""
        link = self._link()
        if self._boot_at is not None:
            self._powered_s += self._loop_time() - self._boot_at
            self._boot_at = None
        self._finished["commands_rejected"] += int(sat.commands.stats["rejected_total"])
        self._finished["bytes_up"] += int(link.stats["bytes_received"]) if link is not None else 0
        self._finished["bytes_recorded"] += int(sat.records.bytes_written)
        for name, value in (_link_figures(link) if link is not None else {}).items():
            self._finished[name] += value  # type: ignore[assignment]
        port, self._port = self._port, None
        if port is not None:
            self._port_written_before += port.bytes_written
            self._port_read_before += port.bytes_read
        if reason == "WATCHDOG":
            self._set_detumbling(False)  # the computer commanding B-dot is down
            if port is not None:
                await port.close()
            if self.hardware is not None:
                await self.hardware.close()

    async def _check_nothing_left(self, boot: int) -> None:
        """Structured concurrency across a reset: no task of the stopped satellite may survive it.
        A survivor is a bug: it is named, counted and cancelled."""
        left = self._boot_tasks.left_behind(boot)
        for task in left:
            name = f"{task.get_name()} ({coroutine_name(task)})"
            log.error("task %s outlived the satellite that started it", name)
            self.leaked_tasks.append(name)
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=1.0)

    def run(self) -> SimResult:
        """Run the scenario to its end on a virtual-time loop, then measure and report."""
        wall = time.monotonic()
        speed = self.options.speed
        try:
            # The first boot's satellite is built before the loop runs, as a process starts
            # before its loop: reading stores and setting components up never holds the loop.
            self.build().finalize()
            # debug=False whatever PYTHONASYNCIODEBUG says: debug mode records a stack for each
            # of the millions of callbacks of a simulated day (the loop-block guard does not need it)
            with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(0.0, speed), debug=False) as runner:
                reason = runner.run(self._main())
            log.info("simulation stopped (%s) at %s", reason, self.world.state.utc.isoformat())
            wall_s = time.monotonic() - wall
            return self._result(wall_s)
        finally:
            if self.archive is not None:
                self.archive.close()
            for scratch in (self._scratch, self._ground_scratch):
                if scratch is not None:
                    shutil.rmtree(scratch, ignore_errors=True)

    # -- measuring ----------------------------------------------------------------------------
    def contacts(self) -> list[ContactTally]:
        """Passes from the World's AOS/LOS events, with the beacons received in each."""
        return measure_contacts(self.world, self.ground)

    def metrics(self, contacts: list[ContactTally]) -> dict[str, float]:
        assert self.sat is not None
        m: dict[str, float] = dict(self.world.metrics())
        m["events_warning"] = float(self.event_counts["WARNING"])
        m["events_error"] = float(sum(self.event_counts[s] for s in ("ERROR", "CRITICAL", "FATAL")))
        m["commands_rejected"] = float(self._finished["commands_rejected"])
        m["reboots"] = float(len(self.resets))
        for metric in FDIR_EVENTS.values():
            m[metric] = float(self.fdir_counts[metric])
        m["critical_service_resets"] = float(sum(1 for b in self.boots if b.reset_reason == "CRITICAL_SERVICE"))
        if self.imaging.plans or self.imaging.refusals:
            self.imaging.collect(self.config.data_dir / "images")
            m.update(self.imaging.metrics())
        if self.modes_measured:
            m["safe_mode_entries"] = float(self.safe_mode_entries)
        if self.transceiver is not None and self.ground is not None:
            m.update(link_metrics(self.transceiver, self.ground, contacts, self._bytes_up()))
            # the link after the last reset (deaf_radio: the board recovers its own radio link)
            last_reset = self.resets[-1] if self.resets else float("-inf")
            m["beacons_after_reset"] = float(sum(1 for t in self.ground.beacon_times if t > last_reset))
        if self.sat is not None and self.sat.config.loss_of_contact is not None:
            for metric in LADDER_EVENTS.values():
                m[metric] = float(self.ladder_events[metric])
            if self.ground is not None:
                m["ground_key_fallbacks"] = float(self.ground.key_fallbacks)
                m["ground_key_returns"] = float(self.ground.key_returns)
                if self.last_safe_defaults is not None:
                    # the ground's commands answered after the satellite fell back to its defaults
                    m["ground_commands_executed_after"] = float(
                        sum(1 for t in self.ground.verdict_times if t > self.last_safe_defaults))
        if self.loop is not None:
            m["io_hold_expired"] = float(self.loop.io_hold_expired)
        m.update(self._deployment_metrics())
        if self.ground is not None and self.ground.records is not None:
            m.update(self._store_and_forward_metrics(contacts))
        return m

    def _deployment_metrics(self) -> dict[str, float]:
        """The deployment sequence seen from the hardware side: frames before the silence was
        served, the first frame, the burn attempts and the release; and the flight record's state."""
        m: dict[str, float] = {}
        if self.scenario.launch is not None and self.transceiver is not None:
            stats = self.transceiver.downlink.stats
            if self._silence_end is not None:
                m["silence_end_s"], frames = float(self._silence_end[0]), self._silence_end[1]
                m["frames_before_silence_end"] = float(frames)
            else:  # the run ended within the silence: every frame was before its end
                m["frames_before_silence_end"] = float(stats.frames_in)
            if stats.first_frame_at is not None:
                m["first_frame_s"] = stats.first_frame_at - self._t0
            if self._silence_end is not None:
                end = self._t0 + self._silence_end[0]
                later = self._boot_frames[1:]  # the reboots
                m["reboots_during_silence"] = float(sum(1 for start, _ in later if start < end))
                m["reboots_after_silence"] = float(sum(1 for start, _ in later if start >= end))
                # a boot after the silence that kept quiet for a minute: it silenced again
                m["reboots_after_silence_silent"] = float(sum(
                    1 for start, first in later if start >= end and (first is None or first - start > 60.0)))
        if self._burn_wires:
            wires = list(self._burn_wires.values())
            m["burn_attempts"] = float(sum(w.attempts for w in wires))
            released = [w for w in wires if w.released]
            m["antennas_released"] = float(bool(released))
            if released:
                m["antenna_release_attempt"] = float(released[0].released_on_attempt or 0)
                outputs = self.config.deployment.burn_outputs if self.config.deployment is not None else []
                name = next(n for n, w in self._burn_wires.items() if w is released[0])
                if name in outputs:
                    m["antenna_release_circuit"] = float(outputs.index(name))
        record = self.sat.state.get("deployment") if self.sat is not None else None
        if isinstance(record, dict):
            m["deployment_deployed"] = float(record.get("state") == "DEPLOYED")
        return m

    def _store_and_forward_metrics(self, contacts: list[ContactTally]) -> dict[str, float]:
        """The data budget and the archive's completeness (read from the flight record log)."""
        assert self.ground is not None and self.archive is not None and self.sat is not None
        until = self.scenario.ground.completeness_until
        m = store_and_forward_metrics(
            self.sat.records, self.archive, self.ground, contacts,
            None if until is None else self.scenario.start_epoch + until)
        m["bytes_recorded"] = float(self._bytes_recorded())
        for name in LINK_FIGURES:
            m[name] = self._link_figure(name)
        contact = self.config.contact
        if contact is not None:
            m["energy_saved_wh"] = m["airtime_saved_s"] * contact.tx_extra_power_w / 3600.0
        return m

    def _pass_goodput(self, contacts: list[ContactTally]) -> list[tuple[str, float, float, float]]:
        """(station, AOS, LOS, played-back bytes received) of every pass, for the report."""
        if self.ground is None or self.ground.records is None:
            return []
        arrivals = self.ground.stored_arrivals
        return [(c.station, c.aos, c.los, float(sum(n for t, n in arrivals if c.aos <= t <= c.los + 1.0)))
                for c in contacts]

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
                metrics=metrics, resets=list(self.resets), data_budget=list(self.budget),
                pass_goodput=self._pass_goodput(contacts), captures=self.imaging.shots())
            index = build_report(self.options.report_dir, data)
        return SimResult(self.scenario, metrics, expectations, contacts, list(self.events), index, wall_s,
                         boots=list(self.boots), modes=list(self.modes),
                         world_series={k: list(v) for k, v in self.world.recording.columns.items()},
                         frames_digest=self.transceiver.frames_digest() if self.transceiver is not None else "")


LINK_FIGURES = ("frames_sent", "frames_sent_out_of_contact", "frames_sent_out_of_contact_other", "airtime_s",
                "airtime_saved_s", "frames_saved")


def _link_figures(link: Any) -> dict[str, float]:
    """One boot's transmit figures from its link component."""
    return {"frames_sent": float(link.scheduler.frames_sent), "airtime_s": float(link.scheduler.airtime_total),
            "frames_sent_out_of_contact": float(link.contact_stats["frames_out_of_contact"]),
            "frames_sent_out_of_contact_other": float(link.contact_stats["frames_out_of_contact_other"]),
            "airtime_saved_s": float(link.airtime_saved_s), "frames_saved": float(link.contact_stats["frames_saved"])}


def _mode_name(mode: Any) -> str:
    """A mode as its upper-case name, whether the manager hands an enum member or a string."""
    return str(getattr(mode, "name", mode)).upper()


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

