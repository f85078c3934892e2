"""Power and thermal: the energy balance closes, overloads brown out, loads heat their nodes."""

from __future__ import annotations

import math

import pytest

from sim.environment.power import (
    BODY_PANELS_3U,
    DEPLOYABLE_WINGS_3U,
    Battery,
    BatteryConfig,
    Load,
    Panel,
    PowerConfig,
    PowerSystem,
)
from sim.environment.world import World, WorldConfig


def _closes(world: World) -> tuple[float, float]:
    ledger = world.power.ledger
    throughput = ledger.solar_used + ledger.loads + ledger.converter_losses
    return ledger.residual(world.power.stored_change_j()), throughput


def test_energy_balance_closes_over_the_reference_day(reference_day) -> None:  # type: ignore[no-untyped-def]
    world, _ = reference_day
    residual, throughput = _closes(world)
    assert throughput > 100_000.0  # a real day's worth of joules went through
    assert abs(residual) < 1e-5 * throughput


def test_energy_balance_closes_with_changing_loads_charge_limit_and_brownout() -> None:
    config = WorldConfig(power=PowerConfig(battery=BatteryConfig(initial_soc=0.35)), tick_s=2.0)
    world = World(config, seed=5)
    schedule = [("radio", "tx"), ("camera", "on"), ("payload", "on"), ("heater", "on"), ("adcs", "detumble")]
    for device, state in schedule:
        world.set_load_state(device, state)
        world.advance(600.0)
    world.advance(6 * 3600.0)
    assert world.metrics()["undervoltage_s"] > 0  # 10 W continuous on a 3U is more than it can carry
    for device, _ in schedule:
        world.set_load_state(device, "off" if device != "radio" else "rx")
    world.advance(12 * 3600.0)
    assert world.power.battery.soc > 0.3  # recovered and charging again
    kinds = [e.kind for e in world.events]
    assert "undervoltage" in kinds and "power_restored" in kinds
    assert kinds.index("undervoltage") < kinds.index("power_restored")
    residual, throughput = _closes(world)
    assert abs(residual) < 1e-4 * throughput


def test_overload_drains_the_battery_and_lockout_drops_the_rails() -> None:
    world = World(WorldConfig(tick_s=2.0), seed=1)
    start_soc = world.power.battery.soc
    for device, state in [("radio", "tx"), ("camera", "on"), ("payload", "on"), ("heater", "on")]:
        world.set_load_state(device, state)
    world.advance(3 * 3600.0)
    assert world.power.battery.soc < start_soc - 0.2
    while not world.power.undervoltage:
        world.advance(60.0)
    state = world.state
    assert state.rails["5v"].voltage == 0.0 and state.rails["5v"].current == 0.0
    assert state.power.load_power_w == 0.0


def test_rails_report_what_an_ina219_would_measure() -> None:
    world = World(WorldConfig(tick_s=1.0), seed=1)
    rx = world.advance(2.0)
    world.set_load_state("radio", "tx")
    tx = world.advance(2.0)
    assert tx.rails["vbat"].current - rx.rails["vbat"].current == pytest.approx(
        (3.2 - 0.25) / tx.power.battery_voltage, rel=0.02
    )
    assert rx.rails["5v"].voltage == pytest.approx(5.0, abs=0.05)
    assert rx.rails["5v"].current == pytest.approx(0.9 / 5.0, rel=0.01)
    assert 6.0 < tx.rails["battery"].voltage < 8.45  # 2S pack
    with pytest.raises(KeyError, match="unknown power load"):
        world.set_load_state("toaster", "on")
    with pytest.raises(ValueError, match="no state 'tx'"):
        world.set_load_state("camera", "tx")


