"""Soak: the reference mission flown for a simulated week under random faults, each one checked
against the response docs/operations.md and docs/modes.md document for it.

One :class:`~flightsw.sim_runner.runner.SimulationRun` (the accelerated simulator, its fault
injection and its scripted ground with store and forward), extended by :class:`SoakRun` with the
faults the scenario format has no key for (a task crash, a clock step, a drained battery) and with
the campaign's observers. The fault schedule is drawn from the seed (:func:`plan`), so a run is
reproducible. For every fault the campaign measures, in simulated time, when the satellite was
healthy again (time to recover) and checks that the documented response happened; at the end it
checks that no service is left FAILED, that memory and disk stayed bounded (sampled every
simulated hour), that every usable pass after each recovery brought beacons down, and how many
housekeeping records were lost (produced, but neither in the ground archive nor on board).

``python -m reliability.soak --child DAYS SEED DATA`` runs one soak in its own process (so the
resident memory measured is the flight software's) and prints ``RESULT {json}``; :func:`run` is
the campaign's entry point (``make reliability``), ``tests/campaigns/test_soak.py`` its smoke
version (a few hours, the schedule compressed, the loss-of-contact ladder shortened).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import copy
import enum
import json
import os
import random
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgpack

REPO = Path(__file__).resolve().parents[1]
DAY_S = 86400.0
START = "2026-06-01T00:00:00Z"


class FaultKind(enum.StrEnum):
    """The soak's fault types (issue 16's list)."""

    I2C_ERRORS = "i2c_errors"
    PART_DROPOUT = "part_dropout"
    FRAME_LOSS = "frame_loss"
    TASK_CRASH = "task_crash"
    CLOCK_STEP = "clock_step"
    WATCHDOG_STARVATION = "watchdog_starvation"
    LOW_BATTERY = "low_battery"
    DEAF_RADIO = "deaf_radio"
    LOSS_OF_CONTACT = "loss_of_contact"


#: The documented response each fault must get, as the report states it.
RESPONSES: dict[FaultKind, str] = {
    FaultKind.I2C_ERRORS: "5 % of I2C transactions NACKed for hours: drivers retry, a failing poll marks the part "
                          "stale; no service crash, no reset, housekeeping recorded throughout",
    FaultKind.PART_DROPOUT: "a sensor gone from the bus: `<part>.failed` (stale), `<part>.recovered` once it answers",
    FaultKind.FRAME_LOSS: "30 % of frames lost for half a day: beacons still in every usable pass, the ground's "
                          "commands repeated until answered",
    FaultKind.TASK_CRASH: "a service raises: `exec.service_crashed`, restarted by its supervisor after its back-off",
    FaultKind.CLOCK_STEP: "`exec.SET_TIME` hours off, corrected in a later pass: `exec.time_set` both times, "
                          "records numbered without gap or repeat, UTC right again",
    FaultKind.WATCHDOG_STARVATION: "the slow rate group hangs: heartbeat stale, pets withheld, watchdog reset, "
                                   "the next boot runs normally",
    FaultKind.LOW_BATTERY: "the pack drained to 12 % charge: battery FDIR enters SAFE, recovers to NOMINAL "
                           "in sunlight (auto_recover)",
    FaultKind.DEAF_RADIO: "the radio's UART vanishes for 60 s: the link reopens it when it is back (a critical "
                          "service back within its 30 s grace costs nothing); one that stays down past it: "
                          "`exec.critical_service`, reset, the link back at the next boot",
    FaultKind.LOSS_OF_CONTACT: "the receiver deaf for longer than the ladder: `loc.radio_reset`, `loc.rebooting`, "
                               "`loc.defaults_restored`; the ground's default-key command executes afterwards",
}

#: Faults that are discrete incidents (one at a time); the others are background conditions.
DISCRETE = (FaultKind.PART_DROPOUT, FaultKind.TASK_CRASH, FaultKind.CLOCK_STEP, FaultKind.WATCHDOG_STARVATION,
            FaultKind.LOW_BATTERY, FaultKind.DEAF_RADIO)
#: How many of each per simulated week.
PER_WEEK: dict[FaultKind, int] = {
    FaultKind.I2C_ERRORS: 4, FaultKind.PART_DROPOUT: 8, FaultKind.FRAME_LOSS: 2, FaultKind.TASK_CRASH: 14,
    FaultKind.CLOCK_STEP: 4, FaultKind.WATCHDOG_STARVATION: 3, FaultKind.LOW_BATTERY: 2, FaultKind.DEAF_RADIO: 3,
    FaultKind.LOSS_OF_CONTACT: 1,
}
DROPOUT_PARTS = ("temp_board", "temp_battery", "temp_radio", "temp_payload", "eps_3v3", "eps_5v", "imu", "css")
CRASH_SERVICES = ("records.sync", "link.tx", "link.beacon", "cmd.executor", "seq.run", "health", "time.checkpoint",
                  "link.rx", "playback.run", "loc.ladder")
LOW_SOC = 0.12
DEAF_S = 60.0
RECOVERY_TIMEOUT_S = 2 * DAY_S  # not healthy this long after a fault: not recovered
SAMPLE_S = 3600.0  # RSS and data-directory size
OPERATOR_PERIOD_S = 600.0  # how often the operators look at the mode in a pass
UTC_TOLERANCE_S = 5.0
HK_KIND = "tlm"
#: Flight events the responses are judged by (with the arguments kept of some).
KEPT_ARGS: dict[str, tuple[str, ...]] = {"exec.service_crashed": ("service", "error"), "exec.service_failed": ("service",),
                                         "modes.mode_changed": ("reason",)}
KEPT_EVENTS = frozenset({"exec.time_set", "exec.health_stale", "exec.critical_service", "exec.critical_recovered",
                         "loc.radio_reset", "loc.rebooting", "loc.defaults_restored", "loc.contact_regained"})
NO_ARGS: dict[str, str] = {}


@dataclass
class Fault:
    """One fault of the schedule: set at ``at``, cleared at ``until`` (simulated seconds from start)."""

    kind: FaultKind
    at: float
    until: float
    target: str = ""
    value: Any = None
    # measured
    recovered_at: float | None = None  # simulated seconds from start
    response: list[str] = field(default_factory=list)  # what was seen of the documented response
    problems: list[str] = field(default_factory=list)
    contacts_after: int = 0  # usable passes from the recovery to the next fault
    contacts_after_without_beacon: int = 0

    @property
    def time_to_recover(self) -> float | None:
        return None if self.recovered_at is None else max(0.0, self.recovered_at - self.until)


def plan(days: float, seed: int, compressed: bool = False) -> list[Fault]:
    """The week's faults, drawn from ``seed``: background conditions anywhere, discrete incidents
    one after another with random gaps, the loss of contact once, with nothing discrete inside it.

    ``compressed`` (the smoke version): every kind once, in a few hours."""
    rng = random.Random(seed)
    duration = days * DAY_S
    if compressed:
        return _compressed(rng)
    counts = {k: max(1, round(n * days / 7.0)) for k, n in PER_WEEK.items()}
    faults: list[Fault] = []
    loc_len = 26.0 * 3600.0
    loc_at = rng.uniform(1.5 * DAY_S, duration - 2.5 * DAY_S)
    faults.append(Fault(FaultKind.LOSS_OF_CONTACT, round(loc_at), round(loc_at + loc_len), "link", "uplink_blackout"))
    for _ in range(counts[FaultKind.I2C_ERRORS]):
        at = rng.uniform(0.05, 0.9) * duration
        span = rng.uniform(2, 6) * 3600.0
        faults.append(Fault(FaultKind.I2C_ERRORS, round(at), round(at + span), "bus", 0.05))
    for _ in range(counts[FaultKind.FRAME_LOSS]):
        at = rng.uniform(0.05, 0.8) * duration
        span = rng.uniform(12, 24) * 3600.0
        faults.append(Fault(FaultKind.FRAME_LOSS, round(at), round(min(duration - 600, at + span)), "link", 0.3))
    incidents = [k for k in DISCRETE for _ in range(counts[k])]
    rng.shuffle(incidents)
    gap = (duration * 0.85 - loc_len) / (len(incidents) + 1)
    t = rng.uniform(0.3, 0.6) * gap
    for kind in incidents:
        if loc_at - 600 < t + 1800 and t < loc_at + loc_len + 1800:
            t = loc_at + loc_len + 1800  # after the blackout (a clock step needs the uplink)
        span = {FaultKind.PART_DROPOUT: rng.uniform(120, 1200), FaultKind.DEAF_RADIO: DEAF_S}.get(kind, 0.0)
        target: str = ""
        if kind is FaultKind.PART_DROPOUT:
            target = rng.choice(DROPOUT_PARTS)
        elif kind is FaultKind.TASK_CRASH:
            target = rng.choice(CRASH_SERVICES)
        elif kind is FaultKind.CLOCK_STEP:
            target = "exec.SET_TIME"
        elif kind is FaultKind.WATCHDOG_STARVATION:
            target = "rategroup.slow"
        value: Any = None
        if kind is FaultKind.CLOCK_STEP:
            value = rng.choice((-1, 1)) * round(rng.uniform(600, 12 * 3600))
        faults.append(Fault(kind, round(t), round(t + span), target, value))
        t += gap * rng.uniform(0.7, 1.3)
    return sorted(faults, key=lambda f: f.at)


#: The smoke version's start: two Almaty passes in its first 2.3 hours (at +0.47 h and +2.05 h).
COMPRESSED_START = "2026-06-01T04:50:00Z"
COMPRESSED_DAYS = 2.6 / 24.0
#: The smoke version's ladder (the flight config's is 16 h / 20 h / 24 h): silent from the first
#: pass, the satellite resets its radio, reboots and falls back to its defaults before the second.
COMPRESSED_LADDER_S = (2100.0, 2700.0, 3600.0)


def _compressed(rng: random.Random) -> list[Fault]:
    """The smoke version's schedule: every kind once in 2.6 hours, placed around the two passes
    (a clock step needs the uplink; the loss of contact spans the gap between them)."""
    hour = 3600.0
    return sorted([
        Fault(FaultKind.DEAF_RADIO, 360, 360 + DEAF_S, "link", True),
        Fault(FaultKind.LOW_BATTERY, 420, 1020),
        Fault(FaultKind.PART_DROPOUT, 900, 1200, rng.choice(DROPOUT_PARTS)),
        Fault(FaultKind.TASK_CRASH, 1300, 1300, rng.choice(CRASH_SERVICES[:6])),
        Fault(FaultKind.CLOCK_STEP, round(0.49 * hour), round(0.49 * hour), "exec.SET_TIME", -3 * 3600),
        Fault(FaultKind.LOSS_OF_CONTACT, round(0.7 * hour), round(1.95 * hour), "link", "uplink_blackout"),
        Fault(FaultKind.I2C_ERRORS, round(0.8 * hour), round(1.2 * hour), "bus", 0.05),
        Fault(FaultKind.FRAME_LOSS, round(1.7 * hour), round(2.5 * hour), "link", 0.3),
        Fault(FaultKind.WATCHDOG_STARVATION, round(2.3 * hour), round(2.3 * hour), "rategroup.slow"),
    ], key=lambda f: f.at)


def scenario_text(days: float, seed: int, faults: list[Fault], start: str = START) -> str:
    """The scenario file of the run: the faults the scenario format has keys for, the ground's key
    change (so the loss-of-contact ladder's fall back to the default key matters) and store and
    forward (the ground archive the data loss is counted against)."""
    lines = [
        "[scenario]", 'name = "soak"', f'description = "reliability soak, {days:g} days, seed {seed}"',
        f"start = {start}", f'duration = "{days * DAY_S:.0f}s"', f"seed = {seed}", "",
        "[battery]", "initial_soc = 0.8", "",
        "[ground]", "playback = true", "contact_aware = true", "requests_per_pass = 6",
        "contact_min_elevation_deg = 8.0", "",
        "[[commands]]", 'at = "0s"', 'command = "link.SELECT_KEY"', "args = [1]", "",
    ]
    native = {FaultKind.I2C_ERRORS: ("bus", "nack_probability"), FaultKind.FRAME_LOSS: ("link", "frame_loss"),
              FaultKind.LOSS_OF_CONTACT: ("link", "uplink_blackout"), FaultKind.DEAF_RADIO: ("link", "uart_missing"),
              FaultKind.PART_DROPOUT: (None, "absent"), FaultKind.WATCHDOG_STARVATION: ("rategroup.slow", "hang")}
    for f in faults:
        if f.kind not in native:
            continue
        target, name = native[f.kind]
        value = f.value if f.kind in (FaultKind.I2C_ERRORS, FaultKind.FRAME_LOSS) else True
        lines += ["[[faults]]", f"at = {f.at}"]
        if f.kind is not FaultKind.WATCHDOG_STARVATION:  # a hang belongs to its boot: no release
            lines.append(f"until = {f.until}")
        lines += [f'target = "{target or f.target}"', f'fault = "{name}"',
                  f"value = {json.dumps(value)}", ""]
    return "\n".join(lines)


@dataclass
class SoakResult:
    days: float
    seed: int
    faults: list[dict[str, Any]] = field(default_factory=list)
    by_kind: dict[str, dict[str, Any]] = field(default_factory=dict)
    services_failed_end: list[str] = field(default_factory=list)
    leaked_tasks: list[str] = field(default_factory=list)
    rss_kb: list[tuple[float, int]] = field(default_factory=list)  # (hours, kB)
    disk_kb: list[tuple[float, int]] = field(default_factory=list)
    records_max_kb: int = 0
    hk_produced: int = 0
    hk_in_archive: int = 0
    hk_on_board_only: int = 0
    hk_lost: int = 0
    hk_lost_detail: str = ""
    usable_contacts: int = 0
    usable_contacts_without_beacon: list[str] = field(default_factory=list)
    beacons: int = 0
    reboots: int = 0
    boots: list[str] = field(default_factory=list)
    ground_commands: list[str] = field(default_factory=list)  # the ground's commands (last 40), with answers
    unexpected_resets: list[str] = field(default_factory=list)  # resets no injected fault explains
    operator_commands: int = 0  # modes.SET_MODE NOMINAL the operators sent after a reset's SAFE
    ground_key_fallbacks: int = 0  # times the ground went back to the default key (3 unanswered)
    ground_key_returns: int = 0  # times it went back from the default key to the previous one (3 unanswered)
    modes: list[str] = field(default_factory=list)
    sim_wall_s: float = 0.0
    wall_s: float = 0.0
    error: str = ""
    verdicts: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def judge(self) -> None:
        """Every target the soak missed, one line each (empty: all met)."""
        out = [f"{f['kind']} at {f['at'] / 3600:.1f} h: {p}" for f in self.faults for p in f["problems"]]
        out += [f"service left FAILED: {s}" for s in self.services_failed_end]
        out += [f"task outlived its boot: {t}" for t in self.leaked_tasks]
        out += [f"reset no fault explains: {r}" for r in self.unexpected_resets]
        out += [f"usable pass without beacon: {c}" for c in self.usable_contacts_without_beacon]
        if self.error:
            out.append(f"the run stopped: {self.error}")
        rss = [kb for _, kb in self.rss_kb]
        if len(rss) >= 4:
            half = len(rss) // 2
            if max(rss[half:]) > 1.25 * max(rss[:half]) + 8192:
                out.append(f"RSS grew: {max(rss[:half])} kB in the first half, {max(rss[half:])} kB in the second")
        disk = [kb for _, kb in self.disk_kb]
        if disk and self.records_max_kb and max(disk) > self.records_max_kb + 8192:
            out.append(f"data directory {max(disk)} kB, above the record log's bound {self.records_max_kb} kB + 8 MiB")
        self.verdicts = out


# -- the child: one soak in this process -----------------------------------------------------------
def fly(days: float, seed: int, data: Path, compressed: bool = False,
        log: Callable[[str], None] = lambda _: None) -> SoakResult:
    """Fly the soak on ``data`` (a fresh directory) and measure it; blocking."""
    from flightsw.config import load as load_config
    from flightsw.sim_runner.options import SimOptions
    from sim.scenario import loads_scenario

    began = time.perf_counter()
    faults = plan(days, seed, compressed)
    config = load_config(REPO / "deploy" / "sim.toml")
    if compressed and config.loss_of_contact is not None:  # the ladder in minutes, not a day
        config = copy.deepcopy(config)
        ladder = config.loss_of_contact
        assert ladder is not None
        ladder.radio_reset_after_s, ladder.reboot_after_s, ladder.safe_defaults_after_s = COMPRESSED_LADDER_S
    text = scenario_text(days, seed, faults, COMPRESSED_START if compressed else START)
    scenario = loads_scenario(text, "reliability/soak")
    result = SoakResult(days, seed)
    run = SoakRun(config, scenario, SimOptions(data_dir=data), faults, result)
    try:
        run.run()
    except Exception as exc:  # reported, judged
        import traceback

        traceback.print_exc()
        result.error = f"{type(exc).__name__}: {exc}"[:200]
    result.wall_s = round(time.perf_counter() - began, 1)
    result.judge()
    log(f"soak: {len(result.faults)} faults, {len(result.verdicts)} misses")
    return result


def _soak_run_class() -> type:
    """:class:`SoakRun`, defined on first use so importing the campaign does not import the simulator."""
    from flightsw.sim_runner.runner import SimulationRun

    class _SoakRun(SimulationRun):  # type: ignore[misc,valid-type]
        """A scenario run with the soak's own faults and observers (see the module docstring)."""

        def __init__(self, config: Any, scenario: Any, options: Any, faults: list[Fault], out: SoakResult) -> None:
            super().__init__(config, scenario, options)
            self.faults = faults
            self.out = out
            self.correct_after_s = 240.0 if scenario.duration_s < DAY_S else 600.0
            self.seen: collections.deque[tuple[float, str, dict[str, Any]]] = collections.deque(maxlen=100_000)
            self.hk_pid = array("H")
            self.hk_boot = array("I")
            self.hk_seconds = array("d")
            self.hk_t = array("f")  # run time of each, for the faults' windows
            self.rss: list[tuple[float, int]] = []
            self.disk: list[tuple[float, int]] = []
            self._ground_pending: list[tuple[str, Callable[[float], list[Any]]]] = []
            self.operator_commands = 0

        # -- composition --------------------------------------------------------------------
        def build(self) -> Any:
            fresh = self.sat is None
            sat = super().build()
            if fresh:
                self.services.add_service("soak.faults", self._soak_faults, critical=False)
                self.services.add_service("soak.sampler", self._soak_sampler, critical=False)
                self.services.add_service("soak.operator", self._operator, critical=False)
                if self.ground is not None:
                    self._wrap_ground()
            return sat

        def _attach(self, sat: Any) -> None:
            super()._attach(sat)
            records = sat.records
            append = records.append_numbered

            def counting(kind: str, value: Any, met: float | None = None) -> int:
                n = append(kind, value, met)
                if kind == HK_KIND:  # produced: the key the ground archive knows it by
                    pid, boot, seconds, _utc, _values = msgpack.unpackb(value, raw=False)
                    self.hk_pid.append(int(pid))
                    self.hk_boot.append(int(boot))
                    self.hk_seconds.append(float(seconds))
                    self.hk_t.append(self._t())
                return n

            records.append_numbered = counting

        def _wrap_ground(self) -> None:
            """The ground sends the campaign's commands whose arguments depend on the moment they
            go up (a clock step, its correction): built on the beacon that triggers them."""
            ground, sat = self.ground, self.sat
            assert ground is not None and sat is not None
            maybe = ground._maybe_command
            dictionary = sat.finalize()

            async def maybe_command(now: float) -> None:
                while self._ground_pending:
                    name, args = self._ground_pending.pop(0)
                    body = msgpack.packb([dictionary.command(name).id, args(now)], use_bin_type=True)
                    ground.scheduled.appendleft((now, name, body))
                await maybe(now)

            ground._maybe_command = maybe_command  # type: ignore[method-assign]

        def _on_event(self, record: Any) -> None:
            """Keeps what the responses are judged by, compactly (a week of them stays small)."""
            super()._on_event(record)
            name = record.name
            if name in KEPT_ARGS:
                args = record.args if isinstance(record.args, dict) else {}
                self.seen.append((self._t(), name, {k: str(args.get(k, ""))[:60] for k in KEPT_ARGS[name]}))
            elif name in KEPT_EVENTS or name.endswith((".failed", ".recovered")):
                self.seen.append((self._t(), name, NO_ARGS))

        # -- services -----------------------------------------------------------------------
        def _t(self) -> float:
            return self._loop_time() - self._t0

        async def _until(self, at: float) -> None:
            delay = at - self._t()
            if delay > 0:
                await asyncio.sleep(delay)

        async def _soak_sampler(self) -> None:
            loop = asyncio.get_running_loop()
            data = Path(self.config.storage.data_dir)
            while True:
                self.rss.append((round(self._t() / 3600.0, 2), _rss_kb()))
                self.disk.append((round(self._t() / 3600.0, 2), await loop.run_in_executor(None, _tree_kb, data)))
                await asyncio.sleep(SAMPLE_S)

        async def _soak_faults(self) -> None:
            async with asyncio.TaskGroup() as group:
                for fault in self.faults:
                    group.create_task(self._one_fault(fault), name=f"soak.{fault.kind}")

        async def _one_fault(self, fault: Fault) -> None:
            await self._until(fault.at)
            before = self._snapshot(fault)
            await self._inject(fault)
            if fault.recovered_at is not None:  # measured by the injection (a clock step's correction)
                return
            await self._until(fault.until)
            deadline = fault.until + RECOVERY_TIMEOUT_S
            while self._t() < deadline:
                if self._healthy(fault, before):
                    fault.recovered_at = round(self._t(), 1)
                    return
                await asyncio.sleep(1.0 if fault.kind is FaultKind.TASK_CRASH else 10.0)

        def _snapshot(self, fault: Fault) -> dict[str, Any]:
            svc = self._service(fault.target) if fault.kind is FaultKind.TASK_CRASH else None
            xcvr = self.transceiver
            return {"boots": len(self.boots), "restarts": svc.restarts if svc is not None else 0,
                    "frames_in": xcvr.downlink.stats.frames_in if xcvr is not None else 0,
                    "verdicts": len(self.ground.verdict_times) if self.ground is not None else 0,
                    "safe_entries": self.safe_mode_entries,
                    "mode": self.modes[-1][1] if self.modes else ""}

        def _service(self, name: str) -> Any:
            return self.sat.supervisor.services.get(name) if self.sat is not None else None

        async def _inject(self, fault: Fault) -> None:
            kind = fault.kind
            if kind is FaultKind.TASK_CRASH:
                svc = self._service(fault.target)
                if self.sat is None or svc is None or svc.task is None or svc.task.done():
                    fault.problems.append(f"service {fault.target} not running when the crash was due")
                    return
                _crash_once(self.sat.supervisor, svc)
            elif kind is FaultKind.LOW_BATTERY:
                self.environment.sync()
                self.world.power.battery.soc = min(self.world.power.battery.soc, LOW_SOC)
                if fault.until > fault.at:  # the smoke version: the pack charged again in minutes, not hours
                    await self._until(fault.until)
                    self.environment.sync()
                    self.world.power.battery.soc = max(self.world.power.battery.soc, 0.8)
            elif kind is FaultKind.CLOCK_STEP:
                step = float(fault.value)
                await self._set_time(lambda now: [round(now + step, 3)], step)
                await asyncio.sleep(self.correct_after_s)  # the operators see it in the pass and correct it
                fault.until, fault.recovered_at = await self._set_time(lambda now: [round(now + 0.05, 3)], 0.0)

        def _utc_error(self) -> float | None:
            utc = self.sat.clock.utc() if self.sat is not None else None
            return None if utc is None else utc - self.environment.epoch_now()

        async def _set_time(self, args: Callable[[float], list[Any]], step: float) -> tuple[float, float]:
            """The ground sends ``exec.SET_TIME`` (its argument taken when it goes up) until the
            satellite's UTC is ``step`` off the true time (as operators see in the beacons); the
            run times it last went up and the satellite's clock was so."""
            assert self.ground is not None
            ground = self.ground
            for _ in range(60):
                self._ground_pending.append(("exec.SET_TIME", args))
                while self._ground_pending:  # noqa: ASYNC110 - the ground takes it on a beacon; virtual time
                    await asyncio.sleep(5.0)
                sent = max(t for t, name in ground.commands_log if name == "exec.SET_TIME")
                for _second in range(45):
                    await asyncio.sleep(1.0)
                    error = self._utc_error()
                    if error is not None and abs(error - step) < UTC_TOLERANCE_S:
                        return round(sent - self.scenario.start_epoch, 1), round(self._t(), 1)
            return round(sent - self.scenario.start_epoch, 1), round(self._t(), 1)

        async def _operator(self) -> None:
            """The operators: a SAFE the satellite does not leave by itself (an unexpected reset's)
            is cleared by ``modes.SET_MODE NOMINAL`` in a pass, again every 10 minutes until the
            beacons show NOMINAL (docs/modes.md: refused while the battery is low)."""
            while True:
                await asyncio.sleep(OPERATOR_PERIOD_S)
                if not self.modes or self.modes[-1][1] != "SAFE" or self.ground is None:
                    continue
                since = self.modes[-1][0]
                reasons = [a.get("reason", "") for t, n, a in self.seen if n == "modes.mode_changed"]
                if reasons and reasons[-1].startswith("battery"):
                    continue  # battery FDIR's own SAFE: it recovers by itself (auto_recover)
                in_pass = bool(self.ground.beacon_times) and self.environment.epoch_now() - self.ground.beacon_times[-1] < 60
                if in_pass and self.environment.epoch_now() - since > OPERATOR_PERIOD_S and not self._ground_pending:
                    self._ground_pending.append(("modes.SET_MODE", lambda now: ["NOMINAL"]))
                    self.operator_commands += 1

        def _healthy(self, fault: Fault, before: dict[str, Any]) -> bool:
            """The satellite is back to work after ``fault``: flying (a boot running), no service
            FAILED, every sensor answering, plus the fault's own condition."""
            sat = self.sat
            if sat is None or self._port is None:
                return False
            services = sat.supervisor.services
            if any(s.state.name == "FAILED" for s in services.values()):
                return False
            hw = _component(sat, "hw")
            if hw is not None and any(m.failures or m.needs_init for m in hw.monitors):
                return False
            kind = fault.kind
            if kind is FaultKind.TASK_CRASH:
                svc = services.get(fault.target)
                return bool(svc is not None and svc.state.name == "RUNNING"
                            and (svc.restarts >= before["restarts"] + 2 or len(self.boots) > before["boots"]))
            if kind is FaultKind.CLOCK_STEP:
                utc = sat.clock.utc()
                return utc is not None and abs(utc - self.environment.epoch_now()) < UTC_TOLERANCE_S
            rx = services.get("link.rx")
            if kind is FaultKind.WATCHDOG_STARVATION:
                return len(self.boots) > before["boots"] and rx is not None and rx.state.name == "RUNNING"
            if kind is FaultKind.DEAF_RADIO:  # frames reach the radio again
                return (rx is not None and rx.state.name == "RUNNING" and self.transceiver is not None
                        and self.transceiver.downlink.stats.frames_in > before["frames_in"])
            if kind is FaultKind.LOW_BATTERY:
                was_safe = before["mode"] == "SAFE"
                return ((was_safe or self.safe_mode_entries > before["safe_entries"]) and bool(self.modes)
                        and self.modes[-1][1] == "NOMINAL")
            if kind is FaultKind.LOSS_OF_CONTACT:
                end = self.scenario.start_epoch + fault.until
                return self.ground is not None and any(t > end for t in self.ground.verdict_times)
            return True

        # -- measuring ----------------------------------------------------------------------
        def _result(self, wall_s: float) -> Any:
            sim = super()._result(wall_s)
            self.measure(self.out, sim)  # here: the ground archive is still open
            return sim

        def measure(self, out: SoakResult, sim: Any) -> None:
            out.sim_wall_s = round(sim.wall_s, 1)
            sat = self.sat
            if sat is not None:
                out.services_failed_end = sorted(n for n, s in sat.supervisor.services.items()
                                                 if s.state.name == "FAILED")
                out.records_max_kb = self.config.storage.records_max_bytes // 1024
            out.leaked_tasks = list(self.leaked_tasks)
            start = self.scenario.start_epoch
            blackouts = [(f.at, f.until + 3600) for f in self.faults if f.kind is FaultKind.LOSS_OF_CONTACT]
            out.unexpected_resets = [
                f"{(b.epoch - start) / 3600:.2f} h: boot {b.boot_count} after {b.reset_reason}" for b in self.boots[1:]
                if not any(o.kind in (FaultKind.WATCHDOG_STARVATION, FaultKind.DEAF_RADIO)
                           and o.at <= b.epoch - start <= o.until + 3600 for o in self.faults)
                and not any(a <= b.epoch - start <= z for a, z in blackouts)]
            out.operator_commands = self.operator_commands
            if self.ground is not None:
                out.ground_key_fallbacks = self.ground.key_fallbacks
                out.ground_key_returns = self.ground.key_returns
            out.modes = [f"{(t - start) / 3600:.2f} h {m}" for t, m in self.modes[-200:]]
            out.rss_kb, out.disk_kb = list(self.rss), list(self.disk)
            out.reboots = len(self.resets)
            if self.ground is not None:
                start = self.scenario.start_epoch
                answered = self.ground.verdict_times
                out.ground_commands = [
                    f"{(t - start) / 3600:.2f} h {name}: "
                    + ("answered" if any(t <= v <= t + 30 for v in answered) else "no answer")
                    for t, name in self.ground.commands_log[-40:]]
            out.boots = [f"{(b.epoch - self.scenario.start_epoch) / 3600:.2f} h: boot {b.boot_count} "
                         f"after {b.reset_reason}" for b in self.boots]
            contacts = sim.contacts
            self._check_responses(contacts)
            for f in self.faults:
                out.faults.append({**asdict(f), "kind": str(f.kind), "time_to_recover": f.time_to_recover})
            out.by_kind = summarise(self.faults)
            usable = [c for c in contacts if c.usable]
            out.usable_contacts = len(usable)
            out.beacons = len(self.ground.beacon_times) if self.ground is not None else 0
            first_recovery = min((f.recovered_at for f in self.faults if f.recovered_at is not None), default=None)
            start = self.scenario.start_epoch
            out.usable_contacts_without_beacon = [
                f"{(c.aos - start) / 3600:.2f} h ({c.max_elevation_deg:.0f} deg)" for c in usable
                if not c.beacons and first_recovery is not None and c.aos - start >= first_recovery]
            if sat is not None and self.archive is not None:
                self._data_lost(out)

        def _check_responses(self, contacts: list[Any]) -> None:
            """The documented response of each fault, from the events, boots and modes seen."""
            start = self.scenario.start_epoch
            usable = [c for c in contacts if c.usable]
            ordered = sorted(self.faults, key=lambda f: f.at)
            for i, f in enumerate(ordered):
                end = (f.recovered_at if f.recovered_at is not None else f.until + RECOVERY_TIMEOUT_S) + 60.0
                seen = [(t, name, args) for t, name, args in self.seen if f.at - 1 <= t <= end]
                names = [name for _, name, _ in seen]
                resets = [b for b in self.boots[1:] if f.at <= b.epoch - start <= end]
                reasons = [b.reset_reason for b in resets]
                want: list[str] = []
                kind = f.kind
                if kind is FaultKind.I2C_ERRORS:
                    crashes = [a.get("service") for t, n, a in seen if n == "exec.service_failed"]
                    if crashes:
                        f.problems.append(f"services failed during it: {crashes}")
                    resetting = (FaultKind.WATCHDOG_STARVATION, FaultKind.DEAF_RADIO, FaultKind.LOSS_OF_CONTACT)
                    unexplained = [b.reset_reason for b in resets if not any(
                        o.kind in resetting and o.at <= b.epoch - start <= o.until + 3600 for o in self.faults)]
                    if unexplained:
                        f.problems.append(f"reset during it: {unexplained}")
                    recorded = sum(1 for t in self.hk_t if f.at <= t <= f.until)
                    if not recorded:
                        f.problems.append("no housekeeping recorded during it")
                    f.response.append(f"{len(resets)} resets, {recorded} housekeeping records during it")
                elif kind is FaultKind.PART_DROPOUT:
                    want = [f"{f.target}.failed", f"{f.target}.recovered"]
                elif kind is FaultKind.FRAME_LOSS:
                    inside = [c for c in usable if f.at <= c.aos - start <= f.until]
                    dark = [c for c in inside if not c.beacons]
                    f.response.append(f"{len(inside) - len(dark)} of {len(inside)} usable passes with beacons")
                    if dark:
                        f.problems.append(f"{len(dark)} usable passes without a beacon during the loss")
                elif kind is FaultKind.TASK_CRASH:
                    crashed = [a for t, n, a in seen if n == "exec.service_crashed" and a.get("service") == f.target]
                    if crashed:
                        f.response.append(f"exec.service_crashed {f.target}: {crashed[0].get('error', '')}")
                    else:
                        f.problems.append(f"no exec.service_crashed for {f.target}")
                elif kind is FaultKind.CLOCK_STEP:
                    want = ["exec.time_set", "exec.time_set"]
                elif kind is FaultKind.WATCHDOG_STARVATION:
                    want = ["exec.health_stale"]
                    if "WATCHDOG" not in reasons and "UNEXPECTED" not in reasons:
                        f.problems.append(f"no watchdog reset (boots after it: {reasons})")
                    else:
                        f.response.append(f"reset, next boot after {reasons[0]}")
                elif kind is FaultKind.LOW_BATTERY:
                    entered = [m for t, m in self.modes if f.at <= t - start <= end]
                    before = [m for t, m in self.modes if t - start < f.at]
                    if before and before[-1] == "SAFE" and "NOMINAL" not in entered[:1]:
                        f.response.append("already SAFE (an earlier cause), kept SAFE while low, then "
                                          + (entered[-1] if entered else "?"))
                    elif "SAFE" not in entered:
                        f.problems.append("battery FDIR did not enter SAFE")
                    else:
                        f.response.append("SAFE (battery), then " + (entered[-1] if entered else "?"))
                    causes = [a.get("reason", "") for t, n, a in seen if n == "modes.mode_changed"]
                    f.response.extend(c for c in causes[:2])
                elif kind is FaultKind.DEAF_RADIO:
                    # within the critical grace time the link reopens its device by itself; longer,
                    # link.rx fails and the health monitor has the board reset (CRITICAL_SERVICE)
                    if "exec.critical_service" in names and "CRITICAL_SERVICE" not in reasons:
                        f.problems.append(f"exec.critical_service without a reset (boots after it: {reasons})")
                    f.response.append("reset CRITICAL_SERVICE" if "CRITICAL_SERVICE" in reasons
                                      else "link reopened its device within the grace time, no reset")
                elif kind is FaultKind.LOSS_OF_CONTACT:
                    want = ["loc.radio_reset", "loc.rebooting", "loc.defaults_restored"]
                    if self.ground is not None and not any(t - start > f.until for t in self.ground.verdict_times):
                        f.problems.append("no ground command executed after the blackout")
                for name in want:
                    if name in names:
                        names.remove(name)
                        f.response.append(name)
                    else:
                        f.problems.append(f"no {name}")
                if f.recovered_at is None:
                    f.problems.append(f"not recovered within {RECOVERY_TIMEOUT_S / 3600:.0f} h")
                    continue
                nxt = next((o.at for o in ordered[i + 1:] if o.at > f.recovered_at), float("inf"))
                after = [c for c in usable if f.recovered_at <= c.aos - start < nxt]
                f.contacts_after = len(after)
                f.contacts_after_without_beacon = sum(1 for c in after if not c.beacons)
                if f.contacts_after_without_beacon:
                    f.problems.append(f"{f.contacts_after_without_beacon} usable passes after the recovery "
                                      "without a beacon")

        def _data_lost(self, out: SoakResult) -> None:
            """Housekeeping produced, against what the ground archive and the record log hold."""
            from flightsw.ground.records import KIND_TLM

            assert self.sat is not None and self.archive is not None
            records = self.sat.records
            archived = self.archive.call_blocking(self.archive.record_keys, KIND_TLM)
            on_board: set[tuple[int, int, float]] = set()
            first = 0
            while first < records.next_seq:
                chunk = records.read_numbered(first, records.next_seq, limit=20_000)
                if not chunk:
                    break
                for _n, kind, value in chunk:
                    if kind == HK_KIND:
                        pid, boot, seconds, _utc, _values = msgpack.unpackb(value, raw=False)
                        on_board.add((int(pid), int(boot), float(seconds)))
                first = chunk[-1][0] + 1
            produced = list(zip(self.hk_pid, self.hk_boot, self.hk_seconds, strict=True))
            out.hk_produced = len(produced)
            out.hk_in_archive = sum(1 for k in produced if k in archived)
            out.hk_on_board_only = sum(1 for k in produced if k not in archived and k in on_board)
            out.hk_lost = out.hk_produced - out.hk_in_archive - out.hk_on_board_only
            if out.hk_lost:
                lost_at = [s for k, s in zip(produced, self.hk_seconds, strict=True)
                           if k not in archived and k not in on_board]
                out.hk_lost_detail = f"{len(lost_at)} records, spacecraft seconds {min(lost_at):.0f}..{max(lost_at):.0f}"

    return _SoakRun


def _crash_once(supervisor: Any, svc: Any) -> None:
    """The supervised service dies of an exception once: its running coroutine is stopped and the
    supervisor's loop for it runs a factory that raises, so the crash is reported, backed off and
    the real service restarted exactly as for an unhandled exception in the service itself."""
    factory = svc.factory

    async def crash() -> None:
        svc.factory = factory
        raise RuntimeError("injected crash (soak)")

    svc.factory = crash
    supervisor.restart(svc.name)  # counts one restart; the crash's back-off counts the second


def _component(sat: Any, name: str) -> Any:
    try:
        return sat.component(name)
    except KeyError:
        return None


def _rss_kb() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_kb(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total // 1024


def summarise(faults: list[Fault]) -> dict[str, dict[str, Any]]:
    """Per fault type: injected, recovered, time to recover (median, worst), responses checked."""
    out: dict[str, dict[str, Any]] = {}
    for kind in FaultKind:
        mine = [f for f in faults if f.kind is kind]
        if not mine:
            continue
        ttr = [f.time_to_recover for f in mine if f.time_to_recover is not None]
        out[str(kind)] = {
            "injected": len(mine), "recovered": sum(1 for f in mine if f.recovered_at is not None),
            "response_ok": sum(1 for f in mine if not f.problems),
            "ttr_median_s": round(statistics.median(ttr), 1) if ttr else None,
            "ttr_worst_s": round(max(ttr), 1) if ttr else None,
            "response": RESPONSES[kind],
        }
    return out


def SoakRun(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the class, built lazily
    return _soak_run_class()(*args, **kwargs)


# -- the parent ----------------------------------------------------------------------------------
@dataclass
class Started:
    """A soak flying in its own process (:func:`start`), collected by :func:`finish`."""

    proc: subprocess.Popen[str]
    days: float
    seed: int
    began: float


def start(root: Path, days: float = 7.0, seed: int = 16, compressed: bool = False) -> Started:
    """Start the soak in its own process (its RSS is the flight software's alone). Why apart from
    :func:`finish`: `make reliability` flies it on the second core while the single-process fuzzing
    and attack campaigns run, so the soak costs little of the half hour."""
    data = root / "soak"
    data.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONASYNCIODEBUG="")
    argv = [sys.executable, "-m", "reliability.soak", "--child", str(days), str(seed), str(data)]
    if compressed:
        argv.append("--compressed")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    return Started(proc, days, seed, time.perf_counter())


def finish(started: Started, log: Callable[[str], None] = print, timeout: float = 3 * 3600.0) -> SoakResult:
    """Wait for the soak's process and read its result."""
    try:
        stdout, stderr = started.proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        started.proc.kill()
        stdout, stderr = started.proc.communicate()
    line = next((x for x in stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        result = SoakResult(started.days, started.seed, error=f"exit {started.proc.returncode}: {tail}"[:200])
        result.judge()
    else:
        result = SoakResult(**json.loads(line[len("RESULT "):]))
    result.wall_s = round(time.perf_counter() - started.began, 1)
    log(f"soak: {started.days:g} days in {result.wall_s:.0f} s, {len(result.verdicts)} targets missed")
    return result


def run(root: Path, days: float = 7.0, seed: int = 16, compressed: bool = False,
        log: Callable[[str], None] = print, timeout: float = 3 * 3600.0) -> SoakResult:
    """The campaign, start to finish."""
    return finish(start(root, days, seed, compressed), log, timeout)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m reliability.soak")
    parser.add_argument("--child", nargs=3, metavar=("DAYS", "SEED", "DATA"), required=True)
    parser.add_argument("--compressed", action="store_true")
    args = parser.parse_args()
    outcome = fly(float(args.child[0]), int(args.child[1]), Path(args.child[2]), args.compressed)
    print("RESULT " + json.dumps(outcome.to_json()), flush=True)
