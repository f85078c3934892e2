"""Two ground processes on one archive for ten minutes (issue 14): commands and file transfers
both ways, and not one replay rejection.

A real `flightsw sim` (the reference mission's config on a scratch directory, its own KISS TCP
port, plus the housekeeping packet of the uplink counters of ``reliability/attacks.py``) and two
ground processes sharing one archive, hence one counter store, as an operator runs them:

* the **live view** (`flightsw ground`, its prompt fed through a pipe, its screen discarded), which
  sends ``link.NO_OP``, ``link.SET_BEACON_PERIOD`` and ``fm.DOWNLINK_FILE`` of each file the other
  process uploaded, and receives those files through its own file entity;
* a **loop of CLI invocations** (`flightsw ground send | upload | catalog`): ``exec.NO_OP``,
  ``link.SET_BEACON_PERIOD_SAFE``, an upload of a fresh random file, a catalog downlink.

Every transfer is checked byte for byte on completion: an upload against the file in the
satellite's quarantine, a downlink of an uploaded file against the original, a catalog against
the satellite's ``catalog.json``. The rejections counted: the satellite's refusal events
(``link.counter_refused``, ``files.pdu_rejected``, ``link.uplink_rejected``) in the archive, its
``link.replays``, ``link.counter_refusals`` and ``files.pdus_rejected`` counters from telemetry,
and the commands the grounds signed again after a refusal. The campaign fails on any of them, or
on a command or transfer that did not complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reliability.attacks import _free_port, campaign_config, flightsw_command, wait_until_serving

REFUSAL_EVENTS = ("link.counter_refused", "files.pdu_rejected", "link.uplink_rejected")
REFUSAL_CHANNELS = ("link.replays", "link.counter_refusals", "files.pdus_rejected")
OTHER_CHANNELS = ("link.duplicates", "link.commands_executed", "files.pdus_up", "files.files_received")
LIVE_COMMANDS = ("link.NO_OP", "link.SET_BEACON_PERIOD")
CLI_COMMANDS = ("exec.NO_OP", "link.SET_BEACON_PERIOD_SAFE", "imaging.DOWNLINK_CATALOG")
COMMAND_TIMEOUT_S = 60.0  #: a command's completion (the station re-sends twice within it)
TRANSFER_TIMEOUT_S = 180.0  #: an upload or downlink of a few kB at 9600 bit/s, behind the other's traffic


@dataclass
class TwoGroundsResult:
    duration_s: float  #: the loops' duration asked (each finishes the round it is in)
    bit_rate: int
    commands: dict[str, int] = field(default_factory=dict)  #: invocations per command name
    commands_completed: dict[str, int] = field(default_factory=dict)  #: SUCCESS completions per name
    commands_signed: int = 0  #: counters the two grounds signed for those commands
    re_signed: int = 0  #: commands signed again after the satellite refused their counter
    uploads: int = 0
    uploads_ok: int = 0  #: completed and byte-identical in the satellite's quarantine
    upload_bytes: int = 0
    downlinks: int = 0  #: fm.DOWNLINK_FILE of an uploaded file, to the live view
    downlinks_ok: int = 0  #: arrived byte-identical to the file uploaded
    downlink_bytes: int = 0
    catalogs: int = 0  #: catalog downlinks by the CLI
    catalogs_ok: int = 0  #: arrived byte-identical to the satellite's catalog.json
    refusal_events: dict[str, int] = field(default_factory=dict)  #: in the archive, must be 0
    refusal_counters: dict[str, int] = field(default_factory=dict)  #: satellite telemetry at the end, must be 0
    other_counters: dict[str, int] = field(default_factory=dict)
    frames_archived: int = 0
    errors: list[str] = field(default_factory=list)  #: commands or transfers that failed, must be empty
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def failures(self) -> list[str]:
        """Every figure that misses its target."""
        out = [f"two grounds: {e}" for e in self.errors]
        out += [f"two grounds: {n} {v} event(s)" for n, v in self.refusal_events.items() if v]
        out += [f"two grounds: satellite {n} = {v}" for n, v in self.refusal_counters.items() if v]
        if self.re_signed:
            out.append(f"two grounds: {self.re_signed} command(s) signed again after a refusal")
        missing = [n for n in self.commands if self.commands_completed.get(n, 0) < self.commands[n]]
        out += [f"two grounds: {n} {self.commands_completed.get(n, 0)} of {self.commands[n]} completed"
                for n in missing]
        for what, ok, total in (("uploads", self.uploads_ok, self.uploads), ("downlinks", self.downlinks_ok,
                                self.downlinks), ("catalogs", self.catalogs_ok, self.catalogs)):
            if ok != total:
                out.append(f"two grounds: {ok} of {total} {what} completed byte-identical")
        if not (self.uploads and self.downlinks and self.catalogs):
            out.append("two grounds: a kind of transfer never ran")
        return out


# --- processes -----------------------------------------------------------------------------------

async def _stop(proc: asyncio.subprocess.Process, grace: float = 20.0) -> None:
    """SIGTERM to the process group, SIGKILL after ``grace`` s."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def _spawn(log: Path, *args: str, cwd: Path, stdin: int | None = None) -> asyncio.subprocess.Process:
    """`flightsw ARGS` in its own process group, its stderr (and the sim's stdout) to ``log``; the
    live view's screen (stdout with a ``stdin`` pipe) is discarded."""
    handle = await asyncio.to_thread(open, log, "wb")
    try:
        stdout = asyncio.subprocess.DEVNULL if stdin is not None else handle
        return await asyncio.create_subprocess_exec(*flightsw_command(), *args, cwd=cwd, stdin=stdin,
                                                    stdout=stdout, stderr=handle, start_new_session=True)
    finally:
        handle.close()  # the child has its own copy


