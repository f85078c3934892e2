"""The World behind the flight drivers (real register path) and behind the transceiver's gate."""

from __future__ import annotations

import asyncio

import pytest

from hal.drivers import INA219, LIS2MDL
from hal.i2c import I2CBus
from sim.environment import World, WorldConfig, contact_windows
from sim.environment.adapters import (
    ContactGate,
    WorldEnvironment,
    radio_state_from_transceiver,
    run_world_ticker,
)
from sim.environment.contacts import ALMATY
from sim.i2c_bus import SimI2CBus
from sim.parts import SimINA219, SimLIS2MDL
from sim.transceiver import ChannelModel, SimTransceiver


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_flight_drivers_read_the_world_through_simulated_parts() -> None:
    world = World(WorldConfig(tick_s=1.0), seed=12)
    clock = ManualClock()
    env = WorldEnvironment(world, clock)
    sim_bus = SimI2CBus(1, seed=1)
    sim_bus.attach(SimINA219(0x40, env, rail="vbat", shunt_ohms=0.1))
    sim_bus.attach(SimLIS2MDL(0x1E, env))

    bus = I2CBus("sim-1", lambda: sim_bus, recovery_hook=sim_bus.pulse_scl, backoff=0.0005)
    power = INA219(bus, 0x40, shunt_ohms=0.1, max_current_a=3.2)
    mag = LIS2MDL(bus, 0x1E)
    try:
        await power.configure()
        await mag.configure()
        clock.now += 30.0
        await asyncio.sleep(0.003)
        rx = (await power.read()).values["current"]
        env.set_load_state("radio", "tx")
        clock.now += 2.0
        await asyncio.sleep(0.003)
        tx = (await power.read()).values["current"]
        await asyncio.sleep(0.12)
        field = (await mag.read()).values
    finally:
        await bus.close()
    field = (field["mag_x"], field["mag_y"], field["mag_z"])
    state = env.sync()
    assert rx == pytest.approx(0.25 / state.power.battery_voltage, abs=0.002)
    assert tx == pytest.approx(3.2 / state.power.battery_voltage, abs=0.002)
    expected = [b * 1e-9 for b in state.magnetic_field_body_nt]
    assert all(m == pytest.approx(e, abs=0.2e-6) for m, e in zip(field, expected, strict=True))


def test_environment_names_and_camera_scene() -> None:
    world = World(WorldConfig(tick_s=1.0), seed=1)
    clock = ManualClock()
    env = WorldEnvironment(world, clock)
    assert env.temperature("obc") == env.temperature("board")
    with pytest.raises(KeyError, match="no thermal node 'engine'"):
        env.temperature("engine")
    with pytest.raises(KeyError, match="no power rail '12v'"):
        env.rail("12v")
    with pytest.raises(KeyError, match="no sun-sensor channel"):
        env.light("css_top")
    for _ in range(100):
        clock.now += 60.0
        scene = env.camera_scene()
        state = env.sync()
        assert scene.daylight == (state.sun_elevation_at_subpoint_deg > 0)
        assert env.light("css_px") == pytest.approx(2.5 * state.photodiodes["+X"])
    clock.now -= 500.0  # a reader behind the world gets the latest state, never an error
    assert env.sync().t == world.time


@pytest.mark.virtual_time
async def test_transceiver_passes_frames_only_during_contacts_with_pass_dependent_errors() -> None:
    world = World(WorldConfig(tick_s=1.0, record_every_s=600.0), seed=3)
    hours = 7.0
    windows = contact_windows(world.config.orbit, ALMATY, world.start, world.start + hours * 3600.0)
    assert len(windows) >= 2
    submitted: list[tuple[float, bool]] = []

    loop = asyncio.get_running_loop()
    env = WorldEnvironment(world, loop.time)
    channel = ChannelModel(seed=5)
    xcvr = SimTransceiver(channel)
    gate = ContactGate(env, channel).install()
    ticker = asyncio.create_task(
        run_world_ticker(env, 5.0, {"radio": radio_state_from_transceiver(xcvr, loop.time)})
    )
    frame = bytes(range(200))
    for _ in range(int(hours * 3600 / 20)):
        xcvr.downlink.submit(frame)
        submitted.append((env.epoch_now(), gate.last_station is not None))
        await asyncio.sleep(20.0)
    ticker.cancel()
    stats, gated_in = xcvr.downlink.stats, sum(ok for _, ok in submitted)
    assert stats.frames_out_of_contact > 0 and stats.frames_delivered > 0
    # each frame the gate let through was submitted inside a computed window (1 s tick tolerance)
    for t, passed in submitted:
        inside = any(w.aos - 1.0 <= t <= w.los + 1.0 for w in windows)
        assert passed <= inside
    expected_in = sum(any(w.aos + 1.0 < t < w.los - 1.0 for w in windows) for t, _ in submitted)
    assert gated_in >= expected_in
    assert stats.frames_delivered + stats.frames_corrupted == gated_in
    assert stats.frames_corrupted < stats.frames_delivered  # low-elevation edges only
    assert world.time == pytest.approx(world.start + hours * 3600.0, abs=25.0)


def test_gate_refuses_unknown_station() -> None:
    world = World(WorldConfig(tick_s=5.0), seed=1)
    env = WorldEnvironment(world, ManualClock())
    with pytest.raises(ValueError, match="unknown ground station"):
        ContactGate(env, ChannelModel(), stations=("svalbard",))


def test_gate_sets_range_dependent_ber_and_honours_blackout() -> None:
    world = World(WorldConfig(tick_s=1.0), seed=1)
    window = next(w for w in contact_windows(world.config.orbit, ALMATY, world.start, world.start + 86400.0)
                  if w.max_elevation_deg > 20.0)
    clock = ManualClock()
    env = WorldEnvironment(world, clock, clock_at_start=clock.now)
    channel = ChannelModel(bit_error_rate=0.0)
    gate = ContactGate(env, channel)
    clock.now += window.aos - world.start + 5.0  # just risen: long range, noisy
    assert gate() and channel.bit_error_rate > 1e-4
    edge_ber = channel.bit_error_rate
    clock.now += window.tca - window.aos - 5.0  # culmination: short range, clean
    assert gate() and channel.bit_error_rate < edge_ber / 100.0
    gate.blackout = True
    assert not gate()
    clock.now += window.los - window.tca + 5.0
    gate.blackout = False
    assert not gate() and gate.last_station is None


def test_late_clock_binding_keeps_the_world_where_it_is() -> None:
    world = World(WorldConfig(tick_s=1.0), seed=1)
    env = WorldEnvironment(world)  # built before the loop exists
    assert env.sync().t == world.start
    world.step(world.start + 100.0)
    clock = ManualClock()
    env.bind_clock(clock)
    clock.now += 50.0
    assert env.sync().t == world.start + 150.0
