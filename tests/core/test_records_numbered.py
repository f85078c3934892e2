"""Numbered records: numbers only grow (across reboots and torn tails, whatever the clock does),
and playback reads them back by number across segments, including after old segments are gone."""

from __future__ import annotations

from pathlib import Path

from flightsw.core.records import RecordLog


def _log(path: Path) -> RecordLog:
    log = RecordLog(path, segment_bytes=4096, max_bytes=64 * 1024)
    log.open()
    return log


def test_numbers_continue_after_a_reboot_and_a_torn_tail(tmp_path: Path) -> None:
    log = _log(tmp_path)
    assert [log.append_numbered("tlm", b"x" * 100) for _ in range(100)] == list(range(100))
    log.append({"k": "other"})  # an unnumbered record does not take a number
    log.close()
    newest = log.segments()[-1]
    with open(newest, "ab") as fh:
        fh.write(b"\xf5\x5a\x00\x00")  # a record torn by a power cut
    again = _log(tmp_path)
    assert again.next_seq == 100
    assert again.append_numbered("evt", [1, 2]) == 100
    again.close()


def test_numbers_continue_when_the_newest_segment_holds_none(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for _ in range(60):
        log.append_numbered("tlm", b"y" * 100)
    for _ in range(60):  # unnumbered records fill the newest segments
        log.append({"k": "pad", "v": b"z" * 100})
    log.close()
    assert _log(tmp_path).next_seq == 60


def test_read_by_number_across_segments_and_after_old_ones_are_deleted(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for i in range(1000):  # ~110 kB: the 64 kB bound deletes the oldest segments
        log.append_numbered("tlm", i.to_bytes(2, "big") * 50)
    assert log.segments_deleted > 0
    got = log.read_numbered(0, 999, limit=5000)
    numbers = [n for n, _, _ in got]
    assert numbers == list(range(numbers[0], 1000)) and numbers[0] > 0  # oldest gone, rest complete
    middle = log.read_numbered(700, 720)
    assert [n for n, _, _ in middle] == list(range(700, 721))
    assert all(kind == "tlm" and value == n.to_bytes(2, "big") * 50 for n, kind, value in middle)
    assert [n for n, _, _ in log.read_numbered(900, 999, limit=7)] == list(range(900, 907))
    assert log.read_numbered(5000, 6000) == []
    log.close()
