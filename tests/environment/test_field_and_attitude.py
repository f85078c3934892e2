"""Magnetic field magnitudes and directions, and the tumble/detumble behaviour the sensors see."""

from __future__ import annotations

import math
import random

import pytest

from sim.environment.attitude import Attitude, AttitudeConfig
from sim.environment.frames import cross, geodetic_to_ecef, norm
from sim.environment.magnetic import (
    IGRF_REFERENCE_RADIUS_KM,
    OrbitFieldCache,
    decimal_year,
    default_igrf,
    field_ecef_nt,
)
from sim.environment.orbit import Orbit
from sim.environment.world import World, WorldConfig

T_2026 = 1780272000.0


def test_field_strength_and_direction_at_the_surface() -> None:
    c = default_igrf().coefficients(decimal_year(T_2026))
    b0 = math.sqrt(c.g[1, 0] ** 2 + c.g[1, 1] ** 2 + c.h[1, 1] ** 2)
    assert 29_500 < b0 < 30_000  # IGRF-14 dipole strength, nT
    # near the geomagnetic north pole (about 80.8 N, 72.6 W in 2026) the field points into the Earth
    pole = geodetic_to_ecef(80.8, -72.6, 0.0)
    pole_radius = norm(pole)
    r_pole = tuple(x * IGRF_REFERENCE_RADIUS_KM / pole_radius for x in pole)
    b_pole = tuple(float(v) for v in field_ecef_nt(c, [r_pole])[0])
    assert 50_000 < norm(b_pole) < 62_000  # the full field at the surface there, not the dipole's 2*b0
    inward = sum(b * -p for b, p in zip(b_pole, r_pole, strict=True)) / (norm(b_pole) * IGRF_REFERENCE_RADIUS_KM)
    assert inward > 0.98


def test_field_along_the_orbit_is_in_the_leo_range() -> None:
    orbit = Orbit.default()
    cache = OrbitFieldCache(orbit)
    magnitudes = [norm(cache.field_ecef_nt(orbit.epoch_seconds + k)) for k in range(0, 96 * 60, 30)]
    assert 17_000 < min(magnitudes) < 25_000
    assert 40_000 < max(magnitudes) < 52_000


def test_out_of_range_date_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the IGRF table"):
        default_igrf().coefficients(decimal_year(2051222400.0))  # 2035


def test_free_tumble_keeps_its_rate_and_detumbling_decays_it() -> None:
    config = AttitudeConfig(initial_rate_deg_s=8.0, residual_rate_deg_s=0.1, detumble_time_constant_s=600.0)
    attitude = Attitude(config, random.Random(3))
    for _ in range(3000):
        attitude.advance(1.0)
    assert attitude.rate_deg_s == pytest.approx(8.0, rel=1e-9)
    q = attitude.quaternion
    assert math.sqrt(sum(c * c for c in q)) == pytest.approx(1.0, abs=1e-12)
    attitude.detumbling = True
    for _ in range(600):
        attitude.advance(1.0)
    assert attitude.rate_deg_s == pytest.approx(0.1 + 7.9 * math.exp(-1.0), rel=1e-3)
    for _ in range(6000):
        attitude.advance(1.0)
    assert attitude.rate_deg_s == pytest.approx(0.1, abs=0.01)


def test_inertial_vector_turns_opposite_to_body_rates_in_the_body_frame() -> None:
    attitude = Attitude(AttitudeConfig(initial_rate_deg_s=5.0), random.Random(11))
    fixed = (0.3, -0.5, 0.8)
    before = attitude.to_body(fixed)
    dt = 0.01
    attitude.advance(dt)
    after = attitude.to_body(fixed)
    omega = attitude.rates_rad_s
    predicted = tuple(b - dt * c for b, c in zip(before, cross(omega, before), strict=True))
    assert all(a == pytest.approx(p, abs=1e-6) for a, p in zip(after, predicted, strict=True))


def test_world_field_in_body_frame_has_the_inertial_magnitude() -> None:
    world = World(WorldConfig(tick_s=5.0), seed=2)
    state = world.advance(1800.0)
    assert norm(state.magnetic_field_body_nt) == pytest.approx(norm(state.magnetic_field_teme_nt), rel=1e-9)
    world.set_detumbling(True)
    assert world.advance(3 * 3600.0).body_rates_rad_s != state.body_rates_rad_s
    assert world.attitude.rate_deg_s < 0.5


def test_bad_attitude_config_is_named() -> None:
    with pytest.raises(ValueError, match="residual_rate_deg_s"):
        AttitudeConfig(initial_rate_deg_s=1.0, residual_rate_deg_s=2.0)
