"""Regression tests for the known cfdp-py 0.7 / spacepackets 0.32 defects the entity works around."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from cfdppy.filestore import NativeFilestore
from spacepackets.cfdp import ConditionCode, PduConfig, TransmissionMode
from spacepackets.cfdp.pdu import (
    AckPdu,
    DirectiveType,
    EofPdu,
    FinishedPdu,
    NakPdu,
    TransactionStatus,
)
from spacepackets.cfdp.pdu.finished import FinishedParams
from spacepackets.util import UnsignedByteField

from flightsw.filetransfer.clock import ClockedCountdown, handler_time
from flightsw.filetransfer.memory_link import MemoryLink
from flightsw.filetransfer.pdu import PduDecodeError, decode_pdu

from .ft_helpers import (
    FLIGHT_ID,
    GROUND_ID,
    fast_config,
    start_pair,
    start_station,
    wait_for,
)

# The entity, its timers and the in-memory link all run on the loop's clock: on the virtual-time
# loop a test takes the real time of its computation only, and no real-time race can flake it.
pytestmark = pytest.mark.virtual_time


def _is(directive: DirectiveType, acked: DirectiveType | None = None):
    def rule(raw: bytes) -> bool:
        pdu = decode_pdu(raw)
        if getattr(pdu, "directive_type", None) != directive:
            return False
        return acked is None or pdu.directive_code_of_acked_pdu == acked

    return rule


@pytest.mark.parametrize("also_lose_first_finished", [False, True])
async def test_lost_eof_ack_does_not_stall_the_transfer(
    tmp_path: Path, payload_file, also_lose_first_finished: bool
) -> None:
    source = payload_file(40_000)

    pair = await start_pair(tmp_path)
    pair.link.b.drop_once(_is(DirectiveType.ACK_PDU, DirectiveType.EOF_PDU))
    if also_lose_first_finished:
        pair.link.b.drop_once(_is(DirectiveType.FINISHED_PDU))
    await pair.flight.entity.put(source, "image.bin")
    await wait_for(lambda: pair.flight.outcomes and pair.ground.received, limit_s=20)
    assert pair.flight.outcomes[0].success
    assert pair.ground.received[0].path.read_bytes() == source.read_bytes()
    assert pair.link.b.counters.lost >= 1
    synthesised = (pair.flight.entity.stats.eof_acks_synthesised
                   + pair.ground.entity.stats.eof_acks_synthesised)
    assert synthesised >= 1
    await pair.flight.stop()
    await pair.ground.stop()


def test_timers_ignore_wall_clock_steps_and_follow_the_given_clock(monkeypatch) -> None:
    with handler_time(100.0):
        timer = ClockedCountdown.from_seconds(5.0)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 10 * 3600.0)  # clock jumps 10 h
    with handler_time(104.9):
        assert not timer.timed_out()
    monkeypatch.setattr(time, "time", lambda: real_time() - 10 * 3600.0)  # and back
    with handler_time(105.0):
        assert timer.timed_out()


async def test_entity_ack_timer_runs_on_virtual_time_not_wall_clock(tmp_path: Path, payload_file,
                                                             monkeypatch) -> None:
    """No ACK ever comes back: the EOF is repeated only when the entity's own clock advances."""
    source = payload_file(3_000)
    virtual = [1000.0]
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 86400.0)

    link = MemoryLink()
    flight = start_station(
        fast_config(FLIGHT_ID, GROUND_ID, tmp_path / "flight", ack_interval_s=30.0,
                    inactivity_s=1e6),
        link.a, clock=lambda: virtual[0])
    eofs: list[bytes] = []
    link.attach(None, lambda raw: eofs.append(raw) if _is(DirectiveType.EOF_PDU)(raw) else None)
    await flight.entity.put(source, "x.bin")
    await wait_for(lambda: len(eofs) == 1)
    await asyncio.sleep(0.5)  # many ticks (no real wait: virtual loop), wall clock a day off, entity clock frozen
    assert len(eofs) == 1
    virtual[0] += 31.0
    await wait_for(lambda: len(eofs) == 2)
    await flight.stop()


def test_eof_condition_code_nibble_is_decoded(tmp_path: Path) -> None:
    conf = PduConfig.default()
    raw = EofPdu(file_checksum=b"\0" * 4, file_size=10, pdu_conf=conf,
                 condition_code=ConditionCode.CANCEL_REQUEST_RECEIVED).pack()
    if EofPdu.unpack(raw).condition_code == ConditionCode.CANCEL_REQUEST_RECEIVED:
        pytest.skip("spacepackets fixed the EOF nibble upstream; the workaround can go")
    decoded = decode_pdu(raw)
    assert decoded.condition_code == ConditionCode.CANCEL_REQUEST_RECEIVED
    assert decode_pdu(decoded.pack()).condition_code == ConditionCode.CANCEL_REQUEST_RECEIVED
    no_error = EofPdu(file_checksum=b"\0" * 4, file_size=10, pdu_conf=conf).pack()
    assert decode_pdu(no_error).condition_code == ConditionCode.NO_ERROR


