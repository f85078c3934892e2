"""`flightsw dict --format fprime` is loaded by fprime-gds's own dictionary loaders, and the bridge's
packets decode with fprime-gds's own decoders (so ids, types, time tags and framing agree)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import msgpack
import pytest

from flightsw.core.clock import Stamp
from flightsw.core.commands import Reason
from flightsw.core.events import Severity
from flightsw.ground.decoder import (
    Beacon,
    CommandResult,
    EventItem,
    GroundDecoder,
    StoredPacket,
    Telemetry,
)
from flightsw.ground.dictionary import GroundDictionary
from flightsw.ground.fprime_dict import FprimeDictionary, FprimeDictionaryError
from flightsw.ground.gds import (
    BridgeStats,
    Deframer,
    GdsEncoder,
    GdsPacketError,
    UplinkAssembler,
    UplinkedFile,
    cfdp_checksum,
    decode_command,
    file_packets,
    frame,
)
from flightsw.link import packets, stored
from flightsw.link.stored import RecordCode

pytest.importorskip("fprime_gds")

from fprime_gds.common.communication.framing import FpFramerDeframer  # noqa: E402
from fprime_gds.common.data_types.cmd_data import CmdData  # noqa: E402
from fprime_gds.common.decoders.ch_decoder import ChDecoder  # noqa: E402
from fprime_gds.common.decoders.event_decoder import EventDecoder  # noqa: E402
from fprime_gds.common.encoders.cmd_encoder import CmdEncoder  # noqa: E402
from fprime_gds.common.loaders.prm_json_loader import PrmJsonLoader  # noqa: E402
from fprime_gds.common.models.dictionaries import Dictionaries  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The F Prime dictionary as the command line writes it, and the flightsw one it came from."""
    from flightsw.cli import default_sim_config, load_config_or_exit
    from flightsw.cli_run import dictionary_text

    fp_path = tmp_path_factory.mktemp("dict") / "flightsw.json"
    from flightsw.cli import main

    assert main(["dict", "--format", "fprime", "-o", str(fp_path)]) == 0  # the command line, in-process
    flight = json.loads(dictionary_text(load_config_or_exit(default_sim_config(), check=False), "json"))
    return fp_path, flight


@pytest.fixture(scope="module")
def loaded(exported: tuple[Path, dict]) -> Dictionaries:
    return Dictionaries.load_dictionaries_into_config(str(exported[0]))


def test_fprime_gds_loads_every_command_event_channel_and_parameter(exported: tuple[Path, dict],
                                                                      loaded: Dictionaries) -> None:
    path, flight = exported
    assert {c.get_full_name() for c in loaded.command_id.values()} == {c["name"] for c in flight["commands"]}
    assert {c["opcode"] for c in flight["commands"]} == set(loaded.command_id)
    assert {e["id"] for e in flight["events"]} <= set(loaded.event_id)
    assert {c["id"] for c in flight["channels"]} <= set(loaded.channel_id)
    params = PrmJsonLoader(str(path)).get_name_dict(None)
    assert {p["name"] for p in flight["parameters"]} == set(params)
    # argument types, severities, formats and limits as declared
    period = loaded.command_name["link.SET_BEACON_PERIOD"]
    assert [(name, t.__name__) for name, _, t in period.get_args()] == [("value", "U16Type")]
    booted = loaded.event_name["exec.booted"]
    assert booted.get_severity().name == "ACTIVITY_HI" and booted.get_format_str() == "Boot {} (reset reason {})"
    assert loaded.event_name["exec.critical_service"].get_severity().name == "WARNING_HI"
    assert loaded.channel_name["beacon.mode"].get_type_obj().ENUM_DICT["NOMINAL"] == 2
    assert loaded.channel_name["eps_battery.bus_voltage"].get_type_obj().__name__ == "F32Type"


