"""Regression tests of what the reliability campaigns found (reliability/fuzz.py, reliability/attacks.py),
one per finding."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flightsw.app import Satellite
from flightsw.components.seqfile import SequenceError, parse_sequence
from flightsw.core.commands import Completion
from flightsw.link.component import LinkComponent
from flightsw.link.subsystem import SIM_TRANSCEIVER, build_link
from flightsw.testing import ResponseLog, make_satellite, mission_config, wait_until
from hal import kiss

EPOCH = 1_800_000_000.0


def _no_check(name: str, args: list[object]) -> None:
    """Any command with any arguments: these inputs must fail before the dictionary matters."""


@pytest.mark.parametrize(("text", "why"), [
    # an offset of 400 digits was float('inf'); 10**21 hours overflowed the clock's formatting
    ("+" + "9" * 400 + " exec.NO_OP", "line 1: offset"),
    ("+999999999999999999999h exec.NO_OP", "line 1: offset"),
    ("+1999999999999999999999999999.5 exec.NO_OP", "line 1: offset"),
    # arguments nested deeper than the JSON decoder's recursion: RecursionError, not SequenceError
    ("+0 exec.NO_OP " + "[" * 5000, "line 1: arguments nested too deeply"),
    # an ISO time whose UTC is past year 9999 (the zone moves it over)
    ("9999-12-31T23:59:59-23:59 exec.NO_OP", "line 1: time"),
])
def test_sequence_times_and_arguments_out_of_bounds_are_named_errors(text: str, why: str) -> None:
    with pytest.raises(SequenceError) as info:
        parse_sequence(text, "fuzz", _no_check)
    assert str(info.value).startswith(why), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.virtual_time(start=1000.0)
async def test_a_sequence_too_far_in_the_future_is_refused_and_nothing_is_stored(tmp_path: Path,
                                                                              sat_runner) -> None:
    """On board, 10**21 hours used to be stored, then the command failed with OverflowError."""
    loop = asyncio.get_running_loop()
    sat = await asyncio.to_thread(make_satellite, tmp_path, utc_source=lambda: loop.time() + EPOCH)
    await sat_runner.start(sat)
    log = ResponseLog(sat)
    sat.commands.submit(sat.dictionary.command("seq.STORE_SEQUENCE").id,
                        ["+999999999999999999999h exec.NO_OP", 0], seq=1)
    done = await log.wait_completion(1)
    assert done.completion == Completion.FAILURE and "offset" in done.detail, done.detail
    assert len(sat.sequencer.schedule) == 0


RADIO = """
[[devices]]
name = "radio"
kind = "uhf_radio"
backend = "sim"
kiss_tcp_port = 0
propagation_delay = 0.0
[link]
callsign = "UN0SAT-1"
ground_callsign = "UN0GND"
bit_rate = 100000
max_frame = 256
generate_key = true
"""


async def test_oversized_uplink_frames_are_counted_in_telemetry(tmp_path: Path, sat_runner) -> None:
    """Frames longer than link.max_frame were dropped by the radio's KISS decoder without a trace
    in any telemetry: an attacker's oversized frames were invisible to the operator."""
    sat = await asyncio.to_thread(lambda: Satellite(mission_config(tmp_path, RADIO), subsystems=[build_link]))
    await sat_runner.start(sat)
    xcvr = sat.ports.require(SIM_TRANSCEIVER)
    await wait_until(lambda: xcvr._server is not None)
    link = sat.component("link")
    assert isinstance(link, LinkComponent)
    _, writer = await asyncio.open_connection("127.0.0.1", xcvr.bound_port)
    try:
        writer.write(kiss.encode(bytes(300)) + kiss.encode(bytes(1000)) + kiss.encode(bytes(20)))
        await writer.drain()
        await wait_until(lambda: link.stats["frames_received"] == 1)  # the short one still arrives
        assert link.radio.frames_oversize == 2
        link.publish()
        assert link.kiss_oversize.value == 2
    finally:
        writer.close()