def test_decode_rejects_garbage_with_a_clear_error() -> None:
    with pytest.raises(PduDecodeError, match="too short"):
        decode_pdu(b"\x01")
    with pytest.raises(PduDecodeError, match="undecodable"):
        decode_pdu(b"\x20\x00\xff\x11" + b"\xee" * 3)


def _conf(seq: int) -> PduConfig:
    return PduConfig(
        source_entity_id=UnsignedByteField(FLIGHT_ID, 2),
        dest_entity_id=UnsignedByteField(GROUND_ID, 2),
        transaction_seq_num=UnsignedByteField(seq, 4),
        trans_mode=TransmissionMode.ACKNOWLEDGED,
    )


async def test_unexpected_pdus_are_counted_and_never_crash_the_service(tmp_path: Path, payload_file) -> None:
    source = payload_file(200_000)

    pair = await start_pair(tmp_path)
    pair.link.per_pdu_delay_s = 0.0005
    transfer = await pair.flight.entity.put(source, "image.bin")
    await wait_for(lambda: pair.link.a.counters.delivered > 20)
    conf = _conf(transfer)
    hostile = [
        b"\x00\x01",  # too short
        b"\x20\x00\xff\x11" + b"\xee" * 40,  # garbage
        NakPdu(conf, 0, 10**9, [(900_000_000, 900_000_100)]).pack(),  # beyond progress
        AckPdu(conf, DirectiveType.EOF_PDU, ConditionCode.NO_ERROR,
               TransactionStatus.ACTIVE).pack(),  # ACK while still sending data
        FinishedPdu(_conf(777), FinishedParams.success_params()).pack(),  # unknown
    ]
    for raw in hostile:
        pair.flight.entity.receive_pdu(bytes(raw))
    await wait_for(lambda: pair.flight.outcomes and pair.ground.received)
    assert pair.flight.outcomes[0].success
    assert pair.ground.received[0].path.read_bytes() == source.read_bytes()
    kinds = pair.flight.entity.stats.errors.by_kind
    assert kinds["PduDecodeError"] == 2
    assert kinds["InvalidNakPdu"] == 1
    assert pair.flight.entity.stats.errors.total >= 3
    assert not pair.flight.task.done()
    await pair.flight.stop()
    await pair.ground.stop()


async def test_file_checksums_are_computed_off_the_event_loop(tmp_path: Path, payload_file,
                                                              monkeypatch) -> None:
    source = payload_file(300_000)
    threads: list[int] = []
    original = NativeFilestore.calculate_checksum

    def spy(self, *args, **kwargs):
        threads.append(threading.get_ident())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(NativeFilestore, "calculate_checksum", spy)

    loop_thread = threading.get_ident()
    pair = await start_pair(tmp_path)
    await pair.flight.entity.put(source, "image.bin")
    await wait_for(lambda: pair.flight.outcomes and pair.ground.received)
    await pair.flight.stop()
    await pair.ground.stop()
    assert len(threads) >= 2  # sender's EOF checksum and receiver's verification
    assert loop_thread not in threads


def _flip_bit(path: Path, offset: int) -> None:
    with open(path, "r+b") as part:
        part.seek(offset)
        byte = part.read(1)
        part.seek(offset)
        part.write(bytes([byte[0] ^ 0x01]))


async def test_class2_receiver_verifies_the_crc_itself_and_the_sender_retries(
    tmp_path: Path, payload_file
) -> None:
    """cfdp-py 0.7 never checks the CRC in class 2 when no segment was lost: the entity does."""
    source = payload_file(200_000)

    pair = await start_pair(tmp_path)
    pair.link.per_pdu_delay_s = 0.0005
    await pair.flight.entity.put(source, "image.bin")
    staging = tmp_path / "ground" / "staging" / f"{FLIGHT_ID}-1.part"
    await wait_for(lambda: staging.exists() and staging.stat().st_size > 50_000)
    _flip_bit(staging, 10)  # a bit flip on the SD card
    pair.link.per_pdu_delay_s = 0.0
    await wait_for(lambda: pair.ground.received and len(pair.flight.outcomes) >= 2, limit_s=20)
    first = pair.flight.outcomes[0]
    assert not first.success and first.condition == "FILE_CHECKSUM_FAILURE"
    assert pair.flight.outcomes[-1].success
    assert pair.ground.entity.stats.errors.by_kind["FileChecksumFailure"] == 1
    assert pair.ground.received[0].path.read_bytes() == source.read_bytes()
    assert len(list((tmp_path / "ground" / "quarantine").glob("image*.bin"))) == 1
    await pair.flight.stop()
    await pair.ground.stop()

