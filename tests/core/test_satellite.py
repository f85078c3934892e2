"""The whole runtime: a satellite built from config, run on the virtual clock and for real."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from flightsw.core.commands import Completion
from flightsw.core.enums import TimeQuality
from flightsw.core.records import RecordLog
from flightsw.testing import ResponseLog, ground_decoder
from sim.watchdog import SimWatchdog

ROOT = Path(__file__).resolve().parents[2]

PACKETS = """
[[telemetry.packets]]
name = "hk_exec"
rate_hz = 0.1
channels = ["exec.boot_count", "exec.uptime", "sched.fast_overruns"]
"""


@pytest.mark.virtual_time
async def test_six_simulated_hours_on_virtual_time(tmp_path: Path, new_satellite) -> None:
    dog = SimWatchdog()
    sat = new_satellite(extra_toml=PACKETS, watchdog=dog, watchdog_expired=dog.expired)
    packets: list[bytes] = []
    sat.telemetry.add_packet_sink(lambda p, body: packets.append(body))

    reason = await sat.run(duration=6 * 3600)
    assert reason == "DURATION"
    assert 2160 <= len(packets) <= 2161  # 0.1 Hz for 6 h
    hk = ground_decoder(sat).housekeeping(packets[-1])
    assert hk.packet == "hk_exec" and hk.values["exec.boot_count"] == 1 and hk.stamp.boot == 1
    assert abs(hk.values["exec.uptime"] - 6 * 3600) < 11
    groups = sat.rate_groups
    assert groups["fast"].stats.cycles >= 6 * 3600 * 10 and groups["fast"].stats.overruns == 0
    assert dog.pet_count >= 6 * 3600 and dog.is_ready and dog.stopped
    assert max(b - a for a, b in zip(dog.pets, dog.pets[1:], strict=False)) <= 1.0 + 1e-6
    # events and packets went to the record log; a clean stop is remembered as the reset reason
    records = list(RecordLog(tmp_path / "records").read_all())
    assert sum(r["k"] == "tlm" for r in records) == len(packets)
    assert any(r["k"] == "evt" for r in records)
    sat2 = new_satellite()
    assert sat2.state.boot_count == 2 and sat2.state.get("reset_reason") == "DURATION"


@pytest.mark.virtual_time
async def test_utc_set_by_command_is_carried_over_a_reboot_as_degraded(new_satellite, sat_runner) -> None:
    sat = await sat_runner.start(new_satellite())
    await asyncio.sleep(1.0)
    op = sat.dictionary.command("exec.SET_TIME").id
    assert sat.commands.submit(op, [1_800_000_000.0]).accepted
    await asyncio.sleep(100.0)
    utc = sat.clock.utc()
    await sat_runner.stop(sat)

    assert utc is not None and abs(utc - 1_800_000_100.0) < 0.01
    assert sat.clock.quality is TimeQuality.GROUND_SET
    sat2 = new_satellite()
    # the new boot starts from the UTC of the clean stop, marked DEGRADED until confirmed again
    assert sat2.clock.quality is TimeQuality.DEGRADED
    carried = sat2.clock.utc()
    assert carried is not None and abs(carried - 1_800_000_100.0) < 0.5
    assert sat2.clock.met() >= 101.0  # MET continues from the previous boot


def private_sim_config(tmp_path: Path, watchdog: str = "sim") -> Path:
    """deploy/sim.toml with a free KISS port, so a running `make sim` does not collide with the test."""
    text = (ROOT / "deploy" / "sim.toml").read_text()
    assert "kiss_tcp_port = 8001" in text, "deploy/sim.toml layout changed: update this test"
    assert '[watchdog]\nbackend = "sim"' in text, "deploy/sim.toml layout changed: update this test"
    text = text.replace("kiss_tcp_port = 8001", "kiss_tcp_port = 0")
    text = text.replace('[watchdog]\nbackend = "sim"', f'[watchdog]\nbackend = "{watchdog}"')
    path = tmp_path / "sim.toml"
    path.write_text(text)
    return path


def test_sim_command_runs_and_logs_housekeeping(tmp_path: Path) -> None:
    proc = subprocess.run(
        # -v: packets are logged at DEBUG only (a line per packet would flood the journal)
        [sys.executable, "-m", "flightsw.cli", "-v", "sim", "--config", str(private_sim_config(tmp_path)),
         "--duration", "10", "--data-dir", str(tmp_path / "d")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("housekeeping packet") >= 3
    assert "Boot 1 (reset reason FIRST_BOOT)" in proc.stderr


async def test_sigterm_stops_cleanly_within_two_seconds(tmp_path: Path, new_satellite) -> None:
    """Started as systemd starts the unit: once it has said READY=1, SIGTERM stops it cleanly."""
    loop = asyncio.get_running_loop()
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.setblocking(False)
        env = dict(os.environ, PYTHONPATH=str(ROOT), NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="4000000")
        log_path = tmp_path / "run.log"
        with open(log_path, "w") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "flightsw.cli", "run", "--config",
                str(private_sim_config(tmp_path, watchdog="systemd")),
                cwd=tmp_path, stderr=log, env=env)
        try:
            async with asyncio.timeout(30):  # generous: a busy machine; normally about a second
                while "READY=1" not in (await loop.sock_recv(notify, 4096)).decode().splitlines():
                    pass
            t0 = loop.time()
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                rc = await proc.wait()
            elapsed = loop.time() - t0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    rest = log_path.read_text()
    assert rc == 0, rest[-3000:]
    assert elapsed < 2.0 and "stopped: SIGTERM" in rest
    sat = new_satellite(data_dir=tmp_path / "var" / "sim")
    assert sat.state.get("reset_reason") == "SIGTERM"


def test_invalid_config_exits_non_zero_with_one_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[storage]\nrecords_max_bytes = \"lots\"\n")
    proc = subprocess.run([sys.executable, "-m", "flightsw.cli", "run", "--config", str(bad)], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"flightsw: invalid configuration: {bad}: storage.records_max_bytes: expected an integer, got 'lots'"


async def test_dict_command_prints_json_a_ground_tool_can_command_with(new_satellite, sat_runner) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flightsw.cli", "dict", "--format", "json", cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    d = json.loads(out)
    assert any(c["name"] == "exec.SET_TIME" for c in d["commands"]) and len(d["hash"]) == 64
    # A command packed from the export alone (opcode and argument list, msgpack) is accepted and
    # executed by a running satellite.
    opcodes = {c["name"]: c["opcode"] for c in d["commands"]}
    sat = await sat_runner.start(new_satellite())
    log = ResponseLog(sat)
    packet = msgpack.packb([opcodes["exec.SET_TIME"], [1_800_000_000.0]])
    verdict = sat.commands.submit_packed(packet, seq=1)
    assert verdict.accepted, verdict
    assert (await log.wait_completion(1)).completion is Completion.SUCCESS
    assert sat.clock.utc() is not None and abs(sat.clock.utc() - 1_800_000_000.0) < 5.0


def test_corrupt_state_falls_back_and_raises_an_event(tmp_path: Path, new_satellite) -> None:
    new_satellite()
    new_satellite()  # boot 2: state.b newest
    newest = tmp_path / "state.b"
    newest.write_bytes(newest.read_bytes()[:-4])  # torn by a failing card
    sat = new_satellite()
    assert sat.state.boot_count == 2  # the last good copy (boot 1's record) was used, then counted
    sat.finalize()
    problems = [e for e in sat.events.recent if e.name == "exec.store_problem"]
    assert problems and problems[0].args["store"] == "state" and "state.b" in problems[0].args["detail"]


def test_flight_config_dictionary_exports_without_hardware_or_keys() -> None:
    proc = subprocess.run([sys.executable, "-m", "flightsw.cli", "dict", "--config", "deploy/flight.toml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {c["name"] for c in json.loads(proc.stdout)["channels"]}
    assert {"eps_battery.bus_voltage", "exec.uptime"} <= names


def test_missing_systemd_is_a_clear_startup_error(tmp_path: Path) -> None:
    cfg = tmp_path / "m.toml"
    cfg.write_text(f'[storage]\ndata_dir = "{tmp_path / "d"}"\n[watchdog]\nbackend = "systemd"\n')
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    proc = subprocess.run([sys.executable, "-m", "flightsw.cli", "run", "--config", str(cfg)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 1
    assert "cannot start: watchdog.backend = 'systemd'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.virtual_time
async def test_a_hung_rate_group_member_stops_the_watchdog(new_satellite) -> None:
    from flightsw.core.component import Component

    class Hangs(Component):
        """Its slow-group member never returns after t = 100 s."""

        def setup(self) -> None:
            self.ctx.rate_group("slow").add("hangs.step", self.step)

        async def step(self) -> None:
            if asyncio.get_running_loop().time() - t0 > 100:
                await asyncio.Event().wait()

    dog = SimWatchdog()
    sat = new_satellite([Hangs("hangs", 0x50)], watchdog=dog, watchdog_expired=dog.expired)
    t0 = asyncio.get_running_loop().time()
    await sat.run(duration=200)
    last_pet = dog.pets[-1] - t0
    assert 100 < last_pet <= 112  # deadline 10 s after the last slow-group cycle, checked every 1 s
    assert any(e.name == "exec.health_stale" and "rategroup.slow" in e.args["tasks"] for e in sat.events.recent)


@pytest.mark.virtual_time
async def test_simulated_watchdog_resets_a_hung_satellite_and_the_next_boot_says_so(new_satellite) -> None:
    from flightsw.core.component import Component

    class HangsAt100(Component):
        """Its slow-group member never returns after t = 100 s."""

        def setup(self) -> None:
            self.ctx.rate_group("slow").add("hangs.step", self.step)

        async def step(self) -> None:
            if asyncio.get_running_loop().time() > 100:
                await asyncio.Event().wait()

    dog = SimWatchdog(timeout=15.0)
    sat = new_satellite([HangsAt100("hangs", 0x50)], watchdog=dog, watchdog_expired=dog.expired)

    reason = await sat.run(duration=1000)
    assert reason == "WATCHDOG" and dog.bites == 1
    # heartbeat deadline 10 s after the last cycle at ~100 s, then the 15 s watchdog timeout
    assert 120 <= dog.pets[-1] + dog.timeout <= 130
    again = new_satellite()
    assert again.state.boot_count == 2 and again.state.get("reset_reason") == "UNEXPECTED"


@pytest.mark.virtual_time
async def test_a_framework_error_is_the_next_boots_reset_reason_not_a_clean_stop(new_satellite) -> None:
    sat = new_satellite()

    async def broken() -> None:
        await asyncio.sleep(3.0)
        raise RuntimeError("framework bug")

    sat.supervisor.run = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="framework bug"):  # not swallowed
        await sat.run(duration=60.0)
    again = new_satellite()
    assert again.state.boot_count == 2 and again.state.get("reset_reason") == "SOFTWARE_ERROR"