@contextlib.asynccontextmanager
async def satellite(scratch: Path, bit_rate: int) -> AsyncIterator[tuple[Path, int]]:
    """`flightsw sim` in its own process group until the context ends: (config, KISS port)."""
    data_dir, port = scratch / "sat", _free_port()
    config = campaign_config(data_dir, port, scratch / "mission.toml")
    text = config.read_text()
    config.write_text(text.replace("bit_rate = 9600", f"bit_rate = {bit_rate}", 1))
    proc = await _spawn(scratch / "sat.log", "sim", "--config", str(config), cwd=scratch)
    try:
        await wait_until_serving(proc, data_dir, port, scratch / "sat.log")
        yield config, port
    finally:
        await _stop(proc)


@dataclass
class Cli:
    """One-shot ground invocations on the shared archive."""

    station: list[str]
    cwd: Path

    async def run(self, *args: str, limit: float) -> tuple[int, str]:
        """Exit status and output (stdout + stderr) of `flightsw ground ... ARGS`; killed after ``limit``."""
        proc = await asyncio.create_subprocess_exec(*flightsw_command(), "ground", *self.station, *args,
                                                    cwd=self.cwd, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        try:
            async with asyncio.timeout(limit):
                out, _ = await proc.communicate()
        except TimeoutError:
            await _stop(proc, 5.0)
            return -1, f"killed after {limit:.0f} s"
        finally:
            await _stop(proc, 5.0)
        return proc.returncode or 0, out.decode(errors="replace")


# --- the archive, read beside the grounds ---------------------------------------------------------

class ArchiveReader:
    """Read-only queries of the shared archive (the grounds write it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if not self.path.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)) as conn:
            return conn.execute(sql, params).fetchall()

    async def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._query, sql, *params)

    async def completed(self, name: str) -> int:
        """Commands of ``name`` whose completion SUCCESS is archived (distinct counters)."""
        rows = await self.query("SELECT COUNT(DISTINCT seq) FROM responses WHERE name = ? AND completion = 'SUCCESS'",
                                name)
        return int(rows[0][0]) if rows else 0

    async def latest(self, name: str, after: float) -> int | None:
        rows = await self.query("SELECT value FROM vals WHERE name = ? AND rx_time > ? ORDER BY id DESC LIMIT 1",
                                name, after)
        return int(rows[0][0]) if rows else None


async def poll(predicate: Any, timeout: float, every: float = 0.25) -> bool:
    """Await ``predicate()`` (a coroutine function) until it is true or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        if await predicate():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)


