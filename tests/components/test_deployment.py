"""The deployment sequence and transmitter control in a real Satellite on virtual time: burn wires
and the deployment switch on the simulated GPIO backend, the battery a simulated INA219 read by
the real driver, the radio the simulated transceiver on a pty with its KISS TCP server, and a
ground client on that TCP port. Each ``boot`` is a new process on the same data directory."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from flightsw.app import Satellite, Subsystem
from flightsw.components.deployment import Deployment, build_deployment
from flightsw.components.hardware import HardwareBuilder, HardwareSet
from flightsw.components.housekeeping import add_hardware
from flightsw.components.modes import build_modes
from flightsw.config import ConfigError, loads
from flightsw.core.commands import Completion
from flightsw.core.enums import DeploymentState, TxInhibit
from flightsw.ground.station import TcpKiss
from flightsw.link import ax25
from flightsw.link.packets import Apid, split_packets
from flightsw.link.subsystem import SIM_TRANSCEIVER, build_link
from flightsw.link.tx_control import TransmitterControl
from flightsw.testing import ResponseLog, wait_until
from hal import kiss
from sim.parts import ConstantEnvironment

pytestmark = pytest.mark.virtual_time  # 45 minutes of silence in well under a second

CONFIG = """
[storage]
data_dir = "{data}"
fsync = false
[watchdog]
backend = "sim"

[[devices]]
name = "burn_primary"
kind = "gpio_output"
backend = "sim"
line = 5
burn_wire = {{ switch = "deploy_switch", fail_first = {fail_first}, release_after_s = 2.0, current_a = 1.5 }}

[[devices]]
name = "burn_backup"
kind = "gpio_output"
backend = "sim"
line = 6
burn_wire = {{ switch = "deploy_switch", release_probability = 1.0, release_after_s = 2.0 }}

[[devices]]
name = "deploy_switch"
kind = "gpio_input"
backend = "sim"
line = 25
pull = "up"
active_low = true

[[devices]]
name = "eps_battery"
kind = "ina219"
backend = "sim"
address = 0x40
shunt_ohms = 0.1
max_current_a = 3.2
rail = "battery"
rate = "fast"

[[devices]]
name = "radio"
kind = "uhf_radio"
backend = "sim"
kiss_tcp_port = 0
seed = 3
propagation_delay = 0.002

[link]
callsign = "UN0SAT-1"
ground_callsign = "UN0GND"
generate_key = true
{link}

[deployment]
silence_s = {silence}
burn_outputs = ["burn_primary", "burn_backup"]
switch_inputs = ["deploy_switch"]
min_battery_v = 7.4
max_wait_s = 300
burn_s = 5
cooldown_s = 10
attempts_per_circuit = 2
persist_period_s = 5
{extra}
"""


class Rig:
    """One satellite's disk, battery and burn wires; the wires' fate survives the computer's reboots."""

    def __init__(self, tmp_path: Path, silence: float = 120.0, fail_first: int = 1, link: str = "",
                 extra: str = "", subsystems: tuple[Subsystem, ...] = ()) -> None:
        self.data = tmp_path / "data"
        self.silence, self.fail_first, self.link, self.extra = silence, fail_first, link, extra
        self.subsystems = subsystems
        self.env = ConstantEnvironment()
        self.env.rails["battery"] = (7.9, 0.3)
        self.hw: HardwareSet | None = None
        self.ground_frames: list[tuple[float, bytes]] = []

    def _hardware(self, sat: Satellite) -> None:
        before = self.hw
        self.hw = HardwareBuilder(sat.config, environment=self.env).build()
        if before is not None:
            for name, wire in self.hw.burn_wires.items():
                wire.carry_over(before.burn_wires[name])
        add_hardware(sat, self.hw)

    def boot(self) -> Satellite:
        config = loads(CONFIG.format(data=self.data, silence=self.silence, fail_first=self.fail_first,
                                     link=self.link, extra=self.extra))
        hardware: Subsystem = self._hardware
        return Satellite(config, subsystems=[build_link, hardware, build_deployment, *self.subsystems])

    async def run(self, body: Callable[[Satellite], Awaitable[Any]], hard_reset: bool = False) -> Any:
        """Boot, listen on the KISS TCP port like a ground station, run ``body``, stop (or reset)."""
        sat = await asyncio.to_thread(self.boot)
        runner = asyncio.create_task(sat.run())
        listener: asyncio.Task[None] | None = None
        try:
            await sat.started.wait()
            xcvr = sat.ports.require(SIM_TRANSCEIVER)
            await wait_until(lambda: xcvr.listening)
            tnc = TcpKiss("127.0.0.1", xcvr.bound_port)
            await tnc.connect()
            listener = asyncio.create_task(self._listen(tnc))
            return await body(sat)
        finally:
            if listener is not None:
                listener.cancel()
            sat.watchdog_reset = hard_reset
            sat.stop_event.set()
            await runner

    async def _listen(self, tnc: TcpKiss) -> None:
        decoder = kiss.KissDecoder()
        loop = asyncio.get_running_loop()
        try:
            while True:
                for frame in decoder.feed(await tnc.read()):
                    self.ground_frames.append((loop.time(), frame.payload))
        finally:
            await tnc.close()


