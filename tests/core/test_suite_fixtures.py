"""The suite's own fixtures: a satellite started with sat_runner is stopped cleanly when its test
fails or times out (the next boot reads a commanded stop, not an unexpected reset)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FAILING_TESTS = '''
import asyncio

import pytest


async def test_fails_while_running(new_satellite, sat_runner):
    await sat_runner.start(new_satellite(data_dir=DATA / "failed"))
    assert False, "deliberate failure"


@pytest.mark.timeout(2)
async def test_hangs_while_running(new_satellite, sat_runner):
    await sat_runner.start(new_satellite(data_dir=DATA / "hung"))
    await asyncio.Event().wait()


@pytest.mark.virtual_time
async def test_fails_on_virtual_time(new_satellite, sat_runner):
    await sat_runner.start(new_satellite(data_dir=DATA / "virtual"))
    await asyncio.sleep(3600.0)
    assert False, "deliberate failure"
'''


def test_satellites_are_stopped_cleanly_when_a_test_fails_or_times_out(pytester: pytest.Pytester, tmp_path: Path,
                                                                        new_satellite) -> None:
    data = tmp_path / "data"
    shutil.copy(ROOT / "tests" / "conftest.py", pytester.path / "conftest.py")
    shutil.copy(ROOT / "pyproject.toml", pytester.path / "pyproject.toml")
    pytester.makepyfile(test_failing=f"from pathlib import Path\nDATA = Path({str(data)!r})\n" + FAILING_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "testpaths=.",
                                           "--rootdir", str(pytester.path))
    result.assert_outcomes(failed=3)
    assert "Timeout (>2.0s)" in result.stdout.str()
    for name in ("failed", "hung", "virtual"):
        sat = new_satellite(data_dir=data / name)  # the next boot
        assert sat.state.get("reset_reason") == "COMMANDED", name
