"""Scenario files: a simulated mission day described in TOML, loaded and checked before it runs.

A scenario fixes everything that makes a run reproducible (start epoch, duration, seed, orbit,
ground stations, initial battery), the timed fault injections to apply to simulated devices, the
I2C bus or the radio link, and the expectations the run must meet. Every mistake in a file is
reported with its location (``faults[2].fault: ...``) before any simulation time is spent.
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sim.environment.contacts import ALMATY, GroundStation
from sim.environment.orbit import Orbit, OrbitError, sso_satrec
from sim.environment.power import END_OF_LIFE, BatteryConfig, PowerConfig
from sim.environment.world import World, WorldConfig
from sim.faults import BusFaults, PartFaults

SCENARIO_DIR = Path(__file__).parent / "scenarios"
MAX_DURATION_S = 30 * 86400.0

LINK_FAULTS: dict[str, type] = {"frame_loss": float, "bit_error_rate": float, "blackout": bool,
                                "uart_missing": bool, "uplink_blackout": bool}
# Software faults: `target = "rategroup.<name>"` (a rate group of the mission config).
SOFTWARE_TARGET_PREFIX = "rategroup."
SOFTWARE_FAULTS = frozenset({"hang"})
COMMAND_NAME = re.compile(r"[a-z][a-z0-9_]*\.[A-Z][A-Z0-9_]*")
PART_FAULTS = {f.name: f for f in fields(PartFaults)}
BUS_FAULTS = {f.name: f for f in fields(BusFaults)}

# Figures the World measures itself (see World.metrics) ...
WORLD_METRICS = frozenset({
    "duration_h", "eclipses", "contacts", "battery_soc_min", "battery_soc_max", "battery_soc_end",
    "battery_voltage_min", "battery_voltage_max", "undervoltage_s", "solar_energy_wh",
    "load_energy_wh", "energy_residual_wh", "rate_deg_s_end",
})
WORLD_METRIC_PATTERNS = (re.compile(r"temperature_[a-z0-9_]+_(min|max)"), re.compile(r"contacts_[a-z0-9_-]+"))
# ... and figures the simulation runner measures from the flight software and the link.
RUN_METRICS = frozenset({
    "beacons_received", "contacts_without_beacon", "usable_contacts", "usable_contacts_without_beacon",
    "frames_down", "frames_corrupted", "frame_error_ratio", "frames_up", "frames_lost",
    "frame_loss_ratio", "bytes_down", "bytes_up", "events_warning", "events_error",
    "commands_rejected", "reboots", "safe_mode_entries", "images_downlinked",
    # the deployment sequence ([launch] scenarios): silence measured at the simulated transceiver
    "frames_before_silence_end", "first_frame_s", "silence_end_s", "antennas_released",
    "antenna_release_attempt", "antenna_release_circuit", "burn_attempts", "deployment_deployed",
    "reboots_during_silence", "reboots_after_silence", "reboots_after_silence_silent",
    "watchpoint_responses", "watchpoint_yellows", "parts_isolated", "critical_service_alarms",
    "critical_service_resets", "beacons_after_reset",
    # store and forward ([ground] playback / contact_aware): the data budget and the archive
    "hk_archive_completeness", "archive_duplicates", "archive_gaps", "archive_missing_records",
    "bytes_recorded", "records_recorded", "bytes_down_stored", "bytes_down_housekeeping",
    "bytes_down_events", "bytes_down_beacon", "bytes_down_verdict", "bytes_down_file",
    "backlog_records_end", "backlog_bytes_end", "goodput_mean_bps", "playback_requests_sent",
    "frames_sent", "frames_sent_out_of_contact", "frames_sent_out_of_contact_other", "airtime_s",
    "airtime_saved_s", "energy_saved_wh", "frames_saved",
    # the loss-of-contact ladder and the ground's command counters
    "loss_of_contact_radio_resets", "loss_of_contact_reboots", "loss_of_contact_safe_defaults",
    "ground_commands_executed_after", "ground_key_fallbacks", "ground_key_returns",
    # imaging over targets (flightsw.sim_runner.imaging): planned, taken with the target in frame, refused
    "targets_planned", "targets_pointed", "targets_in_frame", "targets_refused_dark", "targets_refused_frame",
    "pointing_failures", "off_nadir_deg_max", "settle_s_max",
})

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


class ScenarioError(ValueError):
    """A scenario file that cannot run; the message names the file and the offending key."""


def parse_duration(value: Any, where: str) -> float:
    """Seconds from a number or a string like "24h", "1h30m", "90s", "2d"."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected a duration, got a boolean")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.strip() and (m := _DURATION.match(value)) and any(m.groups()):
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = d * 86400 + h * 3600 + mi * 60 + s
    else:
        raise ScenarioError(f"{where}: {value!r} is not a duration (seconds or e.g. '24h', '1h30m', '90s')")
    if seconds < 0:
        raise ScenarioError(f"{where}: duration {value!r} is negative")
    return seconds


