"""Storage faults on a real filesystem (a small tmpfs, root only): a full or read-only card must
not tear the record log, repeat record numbers or write refused records later, and recording
resumes when space returns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flightsw.core.records import RecordLog
from reliability import tmpfs

pytestmark = pytest.mark.skipif(tmpfs.why_not() is not None, reason=tmpfs.why_not() or "")


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs.mounted(tmp_path / "card", 64) as where:
        yield where


def _fill(log: RecordLog) -> tuple[int, int]:
    ok = failed = 0
    while failed < 5:
        try:
            log.append_numbered("tlm", b"x" * 100)
            ok += 1
        except OSError:
            failed += 1
        assert ok < 10_000, "the 64 kB filesystem never filled"
    return ok, failed


def test_a_full_card_drops_whole_records_and_numbering_resumes_when_space_returns(small_fs: Path) -> None:
    log = RecordLog(small_fs / "records", segment_bytes=1 << 20, max_bytes=1 << 20)
    log.open()
    ok, failed = _fill(log)
    assert log.write_errors == failed
    tmpfs.resize(small_fs, 256)
    for _ in range(10):
        log.append_numbered("tlm", b"y" * 100)
    numbers = [r["n"] for r in log.read_all()]
    assert numbers == list(range(ok + 10))  # no repeats, no gap, nothing refused written later
    report = RecordLog(small_fs / "records", segment_bytes=1 << 20, max_bytes=1 << 20).open()
    assert report.truncated_bytes == 0 and report.records == ok + 10


def test_the_satellite_drops_refused_records_reports_them_and_records_again(small_fs: Path, new_satellite) -> None:
    """The satellite's recorder on a full card: the record is dropped (counted by the log), the
    throttled exec.store_problem reports it (its own record failing is not re-reported), and
    recording resumes when space returns."""
    sat = new_satellite(data_dir=small_fs / "data")
    sat.finalize()
    sat.records.open()
    sat.events.add_sink(sat._record_event)  # as Satellite.run attaches it
    problems: list[dict] = []
    sat.events.add_sink(lambda r: problems.append(r.args) if r.name.endswith("store_problem") else None)
    ok = 0
    while sat.records.write_errors < 3:
        sat.executive.records_recovered.emit(bytes=ok)  # any event: recorded by the satellite's sink
        ok += 1
        assert ok < 10_000, "the 64 kB filesystem never filled"
    assert problems and problems[0]["store"] == "records" and "No space left" in problems[0]["detail"]
    tmpfs.resize(small_fs, 512)
    before = sat.records.next_seq
    sat.executive.records_recovered.emit(bytes=-1)
    assert sat.records.next_seq == before + 1
    numbers = [r["n"] for r in sat.records.read_all()]
    assert numbers == list(range(len(numbers)))
