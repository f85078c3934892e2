"""The topology: one provider per port, consumers joined once at start-up, missing ports named."""

from __future__ import annotations

import pytest

from flightsw.core.ports import COMMANDS, PAYLOAD_GATE, PortError, PortKey, Ports

NUMBER: PortKey[int] = PortKey("number")


def test_consumers_get_the_provider_when_wired_whatever_the_build_order() -> None:
    ports = Ports()
    got: list[int] = []
    ports.connect(NUMBER, got.append, by="early consumer")
    ports.provide(NUMBER, 7, by="provider")
    ports.connect(NUMBER, got.append, by="late consumer")
    assert got == []  # nothing is delivered before the topology is wired
    ports.wire()
    assert got == [7, 7]
    assert ports.topology() == [("number", "provider", ["early consumer", "late consumer"])]


def test_a_port_has_one_provider() -> None:
    ports = Ports()
    ports.provide(NUMBER, 1, by="a")
    with pytest.raises(PortError, match="'number' already provided by a; b also provides it"):
        ports.provide(NUMBER, 2, by="b")


def test_missing_required_ports_are_named_with_their_consumers() -> None:
    ports = Ports()
    ports.connect(NUMBER, lambda n: None, required=True, by="imaging")
    ports.connect(PAYLOAD_GATE, lambda g: None, by="optional user")  # optional: no error
    with pytest.raises(PortError, match=r"unwired port\(s\): number \(needed by imaging\)"):
        ports.wire()
    with pytest.raises(PortError, match="'number' has no provider"):
        ports.require(NUMBER)
    assert ports.get(NUMBER) is None


def test_two_keys_with_one_name_are_refused() -> None:
    ports = Ports()
    ports.provide(NUMBER, 1)
    with pytest.raises(PortError, match="two different port keys"):
        ports.connect(PortKey[str]("number"), print)


def test_the_satellite_provides_its_dispatcher_and_wires_at_finalize(new_satellite) -> None:
    sat = new_satellite()
    assert sat.ports.require(COMMANDS) is sat.commands
    seen: list[object] = []
    sat.ports.connect(COMMANDS, seen.append, by="test")
    sat.finalize()
    assert seen == [sat.commands]
