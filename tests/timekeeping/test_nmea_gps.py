"""NMEA time sentences: parser (examples, checksum, fuzz) and the simulated GPS over a real pty
feeding the real driver and the GPS time component."""

from __future__ import annotations

import asyncio
import calendar
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightsw.app import Satellite
from flightsw.components.gps_time import GpsTime, build_gps_time
from flightsw.core.enums import TimeQuality
from flightsw.testing import mission_config, wait_until
from hal.gps import NmeaGps
from hal.nmea import MAX_SENTENCE, NmeaError, SentenceSplitter, checksum, parse, sentence
from hal.serial_port import AsyncSerialPort
from sim.gps import SimGps, rmc, zda
from sim.virtual_time import VirtualTimeLoop

EPOCH = calendar.timegm((2026, 6, 1, 12, 34, 56))


# -- parser -----------------------------------------------------------------------------------
def test_a_receivers_rmc_and_zda_give_utc() -> None:
    # sentences as a u-blox receiver prints them (checksums computed by the receiver)
    fix = parse(b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n")
    assert fix is not None and fix.sentence == "RMC" and fix.valid
    assert fix.utc == calendar.timegm((1994, 3, 23, 12, 35, 19))
    fix = parse(b"$GPZDA,201530.00,04,07,2002,00,00*60")
    assert fix is not None and fix.utc == calendar.timegm((2002, 7, 4, 20, 15, 30))
    assert parse(b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47") is None  # not time


def test_a_void_rmc_is_not_a_valid_fix() -> None:
    fix = parse(rmc(EPOCH, valid=False))
    assert fix is not None and not fix.valid


@pytest.mark.parametrize(("line", "problem"), [
    (b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6B", "checksum 6B does not match 6A"),
    (b"GPRMC,123519,A*00", "not a '$ttsss,...*hh' sentence"),
    (sentence("GP", "RMC", ["123519", "A", "", "", "", "", "", "", "320194", "", ""]), "date 1994-01-32 does not exist"),
    (sentence("GP", "RMC", ["256199", "A", "", "", "", "", "", "", "230394", "", ""]), "time '256199' out of range"),
    (sentence("GP", "ZDA", ["201530.00", "04", "13", "2002", "00", "00"]), "date 2002-13-04 does not exist"),
    (sentence("GP", "ZDA", ["201530.00", "04", "07"]), "ZDA has 3 fields"),
    (sentence("GP", "RMC", ["1235", "A", "", "", "", "", "", "", "230394", "", ""]), "is not hhmmss"),
    (b"$GPZDA," + b"1" * 90 + b"*00", "longer than NMEA allows"),
])
def test_bad_sentences_name_their_problem(line: bytes, problem: str) -> None:
    with pytest.raises(NmeaError, match=re.escape(problem)):
        parse(line)


@pytest.mark.parametrize("utc", [EPOCH, EPOCH + 0.25, calendar.timegm((2031, 12, 31, 23, 59, 59))])
def test_the_simulated_receivers_sentences_parse_back(utc: float) -> None:
    for line, kind in ((rmc(utc, (43.2, -76.9)), "RMC"), (zda(utc), "ZDA")):
        fix = parse(line)
        assert fix is not None and fix.sentence == kind and abs(fix.utc - utc) < 0.006


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_either_parse_or_raise_nmea_error(data: bytes) -> None:
    try:
        parse(data)
    except NmeaError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=4_000_000_000), st.integers(0, 79), st.integers(1, 255))
def test_a_corrupted_byte_never_gives_a_wrong_fix(seconds: int, position: int, flip: int) -> None:
    """One corrupted byte in a good sentence: rejected (NmeaError) or, when the XOR checksum
    cannot see it, at worst still a well-formed fix; never an exception of another kind."""
    line = bytearray(zda(float(seconds)).strip())
    position %= len(line)
    line[position] ^= flip
    try:
        parse(bytes(line))
    except NmeaError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=20))
def test_the_splitter_is_bounded_and_finds_sentences_in_noise(chunks: list[bytes]) -> None:
    splitter = SentenceSplitter()
    good = zda(EPOCH)
    lines = []
    for chunk in [*chunks, b"\n", good]:
        lines.extend(splitter.feed(chunk))
        assert len(splitter._buffer) <= MAX_SENTENCE + 40
    assert good in lines  # after any noise and a line end, a whole sentence comes through


def test_the_simulated_rmc_carries_the_sub_satellite_point() -> None:
    fields = rmc(EPOCH, (43.2, -76.9)).decode().split(",")
    assert fields[3:7] == ["4312.0000", "N", "07654.0000", "W"]


def test_checksum_is_the_xor_between_dollar_and_star() -> None:
    assert checksum(b"GPZDA,201530.00,04,07,2002,00,00") == 0x60


