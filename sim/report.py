"""Scenario report: PNG plots drawn with Pillow and numpy, and an HTML page that shows them.

Why Pillow and not matplotlib: the simulator already depends on Pillow and numpy; a few line,
band and timeline charts do not justify another 40 MB dependency. Every file is written to a
temporary name and renamed, so an interrupted run never leaves a half-written report, and
every table is bounded, so a week-long run still produces a page a browser opens.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from flightsw.core.atomic import atomic_write
from sim.environment.world import World, WorldEvent
from sim.scenario import ExpectationResult

WIDTH, HEIGHT = 1000, 340
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 150, 34, 40
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
SEVERITY_ORDER = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "FATAL", "RESET"]  # RESET: a watchdog reset
RESET_COLOR = "#000000"
MAX_EVENT_ROWS = 500


@dataclass(frozen=True)
class CaptureShot:
    """One picture taken over a target: its thumbnail (JPEG), its footprint corners (lat, lon:
    front-left, front-right, back-right, back-left, as in the flight catalog) and the target."""

    thumbnail: bytes
    corners: tuple[tuple[float, float], ...]
    target: tuple[float, float]
    utc: float
    off_nadir_deg: float
    settle_s: float | None
    in_frame: bool


@dataclass
class ReportData:
    """Everything a report shows. Only the World part is required; the runner adds the rest."""

    title: str
    start: float  # POSIX seconds
    end: float
    world_columns: Mapping[str, Sequence[float]]
    world_events: Sequence[WorldEvent] = ()
    modes: Sequence[tuple[float, str]] = ()  # (t, mode entered)
    data_volume: Sequence[tuple[float, float, float]] = ()  # (t, bytes down so far, bytes up so far)
    events: Sequence[tuple[float, str, str]] = ()  # (t, severity, text) from the flight software
    metrics: Mapping[str, float] = field(default_factory=dict)
    expectations: Sequence[ExpectationResult] = ()
    resets: Sequence[float] = ()  # POSIX seconds of each watchdog reset (the board rebooted)
    # store and forward: (t, bytes recorded so far, played-back bytes received so far) ...
    data_budget: Sequence[tuple[float, float, float]] = ()
    # ... and (station, AOS, LOS, played-back bytes received) per pass
    pass_goodput: Sequence[tuple[str, float, float, float]] = ()
    captures: Sequence[CaptureShot] = ()  # pictures taken over targets (imaging scenarios)

    @classmethod
    def from_world(cls, title: str, world: World, **extra: Any) -> ReportData:
        return cls(title=title, start=world.start, end=world.time, world_columns=world.recording.columns,
                   world_events=list(world.events), metrics={**world.metrics(), **extra.pop("metrics", {})}, **extra)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _nice_step(span: float, target_ticks: int = 6) -> float:
    raw = span / max(1, target_ticks)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


class Chart:
    """One plot area with a time axis in hours since the start."""

    def __init__(self, title: str, x_range: tuple[float, float], y_range: tuple[float, float], y_label: str,
                 height: int = HEIGHT) -> None:
        self.image = Image.new("RGB", (WIDTH, height), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.height = height
        self.x0, self.x1 = x_range
        lo, hi = y_range
        if hi - lo < 1e-9:
            lo, hi = lo - 1.0, hi + 1.0
        pad = (hi - lo) * 0.05
        self.y0, self.y1 = lo - pad, hi + pad
        self.font = _font(13)
        self.title_font = _font(16)
        self.legend: list[tuple[str, str]] = []
        self.draw.text((MARGIN_LEFT, 8), title, fill="black", font=self.title_font)
        self.draw.text((6, MARGIN_TOP - 18), y_label, fill="#444", font=self.font)
        self._axes()

    @property
    def plot_box(self) -> tuple[int, int, int, int]:
        return MARGIN_LEFT, MARGIN_TOP, WIDTH - MARGIN_RIGHT, self.height - MARGIN_BOTTOM

    def px(self, x: np.ndarray | float) -> Any:
        left, _, right, _ = self.plot_box
        return left + (np.asarray(x) - self.x0) / max(self.x1 - self.x0, 1e-9) * (right - left)

    def py(self, y: np.ndarray | float) -> Any:
        _, top, _, bottom = self.plot_box
        return bottom - (np.asarray(y) - self.y0) / (self.y1 - self.y0) * (bottom - top)

    def _axes(self) -> None:
        left, top, right, bottom = self.plot_box
        step = _nice_step(self.x1 - self.x0)
        tick = math.ceil(self.x0 / step) * step
        while tick <= self.x1 + 1e-9:
            x = float(self.px(tick))
            self.draw.line([(x, top), (x, bottom)], fill="#eeeeee")
            self.draw.text((x - 8, bottom + 6), f"{tick:g}", fill="#444", font=self.font)
            tick += step
        self.draw.text(((left + right) / 2 - 60, bottom + 22), "hours since start", fill="#444", font=self.font)
        step = _nice_step(self.y1 - self.y0, 5)
        tick = math.ceil(self.y0 / step) * step
        while tick <= self.y1 + 1e-9:
            y = float(self.py(tick))
            self.draw.line([(left, y), (right, y)], fill="#eeeeee")
            self.draw.text((6, y - 7), f"{tick:g}", fill="#444", font=self.font)
            tick += step
        self.draw.rectangle([left, top, right, bottom], outline="#888888")

    def band(self, x_start: float, x_end: float, color: str) -> None:
        _, top, _, bottom = self.plot_box
        self.draw.rectangle([float(self.px(x_start)), top + 1, float(self.px(x_end)), bottom - 1], fill=color)

    def line(self, xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray, color: str, label: str) -> None:
        x, y = _decimate(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), 2 * WIDTH)
        points = list(zip(self.px(x).tolist(), self.py(y).tolist(), strict=True))
        if len(points) >= 2:
            self.draw.line(points, fill=color, width=2)
        self.legend.append((label, color))

    def resets(self, times_h: Sequence[float]) -> None:
        """A dashed vertical line at each reset, across the whole plot, labelled once."""
        _, top, _, bottom = self.plot_box
        for t in times_h:
            x = float(self.px(t))
            for y in range(top + 1, bottom - 1, 8):
                self.draw.line([(x, y), (x, min(y + 4, bottom - 1))], fill=RESET_COLOR, width=2)
        if times_h:
            self.legend.append((f"reset ({len(times_h)})", RESET_COLOR))

    def hline(self, y: float, color: str, label: str) -> None:
        left, _, right, _ = self.plot_box
        self.draw.line([(left, float(self.py(y))), (right, float(self.py(y)))], fill=color, width=1)
        self.legend.append((label, color))

    def save(self, path: Path) -> None:
        _, top, right, _ = self.plot_box
        for i, (label, color) in enumerate(self.legend):
            y = top + 6 + 18 * i
            self.draw.rectangle([right + 10, y + 3, right + 24, y + 11], fill=color)
            self.draw.text((right + 30, y), label[:18], fill="black", font=self.font)
        atomic_write(path, lambda f: self.image.save(f, format="PNG"))


def _decimate(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the min and max of each bucket so spikes survive downsampling."""
    if len(x) <= max_points:
        return x, y
    buckets = max_points // 2
    edges = np.linspace(0, len(x), buckets + 1, dtype=int)
    xs, ys = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b <= a:
            continue
        seg = y[a:b]
        i_min, i_max = a + int(np.argmin(seg)), a + int(np.argmax(seg))
        for i in sorted({i_min, i_max}):
            xs.append(x[i])
            ys.append(y[i])
    return np.asarray(xs), np.asarray(ys)


