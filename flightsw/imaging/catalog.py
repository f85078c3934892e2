"""The image catalog: what was captured, when, where, how, and whether it is pinned.

SQLite in WAL mode with full synchronous commits: a power cut loses at most the capture being
written, never the catalog. All calls block; the component makes them on the "imaging" worker
thread (one thread, so one connection is enough and writes never race).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    boot INTEGER NOT NULL,
    since_boot REAL NOT NULL,
    utc REAL,
    lat REAL,
    lon REAL,
    exposure_us INTEGER NOT NULL,
    analogue_gain REAL NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    temperatures TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    full_bytes INTEGER NOT NULL,
    preview_bytes INTEGER NOT NULL,
    thumbnail_bytes INTEGER NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    cloud REAL,
    exposure REAL,
    footprint TEXT
);
"""
#: columns added after the first release: (name, SQL type); added to an older catalog on open
ADDED_COLUMNS = (("cloud", "REAL"), ("exposure", "REAL"), ("footprint", "TEXT"))


@dataclass
class ImageRecord:
    """One catalog row. ``utc``/``lat``/``lon`` are None when time or position were unknown.

    ``utc`` is the exposure: the middle of the camera call; ``lat``/``lon`` the sub-satellite
    point then. ``footprint`` is the predicted ground footprint at that instant
    (``{"corners": [[lat, lon] x 4], "centre": [lat, lon]}``, corners front-left, front-right,
    back-right, back-left: the image's top-left, top-right, bottom-right, bottom-left)."""

    id: int
    boot: int
    since_boot: float
    utc: float | None
    lat: float | None
    lon: float | None
    exposure_us: int
    analogue_gain: float
    width: int
    height: int
    sha256: str
    full_bytes: int
    preview_bytes: int
    thumbnail_bytes: int
    temperatures: dict[str, float] = field(default_factory=dict)
    pinned: bool = False
    reason: str = ""
    #: onboard triage (flightsw.imaging.triage): 0 clear .. 1 overcast; 0 unusable .. 1 good
    cloud: float | None = None
    exposure: float | None = None
    footprint: dict[str, Any] | None = None

    @property
    def total_bytes(self) -> int:
        return self.full_bytes + self.preview_bytes + self.thumbnail_bytes

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


_COLUMNS = (
    "id", "boot", "since_boot", "utc", "lat", "lon", "exposure_us", "analogue_gain", "width",
    "height", "temperatures", "sha256", "full_bytes", "preview_bytes", "thumbnail_bytes",
    "pinned", "reason", "cloud", "exposure", "footprint",
)


def _from_row(row: sqlite3.Row) -> ImageRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["temperatures"] = json.loads(values["temperatures"])
    values["pinned"] = bool(values["pinned"])
    values["footprint"] = None if values["footprint"] is None else json.loads(values["footprint"])
    return ImageRecord(**values)


class ImageCatalog:
    """Persistent image metadata; every method blocks (run it on the imaging worker)."""

    def __init__(self, path: Path, synchronous: bool = True) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous else 'NORMAL'}")
        self._db.executescript(SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(images)")}
        for name, sql_type in ADDED_COLUMNS:
            if name not in have:  # a catalog written before triage: its images stay unscored
                self._db.execute(f"ALTER TABLE images ADD COLUMN {name} {sql_type}")

    def close(self) -> None:
        self._db.close()

    def next_id(self) -> int:
        (current,) = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM images").fetchone()
        return int(current) + 1

    def add(self, record: ImageRecord) -> None:
        values = record.to_json()
        values["temperatures"] = json.dumps(record.temperatures, sort_keys=True)
        values["pinned"] = int(record.pinned)
        values["footprint"] = None if record.footprint is None else json.dumps(record.footprint, sort_keys=True)
        placeholders = ", ".join("?" for _ in _COLUMNS)
        self._db.execute(
            f"INSERT INTO images ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
            [values[c] for c in _COLUMNS],
        )

    def get(self, image_id: int) -> ImageRecord | None:
        row = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM images WHERE id = ?", (image_id,)).fetchone()
        return None if row is None else _from_row(row)

    def by_score(self, limit: int, max_cloud: float = 1.0, min_exposure: float = 0.0) -> list[ImageRecord]:
        """Scored images, least cloud first, then best exposure, then oldest; unscored ones left out."""
        rows = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM images WHERE cloud IS NOT NULL AND exposure IS NOT NULL "
            "AND cloud <= ? AND exposure >= ? ORDER BY cloud, exposure DESC, id LIMIT ?",
            (max_cloud, min_exposure, limit)).fetchall()
        return [_from_row(r) for r in rows]

    def list(self, since_id: int = 0, limit: int = 1000) -> list[ImageRecord]:
        rows = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM images WHERE id >= ? ORDER BY id LIMIT ?",
            (since_id, limit)).fetchall()
        return [_from_row(r) for r in rows]

    def set_pinned(self, image_id: int, pinned: bool) -> bool:
        cursor = self._db.execute("UPDATE images SET pinned = ? WHERE id = ?", (int(pinned), image_id))
        return cursor.rowcount == 1

    def delete(self, image_id: int) -> bool:
        return self._db.execute("DELETE FROM images WHERE id = ?", (image_id,)).rowcount == 1

    def oldest_unpinned(self) -> ImageRecord | None:
        row = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM images WHERE pinned = 0 ORDER BY id LIMIT 1"
        ).fetchone()
        return None if row is None else _from_row(row)

    def total_bytes(self) -> int:
        (total,) = self._db.execute(
            "SELECT COALESCE(SUM(full_bytes + preview_bytes + thumbnail_bytes), 0) FROM images"
        ).fetchone()
        return int(total)

    def count(self) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM images").fetchone()
        return int(n)

    def ids(self) -> set[int]:
        return {int(r[0]) for r in self._db.execute("SELECT id FROM images")}