# -- simulated receiver on a pty, real driver ------------------------------------------------
async def test_simulated_gps_over_a_real_pty_feeds_the_real_driver(tmp_path: Path) -> None:
    now = [EPOCH]
    gps = SimGps(tmp_path / "gps.tty", lambda: now[0], period_s=0.05)
    service = asyncio.create_task(gps.run())
    try:
        while not (tmp_path / "gps.tty").exists():  # noqa: ASYNC110 (the pty opens on the service's first step)
            await asyncio.sleep(0.01)
        driver = NmeaGps(AsyncSerialPort(str(tmp_path / "gps.tty"), 9600))
        fixes = []
        async with asyncio.timeout(5.0):
            async for fix in driver.fixes():
                fixes.append(fix)
                now[0] += 1.0
                if len(fixes) >= 4:
                    break
        await driver.close()
    finally:
        service.cancel()
        await asyncio.gather(service, return_exceptions=True)
    assert {f.sentence for f in fixes} == {"RMC", "ZDA"}
    assert all(f.valid and EPOCH <= f.utc <= EPOCH + 10 for f in fixes)
    assert driver.bad_sentences == 0


GPS_TOML = """
[[devices]]
name = "gps"
kind = "gps"
backend = "sim"
period_s = 1.0
offset_s = {offset}

[time]
gps_step_threshold_s = 0.5
gps_max_step_s = {max_step}
"""


async def gps_satellite(data_dir: Path, truth: Callable[[], float], offset: float = 0.0,
                        max_step: float = 0.0) -> Satellite:
    """A satellite with a simulated GPS reading ``truth()`` (+ ``offset``) on a pty and the GPS
    time component on the real driver, and no UTC source of its own: its UTC is UNKNOWN until the
    GPS sets it. Built off the loop, as in flight; the virtual clock waits for the pty's bytes."""
    config = mission_config(data_dir, GPS_TOML.format(offset=offset, max_step=max_step))
    device = str(data_dir / "gps.tty")
    receiver = SimGps(device, truth, period_s=1.0, offset_s=offset)
    port = AsyncSerialPort(device, 9600)

    def build() -> Satellite:
        sat = Satellite(config, subsystems=[])
        sat.supervisor.add_service("sim.gps", receiver.run, critical=False)
        sat.add(GpsTime(NmeaGps(port), config.time.gps_step_threshold_s, config.time.gps_max_step_s))
        sat.finalize()
        return sat

    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    loop.add_io_arrival_check(lambda: max(0, receiver.bytes_written - port.bytes_read - receiver.readable())
                              if port.connected else 0)
    return await asyncio.to_thread(build)


def truth_clock() -> Callable[[], float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    return lambda: EPOCH + loop.time() - start


def test_the_gps_subsystem_builds_a_simulated_receiver_and_the_component(tmp_path: Path) -> None:
    config = mission_config(tmp_path, GPS_TOML.format(offset=0.0, max_step=0.0))
    sat = Satellite(config, subsystems=[build_gps_time], utc_source=lambda: EPOCH)
    try:
        assert isinstance(sat.component("gps"), GpsTime)
        assert "sim.gps" in sat.supervisor.services
    finally:
        sat.workers.shutdown()


def gps_of(sat: Satellite) -> GpsTime:
    comp = sat.component("gps")
    assert isinstance(comp, GpsTime)
    return comp


@pytest.mark.virtual_time
async def test_a_gps_fix_sets_spacecraft_utc(tmp_path: Path, sat_runner) -> None:  # type: ignore[no-untyped-def]
    truth = truth_clock()
    sat = await sat_runner.start(await gps_satellite(tmp_path, truth))
    assert sat.clock.quality is TimeQuality.UNKNOWN
    gps = gps_of(sat)
    await wait_until(lambda: gps.stats["fixes"] >= 6, limit=10.0, poll=0.25)
    utc = sat.clock.utc()
    assert sat.clock.quality is TimeQuality.GPS
    assert utc is not None and abs(utc - truth()) < 0.1  # the sentence's time, read at once
    assert gps.stats["steps"] == 1  # later fixes agree: no further step
    await sat_runner.stop(sat)
    # persisted at once: the next boot carries the GPS time over (DEGRADED)
    from flightsw.core.timekeeping import STATE_KEY, TimeCheckpoint

    point = TimeCheckpoint.from_dict(sat.state.get(STATE_KEY))
    assert point is not None and point.quality is TimeQuality.GPS and point.utc is not None
    assert abs(point.utc - EPOCH) < 15.0


@pytest.mark.virtual_time
async def test_a_gps_fix_far_from_ground_time_is_refused(tmp_path: Path, sat_runner) -> None:  # type: ignore[no-untyped-def]
    sat = await sat_runner.start(await gps_satellite(tmp_path, truth_clock(), offset=7 * 86400.0, max_step=100.0))
    assert sat.dictionary is not None
    sat.commands.submit(sat.dictionary.command("exec.SET_TIME").id, [EPOCH])
    gps = gps_of(sat)
    await wait_until(lambda: sat.clock.quality is TimeQuality.GROUND_SET, limit=5.0)
    steps = gps.stats["steps"]
    await wait_until(lambda: gps.stats["refused"] >= 3, limit=10.0)
    assert gps.stats["steps"] == steps  # refused fixes never step a ground-set time
    utc = sat.clock.utc()
    assert sat.clock.quality is TimeQuality.GROUND_SET and utc is not None and abs(utc - EPOCH) < 10.0
