"""Bad configs through the real `flightsw` command: one line naming the key, exit 2, nothing written.

Each case is the shipped simulation config with one mistake. The data directory must not be
created (or, when it holds a satellite's state, not changed): a config error is not a boot.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flightsw.core.state import StateStore

ROOT = Path(__file__).resolve().parents[2]
SIM_TOML = (ROOT / "deploy" / "sim.toml").read_text()


def _replace(old: str, new: str) -> tuple[str, str]:
    assert old in SIM_TOML, old
    return old, new


# (case id, (old, new) edit of deploy/sim.toml, key path the one line must name)
CASES = [
    ("unknown-device-kind", _replace('kind = "ina219"', 'kind = "ina291"'), "devices[3].kind: unknown device kind 'ina291'"),
    ("unknown-packet-channel", _replace('"exec.uptime", ', '"exec.uptme", '),
     "telemetry.packets[0].channels[1]: no telemetry channel named 'exec.uptme'"),
    ("housekeeping-typo", _replace("[[devices]]", "[housekeeping]\ni2c_retrys = 3\n\n[[devices]]"),
     "housekeeping.i2c_retrys: unknown key"),
    ("string-for-number", _replace("records_max_bytes = 16_777_216", 'records_max_bytes = "16 MiB"'),
     "storage.records_max_bytes: expected an integer, got '16 MiB'"),
    ("unread-section", _replace("[modes]", "[fdir]\nenabled = true\n\n[modes]"), "fdir: unknown section"),
    ("driver-option-typo", _replace("shunt_ohms = 0.1", "shunt_ohm = 0.1"), "devices[3].shunt_ohm: unknown key for kind ina219"),
    ("driver-option-value", _replace("shunt_ohms = 0.1", "shunt_ohms = 0.1\nbus_range_v = 20"),
     "devices[3].bus_range_v: bus_range_v must be 16 or 32, got 20"),
    ("power-switch-missing", _replace('power_switch = "adcs_sensor_power"', 'power_switch = "adcs_power"'),
     "devices[9].power_switch: no gpio_output named 'adcs_power'"),
    ("fdir-channel-missing", _replace('battery_channel = "eps_battery.bus_voltage"',
                                      'battery_channel = "eps_batt.bus_voltage"'),
     "modes.battery_channel: no telemetry channel named 'eps_batt.bus_voltage'"),
    ("hysteresis", _replace("safe_exit_v = 7.6", "safe_exit_v = 7.0"), "modes.safe_enter_v: 7.2 V must be below"),
    ("cfdp-ids", _replace("remote_id = 1", "remote_id = 2"), "filetransfer.local_id: local_id and remote_id must differ"),
    ("watchdog-backend", _replace('backend = "sim"\ncheck_period', 'backend = "dog"\ncheck_period'),
     "watchdog.backend: expected one of"),
    ("rate-group", _replace("rate_groups = { fast = 10.0, slow = 1.0, background = 0.1 }",
                            "rate_groups = { fast = 10.0, slow = 1.0 }"), "scheduler.rate_groups: missing the 'background' group"),
    ("beacon-field", _replace("battery_voltage = ", "battery_volts = "), "link.beacon_channels.battery_volts: no such beacon field"),
]


def write_config(tmp_path: Path, edit: tuple[str, str]) -> tuple[Path, Path]:
    data = tmp_path / "data"
    text = SIM_TOML.replace(*edit, 1).replace('data_dir = "var/sim"', f'data_dir = "{data}"')
    assert text != SIM_TOML
    config = tmp_path / "mission.toml"
    config.write_text(text)
    return config, data


def flightsw(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "flightsw.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)


def assert_one_line(proc: subprocess.CompletedProcess[str], config: Path, key: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"flightsw: invalid configuration: {config}: {key}"), lines[0]


@pytest.mark.parametrize(("edit", "key"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_run_refuses_a_bad_config_before_anything_is_written(tmp_path: Path, edit: tuple[str, str], key: str) -> None:
    config, data = write_config(tmp_path, edit)
    proc = flightsw("run", "--config", str(config), "--duration", "5")
    assert_one_line(proc, config, key)
    assert not data.exists()


@pytest.mark.parametrize("command", [["sim"], ["sim", "--scenario", "nominal_day", "--duration", "60"],
                                     ["check-hardware"], ["dict"]])
@pytest.mark.parametrize("case", ["unknown-device-kind", "unknown-packet-channel", "housekeeping-typo"])
def test_every_command_gives_the_same_one_line(tmp_path: Path, command: list[str], case: str) -> None:
    _, edit, key = next(c for c in CASES if c[0] == case)
    config, data = write_config(tmp_path, edit)
    proc = flightsw(*command, "--config", str(config))
    assert_one_line(proc, config, key)
    assert not data.exists()


def test_a_config_error_is_not_a_boot(tmp_path: Path) -> None:
    """With a satellite's state in the data directory, a refused start changes none of its bytes."""
    config, data = write_config(tmp_path, next(c[1] for c in CASES if c[0] == "unknown-packet-channel"))
    state = StateStore(data / "state", fsync=False)
    state.load()
    state.boot()
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert before
    proc = flightsw("run", "--config", str(config), "--duration", "5")
    assert proc.returncode == 2, proc.stderr
    assert {p: p.read_bytes() for p in data.rglob("*") if p.is_file()} == before