@dataclass(frozen=True)
class FaultInjection:
    """Set `fault` of `target` to `value` at `at` seconds after start; undo at `until` if given."""

    at: float
    target: str  # a device name, "bus" (the simulated I2C bus) or "link" (the radio channel)
    fault: str
    value: Any
    until: float | None = None

    @property
    def software(self) -> bool:
        """A fault of the flight software itself (a hung rate group), not of a simulated device."""
        return self.target.startswith(SOFTWARE_TARGET_PREFIX)

    @property
    def cleared_value(self) -> Any:
        """The value that undoes the fault: the injector's own default."""
        if self.software:
            return False
        if self.target == "link":
            return False if LINK_FAULTS[self.fault] is bool else 0.0
        table = BUS_FAULTS if self.target == "bus" else PART_FAULTS
        return table[self.fault].default


@dataclass(frozen=True)
class GroundCommand:
    """A telecommand the ground sends in the first contact at or after `at` seconds from start."""

    at: float
    command: str  # "component.NAME", e.g. "imaging.CAPTURE_NOW"
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class GroundScript:
    """What the scripted ground and the run's configuration do for store and forward.

    ``playback``: the ground archives what comes down (live and played back) and each pass asks
    for the record numbers it lacks (at most ``requests_per_pass`` playback requests).
    ``contact_aware``: the satellite gets ``[contact]`` for the scenario's stations, with the
    World's orbit as the TLE loaded before launch, predicting passes above
    ``contact_min_elevation_deg`` (where the link budget closes). ``completeness_until``: the archive's
    completeness is measured on the housekeeping recorded up to this time from start.
    """

    playback: bool = False
    contact_aware: bool = False
    requests_per_pass: int = 4
    completeness_until: float | None = None
    contact_min_elevation_deg: float = 0.0  # the satellite's pass mask (at least the station's)


@dataclass(frozen=True)
class AdcsScript:
    """``[adcs]``: the run's mission config gets a simulated ADCS unit (``[[devices]]`` kind
    ``adcs``), so imaging plans pointed captures (docs/imaging.md, "Pointing")."""

    slew_rate_deg_s: float = 2.0
    settle_s: float = 5.0


@dataclass(frozen=True)
class Expectation:
    metric: str
    min: float | None = None
    max: float | None = None

    def check(self, metrics: Mapping[str, float]) -> ExpectationResult:
        value = metrics.get(self.metric)
        if value is None:
            return ExpectationResult(self, None, False, "not measured by this run")
        if self.min is not None and value < self.min:
            return ExpectationResult(self, value, False, f"{value:g} is below the minimum {self.min:g}")
        if self.max is not None and value > self.max:
            return ExpectationResult(self, value, False, f"{value:g} is above the maximum {self.max:g}")
        return ExpectationResult(self, value, True, "ok")


@dataclass(frozen=True)
class ExpectationResult:
    expectation: Expectation
    value: float | None
    passed: bool
    reason: str


