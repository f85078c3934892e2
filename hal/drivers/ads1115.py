"""TI ADS1115 16-bit 4-channel ADC (datasheet SBAS444): coarse sun sensors and analog rails.

Single-shot conversions, one per channel: write CONFIG with OS=1 and the channel's MUX, wait
1/DR, poll OS (reads 1 once the conversion is done), read CONVERSION (signed, LSB = FSR/2^15).
Example: at +-2.048 V, 0x7FFF -> 2.047938 V, 0x0001 -> 62.5 uV, 0x8000 -> -2.048 V.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hal.drivers.base import ConfigError, DeviceNotFound, I2CDriver, Reading, settle
from hal.i2c import I2CBus
from hal.regmap import Field, Register, RegisterMap, fields_value

CONFIG_RESET = 0x8583
#: full-scale range V -> PGA code
PGA_CODES = {6.144: 0, 4.096: 1, 2.048: 2, 1.024: 3, 0.512: 4, 0.256: 5}
#: samples per second -> DR code
DATA_RATES = {8: 0, 16: 1, 32: 2, 64: 3, 128: 4, 250: 5, 475: 6, 860: 7}
MUX_SINGLE_ENDED = (0b100, 0b101, 0b110, 0b111)

REGMAP = RegisterMap(
    part="ADS1115",
    addresses=(0x48, 0x49, 0x4A, 0x4B),
    auto_increment=False,
    registers=(
        Register("CONVERSION", 0x00, 2, access="r", signed=True),
        Register("CONFIG", 0x01, 2, reset=CONFIG_RESET, fields=(
            Field("OS", 15), Field("MUX", 12, 3), Field("PGA", 9, 3), Field("MODE", 8),
            Field("DR", 5, 3), Field("COMP_MODE", 4), Field("COMP_POL", 3),
            Field("COMP_LAT", 2), Field("COMP_QUE", 0, 2),
        )),
        Register("LO_THRESH", 0x02, 2, reset=0x8000),
        Register("HI_THRESH", 0x03, 2, reset=0x7FFF),
    ),
)


def raw_to_volts(raw: int, full_scale_v: float) -> float:
    return raw * full_scale_v / 32768.0


class ADS1115(I2CDriver):
    kind = "ads1115"
    regmap = REGMAP
    units = {"ain0": "V", "ain1": "V", "ain2": "V", "ain3": "V"}  # renamed per instance

    def __init__(self, bus: I2CBus, address: int | None = None, *,
                 channels: Sequence[str] = ("ain0", "ain1", "ain2", "ain3"),
                 full_scale_v: float = 4.096, data_rate: int = 128, **options: Any) -> None:
        super().__init__(bus, address, **options)
        if not 1 <= len(channels) <= 4 or len(set(channels)) != len(channels):
            raise ConfigError(f"ads1115 channels must be 1..4 distinct names, got {channels}")
        if float(full_scale_v) not in PGA_CODES:
            raise ConfigError(f"ads1115 full_scale_v must be one of {sorted(PGA_CODES)}")
        if int(data_rate) not in DATA_RATES:
            raise ConfigError(f"ads1115 data_rate must be one of {sorted(DATA_RATES)}")
        self.channels = list(channels)
        self.full_scale_v = float(full_scale_v)
        self.pga = PGA_CODES[self.full_scale_v]
        self.dr = DATA_RATES[int(data_rate)]
        self.conversion_s = 1.0 / int(data_rate)
        self.units = {name: "V" for name in self.channels}  # type: ignore[misc]

    async def probe(self) -> str:
        """No ID register: the comparator thresholds keep their documented reset values
        (0x8000/0x7FFF) because this driver never writes them."""
        try:
            lo = await self.dev.read("LO_THRESH")
            hi = await self.dev.read("HI_THRESH")
        except OSError as exc:
            raise DeviceNotFound(f"ads1115 at {self.address:#04x}: no answer ({exc})") from exc
        if (lo, hi) != (0x8000, 0x7FFF):
            raise DeviceNotFound(
                f"ads1115 at {self.address:#04x}: thresholds {lo:#06x}/{hi:#06x}, "
                "expected reset values 0x8000/0x7fff"
            )
        return f"thresholds={lo:#06x}/{hi:#06x}"

    async def configure(self) -> None:
        # Single-shot mode, comparator disabled: nothing to keep in the part between reads.
        await self.dev.write("CONFIG", self._config(0, start=False))

    def _config(self, channel: int, *, start: bool) -> int:
        return fields_value(REGMAP["CONFIG"], OS=1 if start else 0,
                            MUX=MUX_SINGLE_ENDED[channel], PGA=self.pga, MODE=1, DR=self.dr,
                            COMP_QUE=0b11)

    async def convert(self, channel: int) -> int:
        await self.dev.write("CONFIG", self._config(channel, start=True))
        await settle(self.conversion_s * 1.1)
        for _ in range(10):
            if await self.dev.read_field("CONFIG", "OS"):
                return await self.dev.read_signed("CONVERSION")
            await settle(self.conversion_s * 0.2)
        raise TimeoutError(f"ads1115 at {self.address:#04x}: conversion never completed")

    async def read(self) -> Reading:
        values: dict[str, float] = {}
        saturated: list[str] = []
        for index, name in enumerate(self.channels):
            raw = await self.convert(index)
            values[name] = raw_to_volts(raw, self.full_scale_v)
            if raw in (-32768, 32767):
                saturated.append(name)
        if saturated:
            return Reading(values, False, f"saturated at +-{self.full_scale_v} V: {saturated}")
        return Reading(values)
