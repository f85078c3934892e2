"""ST LIS2MDL 3-axis magnetometer (datasheet DS12144): attitude determination, B-dot detumble.

Fixed +-49.152 gauss range, 1.5 mG/LSB (1.5e-7 T), 16-bit two's complement little-endian,
register address auto-increments on multi-byte I2C reads. Self-test follows ST's procedure
(100 Hz continuous, average N samples with and without CFG_REG_C.Self_test, |delta| 15..500 mG).
"""

from __future__ import annotations

import struct
from typing import Any

from hal.drivers.base import ConfigError, I2CDriver, Reading, SelfTestResult, settle
from hal.i2c import I2CBus
from hal.regmap import Field, Register, RegisterMap, fields_value

WHO_AM_I_VALUE = 0x40
TESLA_PER_LSB = 1.5e-7  # 1.5 mG
TEMP_LSB_PER_C = 8.0
ODR_HZ = {0: 10.0, 1: 20.0, 2: 50.0, 3: 100.0}
SELF_TEST_LIMITS_MG = (15.0, 500.0)
SATURATED = (-32768, 32767)

REGMAP = RegisterMap(
    part="LIS2MDL",
    addresses=(0x1E,),
    registers=(
        Register("OFFSET_X_L", 0x45), Register("OFFSET_X_H", 0x46),
        Register("OFFSET_Y_L", 0x47), Register("OFFSET_Y_H", 0x48),
        Register("OFFSET_Z_L", 0x49), Register("OFFSET_Z_H", 0x4A),
        Register("WHO_AM_I", 0x4F, access="r", reset=WHO_AM_I_VALUE),
        Register("CFG_REG_A", 0x60, reset=0x03, fields=(
            Field("COMP_TEMP_EN", 7), Field("REBOOT", 6), Field("SOFT_RST", 5), Field("LP", 4),
            Field("ODR", 2, 2), Field("MD", 0, 2),
        )),
        Register("CFG_REG_B", 0x61, fields=(
            Field("OFF_CANC_ONE_SHOT", 4), Field("INT_ON_DATAOFF", 3), Field("SET_FREQ", 2),
            Field("OFF_CANC", 1), Field("LPF", 0),
        )),
        Register("CFG_REG_C", 0x62, fields=(
            Field("INT_ON_PIN", 6), Field("I2C_DIS", 5), Field("BDU", 4), Field("BLE", 3),
            Field("SPI_4WIRE", 2), Field("SELF_TEST", 1), Field("DRDY_ON_PIN", 0),
        )),
        Register("INT_CTRL", 0x63, reset=0xE0),
        Register("INT_SOURCE", 0x64, access="r"),
        Register("INT_THS_L", 0x65), Register("INT_THS_H", 0x66),
        Register("STATUS", 0x67, access="r", fields=(Field("ZYXOR", 7), Field("ZYXDA", 3))),
        Register("OUTX_L", 0x68, access="r"), Register("OUTX_H", 0x69, access="r"),
        Register("OUTY_L", 0x6A, access="r"), Register("OUTY_H", 0x6B, access="r"),
        Register("OUTZ_L", 0x6C, access="r"), Register("OUTZ_H", 0x6D, access="r"),
        Register("TEMP_L", 0x6E, access="r"), Register("TEMP_H", 0x6F, access="r"),
    ),
)


def raw_to_tesla(raw: int) -> float:
    return raw * TESLA_PER_LSB


class LIS2MDL(I2CDriver):
    kind = "lis2mdl"
    regmap = REGMAP
    units = {"mag_x": "T", "mag_y": "T", "mag_z": "T", "temperature": "degC"}
    has_self_test = True

    def __init__(self, bus: I2CBus, address: int | None = None, *, odr_hz: float = 10.0,
                 **options: Any) -> None:
        super().__init__(bus, address, **options)
        codes = {hz: code for code, hz in ODR_HZ.items()}
        if float(odr_hz) not in codes:
            raise ConfigError(f"lis2mdl odr_hz must be one of {sorted(codes)}, got {odr_hz}")
        self.odr_code = codes[float(odr_hz)]
        self.period_s = 1.0 / float(odr_hz)

    async def probe(self) -> str:
        return await self._expect_identity("WHO_AM_I", WHO_AM_I_VALUE, "WHO_AM_I")

    async def configure(self) -> None:
        await self.dev.write("CFG_REG_A", fields_value(REGMAP["CFG_REG_A"], COMP_TEMP_EN=1,
                                                       ODR=self.odr_code, MD=0))
        await self.dev.write("CFG_REG_B", fields_value(REGMAP["CFG_REG_B"], OFF_CANC=1))
        await self.dev.write("CFG_REG_C", fields_value(REGMAP["CFG_REG_C"], BDU=1))
        await settle(self.period_s)

    async def _sample(self, period: float | None = None) -> tuple[int, int, int] | None:
        for _ in range(3):
            if await self.dev.read_field("STATUS", "ZYXDA"):
                data = await self.dev.read_burst("OUTX_L", 6)
                x, y, z = struct.unpack("<hhh", data)
                return x, y, z
            await settle((period or self.period_s) / 2)
        return None

    async def read(self) -> Reading:
        raw = await self._sample()
        temp_raw = struct.unpack("<h", await self.dev.read_burst("TEMP_L", 2))[0]
        temperature = 25.0 + temp_raw / TEMP_LSB_PER_C
        if raw is None:
            return Reading({"temperature": temperature}, False, "no new data (ZYXDA never set)")
        values = {"mag_x": raw_to_tesla(raw[0]), "mag_y": raw_to_tesla(raw[1]),
                  "mag_z": raw_to_tesla(raw[2]), "temperature": temperature}
        if any(v in SATURATED for v in raw):
            return Reading(values, False, f"axis saturated (raw {raw})")
        return Reading(values)

    async def _average(self, samples: int) -> tuple[float, float, float]:
        await self._sample(0.01)  # discard the first sample after a configuration change
        sums = [0.0, 0.0, 0.0]
        for _ in range(samples):
            raw = await self._sample(0.01)  # self-test runs at 100 Hz
            if raw is None:
                raise RuntimeError("lis2mdl self-test: data-ready never set")
            for i in range(3):
                sums[i] += raw[i] * 1.5  # mG
        return sums[0] / samples, sums[1] / samples, sums[2] / samples

    async def self_test(self, samples: int = 50) -> SelfTestResult:
        """ST procedure: 100 Hz continuous + offset cancellation + BDU, compare with ST on/off."""
        await self.dev.write("CFG_REG_A", 0x8C)
        await self.dev.write("CFG_REG_B", 0x02)
        await self.dev.write("CFG_REG_C", 0x10)
        await settle(0.02)
        try:
            off = await self._average(samples)
            await self.dev.write("CFG_REG_C", 0x12)
            await settle(0.06)
            on = await self._average(samples)
        finally:
            await self.dev.write("CFG_REG_C", 0x10)
            await self.configure()
        delta = {axis: abs(on[i] - off[i]) for i, axis in enumerate("xyz")}
        low, high = SELF_TEST_LIMITS_MG
        passed = all(low <= d <= high for d in delta.values())
        detail = ", ".join(f"d{axis}={d:.0f} mG" for axis, d in delta.items())
        return SelfTestResult(passed, f"{detail} (limits {low:.0f}..{high:.0f} mG)",
                              {f"delta_{a}_mG": d for a, d in delta.items()})
