"""TI INA219 current/power monitor (datasheet SBOS448): battery and power-rail telemetry.

Calibration follows the datasheet's equations: Current_LSB >= I_max_expected / 2^15 (rounded up
to a 1-2-5 step so readings are decimal-friendly), Cal = trunc(0.04096 / (Current_LSB * R_shunt)),
Power_LSB = 20 * Current_LSB. Example (0.1 ohm, 32 V, up to 3.2 A): Current_LSB = 100 uA ->
Cal = 4096, Power_LSB = 2 mW.
"""

from __future__ import annotations

import math
from typing import Any

from hal.drivers.base import ConfigError, DeviceNotFound, I2CDriver, Reading, settle
from hal.i2c import I2CBus
from hal.regmap import Field, Register, RegisterMap, fields_value

CONFIG_RESET = 0x399F

REGMAP = RegisterMap(
    part="INA219",
    addresses=tuple(range(0x40, 0x50)),
    auto_increment=False,
    registers=(
        Register("CONFIG", 0x00, 2, reset=CONFIG_RESET, fields=(
            Field("RST", 15), Field("BRNG", 13), Field("PG", 11, 2),
            Field("BADC", 7, 4), Field("SADC", 3, 4), Field("MODE", 0, 3),
        )),
        Register("SHUNT_VOLTAGE", 0x01, 2, access="r", signed=True, doc="10 uV/LSB"),
        Register("BUS_VOLTAGE", 0x02, 2, access="r", fields=(
            Field("BD", 3, 13, doc="4 mV/LSB"), Field("CNVR", 1), Field("OVF", 0),
        )),
        Register("POWER", 0x03, 2, access="r", doc="20 * Current_LSB per LSB"),
        Register("CURRENT", 0x04, 2, access="r", signed=True, doc="Current_LSB per LSB"),
        Register("CALIBRATION", 0x05, 2, doc="bit 0 always reads 0"),
    ),
)

SHUNT_LSB_V = 10e-6
BUS_LSB_V = 4e-3
#: PGA code -> full-scale shunt voltage
PGA_RANGES_V = {0: 0.040, 1: 0.080, 2: 0.160, 3: 0.320}
ADC_12BIT = 0b0011  # 12-bit, 532 us per conversion
MODE_CONTINUOUS = 0b111


def current_lsb_for(max_current_a: float) -> float:
    """Smallest 1-2-5 step >= I_max/2^15 (datasheet: Minimum_LSB = Max_Expected_I / 32767)."""
    if max_current_a <= 0:
        raise ConfigError(f"max_current_a must be > 0, got {max_current_a}")
    minimum = max_current_a / 32768
    decade = 10 ** math.floor(math.log10(minimum))
    for step in (1, 2, 5, 10):
        if step * decade >= minimum * (1 - 1e-9):
            return step * decade
    raise AssertionError("unreachable")


def calibration_value(shunt_ohms: float, current_lsb_a: float) -> int:
    """Datasheet equation 1: Cal = trunc(0.04096 / (Current_LSB * R_shunt)); bit 0 is void."""
    if shunt_ohms <= 0:
        raise ConfigError(f"shunt_ohms must be > 0, got {shunt_ohms}")
    cal = math.trunc(0.04096 / (current_lsb_a * shunt_ohms) + 1e-9)
    if not 1 < cal <= 0xFFFE:
        raise ConfigError(
            f"calibration {cal} out of range for shunt {shunt_ohms} ohm and LSB {current_lsb_a} A"
        )
    return cal & 0xFFFE


def pga_for(max_shunt_v: float) -> int:
    for code, full_scale in PGA_RANGES_V.items():
        if max_shunt_v <= full_scale * (1 + 1e-9):
            return code
    raise ConfigError(
        f"shunt voltage {max_shunt_v * 1e3:.0f} mV exceeds the INA219's 320 mV range; "
        "use a smaller shunt"
    )


class INA219(I2CDriver):
    kind = "ina219"
    regmap = REGMAP
    units = {"bus_voltage": "V", "shunt_voltage": "V", "current": "A", "power": "W"}

    def __init__(self, bus: I2CBus, address: int | None = None, *, shunt_ohms: float = 0.1,
                 max_current_a: float = 3.2, bus_range_v: int = 32, **options: Any) -> None:
        super().__init__(bus, address, **options)
        if bus_range_v not in (16, 32):
            raise ConfigError(f"bus_range_v must be 16 or 32, got {bus_range_v}")
        self.shunt_ohms = float(shunt_ohms)
        self.max_current_a = float(max_current_a)
        self.current_lsb = current_lsb_for(self.max_current_a)
        self.calibration = calibration_value(self.shunt_ohms, self.current_lsb)
        self.power_lsb = 20 * self.current_lsb
        self.pga = pga_for(self.max_current_a * self.shunt_ohms)
        self.config_value = fields_value(
            REGMAP["CONFIG"], BRNG=1 if bus_range_v == 32 else 0, PG=self.pga,
            BADC=ADC_12BIT, SADC=ADC_12BIT, MODE=MODE_CONTINUOUS,
        )

    async def probe(self) -> str:
        """No ID register: reset the part and check the documented reset value 0x399F."""
        try:
            await self.dev.write("CONFIG", 1 << 15)
            config = await self.dev.read("CONFIG")
        except OSError as exc:
            raise DeviceNotFound(f"ina219 at {self.address:#04x}: no answer ({exc})") from exc
        if config != CONFIG_RESET:
            raise DeviceNotFound(
                f"ina219 at {self.address:#04x}: CONFIG after reset {config:#06x}, "
                f"expected {CONFIG_RESET:#06x}"
            )
        return f"CONFIG reset={config:#06x}"

    async def configure(self) -> None:
        await self.dev.write("CONFIG", self.config_value)
        await self.dev.write("CALIBRATION", self.calibration)
        await settle(2 * 532e-6)  # one bus + one shunt conversion at 12 bit

    async def read(self) -> Reading:
        cal = await self.dev.read("CALIBRATION")
        bus_raw = await self.dev.read("BUS_VOLTAGE")
        shunt = await self.dev.read_signed("SHUNT_VOLTAGE")
        current = await self.dev.read_signed("CURRENT")
        power = await self.dev.read("POWER")
        bus_reg = REGMAP["BUS_VOLTAGE"]
        values = {
            "bus_voltage": bus_reg.field("BD").get(bus_raw) * BUS_LSB_V,
            "shunt_voltage": shunt * SHUNT_LSB_V,
            "current": current * self.current_lsb,
            "power": power * self.power_lsb,
        }
        if cal != self.calibration:
            # A brown-out reset clears CALIBRATION, after which CURRENT/POWER read 0.
            await self.configure()
            return Reading(values, False, f"calibration lost ({cal:#06x}); re-configured")
        if bus_reg.field("OVF").get(bus_raw):
            return Reading(values, False, "math overflow (current or power beyond range)")
        return Reading(values)
