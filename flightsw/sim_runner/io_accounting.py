"""I/O accounting for the virtual-time loop: bytes written but not yet readable at the far end.

Why apart: bytes crossing the pseudo-terminal and the TCP socket arrive asynchronously in the
kernel; the loop waits for the count this module gives before every poll, which is what makes a
run with a given seed repeat exactly. It needs only the byte counters of the three parties
(flight serial port, transceiver, ground client) and the kernel's readable counts.
"""

from __future__ import annotations

import logging
from typing import Any

from sim.scenario import Scenario
from sim.transceiver import PTY_INPUT_CAPACITY

log = logging.getLogger("flightsw.sim")


def bytes_not_yet_readable(flight_written: int, flight_read: int, xcvr: Any, ground: Any) -> int:
    """Bytes written into the pty or the TCP connection that the far end cannot read yet.

    `flight_written`/`flight_read`: what the flight software's radio ports wrote/read, over all
    boots. Each direction: bytes into the kernel - bytes the reader took out - bytes readable now
    (FIONREAD). The kernel calls are made only when the counters differ. A pty whose input
    buffer is full counts as arrived: the rest cannot move before its reader runs."""
    missing = 0
    if flight_written > xcvr.pty_bytes_read:
        readable = xcvr.from_flight_readable()
        if readable < PTY_INPUT_CAPACITY:
            missing += max(0, flight_written - xcvr.pty_bytes_read - readable)
    if xcvr.pty_bytes_written > flight_read:
        readable = xcvr.to_flight_readable()
        if readable < PTY_INPUT_CAPACITY:
            missing += max(0, xcvr.pty_bytes_written - flight_read - readable)
    if xcvr.ground_bytes_written > ground.bytes_read:
        missing += max(0, xcvr.to_ground_sent() - ground.bytes_arrived())
    if ground.bytes_written > xcvr.ground_bytes_read:
        missing += max(0, ground.bytes_sent_to_kernel() - xcvr.from_ground_arrived())
    return missing


def inline_buses(hardware: Any, scenario: Scenario, threaded_buses: bool) -> list[Any]:
    """Simulated buses whose calls can run on the loop thread: none can sleep (no latency fault)."""
    if threaded_buses or hardware is None:
        return []
    configured = [s.sim_part.faults.latency_s for s in hardware.sensors if s.sim_part is not None]
    configured += [b.faults.latency_s for b in hardware.sim_buses.values()]
    scheduled = [f for f in scenario.faults if f.fault == "latency_s" and f.value]
    if any(configured) or scheduled:
        log.info("latency faults present: simulated buses keep their worker threads")
        return []
    return [bus for name, bus in hardware.buses.items() if name.startswith("sim-")]