@dataclass(frozen=True)
class Launch:
    """The satellite as the deployer releases it (``[launch]``): the run's first boot is the first
    boot after separation, with RF silence and antenna deployment (the mission config's
    ``[deployment]`` section, its ``first_boot`` overridden to "stowed")."""

    silence_s: float | None = None  # overrides deployment.silence_s
    failed_burns: dict[str, int] = field(default_factory=dict)  # burn-wire output -> attempts that fail


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    start: datetime
    duration_s: float
    seed: int
    orbit: Orbit
    stations: tuple[GroundStation, ...]
    initial_soc: float
    faults: tuple[FaultInjection, ...]
    expectations: tuple[Expectation, ...]
    tick_s: float = 1.0
    commands: tuple[GroundCommand, ...] = ()
    source: str = "<string>"
    extra: dict[str, Any] = field(default_factory=dict)
    ageing: dict[str, float] = field(default_factory=dict)  # [power]: END_OF_LIFE keys, 0/1 = new
    launch: Launch | None = None  # [launch]: start stowed, right after separation
    ground: GroundScript = GroundScript()
    adcs: AdcsScript | None = None  # [adcs]: a simulated ADCS is added to the mission config

    @property
    def start_epoch(self) -> float:
        return self.start.timestamp()

    @property
    def end_epoch(self) -> float:
        return self.start_epoch + self.duration_s

    def world_config(self) -> WorldConfig:
        age = self.ageing
        power = PowerConfig(
            battery=BatteryConfig(initial_soc=self.initial_soc,
                                  capacity_fade=age.get("battery_capacity_fade", 0.0),
                                  resistance_growth=age.get("battery_resistance_growth", 1.0)),
            array_degradation=age.get("array_degradation", 0.0),
            wiring_loss=age.get("wiring_loss", 0.0),
        )
        record_every = max(self.tick_s, 60.0 if self.duration_s <= 7 * 86400 else 300.0)
        return WorldConfig(orbit=self.orbit, stations=self.stations, power=power, tick_s=self.tick_s,
                           record_every_s=record_every)

    def build_world(self) -> World:
        return World(self.world_config(), start=self.start, seed=self.seed)

    def timeline(self) -> list[tuple[float, FaultInjection, Any]]:
        """(seconds after start, injection, value to set) for every set and clear, in time order."""
        actions: list[tuple[float, FaultInjection, Any]] = []
        for fault in self.faults:
            actions.append((fault.at, fault, fault.value))
            if fault.until is not None:
                actions.append((fault.until, fault, fault.cleared_value))
        return sorted(actions, key=lambda a: a[0])

    def evaluate(self, metrics: Mapping[str, float]) -> list[ExpectationResult]:
        return [e.check(metrics) for e in self.expectations]


class RateGroupHangs:
    """Hangs of the running flight software's rate groups: one per boot of the satellite.

    Why a member and not a stopped task: a real hang is a call that never returns while the
    rest of the process (and the event loop) keeps running. The member added to each group
    awaits an event while its group is hung, so the group stops cycling, its heartbeat goes
    stale, the health monitor stops petting and the watchdog bites. A hang belongs to the
    software that hung: the next boot gets a new, unhung instance. Releasing (the fault's
    `until`) lets the group go on, as a long stall that ends by itself would.
    """

    MEMBER = "sim.hang"

    def __init__(self, rate_groups: Mapping[str, Any]) -> None:
        self._released: dict[str, asyncio.Event] = {}
        self.hung_cycles: dict[str, int] = {}
        for name, group in rate_groups.items():
            group.add(self.MEMBER, self._member(name))

    def _member(self, name: str) -> Callable[[], Awaitable[None]]:
        async def hang_point() -> None:
            released = self._released.get(name)
            if released is not None:
                self.hung_cycles[name] = self.hung_cycles.get(name, 0) + 1
                await released.wait()

        return hang_point

    @property
    def groups(self) -> list[str]:
        return sorted(self.hung_cycles.keys() | self._released.keys())

    def is_hung(self, name: str) -> bool:
        return name in self._released

    def hang(self, name: str) -> None:
        self._released.setdefault(name, asyncio.Event())

    def release(self, name: str) -> None:
        released = self._released.pop(name, None)
        if released is not None:
            released.set()


