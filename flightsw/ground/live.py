"""Live terminal view: every channel of the dictionary with units and limit colours, the beacon,
recent events, the fate of each command sent, file transfers.

Why plain ANSI: it runs in any terminal over SSH at a ground station without extra packages.
The screen is drawn to the terminal's height, so the header never scrolls away; channels are
paged (``n``, ``p``, ``page N``) and filtered (``filter TEXT``, e.g. ``filter eps_``). Values are
shown as the dictionary means them: beacon enums by name, UTC channels as ISO times. Commands are
typed at the prompt (``send NAME ARG=VALUE ...`` or ``resend``) and read from stdin through the
event loop, so the display and the receiver never block each other; each command sent gets a line
with its verdict and completion.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from flightsw.core.commands import Reason
from flightsw.ground.dictionary import CommandArgumentError
from flightsw.ground.station import GroundStation, Response
from flightsw.ground.uplink import CounterKind
from flightsw.link import beacon

COLOURS = {"ok": "\x1b[32m", "yellow": "\x1b[33m", "red": "\x1b[31m"}
SEVERITY_COLOURS = {"WARNING": "\x1b[33m", "ERROR": "\x1b[31m", "CRITICAL": "\x1b[41m", "FATAL": "\x1b[41m"}
RESET = "\x1b[0m"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BOLD = "\x1b[1m"
PROMPT = "> send NAME ARG=VALUE ... | resend | n | p | page N | filter TEXT | quit"
NEVER = "-"
EVENT_LINES = 6
COMMAND_LINES = 4
MIN_CHANNEL_ROWS = 5
DEFAULT_SIZE = (120, 50)  # columns, lines when the output is not a terminal


def parse_assignments(words: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not name:
            raise ValueError(f"argument {word!r} is not NAME=VALUE")
        out[name] = value
    return out


def fit(line: str, width: int) -> str:
    """``line`` cut to ``width`` visible characters (ANSI colour codes kept, not counted)."""
    out, visible, i = [], 0, 0
    while i < len(line):
        match = ANSI.match(line, i)
        if match:
            out.append(match.group())
            i = match.end()
            continue
        if visible == width:
            break
        out.append(line[i])
        visible += 1
        i += 1
    return "".join(out) + (RESET if visible == width and i < len(line) else "")


def iso_utc(seconds: float) -> str:
    """Unix seconds as an ISO UTC time to the second (``Z``)."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SentCommand:
    """A command typed at the prompt and what became of it."""

    name: str
    sent_at: float
    counters: list[int] = field(default_factory=list)
    final: Response | None = None
    finished: bool = False
    error: str = ""


