"""Simulated INA219: continuous shunt+bus conversions of a named power rail.

Registers follow the datasheet: Current = Shunt * Cal / 4096, Power = Current * Bus / 5000
(bus in 4 mV counts), OVF set when a result overflows, CNVR cleared by reading POWER.
"""

from __future__ import annotations

from typing import Any

from hal.drivers.ina219 import CONFIG_RESET, REGMAP
from hal.regmap import Register
from sim.parts.base import SimPart, to_s16

#: ADC setting (4 bits) -> conversion time, s (datasheet table 5); averaging modes 1xxx
ADC_TIMES = {0: 84e-6, 1: 148e-6, 2: 276e-6, 3: 532e-6}
AVG_TIMES = {8: 532e-6, 9: 1.06e-3, 10: 2.13e-3, 11: 4.26e-3, 12: 8.51e-3, 13: 17.02e-3,
             14: 34.05e-3, 15: 68.10e-3}


def adc_time(code: int) -> float:
    return ADC_TIMES[code & 0x3] if code < 8 else AVG_TIMES[code]


class SimINA219(SimPart):
    regmap = REGMAP

    def __init__(self, address: int = 0x40, env: Any = None, *, rail: str = "battery",
                 shunt_ohms: float = 0.1, **kwargs: Any) -> None:
        self.rail = rail
        self.shunt_ohms = float(shunt_ohms)
        super().__init__(address, env, **kwargs)

    def on_reset(self, now: float) -> None:
        self._next_done = now + self._period()

    def _period(self) -> float:
        cfg = self.get("CONFIG") if self.values else CONFIG_RESET
        return adc_time((cfg >> 7) & 0xF) + adc_time((cfg >> 3) & 0xF)

    def on_write(self, reg: Register, value: int) -> None:
        if reg.name == "CONFIG" and value & 0x8000:
            self.reset()
            return
        if reg.name == "CALIBRATION":
            value &= 0xFFFE
        super().on_write(reg, value)
        if reg.name == "CONFIG":
            self._next_done = self.clock() + self._period()

    def advance(self, now: float) -> None:
        mode = self.field("CONFIG", "MODE")
        if mode not in (5, 6, 7) or now < self._next_done:
            return  # power-down, triggered modes (unused by the driver) or still converting
        self._next_done = now + self._period()
        volts, amps = self.sample(lambda: self.env.rail(self.rail), lambda: (32.76, 1e3))
        full_scale_counts = 4000 << self.field("CONFIG", "PG")  # 40 mV * 2^PG at 10 uV/LSB
        shunt = round(amps * self.shunt_ohms / 10e-6)
        overflow = abs(shunt) > full_scale_counts
        shunt = max(-full_scale_counts, min(full_scale_counts, shunt))
        bus_counts = max(0, min(0x1FFF, round(volts / 4e-3)))
        cal = self.get("CALIBRATION")
        current = shunt * cal // 4096 if shunt >= 0 else -((-shunt) * cal // 4096)
        power = abs(current) * bus_counts // 5000
        overflow = overflow or not -32768 <= current <= 32767 or power > 0xFFFF
        self.put("SHUNT_VOLTAGE", to_s16(shunt))
        self.put("CURRENT", to_s16(current))
        self.put("POWER", min(power, 0xFFFF))
        self.put("BUS_VOLTAGE", (bus_counts << 3) | 0b10 | (1 if overflow else 0))

    def after_read(self, registers: list[Register]) -> None:
        if any(reg.name == "POWER" for reg in registers):
            self.put("BUS_VOLTAGE", self.get("BUS_VOLTAGE") & ~0b10)
