"""Suite-wide checks: every event loop runs in asyncio debug mode, and a test fails if any
callback held its loop longer than 50 ms (the flight loop must never be blocked)."""

from __future__ import annotations

import asyncio
import logging
import os
import re

import pytest

BLOCK_LIMIT = float(os.environ.get("FLIGHTSW_LOOP_BLOCK_MS", "50")) / 1000.0
os.environ.setdefault("PYTHONASYNCIODEBUG", "1")

_orig_init = asyncio.BaseEventLoop.__init__


def _init(self: asyncio.BaseEventLoop, *args: object, **kwargs: object) -> None:
    _orig_init(self, *args, **kwargs)  # type: ignore[arg-type]
    self.slow_callback_duration = BLOCK_LIMIT


asyncio.BaseEventLoop.__init__ = _init  # type: ignore[method-assign]

_SLOW = re.compile(r"^Executing .* took (\d+\.\d+) seconds$", re.S)


class _SlowCallbackCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.slow: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if _SLOW.match(msg):
            self.slow.append(msg[:300])


@pytest.fixture(autouse=True)
def no_blocked_loop(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    handler = _SlowCallbackCollector()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
    if handler.slow and not request.node.get_closest_marker("allow_slow_callbacks"):
        slow = "\n".join(handler.slow)
        pytest.fail(f"event loop blocked > {BLOCK_LIMIT * 1000:.0f} ms:\n{slow}")
