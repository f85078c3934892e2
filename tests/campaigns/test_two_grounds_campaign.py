"""Smoke version of the two-ground-process campaign (`make reliability` runs it for 10 minutes):
a few seconds of the live view and the CLI loop on one archive against a running `flightsw sim`."""

from __future__ import annotations

from pathlib import Path

from reliability import two_grounds


async def test_two_grounds_complete_every_command_and_transfer_without_a_refusal(tmp_path: Path) -> None:
    result = await two_grounds.run(tmp_path, duration=1.0)
    assert result.failures() == [], result.to_json()
    assert result.uploads_ok >= 1 and result.downlinks_ok >= 1 and result.catalogs_ok >= 1
    assert sum(result.commands_completed.values()) == sum(result.commands.values()) >= 6
    assert result.refusal_counters == dict.fromkeys(two_grounds.REFUSAL_CHANNELS, 0)
