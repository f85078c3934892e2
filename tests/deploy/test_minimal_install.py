"""Acceptance: ``pip install .`` without extras is a flight computer.

A fresh virtual environment gets the project without any extra (pip resolves the real base
dependencies, from its cache or the package registry); numpy, sgp4 and pillow must not be there.
Then the flight config (deploy/flight.toml) with every device on its simulated backend and the
payload (camera and ``[imaging]``) removed starts exactly as flightsw.service starts it: a unix
datagram NOTIFY_SOCKET owned by the test, WATCHDOG_USEC; it must send READY=1, pet the watchdog
and stop cleanly on SIGTERM. The simulated devices are the register-level parts of ``sim.parts``
and the pty transceiver, which need no numpy (the orbit environment model, which does, is not
used by a flight config).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from deploy_support import REPO, run, run_service_until_ready

from flightsw.link.auth import KeyRing

pytestmark = pytest.mark.slow

PAYLOAD_MODULES = ("numpy", "sgp4", "PIL", "skyfield")


def flight_config_on_simulated_devices(data_dir: Path, scratch: Path) -> str:
    text = (REPO / "deploy" / "flight.toml").read_text()
    text, camera = re.subn(r'\[\[devices\]\]\nname = "camera"\n(?:[^\n]+\n)+', "", text)
    text, imaging = re.subn(r"\[imaging\]\n(?:[^\n]+\n)+", "", text)
    text, storage = re.subn(r'(\[storage\]\s*\ndata_dir\s*=\s*)"[^"]*"', rf'\1"{data_dir}"', text)
    text, real = re.subn(r'backend = "real"', 'backend = "sim"', text)
    text, radio = re.subn(r'device = "/dev/flightsw-radio"', f'device = "{scratch / "radio.tty"}"\nkiss_tcp_port = 0',
                          text)
    assert (camera, imaging, storage, radio) == (1, 1, 1, 1) and real > 10, \
        "deploy/flight.toml layout changed: update this test"
    assert 'backend = "systemd"' in text  # the watchdog stays the unit's
    return text


def test_a_venv_without_extras_starts_the_flight_config_to_ready(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: building never writes egg-info into the shared tree
    source.mkdir()
    for name in ("flightsw", "hal", "sim"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    venv = tmp_path / "venv"
    created = run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert created.returncode == 0, created.stderr[-2000:]
    python = venv / "bin" / "python"
    # the test environment's pip installs into the new venv, as flightsw.update does
    installed = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                     "--disable-pip-version-check", str(source)])
    assert installed.returncode == 0, installed.stderr[-2000:]
    probe = run([str(python), "-c", "import importlib.util as u, sys; "
                 f"print(' '.join(m for m in {PAYLOAD_MODULES!r} if u.find_spec(m)))"], cwd=tmp_path)
    assert probe.returncode == 0 and probe.stdout.strip() == "", f"extras leaked in: {probe.stdout}"

    data_dir = tmp_path / "var-lib-flightsw"
    data_dir.mkdir()
    KeyRing.generate(data_dir / "uplink.keys")  # install.sh --key puts the mission key here
    config = tmp_path / "mission.toml"
    config.write_text(flight_config_on_simulated_devices(data_dir, tmp_path))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    _messages, log_text = run_service_until_ready([str(venv / "bin" / "flightsw"), "run", "--config", str(config)],
                                                  cwd=data_dir, env=env, scratch=tmp_path, pets=2)
    assert "stopped: SIGTERM" in log_text, log_text[-3000:]
