"""Ground-side pass prediction: the next passes of the satellite over one or more stations.

Why skyfield on the ground while the satellite uses plain SGP4 (``flightsw.link.passes``): the
ground has the cycles for the full frame chain (TEME to ITRS with polar motion and UT1 from
skyfield's built-in tables, WGS-84 stations) and root-finding of rise, culmination and set; the
two are independent computations of the same passes, and the tests hold them to each other.
No refraction is applied (neither does the simulator): at a 0 deg mask it would add ~16 s per edge.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from flightsw.config import ContactStationSection
from flightsw.link.passes import TleError, check_tle

MAX_DAYS = 30.0
#: a pass still in progress at the end of the window is followed this far to find its LOS
LOS_SEARCH_S = 3600.0
_INLINE = re.compile(r"^([A-Za-z0-9_.-]+)=([^=]+)$")


class PassInputError(ValueError):
    """A station, TLE or option the predictor cannot use; one line naming it."""


class _StationFile(msgspec.Struct, forbid_unknown_fields=True):
    stations: list[ContactStationSection] = []


@dataclass(frozen=True)
class GroundPass:
    station: str
    aos: float  # UTC, POSIX seconds: rises above the station's mask
    tca: float  # closest approach (maximum elevation)
    los: float
    max_elevation_deg: float

    @property
    def duration_s(self) -> float:
        return self.los - self.aos


def load_stations(path: Path | None = None) -> dict[str, ContactStationSection]:
    """Stations by name from a station file (default: the packaged ``stations.toml``)."""
    try:
        text = path.read_text() if path is not None else (
            importlib.resources.files("flightsw.ground").joinpath("stations.toml").read_text())
    except OSError as exc:
        raise PassInputError(f"station file {path}: {exc.strerror or exc}") from None
    try:
        parsed = msgspec.toml.decode(text.encode(), type=_StationFile)
    except msgspec.MsgspecError as exc:
        raise PassInputError(f"station file {path or 'stations.toml'}: {exc}") from None
    return {s.name: s for s in parsed.stations}


def resolve_station(spec: str, known: dict[str, ContactStationSection]) -> ContactStationSection:
    """``NAME`` from the known stations, or ``NAME=LAT,LON[,ALT_M[,MASK_DEG]]`` defined inline."""
    match = _INLINE.match(spec.strip())
    if match is None:
        if spec in known:
            return known[spec]
        names = ", ".join(sorted(known)) or "none"
        raise PassInputError(f"unknown station {spec!r} (known: {names}; or NAME=LAT,LON[,ALT_M[,MASK_DEG]])")
    name, numbers = match.groups()
    parts = numbers.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise PassInputError(f"station {spec!r}: LAT,LON[,ALT_M[,MASK_DEG]] must be numbers") from None
    if not 2 <= len(values) <= 4:
        raise PassInputError(f"station {spec!r}: give LAT,LON[,ALT_M[,MASK_DEG]]")
    keys = ["lat_deg", "lon_deg", "alt_m", "min_elevation_deg"][:len(values)]
    try:
        return msgspec.convert({"name": name, **dict(zip(keys, values, strict=True))}, ContactStationSection)
    except msgspec.ValidationError as exc:
        raise PassInputError(f"station {spec!r}: {exc}") from None


def read_tle(text: str) -> tuple[str, str]:
    """The two element lines of a TLE file (an optional name line before them)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    candidates = [line for line in lines if line.startswith(("1 ", "2 "))]
    if len(candidates) != 2:
        raise PassInputError(f"TLE file needs one line 1 and one line 2, found {len(candidates)} element lines")
    try:
        return check_tle(candidates[0], candidates[1])
    except TleError as exc:
        raise PassInputError(str(exc)) from None


def predict(tle: tuple[str, str], stations: Iterable[ContactStationSection], start: float,
            days: float) -> list[GroundPass]:
    """Every pass whose AOS lies in [start, start + days], per station, by AOS. A pass already in
    progress at ``start`` starts there."""
    if not 0 < days <= MAX_DAYS:
        raise PassInputError(f"--days {days:g} outside (0, {MAX_DAYS:g}]")
    from skyfield.api import EarthSatellite, load, wgs84

    ts = load.timescale(builtin=True)
    satellite = EarthSatellite(tle[0], tle[1], "satellite", ts)
    if satellite.model.error:
        raise PassInputError(f"invalid TLE: SGP4 error {satellite.model.error}")
    end = start + days * 86400.0
    t0, t1 = ts.from_datetime(_utc(start)), ts.from_datetime(_utc(end + LOS_SEARCH_S))
    found: list[GroundPass] = []
    for station in stations:
        site = wgs84.latlon(station.lat_deg, station.lon_deg, elevation_m=station.alt_m)
        mask = station.min_elevation_deg
        times, kinds = satellite.find_events(site, t0, t1, altitude_degrees=mask)
        difference = satellite - site

        def elevation(t: object, difference: object = difference) -> float:
            return float(difference.at(t).altaz()[0].degrees)  # type: ignore[attr-defined]

        aos: float | None = start if elevation(t0) >= mask else None
        best: tuple[float, float] | None = None  # (elevation, time) of the highest culmination
        for t, kind in zip(times, kinds, strict=True):
            when = float(t.utc_datetime().timestamp())
            if kind == 0:
                aos, best = when, None
            elif kind == 1 and aos is not None:
                el = elevation(t)
                if best is None or el > best[0]:
                    best = (el, when)
            elif kind == 2 and aos is not None:
                if best is None:  # rose and set without a culmination event (grazing): the middle
                    middle = (aos + when) / 2
                    best = (elevation(ts.from_datetime(_utc(middle))), middle)
                if aos <= end:
                    found.append(GroundPass(station.name, aos, best[1], when, best[0]))
                aos, best = None, None
    return sorted(found, key=lambda p: (p.aos, p.station))


def _utc(posix: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(posix, dt.UTC)


def _iso(posix: float) -> str:
    return _utc(posix).strftime("%Y-%m-%dT%H:%M:%SZ")


def render(passes: Sequence[GroundPass], stations: Sequence[ContactStationSection], days: float) -> str:
    lines: list[str] = []
    for station in stations:
        mine = [p for p in passes if p.station == station.name]
        lines.append(f"{station.name} ({station.lat_deg:.4f}, {station.lon_deg:.4f}, {station.alt_m:.0f} m, "
                     f"mask {station.min_elevation_deg:g} deg): {len(mine)} passes in {days:g} days")
        for p in mine:
            minutes, seconds = divmod(round(p.duration_s), 60)
            lines.append(f"  AOS {_iso(p.aos)}  TCA {_iso(p.tca)}  LOS {_iso(p.los)}  "
                         f"max {p.max_elevation_deg:5.1f} deg  {minutes:2d} min {seconds:02d} s")
    return "\n".join(lines) + "\n"
