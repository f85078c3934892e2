"""Tumbling attitude: torque-free rigid-body motion whose spin axis wanders, with commanded detumbling.

Why: with a fixed tumble axis one random draw set a whole run's power budget (the sunlit cell
area ranged 0.20-1.33x the random-tumble mean across seeds; with seed 1 the +X face never saw
the sun). Now the body rates follow Euler's equations for an asymmetric body (the rate vector
nutates about the angular momentum; a 3U's long axis is the minor axis of inertia), and the
angular momentum direction performs a slow random walk in inertial space standing for the
unmodelled environmental torques (gravity gradient, residual magnetic dipole, drag): its
direction decorrelates as exp(-t / momentum_decorrelation_s), 2 h by default, so a day samples
the attitude sphere and runs with different seeds see nearly the same mean sunlit area.
When the flight software commands detumbling (B-dot) the rate decays exponentially toward a
small residual; torque-level magnetorquer dynamics are not modelled.
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
    # principal moments of a 4 kg 3U (10 x 10 x 34 cm, slightly asymmetric mass layout), kg m2
    inertia_kg_m2: tuple[float, float, float] = (0.040, 0.044, 0.0075)
    momentum_decorrelation_s: float = 7200.0  # 0: no wander (pure torque-free motion)

    def __post_init__(self) -> None:
        ix, iy, iz = self.inertia_kg_m2
        if min(self.inertia_kg_m2) <= 0.0 or ix + iy < iz or iy + iz < ix or iz + ix < iy:
            raise ValueError(f"inertia_kg_m2 {self.inertia_kg_m2} must be positive principal moments (triangle inequality)")
        if self.momentum_decorrelation_s < 0.0:
            raise ValueError("momentum_decorrelation_s must be >= 0 (0 disables the wander)")
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

    MAX_STEP_RAD = 0.2  # rotation per integration substep (RK4 error ~1e-7 of the rate per step)

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
        self.initial_rate_axis: Vec3 = axis  # the draw, for the scenario report
        self.detumbling = False
        self._walk = random.Random(rng.getrandbits(64))
        ix, iy, iz = config.inertia_kg_m2
        self._inertia = (ix, iy, iz)
        self._euler = ((iy - iz) / ix, (iz - ix) / iy, (ix - iy) / iz)

    @property
    def rate_deg_s(self) -> float:
        x, y, z = self.rates_rad_s
        return math.degrees(math.sqrt(x * x + y * y + z * z))

    @property
    def angular_momentum(self) -> Vec3:
        """Body-frame angular momentum I w, kg m2/s."""
        i, w = self._inertia, self.rates_rad_s
        return (i[0] * w[0], i[1] * w[1], i[2] * w[2])

    def _derivative(self, w: Vec3) -> Vec3:
        """Euler's equations, torque-free: I dw/dt = -w x (I w)."""
        a, b, c = self._euler
        return (a * w[1] * w[2], b * w[2] * w[0], c * w[0] * w[1])

    def _rotate(self, w: Vec3, dt: float) -> None:
        wx, wy, wz = w
        rate = math.sqrt(wx * wx + wy * wy + wz * wz)
        if rate <= 0.0:
            return
        half = rate * dt / 2.0
        s = math.sin(half) / rate
        q = quat_multiply(self.quaternion, (math.cos(half), wx * s, wy * s, wz * s))
        n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
        self.quaternion = (q[0] / n, q[1] / n, q[2] / n, q[3] / n)

    def advance(self, dt: float) -> None:
        """Integrate the rates (RK4) and the attitude over dt, then let the momentum wander and detumble."""
        w = self.rates_rad_s
        rate = math.sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2])
        if rate > 0.0:
            steps = max(1, math.ceil(rate * dt / self.MAX_STEP_RAD))
            h = dt / steps
            f = self._derivative
            for _ in range(steps):
                k1 = f(w)
                k2 = f((w[0] + 0.5 * h * k1[0], w[1] + 0.5 * h * k1[1], w[2] + 0.5 * h * k1[2]))
                k3 = f((w[0] + 0.5 * h * k2[0], w[1] + 0.5 * h * k2[1], w[2] + 0.5 * h * k2[2]))
                k4 = f((w[0] + h * k3[0], w[1] + h * k3[1], w[2] + h * k3[2]))
                new = (
                    w[0] + h / 6.0 * (k1[0] + 2.0 * k2[0] + 2.0 * k3[0] + k4[0]),
                    w[1] + h / 6.0 * (k1[1] + 2.0 * k2[1] + 2.0 * k3[1] + k4[1]),
                    w[2] + h / 6.0 * (k1[2] + 2.0 * k2[2] + 2.0 * k3[2] + k4[2]),
                )
                # rotation vector of the substep: mean rate plus the coning term h^2/12 (w0 x w1)
                # (Bortz), third order, so the inertial momentum stays put to ~1e-6 a day
                c = h / 12.0
                self._rotate((
                    (w[0] + new[0]) / 2.0 + c * (w[1] * new[2] - w[2] * new[1]),
                    (w[1] + new[1]) / 2.0 + c * (w[2] * new[0] - w[0] * new[2]),
                    (w[2] + new[2]) / 2.0 + c * (w[0] * new[1] - w[1] * new[0]),
                ), h)
                w = new
            if self.config.momentum_decorrelation_s > 0.0:
                w = self._wander(w, dt)
        if self.detumbling and rate > 0.0:
            residual = math.radians(self.config.residual_rate_deg_s)
            now = math.sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2])
            if now > residual:
                decay = math.exp(-dt / self.config.detumble_time_constant_s)
                k = (residual + (now - residual) * decay) / now
                w = (w[0] * k, w[1] * k, w[2] * k)
        self.rates_rad_s = w

    def _wander(self, w: Vec3, dt: float) -> Vec3:
        """Turn the angular momentum by a small random angle (variance dt/tau), keeping its size."""
        i = self._inertia
        hx, hy, hz = i[0] * w[0], i[1] * w[1], i[2] * w[2]
        size = math.sqrt(hx * hx + hy * hy + hz * hz)
        ux, uy, uz = hx / size, hy / size, hz / size
        # two unit vectors perpendicular to u
        if abs(ux) < 0.9:
            ax, ay, az = 0.0, uz, -uy  # u x (1, 0, 0)
        else:
            ax, ay, az = -uz, 0.0, ux  # u x (0, 1, 0)
        n = math.sqrt(ax * ax + ay * ay + az * az)
        ax, ay, az = ax / n, ay / n, az / n
        bx, by, bz = uy * az - uz * ay, uz * ax - ux * az, ux * ay - uy * ax
        sigma = math.sqrt(dt / self.config.momentum_decorrelation_s)
        da, db = self._walk.gauss(0.0, sigma), self._walk.gauss(0.0, sigma)
        # rotating u by the small vector d = da a + db b moves it along d x u
        dx, dy, dz = da * ax + db * bx, da * ay + db * by, da * az + db * bz
        vx, vy, vz = ux + (dy * uz - dz * uy), uy + (dz * ux - dx * uz), uz + (dx * uy - dy * ux)
        n = math.sqrt(vx * vx + vy * vy + vz * vz)
        k = size / n
        return (vx * k / i[0], vy * k / i[1], vz * k / i[2])

    def to_body(self, v_inertial: Vec3) -> Vec3:
        return rotate_inertial_to_body(self.quaternion, v_inertial)


def _random_unit(rng: random.Random) -> Vec3:
    while True:
        v = (rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1))
        n = math.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2)
        if 0.1 < n <= 1.0:
            return (v[0] / n, v[1] / n, v[2] / n)
