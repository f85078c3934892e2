"""Beacon layout and its Kaitai description, downlink scheduling, serial port resilience."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flightsw.link import ax25, beacon
from flightsw.link.packets import Apid, PacketBuilder, TimeStamp, split_packets
from flightsw.link.scheduler import DownlinkScheduler, Priority, _fcs16, stuffed_bits
from hal import kiss
from hal.radio import FrameTooLong, KissRadio
from hal.serial_port import AsyncSerialPort
from sim.transceiver import ChannelModel, SimTransceiver

ROOT = Path(__file__).resolve().parents[2]
KSC_MODULES = ROOT / ".venv" / "ksc" / "node_modules"

VALUES = {"battery_voltage": 3.912, "battery_current": -0.25, "battery_temperature": 21.5,
          "board_temperature": None, "uplink_counter": 17, "mode": 2, "frames_sent": 1234,
          "reset_reason": 7, "dictionary_hash": 0x1234ABCD}


def _beacon_frame() -> bytes:
    packet = beacon.build_packet(PacketBuilder(240), "UN0SAT", TimeStamp(5, 1234.5), VALUES)
    return ax25.UiFrame(ax25.Address("UN0GND"), ax25.Address("UN0SAT", 1), packet).encode()


def test_beacon_fits_one_frame_and_round_trips() -> None:
    frame = _beacon_frame()
    assert len(frame) == beacon.FRAME_LEN <= 256
    (packet,), errors = split_packets(ax25.decode(frame).info)
    decoded = beacon.decode_payload(packet.user_data)
    assert decoded["callsign"] == "UN0SAT"
    assert decoded["battery_voltage"] == pytest.approx(3.912)
    assert decoded["battery_current"] == pytest.approx(-0.25)
    assert decoded["board_temperature"] is None  # sentinel = not available
    assert decoded["uplink_counter"] == 17
    with pytest.raises(KeyError, match="unknown beacon fields"):
        beacon.encode_payload("UN0SAT", {"batt_voltage": 1.0})


def test_published_ksy_matches_the_generator() -> None:
    assert (ROOT / "docs" / "beacon.ksy").read_text() == beacon.ksy()


@pytest.mark.skipif(shutil.which("node") is None or not (KSC_MODULES / "kaitai-struct-compiler").exists(),
                    reason="node or the Kaitai compiler is not installed (run `make ksc`)")
def test_ksy_compiles_with_kaitai_and_decodes_a_satellite_beacon(tmp_path: Path) -> None:
    ksy = tmp_path / "flightsw_beacon.ksy"
    ksy.write_text(beacon.ksy())
    result = subprocess.run(["node", str(ROOT / "flightsw" / "link" / "ksc_compile.js"), str(KSC_MODULES),
                             str(ksy), "python", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    spec = importlib.util.spec_from_file_location("flightsw_beacon", tmp_path / "out" / "flightsw_beacon.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["flightsw_beacon"] = module
    spec.loader.exec_module(module)
    parsed = module.FlightswBeacon.from_bytes(_beacon_frame())
    assert parsed.src_callsign_raw.callsign.rstrip() == "UN0SAT"
    assert parsed.src_ssid == 1
    assert parsed.packet.apid == 0x12
    assert parsed.packet.time_boot_count == 5 and parsed.packet.time_seconds == 1234
    assert parsed.packet.battery_voltage == pytest.approx(3.912)
    assert parsed.packet.battery_current == pytest.approx(-0.25)
    assert parsed.packet.uplink_counter == 17
    assert parsed.packet.frames_sent == 1234
    # the coded fields decode to the enum names the flight side declares
    assert parsed.packet.mode == module.FlightswBeacon.Mode.nominal
    assert parsed.packet.reset_reason == module.FlightswBeacon.ResetReason.software_error
    assert parsed.packet.last_command_status == 255  # not available: no code, left as the number
    assert parsed.packet.version == beacon.BEACON_VERSION and parsed.packet.dictionary_hash == 0x1234ABCD
    # a version 2 beacon (before dictionary_hash) still decodes, without the field
    old = module.FlightswBeacon.from_bytes(_v2_beacon_frame())
    assert old.packet.version == 2 and not hasattr(old.packet, "dictionary_hash")  # not in version 2
    assert old.packet.uplink_counter == 17 and old.packet.frames_sent == 1234


def _v2_beacon_frame() -> bytes:
    """A beacon as version 2 sent it: the same fields without dictionary_hash."""
    fields = beacon.FIELDS_BY_VERSION[2]
    values = {**VALUES, "version": 2}
    payload = struct.pack(">6s" + "".join(f.code for f in fields), b"UN0SAT",
                          *[beacon._to_wire(f, values.get(f.name)) for f in fields])
    packet = PacketBuilder(240).telemetry(Apid.BEACON, payload, TimeStamp(5, 1234.5))
    return ax25.UiFrame(ax25.Address("UN0GND"), ax25.Address("UN0SAT", 1), packet).encode()


def test_a_version_2_beacon_still_decodes_and_an_unknown_version_is_named() -> None:
    (packet,), _ = split_packets(ax25.decode(_v2_beacon_frame()).info)
    decoded = beacon.decode_payload(packet.user_data)
    assert decoded["version"] == 2 and decoded["uplink_counter"] == 17 and decoded["frames_sent"] == 1234
    assert decoded["dictionary_hash"] is None
    (packet,), _ = split_packets(ax25.decode(_beacon_frame()).info)
    assert beacon.decode_payload(packet.user_data)["dictionary_hash"] == 0x1234ABCD
    bad = bytearray(packet.user_data)
    bad[6] = 9
    with pytest.raises(ValueError, match="beacon version 9 unknown"):
        beacon.decode_payload(bytes(bad))
    assert beacon.dictionary_hash_as_sent(0xFFFFFFFF) == 0xFFFFFFFE  # never the sentinel


def test_stuffed_bits_counts_runs_of_ones() -> None:
    assert stuffed_bits(b"\x00" * 10) >= (10 + 2) * 8 + 16
    assert stuffed_bits(b"\xff" * 10) > stuffed_bits(b"\x00" * 10) + 10


def _reference_on_air_bits(frame: bytes) -> int:
    """HDLC as a bit string: LSB first, a 0 inserted after every five 1s, two 8-bit flags."""
    body = frame + _fcs16(frame).to_bytes(2, "little")
    bits = "".join(format(byte, "08b")[::-1] for byte in body)
    stuffed = bits.replace("11111", "111110")
    return len(stuffed) + 16


@given(st.binary(max_size=300))
def test_stuffed_bits_matches_a_bit_string_reference(frame: bytes) -> None:
    assert stuffed_bits(frame) == _reference_on_air_bits(frame)


@pytest.mark.virtual_time  # the waits below cost no real time
async def test_scheduler_priorities_packing_replacement_and_inhibit() -> None:
    sent: list[bytes] = []

    async def send(frame: bytes) -> None:
        sent.append(frame)

    allowed = [False]
    sched = DownlinkScheduler(send, lambda info: info, max_info=100, bit_rate=1_000_000)
    sched.use_permission(lambda: allowed[0])
    sched.enqueue(Priority.EVENT, b"stale" * 4)
    task = asyncio.create_task(sched.run())
    await asyncio.sleep(0.05)
    # while not allowed, frames are formed and paced but withheld: counted, never sent
    assert sent == [] and sched.frames_withheld == 1, "transmitted while inhibited"
    sched.enqueue(Priority.EVENT, b"E" * 30)
    sched.enqueue(Priority.HOUSEKEEPING, b"h1" * 10, replace_key=1)
    sched.enqueue(Priority.HOUSEKEEPING, b"H1" * 10, replace_key=1)  # replaces the stale sample
    sched.enqueue(Priority.VERDICT, b"V" * 30)
    sched.enqueue(Priority.VERDICT, b"B" * 60, alone=True)
    allowed[0] = True  # set before the transmitter wakes: the queued packets go out
    sched.permission_changed()
    while sched.frames_sent < 2:
        await asyncio.sleep(0.01)
    allowed[0] = False
    sched.permission_changed()
    sched.enqueue(Priority.EVENT, b"late")
    await asyncio.sleep(0.05)
    task.cancel()
    assert sent[0] == b"V" * 30 + b"H1" * 10 + b"E" * 30  # priority order, packed to the size
    assert sent[1] == b"B" * 60  # the beacon alone in its frame
    assert len(sent) == 2 and sched.packets_replaced == 1 and sched.frames_withheld == 2


@pytest.mark.virtual_time
async def test_scheduler_paces_to_the_bit_rate() -> None:
    loop = asyncio.get_running_loop()
    async def send(frame: bytes) -> None:
        pass
    sched = DownlinkScheduler(send, lambda info: info, max_info=100, bit_rate=9600)
    for _ in range(5):
        sched.enqueue(Priority.EVENT, bytes(100))
    task = asyncio.create_task(sched.run())
    start = loop.time()
    while sched.frames_sent < 5 or sched.airtime_total > loop.time() - start + 0.2:
        await asyncio.sleep(0.01)
    elapsed = loop.time() - start
    task.cancel()
    # The 5th frame starts only after 4 frames' air time: at 9600 bit/s >= 4 * ~0.09 s.
    assert elapsed - sched.airtime_total * 4 / 5 >= -0.001


async def test_radio_refuses_long_frames_and_survives_device_loss(tmp_path: Path) -> None:
    sim = SimTransceiver(ChannelModel(bit_rate=100_000, propagation_delay=0.0),
                         link_path=tmp_path / "radio.tty", port=0)
    await sim.start()
    radio = KissRadio(AsyncSerialPort(sim.device, 115200, reopen_interval=0.05), max_frame=64)
    await radio.open()
    with pytest.raises(FrameTooLong):
        await radio.send(bytes(65))
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.bound_port)
    frames = radio.frames()
    await sim.unplug()
    sim.tnc_parameters.clear()  # so only settings sent after the replug count below
    nxt = asyncio.ensure_future(frames.__anext__())
    while radio.serial.losses < 1:
        await asyncio.sleep(0.01)
    await sim.replug()
    while radio.serial.opens < 2:
        await asyncio.sleep(0.01)
    writer.write(kiss.encode(b"after replug"))
    await writer.drain()
    assert await asyncio.wait_for(nxt, 10) == b"after replug"
    async with asyncio.timeout(10):  # the settings cross the pty on their own schedule
        while "TX_DELAY" not in sim.tnc_parameters:
            await asyncio.sleep(0.01)
    assert sim.tnc_parameters["TX_DELAY"] == 5  # parameters re-sent to the reconnected device
    await radio.send(b"down")
    data = await asyncio.wait_for(reader.read(100), 10)
    assert kiss.KissDecoder().feed(data)[0].payload == b"down"
    writer.close()
    await radio.close()
    await sim.stop()


@pytest.mark.virtual_time
async def test_scheduler_sends_bursts_keyed_once_asking_permission_before_every_frame() -> None:
    """With ``burst_s`` the queued frames go to the radio together (one key-up: TXDELAY counted
    once), file packets fill frames of up to ``max_file_info`` of their own, other frames stay
    within ``max_info``; permission is asked before every frame, so an inhibit arriving within
    a burst ends it; the beacon queued during a burst leads the next one."""
    loop = asyncio.get_running_loop()
    sent: list[tuple[float, bytes]] = []
    allowed = [True]
    asked = [0]

    def permit() -> bool:
        asked[0] += 1
        return allowed[0]

    async def send(frame: bytes) -> None:
        sent.append((loop.time(), frame))
        if len(sent) == 5:
            allowed[0] = False  # transmitter commanded off within the second burst

    sched = DownlinkScheduler(send, lambda info: info, max_info=100, max_file_info=400, bit_rate=9600,
                              tx_delay=0.05, burst_s=0.45)
    sched.use_permission(permit)
    for n in range(6):
        sched.enqueue(Priority.FILE, bytes([n]) * 190)
    sched.enqueue(Priority.EVENT, b"E" * 60)
    sched.enqueue(Priority.EVENT, b"e" * 60)
    task = asyncio.create_task(sched.run())
    await asyncio.sleep(0.01)
    sched.enqueue(Priority.BEACON, b"B" * 50, alone=True)
    await asyncio.sleep(10.0)
    task.cancel()
    first = [frame for t, frame in sent if t == sent[0][0]]
    # burst 1: the events (each in a max_info frame), then file frames of two 190-byte PDUs;
    # 0.45 s of airtime reached with the third frame
    assert first == [b"E" * 60, b"e" * 60, bytes([0]) * 190 + bytes([1]) * 190]
    airtime = sum(stuffed_bits(f) for f in first) / 9600 + 0.05  # TXDELAY once
    assert sent[3][0] == pytest.approx(sent[0][0] + airtime)
    assert sent[3][1] == b"B" * 50  # the beacon queued meanwhile leads the next burst
    assert sent[4][1] == bytes([2]) * 190 + bytes([3]) * 190 and len(sent) == 5  # inhibit ends the burst
    assert sched.key_ups == 2 and asked[0] >= 5
    assert sched.frames_withheld >= 1  # the rest is withheld while inhibited, never sent
