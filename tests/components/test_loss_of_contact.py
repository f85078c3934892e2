"""Loss of contact: the ladder's rules (pure) and the component on a satellite across a reboot."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import msgpack
import pytest

from flightsw.app import Satellite
from flightsw.components.contact_ladder import (
    ContactStep,
    LadderState,
    LadderTimes,
    contact,
    next_rung,
    took,
)
from flightsw.components.housekeeping import build_hardware
from flightsw.components.loss_of_contact import STATE_KEY, LossOfContact, build_loss_of_contact
from flightsw.core.enums import ResetReason
from flightsw.core.ports import OUTPUTS
from flightsw.core.state import StateStore
from flightsw.link import ax25
from flightsw.link.auth import KeyRing, build_command
from flightsw.link.component import STATE_KEY_ID, LinkComponent
from flightsw.link.packets import Apid
from flightsw.link.subsystem import build_link
from flightsw.testing import mission_config

TIMES = LadderTimes(100.0, 200.0, 300.0)


# -- the rules --------------------------------------------------------------------------------
def test_rungs_come_in_order_one_at_a_time() -> None:
    state = LadderState(last_contact_met=1000.0)
    assert next_rung(state, 1099.0, TIMES) is None
    assert next_rung(state, 1100.0, TIMES) is ContactStep.RADIO_RESET
    # off through two thresholds: the radio reset still comes first, then the reboot
    assert next_rung(state, 1250.0, TIMES) is ContactStep.RADIO_RESET
    state = took(state, ContactStep.RADIO_RESET)
    assert next_rung(state, 1199.0, TIMES) is None
    assert next_rung(state, 1250.0, TIMES) is ContactStep.REBOOT
    state = took(state, ContactStep.REBOOT)
    assert next_rung(state, 1300.0, TIMES) is ContactStep.SAFE_DEFAULTS
    state = took(state, ContactStep.SAFE_DEFAULTS)
    assert next_rung(state, 1e9, TIMES) is None  # every rung once per silence


def test_a_valid_command_starts_the_ladder_again() -> None:
    state = took(took(LadderState(0.0), ContactStep.RADIO_RESET), ContactStep.REBOOT)
    state = contact(500.0)
    assert state.step is ContactStep.IN_CONTACT and state.silent_s(550.0) == 50.0
    assert next_rung(state, 599.0, TIMES) is None and next_rung(state, 600.0, TIMES) is ContactStep.RADIO_RESET


@pytest.mark.parametrize("raw", [None, "x", {"last_contact_met": "nan?"}, {"step": "RADIO_RESET"},
                                 {"last_contact_met": 5.0, "step": "BOGUS"}])
def test_a_missing_or_unreadable_state_starts_a_silence_now(raw: object) -> None:
    state = LadderState.from_dict(raw, met_now=42.0)
    assert state == LadderState(42.0, ContactStep.IN_CONTACT)


def test_stored_state_round_trips_and_a_future_met_is_clamped() -> None:
    state = took(LadderState(10.0), ContactStep.REBOOT)
    assert LadderState.from_dict(state.to_dict(), 50.0) == state
    assert LadderState.from_dict(state.to_dict(), 5.0) == LadderState(5.0, ContactStep.REBOOT)


def test_ladder_times_must_increase() -> None:
    with pytest.raises(ValueError, match="must increase"):
        LadderTimes(100.0, 100.0, 300.0)


# -- the component on a satellite -------------------------------------------------------------
CONTACT_TOML = """
[[devices]]
name = "radio_power"
kind = "gpio_output"
backend = "sim"
line = 24
initial = true

[[devices]]
name = "radio"
kind = "uhf_radio"
backend = "sim"
kiss_tcp_port = 0
seed = 7

[link]
callsign = "UN0SAT-1"
ground_callsign = "UN0GND"
generate_key = true

