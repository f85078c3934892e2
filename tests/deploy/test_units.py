"""The systemd unit and drop-ins: systemd-analyze verify, and the properties the mission relies on."""

from __future__ import annotations

import configparser
import re
import shutil
from pathlib import Path

import pytest
from deploy_support import REPO, run

DEPLOY = REPO / "deploy"
SYSTEMD_UNITS = Path("/usr/lib/systemd/system")


def unit_settings(path: Path) -> dict[str, list[str]]:
    """key -> every value (systemd allows repeated keys such as DeviceAllow)."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key, []).append(value)
    return settings


@pytest.mark.skipif(shutil.which("systemd-analyze") is None or not SYSTEMD_UNITS.is_dir(),
                    reason="systemd-analyze is not installed on this machine")
def test_systemd_analyze_verify_passes_without_warnings(tmp_path: Path) -> None:
    # A staged root with the executables the units name, so verify checks them too.
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree(SYSTEMD_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    flightsw = root / "opt/flightsw/current/bin/flightsw"
    flightsw.parent.mkdir(parents=True)
    flightsw.write_text("#!/bin/sh\n")
    flightsw.chmod(0o755)
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy(shutil.which("python3") or "/usr/bin/python3", root / "usr/bin/python3")
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    names = ["flightsw.service", "flightsw-update.service", "flightsw-update.path"]
    for name in names:
        shutil.copy(DEPLOY / name, units / name)
    result = run(["systemd-analyze", "verify", f"--root={root}", *[f"/etc/systemd/system/{n}" for n in names]])
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys are only warnings: none allowed


def test_service_supervision_and_hardening() -> None:
    s = unit_settings(DEPLOY / "flightsw.service")
    assert s["Type"] == ["notify"]
    assert s["Restart"] == ["always"]
    assert s["StartLimitAction"] == ["reboot"]
    watchdog = int(s["WatchdogSec"][0].rstrip("s"))
    assert 2 <= watchdog <= 30
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "DevicePolicy": "closed", "User": "flightsw"}.items():
        assert s[key] == [value], key
    assert s["ReadWritePaths"] == ["/var/lib/flightsw"]  # the data directory and nothing else
    allowed = {v.split()[0] for v in s["DeviceAllow"]}
    assert {"char-i2c", "char-ttyAMA", "char-ttyUSB", "char-gpiochip"} <= allowed
    assert s["ExecStart"][0].startswith("/opt/flightsw/current/bin/flightsw run --config /etc/flightsw/mission.toml")
    # The boot guard runs privileged, from the stable updater copy, with the system interpreter.
    assert s["ExecStartPre"][0].startswith("+/usr/bin/python3 /opt/flightsw/updater/update.py")
    assert "boot-check" in s["ExecStartPre"][0]


def test_hardware_watchdog_within_the_pi_limit() -> None:
    conf = configparser.ConfigParser()
    conf.read(DEPLOY / "system.conf.d" / "10-flightsw-watchdog.conf")
    seconds = int(re.fullmatch(r"(\d+)s", conf["Manager"]["RuntimeWatchdogSec"]).group(1))
    assert 0 < seconds <= 15
    service_watchdog = int(unit_settings(DEPLOY / "flightsw.service")["WatchdogSec"][0].rstrip("s"))
    assert service_watchdog <= 30


def test_journal_is_bounded() -> None:
    conf = configparser.ConfigParser()
    conf.read(DEPLOY / "journald.conf.d" / "10-flightsw.conf")
    journal = conf["Journal"]
    assert journal["SystemMaxUse"].endswith("M") and int(journal["SystemMaxUse"][:-1]) <= 256
    assert journal["RuntimeMaxUse"]
    assert journal["SystemKeepFree"]


def test_bench_config_mixes_real_and_simulated_devices_with_sim_names() -> None:
    from flightsw.config import load
    from flightsw.link.settings import find_radio, load_link_settings

    bench = load(DEPLOY / "bench.toml")
    sim = load(DEPLOY / "sim.toml")
    backends = {d.name: d.backend for d in bench.devices}
    assert {d.name for d in sim.devices} == set(backends)  # same device keys as the simulator
    assert "real" in backends.values() and "sim" in backends.values()
    radio = find_radio(bench)
    assert radio is not None and radio.backend == "real" and radio.device == "/dev/flightsw-radio"
    assert not load_link_settings(bench).generate_key
    assert bench.watchdog.backend == "systemd"
