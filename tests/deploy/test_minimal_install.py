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
from pathlib import Path

import pytest
from deploy_support import (
    flight_config_on_simulated_devices,
    install_without_extras,
    run,
    run_service_until_ready,
)

from flightsw.link.auth import KeyRing

pytestmark = pytest.mark.slow

PAYLOAD_MODULES = ("numpy", "sgp4", "PIL", "skyfield")


def test_a_venv_without_extras_starts_the_flight_config_to_ready(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    python = install_without_extras(tmp_path / "src", venv)
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
