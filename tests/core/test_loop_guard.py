"""The suite's loop-block guard itself: it must catch a sleeping or computing callback, on the
loops pytest-asyncio makes for async tests (stock and virtual-time) as well."""

import asyncio
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


async def test_guard_catches_blocking_sleep_and_cpu(no_blocked_loop) -> None:
    time.sleep(0.08)  # noqa: ASYNC251 - a blocking call on the loop, on purpose
    await asyncio.sleep(0)
    t0 = time.thread_time()
    while time.thread_time() - t0 < 0.08:  # 80 ms of CPU work on the loop (however preempted)
        pass
    await asyncio.sleep(0)
    await asyncio.sleep(0.01)  # fine: awaiting yields the loop
    caught = list(no_blocked_loop.blocked)
    no_blocked_loop.blocked.clear()  # this test blocks on purpose
    assert len(caught) == 2, caught
    assert all("took" in c for c in caught)


BLOCKING_TESTS = '''
import asyncio
import time

import pytest


def block():
    """200 ms of CPU on the loop thread: blocked whatever else the machine runs (a sleeping
    callback that was also preempted is excused by the guard on a busy machine)."""
    t0 = time.thread_time()
    while time.thread_time() - t0 < 0.2:
        pass


async def test_blocks_a_stock_loop():
    block()
    await asyncio.sleep(0)


@pytest.mark.virtual_time
async def test_blocks_the_virtual_loop():
    await asyncio.sleep(3600.0)  # virtual: no real wait
    block()


async def test_blocks_in_a_fixture_teardown(blocking_fixture):
    await asyncio.sleep(0)


@pytest.fixture
async def blocking_fixture():
    yield
    block()


@pytest.mark.asyncio(loop_factories=["virtual"])
async def test_virtual_by_loop_factory_name():
    await asyncio.sleep(3600.0)
    assert asyncio.get_running_loop().time() == 3600.0


async def test_yields_properly():
    await asyncio.sleep(0.2)


@pytest.mark.allow_slow_callbacks
async def test_blocks_on_purpose():
    block()
'''


def test_a_blocking_async_test_fails_the_suite(pytester: pytest.Pytester) -> None:
    """A separate pytest session with this suite's conftest and settings: each blocking async
    test fails (at teardown, where the guard checks) with the guard's message; the others pass.
    The virtual test's hour-long sleep must not cost real time (it ran on the virtual clock)."""
    shutil.copy(ROOT / "tests" / "conftest.py", pytester.path / "conftest.py")
    shutil.copy(ROOT / "pyproject.toml", pytester.path / "pyproject.toml")
    pytester.makepyfile(test_blocking=BLOCKING_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "testpaths=.",
                                           "--rootdir", str(pytester.path))
    result.assert_outcomes(passed=6, errors=3)
    text = result.stdout.str()
    for name in ("test_blocks_a_stock_loop", "test_blocks_the_virtual_loop",
                 "test_blocks_in_a_fixture_teardown"):
        assert f"ERROR at teardown of {name}" in text, text[-3000:]
    # one failure report per blocking test (the short summary repeats the message untruncated
    # when CI is set, so only the reports' "E" lines are counted)
    reports = [line for line in text.splitlines()
               if line.startswith("E ") and "Failed: event loop blocked > 50 ms" in line]
    assert len(reports) == 3, text[-3000:]
    assert "test_yields_properly - Failed" not in text and "test_virtual_by_loop_factory_name" not in text and "test_blocks_on_purpose - Failed" not in text