[loss_of_contact]
radio_reset_after_s = 600
reboot_after_s = 1200
safe_defaults_after_s = 1800
radio_power_output = "radio_power"
radio_off_s = 5.0
"""


def build(data_dir: Path) -> Satellite:
    config = mission_config(data_dir, CONTACT_TOML)
    return Satellite(config, subsystems=[build_link, build_hardware, build_loss_of_contact])


def ladder_of(sat: Satellite) -> LossOfContact:
    comp = sat.component("loc")
    assert isinstance(comp, LossOfContact)
    return comp


def link_of(sat: Satellite) -> LinkComponent:
    comp = sat.component("link")
    assert isinstance(comp, LinkComponent)
    return comp


def uplink_frame(sat: Satellite, key_id: int, counter: int, command: str, args: Sequence[object] = ()) -> bytes:
    """A command frame as the ground sends it (signed with ``key_id``)."""
    assert sat.dictionary is not None
    link = link_of(sat)
    ring = KeyRing.load(link.settings.key_file)
    body = msgpack.packb([sat.dictionary.command(command).id, list(args)], use_bin_type=True)
    packet = build_command(ring.key(key_id), key_id, counter, body, apid=Apid.COMMAND)
    return ax25.UiFrame(link.settings.callsign, link.settings.ground, packet).encode()


@pytest.mark.virtual_time
async def test_silence_climbs_the_ladder_across_a_reboot_and_a_command_resets_it(tmp_path: Path) -> None:
    seen: list[str] = []
    sat = await asyncio.to_thread(build, tmp_path)
    sat.finalize()
    sat.events.add_sink(lambda r: seen.append(r.name))
    ladder = ladder_of(sat)
    radio_power = sat.ports.require(OUTPUTS).outputs["radio_power"]
    writes: list[bool] = []
    runner = asyncio.create_task(sat.run())
    await sat.started.wait()
    # the ground had switched to key 1 before contact was lost
    await link_of(sat).handle_frame(uplink_frame(sat, 0, 1, "link.SELECT_KEY", [1]))
    await asyncio.sleep(1.0)
    assert sat.state.get(STATE_KEY_ID) == 1 and ladder.ladder.step is ContactStep.IN_CONTACT
    on_disk = StateStore(tmp_path / "state", fsync=False)
    on_disk.load()  # the contact is on disk at once, not only at the next checkpoint
    assert on_disk.get(STATE_KEY) == {"last_contact_met": pytest.approx(sat.clock.met() - 1.0, abs=0.1),
                                      "step": "IN_CONTACT"}
    radio_power.backend.on_change(radio_power.line, writes.append)  # type: ignore[attr-defined]
    writes.clear()

    reason = await runner  # 600 s: radio reset; 1200 s: reboot (the run stops with that reason)
    assert reason == ResetReason.LOSS_OF_CONTACT
    assert writes == [True, False, True]  # line requested (initially on), power cut, restored
    assert "loc.radio_reset" in seen and "loc.rebooting" in seen
    sat.workers.shutdown()

    # the second boot continues the silence: no new radio reset, no second reboot
    seen.clear()
    sat2 = await asyncio.to_thread(build, tmp_path)
    sat2.finalize()
    sat2.events.add_sink(lambda r: seen.append(r.name))
    assert sat2.state.get("reset_reason") == ResetReason.LOSS_OF_CONTACT
    ladder2 = ladder_of(sat2)
    stored = LadderState.from_dict(sat2.state.get(STATE_KEY), sat2.clock.met_at_boot)
    assert stored.step is ContactStep.REBOOT
    assert stored.silent_s(sat2.clock.met_at_boot) >= 1200.0  # MET went on; the silence with it
    assert ladder2.stats["radio_resets"] == 1 and ladder2.stats["reboots"] == 1
    runner2 = asyncio.create_task(sat2.run())
    await sat2.started.wait()
    start = asyncio.get_running_loop().time()
    while "loc.defaults_restored" not in seen:
        await asyncio.sleep(10.0)
        assert asyncio.get_running_loop().time() - start < 900.0, "safe defaults never came"
    # safe defaults ~600 s after the reboot (1800 s of silence in all), not 1800 s after it
    assert asyncio.get_running_loop().time() - start < 700.0
    assert seen.count("loc.radio_reset") == 0 and seen.count("loc.rebooting") == 0
    assert sat2.state.get(STATE_KEY_ID) == 0  # the default key again
    # the ground's command with the default key executes and resets the ladder
    await link_of(sat2).handle_frame(uplink_frame(sat2, 0, 2, "exec.NO_OP"))
    await asyncio.sleep(1.0)
    assert link_of(sat2).stats["commands_executed"] == 1
    assert ladder2.ladder.step is ContactStep.IN_CONTACT and "contact.contact_regained" in seen
    assert ladder2.stats["safe_defaults"] == 1
    sat2.stop_event.set()
    assert await runner2 == ResetReason.COMMANDED
    sat2.workers.shutdown()

