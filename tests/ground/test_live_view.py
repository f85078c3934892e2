"""The live view an operator watches in `make sim`: against a running simulator in real processes,
typed commands at its prompt, values with units, recent events, a captured thumbnail, clean quit."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from .test_ground_cli import FLIGHTSW, ROOT, _config, _free_port, wait_for_port

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def test_live_view_shows_telemetry_runs_typed_commands_and_quits(tmp_path: Path) -> None:
    port = _free_port()
    config = _config(tmp_path, port)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sat = subprocess.Popen([*FLIGHTSW, "sim", "--config", str(config), "--duration", "60"],
                           cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(sat, port)
        view = subprocess.Popen(
            [*FLIGHTSW, "ground", "--config", str(config), "--kiss", f"127.0.0.1:{port}",
             "--db", str(tmp_path / "g.sqlite3")],  # downloads go to ./downloads
            cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        assert view.stdin is not None
        time.sleep(8)  # housekeeping packets arrive every 5-10 s
        view.stdin.write("send exec.NO_OP\n")
        view.stdin.flush()
        time.sleep(3)
        view.stdin.write("send imaging.CAPTURE_NOW\n")
        view.stdin.flush()
        time.sleep(10)
        view.stdin.write("send no.SUCH_COMMAND\n")
        view.stdin.flush()
        time.sleep(2)
        view.stdin.write("quit\n")
        view.stdin.flush()
        out, err = view.communicate(timeout=30)
        assert view.returncode == 0, err[-2000:]
    finally:
        sat.terminate()
        sat.wait(timeout=20)
    screens = [ANSI.sub("", s) for s in out.split("\x1b[H\x1b[2J")]
    last = screens[-1]
    assert last.startswith("flightsw ground station")
    assert re.search(r"eps_battery\.bus_voltage\s+[0-9.]+ V ", last)  # values with units
    assert re.search(r"temp_board\.temperature\s+[0-9.]+ degC", last)
    assert "cmd.executed: Command exec.NO_OP completed" in last  # typed command ran on board
    assert "imaging.image_captured" in last
    assert re.search(r"img000001_thumbnail\.jpg\s+\d+/\d+\s+100\.0% done", last)  # CFDP transfer finished
    assert (tmp_path / "downloads" / "img000001_thumbnail.png").exists()
    assert "error:" in last and "SUCH_COMMAND" in last  # an unknown command is refused at the prompt
