"""Regression tests of what the reliability campaigns found (reliability/fuzz.py, reliability/attacks.py),
one per finding."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flightsw.app import Satellite
from flightsw.components.seqfile import SequenceError, parse_sequence
from flightsw.core.commands import Completion
from flightsw.link.component import LinkComponent
from flightsw.link.subsystem import SIM_TRANSCEIVER, build_link
from flightsw.testing import ResponseLog, make_satellite, mission_config, wait_until
from hal import kiss

EPOCH = 1_800_000_000.0


def _no_check(name: str, args: list[object]) -> None:
    """Any command with any arguments: these inputs must fail before the dictionary matters."""


@pytest.mark.parametrize(("text", "why"), [
    # an offset of 400 digits was float('inf'); 10**21 hours overflowed the clock's formatting
    ("+" + "9" * 400 + " exec.NO_OP", "line 1: offset"),
    ("+999999999999999999999h exec.NO_OP", "line 1: offset"),
    ("+1999999999999999999999999999.5 exec.NO_OP", "line 1: offset"),
    # arguments nested deeper than the JSON decoder's recursion: RecursionError, not SequenceError
    ("+0 exec.NO_OP " + "[" * 5000, "line 1: arguments nested too deeply"),
    # an ISO time whose UTC is past year 9999 (the zone moves it over)
    ("9999-12-31T23:59:59-23:59 exec.NO_OP", "line 1: time"),
])
def test_sequence_times_and_arguments_out_of_bounds_are_named_errors(text: str, why: str) -> None:
    with pytest.raises(SequenceError) as info:
        parse_sequence(text, "fuzz", _no_check)
    assert str(info.value).startswith(why), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.virtual_time(start=1000.0)
async def test_a_sequence_too_far_in_the_future_is_refused_and_nothing_is_stored(tmp_path: Path,
                                                                              sat_runner) -> None:
    """On board, 10**21 hours used to be stored, then the command failed with OverflowError."""
    loop = asyncio.get_running_loop()
    sat = await asyncio.to_thread(make_satellite, tmp_path, utc_source=lambda: loop.time() + EPOCH)
    await sat_runner.start(sat)
    log = ResponseLog(sat)
    sat.commands.submit(sat.dictionary.command("seq.STORE_SEQUENCE").id,
                        ["+999999999999999999999h exec.NO_OP", 0], seq=1)
    done = await log.wait_completion(1)
    assert done.completion == Completion.FAILURE and "offset" in done.detail, done.detail
    assert len(sat.sequencer.schedule) == 0


RADIO = """
[[devices]]
name = "radio"
kind = "uhf_radio"
backend = "sim"
kiss_tcp_port = 0
propagation_delay = 0.0
[link]
callsign = "UN0SAT-1"
ground_callsign = "UN0GND"
bit_rate = 100000
max_frame = 256
generate_key = true
"""


async def test_oversized_uplink_frames_are_counted_in_telemetry(tmp_path: Path, sat_runner) -> None:
    """Frames longer than link.max_frame were dropped by the radio's KISS decoder without a trace
    in any telemetry: an attacker's oversized frames were invisible to the operator."""
    sat = await asyncio.to_thread(lambda: Satellite(mission_config(tmp_path, RADIO), subsystems=[build_link]))
    await sat_runner.start(sat)
    xcvr = sat.ports.require(SIM_TRANSCEIVER)
    await wait_until(lambda: xcvr._server is not None)
    link = sat.component("link")
    assert isinstance(link, LinkComponent)
    _, writer = await asyncio.open_connection("127.0.0.1", xcvr.bound_port)
    try:
        writer.write(kiss.encode(bytes(300)) + kiss.encode(bytes(1000)) + kiss.encode(bytes(20)))
        await writer.drain()
        await wait_until(lambda: link.stats["frames_received"] == 1)  # the short one still arrives
        assert link.radio.frames_oversize == 2
        link.publish()
        assert link.kiss_oversize.value == 2
    finally:
        writer.close()


