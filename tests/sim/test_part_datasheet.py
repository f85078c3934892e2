"""Register behaviour of the simulated parts against their datasheets, byte by byte on the bus.

Each test states the datasheet's rule it checks and drives the part through raw register reads
and writes (what an I2C master sees), with a hand-set clock, so nothing depends on the flight
driver's choices.
"""

from __future__ import annotations

import struct

import pytest

from sim.parts.environment import ConstantEnvironment
from sim.parts.ina219 import SimINA219
from sim.parts.lis2mdl import SimLIS2MDL
from sim.parts.lsm6dsox import SimLSM6DSOX
from sim.parts.mcp9808 import SimMCP9808


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def u16(part: object, register: int) -> int:
    return int.from_bytes(part.read(register, 2), "big")  # type: ignore[attr-defined]


def w16(part: object, register: int, value: int) -> None:
    part.write(register, value.to_bytes(2, "big"))  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------- INA219
# SBOS448: CONFIG 0x00 (BRNG bit 13, PG 12:11, BADC 10:7, SADC 6:3, MODE 2:0), SHUNT 0x01
# (10 uV/LSB), BUS 0x02 (BD 15:3 at 4 mV, CNVR bit 1, OVF bit 0), POWER 0x03, CURRENT 0x04, CAL 0x05.
CONV_12BIT_S = 532e-6


def ina(volts: float = 7.6, amps: float = 0.45) -> tuple[SimINA219, ConstantEnvironment, Clock]:
    env = ConstantEnvironment()
    env.rails["battery"] = (volts, amps)
    clock = Clock()
    part = SimINA219(0x40, env, rail="battery", shunt_ohms=0.1, clock=clock)
    w16(part, 0x05, 4096)
    return part, env, clock


def ina_config(mode: int, brng: int = 1) -> int:
    return (brng << 13) | (3 << 11) | (0b0011 << 7) | (0b0011 << 3) | mode


def test_ina219_triggered_mode_converts_once_per_trigger_then_stops() -> None:
    """Triggered shunt+bus (MODE 3): one conversion per write of the mode, none afterwards."""
    part, env, clock = ina(7.6, 0.45)
    w16(part, 0x00, ina_config(3))
    clock.t += 2 * CONV_12BIT_S + 1e-6
    bus = u16(part, 0x02)
    assert bus & 0b10, "CNVR after the triggered conversion"
    assert (bus >> 3) * 4e-3 == pytest.approx(7.6, abs=4e-3)
    assert u16(part, 0x01) == 4500  # 45 mV at 10 uV/LSB
    env.rails["battery"] = (6.0, 0.2)
    clock.t += 1.0  # long after: no further conversion in a triggered mode
    assert (u16(part, 0x02) >> 3) * 4e-3 == pytest.approx(7.6, abs=4e-3)
    assert u16(part, 0x01) == 4500
    w16(part, 0x00, ina_config(3))  # writing the same triggered mode again triggers again
    clock.t += 2 * CONV_12BIT_S + 1e-6
    assert (u16(part, 0x02) >> 3) * 4e-3 == pytest.approx(6.0, abs=4e-3)
    assert u16(part, 0x01) == 2000


def test_ina219_shunt_only_and_bus_only_modes_convert_only_their_channel() -> None:
    part, env, clock = ina(7.6, 0.45)
    w16(part, 0x00, ina_config(5))  # shunt continuous
    clock.t += 0.01
    assert u16(part, 0x01) == 4500
    assert u16(part, 0x02) >> 3 == 0, "the bus channel never converted in shunt-only mode"
    w16(part, 0x00, ina_config(6))  # bus continuous
    env.rails["battery"] = (7.0, 0.1)
    clock.t += 0.01
    assert (u16(part, 0x02) >> 3) * 4e-3 == pytest.approx(7.0, abs=4e-3)
    assert u16(part, 0x01) == 4500, "the shunt result holds in bus-only mode"
    w16(part, 0x00, ina_config(2))  # bus triggered
    env.rails["battery"] = (6.5, 0.3)
    clock.t += CONV_12BIT_S + 1e-6  # one bus conversion time is enough for a bus-only trigger
    assert (u16(part, 0x02) >> 3) * 4e-3 == pytest.approx(6.5, abs=4e-3)
    assert u16(part, 0x01) == 4500


def test_ina219_mode_write_clears_cnvr() -> None:
    """CNVR clears on reading POWER or on writing a new converting mode to CONFIG."""
    part, _, clock = ina()
    w16(part, 0x00, ina_config(7))
    clock.t += 0.01
    assert u16(part, 0x02) & 0b10
    w16(part, 0x00, ina_config(7))
    assert not u16(part, 0x02) & 0b10, "a mode write clears CNVR before the next conversion ends"
    clock.t += 0.01
    assert u16(part, 0x02) & 0b10
    u16(part, 0x03)
    assert not u16(part, 0x02) & 0b10, "reading POWER clears CNVR"


