"""Simulated MCP9808: T_A updated once per conversion time of the selected resolution.

T_A carries the alert flags of the datasheet (DS25095, register 5-4) in bits 15..13, set on each
conversion by comparing the temperature with the limit registers: bit 15 T_A >= T_CRIT, bit 14
T_A > T_UPPER, bit 13 T_A < T_LOWER. The limits hold 0.25 degC steps in bits 12..2 (two's
complement over 13 bits); the other bits read 0. With the reset limits (0 degC) a warm part
reports CRIT and UPPER, as the silicon does.
"""

from __future__ import annotations

from typing import Any

from hal.drivers.mcp9808 import REGMAP, RESOLUTIONS, celsius_to_raw
from hal.regmap import Register
from sim.parts.base import SimPart

LIMIT_MASK = 0x1FFC
LIMITS = ("T_UPPER", "T_LOWER", "T_CRIT")


def _signed13(raw: int) -> int:
    value = raw & 0x1FFF
    return value - 0x2000 if value & 0x1000 else value


class SimMCP9808(SimPart):
    regmap = REGMAP

    def __init__(self, address: int = 0x18, env: Any = None, *, location: str = "board",
                 **kwargs: Any) -> None:
        self.location = location
        super().__init__(address, env, **kwargs)

    def on_reset(self, now: float) -> None:
        self._next_done = now + RESOLUTIONS[3][1]

    def on_write(self, reg: Register, value: int) -> None:
        if reg.name == "RESOLUTION":
            value &= 0x3
        elif reg.name in LIMITS:
            value &= LIMIT_MASK
        super().on_write(reg, value)
        if reg.name in ("RESOLUTION", "CONFIG"):
            self._next_done = min(self._next_done,
                                  self.clock() + RESOLUTIONS[self.get("RESOLUTION")][1])

    def advance(self, now: float) -> None:
        if self.field("CONFIG", "SHDN") or now < self._next_done:
            return
        step, conversion_s = RESOLUTIONS[self.get("RESOLUTION")]
        self._next_done = now + conversion_s
        celsius = self.sample(lambda: self.env.temperature(self.location), lambda: 200.0)
        quantised = round(celsius / step) * step
        raw = celsius_to_raw(quantised)
        t = _signed13(raw)
        flags = 0
        if t >= _signed13(self.get("T_CRIT")):
            flags |= 0x8000
        if t > _signed13(self.get("T_UPPER")):
            flags |= 0x4000
        if t < _signed13(self.get("T_LOWER")):
            flags |= 0x2000
        self.put("T_A", raw | flags)
