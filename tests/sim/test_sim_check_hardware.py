"""`flightsw check-hardware` against simulated configs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flightsw.cli", "check-hardware", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_sim_config_lists_every_part_as_found() -> None:
    result = run_cli("--config", str(REPO / "deploy" / "sim.toml"))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if "sim-i2c-1@" in line]
    assert len(rows) == 10
    assert all(line.rstrip().endswith("FOUND") for line in rows), result.stdout
    battery = next(line for line in rows if line.startswith("eps_battery"))
    voltage = float(battery.split("bus_voltage=")[1].split()[0])
    assert 7.5 < voltage < 7.7  # the simulated battery rail is 7.6 V plus noise
    assert "WHO_AM_I=0x40" in result.stdout and "WHO_AM_I=0x6c" in result.stdout
    assert "10/10 sensors found" in result.stdout
    assert "adcs_sensor_power" in result.stdout


def test_missing_part_is_reported_and_exit_status_is_nonzero(tmp_path: Path) -> None:
    config = tmp_path / "bench.toml"
    config.write_text("""
[[devices]]
name = "temp_board"
kind = "mcp9808"
backend = "sim"
address = 0x18

[[devices]]
name = "temp_missing"
kind = "mcp9808"
backend = "sim"
address = 0x19
faults = { absent = true }
""")
    result = run_cli("--config", str(config))
    assert result.returncode == 1
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if "@0x" in line}
    assert lines["temp_board"].rstrip().endswith("FOUND")
    assert "NOT FOUND" in lines["temp_missing"] and "no answer" in lines["temp_missing"]
    assert "1/2 sensors found" in result.stdout


def test_invalid_config_is_refused_with_the_key_named(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[devices]]\nname = "t"\nkind = "mcp9808"\nresolutoin = 3\n')
    result = run_cli("--config", str(config))
    assert result.returncode == 2
    assert "resolutoin" in result.stderr