def test_panel_power_follows_sun_angle_and_deployables_add_power() -> None:
    body = PowerSystem(PowerConfig())
    full = body.solar_power_w((1.0, 0.0, 0.0), 1361.0, 28.0)
    assert full == pytest.approx(0.0211 * 0.28 * 1361.0 * 0.95, rel=1e-9)
    c = math.cos(math.radians(60.0))
    assert body.solar_power_w((c, 0.0, math.sin(math.radians(60.0))), 1361.0, 28.0) == pytest.approx(
        0.0211 * 0.28 * 1361.0 * 0.95 * c + 0.006 * 0.28 * 1361.0 * 0.95 * math.sin(math.radians(60.0)), rel=1e-9
    )
    assert body.solar_power_w((1.0, 0.0, 0.0), 0.0, 28.0) == 0.0  # eclipse
    assert body.solar_power_w((1.0, 0.0, 0.0), 1361.0, 80.0) < full  # hot cells lose efficiency
    winged = PowerSystem(PowerConfig(panels=BODY_PANELS_3U + DEPLOYABLE_WINGS_3U))
    assert winged.solar_power_w((1.0, 0.0, 0.0), 1361.0, 28.0) == pytest.approx(3 * full, rel=1e-9)


def test_battery_model_shape_and_validation() -> None:
    battery = Battery(BatteryConfig(cells_series=2, cells_parallel=2, cell_capacity_ah=3.0))
    assert battery.ocv(0.0) == pytest.approx(6.0)
    assert battery.ocv(1.0) == pytest.approx(8.36)
    assert battery.resistance(-10.0) > 1.9 * battery.resistance(25.0)
    # stored energy is the integral of OCV over charge: ~3.78 V mean x 6 Ah x 2 cells in series
    assert battery.stored_energy_j(1.0) / 3600.0 == pytest.approx(2 * 6.0 * 3.78, rel=0.02)
    assert battery.stored_energy_j(0.5) < battery.stored_energy_j(1.0) / 2  # lower half sits at lower voltage
    with pytest.raises(ValueError, match="initial_soc"):
        BatteryConfig(initial_soc=1.5)
    with pytest.raises(ValueError, match="hysteresis"):
        BatteryConfig(cutoff_cell_voltage=3.6, recovery_cell_voltage=3.5)
    with pytest.raises(ValueError, match="unknown rail"):
        PowerConfig(loads=(Load("gps", "12v", {"on": 1.0}, "on"),))
    with pytest.raises(ValueError, match="not a unit vector"):
        Panel("bad", (1.0, 1.0, 0.0), 0.02)


def test_radio_transmission_heats_the_radio_node() -> None:
    quiet = World(WorldConfig(tick_s=2.0), seed=4)
    busy = World(WorldConfig(tick_s=2.0), seed=4)
    busy.set_load_state("radio", "tx")
    quiet.advance(1800.0)
    busy.advance(1800.0)
    delta = busy.state.temperatures_c["radio"] - quiet.state.temperatures_c["radio"]
    assert 2.0 < delta < 10.0  # 2 W dissipated into 0.4 W/K toward the structure
    assert busy.state.temperatures_c["board"] == pytest.approx(quiet.state.temperatures_c["board"], abs=1.0)


def test_temperatures_cycle_with_eclipses_and_stay_plausible(reference_day) -> None:  # type: ignore[no-untyped-def]
    world, _ = reference_day
    cols = world.recording.columns
    structure = cols["temp_structure"]
    lit = cols["lit_fraction"]
    # after the first orbits' transient: colder at the end of each eclipse than at the end of each day pass
    second_half = range(len(lit) // 2, len(lit) - 1)
    eclipse_ends = [structure[i] for i in second_half if lit[i] < 0.5 <= lit[i + 1]]
    sunlit_ends = [structure[i] for i in second_half if lit[i] >= 0.5 > lit[i + 1]]
    assert len(eclipse_ends) >= 6 and len(sunlit_ends) >= 6
    assert max(eclipse_ends) < min(sunlit_ends) - 5.0
    for node in ("structure", "board", "battery", "radio"):
        assert -40.0 < min(cols[f"temp_{node}"]) and max(cols[f"temp_{node}"]) < 50.0
