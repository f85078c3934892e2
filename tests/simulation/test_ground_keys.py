"""The scripted ground's loss-of-contact procedure against a lossy link (found by the soak,
docs/reliability.md): lost verdicts must not strand the ground on the default key, and a real
fall back to the satellite's safe defaults must still get the ground back in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from flightsw.ground.dictionary import GroundDictionary
from flightsw.link import ax25
from flightsw.sim_runner.ground import FALLBACK_AFTER_MISSES, SELECT_KEY_COMMAND, GroundMonitor

SELECT_OPCODE = 7  # any opcode: the fake satellite recognises the body, not the dictionary
NOOP = msgpack.packb([1, []])
SELECT_1 = msgpack.packb([SELECT_OPCODE, [1]])
BEACON_S = 60.0  # a beacon a minute, all the time: every minute is a chance to command


class FakeSatellite:
    """The link's key and counter checks, nothing else: one active key, a counter per key."""

    def __init__(self) -> None:
        self.key = 0
        self.counters = {0: 0, 1: 0}
        self.accepted: list[tuple[int, int]] = []

    def receive(self, key: int, counter: int, body: bytes) -> bool:
        if key != self.key or counter <= self.counters[key]:
            return False
        self.counters[key] = counter
        self.accepted.append((key, counter))
        if body == SELECT_1:
            self.key = 1
        return True

    @property
    def uplink_counter(self) -> int:
        return self.counters[self.key]


def make_ground() -> tuple[GroundMonitor, list[tuple[int, int, bytes]]]:
    sent: list[tuple[int, int, bytes]] = []
    ground = GroundMonitor(object(), ax25.Address("UN0SAT", 1), GroundDictionary(hash=""), ax25.Address("UN0GND", 0),
                           epoch_now=lambda: 0.0, sign=lambda key, counter, body, apid: msgpack.packb([key, counter, body]),
                           noop=NOOP, scheduled=[(0.0, SELECT_KEY_COMMAND, SELECT_1)])

    async def transmit(packet: bytes, pace: bool = False) -> None:
        key, counter, body = msgpack.unpackb(packet)
        sent.append((key, counter, body))

    ground._transmit = transmit  # type: ignore[method-assign]
    ground._writer = object()  # type: ignore[assignment]  # "connected"
    return ground, sent


async def drive(ground: GroundMonitor, sent: list[tuple[int, int, bytes]], sat: FakeSatellite, hours: float,
                uplink: Callable[[float, int], bool], verdict: Callable[[float], bool],
                on_tick: Callable[[float], Any] = lambda t: None, start_h: float = 0.0) -> None:
    """Beacons every minute; each command sent reaches the satellite if ``uplink`` (time, index),
    and an accepted command's verdict reaches the ground if ``verdict``."""
    done = len(sent)
    t = start_h * 3600
    while t < (start_h + hours) * 3600:
        on_tick(t)
        await ground.on_beacon(t, sat.uplink_counter)
        for key, counter, body in sent[done:]:
            if uplink(t, done) and sat.receive(key, counter, body) and verdict(t):
                ground.on_verdict(t + 1)
            done += 1
        t += BEACON_S


async def test_lost_verdicts_do_not_make_the_ground_fall_back() -> None:
    """30 % loss in practice: every verdict after the key selection lost, every second command lost.
    The beacon's uplink counter shows what was taken: no fall back, every command on key 1."""
    ground, sent = make_ground()
    sat = FakeSatellite()
    await drive(ground, sent, sat, hours=12, uplink=lambda t, i: i == 0 or i % 2 == 1, verdict=lambda t: t == 0)
    assert sat.key == ground.key_id == 1
    assert ground.key_fallbacks == ground.key_returns == 0
    assert ground.received_by_beacon > 10
    assert {key for key, _c, _b in sent[1:]} == {1}
    assert len(sat.accepted) > 20


async def test_the_default_key_unanswered_sends_the_ground_back_to_the_previous_key() -> None:
    """The uplink is dead for an hour (the satellite stays on key 1): the ground falls back to key 0,
    gets no answer there either, goes back to key 1, and is heard once the uplink returns."""
    ground, sent = make_ground()
    sat = FakeSatellite()
    await drive(ground, sent, sat, hours=3, uplink=lambda t, i: not 600 <= t < 4200, verdict=lambda t: True)
    assert sat.key == ground.key_id == 1
    assert ground.key_fallbacks >= 1
    assert ground.key_returns == ground.key_fallbacks  # alternates, and ends on the key in use
    last_key, last_counter, _ = sent[-1]
    assert (last_key, last_counter) == sat.accepted[-1]  # the last command was taken


async def test_a_real_fall_back_to_the_defaults_still_gets_the_ground_in() -> None:
    """The loss_of_contact scenario in small: the satellite hears nothing for 2 h and falls back to
    key 0 meanwhile. The ground, alternating, is heard on key 0 after the blackout and stays there."""
    ground, sent = make_ground()
    sat = FakeSatellite()

    def safe_defaults(t: float) -> None:
        if t == 5400:
            sat.key = 0

    await drive(ground, sent, sat, hours=4, uplink=lambda t, i: not 600 <= t < 7800, verdict=lambda t: True,
                on_tick=safe_defaults)
    assert sat.key == ground.key_id == 0
    assert ground.key_fallbacks >= 1
    answered_after = [c for k, c in sat.accepted if k == 0 and c > 1]
    assert answered_after, "no default-key command went through after the blackout"
    returns = ground.key_returns
    await drive(ground, sent, sat, hours=2, uplink=lambda t, i: True, verdict=lambda t: False, start_h=4)
    assert ground.key_returns == returns and ground.key_id == 0  # answered on key 0: no more alternating
    assert FALLBACK_AFTER_MISSES == 3


async def test_a_lost_key_selection_is_repeated_past_the_miss_limit() -> None:
    """On the default key with nothing to go back to, misses change nothing: the selection is
    repeated until answered."""
    ground, sent = make_ground()
    sat = FakeSatellite()
    await drive(ground, sent, sat, hours=0.2, uplink=lambda t, i: i >= FALLBACK_AFTER_MISSES + 2, verdict=lambda t: True)
    assert [body for _k, _c, body in sent[:FALLBACK_AFTER_MISSES + 3]] == [SELECT_1] * (FALLBACK_AFTER_MISSES + 3)
    assert sat.key == ground.key_id == 1
    assert ground.key_fallbacks == ground.key_returns == 0
