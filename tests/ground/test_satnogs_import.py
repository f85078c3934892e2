"""`flightsw ground import-satnogs`: SatNOGS DB's telemetry export (JSON records with ``frame``,
``timestamp``, ``observer``; or ``timestamp|hexframe`` lines) into the mission archive through the
one decoder. Malformed entries are counted and named; the good ones are never lost."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightsw.ground.satnogs import SatnogsFormatError, parse_export
from flightsw.link import ax25, beacon
from flightsw.link.packets import PacketBuilder, TimeStamp

from .test_ground_cli import _config, _free_port, run_cli

SAT = ax25.Address("UN0SAT", 1)
GND = ax25.Address("UN0GND")
UTC_TIMES = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1),
                         timezones=st.just(dt.UTC)).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=8)


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


good_records = st.builds(lambda raw, when, observer: {"frame": raw.hex().upper(), "timestamp": _iso(when),
                                                      "observer": observer, "norad_cat_id": 99999,
                                                      "app_source": "network"},
                         st.binary(min_size=1, max_size=300), UTC_TIMES,
                         st.from_regex(r"[A-Z0-9]{3,6}-[A-R]{2}[0-9]{2}[a-x]{2}", fullmatch=True))
bad_records = st.one_of(
    JSON_VALUES.filter(lambda v: not isinstance(v, dict)),
    st.fixed_dictionaries({"frame": JSON_VALUES.filter(lambda v: not isinstance(v, str)), "timestamp": st.just("2021-01-05T22:28:09Z")}),
    st.fixed_dictionaries({"frame": st.just("zz00"), "timestamp": st.just("2021-01-05T22:28:09Z")}),
    st.fixed_dictionaries({"frame": st.just("C0FFEE"), "timestamp": st.text(alphabet="xyz: ", max_size=10)}),
    st.fixed_dictionaries({"frame": st.just(""), "timestamp": st.just("2021-01-05T22:28:09Z")}),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), good_records, bad_records), max_size=12), st.booleans())
def test_every_good_record_is_read_and_every_bad_one_named(entries: list[tuple[bool, dict[str, Any], Any]],
                                                           paged: bool) -> None:
    records = [good if is_good else bad for is_good, good, bad in entries]
    text = json.dumps({"count": len(records), "next": None, "results": records} if paged else records)
    parsed = parse_export(text)
    expected = [(n, r) for n, r in enumerate(records, start=1) if isinstance(r, dict) and "observer" in r]
    assert [(f.entry, f.raw, f.site) for f in parsed.frames] == [
        (n, bytes.fromhex(r["frame"]), f"satnogs:{r['observer']}") for n, r in expected]
    for frame, (_, record) in zip(parsed.frames, expected, strict=True):
        assert frame.utc == pytest.approx(dt.datetime.fromisoformat(record["timestamp"]).timestamp(), abs=1e-6)
    bad_numbers = [n for n, r in enumerate(records, start=1) if not (isinstance(r, dict) and "observer" in r)]
    assert [p.split(":")[0] for p in parsed.problems] == [f"entry {n}" for n in bad_numbers]


garbage_lines = st.text(alphabet=st.characters(blacklist_characters="|\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
                        min_size=1, max_size=40).filter(lambda s: bool(s.strip()))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(min_size=1, max_size=80), UTC_TIMES, garbage_lines), max_size=12))
def test_the_text_form_keeps_good_lines_among_garbage(lines: list[tuple[bool, bytes, dt.datetime, str]]) -> None:
    text = "\n".join(f"{when:%Y-%m-%d %H:%M:%S}|{raw.hex()}" if good else junk for good, raw, when, junk in lines)
    if text.lstrip().startswith(("[", "{")):
        return  # a garbage first line that looks like JSON: the JSON reader's case
    parsed = parse_export(text)
    assert [f.raw for f in parsed.frames] == [raw for good, raw, _, _ in lines if good]
    assert len(parsed.problems) == sum(not good for good, *_ in lines)
    assert all(f.site == "satnogs" for f in parsed.frames)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | JSON_VALUES.map(json.dumps))
def test_arbitrary_text_never_crashes_the_reader(text: str) -> None:
    try:
        parsed = parse_export(text)
    except SatnogsFormatError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(isinstance(p, str) and "\n" not in p for p in parsed.problems)


def _beacon(seconds: float, volts: float) -> bytes:
    packet = beacon.build_packet(PacketBuilder(240), "UN0SAT", TimeStamp(2, seconds),
                                 {"battery_voltage": volts, "mode": 2, "uplink_counter": 0})
    return ax25.UiFrame(GND, SAT, packet).encode()


async def test_import_archives_our_frames_tagged_with_the_observer_and_names_the_bad(tmp_path: Path) -> None:
    config = _config(tmp_path, _free_port())
    db = tmp_path / "mission.sqlite3"
    frames = [_beacon(10.0 * i, 7.0 + i / 10) for i in range(3)]
    foreign = ax25.UiFrame(ax25.Address("CQ"), ax25.Address("N0CALL"), b"hello").encode()
    records: list[Any] = [
        {"frame": frames[0].hex().upper(), "timestamp": "2026-12-01T10:00:00Z", "observer": "KB9JHU-EM69uf"},
        {"frame": "not hex", "timestamp": "2026-12-01T10:00:01Z", "observer": "KB9JHU-EM69uf"},
        {"frame": frames[1].hex(), "timestamp": "2026-12-01T10:00:10.5Z", "observer": "SV1IYO-KM18", "station_id": 4},
        {"timestamp": "2026-12-01T10:00:11Z"},
        {"frame": foreign.hex(), "timestamp": "2026-12-01T10:00:12Z", "observer": "SV1IYO-KM18"},
        {"frame": frames[2].hex(), "timestamp": "yesterday", "observer": "SV1IYO-KM18"},
    ]
    export = tmp_path / "satnogs.json"
    export.write_text(json.dumps({"results": records}))
    cmd = ["ground", "import-satnogs", str(export), "--config", str(config), "--db", str(db)]
    first = await run_cli(*cmd, cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    assert "3 frames read, 3 new in the archive, 0 already there; 1 from other stations" in first.stdout
    assert "entry 2: frame is not hex" in first.stderr and "entry 4: no hex frame" in first.stderr
    assert "entry 6: timestamp 'yesterday' is not ISO 8601" in first.stderr
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT raw, station, rx_time, note FROM frames ORDER BY id").fetchall()
        volts = conn.execute("SELECT value, rx_time FROM vals WHERE name = 'beacon.battery_voltage'").fetchall()
    assert [(bytes(r[0]), r[1]) for r in rows] == [(frames[0], "satnogs:KB9JHU-EM69uf"),
                                                  (frames[1], "satnogs:SV1IYO-KM18"), (foreign, "satnogs:SV1IYO-KM18")]
    assert rows[0][2] == dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC).timestamp()
    assert rows[2][3] == "foreign N0CALL"
    assert [v for v, _ in volts] == pytest.approx([7.0, 7.1])
    # the same export again, and a text export of a frame already archived: receptions only
    lines = tmp_path / "satnogs.txt"
    lines.write_text(f"2026-12-01 10:00:00|{frames[0].hex()}\n")
    again = await run_cli(*cmd, cwd=tmp_path)
    assert "3 frames read, 0 new in the archive, 3 already there" in again.stdout, again.stdout
    text = await run_cli("ground", "import-satnogs", str(lines), "--config", str(config), "--db", str(db), cwd=tmp_path)
    assert text.returncode == 0 and "1 frames read, 0 new in the archive, 1 already there" in text.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == 3
        heard = conn.execute("SELECT station FROM receptions WHERE frame_id = 1 ORDER BY id").fetchall()
    assert heard == [("satnogs:KB9JHU-EM69uf",), ("satnogs",)]
    unusable = tmp_path / "broken.json"
    unusable.write_text('{"detail": "Invalid token."}')
    bad = await run_cli("ground", "import-satnogs", str(unusable), "--db", str(db), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "neither a list" in bad.stderr
