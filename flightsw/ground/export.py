"""`flightsw ground export`: what the archive holds since a time, as CSV or JSON.

Why one module: values, events and the command history (each command sent, joined with its
verdict and completion) come out with the same columns whatever the format, times as ISO UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

from flightsw.ground.archive import Archive

TABLES = ("values", "events", "commands")

_SQL = {
    "values": ("SELECT rx_time, source, name, value, unit, boot, seconds FROM vals WHERE rx_time >= ? ORDER BY id",
               ["rx_time_utc", "source", "name", "value", "unit", "boot", "seconds_since_boot"]),
    "events": ("SELECT rx_time, boot, seconds, name, severity, text FROM events WHERE rx_time >= ? ORDER BY id",
               ["rx_time_utc", "boot", "seconds_since_boot", "name", "severity", "text"]),
    # A command's verdict and completion are the first of their kind for its counter received after
    # it was sent (counters repeat across keys; several ground processes archive the same reply).
    "commands": ("""SELECT c.tx_time, c.key_id, c.counter, c.name, c.args,
            (SELECT r.reason FROM responses r WHERE r.seq = c.counter AND r.completion = ''
                AND r.rx_time >= c.tx_time ORDER BY r.id LIMIT 1),
            (SELECT r.completion FROM responses r WHERE r.seq = c.counter AND r.completion != ''
                AND r.rx_time >= c.tx_time ORDER BY r.id LIMIT 1),
            (SELECT r.detail FROM responses r WHERE r.seq = c.counter AND r.rx_time >= c.tx_time
                AND r.detail != '' ORDER BY r.id LIMIT 1)
            FROM commands c WHERE c.tx_time >= ? ORDER BY c.id""",
                 ["tx_time_utc", "key_id", "counter", "name", "args", "verdict", "completion", "detail"]),
}


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rows(archive: Archive, table: str, since: float) -> tuple[list[str], list[list[Any]]]:
    """Column names and rows of one table (first column an ISO UTC time); blocking, on the
    archive's thread."""
    sql, columns = _SQL[table]
    out = []
    for row in archive.call_blocking(archive.query, sql, (since,)):
        values: list[Any] = [_iso(row[0]), *row[1:]]
        out.append(["" if v is None and table == "commands" else v for v in values])
    return columns, out


def to_csv(columns: list[str], data: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(data)
    return out.getvalue()


def to_json(tables: dict[str, tuple[list[str], list[list[Any]]]]) -> str:
    """One object per row under each table's name; command arguments as an object."""
    doc: dict[str, list[dict[str, Any]]] = {}
    for name, (columns, data) in tables.items():
        records = [dict(zip(columns, row, strict=True)) for row in data]
        for record in records:
            if name == "commands" and record.get("args"):
                record["args"] = json.loads(record["args"])
            for key, value in record.items():
                if isinstance(value, bytes):
                    record[key] = value.hex()
        doc[name] = records
    return json.dumps(doc, indent=1) + "\n"


def export(archive: Archive, what: str, since: float, fmt: str) -> str:
    """The text ``flightsw ground export`` prints; ValueError naming a combination CSV cannot hold."""
    tables = list(TABLES) if what == "all" else [what]
    if fmt == "csv":
        if len(tables) != 1:
            raise ValueError("--what all needs --json (a CSV holds one table)")
        return to_csv(*rows(archive, tables[0], since))
    return to_json({name: rows(archive, name, since) for name in tables})