# --- the campaign ---------------------------------------------------------------------------------

class Campaign:
    def __init__(self, scratch: Path, config: Path, port: int, duration: float, result: TwoGroundsResult) -> None:
        self.scratch, self.result = scratch, result
        self.db = scratch / "ground" / "ground.sqlite3"
        self.db.parent.mkdir(parents=True, exist_ok=True)
        self.station = ["--config", str(config), "--kiss", f"127.0.0.1:{port}", "--db", str(self.db)]
        self.archive = ArchiveReader(self.db)
        self.quarantine = scratch / "sat" / "cfdp" / "quarantine"
        self.live_dir = scratch / "live"
        self.cli_dir = scratch / "cli"
        self.deadline = time.monotonic() + duration
        self.uploaded: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()  # for the live view to fetch
        self.cli_done = asyncio.Event()
        self.rng = random.Random(14)

    def _issued(self, name: str) -> None:
        self.result.commands[name] = self.result.commands.get(name, 0) + 1

    # -- (a) the live view --------------------------------------------------------------------
    async def live(self) -> None:
        self.live_dir.mkdir(exist_ok=True)
        proc = await _spawn(self.scratch / "live.log", "ground", *self.station, cwd=self.live_dir,
                            stdin=asyncio.subprocess.PIPE)
        assert proc.stdin is not None
        stdin = proc.stdin
        sent: Counter[str] = Counter()

        async def command(line: str) -> None:
            name = line.split()[0]
            sent[name] += 1
            self._issued(name)
            stdin.write(f"send {line}\n".encode())
            await stdin.drain()
            if not await poll(lambda: self._reached(name, sent[name]), COMMAND_TIMEOUT_S):
                self.result.errors.append(f"live view: {line} #{sent[name]} did not complete")

        try:
            period, rounds = 30, 0
            while time.monotonic() < self.deadline or not self.cli_done.is_set() or not self.uploaded.empty():
                if proc.returncode is not None:
                    self.result.errors.append(f"live view exited {proc.returncode}")
                    return
                if rounds == 0 or time.monotonic() < self.deadline:  # at least one round
                    rounds += 1
                    await command("link.NO_OP")
                    period = 61 - period  # 30, 31, 30, ...: a parameter set that changes the value
                    await command(f"link.SET_BEACON_PERIOD value={period}")
                try:
                    name, data = await asyncio.wait_for(self.uploaded.get(), 1.0)
                except TimeoutError:
                    continue
                await self.downlink(command, name, data)
            await self.figures()  # while the live view still archives the satellite's telemetry
        finally:
            with contextlib.suppress(ConnectionError):
                stdin.write(b"quit\n")
                await stdin.drain()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(20):
                    await proc.wait()
            await _stop(proc)

    async def downlink(self, command: Any, name: str, data: bytes) -> None:
        """fm.DOWNLINK_FILE of an uploaded file; it must reach the live view's downloads intact."""
        self.result.downlinks += 1
        await command(f"fm.DOWNLINK_FILE path=quarantine/{name} priority=5")
        target = self.live_dir / "downloads" / name

        async def arrived() -> bool:
            return await asyncio.to_thread(lambda: target.is_file() and target.read_bytes() == data)

        if await poll(arrived, TRANSFER_TIMEOUT_S, every=0.5):
            self.result.downlinks_ok += 1
            self.result.downlink_bytes += len(data)
        else:
            self.result.errors.append(f"downlink of {name} to the live view did not arrive intact")

    async def _reached(self, name: str, count: int) -> bool:
        return await self.archive.completed(name) >= count

    # -- (b) CLI invocations ------------------------------------------------------------------
    async def cli(self) -> None:
        self.cli_dir.mkdir(exist_ok=True)
        cli = Cli(self.station, self.cli_dir)
        round_ = 0
        try:
            while round_ == 0 or time.monotonic() < self.deadline:  # at least one round
                round_ += 1
                for name, args in (("exec.NO_OP", ()), ("link.SET_BEACON_PERIOD_SAFE", (f"value={60 + round_ % 2}",))):
                    self._issued(name)
                    status, out = await cli.run("send", name, *args, limit=COMMAND_TIMEOUT_S)
                    if status != 0:
                        self.result.errors.append(f"cli send {name} (round {round_}): {out.strip()[-300:]}")
                await self.upload(cli, round_)
                await self.catalog(cli, round_)
        finally:
            self.cli_done.set()

    async def upload(self, cli: Cli, round_: int) -> None:
        name = f"up_{round_:04d}.bin"
        data = self.rng.randbytes(self.rng.randint(1000, 4000))
        local = self.cli_dir / name
        await asyncio.to_thread(local.write_bytes, data)
        self.result.uploads += 1
        status, out = await cli.run("upload", str(local), "--dest", name, "--timeout", str(TRANSFER_TIMEOUT_S),
                                    limit=TRANSFER_TIMEOUT_S + 30)
        onboard = self.quarantine / name
        same = await asyncio.to_thread(lambda: onboard.is_file() and onboard.read_bytes() == data)
        if status == 0 and same:
            self.result.uploads_ok += 1
            self.result.upload_bytes += len(data)
            await self.uploaded.put((name, data))
        else:
            self.result.errors.append(f"upload {name}: exit {status}, on board intact {same}: {out.strip()[-300:]}")

    async def catalog(self, cli: Cli, round_: int) -> None:
        self.result.catalogs += 1
        self._issued("imaging.DOWNLINK_CATALOG")
        folder = f"dl_{round_:04d}"
        status, out = await cli.run("catalog", "--downloads", folder, "--timeout", str(TRANSFER_TIMEOUT_S),
                                    limit=TRANSFER_TIMEOUT_S + 30)
        got = self.cli_dir / folder / "catalog.json"
        onboard = self.scratch / "sat" / "images" / "catalog.json"
        same = await asyncio.to_thread(lambda: got.is_file() and onboard.is_file()
                                       and got.read_bytes() == onboard.read_bytes())
        if status == 0 and same:
            self.result.catalogs_ok += 1
            self.result.downlink_bytes += got.stat().st_size
        else:
            self.result.errors.append(f"catalog {folder}: exit {status}, identical {same}: {out.strip()[-300:]}")

    # -- the figures ----------------------------------------------------------------------------
    async def figures(self) -> None:
        """Completions, refusals and the satellite's counters, once telemetry after the last command is
        in (the live view archives it)."""
        r = self.result
        for name in r.commands:
            r.commands_completed[name] = await self.archive.completed(name)
        names = tuple(r.commands)
        marks = ",".join("?" * len(names))
        rows = await self.archive.query(f"SELECT COUNT(*) FROM commands WHERE name IN ({marks})", *names)
        r.commands_signed = int(rows[0][0])
        r.re_signed = max(0, r.commands_signed - sum(r.commands.values()))
        for name in REFUSAL_EVENTS:
            rows = await self.archive.query("SELECT COUNT(*) FROM events WHERE name = ?", name)
            r.refusal_events[name] = int(rows[0][0])
        since = time.time()

        async def fresh() -> bool:
            return await self.archive.latest(REFUSAL_CHANNELS[0], since) is not None

        if not await poll(fresh, 30.0):
            r.errors.append("no uplink housekeeping after the last command")
        for names_, into in ((REFUSAL_CHANNELS, r.refusal_counters), (OTHER_CHANNELS, r.other_counters)):
            for name in names_:
                value = await self.archive.latest(name, 0.0)
                into[name] = -1 if value is None else value
        rows = await self.archive.query("SELECT COUNT(*) FROM frames")
        r.frames_archived = int(rows[0][0])


