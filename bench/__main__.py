"""`python -m bench`: a simulated 24 h of the reference mission, timed against a baseline.

`python -m bench --determinism` runs the scenario twice with the same seed instead and compares
every metric, contact, boot, mode change, event, recorded World sample and radio frame (content
and virtual time, by digest) exactly; it prints the first difference and exits 1 if there is one.
Too slow for the test suite (two full days).

Why a baseline measured in the same run: wall-clock figures depend on the machine and on what
else runs on it; the ratio to the bare World stepping through the same day (the environment
models alone, 1 s ticks) says how much the flight software and the link add, comparably across
machines. The acceptance figure is the absolute one: the full day must take under 3 minutes.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from flightsw.cli import default_sim_config
from flightsw.cli_run import format_summary
from flightsw.config import MissionConfig, load
from flightsw.sim_runner import SimOptions, first_difference, run_scenario
from sim.scenario import Scenario, builtin_scenario, load_scenario

TARGET_S = 120.0  # a 24 h day at >= 720x real time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="nominal_day", help="shipped scenario name or file")
    parser.add_argument("--duration", type=float, default=None, help="simulated seconds (default: the scenario's)")
    parser.add_argument("--report", default=None, help="also write the scenario report here")
    parser.add_argument("--determinism", action="store_true",
                        help="run the scenario twice with the same seed and compare everything exactly")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: the scenario's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    config = load(default_sim_config())
    path = Path(args.scenario) if Path(args.scenario).exists() else builtin_scenario(args.scenario)
    scenario = load_scenario(path, [d.name for d in config.devices])
    duration = args.duration or scenario.duration_s
    if args.determinism:
        return determinism(config, scenario, duration, args.seed)

    world = scenario.build_world()
    began = time.perf_counter()
    world.step(world.start + duration)
    baseline_s = time.perf_counter() - began
    print(f"baseline: bare World, {duration / 3600:.1f} h at {scenario.tick_s:g} s ticks: {baseline_s:.1f} s")

    with tempfile.TemporaryDirectory() as scratch:
        report = Path(args.report) if args.report else Path(scratch) / "report"
        result = run_scenario(config, scenario, SimOptions(duration_s=duration, report_dir=report))
    print(format_summary(result))
    ratio = result.wall_s / baseline_s if baseline_s > 0 else float("inf")
    print(f"flight software + world + link: {result.wall_s:.1f} s wall for {duration / 3600:.1f} h "
          f"({duration / result.wall_s:.0f}x real time), {ratio:.1f}x the bare World")
    scaled_day = result.wall_s * 86400.0 / duration
    verdict = "meets" if scaled_day < TARGET_S else "MISSES"
    print(f"a 24 h day at this rate: {scaled_day:.0f} s; {verdict} the {TARGET_S:.0f} s target")
    return 0 if result.passed else 1


def determinism(config: MissionConfig, scenario: Scenario, duration: float, seed: int | None) -> int:
    """Two runs, same scenario and seed, compared exactly; 0 when identical."""
    options = SimOptions(duration_s=duration, seed=seed)
    first = run_scenario(config, scenario, options)
    print(f"run 1: {first.wall_s:.1f} s wall, {len(first.events)} events, "
          f"{len(first.world_series.get('t', []))} World samples, reboots {first.metrics.get('reboots', 0):g}")
    second = run_scenario(config, scenario, options)
    print(f"run 2: {second.wall_s:.1f} s wall")
    difference = first_difference(first, second)
    label = f"{scenario.name} seed {options.seed if options.seed is not None else scenario.seed}, {duration / 3600:.1f} h"
    if difference is None:
        print(f"identical: {label} ({len(first.metrics)} metrics, {len(first.world_series)} World series)")
        return 0
    print(f"DIFFERENT: {label}: first difference: {difference}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
