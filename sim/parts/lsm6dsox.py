"""Simulated LSM6DSOX: accel/gyro conversions at their ODRs, IF_INC, STATUS bits, self-test."""

from __future__ import annotations

import math
import struct
from typing import Any

from hal.drivers.lsm6dsox import ACCEL_RANGES, GYRO_RANGES, REGMAP, STANDARD_GRAVITY
from hal.regmap import Register
from sim.parts.base import SimPart, to_s16

ODR_HZ = {1: 12.5, 2: 26.0, 3: 52.0, 4: 104.0, 5: 208.0, 6: 416.0, 7: 833.0, 8: 1666.0,
          9: 3332.0, 10: 6667.0, 11: 1.6}
ACCEL_SELF_TEST_MG = 500.0  # datasheet: 50..1700 mg
GYRO_SELF_TEST_DPS = 300.0  # datasheet: 150..700 dps at 2000 dps
FS_XL_MG = {code: mg for code, mg in ACCEL_RANGES.values()}
FS_G_MDPS = {code: mdps for code, mdps in GYRO_RANGES.values()}


class SimLSM6DSOX(SimPart):
    regmap = REGMAP

    def __init__(self, address: int = 0x6A, env: Any = None, *, location: str = "board",
                 **kwargs: Any) -> None:
        self.location = location
        super().__init__(address, env, **kwargs)

    @property
    def auto_increment(self) -> bool:
        return bool(self.field("CTRL3_C", "IF_INC"))

    def on_reset(self, now: float) -> None:
        self._next_xl = self._next_g = now

    def on_write(self, reg: Register, value: int) -> None:
        if reg.name == "CTRL3_C" and value & 0x81:  # SW_RESET or BOOT
            self.reset()
            return
        super().on_write(reg, value)
        now = self.clock()
        if reg.name == "CTRL1_XL" and value >> 4:
            self._next_xl = now + 1.0 / ODR_HZ[value >> 4]
        if reg.name == "CTRL2_G" and value >> 4:
            self._next_g = now + 1.0 / ODR_HZ[value >> 4]

    def _store(self, first: int, counts: list[int]) -> None:
        for i, byte in enumerate(struct.pack("<HHH", *counts)):
            self.values[first + i] = byte

    def advance(self, now: float) -> None:
        odr_xl, odr_g = self.field("CTRL1_XL", "ODR_XL"), self.field("CTRL2_G", "ODR_G")
        status = self.get("STATUS")
        if odr_xl and now >= self._next_xl:
            self._next_xl = now + 1.0 / ODR_HZ[odr_xl]
            accel = self.sample(self.env.acceleration, lambda: (1e3, 1e3, 1e3))
            st = {0: 0.0, 1: ACCEL_SELF_TEST_MG, 2: -ACCEL_SELF_TEST_MG}.get(
                self.field("CTRL5_C", "ST_XL"), 0.0)
            mg = FS_XL_MG[self.field("CTRL1_XL", "FS_XL")]
            self._store(0x28, [to_s16((a / STANDARD_GRAVITY * 1e3 + st) / mg) for a in accel])
            status |= 0b101
        if odr_g and now >= self._next_g:
            self._next_g = now + 1.0 / ODR_HZ[odr_g]
            rates = self.env.angular_rate()
            st = {0: 0.0, 1: GYRO_SELF_TEST_DPS, 3: -GYRO_SELF_TEST_DPS}.get(
                self.field("CTRL5_C", "ST_G"), 0.0)
            mdps = 4.375 if self.field("CTRL2_G", "FS_125") else FS_G_MDPS[
                self.field("CTRL2_G", "FS_G")]
            self._store(0x22, [to_s16((math.degrees(r) + st) * 1e3 / mdps) for r in rates])
            status |= 0b110
        if status & 0b100:
            temp = to_s16((self.env.temperature(self.location) - 25.0) * 256)
            self.values[0x20], self.values[0x21] = temp & 0xFF, temp >> 8
        self.put("STATUS", status)

    def read(self, register: int, length: int) -> bytes:
        if self.auto_increment or length == 1:
            return super().read(register, length)
        return super().read(register, 1) * length  # IF_INC=0: the address does not advance

    def after_read(self, registers: list[Register]) -> None:
        names = {reg.name for reg in registers}
        status = self.get("STATUS")
        if "OUTZ_H_A" in names or "OUTX_L_A" in names:
            status &= ~0b001
        if "OUTZ_H_G" in names or "OUTX_L_G" in names:
            status &= ~0b010
        if "OUT_TEMP_H" in names:
            status &= ~0b100
        self.put("STATUS", status)
