"""Contact-aware downlink: the onboard pass prediction agrees with the simulator's geometry, and
the link sends beacons only out of a predicted pass, everything (and a playback) in one."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from flightsw.app import Satellite
from flightsw.core.commands import Completion
from flightsw.ground.archive import Archive
from flightsw.ground.dictionary import GroundDictionary
from flightsw.ground.records import RecordIngest
from flightsw.ground.station import GroundStation, TcpKiss
from flightsw.link import ax25
from flightsw.link.auth import KeyRing
from flightsw.link.contact import ContactManager
from flightsw.link.passes import PassPredictor, Station, TleError
from flightsw.link.subsystem import SIM_TRANSCEIVER, build_link
from flightsw.testing import mission_config
from sim.environment.contacts import ALMATY, StationGeometry
from sim.environment.orbit import Orbit, sso_tle

from .harness import LINK_TOML, Probe, ground_pass, link_of

TLE = sso_tle()
STATION = Station("almaty", ALMATY.lat_deg, ALMATY.lon_deg, ALMATY.alt_m, 5.0)


def test_predicted_passes_match_the_simulated_geometry() -> None:
    predictor = PassPredictor(*TLE)
    start = predictor.epoch
    passes = predictor.passes([STATION], start, 86400.0)
    assert 4 <= len(passes) <= 7
    orbit = Orbit.from_tle(*TLE)
    geometry = StationGeometry(ALMATY)
    for p in passes:
        assert 120.0 < p.los - p.aos < 900.0
        for t in (p.aos, p.los):  # the simulator sees the satellite cross the 5 deg mask there too
            elevation = geometry.view(orbit.state(t).r_ecef_km).elevation_deg
            assert abs(elevation - 5.0) < 0.3, (t, elevation)
        middle = geometry.view(orbit.state((p.aos + p.los) / 2).r_ecef_km).elevation_deg
        assert abs(middle - p.max_elevation_deg) < 2.0


def test_bad_tles_are_refused_with_the_reason() -> None:
    line1, line2 = TLE
    with pytest.raises(TleError, match="checksum"):
        PassPredictor(line1[:-1] + str((int(line1[-1]) + 1) % 10), line2)
    with pytest.raises(TleError, match="69"):
        PassPredictor(line1[:40], line2)


async def test_out_of_contact_only_beacons_go_and_withheld_airtime_is_counted(tmp_path: Path) -> None:
    async with ground_pass(tmp_path) as (sat, _probe, station):
        link = link_of(sat)
        await asyncio.sleep(0.5)
        link.set_contact(False)
        before = (station.stats.housekeeping, station.stats.beacons)
        for _ in range(3):
            link.send_beacon()
        assert await station.wait_until(lambda: station.stats.beacons >= before[1] + 3, 5.0)
        await asyncio.sleep(1.5)  # 4 Hz housekeeping keeps being produced (and recorded)
        assert station.stats.housekeeping - before[0] <= 1  # at most one frame already on the air
        assert link.contact_stats["packets_withheld"] > 4 and link.airtime_saved_s > 0
        assert link.contact_stats["frames_out_of_contact"] >= 3
        assert link.contact_stats["frames_out_of_contact_other"] == 0
        # a command still gets its verdict out of contact (the operator must learn what ran)
        reply = await station.command("probe.SET_TARGET", {"value": "7"}, timeout=5.0)
        assert reply is not None and reply.completion == Completion.SUCCESS
        link.set_contact(False, silent=True)  # silent: not even a beacon
        frames = station.stats.frames_received
        link.send_beacon()
        await asyncio.sleep(1.0)
        assert station.stats.frames_received == frames
        link.set_contact(True)
        assert await station.wait_until(lambda: station.stats.housekeeping > before[0] + 3, 5.0)


CONTACT_TOML = """
[contact]
out_of_contact = "{mode}"
margin_s = 0.0
housekeeping_divisor = 4
tle = ["{line1}", "{line2}"]
[[contact.stations]]
name = "almaty"
lat_deg = {lat}
lon_deg = {lon}
alt_m = {alt}
min_elevation_deg = 5.0
"""


@pytest.mark.parametrize("mode", ["beacon", "silent"])
async def test_a_predicted_pass_switches_the_downlink_and_starts_a_playback(tmp_path: Path, mode: str) -> None:
    predictor = PassPredictor(*TLE)
    first = predictor.passes([STATION], predictor.epoch, 86400.0)[0]
    # the satellite's UTC: 3 s before the first predicted AOS when the test starts
    offset = first.aos - 3.0 - time.time()
    toml = LINK_TOML.format(loss=0.0) + CONTACT_TOML.format(
        mode=mode, line1=TLE[0], line2=TLE[1], lat=STATION.lat_deg, lon=STATION.lon_deg, alt=STATION.alt_m)
    config = mission_config(tmp_path, toml)
    sat = await asyncio.to_thread(lambda: Satellite(config, subsystems=[build_link, lambda s: s.add(Probe())],
                                                    utc_source=lambda: time.time() + offset))
    runner = asyncio.create_task(sat.run())
    transport = None
    archive = None
    try:
        transceiver = sat.ports.require(SIM_TRANSCEIVER)
        while transceiver._server is None:
            await asyncio.sleep(0.01)
        contact = sat.component("contact")
        assert isinstance(contact, ContactManager)
        assert sat.dictionary is not None
        dictionary = await asyncio.to_thread(lambda: GroundDictionary.from_json(sat.dictionary.to_json()))
        transport = TcpKiss("127.0.0.1", transceiver.bound_port)
        await transport.connect()
        archive = await asyncio.to_thread(Archive, tmp_path / "ground.sqlite3")
        station = GroundStation(dictionary, KeyRing.load(link_of(sat).settings.key_file), 0,
                                ground=ax25.Address.parse("UN0GND"), satellite=link_of(sat).settings.callsign,
                                archive=archive, transport=transport)
        ingest = RecordIngest(archive, station.wall_clock).attach(station)
        receiver = asyncio.create_task(station.run())
        await asyncio.sleep(1.0)
        assert link_of(sat).in_contact is False and sat.telemetry.packet_divisor == 4
        assert station.stats.housekeeping == 0  # before AOS: nothing but beacons
        if mode == "silent":  # not even beacons (the one queued at boot, before the first plan, went)
            beacons = station.stats.beacons
            link_of(sat).send_beacon()
            await asyncio.sleep(0.5)
            assert station.stats.beacons == beacons and beacons <= 1
        async with asyncio.timeout(10.0):
            while link_of(sat).in_contact is not True:
                await asyncio.sleep(0.05)
        assert sat.telemetry.packet_divisor == 1 and contact.stats["passes_started"] == 1
        assert contact.stats["predictions"] >= 1
        # the pass starts a playback of what was recorded out of contact
        assert await station.wait_until(lambda: ingest.stats.played_back > 0, 10.0)
        assert await station.wait_until(lambda: station.stats.housekeeping > 0, 5.0)
        receiver.cancel()
    finally:
        if transport is not None:
            await transport.close()
        sat.stop_event.set()
        await runner
        if archive is not None:
            await asyncio.to_thread(archive.close)


@pytest.mark.parametrize(("toml", "message"), [
    ('[contact]\ntle = ["1 only one line"]\n', "tle: expected the two TLE lines"),
    ('[contact]\nreplan_h = 30\nhorizon_h = 24\n', "replan_h: must not exceed horizon_h"),
    ('[contact]\nout_of_contact = "loud"\n', "contact.out_of_contact"),
    ('[[contact.stations]]\nname = "a"\nlat_deg = 95\nlon_deg = 0\n', "lat_deg"),
])
def test_bad_contact_sections_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    from flightsw.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        mission_config(tmp_path, toml)


def test_contact_without_stations_stops_the_build(tmp_path: Path) -> None:
    from flightsw.config import ConfigError

    config = mission_config(tmp_path, LINK_TOML.format(loss=0.0) + "[contact]\n")
    with pytest.raises(ConfigError, match="contact.stations: at least one ground station"):
        Satellite(config, subsystems=[build_link])
