"""The fuzz targets: every parser of bytes that come from outside, each with its contract.

Every target takes one input as bytes, so hypothesis (structured strategies, below) and atheris
(coverage-guided byte mutation of the same seeds) drive the same function. A target returns
normally when its contract held; it raises ``ContractViolation`` when an invariant broke, and an
exception that is not one of its documented error types escapes as itself. That the call
returns within a bounded time is checked by the runner (``reliability.fuzz``), around the call.

The contracts, one per target (also printed in docs/reliability.md):

- ``kiss``: ``KissDecoder.feed`` never raises; the frames do not depend on how the stream was
  split into chunks; no frame longer than ``max_frame``; the buffer stays bounded.
- ``ax25``: ``ax25.decode`` raises only ``Ax25Error``; a decoded frame's info field is the tail
  of the input.
- ``space_packets``: ``split_packets`` never raises; its packets are the leading bytes of the
  input, each with a good CRC; what it cannot decode comes back as ``PacketError``.
- ``uplink``: ``LinkComponent.handle_frame`` of the reference mission's satellite on a whole
  AX.25 frame never raises; a command or file PDU is only executed if it is, byte for byte, one
  the key holder signed with a fresh counter; the persisted command and file counters move only
  then. The first input byte chooses whether the attacker recomputes the CRCs.
- ``command_args``: ``CommandDispatcher.submit_packed`` (the msgpack body of an authenticated
  command) never raises and returns a verdict; an accepted command has the declared argument
  count with every value valid for its type; the counters add up (received = accepted +
  rejected + malformed).
- ``cfdp``: the satellite's CFDP entity stepping a sequence of received PDUs (each input is a
  list of length-prefixed PDUs) never raises; files appear only under its work directory; disk
  use stays bounded by what was received; files reach the quarantine only complete.
- ``sequence_file``: ``parse_sequence`` (ground check and on-board store) raises only
  ``SequenceError``; every step of an accepted sequence has a finite time within the years a
  clock can show, so storing it cannot fail later.
- ``config``: ``flightsw.config.load`` of a file raises only ``ConfigError``; a config it accepts
  passes or fails ``check_config`` with ``ConfigError`` only.
- ``ground_decoder``: ``GroundDecoder.decode_frame`` raises only ``DecodeError``; broken packets
  are reported in the result, as ``PacketDecodeError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
from hypothesis import strategies as st
from spacepackets.ccsds.spacepacket import PacketType
from spacepackets.cfdp import (
    ChecksumType,
    ConditionCode,
    Direction,
    PduConfig,
    TransmissionMode,
)
from spacepackets.cfdp.pdu import (
    AckPdu,
    EofPdu,
    FileDataPdu,
    FinishedPdu,
    KeepAlivePdu,
    MetadataPdu,
    NakPdu,
    PromptPdu,
)
from spacepackets.cfdp.pdu.ack import TransactionStatus
from spacepackets.cfdp.pdu.file_data import FileDataParams
from spacepackets.cfdp.pdu.file_directive import DirectiveType
from spacepackets.cfdp.pdu.finished import FinishedParams
from spacepackets.cfdp.pdu.metadata import MetadataParams
from spacepackets.cfdp.pdu.prompt import ResponseRequired
from spacepackets.util import UnsignedByteField

REPO = Path(__file__).resolve().parents[1]
SIM_CONFIG = REPO / "deploy" / "sim.toml"


class ContractViolation(AssertionError):
    """An input made a parser break its contract (named in the message)."""


@dataclass(frozen=True)
class Target:
    name: str
    what: str  #: the parser and where its bytes come from
    errors: tuple[str, ...]  #: the documented error types that may escape (names, for the report)
    run: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]
    strategy: Callable[[], st.SearchStrategy[bytes]]
    time_limit_s: float = 2.0  #: per input; longer counts as a hang


# --- mutations shared by the strategies ---------------------------------------------------------

def _mutate(seed: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) edits: flip a bit, set a byte, delete, insert, truncate."""
    data = bytearray(seed)
    for kind, position, value in edits:
        if not data and kind != 3:
            continue
        at = position % max(1, len(data))
        if kind == 0:
            data[at] ^= 1 << (value % 8)
        elif kind == 1:
            data[at] = value & 0xFF
        elif kind == 2:
            del data[at]
        elif kind == 3:
            data.insert(at, value & 0xFF)
        else:
            del data[at:]
    return bytes(data)


def mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A seed with up to 6 random edits."""
    edit = st.tuples(st.integers(0, 4), st.integers(0, 2**16), st.integers(0, 255))
    return st.builds(_mutate, st.sampled_from(seeds), st.lists(edit, max_size=6))


def seeded(seeds: Callable[[], list[bytes]], *extra: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    items = seeds()
    return st.one_of(st.binary(max_size=300), st.sampled_from(items), mutated(items), *extra)


msgpack_ints = st.integers(-(2**63), 2**64 - 1)
msgpack_values = st.recursive(
    st.none() | st.booleans() | msgpack_ints | st.floats() | st.text(max_size=12) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4) | msgpack_ints, inner, max_size=4),
    max_leaves=16,
)


# --- the reference mission's satellite, built once per process ----------------------------------

@dataclass
class Flight:
    """The reference mission (deploy/sim.toml) built offline on a scratch directory: its link,
    dispatcher, dictionary and key ring, and the packets the key holder signed for the fuzzer."""

    directory: Path
    sat: Any
    loop: asyncio.AbstractEventLoop
    signed: set[bytes] = field(default_factory=set)
    _seq: int = 0

    @property
    def link(self) -> Any:
        return self.sat.component("link")

    @property
    def files(self) -> Any:
        return self.sat.component("files")

    def sign(self, name: str, args: list[Any], counter: int, apid: int | None = None,
             body: bytes | None = None) -> bytes:
        from flightsw.link.auth import build_command
        from flightsw.link.packets import Apid

        if body is None:
            body = msgpack.packb([self.sat.dictionary.by_name[name].id, args], use_bin_type=True)
        packet = build_command(self.link.keys.key(self.link._active_key), self.link._active_key, counter, body,
                               apid=Apid.COMMAND if apid is None else apid)
        self.signed.add(packet)
        return packet

    def frame(self, info: bytes) -> bytes:
        from flightsw.link import ax25

        s = self.link.settings
        return ax25.UiFrame(s.callsign, s.ground, info).encode()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq


@functools.cache
def flight() -> Flight:
    import logging

    from flightsw.app import Satellite
    from flightsw.config import load
    from hal.watchdog import NullWatchdog

    directory = Path(tempfile.mkdtemp(prefix="flightsw-fuzz-"))
    config = load(SIM_CONFIG)
    config.storage.data_dir = str(directory)
    config.storage.fsync = False
    logging.getLogger("flightsw").setLevel(logging.CRITICAL)  # a fuzzer's rejects are not news
    loop = asyncio.new_event_loop()
    sat = Satellite(config, watchdog=NullWatchdog())
    sat.finalize()
    return Flight(directory, sat, loop)


# --- kiss -------------------------------------------------------------------------------------------

def run_kiss(data: bytes) -> None:
    from hal.kiss import KissDecoder

    if not data:
        return
    max_frame = 32 + data[0]  # small, so the oversize paths are reached
    stream = data[1:]
    whole = KissDecoder(max_frame)
    frames = whole.feed(stream)
    chunked = KissDecoder(max_frame)
    step = 1 + data[0] % 9
    pieces = []
    for i in range(0, len(stream), step):
        pieces.extend(chunked.feed(stream[i : i + step]))
    if pieces != frames or chunked.oversize_frames != whole.oversize_frames:
        raise ContractViolation(f"frames depend on the chunking ({len(frames)} whole, {len(pieces)} in {step}-byte chunks)")
    for frame in frames:
        if len(frame.payload) > max_frame or not 0 <= frame.port <= 15:
            raise ContractViolation(f"frame of {len(frame.payload)} bytes on port {frame.port} (max {max_frame})")
    for decoder in (whole, chunked):
        if len(decoder._buffer) > 2 * max_frame + 1:
            raise ContractViolation(f"decoder buffer grew to {len(decoder._buffer)} bytes")


def kiss_seeds() -> list[bytes]:
    from hal.kiss import FEND, FESC, TFEND, TFESC, encode

    frame = bytes(range(0, 256, 7)) + bytes([FEND, FESC])
    return [
        b"\x40" + encode(frame) + encode(b"\x01\x02", port=3),
        b"\x10" + bytes([FEND, FEND, FESC, TFEND, FESC, FESC, TFESC, FEND]),
        b"\x05" + bytes([FEND, 0x00]) + bytes([FESC]) * 40 + bytes([FEND]),
        b"\x00" + encode(bytes(300)),  # longer than the smallest max_frame
        b"\xff" + bytes([FEND, 0xFF]) + b"return" + bytes([FEND]),
    ]


def kiss_strategy() -> st.SearchStrategy[bytes]:
    from hal.kiss import FEND, FESC, TFEND, TFESC

    specials = st.lists(st.sampled_from([FEND, FESC, TFEND, TFESC, 0x00, 0x41, 0xFF]), max_size=400).map(bytes)
    return seeded(kiss_seeds, st.builds(lambda a, b: a + b, st.binary(min_size=1, max_size=1), specials))


# --- ax25 -------------------------------------------------------------------------------------------

def run_ax25(data: bytes) -> None:
    from flightsw.link import ax25

    try:
        frame = ax25.decode(data)
    except ax25.Ax25Error:
        return
    if frame.info and not data.endswith(frame.info):
        raise ContractViolation("decoded info field is not the tail of the frame")
    if len(frame.info) > len(data) - ax25.HEADER_LEN:
        raise ContractViolation("info field longer than the frame allows")


def ax25_seeds() -> list[bytes]:
    from flightsw.link import ax25

    ui = ax25.UiFrame(ax25.Address("UN0SAT", 1), ax25.Address("UN0GND"), b"hello")
    digi = bytearray(ui.encode())
    digi[13] &= 0xFE  # not the last address: a digipeater follows
    via = ax25.Address("WIDE1", 1).encode(last=True, command_bit=False)
    return [ui.encode(), bytes(digi[:14]) + via + bytes(digi[14:]), ui.encode()[:16], bytes(digi)]


def ax25_strategy() -> st.SearchStrategy[bytes]:
    return seeded(ax25_seeds)


# --- space packets ------------------------------------------------------------------------------------

def run_space_packets(data: bytes) -> None:
    from flightsw.link.packets import CRC_LEN, PacketError, crc16, split_packets

    packets, errors = split_packets(data)
    offset = 0
    for packet in packets:
        if data[offset : offset + len(packet.raw)] != packet.raw:
            raise ContractViolation("a packet is not the next bytes of the input")
        offset += len(packet.raw)
        if crc16(packet.raw[:-CRC_LEN]) != struct.unpack(">H", packet.raw[-CRC_LEN:])[0]:
            raise ContractViolation("a packet with a bad CRC was returned")
    if len(errors) > 1 or not all(isinstance(e, PacketError) for e in errors):
        raise ContractViolation(f"errors {errors!r}")


def packet_seeds() -> list[bytes]:
    from flightsw.link.auth import build_command
    from flightsw.link.packets import PacketBuilder, TimeStamp

    builder = PacketBuilder(256)
    tm = builder.telemetry(0x13, b"\x93\x01\x02\x03", TimeStamp(1, 2.5))
    tc = build_command(b"k" * 32, 0, 7, b"\x92\x01\x90")
    return [tm, tc, tm + tc, tc[:-3], tm + tm[:5]]


def packet_strategy() -> st.SearchStrategy[bytes]:
    return seeded(packet_seeds)


# --- uplink: the link component on whole frames -------------------------------------------------------

def _fix_crcs(info: bytes) -> bytes:
    """The attacker's move: recompute the CRC of every packet (as far as its length field says)."""
    from flightsw.link.packets import CRC_LEN, PRIMARY_HEADER_LEN, crc16

    out = bytearray(info)
    offset = 0
    while offset + PRIMARY_HEADER_LEN <= len(out):
        total = struct.unpack(">H", out[offset + 4 : offset + 6])[0] + 7
        if total < PRIMARY_HEADER_LEN + CRC_LEN or offset + total > len(out):
            break
        end = offset + total
        out[end - CRC_LEN : end] = struct.pack(">H", crc16(bytes(out[offset : end - CRC_LEN])))
        offset = end
    return bytes(out)


