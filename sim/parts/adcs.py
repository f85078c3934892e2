"""Simulated ADCS unit: the driver's register map (``hal.drivers.adcs``) over a slew-rate model.

Why this simple: imaging needs an attitude that takes time to reach (so a capture must command
the slew early and wait for it), reports when it is there, and moves the camera's boresight; it
does not need wheel dynamics. The camera boresight is an Earth-fixed unit vector that turns
toward the commanded direction at ``slew_rate_deg_s`` at most; the unit reports SETTLED once the
error has stayed below ``settle_error_deg`` for ``settle_s``.

Commanded directions: NADIR the geodetic vertical below the satellite, TARGET_TRACKING the line
of sight to the target (re-aimed at every step, so the unit tracks the point as the satellite
passes), SUN_POINTING the zenith (the camera away from the Earth; the Sun's direction is not
modelled), DETUMBLE none (the boresight is left where it is, settled after ``settle_s``).
``jammed`` (or :meth:`jam`) stops every motion and reports a slew FAULT. While a mode is held,
the boresight follows the commanded direction's own motion (feed-forward, as a tracking
controller does): only the error left from the slew decays at the slew rate, so a target passing
below at ~0.8 deg/s is tracked without lag even though the World moves in one-second ticks.

The satellite's position comes from ``scene`` (the orbit simulator's camera scene: ``r_ecef_km``,
``v_ecef_km_s``); without one, a satellite 530 km above (0, 0) is assumed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from flightsw.core.enums import AdcsMode, SlewStatus
from hal.drivers.adcs import CENTIDEG, REGMAP
from hal.regmap import Register
from sim.parts.base import SimPart

WGS84_A_KM = 6378.137
WGS84_E2 = (1 / 298.257223563) * (2 - 1 / 298.257223563)
DEFAULT_R_KM = (WGS84_A_KM + 530.0, 0.0, 0.0)


def _ecef(lat_deg: float, lon_deg: float) -> np.ndarray:
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    n = WGS84_A_KM / math.sqrt(1 - WGS84_E2 * math.sin(lat) ** 2)
    return np.array([n * math.cos(lat) * math.cos(lon), n * math.cos(lat) * math.sin(lon),
                     n * (1 - WGS84_E2) * math.sin(lat)])


def geodetic_nadir(r: np.ndarray) -> np.ndarray:
    """Unit vector down the geodetic vertical through an Earth-fixed position (km)."""
    p = math.hypot(r[0], r[1])
    lat = math.atan2(r[2], p * (1 - WGS84_E2))
    for _ in range(4):
        n = WGS84_A_KM / math.sqrt(1 - WGS84_E2 * math.sin(lat) ** 2)
        lat = math.atan2(r[2] + WGS84_E2 * n * math.sin(lat), p)
    lon = math.atan2(r[1], r[0])
    return -np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(max(-1.0, min(1.0, float(np.dot(a, b))))))


def _turn(current: np.ndarray, goal: np.ndarray, max_deg: float) -> np.ndarray:
    """``current`` rotated toward ``goal`` (unit vectors) by at most ``max_deg`` (great circle)."""
    angle = _angle_deg(current, goal)
    if angle <= max_deg or angle < 1e-9:
        return goal.copy()
    axis = goal - float(np.dot(current, goal)) * current
    norm = float(np.linalg.norm(axis))
    if norm < 1e-12:  # opposite directions: any perpendicular will do
        axis = np.cross(current, [0.0, 0.0, 1.0] if abs(current[2]) < 0.9 else [1.0, 0.0, 0.0])
        norm = float(np.linalg.norm(axis))
    step = math.radians(max_deg)
    turned = current * math.cos(step) + (axis / norm) * math.sin(step)
    return turned / float(np.linalg.norm(turned))


def _carry(b: np.ndarray, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``b`` rotated by the smallest rotation taking unit vector ``a`` to ``c`` (Rodrigues)."""
    axis = np.cross(a, c)
    sin = float(np.linalg.norm(axis))
    if sin < 1e-12:
        return b
    k = axis / sin
    cos = float(np.dot(a, c))
    turned = b * cos + np.cross(k, b) * sin + k * float(np.dot(k, b)) * (1 - cos)
    return turned / float(np.linalg.norm(turned))


