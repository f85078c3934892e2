"""Command dispatching: validate, give a verdict, execute, report completion.

Opcode, argument count, types and ranges are checked, and the owning component may refuse the
command (mode, power), before any handler runs. Every command gets a verdict (accepted, or
rejected with a reason code) and, if accepted, a completion (success, failure with reason,
timeout). Malformed or unknown input is counted and reported, never raised into the caller.
Commands to one component run one at a time; different components run concurrently.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack

from flightsw.core.clock import Stamp
from flightsw.core.component import (
    Arg,
    Channel,
    CommandDecl,
    CommandFailure,
    CommandRejected,
    Component,
    Counter,
    CounterSet,
    DeclaredItem,
    Event,
    check_arguments,
    command,
)
from flightsw.core.events import Severity
from flightsw.core.types import STRING, U32, OutOfRange

if TYPE_CHECKING:
    from flightsw.core.dictionary import Dictionary

log = logging.getLogger("flightsw.commands")


class Reason(enum.IntEnum):
    """Why a command was rejected (0 = accepted)."""

    OK = 0
    UNKNOWN_OPCODE = 1
    BAD_ARG_COUNT = 2
    BAD_ARG_TYPE = 3
    ARG_OUT_OF_RANGE = 4
    NOT_ALLOWED = 5
    QUEUE_FULL = 6
    MALFORMED = 7


class Completion(enum.IntEnum):
    SUCCESS = 0
    FAILURE = 1
    TIMEOUT = 2


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: Reason = Reason.OK
    detail: str = ""


@dataclass(frozen=True)
class CommandResponse:
    """A verdict (``completion is None``) or a completion, as sent to the ground."""

    seq: int
    opcode: int
    name: str
    source: str
    reason: Reason
    completion: Completion | None
    detail: str
    stamp: Stamp

    @property
    def accepted(self) -> bool:
        return self.reason == Reason.OK

    def to_wire(self) -> list[Any]:
        return [self.seq, self.opcode, int(self.reason),
                None if self.completion is None else int(self.completion), self.detail, *self.stamp.to_wire()]

    @classmethod
    def from_wire(cls, raw: list[Any], names: dict[int, str]) -> CommandResponse:
        seq, opcode, reason, completion, detail, boot, sec, utc = raw
        return cls(seq, opcode, names.get(opcode, f"0x{opcode:08x}"), "", Reason(reason),
                   None if completion is None else Completion(completion), detail, Stamp(boot, sec, utc))


@dataclass
class _Pending:
    item: DeclaredItem
    args: list[Any]
    seq: int
    source: str


ResponseListener = Callable[[CommandResponse], None]


def _classify(exc: ValueError) -> Reason:
    """The verdict for an argument its type refused: chosen by the exception's type."""
    return Reason.ARG_OUT_OF_RANGE if isinstance(exc, OutOfRange) else Reason.BAD_ARG_TYPE


