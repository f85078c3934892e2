"""Shared helpers for the deployment tests: tiny flightsw wheels and a stand-in service manager."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UPDATE_SOURCE = REPO / "flightsw" / "update.py"

# The stand-in application of a test version: "good" reports healthy through the real
# flightsw.update.report_healthy, "bad" runs but never does, "crash" exits at once.
FAKE_MAIN = '''
import os, signal, sys, time
from pathlib import Path
from flightsw import update

VERSION = {version!r}
BEHAVIOUR = {behaviour!r}

def main():
    data_dir = Path(os.environ["FLIGHTSW_DATA_DIR"])
    tmp = data_dir / f".running.{{os.getpid()}}"
    tmp.write_text(f"{{VERSION}} {{os.getpid()}}\\n")
    os.replace(tmp, data_dir / "running")  # atomic: the test never reads a half-written file
    if BEHAVIOUR == "crash":
        sys.exit(1)
    if BEHAVIOUR == "good":
        update.report_healthy(data_dir, VERSION)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(0.2)
'''


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(directory: Path, version: str, behaviour: str = "good", write_sidecar: bool = True) -> Path:
    """Build a minimal but valid flightsw wheel (PEP 427) for update tests."""
    directory.mkdir(parents=True, exist_ok=True)
    dist_info = f"flightsw-{version}.dist-info"
    files = {
        "flightsw/__init__.py": b"",
        "flightsw/update.py": UPDATE_SOURCE.read_bytes(),
        "flightsw/fake_main.py": FAKE_MAIN.format(version=version, behaviour=behaviour).encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: flightsw\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/entry_points.txt": b"[console_scripts]\nflightsw = flightsw.fake_main:main\n",
    }
    record = [_record_line(name, data) for name, data in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"flightsw-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    if write_sidecar:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    return path


# The restart command used in tests, doing what systemd does for flightsw.service:
# stop the old process, run the boot guard (ExecStartPre), start current/bin/flightsw.
FAKE_SERVICE_MANAGER = '''
import os, signal, subprocess, sys, time
from pathlib import Path
root, data_dir, pidfile, update_py = map(Path, sys.argv[1:5])
if pidfile.exists():
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
        for _ in range(400):
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat.rsplit(")", 1)[-1].split()[0] == "Z":
                break  # exited; its parent (not us) has not reaped it yet
            time.sleep(0.05)
    except (ProcessLookupError, FileNotFoundError, ValueError):
        pass
subprocess.run([sys.executable, str(update_py), "--root", str(root), "--data-dir", str(data_dir),
                "--restart-command", "", "boot-check"], check=True)
env = dict(os.environ, FLIGHTSW_DATA_DIR=str(data_dir))
child = subprocess.Popen([str(root / "current" / "bin" / "flightsw")], env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
pidfile.write_text(str(child.pid))
'''


class ServiceBench:
    """An install root, a data dir and a stand-in service manager for one test."""

    def __init__(self, base: Path) -> None:
        self.root = base / "opt"
        self.data_dir = base / "data"
        self.data_dir.mkdir(parents=True)
        self.pidfile = base / "service.pid"
        self.manager = base / "fake_service_manager.py"
        self.manager.write_text(FAKE_SERVICE_MANAGER)
        self.wheels = base / "wheels"

    @property
    def restart_command(self) -> list[str]:
        return [sys.executable, str(self.manager), str(self.root), str(self.data_dir),
                str(self.pidfile), str(UPDATE_SOURCE)]

    def running(self) -> tuple[str, int] | None:
        """(version, pid) of the live service process, if any."""
        try:
            version, pid = (self.data_dir / "running").read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        return version, int(pid)

    def wait_running(self, version: str, timeout: float = 30.0) -> int:
        """Wait for the given version to be the running process; generous bound, not a timing test."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.running()
            if info is not None and info[0] == version and _alive(info[1]):
                return info[1]
            time.sleep(0.05)
        raise AssertionError(f"version {version} not running; running: {self.running()}")

    def stop(self) -> None:
        if self.pidfile.exists():
            try:
                os.kill(int(self.pidfile.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of the manager is not alive for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def bench(tmp_path: Path):
    service = ServiceBench(tmp_path)
    yield service
    service.stop()


def staged_root(base: Path) -> Path:
    """A minimal Raspberry Pi OS-like root: account files, config.txt with the serial console on."""
    root = base / "root"
    (root / "etc").mkdir(parents=True)
    (root / "boot" / "firmware").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "group").write_text("root:x:0:\ndialout:x:20:\nvideo:x:44:\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc" / "gshadow").write_text("root:*::\ndialout:*::\nvideo:*::\n")
    (root / "boot" / "firmware" / "config.txt").write_text("[all]\ndtparam=audio=on\ndtparam=i2c_arm=off\n")
    (root / "boot" / "firmware" / "cmdline.txt").write_text(
        "console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootwait\n")
    return root


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


def run_service_until_ready(command: list[str], *, cwd: Path, env: dict[str, str], scratch: Path,
                            pets: int = 1) -> tuple[list[str], str]:
    """Start ``flightsw run`` as systemd starts flightsw.service (Type=notify): wait for READY=1 and
    ``pets`` WATCHDOG=1 on a notify socket the test owns, stop it with SIGTERM, and return every
    notify message and the service's log. Fails the test on no READY=1, a non-zero exit or a traceback.
    """
    notify_path = scratch / f"notify-{time.monotonic_ns()}.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(0.5)
    env = {**env, "NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "4000000", "PYTHONUNBUFFERED": "1"}
    log_path = scratch / f"service-{time.monotonic_ns()}.log"
    with open(log_path, "w") as log:
        service = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    messages: list[str] = []

    def petted() -> int:
        return messages[messages.index("READY=1"):].count("WATCHDOG=1") if "READY=1" in messages else 0

    try:
        deadline = time.monotonic() + 60  # generous: only a broken install takes this long
        while time.monotonic() < deadline and service.poll() is None:
            try:
                messages.extend(notify.recv(4096).decode().splitlines())
            except TimeoutError:
                continue
            if petted() >= pets:
                break
        assert "READY=1" in messages, f"no READY=1; got {messages}; log:\n{log_path.read_text()[-3000:]}"
        assert petted() >= pets, messages
        service.send_signal(signal.SIGTERM)
        code = service.wait(timeout=60)
        notify.setblocking(False)  # the process has exited: whatever it sent is queued
        with contextlib.suppress(BlockingIOError):
            while True:
                messages.extend(notify.recv(4096).decode().splitlines())
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
        notify.close()
    log_text = log_path.read_text()
    assert code == 0, log_text[-3000:]
    assert "Traceback" not in log_text, log_text[-3000:]
    return messages, log_text


def flight_config_on_simulated_devices(data_dir: Path, scratch: Path, payload: bool = False) -> str:
    """deploy/flight.toml with every device on its simulated backend, the radio's pty in ``scratch``;
    without ``payload`` the camera and ``[imaging]`` are removed (a venv without extras runs it)."""
    text = (REPO / "deploy" / "flight.toml").read_text()
    camera = imaging = 1
    if not payload:
        text, camera = re.subn(r'\[\[devices\]\]\nname = "camera"\n(?:[^\n]+\n)+', "", text)
        text, imaging = re.subn(r"\[imaging\]\n(?:[^\n]+\n)+", "", text)
    text, storage = re.subn(r'(\[storage\]\s*\ndata_dir\s*=\s*)"[^"]*"', rf'\1"{data_dir}"', text)
    text, real = re.subn(r'backend = "real"', 'backend = "sim"', text)
    text, radio = re.subn(r'device = "/dev/flightsw-radio"', f'device = "{scratch / "radio.tty"}"\nkiss_tcp_port = 0',
                          text)
    assert (camera, imaging, storage, radio) == (1, 1, 1, 1) and real > 10, \
        "deploy/flight.toml layout changed: update tests/deploy/deploy_support.py"
    assert 'backend = "systemd"' in text  # the watchdog stays the unit's
    return text


def install_without_extras(source: Path, venv: Path) -> Path:
    """A fresh venv with the project installed without any extra (pip resolves the real base
    dependencies, from its cache or the package registry); returns its python."""
    source.mkdir(parents=True)  # a copy: building never writes egg-info into the shared tree
    for name in ("flightsw", "hal", "sim"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    created = run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert created.returncode == 0, created.stderr[-2000:]
    python = venv / "bin" / "python"
    # the calling environment's pip installs into the new venv, as flightsw.update does
    installed = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                     "--disable-pip-version-check", str(source)])
    assert installed.returncode == 0, installed.stderr[-2000:]
    return python
