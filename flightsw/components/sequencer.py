"""The sequencer: stored (time-tagged) commands and sequences, run through the dispatcher.

Why it is built this way:

* a stored command is a dictionary name and arguments, checked when stored (``COMMANDS.encode``:
  count, types, ranges) and submitted when due through the same dispatcher entry as an uplinked
  packet (``submit_packed``, source ``"stored"``): the owner's refusal (mode, power) and every
  other check apply at run time exactly as for the ground; nothing bypasses them. The command
  that stored it was itself authenticated by the link;
* items are persisted in the state store (atomic writes), bounded by ``sequencer.max_items``
  (refused beyond, nothing dropped); an item is removed and the removal saved *before* it is
  submitted, so a crash or a clock step backwards can never run it twice;
* execution order is (due time, insertion number), fixed when stored (``schedule.py``): a clock
  step changes when items run, never their order;
* the sequencer waits for each command's completion (bounded by ``completion_timeout_s``) before
  the next, so the steps of a sequence happen in order; verdicts and completions are events and
  counters;
* what was due while the computer was off is decided by each item's late policy (RUN_LATE,
  SKIP, SKIP_IF_LATER_THAN N s) on the first pass after boot;
* all time goes through one :class:`~flightsw.components.schedule.SchedulingClock`
  (:class:`UtcSchedulingClock` today), so changing the time base touches one class.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flightsw.components.schedule import (
    Disposition,
    LatePolicy,
    Schedule,
    ScheduleFull,
    SchedulingClock,
    StoredCommand,
    decide,
)
from flightsw.components.seqfile import Sequence, SequenceError, parse_args, parse_sequence
from flightsw.config import SequencerSection
from flightsw.core.clock import SpacecraftClock
from flightsw.core.commands import CommandResponse, Completion
from flightsw.core.component import (
    Arg,
    Channel,
    CommandFailure,
    Component,
    Counter,
    CounterSet,
    Event,
    command,
)
from flightsw.core.events import Severity
from flightsw.core.ports import CommandPort, OverflightPredictor, StoredItem
from flightsw.core.types import F32, F64, I32, STRING, U8, U16, U32

log = logging.getLogger("flightsw.sequencer")

STATE_KEY = "sequencer.schedule"
SOURCE = "stored"  #: the dispatcher source of stored commands (verdicts show it)
WORKER = "sequencer"
MAX_SLEEP_S = 1.0  #: longest wait between looks at the clock (a step is noticed within it)
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")
LATE_ARGS = [Arg("late", U8, range=(0, 2), doc="late policy: 0 RUN_LATE, 1 SKIP, 2 SKIP_IF_LATER_THAN"),
             Arg("late_s", U32, range=(0, 864000), doc="SKIP_IF_LATER_THAN limit (s)")]
COMMAND_ARGS = [Arg("command", STRING(48), doc="dictionary name, e.g. imaging.CAPTURE_NOW"),
                Arg("args", STRING(160), doc="JSON array of its arguments, e.g. [1, 2.5]")]
OVERFLIGHT_ARGS = [Arg("lat", F32, range=(-90.0, 90.0), doc="target latitude (deg)"),
                   Arg("lon", F32, range=(-180.0, 180.0), doc="target longitude (deg)"),
                   Arg("radius_km", F32, range=(1.0, 2500.0), doc="max distance of the track (horizon ~2520 km)"),
                   Arg("offset_s", I32, range=(-86400, 86400), doc="seconds after the overflight")]


class UtcSchedulingClock:
    """Stored commands tagged in onboard UTC (the spacecraft clock's correlation or source)."""

    def __init__(self, clock: SpacecraftClock) -> None:
        self.clock = clock

    def now(self) -> float | None:
        return self.clock.utc()

    def from_utc(self, utc: float) -> float | None:
        return utc

    def to_utc(self, t: float) -> float | None:
        return t


def _fmt_utc(t: float | None) -> str:
    import time

    return "unknown" if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Sequencer(Component):
    """Stored commands and sequences: store, list, delete, run in order when due."""

    pending = Channel(U16, doc="Stored commands waiting", update="on_change")
    next_due = Channel(F64, unit="s", doc="Due time (UTC s) of the next stored command, 0 when none", utc=True,
                       update="on_change")
    stored = Counter("Commands stored")
    dispatched = Counter("Stored commands submitted to the dispatcher")
    rejected = Counter("Stored commands the dispatcher rejected")
    succeeded = Counter("Stored commands completed successfully")
    failed = Counter("Stored commands that failed, timed out or never completed")
    ran_late = Counter("Stored commands run late by their policy")
    skipped_late = Counter("Stored commands dropped late by their policy")
    deleted = Counter("Stored commands deleted by command")
    refused = Counter("Store requests refused (full, unknown command, bad arguments or time)")

    command_stored = Event(Severity.INFO, "Stored #{id} {command} due {due} ({sequence})", throttle=(20, 60.0))
    command_dispatched = Event(Severity.INFO, "Stored #{id} {command}: {verdict} {detail}", throttle=(20, 60.0))
    command_completed = Event(Severity.INFO, "Stored #{id} {command} {completion} {detail}", throttle=(20, 60.0))
    late_run = Event(Severity.WARNING, "Stored #{id} {command} run {late_s} s late ({policy})",
                     throttle=(10, 60.0))
    late_skipped = Event(Severity.WARNING, "Stored #{id} {command} skipped, {late_s} s late ({policy})",
                         throttle=(10, 60.0))
    store_refused = Event(Severity.WARNING, "Store refused: {why}", throttle=(10, 60.0))
    commands_deleted = Event(Severity.INFO, "Deleted {count} stored command(s): {what}", throttle=(10, 60.0))
    sequence_stored = Event(Severity.INFO, "Sequence {name}: {steps} step(s) stored, first due {first}",
                            throttle=(10, 60.0))
    item_info = Event(Severity.INFO, "#{id} due {due} {command} {args} late {policy} seq {sequence}",
                      throttle=None)
    listing = Event(Severity.INFO, "{count} stored command(s), next due {next}", throttle=None)
    restored = Event(Severity.INFO, "{count} stored command(s) restored at boot, {due} due while off",
                     throttle=None)
    restore_problem = Event(Severity.WARNING, "{problem}", throttle=(10, 60.0))

    def __init__(self, settings: SequencerSection | None = None, name: str = "seq") -> None:
        settings = settings or SequencerSection()
        super().__init__(name, settings.base_id)
        self.settings = settings
        self.stats = CounterSet(self)
        self.schedule = Schedule(settings.max_items)
        self.time: SchedulingClock | None = None
        self._commands: CommandPort | None = None
        self._overflights: OverflightPredictor | None = None
        self._changed = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []
        self._waiting: dict[int, asyncio.Future[CommandResponse]] = {}
        self._verdict_seq: int | None = None
        self._problems: list[str] = []

    # ------------------------------------------------------------------ wiring

    def use_commands(self, commands: CommandPort) -> None:
        """Consumer of the COMMANDS port: stored commands run through this dispatcher."""
        self._commands = commands
        commands.add_listener(self._on_response)

    def use_overflights(self, predictor: OverflightPredictor) -> None:
        """Consumer of the OVERFLIGHTS port (optional): event-relative stored commands."""
        self._overflights = predictor

    def setup(self) -> None:
        self.time = UtcSchedulingClock(self.ctx.clock)
        self.schedule, self._problems = Schedule.from_state(self.ctx.state.get(STATE_KEY), self.settings.max_items)
        self.ctx.supervisor.add_service(f"{self.name}.run", self._run)
        self.ctx.rate_group("slow").add(f"{self.name}.telemetry", self.publish)

    def publish(self) -> None:
        self.stats.publish()
        self.pending.set(min(len(self.schedule), 0xFFFF))
        first = self.schedule.first()
        self.next_due.set(0.0 if first is None else float(first.due))

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed_now(self) -> None:
        self._changed.set()
        self.publish()
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                log.exception("stored-command listener %r failed", listener)

    def _clock(self) -> SchedulingClock:
        assert self.time is not None, "sequencer not set up"
        return self.time

    def _port(self) -> CommandPort:
        if self._commands is None:
            raise CommandFailure("no command dispatcher wired")
        return self._commands

    async def _save(self) -> None:
        self.ctx.state.set(STATE_KEY, self.schedule.to_state())
        await self.ctx.state.save()

    # ------------------------------------------------------------------ the StoredCommands port

    def now_utc(self) -> float | None:
        now = self._clock().now()
        return None if now is None else self._clock().to_utc(now)

    def due_utc(self, item: StoredItem) -> float | None:
        return self._clock().to_utc(item.due)

    def pending_items(self, command: str | None = None) -> list[StoredCommand]:
        return [i for i in self.schedule if command is None or i.command == command]

    async def store_at_utc(self, command: str, args: list[Any], utc: float, policy: LatePolicy,
                           late_s: float, source: str) -> StoredCommand:
        due = self._clock().from_utc(utc)
        if due is None:
            raise ValueError("onboard time unknown: correlate time first")
        draft = StoredCommand(0, due, command, tuple(args), policy, late_s, "", source)
        return (await self._store([draft], ""))[0]

    async def delete_command(self, command: str) -> int:
        gone = self.schedule.remove_where(command=command)
        if gone:
            await self._save()
            self._changed_now()
        return len(gone)

    # ------------------------------------------------------------------ storing

    def _check(self, command: str, args: list[Any]) -> None:
        self._port().encode(command, args)

    async def _store(self, drafts: list[StoredCommand], sequence: str) -> list[StoredCommand]:
        """Check and store drafts as a whole, persisted before returning; ValueError says why not."""
        try:
            for draft in drafts:
                try:
                    self._check(draft.command, list(draft.args))
                except ValueError as exc:
                    raise ValueError(f"{draft.command}: {exc}") from None
            if sequence and any(i.sequence == sequence for i in self.schedule):
                raise ValueError(f"sequence {sequence} is already stored; delete it first")
            items = self.schedule.add_all(drafts)
        except (ValueError, ScheduleFull) as exc:
            self.stats.inc("refused")
            self.store_refused.emit(why=str(exc)[:100])
            raise ValueError(str(exc)) from None
        await self._save()
        self.stats.inc("stored", len(items))
        for item in items:
            self.command_stored.emit(id=item.id, command=item.command, due=_fmt_utc(self.due_utc(item)),
                                 sequence=item.sequence or item.source)
        self._changed_now()
        return items

    async def _store_one(self, command: str, args_json: str, due: float | None, late: int,
                         late_s: int) -> None:
        if due is None:
            self._refuse("onboard time unknown: correlate time first")
        try:
            args = parse_args(args_json)
        except ValueError as exc:
            self._refuse(str(exc))
        assert due is not None
        draft = StoredCommand(0, due, command, args, LatePolicy(late), float(late_s), "", "command")
        try:
            await self._store([draft], "")
        except ValueError as exc:
            raise CommandFailure(str(exc)) from None

    def _refuse(self, why: str) -> None:
        self.stats.inc("refused")
        self.store_refused.emit(why=why[:100])
        raise CommandFailure(why)

    async def _overflight_due(self, lat: float, lon: float, radius_km: float, offset_s: int) -> float:
        if self._overflights is None:
            self._refuse("no overflight predictor (needs the imaging payload)")
        assert self._overflights is not None
        now = self.now_utc()
        if now is None:
            self._refuse("onboard time unknown: correlate time first")
        assert now is not None
        try:
            utc = await self._overflights.next_overflight(lat, lon, radius_km, now + max(0, -offset_s))
        except ValueError as exc:
            self._refuse(str(exc))
        if utc is None:
            self._refuse(f"no pass within {radius_km:.0f} km of ({lat:.2f}, {lon:.2f}) in the planner's horizon")
        assert utc is not None
        due = self._clock().from_utc(utc + offset_s)
        assert due is not None
        return due

    async def _store_sequence(self, text: str, default_name: str, start: float | None, source: str) -> None:
        try:
            sequence: Sequence = parse_sequence(text, default_name, self._check)
            drafts = sequence.drafts(start, source)
        except SequenceError as exc:
            self._refuse(f"{source}: {exc}")
        try:
            items = await self._store(drafts, sequence.name)
        except ValueError as exc:
            raise CommandFailure(str(exc)) from None
        self.sequence_stored.emit(name=sequence.name, steps=len(items),
                                  first=_fmt_utc(self.due_utc(min(items, key=lambda i: i.order))))

    def _start(self, start_utc: int) -> float | None:
        """The start of a sequence: now (0) or a UTC time, on the scheduling time base."""
        if start_utc == 0:
            return self._clock().now()
        return self._clock().from_utc(float(start_utc))

    def _sequence_path(self, file: str) -> Path:
        if not FILE_NAME_RE.match(file):
            self._refuse(f"bad sequence file name {file!r} (a name in the upload quarantine)")
        transfer = self.ctx.config.filetransfer
        if transfer is None:
            self._refuse("no file transfer configured: uplink the sequence inline (STORE_SEQUENCE)")
        assert transfer is not None
        return self.ctx.config.data_dir / transfer.work_dir / "quarantine" / file

    def _read_file(self, path: Path) -> str:
        with path.open("rb") as f:
            data = f.read(self.settings.max_file_bytes + 1)
        if len(data) > self.settings.max_file_bytes:
            raise ValueError(f"larger than sequencer.max_file_bytes ({self.settings.max_file_bytes})")
        return data.decode("utf-8")

    async def _load_file(self, file: str, start: float | None) -> None:
        path = self._sequence_path(file)
        try:
            text: str = await self.ctx.workers.run_io(WORKER, self._read_file, path)
        except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            self._refuse(f"{file}: {type(exc).__name__}: {exc}"[:100])
        await self._store_sequence(text, Path(file).stem[:24], start, file)

    # ------------------------------------------------------------------ commands

    @command(args=[Arg("utc", U32, doc="UNIX time (s)"), *COMMAND_ARGS, *LATE_ARGS],
             doc="Store a command to run at a UTC time.")
    async def store_at(self, utc: int, command: str, args: str, late: int, late_s: int) -> None:
        await self._store_one(command, args, self._clock().from_utc(float(utc)), late, late_s)

    @command(args=[Arg("delay_s", U32, range=(0, 30 * 86400), doc="seconds from now"), *COMMAND_ARGS,
                   *LATE_ARGS],
             doc="Store a command to run a number of seconds from now.")
    async def store_in(self, delay_s: int, command: str, args: str, late: int, late_s: int) -> None:
        now = self._clock().now()
        await self._store_one(command, args, None if now is None else now + delay_s, late, late_s)

    @command(args=[*OVERFLIGHT_ARGS, *COMMAND_ARGS, *LATE_ARGS],
             doc="Store a command to run at the next overflight of a target (plus an offset).",
             timeout=30.0)
    async def store_at_overflight(self, lat: float, lon: float, radius_km: float, offset_s: int,
                                  command: str, args: str, late: int, late_s: int) -> None:
        due = await self._overflight_due(lat, lon, radius_km, offset_s)
        await self._store_one(command, args, due, late, late_s)

    @command(args=[Arg("text", STRING(200), doc="sequence text, lines separated by newlines"),
                   Arg("start_utc", U32, doc="start of relative steps (UNIX s); 0: now")],
             doc="Store an inline sequence (the sequence file format).")
    async def store_sequence(self, text: str, start_utc: int) -> None:
        await self._store_sequence(text, "inline", self._start(start_utc), "inline")

    @command(args=[Arg("file", STRING(64), doc="name of an uplinked file in the quarantine"),
                   Arg("start_utc", U32, doc="start of relative steps (UNIX s); 0: now")],
             doc="Store the sequence of an uplinked file, validated as a whole.", timeout=30.0)
    async def load_sequence(self, file: str, start_utc: int) -> None:
        await self._load_file(file, self._start(start_utc))

    @command(args=[Arg("file", STRING(64), doc="name of an uplinked file in the quarantine"),
                   *OVERFLIGHT_ARGS],
             doc="Store an uplinked sequence starting at the next overflight of a target.",
             timeout=30.0)
    async def load_sequence_at_overflight(self, file: str, lat: float, lon: float, radius_km: float,
                                          offset_s: int) -> None:
        await self._load_file(file, await self._overflight_due(lat, lon, radius_km, offset_s))

    @command(doc="Report every stored command as an ITEM_INFO event, then a LISTING summary.",
             name="LIST")
    def list_stored(self) -> None:
        items = list(self.schedule)
        for item in items:
            self.item_info.emit(id=item.id, due=_fmt_utc(self.due_utc(item)), command=item.command,
                                args=json.dumps(list(item.args))[:60],
                                policy=item.policy.name if item.policy is not LatePolicy.SKIP_IF_LATER_THAN
                                else f"SKIP_IF_LATER_THAN:{item.late_s:g}", sequence=item.sequence or "-")
        self.listing.emit(count=len(items), next=_fmt_utc(self.due_utc(items[0])) if items else "none")

    @command(args=[Arg("id", U32)], doc="Delete one stored command by its id.")
    async def delete(self, id: int) -> None:  # noqa: A002 - the argument's name on the ground
        item = self.schedule.remove(id)
        if item is None:
            raise CommandFailure(f"no stored command #{id}")
        await self._deleted([item], f"#{id}")

    @command(args=[Arg("name", STRING(24))], doc="Delete every stored command of a sequence.")
    async def delete_sequence(self, name: str) -> None:
        if not name:
            raise CommandFailure("name a sequence")
        gone = self.schedule.remove_where(sequence=name)
        if not gone:
            raise CommandFailure(f"no stored sequence {name!r}")
        await self._deleted(gone, f"sequence {name}")

    @command(doc="Delete every stored command.")
    async def delete_all(self) -> None:
        await self._deleted(self.schedule.remove_where(), "all")

    async def _deleted(self, gone: list[StoredCommand], what: str) -> None:
        await self._save()
        self.stats.inc("deleted", len(gone))
        self.commands_deleted.emit(count=len(gone), what=what)
        self._changed_now()

    # ------------------------------------------------------------------ running

    def _on_response(self, response: CommandResponse) -> None:
        if response.source != SOURCE:
            return
        if response.completion is None:
            self._verdict_seq = response.seq  # delivered inside submit_packed, read right after it
            return
        waiter = self._waiting.get(response.seq)
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    async def _run(self) -> None:
        now = self._clock().now()
        for problem in self._problems:
            self.restore_problem.emit(problem=problem[:100])
        self._problems = []
        due_while_off = sum(1 for i in self.schedule if now is not None and i.due <= now)
        self.restored.emit(count=len(self.schedule), due=due_while_off)
        self.publish()
        while True:
            self._changed.clear()
            item = self.schedule.first()
            now = self._clock().now()
            decision = Disposition.WAIT if item is None else decide(item, now, self.settings.late_grace_s)
            if item is None or decision is Disposition.WAIT:
                wait = None if item is None else (MAX_SLEEP_S if now is None else min(item.due - now, MAX_SLEEP_S))
                try:
                    await asyncio.wait_for(self._changed.wait(), wait)
                except TimeoutError:
                    pass
                continue
            assert now is not None
            self.schedule.remove(item.id)  # saved before it runs: never twice
            await self._save()
            self._changed_now()
            late = round(now - item.due, 1)
            policy = item.policy.name
            if decision is Disposition.SKIP_LATE:
                self.stats.inc("skipped_late")
                self.late_skipped.emit(id=item.id, command=item.command, late_s=late, policy=policy)
                continue
            if decision is Disposition.RUN_LATE:
                self.stats.inc("ran_late")
                self.late_run.emit(id=item.id, command=item.command, late_s=late, policy=policy)
            await self._execute(item)

    async def _execute(self, item: StoredCommand) -> None:
        port = self._port()
        try:
            body = port.encode(item.command, list(item.args))
        except ValueError as exc:  # the dictionary changed since it was stored (software update)
            self.stats.inc("rejected")
            self.command_dispatched.emit(id=item.id, command=item.command, verdict="REJECTED", detail=str(exc)[:80])
            return
        self._verdict_seq = None
        verdict = port.submit_packed(body, source=SOURCE)
        seq = self._verdict_seq
        self.stats.inc("dispatched")
        self.command_dispatched.emit(id=item.id, command=item.command, verdict=verdict.reason.name,
                                 detail=verdict.detail)
        if not verdict.accepted or seq is None:
            self.stats.inc("rejected")
            return
        waiter: asyncio.Future[CommandResponse] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = waiter
        try:
            response = await asyncio.wait_for(waiter, self.settings.completion_timeout_s)
        except TimeoutError:
            self.stats.inc("failed")
            self.command_completed.emit(id=item.id, command=item.command, completion="NO_COMPLETION",
                                    detail=f"none within {self.settings.completion_timeout_s:g} s")
            return
        finally:
            self._waiting.pop(seq, None)
        assert response.completion is not None
        self.stats.inc("succeeded" if response.completion is Completion.SUCCESS else "failed")
        self.command_completed.emit(id=item.id, command=item.command, completion=response.completion.name,
                                detail=response.detail)
