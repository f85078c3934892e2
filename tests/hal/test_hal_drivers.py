"""Every driver against its simulated part, including the datasheet examples."""

from __future__ import annotations

import asyncio
import math

import pytest

from hal.drivers import ADS1115, INA219, LIS2MDL, LSM6DSOX, MCP9808
from hal.drivers.ads1115 import raw_to_volts
from hal.drivers.base import ConfigError, DeviceNotFound
from hal.drivers.ina219 import calibration_value, current_lsb_for
from hal.drivers.mcp9808 import raw_to_celsius
from sim.parts import SimADS1115, SimINA219, SimLIS2MDL, SimLSM6DSOX, SimMCP9808


def test_ina219_datasheet_calibration_example() -> None:
    # 0.1 ohm shunt, 32 V range, up to 3.2 A (2 A expected in the 32V_2A example): 100 uA LSB
    assert current_lsb_for(3.2) == pytest.approx(100e-6)
    assert current_lsb_for(2.0) == pytest.approx(100e-6)
    assert calibration_value(0.1, 100e-6) == 4096
    # 0.01 ohm, 4 A expected -> 200 uA LSB would be 1-2-5 rounding of 122 uA; Cal = 20480
    assert calibration_value(0.01, 200e-6) == 20480


def test_ina219_rejects_impossible_shunt(sim_bus, make_bus) -> None:
    with pytest.raises(ConfigError, match="320 mV"):
        INA219(make_bus(), 0x40, shunt_ohms=1.0, max_current_a=1.0)


async def test_ina219_reads_rail_in_si_units(env, sim_bus, make_bus) -> None:
    env.rails["battery"] = (7.6, 0.45)
    sim_bus.attach(SimINA219(0x40, env, rail="battery", shunt_ohms=0.1))

    drv = INA219(make_bus(), 0x40, shunt_ohms=0.1, max_current_a=3.2)
    identity = await drv.probe()
    await drv.configure()
    reading = await drv.read()
    assert "0x399f" in identity
    assert drv.calibration == 4096
    assert reading.valid, reading.reason
    assert reading.values["bus_voltage"] == pytest.approx(7.6, abs=0.004)
    assert reading.values["shunt_voltage"] == pytest.approx(0.045, abs=1e-5)
    assert reading.values["current"] == pytest.approx(0.45, abs=2e-4)
    assert reading.values["power"] == pytest.approx(7.6 * 0.45, rel=0.01)


async def test_ina219_detects_lost_calibration_and_reconfigures(env, sim_bus, make_bus) -> None:
    part = sim_bus.attach(SimINA219(0x41, env, rail="3v3"))

    drv = INA219(make_bus(), 0x41)
    await drv.configure()
    part.reset()  # brown-out: calibration register back to 0
    first = await drv.read()
    await asyncio.sleep(0.003)
    second = await drv.read()
    assert not first.valid and "calibration lost" in first.reason
    assert second.valid and second.values["current"] == pytest.approx(0.21, abs=5e-4)


def test_mcp9808_datasheet_conversions() -> None:
    assert raw_to_celsius(0x01A8) == 26.5
    assert raw_to_celsius(0x1FF0) == -1.0
    assert raw_to_celsius(0xE1A8) == 26.5  # alert flag bits are not temperature
    assert raw_to_celsius(0x0C10) == 193.0


async def test_mcp9808_probe_configure_read(env, sim_bus, make_bus) -> None:
    env.temperatures_c["battery"] = -12.3
    sim_bus.attach(SimMCP9808(0x19, env, location="battery"))

    drv = MCP9808(make_bus(), 0x19, resolution=3)
    ident = await drv.probe()
    await drv.configure()
    reading = await drv.read()
    assert "0x54" in ident
    assert reading.valid
    assert reading.values["temperature"] == pytest.approx(-12.3, abs=0.0625)


async def test_mcp9808_wrong_identity_is_not_found(env, sim_bus, make_bus) -> None:
    sim_bus.attach(SimLIS2MDL(0x1E, env))  # something else answers at 0x1E? probe 0x18 instead
    with pytest.raises(DeviceNotFound, match="no answer"):
        await MCP9808(make_bus(retries=1), 0x18).probe()


