"""Microchip MCP9808 digital temperature sensor (datasheet DS25095): board, battery, radio.

T_A register: bits 15..13 alert flags, bit 12 sign, bits 11..0 temperature in 1/16 degC
(two's complement over 13 bits). Example: 0x01A8 -> +26.5 degC; 0x1FF0 -> -1.0 degC.
"""

from __future__ import annotations

from typing import Any

from hal.drivers.base import ConfigError, DeviceNotFound, I2CDriver, Reading, settle
from hal.i2c import I2CBus
from hal.regmap import Field, Register, RegisterMap

MANUFACTURER_ID = 0x0054
DEVICE_ID = 0x04
#: resolution code -> (degC per LSB, conversion time in s, typical, datasheet table 1-1)
RESOLUTIONS = {0: (0.5, 0.030), 1: (0.25, 0.065), 2: (0.125, 0.130), 3: (0.0625, 0.250)}
OPERATING_RANGE_C = (-40.0, 125.0)

REGMAP = RegisterMap(
    part="MCP9808",
    addresses=tuple(range(0x18, 0x20)),
    auto_increment=False,
    registers=(
        Register("CONFIG", 0x01, 2, fields=(Field("HYST", 9, 2), Field("SHDN", 8))),
        Register("T_UPPER", 0x02, 2),
        Register("T_LOWER", 0x03, 2),
        Register("T_CRIT", 0x04, 2),
        Register("T_A", 0x05, 2, access="r", fields=(
            Field("CRIT", 15), Field("UPPER", 14), Field("LOWER", 13), Field("TEMP", 0, 13),
        )),
        Register("MANUF_ID", 0x06, 2, access="r", reset=MANUFACTURER_ID),
        Register("DEVICE_ID", 0x07, 2, access="r", reset=DEVICE_ID << 8,
                 fields=(Field("ID", 8, 8), Field("REV", 0, 8))),
        Register("RESOLUTION", 0x08, 1, reset=3, fields=(Field("RES", 0, 2),)),
    ),
)


def raw_to_celsius(raw: int) -> float:
    """T_A register value -> degC (flags ignored, 13-bit two's complement, 1/16 degC)."""
    value = raw & 0x1FFF
    if value & 0x1000:
        value -= 0x2000
    return value / 16.0


def celsius_to_raw(celsius: float) -> int:
    """Inverse of raw_to_celsius (used by the simulated part), clamped to 13 bits."""
    counts = max(-4096, min(4095, round(celsius * 16)))
    return counts & 0x1FFF


class MCP9808(I2CDriver):
    kind = "mcp9808"
    regmap = REGMAP
    units = {"temperature": "degC"}

    def __init__(self, bus: I2CBus, address: int | None = None, *, resolution: int = 3,
                 **options: Any) -> None:
        super().__init__(bus, address, **options)
        if resolution not in RESOLUTIONS:
            raise ConfigError(f"mcp9808 resolution must be 0..3, got {resolution}")
        self.resolution = resolution
        self.conversion_s = RESOLUTIONS[resolution][1]

    async def probe(self) -> str:
        found = await self._expect_identity("MANUF_ID", MANUFACTURER_ID, "manufacturer")
        device = await self.dev.read_field("DEVICE_ID", "ID")
        if device != DEVICE_ID:
            raise DeviceNotFound(f"mcp9808 at {self.address:#04x}: device id {device:#x}")
        return f"{found} device={device:#04x}"

    async def configure(self) -> None:
        await self.dev.write("CONFIG", 0x0000)  # continuous conversion, no hysteresis
        await self.dev.write("RESOLUTION", self.resolution)
        await settle(self.conversion_s)  # first conversion after leaving shutdown/reset

    async def read(self) -> Reading:
        raw = await self.dev.read("T_A")
        celsius = raw_to_celsius(raw)
        low, high = OPERATING_RANGE_C
        if not low <= celsius <= high:
            return Reading({"temperature": celsius}, False,
                           f"{celsius:.2f} degC outside the {low:.0f}..{high:.0f} degC range")
        return Reading({"temperature": celsius})
