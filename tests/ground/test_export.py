"""`flightsw ground export` of events and the command history (CSV and JSON), station options
after the subcommand, and no key-file warning from building the dictionary: real processes
against `flightsw sim`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .test_ground_cli import _config, _free_port, run_cli, running_sim


async def test_export_events_and_command_history_with_options_after_the_subcommand(tmp_path: Path) -> None:
    port = _free_port()
    config = _config(tmp_path, port)
    station = ["--config", str(config), "--kiss", f"127.0.0.1:{port}", "--db", str(tmp_path / "g.sqlite3")]
    async with running_sim(tmp_path, config, port, duration=60):
        # the station options after the subcommand, as an operator types them
        ok = await run_cli("ground", "send", "link.SET_BEACON_PERIOD", "value=45", *station, cwd=tmp_path)
        assert ok.returncode == 0, ok.stderr
        assert "link.SET_BEACON_PERIOD #1: SUCCESS" in ok.stdout
        refused = await run_cli("ground", "send", "modes.SET_MODE", "mode=BOOT", *station, cwd=tmp_path)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        # before and after together
        noop = await run_cli("ground", *station[:2], "send", "link.SEND_BEACON_NOW", *station[2:], cwd=tmp_path)
        assert noop.returncode == 0 and "link.SEND_BEACON_NOW #3: SUCCESS" in noop.stdout, noop.stderr
        for result in (ok, refused, noop):  # the dictionary is built on a scratch key, silently
            assert "uplink key" not in result.stderr, result.stderr
    db = ["--db", str(tmp_path / "g.sqlite3")]
    commands = await run_cli("ground", "export", "--since", "600", "--what", "commands", "--csv", *db, cwd=tmp_path)
    assert commands.returncode == 0, commands.stderr
    rows = list(csv.DictReader(io.StringIO(commands.stdout)))
    assert [(r["counter"], r["name"], r["verdict"], r["completion"]) for r in rows] == [
        ("1", "link.SET_BEACON_PERIOD", "OK", "SUCCESS"),
        ("2", "modes.SET_MODE", *((rows[1]["verdict"], rows[1]["completion"]))),
        ("3", "link.SEND_BEACON_NOW", "OK", "SUCCESS")]
    assert (rows[1]["verdict"], rows[1]["completion"]) != ("OK", "SUCCESS")  # the refusal, as it came
    assert json.loads(rows[0]["args"]) == {"value": "45"} and rows[0]["tx_time_utc"].endswith("Z")
    everything = await run_cli("ground", "export", "--since", "600", "--what", "all", "--json", *db, cwd=tmp_path)
    assert everything.returncode == 0, everything.stderr
    doc = json.loads(everything.stdout)
    assert set(doc) == {"values", "events", "commands"}
    assert [c["name"] for c in doc["commands"]] == ["link.SET_BEACON_PERIOD", "modes.SET_MODE", "link.SEND_BEACON_NOW"]
    assert doc["commands"][0]["args"] == {"value": "45"}
    assert any(e["name"] == "cmd.executed" and "link.SEND_BEACON_NOW" in e["text"] for e in doc["events"])
    assert all(e["rx_time_utc"].endswith("Z") and e["severity"] for e in doc["events"])
    assert any(v["name"] == "beacon.callsign" and v["value"] == "UN0SAT" for v in doc["values"])
    events = await run_cli("ground", "export", "--since", "600", "--what", "events", *db, cwd=tmp_path)
    assert next(csv.reader(io.StringIO(events.stdout))) == ["rx_time_utc", "boot", "seconds_since_boot", "name",
                                                            "severity", "text"]
    mixed = await run_cli("ground", "export", "--since", "600", "--what", "all", "--csv", *db, cwd=tmp_path)
    assert mixed.returncode == 2 and mixed.stderr.strip() == "flightsw ground export: --what all needs --json (a CSV holds one table)"
