"""Downlink scheduler: shares the radio by priority within the link's bit rate.

Why: a 9600 bit/s pass of ten minutes carries well under a megabyte, so what goes first matters.
The beacon goes first (a queue of its own that nothing else can fill or evict), then command
verdicts, real-time housekeeping, events, stored telemetry and files. Verdicts may use at most
``response_share`` of the airtime while lower queues have something to send (an airtime token
bucket): a flood of responses, e.g. provoked by a replayed command, cannot silence housekeeping. Real-time housekeeping is replaced when a newer sample of the same packet arrives (an
old sample is worth nothing once a newer one exists); other queues are bounded and drop their
oldest entry, counted, when full. Frames are paced by their on-air time, computed from the frame
bytes including FCS, HDLC flags, bit stuffing and the transmitter key-up delay, so the queues sit
here (where priorities apply) and not in the radio's buffer. Nothing is sent while transmitter
control (``flightsw.link.tx_control``, asked through a permit callable) forbids it: silence,
transmitter commanded off, low power, mode; the frames formed meanwhile are counted as withheld.

Bursts: the transmitter pays its key-up delay (TXDELAY) once per transmission, and a KISS TNC
such as direwolf sends in one transmission every frame already in its queue when it keys up. So
the scheduler hands the TNC a burst of frames at once (permission asked before each one) and
then waits the burst's on-air time, TXDELAY counted once: at 9600 bit/s a 50 ms TXDELAY per frame
costs a 256-byte frame a fifth of its airtime. A burst ends once it holds ``burst_s`` seconds of
airtime (or ``BURST_FRAMES`` frames, what a TNC's queue surely holds), so a beacon or verdict
queued meanwhile waits at most one burst. The frames of a burst are the TNC's once handed over
(KISS cannot take them back): an inhibit arriving during a burst stops the next frame and the
next burst, but what the TNC holds (at most ``burst_s`` of airtime) still goes out, as the frame
on the air did with a frame per key-up. File packets may travel in frames of their own of up
to ``max_file_info`` bytes (fewer headers per byte of file); every other frame stays within
``max_info``, the size the amateur decoders take.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from enum import IntEnum

import crcmod.predefined

_fcs16 = crcmod.predefined.mkPredefinedCrcFun("x-25")
HDLC_FLAG_BITS = 8


class Priority(IntEnum):
    """Downlink queues, most urgent first."""

    BEACON = 0  # the beacon only: never waits behind, nor is evicted by, anything else
    VERDICT = 1  # command verdicts and completions (airtime share bounded)
    HOUSEKEEPING = 2
    EVENT = 3
    STORED = 4
    FILE = 5


DEFAULT_RESPONSE_SHARE = 0.5
DEFAULT_BURST_S = 0.0  # one frame per key-up
BURST_FRAMES = 8  # frames handed to the TNC at once, at most (the simulated TNC's queue holds 8)
RESPONSE_BURST = 2.0  # s of airtime verdicts may use at once after an idle spell

DEFAULT_QUEUE_LIMITS: dict[Priority, int] = {
    Priority.BEACON: 16,
    Priority.VERDICT: 64,
    Priority.HOUSEKEEPING: 64,
    Priority.EVENT: 256,
    Priority.STORED: 512,
    Priority.FILE: 64,
}


def _stuffing_table() -> list[tuple[int, int]]:
    """(run of ones entering, byte) -> (run of ones leaving, bits stuffed), bits LSB first."""
    table: list[tuple[int, int]] = []
    for ones_in in range(5):
        for byte in range(256):
            ones, stuffed = ones_in, 0
            for bit in range(8):  # AX.25 sends bytes least significant bit first
                if (byte >> bit) & 1:
                    ones += 1
                    if ones == 5:  # a zero is stuffed after five ones; the run starts again
                        stuffed += 1
                        ones = 0
                else:
                    ones = 0
            table.append((ones, stuffed))
    return table


_STUFFING = _stuffing_table()


def stuffed_bits(frame: bytes) -> int:
    """On-air bits of one HDLC frame: frame + FCS with bit stuffing, plus opening/closing flags.

    A byte at a time through a precomputed table: the scheduler prices every frame it sends.
    """
    data = bytes(frame) + _fcs16(bytes(frame)).to_bytes(2, "little")
    table = _STUFFING
    ones = 0
    stuffed = 0
    for byte in data:
        ones, extra = table[ones * 256 + byte]
        stuffed += extra
    return len(data) * 8 + stuffed + 2 * HDLC_FLAG_BITS


@dataclass
class _Entry:
    packet: bytes
    alone: bool


class DownlinkScheduler:
    """Packs queued space packets into frames and paces them to the link bit rate."""

    def __init__(
        self,
        send_frame: Callable[[bytes], Awaitable[None]],
        wrap: Callable[[bytes], bytes],
        *,
        max_info: int,
        bit_rate: float,
        tx_delay: float = 0.0,
        queue_limits: dict[Priority, int] | None = None,
        response_share: float = DEFAULT_RESPONSE_SHARE,
        burst_s: float = DEFAULT_BURST_S,
        max_file_info: int | None = None,
    ) -> None:
        if bit_rate <= 0:
            raise ValueError(f"link bit rate must be positive, got {bit_rate}")
        if max_info < 32:
            raise ValueError(f"frame information field of {max_info} bytes is too small")
        if not 0.0 < response_share <= 1.0:
            raise ValueError(f"response share must be within (0, 1], got {response_share}")
        if burst_s < 0:
            raise ValueError(f"burst airtime must not be negative, got {burst_s}")
        self._send_frame = send_frame
        self._wrap = wrap
        self.max_info = max_info
        self.max_file_info = max(max_info, max_file_info or max_info)
        self.burst_s = float(burst_s)
        self.key_ups = 0  # bursts handed to the radio (each pays TXDELAY once)
        self.bit_rate = float(bit_rate)
        self.tx_delay = float(tx_delay)
        limits = dict(DEFAULT_QUEUE_LIMITS)
        limits.update(queue_limits or {})
        self._limits = limits
        self._queues: dict[Priority, collections.deque[_Entry]] = {
            p: collections.deque() for p in Priority if p != Priority.HOUSEKEEPING
        }
        self._latest: collections.OrderedDict[Hashable, _Entry] = collections.OrderedDict()
        self._permit: Callable[[], bool] | None = None
        # Queues at or below this priority are held, not sent (out of a predicted contact only
        # the beacon and verdicts go); their packets wait for the next pass.
        self.hold_from: int | None = None
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()  # a frame went out, or transmit permission changed
        self.frames_sent = 0
        self.frames_withheld = 0  # frames taken from the queues while transmission was not allowed
        self.bytes_sent = 0
        self.packets_sent = 0
        self.packets_dropped = 0
        self.packets_replaced = 0
        self.airtime_total = 0.0
        self.response_share = float(response_share)
        self._credit = RESPONSE_BURST  # airtime (s) verdicts may still use while others wait
        self._credit_time: float | None = None
        self._verdict_bytes = 0  # verdict bytes in the frame last taken
        self.verdicts_deferred = 0  # frames in which waiting verdicts gave way to other queues

    # -- queueing ---------------------------------------------------------------------------
    def enqueue(self, priority: Priority, packet: bytes, *, replace_key: Hashable | None = None,
                alone: bool = False) -> None:
        """Queue one packet. With ``replace_key`` (housekeeping) a queued older packet with the
        same key is replaced in place. ``alone`` packets (the beacon) get a frame to themselves."""
        limit = self.max_file_info if priority == Priority.FILE else self.max_info
        if len(packet) > limit:
            raise ValueError(f"packet of {len(packet)} bytes exceeds the {limit}-byte frame")
        entry = _Entry(bytes(packet), alone)
        if priority == Priority.HOUSEKEEPING:
            key = replace_key if replace_key is not None else object()
            if key in self._latest:
                self.packets_replaced += 1
            elif len(self._latest) >= self._limits[priority]:
                self._latest.popitem(last=False)
                self.packets_dropped += 1
            self._latest[key] = entry
        else:
            queue = self._queues[priority]
            if len(queue) >= self._limits[priority]:
                queue.popleft()
                self.packets_dropped += 1
            queue.append(entry)
        self._wake.set()

    def depth(self, priority: Priority) -> int:
        if priority == Priority.HOUSEKEEPING:
            return len(self._latest)
        return len(self._queues[priority])

    def _head(self, priority: Priority) -> _Entry | None:
        if priority == Priority.HOUSEKEEPING:
            return next(iter(self._latest.values()), None)
        queue = self._queues[priority]
        return queue[0] if queue else None

    def _pop(self, priority: Priority) -> _Entry:
        if priority == Priority.HOUSEKEEPING:
            return self._latest.popitem(last=False)[1]
        return self._queues[priority].popleft()

    def _refill(self, now: float | None) -> None:
        if now is None:
            return
        if self._credit_time is not None:
            gained = (now - self._credit_time) * self.response_share
            self._credit = min(RESPONSE_BURST, self._credit + max(0.0, gained))
        self._credit_time = now

    def _verdicts_may_go(self) -> bool:
        """Verdicts go while they have airtime credit, or when nothing below them waits."""
        if self._credit > 0:
            return True
        others = any(self.depth(p) for p in Priority if p > Priority.VERDICT)
        if others and self.depth(Priority.VERDICT):
            self.verdicts_deferred += 1
        return not others

    def next_frame_info(self, now: float | None = None) -> bytes | None:
        """Take packets for the next frame: highest priority first, filled up to the frame size.

        ``now`` (loop time) refills the verdicts' airtime credit; without it the share is not applied.
        """
        self._refill(now)
        self._verdict_bytes = 0
        chosen = bytearray()
        for priority in Priority:
            if self.hold_from is not None and priority >= self.hold_from:
                break
            if priority == Priority.VERDICT and now is not None and not self._verdicts_may_go():
                continue
            # a frame of file packets only may grow to the file frame size
            limit = self.max_file_info if priority == Priority.FILE and not chosen else self.max_info
            while (entry := self._head(priority)) is not None:
                if entry.alone:
                    if chosen:
                        break  # an alone packet waits for the next frame
                    self._pop(priority)
                    self.packets_sent += 1
                    if priority == Priority.VERDICT:
                        self._verdict_bytes = len(entry.packet)
                    return entry.packet
                if len(chosen) + len(entry.packet) > limit:
                    return bytes(chosen)
                chosen += self._pop(priority).packet
                self.packets_sent += 1
                if priority == Priority.VERDICT:
                    self._verdict_bytes += len(entry.packet)
        return bytes(chosen) if chosen else None

    # -- transmit permission ------------------------------------------------------------------
    def use_permission(self, permit: Callable[[], bool]) -> None:
        """Ask ``permit()`` before every frame (transmitter control, through the link)."""
        self._permit = permit
        self.permission_changed()

    def hold(self, lowest_sent: Priority | None) -> None:
        """Send queues up to ``lowest_sent`` only, holding the rest (None: every queue is sent)."""
        self.hold_from = None if lowest_sent is None else int(lowest_sent) + 1
        self._wake.set()
        self._progress.set()

    def permission_changed(self) -> None:
        """Transmit permission may have changed: wake the transmitter and the waiting producers."""
        self._wake.set()
        self._progress.set()

    @property
    def transmit_allowed(self) -> bool:
        return self._permit is None or self._permit()

    async def wait_progress(self) -> None:
        """Wait until a frame goes out or transmit permission changes (queues may have room now)."""
        self._progress.clear()
        await self._progress.wait()

    def airtime(self, frame: bytes) -> float:
        """On-air time of a frame sent alone (its own key-up)."""
        return self.tx_delay + stuffed_bits(frame) / self.bit_rate

    # -- service --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Service coroutine: send bursts of frames while allowed, sleeping each burst's on-air time.

        While transmission is not allowed the frames are still formed and paced, but withheld
        (counted, not sent): what was queued during a silence or a transmitter-off is stale by
        the time the transmitter may key up again, and the queues stay bounded meanwhile."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            allowed = self.transmit_allowed
            info = self.next_frame_info(now)
            if info is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            if not allowed:
                self.frames_withheld += 1
                self._progress.set()
                await asyncio.sleep(self.airtime(self._wrap(info)))
                continue
            self.key_ups += 1
            burst = 0.0
            frames = 0
            while True:
                frame = self._wrap(info)
                # the first frame of a burst carries its key-up (TXDELAY)
                duration = stuffed_bits(frame) / self.bit_rate + (self.tx_delay if frames == 0 else 0.0)
                await self._send_frame(frame)
                frames += 1
                burst += duration
                self.frames_sent += 1
                self.bytes_sent += len(frame)
                self.airtime_total += duration
                if self._verdict_bytes:  # verdicts pay for their part of the frame
                    self._credit -= duration * self._verdict_bytes / len(info)
                self._progress.set()
                if burst >= self.burst_s or frames >= BURST_FRAMES or not self.transmit_allowed:
                    break
                next_info = self.next_frame_info(now)
                if next_info is None:
                    break
                info = next_info
            await asyncio.sleep(burst)