def test_two_sensors_at_one_i2c_address_are_a_config_error(tmp_path: Path) -> None:
    """The config loaded, then building the satellite raised the simulated bus's ValueError (a
    traceback from `flightsw run` instead of the one-line error naming the key)."""
    from flightsw.config import ConfigError, loads
    from flightsw.config_check import check_config

    text = (f'[storage]\ndata_dir = "{tmp_path}"\n[[devices]]\nname = "t1"\nkind = "mcp9808"\naddress = 0x18\n'
            '[[devices]]\nname = "t2"\nkind = "mcp9808"\n')  # t2: the driver's default 0x18
    with pytest.raises(ConfigError, match=r"^<string>: devices\[1\]\.address: 0x18 on bus 1 already used by t1$"):
        check_config(loads(text))
    loads(text.replace('name = "t2"\n', 'name = "t2"\nbus = 2\n'))  # another bus: fine


def test_a_callsign_with_a_trailing_newline_is_not_an_address() -> None:
    """`re.match` with `$` accepted "NS0U0\\n": the ground's "foreign" error message then spanned
    two lines, and the flight side's source check (check_source = false) took it as well formed."""
    from flightsw.ground.decoder import GroundDecoder
    from flightsw.ground.dictionary import GroundDictionary
    from flightsw.link import ax25

    with pytest.raises(ax25.Ax25Error):
        ax25.Address("NS0U0\n")
    frame = b"\xaa\x9c`\x8e\x9c\x88\xe0\x9c\xa6`\xaa`\x14c\x03\x08"  # the fuzzer's input
    with pytest.raises(ax25.Ax25Error):
        ax25.decode(frame)
    decoder = GroundDecoder(GroundDictionary(hash=""), ax25.Address("UN0SAT", 1))
    with pytest.raises(ValueError) as info:
        decoder.decode_frame(frame)
    assert "\n" not in str(info.value)


def test_an_unreadable_key_file_is_a_config_error(tmp_path: Path) -> None:
    """Found fuzzing configs: `key_file = ""` names the data directory, and KeyRing.load let the
    IsADirectoryError through (a traceback from `flightsw run`); a key file the service's user may
    not read (PermissionError) took the same path."""
    from flightsw.config import ConfigError, loads
    from flightsw.config_check import check_config

    text = (f'[storage]\ndata_dir = "{tmp_path}"\n[[devices]]\nname = "radio"\nkind = "uhf_radio"\n'
            '[link]\ncallsign = "UN0SAT-1"\nground_callsign = "UN0GND"\nkey_file = ""\n')
    with pytest.raises(ConfigError, match=r"link\.key_file: key file .* cannot be read: Is a directory$"):
        check_config(loads(text))


def test_file_data_beyond_the_declared_size_is_refused_before_it_is_written(tmp_path: Path) -> None:
    """Found by the fuzzing campaign: a File Data PDU at an offset far beyond the Metadata's file
    size was written, a sparse staging file of any apparent size (the fuzzer's: 430 GB). One
    step of the entity, as its worker thread runs it."""
    from spacepackets.cfdp import ChecksumType, PduConfig, TransmissionMode
    from spacepackets.cfdp.pdu import FileDataPdu, MetadataPdu
    from spacepackets.cfdp.pdu.file_data import FileDataParams
    from spacepackets.cfdp.pdu.metadata import MetadataParams
    from spacepackets.util import UnsignedByteField

    from flightsw.filetransfer import CfdpEntity, EntityConfig

    class Sink:
        async def send_pdu(self, pdu: bytes) -> None:
            pass

    entity = CfdpEntity(EntityConfig(2, 1, tmp_path / "flight"), Sink())
    conf = PduConfig(source_entity_id=UnsignedByteField(1, 2), dest_entity_id=UnsignedByteField(2, 2),
                     transaction_seq_num=UnsignedByteField(5, 4), trans_mode=TransmissionMode.ACKNOWLEDGED)
    metadata = MetadataParams(closure_requested=True, checksum_type=ChecksumType.MODULAR, file_size=280,
                              source_file_name="up.txt", dest_file_name="up.txt")
    entity._step([bytes(MetadataPdu(conf, metadata).pack()),
                  bytes(FileDataPdu(conf, FileDataParams(b"x" * 10, 4_000_000_000, None)).pack()),
                  bytes(FileDataPdu(conf, FileDataParams(b"y" * 10, 270, None)).pack())], 0.0)
    assert entity.stats.errors.by_kind["FileSizeError"] == 1
    staged = list((tmp_path / "flight" / "staging").iterdir())
    assert [p.stat().st_size for p in staged] == [280]  # the data within the declared size was written