class SimAdcs(SimPart):
    regmap = REGMAP

    def __init__(self, address: int = 0x2A, env: Any = None, *,
                 scene: Callable[[], Any] | None = None, slew_rate_deg_s: float = 2.0,
                 settle_s: float = 5.0, settle_error_deg: float = 0.5, jammed: bool = False,
                 **kwargs: Any) -> None:
        if not 0.0 < slew_rate_deg_s <= 30.0:
            raise ValueError(f"slew_rate_deg_s {slew_rate_deg_s} outside (0, 30]")
        if not 0.0 <= settle_s <= 600.0:
            raise ValueError(f"settle_s {settle_s} outside [0, 600]")
        if not 0.0 < settle_error_deg <= 10.0:
            raise ValueError(f"settle_error_deg {settle_error_deg} outside (0, 10]")
        self.scene = scene
        self.slew_rate_deg_s = slew_rate_deg_s
        self.settle_s = settle_s
        self.settle_error_deg = settle_error_deg
        self.jammed = jammed
        self._boresight: np.ndarray | None = None
        self._last_goal: np.ndarray | None = None
        super().__init__(address, env, **kwargs)

    # -- model ---------------------------------------------------------------------------------
    def _position(self) -> np.ndarray:
        r = self.scene().r_ecef_km if self.scene is not None else None
        return np.asarray(DEFAULT_R_KM if r is None else r, dtype=float)

    def _goal(self, r: np.ndarray) -> np.ndarray | None:
        mode = self._mode
        if mode is AdcsMode.NADIR:
            return geodetic_nadir(r)
        if mode is AdcsMode.TARGET_TRACKING:
            sight = self._target - r
            return sight / float(np.linalg.norm(sight))
        if mode is AdcsMode.SUN_POINTING:
            return -geodetic_nadir(r)
        return None  # DETUMBLE holds nothing

    def on_reset(self, now: float) -> None:
        self._mode = AdcsMode(REGMAP["CONTROL"].reset)
        self._target = _ecef(0.0, 0.0)
        self._last = now
        self._mode_since = now
        self._settled_since: float | None = None
        if self._boresight is None:
            self._boresight = -geodetic_nadir(self._position())
        self._error = 0.0

    def on_write(self, reg: Register, value: int) -> None:
        super().on_write(reg, value)
        if reg.name == "CONTROL":
            code = reg.field("MODE").get(value)
            self._mode = AdcsMode(code) if code in AdcsMode._value2member_map_ else AdcsMode.DETUMBLE
            lat = REGMAP["TARGET_LAT"].to_signed(self.get("TARGET_LAT")) / CENTIDEG
            lon = REGMAP["TARGET_LON"].to_signed(self.get("TARGET_LON")) / CENTIDEG
            self._target = _ecef(lat, lon)
            self._mode_since = self.clock()
            self._settled_since = None
            self._last_goal = None  # a new goal: slewed to, not carried

    def advance(self, now: float) -> None:
        dt = max(0.0, now - self._last)
        self._last = now
        r = self._position()
        assert self._boresight is not None
        goal = self._goal(r)
        if goal is not None and not self.jammed:
            if self._last_goal is not None:
                self._boresight = _carry(self._boresight, self._last_goal, goal)
            self._boresight = _turn(self._boresight, goal, self.slew_rate_deg_s * dt)
        self._last_goal = goal
        self._error = 0.0 if goal is None else _angle_deg(self._boresight, goal)
        if self.jammed:
            slew = SlewStatus.FAULT
            self._settled_since = None
        else:
            if self._error > self.settle_error_deg:
                self._settled_since = None
            elif self._settled_since is None:
                self._settled_since = now
            start = self._mode_since if goal is None else self._settled_since
            slew = (SlewStatus.SETTLED if start is not None and now - start >= self.settle_s
                    else SlewStatus.SLEWING)
        status = REGMAP["STATUS"]
        raw = status.field("MODE").put(status.field("SLEW").put(0, int(slew)), int(self._mode))
        self.put("STATUS", raw)
        self.put("ATT_ERROR", min(0xFFFF, round(self._error * CENTIDEG)))
        self.put("OFF_NADIR", min(0xFFFF, round(_angle_deg(self._boresight, geodetic_nadir(r)) * CENTIDEG)))

    # -- for the simulated camera and tests -------------------------------------------------------
    def boresight(self) -> tuple[float, float, float]:
        """The camera boresight now (Earth-fixed unit vector), after the model caught up."""
        with self._lock:
            self.advance(self.clock())
            assert self._boresight is not None
            b = self._boresight
            return (float(b[0]), float(b[1]), float(b[2]))

    def jam(self, jammed: bool = True) -> None:
        """Stop (or free) the actuators: the unit reports a slew FAULT while jammed."""
        with self._lock:
            self.jammed = jammed
