"""Simulated MCP9808: T_A updated once per conversion time of the selected resolution."""

from __future__ import annotations

from typing import Any

from hal.drivers.mcp9808 import REGMAP, RESOLUTIONS, celsius_to_raw
from hal.regmap import Register
from sim.parts.base import SimPart


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
        self.put("T_A", celsius_to_raw(quantised))
