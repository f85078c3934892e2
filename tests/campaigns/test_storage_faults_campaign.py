"""Smoke version of the storage-fault campaign (`make reliability` runs the same cases): the flight
process on a full card (a real tmpfs, root only), with failing fsyncs and with corrupt store slots
keeps flying, reports the fault, and records and transmits after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability import storage_faults, tmpfs


@pytest.mark.timeout(240)
@pytest.mark.parametrize("case", [c for c in storage_faults.CASES if c != "disk_full" or tmpfs.why_not() is None])
def test_the_satellite_flies_through_a_storage_fault(case: str, tmp_path: Path) -> None:
    result = storage_faults.run(tmp_path, (case,), log=lambda _: None)
    [outcome] = result.cases
    assert outcome.verdict == "ok", outcome
    if case == "disk_full":
        assert outcome.write_errors > 0 and "No space left" in outcome.first_report


def test_the_verdict_names_what_went_wrong() -> None:
    bad = storage_faults.CaseResult("disk_full", flew_to_end=True, resets=1, store_problems=0, records_after=5,
                                    frames_after=0)
    bad.judge()
    assert bad.verdict == "1 resets; no exec.store_problem report; no downlink after the fault"
