"""The flight I2CBus under injected faults: retries, counters, absent parts, stuck bus."""

from __future__ import annotations

import asyncio
import errno
import threading

import pytest

from hal.drivers import INA219, LIS2MDL, MCP9808
from hal.i2c import I2CBus, I2CError
from sim.faults import BusFaults, PartFaults
from sim.parts import SimINA219, SimLIS2MDL, SimMCP9808


async def test_five_percent_nacks_every_reading_arrives_and_errors_counted(env, sim_bus, make_bus):
    part = sim_bus.attach(SimMCP9808(0x18, env, location="board"))
    sim_bus.attach(SimINA219(0x40, env, rail="battery"))
    part.faults.nack_probability = 0.05
    sim_bus.faults.nack_probability = 0.0
    sim_bus.parts[0x40].faults.nack_probability = 0.05

    bus = make_bus(retries=3)
    temp = MCP9808(bus, 0x18, resolution=0)
    power = INA219(bus, 0x40)
    for drv in (temp, power):
        await drv.probe()
        await drv.configure()
    readings = []
    for _ in range(150):
        readings.append(await temp.read())
        readings.append(await power.read())
    assert len(readings) == 300 and all(r.valid for r in readings)
    assert all(r.values.get("temperature", 20.0) == pytest.approx(20.0, abs=2.5) for r in readings)
    temp_stats, power_stats = bus.stats(0x18), bus.stats(0x40)
    # ~5% of ~150-750 transactions per part failed at least once and were retried
    assert temp_stats.errors >= 2 and power_stats.errors >= 10
    assert temp_stats.retries >= temp_stats.errors - temp_stats.failures * 4
    assert temp_stats.failures == 0 and power_stats.failures == 0
    assert "EREMOTEIO" in power_stats.last_error


async def test_absent_part_fails_fast_with_clear_error_and_others_still_work(env, sim_bus, make_bus):
    sim_bus.attach(SimMCP9808(0x18, env))
    ghost = sim_bus.attach(SimMCP9808(0x19, env))
    ghost.faults.absent = True

    bus = make_bus(retries=2)
    with pytest.raises(Exception) as info:
        await MCP9808(bus, 0x19).probe()
    good = MCP9808(bus, 0x18)
    await good.probe()
    await good.configure()
    error, reading = info.value, await good.read()
    assert "0x19" in str(error) and "no answer" in str(error)
    assert bus.stats(0x19).failures == 1 and bus.stats(0x19).errors == 3  # 1 try + 2 retries
    assert reading.valid and bus.stats(0x18).errors == 0


async def test_stuck_bus_is_recovered_by_scl_pulses(env, sim_bus, make_bus):
    sim_bus.attach(SimLIS2MDL(0x1E, env))

    bus = make_bus(retries=4, recover_after=2)
    drv = LIS2MDL(bus, odr_hz=100)
    await drv.configure()
    sim_bus.faults.stuck = True  # a slave holds SDA low from now on
    reading = await drv.read()
    assert reading.valid
    assert bus.bus_stats.recoveries == 1
    assert sim_bus.scl_pulses == 9 and not sim_bus.faults.stuck
    assert bus.stats(0x1E).errors == 2  # two ETIMEDOUT attempts, then recovery, then success


async def test_stuck_bus_without_recovery_reports_timeout(env, sim_bus):
    sim_bus.attach(SimMCP9808(0x18, env))
    sim_bus.faults.stuck = True

    bus = I2CBus("sim-1", lambda: sim_bus, retries=1, backoff=0.0, recover_after=5)
    with pytest.raises(I2CError) as info:
        await bus.read_byte_data(0x18, 0x08)
    error = info.value
    assert error.errno == errno.ETIMEDOUT and "ETIMEDOUT" in str(error)


async def test_hung_transaction_times_out_without_blocking_the_loop(env, sim_bus):
    """A transaction that never returns: the caller gets a timeout, the loop stays free."""
    sim_bus.attach(SimMCP9808(0x18, env))
    release = threading.Event()

    class HangingBus:
        def read_byte_data(self, addr, reg, force=None):
            release.wait(5.0)
            return 0

        def close(self):
            pass

    bus = I2CBus("hang", HangingBus, timeout=0.2, retries=0)

    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    with pytest.raises(I2CError, match="timeout"):
        await bus.read_byte_data(0x18, 0x05)
    task.cancel()
    release.set()
    await bus.close()
    stats = bus.stats(0x18)
    assert ticks >= 2 and stats.timeouts == 1


async def test_bit_flips_and_latency_are_applied(env, sim_bus, make_bus):
    part = sim_bus.attach(SimMCP9808(0x18, env))
    part.faults.bit_flip_probability = 1.0

    bus = make_bus()
    reads = [await bus.read_block(0x18, 0x06, 2) for _ in range(20)]
    assert all(r != b"\x00\x54" for r in reads)  # manufacturer id corrupted every time
    assert all(bin(int.from_bytes(r, "big") ^ 0x0054).count("1") == 1 for r in reads)


def test_fault_settings_are_validated():
    with pytest.raises(ValueError, match="nack_probability"):
        PartFaults(nack_probability=1.5)
    with pytest.raises(ValueError, match="latency_s"):
        BusFaults(latency_s=-1)
    with pytest.raises(ValueError, match="unknown part fault"):
        PartFaults.from_options({"nack_prob": 0.1})


async def test_bad_bus_arguments_are_rejected(sim_bus, make_bus):
    with pytest.raises(ValueError, match="retries"):
        I2CBus("x", lambda: sim_bus, retries=-1)

    bus = make_bus()
    with pytest.raises(ValueError, match="7-bit"):
        await bus.read_byte_data(0x90, 0)
    with pytest.raises(ValueError, match="1..32"):
        await bus.read_block(0x18, 0, 40)
