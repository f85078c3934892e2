"""ST LSM6DSOX 6-axis IMU (datasheet DS12814): body rates for detumble/safe-mode checks, accel.

Outputs are 16-bit little-endian two's complement; with CTRL3_C.IF_INC (default on) one burst
read from OUT_TEMP_L returns temperature, gyro X/Y/Z and accel X/Y/Z (14 bytes).
Sensitivities (datasheet table 2): accel 0.061/0.122/0.244/0.488 mg/LSB for +-2/4/8/16 g;
gyro 8.75/17.5/35/70 mdps/LSB for 250/500/1000/2000 dps; temperature 256 LSB/degC, 0 = 25 degC.
Self-test (ST AN5272 procedure): accel |delta| 50..1700 mg at +-4 g, gyro 150..700 dps at 2000 dps.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from hal.drivers.base import ConfigError, I2CDriver, Reading, SelfTestResult, settle
from hal.i2c import I2CBus
from hal.regmap import Field, Register, RegisterMap, fields_value

WHO_AM_I_VALUE = 0x6C
STANDARD_GRAVITY = 9.80665
#: full scale g -> (FS_XL code, mg per LSB)
ACCEL_RANGES = {2: (0b00, 0.061), 4: (0b10, 0.122), 8: (0b11, 0.244), 16: (0b01, 0.488)}
#: full scale dps -> (FS_G code, mdps per LSB)
GYRO_RANGES = {250: (0b00, 8.75), 500: (0b01, 17.5), 1000: (0b10, 35.0), 2000: (0b11, 70.0)}
#: output data rate Hz -> ODR code (same table for accel and gyro up to 6667 Hz)
ODR_CODES = {12.5: 1, 26.0: 2, 52.0: 3, 104.0: 4, 208.0: 5, 416.0: 6, 833.0: 7}
ACCEL_ST_LIMITS_MG = (50.0, 1700.0)
GYRO_ST_LIMITS_DPS = (150.0, 700.0)
SATURATED = (-32768, 32767)

REGMAP = RegisterMap(
    part="LSM6DSOX",
    addresses=(0x6A, 0x6B),
    registers=(
        Register("WHO_AM_I", 0x0F, access="r", reset=WHO_AM_I_VALUE),
        Register("CTRL1_XL", 0x10, fields=(Field("ODR_XL", 4, 4), Field("FS_XL", 2, 2),
                                            Field("LPF2_XL_EN", 1))),
        Register("CTRL2_G", 0x11, fields=(Field("ODR_G", 4, 4), Field("FS_G", 2, 2),
                                           Field("FS_125", 1))),
        Register("CTRL3_C", 0x12, reset=0x04, fields=(
            Field("BOOT", 7), Field("BDU", 6), Field("H_LACTIVE", 5), Field("PP_OD", 4),
            Field("SIM", 3), Field("IF_INC", 2), Field("SW_RESET", 0),
        )),
        Register("CTRL4_C", 0x13),
        Register("CTRL5_C", 0x14, fields=(Field("ROUNDING", 5, 2), Field("ST_G", 2, 2),
                                           Field("ST_XL", 0, 2))),
        # CTRL6_C..CTRL10_C with the datasheet's reset values (DS13104 table 21; CTRL9_XL 0xE0)
        Register("CTRL6_C", 0x15, fields=(
            Field("TRIG_EN", 7), Field("LVL1_EN", 6), Field("LVL2_EN", 5), Field("XL_HM_MODE", 4),
            Field("USR_OFF_W", 3), Field("FTYPE", 0, 3),
        )),
        Register("CTRL7_G", 0x16, fields=(
            Field("G_HM_MODE", 7), Field("HP_EN_G", 6), Field("HPM_G", 4, 2), Field("OIS_ON_EN", 2),
            Field("USR_OFF_ON_OUT", 1), Field("OIS_ON", 0),
        )),
        Register("CTRL8_XL", 0x17, fields=(
            Field("HPCF_XL", 5, 3), Field("HP_REF_MODE_XL", 4), Field("FASTSETTL_MODE_XL", 3),
            Field("HP_SLOPE_XL_EN", 2), Field("XL_FS_MODE", 1), Field("LOW_PASS_ON_6D", 0),
        )),
        Register("CTRL9_XL", 0x18, reset=0xE0, fields=(
            Field("DEN_X", 7), Field("DEN_Y", 6), Field("DEN_Z", 5), Field("DEN_XL_G", 4),
            Field("DEN_XL_EN", 3), Field("DEN_LH", 2), Field("I3C_DISABLE", 1),
        )),
        Register("CTRL10_C", 0x19, fields=(Field("TIMESTAMP_EN", 5),)),
        Register("STATUS", 0x1E, access="r", fields=(Field("TDA", 2), Field("GDA", 1),
                                                      Field("XLDA", 0))),
        Register("OUT_TEMP_L", 0x20, access="r"), Register("OUT_TEMP_H", 0x21, access="r"),
        Register("OUTX_L_G", 0x22, access="r"), Register("OUTX_H_G", 0x23, access="r"),
        Register("OUTY_L_G", 0x24, access="r"), Register("OUTY_H_G", 0x25, access="r"),
        Register("OUTZ_L_G", 0x26, access="r"), Register("OUTZ_H_G", 0x27, access="r"),
        Register("OUTX_L_A", 0x28, access="r"), Register("OUTX_H_A", 0x29, access="r"),
        Register("OUTY_L_A", 0x2A, access="r"), Register("OUTY_H_A", 0x2B, access="r"),
        Register("OUTZ_L_A", 0x2C, access="r"), Register("OUTZ_H_A", 0x2D, access="r"),
    ),
)


class LSM6DSOX(I2CDriver):
    kind = "lsm6dsox"
    regmap = REGMAP
    units = {"rate_x": "rad/s", "rate_y": "rad/s", "rate_z": "rad/s",
             "accel_x": "m/s^2", "accel_y": "m/s^2", "accel_z": "m/s^2", "temperature": "degC"}
    has_self_test = True

    def __init__(self, bus: I2CBus, address: int | None = None, *, accel_range_g: int = 4,
                 gyro_range_dps: int = 500, odr_hz: float = 104.0, **options: Any) -> None:
        super().__init__(bus, address, **options)
        if accel_range_g not in ACCEL_RANGES:
            raise ConfigError(f"accel_range_g must be one of {sorted(ACCEL_RANGES)}")
        if gyro_range_dps not in GYRO_RANGES:
            raise ConfigError(f"gyro_range_dps must be one of {sorted(GYRO_RANGES)}")
        if float(odr_hz) not in ODR_CODES:
            raise ConfigError(f"odr_hz must be one of {sorted(ODR_CODES)}")
        self.fs_xl, self.mg_per_lsb = ACCEL_RANGES[accel_range_g]
        self.fs_g, self.mdps_per_lsb = GYRO_RANGES[gyro_range_dps]
        self.odr = ODR_CODES[float(odr_hz)]
        self.period_s = 1.0 / float(odr_hz)

    async def probe(self) -> str:
        return await self._expect_identity("WHO_AM_I", WHO_AM_I_VALUE, "WHO_AM_I")

    async def configure(self) -> None:
        await self.dev.write("CTRL3_C", fields_value(REGMAP["CTRL3_C"], SW_RESET=1, IF_INC=1))
        await settle(0.001)  # software reset completes in ~50 us
        await self.dev.write("CTRL3_C", fields_value(REGMAP["CTRL3_C"], BDU=1, IF_INC=1))
        await self.dev.write("CTRL5_C", 0)
        await self.dev.write("CTRL1_XL", fields_value(REGMAP["CTRL1_XL"], ODR_XL=self.odr,
                                                      FS_XL=self.fs_xl))
        await self.dev.write("CTRL2_G", fields_value(REGMAP["CTRL2_G"], ODR_G=self.odr,
                                                     FS_G=self.fs_g))
        await settle(2 * self.period_s)

    async def _burst(self, ready_mask: int = 0b011,
                     period: float | None = None) -> tuple[int, ...] | None:
        for _ in range(3):
            status = await self.dev.read("STATUS")
            if status & ready_mask == ready_mask:
                return struct.unpack("<7h", await self.dev.read_burst("OUT_TEMP_L", 14))
            await settle((period or self.period_s) / 2)
        return None

    async def read(self) -> Reading:
        raw = await self._burst()
        if raw is None:
            return Reading({}, False, "no new data (XLDA/GDA never set)")
        rate = [v * self.mdps_per_lsb * 1e-3 * math.pi / 180.0 for v in raw[1:4]]
        accel = [v * self.mg_per_lsb * 1e-3 * STANDARD_GRAVITY for v in raw[4:7]]
        values = {"rate_x": rate[0], "rate_y": rate[1], "rate_z": rate[2],
                  "accel_x": accel[0], "accel_y": accel[1], "accel_z": accel[2],
                  "temperature": 25.0 + raw[0] / 256.0}
        if any(v in SATURATED for v in raw[1:]):
            return Reading(values, False, "axis saturated")
        return Reading(values)

    async def _average(self, first: int, scale: float, samples: int, period: float) -> list[float]:
        sums = [0.0, 0.0, 0.0]
        for n in range(samples + 1):
            await settle(period)
            raw = await self._burst(0b001 if first == 4 else 0b010, period)
            if raw is None:
                raise RuntimeError("lsm6dsox self-test: data-ready never set")
            if n == 0:
                continue  # discard the first sample after a configuration change
            for i in range(3):
                sums[i] += raw[first + i] * scale
        return [s / samples for s in sums]

    async def self_test(self, samples: int = 5) -> SelfTestResult:
        measured: dict[str, float] = {}
        passed = True
        try:
            await self.dev.write("CTRL3_C", 0x44)
            # accelerometer: 52 Hz, +-4 g, gyro off
            await self.dev.write("CTRL2_G", 0)
            await self.dev.write("CTRL1_XL", 0x38)
            off = await self._average(4, 0.122, samples, 1 / 52)
            await self.dev.write("CTRL5_C", 0x01)
            on = await self._average(4, 0.122, samples, 1 / 52)
            await self.dev.write("CTRL5_C", 0x00)
            for i, axis in enumerate("xyz"):
                measured[f"accel_delta_{axis}_mg"] = abs(on[i] - off[i])
            # gyroscope: 208 Hz, 2000 dps, accel off
            await self.dev.write("CTRL1_XL", 0)
            await self.dev.write("CTRL2_G", 0x5C)
            off = await self._average(1, 0.070, samples, 1 / 208)
            await self.dev.write("CTRL5_C", 0x04)
            on = await self._average(1, 0.070, samples, 1 / 208)
            for i, axis in enumerate("xyz"):
                measured[f"gyro_delta_{axis}_dps"] = abs(on[i] - off[i])
        finally:
            await self.dev.write("CTRL5_C", 0x00)
            await self.configure()
        for key, value in measured.items():
            low, high = ACCEL_ST_LIMITS_MG if key.startswith("accel") else GYRO_ST_LIMITS_DPS
            passed = passed and low <= value <= high
        detail = ", ".join(f"{k}={v:.0f}" for k, v in measured.items())
        return SelfTestResult(passed, detail, measured)
