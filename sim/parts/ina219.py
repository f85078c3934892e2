"""Simulated INA219: shunt and bus conversions of a named power rail, as the datasheet orders them.

Registers follow the datasheet (SBOS448): Current = Shunt * Cal / 4096, Power = Current * Bus /
5000 (bus in 4 mV counts), OVF set when a result overflows. Operating modes (CONFIG.MODE): 0
power-down, 1/2/3 triggered shunt / bus / shunt+bus (one conversion per write of the mode, then
idle), 4 ADC off, 5/6/7 continuous shunt / bus / shunt+bus. Only the selected channel converts;
a conversion takes that channel's ADC time. CNVR is set when a conversion completes and cleared by
reading POWER or by writing a converting mode into CONFIG. BRNG = 0 is the 16 V range: the bus
result saturates at 16 V (4000 counts), 32 V range at the 13-bit full scale.
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
#: MODE -> (converts shunt, converts bus); modes 0 and 4 convert nothing
MODE_CHANNELS = {1: (True, False), 2: (False, True), 3: (True, True),
                 5: (True, False), 6: (False, True), 7: (True, True)}
TRIGGERED_MODES = (1, 2, 3)
BUS_FULL_SCALE_COUNTS = {0: 4000, 1: 0x1FFF}  # BRNG 0: 16 V; 1: 32 V (13-bit register)

_BUS = REGMAP["BUS_VOLTAGE"]
_CNVR = _BUS.field("CNVR")


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
        self._single_pending = False
        self._next_done = now + self._period()

    def _period(self) -> float:
        cfg = self.get("CONFIG") if self.values else CONFIG_RESET
        shunt, bus = MODE_CHANNELS.get(cfg & 0x7, (False, False))
        return (adc_time((cfg >> 3) & 0xF) if shunt else 0.0) + (adc_time((cfg >> 7) & 0xF) if bus else 0.0)

    def on_write(self, reg: Register, value: int) -> None:
        if reg.name == "CONFIG" and value & 0x8000:
            self.reset()
            return
        if reg.name == "CALIBRATION":
            value &= 0xFFFE
        super().on_write(reg, value)
        if reg.name == "CONFIG":
            mode = value & 0x7
            self._next_done = self.clock() + self._period()
            self._single_pending = mode in TRIGGERED_MODES  # any write of a triggered mode starts one
            if mode in MODE_CHANNELS:  # writing a converting mode clears CNVR (datasheet 8.6.3.2)
                self.put("BUS_VOLTAGE", _CNVR.put(self.get("BUS_VOLTAGE"), 0))

    def advance(self, now: float) -> None:
        mode = self.field("CONFIG", "MODE")
        channels = MODE_CHANNELS.get(mode)
        if channels is None or now < self._next_done:
            return  # power-down, ADC off, or still converting
        if mode in TRIGGERED_MODES:
            if not self._single_pending:
                return  # the single conversion is done; the part idles until the next trigger
            self._single_pending = False
        self._next_done = now + self._period()
        convert_shunt, convert_bus = channels
        volts, amps = self.sample(lambda: self.env.rail(self.rail), lambda: (32.76, 1e3))
        bus_raw = self.get("BUS_VOLTAGE")
        bus_counts = _BUS.field("BD").get(bus_raw)
        overflow = bool(bus_raw & 1)
        if convert_bus:
            full_scale = BUS_FULL_SCALE_COUNTS[self.field("CONFIG", "BRNG")]
            bus_counts = max(0, min(full_scale, round(volts / 4e-3)))
        current = self.values[REGMAP["CURRENT"].address]
        current = current - 0x10000 if current & 0x8000 else current
        if convert_shunt:
            full_scale_counts = 4000 << self.field("CONFIG", "PG")  # 40 mV * 2^PG at 10 uV/LSB
            shunt = round(amps * self.shunt_ohms / 10e-6)
            overflow = abs(shunt) > full_scale_counts
            shunt = max(-full_scale_counts, min(full_scale_counts, shunt))
            cal = self.get("CALIBRATION")
            current = shunt * cal // 4096 if shunt >= 0 else -((-shunt) * cal // 4096)
            overflow = overflow or not -32768 <= current <= 32767
            self.put("SHUNT_VOLTAGE", to_s16(shunt))
            self.put("CURRENT", to_s16(current))
        power = abs(current) * bus_counts // 5000
        overflow = overflow or power > 0xFFFF
        self.put("POWER", min(power, 0xFFFF))
        self.put("BUS_VOLTAGE", (bus_counts << 3) | 0b10 | (1 if overflow else 0))

    def after_read(self, registers: list[Register]) -> None:
        if any(reg.name == "POWER" for reg in registers):
            self.put("BUS_VOLTAGE", self.get("BUS_VOLTAGE") & ~0b10)
