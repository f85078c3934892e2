"""`python -m bench.day`: a simulated 24 h of the reference mission, timed against a baseline.

Why a baseline measured in the same run: wall-clock figures depend on the machine and on what
else runs on it; the bare World stepping through the same day (the environment models alone,
1 s ticks) says how much the flight software and the link add, comparably across machines. The
acceptance figure is the absolute one: at least 720x real time (a day in 120 s).

``determinism`` (``python -m bench --determinism``) runs the scenario twice with the same seed and
compares every metric, contact, boot, mode change, event, recorded World sample and radio frame
(content and virtual time, by digest) exactly.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from bench.harness import RssSampler, child_parser, progress, write_result
from flightsw.cli import default_sim_config
from flightsw.cli_run import format_summary
from flightsw.config import MissionConfig, load
from flightsw.sim_runner import SimOptions, first_difference, run_scenario
from sim.scenario import Scenario, builtin_scenario, load_scenario

QUICK_DURATION_S = 7200.0


def load_day(name: str = "nominal_day") -> tuple[MissionConfig, Scenario]:
    config = load(default_sim_config())
    path = Path(name) if Path(name).exists() else builtin_scenario(name)
    return config, load_scenario(path, [d.name for d in config.devices])


def main(argv: list[str] | None = None) -> int:
    parser = child_parser(__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="nominal_day", help="shipped scenario name or file")
    parser.add_argument("--duration", type=float, default=None, help="simulated seconds (default: the scenario's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config, scenario = load_day(args.scenario)
    duration = args.duration or (QUICK_DURATION_S if args.quick else scenario.duration_s)

    world = scenario.build_world()
    began = time.perf_counter()
    world.step(world.start + duration)
    baseline_s = time.perf_counter() - began
    progress(f"bare World, {duration / 3600:.1f} h: {baseline_s:.1f} s")

    with RssSampler(period=0.5) as rss:
        result = run_scenario(config, scenario, SimOptions(duration_s=duration))
    progress(format_summary(result).splitlines()[0])
    # the end of the first simulated hour, at the run's (nearly constant) simulated rate
    first_hour_wall = result.wall_s * min(1.0, 3600.0 / duration)
    after_first_hour = [mb for t, mb in rss.samples if t >= first_hour_wall]
    growth = rss.samples[-1][1] - after_first_hour[0] if after_first_hour else float("nan")
    figures = {"speedup": duration / result.wall_s, "world_speedup": duration / baseline_s,
               "wall_s": result.wall_s, "baseline_s": baseline_s, "rss_end_mb": rss.samples[-1][1]}
    if growth == growth:
        figures["rss_growth_mb"] = growth
    # the simulator's own growth inside the same process: the World's recorded series (Python
    # lists of floats, sys.getsizeof), of which the part recorded after the first hour
    recording = sum(sys.getsizeof(v) + sum(sys.getsizeof(x) for x in v) for v in result.world_series.values())
    figures["world_recording_growth_mb"] = recording / 2**20 * (1.0 - min(1.0, 3600.0 / duration))
    notes = [f"{scenario.name}, {duration / 3600:g} h simulated"]
    if not result.passed:  # a shortened day cannot meet a full day's expectations; speed still counts
        notes.append(f"the scenario's expectations failed in this {duration / 3600:g} h run")
    write_result(args.json, figures, {"rss_mb": [(round(t, 1), round(mb, 2)) for t, mb in rss.samples]}, notes)
    return 0


def determinism(scenario_name: str, duration: float | None, seed: int | None) -> int:
    """Two runs, same scenario and seed, compared exactly; 0 when identical."""
    config, scenario = load_day(scenario_name)
    options = SimOptions(duration_s=duration or scenario.duration_s, seed=seed)
    first = run_scenario(config, scenario, options)
    print(f"run 1: {first.wall_s:.1f} s wall, {len(first.events)} events, "
          f"{len(first.world_series.get('t', []))} World samples, reboots {first.metrics.get('reboots', 0):g}")
    second = run_scenario(config, scenario, options)
    print(f"run 2: {second.wall_s:.1f} s wall")
    difference = first_difference(first, second)
    label = (f"{scenario.name} seed {options.seed if options.seed is not None else scenario.seed}, "
             f"{(options.duration_s or 0) / 3600:.1f} h")
    if difference is None:
        print(f"identical: {label} ({len(first.metrics)} metrics, {len(first.world_series)} World series)")
        return 0
    print(f"DIFFERENT: {label}: first difference: {difference}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
