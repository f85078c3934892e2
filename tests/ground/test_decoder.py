"""The one ground decoder: what the flight side sends decodes to typed items, and arbitrary bytes
give nothing but its own one-line DecodeError."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacepackets.ccsds.spacepacket import PacketType

from flightsw.config import load
from flightsw.config_check import offline_dictionary
from flightsw.core.clock import Stamp
from flightsw.core.commands import CommandResponse, Completion, Reason
from flightsw.core.events import EventRecord, Severity
from flightsw.ground.archive import Archive
from flightsw.ground.decoder import (
    Beacon,
    CommandResult,
    DecodedFrame,
    DecodeError,
    EventItem,
    FilePdu,
    ForeignFrame,
    FrameError,
    GroundDecoder,
    PacketDecodeError,
    Telemetry,
)
from flightsw.ground.dictionary import GroundDictionary
from flightsw.ground.station import GroundStation
from flightsw.link import ax25, beacon
from flightsw.link.packets import Apid, Packet, PacketBuilder, TimeStamp, build

ROOT = Path(__file__).resolve().parents[2]
SAT = ax25.Address("UN0SAT", 1)
GND = ax25.Address("UN0GND")


@pytest.fixture(scope="module")
def dictionary() -> Iterator[GroundDictionary]:
    """The reference mission's dictionary, as the ground loads it from the export."""
    with offline_dictionary(load(ROOT / "deploy" / "sim.toml")) as d:
        yield GroundDictionary.from_json(d.to_json())


def _frame(*packets: bytes, source: ax25.Address = SAT) -> bytes:
    return ax25.UiFrame(GND, source, b"".join(packets)).encode()


def _tm(apid: int, user_data: bytes, seq: int = 0) -> bytes:
    return build(PacketType.TM, apid, seq, TimeStamp(3, 12.5).pack(), user_data)


def test_every_kind_of_downlink_decodes_to_its_item(dictionary: GroundDictionary) -> None:
    decoder = GroundDecoder(dictionary, SAT)
    pid, (hk_name, channels) = next(iter(dictionary.packets.items()))
    booted = next(e for e in dictionary.events.values() if e.name == "exec.booted")
    noop = next(c for c in dictionary.commands.values() if c.name == "exec.NO_OP")
    stamp = Stamp(3, 12.5, None)
    event = EventRecord(booted.id, booted.name, Severity.INFO, stamp, {"boot": 3, "reason": "POWER_ON"}, 2)
    verdict = CommandResponse(7, noop.opcode, noop.name, "ground", Reason.OK, Completion.SUCCESS, "", stamp)
    frame = _frame(
        beacon.build_packet(PacketBuilder(240), "UN0SAT", TimeStamp(3, 12.5), {"last_command_opcode": noop.opcode}),
        _tm(Apid.HOUSEKEEPING, msgpack.packb([pid, 3, 12.5, None, list(range(len(channels)))])),
        _tm(Apid.EVENT, msgpack.packb(event.to_wire())),
        _tm(Apid.VERDICT, msgpack.packb(verdict.to_wire())),
        _tm(Apid.FILE, b"\x01pdu"),
    )
    decoded = decoder.decode_frame(frame)
    assert decoded.source == SAT and decoded.broken == ()
    assert [p.error for p in decoded.packets] == [None] * 5
    bcn, hk, evt, res, pdu = (p.item for p in decoded.packets)
    assert isinstance(bcn, Beacon) and bcn.stamp == stamp and bcn.values["last_command_name"] == "exec.NO_OP"
    assert hk == Telemetry(hk_name, stamp, dict(zip(channels, range(len(channels)), strict=True)))
    assert evt == EventItem(booted.id, "exec.booted", Severity.INFO, stamp,
                            "Boot 3 (reset reason POWER_ON) [2 suppressed]", {"boot": 3, "reason": "POWER_ON"})
    assert res == CommandResult(7, noop.opcode, "exec.NO_OP", Reason.OK, Completion.SUCCESS, "")
    assert isinstance(pdu, FilePdu) and pdu.packet.user_data == b"\x01pdu"