def test_ina219_16v_range_saturates_the_bus_result() -> None:
    """BRNG = 0 selects the 16 V full-scale range: a 20 V bus reads full scale (4000 counts = 16 V)."""
    part, _, clock = ina(20.0, 0.1)
    w16(part, 0x00, ina_config(7, brng=0))
    clock.t += 0.01
    assert (u16(part, 0x02) >> 3) * 4e-3 == pytest.approx(16.0)
    w16(part, 0x00, ina_config(7, brng=1))
    clock.t += 0.01
    assert (u16(part, 0x02) >> 3) * 4e-3 == pytest.approx(20.0, abs=4e-3)


# ------------------------------------------------------------------------------------ MCP9808
# DS25095: T_A 0x05 bits 15/14/13 = T_A >= T_CRIT / T_A > T_UPPER / T_A < T_LOWER; limits
# 0x02 upper, 0x03 lower, 0x04 crit, 0.25 degC in bits 12..2, 13-bit two's complement.


def limit(celsius: float) -> int:
    return round(celsius * 4) << 2 & 0x1FFC


@pytest.mark.parametrize(
    ("temperature", "expected_flags"),
    [(25.0, 0b000), (35.0, 0b010), (60.0, 0b110), (70.0, 0b110), (5.0, 0b001), (-10.0, 0b001)],
)
def test_mcp9808_alert_flags_follow_the_limits(temperature: float, expected_flags: int) -> None:
    env = ConstantEnvironment()
    env.temperatures_c["board"] = temperature
    clock = Clock()
    part = SimMCP9808(0x18, env, location="board", clock=clock)
    w16(part, 0x02, limit(30.0))  # upper
    w16(part, 0x03, limit(10.0))  # lower
    w16(part, 0x04, limit(60.0))  # crit
    clock.t += 0.3
    raw = u16(part, 0x05)
    assert raw >> 13 == expected_flags
    value = raw & 0x1FFF
    assert (value - 0x2000 if value & 0x1000 else value) / 16 == temperature


def test_mcp9808_limit_registers_keep_only_their_implemented_bits() -> None:
    part = SimMCP9808(0x18, ConstantEnvironment(), clock=Clock())
    w16(part, 0x02, 0xFFFF)
    assert u16(part, 0x02) == 0x1FFC


# ------------------------------------------------------------------------------------ LIS2MDL
# DS12144: OFFSET_X_REG_L..OFFSET_Z_REG_H 0x45..0x4A, two's complement, 1.5 mG/LSB, subtracted from
# the output; CFG_REG_C (0x62) bit 3 BLE: 1 swaps the low and high byte of the output data.


def lis(field_t: tuple[float, float, float]) -> tuple[SimLIS2MDL, Clock]:
    env = ConstantEnvironment()
    env.mag_t = field_t
    clock = Clock()
    part = SimLIS2MDL(0x1E, env, clock=clock)
    part.write(0x60, bytes([0x0C]))  # 100 Hz continuous
    return part, clock


def test_lis2mdl_hard_iron_offsets_are_subtracted() -> None:
    part, clock = lis((15e-6, -30e-6, 45e-6))  # 100, -200, 300 LSB
    part.write(0x45, struct.pack("<hhh", 40, -60, 1000))
    clock.t += 0.02
    assert struct.unpack("<hhh", part.read(0x68, 6)) == (100 - 40, -200 + 60, 300 - 1000)


def test_lis2mdl_ble_swaps_the_byte_order() -> None:
    part, clock = lis((15e-6, -30e-6, 45e-6))
    part.write(0x62, bytes([0x08]))  # BLE
    clock.t += 0.02
    assert struct.unpack(">hhh", part.read(0x68, 6)) == (100, -200, 300)
    part.write(0x62, bytes([0x00]))
    clock.t += 0.02
    assert struct.unpack("<hhh", part.read(0x68, 6)) == (100, -200, 300)


# ----------------------------------------------------------------------------------- LSM6DSOX
# DS13104 register map: CTRL6_C 0x15 (00h), CTRL7_G 0x16 (00h), CTRL8_XL 0x17 (00h),
# CTRL9_XL 0x18 (E0h), CTRL10_C 0x19 (00h), all R/W.


def test_lsm6dsox_ctrl6_to_ctrl10_reset_values_and_writes() -> None:
    part = SimLSM6DSOX(0x6A, ConstantEnvironment(), clock=Clock())
    assert part.read(0x15, 5) == bytes([0x00, 0x00, 0x00, 0xE0, 0x00])
    part.write(0x15, bytes([0x10, 0x40, 0x04, 0xE2, 0x20]))
    assert part.read(0x15, 5) == bytes([0x10, 0x40, 0x04, 0xE2, 0x20])
    part.write(0x12, bytes([0x01]))  # SW_RESET restores the reset values
    assert part.read(0x15, 5) == bytes([0x00, 0x00, 0x00, 0xE0, 0x00])
