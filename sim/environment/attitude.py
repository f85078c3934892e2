"""Tumbling attitude with optional commanded detumbling.

A free tumble keeps its body rates; when the flight software commands detumbling (B-dot with
magnetorquers) the rate decays exponentially toward a small residual. That is the behaviour the
gyroscope, magnetometer and sun sensors must show; torque-level dynamics are not modelled.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .frames import Vec3

Quaternion = tuple[float, float, float, float]  # scalar first, body -> inertial


@dataclass(frozen=True)
class AttitudeConfig:
    initial_rate_deg_s: float = 6.0
    residual_rate_deg_s: float = 0.12  # about twice the orbital rate, what B-dot leaves
    detumble_time_constant_s: float = 1800.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.initial_rate_deg_s <= 180.0:
            raise ValueError(f"initial_rate_deg_s {self.initial_rate_deg_s} must be in [0, 180]")
        if not 0.0 <= self.residual_rate_deg_s <= self.initial_rate_deg_s:
            raise ValueError("residual_rate_deg_s must be between 0 and initial_rate_deg_s")
        if self.detumble_time_constant_s <= 0.0:
            raise ValueError("detumble_time_constant_s must be positive")


def quat_multiply(a: Quaternion, b: Quaternion) -> Quaternion:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


def rotate_inertial_to_body(q: Quaternion, v: Vec3) -> Vec3:
    """Express an inertial vector in the body frame (applies the inverse of q)."""
    w, x, y, z = q
    # rotation matrix of q transposed, applied to v
    r00 = 1 - 2 * (y * y + z * z)
    r01 = 2 * (x * y - w * z)
    r02 = 2 * (x * z + w * y)
    r10 = 2 * (x * y + w * z)
    r11 = 1 - 2 * (x * x + z * z)
    r12 = 2 * (y * z - w * x)
    r20 = 2 * (x * z - w * y)
    r21 = 2 * (y * z + w * x)
    r22 = 1 - 2 * (x * x + y * y)
    return (
        r00 * v[0] + r10 * v[1] + r20 * v[2],
        r01 * v[0] + r11 * v[1] + r21 * v[2],
        r02 * v[0] + r12 * v[1] + r22 * v[2],
    )


class Attitude:
    """Body attitude quaternion and body rates, advanced in fixed ticks."""

    def __init__(self, config: AttitudeConfig, rng: random.Random) -> None:
        self.config = config
        axis = _random_unit(rng)
        rate = math.radians(config.initial_rate_deg_s)
        self.rates_rad_s: Vec3 = (axis[0] * rate, axis[1] * rate, axis[2] * rate)
        quaternion_axis = _random_unit(rng)
        angle = rng.uniform(0.0, 2.0 * math.pi)
        s = math.sin(angle / 2.0)
        self.quaternion: Quaternion = (
            math.cos(angle / 2.0),
            quaternion_axis[0] * s,
            quaternion_axis[1] * s,
            quaternion_axis[2] * s,
        )
        self.detumbling = False

    @property
    def rate_deg_s(self) -> float:
        x, y, z = self.rates_rad_s
        return math.degrees(math.sqrt(x * x + y * y + z * z))

    def advance(self, dt: float) -> None:
        """Rotate by the current rates for dt (exact for constant rates), then apply detumbling."""
        wx, wy, wz = self.rates_rad_s
        rate = math.sqrt(wx * wx + wy * wy + wz * wz)
        if rate > 0.0:
            half = rate * dt / 2.0
            s = math.sin(half) / rate
            step = (math.cos(half), wx * s, wy * s, wz * s)
            q = quat_multiply(self.quaternion, step)
            n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
            self.quaternion = (q[0] / n, q[1] / n, q[2] / n, q[3] / n)
        if self.detumbling and rate > 0.0:
            residual = math.radians(self.config.residual_rate_deg_s)
            if rate > residual:
                decay = math.exp(-dt / self.config.detumble_time_constant_s)
                new_rate = residual + (rate - residual) * decay
                k = new_rate / rate
                self.rates_rad_s = (wx * k, wy * k, wz * k)

    def to_body(self, v_inertial: Vec3) -> Vec3:
        return rotate_inertial_to_body(self.quaternion, v_inertial)


def _random_unit(rng: random.Random) -> Vec3:
    while True:
        v = (rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1))
        n = math.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2)
        if 0.1 < n <= 1.0:
            return (v[0] / n, v[1] / n, v[2] / n)
