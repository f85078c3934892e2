"""Several ground stations, one archive: two sites, each with its own simulated radio and KISS TCP
connection, archive what they hear into one SQLite file. A frame both heard is stored once (the
first reception, with its values) and the other site is recorded as a reception."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from flightsw.config import load
from flightsw.config_check import offline_dictionary
from flightsw.ground.archive import Archive
from flightsw.ground.dictionary import GroundDictionary
from flightsw.ground.station import GroundStation, TcpKiss
from flightsw.link import ax25, beacon
from flightsw.link.packets import PacketBuilder, TimeStamp
from hal import kiss
from sim.transceiver import ChannelModel, SimTransceiver

ROOT = Path(__file__).resolve().parents[2]
SAT = ax25.Address("UN0SAT", 1)
GND = ax25.Address("UN0GND")


@pytest.fixture(scope="module")
def dictionary() -> Iterator[GroundDictionary]:
    with offline_dictionary(load(ROOT / "deploy" / "sim.toml")) as d:
        yield GroundDictionary.from_json(d.to_json())


def beacon_frame(builder: PacketBuilder, seconds: float, volts: float) -> bytes:
    packet = beacon.build_packet(builder, "UN0SAT", TimeStamp(1, seconds),
                                 {"battery_voltage": volts, "mode": 2, "uplink_counter": 0})
    return ax25.UiFrame(GND, SAT, packet).encode()


async def test_two_sites_feed_one_archive_without_duplicates(dictionary: GroundDictionary, tmp_path: Path) -> None:
    db = tmp_path / "mission.sqlite3"
    radios = {site: SimTransceiver(ChannelModel(bit_rate=1_000_000, propagation_delay=0.0), port=0)
              for site in ("almaty", "second")}
    stations: dict[str, GroundStation] = {}
    tasks = []
    for site, radio in radios.items():
        await radio.start()
        transport = TcpKiss("127.0.0.1", radio.bound_port)
        await transport.connect()
        archive = await asyncio.to_thread(Archive, db)  # one connection each, as two processes have
        # the second site's clock runs 3 s ahead: still the same transmission
        offset = 3.0 if site == "second" else 0.0
        stations[site] = GroundStation(dictionary, keys=None, key_id=0, ground=GND, satellite=SAT,  # type: ignore[arg-type]
                                       archive=archive, transport=transport, site=site,
                                       wall_clock=lambda offset=offset: 1_000_000.0 + offset)
        tasks.append(asyncio.create_task(stations[site].run()))
    builder = PacketBuilder(240)
    # the satellite over both sites, then over the second one only
    both = [beacon_frame(builder, 100.0 + i, 7.0 + i / 10) for i in range(5)]
    second_only = [beacon_frame(builder, 200.0 + i, 8.0) for i in range(2)]
    plan = [(frame, ("almaty", "second")) for frame in both] + [(frame, ("second",)) for frame in second_only]
    try:
        for frame, sites in plan:
            for site in sites:
                slave = radios[site]._slave
                assert slave is not None
                os.write(slave, kiss.encode(frame))
        for site, expected in (("almaty", 5), ("second", 7)):
            station = stations[site]
            assert await station.wait_until(lambda s=station, n=expected: s.stats.frames_received >= n, 10.0)
        # both archive connections have committed every write (each waits for its own)
        for station in stations.values():
            await station.archive.call(lambda: None)
    finally:
        for task in tasks:
            task.cancel()
        for site, station in stations.items():
            await station.transport.close()
            await asyncio.to_thread(station.archive.close)
            await radios[site].stop()
    with sqlite3.connect(db) as conn:
        frames = conn.execute("SELECT id, raw, station FROM frames WHERE direction = 'down' ORDER BY id").fetchall()
        receptions = conn.execute("SELECT frame_id, station, rx_time FROM receptions").fetchall()
        voltages = conn.execute("SELECT value FROM vals WHERE name = 'beacon.battery_voltage'").fetchall()
    assert sorted(bytes(r[1]) for r in frames) == sorted(both + second_only)  # each transmission once
    by_raw = {bytes(raw): (fid, site) for fid, raw, site in frames}
    for frame in second_only:
        assert by_raw[frame][1] == "second"
    heard_by = {fid: {site} for fid, _, site in frames}
    for fid, site, _ in receptions:
        heard_by[fid].add(site)
    for frame in both:  # the first reception kept, the other site recorded
        assert heard_by[by_raw[frame][0]] == {"almaty", "second"}
    assert len(receptions) == len(both)
    assert len(voltages) == len(both) + len(second_only)  # values not doubled
    assert stations["almaty"].stats.frames_duplicate + stations["second"].stats.frames_duplicate == len(both)


async def test_an_older_archive_gains_the_station_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:  # the frame table as archives before several stations had it
        conn.execute("CREATE TABLE frames (id INTEGER PRIMARY KEY, rx_time REAL NOT NULL, "
                     "direction TEXT NOT NULL, raw BLOB NOT NULL, note TEXT)")
        conn.execute("INSERT INTO frames(rx_time, direction, raw, note) VALUES (1.0, 'down', x'00', '')")
    archive = await asyncio.to_thread(Archive, path)
    try:
        first = await archive.call(archive.store_downlink, 5.0, "down", b"abc", "", [], [], [], "almaty")
        again = await archive.call(archive.store_downlink, 900.0, "down", b"abc", "", [], [], [], "other")
        later = await archive.call(archive.store_downlink, 2000.0, "down", b"abc", "", [], [], [], "other")
        rows = await archive.call(archive.query, "SELECT station FROM frames ORDER BY id")
    finally:
        await asyncio.to_thread(archive.close)
    assert not first.duplicate and again.duplicate and again.frame_id == first.frame_id
    assert not later.duplicate  # outside the window: a new transmission with the same bytes
    assert rows == [("",), ("almaty",), ("other",)]