class FaultApplier:
    """Applies a scenario's fault actions to the simulated parts, buses, radio channel and software.

    `parts` maps device names to their simulated parts (``SensorDevice.sim_part``), `buses` are
    the ``SimI2CBus`` objects, `channel` the transceiver's ``ChannelModel``, `gate` its
    ``ContactGate`` (for blackouts) and `hangs` the running boot's ``RateGroupHangs``. A target
    the run does not have is an error, not a no-op.
    """

    def __init__(self, parts: Mapping[str, Any] | None = None, buses: Iterable[Any] = (),
                 channel: Any = None, gate: Any = None, hangs: RateGroupHangs | None = None,
                 transceiver: Any = None) -> None:
        self.parts = dict(parts or {})
        self.buses = list(buses)
        self.channel = channel
        self.gate = gate
        self.transceiver = transceiver
        self.hangs = hangs
        self.applied: list[tuple[float, str, str, Any]] = []

    def rebind(self, parts: Mapping[str, Any], buses: Iterable[Any], hangs: RateGroupHangs | None) -> None:
        """A new boot of the flight software on the same hardware: the devices keep the fault
        state they have now (a latched-up sensor stays latched up across a computer reset); the
        software faults do not carry over (the hung process is gone)."""
        by_number = {getattr(b, "bus_number", i): b for i, b in enumerate(self.buses)}
        for name, part in parts.items():
            old = self.parts.get(name)
            if old is not None:
                part.faults = old.faults
        new_buses = list(buses)
        for i, bus in enumerate(new_buses):
            old_bus = by_number.get(getattr(bus, "bus_number", i))
            if old_bus is not None:
                bus.faults = old_bus.faults
        self.parts = dict(parts)
        self.buses = new_buses
        self.hangs = hangs

    def apply(self, at: float, injection: FaultInjection, value: Any) -> None:
        target, fault = injection.target, injection.fault
        if injection.software:
            if self.hangs is None:
                raise ScenarioError(f"software fault {target}.{fault} needs the running flight software")
            group = target.removeprefix(SOFTWARE_TARGET_PREFIX)
            if value:
                self.hangs.hang(group)
            else:
                self.hangs.release(group)
        elif target == "link":
            if fault == "uart_missing":
                if self.transceiver is None:
                    raise ScenarioError("link uart_missing needs the simulated transceiver")
                self.transceiver.set_uart_present(not value)
            elif fault == "blackout":
                if self.gate is None:
                    raise ScenarioError("link blackout needs the transceiver's contact gate")
                self.gate.blackout = bool(value)
            elif fault == "uplink_blackout":
                if self.channel is None:
                    raise ScenarioError("link uplink_blackout needs the simulated transceiver's channel")
                self.channel.uplink_blackout = bool(value)
            else:
                if self.channel is None:
                    raise ScenarioError(f"link fault {fault} needs the simulated transceiver's channel")
                setattr(self.channel, fault, float(value))
        elif target == "bus":
            if not self.buses:
                raise ScenarioError("bus fault with no simulated I2C bus in this run")
            for bus in self.buses:
                setattr(bus.faults, fault, value)
        else:
            part = self.parts.get(target)
            if part is None:
                raise ScenarioError(f"fault target {target!r} is not a simulated part here; parts: {sorted(self.parts)}")
            setattr(part.faults, fault, value)
        self.applied.append((at, target, fault, value))


def known_metric(name: str) -> bool:
    return name in WORLD_METRICS or name in RUN_METRICS or any(p.fullmatch(name) for p in WORLD_METRIC_PATTERNS)


