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


async def test_a_store_slot_that_does_not_load_is_recorded_from_the_start_up(tmp_path: Path, new_satellite,
                                                                             sat_runner) -> None:
    """exec.store_problem of a corrupt slot is emitted while the satellite is built, before the
    recorder attaches: it is recorded all the same (it used to reach only the journal)."""
    first = new_satellite(data_dir=tmp_path / "data")
    first.state.save_blocking()  # boot() saved slot a; now slot b is the newest
    newest = max((tmp_path / "data").glob("state.[ab]"), key=lambda p: p.stat().st_mtime_ns)
    newest.write_bytes(b"garbage" * 20)
    first.workers.shutdown()
    sat = await sat_runner.start(new_satellite(data_dir=tmp_path / "data"))
    await sat_runner.stop(sat)
    problems = [r for r in RecordLog(tmp_path / "data" / "records").read_all()
                if r.get("k") == "evt" and r["v"][0] == sat.executive.store_problem.id]
    assert problems and newest.name in str(problems[0]["v"])


async def test_state_and_parameter_saves_on_a_full_card_are_reported_not_raised(small_fs: Path) -> None:
    """A save the card refuses used to raise into whoever saved: on a full card time.checkpoint,
    link.rx and deploy.sequence crashed until a critical one failed and the watchdog reset the board,
    whose next boot could not save its boot count (the storage-fault campaign found it)."""
    from flightsw.core.params import ParameterStore
    from flightsw.core.state import StateStore

    state = StateStore(small_fs / "state")
    state.load()
    state.boot()
    errors: list[OSError] = []
    state.on_save_error = errors.append
    (small_fs / "filler").write_bytes(b"")
    with open(small_fs / "filler", "ab", buffering=0) as fh, pytest.raises(OSError):
        while True:
            fh.write(b"f" * 4096)
    state.set("k", "x" * 3000)
    await state.save()  # no exception
    state.save_blocking()
    assert state.save_errors == 2 and len(errors) == 2 and "No space left" in (state.last_save_error or "")
    params = ParameterStore(small_fs / "params")
    params.save_blocking()
    assert params.save_errors == 1
    (small_fs / "filler").unlink()
    await state.save()
    reloaded = StateStore(small_fs / "state")
    reloaded.load()
    assert reloaded.get("k") == "x" * 3000 and state.save_errors == 2
