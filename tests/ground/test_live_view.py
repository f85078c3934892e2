"""The live view an operator watches in `make sim`: against a running simulator in real processes,
typed commands at its prompt, values with units, recent events, a captured thumbnail, clean quit.

Each step waits for the screen that shows its outcome (the view redraws every second), not for a
fixed time."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from .test_ground_cli import ENV, FLIGHTSW, _config, _free_port, running_sim

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CLEAR = "\x1b[H\x1b[2J"
PROMPT = "> send NAME ARG=VALUE ... | resend | quit"


class Screens:
    """The view's output, screen by screen (a screen is complete once its prompt line is drawn)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream
        self.pending = ""
        self.last = ""  # the latest complete screen, ANSI codes removed

    async def until(self, what: str, shown: Callable[[str], object], limit: float = 60.0) -> str:
        try:
            async with asyncio.timeout(limit):
                while not shown(self.last):
                    chunk = await self.stream.read(65536)
                    assert chunk, f"the live view exited before {what}:\n{self.last}"
                    self.pending += chunk.decode()
                    screens = self.pending.split(CLEAR)
                    complete = [s for s in screens if s.rstrip().endswith(PROMPT)]
                    if complete:
                        self.last = ANSI.sub("", complete[-1])
                    self.pending = "" if screens[-1].rstrip().endswith(PROMPT) else CLEAR + screens[-1]
        except TimeoutError:
            raise AssertionError(f"no screen showed {what} within {limit:.0f} s:\n{self.last}") from None
        return self.last


async def test_live_view_shows_telemetry_runs_typed_commands_and_quits(tmp_path: Path) -> None:
    port = _free_port()
    config = _config(tmp_path, port)
    async with running_sim(tmp_path, config, port, duration=120):
        with open(tmp_path / "view.err", "wb") as err:
            view = await asyncio.create_subprocess_exec(
                *FLIGHTSW, "ground", "--config", str(config), "--kiss", f"127.0.0.1:{port}",
                "--db", str(tmp_path / "g.sqlite3"),  # downloads go to ./downloads
                cwd=tmp_path, env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        assert view.stdin is not None and view.stdout is not None
        screens = Screens(view.stdout)
        try:
            async def type_line(line: str) -> None:
                assert view.stdin is not None
                view.stdin.write(line.encode() + b"\n")
                await view.stdin.drain()

            await screens.until("housekeeping values with units", lambda s: (
                re.search(r"eps_battery\.bus_voltage\s+[0-9.]+ V ", s)
                and re.search(r"temp_board\.temperature\s+[0-9.]+ degC", s)))
            await type_line("send exec.NO_OP")
            await screens.until("the typed command's completion",
                                lambda s: "cmd.executed: Command exec.NO_OP completed" in s)
            await type_line("send imaging.CAPTURE_NOW")
            await screens.until("the thumbnail's finished transfer", lambda s: (
                "imaging.image_captured" in s
                and re.search(r"img000001_thumbnail\.jpg\s+\d+/\d+\s+100\.0% done", s)))
            await type_line("send no.SUCH_COMMAND")
            await screens.until("the refused command", lambda s: "error:" in s and "SUCH_COMMAND" in s)
            await type_line("quit")
            async with asyncio.timeout(30):
                assert await view.wait() == 0, (tmp_path / "view.err").read_text()[-2000:]
        finally:
            if view.returncode is None:
                view.kill()
                await view.wait()
    last = screens.last
    assert last.startswith("flightsw ground station")
    assert re.search(r"eps_battery\.bus_voltage\s+[0-9.]+ V ", last)  # values with units
    assert re.search(r"temp_board\.temperature\s+[0-9.]+ degC", last)
    assert "imaging.image_captured" in last
    assert re.search(r"img000001_thumbnail\.jpg\s+\d+/\d+\s+100\.0% done", last)  # CFDP transfer finished
    assert (tmp_path / "downloads" / "img000001_thumbnail.png").exists()
    assert "error:" in last and "SUCH_COMMAND" in last  # an unknown command is refused at the prompt
