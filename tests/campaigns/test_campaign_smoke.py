"""Smoke versions of the reliability campaigns (`make reliability` runs them in full): every fuzz
target for a moment under hypothesis, the uplink attacks with a sample of each attack against a
running `flightsw sim`, and the least privilege checks on what that run left behind."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability import attacks, fuzz, privilege
from reliability.targets import TARGETS, cleanup


@pytest.fixture(scope="module", autouse=True)
def _scratch_satellite() -> Iterator[None]:
    """The targets' reference satellite is built once for the module and removed after it."""
    yield
    cleanup()


@pytest.mark.parametrize("name", list(TARGETS))
def test_fuzz_target_keeps_its_contract(name: str) -> None:
    target = TARGETS[name]
    for seed in target.seeds():  # the seeds themselves are valid inputs
        target.run(seed)
    result = fuzz.hypothesis_campaign(target, seconds=1.0, batch=60)
    assert result.findings == [], result.findings
    assert result.hypothesis_inputs >= 20


@pytest.mark.timeout(240)
async def test_uplink_attacks_execute_nothing_and_no_output_holds_the_key(tmp_path: Path) -> None:
    lines: list[str] = []
    result = await attacks.run(tmp_path, quick=True, log=lines.append)
    assert result.accepted_without_key == 0 and result.unexplained_verdicts == 0, result.counters
    assert result.legit_completed == result.legit_commands >= 4
    assert result.upload_ok and result.files_in_quarantine == 1
    assert result.flood_command_during_s is not None and result.flood_command_after_s is not None
    c = result.counters
    assert c["link.commands_executed"] == result.legit_completed  # the legit ones, nothing else
    assert c["files.pdus_up"] == result.legit_file_pdus
    assert c["link.auth_failures"] > 0 and c["link.counter_refusals"] > 0 and c["link.kiss_oversize"] > 0
    assert c["link.replays"] + c["link.duplicates"] > 0 and c["files.pdus_rejected"] > 0
    assert result.rss_after_kb > 0
    rights = await asyncio.to_thread(privilege.run, tmp_path, lines.append)
    assert rights.leaks == []
    assert rights.key_files_ok and len(rights.key_files) == 3
    assert rights.scanned_files >= 10
    assert rights.service_user_non_root


def test_the_key_scan_finds_a_key_in_any_encoding() -> None:
    """The scan that reports 0 leaks does find a key written out (so 0 means something)."""
    import base64

    key = bytes(range(32))
    patterns = privilege.needles([key])
    for blob, encoding in ((b"..." + key[3:14] + b"...", "raw"), (key[10:20].hex().encode(), "hex"),
                           (key[:9].hex().upper().encode(), "HEX"), (base64.b64encode(key), "base64"),
                           (repr(key).encode(), "repr")):
        result = privilege.PrivilegeResult()
        privilege.scan_bytes("blob", blob, patterns, result)
        assert f"blob: {encoding}" in result.leaks
    result = privilege.PrivilegeResult()
    privilege.scan_bytes("clean", bytes(range(100, 200)) + b"0001020304", patterns, result)
    assert result.leaks == []
