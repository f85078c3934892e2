"""Simulated ADS1115: single-shot and continuous conversions with the documented timing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hal.drivers.ads1115 import REGMAP
from hal.regmap import Register
from sim.parts.base import SimPart, to_s16

FULL_SCALE_V = {0: 6.144, 1: 4.096, 2: 2.048, 3: 1.024, 4: 0.512, 5: 0.256, 6: 0.256, 7: 0.256}
SPS = {0: 8, 1: 16, 2: 32, 3: 64, 4: 128, 5: 250, 6: 475, 7: 860}


class SimADS1115(SimPart):
    regmap = REGMAP

    def __init__(self, address: int = 0x48, env: Any = None, *,
                 channels: Sequence[str] = ("ain0", "ain1", "ain2", "ain3"),
                 **kwargs: Any) -> None:
        self.inputs = list(channels) + ["unused"] * (4 - len(channels))
        super().__init__(address, env, **kwargs)

    def on_reset(self, now: float) -> None:
        self._done_at: float | None = None

    def _period(self) -> float:
        return 1.0 / SPS[self.field("CONFIG", "DR")]

    def on_write(self, reg: Register, value: int) -> None:
        if reg.name != "CONFIG":
            super().on_write(reg, value)
            return
        start = bool(value & 0x8000)
        single_shot = bool(value & 0x0100)
        busy = self._done_at is not None
        self.values[reg.address] = value & 0x7FFF  # OS reads 0 while a conversion runs
        if (start and single_shot) or not single_shot:
            self._done_at = self.clock() + self._period()
        elif not busy:
            self.values[reg.address] |= 0x8000

    def _convert(self) -> None:
        mux = self.field("CONFIG", "MUX")
        if mux >= 4:
            volts = self.env.light(self.inputs[mux - 4])
        else:  # differential pairs: AIN0-AIN1, AIN0-AIN3, AIN1-AIN3, AIN2-AIN3
            pos, neg = ((0, 1), (0, 3), (1, 3), (2, 3))[mux]
            volts = self.env.light(self.inputs[pos]) - self.env.light(self.inputs[neg])
        fsr = FULL_SCALE_V[self.field("CONFIG", "PGA")]
        volts = self.sample(lambda: volts, lambda: 10.0)
        self.put("CONVERSION", to_s16(volts / fsr * 32768))

    def advance(self, now: float) -> None:
        if self._done_at is None or now < self._done_at:
            return
        self._convert()
        if self.field("CONFIG", "MODE"):  # single-shot: back to power-down, OS=1
            self._done_at = None
            self.put("CONFIG", self.get("CONFIG") | 0x8000)
        else:
            self._done_at = now + self._period()