class LiveView:
    """What the operator sees and types: channel pages, filter, the commands sent."""

    def __init__(self, station: GroundStation, size: tuple[int, int] | None = None) -> None:
        self.station = station
        self.size = size  # (columns, lines); None: the terminal's, read at each redraw
        self.filter = ""
        self.page = 0
        self.commands: collections.deque[SentCommand] = collections.deque(maxlen=COMMAND_LINES)
        self._tasks: set[asyncio.Task[None]] = set()
        self._info = {c.name: c for c in station.dictionary.channels.values()}

    # -- channels -----------------------------------------------------------------------------
    def channel_names(self) -> list[str]:
        """Every channel the dictionary declares and every value received (beacon fields), by
        name, so components' channels stay together; those matching the filter."""
        names = sorted(set(self._info) | set(self.station.latest))
        return [n for n in names if self.filter in n] if self.filter else names

    def format_value(self, name: str, value: Any) -> str:
        info = self._info.get(name)
        if info is not None and info.utc and isinstance(value, int | float):
            return iso_utc(float(value)) if value > 0 else "unknown"
        field_name = name.removeprefix("beacon.")
        if name.startswith("beacon.") and field_name in beacon.CODED_FIELDS and isinstance(value, int):
            return beacon.code_name(field_name, value) or f"code {value}"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    def channel_row(self, name: str, now: float) -> str:
        cv = self.station.latest.get(name)
        if cv is None:
            unit = self._info[name].unit if name in self._info else ""
            return f"{name[:40]:40} {NEVER:>22} {unit[:7]:7} never"
        info = self._info.get(name)
        unit = "" if info is not None and info.utc else cv.unit
        colour = COLOURS.get(cv.limit_state, "")
        return (f"{name[:40]:40} {colour}{self.format_value(name, cv.value)[:22]:>22}{RESET} {unit[:7]:7} "
                f"{now - cv.rx_time:4.0f}s")

    # -- commands -----------------------------------------------------------------------------
    def start_command(self, name: str, assignments: dict[str, str]) -> SentCommand:
        """Check the command here (errors raise at once), then send it and follow it in the background."""
        self.station.dictionary.encode_command(name, assignments)
        sent = SentCommand(name, self.station.wall_clock())
        self.commands.append(sent)
        task = asyncio.create_task(self._follow(sent, assignments))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return sent

    async def _follow(self, sent: SentCommand, assignments: dict[str, str]) -> None:
        def signed(counter: int) -> None:
            if counter not in sent.counters:
                sent.counters.append(counter)

        try:
            sent.final = await self.station.command(sent.name, assignments, on_sent=signed)
        except (ValueError, RuntimeError, OSError) as exc:
            sent.error = str(exc)
        sent.finished = True

    def command_line(self, sent: SentCommand) -> str:
        station = self.station
        counters = "/".join(f"#{c}" for c in sent.counters) or "#?"
        head = f"  {time.strftime('%H:%M:%SZ', time.gmtime(sent.sent_at))} {counters} {sent.name}"
        if sent.error:
            return f"{head}: error: {sent.error}"
        steps = []
        for counter in sent.counters:
            if station.uplink.refused(station.key_id, counter):
                steps.append(f"#{counter} refused (counter used), signed again")
            for resp in station.responses.get(counter, []):
                steps.append(resp.reason.name if resp.completion is None else resp.completion.name)
                if resp.detail:
                    steps[-1] += f" ({resp.detail[:40]})"
        final = sent.final
        if final is not None:
            good = (final.completion.name == "SUCCESS" if final.completion is not None
                    else final.reason == Reason.OK)
            colour = COLOURS["ok"] if good else COLOURS["red"]
            return f"{head}: {' -> '.join(steps)} {colour}done{RESET}"
        if sent.finished:
            return f"{head}: {' -> '.join(steps) or 'sent'} -> {COLOURS['red']}no response{RESET}"
        return f"{head}: {' -> '.join(steps + ['waiting'])}"

    def handle(self, line: str) -> str | None:
        """One typed line: the status to show, or None to quit."""
        words = line.split()
        if not words:
            return ""
        verb = words[0]
        if verb == "quit":
            return None
        try:
            if verb == "send" and len(words) >= 2:
                self.start_command(words[1], parse_assignments(words[2:]))
                return f"sent {words[1]}"
            if verb in ("n", "next"):
                self.page += 1
                return ""
            if verb in ("p", "prev"):
                self.page = max(0, self.page - 1)
                return ""
            if verb == "page" and len(words) == 2 and words[1].isdigit():
                self.page = max(0, int(words[1]) - 1)
                return ""
            if verb == "filter":
                self.filter = words[1] if len(words) > 1 else ""
                self.page = 0
                return f"filter {self.filter!r}" if self.filter else "no filter"
        except (CommandArgumentError, ValueError) as exc:
            return f"error: {exc}"
        return f"unknown input {line!r}"

    # -- screen -------------------------------------------------------------------------------
    def render(self, status: str) -> str:
        station = self.station
        columns, lines_total = self.size or shutil.get_terminal_size(DEFAULT_SIZE)
        now = station.wall_clock()
        s = station.stats
        header = [f"{BOLD}flightsw ground station{RESET}  {iso_utc(now)}  "
                  f"frames {s.frames_received} (bad {s.frames_bad}, bad packets {s.packets_bad})  "
                  f"beacons {s.beacons}  hk {s.housekeeping}  events {s.events}  sent {s.commands_sent}"]
        if station.beacon_time is not None:
            header.append(f"last beacon {now - station.beacon_time:.0f} s ago from {station.beacon.get('callsign')}, "
                          f"uplink counters: commands {station.uplink.floor(CounterKind.COMMAND, station.key_id)}"
                          f", files {station.uplink.floor(CounterKind.FILE)} (satellite's)")
        else:
            header.append("no beacon yet")
        names = self.channel_names()

        footer = ["", "recent events:"]
        for rx_time, severity, name, text in list(station.recent_events)[-EVENT_LINES:]:
            colour = SEVERITY_COLOURS.get(severity, "")
            footer.append(f"  {time.strftime('%H:%M:%SZ', time.gmtime(rx_time))} {colour}{severity:8}{RESET} "
                          f"{name}: {text[:80]}")
        if self.commands:
            footer.append("commands:")
            footer.extend(self.command_line(sent) for sent in self.commands)
        files = station.files
        if files is not None:
            budget = max(3, lines_total // 3)
            footer.append("")
            footer.extend(files.render_lines()[:budget])
        footer.extend(["", status, PROMPT])

        rows = max(MIN_CHANNEL_ROWS, lines_total - len(header) - 2 - len(footer))
        pages = max(1, -(-len(names) // rows))
        self.page = min(self.page, pages - 1)
        shown = names[self.page * rows:(self.page + 1) * rows]
        what = f"filter {self.filter!r}: " if self.filter else ""
        header.append(f"{what}{len(names)} channels, page {self.page + 1}/{pages}")
        header.append(f"{BOLD}{'channel':40} {'value':>22} {'unit':7} age{RESET}")
        body = [self.channel_row(name, now) for name in shown]
        body.extend([""] * (rows - len(body)))  # the footer stays where it is
        # No newline after the prompt and no line wider than the terminal: the screen never scrolls.
        return "\x1b[H\x1b[2J" + "\n".join(fit(line, columns) for line in header + body + footer)


async def run_live(station: GroundStation, out: TextIO = sys.stdout, refresh: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()
    view = LiveView(station)
    status = "connected"
    stdin_fd = sys.stdin.fileno() if sys.stdin and not sys.stdin.closed else None

    pending = bytearray()

    def on_stdin() -> None:
        # Read the descriptor, not sys.stdin: its buffer could hold pasted lines the loop never
        # hears about.
        assert stdin_fd is not None
        data = os.read(stdin_fd, 4096)
        if not data:
            loop.remove_reader(stdin_fd)
            lines.put_nowait("quit")
            return
        pending.extend(data)
        while (end := pending.find(b"\n")) >= 0:
            lines.put_nowait(pending[:end].decode(errors="replace"))
            del pending[:end + 1]

    if stdin_fd is not None:
        loop.add_reader(stdin_fd, on_stdin)
    receiver = asyncio.create_task(station.run())
    try:
        while not receiver.done():
            out.write(view.render(status))
            out.flush()
            try:
                line = (await asyncio.wait_for(lines.get(), refresh)).strip()
            except TimeoutError:
                continue
            try:
                if line.split()[:1] == ["resend"]:
                    status = f"re-sent #{await station.resend()}"
                    continue
                result = view.handle(line)
            except (ValueError, RuntimeError) as exc:
                result = f"error: {exc}"
            if result is None:
                return
            status = result or status
        receiver.result()
    finally:
        if stdin_fd is not None:
            loop.remove_reader(stdin_fd)
        receiver.cancel()
        for task in view._tasks:
            task.cancel()
