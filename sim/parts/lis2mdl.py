"""Simulated LIS2MDL: continuous/single conversions at the ODR, ZYXDA, self-test offset.

Datasheet DS12144: the hard-iron offsets OFFSET_{X,Y,Z}_REG (0x45-0x4A, 16-bit two's complement,
1.5 mG/LSB like the output) are subtracted from each measurement; CFG_REG_C.BLE = 1 swaps the low
and high bytes of every output word (OUTX..OUTZ and TEMP), i.e. big-endian data.
"""

from __future__ import annotations

import struct
from typing import Any

from hal.drivers.lis2mdl import ODR_HZ, REGMAP, TEMP_LSB_PER_C, TESLA_PER_LSB
from hal.regmap import Register
from sim.parts.base import SimPart, to_s16

#: field added on every axis while CFG_REG_C.Self_test is set (datasheet range 15..500 mG)
SELF_TEST_OFFSET_LSB = 100  # 150 mG


class SimLIS2MDL(SimPart):
    regmap = REGMAP

    def __init__(self, address: int = 0x1E, env: Any = None, *, location: str = "board",
                 **kwargs: Any) -> None:
        self.location = location
        super().__init__(address, env, **kwargs)

    def on_reset(self, now: float) -> None:
        self._next_done = now

    def on_write(self, reg: Register, value: int) -> None:
        if reg.name == "CFG_REG_A" and value & 0x60:  # SOFT_RST or REBOOT
            self.reset()
            return
        super().on_write(reg, value)
        if reg.name == "CFG_REG_A":
            self._next_done = self.clock() + 1.0 / ODR_HZ[(value >> 2) & 3]

    def advance(self, now: float) -> None:
        mode = self.field("CFG_REG_A", "MD")
        if mode in (2, 3) or now < self._next_done:
            return
        self._next_done = now + 1.0 / ODR_HZ[self.field("CFG_REG_A", "ODR")]
        field = self.sample(self.env.magnetic_field, lambda: (1.0, 1.0, 1.0))
        offset = SELF_TEST_OFFSET_LSB if self.field("CFG_REG_C", "SELF_TEST") else 0
        hard_iron = struct.unpack("<hhh", bytes(self.values[a] for a in range(0x45, 0x4B)))
        counts = [to_s16(b / TESLA_PER_LSB + offset - h) for b, h in zip(field, hard_iron, strict=True)]
        temp = to_s16((self.env.temperature(self.location) - 25.0) * TEMP_LSB_PER_C)
        order = ">HHHH" if self.field("CFG_REG_C", "BLE") else "<HHHH"
        data = struct.pack(order, *counts, temp)
        for i, byte in enumerate(data):
            self.values[0x68 + i] = byte
        self.values[0x67] = 0x0F  # ZYXDA and per-axis data-available bits
        if mode == 1:  # single measurement: back to idle afterwards
            self.put("CFG_REG_A", self.get("CFG_REG_A") | 0x03)

    def after_read(self, registers: list[Register]) -> None:
        if any(0x68 <= reg.address <= 0x6D for reg in registers):
            self.values[0x67] = 0x00