def _intervals(events: Sequence[WorldEvent], begin: str, end: str, start: float, stop: float,
               detail: str | None = None, initially_open: bool = False) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    opened: float | None = start if initially_open else None
    for e in events:
        if detail is not None and e.detail != detail:
            continue
        if e.kind == begin and opened is None:
            opened = e.t
        elif e.kind == end:
            spans.append((start if opened is None else opened, e.t))
            opened = None
    if opened is not None:
        spans.append((opened, stop))
    return spans


def build_report(out_dir: str | Path, data: ReportData) -> Path:
    """Write the PNG plots, report.json and index.html into out_dir; return the page's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cols = {k: np.asarray(v, dtype=float) for k, v in data.world_columns.items()}
    if "t" not in cols or len(cols["t"]) == 0:
        raise ValueError("report needs the World's recording (column 't' is empty)")
    hours = (cols["t"] - data.start) / 3600.0
    x_range = (0.0, max((data.end - data.start) / 3600.0, float(hours[-1]), 1e-3))
    to_h = lambda t: (t - data.start) / 3600.0  # noqa: E731
    eclipses = _intervals(data.world_events, "eclipse_entry", "eclipse_exit", data.start, data.end,
                          initially_open=bool(cols.get("lit_fraction", np.ones(1))[0] < 0.5))
    plots: list[tuple[str, str]] = []

    def shade_eclipses(chart: Chart) -> None:
        for a, b in eclipses:
            chart.band(to_h(a), to_h(b), "#e8e8f4")

    soc = cols["battery_soc"] * 100.0
    chart = Chart("Battery state of charge", x_range, (min(0.0, float(soc.min())), 100.0), "%")
    shade_eclipses(chart)
    chart.line(hours, soc, PALETTE[0], "SoC %")
    chart.save(out / "battery_soc.png")
    plots.append(("battery_soc.png", "Battery state of charge (eclipses shaded)"))

    volts = cols["battery_voltage"]
    chart = Chart("Battery voltage", x_range, (float(volts.min()), float(volts.max())), "V")
    shade_eclipses(chart)
    chart.line(hours, volts, PALETTE[1], "battery V")
    chart.save(out / "battery_voltage.png")
    plots.append(("battery_voltage.png", "Battery terminal voltage"))

    temp_keys = sorted(k for k in cols if k.startswith("temp_"))
    all_t = np.concatenate([cols[k] for k in temp_keys])
    chart = Chart("Temperatures", x_range, (float(all_t.min()), float(all_t.max())), "degC")
    shade_eclipses(chart)
    for i, key in enumerate(temp_keys):
        chart.line(hours, cols[key], PALETTE[i % len(PALETTE)], key[5:])
    chart.save(out / "temperatures.png")
    plots.append(("temperatures.png", "Lumped-node temperatures"))

    elevation_keys = sorted(k for k in cols if k.startswith("elevation_"))
    chart = Chart("Ground contacts (elevation)", x_range, (0.0, 90.0), "deg")
    windows: list[tuple[str, float, float]] = []
    for i, key in enumerate(elevation_keys):
        station = key[len("elevation_"):]
        first_visible = bool(cols[key][0] >= 0.0)
        for a, b in _intervals(data.world_events, "aos", "los", data.start, data.end, station, first_visible):
            chart.band(to_h(a), to_h(b), "#dff0df")
            windows.append((station, a, b))
        chart.line(hours, np.clip(cols[key], 0.0, 90.0), PALETTE[i % len(PALETTE)], station)
    chart.save(out / "contacts.png")
    plots.append(("contacts.png", "Elevation of the satellite at each station; contact windows shaded"))

    mode_names = sorted({m for _, m in data.modes})
    chart = Chart("Mode timeline", x_range, (0.0, max(1.0, float(len(mode_names)))), "mode", height=200)
    if data.modes:
        spans = list(data.modes) + [(data.end, "")]
        for (t0, mode), (t1, _) in zip(spans[:-1], spans[1:], strict=True):
            row = mode_names.index(mode)
            color = PALETTE[row % len(PALETTE)]
            x0, x1 = float(chart.px(to_h(t0))), float(chart.px(to_h(t1)))
            chart.draw.rectangle([x0, float(chart.py(row + 0.9)), max(x1, x0 + 1), float(chart.py(row + 0.1))], fill=color)
        chart.legend = [(m, PALETTE[i % len(PALETTE)]) for i, m in enumerate(mode_names)]
    else:
        chart.draw.text((MARGIN_LEFT + 20, 90), "no mode changes were reported by this run", fill="#888", font=chart.font)
    reset_hours = [to_h(t) for t in data.resets]
    chart.resets(reset_hours)
    chart.save(out / "modes.png")
    plots.append(("modes.png", "Flight software mode timeline (watchdog resets dashed)"))

    if data.data_volume:
        dv = np.asarray(data.data_volume, dtype=float)
        top = float(max(dv[:, 1].max(), dv[:, 2].max(), 1.0)) / 1024.0
        chart = Chart("Data volume", x_range, (0.0, top), "KiB")
        for a, b in ((s, e) for _, s, e in windows):
            chart.band(to_h(a), to_h(b), "#dff0df")
        chart.line(to_h(dv[:, 0]), dv[:, 1] / 1024.0, PALETTE[0], "down")
        chart.line(to_h(dv[:, 0]), dv[:, 2] / 1024.0, PALETTE[1], "up")
    else:
        chart = Chart("Data volume", x_range, (0.0, 1.0), "KiB", height=200)
        chart.draw.text((MARGIN_LEFT + 20, 90), "no link statistics were reported by this run", fill="#888", font=chart.font)
    chart.save(out / "data_volume.png")
    plots.append(("data_volume.png", "Cumulative data volume down and up (contacts shaded)"))

    if data.data_budget:
        budget = np.asarray(data.data_budget, dtype=float)
        top = float(max(budget[:, 1].max(), budget[:, 2].max(), 1.0)) / 1024.0
        chart = Chart("Data budget", x_range, (0.0, top), "KiB")
        for a, b in ((s, e) for _, s, e in windows):
            chart.band(to_h(a), to_h(b), "#dff0df")
        chart.line(to_h(budget[:, 0]), budget[:, 1] / 1024.0, PALETTE[1], "recorded")
        chart.line(to_h(budget[:, 0]), budget[:, 2] / 1024.0, PALETTE[0], "played back")
        chart.line(to_h(budget[:, 0]), np.maximum(budget[:, 1] - budget[:, 2], 0.0) / 1024.0, PALETTE[3],
                   "difference")
        chart.save(out / "data_budget.png")
        plots.append(("data_budget.png", "Bytes recorded on board and played-back bytes received "
                      "(cumulative; contacts shaded)"))

    severities = [s for s in SEVERITY_ORDER if any(e[1] == s for e in data.events)] or ["INFO"]
    chart = Chart("Events", x_range, (0.0, float(len(severities))), "severity", height=220)
    for t, severity, _ in data.events:
        if severity in severities:
            row = severities.index(severity)
            x = float(chart.px(to_h(t)))
            chart.draw.line([(x, float(chart.py(row + 0.85))), (x, float(chart.py(row + 0.15)))],
                            fill=PALETTE[(SEVERITY_ORDER.index(severity) + 1) % len(PALETTE)], width=1)
    chart.legend = [(s, PALETTE[(SEVERITY_ORDER.index(s) + 1) % len(PALETTE)]) for s in severities]
    chart.resets(reset_hours)
    chart.save(out / "events.png")
    plots.append(("events.png", "Flight software events by severity"))

    for index, shot in enumerate(data.captures, 1):
        name = f"capture_{index}.png"
        atomic_write(out / name, lambda f, shot=shot: capture_map(shot).save(f, format="PNG"))  # type: ignore[misc]
        settle = "no slew wait" if shot.settle_s is None else f"settled in {shot.settle_s:.0f} s"
        plots.append((name, f"Capture over ({shot.target[0]:.3f}, {shot.target[1]:.3f}) at "
                            f"{datetime.fromtimestamp(shot.utc, tz=UTC):%Y-%m-%d %H:%M:%S} UTC, "
                            f"{shot.off_nadir_deg:.1f} deg off nadir, {settle}; target "
                            f"{'inside' if shot.in_frame else 'OUTSIDE'} the footprint"))

    passed = all(r.passed for r in data.expectations)
    summary = {
        "title": data.title,
        "start": datetime.fromtimestamp(data.start, tz=UTC).isoformat(),
        "end": datetime.fromtimestamp(data.end, tz=UTC).isoformat(),
        "passed": passed,
        "metrics": dict(data.metrics),
        "expectations": [
            {"metric": r.expectation.metric, "min": r.expectation.min, "max": r.expectation.max,
             "value": r.value, "passed": r.passed, "reason": r.reason} for r in data.expectations
        ],
        "contacts": [{"station": s, "aos": a, "los": b} for s, a, b in windows],
        "resets": [datetime.fromtimestamp(t, tz=UTC).isoformat() for t in data.resets],
        "pass_goodput": [{"station": s, "aos": a, "los": b, "stored_bytes": n,
                          "goodput_bps": 8.0 * n / (b - a) if b > a else 0.0} for s, a, b, n in data.pass_goodput],
    }
    atomic_write(out / "report.json", json.dumps(summary, indent=2).encode())
    page = _html(data, plots, windows, passed)
    atomic_write(out / "index.html", page.encode())
    return out / "index.html"


def _homography(src: Sequence[tuple[float, float]], dst: Sequence[tuple[float, float]]) -> list[float]:
    """Pillow's PERSPECTIVE coefficients taking output pixels ``src`` to input pixels ``dst``."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return [float(c) for c in np.linalg.solve(np.array(rows, dtype=float), np.array(rhs, dtype=float))]