def _uplink_state(f: Flight) -> tuple[int, int, int, int, int]:
    from flightsw.link.component import STATE_COUNTER
    from flightsw.link.file_link import STATE_FILE_COUNTER

    state = f.sat.state
    return (int(state.get(STATE_COUNTER, 0)), int(state.get(STATE_FILE_COUNTER, 0)),
            f.link.stats["commands_executed"], f.files.stats["pdus_up"], f.sat.commands.stats["received"])


def _drain(f: Flight) -> None:
    queue = f.sat.commands._queue
    while not queue.empty():
        queue.get_nowait()
    inbound = f.files.entity._inbound
    while not inbound.empty():
        inbound.get_nowait()


def run_uplink(data: bytes) -> None:
    from flightsw.link import ax25
    from flightsw.link.packets import split_packets

    if not data:
        return
    f = flight()
    frame = data[1:]
    if data[0] & 1 and len(frame) > ax25.HEADER_LEN:
        frame = frame[: ax25.HEADER_LEN] + _fix_crcs(frame[ax25.HEADER_LEN :])
    before = _uplink_state(f)
    f.run(f.link.handle_frame(frame))
    after = _uplink_state(f)
    _drain(f)
    accepted = (after[2] - before[2]) + (after[3] - before[3])
    genuine = [p for p in split_packets(frame[ax25.HEADER_LEN :])[0] if p.raw in f.signed] \
        if frame[: ax25.HEADER_LEN] == f.link._header else []
    if accepted > len(genuine):
        raise ContractViolation(f"{accepted} command(s)/PDU(s) executed, {len(genuine)} signed by the key holder")
    if not accepted and (after[0], after[1]) != (before[0], before[1]):
        raise ContractViolation(f"uplink counters moved {before[:2]} -> {after[:2]} on a rejected frame")
    if after[4] - before[4] > after[2] - before[2]:
        raise ContractViolation("the dispatcher received a command the link did not authenticate")


