"""Smoke version of the soak campaign (`make reliability` flies 7 simulated days): every fault
type once in 2.6 simulated hours around two passes, the loss-of-contact ladder shortened to
minutes; each fault must get its documented response and the satellite must recover from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reliability import soak
from reliability.__main__ import REPO, markdown, verdicts


@pytest.mark.timeout(120)
def test_every_fault_gets_its_documented_response_and_recovers(tmp_path: Path) -> None:
    result = soak.run(tmp_path, soak.COMPRESSED_DAYS, seed=16, compressed=True, log=lambda _: None)
    assert not result.error, result.error
    assert result.verdicts == [], result.verdicts
    assert set(result.by_kind) == {str(k) for k in soak.FaultKind}
    for kind, x in result.by_kind.items():
        assert x["injected"] == x["recovered"] == x["response_ok"] == 1, (kind, x)
    assert result.services_failed_end == [] and result.leaked_tasks == []
    assert result.hk_produced > 0 and result.hk_lost == 0
    assert result.rss_kb and result.disk_kb
    # the page's section, from the figures as `make reliability` keeps them
    report = json.loads((REPO / "docs" / "reliability.json").read_text())
    report["soak"] = result.to_json()
    page = markdown(report)
    assert "## Soak" in page and "| `loss_of_contact` | 1 | 1 | 1 |" in page
    assert not [line for line in verdicts(report) if line.startswith("soak")]


def test_the_schedule_is_drawn_from_the_seed() -> None:
    week = soak.plan(7.0, 16)
    assert [(f.kind, f.at, f.target, f.value) for f in week] == [
        (f.kind, f.at, f.target, f.value) for f in soak.plan(7.0, 16)]
    assert week != soak.plan(7.0, 17)
    assert {f.kind for f in week} == set(soak.FaultKind)
    assert all(0 <= f.at <= f.until <= 7 * soak.DAY_S for f in week)
    [loc] = [f for f in week if f.kind is soak.FaultKind.LOSS_OF_CONTACT]
    inside = [f for f in week if f.kind in soak.DISCRETE and loc.at - 600 < f.at < loc.until + 1800]
    assert inside == []  # a clock step or a reset needs the uplink the blackout takes away


def test_the_verdict_names_each_missed_target() -> None:
    result = soak.SoakResult(7.0, 16, services_failed_end=["link.rx"],
                             faults=[{"kind": "task_crash", "at": 7200.0, "problems": ["no exec.service_crashed"]}],
                             rss_kb=[(0.0, 60_000), (1.0, 60_000), (2.0, 90_000), (3.0, 90_000)],
                             disk_kb=[(0.0, 100)], records_max_kb=16_384)
    result.judge()
    assert result.verdicts == ["task_crash at 2.0 h: no exec.service_crashed", "service left FAILED: link.rx",
                               "RSS grew: 60000 kB in the first half, 90000 kB in the second"]