def _pixel_of(corners: Sequence[tuple[float, float]], lat: float, lon: float,
              width: int, height: int) -> tuple[float, float]:
    """Where (lat, lon) falls in a picture whose corners are ``corners`` (bilinear, by search)."""
    lats = np.array([c[0] for c in corners])
    lons = lon + (np.array([c[1] for c in corners]) - lon + 180.0) % 360.0 - 180.0
    u, v = np.meshgrid(np.linspace(-0.5, 1.5, 201), np.linspace(-0.5, 1.5, 201))
    weights = ((1 - u) * (1 - v), u * (1 - v), u * v, (1 - u) * v)
    glat = sum(w * a for w, a in zip(weights, lats, strict=True))
    glon = sum(w * b for w, b in zip(weights, lons, strict=True))
    cos = math.cos(math.radians(lat))
    k = int(np.argmin((np.asarray(glat) - lat) ** 2 + ((np.asarray(glon) - lon) * cos) ** 2))
    return float(u.flat[k]) * width, float(v.flat[k]) * height


def capture_map(shot: CaptureShot, size: tuple[int, int] = (1000, 440)) -> Image.Image:
    """The thumbnail as taken (target marked) beside a map-like latitude/longitude plot with the
    thumbnail drawn into its footprint, the footprint outlined and the target marked."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = _font(13)
    lat0, lon0 = shot.target
    try:
        import io

        thumb = Image.open(io.BytesIO(shot.thumbnail)).convert("RGB")
    except Exception:  # noqa: BLE001 (a thumbnail the report cannot read: the map still shows the footprint)
        thumb = Image.new("RGB", (96, 72), "#808080")
    scale = min(380 / thumb.width, 300 / thumb.height)
    shown = thumb.resize((round(thumb.width * scale), round(thumb.height * scale)), Image.Resampling.NEAREST)
    image.paste(shown, (20, 60))
    draw.text((20, 30), "Thumbnail (top: direction of flight)", fill="black", font=font)
    if len(shot.corners) == 4:
        px, py = _pixel_of(shot.corners, lat0, lon0, shown.width, shown.height)
        _cross(draw, 20 + px, 60 + py, "#ff2020")
    # the map: equirectangular around the target, 1 deg of latitude = 1 deg of longitude x cos(lat)
    box = (460, 40, 980, 420)
    cos = max(0.05, math.cos(math.radians(lat0)))
    lons = [lon0 + (c[1] - lon0 + 180.0) % 360.0 - 180.0 for c in shot.corners] or [lon0]
    lats = [c[0] for c in shot.corners] or [lat0]
    half = max(0.6, 1.3 * max([abs(a - lat0) for a in lats] + [abs(b - lon0) * cos for b in lons]))
    span_x, span_y = box[2] - box[0], box[3] - box[1]
    per_deg = min(span_x, span_y) / (2 * half)

    def to_px(lat: float, lon: float) -> tuple[float, float]:
        return ((box[0] + box[2]) / 2 + (lon - lon0) * cos * per_deg, (box[1] + box[3]) / 2 - (lat - lat0) * per_deg)

    draw.rectangle(box, outline="#888888", fill="#eef3f8")
    step = _nice_step(2 * half, 5)
    for k in range(math.floor((lat0 - 2 * half) / step), math.ceil((lat0 + 2 * half) / step) + 1):
        y = to_px(k * step, lon0)[1]
        if box[1] <= y <= box[3]:
            draw.line([(box[0], y), (box[2], y)], fill="#c8d0d8")
            draw.text((box[0] - 50, y - 7), f"{k * step:.2f}", fill="#333333", font=font)
    lon_step = _nice_step(2 * half / cos, 5)
    for k in range(math.floor((lon0 - 2 * half / cos) / lon_step), math.ceil((lon0 + 2 * half / cos) / lon_step) + 1):
        x = to_px(lat0, k * lon_step)[0]
        if box[0] <= x <= box[2]:
            draw.line([(x, box[1]), (x, box[3])], fill="#c8d0d8")
            draw.text((x - 20, box[3] + 4), f"{(k * lon_step + 180) % 360 - 180:.2f}", fill="#333333", font=font)
    if len(shot.corners) == 4:
        quad = [to_px(a, b) for a, b in zip(lats, lons, strict=True)]
        source = [(0.0, 0.0), (float(thumb.width), 0.0), (float(thumb.width), float(thumb.height)),
                  (0.0, float(thumb.height))]
        coeffs = _homography(quad, source)
        warped = thumb.transform(size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
        mask = Image.new("L", size, 0)
        ImageDraw.Draw(mask).polygon(quad, fill=255)
        image.paste(warped, (0, 0), mask)
        draw.polygon(quad, outline="#1f77b4")
        draw.line([quad[0], quad[1]], fill="#1f77b4", width=3)  # the front edge
    _cross(draw, *to_px(lat0, lon0), "#ff2020")
    draw.text((box[0], 18), f"Footprint on the map (front edge thick), target ({lat0:.3f}, {lon0:.3f}) marked",
              fill="black", font=font)
    return image


def _cross(draw: ImageDraw.ImageDraw, x: float, y: float, color: str) -> None:
    draw.line([(x - 8, y), (x + 8, y)], fill=color, width=2)
    draw.line([(x, y - 8), (x, y + 8)], fill=color, width=2)
    draw.ellipse([(x - 5, y - 5), (x + 5, y + 5)], outline=color, width=1)


def _html(data: ReportData, plots: list[tuple[str, str]], windows: list[tuple[str, float, float]], passed: bool) -> str:
    esc = html.escape

    def utc(t: float) -> str:
        return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")

    rows = "".join(
        f"<tr class={'ok' if r.passed else 'fail'}><td>{esc(r.expectation.metric)}</td>"
        f"<td>{'' if r.expectation.min is None else r.expectation.min:}</td>"
        f"<td>{'' if r.expectation.max is None else r.expectation.max}</td>"
        f"<td>{'-' if r.value is None else f'{r.value:.4g}'}</td><td>{esc(r.reason)}</td></tr>"
        for r in data.expectations
    )
    metrics = "".join(f"<tr><td>{esc(k)}</td><td>{v:.4g}</td></tr>" for k, v in sorted(data.metrics.items()))
    contact_rows = "".join(
        f"<tr><td>{esc(s)}</td><td>{utc(a)}</td><td>{utc(b)}</td><td>{(b - a) / 60:.1f}</td></tr>" for s, a, b in windows
    )
    budget = _budget_html(data)
    events = list(data.events)[:MAX_EVENT_ROWS]
    event_rows = "".join(f"<tr{' class=reset' if sev == 'RESET' else ''}><td>{utc(t)}</td><td>{esc(sev)}</td>"
                         f"<td>{esc(text)}</td></tr>" for t, sev, text in events)
    more = len(data.events) - len(events)
    images = "".join(f"<figure><img src='{esc(f)}' alt='{esc(c)}'><figcaption>{esc(c)}</figcaption></figure>" for f, c in plots)
    verdict = "PASSED" if passed else "FAILED"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(data.title)}: {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1040px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}tr.fail{{background:#fdd}}tr.ok{{background:#efe}}tr.reset{{font-weight:bold;background:#eee}}
figure{{margin:1em 0}}img{{max-width:100%}}.verdict{{font-weight:bold;color:{'#070' if passed else '#a00'}}}</style>
</head><body>
<h1>{esc(data.title)}</h1>
<p>{utc(data.start)} to {utc(data.end)} UTC &middot; <span class="verdict">{verdict}</span>
{f' &middot; {len(data.resets)} watchdog reset(s)' if data.resets else ''}</p>
<h2>Expectations</h2><table><tr><th>metric</th><th>min</th><th>max</th><th>value</th><th>result</th></tr>{rows}</table>
<h2>Plots</h2>{images}
{budget}
<h2>Contact windows</h2><table><tr><th>station</th><th>AOS (UTC)</th><th>LOS (UTC)</th><th>minutes</th></tr>{contact_rows}</table>
<h2>Events</h2><table><tr><th>time (UTC)</th><th>severity</th><th>event</th></tr>{event_rows}</table>
{f'<p>{more} more events are not listed.</p>' if more > 0 else ''}
<h2>Metrics</h2><table>{metrics}</table>
</body></html>
"""


