"""Flight and ground compare dictionaries: the beacon carries the flight's hash, the ground warns on
a mismatch and sends only the commands the satellite confirms it defines identically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flightsw.core.commands import Completion
from flightsw.core.dictionary import _hash
from flightsw.ground.dictionary import DictionaryCheck, DictionaryMismatch, GroundDictionary
from flightsw.ground.station import GroundStation

from .harness import ground_pass


def _older_ground_dictionary(flight_json: str) -> GroundDictionary:
    """The flight's dictionary as a ground built from another version would have it: SET_TARGET's
    range differs, everything else is identical."""
    raw = json.loads(flight_json)
    for cmd in raw["commands"]:
        if cmd["name"] == "probe.SET_TARGET":
            cmd["args"][0]["range"] = [0, 400]
    content = {k: v for k, v in raw.items() if k not in ("format", "version", "hash")}
    raw["hash"] = _hash(content)
    return GroundDictionary.from_json(json.dumps(raw))


async def _first_beacon(station: GroundStation) -> None:
    assert await station.wait_until(lambda: bool(station.beacon), 10.0), "no beacon"


async def test_matching_dictionaries_see_the_same_hash_and_commands_go(tmp_path: Path) -> None:
    async with ground_pass(tmp_path) as (sat, probe, station):
        await _first_beacon(station)
        assert sat.dictionary is not None
        assert station.beacon["dictionary_hash"] == sat.dictionary.short_hash()
        assert not station.dictionary_check.mismatch
        resp = await station.command("probe.SET_TARGET", {"value": "7"})
        assert resp is not None and resp.completion is Completion.SUCCESS and probe.count == 1
        assert station.stats.commands_sent == 1  # no CHECK_COMMAND round trip when they match


async def test_a_mismatch_is_warned_and_only_commands_defined_alike_on_board_are_sent(tmp_path: Path) -> None:
    async with ground_pass(tmp_path) as (sat, probe, station):
        assert sat.dictionary is not None
        older = _older_ground_dictionary(sat.dictionary.to_json())
        station.dictionary = older
        station.dictionary_check = DictionaryCheck(older)
        await _first_beacon(station)

        assert station.dictionary_check.mismatch
        warnings = [(sev, text) for _t, sev, name, text in station.recent_events
                    if name == "ground.dictionary_mismatch"]
        assert len(warnings) == 1 and warnings[0][0] == "WARNING" and "DICTIONARY MISMATCH" in warnings[0][1]
        with pytest.raises(DictionaryMismatch, match="not yet confirmed"):
            await station.send("probe.SET_TARGET", {"value": "5"})

        # the satellite says SET_TARGET is defined differently there: refused, never executed
        with pytest.raises(DictionaryMismatch, match="defined differently on board"):
            await station.command("probe.SET_TARGET", {"value": "5"})
        assert probe.count == 0
        # a command defined alike on both sides is confirmed once, then goes
        resp = await station.command("link.SEND_BEACON_NOW", {})
        assert resp is not None and resp.completion is Completion.SUCCESS
        assert station.dictionary_check.same == {"link.SEND_BEACON_NOW"}
        assert set(station.dictionary_check.differs) == {"probe.SET_TARGET"}


async def test_the_hash_is_reported_on_request(tmp_path: Path) -> None:
    async with ground_pass(tmp_path) as (sat, _probe, station):
        assert sat.dictionary is not None
        resp = await station.command("cmd.DICTIONARY_HASH", {})
        assert resp is not None and resp.completion is Completion.SUCCESS
        assert await station.wait_until(
            lambda: any(name == "cmd.dictionary_reported" for _t, _s, name, _x in station.recent_events), 10.0)
        text = next(x for _t, _s, name, x in station.recent_events if name == "cmd.dictionary_reported")
        assert sat.dictionary.content_hash()[:16] in text
        assert station.dictionary_check.flight_hash == sat.dictionary.short_hash()


def test_command_digests_agree_between_flight_and_ground_and_ignore_docs(tmp_path: Path) -> None:
    from .harness import build_satellite

    sat, _probe = build_satellite(tmp_path)
    try:
        d = sat.finalize()
        ground = GroundDictionary.from_json(d.to_json())
        for opcode, item in d.commands.items():
            assert ground.command_digest(item.name) == (opcode, d.command_digest(opcode)), item.name
        raw = json.loads(d.to_json())
        for cmd in raw["commands"]:
            cmd["doc"] = "reworded"
            for arg in cmd["args"]:
                arg["doc"] = "reworded"
        reworded = GroundDictionary.from_json(json.dumps(raw))
        assert reworded.command_digest("probe.SET_TARGET") == ground.command_digest("probe.SET_TARGET")
        assert _older_ground_dictionary(d.to_json()).command_digest("probe.SET_TARGET") != \
            ground.command_digest("probe.SET_TARGET")
    finally:
        sat.workers.shutdown()
