"""`flightsw run`, `flightsw sim` and `flightsw dict`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

from flightsw.app import Satellite
from flightsw.cli import default_sim_config, load_config_or_exit
from flightsw.core.eventloop import flight_loop

log = logging.getLogger("flightsw.cli")


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run the flight software (on the board, under systemd)")
    run.add_argument("--config", required=True, help="mission config (TOML)")
    run.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    run.set_defaults(func=cmd_run)

    sim = sub.add_parser(
        "sim", help="fly the satellite through the simulated world (orbit, power, thermal, contacts)",
        description="Runs the flight software on simulated hardware driven by the space-environment "
                    "simulation, on a virtual-time loop. Exits 1 when a scenario expectation fails.")
    sim.add_argument("--config", default=None, help="mission config (default: deploy/sim.toml)")
    sim.add_argument("--scenario", default=None,
                     help="scenario TOML file, or the name of a shipped one (default: nominal_day)")
    sim.add_argument("--duration", default=None,
                     help="simulated time to run, seconds or e.g. 2h, 1d (default: the scenario's)")
    sim.add_argument("--speed", default=None,
                     help="time acceleration: N (at most N x real time, 1 = real time) or max (default with a scenario)")
    sim.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    sim.add_argument("--report", default=None, help="write the report (PNG plots, index.html, report.json) here")
    sim.add_argument("--data-dir", default=None,
                     help="flight storage directory, empty or new (default: a temporary one)")
    sim.add_argument("--threaded-io", action="store_true",
                     help="keep simulated I2C calls on their worker thread (about 2x slower)")
    sim.set_defaults(func=cmd_sim)

    dct = sub.add_parser("dict", help="print the command/telemetry dictionary")
    dct.add_argument("--config", default=None, help="mission config (default: deploy/sim.toml)")
    dct.add_argument("--format", choices=["json", "ksy", "fprime"], default="json",
                     help="ksy: the beacon layout (Kaitai Struct); fprime: F Prime's JSON dictionary (the GDS loads it)")
    dct.add_argument("--output", "-o", default=None, help="write to this file instead of stdout")
    dct.set_defaults(func=cmd_dict)


def _log_packets(sat: Satellite) -> None:
    """One DEBUG line per housekeeping packet (``flightsw -v``): packets are recorded, not logged."""
    if not log.isEnabledFor(logging.DEBUG):
        return

    def sink(packet, body: bytes) -> None:  # type: ignore[no-untyped-def]
        log.debug("housekeeping packet %s (%d bytes)", packet.name, len(body))

    sat.telemetry.add_packet_sink(sink)


async def _run(sat: Satellite, duration: float | None) -> int:
    reason = await sat.run(duration=duration, install_signals=True)
    log.info("flight software stopped (%s)", reason)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config)
    sat = Satellite(config)
    _log_packets(sat)
    with asyncio.Runner(loop_factory=flight_loop) as runner:
        return runner.run(_run(sat, args.duration))


def parse_speed(text: str) -> float | None:
    """--speed: "max" (None: as fast as possible) or a positive factor."""
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise ValueError(f"--speed must be a positive number or 'max', got {text!r}") from None
    if not speed > 0 or speed != speed or speed == float("inf"):
        raise ValueError(f"--speed must be a positive number or 'max', got {text!r}")
    return speed


def cmd_sim(args: argparse.Namespace) -> int:
    """Without --scenario/--speed/--seed/--report: the interactive bench (real time, link always up,
    the configured KISS port for `flightsw ground`). Otherwise a scenario flown through the
    simulated world; 0 when every expectation holds, 1 when one fails, 2 for bad input."""
    if args.scenario is None and args.speed is None and args.seed is None and args.report is None:
        return cmd_sim_live(args)
    return cmd_sim_world(args)


def cmd_sim_live(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config or default_sim_config())
    if args.data_dir:
        config.storage.data_dir = args.data_dir
    try:
        from flightsw.sim_runner import as_seconds

        duration = as_seconds(args.duration) if args.duration is not None else None
    except ValueError as exc:
        print(f"flightsw sim: {exc}", file=sys.stderr)
        return 2
    while True:  # a simulated watchdog reset boots the simulated satellite again, as the board would
        sat = Satellite(config)
        _log_packets(sat)
        with asyncio.Runner(loop_factory=flight_loop) as runner:
            reason = runner.run(sat.run(duration=duration, install_signals=True))
        if reason != "WATCHDOG":
            return 0
        log.warning("simulated watchdog reset: booting the simulated satellite again")


def cmd_sim_world(args: argparse.Namespace) -> int:
    from pathlib import Path

    from flightsw.sim_runner import SimOptions, SimulationError, as_seconds, run_scenario
    from sim.scenario import ScenarioError, builtin_scenario, load_scenario

    config = load_config_or_exit(args.config or default_sim_config())
    if not getattr(args, "verbose", False):  # a day of per-sensor console lines helps nobody
        logging.getLogger("flightsw.housekeeping").setLevel(logging.WARNING)
    try:
        speed = parse_speed(args.speed or "max")
        duration = as_seconds(args.duration) if args.duration is not None else None
        scenario_path = Path(args.scenario) if args.scenario else builtin_scenario("nominal_day")
        if args.scenario and not scenario_path.exists() and "/" not in args.scenario:
            scenario_path = builtin_scenario(args.scenario.removesuffix(".toml"))
        scenario = load_scenario(scenario_path, [d.name for d in config.devices])
        options = SimOptions(speed=speed, seed=args.seed, duration_s=duration,
                             data_dir=Path(args.data_dir) if args.data_dir else None,
                             report_dir=Path(args.report) if args.report else None,
                             threaded_buses=args.threaded_io)
    except (ScenarioError, ValueError) as exc:
        print(f"flightsw sim: {exc}", file=sys.stderr)
        return 2
    log.info("scenario %s: %.0f s from %s, seed %d, speed %s", scenario.name,
             options.duration_s or scenario.duration_s, scenario.start.isoformat(),
             scenario.seed if args.seed is None else args.seed, args.speed)
    try:
        result = run_scenario(config, scenario, options)
    except SimulationError as exc:
        print(f"flightsw sim: {exc}", file=sys.stderr)
        return 2
    print(format_summary(result))
    return 0 if result.passed else 1


def format_summary(result) -> str:  # type: ignore[no-untyped-def]
    """A few lines for the terminal: figures, contacts, expectations, report path."""
    m = result.metrics
    lines = [f"scenario {result.scenario.name} (seed {result.scenario.seed}): "
             f"{m.get('duration_h', 0.0):.2f} h simulated in {result.wall_s:.1f} s "
             f"({m.get('run_speedup', 0.0):.0f}x)"]
    keys = ("contacts", "eclipses", "battery_soc_min", "battery_voltage_min", "beacons_received",
            "contacts_without_beacon", "frames_down", "frames_up", "frames_lost", "frame_loss_ratio",
            "bytes_down", "bytes_up", "events_warning", "events_error")
    lines.append("  " + ", ".join(f"{k}={m[k]:.4g}" for k in keys if k in m))
    for c in result.contacts:
        lines.append(f"  pass {c.station} {time.strftime('%H:%M:%S', time.gmtime(c.aos))}-"
                     f"{time.strftime('%H:%M:%S', time.gmtime(c.los))} UTC: {c.beacons} beacons, {c.frames} frames")
    for r in result.expectations:
        bounds = f"[{'' if r.expectation.min is None else r.expectation.min:}, " \
                 f"{'' if r.expectation.max is None else r.expectation.max}]"
        lines.append(f"  {'ok  ' if r.passed else 'FAIL'} {r.expectation.metric} {bounds}: {r.reason}")
    if result.report_index is not None:
        lines.append(f"  report: {result.report_index}")
    lines.append("PASSED" if result.passed else "FAILED")
    return "\n".join(lines)


def cmd_dict(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config or default_sim_config(), check=False)  # built below
    text = dictionary_text(config, args.format)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text + "\n")
    return 0


def dictionary_text(config, fmt: str) -> str:  # type: ignore[no-untyped-def]
    """Build the satellite without running it (stores in a scratch directory) and export."""
    if fmt == "ksy":
        from flightsw.link.beacon import ksy

        return ksy()
    from flightsw.config_check import offline_dictionary

    with offline_dictionary(config) as d:
        text = d.to_json()
    if fmt == "fprime":
        import json

        from flightsw.ground.fprime_dict import FprimeDictionary

        return json.dumps(FprimeDictionary(json.loads(text)).content(), indent=2)
    return text