async def test_lis2mdl_field_and_self_test(env, sim_bus, make_bus) -> None:
    env.mag_t = (21.0e-6, -4.5e-6, 38.1e-6)
    sim_bus.attach(SimLIS2MDL(0x1E, env))

    drv = LIS2MDL(make_bus(), odr_hz=100)
    await drv.probe()
    await drv.configure()
    reading = await drv.read()
    result = await drv.self_test(samples=5)
    after = await drv.read()
    assert reading.valid
    for axis, expected in zip("xyz", (21.0e-6, -4.5e-6, 38.1e-6), strict=True):
        assert reading.values[f"mag_{axis}"] == pytest.approx(expected, abs=1.5e-7)
    assert result.passed, result.detail
    assert result.measured["delta_x_mG"] == pytest.approx(150.0, abs=2.0)
    assert after.valid and after.values["mag_z"] == pytest.approx(38.1e-6, abs=1.5e-7)


async def test_lis2mdl_saturation_is_invalid(env, sim_bus, make_bus) -> None:
    part = sim_bus.attach(SimLIS2MDL(0x1E, env))
    part.faults.out_of_range = True

    drv = LIS2MDL(make_bus(), odr_hz=100)
    await drv.configure()
    reading = await drv.read()
    assert not reading.valid and "saturated" in reading.reason


async def test_lsm6dsox_rates_accel_and_self_test(env, sim_bus, make_bus) -> None:
    env.rates_rad_s = (0.1, -0.05, 0.02)
    env.accel_m_s2 = (0.0, 0.0, 9.80665)
    sim_bus.attach(SimLSM6DSOX(0x6B, env))

    drv = LSM6DSOX(make_bus(), 0x6B, gyro_range_dps=250, accel_range_g=2, odr_hz=208)
    ident = await drv.probe()
    await drv.configure()
    reading = await drv.read()
    result = await drv.self_test(samples=3)
    assert "0x6c" in ident
    assert reading.valid
    assert reading.values["rate_x"] == pytest.approx(0.1, abs=math.radians(0.00875))
    assert reading.values["rate_y"] == pytest.approx(-0.05, abs=math.radians(0.00875))
    assert reading.values["accel_z"] == pytest.approx(9.80665, abs=0.001)
    assert reading.values["temperature"] == pytest.approx(22.0, abs=0.01)  # "board" location
    assert result.passed, result.detail
    assert result.measured["accel_delta_x_mg"] == pytest.approx(500, abs=1)
    assert result.measured["gyro_delta_z_dps"] == pytest.approx(300, abs=0.1)


async def test_ads1115_datasheet_codes_and_channels(env, sim_bus, make_bus) -> None:
    assert raw_to_volts(0x7FFF, 2.048) == pytest.approx(2.047938, abs=1e-6)
    assert raw_to_volts(1, 2.048) == pytest.approx(62.5e-6)
    assert raw_to_volts(-32768, 2.048) == -2.048
    sim_bus.attach(SimADS1115(0x49, env, channels=["css_px", "css_mx", "css_py", "css_my"]))

    drv = ADS1115(make_bus(), 0x49, channels=["css_px", "css_mx", "css_py", "css_my"],
                  full_scale_v=4.096, data_rate=860)
    await drv.probe()
    await drv.configure()
    reading = await drv.read()
    assert reading.valid
    assert reading.values["css_px"] == pytest.approx(2.1, abs=0.000125)
    assert reading.values["css_mx"] == pytest.approx(0.02, abs=0.000125)
    assert reading.values["css_my"] == pytest.approx(0.05, abs=0.000125)


async def test_ads1115_saturation_flagged(env, sim_bus, make_bus) -> None:
    env.lights_v["css_px"] = 3.0
    sim_bus.attach(SimADS1115(0x48, env, channels=["css_px"]))

    drv = ADS1115(make_bus(), 0x48, channels=["css_px"], full_scale_v=2.048, data_rate=860)
    await drv.configure()
    reading = await drv.read()
    assert not reading.valid and "saturated" in reading.reason
