"""`flightsw ground send` and `flightsw ground export` against `flightsw sim` in real processes."""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLIGHTSW = [sys.executable, "-m", "flightsw.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, port: int) -> Path:
    text = (ROOT / "deploy" / "sim.toml").read_text()
    text = text.replace('data_dir = "var/sim"', f'data_dir = "{tmp_path / "sat"}"')
    text = text.replace("kiss_tcp_port = 8001", f"kiss_tcp_port = {port}")
    text = text.replace("fsync = true", "fsync = false")
    path = tmp_path / "sim.toml"
    path.write_text(text)
    return path


def wait_for_port(sat: subprocess.Popen[bytes], port: int, limit: float = 20.0) -> None:
    """Wait for the simulated transceiver's KISS port (the simulator process must stay alive)."""
    deadline = time.monotonic() + limit
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert sat.poll() is None, sat.stderr.read().decode() if sat.stderr else "sim died"
            assert time.monotonic() < deadline, "sim transceiver never listened"
            time.sleep(0.2)


def test_send_by_name_and_export_csv(tmp_path: Path) -> None:
    port = _free_port()
    config = _config(tmp_path, port)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sat = subprocess.Popen([*FLIGHTSW, "sim", "--config", str(config), "--duration", "40"],
                           cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(sat, port)
        common = ["ground", "--config", str(config), "--kiss", f"127.0.0.1:{port}", "--db", str(tmp_path / "g.sqlite3")]
        bad = subprocess.run([*FLIGHTSW, *common, "send", "link.SET_BEACON_PERIOD", "value=2"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "outside" in bad.stderr
        ok = subprocess.run([*FLIGHTSW, *common, "send", "link.SET_BEACON_PERIOD", "value=45", "--timeout", "5"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        assert "link.SET_BEACON_PERIOD #1: SUCCESS" in ok.stdout
        # The beacon queued by this command goes down before the command's completion.
        beacon = subprocess.run([*FLIGHTSW, *common, "send", "link.SEND_BEACON_NOW", "--timeout", "5"],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert beacon.returncode == 0 and "#2: SUCCESS" in beacon.stdout, beacon.stderr
        export = subprocess.run([*FLIGHTSW, *common, "export", "--since", "600", "--csv"],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert export.returncode == 0, export.stderr
        rows = list(csv.DictReader(io.StringIO(export.stdout)))
        assert any(r["name"] == "beacon.callsign" and r["value"] == "UN0SAT" for r in rows)
    finally:
        sat.terminate()
        sat.wait(timeout=20)
