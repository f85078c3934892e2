"""Uplink counters of a ground station, safe with several ground processes and computers.

Why: the satellite runs a command (or takes a file PDU) only if its counter is above the last one
it accepted. Two ground processes on one computer (the live view and a CLI ``request``), or two
computers, each signing from its own counter, make the satellite drop one side's packets as
replays. Three things prevent it:

* **one counter store**: the counters of commands (per key) and of file PDUs live in the station
  archive (SQLite) and are taken under its write lock (``BEGIN IMMEDIATE``), so two processes
  sharing the archive never sign the same value;
* **counter order on the air**: an exclusive lock on a file beside the archive (``fcntl.flock``)
  is held from taking a counter until its frame is handed to the TNC, so frames of every process
  reach the TNC, and the satellite, in counter order;
* **a floor learnt from the satellite**: the last accepted counters it reports (beacon field
  ``uplink_counter``, channels ``link.uplink_counter`` and ``files.uplink_counter``, the events
  ``link.counter_refused`` and ``files.pdu_rejected``) are never signed below again, so a second
  computer or a fresh archive goes on above what the satellite used. A command refused for its
  counter never ran: the station signs it again with a new counter (``GroundStation.command``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import fcntl
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from flightsw.ground.archive import Archive

COMMAND_REFUSED_EVENT = "link.counter_refused"
FILE_REJECTED_EVENT = "files.pdu_rejected"
COMMAND_COUNTER_CHANNEL = "link.uplink_counter"
FILE_COUNTER_CHANNEL = "files.uplink_counter"
REFUSALS_KEPT = 256


class CounterKind(enum.Enum):
    """The two counter spaces on board: commands (one per key) and file PDUs (one for all keys)."""

    COMMAND = "command"
    FILE = "file"


class UplinkCounters:
    """The station's counters: reserve one (held in order until its frame is out), learn floors."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.lock_path = Path(f"{archive.path}.uplink-lock")
        self._floors: dict[tuple[CounterKind, int], int] = {}
        self._refused: dict[tuple[int, int], None] = {}  # (key id, counter) refused on board, oldest first
        self._local = asyncio.Lock()

    # -- floors learnt from the satellite ---------------------------------------------------------
    def floor(self, kind: CounterKind, key_id: int = 0) -> int:
        return self._floors.get((kind, 0 if kind is CounterKind.FILE else key_id), 0)

    def learn(self, kind: CounterKind, last: int, key_id: int = 0) -> None:
        """The satellite reports ``last`` as used: never sign at or below it again."""
        slot = (kind, 0 if kind is CounterKind.FILE else key_id)
        if last > self._floors.get(slot, 0):
            self._floors[slot] = last

    def on_channels(self, values: Mapping[str, Any], key_id: int) -> None:
        """Downlinked channel values (housekeeping, beacon): the counters the satellite reports."""
        for name, kind in ((COMMAND_COUNTER_CHANNEL, CounterKind.COMMAND), (FILE_COUNTER_CHANNEL, CounterKind.FILE)):
            value = values.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                self.learn(kind, value, key_id)

    def on_event(self, name: str, args: Mapping[str, Any]) -> None:
        """A refusal names the last counter accepted (and, for commands, the refused one)."""
        last = args.get("last")
        if not isinstance(last, int):
            return
        if name == FILE_REJECTED_EVENT:
            self.learn(CounterKind.FILE, last)
        elif name == COMMAND_REFUSED_EVENT:
            key_id, counter = args.get("key_id"), args.get("counter")
            if isinstance(key_id, int) and isinstance(counter, int):
                self.learn(CounterKind.COMMAND, last, key_id)
                self._refused[(key_id, counter)] = None
                while len(self._refused) > REFUSALS_KEPT:
                    del self._refused[next(iter(self._refused))]

    def refused(self, key_id: int, counter: int) -> bool:
        """The satellite refused this command counter (it did not run the command)."""
        return (key_id, counter) in self._refused

    # -- reserving ----------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def reserve(self, kind: CounterKind, key_id: int = 0, limit: int | None = None) -> AsyncIterator[int]:
        """The next counter of ``kind``, above every floor; the uplink lock is held (against every
        process of this archive) until the body, which transmits the frame, returns. ValueError
        (nothing reserved) above ``limit``."""
        async with self._local:
            fd = await _lock_file(self.lock_path)
            try:
                archive = self.archive
                floor = self.floor(kind, key_id)
                if kind is CounterKind.FILE:
                    counter = await archive.call(archive.next_file_counter, floor)
                else:
                    counter = await archive.call(archive.next_counter, floor, key_id, limit)
                yield counter
            finally:
                os.close(fd)  # closing the descriptor releases the lock


async def _lock_file(path: Path) -> int:
    """An exclusive ``flock`` on ``path`` (created 0600), waited for on a thread; the descriptor."""
    fd = await asyncio.to_thread(os.open, path, os.O_RDWR | os.O_CREAT, 0o600)
    waiting = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
    try:
        await asyncio.shield(waiting)
    except BaseException:
        # cancelled while another process holds it: release once the thread has it
        waiting.add_done_callback(lambda _: os.close(fd))
        raise
    return fd
