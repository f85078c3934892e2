"""Transfers both ways between our entity (the satellite) and other CFDP implementations (the ground).

Issue 22's acceptance: downlink and uplink complete byte-identical with an independent
implementation as the ground entity, at 0 % and 10 % frame loss, and with a lost Metadata or a
lost EOF, with the modular checksum and with CRC-32 (which LibreCube 0.2 lacks: the test peer
gives its filestore a zlib CRC-32). The matrix with cfdp-py's own handlers covers what LibreCube
cannot do (CRC-32C, other field widths, class 1 uplinks).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from spacepackets.cfdp import ConditionCode, TransmissionMode
from spacepackets.cfdp.pdu import DirectiveType

from flightsw.filetransfer.memory_link import MemoryLink
from flightsw.filetransfer.pdu import decode_pdu

from .ft_helpers import FLIGHT_ID, GROUND_ID, fast_config, start_station, wait_for
from .interop_peers import CfdpPyPeer, LibreCubePeer

CHECKSUMS = ["modular", "crc32", "crc32c", "null"]
WIDTHS = [(1, 1), (2, 4), (4, 2), (4, 1)]  # the ground's (entity id, sequence number) octets


def _drop_first(directive: DirectiveType):
    def rule(raw: bytes) -> bool:
        return getattr(decode_pdu(raw), "directive_type", None) == directive
    return rule


async def _cfdppy_pair(tmp_path: Path, loss: float, checksum: str, widths: tuple[int, int],
                       mode: TransmissionMode = TransmissionMode.ACKNOWLEDGED, seed: int = 5):
    link = MemoryLink(loss=loss, seed=seed)
    # the satellite sends with its own settings (modular, 2/4 octets); the ground with its own
    flight = start_station(fast_config(FLIGHT_ID, GROUND_ID, tmp_path / "flight"), link.a)
    ground_config = fast_config(GROUND_ID, FLIGHT_ID, tmp_path / "ground-cfg", entity_id_bytes=widths[0],
                                seq_num_bytes=widths[1], send_checksum=checksum)
    ground = CfdpPyPeer(ground_config, link.b, tmp_path / "ground", seq_start=200 % (1 << 8 * widths[1]),
                        mode=mode)
    task = asyncio.get_running_loop().create_task(ground.run())
    link.attach(flight.entity.receive_pdu, ground.receive_pdu)
    return link, flight, ground, task


async def _stop(flight, ground, task) -> None:
    ground.stop()
    await task
    await flight.stop()


@pytest.mark.virtual_time
@pytest.mark.parametrize("loss", [0.0, 0.1], ids=["clean", "loss10"])
@pytest.mark.parametrize("widths", WIDTHS, ids=[f"id{a}-seq{b}" for a, b in WIDTHS])
@pytest.mark.parametrize("checksum", CHECKSUMS)
async def test_uplink_from_a_cfdppy_ground(tmp_path: Path, payload_file, checksum: str,
                                           widths: tuple[int, int], loss: float) -> None:
    data = payload_file(12_345, "up.cfg")
    link, flight, ground, task = await _cfdppy_pair(tmp_path, loss, checksum, widths)
    ground.put(data, "up.cfg")
    await wait_for(lambda: bool(ground.result.sent), limit_s=300)
    assert ground.result.sent == [ConditionCode.NO_ERROR]
    assert flight.received[0].path.read_bytes() == data.read_bytes()
    await _stop(flight, ground, task)


@pytest.mark.virtual_time
@pytest.mark.parametrize("loss", [0.0, 0.1], ids=["clean", "loss10"])
@pytest.mark.parametrize("widths", WIDTHS, ids=[f"id{a}-seq{b}" for a, b in WIDTHS])
async def test_downlink_to_a_cfdppy_ground(tmp_path: Path, payload_file, widths: tuple[int, int],
                                           loss: float) -> None:
    image = payload_file(23_456, "img.bin")
    link, flight, ground, task = await _cfdppy_pair(tmp_path, loss, "crc32", widths)
    await flight.entity.put(image, "img.bin")
    await wait_for(lambda: bool(flight.outcomes and ground.result.received), limit_s=300)
    assert flight.outcomes[0].success
    assert (tmp_path / "ground" / "img.bin").read_bytes() == image.read_bytes()
    await _stop(flight, ground, task)


CFDPPY_LATE_METADATA = pytest.mark.xfail(
    strict=True, reason="cfdp-py 0.7's own receiver stalls when the Metadata arrives after the EOF "
    "(the defect compat.resume_missing_data_procedure corrects in ours); a plain cfdp-py ground "
    "has it, and it has no inactivity timer to end the transaction")


@pytest.mark.virtual_time
@pytest.mark.parametrize(("direction", "lost"), [
    pytest.param("down", DirectiveType.METADATA_PDU, marks=CFDPPY_LATE_METADATA, id="down-metadata"),
    pytest.param("down", DirectiveType.EOF_PDU, id="down-eof"),
    pytest.param("up", DirectiveType.METADATA_PDU, id="up-metadata"),
    pytest.param("up", DirectiveType.EOF_PDU, id="up-eof"),
])
async def test_a_lost_metadata_or_eof_is_recovered_with_a_cfdppy_ground(
        tmp_path: Path, payload_file, direction: str, lost: DirectiveType) -> None:
    data = payload_file(9_000, "x.bin")
    link, flight, ground, task = await _cfdppy_pair(tmp_path, 0.0, "crc32", (1, 2))
    if direction == "down":
        link.a.drop_once(_drop_first(lost))
        await flight.entity.put(data, "x.bin")
        await wait_for(lambda: bool(flight.outcomes and ground.result.received), limit_s=120)
        assert flight.outcomes[0].success
        assert (tmp_path / "ground" / "x.bin").read_bytes() == data.read_bytes()
    else:
        link.b.drop_once(_drop_first(lost))
        ground.put(data, "x.bin")
        await wait_for(lambda: bool(ground.result.sent), limit_s=300)
        assert ground.result.sent == [ConditionCode.NO_ERROR]
        assert flight.received[0].path.read_bytes() == data.read_bytes()
    assert link.a.counters.lost + link.b.counters.lost == 1
    await _stop(flight, ground, task)


@pytest.mark.virtual_time
@pytest.mark.parametrize("checksum", CHECKSUMS)
async def test_class1_uplink_from_a_cfdppy_ground(tmp_path: Path, payload_file, checksum: str) -> None:
    data = payload_file(7_000, "seq.txt")
    link, flight, ground, task = await _cfdppy_pair(tmp_path, 0.0, checksum, (2, 2),
                                                    mode=TransmissionMode.UNACKNOWLEDGED)
    ground.put(data, "seq.txt")
    await wait_for(lambda: bool(flight.received), limit_s=60)
    assert flight.received[0].path.read_bytes() == data.read_bytes()
    await _stop(flight, ground, task)


@pytest.mark.virtual_time
async def test_class1_uplink_whose_metadata_is_lost_ends_cleanly(tmp_path: Path, payload_file) -> None:
    """Unacknowledged: nobody can ask for the lost Metadata; nothing may hang or be delivered."""
    data = payload_file(7_000, "seq.txt")
    link, flight, ground, task = await _cfdppy_pair(tmp_path, 0.0, "crc32", (2, 2),
                                                    mode=TransmissionMode.UNACKNOWLEDGED)
    link.b.drop_once(_drop_first(DirectiveType.METADATA_PDU))
    ground.put(data, "seq.txt")
    await wait_for(lambda: bool(ground.result.sent), limit_s=60)
    await asyncio.sleep(2 * flight.entity.config.inactivity_s)
    assert not flight.received and flight.entity.incoming_count == 0
    assert flight.entity.stats.errors.by_kind["PduIgnoredForDest"] >= 1
    ground.put(data, "seq.txt")  # the next transaction goes through
    await wait_for(lambda: bool(flight.received), limit_s=60)
    assert flight.received[0].path.read_bytes() == data.read_bytes()
    await _stop(flight, ground, task)


# ---- LibreCube cfdp 0.2: an independent implementation (own threads, wall-clock timers)

async def _librecube_pair(tmp_path: Path, loss: float, seed: int = 9, checksum: str = "modular"):
    link = MemoryLink(loss=loss, seed=seed)
    flight = start_station(fast_config(FLIGHT_ID, GROUND_ID, tmp_path / "flight", max_pdu_len=600,
                                       ack_interval_s=0.5, nak_interval_s=0.5, inactivity_s=20.0,
                                       ack_limit=40, nak_limit=40, send_checksum=checksum), link.a)
    ground = LibreCubePeer(GROUND_ID, FLIGHT_ID, link.b, tmp_path / "ground", asyncio.get_running_loop(),
                           checksum=checksum)
    link.attach(flight.entity.receive_pdu, ground.receive_pdu)
    return link, flight, ground


LIBRECUBE_CHECKSUMS = ["modular", "crc32"]  # crc32: added to its filestore (interop_peers)


@pytest.mark.parametrize("checksum", LIBRECUBE_CHECKSUMS)
@pytest.mark.parametrize("loss", [0.0, 0.1], ids=["clean", "loss10"])
async def test_downlink_to_a_librecube_ground(tmp_path: Path, payload_file, loss: float, checksum: str) -> None:
    image = payload_file(20_000, "img.bin")
    link, flight, ground = await _librecube_pair(tmp_path, loss, checksum=checksum)
    try:
        await flight.entity.put(image, "img.bin")
        await wait_for(lambda: bool(flight.outcomes and (ground.result.received or ground.result.errors)),
                       limit_s=60)
        assert flight.outcomes[0].success, flight.outcomes
        assert ground.result.received and not ground.result.errors  # LibreCube's own verdict
        assert (tmp_path / "ground" / "img.bin").read_bytes() == image.read_bytes()
    finally:
        ground.stop()
        await flight.stop()


@pytest.mark.parametrize("checksum", LIBRECUBE_CHECKSUMS)
@pytest.mark.parametrize("loss", [0.0, 0.1], ids=["clean", "loss10"])
async def test_uplink_from_a_librecube_ground(tmp_path: Path, loss: float, checksum: str) -> None:
    data = bytes(range(256)) * 70 + b"odd"
    source = tmp_path / "ground" / "up.cfg"
    source.parent.mkdir(parents=True)
    source.write_bytes(data)
    link, flight, ground = await _librecube_pair(tmp_path, loss, checksum=checksum)
    try:
        ground.put(source, "up.cfg")
        await wait_for(lambda: bool(flight.received) and bool(ground.result.sent), limit_s=60)
        assert flight.received[0].path.read_bytes() == data
        assert ground.result.sent == [ConditionCode.NO_ERROR]
    finally:
        ground.stop()
        await flight.stop()


@pytest.mark.parametrize("lost", [DirectiveType.METADATA_PDU, DirectiveType.EOF_PDU],
                         ids=["metadata", "eof"])
@pytest.mark.parametrize("direction", ["down", "up"])
async def test_a_lost_metadata_or_eof_is_recovered_with_a_librecube_ground(
        tmp_path: Path, direction: str, lost: DirectiveType) -> None:
    data = bytes(range(251)) * 40
    link, flight, ground = await _librecube_pair(tmp_path, 0.0)
    try:
        if direction == "down":
            image = tmp_path / "outbox" / "img.bin"
            image.parent.mkdir()
            image.write_bytes(data)
            link.a.drop_once(_drop_first(lost))
            await flight.entity.put(image, "img.bin")
            await wait_for(lambda: bool(flight.outcomes), limit_s=60)
            assert flight.outcomes[0].success, flight.outcomes
            assert (tmp_path / "ground" / "img.bin").read_bytes() == data
        else:
            source = tmp_path / "ground" / "up.cfg"
            source.write_bytes(data)
            link.b.drop_once(_drop_first(lost))
            ground.put(source, "up.cfg")
            await wait_for(lambda: bool(flight.received) and bool(ground.result.sent), limit_s=60)
            assert flight.received[0].path.read_bytes() == data
            assert ground.result.sent == [ConditionCode.NO_ERROR]
        assert link.a.counters.lost + link.b.counters.lost == 1
    finally:
        ground.stop()
        await flight.stop()
