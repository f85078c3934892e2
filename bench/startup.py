"""`python -m bench.startup`: exec to systemd READY=1, import time, memory and install size.

Two installs: the full one (this venv, every extra) and the minimal flight install (a venv with
the project and its base dependencies only, built as tests/deploy builds it and cached under
build/bench/ until the sources change). Each starts the flight config (deploy/flight.toml, every
device on its simulated backend; the minimal one without the payload) exactly as
flightsw.service starts it: ``flightsw run --config``, a NOTIFY_SOCKET bound here, WATCHDOG_USEC.
Start-up is the wall time from just before exec to the READY=1 datagram; the baseline is the
same venv's interpreter doing nothing (``python -c pass``), exec to exit. The flight process's
VmRSS is read a few seconds after READY=1. Import time is measured inside fresh interpreters
(median of 5), for ``import flightsw`` and for everything ``flightsw run`` imports before it
builds the satellite (the command line and every registered subsystem).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import child_parser, progress, rss_mb, write_result

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "deploy"))
from deploy_support import flight_config_on_simulated_devices, install_without_extras  # noqa: E402

from flightsw.link.auth import KeyRing  # noqa: E402

CACHE = REPO / "build" / "bench"
SETTLE_S = 3.0  # after READY=1, before reading RSS: the first rate-group cycles have run

RUN_PATH_IMPORTS = ("from flightsw.cli import build_parser; build_parser(); "
                    "from flightsw.app import load_subsystems; load_subsystems()")


def source_digest() -> str:
    digest = hashlib.sha256()
    for base in ("flightsw", "hal", "sim"):
        for path in sorted((REPO / base).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode())
                digest.update(path.read_bytes())
    digest.update((REPO / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def minimal_venv() -> tuple[Path, float | None]:
    """The cached minimal install's venv, (re)built when the sources changed; (venv, build s)."""
    venv = CACHE / "minimal-venv"
    stamp = CACHE / "minimal-venv.sha256"
    digest = source_digest()
    if venv.exists() and stamp.exists() and stamp.read_text() == digest:
        return venv, None
    shutil.rmtree(CACHE, ignore_errors=True)
    CACHE.mkdir(parents=True)
    progress("building the minimal flight install (no extras) ...")
    began = time.perf_counter()
    install_without_extras(CACHE / "src", venv)
    shutil.rmtree(CACHE / "src")
    # the board's install compiles once; so does this one, so the first start is not a compile
    subprocess.run([str(venv / "bin" / "python"), "-m", "compileall", "-q", str(venv / "lib")], check=True)
    stamp.write_text(digest)
    return venv, time.perf_counter() - began


def disk_mb(path: Path) -> float:
    """Space the tree takes on disk (allocated blocks), symlinks not followed."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total / 1e6


def exec_to_exit(python: Path) -> float:
    began = time.perf_counter()
    subprocess.run([str(python), "-c", "pass"], check=True)
    return time.perf_counter() - began


def import_ms(python: Path, statement: str, runs: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    times = [float(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True,
                                  cwd=CACHE, env=env).stdout) for _ in range(runs)]
    return 1e3 * statistics.median(times)


def start_to_ready(flightsw: Path, config_text: str, scratch: Path) -> tuple[float, float]:
    """(exec -> READY=1 s, VmRSS MiB after settling) of one ``flightsw run``, stopped by SIGTERM."""
    data_dir = scratch / "data"
    data_dir.mkdir()
    KeyRing.generate(data_dir / "uplink.keys")
    config = scratch / "mission.toml"
    config.write_text(config_text.replace("__DATA__", str(data_dir)))
    notify_path = scratch / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(30.0)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="4000000")
    log = open(scratch / "service.log", "w")  # noqa: SIM115 - closed below, after the process
    began = time.perf_counter()
    service = subprocess.Popen([str(flightsw), "run", "--config", str(config)], cwd=data_dir, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            if b"READY=1" in notify.recv(4096).split(b"\n"):
                ready_s = time.perf_counter() - began
                break
        time.sleep(SETTLE_S)
        rss = rss_mb(service.pid)
        service.send_signal(signal.SIGTERM)
        if service.wait(timeout=30) != 0:
            raise RuntimeError(f"flightsw run exited {service.returncode}: "
                               f"{(scratch / 'service.log').read_text()[-2000:]}")
    except TimeoutError:
        raise RuntimeError(f"no READY=1 within 30 s: {(scratch / 'service.log').read_text()[-2000:]}") from None
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
        notify.close()
        log.close()
    return ready_s, rss


def main(argv: list[str] | None = None) -> int:
    args = child_parser(__doc__.splitlines()[0]).parse_args(argv)
    venv_min, built_s = minimal_venv()
    installs = {"full": Path(sys.prefix), "minimal": venv_min}
    figures: dict[str, float] = {}
    notes = ["warm page cache; the minimal install compiled to .pyc as on the board"]
    if built_s is not None:
        notes.append(f"minimal install built in this run ({built_s:.0f} s, not timed as start-up)")
    for name, venv in installs.items():
        with tempfile.TemporaryDirectory() as d:
            scratch = Path(d)
            text = flight_config_on_simulated_devices(Path("__DATA__"), scratch, payload=name == "full")
            ready_s, rss = start_to_ready(venv / "bin" / "flightsw", text, scratch)
        figures[f"startup_{name}_s"] = ready_s
        figures[f"interpreter_{name}_s"] = exec_to_exit(venv / "bin" / "python")
        figures[f"rss_{name}_mb"] = rss
        figures[f"import_flightsw_{name}_ms"] = import_ms(venv / "bin" / "python", "import flightsw")
        figures[f"import_run_path_{name}_ms"] = import_ms(venv / "bin" / "python", RUN_PATH_IMPORTS)
        figures[f"import_nothing_{name}_ms"] = import_ms(venv / "bin" / "python", "pass")
        progress(f"{name}: READY=1 after {ready_s:.3f} s, RSS {rss:.1f} MB, "
                 f"run-path imports {figures[f'import_run_path_{name}_ms']:.0f} ms")
    figures["minimal_install_mb"] = disk_mb(venv_min)
    figures["minimal_site_packages_mb"] = disk_mb(next((venv_min / "lib").glob("python3*/site-packages")))
    if args.quick:
        notes.append("quick mode: same measurements (start-up cannot be shortened)")
    write_result(args.json, figures, {}, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
