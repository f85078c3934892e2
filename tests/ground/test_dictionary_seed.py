"""`flightsw ground send` starts a new station each time: the flight dictionary's hash archived from
an earlier beacon is what lets it refuse a command before any beacon of this session arrives."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from flightsw.ground.archive import Archive
from flightsw.ground.connect import open_station
from flightsw.ground.dictionary import DictionaryMismatch
from flightsw.link.auth import KeyRing

ROOT = Path(__file__).resolve().parents[2]


def _prepare(tmp_path: Path, flight_hash: int) -> argparse.Namespace:
    config = tmp_path / "sim.toml"
    config.write_text((ROOT / "deploy" / "sim.toml").read_text().replace(
        'data_dir = "var/sim"', f'data_dir = "{tmp_path / "sat"}"'))
    KeyRing.generate(tmp_path / "keys")
    from flightsw.cli_run import dictionary_text
    from flightsw.config import load

    # exported beforehand, as a ground station does (building it here would hold the test's loop)
    (tmp_path / "dictionary.json").write_text(dictionary_text(load(config), "json"))
    archive = Archive(tmp_path / "ground.sqlite3")
    archive.call_blocking(archive.store_frame, 1000.0, "down", b"", "",
                          [("beacon", "beacon.dictionary_hash", flight_hash, "", 3, 5.0)], [], [])
    archive.close()
    return argparse.Namespace(config=str(config), dictionary=str(tmp_path / "dictionary.json"), key_file=str(tmp_path / "keys"), key_id=0,
                              serial=None, baud=9600, db=str(tmp_path / "ground.sqlite3"), callsign=None)


async def test_an_archived_mismatching_hash_makes_a_fresh_station_check_before_sending(tmp_path: Path) -> None:
    received: list[bytes] = []

    async def tnc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(4096):
            received.append(chunk)
        writer.close()

    server = await asyncio.start_server(tnc, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    args = await asyncio.to_thread(_prepare, tmp_path, 0x12345678)
    args.kiss = f"127.0.0.1:{port}"
    station = await open_station(args)
    try:
        assert station.dictionary_check.mismatch
        assert any(name == "ground.dictionary_mismatch" for _t, _s, name, _x in station.recent_events)
        # the satellite never answers the check here: unconfirmed, so refused, and never signed
        with pytest.raises(DictionaryMismatch, match="not yet confirmed"):
            await station.command("link.SEND_BEACON_NOW", {}, timeout=0.2, retries=0)
        assert station.stats.commands_sent == 1  # only cmd.CHECK_COMMAND went out
    finally:
        await station.transport.close()
        await asyncio.to_thread(station.archive.close)
        server.close()
        await server.wait_closed()


async def test_an_archived_matching_hash_changes_nothing(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    args = await asyncio.to_thread(_prepare, tmp_path, 0)
    args.kiss = f"127.0.0.1:{port}"
    station = await open_station(args)
    try:
        ours = station.dictionary.short_hash
        assert ours is not None
        station.note_flight_dictionary(ours, 2000.0)
        assert not station.dictionary_check.mismatch
        assert not station.dictionary_check.needs_check("link.SEND_BEACON_NOW")
    finally:
        await station.transport.close()
        await asyncio.to_thread(station.archive.close)
        server.close()
        await server.wait_closed()
