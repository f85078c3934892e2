"""Acceptance: the ground commands the satellite through a real pty and a real TCP socket."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flightsw.core.commands import Completion, Reason
from flightsw.link.auth import KeyRing
from flightsw.link.subsystem import SIM_TRANSCEIVER
from hal.serial_port import AsyncSerialPort

from .harness import ground_pass, link_of


async def test_command_executes_and_verdict_and_telemetry_come_back(tmp_path: Path) -> None:
    async with ground_pass(tmp_path) as (sat, probe, station):
        # The flight side really uses the serial driver on the pseudo-terminal.
        assert isinstance(link_of(sat).radio.serial, AsyncSerialPort)
        response = await station.command("probe.SET_TARGET", {"value": "321"}, timeout=5.0, retries=0)
        assert response is not None and response.completion == Completion.SUCCESS
        verdicts = [r for r in station.responses[1] if r.completion is None]
        assert verdicts and verdicts[0].reason == Reason.OK
        assert probe.count == 1
        ok = await station.wait_until(lambda: getattr(station.latest.get("probe.target"), "value", None) == 321, 10.0)
        assert ok, "changed telemetry did not come back"
        assert station.latest["probe.target"].unit == "degC"
        assert await station.wait_until(lambda: station.stats.beacons >= 1, 5.0)
        assert station.beacon["callsign"] == "UN0SAT"
        assert station.beacon["uplink_counter"] in (0, 1)
        # The next beacon names the last command: its full opcode goes down, the dictionary names it.
        link_of(sat).send_beacon()
        assert await station.wait_until(lambda: station.beacon.get("last_command_name") == "probe.SET_TARGET", 5.0)
        assert station.beacon["last_command_opcode"] == station.dictionary.commands["probe.SET_TARGET"].opcode > 0xFFFF
        assert station.beacon["last_command_status_name"] == "COMPLETED"
        # A command the dictionary rejects never leaves the ground.
        try:
            await station.send("probe.SET_TARGET", {"value": "999"})
        except ValueError as exc:
            assert "outside" in str(exc)
        else:
            raise AssertionError("out-of-range argument was sent")
    # Everything is archived with ground receive time.
    db = sqlite3.connect(tmp_path / "ground.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM frames WHERE direction='down'").fetchone()[0] >= 3
    assert db.execute("SELECT COUNT(*) FROM frames WHERE direction='up'").fetchone()[0] == 1
    assert db.execute("SELECT value FROM vals WHERE name='probe.target' ORDER BY id DESC").fetchone()[0] == 321
    assert db.execute("SELECT completion FROM responses WHERE seq=1 AND completion != ''").fetchone()[0] == "SUCCESS"


async def test_lossy_channel_beacons_arrive_and_resent_command_runs_once(tmp_path: Path) -> None:
    async with ground_pass(tmp_path, loss=0.2) as (sat, probe, station):
        link = link_of(sat)
        for _ in range(12):
            link.send_beacon()
        assert await station.wait_until(lambda: station.stats.beacons >= 3, 15.0)
        response = await station.command("probe.SET_TARGET", {"value": "42"}, timeout=1.5, retries=12)
        assert response is not None and response.completion == Completion.SUCCESS
        # The operator re-sends the very same packet a few more times: never executed again.
        transceiver = sat.ports.require(SIM_TRANSCEIVER)
        settled = link.stats["duplicates"] + transceiver.uplink.stats.frames_lost
        for _ in range(4):
            await station.resend()
        # each re-sent frame is either lost on the way up or recognised as a duplicate
        assert await station.wait_until(lambda: link.stats["duplicates"] >= 1 and (
            link.stats["duplicates"] + transceiver.uplink.stats.frames_lost >= settled + 4), 10.0)
        assert probe.count == 1
        assert link.stats["commands_executed"] == 1
        assert transceiver.downlink.stats.frames_lost + transceiver.uplink.stats.frames_lost > 0


async def test_uplink_counter_survives_restart_and_replay_after_reboot_fails(tmp_path: Path) -> None:
    captured: list[bytes] = []

    async with ground_pass(tmp_path) as (sat, probe, station):
        response = await station.command("probe.SET_TARGET", {"value": "7"}, timeout=5.0, retries=0)
        assert response is not None and response.completion == Completion.SUCCESS
        assert station._last_sent is not None
        captured.append(station._last_sent)

    async with ground_pass(tmp_path) as (sat, probe, station):  # after a reboot
        link = link_of(sat)
        await link.handle_frame(captured[0])
        assert probe.count == 0
        assert link.stats["replays"] == 1
        # MAC-valid, so the refusal tells the key holder the last counter accepted
        refused = [e for e in sat.events.recent if e.name == "link.counter_refused"]
        assert [(e.args["counter"], e.args["last"]) for e in refused] == [(1, 1)]
        response = await station.command("probe.SET_TARGET", {"value": "8"}, timeout=5.0, retries=0)
        assert response is not None and response.completion == Completion.SUCCESS
        assert response.seq == 2  # the ground's counter is persisted in its archive too
        assert KeyRing.load(link.settings.key_file).ids == [0, 1, 2, 3]
