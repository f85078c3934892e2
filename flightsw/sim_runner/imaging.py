"""Imaging over targets in a scenario run: what was planned, whether the picture holds the target.

Why apart from the runner: the figures (targets planned, pointed, in frame, refused; off-nadir
angles and settle times) come from the imaging events as they happen and, at the end of the run,
from the flight's own catalog (the footprint of each picture) and image store (its thumbnail).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flightsw.imaging.catalog import ImageCatalog
from flightsw.imaging.planner import geodetic_to_ecef
from flightsw.imaging.storage import ImageStore
from sim.report import CaptureShot

MATCH_S = 120.0  # a catalog entry this close to a planned time is that plan's picture
POINTED_DEG = 5.0  # a capture further off nadir than this needed the slew


@dataclass
class TargetPlan:
    lat: float
    lon: float
    utc: float
    off_nadir_deg: float
    settle_s: float | None = None
    image_id: int | None = None
    image_utc: float | None = None
    corners: tuple[tuple[float, float], ...] = ()
    in_frame: bool = False
    thumbnail: bytes = b""


@dataclass
class ImagingLog:
    """Fed with every flight event (``on_event``); ``collect`` reads the catalog at the end."""

    plans: list[TargetPlan] = field(default_factory=list)
    refusals: list[tuple[float, str, str]] = field(default_factory=list)  # (t, reason, detail)
    pointing_failures: int = 0
    _settled: list[tuple[float, float]] = field(default_factory=list)  # (t, settle_s)

    def on_event(self, t: float, name: str, args: Mapping[str, Any]) -> None:
        if name == "imaging.capture_planned":
            self.plans.append(TargetPlan(float(args["lat"]), float(args["lon"]), float(args["utc"]),
                                         float(args["off_nadir_deg"])))
        elif name == "imaging.pointing_settled":
            self._settled.append((t, float(args["settle_s"])))
        elif name == "imaging.pointing_failed":
            self.pointing_failures += 1
        elif name == "imaging.capture_refused":
            self.refusals.append((t, str(args["reason"]), str(args["why"])))

    def collect(self, images_dir: Path) -> None:
        """Match each plan with its picture in the flight's catalog (run ended: files quiet)."""
        for t, settle in self._settled:
            plan = min(self.plans, key=lambda p: abs(p.utc - t), default=None)
            if plan is not None and abs(plan.utc - t) < 600.0:
                plan.settle_s = settle
        path = images_dir / "catalog.sqlite"
        if not path.exists():
            return
        catalog = ImageCatalog(path, synchronous=False)
        try:
            records = catalog.list(0, 10_000)
        finally:
            catalog.close()
        store = ImageStore(images_dir / "products", 1 << 40, fsync=False)
        for plan in self.plans:
            record = min((r for r in records if r.utc is not None), key=lambda r: abs(r.utc - plan.utc),  # type: ignore[operator]
                         default=None)
            if record is None or record.utc is None or abs(record.utc - plan.utc) > MATCH_S or not record.footprint:
                continue
            plan.image_id, plan.image_utc = record.id, record.utc
            plan.corners = tuple((float(a), float(b)) for a, b in record.footprint["corners"])
            plan.in_frame = inside(plan.corners, plan.lat, plan.lon)
            thumbnail = store.path(record.id, "thumbnail")
            plan.thumbnail = thumbnail.read_bytes() if thumbnail.exists() else b""

    def metrics(self) -> dict[str, float]:
        taken = [p for p in self.plans if p.image_id is not None]
        settles = [p.settle_s for p in taken if p.settle_s is not None]
        return {
            "targets_planned": float(len(self.plans)),
            "targets_in_frame": float(sum(p.in_frame for p in taken)),
            "targets_pointed": float(sum(p.off_nadir_deg > POINTED_DEG for p in taken)),
            "targets_refused_dark": float(sum(r == "target_in_darkness" for _t, r, _d in self.refusals)),
            "targets_refused_frame": float(sum(r == "never_in_frame" for _t, r, _d in self.refusals)),
            "pointing_failures": float(self.pointing_failures),
            "off_nadir_deg_max": max((p.off_nadir_deg for p in taken), default=0.0),
            "settle_s_max": max(settles, default=0.0),
        }

    def shots(self) -> list[CaptureShot]:
        """The report's map panels: each picture taken over a target."""
        return [CaptureShot(p.thumbnail, p.corners, (p.lat, p.lon), p.image_utc or p.utc, p.off_nadir_deg,
                            p.settle_s, p.in_frame) for p in self.plans if p.image_id is not None]


def inside(corners: tuple[tuple[float, float], ...], lat: float, lon: float) -> bool:
    """The point lies inside the footprint quadrilateral (great-circle edges), any hemisphere."""
    if len(corners) != 4:
        return False
    points = [geodetic_to_ecef(a, b) for a, b in corners]
    target = geodetic_to_ecef(lat, lon)
    signs = {bool(np.dot(np.cross(points[i], points[(i + 1) % 4]), target) > 0) for i in range(4)}
    return len(signs) == 1 and math.isfinite(float(np.linalg.norm(target)))
