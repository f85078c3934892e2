"""The whole runtime: a satellite built from config, run on the virtual clock and for real."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgpack

from flightsw.app import Satellite
from flightsw.core.records import RecordLog
from flightsw.core.telemetry import decode_packet
from flightsw.testing import make_satellite, mission_config
from sim.virtual_time import run_virtual
from sim.watchdog import SimWatchdog

ROOT = Path(__file__).resolve().parents[2]

PACKETS = """
[[telemetry.packets]]
name = "hk_exec"
rate_hz = 0.1
channels = ["exec.boot_count", "exec.uptime", "sched.fast_overruns"]
"""


def test_six_simulated_hours_on_virtual_time(tmp_path: Path) -> None:
    dog = SimWatchdog()
    sat = make_satellite(tmp_path, extra_toml=PACKETS, watchdog=dog, watchdog_expired=dog.expired)
    packets: list[bytes] = []
    sat.telemetry.add_packet_sink(lambda p, body: packets.append(body))

    reason = run_virtual(sat.run(duration=6 * 3600))
    assert reason == "DURATION"
    assert 2160 <= len(packets) <= 2161  # 0.1 Hz for 6 h
    pdef, stamp, values = decode_packet(packets[-1], sat.packets)
    assert values["exec.boot_count"] == 1 and stamp.boot == 1
    assert abs(values["exec.uptime"] - 6 * 3600) < 11
    groups = sat.rate_groups
    assert groups["fast"].stats.cycles >= 6 * 3600 * 10 and groups["fast"].stats.overruns == 0
    assert dog.pet_count >= 6 * 3600 and dog.is_ready and dog.stopped
    assert max(b - a for a, b in zip(dog.pets, dog.pets[1:], strict=False)) <= 1.0 + 1e-6
    # events and packets went to the record log; a clean stop is remembered as the reset reason
    records = list(RecordLog(tmp_path / "records").read_all())
    assert sum(r["k"] == "tlm" for r in records) == len(packets)
    assert any(r["k"] == "evt" for r in records)
    sat2 = make_satellite(tmp_path)
    assert sat2.state.boot_count == 2 and sat2.state.get("reset_reason") == "DURATION"
    sat2.workers.shutdown()


def test_utc_correlation_by_command_persists_for_the_boot(tmp_path: Path) -> None:
    sat = make_satellite(tmp_path)

    async def body() -> float | None:
        runner = asyncio.create_task(sat.run())
        await asyncio.sleep(1.0)
        op = sat.dictionary.command("exec.SET_TIME").id
        assert sat.commands.submit(op, [1_800_000_000.0]).accepted
        await asyncio.sleep(100.0)
        utc = sat.clock.utc()
        sat.stop_event.set()
        await runner
        return utc

    utc = run_virtual(body())
    assert utc is not None and abs(utc - 1_800_000_100.0) < 0.01
    sat2 = make_satellite(tmp_path)
    assert sat2.clock.correlation is not None and sat2.clock.utc() is None  # new boot: unknown until set again
    sat2.workers.shutdown()


def private_sim_config(tmp_path: Path) -> Path:
    """deploy/sim.toml with a free KISS port, so a running `make sim` does not collide with the test."""
    text = (ROOT / "deploy" / "sim.toml").read_text()
    assert "kiss_tcp_port = 8001" in text, "deploy/sim.toml layout changed: update this test"
    path = tmp_path / "sim.toml"
    path.write_text(text.replace("kiss_tcp_port = 8001", "kiss_tcp_port = 0"))
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


def test_sigterm_stops_cleanly_within_two_seconds(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flightsw.cli", "run", "--config", str(private_sim_config(tmp_path))],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "exec.booted" in line:
            break
    time.sleep(1.0)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=10)
    elapsed = time.monotonic() - t0
    rest = proc.stderr.read()
    assert rc == 0, rest
    assert elapsed < 2.0 and "stopped: SIGTERM" in rest
    cfg = mission_config(tmp_path / "var" / "sim")
    sat = Satellite(cfg, subsystems=[])
    assert sat.state.get("reset_reason") == "SIGTERM"
    sat.workers.shutdown()


def test_invalid_config_exits_non_zero_with_one_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[storage]\nrecords_max_bytes = \"lots\"\n")
    proc = subprocess.run([sys.executable, "-m", "flightsw.cli", "run", "--config", str(bad)], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"flightsw: invalid configuration: {bad}: storage.records_max_bytes: expected an integer, got 'lots'"


def test_dict_command_prints_json(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "flightsw.cli", "dict", "--format", "json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    import json

    d = json.loads(proc.stdout)
    assert any(c["name"] == "exec.SET_TIME" for c in d["commands"]) and len(d["hash"]) == 64
    assert msgpack  # packets are msgpack (decoded above)


def test_corrupt_state_falls_back_and_raises_an_event(tmp_path: Path) -> None:
    sat = make_satellite(tmp_path)
    sat.workers.shutdown()
    sat = make_satellite(tmp_path)  # boot 2: state.b newest
    sat.workers.shutdown()
    newest = tmp_path / "state.b"
    newest.write_bytes(newest.read_bytes()[:-4])  # torn by a failing card
    sat = make_satellite(tmp_path)
    assert sat.state.boot_count == 2  # the last good copy (boot 1's record) was used, then counted
    sat.finalize()
    problems = [e for e in sat.events.recent if e.name == "exec.store_problem"]
    assert problems and problems[0].args["store"] == "state" and "state.b" in problems[0].args["detail"]
    sat.workers.shutdown()


def test_flight_config_dictionary_exports_without_hardware_or_keys() -> None:
    proc = subprocess.run([sys.executable, "-m", "flightsw.cli", "dict", "--config", "deploy/flight.toml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

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


def test_a_hung_rate_group_member_stops_the_watchdog(tmp_path: Path) -> None:
    from flightsw.core.component import Component

    class Hangs(Component):
        """Its slow-group member never returns after t = 100 s."""

        def setup(self) -> None:
            self.ctx.rate_group("slow").add("hangs.step", self.step)

        async def step(self) -> None:
            if asyncio.get_running_loop().time() - t0 > 100:
                await asyncio.Event().wait()

    dog = SimWatchdog()
    sat = make_satellite(tmp_path, [Hangs("hangs", 0x50)], watchdog=dog, watchdog_expired=dog.expired)
    t0 = 0.0

    async def main() -> None:
        nonlocal t0
        t0 = asyncio.get_running_loop().time()
        await sat.run(duration=200)

    run_virtual(main())
    last_pet = dog.pets[-1] - t0
    assert 100 < last_pet <= 112  # deadline 10 s after the last slow-group cycle, checked every 1 s
    assert any(e.name == "exec.health_stale" and "rategroup.slow" in e.args["tasks"] for e in sat.events.recent)


def test_simulated_watchdog_resets_a_hung_satellite_and_the_next_boot_says_so(tmp_path: Path) -> None:
    from flightsw.core.component import Component

    class HangsAt100(Component):
        """Its slow-group member never returns after t = 100 s."""

        def setup(self) -> None:
            self.ctx.rate_group("slow").add("hangs.step", self.step)

        async def step(self) -> None:
            if asyncio.get_running_loop().time() > 100:
                await asyncio.Event().wait()

    dog = SimWatchdog(timeout=15.0)
    sat = make_satellite(tmp_path, [HangsAt100("hangs", 0x50)], watchdog=dog, watchdog_expired=dog.expired)

    reason = run_virtual(sat.run(duration=1000))
    assert reason == "WATCHDOG" and dog.bites == 1
    # heartbeat deadline 10 s after the last cycle at ~100 s, then the 15 s watchdog timeout
    assert 120 <= dog.pets[-1] + dog.timeout <= 130
    again = make_satellite(tmp_path)
    assert again.state.boot_count == 2 and again.state.get("reset_reason") == "UNEXPECTED"
    again.workers.shutdown()


def test_a_framework_error_is_the_next_boots_reset_reason_not_a_clean_stop(tmp_path: Path) -> None:
    sat = make_satellite(tmp_path)

    async def broken() -> None:
        await asyncio.sleep(3.0)
        raise RuntimeError("framework bug")

    sat.supervisor.run = broken  # type: ignore[method-assign]
    try:
        run_virtual(sat.run(duration=60.0))
    except RuntimeError as exc:
        assert "framework bug" in str(exc)
    else:
        raise AssertionError("the framework error was swallowed")
    again = make_satellite(tmp_path)
    assert again.state.boot_count == 2 and again.state.get("reset_reason") == "SOFTWARE_ERROR"
    again.workers.shutdown()