def test_bridge_packets_decode_in_fprime_gds(exported: tuple[Path, dict], loaded: Dictionaries) -> None:
    fdict = FprimeDictionary(exported[1])
    encoder = GdsEncoder(fdict, BridgeStats(), wall_clock=lambda: 1_800_000_000.5)
    stamp = Stamp(boot=3, seconds=12.25, utc=1_800_000_100.75)
    packets = encoder.packets(Telemetry("hk_power", stamp, {"eps_battery.bus_voltage": 7.5, "hw.sensors_ok": 9}))
    packets += encoder.packets(Beacon(Stamp(3, 40.0), {"battery_voltage": 7.4, "mode": 2, "callsign": "UN0SAT",
                                                       "mode_name": "NOMINAL", "met": None}))
    framer = FpFramerDeframer()
    deframed, rest, _ = framer.deframe_all(b"sitting well" + b"".join(frame(p) for p in packets), no_copy=False)
    assert rest == b"" and deframed == packets
    channels = ChDecoder(loaded.channel_id)
    values = {}
    for packet in deframed:
        assert struct.unpack_from(">H", packet)[0] == 1
        for ch in channels.decode_api(packet[2:]):
            values[ch.template.get_full_name()] = (ch.get_val(), ch.time)
    assert values["eps_battery.bus_voltage"][0] == pytest.approx(7.5)
    assert values["hw.sensors_ok"][0] == 9
    assert values["beacon.mode"][0] == "NOMINAL" and values["beacon.callsign"][0] == "UN0SAT"
    utc_time = values["eps_battery.bus_voltage"][1]
    assert (utc_time.timeBase.val, utc_time.timeContext, utc_time.seconds, utc_time.useconds) == (
        "TB_SC_TIME", 3, 1_800_000_100, 750_000)
    boot_time = values["beacon.battery_voltage"][1]
    assert (boot_time.timeBase.val, boot_time.seconds) == ("TB_PROC_TIME", 40)
    assert "beacon.met" not in values  # "not available" sends nothing

    events = EventDecoder(loaded.event_id)
    flight_event = EventItem(1, "exec.overrun", Severity.WARNING, stamp, "",
                             {"group": "fast", "cycle_ms": 12.345})
    verdict = CommandResult(seq=7, opcode=1, name="exec.NO_OP", reason=Reason.OK, completion=None, detail="")
    texts = []
    for item in (flight_event, verdict):
        (packet,) = encoder.packets(item)
        assert struct.unpack_from(">H", packet)[0] == 2
        (event,) = events.decode_api(packet[2:])
        texts.append(event.get_str(verbose=False))
    assert "Rate group fast overran: cycle 12.3 ms" in texts[0]
    assert "exec.NO_OP" in texts[1] and "#7" in texts[1] and "OK" in texts[1]


def test_played_back_records_reach_fprime_gds_with_their_recorded_time_tags(exported: tuple[Path, dict],
                                                                           loaded: Dictionaries) -> None:
    """A stored-telemetry packet as the satellite packs it (whole housekeeping, a channel subset, an
    event) becomes the channels and the event it was recorded as, each with the time tag it was
    recorded with (not the reception time), decoded by fprime-gds's own decoders."""
    fp_path, flight = exported
    ground = GroundDecoder(GroundDictionary.from_json(json.dumps(flight)))
    thermal = next(p for p in flight["packets"] if p["name"] == "hk_thermal")
    names = thermal["channels"]
    overrun = next(e for e in flight["events"] if e["name"] == "exec.overrun")
    records = [
        (40, int(RecordCode.TELEMETRY), msgpack.packb([thermal["id"], 2, 100.5, 1_800_000_000.25,
                                                       [21.5 + i for i in range(len(names))]])),
        (41, int(RecordCode.TELEMETRY_SUBSET), [thermal["id"], 2, 110.0, None, 0b10, [30.0]]),
        (42, int(RecordCode.EVENT), [overrun["id"], int(Severity.WARNING), 2, 120.0, 1_800_000_019.5, 0,
                                     {"group": "fast", "cycle_ms": 12.345}]),
        (43, int(RecordCode.TELEMETRY), msgpack.packb([999_999, 2, 130.0, None, [1.0]])),  # not in the dictionary
    ]
    (user_data,) = stored.pack(44, records, 1000)
    raw = packets.build(packets.PacketType.TM, packets.Apid.STORED, 0, bytes(8), user_data)
    (packet,), errors = packets.split_packets(raw)
    assert not errors
    item = ground.decode_packet(packet)
    assert isinstance(item, StoredPacket)
    stats = BridgeStats()
    received_at = 1_900_000_000.0
    encoder = GdsEncoder(FprimeDictionary(flight), stats, wall_clock=lambda: received_at, decoder=ground)
    out = encoder.packets(item)
    assert (stats.records_forwarded, stats.records_skipped) == (3, 1)
    channels, events = ChDecoder(loaded.channel_id), EventDecoder(loaded.event_id)
    seen: list[tuple[str, float, str, int, int, int]] = []
    for data in out:
        decoder = channels if struct.unpack_from(">H", data)[0] == 1 else events
        for obj in decoder.decode_api(data[2:]):
            t = obj.time
            value = obj.get_val() if decoder is channels else 0.0
            seen.append((obj.template.get_full_name(), value, t.timeBase.val, t.timeContext, t.seconds, t.useconds))
    assert seen == [
        *[(name, 21.5 + i, "TB_SC_TIME", 2, 1_800_000_000, 250_000) for i, name in enumerate(names)],
        (names[1], 30.0, "TB_PROC_TIME", 2, 110, 0),  # no UTC on board then: seconds since boot
        ("exec.overrun", 0.0, "TB_SC_TIME", 2, 1_800_000_019, 500_000),
    ]
    # without a decoder (an encoder built by hand), played-back records are not forwarded
    assert GdsEncoder(FprimeDictionary(flight), BridgeStats()).packets(item) == []


