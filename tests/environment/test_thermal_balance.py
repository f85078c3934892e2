"""The structure's orbit-average temperature against the analytic single-node equilibrium.

Analytic orbit-average balance of one isothermal node tumbling in a circular orbit of radius r
(R Earth radius, h = r - R, beta the sun's angle above the orbit plane):

    sigma * sum(eps A) * T_eq^4 = S f_sun sum(alpha A) / 4                (Cauchy: mean projected area A/4)
                                + F * 237 W/m2 * sum(eps A)                (Earth IR)
                                + F * a S (cos beta / pi) * sum(alpha A)   (albedo, orbit mean of max(0, cos zeta))
                                - P_out                                    (RF radiated + energy stored, per second)

    F = (1 - cos rho) / 2, sin rho = R / r            (view factor of a randomly oriented element)
    f_sun = 1 - acos(sqrt(h^2 + 2 R h) / (r cos beta)) / pi   (cylindrical shadow)
    S = 1361 W/m2 / d^2, d = 1 - 0.01672 cos(2 pi (doy - 4) / 365.256) AU

Every watt the cells deliver comes back as heat in the node (loads, converter, MPPT and harness
losses, I^2 R) except what is radiated as RF or stored; sunlight the EPS does not take (shunted)
never leaves the panels. With the surfaces of GaAs cells (alpha 0.88, eps 0.80) and black
polyurethane paint (0.95, 0.90) from Fortescue et al., table 11.3, the structure's radiative mean
temperature (mean of T^4)^(1/4) over the second simulated day must match T_eq within 2 K.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from sim.environment.attitude import AttitudeConfig
from sim.environment.orbit import Orbit
from sim.environment.power import BODY_PANELS_3U, DEPLOYABLE_WINGS_3U, BatteryConfig, PowerConfig
from sim.environment.sun import sun_position_km
from sim.environment.thermal import ThermalConfig
from sim.environment.world import World, WorldConfig

SIGMA = 5.670374419e-8
R_EARTH_KM = 6378.137
START = datetime(2026, 6, 1, tzinfo=UTC)
CELL = (0.88, 0.80)
PAINT = (0.95, 0.90)
FACE_AREA = {"x": 0.034, "y": 0.034, "z": 0.010}
WING_AREA = 0.034


def finish_sums(wings: bool) -> tuple[float, float]:
    """(sum alpha A, sum eps A) from the published pairs and the geometry, by hand."""
    total = 2 * sum(FACE_AREA.values())
    cells = 4 * 0.0211 + 0.0060  # seven 30 cm2 cells on each long face, two on +Z
    alpha = CELL[0] * cells + PAINT[0] * (total - cells)
    eps = CELL[1] * cells + PAINT[1] * (total - cells)
    if wings:
        for _ in range(2):  # front: 0.0211 m2 of cells on a 0.034 m2 plate; back: paint
            alpha += CELL[0] * 0.0211 + PAINT[0] * (WING_AREA - 0.0211) + PAINT[0] * WING_AREA
            eps += CELL[1] * 0.0211 + PAINT[1] * (WING_AREA - 0.0211) + PAINT[1] * WING_AREA
    return alpha, eps


def analytic_equilibrium_k(world: World, t_mid: float, p_out_w: float, wings: bool) -> float:
    orbit = world.config.orbit
    r, v = orbit.teme(t_mid)
    r_km = float(np.linalg.norm(r))
    h_km = r_km - R_EARTH_KM
    normal = np.cross(r, v)
    normal /= np.linalg.norm(normal)
    sun = np.array(sun_position_km(t_mid))
    beta = math.asin(float(normal @ sun / np.linalg.norm(sun)))
    f_sun = 1.0 - math.acos(min(1.0, math.sqrt(h_km**2 + 2 * R_EARTH_KM * h_km) / (r_km * math.cos(beta)))) / math.pi
    doy = datetime.fromtimestamp(t_mid, tz=UTC).timetuple().tm_yday
    d_au = 1.0 - 0.01672 * math.cos(2 * math.pi * (doy - 4) / 365.256)
    s = 1361.0 / d_au**2
    view = (1.0 - math.sqrt(1.0 - (R_EARTH_KM / r_km) ** 2)) / 2.0
    alpha_a, eps_a = finish_sums(wings)
    q = (s * f_sun * alpha_a / 4.0 + view * 237.0 * eps_a + view * 0.30 * s * math.cos(beta) / math.pi * alpha_a
         - p_out_w)
    return (q / (SIGMA * eps_a)) ** 0.25


@pytest.mark.parametrize("wings", [False, True], ids=["body-panels", "with-wings"])
def test_single_node_matches_the_analytic_orbit_average_equilibrium(wings: bool) -> None:
    panels = BODY_PANELS_3U + (DEPLOYABLE_WINGS_3U if wings else ())
    config = WorldConfig(
        power=PowerConfig(panels=panels, battery=BatteryConfig(initial_soc=0.95)),
        thermal=ThermalConfig(nodes=(), structure_initial_c=0.0),
        # the analytic mean assumes the attitude samples all orientations: a fast-wandering spin axis
        attitude=AttitudeConfig(momentum_decorrelation_s=600.0),
        tick_s=5.0,
    )
    world = World(config, start=START, seed=3)
    world.advance(86400.0)  # settle (time constant ~40 min)
    ledger = world.power.ledger
    radiated0, stored0 = ledger.radiated, world.power.stored_change_j()
    first = len(world.recording.columns["t"])
    world.advance(86400.0)
    temps_k = np.array(world.recording.columns["temp_structure"][first:]) + 273.15
    p_out = (ledger.radiated - radiated0 + world.power.stored_change_j() - stored0) / 86400.0
    t_eq = analytic_equilibrium_k(world, world.start + 1.5 * 86400.0, p_out, wings)
    radiative_mean = float(np.mean(temps_k**4)) ** 0.25
    assert radiative_mean == pytest.approx(t_eq, abs=2.0)
    # the plain mean sits lower (T^4 weighs the warm half of each orbit more): ~4 K for this swing
    assert radiative_mean - 6.0 < float(np.mean(temps_k)) < radiative_mean


def test_heat_ledger_closes_every_drawn_watt_is_heat_rf_or_stored() -> None:
    """Over a day with transmissions, the heat booked into nodes equals the cells' drawn energy less
    RF radiated and stored energy; shunted sunlight is the difference the panels keep."""
    world = World(WorldConfig(tick_s=2.0), start=START, seed=1)
    for _ in range(24):
        world.set_load_state("radio", "tx")
        world.advance(600.0)
        world.set_load_state("radio", "rx")
        world.advance(3000.0)
    ledger = world.power.ledger
    stored = world.power.stored_change_j()
    assert ledger.radiated == pytest.approx(4 * 3600.0)  # 4 h of 1 W RF
    assert abs(ledger.residual(stored)) < 1e-5 * ledger.array_drawn  # the electrical balance
    # the heat side adds no leak of its own: its residual is the electrical one (OCV-integral rounding)
    assert ledger.heat_residual(stored) == pytest.approx(ledger.residual(stored), abs=1e-9 * ledger.array_drawn)
    assert ledger.input_losses == pytest.approx(ledger.array_drawn * (1 - 0.95), rel=1e-9)
    assert ledger.shunted > 0.3 * ledger.solar_available  # the battery filled: the EPS shunted sunlight


def test_end_of_life_power_is_a_configuration() -> None:
    """Ageing, harness loss and capacity fade reduce what the EPS gets and holds, exactly by their factors."""
    bol = World(WorldConfig(tick_s=10.0), start=START, seed=2)
    eol_config = PowerConfig(array_degradation=0.10, wiring_loss=0.03,
                             battery=BatteryConfig(capacity_fade=0.2, resistance_growth=1.5))
    eol = World(WorldConfig(power=eol_config, tick_s=10.0), start=START, seed=2)
    sun_body, irradiance = (0.6, 0.0, 0.8), 1361.0
    assert eol.power.solar_power_w(sun_body, irradiance, 20.0) == pytest.approx(
        bol.power.solar_power_w(sun_body, irradiance, 20.0) * 0.90 * 0.97)
    assert eol.power.battery.config.capacity_ah == pytest.approx(0.8 * bol.power.battery.config.capacity_ah)
    assert eol.power.battery.resistance(20.0) == pytest.approx(1.5 * bol.power.battery.resistance(20.0))
    for world in (bol, eol):  # a heavy load: nothing is shunted, every available watt is used
        world.set_load_state("payload", "on")
        world.set_load_state("camera", "on")
        world.advance(4 * 3600.0)
    assert eol.metrics()["solar_energy_wh"] < 0.93 * bol.metrics()["solar_energy_wh"]
    assert eol.metrics()["battery_soc_min"] < bol.metrics()["battery_soc_min"] - 0.05
    with pytest.raises(ValueError, match="wiring_loss"):
        PowerConfig(wiring_loss=0.5)


def test_orbit_fixture_is_the_reference_orbit() -> None:
    assert Orbit.default().inclination_deg == pytest.approx(97.5, abs=0.1)