@pytest.mark.parametrize(("packet", "message"), [
    (_tm(Apid.HOUSEKEEPING, msgpack.packb([1, 3, 1.0, None, [1]])),
     "APID 0x013: housekeeping packet id 1 does not match the dictionary"),
    (_tm(Apid.HOUSEKEEPING, msgpack.packb(["x", 3, 1.0, None, []])), "APID 0x013: Expected `int`, got `str` - at `$[0]`"),
    (_tm(Apid.EVENT, msgpack.packb([1, 99, 3, 1.0, None, 0, {}])), "APID 0x014: Invalid enum value 99 - at `$[1]`"),
    (_tm(Apid.VERDICT, msgpack.packb([1, 2])), "APID 0x011: Expected `array` of at least length 5, got 2"),
    (_tm(Apid.BEACON, b"short"), "APID 0x012: beacon payload is 5 bytes, expected"),
    (_tm(Apid.STORED, b""), "APID 0x015: malformed stored-telemetry packet"),
    (_tm(0x017, b""), "APID 0x017: unexpected APID 0x017"),
    (_tm(Apid.HOUSEKEEPING, b"\x95\x01\x03\x01\xc0" + b"\x91" * 3000 + b"\x01"),  # values nested 3000 deep
     "APID 0x013: maximum recursion depth exceeded"),
    (_tm(Apid.EVENT, b"\xc1"), "APID 0x014: MessagePack data is malformed"),
])
def test_a_malformed_packet_is_named_and_the_others_still_decode(
        dictionary: GroundDictionary, packet: bytes, message: str) -> None:
    good = _tm(Apid.FILE, b"pdu")
    decoded = GroundDecoder(dictionary, SAT).decode_frame(_frame(good, packet, good))
    first, bad, last = decoded.packets
    assert isinstance(first.item, FilePdu) and isinstance(last.item, FilePdu)
    assert bad.item is None and isinstance(bad.error, PacketDecodeError)
    assert str(bad.error).startswith(message) and "\n" not in str(bad.error)


def test_broken_frames_foreign_frames_and_broken_packets(dictionary: GroundDictionary) -> None:
    decoder = GroundDecoder(dictionary, SAT)
    with pytest.raises(FrameError, match="shorter than an AX.25 header"):
        decoder.decode_frame(b"\x00\x01garbage")
    with pytest.raises(ForeignFrame, match="foreign N0CALL"):
        decoder.decode_frame(_frame(_tm(Apid.FILE, b"x"), source=ax25.Address("N0CALL")))
    assert isinstance(GroundDecoder(dictionary).decode_frame(_frame(source=ax25.Address("N0CALL"))), DecodedFrame)
    corrupted = bytearray(_tm(Apid.FILE, b"abc"))
    corrupted[-3] ^= 0x40
    decoded = decoder.decode_frame(_frame(_tm(Apid.FILE, b"ok"), bytes(corrupted)))
    assert len(decoded.packets) == 1 and [str(e) for e in decoded.broken] == ["CRC mismatch on APID 0x016"]


def test_event_arguments_that_do_not_fit_the_format_still_show(dictionary: GroundDictionary) -> None:
    time_set = next(e for e in dictionary.events.values() if e.name == "exec.time_set")  # "{utc:.3f}"
    decoder = GroundDecoder(dictionary, SAT)
    for utc in ("soon", [1.5]):  # ValueError, TypeError from the format spec
        item = decoder.event(msgpack.packb([time_set.id, 1, 1, 2.0, None, 0, {"utc": utc, "previous": None}]))
        assert item.name == "exec.time_set" and item.text == f"{time_set.format} {{'utc': {utc!r}, 'previous': None}}"


def _check(decoder: GroundDecoder, raw: bytes) -> None:
    """The property: a DecodedFrame whose every packet has an item or a one-line PacketDecodeError,
    or a DecodeError; nothing else."""
    try:
        decoded = decoder.decode_frame(raw)
    except DecodeError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for p in decoded.packets:
        assert (p.item is None) != (p.error is None)
        assert p.error is None or (isinstance(p.error, PacketDecodeError) and "\n" not in str(p.error))
    assert all(isinstance(e, PacketDecodeError) for e in decoded.broken)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