def uplink_seeds() -> list[bytes]:
    from flightsw.link.packets import Apid

    f = flight()
    pdu = MetadataPdu(_pdu_conf(1), MetadataParams(closure_requested=True, checksum_type=ChecksumType.NULL_CHECKSUM,
                                                   file_size=4, source_file_name="a", dest_file_name="a")).pack()
    seeds = []
    for counter in range(1, 40):
        command = f.sign("exec.NO_OP", [], counter)
        file_pdu = f.sign("", [], counter, apid=Apid.FILE, body=bytes(pdu))
        seeds += [b"\x00" + f.frame(command), b"\x01" + f.frame(command + file_pdu)]
    seeds.append(b"\x00" + f.frame(f.sign("link.SET_BEACON_PERIOD", [30], 1000)))
    return seeds


def uplink_strategy() -> st.SearchStrategy[bytes]:
    f = flight()
    header = f.link._header
    after_header = st.builds(lambda mode, tail: bytes([mode]) + header + tail, st.integers(0, 1), st.binary(max_size=200))
    return seeded(uplink_seeds, after_header)


# --- command arguments: the dispatcher on authenticated bodies ---------------------------------------

def run_command_args(data: bytes) -> None:
    from flightsw.core.commands import Reason, Verdict
    from flightsw.core.component import CommandDecl

    f = flight()
    dispatcher = f.sat.commands
    s = dispatcher.stats

    async def submit() -> Verdict:
        return dispatcher.submit_packed(data, source="uplink", seq=f.next_seq())

    received = s["received"]
    verdict = f.run(submit())
    _drain(f)
    if not isinstance(verdict, Verdict):
        raise ContractViolation(f"submit_packed returned {verdict!r}")
    if s["received"] != received + 1:
        raise ContractViolation("the received counter did not count the command once")
    if s["received"] != s["accepted_total"] + s["rejected_total"] + s["malformed"]:
        raise ContractViolation("received != accepted + rejected + malformed")
    if verdict.accepted:
        opcode, args = msgpack.unpackb(data, raw=False)
        decl = f.sat.dictionary.commands[opcode].decl_as(CommandDecl)
        if len(args) != len(decl.args):
            raise ContractViolation("accepted with the wrong argument count")
        for spec, value in zip(decl.args, args, strict=True):
            spec.validate(value)  # raises (undocumented here) if an accepted value is not valid
    elif verdict.reason == Reason.OK:
        raise ContractViolation("rejected with reason OK")


def command_seeds() -> list[bytes]:
    f = flight()
    d = f.sat.dictionary
    pick = ["exec.NO_OP", "seq.STORE_SEQUENCE", "link.SET_BEACON_PERIOD", "seq.STORE_AT_OVERFLIGHT", "exec.SET_TIME"]
    args = {"exec.NO_OP": [], "seq.STORE_SEQUENCE": ["+0 exec.NO_OP", 0], "link.SET_BEACON_PERIOD": [30],
            "seq.STORE_AT_OVERFLIGHT": [43.2, 76.9, 500.0, 0, "exec.NO_OP", "[]", 0, 60], "exec.SET_TIME": [1.8e9]}
    return [msgpack.packb([d.by_name[n].id, args[n]], use_bin_type=True) for n in pick]


def command_strategy() -> st.SearchStrategy[bytes]:
    f = flight()
    opcodes = sorted(f.sat.dictionary.commands)
    boundary = st.sampled_from([0, -1, 1, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1,
                                -(2**63), 2**64 - 1, 0.0, -0.0, 1e39, -1e39, math.inf, -math.inf, math.nan,
                                1e-45, True, False, None, "", "x" * 300, "\u00e9" * 100, b"\x00"])
    structured = st.builds(lambda op, args: msgpack.packb([op, args], use_bin_type=True),
                           st.sampled_from(opcodes) | msgpack_ints,
                           st.lists(boundary | msgpack_values, max_size=9) | msgpack_values)
    return seeded(command_seeds, structured)


# --- cfdp: the satellite's file entity receiving PDUs -----------------------------------------------

FLIGHT_ID, GROUND_ID = 2, 1


def _pdu_conf(seq: int, width: int = 2, seq_width: int = 4, source: int = GROUND_ID, dest: int = FLIGHT_ID,
              direction: Direction = Direction.TOWARDS_RECEIVER) -> PduConfig:
    return PduConfig(source_entity_id=UnsignedByteField(source, width), dest_entity_id=UnsignedByteField(dest, width),
                     transaction_seq_num=UnsignedByteField(seq, seq_width), trans_mode=TransmissionMode.ACKNOWLEDGED,
                     direction=direction)


