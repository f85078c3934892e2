"""Issue 22: the PDUs our entity emits and accepts are what CCSDS 727.0-B-5 asks for.

Each test is the regression test of one defect found when other CFDP grounds talked to us.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from spacepackets.cfdp import (
    ChecksumType,
    ConditionCode,
    Direction,
    PduConfig,
    TransmissionMode,
)
from spacepackets.cfdp.pdu import (
    AckPdu,
    DirectiveType,
    EofPdu,
    FileDataPdu,
    FinishedPdu,
    MetadataPdu,
)
from spacepackets.cfdp.pdu.file_data import FileDataParams
from spacepackets.cfdp.pdu.finished import FinishedParams
from spacepackets.cfdp.pdu.metadata import MetadataParams
from spacepackets.util import UnsignedByteField

from flightsw.filetransfer.memory_link import MemoryLink
from flightsw.filetransfer.pdu import decode_pdu

from .ft_helpers import FLIGHT_ID, GROUND_ID, fast_config, start_pair, start_station, wait_for


def _directive(raw: bytes) -> DirectiveType | None:
    return getattr(decode_pdu(raw), "directive_type", None)


def _tap(end, seen: list[bytes]) -> None:
    """Record every PDU sent from ``end`` (before loss)."""
    original = end.send_pdu

    async def send(raw: bytes) -> None:
        seen.append(bytes(raw))
        await original(raw)

    end.send_pdu = send


@pytest.mark.virtual_time
@pytest.mark.parametrize(("configured", "wire"), [
    (None, ChecksumType.MODULAR),  # the default: what every CFDP implementation has
    ("crc32", ChecksumType.CRC_32),
    ("crc32c", ChecksumType.CRC_32C),
    ("null", ChecksumType.NULL_CHECKSUM),
])
async def test_the_sender_declares_the_configured_checksum_and_the_receiver_honours_it(
        tmp_path: Path, payload_file, configured: str | None, wire: ChecksumType) -> None:
    """Defects 1 and 2: the satellite always sent CRC-32 and its receiver always checked CRC-32."""
    source = payload_file(30_001)  # not a multiple of 4: the modular checksum pads the last word
    overrides = {} if configured is None else {"send_checksum": configured}
    pair = await start_pair(tmp_path, loss=0.1, seed=3, **overrides)
    sent: list[bytes] = []
    _tap(pair.link.a, sent)
    await pair.flight.entity.put(source, "img.bin")
    await wait_for(lambda: pair.flight.outcomes and pair.ground.received, limit_s=120)
    metadata = next(decode_pdu(r) for r in sent if _directive(r) == DirectiveType.METADATA_PDU)
    assert metadata.checksum_type == wire
    assert pair.flight.outcomes[0].success
    assert pair.ground.received[0].path.read_bytes() == source.read_bytes()
    await pair.flight.stop()
    await pair.ground.stop()


def _conf(source: int, dest: int, seq: int, id_bytes: int, seq_bytes: int,
          direction: Direction = Direction.TOWARDS_RECEIVER) -> PduConfig:
    return PduConfig(
        source_entity_id=UnsignedByteField(source, id_bytes),
        dest_entity_id=UnsignedByteField(dest, id_bytes),
        transaction_seq_num=UnsignedByteField(seq, seq_bytes),
        trans_mode=TransmissionMode.ACKNOWLEDGED,
        direction=direction,
    )


def _hand_built_upload(data: bytes, checksum_type: ChecksumType, checksum: bytes,
                       seq: int = 9) -> list[bytes]:
    """A whole class 2 upload from a foreign ground: 1-octet ids and sequence number."""
    conf = _conf(GROUND_ID, FLIGHT_ID, seq, 1, 1)
    params = MetadataParams(closure_requested=True, checksum_type=checksum_type, file_size=len(data),
                            source_file_name="up.cfg", dest_file_name="up.cfg")
    return [
        MetadataPdu(conf, params).pack(),
        FileDataPdu(conf, FileDataParams(data, 0, None)).pack(),
        EofPdu(conf, checksum, len(data)).pack(),
    ]


async def _run_hand_built(tmp_path: Path, pdus: list[bytes]) -> tuple[object, list[bytes]]:
    link = MemoryLink()
    flight = start_station(fast_config(FLIGHT_ID, GROUND_ID, tmp_path / "flight"), link.a)
    answers: list[bytes] = []
    link.attach(flight.entity.receive_pdu, answers.append)
    for raw in pdus:
        flight.entity.receive_pdu(bytes(raw))
    await wait_for(lambda: any(_directive(r) == DirectiveType.FINISHED_PDU for r in answers))
    return flight, answers


@pytest.mark.virtual_time
async def test_a_foreign_upload_with_the_modular_checksum_is_accepted(tmp_path: Path) -> None:
    """Defect 2: a correct LibreCube upload was answered "file checksum failure" and discarded."""
    data = bytes(range(256)) * 3 + b"tail!"
    words = data + b"\0" * (-len(data) % 4)
    modular = sum(int.from_bytes(words[i:i + 4], "big") for i in range(0, len(words), 4)) % 2**32
    flight, answers = await _run_hand_built(
        tmp_path, _hand_built_upload(data, ChecksumType.MODULAR, modular.to_bytes(4, "big")))
    finished = next(decode_pdu(r) for r in answers if _directive(r) == DirectiveType.FINISHED_PDU)
    assert finished.condition_code == ConditionCode.NO_ERROR
    assert flight.received[0].path.read_bytes() == data
    # our answers in the foreign ground's transaction use its widths (it is the source)
    assert finished.pdu_header.pdu_conf.source_entity_id.byte_len == 1
    await flight.stop()


@pytest.mark.virtual_time
async def test_a_checksum_type_we_do_not_implement_is_refused_with_its_condition_code(
        tmp_path: Path) -> None:
    """CRC-32 Proximity-1 (type 1) is not in cfdp-py: "unsupported checksum type", file discarded.

    That condition is not a fault: the standard's Finished carries no fault location for it."""
    flight, answers = await _run_hand_built(
        tmp_path, _hand_built_upload(b"x" * 100, ChecksumType.CRC_32_PROXIMITY_1, b"\1\2\3\4"))
    finished = next(decode_pdu(r) for r in answers if _directive(r) == DirectiveType.FINISHED_PDU)
    assert finished.condition_code == ConditionCode.UNSUPPORTED_CHECKSUM_TYPE
    assert finished.fault_location is None
    assert not flight.received and not list((tmp_path / "flight" / "quarantine").iterdir())
    assert flight.entity.stats.errors.by_kind["UnsupportedChecksumType"] == 1
    await flight.stop()


