"""A corrupt frame inside the record log (a bad card block, a bit flip) loses that frame only:
readers and recovery resync to the next valid frame, in older segments and in the newest one,
instead of taking the rest of the segment for a torn tail."""

from __future__ import annotations

from pathlib import Path

from flightsw.core.records import REC_HEADER, RecordLog, scan


def _log(path: Path) -> RecordLog:
    log = RecordLog(path, segment_bytes=4096, max_bytes=256 * 1024)
    log.open()
    return log


def _frame_offsets(data: bytes) -> list[int]:
    """Start of every frame of a valid segment."""
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        _, length, _ = REC_HEADER.unpack_from(data, pos)
        pos += REC_HEADER.size + length
    return offsets


def _filled(path: Path, count: int = 300) -> RecordLog:
    log = _log(path)
    for i in range(count):
        log.append_numbered("tlm", i.to_bytes(2, "big") * 40)
    log.close()
    return log


def _numbers(log: RecordLog) -> list[int]:
    return [n for n, _, _ in log.read_numbered(0, 10**9, limit=10**6)]


def _damage(segment: Path, frame: int, at: int, garbage: bytes) -> int:
    """Overwrite bytes of one frame (``at`` from its start); returns its record number."""
    raw = bytearray(segment.read_bytes())
    start = _frame_offsets(bytes(raw))[frame]
    first = scan(bytes(raw))[0]
    raw[start + at : start + at + len(garbage)] = garbage
    segment.write_bytes(bytes(raw))
    import msgpack

    return int(msgpack.unpackb(first[frame], raw=False)["n"])


def test_a_corrupt_frame_in_an_older_segment_loses_only_that_frame(tmp_path: Path) -> None:
    _filled(tmp_path)
    log = _log(tmp_path)
    segments = log.segments()
    assert len(segments) >= 3
    lost = _damage(segments[0], 5, REC_HEADER.size + 3, b"\x00\xff\x00")  # a payload byte: its CRC fails
    assert _numbers(log) == [n for n in range(300) if n != lost]
    assert len(list(log.read_all())) == 299
    log.close()


def test_a_corrupt_header_resyncs_to_the_next_valid_frame(tmp_path: Path) -> None:
    _filled(tmp_path)
    log = _log(tmp_path)
    segment = log.segments()[1]
    lost = _damage(segment, 3, 0, b"\x13\x37\xff\xff\xff\xff")  # magic and a huge length
    assert _numbers(log) == [n for n in range(300) if n != lost]
    log.close()


def test_recovery_keeps_the_newest_segments_records_after_a_corrupt_frame(tmp_path: Path) -> None:
    _filled(tmp_path)
    newest = RecordLog(tmp_path).segments()[-1]
    lost = _damage(newest, 2, REC_HEADER.size + 1, b"\xee\xee")
    with open(newest, "ab") as fh:
        fh.write(b"\xf5\x5a\x00\x00")  # and a torn tail, as a power cut leaves it
    log = RecordLog(tmp_path, segment_bytes=4096, max_bytes=256 * 1024)
    report = log.open()
    assert report.truncated_bytes == 4  # only the torn tail is cut
    assert log.next_seq == 300  # numbering continues after the newest record, not the corrupt one
    assert log.append_numbered("tlm", b"new") == 300
    assert _numbers(log) == [n for n in range(301) if n != lost]
    log.close()


def test_resync_skips_garbage_between_frames() -> None:
    from flightsw.core.records import frame, scan_resync

    data = frame(b"one") + b"\xf5\x5a garbage \xf5" + frame(b"two") + frame(b"three")[:-1]
    good, end, skipped = scan_resync(data)
    assert good == [b"one", b"two"]
    assert end == len(frame(b"one")) + len(b"\xf5\x5a garbage \xf5") + len(frame(b"two"))
    assert skipped == 1
