"""What a scenario run measured: contacts, boots, the result, and the comparison of two runs.

Why apart: the determinism checks (tests, bench) compare results without running anything."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.environment.world import World, WorldEvent
from sim.scenario import (
    ExpectationResult,
    Scenario,
)

# A pass must peak at least this high to count as usable: near the horizon the link budget gives
# a bit error rate of ~3e-3, so a 150-byte frame survives with ~3 % probability and a short
# grazing pass may bring nothing down. Both counts are reported.
USABLE_ELEVATION_DEG = 5.0
# Report metrics that measure the host, not the simulation (excluded from determinism checks).
HOST_METRICS = frozenset({"run_wall_s", "run_speedup", "io_hold_expired"})


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


@dataclass(frozen=True)
class BootRecord:
    """One boot of the flight software during a run."""

    epoch: float  # simulated UTC (POSIX seconds) when the satellite was built
    boot_count: int  # the persistent boot counter the flight software read
    reset_reason: str  # why the previous run ended, as the flight software saw it


@dataclass
class SimResult:
    scenario: Scenario
    metrics: dict[str, float]
    expectations: list[ExpectationResult]
    contacts: list[ContactTally]
    events: list[tuple[float, str, str]]
    report_index: Path | None
    wall_s: float
    boots: list[BootRecord] = field(default_factory=list)
    modes: list[tuple[float, str]] = field(default_factory=list)
    world_series: Mapping[str, Sequence[float]] = field(default_factory=dict)  # the World's recording
    frames_digest: str = ""  # SHA-256 of every frame offered to the radio channel, with its time

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.expectations)


def contact_windows(world: World) -> Iterator[ContactTally]:
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


def first_difference(a: SimResult, b: SimResult) -> str | None:
    """The first way two runs differ (metrics except host figures, contacts, boots, modes,
    events, every World series sample, every radio frame), or None when they are identical."""
    metrics_a = {k: v for k, v in a.metrics.items() if k not in HOST_METRICS}
    metrics_b = {k: v for k, v in b.metrics.items() if k not in HOST_METRICS}
    for key in sorted(metrics_a.keys() | metrics_b.keys()):
        if metrics_a.get(key) != metrics_b.get(key):
            return f"metric {key}: {metrics_a.get(key)!r} != {metrics_b.get(key)!r}"
    lists: tuple[tuple[str, Sequence[Any], Sequence[Any]], ...] = (
        ("contact", a.contacts, b.contacts), ("boot", a.boots, b.boots), ("mode change", a.modes, b.modes),
        ("event", a.events, b.events))
    for what, items_a, items_b in lists:
        for i, (x, y) in enumerate(zip(items_a, items_b, strict=False)):
            if x != y:
                return f"{what} {i}: {x!r} != {y!r}"
        if len(items_a) != len(items_b):
            return f"{what}s: {len(items_a)} != {len(items_b)}"
    for column in sorted(a.world_series.keys() | b.world_series.keys()):
        xs, ys = a.world_series.get(column, []), b.world_series.get(column, [])
        times = a.world_series.get("t", [])
        for i, (x, y) in enumerate(zip(xs, ys, strict=False)):
            if x != y:
                at = f" at t+{times[i] - times[0]:.0f} s" if i < len(times) else ""
                return f"world series {column}[{i}]{at}: {x!r} != {y!r}"
        if len(xs) != len(ys):
            return f"world series {column}: {len(xs)} != {len(ys)} samples"
    if a.frames_digest != b.frames_digest:
        return (f"radio frames (content or time, same counts): digest {a.frames_digest[:12]} != "
                f"{b.frames_digest[:12]}")
    return None