@pytest.mark.virtual_time
async def test_a_finished_with_an_error_names_the_fault_location(tmp_path: Path) -> None:
    """Defect 3: the "file checksum failure" Finished carried no fault-location entity id."""
    flight, answers = await _run_hand_built(
        tmp_path, _hand_built_upload(b"y" * 100, ChecksumType.CRC_32, b"\0\0\0\0"))
    finished = next(decode_pdu(r) for r in answers if _directive(r) == DirectiveType.FINISHED_PDU)
    assert finished.condition_code == ConditionCode.FILE_CHECKSUM_FAILURE
    assert finished.fault_location is not None
    assert int.from_bytes(finished.fault_location.value, "big") == FLIGHT_ID
    await flight.stop()


@pytest.mark.virtual_time
@pytest.mark.parametrize(("id_bytes", "seq_bytes"), [(2, 4), (1, 2), (4, 1)])
async def test_the_ack_of_a_stale_finished_uses_our_own_widths(
        tmp_path: Path, payload_file, id_bytes: int, seq_bytes: int) -> None:
    """Defect 4: that ACK copied the peer's entity-id and sequence-number widths."""
    source = payload_file(2_000)
    pair = await start_pair(tmp_path, entity_id_bytes=id_bytes, seq_num_bytes=seq_bytes)
    sent: list[bytes] = []
    _tap(pair.link.a, sent)
    transfer = await pair.flight.entity.put(source, "a.bin")
    await wait_for(lambda: bool(pair.flight.outcomes))
    ours = decode_pdu(sent[0]).pdu_header.pdu_conf
    assert (ours.source_entity_id.byte_len, ours.transaction_seq_num.byte_len) == (id_bytes, seq_bytes)
    sent.clear()
    # the ground repeats its Finished, encoded with other widths than ours
    other = 8 if seq_bytes != 8 else 4
    stale = FinishedPdu(_conf(FLIGHT_ID, GROUND_ID, transfer, 4 if id_bytes != 4 else 2, other,
                              Direction.TOWARDS_SENDER), FinishedParams.success_params())
    pair.flight.entity.receive_pdu(stale.pack())
    await wait_for(lambda: any(_directive(r) == DirectiveType.ACK_PDU for r in sent))
    ack: AckPdu = next(decode_pdu(r) for r in sent if _directive(r) == DirectiveType.ACK_PDU)
    conf = ack.pdu_header.pdu_conf
    assert ack.directive_code_of_acked_pdu == DirectiveType.FINISHED_PDU
    assert conf.source_entity_id.byte_len == id_bytes
    assert conf.transaction_seq_num.byte_len == seq_bytes
    assert (conf.source_entity_id.value, conf.dest_entity_id.value) == (FLIGHT_ID, GROUND_ID)
    await pair.flight.stop()
    await pair.ground.stop()


@pytest.mark.virtual_time
async def test_an_eof_before_the_metadata_does_not_stall_the_receiver(tmp_path: Path, payload_file) -> None:
    """Defect 6: the receiver NAKed everything once, then stayed silent until inactivity.

    The receiver is absent while the sender sends Metadata, data and the first EOF; the first
    PDU it sees is a repeated EOF (as after a lost Metadata in a resumed transfer).
    """
    source = payload_file(20_000)
    pair = await start_pair(tmp_path, inactivity_s=60.0, ack_limit=50)
    pair.link.attach(pair.flight.entity.receive_pdu, None)
    sent: list[bytes] = []
    _tap(pair.link.a, sent)
    await pair.flight.entity.put(source, "late-metadata.bin")
    await wait_for(lambda: sum(_directive(r) == DirectiveType.EOF_PDU for r in sent) == 1)
    pair.attach()  # the receiver is back: the repeated EOF is the first PDU it gets
    began = len(sent)
    await wait_for(lambda: pair.flight.outcomes and pair.ground.received, limit_s=30)
    first_seen = next(r for r in sent[began:] if _directive(r) is not None)
    assert _directive(first_seen) == DirectiveType.EOF_PDU
    assert pair.flight.outcomes[0].success
    assert pair.ground.received[0].path.read_bytes() == source.read_bytes()
    await pair.flight.stop()
    await pair.ground.stop()
