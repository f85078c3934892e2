"""The live view an operator watches in `make sim`: against a running simulator in real processes,
typed commands at its prompt with a verdict line each, every channel of the dictionary (paged and
filtered) with units, enum names and ISO times, recent events, a captured thumbnail, a header
that never scrolls away, clean quit.

Each step waits for the screen that shows its outcome (the view redraws every second), not for a
fixed time."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from flightsw.ground.live import PROMPT

from .test_ground_cli import ENV, FLIGHTSW, _config, _free_port, running_sim

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CLEAR = "\x1b[H\x1b[2J"
LINES = 40  # the terminal's height the view is given


class Screens:
    """The view's output, screen by screen (a screen is complete once its prompt line is drawn)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream
        self.pending = ""
        self.last = ""  # the latest complete screen, ANSI codes removed

    async def until(self, what: str, shown: Callable[[str], object], limit: float = 40.0) -> str:
        try:
            async with asyncio.timeout(limit):
                while not shown(self.last):
                    chunk = await self.stream.read(65536)
                    assert chunk, f"the live view exited before {what}:\n{self.last}"
                    self.pending += chunk.decode()
                    screens = self.pending.split(CLEAR)
                    complete = [s for s in screens if s.rstrip().endswith(PROMPT)]
                    for screen in complete:
                        assert screen.startswith("\x1b[1mflightsw ground station"), screen[:200]
                        assert screen.count("\n") < LINES, f"{screen.count(chr(10))} lines"  # nothing scrolls
                    if complete:
                        self.last = ANSI.sub("", complete[-1])
                    self.pending = "" if screens[-1].rstrip().endswith(PROMPT) else CLEAR + screens[-1]
        except TimeoutError:
            raise AssertionError(f"no screen showed {what} within {limit:.0f} s:\n{self.last}") from None
        return self.last


@pytest.mark.timeout(180)  # a simulator, the view and a thumbnail at 9600 bit/s, step by step
async def test_live_view_shows_telemetry_runs_typed_commands_and_quits(tmp_path: Path) -> None:
    port = _free_port()
    config = _config(tmp_path, port)
    async with running_sim(tmp_path, config, port, duration=120):
        with open(tmp_path / "view.err", "wb") as err:
            view = await asyncio.create_subprocess_exec(
                *FLIGHTSW, "ground", "--config", str(config), "--kiss", f"127.0.0.1:{port}",
                "--db", str(tmp_path / "g.sqlite3"),  # downloads go to ./downloads
                cwd=tmp_path, env={**ENV, "LINES": str(LINES), "COLUMNS": "120"},
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        assert view.stdin is not None and view.stdout is not None
        screens = Screens(view.stdout)
        try:
            async def type_line(line: str) -> None:
                assert view.stdin is not None
                view.stdin.write(line.encode() + b"\n")
                await view.stdin.drain()

            # after the first beacon: its fields join the list then (the page count grows)
            all_channels = await screens.until("the first page of every channel", lambda s: (
                "page 1/" in s and re.search(r"beacons [1-9]", s)))
            pages = int(re.search(r"(\d+) channels, page 1/(\d+)", all_channels).group(2))  # type: ignore[union-attr]
            assert pages > 5  # every channel of the dictionary, not 40
            await type_line("n")
            await screens.until("the second page", lambda s: f"page 2/{pages}" in s)
            await type_line("filter eps_battery.")
            await screens.until("housekeeping values with units", lambda s: (
                re.search(r"eps_battery\.bus_voltage\s+[0-9.]+ V ", s) and "temp_board" not in s))
            await type_line("filter temp_board")
            await screens.until("another subsystem", lambda s: re.search(r"temp_board\.temperature\s+[0-9.]+ degC", s))
            await type_line("filter link.uplink_counter")  # in no housekeeping packet: listed, never received
            await screens.until("a channel never received", lambda s: re.search(r"link\.uplink_counter\s+- +never", s))
            await type_line("filter exec.utc")
            await screens.until("UTC as an ISO time", lambda s: re.search(
                r"exec\.utc\s+20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ", s))
            await type_line("filter beacon.")
            await type_line("send exec.NO_OP")
            await screens.until("the typed command's completion and verdict line", lambda s: (
                "cmd.executed: Command exec.NO_OP completed" in s
                and re.search(r"#1 exec\.NO_OP: OK -> SUCCESS done", s)))
            await type_line("send link.SEND_BEACON_NOW")
            await screens.until("the beacon's mode by name", lambda s: re.search(
                r"beacon\.mode\s+(NOMINAL|SAFE|BOOT|DETUMBLE) ", s))
            await type_line("filter")
            await type_line("send imaging.CAPTURE_NOW")
            await screens.until("the thumbnail's finished transfer", lambda s: (
                "imaging.image_captured" in s
                and re.search(r"img000001_thumbnail\.jpg\s+\d+/\d+\s+100\.0% done", s)))
            await type_line("send no.SUCH_COMMAND")
            await screens.until("the refused command", lambda s: "error:" in s and "SUCH_COMMAND" in s)
            await type_line("quit")
            async with asyncio.timeout(30):
                assert await view.wait() == 0, (tmp_path / "view.err").read_text()[-2000:]
            assert "uplink key" not in (tmp_path / "view.err").read_text()  # dictionary built silently
        finally:
            if view.returncode is None:
                view.kill()
                await view.wait()
    last = screens.last
    assert last.startswith("flightsw ground station")
    assert re.search(r"#2 link\.SEND_BEACON_NOW: OK -> SUCCESS done", last)
    assert "imaging.image_captured" in last
    assert re.search(r"img000001_thumbnail\.jpg\s+\d+/\d+\s+100\.0% done", last)  # CFDP transfer finished
    assert (tmp_path / "downloads" / "img000001_thumbnail.png").exists()
    assert "error:" in last and "SUCH_COMMAND" in last  # an unknown command is refused at the prompt