class CommandDispatcher(Component):
    """Routes commands to components and reports verdicts and completions."""

    received = Counter("Commands received (valid or not)")
    accepted_total = Counter("Commands accepted")
    rejected_total = Counter("Commands rejected")
    succeeded = Counter("Commands completed successfully")
    failed = Counter("Commands that failed or timed out")
    malformed = Counter("Undecodable command packets")
    last_opcode = Channel(U32, doc="Opcode of the last command executed")
    last_result = Channel(STRING(24), doc="Last command verdict or completion")

    rejected = Event(Severity.WARNING, "Command {name} rejected: {reason} {detail}", throttle=(10, 60.0))
    failed_evt = Event(Severity.WARNING, "Command {name} failed: {detail}", throttle=(10, 60.0))
    timed_out = Event(Severity.WARNING, "Command {name} timed out after {timeout} s", throttle=(10, 60.0))
    malformed_evt = Event(Severity.WARNING, "Malformed command: {detail}", throttle=(5, 60.0))
    executed = Event(Severity.INFO, "Command {name} completed", throttle=(30, 60.0))
    dictionary_reported = Event(Severity.INFO, "Dictionary hash {hash} ({short}), {commands} commands",
                                throttle=None)

    def __init__(self, name: str = "cmd", base_id: int = 0x0002, queue_depth: int = 32) -> None:
        super().__init__(name, base_id)
        self.dictionary: Dictionary | None = None
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_depth)
        self._listeners: list[ResponseListener] = []
        self._locks: dict[str, asyncio.Lock] = {}
        self.stats = CounterSet(self)
        self._seq = 0
        self._counters_published = False
        self._dictionary_hash: str | None = None

    def use_dictionary(self, dictionary: Dictionary) -> None:
        """Route by ``dictionary`` and hash it now, once (at start-up: ~2 ms here, tens on a Pi Zero),
        so the very first beacon already carries the hash."""
        self.dictionary = dictionary
        self._dictionary_hash = dictionary.content_hash()

    @property
    def dictionary_hash(self) -> int | None:
        """First 32 bits of the dictionary's content hash (None before the satellite is finalized)."""
        return None if self._dictionary_hash is None else int(self._dictionary_hash[:8], 16)

    # Explicit ids: the ground uses these two to find out which commands it may still send when
    # the dictionaries differ, so their opcodes must not move with a rename.
    @command(doc="Report the dictionary's content hash as an event (the beacon carries its first 32 bits).",
             id=0xFF10, name="DICTIONARY_HASH")
    def dictionary_hash_report(self) -> None:
        full = self._dictionary_hash
        assert self.dictionary is not None and full is not None
        self.dictionary_reported.emit(hash=full[:16], short=f"0x{full[:8]}", commands=len(self.dictionary.commands))

    @command(args=[Arg("opcode", U32, doc="the command's opcode in the ground's dictionary"),
                   Arg("digest", U32, doc="the ground's digest of its definition (dictionary.command_digest)")],
             doc="Succeed only if this satellite defines opcode exactly as the ground does.", id=0xFF11, name="CHECK_COMMAND")
    def verify_command(self, opcode: int, digest: int) -> None:
        assert self.dictionary is not None
        flight = self.dictionary.command_digest(opcode)
        if flight is None:
            raise CommandFailure(f"unknown opcode 0x{opcode:08x}")
        if flight != digest:
            raise CommandFailure(f"0x{opcode:08x} defined differently on board (digest 0x{flight:08x})")

    def setup(self) -> None:
        self.ctx.supervisor.add_service("cmd.executor", self.run)
        self.ctx.rate_group("slow").add("cmd.telemetry", self.publish)

    def add_listener(self, listener: ResponseListener) -> None:
        self._listeners.append(listener)

    def publish(self) -> None:
        self.stats.publish()
        if not self._counters_published:  # once; afterwards each component's on every change
            self._counters_published = True
            for comp in self.ctx.components():
                comp.counters.publish()

    def _respond(self, opcode: int, name: str, seq: int, source: str,
                 reason: Reason, completion: Completion | None, detail: str) -> CommandResponse:
        resp = CommandResponse(seq, opcode, name, source, reason, completion, detail, self.ctx.clock.now())
        self.last_result.set((reason.name if completion is None else completion.name)[:24])
        for listener in self._listeners:
            try:
                listener(resp)
            except Exception:
                log.exception("command listener %r failed", listener)
        return resp

    # -- entry points -----------------------------------------------------------------------
    def submit_packed(self, body: bytes, source: str = "ground", seq: int | None = None) -> Verdict:
        """Decode ``msgpack [opcode, [args...]]`` from the link and submit it."""
        try:
            opcode, args = msgpack.unpackb(body, raw=False)
            if not isinstance(opcode, int) or isinstance(opcode, bool) or not isinstance(args, list):
                raise ValueError("expected [opcode:int, args:list]")
        except Exception as exc:
            self.stats.inc("received")
            self.stats.inc("malformed")
            detail = f"{type(exc).__name__}: {exc}"[:80]
            self.malformed_evt.emit(detail=detail)
            return Verdict(False, Reason.MALFORMED, detail)
        return self.submit(opcode, args, source=source, seq=seq)

    def submit(self, opcode: int, args: list[Any], source: str = "ground", seq: int | None = None) -> Verdict:
        """Validate and queue a command; returns the verdict (also sent to listeners)."""
        assert self.dictionary is not None, "dispatcher not attached to a dictionary"
        self.stats.inc("received")
        if seq is None:
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            seq = self._seq
        item = self.dictionary.commands.get(opcode)
        name = item.name if item is not None else f"0x{opcode:08x}"
        verdict, coerced = self._validate(item, args)
        if verdict.accepted:
            assert item is not None
            try:
                self._queue.put_nowait(_Pending(item, coerced, seq, source))
            except asyncio.QueueFull:
                verdict = Verdict(False, Reason.QUEUE_FULL, "command queue full")
        if verdict.accepted:
            self.stats.inc("accepted_total")
            assert item is not None
            item.component.counters.inc("cmds_accepted")
        else:
            self.stats.inc("rejected_total")
            if item is not None:
                item.component.counters.inc("cmds_rejected")
            self.rejected.emit(name=name, reason=verdict.reason.name, detail=verdict.detail)
        if item is not None:
            item.component.counters.publish()
        self._respond(opcode, name, seq, source, verdict.reason, None, verdict.detail)
        return verdict

    def encode(self, name: str, args: list[Any]) -> bytes:
        """Pack a command named as in the dictionary, its argument count, types and ranges
        checked (ValueError naming the problem); for commands stored now and submitted later,
        which pass every check again then (the owner's refusal is only known then)."""
        assert self.dictionary is not None, "dispatcher not attached to a dictionary"
        item = self.dictionary.by_name.get(name)
        if item is None or item.id not in self.dictionary.commands:
            raise ValueError(f"no command {name!r}")
        check_arguments(item.decl_as(CommandDecl).args, args)
        packed: bytes = msgpack.packb([item.id, list(args)], use_bin_type=True)
        return packed

    def _validate(self, item: DeclaredItem | None, args: list[Any]) -> tuple[Verdict, list[Any]]:
        if item is None:
            return Verdict(False, Reason.UNKNOWN_OPCODE, "unknown opcode"), []
        decl = item.decl_as(CommandDecl)
        if not isinstance(args, list) or len(args) != len(decl.args):
            got = len(args) if isinstance(args, list) else "?"
            return Verdict(False, Reason.BAD_ARG_COUNT, f"{got} args, expected {len(decl.args)}"), []
        coerced = []
        for spec, value in zip(decl.args, args, strict=True):
            try:
                coerced.append(spec.validate(value))
            except ValueError as exc:
                return Verdict(False, _classify(exc), f"{spec.name}: {exc}"[:80]), []
        refusal = item.component.check_command(decl.item_name, coerced)
        if refusal:
            return Verdict(False, Reason.NOT_ALLOWED, refusal[:80]), []
        return Verdict(True), coerced

    # -- execution --------------------------------------------------------------------------
    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            while True:
                pending = await self._queue.get()
                group.create_task(self._execute(pending))

    async def _execute(self, p: _Pending) -> None:
        decl = p.item.decl_as(CommandDecl)
        comp = p.item.component
        lock = self._locks.setdefault(comp.name, asyncio.Lock())
        completion, detail = Completion.SUCCESS, ""
        async with lock:
            try:
                async with asyncio.timeout(decl.timeout):
                    assert decl.handler is not None
                    result = decl.handler(comp, *p.args)
                    if inspect.isawaitable(result):
                        await result
            except TimeoutError:
                completion, detail = Completion.TIMEOUT, f"timeout {decl.timeout} s"
            except (CommandFailure, CommandRejected, ValueError) as exc:
                completion, detail = Completion.FAILURE, str(exc)[:80]
            except Exception as exc:  # a handler bug is a failed command, not a dead dispatcher
                log.exception("command %s raised", p.item.name)
                completion, detail = Completion.FAILURE, f"{type(exc).__name__}: {exc}"[:80]
        self.last_opcode.set(p.item.id)
        if completion is Completion.SUCCESS:
            self.stats.inc("succeeded")
            self.executed.emit(name=p.item.name)
        else:
            self.stats.inc("failed")
            comp.counters.inc("cmd_errors")
            comp.counters.publish()
            if completion is Completion.TIMEOUT:
                self.timed_out.emit(name=p.item.name, timeout=decl.timeout)
            else:
                self.failed_evt.emit(name=p.item.name, detail=detail)
        self._respond(p.item.id, p.item.name, p.seq, p.source, Reason.OK, completion, detail)
