"""The beacon's codes come from the enums: every value has one, and the last command is named."""

from __future__ import annotations

import asyncio
import enum
from pathlib import Path

import pytest

from flightsw.config import load
from flightsw.config_check import offline_dictionary
from flightsw.core.commands import Completion, Reason
from flightsw.core.dictionary import enums_json
from flightsw.core.enums import CommandStatus, Mode, ResetReason
from flightsw.ground.archive import Archive
from flightsw.ground.dictionary import GroundDictionary
from flightsw.ground.station import GroundStation
from flightsw.link import ax25, beacon
from flightsw.link.packets import PacketBuilder, TimeStamp

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("enum_cls", "table"), [(Mode, beacon.MODE_CODES), (ResetReason, beacon.RESET_CODES),
                                                 (CommandStatus, beacon.STATUS_CODES)])
def test_every_enum_value_has_its_own_beacon_code(enum_cls: type[enum.Enum], table: dict) -> None:
    missing = [m.name for m in enum_cls if m not in table]
    assert not missing, f"{enum_cls.__name__} values without a beacon code: {missing}"
    codes = list(table.values())
    assert len(set(codes)) == len(codes)
    # a code is never the u8 field's "not available" sentinel nor the unknown-reset code
    assert all(0 <= c < min(beacon.UNKNOWN_RESET, beacon.sentinel("B")) for c in codes)


def test_a_software_error_goes_down_as_its_own_code_and_comes_back_named() -> None:
    payload = beacon.encode_payload("UN0SAT", {"reset_reason": beacon.reset_code(ResetReason.SOFTWARE_ERROR),
                                               "mode": beacon.mode_code("detumble")})
    decoded = beacon.decode_payload(payload)
    assert decoded["reset_reason"] == beacon.RESET_CODES[ResetReason.SOFTWARE_ERROR] != beacon.UNKNOWN_RESET
    assert decoded["reset_reason_name"] == "SOFTWARE_ERROR" and decoded["mode_name"] == "DETUMBLE"
    assert beacon.reset_code("SOMETHING_NEWER") == beacon.UNKNOWN_RESET
    assert beacon.decode_payload(beacon.encode_payload("UN0SAT", {}))["mode_name"] is None  # not available


def test_the_ksy_lists_every_code_as_a_kaitai_enum() -> None:
    text = beacon.ksy()
    enums = text[text.index("\nenums:\n"):]
    for kaitai_name, table in beacon.CODED_FIELDS.values():
        assert f"\n  {kaitai_name}:\n" in enums
        for value, code in table.items():
            assert f"\n    {code}: {value.name.lower()}\n" in enums
    assert "        enum: reset_reason\n" in text and "        enum: mode\n" in text


def test_the_dictionary_export_carries_the_enums() -> None:
    exported = enums_json()
    assert exported["ResetReason"]["SOFTWARE_ERROR"] == "SOFTWARE_ERROR"
    assert exported["Mode"] == {m.name: m.value for m in Mode}
    assert exported["CommandReason"] == {r.name: int(r) for r in Reason}
    assert exported["CommandCompletion"] == {c.name: int(c) for c in Completion}


@pytest.fixture
def reference_dictionary() -> tuple[dict[int, str], GroundDictionary]:
    """The reference mission's opcodes and its ground dictionary (built before the test's loop runs)."""
    with offline_dictionary(load(ROOT / "deploy" / "sim.toml")) as d:
        return {opcode: item.name for opcode, item in d.commands.items()}, GroundDictionary.from_json(d.to_json())


async def test_every_opcode_has_a_distinct_beacon_value_the_ground_names(
        reference_dictionary: tuple[dict[int, str], GroundDictionary], tmp_path: Path) -> None:
    names, ground = reference_dictionary
    assert len(names) > 80
    archive = await asyncio.to_thread(Archive, tmp_path / "archive.db")
    station = GroundStation(ground, keys=None, key_id=0, ground=ax25.Address("UN0GND"),  # type: ignore[arg-type]
                            satellite=ax25.Address("UN0SAT", 1), archive=archive,
                            transport=None)  # type: ignore[arg-type]
    builder = PacketBuilder(240)
    on_air: dict[int, int] = {}
    try:
        for opcode, name in names.items():
            packet = beacon.build_packet(builder, "UN0SAT", TimeStamp(1, 2.0), {"last_command_opcode": opcode})
            await station.handle_frame(ax25.UiFrame(ax25.Address("UN0GND"), ax25.Address("UN0SAT", 1),
                                                    packet).encode())
            assert station.beacon["last_command_name"] == name
            on_air[opcode] = int(station.beacon["last_command_opcode"])
    finally:
        archive.close()
    assert len(set(on_air.values())) == len(names)  # no two commands share a beacon value
    assert all(on_air[op] == op for op in names)
