"""Live terminal view: channel values with units and limit colours, beacon, recent events.

Why plain ANSI: it runs in any terminal over SSH at a ground station without extra packages.
Commands are typed at the prompt (``send NAME ARG=VALUE ...`` or ``resend``) and read from stdin
through the event loop, so the display and the receiver never block each other.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

from flightsw.ground.station import GroundStation

COLOURS = {"ok": "\x1b[32m", "yellow": "\x1b[33m", "red": "\x1b[31m"}
SEVERITY_COLOURS = {"WARNING": "\x1b[33m", "ERROR": "\x1b[31m", "CRITICAL": "\x1b[41m", "FATAL": "\x1b[41m"}
RESET = "\x1b[0m"


def parse_assignments(words: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not name:
            raise ValueError(f"argument {word!r} is not NAME=VALUE")
        out[name] = value
    return out


def render(station: GroundStation, status: str, max_channels: int = 40) -> str:
    now = time.time()
    s = station.stats
    lines = ["\x1b[H\x1b[2J\x1b[1mflightsw ground station\x1b[0m  "
             f"frames {s.frames_received} (bad {s.frames_bad}, bad packets {s.packets_bad})  "
             f"beacons {s.beacons}  hk {s.housekeeping}  events {s.events}  sent {s.commands_sent}"]
    if station.beacon_time is not None:
        lines.append(f"last beacon {now - station.beacon_time:.0f} s ago from {station.beacon.get('callsign')}")
    lines.append("")
    lines.append(f"{'channel':40} {'value':>14} {'unit':8} age")
    for name in sorted(station.latest)[:max_channels]:
        cv = station.latest[name]
        value = f"{cv.value:.4g}" if isinstance(cv.value, float) else str(cv.value)
        colour = COLOURS.get(cv.limit_state, "")
        lines.append(f"{name[:40]:40} {colour}{value[:14]:>14}{RESET} {cv.unit[:8]:8} {now - cv.rx_time:4.0f}s")
    lines.append("")
    lines.append("recent events:")
    for rx_time, severity, name, text in list(station.recent_events)[-8:]:
        colour = SEVERITY_COLOURS.get(severity, "")
        lines.append(f"  {time.strftime('%H:%M:%S', time.gmtime(rx_time))} {colour}{severity:8}{RESET} {name}: {text[:80]}")
    files = station.files
    if files is not None:
        lines.append("")
        lines.extend(files.render_lines())
    lines.append("")
    lines.append(status)
    lines.append("> send NAME ARG=VALUE ... | resend | quit")
    return "\n".join(lines) + "\n"


async def run_live(station: GroundStation, out: TextIO = sys.stdout, refresh: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()
    status = "connected"
    stdin_fd = sys.stdin.fileno() if sys.stdin and not sys.stdin.closed else None

    def on_stdin() -> None:
        line = sys.stdin.readline()
        lines.put_nowait(line if line else "quit")

    if stdin_fd is not None:
        loop.add_reader(stdin_fd, on_stdin)
    receiver = asyncio.create_task(station.run())
    try:
        while not receiver.done():
            out.write(render(station, status))
            out.flush()
            try:
                line = (await asyncio.wait_for(lines.get(), refresh)).strip()
            except TimeoutError:
                continue
            words = line.split()
            if not words:
                continue
            if words[0] == "quit":
                return
            try:
                if words[0] == "send" and len(words) >= 2:
                    counter = await station.send(words[1], parse_assignments(words[2:]))
                    status = f"sent {words[1]} as #{counter}"
                elif words[0] == "resend":
                    status = f"re-sent #{await station.resend()}"
                else:
                    status = f"unknown input {line!r}"
            except (ValueError, RuntimeError) as exc:
                status = f"error: {exc}"
        receiver.result()
    finally:
        if stdin_fd is not None:
            loop.remove_reader(stdin_fd)
        receiver.cancel()
