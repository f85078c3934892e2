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
import threading
import time
import tracemalloc
from pathlib import Path

from bench.harness import RssSampler, child_parser, progress, write_result
from flightsw.cli import default_sim_config
from flightsw.cli_run import format_summary
from flightsw.config import MissionConfig, load
from flightsw.sim_runner import SimOptions, first_difference, run_scenario
from sim.scenario import Scenario, builtin_scenario, load_scenario

QUICK_DURATION_S = 7200.0
ROOT = Path(__file__).resolve().parents[1]


class TraceSampler:
    """``--tracemalloc``: the live Python allocations by source line, on a thread every ``period``
    s of wall time (the statistics only, not the snapshots: a snapshot of a day is large).

    Why: RSS says the process grew, not what grew; the growth by line between the end of the first
    simulated hour and the end names the structure, and splits the flight software's share
    (flightsw/, hal/) from the simulator's (sim/) and the rest (the standard library, packages)."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-trace", daemon=True)
        self._t0 = time.perf_counter()

    def __enter__(self) -> TraceSampler:
        tracemalloc.start(1)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._take()
        tracemalloc.stop()

    def _take(self) -> None:
        own = [tracemalloc.Filter(False, __file__), tracemalloc.Filter(False, tracemalloc.__file__)]
        stats = tracemalloc.take_snapshot().filter_traces(own).statistics("lineno")
        by_line = {f"{s.traceback[0].filename}:{s.traceback[0].lineno}": s.size for s in stats}
        self.samples.append((time.perf_counter() - self._t0, by_line))

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._take()

    def growth(self, since_wall: float) -> tuple[dict[str, float], list[tuple[str, int]]]:
        """MiB grown by package from the first sample at or after ``since_wall`` to the last, and
        the lines that grew most."""
        first = next((by for t, by in self.samples if t >= since_wall), self.samples[-1][1])
        last = self.samples[-1][1]
        diff = {line: last.get(line, 0) - first.get(line, 0) for line in set(first) | set(last)}
        parts = {"flight": 0, "sim": 0, "other": 0}
        for line, size in diff.items():
            parts[_part(line)] += size
        top = sorted(diff.items(), key=lambda item: -item[1])[:25]
        return {k: v / 2**20 for k, v in parts.items()}, [(_short(line), size) for line, size in top]


def _part(line: str) -> str:
    """flight: flightsw/ and hal/ but the simulation runner and the ground station (flightsw/sim_runner,
    flightsw/ground: the simulator's side of the run); sim: those and sim/; other: everything else."""
    path = line.rsplit(":", 1)[0]
    if any(path.startswith(str(ROOT / part)) for part in ("sim", "flightsw/sim_runner", "flightsw/ground")):
        return "sim"
    if path.startswith(str(ROOT / "flightsw")) or path.startswith(str(ROOT / "hal")):
        return "flight"
    return "other"


def _short(line: str) -> str:
    return line.replace(str(ROOT) + "/", "")


def load_day(name: str = "nominal_day") -> tuple[MissionConfig, Scenario]:
    config = load(default_sim_config())
    path = Path(name) if Path(name).exists() else builtin_scenario(name)
    return config, load_scenario(path, [d.name for d in config.devices])


def main(argv: list[str] | None = None) -> int:
    parser = child_parser(__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="nominal_day", help="shipped scenario name or file")
    parser.add_argument("--duration", type=float, default=None, help="simulated seconds (default: the scenario's)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also trace Python allocations by line (several times slower: speed not comparable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config, scenario = load_day(args.scenario)
    duration = args.duration or (QUICK_DURATION_S if args.quick else scenario.duration_s)

    world = scenario.build_world()
    began = time.perf_counter()
    world.step(world.start + duration)
    baseline_s = time.perf_counter() - began
    progress(f"bare World, {duration / 3600:.1f} h: {baseline_s:.1f} s")

    tracer = TraceSampler(period=5.0) if args.tracemalloc else None
    with RssSampler(period=0.5) as rss:
        if tracer is None:
            result = run_scenario(config, scenario, SimOptions(duration_s=duration))
        else:
            with tracer:
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
    samples: dict[str, object] = {"rss_mb": [(round(t, 1), round(mb, 2)) for t, mb in rss.samples]}
    if tracer is not None:
        parts, top = tracer.growth(first_hour_wall)
        for part, mb in parts.items():
            figures[f"traced_growth_{part}_mb"] = mb
        samples["traced_growth_top"] = top
        samples["traced_total_mb"] = [(round(t, 1), round(sum(by.values()) / 2**20, 3)) for t, by in tracer.samples]
        progress("traced growth after the first hour: " + ", ".join(f"{k} {v:.3f} MB" for k, v in parts.items()))
        for line, size in top:
            progress(f"    {size / 1024:9.1f} KiB  {line}")
        notes.append("traced with tracemalloc: the speed-up is not comparable with a plain run")
    if not result.passed:  # a shortened day cannot meet a full day's expectations; speed still counts
        notes.append(f"the scenario's expectations failed in this {duration / 3600:g} h run")
    write_result(args.json, figures, samples, notes)
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
