"""Fault injection for simulated I2C parts and buses.

Why: the flight code's retry, stale-marking, power-cycle and bus-recovery paths only run when
something goes wrong; these knobs make them run on a laptop, deterministically with a seed.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, fields
from typing import Any


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"fault {name} must be a probability in 0..1, got {value}")


@dataclass
class PartFaults:
    """Faults of one part. `hung` models a latched-up part: it NACKs until power-cycled;
    `frozen` repeats the last sample while set, `latch_frozen` until the part is power-cycled
    (a stuck conversion engine); `bias` is added to a scalar sample (a part running hot: degC
    for a thermometer)."""

    nack_probability: float = 0.0
    absent: bool = False
    hung: bool = False
    frozen: bool = False
    latch_frozen: bool = False
    bias: float = 0.0
    out_of_range: bool = False
    bit_flip_probability: float = 0.0
    latency_s: float = 0.0

    def __post_init__(self) -> None:
        _check_probability("nack_probability", self.nack_probability)
        _check_probability("bit_flip_probability", self.bit_flip_probability)
        if self.latency_s < 0:
            raise ValueError(f"fault latency_s must be >= 0, got {self.latency_s}")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> PartFaults:
        known = {f.name for f in fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"unknown part fault(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**options)


@dataclass
class BusFaults:
    """Faults of a whole bus. `stuck` models a slave holding SDA low: every transaction times
    out until the master clocks SCL (bus recovery), which clears it."""

    nack_probability: float = 0.0
    stuck: bool = False
    latency_s: float = 0.0

    def __post_init__(self) -> None:
        _check_probability("nack_probability", self.nack_probability)
        if self.latency_s < 0:
            raise ValueError(f"fault latency_s must be >= 0, got {self.latency_s}")


@dataclass
class FaultDice:
    """A seeded, thread-safe random source (faults are rolled on bus worker threads)."""

    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def chance(self, probability: float) -> bool:
        if probability <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < probability

    def randrange(self, stop: int) -> int:
        with self._lock:
            return self._rng.randrange(stop)

    def gauss(self, sigma: float) -> float:
        with self._lock:
            return self._rng.gauss(0.0, sigma)
