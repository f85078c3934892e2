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


def _inertial(attitude: Attitude, v_body: tuple[float, float, float]) -> tuple[float, float, float]:
    """Body vector to inertial: the inverse of to_body, through the conjugate quaternion."""
    w, x, y, z = attitude.quaternion
    conj = Attitude.__new__(Attitude)
    conj.quaternion = (w, -x, -y, -z)
    return conj.to_body(v_body)


def test_torque_free_tumble_conserves_momentum_and_energy() -> None:
    """Euler's equations without torque: H = I w fixed in inertial space, T = w.I w / 2 constant,
    while the body rates themselves nutate (an asymmetric body's rate vector is not fixed)."""
    config = AttitudeConfig(initial_rate_deg_s=8.0, momentum_decorrelation_s=0.0)
    attitude = Attitude(config, random.Random(3))
    inertia = config.inertia_kg_m2

    def energy() -> float:
        return sum(i * w * w for i, w in zip(inertia, attitude.rates_rad_s, strict=True)) / 2

    h0, e0, w0 = _inertial(attitude, attitude.angular_momentum), energy(), attitude.rates_rad_s
    turned = 0.0
    for _ in range(3000):
        attitude.advance(1.0)
        w = attitude.rates_rad_s
        turned = max(turned, math.degrees(math.acos(min(1.0, sum(a * b for a, b in zip(w, w0, strict=True)) / (norm(w) * norm(w0))))))
    h1 = _inertial(attitude, attitude.angular_momentum)
    drift = norm(tuple(a - b for a, b in zip(h1, h0, strict=True))) / norm(h0)
    assert drift < 1e-3  # < 0.06 deg in 50 min at 8 deg/s; the deliberate wander is ~1 rad in 2 h
    assert energy() == pytest.approx(e0, rel=1e-4)
    assert turned > 20.0  # the rate vector moves in the body: no fixed tumble axis
    assert math.sqrt(sum(c * c for c in attitude.quaternion)) == pytest.approx(1.0, abs=1e-12)


def test_detumbling_decays_the_rate() -> None:
    config = AttitudeConfig(initial_rate_deg_s=8.0, residual_rate_deg_s=0.1, detumble_time_constant_s=600.0)
    attitude = Attitude(config, random.Random(3))
    attitude.detumbling = True
    rates = []
    for _ in range(6600):
        attitude.advance(1.0)
        rates.append(attitude.rate_deg_s)
    # the decay scales the rate by (residual + (|w| - residual) e^(-dt/tau)) / |w| each tick; the
    # body's own nutation makes |w| swing around that envelope by the inertia ratios
    assert rates[599] < 0.1 + 7.9 * math.exp(-1.0) * 1.5
    assert max(rates[-600:]) < 0.2


def test_momentum_wander_decorrelates_at_the_configured_time() -> None:
    """Random walk on the sphere: E[u(t).u(0)] = exp(-t / tau), averaged over seeds."""
    tau = 3600.0
    dots = []
    for seed in range(40):
        attitude = Attitude(AttitudeConfig(initial_rate_deg_s=3.0, momentum_decorrelation_s=tau), random.Random(seed))
        h0 = _inertial(attitude, attitude.angular_momentum)
        for _ in range(360):
            attitude.advance(5.0)  # 1800 s
        h1 = _inertial(attitude, attitude.angular_momentum)
        dots.append(sum(a * b for a, b in zip(h0, h1, strict=True)) / (norm(h0) * norm(h1)))
    assert sum(dots) / len(dots) == pytest.approx(math.exp(-0.5), abs=0.08)


def test_power_budget_does_not_hang_on_one_draw() -> None:
    """A day's mean sunlit cell area, seed by seed, against the random-tumble mean (sum of cell
    areas / 4, Cauchy's mean projected area of a convex body): with a fixed tumble axis some seeds
    saw 0.2x or 1.3x; a wandering spin axis brings every seed within 10 %."""
    from sim.environment.power import BODY_PANELS_3U

    mean_area = sum(p.cell_area_m2 for p in BODY_PANELS_3U) / 4
    sun = (1.0, 0.0, 0.0)
    for seed in range(6):
        attitude = Attitude(AttitudeConfig(), random.Random(seed))
        total, n = 0.0, 21600
        for _ in range(n):
            attitude.advance(4.0)
            s = attitude.to_body(sun)
            total += sum(p.cell_area_m2 * max(0.0, sum(a * b for a, b in zip(p.normal, s, strict=True)))
                         for p in BODY_PANELS_3U)
        assert total / n / mean_area == pytest.approx(1.0, abs=0.10), seed


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
