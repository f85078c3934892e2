"""Declarations become one dictionary with stable ids, a content hash and a JSON export."""

import json

import pytest

from flightsw.core.component import Arg, Channel, Component, Event, Limits, Parameter, command
from flightsw.core.dictionary import Dictionary, DictionaryError
from flightsw.core.events import Severity
from flightsw.core.types import F32, STRING, U8, U16


class Heater(Component):
    """Battery heater control."""

    temperature = Channel(F32, unit="degC", limits=Limits(red_low=-10, yellow_low=0, yellow_high=40, red_high=50))
    heater_on = Channel(U8)
    too_cold = Event(Severity.WARNING, "Battery at {temp:.1f} degC", throttle=(2, 60.0))
    setpoint = Parameter(F32, default=5.0, range=(-5.0, 20.0), doc="Heater on below this")

    @command(args=[Arg("seconds", U16, range=(1, 600), doc="How long")])
    def heat(self, seconds: int) -> None:
        """Force the heater on."""


class HeaterReordered(Component):
    """Same items declared in another order, plus one more."""

    heater_on = Channel(U8)
    extra = Channel(STRING(8))
    setpoint = Parameter(F32, default=5.0, range=(-5.0, 20.0), doc="Heater on below this")
    too_cold = Event(Severity.WARNING, "Battery at {temp:.1f} degC", throttle=(2, 60.0))
    temperature = Channel(F32, unit="degC")

    @command(args=[Arg("seconds", U16, range=(1, 600), doc="How long")])
    def heat(self, seconds: int) -> None:
        pass


def ids(d: Dictionary) -> dict[str, int]:
    return {i.name: i.id for table in (d.commands, d.channels, d.events, d.parameters) for i in table.values()}


def test_every_component_gets_builtins_and_parameter_commands() -> None:
    d = Dictionary.build([Heater("heater", 0x10)])
    names = {i.name for i in d.commands.values()}
    assert {"heater.NO_OP", "heater.RESET_COUNTERS", "heater.HEAT", "heater.SET_SETPOINT"} <= names
    chans = {i.name for i in d.channels.values()}
    assert {"heater.cmds_accepted", "heater.cmds_rejected", "heater.cmd_errors", "heater.temperature"} <= chans


def test_ids_do_not_depend_on_declaration_order() -> None:
    a = ids(Dictionary.build([Heater("heater", 0x10)]))
    b = ids(Dictionary.build([HeaterReordered("heater", 0x10)]))
    for name, value in a.items():
        assert b[name] == value, name
    assert all(v >> 16 == 0x10 for v in a.values())


def test_items_give_their_declaration_as_the_kind_their_table_holds() -> None:
    d = Dictionary.build([Heater("heater", 0x10)])
    setpoint = d.by_name["heater.setpoint"]
    assert setpoint.decl_as(Parameter).default == 5.0
    with pytest.raises(TypeError, match="heater.setpoint is declared as a parameter, not a channel"):
        setpoint.decl_as(Channel)


def test_hash_changes_with_content() -> None:
    h1 = Dictionary.build([Heater("heater", 0x10)]).content_hash()
    h2 = Dictionary.build([Heater("heater", 0x10)]).content_hash()
    h3 = Dictionary.build([Heater("heater", 0x11)]).content_hash()
    assert h1 == h2 != h3


def test_duplicate_base_id_and_name_are_refused() -> None:
    with pytest.raises(DictionaryError, match="share base_id"):
        Dictionary.build([Heater("a", 0x10), Heater("b", 0x10)])
    with pytest.raises(DictionaryError, match="duplicate component"):
        Dictionary.build([Heater("a", 0x10), Heater("a", 0x11)])


def test_explicit_id_collision_is_reported() -> None:
    class Clash(Component):
        one = Channel(U8, id=7)
        two = Channel(U8, id=7)

    with pytest.raises(DictionaryError, match="collides"):
        Dictionary.build([Clash("clash", 0x20)])


def test_command_signature_must_match_declared_args() -> None:
    with pytest.raises(TypeError, match="declared args"):

        class Bad(Component):
            @command(args=[Arg("x", U8)])
            def go(self, y: int) -> None:
                pass


def test_json_export_carries_types_units_limits_and_packets() -> None:
    d = Dictionary.build([Heater("heater", 0x10)])
    d.add_packet("hk", 1.0, ["heater.temperature", "heater.heater_on"])
    out = json.loads(d.to_json())
    assert out["hash"] == d.content_hash()
    temp = next(c for c in out["channels"] if c["name"] == "heater.temperature")
    assert temp["unit"] == "degC" and temp["type"] == "F32" and temp["limits"]["red_high"] == 50
    heat = next(c for c in out["commands"] if c["name"] == "heater.HEAT")
    assert heat["args"] == [{"name": "seconds", "type": "U16", "doc": "How long", "range": [1, 600]}]
    assert heat["doc"] == "Force the heater on."
    evt = next(e for e in out["events"] if e["name"] == "heater.too_cold")
    assert evt["args"] == ["temp"] and evt["severity"] == "WARNING"
    assert out["packets"][0]["channels"] == ["heater.temperature", "heater.heater_on"]
    with pytest.raises(DictionaryError, match="unknown channel"):
        d.add_packet("bad", 1.0, ["heater.nope"])


def test_limits_classify_values() -> None:
    lim = Limits(red_low=-10, yellow_low=0, yellow_high=40, red_high=50)
    assert [lim.state(v) for v in (-11, -5, 20, 45, 51)] == ["red", "yellow", "ok", "yellow", "red"]
