"""Geo-reference downloaded images: a GeoJSON footprint and a world file beside each one.

The satellite's catalog (``catalog.json``, from ``imaging.DOWNLINK_CATALOG``) gives each image
its predicted ground footprint at the exposure: four corners (lat, lon) in the order top-left,
top-right, bottom-right, bottom-left of the image (top = direction of flight) and the centre.
For every downloaded product ``imgNNNNNN_<product>.jpg`` with such an entry the ground writes

* ``imgNNNNNN_<product>.geojson``: a Feature whose Polygon is the footprint (lon, lat; the
  longitudes of a footprint across the antimeridian are unwrapped, so they may pass ±180), with
  the image id, exposure UTC, sub-satellite point and centre as properties;
* ``imgNNNNNN_<product>.jgw``: an ESRI world file (the affine pixel -> lon/lat map through the
  top-left, top-right and bottom-left corners) for GIS tools.

Whichever arrives last (catalog or image), the files are written then.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from flightsw.core.atomic import atomic_write

PRODUCT_RE = re.compile(r"^img(\d{6})_(thumbnail|preview|full)\.jpe?g$")
CATALOG_NAME = "catalog.json"


def _unwrapped(corners: list[list[float]]) -> list[tuple[float, float]]:
    first = corners[0][1]
    return [(lat, first + (lon - first + 180.0) % 360.0 - 180.0) for lat, lon in corners]


def footprint_feature(entry: dict[str, Any], product: str) -> dict[str, Any]:
    """The GeoJSON Feature of one catalog entry's footprint."""
    footprint = entry["footprint"]
    ring = [[lon, lat] for lat, lon in _unwrapped(footprint["corners"])]
    ring.append(ring[0])
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"image_id": entry["id"], "product": product, "utc": entry.get("utc"),
                       "subpoint": [entry.get("lat"), entry.get("lon")],
                       "centre": footprint["centre"], "corner_order": "top-left, top-right, bottom-right, bottom-left"},
    }


def world_file(corners: list[list[float]], width: int, height: int) -> str:
    """ESRI world file lines (A, D, B, E, C, F) for an image of ``width`` x ``height`` pixels."""
    (tl_lat, tl_lon), (tr_lat, tr_lon), _br, (bl_lat, bl_lon) = _unwrapped(corners)
    a, d = (tr_lon - tl_lon) / width, (tr_lat - tl_lat) / width
    b, e = (bl_lon - tl_lon) / height, (bl_lat - tl_lat) / height
    c, f = tl_lon + (a + b) / 2, tl_lat + (d + e) / 2  # the centre of the top-left pixel
    return "".join(f"{value:.10f}\n" for value in (a, d, b, e, c, f))


def georeference(download_dir: Path) -> list[Path]:
    """Write the GeoJSON and world file of every downloaded image the catalog locates and that has
    none yet; returns the files written. No catalog, or an unreadable one: nothing."""
    from PIL import Image

    try:
        data = json.loads((download_dir / CATALOG_NAME).read_text())
        entries = {int(e["id"]): e for e in data["images"] if e.get("footprint")}
    except (OSError, ValueError, KeyError, TypeError):
        return []
    written = []
    for path in sorted(download_dir.iterdir()):
        match = PRODUCT_RE.match(path.name)
        if match is None or int(match.group(1)) not in entries:
            continue
        geojson, jgw = path.with_suffix(".geojson"), path.with_suffix(".jgw")
        if geojson.exists() and jgw.exists():
            continue
        entry = entries[int(match.group(1))]
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (OSError, ValueError):
            continue  # a broken JPEG is left as it came
        atomic_write(geojson, json.dumps(footprint_feature(entry, match.group(2)), indent=1).encode())
        atomic_write(jgw, world_file(entry["footprint"]["corners"], width, height).encode())
        written += [geojson, jgw]
    return written