def beacons(frames: list[tuple[float, bytes]]) -> list[float]:
    """Times of the beacons among frames the ground received (AX.25 from the satellite, APID 0x012)."""
    out = []
    for at, raw in frames:
        frame = ax25.decode(raw)
        assert str(frame.source).startswith("UN0SAT")
        packets, _errors = split_packets(frame.info)
        out += [at for p in packets if p.apid == Apid.BEACON]
    return out


def deploy_of(sat: Satellite) -> Deployment:
    comp = sat.component("deploy")
    assert isinstance(comp, Deployment)
    return comp


def events(sat: Satellite, prefix: str = "deploy.") -> list[str]:
    return [e.name for e in sat.events.recent if e.name.startswith(prefix)]


async def command(sat: Satellite, name: str, *args: Any) -> Any:
    assert sat.dictionary is not None
    log = ResponseLog(sat)
    verdict = sat.commands.submit(sat.dictionary.command(name).id, list(args))
    assert verdict.accepted, verdict
    return await log.wait_completion(log.items[0].seq, limit=30.0)


async def test_silence_across_reboots_burns_beacons(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    loop = asyncio.get_running_loop()

    async def first(sat: Satellite) -> None:
        xcvr = sat.ports.require(SIM_TRANSCEIVER)
        tx = sat.component("tx")
        assert isinstance(tx, TransmitterControl)
        assert tx.inhibits() == {TxInhibit.SILENCE}
        done = await command(sat, "tx.TX_ON")  # nobody ends the silence early
        assert done.completion is Completion.FAILURE and "silence" in done.detail
        await asyncio.sleep(60.0)
        assert xcvr.downlink.stats.frames_in == 0  # not one frame reached the transceiver
        assert deploy_of(sat).record.state is DeploymentState.SILENCE
        assert sat.component("link").scheduler.frames_withheld > 0  # events were queued and withheld
        assert "deploy.silence_started" in events(sat)

    await rig.run(first)

    async def second(sat: Satellite) -> float:
        booted = loop.time()
        xcvr = sat.ports.require(SIM_TRANSCEIVER)
        deploy = deploy_of(sat)
        left = deploy.silence_remaining_s()
        assert 55.0 <= left <= 61.0  # resumed: about 60 s of the 120 s remain, not 120
        currents: list[float] = []

        def sample_current() -> bool:
            assert sat.dictionary is not None
            s = sat.telemetry.latest(sat.dictionary.by_name["eps_battery.current"].id)
            if s is not None:
                currents.append(float(s.value))
            return deploy.record.state is DeploymentState.DEPLOYED

        await wait_until(sample_current, limit=200.0, poll=0.5)
        assert xcvr.downlink.stats.first_frame_at is not None
        assert xcvr.downlink.stats.first_frame_at - booted >= left - 1.0  # silent until it was served
        await wait_until(lambda: beacons(rig.ground_frames), limit=30.0)
        assert max(currents) > 1.5 > min(currents)  # the INA219 saw the wire's 1.5 A while it burned
        rec = deploy.record
        assert (rec.circuit, rec.attempt, rec.attempts_total) == (0, 2, 2)  # primary, second attempt
        names = events(sat)
        assert names.index("deploy.silence_resumed") < names.index("deploy.silence_ended")
        burns = [n for n in names if n in ("deploy.burn_started", "deploy.burn_ended", "deploy.cooldown",
                                           "deploy.deployed")]
        assert burns == ["deploy.burn_started", "deploy.burn_ended", "deploy.cooldown",
                         "deploy.burn_started", "deploy.burn_ended", "deploy.deployed"]
        assert rig.hw is not None and rig.hw.burn_wires["burn_primary"].released_on_attempt == 2
        assert rig.hw.burn_wires["burn_backup"].attempts == 0
        assert not any(line.is_on for line in rig.hw.gpio.outputs.values())  # no wire left powered
        return booted

    booted = await rig.run(second)
    assert beacons(rig.ground_frames) and min(t for t, _ in rig.ground_frames) >= booted + 55.0

    async def third(sat: Satellite) -> None:
        booted = loop.time()
        xcvr = sat.ports.require(SIM_TRANSCEIVER)
        assert not deploy_of(sat).silence_active()  # never silent again
        await wait_until(lambda: xcvr.downlink.stats.first_frame_at is not None, limit=10.0)
        assert xcvr.downlink.stats.first_frame_at - booted < 5.0
        assert deploy_of(sat).record.state is DeploymentState.DEPLOYED
        assert "deploy.burn_started" not in events(sat)

    await rig.run(third)


async def test_watchdog_reset_during_silence_resumes_from_the_last_save(tmp_path: Path) -> None:
    rig = Rig(tmp_path, silence=120.0)

    async def hung(sat: Satellite) -> None:
        await asyncio.sleep(43.0)

    await rig.run(hung, hard_reset=True)  # no clean stop: only the periodic saves (every 5 s) count

    async def after(sat: Satellite) -> None:
        left = deploy_of(sat).silence_remaining_s()
        assert 80.0 - 0.5 <= left <= 120.0 - 40.0 + 0.5  # lost at most persist_period_s, never gained
        assert sat.ports.require(SIM_TRANSCEIVER).downlink.stats.frames_in == 0

    await rig.run(after)


async def test_low_battery_waits_then_forces_then_backup_after_primary_fails(tmp_path: Path) -> None:
    rig = Rig(tmp_path, silence=10.0, fail_first=99)
    rig.env.rails["battery"] = (7.1, 0.3)  # below min_battery_v = 7.4

    async def body(sat: Satellite) -> None:
        deploy = deploy_of(sat)
        await asyncio.sleep(200.0)
        assert deploy.record.attempts_total == 0 and "deploy.waiting_battery" in events(sat)
        await wait_until(lambda: deploy.record.attempts_total == 1, limit=200.0, poll=1.0)
        rig.env.rails["battery"] = (7.9, 0.3)  # the sun is back: the next attempts need no forcing
        await wait_until(lambda: deploy.record.state is DeploymentState.DEPLOYED, limit=400.0, poll=1.0)
        started = [e for e in sat.events.recent if e.name == "deploy.burn_started"]
        assert "forced" in started[0].args["why"]  # max_wait_s = 300 s after the silence ended
        assert "forced" not in started[1].args["why"]
        assert [(e.args["output"], e.args["attempt"]) for e in started] == [
            ("burn_primary", 1), ("burn_primary", 2), ("burn_backup", 1)]
        assert "deploy.circuit_switched" in events(sat)

    await rig.run(body)


async def test_operator_commands_and_transmitter_off(tmp_path: Path) -> None:
    rig = Rig(tmp_path, silence=5.0, fail_first=99)

    async def body(sat: Satellite) -> None:
        deploy = deploy_of(sat)
        xcvr = sat.ports.require(SIM_TRANSCEIVER)
        await wait_until(lambda: deploy.record.state is DeploymentState.BURNING, limit=30.0)
        done = await command(sat, "deploy.SKIP")
        assert done.completion is Completion.FAILURE and "burn is in progress" in done.detail
        await wait_until(lambda: deploy.record.state is DeploymentState.COOLDOWN, limit=30.0)
        assert (await command(sat, "deploy.SKIP")).completion is Completion.SUCCESS
        assert deploy.record.state is DeploymentState.SKIPPED
        assert (await command(sat, "deploy.RETRY", 1)).completion is Completion.SUCCESS
        await wait_until(lambda: deploy.record.state is DeploymentState.DEPLOYED, limit=30.0)
        assert deploy.record.circuit == 1
        assert (await command(sat, "deploy.REARM")).completion is Completion.SUCCESS
        assert deploy.record.state is DeploymentState.ARMED
        assert (await command(sat, "deploy.SKIP")).completion is Completion.SUCCESS
        # the ground's transmitter-off: persisted, honoured by the link, counted as withheld
        assert (await command(sat, "tx.TX_OFF")).completion is Completion.SUCCESS
        await asyncio.sleep(1.0)
        sent = xcvr.downlink.stats.frames_in
        await asyncio.sleep(60.0)
        assert xcvr.downlink.stats.frames_in == sent

    await rig.run(body)

    async def after(sat: Satellite) -> None:
        xcvr = sat.ports.require(SIM_TRANSCEIVER)
        tx = sat.component("tx")
        assert isinstance(tx, TransmitterControl) and tx.inhibits() == {TxInhibit.COMMANDED_OFF}
        await asyncio.sleep(40.0)
        assert xcvr.downlink.stats.frames_in == 0  # still off after the reboot
        assert (await command(sat, "tx.TX_ON")).completion is Completion.SUCCESS
        await wait_until(lambda: xcvr.downlink.stats.frames_in > 0, limit=40.0)
        assert deploy_of(sat).record.state is DeploymentState.SKIPPED

    await rig.run(after)


@pytest.mark.parametrize(("link", "expected"), [
    ("", {}),  # default "tnc": the TNC keeps its own TX tail and duplex
    ("tx_tail = 0.03\nfull_duplex = false", {"TX_TAIL": 3, "FULL_DUPLEX": 0}),
])
async def test_kiss_tx_tail_and_duplex_reach_the_tnc_only_when_configured(
        tmp_path: Path, link: str, expected: dict[str, int]) -> None:
    """Over the real pty to the simulated TNC; the beacon then reaches a KISS TCP client."""
    rig = Rig(tmp_path, silence=0.0, link=link)

    async def body(sat: Satellite) -> dict[str, int]:
        xcvr = sat.ports.require(SIM_TRANSCEIVER)
        await wait_until(lambda: beacons(rig.ground_frames), limit=30.0)
        return dict(xcvr.tnc_parameters)

    params = await rig.run(body)
    assert {k: params[k] for k in ("TX_TAIL", "FULL_DUPLEX") if k in params} == expected
    assert params["TX_DELAY"] == 5


async def test_a_failed_open_switch_does_not_cut_the_burn_short(tmp_path: Path) -> None:
    rig = Rig(tmp_path, silence=5.0, fail_first=0)

    async def body(sat: Satellite) -> None:
        assert rig.hw is not None
        rig.hw.sim_gpio.levels[25] = False  # reads released (active low) before any burn
        deploy = deploy_of(sat)
        await wait_until(lambda: deploy.record.state.final, limit=60.0)
        (ended,) = [e for e in sat.events.recent if e.name == "deploy.burn_ended"]
        assert ended.args["seconds"] == pytest.approx(5.0, abs=0.3)  # the whole burn_s
        assert deploy.record.state is DeploymentState.DEPLOYED

    await rig.run(body)


async def test_low_power_and_silent_modes_inhibit_the_transmitter(tmp_path: Path) -> None:
    extra = """
[transmitter]
battery_channel = "eps_battery.bus_voltage"
off_below_v = 7.0
on_above_v = 7.3
silent_modes = ["DETUMBLE"]

[modes]
first_boot_mode = "NOMINAL"
"""
    rig = Rig(tmp_path, silence=0.0, extra=extra, subsystems=(build_modes,))

    async def body(sat: Satellite) -> None:
        tx = sat.component("tx")
        assert isinstance(tx, TransmitterControl)
        xcvr = sat.ports.require(SIM_TRANSCEIVER)
        await wait_until(lambda: xcvr.downlink.stats.frames_in > 0, limit=10.0)
        assert tx.inhibits() == frozenset()
        rig.env.rails["battery"] = (6.9, 0.3)
        await wait_until(lambda: TxInhibit.LOW_POWER in tx.inhibits(), limit=10.0)
        await asyncio.sleep(2.0)
        frames = xcvr.downlink.stats.frames_in
        rig.env.rails["battery"] = (7.2, 0.3)  # inside the hysteresis band: still off
        await asyncio.sleep(30.0)
        assert xcvr.downlink.stats.frames_in == frames and TxInhibit.LOW_POWER in tx.inhibits()
        rig.env.rails["battery"] = (7.9, 0.3)
        await wait_until(lambda: xcvr.downlink.stats.frames_in > frames, limit=30.0)
        assert (await command(sat, "modes.SET_MODE", "DETUMBLE")).completion is Completion.SUCCESS
        assert tx.inhibits() == {TxInhibit.MODE}  # at once, through the mode listener
        changes = [e.args["reasons"] for e in sat.events.recent if e.name == "tx.changed"]
        assert changes == ["low_power", "no inhibit", "mode"]

    await rig.run(body)


def test_config_refuses_lines_that_do_not_exist(tmp_path: Path) -> None:
    text = CONFIG.format(data=tmp_path, silence=10, fail_first=0, link="", extra="")
    with pytest.raises(ConfigError, match=r"deployment.burn_outputs\[1\]: no gpio_output device named 'burn_x'"):
        loads(text.replace('burn_outputs = ["burn_primary", "burn_backup"]', 'burn_outputs = ["burn_primary", "burn_x"]'))
    with pytest.raises(ConfigError, match=re.escape("transmitter.off_below_v: 7.5 V must be above 0 and below "
                                                    "on_above_v (7.3 V) when battery_channel is set")):
        loads(text + '[transmitter]\nbattery_channel = "eps_battery.bus_voltage"\noff_below_v = 7.5\non_above_v = 7.3\n')
    with pytest.raises(ConfigError, match=re.escape("link.tx_tail: expected one of 'tnc', number in [0, 2.55], got 'off'")):
        loads(text.replace('generate_key = true', 'generate_key = true\ntx_tail = "off"'))
    with pytest.raises(ConfigError, match="burn_wire.switch: no gpio_input named 'nope'"):
        loads(text.replace('switch = "deploy_switch", fail_first', 'switch = "nope", fail_first'))