def load_scenario(path: str | Path, devices: Iterable[str] | None = None,
                  rate_groups: Iterable[str] | None = None) -> Scenario:
    """Load a scenario file; `devices` and `rate_groups` (names from the mission config) check
    fault targets (the runner checks them again against the satellite it builds)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read scenario ({exc.strerror})") from exc
    return loads_scenario(text, str(p), devices, rate_groups)


def builtin_scenario(name: str) -> Path:
    """Path of a scenario shipped in sim/scenarios (name without .toml)."""
    candidate = SCENARIO_DIR / f"{name}.toml"
    if not candidate.is_file():
        shipped = sorted(f.stem for f in SCENARIO_DIR.glob("*.toml"))
        raise ScenarioError(f"no built-in scenario {name!r}; shipped: {shipped}")
    return candidate


def loads_scenario(text: str, source: str = "<string>", devices: Iterable[str] | None = None,
                   rate_groups: Iterable[str] | None = None) -> Scenario:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from exc
    return _Parser(source, set(devices) if devices is not None else None,
                   set(rate_groups) if rate_groups is not None else None).scenario(raw)


class _Parser:
    def __init__(self, source: str, devices: set[str] | None, rate_groups: set[str] | None = None) -> None:
        self.source = source
        self.devices = devices
        self.rate_groups = rate_groups

    def fail(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {where}: {message}")

    def table(self, raw: Mapping[str, Any], key: str, allowed: set[str], required: bool = False) -> dict[str, Any]:
        value = raw.get(key)
        if value is None:
            if required:
                raise self.fail(key, "missing table")
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {type(value).__name__}")
        self.no_unknown(value, allowed, key)
        return value

    def no_unknown(self, value: Mapping[str, Any], allowed: set[str], where: str) -> None:
        unknown = set(value) - allowed
        if unknown:
            raise self.fail(where, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")

    def number(self, value: Any, where: str, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"expected a number, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(where, f"{value} is outside [{lo}, {hi}]")
        return float(value)

    def scenario(self, raw: dict[str, Any]) -> Scenario:
        self.no_unknown(raw, {"scenario", "orbit", "stations", "battery", "power", "faults", "expect", "commands",
                              "launch", "ground", "adcs"}, "top level")
        head = self.table(raw, "scenario", {"name", "description", "start", "duration", "seed", "tick_s"}, True)
        for key in ("name", "start", "duration"):
            if key not in head:
                raise self.fail(f"scenario.{key}", "missing")
        name = head["name"]
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
            raise self.fail("scenario.name", f"{name!r} must be a short lowercase identifier")
        start = head["start"]
        if isinstance(start, str):
            try:
                start = datetime.fromisoformat(start.replace("Z", "+00:00"))
            except ValueError as exc:
                raise self.fail("scenario.start", f"{start!r} is not an ISO-8601 time") from exc
        if not isinstance(start, datetime) or start.tzinfo is None:
            raise self.fail("scenario.start", "must be a UTC date-time with offset, e.g. 2026-06-01T00:00:00Z")
        start = start.astimezone(UTC)
        duration = parse_duration(head["duration"], f"{self.source}: scenario.duration")
        if not 0 < duration <= MAX_DURATION_S:
            raise self.fail("scenario.duration", f"{duration:g} s is outside (0, 30 days]")
        seed = head.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise self.fail("scenario.seed", f"expected a non-negative integer, got {seed!r}")
        tick = self.number(head.get("tick_s", 1.0), "scenario.tick_s", 0.01, 30.0)
        orbit = self.orbit(self.table(raw, "orbit", {"tle", "altitude_km", "ltdn_hours", "epoch"}), start)
        stations = self.stations(raw.get("stations"))
        battery = self.table(raw, "battery", {"initial_soc"})
        soc = self.number(battery.get("initial_soc", 0.8), "battery.initial_soc", 0.0, 1.0)
        ageing = self.power(self.table(raw, "power", {"end_of_life", *END_OF_LIFE}))
        faults = self.faults(raw.get("faults", []), duration)
        expectations = self.expectations(raw.get("expect", []), {s.name for s in stations})
        commands = self.commands(raw.get("commands", []), duration)
        launch = self.launch(raw) if "launch" in raw else None
        ground = self.ground(self.table(raw, "ground", {"playback", "contact_aware", "requests_per_pass",
                                                        "completeness_until", "contact_min_elevation_deg"}), duration)
        adcs = None
        if "adcs" in raw:
            table = self.table(raw, "adcs", {"slew_rate_deg_s", "settle_s"})
            adcs = AdcsScript(self.number(table.get("slew_rate_deg_s", 2.0), "adcs.slew_rate_deg_s", 0.1, 30.0),
                              self.number(table.get("settle_s", 5.0), "adcs.settle_s", 0.0, 600.0))
        return Scenario(
            name=name, description=str(head.get("description", "")), start=start, duration_s=duration,
            seed=seed, orbit=orbit, stations=stations, initial_soc=soc, faults=faults,
            expectations=expectations, tick_s=tick, source=self.source, commands=commands, ageing=ageing,
            launch=launch,
            ground=ground,
            adcs=adcs,
        )

    def launch(self, raw: dict[str, Any]) -> Launch:
        table = self.table(raw, "launch", {"stowed", "silence", "failed_burns"})
        if table.get("stowed", True) is not True:
            raise self.fail("launch.stowed", "expected true (leave out [launch] for a satellite already deployed)")
        silence = None
        if "silence" in table:
            silence = parse_duration(table["silence"], f"{self.source}: launch.silence")
            if silence > 86400.0:
                raise self.fail("launch.silence", f"{silence:g} s is outside [0, 86400]")
        failed = table.get("failed_burns", {})
        if not isinstance(failed, dict):
            raise self.fail("launch.failed_burns", "expected a table of burn-wire output = attempts that fail")
        for name, count in failed.items():
            if self.devices is not None and name not in self.devices:
                raise self.fail(f"launch.failed_burns.{name}", f"no device {name!r} in the mission config")
            self.number(count, f"launch.failed_burns.{name}", 0, 100)
        return Launch(silence_s=silence, failed_burns={k: int(v) for k, v in failed.items()})

    def ground(self, table: dict[str, Any], duration: float) -> GroundScript:
        flags = {}
        for key in ("playback", "contact_aware"):
            value = table.get(key, False)
            if not isinstance(value, bool):
                raise self.fail(f"ground.{key}", f"expected true or false, got {value!r}")
            flags[key] = value
        per_pass = int(self.number(table.get("requests_per_pass", 4), "ground.requests_per_pass", 0, 100))
        until = None
        if "completeness_until" in table:
            until = parse_duration(table["completeness_until"], f"{self.source}: ground.completeness_until")
            if not 0 < until <= duration:
                raise self.fail("ground.completeness_until", f"{until:g} s is outside (0, {duration:g}]")
        mask = self.number(table.get("contact_min_elevation_deg", 0.0), "ground.contact_min_elevation_deg", 0.0, 60.0)
        return GroundScript(flags["playback"], flags["contact_aware"], per_pass, until, mask)

    def power(self, table: dict[str, Any]) -> dict[str, float]:
        """`end_of_life = true` takes END_OF_LIFE; single keys set or override a factor."""
        eol = table.get("end_of_life", False)
        if not isinstance(eol, bool):
            raise self.fail("power.end_of_life", f"expected true or false, got {eol!r}")
        ageing = dict(END_OF_LIFE) if eol else {}
        ranges = {"array_degradation": (0.0, 0.5), "wiring_loss": (0.0, 0.2),
                  "battery_capacity_fade": (0.0, 0.5), "battery_resistance_growth": (1.0, 5.0)}
        for key, (lo, hi) in ranges.items():
            if key in table:
                ageing[key] = self.number(table[key], f"power.{key}", lo, hi)
        return ageing

    def commands(self, raw: Any, duration: float) -> tuple[GroundCommand, ...]:
        if not isinstance(raw, list):
            raise self.fail("commands", "expected an array of tables [[commands]]")
        result = []
        for i, entry in enumerate(raw):
            where = f"commands[{i}]"
            if not isinstance(entry, dict):
                raise self.fail(where, "expected a table")
            self.no_unknown(entry, {"at", "command", "args"}, where)
            for key in ("at", "command"):
                if key not in entry:
                    raise self.fail(f"{where}.{key}", "missing")
            at = parse_duration(entry["at"], f"{self.source}: {where}.at")
            if at > duration:
                raise self.fail(f"{where}.at", f"{at:g} s is after the end of the scenario ({duration:g} s)")
            name = entry["command"]
            if not isinstance(name, str) or not COMMAND_NAME.fullmatch(name):
                raise self.fail(f"{where}.command", f"{name!r} is not a command name like 'imaging.CAPTURE_NOW'")
            args = entry.get("args", [])
            if not isinstance(args, list):
                raise self.fail(f"{where}.args", f"expected an array of arguments, got {args!r}")
            result.append(GroundCommand(at, name, tuple(args)))
        return tuple(sorted(result, key=lambda c: c.at))

    def orbit(self, raw: dict[str, Any], start: datetime) -> Orbit:
        try:
            if "tle" in raw:
                if set(raw) - {"tle"}:
                    raise self.fail("orbit", "give either tle or elements (altitude_km, ltdn_hours), not both")
                tle = raw["tle"]
                if not (isinstance(tle, list) and len(tle) == 2 and all(isinstance(x, str) for x in tle)):
                    raise self.fail("orbit.tle", "expected two strings, the TLE lines")
                return Orbit.from_tle(tle[0], tle[1])
            epoch = raw.get("epoch", start)
            if not isinstance(epoch, datetime) or epoch.tzinfo is None:
                raise self.fail("orbit.epoch", "must be a UTC date-time with offset")
            altitude = self.number(raw.get("altitude_km", 530.0), "orbit.altitude_km", 150.0, 2000.0)
            ltdn = self.number(raw.get("ltdn_hours", 10.5), "orbit.ltdn_hours", 0.0, 23.999)
            return Orbit(sso_satrec(epoch=epoch, altitude_km=altitude, ltdn_hours=ltdn))
        except OrbitError as exc:
            raise self.fail("orbit", str(exc)) from exc

    def stations(self, raw: Any) -> tuple[GroundStation, ...]:
        if raw is None:
            return (ALMATY,)
        if not isinstance(raw, list) or not raw:
            raise self.fail("stations", "expected a non-empty array of tables [[stations]]")
        result = []
        allowed = {"name", "lat_deg", "lon_deg", "alt_m", "min_elevation_deg"}
        for i, entry in enumerate(raw):
            where = f"stations[{i}]"
            if not isinstance(entry, dict):
                raise self.fail(where, "expected a table")
            self.no_unknown(entry, allowed, where)
            for key in ("name", "lat_deg", "lon_deg"):
                if key not in entry:
                    raise self.fail(f"{where}.{key}", "missing")
            try:
                result.append(GroundStation(
                    str(entry["name"]), self.number(entry["lat_deg"], f"{where}.lat_deg", -90, 90),
                    self.number(entry["lon_deg"], f"{where}.lon_deg", -180, 360),
                    self.number(entry.get("alt_m", 0.0), f"{where}.alt_m", -500, 9000),
                    self.number(entry.get("min_elevation_deg", 0.0), f"{where}.min_elevation_deg", -5, 89.9),
                ))
            except ValueError as exc:
                if isinstance(exc, ScenarioError):
                    raise
                raise self.fail(where, str(exc)) from exc
        names = [s.name for s in result]
        if len(set(names)) != len(names):
            raise self.fail("stations", f"duplicate station names {names}")
        return tuple(result)

    def faults(self, raw: Any, duration: float) -> tuple[FaultInjection, ...]:
        if not isinstance(raw, list):
            raise self.fail("faults", "expected an array of tables [[faults]]")
        result = []
        for i, entry in enumerate(raw):
            where = f"faults[{i}]"
            if not isinstance(entry, dict):
                raise self.fail(where, "expected a table")
            self.no_unknown(entry, {"at", "until", "target", "fault", "value"}, where)
            for key in ("at", "target", "fault"):
                if key not in entry:
                    raise self.fail(f"{where}.{key}", "missing")
            at = parse_duration(entry["at"], f"{self.source}: {where}.at")
            until = parse_duration(entry["until"], f"{self.source}: {where}.until") if "until" in entry else None
            if at > duration:
                raise self.fail(f"{where}.at", f"{at:g} s is after the end of the scenario ({duration:g} s)")
            if until is not None and until <= at:
                raise self.fail(f"{where}.until", f"{until:g} s is not after at = {at:g} s")
            target, fault = entry["target"], entry["fault"]
            if not isinstance(target, str) or not isinstance(fault, str):
                raise self.fail(where, "target and fault must be strings")
            value = self.fault_value(target, fault, entry.get("value", True), where)
            result.append(FaultInjection(at, target, fault, value, until))
        return tuple(result)

    def fault_value(self, target: str, fault: str, value: Any, where: str) -> Any:
        if target.startswith(SOFTWARE_TARGET_PREFIX):
            group = target.removeprefix(SOFTWARE_TARGET_PREFIX)
            if self.rate_groups is not None and group not in self.rate_groups:
                raise self.fail(f"{where}.target", f"no rate group {group!r} in the mission config; "
                                f"rate groups: {sorted(self.rate_groups)}")
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", group):
                raise self.fail(f"{where}.target", f"{target!r} must name a rate group, e.g. 'rategroup.slow'")
            if fault not in SOFTWARE_FAULTS:
                raise self.fail(f"{where}.fault", f"unknown software fault {fault!r}; known: {sorted(SOFTWARE_FAULTS)}")
            if value is not True:
                raise self.fail(f"{where}.value", f"{fault} takes true (end it with `until`), got {value!r}")
            return value
        if fault in SOFTWARE_FAULTS:
            raise self.fail(f"{where}.fault", f"{fault} is a software fault: its target is a rate group "
                            f"('{SOFTWARE_TARGET_PREFIX}<name>'), not {target!r}")
        if target == "link":
            if fault not in LINK_FAULTS:
                raise self.fail(f"{where}.fault", f"unknown link fault {fault!r}; known: {sorted(LINK_FAULTS)}")
            if LINK_FAULTS[fault] is bool:
                if not isinstance(value, bool):
                    raise self.fail(f"{where}.value", f"link fault {fault} takes true/false")
                return value
            return self.number(value, f"{where}.value", 0.0, 1.0)
        if target != "bus" and self.devices is not None and target not in self.devices:
            raise self.fail(f"{where}.target", f"no device {target!r} in the mission config; devices: {sorted(self.devices)}")
        table, cls = (BUS_FAULTS, BusFaults) if target == "bus" else (PART_FAULTS, PartFaults)
        if fault not in table:
            raise self.fail(f"{where}.fault", f"unknown {'bus' if target == 'bus' else 'device'} fault {fault!r}; known: {sorted(table)}")
        try:
            cls(**{fault: value})  # the injector's own validation (probabilities, latencies)
        except (TypeError, ValueError) as exc:
            raise self.fail(f"{where}.value", str(exc)) from exc
        default = table[fault].default
        if isinstance(default, bool) != isinstance(value, bool):
            raise self.fail(f"{where}.value", f"{fault} takes {'true/false' if isinstance(default, bool) else 'a number'}, got {value!r}")
        return value

    def expectations(self, raw: Any, station_names: set[str]) -> tuple[Expectation, ...]:
        if not isinstance(raw, list):
            raise self.fail("expect", "expected an array of tables [[expect]]")
        result = []
        for i, entry in enumerate(raw):
            where = f"expect[{i}]"
            if not isinstance(entry, dict):
                raise self.fail(where, "expected a table")
            self.no_unknown(entry, {"metric", "min", "max"}, where)
            metric = entry.get("metric")
            if not isinstance(metric, str) or not known_metric(metric):
                raise self.fail(f"{where}.metric", f"unknown metric {metric!r}; known: {sorted(WORLD_METRICS | RUN_METRICS)} "
                                "plus temperature_<node>_min/max and contacts_<station>")
            if metric.startswith("contacts_") and metric not in RUN_METRICS and metric[9:] not in station_names:
                raise self.fail(f"{where}.metric", f"no station {metric[9:]!r} in this scenario")
            lo = self.number(entry["min"], f"{where}.min", -1e12, 1e12) if "min" in entry else None
            hi = self.number(entry["max"], f"{where}.max", -1e12, 1e12) if "max" in entry else None
            if lo is None and hi is None:
                raise self.fail(where, "give min, max or both")
            if lo is not None and hi is not None and lo > hi:
                raise self.fail(where, f"min {lo:g} is above max {hi:g}")
            result.append(Expectation(metric, lo, hi))
        return tuple(result)