def frame_pdus(pdus: list[bytes]) -> bytes:
    """A list of PDUs as one input: 2-byte big-endian length before each."""
    return b"".join(struct.pack(">H", len(p) & 0xFFFF) + p for p in pdus)


def split_pdus(data: bytes) -> list[bytes]:
    out: list[bytes] = []
    offset = 0
    while offset + 2 <= len(data) and len(out) < 64:
        (n,) = struct.unpack(">H", data[offset : offset + 2])
        out.append(data[offset + 2 : offset + 2 + n])
        offset += 2 + n
    return out


def upload_pdus(content: bytes, seq: int, name: str = "up.txt", checksum: ChecksumType = ChecksumType.MODULAR) -> list[bytes]:
    """A whole, correct class 2 upload of ``content`` from the ground."""
    conf = _pdu_conf(seq)
    words = content + b"\0" * (-len(content) % 4)
    modular = sum(int.from_bytes(words[i : i + 4], "big") for i in range(0, len(words), 4)) % 2**32
    params = MetadataParams(closure_requested=True, checksum_type=checksum, file_size=len(content),
                            source_file_name=name, dest_file_name=name)
    return [bytes(MetadataPdu(conf, params).pack()),
            *(bytes(FileDataPdu(conf, FileDataParams(content[i : i + 100], i, None)).pack())
              for i in range(0, len(content), 100)),
            bytes(EofPdu(conf, modular.to_bytes(4, "big"), len(content)).pack())]


@dataclass
class _Entity:
    root: Path
    entity: Any


@contextlib.contextmanager
def _fresh_entity() -> Iterator[_Entity]:
    from flightsw.filetransfer import CfdpEntity
    from flightsw.filetransfer.settings import entity_config_from

    f = flight()
    root = Path(tempfile.mkdtemp(prefix="cfdp-", dir=f.directory))
    try:
        config = entity_config_from(f.sat.config)
        assert config is not None
        config.work_dir = root / "work"

        class Sink:
            async def send_pdu(self, pdu: bytes) -> None:
                pass

        yield _Entity(root, CfdpEntity(config, Sink()))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _disk_use(root: Path) -> tuple[int, list[Path]]:
    blocks, files = 0, []
    for path in root.rglob("*"):
        if path.is_file():
            blocks += path.stat().st_blocks * 512
            files.append(path)
    return blocks, files


