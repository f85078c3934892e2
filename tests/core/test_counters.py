"""Counters declared once as channels: counted, reset and published as one set."""

from __future__ import annotations

import pytest

from flightsw.core.component import Channel, Component, Counter, CounterSet
from flightsw.core.types import U8


class Radio(Component):
    frames = Counter("Frames received")
    bytes_in = Counter("Bytes received", unit="B")
    level = Channel(U8)  # not a counter: not in the set

    def __init__(self) -> None:
        super().__init__("radio", 0x70)
        self.stats = CounterSet(self)


async def test_a_set_counts_its_declared_counters_and_publishes_them_wrapped(new_satellite, sat_runner) -> None:
    radio = Radio()
    await sat_runner.start(new_satellite([radio]))
    radio.stats.inc("frames")
    radio.stats.inc("bytes_in", 2**32 + 5)  # the channel is 32 bits: it wraps
    radio.stats.publish()
    assert (radio.frames.value, radio.bytes_in.value, radio.stats["bytes_in"]) == (1, 5, 2**32 + 5)
    radio.stats.reset()
    assert radio.frames.value == 0 and radio.stats.as_dict() == {"frames": 0, "bytes_in": 0}
    assert set(radio.stats.as_dict()) == {"frames", "bytes_in"}
    assert set(radio.counters.as_dict()) == {"cmds_accepted", "cmds_rejected", "cmd_errors"}


def test_an_undeclared_counter_is_an_error_not_a_silent_count() -> None:
    radio = Radio()
    with pytest.raises(KeyError):
        radio.stats.inc("frame")  # typo
    with pytest.raises(TypeError, match="no counters of group 'extra'"):
        CounterSet(radio, "extra")
