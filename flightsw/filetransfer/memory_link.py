"""An in-memory PDU link with loss, cuts and targeted drops, for the simulator and tests.

It stands where the radio link will stand: each end is a ``PduSink`` for one entity and delivers
to the other entity's ``receive_pdu`` on the next loop iteration. Loss is drawn from a seeded
generator so a failing run can be replayed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

Receiver = Callable[[bytes], None]
DropRule = Callable[[bytes], bool]


@dataclass
class LinkCounters:
    """What crossed (or did not cross) one direction of the link."""

    offered: int = 0
    delivered: int = 0
    lost: int = 0
    bytes_delivered: int = 0


@dataclass
class _Direction:
    counters: LinkCounters = field(default_factory=LinkCounters)
    receiver: Receiver | None = None
    drop_rules: list[DropRule] = field(default_factory=list)


class MemoryLinkEnd:
    """One end of the link: ``send_pdu`` goes to the peer."""

    def __init__(self, link: MemoryLink, direction: _Direction) -> None:
        self._link = link
        self._direction = direction

    @property
    def counters(self) -> LinkCounters:
        return self._direction.counters

    def drop_once(self, rule: DropRule) -> None:
        """Lose the next PDU sent from this end that matches ``rule`` (then forget the rule)."""
        self._direction.drop_rules.append(rule)

    async def send_pdu(self, pdu: bytes) -> None:
        direction = self._direction
        direction.counters.offered += 1
        for rule in list(direction.drop_rules):
            if rule(pdu):
                direction.drop_rules.remove(rule)
                direction.counters.lost += 1
                return
        if self._link.cut or self._link.rng.random() < self._link.loss or direction.receiver is None:
            direction.counters.lost += 1
            return
        direction.counters.delivered += 1
        direction.counters.bytes_delivered += len(pdu)
        receiver = direction.receiver
        asyncio.get_running_loop().call_soon(receiver, pdu)
        if self._link.per_pdu_delay_s:
            await asyncio.sleep(self._link.per_pdu_delay_s)
        else:
            await asyncio.sleep(0)


class MemoryLink:
    """Two connected ends, ``a`` and ``b``; ``attach`` their receivers, then send."""

    def __init__(self, loss: float = 0.0, seed: int = 1, per_pdu_delay_s: float = 0.0) -> None:
        if not 0.0 <= loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), not {loss}")
        self.loss = loss
        self.rng = random.Random(seed)
        self.cut = False
        self.per_pdu_delay_s = per_pdu_delay_s
        self._a_to_b = _Direction()
        self._b_to_a = _Direction()
        self.a = MemoryLinkEnd(self, self._a_to_b)
        self.b = MemoryLinkEnd(self, self._b_to_a)

    def attach(self, a_receiver: Receiver | None, b_receiver: Receiver | None) -> None:
        """``a_receiver`` gets what ``b`` sends and vice versa; None detaches (process gone)."""
        self._b_to_a.receiver = a_receiver
        self._a_to_b.receiver = b_receiver