def test_commands_from_fprime_gds_decode_to_arguments(exported: tuple[Path, dict], loaded: Dictionaries) -> None:
    fdict = FprimeDictionary(exported[1])
    encoded = CmdEncoder().encode_api(CmdData(("45",), loaded.command_name["link.SET_BEACON_PERIOD"]))
    packet = encoded[8:]  # the GDS's internal 0x5A5A5A5A and length; the comm layer sends the rest
    command, texts = decode_command(fdict, packet)
    assert (command.name, texts) == ("link.SET_BEACON_PERIOD", {"value": "45"})
    fm = loaded.command_name["fm.DELETE"]
    args = tuple("/data/x ü" if t.__name__.startswith("String") else "1" for _, _, t in fm.get_args())
    command, texts = decode_command(fdict, CmdEncoder().encode_api(CmdData(args, fm))[8:])
    assert command.name == "fm.DELETE" and "/data/x ü" in texts.values()
    with pytest.raises(GdsPacketError, match="not in the dictionary"):
        decode_command(fdict, struct.pack(">HI", 0, 0xFFFFFFF0))
    with pytest.raises(GdsPacketError, match="bytes after the last argument"):
        decode_command(fdict, packet + b"\x00")


def test_deframer_skips_keepalives_and_broken_frames() -> None:
    deframer = Deframer()
    good = frame(b"\x00\x00abcd")
    broken = bytearray(frame(b"\x00\x00zzzz"))
    broken[-1] ^= 1
    stream = b"sitting well" + bytes(broken) + good
    out = [p for i in range(0, len(stream), 5) for p in deframer.feed(stream[i:i + 5])]
    assert out == [b"\x00\x00abcd"]


def test_not_a_flightsw_dictionary_is_one_clear_error() -> None:
    with pytest.raises(FprimeDictionaryError, match="not a flightsw dictionary"):
        FprimeDictionary({"commands": []})
    with pytest.raises(FprimeDictionaryError, match="malformed"):
        FprimeDictionary({"format": "flightsw-dictionary", "commands": [{"name": "x"}], "channels": [], "events": []})


def test_file_packets_are_reassembled_by_fprime_gds_downlinker(tmp_path: Path) -> None:
    from fprime_gds.common.decoders.file_decoder import FileDecoder
    from fprime_gds.common.files.downlinker import FileDownlinker
    from fprime_gds.common.files.helpers import CFDPChecksum

    data = bytes(range(256)) * 9 + b"tail"  # three chunks, the last one short and unaligned
    checksum = CFDPChecksum()
    checksum.update(data, 0)
    assert cfdp_checksum(data) == checksum.value
    downlinker = FileDownlinker(str(tmp_path))
    decoder = FileDecoder()
    packets = file_packets("thumb_0001.jpg", "thumb_0001.jpg", data)
    assert len(packets) == 5
    for packet in packets:
        assert struct.unpack_from(">H", packet)[0] == 3
        for item in decoder.decode_api(packet[2:]):
            downlinker.data_callback(item)
    assert (tmp_path / "thumb_0001.jpg").read_bytes() == data


def test_files_the_gds_uplinks_are_reassembled_and_checked() -> None:
    from fprime_gds.common.data_types.file_data import (
        CancelPacketData,
        DataPacketData,
        EndPacketData,
        StartPacketData,
    )
    from fprime_gds.common.encoders.file_encoder import FileEncoder
    from fprime_gds.common.files.helpers import CFDPChecksum

    data = b"[link]\nbeacon_period = 45\n" * 50
    checksum = CFDPChecksum()
    checksum.update(data, 0)
    encoder = FileEncoder()

    def packets(end_checksum: int) -> list[bytes]:
        items = [StartPacketData(0, len(data), "/home/op/beacon.toml", "/uploads/configs/beacon.toml")]
        items += [DataPacketData(1 + i // 512, i, data[i:i + 512]) for i in range(0, len(data), 512)]
        items.append(EndPacketData(9, end_checksum))
        return [encoder.encode_api(item)[8:] for item in items]  # as the comm layer sends them

    assembler = UplinkAssembler()
    results = [assembler.feed(p) for p in packets(checksum.value)]
    assert results[:-1] == [None] * (len(results) - 1)
    assert results[-1] == UplinkedFile("/uploads/configs/beacon.toml", data)
    with pytest.raises(GdsPacketError, match="checksum differs"):
        for packet in packets(checksum.value ^ 1):
            assembler.feed(packet)
    assembler.feed(packets(0)[0])
    assert assembler.feed(encoder.encode_api(CancelPacketData(3))[8:]) is None
    with pytest.raises(GdsPacketError, match="without its START"):
        assembler.feed(packets(0)[1])