BUDGET_METRICS = (
    ("bytes_recorded", "bytes recorded on board"), ("records_recorded", "records recorded on board"),
    ("bytes_down_stored", "bytes down: played back"), ("bytes_down_housekeeping", "bytes down: real-time housekeeping"),
    ("bytes_down_events", "bytes down: real-time events"), ("bytes_down_beacon", "bytes down: beacons"),
    ("bytes_down_verdict", "bytes down: verdicts"), ("bytes_down_file", "bytes down: files"),
    ("backlog_records_end", "backlog at the end: records"), ("backlog_bytes_end", "backlog at the end: bytes"),
    ("hk_archive_completeness", "recorded housekeeping in the ground archive (%)"),
    ("archive_gaps", "gaps the archive reports"), ("archive_missing_records", "records in those gaps"),
    ("archive_duplicates", "duplicate records in the archive"), ("goodput_mean_bps", "mean playback goodput in passes (bit/s)"),
    ("airtime_s", "airtime used (s)"), ("airtime_saved_s", "airtime saved out of contact (s)"),
    ("energy_saved_wh", "transmitter energy saved (Wh)"),
    ("frames_sent_out_of_contact", "frames sent out of predicted contact"),
    ("frames_sent_out_of_contact_other", "... of them carrying more than a beacon or verdict"),
)


def _budget_html(data: ReportData) -> str:
    """The data budget section: what was recorded, what came down by kind, what is left, per pass."""
    rows = "".join(f"<tr><td>{html.escape(label)}</td><td>{data.metrics[key]:,.4g}</td></tr>"
                   for key, label in BUDGET_METRICS if key in data.metrics)
    if not rows and not data.pass_goodput:
        return ""
    passes = "".join(
        f"<tr><td>{html.escape(s)}</td><td>{datetime.fromtimestamp(a, tz=UTC):%H:%M:%S}</td>"
        f"<td>{(b - a) / 60:.1f}</td><td>{n:,.0f}</td><td>{8.0 * n / (b - a) if b > a else 0.0:,.0f}</td></tr>"
        for s, a, b, n in data.pass_goodput)
    return (f"<h2>Data budget</h2><table>{rows}</table>"
            f"<table><tr><th>station</th><th>AOS (UTC)</th><th>minutes</th><th>played-back bytes</th>"
            f"<th>goodput (bit/s)</th></tr>{passes}</table>")