def run_cfdp(data: bytes) -> None:
    pdus = split_pdus(data)
    with _fresh_entity() as e:
        entity = e.entity
        config = entity.config
        now = 100.0
        reported = 0
        for chunk in (pdus[: len(pdus) // 2], pdus[len(pdus) // 2 :], [], []):
            reported += len(entity._step(chunk, now).received)
            now += config.inactivity_s / 2 + 1  # timers run: NAKs, inactivity, resume
        outside = [p for p in e.root.iterdir() if p.name != "work"]
        if outside:
            raise ContractViolation(f"files written outside the entity's work directory: {outside}")
        used, files = _disk_use(e.root)
        received = sum(len(p) for p in pdus)
        if used > 4 * received + 256 * 1024:
            raise ContractViolation(f"{used} bytes on disk after receiving {received} bytes of PDUs")
        for path in files:
            if path.stat().st_size > 16 * 1024 * 1024 * 1024:
                raise ContractViolation(f"{path.name}: apparent size {path.stat().st_size} bytes")
        quarantine = [p for p in files if p.parent == config.quarantine_dir and not p.name.endswith(".meta.json")]
        if len(quarantine) > reported:
            raise ContractViolation("a file is in the quarantine that was never reported received")


def cfdp_seeds() -> list[bytes]:
    content = b"+0 exec.NO_OP\n" * 20
    whole = upload_pdus(content, 5)
    conf_back = _pdu_conf(5, source=FLIGHT_ID, dest=GROUND_ID, direction=Direction.TOWARDS_SENDER)
    return [
        frame_pdus(whole),
        frame_pdus([whole[0], whole[2], whole[-1]]),  # a gap: NAKs
        frame_pdus(whole[1:]),  # no metadata
        frame_pdus(upload_pdus(content, 6, name="../../etc/passwd")),
        frame_pdus(upload_pdus(b"", 7)),
        frame_pdus([bytes(FinishedPdu(conf_back, FinishedParams.success_params()).pack()),
                    bytes(AckPdu(_pdu_conf(5), DirectiveType.FINISHED_PDU, ConditionCode.NO_ERROR,
                                 TransactionStatus.ACTIVE).pack())]),
    ]


def _structured_pdu(kind: int, seq: int, offset: int, size: int, name: str, data: bytes, code: int,
                    widths: tuple[int, int], checksum: int) -> bytes:
    conf = _pdu_conf(seq % (256 ** widths[1]), widths[0], widths[1])
    try:
        if kind == 0:
            params = MetadataParams(closure_requested=True, checksum_type=ChecksumType(checksum), file_size=size,
                                    source_file_name=name, dest_file_name=name)
            return bytes(MetadataPdu(conf, params).pack())
        if kind == 1:
            return bytes(FileDataPdu(conf, FileDataParams(data, offset, None)).pack())
        if kind == 2:
            return bytes(EofPdu(conf, data[:4].ljust(4, b"\0"), size, condition_code=ConditionCode(code)).pack())
        if kind == 3:
            return bytes(NakPdu(conf, offset, size, [(offset, offset + len(data))]).pack())
        if kind == 4:
            return bytes(PromptPdu(conf, ResponseRequired(code & 1)).pack())
        if kind == 5:
            return bytes(KeepAlivePdu(conf, offset).pack())
    except (ValueError, TypeError, struct.error, OverflowError):
        return data  # a field spacepackets cannot even build: send the raw bytes instead
    return data


def cfdp_strategy() -> st.SearchStrategy[bytes]:
    sizes = st.sampled_from([0, 1, 100, 2**31, 2**32 - 1, 2**40, 2**63 - 1]) | st.integers(0, 2**32 - 1)
    names = st.sampled_from(["up.txt", "../x", "/etc/passwd", "a/b/c", "", ".", "..", "x" * 255, "\u00e9\u00e9", "nul\0"]) \
        | st.text(max_size=20)
    structured = st.builds(_structured_pdu, st.integers(0, 5), st.integers(0, 8), sizes, sizes, names,
                           st.binary(max_size=120), st.integers(0, 15), st.sampled_from([(1, 1), (2, 4), (4, 2), (2, 8)]),
                           st.sampled_from([0, 1, 2, 3, 15]))
    seeds = cfdp_seeds()
    pdu_lists = st.lists(structured | mutated([p for s in seeds for p in split_pdus(s)]) | st.binary(max_size=64),
                         max_size=12)
    return st.one_of(pdu_lists.map(frame_pdus), mutated(seeds), st.sampled_from(seeds))


# --- sequence files -----------------------------------------------------------------------------------

@functools.cache
def _sequence_check() -> Callable[[str, list[Any]], None]:
    f = flight()
    return lambda name, args: f.sat.commands.encode(name, args) and None


def run_sequence_file(data: bytes) -> None:
    from flightsw.components.seqfile import MAX_UTC, SequenceError, parse_sequence

    text = data.decode("utf-8", errors="replace")
    try:
        sequence = parse_sequence(text, "fuzz", _sequence_check())
    except SequenceError:
        return
    for step in sequence.steps:
        if not (math.isfinite(step.at) and (-MAX_UTC <= step.at <= MAX_UTC)):
            raise ContractViolation(f"line {step.line}: step time {step.at!r} accepted")
        if not math.isfinite(step.late_s):
            raise ContractViolation(f"line {step.line}: late limit {step.late_s!r} accepted")
    for draft in sequence.drafts(1.8e9, "fuzz"):
        if not math.isfinite(draft.due):
            raise ContractViolation(f"due time {draft.due!r}")


def sequence_seeds() -> list[bytes]:
    texts = [
        "# pass\nsequence almaty_0612\nlate SKIP_IF_LATER_THAN:60\n+0 exec.NO_OP\n+10m link.SET_BEACON_PERIOD [30]\n"
        "+1h30m10s exec.NO_OP late=RUN_LATE\n2026-12-06T05:12:30Z exec.NO_OP\n",
        "+1.5 seq.STORE_SEQUENCE [\"+0 exec.NO_OP\", 0]\n",
        "sequence x\nlate SKIP\n+90 exec.SET_TIME [1.8e9]\n",
        "+0 seq.STORE_AT_OVERFLIGHT [43.2, 76.9, 500.0, 0, \"exec.NO_OP\", \"[]\", 0, 60]\n",
    ]
    return [t.encode() for t in texts]


def sequence_strategy() -> st.SearchStrategy[bytes]:
    f = flight()
    names = sorted(f.sat.dictionary.by_name[n].name for n in f.sat.dictionary.by_name
                   if f.sat.dictionary.by_name[n].id in f.sat.dictionary.commands)
    times = st.sampled_from(["+0", "+90", "+1.5", "+2m", "+1h30m", "+10m30s", "+" + "9" * 400, "+9" * 3, "+1e9",
                             "+999999999999999999999h", "2026-12-06T05:12:30Z", "9999-12-31T23:59:59+00:00",
                             "0001-01-01T00:00:00-23:59", "2026-13-01", "+", "-5", "+nan", "+inf"]) \
        | st.from_regex(r"\+[0-9]{1,30}(h|m|s|)", fullmatch=True) | st.text(max_size=12)
    args = st.sampled_from(["", "[]", "[30]", "[1e400]", "[NaN]", "[Infinity]", "[" * 5000, "[" * 50 + "]" * 50,
                            "[\"x\", 1]", "{}", "[9" + "9" * 5000 + "]", "[1, 2, 3"]) \
        | st.lists(msgpack_values.filter(lambda v: not isinstance(v, bytes)), max_size=4).map(
            lambda v: _json_or_empty(v))
    policies = st.sampled_from(["", " late=RUN_LATE", " late=SKIP", " late=SKIP_IF_LATER_THAN:1e400",
                                " late=SKIP_IF_LATER_THAN:nan", " late=SKIP_IF_LATER_THAN:-1", " late=BOGUS"])
    line = st.builds(lambda t, c, a, p: f"{t} {c} {a}{p}", times, st.sampled_from(names) | st.text(max_size=10),
                     args, policies)
    heads = st.sampled_from(["", "sequence ok_name\n", "sequence " + "n" * 30 + "\n", "late SKIP_IF_LATER_THAN:5\n",
                             "late RUN_LATE:3\n", "# comment\n\n"])
    structured = st.builds(lambda h, lines: (h + "\n".join(lines)).encode("utf-8", "surrogatepass"), heads,
                           st.lists(line, min_size=1, max_size=5))
    return seeded(sequence_seeds, structured)


def _json_or_empty(values: list[Any]) -> str:
    import json

    try:
        return json.dumps(values)
    except (TypeError, ValueError):
        return "[]"


# --- config files -----------------------------------------------------------------------------------

def run_config(data: bytes) -> None:
    from flightsw.config import ConfigError, load
    from flightsw.config_check import check_config

    with tempfile.TemporaryDirectory(prefix="config-", dir=flight().directory) as scratch:
        path = Path(scratch) / "mission.toml"
        path.write_bytes(data)
        try:
            config = load(path)
        except ConfigError as exc:
            if "\n" in str(exc).rstrip("\n"):
                raise ContractViolation(f"a config error of more than one line: {str(exc)[:200]!r}") from None
            return
        config.storage.data_dir = scratch  # never the data directory the file names
        try:
            check_config(config)
        except ConfigError:
            return


@functools.cache
def _config_texts() -> list[str]:
    return [(REPO / "deploy" / name).read_text() for name in ("sim.toml", "flight.toml", "bench.toml")
            if (REPO / "deploy" / name).exists()]


def config_seeds() -> list[bytes]:
    return [t.encode() for t in _config_texts()]


def _edit_config(text_index: int, line_index: int, kind: int, value: str) -> bytes:
    lines = _config_texts()[text_index % len(_config_texts())].splitlines()
    assignments = [i for i, line in enumerate(lines) if "=" in line and not line.lstrip().startswith("#")]
    at = assignments[line_index % len(assignments)]
    key = lines[at].split("=", 1)[0]
    if kind == 0:
        lines[at] = f"{key}= {value}"
    elif kind == 1:
        del lines[at]
    elif kind == 2:
        lines.insert(at, lines[at])
    else:
        lines[at] = f"{value} = 1"
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def config_strategy() -> st.SearchStrategy[bytes]:
    values = st.sampled_from(["0", "-1", "1e400", "-inf", "nan", "true", "\"\"", "[]", "{}", "[[]]", "9" * 30,
                              "\"../../etc\"", "\"/dev/null\"", "65536", "1.5", "\"x\"", "{ a = 1 }", "[1, \"a\"]",
                              "2026-12-06T05:12:30Z", "0x7fffffffffffffff"]) | st.integers().map(str) \
        | st.floats().map(lambda x: repr(x).replace("inf", "inf")) | st.text(max_size=10).map(lambda s: f"\"{s}\"")
    edits = st.builds(_edit_config, st.integers(0, 2), st.integers(0, 10_000), st.integers(0, 3), values)
    return st.one_of(st.binary(max_size=200), edits, mutated(config_seeds()))


# --- ground decoder ---------------------------------------------------------------------------------

@functools.cache
def _ground_decoder() -> Any:
    from flightsw.ground.decoder import GroundDecoder
    from flightsw.ground.dictionary import GroundDictionary
    from flightsw.link import ax25

    return GroundDecoder(GroundDictionary.from_json(flight().sat.dictionary.to_json()), ax25.Address("UN0SAT", 1))


def run_ground_decoder(data: bytes) -> None:
    from flightsw.ground.decoder import DecodeError, PacketDecodeError

    try:
        decoded = _ground_decoder().decode_frame(data)
    except DecodeError as exc:
        if "\n" in str(exc):
            raise ContractViolation(f"decode error of more than one line: {str(exc)[:200]!r}") from None
        return
    for item in decoded.packets:
        if item.error is not None and not isinstance(item.error, PacketDecodeError):
            raise ContractViolation(f"packet error of type {type(item.error).__name__}")
    if not all(isinstance(e, PacketDecodeError) for e in decoded.broken):
        raise ContractViolation("a broken packet not reported as PacketDecodeError")


def decoder_seeds() -> list[bytes]:
    from flightsw.core.clock import Stamp
    from flightsw.core.commands import CommandResponse, Completion, Reason
    from flightsw.link import ax25, beacon
    from flightsw.link.packets import Apid, PacketBuilder, TimeStamp, build

    d = flight().sat.dictionary
    stamp = TimeStamp(3, 12.5)
    sat, gnd = ax25.Address("UN0SAT", 1), ax25.Address("UN0GND")
    pid = d.packets[0].id if isinstance(d.packets, list) else next(iter(d.packets))
    noop = d.by_name["exec.NO_OP"].id

    def tm(apid: int, body: bytes) -> bytes:
        return build(PacketType.TM, apid, 0, stamp.pack(), body)

    packets = [
        beacon.build_packet(PacketBuilder(240), "UN0SAT", stamp, {"last_command_opcode": noop}),
        tm(Apid.HOUSEKEEPING, msgpack.packb([pid, 3, 12.5, None, [1, 2.0, "x"]])),
        tm(Apid.EVENT, msgpack.packb([d.by_name["exec.booted"].id, 1, 3, 12.5, None, 0, {"boot": 3, "reason": "X"}])),
        tm(Apid.VERDICT, msgpack.packb(CommandResponse(7, noop, "exec.NO_OP", "g", Reason.OK, Completion.SUCCESS, "",
                                                       Stamp(3, 12.5, None)).to_wire())),
        tm(Apid.FILE, bytes(FileDataPdu(_pdu_conf(1, source=FLIGHT_ID, dest=GROUND_ID),
                                        FileDataParams(b"data", 0, None)).pack())),
    ]
    return [ax25.UiFrame(gnd, sat, p).encode() for p in packets] + [ax25.UiFrame(gnd, sat, b"".join(packets[1:])).encode()]


def decoder_strategy() -> st.SearchStrategy[bytes]:
    return seeded(decoder_seeds)


TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("kiss", "hal.kiss.KissDecoder.feed: the radio's and the ground TNC's byte stream", ("(none)",),
           run_kiss, kiss_seeds, kiss_strategy),
    Target("ax25", "flightsw.link.ax25.decode: a frame from the radio", ("Ax25Error",), run_ax25, ax25_seeds,
           ax25_strategy),
    Target("space_packets", "flightsw.link.packets.split_packets: a frame's information field",
           ("(none; PacketError returned)",), run_space_packets, packet_seeds, packet_strategy),
    Target("uplink", "LinkComponent.handle_frame: AX.25 frame -> packets -> authentication -> dispatcher / CFDP",
           ("(none; rejects counted)",), run_uplink, uplink_seeds, uplink_strategy),
    Target("command_args", "CommandDispatcher.submit_packed: an authenticated command's msgpack body",
           ("(none; verdict returned)",), run_command_args, command_seeds, command_strategy),
    Target("cfdp", "the satellite's CfdpEntity stepping received file PDUs", ("(none; errors counted)",),
           run_cfdp, cfdp_seeds, cfdp_strategy, time_limit_s=5.0),
    Target("sequence_file", "flightsw.components.seqfile.parse_sequence: an uploaded or inline sequence",
           ("SequenceError",), run_sequence_file, sequence_seeds, sequence_strategy),
    Target("config", "flightsw.config.load (+ check_config): a mission config file", ("ConfigError",),
           run_config, config_seeds, config_strategy, time_limit_s=10.0),
    Target("ground_decoder", "flightsw.ground.decoder.GroundDecoder.decode_frame: a downlinked frame",
           ("DecodeError",), run_ground_decoder, decoder_seeds, decoder_strategy),
]}


def cleanup() -> None:
    """Remove the scratch satellite of this process (its directory and loop)."""
    if flight.cache_info().currsize:
        f = flight()
        f.sat.workers.shutdown()
        f.loop.close()
        shutil.rmtree(f.directory, ignore_errors=True)
        flight.cache_clear()
        _sequence_check.cache_clear()
        _ground_decoder.cache_clear()


__all__ = ["ContractViolation", "TARGETS", "Target", "cleanup", "frame_pdus", "upload_pdus"]
