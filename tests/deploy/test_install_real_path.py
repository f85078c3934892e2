"""The board's real install path, end to end (`make install-test`; not part of `make test`).

With the target OS's own interpreter and pip (Debian bookworm: /usr/bin/python3 3.11, python3-pip
23.0.1): build the wheel from the tree, run deploy/install.sh for real into a staged root with the
dependencies from the package registry, start the installed `flightsw run` from that root under a
NOTIFY_SOCKET owned by the test and see READY=1, run install.sh again and see no change, then
install two later versions offline (network blocked) from the installed wheelhouse: one through
install.sh --wheelhouse, one through the installed `flightsw update`, and activate them.

Collected only with FLIGHTSW_INSTALL_TEST=1 (tests/deploy/conftest.py): it needs root, the network
and about a minute. pip runs with no configuration file, as on a freshly installed board.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from deploy_support import REPO, run, run_service_until_ready, staged_root

INSTALL = REPO / "deploy" / "install.sh"
SYSTEM_PYTHON = "/usr/bin/python3"
CONFIG = REPO / "deploy" / "staged-sim.toml"
EXTRAS = "payload"  # the reference mission images: numpy, Pillow, sgp4

pytestmark = pytest.mark.slow


def pip_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh board: no pip configuration, no caller's virtual environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PYTHON=SYSTEM_PYTHON)
    env.update(extra)
    return env


# Any attempt to reach the network fails at once: offline installs must need none.
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "no_proxy": "", "NO_PROXY": "", "PIP_RETRIES": "0", "PIP_TIMEOUT": "5"}


def build_wheel(version: str, scratch: Path) -> Path:
    """`pip wheel --no-deps -w dist .` with the system pip, from a copy of the tree at `version`."""
    source = scratch / f"src-{version}"
    source.mkdir(parents=True)
    for name in ("flightsw", "hal", "sim"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "README.md", source / "README.md")
    text, count = re.subn(r'(?m)^version = "[^"]*"$', f'version = "{version}"',
                          (REPO / "pyproject.toml").read_text(), count=1)
    assert count == 1, "pyproject.toml has no version line"
    (source / "pyproject.toml").write_text(text)
    dist = scratch / f"dist-{version}"
    result = run([SYSTEM_PYTHON, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), "."],
                 cwd=source, env=pip_env())
    assert result.returncode == 0, result.stderr[-3000:]
    return dist / f"flightsw-{version}-py3-none-any.whl"


def install(root: Path, wheel: Path, key: Path, *more: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    command = ["bash", str(INSTALL), "--wheel", str(wheel), "--root", str(root), "--no-apt",
               "--key", str(key), "--config", str(CONFIG), "--extras", EXTRAS, *more]
    return run(command, env=env or pip_env())


def installed_version(root: Path) -> str:
    python = root / "opt/flightsw/current/bin/python"
    probe = run([str(python), "-c", "import importlib.metadata as m; print(m.version('flightsw'))"],
                cwd=root, env=pip_env())
    assert probe.returncode == 0, probe.stderr
    return probe.stdout.strip()


def start_until_ready(root: Path, scratch: Path) -> list[str]:
    """Start the installed service as flightsw.service does; return the notify messages."""
    data_dir = root / "var/lib/flightsw"
    env = pip_env(FLIGHTSW_DATA_DIR=str(data_dir))
    command = [str(root / "opt/flightsw/current/bin/flightsw"), "run", "--config",
               str(root / "etc/flightsw/mission.toml")]
    messages, _log = run_service_until_ready(command, cwd=data_dir, env=env, scratch=scratch)
    return messages


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.fail("make install-test needs root (install.sh chowns files and runs useradd --root)")
    return build_wheel("0.1.0", tmp_path_factory.mktemp("build"))


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "uplink.keys"
    path.write_text("1 " + "ab" * 32 + "\n")
    return path


def test_install_from_registry_run_reinstall_and_update_offline(wheel: Path, key: Path, tmp_path: Path) -> None:
    root = staged_root(tmp_path)
    opt = root / "opt/flightsw"

    # 1. First install, dependencies from the package registry, with the system python and pip.
    first = install(root, wheel, key)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert os.readlink(opt / "current") == "versions/0.1.0"
    wheelhouse = sorted(p.name for p in (opt / "wheelhouse").iterdir())
    assert wheelhouse and all(name.endswith(".whl") for name in wheelhouse), wheelhouse
    for dist in ("crcmod-", "fastcrc-0.3.", "msgpack-", "spacepackets-", "cfdp_py-", "numpy-", "pillow-"):
        assert any(name.startswith(dist) for name in wheelhouse), f"no {dist} wheel in {wheelhouse}"
    assert not any(name.startswith("flightsw-") for name in wheelhouse), wheelhouse
    assert installed_version(root) == "0.1.0"

    # 2. The installed service starts from the staged root and tells its manager it is ready.
    messages = start_until_ready(root, tmp_path)
    assert "WATCHDOG=1" in messages[messages.index("READY=1"):] and "STOPPING=1" in messages

    # 3. A second run changes nothing.
    second = install(root, wheel, key)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "== 0 change(s)" in second.stdout, second.stdout

    # 4. A later version, offline from the installed wheelhouse, switched to on trial, runs.
    wheel2 = build_wheel("0.1.1", tmp_path / "later")
    offline = pip_env(**OFFLINE)
    upgrade = install(root, wheel2, key, "--wheelhouse", str(opt / "wheelhouse"), env=offline)
    assert upgrade.returncode == 0, upgrade.stdout[-3000:] + upgrade.stderr[-3000:]
    assert "change: switch from 0.1.0 to 0.1.1 on trial" in upgrade.stdout, upgrade.stdout
    assert os.readlink(opt / "current") == "versions/0.1.1"
    state = json.loads((opt / "update-state.json").read_text())["state"]
    assert state["trial"]["version"] == "0.1.1" and state["trial"]["fallback"] == "0.1.0"
    assert installed_version(root) == "0.1.1"
    assert "READY=1" in start_until_ready(root, tmp_path)

    # 5. The installed `flightsw update` (as the operator runs it) installs the next one offline.
    updater = [str(opt / "current/bin/flightsw"), "update", "--root", str(opt),
               "--data-dir", str(root / "var/lib/flightsw"), "--restart-command", ""]
    confirm = run([*updater, "confirm"], env=offline)
    assert confirm.returncode == 0, confirm.stderr
    wheel3 = build_wheel("0.1.2", tmp_path / "next")
    digest = hashlib.sha256(wheel3.read_bytes()).hexdigest()
    added = run([*updater, "install", str(wheel3), "--sha256", digest], env=offline)
    assert added.returncode == 0, added.stdout + added.stderr
    switched = run([*updater, "activate", "0.1.2"], env=offline)
    assert switched.returncode == 0, switched.stderr
    assert os.readlink(opt / "current") == "versions/0.1.2"
    assert installed_version(root) == "0.1.2"


def test_a_wheelhouse_that_cannot_install_offline_is_refused_before_any_change(
        wheel: Path, key: Path, tmp_path: Path) -> None:
    # What `pip download` gives: crcmod only as an sdist, which an offline install cannot build.
    wheelhouse = tmp_path / "wheelhouse"
    fetched = run([SYSTEM_PYTHON, "-m", "pip", "download", "--quiet", "--dest", str(wheelhouse),
                   f"{wheel}[{EXTRAS}]"], env=pip_env())
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    (wheelhouse / wheel.name).unlink()
    assert any(p.name.startswith("crcmod-") and p.name.endswith(".tar.gz") for p in wheelhouse.iterdir())
    root = staged_root(tmp_path)
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))

    refused = install(root, wheel, key, "--wheelhouse", str(wheelhouse), env=pip_env(**OFFLINE))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    errors = refused.stderr.strip().splitlines()
    assert len(errors) == 1, refused.stderr
    assert errors[0].startswith(f"install.sh: error: wheelhouse {wheelhouse} cannot install "), errors
    assert "crcmod" in errors[0], errors
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before
    assert "change:" not in refused.stdout
