"""Regression tests for the uplink hardening (issue 20): replay storms, header fields outside the
MAC, the counter window and per-key counters, and the ground's refusal near the end of a key."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgpack
import pytest

from flightsw.app import Satellite
from flightsw.core.commands import Completion
from flightsw.ground.archive import Archive
from flightsw.ground.dictionary import GroundDictionary
from flightsw.ground.station import CounterExhausted, GroundStation
from flightsw.link import ax25
from flightsw.link.auth import COUNTER_RESERVE, MAX_COUNTER, build_command
from flightsw.link.component import STATE_COUNTER, STATE_KEY_COUNTERS
from flightsw.link.packets import Apid, split_packets
from flightsw.link.subsystem import SIM_TRANSCEIVER
from flightsw.testing import SatelliteRunner, wait_until
from hal import kiss

from .harness import Probe, ground_pass, link_of


def _frame(sat: Satellite, info: bytes) -> bytes:
    s = link_of(sat).settings
    return ax25.UiFrame(s.callsign, s.ground, info).encode()


def _signed(sat: Satellite, name: str, args: list[Any], counter: int, key_id: int = 0) -> bytes:
    assert sat.dictionary is not None
    body = msgpack.packb([sat.dictionary.by_name[name].id, args])
    return build_command(link_of(sat).keys.key(key_id), key_id, counter, body)


def _set_target(sat: Satellite, counter: int, key_id: int = 0, value: int = 5) -> bytes:
    return _frame(sat, _signed(sat, "probe.SET_TARGET", [value], counter, key_id))


# -- A: replay storm ------------------------------------------------------------------------------
@pytest.mark.virtual_time(start=1000.0)
async def test_replay_storm_keeps_housekeeping_and_beacons_at_their_rates(link_sat: tuple[Satellite, Probe],
                                                                          sat_runner: SatelliteRunner) -> None:
    """Thousands of copies of one captured, MAC-valid command: housekeeping (4 Hz) and the beacon
    (every 60 s: the harness satellite is in SAFE mode) keep their rates and the cached responses are re-sent once per interval only."""
    sat, probe = await sat_runner.start(link_sat[0]), link_sat[1]
    storm_s, copy_period = 180.0, 0.05  # 3600 copies, 20 per second (the attack ran at 21/s)
    sent: list[tuple[float, list[int]]] = []
    loop = asyncio.get_running_loop()
    link = link_of(sat)
    original = link.scheduler._send_frame

    async def record(frame: bytes) -> None:
        packets, _ = split_packets(frame[ax25.HEADER_LEN:])
        sent.append((loop.time(), [p.apid for p in packets]))
        await original(frame)

    link.scheduler._send_frame = record
    captured = _set_target(sat, 1)
    await link.handle_frame(captured)
    await asyncio.sleep(2.0)
    assert probe.count == 1
    start = loop.time()
    copies = 0
    while loop.time() - start < storm_s:
        await link.handle_frame(captured)
        copies += 1
        await asyncio.sleep(copy_period)
    end = loop.time()
    sent[:] = [(t, apids) for t, apids in sent if start <= t < end]
    assert probe.count == 1, "a replayed command ran again"
    assert copies >= 3400 and link.stats["duplicates"] == copies
    apids = [a for _, frame_apids in sent for a in frame_apids]
    housekeeping = apids.count(Apid.HOUSEKEEPING)
    beacons = apids.count(Apid.BEACON)
    verdicts = apids.count(Apid.VERDICT)
    assert housekeeping >= 0.9 * 4.0 * storm_s, f"housekeeping starved: {housekeeping} packets in {storm_s} s"
    period = float(link_of(sat).beacon_period_safe.value)
    assert sat.state.get("mode") == "SAFE" and beacons >= int(storm_s / period), f"only {beacons} beacons in {storm_s} s"
    # verdict + completion, at most once per resend_interval (10 s) for the one counter
    assert verdicts <= 2 * (int(storm_s / 10.0) + 1), f"{verdicts} verdict packets re-sent"


# -- B: every single-bit flip ----------------------------------------------------------------------
async def test_no_single_bit_flip_of_a_command_frame_is_delivered(link_sat: tuple[Satellite, Probe],
                                                                  sat_runner: SatelliteRunner) -> None:
    """Every bit of the AX.25 header and of the packet flipped, one at a time (each on a fresh
    counter so an earlier delivery cannot hide a later one): nothing executes, and every header
    flip is counted under the field it hit."""
    sat, probe = await sat_runner.start(link_sat[0]), link_sat[1]
    link = link_of(sat)
    bits = len(_set_target(sat, 1)) * 8
    for bit in range(bits):
        flipped = bytearray(_set_target(sat, 1 + bit))
        flipped[bit // 8] ^= 1 << (bit % 8)
        await link.handle_frame(bytes(flipped))
    await asyncio.sleep(0.2)
    s = link.stats
    assert probe.count == 0 and s["commands_executed"] == 0, "a bit-flipped frame was delivered"
    header_bits = ax25.HEADER_LEN * 8
    assert s["frames_foreign"] == 7 * 8  # destination callsign, SSID, C and reserved bits, end bit
    assert s["frames_wrong_source"] == 7 * 8
    assert s["frames_wrong_control"] == 8 and s["frames_wrong_pid"] == 8
    assert s["auth_failures"] + s["crc_failures"] + s["malformed"] == bits - header_bits
    await link.handle_frame(_set_target(sat, bits + 1))  # the unflipped frame still works
    await wait_until(lambda: probe.count == 1)
    link.publish()
    assert link.frames_wrong_pid.value == 8


# -- D: a KISS flood through the simulated radio -----------------------------------------------------

async def test_after_a_kiss_flood_the_ground_commands_the_satellite_again(tmp_path: Path) -> None:
    """Another KISS client floods the simulated radio with 1500 frames (two minutes of airtime at
    9600 bit/s) in one burst; the operator's command, with the ground station's usual retries,
    still executes within seconds instead of after the flood has been transmitted."""
    async with ground_pass(tmp_path) as (sat, probe, station):
        xcvr = sat.ports.require(SIM_TRANSCEIVER)
        noise = ax25.UiFrame(ax25.Address("N0BODY"), ax25.Address("FLOOD"), bytes(100)).encode()
        _, writer = await asyncio.open_connection("127.0.0.1", xcvr.bound_port)
        try:
            writer.write(kiss.encode(noise) * 1500)
            await writer.drain()
            response = await station.command("probe.SET_TARGET", {"value": "42"}, timeout=3.0, retries=3)
            assert response is not None and response.completion == Completion.SUCCESS
            assert probe.count == 1
            assert xcvr.uplink.stats.frames_dropped_busy > 1000
            assert xcvr.uplink.queued_airtime() <= xcvr.channel.queue_frames * 0.1
        finally:
            writer.close()


# -- C: counter window, per-key counters, recovery ---------------------------------------------------
async def test_counter_jump_beyond_the_window_is_refused_visibly(link_sat: tuple[Satellite, Probe],
                                                                 sat_runner: SatelliteRunner) -> None:
    sat, probe = await sat_runner.start(link_sat[0]), link_sat[1]
    link = link_of(sat)
    await link.handle_frame(_set_target(sat, 1))
    await wait_until(lambda: probe.count == 1)
    await link.handle_frame(_set_target(sat, MAX_COUNTER))  # MAC-valid: a ground bug
    await link.handle_frame(_set_target(sat, 2 + link.settings.counter_window))
    assert sat.state.get(STATE_COUNTER) == 1, "the jump was accepted"
    assert link.stats["counter_refusals"] == 2
    refused = [e for e in sat.events.recent if e.name == "link.counter_refused"]
    assert len(refused) == 2 and refused[0].args["counter"] == MAX_COUNTER
    await link.handle_frame(_set_target(sat, 1 + link.settings.counter_window))  # just inside
    await wait_until(lambda: probe.count == 2)


async def test_end_of_a_key_counter_is_recovered_by_a_fresh_key_without_reopening_counters(
        link_sat: tuple[Satellite, Probe], sat_runner: SatelliteRunner) -> None:
    sat, probe = await sat_runner.start(link_sat[0]), link_sat[1]
    near_end = MAX_COUNTER - COUNTER_RESERVE - 1
    link = link_of(sat)
    sat.state.set(STATE_COUNTER, near_end)  # key 0 has come to the end of its space
    await link.handle_frame(_set_target(sat, near_end + 1))
    await wait_until(lambda: probe.count == 1)
    # the reserve: only SELECT_KEY may use the last counters
    await link.handle_frame(_set_target(sat, near_end + 2))
    assert link.stats["counter_refusals"] == 1 and probe.count == 1
    old_key_frame = _frame(sat, _signed(sat, "link.SELECT_KEY", [1], near_end + 2))
    await link.handle_frame(old_key_frame)
    await wait_until(lambda: link._active_key == 1)
    assert sat.state.get(STATE_COUNTER) == 0  # key 1's own, fresh counter
    await link.handle_frame(_set_target(sat, 1, key_id=1))
    await wait_until(lambda: probe.count == 2)
    # back to key 0 (signed with key 1): its counter resumes where it was, so old frames stay dead
    await link.handle_frame(_frame(sat, _signed(sat, "link.SELECT_KEY", [0], 2, key_id=1)))
    await wait_until(lambda: link._active_key == 0)
    assert sat.state.get(STATE_COUNTER) == near_end + 2
    assert sat.state.get(STATE_KEY_COUNTERS)["1"] == 2
    replays = link.stats["replays"] + link.stats["duplicates"]
    await link.handle_frame(_set_target(sat, near_end + 1))
    assert link.stats["replays"] + link.stats["duplicates"] == replays + 1 and probe.count == 2


class _Recorder:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    async def read(self) -> bytes:
        await asyncio.Event().wait()
        return b""

    async def write(self, data: bytes) -> None:
        self.written.append(data)

    async def close(self) -> None:
        pass


async def test_ground_refuses_to_sign_near_the_end_and_says_what_to_do(link_sat: tuple[Satellite, Probe],
                                                                       tmp_path: Path) -> None:
    sat = link_sat[0]
    dictionary = await asyncio.to_thread(lambda: GroundDictionary.from_json(sat.finalize().to_json()))
    link = link_of(sat)
    archive = await asyncio.to_thread(Archive, tmp_path / "ground.sqlite3")
    try:
        transport = _Recorder()
        station = GroundStation(dictionary, link.keys, 0, ground=link.settings.ground,
                                satellite=link.settings.callsign, archive=archive, transport=transport)
        assert await station.send("probe.SET_TARGET", {"value": "3"}) == 1
        await archive.call(archive.raise_counter, MAX_COUNTER - COUNTER_RESERVE)
        with pytest.raises(CounterExhausted, match=r"SELECT_KEY key_id=.*--key-id"):
            await station.send("probe.SET_TARGET", {"value": "3"})
        assert await archive.call(archive.last_counter, 0) == MAX_COUNTER - COUNTER_RESERVE  # nothing used
        assert len(transport.written) == 1
        # the reserve is for the recovery command
        assert await station.send("link.SELECT_KEY", {"key_id": "1"}) == MAX_COUNTER - COUNTER_RESERVE + 1
        # key 1 counts on its own
        station.key_id = 1
        assert await station.send("probe.SET_TARGET", {"value": "3"}) == 1
    finally:
        archive.close()
