"""Register-level simulated I2C part, built on the driver's own RegisterMap.

Why: the part answers byte transactions exactly as the silicon would (reset values, read-only
registers, address auto-increment, data-ready bits, conversion timing), so the flight driver runs
unchanged against it. Subclasses add only the physics: how a conversion turns the environment
into register values.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from hal.regmap import Register, RegisterMap
from sim.faults import PartFaults
from sim.parts.environment import EnvironmentSource


class SimPart:
    regmap: ClassVar[RegisterMap]

    def __init__(self, address: int, env: EnvironmentSource, *,
                 clock: Callable[[], float] = time.monotonic,
                 faults: PartFaults | None = None, **options: Any) -> None:
        if address not in self.regmap.addresses:
            raise ValueError(f"{self.regmap.part} cannot sit at address {address:#04x}")
        self.address = address
        self.env = env
        self.clock = clock
        self.faults = faults or PartFaults()
        self.options = options
        self.powered = True
        self.power_cycles = 0
        self.values: dict[int, int] = {}
        self._lock = threading.RLock()
        self._last_sample: Any = None
        self.reset()

    # -- life cycle -------------------------------------------------------------------------
    def reset(self) -> None:
        """Power-on/software reset: every register back to its documented reset value."""
        with self._lock:
            self.values = {reg.address: reg.reset for reg in self.regmap.registers}
            self.on_reset(self.clock())

    def power(self, on: bool) -> None:
        """Supply switched by a GPIO: off makes the part vanish, on resets it (clears a hang)."""
        with self._lock:
            if on and not self.powered:
                self.power_cycles += 1
                self.faults.hung = False
                self.faults.latch_frozen = False
                self.reset()
            self.powered = on

    # -- register helpers for subclasses ------------------------------------------------------
    def get(self, name: str) -> int:
        return self.values[self.regmap[name].address]

    def put(self, name: str, value: int) -> None:
        reg = self.regmap[name]
        self.values[reg.address] = value & ((1 << (8 * reg.size)) - 1)

    def field(self, reg: str, name: str) -> int:
        register = self.regmap[reg]
        return register.field(name).get(self.values[register.address])

    def sample(self, fresh: Callable[[], Any], saturated: Callable[[], Any]) -> Any:
        """Apply the frozen/out-of-range faults to a new physical sample."""
        if self.faults.out_of_range:
            return saturated()
        if (self.faults.frozen or self.faults.latch_frozen) and self._last_sample is not None:
            return self._last_sample
        sample = fresh()
        if self.faults.bias and isinstance(sample, int | float):
            sample += self.faults.bias
        self._last_sample = sample
        return self._last_sample

    # -- bus side (called by SimI2CBus on a worker thread) ----------------------------------
    def read(self, register: int, length: int) -> bytes:
        with self._lock:
            self.advance(self.clock())
            regmap = self.regmap
            values = self.values
            reg = regmap.at(register)
            if reg is not None and reg.size == length:  # the common case: one whole register
                self.after_read([reg])
                return reg.encode(values[reg.address])
            out = bytearray()
            address = register
            touched: list[Register] = []
            while len(out) < length:
                reg = regmap.at(address)
                if reg is None:
                    out.append(0)
                else:
                    touched.append(reg)
                    out += reg.encode(values[reg.address])
                if regmap.auto_increment and (reg is None or reg.size == 1):
                    address = (address + 1) & 0xFF
            self.after_read(touched)
            return bytes(out[:length])

    def write(self, register: int, data: bytes) -> None:
        with self._lock:
            self.advance(self.clock())
            address = register
            remaining = bytes(data)
            while remaining:
                reg = self.regmap.at(address)
                size = reg.size if reg is not None else 1
                chunk, remaining = remaining[:size], remaining[size:]
                if reg is not None and len(chunk) == reg.size and reg.access != "r":
                    self.on_write(reg, reg.decode(chunk))
                if not self.regmap.auto_increment:
                    break
                address = (address + 1) & 0xFF

    # -- hooks --------------------------------------------------------------------------------
    def on_reset(self, now: float) -> None:
        """Start conversion timers etc. after reset."""

    def on_write(self, reg: Register, value: int) -> None:
        self.values[reg.address] = value

    def advance(self, now: float) -> None:
        """Run the conversions that completed since the last transaction."""

    def after_read(self, registers: list[Register]) -> None:
        """Clear data-ready bits etc. once output registers were read."""


def to_s16(value: float) -> int:
    """Round and clamp to a signed 16-bit count, returned as the unsigned register value."""
    return max(-32768, min(32767, round(value))) & 0xFFFF


class LoopClock:
    """The event loop's clock, readable from bus worker threads.

    Why: parts are called on worker threads where no loop is running, yet their conversion
    timing must follow the loop's (possibly virtual) time. Until a loop is bound, it reads
    time.monotonic, which is what a standard loop uses anyway.
    """

    def __init__(self) -> None:
        self._time: Callable[[], float] = time.monotonic

    def bind(self, loop_time: Callable[[], float]) -> None:
        self._time = loop_time

    def __call__(self) -> float:
        return self._time()
