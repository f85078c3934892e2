"""How a scenario run is asked for: the run options, the command-line duration parser, the run's error.

Why apart: the command line and the benchmarks build options and parse durations without
composing a satellite."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_TICKER_S = 10.0  # World step period (1 s ticks inside); 5-10 s keeps a day in minutes
# From the watchdog's reset to the flight software running again: Linux boot of a Raspberry Pi
# Zero 2 W / CM4 class board to the start of the flight service (~20 s measured on such boards).
DEFAULT_BOOT_DELAY_S = 20.0


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
    boot_delay_s: float = DEFAULT_BOOT_DELAY_S  # watchdog reset to flight software running again
    resume: bool = False  # True: data_dir may hold a satellite's storage (power-cut campaign), which boots on it

    def __post_init__(self) -> None:
        if self.speed is not None and not self.speed > 0:
            raise ValueError(f"speed must be positive (or None for as fast as possible), got {self.speed}")
        if self.seed is not None and self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"duration must be positive, got {self.duration_s}")
        if not 0.1 <= self.ticker_period_s <= 60.0:
            raise ValueError(f"ticker period {self.ticker_period_s} s must be within [0.1, 60] s")
        if not 0.0 <= self.boot_delay_s <= 600.0:
            raise ValueError(f"boot delay {self.boot_delay_s} s must be within [0, 600] s")


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