async def run(scratch: Path, duration: float = 600.0, bit_rate: int = 9600) -> TwoGroundsResult:
    """The campaign on a scratch directory (left for the caller to remove)."""
    began = time.perf_counter()
    result = TwoGroundsResult(duration_s=duration, bit_rate=bit_rate)
    async with satellite(scratch, bit_rate) as (config, port):
        campaign = Campaign(scratch, config, port, duration, result)
        # the live view first, so the CLI's first command is not the archive's creation
        live = asyncio.create_task(campaign.live())
        try:
            await poll(lambda: asyncio.to_thread(campaign.db.exists), 30.0)
            await asyncio.gather(campaign.cli(), asyncio.shield(live))
        finally:
            if not live.done():
                live.cancel()
            await asyncio.gather(live, return_exceptions=True)
    result.wall_s = round(time.perf_counter() - began, 1)
    return result


def markdown(t: dict[str, Any]) -> list[str]:
    """The section of docs/reliability.md."""
    done, issued = t["commands_completed"], t["commands"]
    cmds = ", ".join(f"`{n}` {done.get(n, 0)}/{v}" for n, v in issued.items())
    events = ", ".join(f"`{n}` {v}" for n, v in t["refusal_events"].items())
    counters = ", ".join(f"`{n}` {v}" for n, v in t["refusal_counters"].items())
    other = ", ".join(f"`{n}` {v}" for n, v in t["other_counters"].items())
    return [
        "## Two ground processes",
        "",
        "Issue 14: `flightsw sim` (the reference mission's config, a scratch directory, its KISS TCP port, "
        f"{t['bit_rate']} bit/s) and two ground processes sharing one archive and its uplink counters for "
        f"{t['duration_s']:.0f} s: the live view (`flightsw ground`, its prompt fed through a pipe) sending "
        "`link.NO_OP`, `link.SET_BEACON_PERIOD` and `fm.DOWNLINK_FILE` of every uploaded file, and a loop of "
        "CLI invocations (`send exec.NO_OP`, `send link.SET_BEACON_PERIOD_SAFE`, `upload` of a fresh random "
        "file of 1-4 kB, `catalog`). Each transfer is compared byte for byte on completion (`reliability/two_grounds.py`).",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| commands completed / sent (per name) | {cmds} |",
        f"| counters signed for them; **signed again after a refusal** | {t['commands_signed']}; **{t['re_signed']}** |",
        f"| uploads completed byte-identical (CLI to the quarantine) | {t['uploads_ok']} of {t['uploads']} "
        f"({_n(t['upload_bytes'])} B) |",
        f"| downlinks of the uploaded files completed byte-identical (to the live view) | {t['downlinks_ok']} of "
        f"{t['downlinks']} |",
        f"| catalog downlinks completed byte-identical (to the CLI) | {t['catalogs_ok']} of {t['catalogs']} |",
        f"| bytes downlinked in those transfers | {_n(t['downlink_bytes'])} |",
        f"| **refusal events in the archive** | **{events}** |",
        f"| **the satellite's refusal counters at the end** | **{counters}** |",
        f"| other satellite counters | {other} |",
        f"| frames archived | {_n(t['frames_archived'])} |",
        f"| commands or transfers that failed | {len(t['errors'])} |",
        "",
        f"Campaign time: {t['wall_s']:.0f} s.",
        "",
    ]


def _n(x: float) -> str:
    return f"{x:,.0f}".replace(",", " ")
