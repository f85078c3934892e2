"""Acceptance: the built wheel, installed the way the board gets it, runs as the unit runs it.

Builds the wheel from a copy of the source tree, collects its dependency wheels once (the package
registry is the only network used), installs it with flightsw.update into a fresh versioned
virtual environment with ``--no-index``, then starts ``current/bin/flightsw run`` with the
simulated config exactly as flightsw.service does: a unix datagram NOTIFY_SOCKET owned by the
test, WATCHDOG_USEC, the data directory as working directory. It must send READY=1, keep petting
the watchdog, and stop cleanly on SIGTERM.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from deploy_support import REPO, run, run_service_until_ready

from flightsw.update import VersionStore

pytestmark = pytest.mark.slow


def build_wheel(out: Path, scratch: Path) -> Path:
    """Build from a copy so concurrent work in the shared tree never sees build/ or egg-info."""
    source = scratch / "src"
    source.mkdir()
    for name in ("flightsw", "hal", "sim"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    result = run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(source)])
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = out.glob("flightsw-*.whl")
    return wheel


def sim_config_as_the_unit_uses_it(data_dir: Path, target: Path) -> Path:
    """deploy/sim.toml with the systemd watchdog backend, a private data dir and a free KISS port."""
    text = (REPO / "deploy" / "sim.toml").read_text()
    text, watchdog = re.subn(r'(\[watchdog\]\s*\nbackend\s*=\s*)"[^"]*"', r'\1"systemd"', text)
    text, storage = re.subn(r'(\[storage\]\s*\ndata_dir\s*=\s*)"[^"]*"', rf'\1"{data_dir}"', text)
    text = re.sub(r"kiss_tcp_port\s*=\s*\d+", "kiss_tcp_port = 0", text)
    assert watchdog == 1 and storage == 1, "deploy/sim.toml layout changed: update this test"
    target.write_text(text)
    return target


@pytest.mark.timeout(240)  # builds and installs wheels with pip: minutes on a busy machine
def test_wheel_installs_offline_and_runs_under_a_notify_socket(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist", tmp_path)
    wheelhouse = tmp_path / "wheelhouse"
    deps = run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheelhouse), f"{wheel}[sim]"])
    assert deps.returncode == 0, deps.stderr[-2000:]

    data_dir = tmp_path / "var-lib-flightsw"
    data_dir.mkdir()
    store = VersionStore(tmp_path / "opt-flightsw", data_dir, restart_command=(), log=lambda m: None)
    state = store.load_state()
    state.extras = ["sim"]
    store.save_state(state)
    version = store.install(wheel, hashlib.sha256(wheel.read_bytes()).hexdigest(), find_links=[wheelhouse])
    store.adopt(version)
    executable = store.current_link / "bin" / "flightsw"
    assert executable.exists()

    config = sim_config_as_the_unit_uses_it(data_dir, tmp_path / "mission.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(FLIGHTSW_DATA_DIR=str(data_dir))
    messages, log_text = run_service_until_ready([str(executable), "run", "--config", str(config)],
                                                 cwd=data_dir, env=env, scratch=tmp_path, pets=3)
    assert "STOPPING=1" in messages
    # The process ran the installed copy, not the source tree.
    probe = run([str(store.current_link / "bin" / "python"), "-c", "import flightsw; print(flightsw.__file__)"],
                cwd=tmp_path)
    installed = Path(probe.stdout.strip()).resolve()
    assert installed.is_relative_to((store.root / "versions" / version).resolve()), probe.stdout