msgpack_ints = st.integers(-(2**63), 2**64 - 1)  # what msgpack can carry
msgpack_values = st.recursive(
    st.none() | st.booleans() | msgpack_ints | st.floats() | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=4) | msgpack_ints, inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_give_only_decode_errors(dictionary: GroundDictionary, raw: bytes) -> None:
    _check(GroundDecoder(dictionary, SAT), raw)
    _check(GroundDecoder(dictionary, SAT), ax25.header(GND, SAT) + raw)  # past the AX.25 header


@FUZZ
@given(apid=st.sampled_from(list(Apid)), tc=st.booleans(),
       body=st.binary(max_size=200) | msgpack_values.map(lambda v: msgpack.packb(v, use_bin_type=True)))
def test_arbitrary_payloads_in_good_packets_give_only_decode_errors(
        dictionary: GroundDictionary, apid: Apid, tc: bool, body: bytes) -> None:
    secondary = b"\x00" * 5 if tc else TimeStamp(1, 2.0).pack()
    packet = build(PacketType.TC if tc else PacketType.TM, apid, 0, secondary, body)
    _check(GroundDecoder(dictionary, SAT), _frame(packet))


@FUZZ
@given(values=st.lists(msgpack_values, max_size=6), args=msgpack_values)
def test_well_framed_payloads_with_wrong_contents_give_only_decode_errors(
        dictionary: GroundDictionary, values: list[object], args: object) -> None:
    pid = next(iter(dictionary.packets))
    eid = next(iter(dictionary.events))
    decoder = GroundDecoder(dictionary, SAT)
    _check(decoder, _frame(_tm(Apid.HOUSEKEEPING, msgpack.packb([pid, 1, 2.0, None, values]))))
    _check(decoder, _frame(_tm(Apid.EVENT, msgpack.packb([eid, 1, 1, 2.0, None, 0, args]))))


async def test_the_station_archives_what_the_decoder_names_and_keeps_going(dictionary: GroundDictionary,
                                                                           tmp_path: Path) -> None:
    """The station counts and archives each problem with its one-line note; a packet the file
    receiver refuses does not stop the packets after it."""
    archive = await asyncio.to_thread(Archive, tmp_path / "ground.sqlite3")
    station = GroundStation(dictionary, keys=None, key_id=0, ground=GND, satellite=SAT,  # type: ignore[arg-type]
                            archive=archive, transport=None)  # type: ignore[arg-type]
    noop = next(c for c in dictionary.commands.values() if c.name == "exec.NO_OP")
    verdict = _tm(Apid.VERDICT, msgpack.packb([5, noop.opcode, 0, None, ""]))
    try:
        await station.handle_frame(_frame(_tm(Apid.FILE, b"pdu"), verdict))  # no file receiver yet
        refused: list[bytes] = []

        class Refusing:
            def on_packet(self, packet: Packet) -> None:
                refused.append(packet.user_data)
                raise ValueError("not a CFDP PDU")

            def render_lines(self, colour: bool = True, max_transfers: int = 6) -> list[str]:
                return []

        station.files = Refusing()
        await station.handle_frame(_frame(_tm(Apid.FILE, b"bad"), verdict))
        await station.handle_frame(_frame(source=ax25.Address("N0CALL")))
        await station.handle_frame(b"\x00garbage")
        notes = await archive.call(lambda: [r[0] for r in archive.db.execute("SELECT note FROM frames ORDER BY id")])
    finally:
        archive.close()
    assert notes == ["APID 0x016: no file receiver on this station", "APID 0x016: not a CFDP PDU",
                     "foreign N0CALL", "frame of 8 bytes is shorter than an AX.25 header"]
    assert refused == [b"bad"] and [r.name for r in station.responses[5]] == ["exec.NO_OP"]
    s = station.stats
    assert (s.frames_received, s.packets_bad, s.frames_foreign, s.frames_bad, s.responses) == (4, 2, 1, 1, 2)
